"""muster_drill: a site-wide emergency drill. At ``declare_s`` the shift supervisor declares an emergency at a
console (the control room's commands: login, then ``muster_declare`` for the whole site, through the engine's
command gate like any console). Each person hears the siren and, after a reaction delay drawn for them between
``react_min_s`` and ``react_max_s``, stops what they were doing and walks along the walkways to the muster point
nearest by the walkways, at their own walking pace times ``muster_pace_x``, and waits there, milling about.

``stay_missing`` people never come: they did not hear the siren and go on working at their station (the first
of them at a station inside a building, the control room or the workshop, when one is at work there). Someone a
story has already brought down (man_down) stays where they lie. With ``all_clear_after_s`` > 0 the supervisor
ends the emergency that long after declaring it and everyone goes back to work after a second reaction delay;
with 0 the emergency stays declared.

Who stays missing and everyone's delays come from a stream of the seed of the drill's own, so a run is
reproducible; the people whom no other story scripts follow their normal day up to the moment they react.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from kernels.geofence import distance_to_polygon, points_in_polygon

from ..layout import Place, _sample_polyline
from ..permits import PermitCommand
from ..walking import Itinerary, tether_inside
from .stage import MusterDrill, Stage, polyline_m

log = logging.getLogger(__name__)

#: the drill's own random stream: np.random.default_rng([seed, _STREAM])
_STREAM = 29
#: people wait this far inside a muster point's edges, metres (the fences confirm an entry with a 0.5 m border)
_MARGIN_M = 2.0
#: pauses between the short moves of people waiting at a muster point, s (under the 60 s of the man-down rule)
_WAIT_PAUSE_S = (8.0, 25.0)
#: a missing person's station keeps this far from every muster point, so that nobody takes him for mustered, m
_CLEAR_OF_POINT_M = 3.0


def tell(stage: Stage) -> None:
    tm, site = stage.timing, stage.site
    points = [(z.id, np.asarray(z.polygon, dtype=float)) for z in site.zones if z.kind == "muster_point"]
    office = stage.office("muster_drill")
    if not points or office is None:
        if not points:
            log.warning("scenario muster_drill: site %s has no muster_point zone; no drill", site.id)
        return
    entries = {zid: _entries(stage, zid, poly) for zid, poly in points}
    points = [(zid, poly) for zid, poly in points if entries[zid]]
    if not points:
        log.warning("scenario muster_drill: no walkway leads to a muster point of site %s; no drill", site.id)
        return
    if not tm["muster_pace_x"] > 0:
        raise ValueError(f"muster_pace_x must be > 0, got {tm['muster_pace_x']}")
    declare = tm["declare_s"]
    clear = declare + tm["all_clear_after_s"] if tm["all_clear_after_s"] > 0 else None
    rng = np.random.default_rng([stage.seed, _STREAM])
    n = len(stage.itineraries)
    lo, hi = sorted((tm["react_min_s"], tm["react_max_s"]))
    react = rng.uniform(lo, hi, n)
    back = rng.uniform(lo, hi, n)  # after the all clear

    scripted = [bool(it.t) for it in stage.itineraries]
    for it in stage.itineraries:
        if not it.t:
            it.start_normally()  # as the model would after the stories: the same draws, so the same day
        if not _down(it):
            it.extend(declare)
    missing = _choose_missing(stage, rng, scripted, [p for _, p in points], int(tm["stay_missing"]))
    arrive: dict[str, float] = {}
    point: dict[str, str] = {}
    for i, it in enumerate(stage.itineraries):
        pid = site.people[i].id
        if _down(it):
            log.info("scenario muster_drill: %s is down (or will be) and stays where they lie", pid)
            continue
        if i in missing:
            it.stay_at_station(math.inf if clear is None else clear)
            continue
        zid, t_in = _muster(stage, it, declare + react[i], entries, dict(points), tm["muster_pace_x"], clear,
                            back[i])
        arrive[pid], point[pid] = t_in, zid

    stage.console_commands += [PermitCommand(declare, "muster_declare", office[1], {"area": "all"})]
    times = {"declare_s": declare}
    if arrive:
        times |= {"first_in_s": min(arrive.values()), "all_in_s": max(arrive.values())}
    if clear is not None:
        stage.console_commands.append(PermitCommand(clear, "muster_end", office[1], {}))
        times["all_clear_s"] = clear
    stage.mark("muster_drill", times)
    stage.drill = MusterDrill(declare, clear, tuple(site.people[i].id for i in sorted(missing)), arrive, point)
    log.info("scenario muster_drill: declared at %.1f s by %s; %d people go to a muster point (all in by %.1f s), "
             "missing: %s", declare, office[1], len(arrive), times.get("all_in_s", math.nan),
             ", ".join(stage.drill.missing) or "nobody")


def _down(it: Itinerary) -> bool:
    """Brought down by a story (man_down), now or later: the drill leaves that person's script alone."""
    return it.done or it.freeze_at_s is not None


