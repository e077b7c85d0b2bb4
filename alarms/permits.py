"""Permits-to-work (GB 30871-2022's eight special works) and the checks that refuse or suspend them.

Lifecycle: ``requested -> approved -> active <-> suspended``, then ``closed`` (by a person) or ``expired`` (by the
clock); a permit that never started is ``cancelled``. Every change is attributed and journaled (``alarm_id``
``permit:<id>``). Refusals name their reason and are journaled too. Who acts matters, not only their role: the
approver is not the applicant, and only the permit's own watcher signs in at the work (``permit_signin``, from the
phone page: the watcher's tag within ``watcher_max_distance_m`` of the zone). The checks, each raising its alarm:

- at activation: every worker holds a valid certificate for the work type (missing or expired: refused and
  ``permit.certificate`` raised; expiring within ``certificate_warning_days``: allowed, low-priority warning);
  a fresh gas test where the type needs one; the watcher at the work and signed in there;
- at approval: a job safety analysis (JSA) where ``jsa_required`` asks for one; no incompatible permit
  overlapping in space and time (``incompatible`` pairs; refused and ``permit.conflict`` raised);
- while active, every clock tick: the watcher farther than ``watcher_max_distance_m`` from the permit zone or
  stationary for more than ``watcher_max_stationary_s`` (alarm and suspension); a worker outside the zone for
  more than ``worker_outside_grace_s``; a person not on the permit inside the zone; the gas test older than its
  validity (suspension); a gas detector inside the zone at an alarm level (suspension); the permit past its end
  with people still inside (expired, alarm while occupied).

What one command may carry (workers, polygon points, gas values, the length of reasons), how many permits are open
at once and how long finished ones are remembered are bounded (``MAX_*``, ``FINISHED_KEEP_S``), and the board is cut
down to fit the bus header (:func:`fit_board`): it goes to every console in one message.

All times are engine time; the module reads no clock and does no I/O.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from config import Site
from config.geometry import distance_to_polygon, polygons_overlap, self_intersection
from config.schema import PERMIT_GRADES, PERMIT_TYPES
from ingest.protocol.names import PERMIT_ROLES
from kernels import geofence

from .definitions import AlarmCatalog
from .journal import Journal
from .lifecycle import AlarmBook, AlarmDefinition, Refused

__all__ = ["Permit", "GasTest", "Jsa", "SignIn", "PermitBook", "TYPE_NAMES", "parse_jsa", "fit_board",
           "HISTORY_LEN", "BOARD_BUDGET_BYTES", "MAX_WORKERS", "MAX_POLYGON_POINTS", "MAX_GAS_VALUES",
           "MAX_TEXT_CHARS", "MAX_OPEN_PERMITS", "FINISHED_KEEP_S", "MAX_FINISHED"]

#: the latest events of a permit that its record carries (the journal keeps them all)
HISTORY_LEN = 12
#: the board's JSON at most this long (the bus header, which carries it, holds 64 KiB): the least urgent permits'
#: history, checks and JSA texts are left out first (``trimmed``); if that is not enough, the least urgent permits
#: themselves (``omitted``: how many, on every permit the board keeps)
BOARD_BUDGET_BYTES = 40_000
#: a JSA: at most this many hazards or measures, each at most this long
JSA_MAX_ITEMS, JSA_MAX_CHARS = 30, 300
#: what one permit may carry, so that a few permits can never fill the board by themselves: workers (tags), the
#: points of its own polygon, the gases of one gas test (names at most MAX_GAS_NAME_CHARS), and the characters of
#: a description or a reason (suspend, close, cancel, the engine's own suspensions, the last refusal)
MAX_WORKERS, MAX_POLYGON_POINTS, MAX_GAS_VALUES, MAX_GAS_NAME_CHARS, MAX_TEXT_CHARS = 50, 200, 20, 16, 500
#: requested, approved, active and suspended permits at once: a request beyond them is refused
MAX_OPEN_PERMITS = 500
#: a closed, cancelled or expired permit is forgotten this long after it finished, or sooner (the earliest
#: finished first) when more than MAX_FINISHED are held; the journal keeps its rows. An expired permit with people
#: still inside is kept until they have left (its alarm must be able to clear).
FINISHED_KEEP_S, MAX_FINISHED = 6 * 3600.0, 500
#: ids of forgotten permits remembered, so that one is not used again for another permit while it is remembered
FORGOTTEN_IDS = 10_000
FINISHED = frozenset({"closed", "expired", "cancelled"})
#: board colours, most urgent first: the board's order, and (backwards) the order in which it is cut down
BOARD_ORDER = {"red": 0, "amber": 1, "green": 2, "grey": 3}
#: the verb of each permit op in a role refusal ("role operator may not approve permits")
_VERBS = {"permit_signin": "sign in to", "permit_jsa": "attach a JSA to", "permit_gas_test": "gas test"}

TYPE_NAMES = {
    "hot_work": ("Hot work", "动火作业"),
    "confined_space": ("Confined space entry", "受限空间作业"),
    "blind_plate": ("Blind plate work", "盲板抽堵作业"),
    "working_at_height": ("Working at height", "高处作业"),
    "lifting": ("Lifting", "吊装作业"),
    "temporary_electricity": ("Temporary electricity", "临时用电作业"),
    "excavation": ("Excavation", "动土作业"),
    "road_closure": ("Road closure", "断路作业"),
}


@dataclass(frozen=True)
class GasTest:
    values: dict[str, float]  # e.g. {"LEL": 2.0, "O2": 20.8, "H2S": 0.0}; LEL in %LEL, O2 in %vol, toxic ppm
    ts_s: float
    by: str


@dataclass(frozen=True)
class Jsa:
    """A job safety analysis: the hazards of the job and their measures (plain sentences), who prepared and who
    reviewed it (names or user ids, two different people); attached by user ``by`` at ``ts_s``."""

    hazards: tuple[str, ...]
    measures: tuple[str, ...]
    prepared_by: str
    reviewed_by: str
    ts_s: float
    by: str

    def record(self) -> dict[str, Any]:
        return {"hazards": list(self.hazards), "measures": list(self.measures), "prepared_by": self.prepared_by,
                "reviewed_by": self.reviewed_by, "ts_s": self.ts_s, "by": self.by}


@dataclass(frozen=True)
class SignIn:
    """The watcher signed in at the work: user ``user`` (tag ``tag``) at ``ts_s``, ``distance_m`` from the zone."""

    user: str
    tag: str
    ts_s: float
    distance_m: float


def _lines(v: Any, what: str) -> tuple[str, ...] | str:
    """A JSA list: a list of texts or one text of lines; the reason when it is not one."""
    if isinstance(v, str):
        v = v.splitlines()
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        return f"the JSA's {what} must be a list of texts"
    items = tuple(x.strip() for x in v if x.strip())
    if not items:
        return f"a JSA needs at least one {what[:-1] if what.endswith('s') else what}"
    if len(items) > JSA_MAX_ITEMS or any(len(x) > JSA_MAX_CHARS for x in items):
        return f"the JSA's {what}: at most {JSA_MAX_ITEMS}, each at most {JSA_MAX_CHARS} characters"
    return items


def parse_jsa(doc: Any, user: str, ts_s: float) -> Jsa | str:
    """A JSA from a command's ``jsa`` object (``hazards``, ``measures``: lists of texts or texts of lines;
    ``prepared_by``, ``reviewed_by``: names); the reason when it is not a valid one."""
    if not isinstance(doc, dict):
        return "a JSA is an object with hazards, measures, prepared_by and reviewed_by"
    hazards, measures = _lines(doc.get("hazards"), "hazards"), _lines(doc.get("measures"), "measures")
    for got in (hazards, measures):
        if isinstance(got, str):
            return got
    who = [doc.get(k).strip() if isinstance(doc.get(k), str) else "" for k in ("prepared_by", "reviewed_by")]
    if not all(who) or any(len(w) > 64 for w in who):
        return "a JSA names who prepared it and who reviewed it (prepared_by, reviewed_by; at most 64 characters)"
    if who[0].casefold() == who[1].casefold():
        return "a JSA is reviewed by someone other than who prepared it"
    return Jsa(hazards, measures, who[0], who[1], ts_s, user)  # type: ignore[arg-type]


def _note(event: str, detail: dict[str, Any] | None) -> str:
    """One line of a permit's history for a journal row (English; the journal keeps the detail)."""
    d = detail or {}
    if event == "refused":
        return f"{d.get('action', '?')}: {d.get('reason', '')}"
    if event == "permit_gas_test":
        vals = ", ".join(f"{k} {v:g}" for k, v in d.get("values", {}).items())
        return f"{vals} ({'pass' if d.get('pass') else 'fail'})"
    if event == "permit_signin":
        return f"{d.get('tag')} at {d.get('distance_m', 0.0):.0f} m from the work"
    if event in ("permit_jsa", "permit_request") and isinstance(d.get("jsa"), dict):
        return f"JSA prepared by {d['jsa'].get('prepared_by')}, reviewed by {d['jsa'].get('reviewed_by')}"
    return str(d.get("reason", ""))


