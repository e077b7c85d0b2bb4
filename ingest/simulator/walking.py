"""The walking model: where everyone is, as a pure function of the seed and simulation time.

Each person's day is a piecewise-linear :class:`Itinerary` (walk legs at 1.0-1.5 m/s along the walkways, work
at stations: short moves at 0.5-0.8 m/s between pauses of 8-25 s) drawn from that person's own random stream
(:func:`new_itinerary`) and extended lazily in time order, so the answer for a given ``t_s`` never depends on
which times were asked before. A :class:`Tether` is work at one place (a station, a crew at its job, a watcher
at his post); the stories (stories/) script itineraries with these pieces. :class:`Crowd` reads everyone's
position at once.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from config.schema import Site
from kernels.geofence import distance_to_edges, points_in_polygon

from .layout import Place, WalkwayNetwork

__all__ = [
    "FOREVER_S",
    "PACE_SPEED_M_S",
    "WALK_SPEED_M_S",
    "Crowd",
    "Itinerary",
    "Point",
    "Tether",
    "new_itinerary",
    "spot_drawer",
    "tether_inside",
    "tether_outside",
]

#: bounds of anyone's walking speed, m/s
WALK_SPEED_M_S = (1.0, 1.5)
#: "until the end of the simulation", seconds
FOREVER_S = 1e12
#: how far ahead itineraries are drawn when one runs out, seconds
_HORIZON_S = 900.0

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
PACE_SPEED_M_S = (0.5, 0.8)
#: pauses between the moves of normal station work, s (well under the 60 s of the man-down rule)
_WORK_PAUSE_S = (8.0, 25.0)
#: a move at work goes at most this far in x and in y, m
_PACE_REACH_M = 4.0
#: a move at work is at least this long, so that the tracker never takes it for standing still (1 m), m
_PACE_MIN_STEP_M = 2.0

Point = tuple[float, float]


@dataclass(frozen=True)
class Tether:
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
def _station_tether(rect: tuple[float, float, float, float]) -> Tether:
    """Work within a station's rectangle (x0, y0, x1, y1), metres."""
    lo, hi = np.array(rect[:2], dtype=float), np.array(rect[2:], dtype=float)

    def draw(rng: np.random.Generator, here: Point) -> Point:
        a, b = _within_reach(lo, hi, here)
        cand = a + rng.random((16, 2)) * (b - a)
        return _pick(cand, np.ones(len(cand), dtype=bool), here)

    return Tether(draw, _WORK_PAUSE_S)


