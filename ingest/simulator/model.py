"""The plant model: where everyone is, what the wearables say, what the gas field and machines do.

A pure, deterministic function of (site, seed, scenario, timing, t_s): ``t_s`` is seconds of simulation
time since the start. Each person's day is a piecewise-linear itinerary (walk legs at 1.0-1.5 m/s along
the walkways, work at stations: short moves at 0.5-0.8 m/s between pauses of 8-25 s) drawn from that
person's own random stream and extended lazily in time order, so the answer for a given ``t_s`` never
depends on which times were asked before.

The permit stories (``hot_work``, ``expired_certificate``, ``incompatible_jobs``, ``watcher_walkaway``, and the
permit checks ``worker_outside``, ``unauthorized_entry``, ``permit_expiry``, ``gas_test_stale``) also
script the plant's permit office: :attr:`PlantModel.permit_commands`, sent by the simulator's
:class:`~ingest.simulator.permits.PermitDesk`. Their people keep to the same clock: a crew goes into its zone
``enter_after_s`` after the scripted activation, never on the reply.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from config.schema import Site

from .camera import CameraView
from .gas import GasField
from .layout import Place, WalkwayNetwork, build_network, distance_to_edges, points_in_polygon
from .permits import PermitCommand, paperwork
from .scenarios import parse_scenario, resolve_timing
from .vibration import VibrationBank

__all__ = ["WALK_SPEED_M_S", "WEARABLE_EVENTS", "PlantModel", "WearableEvent"]

log = logging.getLogger(__name__)

#: bounds of anyone's walking speed, m/s
WALK_SPEED_M_S = (1.0, 1.5)
#: what a wearable can report
WEARABLE_EVENTS = ("sos", "fall", "battery_low")
#: "until the end of the simulation", seconds
FOREVER_S = 1e12
#: how far ahead itineraries are drawn when one runs out, seconds
_HORIZON_S = 900.0
#: battery_low events across the whole site, per second
_BATTERY_LOW_RATE_HZ = 1.0 / 1200.0
_BATTERY_CHUNK_S = 600.0

# relative weight of each station group by role; a worker also has a home group weighted x4
_ROLE_GROUP_WEIGHTS: dict[str, dict[str, float]] = {
    "worker": {"control": 1.0, "workshop": 1.0, "u100": 3.0, "u200": 3.0, "tankfarm": 3.0, "gate": 0.2},
    "contractor": {"control": 0.3, "workshop": 3.0, "u100": 1.0, "u200": 3.0, "tankfarm": 3.0, "gate": 1.0},
    "watcher": {"control": 0.5, "workshop": 1.0, "u100": 2.0, "u200": 3.0, "tankfarm": 3.0, "gate": 0.2},
    "visitor": {"control": 4.0, "workshop": 2.0, "u100": 0.5, "u200": 0.5, "tankfarm": 0.2, "gate": 2.0},
}
_HOME_GROUPS = ("u100", "u200", "tankfarm", "control", "workshop")
#: speed of the short moves of someone working at one place (a station, a crew at its job, a watcher at his
#: post), m/s: slower than walking
_PACE_SPEED_M_S = (0.5, 0.8)
#: pauses between the moves of normal station work, s (well under the 60 s of the man-down rule)
_WORK_PAUSE_S = (8.0, 25.0)
#: a move at work goes at most this far in x and in y, m
_PACE_REACH_M = 4.0
#: a move at work is at least this long, so that the tracker never takes it for standing still (1 m), m
_PACE_MIN_STEP_M = 2.0

Point = tuple[float, float]

#: permit HW-2's work: a bay of pipe rack PR-1 over the main road, and where its crew waits (demo plant)
_HW2_POLYGON: tuple[Point, ...] = ((62.0, 102.0), (70.0, 102.0), (70.0, 108.0), (62.0, 108.0))
_HW2_STAGING: Point = (66.0, 113.5)
#: the work places of the permit-check stories (worker_outside, unauthorized_entry, permit_expiry,
#: gas_test_stale): rectangles (x0, y0, x1, y1), metres, in the quiet yard between the west road and the main
#: road of the demo plant, at least 12 m from each other, the roads and the stations
_CHECK_RECTS: dict[str, tuple[float, float, float, float]] = {
    "WH-1": (50.0, 60.0, 60.0, 68.0),
    "WH-2": (72.0, 60.0, 82.0, 68.0),
    "WH-3": (50.0, 80.0, 60.0, 88.0),
    "HW-5": (72.0, 80.0, 82.0, 88.0),
}
#: lone_worker: where P0097 waits on the tank-farm road, and his work spot inside tank T-3 (zone Z-T3)
_T3_ROAD: Point = (260.0, 23.5)
_T3_INSIDE: Point = (260.0, 40.0)


@dataclass(frozen=True)
class _Tether:
    """Work at one place: short moves to spots drawn by ``draw(rng, here)``, each followed by a pause of
    ``pause_s`` (lo, hi) seconds, so that nobody at work stands still for long."""

    draw: Callable[[np.random.Generator, Point], Point]
    pause_s: tuple[float, float]


def _within_reach(lo: np.ndarray, hi: np.ndarray, here: Point) -> tuple[np.ndarray, np.ndarray]:
    """The part of the box (lo, hi) within ``_PACE_REACH_M`` of ``here`` (the whole box if that is empty)."""
    h = np.asarray(here, dtype=float)
    a, b = np.maximum(lo, h - _PACE_REACH_M), np.minimum(hi, h + _PACE_REACH_M)
    return (a, b) if np.all(b > a) else (lo, hi)


def _pick(cand: np.ndarray, ok: np.ndarray, here: Point) -> Point:
    """The first acceptable candidate at least ``_PACE_MIN_STEP_M`` away, else the farthest acceptable one."""
    if not ok.any():
        return here
    step = np.hypot(*(cand - np.asarray(here)).T)
    far = ok & (step >= _PACE_MIN_STEP_M)
    k = int(np.argmax(far)) if far.any() else int(np.argmax(np.where(ok, step, -1.0)))
    return float(cand[k, 0]), float(cand[k, 1])


@functools.cache
def _station_tether(rect: tuple[float, float, float, float]) -> _Tether:
    """Work within a station's rectangle (x0, y0, x1, y1), metres."""
    lo, hi = np.array(rect[:2], dtype=float), np.array(rect[2:], dtype=float)

    def draw(rng: np.random.Generator, here: Point) -> Point:
        a, b = _within_reach(lo, hi, here)
        cand = a + rng.random((16, 2)) * (b - a)
        return _pick(cand, np.ones(len(cand), dtype=bool), here)

    return _Tether(draw, _WORK_PAUSE_S)