def _entries(stage: Stage, zid: str, poly: np.ndarray) -> list[Place]:
    """Where the walkways lead into muster point ``zid``: the edges through it, else the way a story would reach
    the zone (the generic grid knows one for every zone)."""
    found = stage.network.entries(poly, margin_m=_MARGIN_M)
    acc = stage.network.zone_access.get(zid)
    if not found and acc is not None and points_in_polygon(np.asarray([acc.inside]), poly)[0]:
        found = [Place(acc.node, acc.via, acc.inside)]
    return found


def _choose_missing(stage: Stage, rng: np.random.Generator, scripted: list[bool], polys: list[np.ndarray],
                    count: int) -> set[int]:
    """``count`` people, drawn from those no other story scripts who are at work (or on the way to it) at a
    station well clear of every muster point; the first, if possible, at a station inside a building."""
    if count <= 0:
        return set()
    buildings = [np.asarray(s.polygon, dtype=float) for s in stage.site.floor_plan.structures if s.kind == "building"]
    declare = stage.timing["declare_s"]
    ok, indoors = [], []
    for i, it in enumerate(stage.itineraries):
        if scripted[i] or _down(it) or it.place is None or it.place.station < 0:
            continue
        x0, y0, x1, y1 = stage.network.stations[it.place.station].rect
        rect = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1], [(x0 + x1) / 2, (y0 + y1) / 2]])
        k = int(np.searchsorted(np.asarray(it.t), declare, side="right"))
        way = _sample_polyline([it.position(declare), *it.xy[k:]])  # the rest of the way to the station
        if any((distance_to_polygon(np.vstack([rect, way]), p) < _CLEAR_OF_POINT_M).any() for p in polys):
            continue
        ok.append(i)
        if any(points_in_polygon(rect[-1:], b)[0] for b in buildings):
            indoors.append(i)
    chosen: list[int] = []
    if indoors:
        chosen.append(int(rng.choice(indoors)))
    rest = [i for i in ok if i not in chosen]
    take = min(count - len(chosen), len(rest))
    if take > 0:
        chosen += [int(k) for k in rng.choice(rest, size=take, replace=False)]
    if len(chosen) < count:
        log.warning("scenario muster_drill: only %d of %d people can stay missing", len(chosen), count)
    return set(chosen[:count])


def _muster(stage: Stage, it: Itinerary, react_s: float, entries: dict[str, list[Place]],
            polys: dict[str, np.ndarray], pace_x: float, clear_s: float | None, back_s: float) -> tuple[str, float]:
    """Person ``it`` drops what they are doing at ``react_s`` and walks to the muster point nearest by the
    walkways, then waits inside it (until ``back_s`` after the all clear, then back to work). Returns the
    muster point's zone id and when the person is first inside it, simulation s."""
    net = stage.network
    here = it.cut_at(react_s)
    ways = net.ways_from(here) or [stage.place_at(here)]
    best = min(((polyline_m(net.route(w, e)), w, e, zid) for zid, es in entries.items() for w in ways for e in es),
               key=lambda c: c[0])
    _, way, entry, zid = best
    it.place = way
    k0 = len(it.t) - 1
    it.walk_to(entry, it.leg_speed() * pace_x)
    t_in = _first_inside(it, k0, polys[zid])
    wait = tether_inside(polys[zid], margin_m=_MARGIN_M, pause_s=_WAIT_PAUSE_S)
    it.tether_to(wait, math.inf if clear_s is None else clear_s + back_s)
    # after the all clear, back to the walkways the way they came in: the normal day's first leg goes from
    # wherever the waiting ended to the entry point (a straight line inside the muster point), then on
    it.place = Place(entry.node, entry.via, entry.pos)
    return zid, t_in


def _first_inside(it: Itinerary, k0: int, poly: np.ndarray, step_m: float = 0.1) -> float:
    """First time from knot ``k0`` on that the itinerary is inside ``poly`` (to ``step_m`` of the way), s."""
    for k in range(k0, len(it.t) - 1):
        (t0, t1), (a, b) = it.t[k : k + 2], np.asarray(it.xy[k : k + 2])
        n = max(int(math.ceil(np.hypot(*(b - a)) / step_m)), 1)
        w = np.linspace(0.0, 1.0, n + 1)
        inside = points_in_polygon(a + w[:, None] * (b - a), poly)
        if inside.any():
            return float(t0 + w[int(np.argmax(inside))] * (t1 - t0))
    return math.nan