def spot_drawer(
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


def tether_inside(poly: np.ndarray, *, margin_m: float, pause_s: tuple[float, float]) -> Tether:
    """Work inside ``poly`` (float64 [V, 2] site metres), ``margin_m`` or more from its edges, pausing
    ``pause_s`` (lo, hi) seconds between moves."""
    return Tether(spot_drawer(poly, inside=True, margin_m=margin_m), pause_s)


def tether_outside(
    poly: np.ndarray, *, centre: Point, radius_m: float, margin_m: float, pause_s: tuple[float, float]
) -> Tether:
    """Work (or wait, or watch) within ``radius_m`` of ``centre``, outside ``poly`` and ``margin_m`` or more
    from it, pausing ``pause_s`` (lo, hi) seconds between moves."""
    drawer = spot_drawer(poly, inside=False, margin_m=margin_m, centre=centre, radius_m=radius_m)
    return Tether(drawer, pause_s)


class Itinerary:
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
        self.tether: Tether | None = None  # set: works at one place from the end of its script on
        self.tether_until_s = math.inf  # ... until then; the normal day goes on from ``place`` afterwards
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

    def start_normally(self, first_pause_s: float | None = None) -> None:
        """Start at a spot of a station drawn by this person's weights and work there a while (0-240 s
        unless ``first_pause_s``)."""
        station = int(self.rng.choice(len(self.weights), p=self.weights))
        self.start(self.net.station_place(station, self.random_spot(station)))
        self.work(self.rng.uniform(0.0, 240.0) if first_pause_s is None else first_pause_s)

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

    def tether_to(self, tether: Tether, until_s: float = math.inf) -> None:
        """From the end of the itinerary on, work at ``tether``'s place until ``until_s`` (drawn lazily, like
        the normal day), then go on with the normal day from ``place``."""
        self.tether, self.tether_until_s = tether, until_s

    def stay_at_station(self, until_s: float = math.inf) -> None:
        """Go on working at the station of the current place until ``until_s``, then with the normal day."""
        assert self.place is not None and self.place.station >= 0
        self.tether_to(_station_tether(self.net.stations[self.place.station].rect), until_s)

    def pace_step(self, tether: Tether, until_s: float = math.inf) -> None:
        """One move at work and its pause, both cut at ``until_s`` (a move that would end later stops
        part of the way, at ``until_s``)."""
        here = self.xy[-1]
        p = tether.draw(self.rng, here)
        v = float(self.rng.uniform(*PACE_SPEED_M_S))
        pause = float(self.rng.uniform(*tether.pause_s))
        d = math.hypot(p[0] - here[0], p[1] - here[1])
        left = until_s - self.end_s
        if d / v > left:
            f = left * v / d
            p = (here[0] + f * (p[0] - here[0]), here[1] + f * (p[1] - here[1]))
        self.walk([p], v)
        self.pause(min(pause, until_s - self.end_s))

    def pace_until(self, tether: Tether, until_s: float) -> None:
        """Work at the tether's place until ``until_s``."""
        while until_s - self.end_s > 1e-9:
            self.pace_step(tether, until_s)

    def freeze_at(self, t_s: float) -> None:
        """Stop moving for good at ``t_s`` (now, if the itinerary already reaches that far)."""
        self.freeze_at_s = t_s
        if self.end_s >= t_s:
            self._freeze()

    def extend(self, until_s: float) -> None:
        while not self.done and self.end_s < until_s:
            if self.tether is not None:
                if self.end_s < self.tether_until_s - 1e-9:
                    self.pace_step(self.tether, self.tether_until_s)
                    continue
                self.tether, self.tether_until_s = None, math.inf  # back to the normal day from its place
            self.next_leg()
            if self.freeze_at_s is not None and self.end_s >= self.freeze_at_s:
                self._freeze()

    def cut_at(self, t_s: float) -> Point:
        """Drop whatever was planned after ``t_s`` (drawing the day that far first): the itinerary ends where it
        had the person at ``t_s``, with no place, tether or freeze; the caller goes on from there. Returns that
        point, site metres."""
        self.extend(t_s)
        p = self.position(t_s)
        keep = int(np.searchsorted(np.asarray(self.t), t_s, side="right"))
        del self.t[keep:], self.xy[keep:]
        if not self.t or self.t[-1] < t_s:
            self._knot(t_s, p)
        self._arrays = None
        self.place, self.tether, self.tether_until_s, self.freeze_at_s = None, None, math.inf, None
        return p

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


def new_itinerary(site: Site, net: WalkwayNetwork, seed: int, i: int) -> Itinerary:
    """Person ``i`` of ``site.people``: an empty itinerary on that person's own random stream, with station
    weights by role (a worker's home group counts x4) and a walking speed of 1.05-1.45 m/s."""
    rng = np.random.default_rng([seed, 7, i])
    role = site.people[i].role
    groups = _ROLE_GROUP_WEIGHTS.get(role, {})
    home = _HOME_GROUPS[int(rng.integers(len(_HOME_GROUPS)))]
    stations = net.stations
    per_group: dict[str, int] = {}
    for s in stations:
        per_group[s.group] = per_group.get(s.group, 0) + 1
    w = np.array([groups.get(s.group, 1.0) / per_group[s.group] for s in stations])
    if role == "worker":
        w = w * np.array([4.0 if s.group == home else 1.0 for s in stations])
    if not np.any(w > 0):
        w = np.ones(len(stations))
    return Itinerary(net, rng, w, float(rng.uniform(1.05, 1.45)))


class Crowd:
    """Everyone's itineraries read at once: :meth:`positions` interpolates all P of them with one search."""

    def __init__(self, itineraries: list[Itinerary]) -> None:
        self.itineraries = itineraries
        self._valid_until = -math.inf
        self._span, self._k = 1.0, 1
        self._flat_t = self._times = self._xy = np.empty(0)

    def _ensure(self, t_s: float) -> None:
        """Draw itineraries at least 60 s past ``t_s`` and rebuild the padded knot arrays if anything grew."""
        if t_s + 60.0 <= self._valid_until:
            return
        itins = self.itineraries
        for it in itins:  # everyone at once, so that the arrays are rebuilt rarely
            if not it.done and it.end_s < t_s + _HORIZON_S / 2:
                it.extend(t_s + _HORIZON_S)
        ends = [it.end_s for it in itins if not it.done]
        self._valid_until = min(ends) if ends else math.inf
        # pad every row to K knots by repeating its last one at t_cap; rows laid end to end with offset
        # row * span turn P searches into one np.searchsorted over the flat array
        t_cap = max([*ends, *(it.t[-2] if len(it.t) > 1 else 0.0 for it in itins if it.done)], default=0.0)
        t_cap += 1.0
        k = max(len(it.t) for it in itins)
        times = np.full((len(itins), k), t_cap)
        xy = np.empty((len(itins), k, 2))
        for i, it in enumerate(itins):
            n = len(it.t)
            times[i, :n] = np.minimum(it.t, t_cap)
            xy[i, :n] = it.xy
            xy[i, n:] = it.xy[-1]
        self._span = t_cap + 1.0
        self._flat_t = (times + np.arange(len(itins))[:, None] * self._span).ravel()
        self._times, self._xy, self._k = times, xy, k

    def positions(self, t_s: float) -> np.ndarray:
        """Everyone's (x, y) at ``t_s`` >= 0 (simulation seconds): float64 [P, 2] site metres, P >= 1."""
        self._ensure(t_s)
        t = min(t_s, self._span - 1.0)  # everyone stands still after the last knot
        n = len(self.itineraries)
        rows = np.arange(n)
        j = np.searchsorted(self._flat_t, t + rows * self._span, side="right") - rows * self._k
        j1 = np.clip(j, 0, self._k - 1)
        j0 = np.clip(j - 1, 0, self._k - 1)
        t0, t1 = self._times[rows, j0], self._times[rows, j1]
        dt = t1 - t0
        w = np.where(dt > 0, (t - t0) / np.where(dt > 0, dt, 1.0), 1.0)
        w = np.clip(w, 0.0, 1.0)[:, None]
        return self._xy[rows, j0] + w * (self._xy[rows, j1] - self._xy[rows, j0])