def _spot_drawer(
    poly: np.ndarray,
    *,
    inside: bool,
    margin_m: float,
    centre: Point | None = None,
    radius_m: float = 2.5,
) -> Callable[[np.random.Generator, Point], Point]:
    """Spots inside ``poly`` at least ``margin_m`` from its edges (``inside``), or outside it, that far from
    it and within ``radius_m`` of ``centre``; each within reach of where one stands (and if possible at
    least ``_PACE_MIN_STEP_M`` from it)."""
    if inside:
        lo, hi = poly.min(axis=0), poly.max(axis=0)
    else:
        assert centre is not None
        lo, hi = np.asarray(centre) - radius_m, np.asarray(centre) + radius_m

    def draw(rng: np.random.Generator, here: Point) -> Point:
        a, b = _within_reach(lo, hi, here)
        cand = a + rng.random((64, 2)) * (b - a)
        ok = points_in_polygon(cand, poly) == inside
        ok &= distance_to_edges(cand, poly) >= margin_m
        if not inside:
            ok &= np.hypot(*(cand - np.asarray(centre)).T) <= radius_m
        return _pick(cand, ok, here)

    return draw


@dataclass(frozen=True)
class WearableEvent:
    """A wearable's report: ``t_s`` simulation seconds, ``tag`` id, ``event`` in WEARABLE_EVENTS."""

    t_s: float
    tag: str
    event: str


class _Itinerary:
    """One person's path: knots (t_s, x, y), linear in between; drawn leg by leg from its own stream."""

    def __init__(self, net: WalkwayNetwork, rng: np.random.Generator, weights: np.ndarray, speed_m_s: float):
        self.net = net
        self.rng = rng
        self.weights = weights / weights.sum()
        self.speed_m_s = speed_m_s
        self.t: list[float] = []
        self.xy: list[tuple[float, float]] = []
        self.place: Place | None = None
        self.freeze_at_s: float | None = None
        self.tether: _Tether | None = None  # set: works at one place from the end of its script on
        self.done = False
        self._arrays: tuple[np.ndarray, np.ndarray] | None = None

    # -- building -------------------------------------------------------------------------------
    @property
    def end_s(self) -> float:
        return self.t[-1] if self.t else 0.0

    def _knot(self, t: float, p: tuple[float, float]) -> None:
        self.t.append(float(t))
        self.xy.append((float(p[0]), float(p[1])))
        self._arrays = None

    def start(self, place: Place, t0_s: float = 0.0) -> None:
        self.place = place
        self._knot(t0_s, place.pos)

    def pause(self, duration_s: float) -> None:
        if duration_s > 0:
            self._knot(self.end_s + duration_s, self.xy[-1])

    def leg_speed(self) -> float:
        lo, hi = WALK_SPEED_M_S
        return float(np.clip(self.speed_m_s + self.rng.uniform(-0.05, 0.05), lo, hi))

    def walk(self, points: list[tuple[float, float]], speed_m_s: float) -> list[float]:
        """Walk the polyline from the current position; returns the arrival time at each point."""
        times = []
        t = self.end_s
        cur = self.xy[-1]
        for p in points:
            d = math.hypot(p[0] - cur[0], p[1] - cur[1])
            if d > 1e-9:
                t += d / speed_m_s
                self._knot(t, p)
                cur = p
            times.append(t)
        return times

    def walk_to(self, place: Place, speed_m_s: float | None = None) -> list[float]:
        assert self.place is not None
        pts = self.net.route(self.place, place)
        times = self.walk(pts, speed_m_s or self.leg_speed())
        self.place = place
        return times

    def random_spot(self, station: int, accept=None) -> tuple[float, float]:
        x0, y0, x1, y1 = self.net.stations[station].rect
        for _ in range(50):
            p = (float(self.rng.uniform(x0, x1)), float(self.rng.uniform(y0, y1)))
            if accept is None or accept(p):
                break
        return p

    def next_leg(self, min_route_m: float = 0.0) -> None:
        """One leg of normal work: walk to a station (or another spot of this one), then work there."""
        assert self.place is not None
        rng = self.rng
        here = self.place.station
        if here >= 0 and min_route_m <= 0 and rng.random() < 0.3:
            target = here
        else:
            target = int(rng.choice(len(self.weights), p=self.weights))
        place = self.net.station_place(target, self.random_spot(target))
        if min_route_m > 0:
            for _ in range(20):
                route = np.asarray(self.net.route(self.place, place))
                if np.sum(np.hypot(*np.diff(route, axis=0).T)) >= min_route_m:
                    break
                target = int(rng.choice(len(self.weights), p=self.weights))
                place = self.net.station_place(target, self.random_spot(target))
        self.walk_to(place)
        self.work(rng.uniform(20.0, 120.0) if target == here else rng.uniform(60.0, 480.0))

    def work(self, duration_s: float) -> None:
        """Work at the current station for ``duration_s``: moves of 2 m or more within its rectangle, each
        followed by a pause of 8-25 s, so that nobody at work stands still for a minute (man-down's time)."""
        if duration_s <= 0:
            return
        station = self.place.station if self.place is not None else -1
        if station < 0:
            self.pause(duration_s)
            return
        self.pace_until(_station_tether(self.net.stations[station].rect), self.end_s + duration_s)

    def pace_step(self, tether: _Tether, until_s: float = math.inf) -> None:
        """One move at work and its pause, both cut at ``until_s`` (a move that would end later stops
        part of the way, at ``until_s``)."""
        here = self.xy[-1]
        p = tether.draw(self.rng, here)
        v = float(self.rng.uniform(*_PACE_SPEED_M_S))
        pause = float(self.rng.uniform(*tether.pause_s))
        d = math.hypot(p[0] - here[0], p[1] - here[1])
        left = until_s - self.end_s
        if d / v > left:
            f = left * v / d
            p = (here[0] + f * (p[0] - here[0]), here[1] + f * (p[1] - here[1]))
        self.walk([p], v)
        self.pause(min(pause, until_s - self.end_s))

    def pace_until(self, tether: _Tether, until_s: float) -> None:
        """Work at the tether's place until ``until_s``."""
        while until_s - self.end_s > 1e-9:
            self.pace_step(tether, until_s)

    def extend(self, until_s: float) -> None:
        while not self.done and self.end_s < until_s:
            if self.tether is not None:
                self.pace_step(self.tether)
                continue
            self.next_leg()
            if self.freeze_at_s is not None and self.end_s >= self.freeze_at_s:
                self._freeze()

    def _freeze(self) -> None:
        t_f = float(self.freeze_at_s)  # type: ignore[arg-type]
        p = self.position(t_f)
        keep = int(np.searchsorted(np.asarray(self.t), t_f, side="right"))
        del self.t[keep:], self.xy[keep:]
        if self.t[-1] < t_f:
            self._knot(t_f, p)
        self._knot(FOREVER_S, p)
        self.done = True

    # -- reading --------------------------------------------------------------------------------
    def position(self, t_s: float) -> tuple[float, float]:
        if self._arrays is None:
            self._arrays = (np.asarray(self.t), np.asarray(self.xy))
        ts, xy = self._arrays
        k = int(np.searchsorted(ts, t_s, side="right"))
        if k == 0:
            return tuple(xy[0])
        if k >= len(ts):
            return tuple(xy[-1])
        t0, t1 = ts[k - 1], ts[k]
        w = (t_s - t0) / (t1 - t0) if t1 > t0 else 1.0
        p = xy[k - 1] + w * (xy[k] - xy[k - 1])
        return float(p[0]), float(p[1])