@dataclass
class Permit:
    id: str
    type: str
    grade: str | None
    zone_id: str | None
    polygon: list[tuple[float, float]]
    workers: list[str]  # tags
    watcher: str | None  # tag
    valid_from_s: float
    valid_to_s: float
    applicant: str
    description: str = ""
    state: str = "requested"
    approver: str | None = None
    gas_test: GasTest | None = None
    reason: str = ""  # why it is suspended / was closed
    changed_ts_s: float = math.nan
    activated_ts_s: float = math.nan
    outside_since: dict[str, float] = field(default_factory=dict)  # worker tag -> when last seen leaving
    jsa: Jsa | None = None
    signin: SignIn | None = None
    #: the latest journal rows of this permit: ts_s, event, actor, note
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_LEN))
    #: the engine's last refusal of a command on this permit: ts_s, op, actor, reason
    last_refusal: dict[str, Any] | None = None

    @property
    def live(self) -> bool:
        """Counts for overlaps and checks: approved, active or suspended."""
        return self.state in ("approved", "active", "suspended")

    def record(self, now: float, expiring_soon_s: float) -> dict[str, Any]:
        """The permit as the board shows it. ``board`` colour: red = work in progress, amber = suspended or
        ending within ``expiring_soon_s``, green = planned (requested / approved), grey = over (closed, expired,
        cancelled). With its JSA, the watcher's sign-in, its latest history and the last refusal; the polygon's
        points to the millimetre."""
        if self.state == "active":
            board = "amber" if self.valid_to_s - now <= expiring_soon_s else "red"
        elif self.state == "suspended":
            board = "amber"
        elif self.state in ("requested", "approved"):
            board = "green"
        else:
            board = "grey"
        en, zh = TYPE_NAMES[self.type]
        return {"id": self.id, "type": self.type, "type_name": {"en": en, "zh-CN": zh}, "grade": self.grade,
                "zone": self.zone_id, "polygon": [[round(x, 3), round(y, 3)] for x, y in self.polygon],
                "workers": list(self.workers),
                "watcher": self.watcher, "valid_from_s": self.valid_from_s, "valid_to_s": self.valid_to_s,
                "state": self.state, "board": board, "applicant": self.applicant, "approver": self.approver,
                "reason": self.reason, "description": self.description,
                "gas_test": None if self.gas_test is None else {"values": self.gas_test.values,
                                                                "ts_s": self.gas_test.ts_s, "by": self.gas_test.by},
                "jsa": None if self.jsa is None else self.jsa.record(),
                "signin": None if self.signin is None else {
                    "user": self.signin.user, "tag": self.signin.tag, "ts_s": self.signin.ts_s,
                    "distance_m": round(self.signin.distance_m, 1)},
                "history": list(self.history), "last_refusal": self.last_refusal}


def _intervals_overlap(a0: float, a1: float, b0: float, b1: float) -> bool:
    return a0 < b1 and b0 < a1


