"""What a story works with: the site, everyone's itinerary, the permit office, and what the story leaves behind.

A story is a function ``tell(stage: Stage) -> None`` (see :data:`Story`). It scripts the itineraries of its
people (anyone it leaves unstarted starts a normal day afterwards) and records its scripted times in
:attr:`Stage.milestones` (``"<scenario>.<what>_s"``), the permit office's commands in :attr:`Stage.commands`,
the control room's (a supervisor at a console: the emergency muster) in :attr:`Stage.console_commands`,
wearable reports in :attr:`Stage.wearable_events` and PPE sightings in :attr:`Stage.ppe`. A story that misses
something it needs on the site (a person, a zone, the demo plant's yard) logs a warning and skips that part.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from config.schema import Site
from kernels.geofence import distance_to_edges, points_in_polygon

from ..camera import CameraView
from ..layout import Place, WalkwayNetwork
from ..permits import PermitCommand, paperwork
from ..walking import Itinerary, Point

__all__ = ["HOT_WORK_GAS", "MusterDrill", "Stage", "Story", "WearableEvent", "polyline_m"]

log = logging.getLogger(__name__)

#: a passing gas test for hot work: LEL %, O2 %
HOT_WORK_GAS: Mapping[str, float] = {"LEL": 0.0, "O2": 20.9}

#: the permit office's job safety analyses, by permit type (for the permits that need one before approval)
JSA_BY_TYPE: Mapping[str, Mapping[str, list[str]]] = {
    "hot_work": {"hazards": ["flammable vapour near the work", "sparks and hot slag", "burns"],
                 "measures": ["line drained, purged and blinded; gas tested", "drains covered, fire blanket and "
                              "extinguisher at hand", "watcher at the work for the whole job"]},
    "confined_space": {"hazards": ["oxygen deficiency or toxic gas inside", "engulfment", "no quick way out"],
                       "measures": ["vessel isolated, purged and ventilated; gas tested", "entrant on a harness "
                                    "and line", "watcher at the manhole with a rescue plan"]},
    "working_at_height": {"hazards": ["a fall from over 30 m", "dropped tools"],
                          "measures": ["full harness clipped to an anchor", "tools tethered, area below barred"]},
}


@dataclass(frozen=True)
class WearableEvent:
    """A wearable's report: ``t_s`` simulation seconds, ``tag`` id, ``event`` in :data:`ingest.protocol.names.WEARABLE_EVENTS`."""

    t_s: float
    tag: str
    event: str


@dataclass(frozen=True)
class MusterDrill:
    """The emergency drill as scripted: declared at ``declare_s``, all clear at ``all_clear_s`` (None: never),
    simulation s; ``missing`` the ids of the people who never come; ``arrive_s`` person id -> when that person is
    first inside a muster point (simulation s), ``point`` person id -> the muster point's zone id, for everyone
    who goes to one."""

    declare_s: float
    all_clear_s: float | None
    missing: tuple[str, ...]
    arrive_s: Mapping[str, float]
    point: Mapping[str, str]


def polyline_m(points: Sequence) -> float:
    """Length of a polyline of (x, y) points, metres."""
    pts = np.asarray(points, dtype=float)
    return float(np.sum(np.hypot(*np.diff(pts, axis=0).T))) if len(pts) > 1 else 0.0