class PlantModel:
    """Everything the field devices observe, as pure functions of simulation time ``t_s`` (seconds).

    ``truth(t_s)`` -> float64 [P, 3] positions in site metres of ``site.people`` in order, z = tag height;
    ``wearable_events(t0_s, t1_s)`` -> events in (t0_s, t1_s]; ``ppe_classes(t_s)``; ``gas`` (GasField) and
    ``vibration`` (VibrationBank) for the sensors; ``milestones`` holds the scripted times of the scenario
    (e.g. ``restricted_entry.enter_s``) so tests and demos know when things happen; ``permit_commands`` the
    permit office's commands (:class:`PermitCommand`, in time order) that the stories need.
    """

    def __init__(
        self,
        site: Site,
        seed: int = 1,
        scenario: str = "normal",
        *,
        timing: Mapping[str, float] | None = None,
    ) -> None:
        self.site = site
        self.seed = int(seed)
        self.scenario = scenario
        self.scenarios = parse_scenario(scenario)
        self.timing = resolve_timing(self.scenarios, timing)
        self.network = build_network(site)
        self.people_ids = [p.id for p in site.people]
        self.tags = [p.tag for p in site.people]
        self.tag_height_m = site.uwb.tag_height_m
        self.milestones: dict[str, float] = {}
        self.permit_commands: list[PermitCommand] = []
        self.cameras = [CameraView(c) for c in site.cameras]
        self._index = {pid: i for i, pid in enumerate(self.people_ids)}
        self._scripted_events: list[WearableEvent] = []
        self._ppe: list[tuple[int, str, float, float]] = []  # person index, class, from_s, until_s
        self._itins = [self._new_itinerary(i) for i in range(len(site.people))]
        self._valid_until = -math.inf
        self._span, self._k = 1.0, 1
        self._flat_t = self._times = self._xy = np.empty(0)
        self._commands: list[PermitCommand] = []
        self._script()
        self._number_commands()
        for it in self._itins:
            if it.place is None:
                self._start_normally(it)
        self.gas = GasField(site, self.seed, self.scenarios, self.timing)
        self.vibration = VibrationBank(site, self.seed, self.scenarios, self.timing)

    # -- people -------------------------------------------------------------------------------------
    def _new_itinerary(self, i: int) -> _Itinerary:
        rng = np.random.default_rng([self.seed, 7, i])
        role = self.site.people[i].role
        groups = _ROLE_GROUP_WEIGHTS.get(role, {})
        home = _HOME_GROUPS[int(rng.integers(len(_HOME_GROUPS)))]
        stations = self.network.stations
        per_group: dict[str, int] = {}
        for s in stations:
            per_group[s.group] = per_group.get(s.group, 0) + 1
        w = np.array([groups.get(s.group, 1.0) / per_group[s.group] for s in stations])
        if role == "worker":
            w = w * np.array([4.0 if s.group == home else 1.0 for s in stations])
        if not np.any(w > 0):
            w = np.ones(len(stations))
        return _Itinerary(self.network, rng, w, float(rng.uniform(1.05, 1.45)))

    def _start_normally(self, it: _Itinerary, first_pause_s: float | None = None) -> None:
        station = int(it.rng.choice(len(it.weights), p=it.weights))
        it.start(self.network.station_place(station, it.random_spot(station)))
        it.work(it.rng.uniform(0.0, 240.0) if first_pause_s is None else first_pause_s)

    def _person(self, pid: str) -> int | None:
        i = self._index.get(pid)
        if i is None:
            log.warning(
                "scenario %s: person %s is not on site %s; that part is skipped",
                self.scenario,
                pid,
                self.site.id,
            )
        return i

    def _zone_poly(self, zid: str) -> np.ndarray:
        return np.asarray(next(z.polygon for z in self.site.zones if z.id == zid), dtype=float)

    def _crossings(self, i: int, poly: np.ndarray, t0: float, t1: float) -> tuple[float, float]:
        """First time inside and first time outside again of person ``i`` between t0 and t1 (0.01 s)."""
        ts = np.arange(t0, t1, 0.01)
        xy = np.array([self._itins[i].position(t) for t in ts])
        inside = points_in_polygon(xy, poly)
        idx = np.nonzero(inside)[0]
        if len(idx) == 0:
            return math.nan, math.nan
        after = np.nonzero(~inside[idx[0] :])[0]
        leave = ts[idx[0] + after[0]] if len(after) else math.nan
        return float(ts[idx[0]]), float(leave)

    def _script(self) -> None:
        tm, names, net = self.timing, self.scenarios, self.network
        if "restricted_entry" in names and (i := self._person("P0050")) is not None:
            zid = (
                "Z-SUB"
                if "Z-SUB" in net.zone_access
                else next((z.id for z in self.site.zones if z.kind == "restricted"), None)
            )
            if zid is not None:
                acc = net.zone_access[zid]
                it = self._itins[i]
                it.start(net.node_place(acc.node))
                it.pause(tm["entry_start_s"])
                v = it.leg_speed()
                t_start = it.end_s
                arrive = it.walk([*acc.via, acc.inside], v)[-1]
                dwell = tm["dwell_s"]
                poly = self._zone_poly(zid)
                step = (acc.inside[0], acc.inside[1] - 2.0)
                if points_in_polygon(np.array([step]), poly)[0]:  # a couple of steps while working
                    it.pause(dwell / 2)
                    it.walk([step, acc.inside], v)
                it.pause(max(arrive + dwell - it.end_s, 0.0))
                it.walk([*reversed(acc.via), tuple(net.nodes[acc.node])], v)
                it.place = net.node_place(acc.node)
                enter, leave = self._crossings(i, poly, t_start, it.end_s + 1.0)
                self.milestones.update(
                    {
                        "restricted_entry.walk_s": t_start,
                        "restricted_entry.enter_s": enter,
                        "restricted_entry.leave_s": leave,
                    }
                )
        if "watcher_walkaway" in names:
            self._script_watcher()
        hw1 = self._script_hot_work() if "hot_work" in names else None
        if "incompatible_jobs" in names and hw1 is not None:
            self._script_incompatible_jobs(hw1)
        if "expired_certificate" in names:
            self._script_expired_certificate()
        if "worker_outside" in names:
            self._script_worker_outside()
        if "unauthorized_entry" in names:
            self._script_unauthorized_entry()
        if "permit_expiry" in names:
            self._script_permit_expiry()
        if "gas_test_stale" in names:
            self._script_gas_test_stale()
        if "lone_worker" in names:
            self._script_lone_worker()
        if "man_down" in names and (i := self._person("P0077")) is not None:
            it = self._itins[i]
            fall = tm["fall_s"]
            self._start_normally(it, first_pause_s=max(fall - 8.0, 0.0))
            it.next_leg(min_route_m=40.0)
            it.freeze_at_s = fall
            if it.end_s >= fall:
                it._freeze()
            self._scripted_events.append(WearableEvent(fall, self.tags[i], "fall"))
            self.milestones["man_down.fall_s"] = fall
        if "sos" in names and (i := self._person("P0033")) is not None:
            self._scripted_events.append(WearableEvent(tm["sos_s"], self.tags[i], "sos"))
            self.milestones["sos.sos_s"] = tm["sos_s"]
        if "ppe_violation" in names and self.cameras:
            self._script_ppe()

    @staticmethod
    def _polyline_m(points: list) -> float:
        pts = np.asarray(points, dtype=float)
        return float(np.sum(np.hypot(*np.diff(pts, axis=0).T))) if len(pts) > 1 else 0.0

    # -- the permit stories ----------------------------------------------------------------------------
    def _office(self, story: str) -> tuple[str, str] | None:
        """(operator, supervisor) user ids of the permit office, or None (and a warning) if the site has none."""
        users = self.site.users
        op = next((u.id for u in users if u.role == "operator"), None)
        sup = next((u.id for u in users if u.role == "supervisor"), None) or next(
            (u.id for u in users if u.role == "admin"), None
        )
        if op is None or sup is None:
            log.warning("scenario %s: the site has no operator or supervisor user; no permit commands", story)
            return None
        return op, sup

    def _pace(self) -> tuple[float, float]:
        p = self.timing["pace_pause_s"]
        return max(p / 3.0, 1.0), max(p, 1.0)

    def _story_zone(self, zid: str, kind: str) -> str | None:
        net = self.network
        if zid in net.zone_access:
            return zid
        return next((z.id for z in self.site.zones if z.kind == kind and z.id in net.zone_access), None)

    def _road_side(self, zid: str, back_m: float) -> tuple[list[Point], Point]:
        """The way from the road to the zone's post, and a point ``back_m`` back along it from the post."""
        acc = self.network.zone_access[zid]
        chain = [tuple(map(float, self.network.nodes[acc.node])), *acc.via]
        if len(chain) < 2 or chain[-1] != acc.post:
            chain.append(acc.post)
        left = back_m
        for a, b in zip(reversed(chain[:-1]), reversed(chain[1:])):
            seg = math.hypot(b[0] - a[0], b[1] - a[1])
            if seg >= left and seg > 0:
                w = left / seg
                return chain, (b[0] + w * (a[0] - b[0]), b[1] + w * (a[1] - b[1]))
            left -= seg
        return chain, chain[0]

    def _first_beyond(self, i: int, poly: np.ndarray, limit_m: float, t0: float, t1: float) -> float:
        """First time (0.05 s) in [t0, t1) person ``i`` is more than ``limit_m`` from ``poly``; NaN if never."""
        ts = np.arange(t0, t1, 0.05)
        xy = np.array([self._itins[i].position(t) for t in ts])
        far = ~points_in_polygon(xy, poly) & (distance_to_edges(xy, poly) > limit_m)
        return float(ts[np.argmax(far)]) if far.any() else math.nan

    def _script_hot_work(self) -> dict[str, float] | None:
        """HW-1 at pipe bridge PB-1: the crew waits on the road side, the watcher stands 2 m east of the zone,
        the office gets the permit active, the crew goes in and works there from then on."""
        tm, net = self.timing, self.network
        zid = self._story_zone("Z-HW1", "hazardous")
        crew = [self._person(p) for p in ("P0101", "P0102")]
        w = self._person("P0187")
        office = self._office("hot_work")
        if zid is None or w is None or None in crew:
            return None
        acc = net.zone_access[zid]
        poly = self._zone_poly(zid)
        chain, staging = self._road_side(zid, 5.0)
        start = Place(acc.node, (), chain[1] if len(chain) > 2 else chain[0])
        pace = self._pace()
        watch = _Tether(_spot_drawer(poly, inside=False, margin_m=1.5, centre=acc.post, radius_m=2.5), pace)
        wait = _Tether(_spot_drawer(poly, inside=False, margin_m=3.0, centre=staging, radius_m=2.0), pace)
        work = _Tether(_spot_drawer(poly, inside=True, margin_m=2.5), pace)
        watcher = self._itins[w]
        watcher.start(start)
        at_post = watcher.walk([acc.post], watcher.leg_speed())[-1]
        watcher.place = Place(acc.node, acc.via, acc.post)
        watcher.tether = watch
        request = {
            "type": "hot_work",
            "grade": "2",
            "zone": zid,
            "workers": [self.tags[i] for i in crew],
            "watcher": self.tags[w],
            "description": "Welding a pipe support at pipe bridge PB-1",
        }
        cmds, times = paperwork(
            "HW-1",
            request,
            request_s=tm["hot_work_request_s"],
            timing=tm,
            operator=office[0] if office else "",
            supervisor=office[1] if office else "",
            gas_values={"LEL": 0.0, "O2": 20.9},
            activate_not_before_s=at_post + 3.0,
        )
        if office:
            self._commands += cmds
        enter_s = times["activate_s"] + tm["enter_after_s"]
        for k, i in enumerate(crew):
            it = self._itins[i]
            it.start(start)
            it.walk([staging], it.leg_speed())
            it.pace_until(wait, enter_s + 1.5 * k)
            spot = work.draw(it.rng, acc.inside)
            it.walk([acc.inside, spot], it.leg_speed())
            it.place = Place(acc.node, (*acc.via, acc.inside), spot)
            it.tether = work
        enter, _ = self._crossings(crew[0], poly, enter_s, enter_s + 60.0)
        self.milestones.update({f"hot_work.{k}": v for k, v in times.items()})
        self.milestones.update({"hot_work.watcher_at_post_s": at_post, "hot_work.enter_s": enter})
        return times

    def _script_incompatible_jobs(self, hw1: dict[str, float]) -> None:
        """HW-3: a second hot-work permit in the zone of HW-1 for the same hours: refused at approval."""
        tm = self.timing
        zid = self._story_zone("Z-HW1", "hazardous")
        office = self._office("incompatible_jobs")
        welder, watcher = self._person("P0103"), self._person("P0189")
        if zid is None or office is None or welder is None or watcher is None:
            return
        request_s = max(tm["conflict_request_s"], hw1["activate_s"] + 5.0)
        request = {
            "type": "hot_work",
            "grade": "1",
            "zone": zid,
            "workers": [self.tags[welder]],
            "watcher": self.tags[watcher],
            "description": "Cutting out a corroded bracket at PB-1",
        }
        cmds, times = paperwork(
            "HW-3",
            request,
            request_s=request_s,
            timing=tm,
            operator=office[0],
            supervisor=office[1],
            gas_values={"LEL": 0.0, "O2": 20.9},
        )
        cmds = [c for c in cmds if c.op != "permit_activate"]
        approve = next(c for c in cmds if c.op == "permit_approve")
        cmds[cmds.index(approve)] = PermitCommand(
            approve.t_s, approve.op, approve.user, approve.fields, "refused"
        )
        close_s = times["approve_s"] + tm["cancel_after_s"]
        cmds.append(
            PermitCommand(
                close_s,
                "permit_close",
                office[1],
                {"permit": "HW-3", "reason": "cancelled: conflicts with HW-1"},
            )
        )
        self._commands += cmds
        self.milestones.update(
            {
                "incompatible_jobs.request_s": request_s,
                "incompatible_jobs.approve_s": times["approve_s"],
                "incompatible_jobs.close_s": close_s,
            }
        )

    def _script_expired_certificate(self) -> None:
        """HW-2 on the pipe rack: the welder's hot-work certificate has expired, activation is refused."""
        tm, net = self.timing, self.network
        welder, w = self._person("P0042"), self._person("P0188")
        office = self._office("expired_certificate")
        if welder is None or w is None:
            return
        if net.kind != "demo" or "R75" not in net.names:
            log.warning("scenario expired_certificate: needs the demo plant's pipe rack; skipped")
            return
        poly = np.asarray(_HW2_POLYGON, dtype=float)
        node = net.names.index("R75")
        home = net.node_place(node)
        pace = self._pace()
        wait = _Tether(
            _spot_drawer(poly, inside=False, margin_m=3.0, centre=_HW2_STAGING, radius_m=2.0), pace
        )
        arrive = []
        for i in (welder, w):
            it = self._itins[i]
            it.start(home)
            arrive.append(it.walk([_HW2_STAGING], it.leg_speed())[-1])
        request = {
            "type": "hot_work",
            "grade": "2",
            "polygon": [list(p) for p in _HW2_POLYGON],
            "workers": [self.tags[welder]],
            "watcher": self.tags[w],
            "description": "Welding a pipe shoe on pipe rack PR-1, bay 7",
        }
        cmds, times = paperwork(
            "HW-2",
            request,
            request_s=tm["expired_request_s"],
            timing=tm,
            operator=office[0] if office else "",
            supervisor=office[1] if office else "",
            gas_values={"LEL": 0.0, "O2": 20.9},
            activate_not_before_s=max(arrive) + 3.0,
            expect_activate="refused",
        )
        close_s = times["activate_s"] + tm["cancel_after_s"]
        if office:
            self._commands += [
                *cmds,
                PermitCommand(
                    close_s,
                    "permit_close",
                    office[1],
                    {"permit": "HW-2", "reason": "cancelled: the welder's hot-work certificate has expired"},
                ),
            ]
        for i in (welder, w):  # they wait for the permit, then go back to other work
            it = self._itins[i]
            it.pace_until(wait, close_s + 10.0)
            it.walk_to(home)
        self.milestones.update({f"expired_certificate.{k}": v for k, v in times.items()})
        self.milestones["expired_certificate.close_s"] = close_s

    def _script_watcher(self) -> None:
        """CS-1 at vessel V-205: the entrant waits by the manhole with his watcher, the office gets the permit
        active, he goes in; the watcher (optionally stands stock-still for a while, then) walks ~60 m away."""
        tm, net = self.timing, self.network
        zid = self._story_zone("Z-V205", "confined_space")
        w = self._person("P0186")
        if zid is None or w is None:
            return
        e = self._person("P0185")
        office = self._office("watcher_walkaway")
        acc = net.zone_access[zid]
        poly = self._zone_poly(zid)
        post_place = Place(acc.node, acc.via, acc.post)
        pace = self._pace()
        watch = _Tether(_spot_drawer(poly, inside=False, margin_m=1.5, centre=acc.post, radius_m=2.5), pace)
        watcher = self._itins[w]
        watcher.start(post_place)
        ms = self.milestones
        activate_s = enter_s = tm["walkaway_request_s"]
        if e is not None:
            request = {
                "type": "confined_space",
                "zone": zid,
                "workers": [self.tags[e]],
                "watcher": self.tags[w],
                "description": "Internal inspection of vessel V-205",
            }
            cmds, times = paperwork(
                "CS-1",
                request,
                request_s=tm["walkaway_request_s"],
                timing=tm,
                operator=office[0] if office else "",
                supervisor=office[1] if office else "",
                gas_values={"LEL": 0.0, "O2": 20.8, "H2S": 0.0, "CO": 0.0},
                activate_not_before_s=3.0,
            )
            if office:
                self._commands += cmds
            ms.update({f"watcher_walkaway.{k}": v for k, v in times.items()})
            activate_s = times["activate_s"]
            enter_s = activate_s + tm["enter_after_s"]
        resume_s = -math.inf
        if tm["watcher_still_s"] > 0:
            watcher.pace_until(watch, max(tm["still_start_s"], enter_s + 5.0))
            # a last whole move (a clear stop for the tracker), then he stands stock-still
            watcher.walk(
                [watch.draw(watcher.rng, watcher.xy[-1])], float(watcher.rng.uniform(*_PACE_SPEED_M_S))
            )
            ms["watcher_walkaway.still_from_s"] = watcher.end_s
            watcher.pause(tm["watcher_still_s"])
            ms["watcher_walkaway.still_until_s"] = watcher.end_s
            # once he moves again the supervisor resumes CS-1, if the stillness was long enough to suspend it
            if (
                watcher.end_s - ms["watcher_walkaway.still_from_s"]
                > self.site.permit_settings.watcher_max_stationary_s
            ):
                resume_s = watcher.end_s + tm["resume_after_s"]
                ms["watcher_walkaway.resume_s"] = resume_s
                if office and e is not None:
                    self._commands.append(
                        PermitCommand(resume_s, "permit_resume", office[1], {"permit": "CS-1"})
                    )
        leave_s = max(tm["walkaway_start_s"], enter_s + 5.0, resume_s + 1.0)
        if leave_s > tm["walkaway_start_s"]:
            log.info("watcher_walkaway: the watcher leaves at %.1f s (after the permit is active)", leave_s)
        watcher.pace_until(watch, leave_s)
        # walk to a walkway node about 60 m away (straight line), the one with the shortest way there
        straight = np.hypot(*(net.nodes - np.asarray(acc.post)).T)
        way = net.dist[acc.node] + self._polyline_m(
            [acc.post, *reversed(acc.via), tuple(net.nodes[acc.node])]
        )
        ok = (straight >= 50.0) & (straight <= 75.0)
        far = (
            int(np.argmin(np.where(ok, way, np.inf))) if ok.any() else int(np.argmin(np.abs(straight - 60.0)))
        )
        v = watcher.leg_speed()
        arrive_s = watcher.walk_to(net.node_place(far), v)[-1]
        back_walk_s = self._polyline_m(net.route(net.node_place(far), post_place)) / v
        elsewhere = _Tether(
            _spot_drawer(poly, inside=False, margin_m=0.0, centre=watcher.xy[-1], radius_m=2.5), pace
        )
        set_off = leave_s + tm["away_s"] - back_walk_s  # from the node, so that he is back at leave + away
        watcher.pace_until(elsewhere, max(set_off - 5.0, watcher.end_s))
        watcher.walk([tuple(net.nodes[far])], v)
        watcher.pause(max(set_off - watcher.end_s, 0.0))
        back_s = watcher.walk_to(post_place, v)[-1]
        limit = self.site.permit_settings.watcher_max_distance_m
        ms.update(
            {
                "watcher_walkaway.leave_s": leave_s,
                "watcher_walkaway.beyond_limit_s": self._first_beyond(
                    w, poly, limit, leave_s, arrive_s + 0.1
                ),
                "watcher_walkaway.far_s": arrive_s,
                "watcher_walkaway.back_s": back_s,
            }
        )
        exit_s = back_s + 120.0
        if e is not None:
            _, staging = self._road_side(zid, 4.0)
            wait = _Tether(_spot_drawer(poly, inside=False, margin_m=3.0, centre=staging, radius_m=2.0), pace)
            work = _Tether(_spot_drawer(poly, inside=True, margin_m=2.5), pace)
            entrant = self._itins[e]
            entrant.start(Place(acc.node, acc.via, staging))
            entrant.pace_until(wait, enter_s)
            entrant.walk([acc.post, acc.inside], entrant.leg_speed())
            ms["watcher_walkaway.enter_s"] = self._crossings(e, poly, enter_s, entrant.end_s + 1.0)[0]
            entrant.pace_until(work, exit_s)
            entrant.walk([acc.inside, acc.post], entrant.leg_speed())
            entrant.place = post_place
            ms["watcher_walkaway.entrant_out_s"] = entrant.end_s
            exit_s = entrant.end_s
            if office:
                self._commands.append(
                    PermitCommand(
                        exit_s + 10.0,
                        "permit_close",
                        office[1],
                        {"permit": "CS-1", "reason": "work finished, entrant out"},
                    )
                )
        watcher.pace_until(watch, max(exit_s + 10.0, watcher.end_s))

    # -- the permit-check stories: a crew at its own polygon ------------------------------------------------
    def _place_at(self, p: Point) -> Place:
        """``p`` as a place reached from the nearest walkway node (for someone who starts there)."""
        node = int(np.argmin(np.hypot(*(self.network.nodes - np.asarray(p)).T)))
        return Place(node, (), (float(p[0]), float(p[1])))

    def _polygon_crew(
        self,
        story: str,
        permit: str,
        request: Mapping[str, object],
        crew_ids: tuple[str, ...],
        watcher_id: str | None,
        request_s: float,
        gas_values: Mapping[str, float] | None,
        valid_for_s: float | None = None,
    ) -> dict | None:
        """A crew at permit ``permit``'s own rectangle (:data:`_CHECK_RECTS`): it waits 1.5-3.5 m south of it
        (the watcher, if any, 2 m east of it from the start), the office gets the permit active, the crew goes
        in ``enter_after_s`` later (a second apart) and has walked to a work spot 2 m or more inside; the
        caller goes on with each worker's itinerary. ``valid_for_s``: the validity ends that long after the
        scripted activation. Returns ``{"crew", "poly", "work", "wait", "times"}`` or None (story skipped)."""
        tm, net = self.timing, self.network
        crew = [self._person(p) for p in crew_ids]
        w = self._person(watcher_id) if watcher_id else None
        office = self._office(story)
        if None in crew or (watcher_id and w is None) or office is None:
            return None
        if net.kind != "demo":
            log.warning("scenario %s: needs the demo plant's yard; skipped", story)
            return None
        x0, y0, x1, y1 = _CHECK_RECTS[permit]
        corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
        poly = np.asarray(corners, dtype=float)
        pace = self._pace()
        staging = ((x0 + x1) / 2, y0 - 2.5)
        wait = _Tether(_spot_drawer(poly, inside=False, margin_m=1.5, centre=staging, radius_m=1.0), pace)
        work = _Tether(_spot_drawer(poly, inside=True, margin_m=2.0), pace)
        not_before = 3.0
        fields = dict(request)
        fields.update(polygon=[list(p) for p in corners], workers=[self.tags[i] for i in crew])
        if w is not None:
            post = (x1 + 2.0, (y0 + y1) / 2)
            watcher = self._itins[w]
            watcher.start(self._place_at(post))
            watcher.tether = _Tether(
                _spot_drawer(poly, inside=False, margin_m=1.5, centre=post, radius_m=2.5), pace
            )
            fields["watcher"] = self.tags[w]
        cmds, times = paperwork(
            permit,
            fields,
            request_s=request_s,
            timing=tm,
            operator=office[0],
            supervisor=office[1],
            gas_values=gas_values,
            activate_not_before_s=not_before,
        )
        if gas_values is None:
            del times["gas_test_s"]  # no test: approval follows the request after both gaps
        if valid_for_s is not None:
            times["valid_to_s"] = times["activate_s"] + valid_for_s
            cmds[0] = dataclasses.replace(cmds[0], fields={**cmds[0].fields, "valid_to_s": times["valid_to_s"]})
        self._commands += cmds
        enter_s = times["activate_s"] + tm["enter_after_s"]
        door = ((x0 + x1) / 2, y0 + 2.5)
        for k, i in enumerate(crew):
            it = self._itins[i]
            it.start(self._place_at(staging))
            it.pace_until(wait, enter_s + 1.0 * k)
            it.walk([work.draw(it.rng, door)], it.leg_speed())
        times["crew_in_s"] = max(self._crossings(i, poly, enter_s, enter_s + 30.0)[0] for i in crew)
        return {"crew": crew, "poly": poly, "work": work, "wait": wait, "times": times}

    def _script_worker_outside(self) -> None:
        """WH-1: the crew works in its zone; one worker steps out ~5 m west of it and works on there."""
        tm = self.timing
        job = self._polygon_crew(
            "worker_outside",
            "WH-1",
            {"type": "working_at_height", "grade": "II", "description": "Replacing a cable tray support"},
            ("P0005", "P0029"),
            None,
            tm["outside_request_s"],
            None,
        )
        if job is None:
            return
        stay, stray = (self._itins[i] for i in job["crew"])
        stay.tether = job["work"]
        poly, times = job["poly"], job["times"]
        x0, y0, _, y1 = _CHECK_RECTS["WH-1"]
        out_s = times["crew_in_s"] + tm["stray_after_s"]
        stray.pace_until(job["work"], out_s)
        there = (x0 - 5.0, (y0 + y1) / 2)
        stray.walk([there], stray.leg_speed())
        stray.tether = _Tether(
            _spot_drawer(poly, inside=False, margin_m=3.5, centre=there, radius_m=1.5), self._pace()
        )
        _, left = self._crossings(job["crew"][1], poly, out_s - 1.0, stray.end_s + 1.0)
        self.milestones.update({f"worker_outside.{k}": v for k, v in times.items()})
        self.milestones["worker_outside.out_s"] = left

    def _script_unauthorized_entry(self) -> None:
        """WH-2: the crew works in its zone; P0143, not on the permit, walks in, stays a while, walks out."""
        tm = self.timing
        job = self._polygon_crew(
            "unauthorized_entry",
            "WH-2",
            {"type": "working_at_height", "grade": "I", "description": "Painting the rack's upper beams"},
            ("P0034",),
            None,
            tm["intrude_request_s"],
            None,
        )
        i = self._person("P0143")
        if job is None or i is None:
            return
        self._itins[job["crew"][0]].tether = job["work"]
        poly, times = job["poly"], job["times"]
        _, y0, x1, y1 = _CHECK_RECTS["WH-2"]
        away = (x1 + 10.0, (y0 + y1) / 2)
        loiter = _Tether(_spot_drawer(poly, inside=False, margin_m=7.0, centre=away, radius_m=2.0), self._pace())
        it = self._itins[i]
        it.start(self._place_at(away))
        go_s = times["activate_s"] + tm["intrude_after_s"]
        it.pace_until(loiter, go_s)
        it.walk([(x1 - 3.0, (y0 + y1) / 2)], it.leg_speed())
        it.pace_until(job["work"], it.end_s + tm["intrude_stay_s"])
        it.walk([away], it.leg_speed())
        it.tether = loiter
        enter, leave = self._crossings(i, poly, go_s, it.end_s + 1.0)
        self.milestones.update({f"unauthorized_entry.{k}": v for k, v in times.items()})
        self.milestones.update({"unauthorized_entry.enter_s": enter, "unauthorized_entry.leave_s": leave})

    def _script_permit_expiry(self) -> None:
        """WH-3: valid until ``expiry_work_s`` after activation; the crew is still in when it runs out."""
        tm = self.timing
        job = self._polygon_crew(
            "permit_expiry",
            "WH-3",
            {"type": "working_at_height", "grade": "II", "description": "Insulating a line at the pipe rack"},
            ("P0044", "P0072"),
            None,
            tm["expiry_request_s"],
            None,
            valid_for_s=tm["expiry_work_s"],
        )
        if job is None:
            return
        times = job["times"]
        out_s = times["valid_to_s"] + tm["exit_after_s"]
        for k, i in enumerate(job["crew"]):
            it = self._itins[i]
            it.pace_until(job["work"], out_s + 1.0 * k)
            it.walk([job["wait"].draw(it.rng, it.xy[-1])], it.leg_speed())
            it.tether = job["wait"]
        times["all_out_s"] = max(
            self._crossings(i, job["poly"], out_s - 1.0, out_s + 30.0)[1] for i in job["crew"]
        )
        self.milestones.update({f"permit_expiry.{k}": v for k, v in times.items()})

    def _script_gas_test_stale(self) -> None:
        """HW-5: tested once, active, never tested again; stale ``gas_test_validity_s`` after its test."""
        job = self._polygon_crew(
            "gas_test_stale",
            "HW-5",
            {"type": "hot_work", "grade": "2", "description": "Welding a new nozzle on a drain line"},
            ("P0105",),
            "P0192",
            self.timing["stale_request_s"],
            {"LEL": 0.0, "O2": 20.9},
        )
        if job is None:
            return
        self._itins[job["crew"][0]].tether = job["work"]
        times = job["times"]
        times["stale_s"] = times["gas_test_s"] + self.site.permit_settings.gas_test_validity_s
        self.milestones.update({f"gas_test_stale.{k}": v for k, v in times.items()})

    def _script_lone_worker(self) -> None:
        """P0097 goes into tank T-3 (Z-T3) alone, without a permit, works there and comes out."""
        tm = self.timing
        i = self._person("P0097")
        zones = {z.id: z for z in self.site.zones}
        if i is None:
            return
        if self.network.kind != "demo" or "Z-T3" not in zones:
            log.warning("scenario lone_worker: needs the demo plant's tank T-3; skipped")
            return
        poly = self._zone_poly("Z-T3")
        pace = self._pace()
        road = _Tether(_spot_drawer(poly, inside=False, margin_m=5.0, centre=_T3_ROAD, radius_m=1.5), pace)
        inside = _Tether(_spot_drawer(poly, inside=True, margin_m=3.0), pace)
        it = self._itins[i]
        it.start(self._place_at(_T3_ROAD))
        it.pace_until(road, tm["lone_start_s"])
        it.walk([(_T3_INSIDE[0], poly[:, 1].min() - 2.0), _T3_INSIDE], it.leg_speed())
        it.pace_until(inside, it.end_s + tm["lone_stay_s"])
        it.walk([(_T3_INSIDE[0], poly[:, 1].min() - 2.0), _T3_ROAD], it.leg_speed())
        it.tether = road
        enter, leave = self._crossings(i, poly, tm["lone_start_s"], it.end_s + 1.0)
        self.milestones.update({"lone_worker.enter_s": enter, "lone_worker.leave_s": leave})

    def _number_commands(self) -> None:
        cmds = sorted(self._commands, key=lambda c: c.t_s)  # stable: same time keeps the script's order
        self.permit_commands = [
            dataclasses.replace(c, id=f"sim-{n:03d}-{c.permit}-{c.op.removeprefix('permit_')}")
            for n, c in enumerate(cmds, 1)
        ]

    def _script_ppe(self) -> None:
        tm = self.timing
        cam = self.cameras[0]
        best, best_n = -1, 0
        for k, s in enumerate(self.network.stations):
            x0, y0, x1, y1 = s.rect
            g = np.array([(x, y) for x in np.linspace(x0, x1, 5) for y in np.linspace(y0, y1, 5)])
            n = int(np.count_nonzero(cam.in_view(g)))
            if n > best_n:
                best, best_n = k, n
        if best < 0:
            log.warning("ppe_violation: no station is in view of camera %s", cam.id)
            return
        until = tm["ppe_start_s"] + tm["ppe_s"]

        def seen(p: tuple[float, float]) -> bool:
            return bool(cam.in_view(np.array([p]))[0])

        for pid, cls in (("P0120", "no_helmet"), ("P0121", "no_vest")):
            i = self._person(pid)
            if i is None:
                continue
            it = self._itins[i]
            it.start(self.network.station_place(best, it.random_spot(best, seen)))
            while it.end_s < until:
                it.pause(it.rng.uniform(15.0, 45.0))  # under the 60 s of man-down
                it.walk_to(self.network.station_place(best, it.random_spot(best, seen)))
            self._ppe.append((i, cls, tm["ppe_start_s"], until))
        self.milestones.update({"ppe_violation.from_s": tm["ppe_start_s"], "ppe_violation.until_s": until})

    def _ensure(self, t_s: float) -> None:
        """Draw itineraries at least 60 s past ``t_s`` and rebuild the padded knot arrays if anything grew."""
        if t_s + 60.0 <= self._valid_until:
            return
        for it in self._itins:  # everyone at once, so that the arrays are rebuilt rarely
            if not it.done and it.end_s < t_s + _HORIZON_S / 2:
                it.extend(t_s + _HORIZON_S)
        ends = [it.end_s for it in self._itins if not it.done]
        self._valid_until = min(ends) if ends else math.inf
        # pad every row to K knots by repeating its last one at t_cap; rows laid end to end with offset
        # row * span turn P searches into one np.searchsorted over the flat array
        t_cap = max(
            [*ends, *(it.t[-2] if len(it.t) > 1 else 0.0 for it in self._itins if it.done)], default=0.0
        )
        t_cap += 1.0
        k = max(len(it.t) for it in self._itins)
        times = np.full((len(self._itins), k), t_cap)
        xy = np.empty((len(self._itins), k, 2))
        for i, it in enumerate(self._itins):
            n = len(it.t)
            times[i, :n] = np.minimum(it.t, t_cap)
            xy[i, :n] = it.xy
            xy[i, n:] = it.xy[-1]
        self._span = t_cap + 1.0
        self._flat_t = (times + np.arange(len(self._itins))[:, None] * self._span).ravel()
        self._times, self._xy, self._k = times, xy, k

    def truth(self, t_s: float) -> np.ndarray:
        """True tag positions at ``t_s``: float64 [P, 3] site metres, people in ``site.people`` order."""
        t = max(float(t_s), 0.0)
        n = len(self._itins)
        out = np.empty((n, 3))
        out[:, 2] = self.tag_height_m
        if n == 0:
            return out
        self._ensure(t)
        t = min(t, self._span - 1.0)  # everyone stands still after the last knot
        rows = np.arange(n)
        j = np.searchsorted(self._flat_t, t + rows * self._span, side="right") - rows * self._k
        j1 = np.clip(j, 0, self._k - 1)
        j0 = np.clip(j - 1, 0, self._k - 1)
        t0, t1 = self._times[rows, j0], self._times[rows, j1]
        dt = t1 - t0
        w = np.where(dt > 0, (t - t0) / np.where(dt > 0, dt, 1.0), 1.0)
        w = np.clip(w, 0.0, 1.0)[:, None]
        out[:, :2] = self._xy[rows, j0] + w * (self._xy[rows, j1] - self._xy[rows, j0])
        return out

    # -- wearables, PPE -----------------------------------------------------------------------------------
    def wearable_events(self, t0_s: float, t1_s: float) -> list[WearableEvent]:
        """Wearable reports with t0_s < t_s <= t1_s, in time order."""
        out = [e for e in self._scripted_events if t0_s < e.t_s <= t1_s]
        if self.tags:
            c0 = max(math.floor(max(t0_s, 0.0) / _BATTERY_CHUNK_S), 0)
            c1 = math.floor(max(t1_s, 0.0) / _BATTERY_CHUNK_S)
            for c in range(c0, c1 + 1):
                rng = np.random.default_rng([self.seed, 11, c])
                n = int(rng.poisson(_BATTERY_LOW_RATE_HZ * _BATTERY_CHUNK_S))
                ts = (c + rng.random(n)) * _BATTERY_CHUNK_S
                who = rng.integers(len(self.tags), size=n)
                out += [
                    WearableEvent(float(t), self.tags[int(k)], "battery_low")
                    for t, k in zip(ts, who)
                    if t0_s < t <= t1_s
                ]
        return sorted(out, key=lambda e: (e.t_s, e.tag))

    def ppe_classes(self, t_s: float) -> dict[int, tuple[str, ...]]:
        """Person index -> PPE violation classes seen on camera at ``t_s`` (empty for almost everyone)."""
        out: dict[int, tuple[str, ...]] = {}
        for i, cls, t0, t1 in self._ppe:
            if t0 <= t_s < t1:
                out[i] = out.get(i, ()) + (cls,)
        return out
