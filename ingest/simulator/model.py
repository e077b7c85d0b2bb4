"""The plant model: where everyone is, what the wearables say, what the gas field and machines do.

A pure, deterministic function of (site, seed, scenario, timing, t_s): ``t_s`` is seconds of simulation
time since the start. Each person's day is a piecewise-linear itinerary (walk legs at 1.0-1.5 m/s along
the walkways, pauses at work stations) drawn from that person's own random stream and extended lazily
in time order, so the answer for a given ``t_s`` never depends on which times were asked before.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config.schema import Site

from .camera import CameraView
from .gas import GasField
from .layout import Place, WalkwayNetwork, build_network, points_in_polygon
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
        self.pause(rng.uniform(20.0, 120.0) if target == here else rng.uniform(60.0, 480.0))

    def extend(self, until_s: float) -> None:
        while not self.done and self.end_s < until_s:
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
    (e.g. ``restricted_entry.enter_s``) so tests and demos know when things happen.
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
        self.cameras = [CameraView(c) for c in site.cameras]
        self._index = {pid: i for i, pid in enumerate(self.people_ids)}
        self._scripted_events: list[WearableEvent] = []
        self._ppe: list[tuple[int, str, float, float]] = []  # person index, class, from_s, until_s
        self._itins = [self._new_itinerary(i) for i in range(len(site.people))]
        self._valid_until = -math.inf
        self._span, self._k = 1.0, 1
        self._flat_t = self._times = self._xy = np.empty(0)
        self._script()
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
        it.pause(it.rng.uniform(0.0, 240.0) if first_pause_s is None else first_pause_s)

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

    def _script_watcher(self) -> None:
        tm, net = self.timing, self.network
        zid = (
            "Z-V205"
            if "Z-V205" in net.zone_access
            else next((z.id for z in self.site.zones if z.kind == "confined_space"), None)
        )
        w = self._person("P0186")
        if zid is None or w is None:
            return
        acc = net.zone_access[zid]
        post_place = Place(acc.node, acc.via, acc.post)
        watcher = self._itins[w]
        watcher.start(post_place)
        watcher.pause(tm["walkaway_start_s"])
        leave_s = watcher.end_s
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
        watcher.pause(max(leave_s + tm["away_s"] - back_walk_s - watcher.end_s, 0.0))
        back_s = watcher.walk_to(post_place, v)[-1]
        self.milestones.update(
            {
                "watcher_walkaway.leave_s": leave_s,
                "watcher_walkaway.far_s": arrive_s,
                "watcher_walkaway.back_s": back_s,
            }
        )
        exit_s = back_s + 120.0
        e = self._person("P0185")
        if e is not None:
            entrant = self._itins[e]
            entrant.start(Place(acc.node, (*acc.via, acc.post), acc.inside))
            entrant.pause(exit_s)
            entrant.walk_to(post_place)
            self.milestones["watcher_walkaway.entrant_out_s"] = entrant.end_s
            exit_s = entrant.end_s
        watcher.pause(max(exit_s + 10.0 - watcher.end_s, 0.0))

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
                it.pause(it.rng.uniform(20.0, 60.0))
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