class PermitBook:
    """All permits of the site, their commands and their continuous checks."""

    def __init__(self, site: Site, book: AlarmBook, catalog: AlarmCatalog, journal: Journal | None) -> None:
        self.site = site
        self.s = site.permit_settings
        self.book, self.catalog, self.journal = book, catalog, journal
        self.permits: dict[str, Permit] = {}
        self.tz = ZoneInfo(site.timezone)
        self.person_of_tag = {p.tag: i for i, p in enumerate(site.people)}
        #: a field worker's account -> their tag (who may sign in as a permit's watcher)
        self.tag_of_user = {u.id: u.tag for u in site.users if u.tag}
        #: permit type -> the grades that need a JSA before approval (None: every grade)
        self.jsa_rules: dict[str, set[str] | None] = {}
        for rule in self.s.jsa_required:
            had = self.jsa_rules.get(rule.type, set())
            self.jsa_rules[rule.type] = None if had is None or rule.grades is None else had | set(rule.grades)
        self.zone_index = {z.id: k for k, z in enumerate(site.zones)}
        self.changed = False  # the board needs publishing
        #: ids of the permits forgotten (FINISHED_KEEP_S, MAX_FINISHED), the latest FORGOTTEN_IDS, oldest first
        self.forgotten: dict[str, None] = {}
        self.incompatible = {frozenset(p) for p in self.s.incompatible} | {
            frozenset((a,)) for a, b in self.s.incompatible if a == b}
        self.records: list[dict[str, Any]] = []
        #: where a tag is now, (x, y) in site metres or None if unknown; the engine sets it
        self.locate: Callable[[str], tuple[float, float] | None] = lambda tag: None
        for planned in site.permits:  # planned in the site file: they start requested
            tz = self.tz
            t0 = (planned.valid_from if planned.valid_from.tzinfo else planned.valid_from.replace(tzinfo=tz))
            t1 = (planned.valid_to if planned.valid_to.tzinfo else planned.valid_to.replace(tzinfo=tz))
            self.permits[planned.id] = Permit(
                planned.id, planned.type, planned.grade, planned.zone, list(planned.polygon or []),
                list(planned.workers), planned.watcher, t0.timestamp(), t1.timestamp(), planned.applicant,
                description=planned.description)
        self._gas_pos = np.array([d.position_m[:2] for d in site.gas_detectors], dtype=np.float64).reshape(-1, 2)
        #: permit id -> (the permit, its area float64 [M, 2] m, which gas detectors lie in it bool [K])
        self._areas: dict[str, tuple[Permit, np.ndarray, np.ndarray]] = {}

    # -- helpers ----------------------------------------------------------------------------------------
    def _journal(self, permit: Permit | str, event: str, seq: int, ts: float, actor: str, role: str,
                 detail: dict[str, Any] | None = None) -> None:
        if isinstance(permit, Permit):
            permit.history.append({"ts_s": ts, "event": event, "actor": actor, "note": _note(event, detail)[:400]})
            self.changed = True
        if self.journal is not None:
            pid = permit.id if isinstance(permit, Permit) else permit
            state = permit.state if isinstance(permit, Permit) else "unknown"
            self.journal.append(input_seq=seq, engine_ts_s=ts, event=event, alarm_id=f"permit:{pid}", state=state,
                                actor=actor, role=role, detail=detail)

    def _refuse(self, pid: str, op: str, reason: str, user: str, role: str, ts: float, seq: int) -> None:
        p = self.permits.get(pid)
        if p is not None:
            p.last_refusal = {"ts_s": ts, "op": op, "actor": user, "reason": reason[:MAX_TEXT_CHARS]}
        self._journal(p or pid, "refused", seq, ts, user, role, {"action": op, "reason": reason})
        raise Refused(reason)

    def needs_jsa(self, p: Permit) -> bool:
        """``jsa_required`` asks for a JSA before this permit is approved."""
        if p.type not in self.jsa_rules:
            return False
        grades = self.jsa_rules[p.type]
        return grades is None or p.grade in grades

    def _set_state(self, p: Permit, state: str, event: str, seq: int, ts: float, actor: str, role: str,
                   detail: dict[str, Any] | None = None) -> None:
        p.state = state
        p.changed_ts_s = ts
        self.changed = True
        self._journal(p, event, seq, ts, actor, role, detail)

    def _alarm(self, kind: str, key: str, p: Permit, priority: str, en: str, zh: str, person_tag: str | None = None
               ) -> AlarmDefinition:
        person = None
        if person_tag is not None and person_tag in self.person_of_tag:
            person = self.site.people[self.person_of_tag[person_tag]].id
        return self.catalog.define(id=f"permit.{kind}:{key}", condition=f"permit.{kind}", source=p.id,
                                   priority=priority, message_en=en, message_zh=zh, zone=p.zone_id, person=person,
                                   area=p.zone_id or p.id)

    def _pulse(self, d: AlarmDefinition, ts: float, seq: int, out: list) -> None:
        """An alarm for an event (a refusal): raised and cleared at once, it waits for acknowledgement."""
        for active in (True, False):
            rec = self.book.set_condition(d, active, ts, seq)
            if rec is not None:
                out.append(rec)

    def _cond(self, d: AlarmDefinition, active: bool, ts: float, seq: int, out: list,
              pos: tuple[float, float] | None = None) -> bool:
        rec = self.book.set_condition(d, active, ts, seq, pos)
        if rec is not None:
            out.append(rec)
        return active

    def zone_polygon(self, p: Permit) -> list[tuple[float, float]]:
        return p.polygon if p.polygon else list(self.site.zones[self.zone_index[p.zone_id]].polygon)

    def _area(self, p: Permit) -> tuple[np.ndarray, np.ndarray]:
        """The permit's area, float64 [M, 2] m, and which gas detectors lie in it, bool [K]. Both are fixed once
        the permit is requested, so they are worked out on its first check only."""
        hit = self._areas.get(p.id)
        if hit is None or hit[0] is not p:
            poly = np.asarray(self.zone_polygon(p), dtype=np.float64)
            hit = self._areas[p.id] = (p, poly, geofence.points_in_polygon(self._gas_pos, poly))
        return hit[1], hit[2]

    def _inside_mask(self, p: Permit, xyz: np.ndarray, membership) -> np.ndarray:
        """bool [P]: who is inside the permit's area now. A zone permit takes the fences' membership (with their
        hysteresis); an own polygon tests everyone's latest fix (``xyz`` float64 [P, 3] m) in one kernel call."""
        if p.zone_id is not None:
            return membership.inside[:, self.zone_index[p.zone_id]]
        return geofence.points_in_polygon(xyz, self._area(p)[0])

    # -- commands ---------------------------------------------------------------------------------------
    def command(self, op: str, req: dict[str, Any], user: str, role: str, ts: float, seq: int) -> dict[str, Any]:
        """Apply a permit command; returns the reply's extra fields, raises :class:`Refused`. Alarm records it
        raised on the way (also on the way to a refusal: a conflict, a certificate) are left in
        ``self.records`` for the engine to publish."""
        self.records = alarms = []
        pid = str(req.get("permit", ""))
        if role not in PERMIT_ROLES.get(op, ()):
            verb = _VERBS.get(op, op.removeprefix("permit_").replace("_", " "))
            self._refuse(pid, op, f"role {role} may not {verb} permits", user, role, ts, seq)
        if op == "permit_request":
            p = self._request(req, user, role, ts, seq)
            return {"permit": p.id, "state": p.state}
        p = self.permits.get(pid)
        if p is None:
            self._refuse(pid, op, f"no permit {pid!r}", user, role, ts, seq)
        getattr(self, f"_{op.removeprefix('permit_')}")(p, req, user, role, ts, seq, alarms)
        if op == "permit_signin" and p.signin is not None:  # the phone says how far from the work
            return {"permit": p.id, "state": p.state, "distance_m": round(p.signin.distance_m, 1)}
        return {"permit": p.id, "state": p.state}

    def _request(self, req: dict[str, Any], user: str, role: str, ts: float, seq: int) -> Permit:
        op = "permit_request"
        pid = str(req.get("permit", ""))

        def no(reason: str) -> None:
            self._refuse(pid, op, reason, user, role, ts, seq)

        if not pid or len(pid) > 64 or not pid.replace("-", "").replace("_", "").isalnum():
            no("a permit needs an id of letters, digits, - and _ (at most 64)")
        if pid in self.permits:
            no(f"permit {pid!r} exists")
        if pid in self.forgotten:
            no(f"permit {pid!r} existed (it is over): give the new permit another id")
        if sum(1 for q in self.permits.values() if q.state not in FINISHED) >= MAX_OPEN_PERMITS:
            no(f"the site has {MAX_OPEN_PERMITS} open permits: close or cancel some first")
        ptype = req.get("type")
        if ptype not in PERMIT_TYPES:
            no(f"unknown permit type {ptype!r} (one of {', '.join(PERMIT_TYPES)})")
        grade = req.get("grade")
        grades = PERMIT_GRADES.get(ptype)
        if grades is not None and grade not in grades:
            no(f"{ptype} needs a grade, one of {', '.join(grades)}")
        if grades is None and grade is not None:
            no(f"{ptype} has no grades")
        zone_id, polygon = req.get("zone"), req.get("polygon")
        if (zone_id is None) == (polygon is None):
            no("give either a zone id or a polygon")
        if zone_id is not None and zone_id not in self.zone_index:
            no(f"unknown zone {zone_id!r}")
        poly: list[tuple[float, float]] = []
        if polygon is not None:
            if isinstance(polygon, list) and len(polygon) > MAX_POLYGON_POINTS:
                no(f"a polygon has at most {MAX_POLYGON_POINTS} points (got {len(polygon)})")
            try:
                poly = [(float(x), float(y)) for x, y in polygon]
            except (TypeError, ValueError):
                no("polygon must be a list of [x, y] in metres")
            if len(poly) < 3 or not all(map(math.isfinite, (c for pt in poly for c in pt))):
                no("polygon needs at least 3 finite points")
            if self_intersection(poly) is not None:
                no("polygon intersects itself")
            x0, y0, x1, y1 = self.site.floor_plan.extent_m
            if not all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in poly):
                no("polygon is outside the site")
        workers = req.get("workers") or []
        if not isinstance(workers, list) or not workers:
            no("a permit needs at least one worker (tags)")
        if len(workers) > MAX_WORKERS:
            no(f"a permit has at most {MAX_WORKERS} workers (got {len(workers)}): split the work into permits")
        if not all(isinstance(w, str) for w in workers):
            no("workers are tags (texts)")
        unknown = [w for w in workers if w not in self.person_of_tag]
        if unknown:
            no(f"unknown tag(s) {', '.join(map(str, unknown))}")
        watcher = req.get("watcher")
        if watcher is not None and watcher not in self.person_of_tag:
            no(f"unknown watcher tag {watcher!r}")
        if watcher is None and ptype in self.s.watcher_required:
            no(f"{ptype} needs a watcher")
        if watcher is not None and watcher in workers:
            no("the watcher cannot be one of the workers")
        try:
            t0, t1 = float(req.get("valid_from_s")), float(req.get("valid_to_s"))
        except (TypeError, ValueError):
            no("valid_from_s and valid_to_s must be times (epoch seconds)")
        if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
            no("the validity window must end after it starts")
        if t1 - t0 > 7 * 86400:
            no("a permit may last at most 7 days")
        jsa = None
        if req.get("jsa") is not None:
            jsa = parse_jsa(req["jsa"], user, ts)
            if isinstance(jsa, str):
                no(jsa)
        p = Permit(pid, ptype, grade, zone_id, poly, [str(w) for w in workers], watcher, t0, t1, user,
                   description=str(req.get("description", ""))[:MAX_TEXT_CHARS], jsa=jsa)
        self.permits[pid] = p
        detail = {"type": ptype, "grade": grade, "zone": zone_id, "workers": p.workers, "watcher": watcher,
                  "valid_from_s": t0, "valid_to_s": t1}
        if jsa is not None:
            detail["jsa"] = jsa.record()
        self._set_state(p, "requested", "permit_request", seq, ts, user, role, detail)
        return p

    def _jsa(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_jsa"
        if p.state != "requested":
            self._refuse(p.id, op, f"permit is {p.state}: a JSA is attached before approval", user, role, ts, seq)
        jsa = parse_jsa(req.get("jsa", req), user, ts)
        if isinstance(jsa, str):
            self._refuse(p.id, op, jsa, user, role, ts, seq)
        p.jsa = jsa
        self._journal(p, "permit_jsa", seq, ts, user, role, {"jsa": jsa.record()})

    def _cancel(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_cancel"
        if p.state not in ("requested", "approved"):
            self._refuse(p.id, op, f"permit is {p.state}: only a requested or approved permit is cancelled (a "
                         "started one is closed)", user, role, ts, seq)
        if role == "operator" and user != p.applicant:
            self._refuse(p.id, op, f"{user} did not apply for permit {p.id}: its applicant or a supervisor cancels "
                         "it", user, role, ts, seq)
        reason = str(req.get("reason", "")).strip()[:MAX_TEXT_CHARS]
        if not reason:
            self._refuse(p.id, op, "a cancellation needs a reason", user, role, ts, seq)
        p.reason = reason
        self._set_state(p, "cancelled", "permit_cancel", seq, ts, user, role, {"reason": reason})

    def _signin(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_signin"
        if p.state not in ("requested", "approved", "active", "suspended"):
            self._refuse(p.id, op, f"permit is {p.state}: there is no work to watch", user, role, ts, seq)
        tag = self.tag_of_user.get(user)
        if p.watcher is None or tag != p.watcher:
            whose = f"tag {tag}" if tag else "no tag"
            self._refuse(p.id, op, f"{user} ({whose}) is not the watcher of permit {p.id}"
                         + (f" (the watcher is {p.watcher})" if p.watcher else " (it has no watcher)"),
                         user, role, ts, seq)
        problem = self._watcher_problem(p)
        if problem:
            self._refuse(p.id, op, problem, user, role, ts, seq)
        xy = self.locate(tag)
        dist = distance_to_polygon(xy, self.zone_polygon(p)) if xy is not None else math.nan
        p.signin = SignIn(user, tag, ts, float(dist))
        self._journal(p, "permit_signin", seq, ts, user, role, {"tag": tag, "distance_m": round(float(dist), 1)})

    def _jsa_problem(self, p: Permit) -> str | None:
        if p.jsa is not None or not self.needs_jsa(p):
            return None
        what = p.type if p.grade is None else f"{p.type} grade {p.grade}"
        return f"{what} needs a job safety analysis (JSA) before approval"

    def _conflict(self, p: Permit) -> Permit | None:
        """A live permit incompatible with ``p`` overlapping it in space and time (None: none)."""
        poly = self.zone_polygon(p)
        for q in self.permits.values():
            if q is p or not q.live:
                continue
            if frozenset((p.type, q.type)) not in self.incompatible:
                continue
            same_zone = p.zone_id is not None and p.zone_id == q.zone_id
            if not _intervals_overlap(p.valid_from_s, p.valid_to_s, q.valid_from_s, q.valid_to_s):
                continue
            if same_zone or polygons_overlap(poly, self.zone_polygon(q)):
                return q
        return None

    def _approve(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        if p.state != "requested":
            self._refuse(p.id, "permit_approve", f"permit is {p.state}: only a requested permit is approved", user,
                         role, ts, seq)
        if user == p.applicant:
            self._refuse(p.id, "permit_approve", f"{user} applied for permit {p.id}: another person approves it",
                         user, role, ts, seq)
        jsa = self._jsa_problem(p)
        if jsa:
            self._refuse(p.id, "permit_approve", jsa, user, role, ts, seq)
        q = self._conflict(p)
        if q is not None:
            d = self._alarm("conflict", f"{p.id}:{q.id}", p, "high",
                            f"Permit {p.id} ({p.type}) conflicts with {q.id} ({q.type}) in the same area",
                            f"作业许可 {p.id}（{TYPE_NAMES[p.type][1]}）与 {q.id}（{TYPE_NAMES[q.type][1]}）"
                            "在同一区域冲突")
            self._pulse(d, ts, seq, alarms)
            self._refuse(p.id, "permit_approve", f"incompatible with permit {q.id} ({q.type}) overlapping in "
                         "space and time", user, role, ts, seq)
        p.approver = user
        self._set_state(p, "approved", "permit_approve", seq, ts, user, role)

    def _certificate_findings(self, p: Permit, ts: float):
        """For each worker: (tag, person, the latest expiry of a certificate of the permit's type or None, what
        is wrong with it or None, expiring within ``certificate_warning_days``), on the site's date at ``ts``."""
        today = datetime.fromtimestamp(ts, self.tz).date()
        for tag in p.workers:
            person = self.site.people[self.person_of_tag[tag]]
            best = max((c.expires for c in person.certificates if c.type == p.type), default=None)
            what = None
            if best is None or best < today:
                what = "no certificate" if best is None else f"certificate expired on {best.isoformat()}"
            expiring = what is None and (best - today).days <= self.s.certificate_warning_days
            yield tag, person, best, what, expiring

    def _certificates(self, p: Permit, ts: float, seq: int, alarms: list) -> list[str]:
        """Problems that refuse activation; warnings raise their alarm but allow it."""
        problems = []
        for tag, person, best, what, expiring in self._certificate_findings(p, ts):
            if what is not None:
                problems.append(f"{tag} ({person.name}): {what} for {p.type}")
                d = self._alarm("certificate", f"{p.id}:{tag}", p, "high",
                                f"{person.name} ({tag}) has {what} for {TYPE_NAMES[p.type][0].lower()}: permit "
                                f"{p.id} refused",
                                f"{person.name}（{tag}）{TYPE_NAMES[p.type][1]}证书无效：作业许可 {p.id} 被拒绝", tag)
                self._pulse(d, ts, seq, alarms)
            elif expiring:
                d = self._alarm("certificate_expiring", f"{p.id}:{tag}", p, "low",
                                f"{person.name} ({tag}): {p.type} certificate expires on {best.isoformat()}",
                                f"{person.name}（{tag}）{TYPE_NAMES[p.type][1]}证书将于 {best.isoformat()} 到期", tag)
                self._pulse(d, ts, seq, alarms)
        return problems

    def _gas_test_problem(self, p: Permit, ts: float) -> str | None:
        if p.type not in self.s.gas_test_required:
            return None
        if p.gas_test is None:
            return f"{p.type} needs a gas test"
        age = ts - p.gas_test.ts_s
        if age > self.s.gas_test_validity_s:
            return f"the gas test is {age / 60:.0f} min old (valid {self.s.gas_test_validity_s / 60:.0f} min)"
        return None

    def _watcher_problem(self, p: Permit) -> str | None:
        if p.watcher is None:
            return None
        xy = self.locate(p.watcher)
        if xy is None:
            return f"watcher {p.watcher} is not located: the watcher must be at the work"
        dist = distance_to_polygon(xy, self.zone_polygon(p))
        if dist > self.s.watcher_max_distance_m:
            return f"watcher {p.watcher} is {dist:.0f} m from the work (at most {self.s.watcher_max_distance_m:.0f})"
        return None

    def _signin_problem(self, p: Permit) -> str | None:
        if p.watcher is None or (p.signin is not None and p.signin.tag == p.watcher):
            return None
        return f"watcher {p.watcher} has not signed in at the work (the permit's QR code)"

    def _activate(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_activate"
        if p.state != "approved":
            self._refuse(p.id, op, f"permit is {p.state}: only an approved permit is activated", user, role, ts, seq)
        if not p.valid_from_s <= ts < p.valid_to_s:
            self._refuse(p.id, op, "outside the permit's validity window", user, role, ts, seq)
        problems = self._certificates(p, ts, seq, alarms)
        if problems:
            self._refuse(p.id, op, "; ".join(problems), user, role, ts, seq)
        gas = self._gas_test_problem(p, ts)
        if gas:
            self._refuse(p.id, op, gas, user, role, ts, seq)
        watcher = self._watcher_problem(p) or self._signin_problem(p)
        if watcher:
            self._refuse(p.id, op, watcher, user, role, ts, seq)
        p.activated_ts_s = ts
        p.outside_since = {w: ts for w in p.workers}
        self._set_state(p, "active", "permit_activate", seq, ts, user, role)

    def _suspend(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        if p.state != "active":
            self._refuse(p.id, "permit_suspend", f"permit is {p.state}: only an active permit is suspended", user,
                         role, ts, seq)
        reason = str(req.get("reason", "")).strip()[:MAX_TEXT_CHARS]
        if not reason:
            self._refuse(p.id, "permit_suspend", "a suspension needs a reason", user, role, ts, seq)
        p.reason = reason
        self._set_state(p, "suspended", "permit_suspend", seq, ts, user, role, {"reason": reason})

    def _resume(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_resume"
        if p.state != "suspended":
            self._refuse(p.id, op, f"permit is {p.state}: only a suspended permit is resumed", user, role, ts, seq)
        if ts >= p.valid_to_s:
            self._refuse(p.id, op, "the permit's validity window is over", user, role, ts, seq)
        gas = self._gas_test_problem(p, ts)
        if gas:
            self._refuse(p.id, op, gas, user, role, ts, seq)
        for kind in ("watcher_away", "watcher_stationary", "gas_detector"):
            active = [a for a in self.book.alarms.values()
                      if a.definition.condition == f"permit.{kind}" and a.definition.source == p.id and a.active]
            if active:
                self._refuse(p.id, op, f"still abnormal: {active[0].definition.message_en}", user, role, ts, seq)
        p.reason = ""
        p.outside_since = {w: ts for w in p.workers}
        self._set_state(p, "active", "permit_resume", seq, ts, user, role)

    def _close(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        if p.state in ("closed", "expired", "cancelled"):
            self._refuse(p.id, "permit_close", f"permit is {p.state}", user, role, ts, seq)
        p.reason = str(req.get("reason", "")).strip()[:MAX_TEXT_CHARS]
        self._set_state(p, "closed", "permit_close", seq, ts, user, role, {"reason": p.reason})
        self._clear_all(p, ts, seq, alarms)

    def _gas_test(self, p: Permit, req, user, role, ts, seq, alarms) -> None:
        op = "permit_gas_test"
        values = req.get("values")
        if not isinstance(values, dict) or not values:
            self._refuse(p.id, op, "a gas test needs values, e.g. {\"LEL\": 2, \"O2\": 20.9}", user, role, ts, seq)
        if len(values) > MAX_GAS_VALUES or any(len(str(k)) > MAX_GAS_NAME_CHARS for k in values):
            self._refuse(p.id, op, f"a gas test has at most {MAX_GAS_VALUES} gases, each named in at most "
                         f"{MAX_GAS_NAME_CHARS} characters", user, role, ts, seq)
        try:
            vals = {str(k): float(v) for k, v in values.items()}
        except (TypeError, ValueError):
            self._refuse(p.id, op, "gas test values must be numbers", user, role, ts, seq)
        if not all(math.isfinite(v) and v >= 0 for v in vals.values()):
            self._refuse(p.id, op, "gas test values must be finite and not negative", user, role, ts, seq)
        lo, hi = self.s.gas_test_o2_range_pct
        fail = []
        if vals.get("LEL", 0.0) > self.s.gas_test_max_lel_pct:
            fail.append(f"LEL {vals['LEL']} % > {self.s.gas_test_max_lel_pct} %")
        if "O2" in vals and not lo <= vals["O2"] <= hi:
            fail.append(f"O2 {vals['O2']} % outside {lo}-{hi} %")
        if p.type in self.s.gas_test_required and "LEL" not in vals:
            fail.append("no LEL value")
        detail = {"values": vals, "pass": not fail}
        self._journal(p, "permit_gas_test", seq, ts, user, role, detail)
        if fail:
            raise Refused("gas test failed: " + "; ".join(fail))
        p.gas_test = GasTest(vals, ts, user)
        self.changed = True

    def _clear_all(self, p: Permit, ts: float, seq: int, out: list) -> None:
        """A permit that is over takes its continuous conditions with it (events stay until acknowledged)."""
        for a in list(self.book.alarms.values()):
            d = a.definition
            if d.source == p.id and d.condition in ("permit.watcher_away", "permit.watcher_stationary",
                                                    "permit.worker_outside", "permit.unauthorized",
                                                    "permit.gas_detector", "permit.gas_test_expired"):
                self._cond(d, False, ts, seq, out)

    # -- continuous checks (every clock tick) -----------------------------------------------------------
    def tick(self, now: float, seq: int, xyz: np.ndarray, fix_ts: np.ndarray, stationary_s: np.ndarray,
             membership, gas_level: np.ndarray) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        raised = self._raised_unauthorized()
        for p in self.permits.values():
            if p.state in ("active", "suspended") and now >= p.valid_to_s:
                self._set_state(p, "expired", "permit_expire", seq, now, "engine", "")
                self._clear_all(p, now, seq, out)
            if p.state == "expired":
                self._check_expired_occupied(p, now, seq, xyz, membership, out)
            if p.state in ("active", "suspended"):  # a suspended permit's conditions must be able to clear
                self._check_active(p, now, seq, xyz, fix_ts, stationary_s, membership, gas_level, out,
                                   raised.get(p.id, ()))
        self._forget_finished(now)
        return out

    def _forget_finished(self, now: float) -> None:
        """Forget closed, cancelled and expired permits :data:`FINISHED_KEEP_S` after they finished, and the
        earliest finished beyond :data:`MAX_FINISHED`, but not an expired one whose people are still inside. Their
        ids are remembered (the latest :data:`FORGOTTEN_IDS`) so that a new permit does not take one."""
        done = [p for p in self.permits.values() if p.state in FINISHED]
        if len(done) <= MAX_FINISHED and all(now - p.changed_ts_s <= FINISHED_KEEP_S for p in done):
            return  # the common case: nothing to forget this tick
        if any(p.state == "expired" for p in done):
            occupied = {a.definition.source for a in self.book.alarms.values()
                        if a.condition and a.definition.condition == "permit.expired_occupied"}
            done = [p for p in done if p.id not in occupied]
        done.sort(key=lambda p: (p.changed_ts_s, p.id))
        extra = len(done) - MAX_FINISHED
        gone = [p for k, p in enumerate(done) if k < extra or now - p.changed_ts_s > FINISHED_KEEP_S]
        for p in gone:
            del self.permits[p.id]
            self._areas.pop(p.id, None)
            self.forgotten[p.id] = None
        while len(self.forgotten) > FORGOTTEN_IDS:
            del self.forgotten[next(iter(self.forgotten))]
        if gone:
            self.changed = True

    def _raised_unauthorized(self) -> dict[str, list[AlarmDefinition]]:
        """Active ``permit.unauthorized`` conditions by permit id: one pass over the alarm book per tick (not
        one per permit), read from the book so a restored engine clears what its predecessor raised."""
        raised: dict[str, list[AlarmDefinition]] = {}
        for a in self.book.alarms.values():
            if a.condition and a.definition.condition == "permit.unauthorized":
                raised.setdefault(a.definition.source, []).append(a.definition)
        return raised

    def _check_expired_occupied(self, p, now, seq, xyz, membership, out) -> None:
        inside = int(np.count_nonzero(self._inside_mask(p, xyz, membership)))
        d = self._alarm("expired_occupied", p.id, p, "high",
                        f"Permit {p.id} expired with {inside} people still inside",
                        f"作业许可 {p.id} 已过期，区域内仍有人员", None)
        self._cond(d, inside > 0, now, seq, out)

    def _suspend_by_engine(self, p: Permit, reason: str, now: float, seq: int) -> None:
        p.reason = reason = reason[:MAX_TEXT_CHARS]  # many detectors at once make a long sentence
        self._set_state(p, "suspended", "permit_suspend", seq, now, "engine", "", {"reason": reason})

    def _check_active(self, p, now, seq, xyz, fix_ts, stationary_s, membership, gas_level, out,
                      raised_unauthorized) -> None:
        s = self.s
        poly, gas_inside = self._area(p)
        inside = self._inside_mask(p, xyz, membership)
        suspend: list[str] = []
        if p.watcher is not None:
            w = self.person_of_tag[p.watcher]
            xy = xyz[w]
            dist = float(geofence.distance_to_polygon(xyz[w : w + 1], poly)[0])  # inf when not located
            d = self._alarm("watcher_away", p.id, p, "high",
                            f"Watcher {p.watcher} of permit {p.id} is more than {s.watcher_max_distance_m:.0f} m "
                            "from the work",
                            f"作业许可 {p.id} 的监护人 {p.watcher} 离开作业点超过 {s.watcher_max_distance_m:.0f} 米",
                            p.watcher)
            if self._cond(d, dist > s.watcher_max_distance_m, now, seq, out,
                          (float(xy[0]), float(xy[1])) if np.isfinite(xy[0]) else None):
                suspend.append(f"watcher {p.watcher} is {dist:.0f} m away")
            st = stationary_s[w]
            still_for = st + (now - fix_ts[w]) if np.isfinite(st) else math.nan
            d = self._alarm("watcher_stationary", p.id, p, "high",
                            f"Watcher {p.watcher} of permit {p.id} has not moved for over "
                            f"{s.watcher_max_stationary_s / 60:.0f} min",
                            f"作业许可 {p.id} 的监护人 {p.watcher} 超过 {s.watcher_max_stationary_s / 60:.0f} 分钟未移动",
                            p.watcher)
            if self._cond(d, bool(still_for > s.watcher_max_stationary_s), now, seq, out):
                suspend.append(f"watcher {p.watcher} has not moved for {still_for / 60:.1f} min")
        for tag in p.workers:
            if inside[self.person_of_tag[tag]]:
                p.outside_since.pop(tag, None)
                outside_for = 0.0
            else:
                outside_for = now - p.outside_since.setdefault(tag, now)
            d = self._alarm("worker_outside", f"{p.id}:{tag}", p, "medium",
                            f"Worker {tag} of permit {p.id} is outside the permit zone",
                            f"作业许可 {p.id} 的作业人员 {tag} 不在作业区域内", tag)
            self._cond(d, outside_for > s.worker_outside_grace_s, now, seq, out)
        allowed = set(p.workers) | ({p.watcher} if p.watcher else set())
        inside_now = set()
        for i in np.nonzero(inside)[0].tolist():
            tag = self.site.people[i].tag
            if tag in allowed:
                continue
            inside_now.add(tag)
            d = self._alarm("unauthorized", f"{p.id}:{tag}", p, "high",
                            f"{self.site.people[i].name} ({tag}) is inside permit {p.id}'s zone without being on it",
                            f"{self.site.people[i].name}（{tag}）未列入作业许可 {p.id} 却进入作业区域", tag)
            self._cond(d, True, now, seq, out, (float(xyz[i, 0]), float(xyz[i, 1])))
        for dd in raised_unauthorized:
            if dd.id.rsplit(":", 1)[1] not in inside_now:
                self._cond(dd, False, now, seq, out)
        gas = self._gas_test_problem(p, now)
        d = self._alarm("gas_test_expired", p.id, p, "high", f"Permit {p.id}: {gas or 'gas test'}; work suspended",
                        f"作业许可 {p.id} 的气体检测已过期，作业暂停")
        if self._cond(d, gas is not None, now, seq, out):
            suspend.append(gas or "")
        for k in np.nonzero(gas_inside)[0].tolist():
            det = self.site.gas_detectors[k]
            d = self._alarm("gas_detector", f"{p.id}:{det.id}", p, "critical",
                            f"Gas detector {det.id} in permit {p.id}'s zone at alarm level: work suspended",
                            f"作业许可 {p.id} 区域内的气体探测器 {det.id} 报警：作业暂停")
            if self._cond(d, bool(gas_level[k] > 0), now, seq, out):
                suspend.append(f"gas detector {det.id} at alarm level {int(gas_level[k])}")
        if suspend and p.state == "active":
            self._suspend_by_engine(p, "; ".join(suspend), now, seq)

    # -- views ------------------------------------------------------------------------------------------
    def checks(self, p: Permit, now: float) -> list[dict[str, Any]]:
        """What approval and activation of a permit not yet started would say now: one entry per check that applies
        (``check``: jsa, conflict, window, certificates, gas_test, watcher, signin), ``ok``, and ``reason``: the
        sentence the engine would refuse with ("" when it passes). Nothing is raised or journaled."""
        if p.state not in ("requested", "approved"):
            return []
        q = self._conflict(p) if p.state == "requested" else None
        found = {
            "jsa": self._jsa_problem(p) if self.needs_jsa(p) else False,
            "conflict": False if p.state != "requested" else None if q is None else (
                f"incompatible with permit {q.id} ({q.type}) overlapping in space and time"),
            "window": None if p.valid_from_s <= now < p.valid_to_s else "outside the permit's validity window",
            "certificates": "; ".join(self.certificate_problems(p, now)) or None,
            "gas_test": self._gas_test_problem(p, now) if p.type in self.s.gas_test_required else False,
            "watcher": self._watcher_problem(p) if p.watcher else False,
            "signin": self._signin_problem(p) if p.watcher else False,
        }
        return [{"check": k, "ok": not v, "reason": v or ""} for k, v in found.items() if v is not False]

    def certificate_problems(self, p: Permit, ts: float) -> list[str]:
        """The refusal sentence for each worker without a valid certificate of the permit's type at ``ts``."""
        return [f"{tag} ({person.name}): {what} for {p.type}"
                for tag, person, _, what, _ in self._certificate_findings(p, ts) if what is not None]

    def certificates(self, p: Permit, ts: float) -> list[dict[str, Any]]:
        """Each worker's certificate of the permit's type as activation would judge it at ``ts``: ``tag``,
        ``type``, ``expires`` (ISO date of the latest one, None without one) and ``status``: ``ok``, ``expiring``
        (within ``certificate_warning_days``: allowed, with a warning), ``expired`` or ``missing`` (refused)."""
        out = []
        for tag, _, best, what, expiring in self._certificate_findings(p, ts):
            status = "missing" if best is None else "expired" if what is not None else (
                "expiring" if expiring else "ok")
            out.append({"tag": tag, "type": p.type, "expires": None if best is None else best.isoformat(),
                        "status": status})
        return out

    def record(self, p: Permit, now: float) -> dict[str, Any]:
        """The permit as the board carries it: :meth:`Permit.record` with the engine's verdicts at ``now``: its
        ``checks``, ``jsa_required`` (``jsa_required`` of the site asks a JSA of it before approval) and each
        worker's ``certificates``."""
        rec = p.record(now, self.s.expiring_soon_s)
        rec["checks"] = self.checks(p, now)
        rec["jsa_required"] = self.needs_jsa(p)
        rec["certificates"] = self.certificates(p, now)
        return rec

    def board(self, now: float) -> list[dict[str, Any]]:
        """Permits that matter now (not closed / expired / cancelled for more than an hour), most urgent first,
        each as :meth:`record` has it, cut down by :func:`fit_board` to :data:`BOARD_BUDGET_BYTES` of JSON."""
        recs = [self.record(p, now) for p in self.permits.values()
                if p.state not in FINISHED or now - p.changed_ts_s < 3600]
        recs.sort(key=lambda r: (BOARD_ORDER[r["board"]], r["valid_to_s"], r["id"]))
        return fit_board(recs, BOARD_BUDGET_BYTES)

    def has_live_permit(self, zone_id: str) -> bool:
        return any(p.zone_id == zone_id and p.state in ("active", "suspended") for p in self.permits.values())

    def watched(self, zone_id: str, tag: str) -> bool:
        """An active permit on this zone lists this person as a worker and has a watcher at the work: the
        person is not alone (the confined-space rule: an entrant inside, the watcher at the opening)."""
        return any(p.state == "active" and p.zone_id == zone_id and tag in p.workers and p.watcher is not None
                   for p in self.permits.values())

    def covers(self, zone_id: str, tag: str) -> bool:
        """An active permit on this zone lists this person (suppression by design of zone alarms)."""
        return any(p.state == "active" and p.zone_id == zone_id and (tag in p.workers or tag == p.watcher)
                   for p in self.permits.values())


def _json_len(rec: dict[str, Any]) -> int:
    return len(json.dumps(rec, default=str))


def _trimmed(rec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``rec`` without its history, checks and JSA texts."""
    jsa = rec.get("jsa")
    return {**rec, "history": [], "checks": [], "trimmed": True,
            "jsa": None if jsa is None else {**jsa, "hazards": [], "measures": []}}


def fit_board(recs: list[dict[str, Any]], budget_bytes: int) -> list[dict[str, Any]]:
    """The board ``recs`` (most urgent first) cut down to at most ``budget_bytes`` of JSON (``json.dumps``, whose
    separators are wider than the bus header's). First the least urgent permits lose their history, checks and
    JSA texts (``trimmed``: true), as many as needed. If even then it is too long, the least urgent permits are left
    off the board and every permit it keeps says how many were (``omitted``: n): a permit missing is worse than one
    shown without its details, so the room that leaves gives the most urgent permits their details back."""
    full = [_json_len(r) for r in recs]
    total = sum(full) + 2 * len(recs)  # "[", "]" and a ", " between records: at most 2 bytes a record
    out, sizes = list(recs), list(full)
    for i in range(len(recs) - 1, -1, -1):
        if total <= budget_bytes:
            return out
        out[i] = _trimmed(recs[i])
        small = _json_len(out[i])
        total, sizes[i] = total + small - sizes[i], small

    def marks(kept: int) -> int:  # ', "omitted": n' on each record kept
        return kept * len(f', "omitted": {len(recs) - kept}') if kept < len(recs) else 0

    kept = len(recs)
    while kept and total + marks(kept) > budget_bytes:
        kept -= 1
        total -= sizes[kept] + 2
    for i in range(kept):  # the most urgent first, as long as the room lasts
        grow = full[i] - sizes[i]
        if total + grow + marks(kept) > budget_bytes:
            break
        out[i], total = recs[i], total + grow
    if kept < len(recs):
        for rec in out[:kept]:
            rec["omitted"] = len(recs) - kept
    return out[:kept]