class Stage:
    """The plant as the stories see it while they are told (once, when the model is built).

    ``itineraries[i]`` is person ``i`` of ``site.people``; ``tags[i]`` that person's tag; ``timing`` the
    resolved timing parameters of the scenario (seconds of simulation time); ``seed`` the model's seed (for a
    story's own random draws, on a stream of its own).
    """

    def __init__(
        self,
        site: Site,
        scenario: str,
        timing: Mapping[str, float],
        network: WalkwayNetwork,
        itineraries: list[Itinerary],
        cameras: list[CameraView],
        seed: int = 0,
    ) -> None:
        self.site = site
        self.seed = int(seed)
        self.scenario = scenario
        self.timing = timing
        self.network = network
        self.itineraries = itineraries
        self.cameras = cameras
        self.tags = [p.tag for p in site.people]
        self.milestones: dict[str, float] = {}
        self.commands: list[PermitCommand] = []
        self.console_commands: list[PermitCommand] = []
        self.drill: MusterDrill | None = None
        self.wearable_events: list[WearableEvent] = []
        self.ppe: list[tuple[int, str, float, float]] = []  # person index, class, from_s, until_s
        self._index = {p.id: i for i, p in enumerate(site.people)}

    # -- what the stories leave behind ---------------------------------------------------------------------
    def mark(self, story: str, times: Mapping[str, float]) -> None:
        """Record ``times`` (simulation s) as milestones ``"<story>.<key>"``, in their order."""
        for k, v in times.items():
            self.milestones[f"{story}.{k}"] = v

    # -- people and places ---------------------------------------------------------------------------------
    def person(self, pid: str) -> int | None:
        """Index of person ``pid`` in ``site.people``, or None (and a warning) if the site has no such one."""
        i = self._index.get(pid)
        if i is None:
            log.warning(
                "scenario %s: person %s is not on site %s; that part is skipped",
                self.scenario,
                pid,
                self.site.id,
            )
        return i

    def zone_poly(self, zid: str) -> np.ndarray:
        """Zone ``zid``'s polygon: float64 [V, 2] site metres."""
        return np.asarray(next(z.polygon for z in self.site.zones if z.id == zid), dtype=float)

    def story_zone(self, zid: str, kind: str) -> str | None:
        """``zid`` if the walkways reach it, else the first reachable zone of ``kind``, else None."""
        net = self.network
        if zid in net.zone_access:
            return zid
        return next((z.id for z in self.site.zones if z.kind == kind and z.id in net.zone_access), None)

    def road_side(self, zid: str, back_m: float) -> tuple[list[Point], Point]:
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

    def place_at(self, p: Point) -> Place:
        """``p`` as a place reached from the nearest walkway node (for someone who starts there)."""
        node = int(np.argmin(np.hypot(*(self.network.nodes - np.asarray(p)).T)))
        return Place(node, (), (float(p[0]), float(p[1])))

    def pace(self) -> tuple[float, float]:
        """Pauses (lo, hi) of the stories' people at work, s, from the ``pace_pause_s`` timing parameter."""
        p = self.timing["pace_pause_s"]
        return max(p / 3.0, 1.0), max(p, 1.0)

    def _track(self, i: int, t0: float, t1: float, step_s: float) -> tuple[np.ndarray, np.ndarray]:
        ts = np.arange(t0, t1, step_s)
        return ts, np.array([self.itineraries[i].position(t) for t in ts])

    def crossings(self, i: int, poly: np.ndarray, t0: float, t1: float) -> tuple[float, float]:
        """First time inside and first time outside again of person ``i`` between t0 and t1 (0.01 s)."""
        ts, xy = self._track(i, t0, t1, 0.01)
        inside = points_in_polygon(xy, poly)
        idx = np.nonzero(inside)[0]
        if len(idx) == 0:
            return math.nan, math.nan
        after = np.nonzero(~inside[idx[0] :])[0]
        leave = ts[idx[0] + after[0]] if len(after) else math.nan
        return float(ts[idx[0]]), float(leave)

    def first_beyond(self, i: int, poly: np.ndarray, limit_m: float, t0: float, t1: float) -> float:
        """First time (0.05 s) in [t0, t1) person ``i`` is more than ``limit_m`` from ``poly``; NaN if never."""
        ts, xy = self._track(i, t0, t1, 0.05)
        far = ~points_in_polygon(xy, poly) & (distance_to_edges(xy, poly) > limit_m)
        return float(ts[np.argmax(far)]) if far.any() else math.nan

    # -- the permit office ---------------------------------------------------------------------------------
    def office(self, story: str) -> tuple[str, str] | None:
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

    def paperwork(
        self,
        permit: str,
        request: Mapping[str, object],
        office: tuple[str, str] | None,
        **kwargs,
    ) -> tuple[list[PermitCommand], dict[str, float]]:
        """:func:`~ingest.simulator.permits.paperwork` at this scenario's timing, by ``office`` (operator,
        supervisor); with no office the commands name nobody (the story then keeps only the times). A permit the
        site's ``jsa_required`` asks a JSA for carries one (prepared by the operator, reviewed by the supervisor);
        the watcher, if any, signs in at the work with the field-worker account of their tag."""
        operator, supervisor = office or ("", "")
        if self.needs_jsa(request) and request["type"] in JSA_BY_TYPE:
            kwargs.setdefault("jsa", {**JSA_BY_TYPE[str(request["type"])], "prepared_by": operator,
                                      "reviewed_by": supervisor})
        watcher = request.get("watcher")
        if watcher is not None and office is not None:
            account = next((u.id for u in self.site.users if u.role == "field_worker" and u.tag == watcher), None)
            if account is None:
                log.warning("permit %s: watcher %s has no field-worker account to sign in with; the engine will "
                            "refuse its activation", permit, watcher)
            kwargs.setdefault("watcher_user", account)
        return paperwork(
            permit, request, timing=self.timing, operator=operator, supervisor=supervisor, **kwargs
        )

    def needs_jsa(self, request: Mapping[str, object]) -> bool:
        """The site asks for a JSA before approving a permit of this request's type and grade."""
        return any(r.type == request.get("type") and (r.grades is None or request.get("grade") in r.grades)
                   for r in self.site.permit_settings.jsa_required)

    @staticmethod
    def close(t_s: float, office: tuple[str, str], permit: str, reason: str) -> PermitCommand:
        """The supervisor closes ``permit`` at ``t_s`` for ``reason``."""
        return PermitCommand(t_s, "permit_close", office[1], {"permit": permit, "reason": reason})


#: a scenario's story: scripts the plant on the stage it is given
Story = Callable[[Stage], None]
