"""The records that cross the bus from the engine to the consoles, and their parse functions.

Each record is a frozen dataclass built by a ``from_wire`` classmethod from the JSON the engine publishes
(``alarm.delta``, ``alarm.notify``, ``alarm.flood``, ``permit.board``, ``muster.status`` and the snapshot reply;
docs/protocol.md, "Engine -> consoles"). A field that is missing or of the wrong type becomes its neutral value
(NaN, 0, None) or, for the fields a record cannot do without, a ValueError: a console never shows a guess.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from .names import ALARM_STATES, OFF_LIST_STATES, PERMIT_BOARDS, PRIORITIES, UNACK_STATES

__all__ = ["float_or_nan", "AlarmRecord", "AlarmCounts", "alarm_counts", "ShelveInfo", "OutOfServiceInfo", "Notification", "FloodState", "PermitInfo",
           "PermitBoard", "MusterPoint", "MissingPerson", "MusterStatus"]


def _finite_or_nan(v: Any, what: str) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{what} is not a number: {v!r}")  # noqa: TRY004 - bad engine data, one error kind
    return float(v)


def _count_or_zero(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def _text_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def _message(v: Any) -> Mapping[str, str]:
    if not isinstance(v, dict):
        return MappingProxyType({})
    return MappingProxyType({k: t for k, t in v.items() if isinstance(k, str) and isinstance(t, str)})


# The shelve / out-of-service annotations are read leniently: a malformed annotation must never hide the alarm
# it belongs to, so a wrong field shows as unknown (NaN time, empty text) instead of refusing the record.
@dataclass(frozen=True)
class ShelveInfo:
    """Who shelved an alarm, why, and until when (engine seconds since the epoch)."""

    until_ts_s: float
    by: str | None
    reason: str

    @classmethod
    def from_json(cls, d: Any) -> ShelveInfo | None:
        if not isinstance(d, dict):
            return None
        until = d.get("until_ts_s")
        ok = isinstance(until, (int, float)) and not isinstance(until, bool)
        return cls(
            until_ts_s=float(until) if ok else math.nan,
            by=_text_or_none(d.get("by")),
            reason=_text_or_none(d.get("reason")) or "",
        )


@dataclass(frozen=True)
class OutOfServiceInfo:
    """Who took an alarm out of service and why."""

    by: str | None
    reason: str

    @classmethod
    def from_json(cls, d: Any) -> OutOfServiceInfo | None:
        if not isinstance(d, dict):
            return None
        return cls(by=_text_or_none(d.get("by")), reason=_text_or_none(d.get("reason")) or "")


@dataclass(frozen=True)
class Notification:
    """One escalation step the engine announced on ``alarm.notify``: tell the people of ``notify_role``.

    ``number`` counts the notifications this link took in (1, 2, ...): a session that saw up to ``n`` knows that
    any with a higher number is new. ``ts_s`` is engine time.
    """

    number: int
    alarm: str
    notify_role: str
    step: int
    priority: str
    ts_s: float
    message: Mapping[str, str]

    @classmethod
    def from_meta(cls, number: int, meta: Mapping[str, Any]) -> Notification:
        """Check one ``alarm.notify`` meta; ``ValueError`` says what is wrong."""
        alarm, role = meta.get("alarm"), meta.get("notify_role")
        if not isinstance(alarm, str) or not alarm:
            raise ValueError("alarm.notify without an alarm id")
        if not isinstance(role, str) or not role:
            raise ValueError(f"alarm.notify for {alarm} without a notify_role")
        priority = meta.get("priority")
        ts = meta.get("ts_s")
        return cls(
            number=number,
            alarm=alarm,
            notify_role=role,
            step=_count_or_zero(meta.get("step")),
            priority=priority if priority in PRIORITIES else "high",
            ts_s=float(ts) if isinstance(ts, (int, float)) and not isinstance(ts, bool) else math.nan,
            message=_message(meta.get("message")),
        )

    def text(self, lang: str) -> str:
        """The message in ``lang``, falling back to English, then to the alarm id."""
        key = "zh-CN" if lang.lower().startswith("zh") else "en"
        return self.message.get(key) or self.message.get("en") or self.alarm


@dataclass(frozen=True)
class FloodState:
    """The engine's alarm-flood state of one operator position (``alarm.flood``). Times are engine seconds.

    ``first_out`` is the id of the alarm that started the flood (None when unknown); ``count_10min`` counts the
    alarms raised in the last 10 minutes at that position.
    """

    position: str
    flood: bool
    since_ts_s: float
    first_out: str | None
    count_10min: int

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> FloodState:
        """Check one ``alarm.flood`` meta; ``ValueError`` says what is wrong."""
        flood = meta.get("flood")
        if not isinstance(flood, bool):
            raise ValueError(f"alarm.flood without a boolean 'flood' (got {flood!r:.40})")
        since = meta.get("since_ts_s")
        position = meta.get("position")
        return cls(
            position=position if isinstance(position, str) and position else "main",
            flood=flood,
            since_ts_s=float(since)
            if isinstance(since, (int, float)) and not isinstance(since, bool)
            else math.nan,
            first_out=_text_or_none(meta.get("first_out")) or None,
            count_10min=_count_or_zero(meta.get("count_10min")),
        )


def float_or_nan(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _texts(v: Any) -> Mapping[str, str]:
    """A ``{language: text}`` object (type names, muster point names), leniently: bad entries are left out."""
    return _message(v)


def _text_in(texts: Mapping[str, str], lang: str, fallback: str) -> str:
    key = "zh-CN" if lang.lower().startswith("zh") else "en"
    return texts.get(key) or texts.get("en") or fallback


def _object_or_none(v: Any) -> Mapping[str, Any] | None:
    return MappingProxyType(dict(v)) if isinstance(v, dict) else None


def _objects(v: Any) -> tuple[Mapping[str, Any], ...]:
    return tuple(MappingProxyType(dict(x)) for x in v if isinstance(x, dict)) if isinstance(v, list) else ()


def _xy_list(v: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(v, list):
        return ()
    out = []
    for p in v:
        if isinstance(p, (list, tuple)) and len(p) >= 2:
            x, y = float_or_nan(p[0]), float_or_nan(p[1])
            if math.isfinite(x) and math.isfinite(y):
                out.append((x, y))
    return tuple(out)




# Permits and the muster are read leniently like the shelve annotations: a permit with a malformed field is
# still shown (the field as unknown), because a permit missing from the board is worse than one shown badly.
@dataclass(frozen=True)
class PermitInfo:
    """One permit-to-work as the engine's board publishes it (``permit.board``). Times are engine seconds.

    ``zone`` is a zone id of the site, or None when the permit has its own ``polygon`` (site metres);
    ``workers`` and ``watcher`` are tags; ``board`` is one of :data:`PERMIT_BOARDS`. The details, as the engine
    sends them (docs/protocol.md, "Permits"; None or empty when absent or malformed): ``gas_test`` (values,
    ts_s, by), ``jsa`` (hazards, measures, prepared_by, reviewed_by, ts_s, by), ``signin`` (user, tag, ts_s,
    distance_m), ``history`` (the latest events: ts_s, event, actor, note), ``checks`` (check, ok, reason: what
    approval and activation would say now), ``last_refusal`` (ts_s, op, actor, reason); ``trimmed``: the engine
    left the history, checks and JSA texts out to keep the board small. The engine's verdicts, so that a console
    never judges by rules of its own: ``jsa_required`` (the site asks a JSA of this permit before approval) and
    ``certificates`` (each worker's certificate of the permit's type: tag, type, expires (ISO date or None),
    status ``ok`` / ``expiring`` / ``expired`` / ``missing``). ``omitted``: how many permits, the least urgent,
    the engine left off this board to keep it within the bus header (0: none).
    """

    id: str
    type: str
    type_name: Mapping[str, str]
    grade: str | None
    zone: str | None
    polygon: tuple[tuple[float, float], ...]
    workers: tuple[str, ...]
    watcher: str | None
    valid_from_s: float
    valid_to_s: float
    state: str
    board: str
    applicant: str | None = None
    approver: str | None = None
    reason: str = ""
    description: str = ""
    gas_test: Mapping[str, Any] | None = None
    jsa: Mapping[str, Any] | None = None
    signin: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    checks: tuple[Mapping[str, Any], ...] = ()
    last_refusal: Mapping[str, Any] | None = None
    trimmed: bool = False
    jsa_required: bool = False
    certificates: tuple[Mapping[str, Any], ...] = ()
    omitted: int = 0

    @classmethod
    def from_json(cls, d: Any) -> PermitInfo:
        """Check one board entry; ``ValueError`` when it has no id (it could not be named on the wall)."""
        if not isinstance(d, dict) or not isinstance(d.get("id"), str) or not d["id"]:
            raise ValueError(f"permit without an id: {d!r:.80}")
        board = d.get("board")
        grade = d.get("grade")
        workers = d.get("workers")
        return cls(
            id=d["id"],
            type=_text_or_none(d.get("type")) or "",
            type_name=_texts(d.get("type_name")),
            grade=str(grade) if isinstance(grade, (str, int)) and not isinstance(grade, bool) else None,
            zone=_text_or_none(d.get("zone")) or None,
            polygon=_xy_list(d.get("polygon")),
            workers=tuple(w for w in workers if isinstance(w, str)) if isinstance(workers, list) else (),
            watcher=_text_or_none(d.get("watcher")) or None,
            valid_from_s=float_or_nan(d.get("valid_from_s")),
            valid_to_s=float_or_nan(d.get("valid_to_s")),
            state=_text_or_none(d.get("state")) or "unknown",
            # an unknown colour is shown as work in progress: the safe reading of a board we do not understand
            board=board if board in PERMIT_BOARDS else "red",
            applicant=_text_or_none(d.get("applicant")),
            approver=_text_or_none(d.get("approver")),
            reason=_text_or_none(d.get("reason")) or "",
            description=_text_or_none(d.get("description")) or "",
            gas_test=_object_or_none(d.get("gas_test")),
            jsa=_object_or_none(d.get("jsa")),
            signin=_object_or_none(d.get("signin")),
            history=_objects(d.get("history")),
            checks=_objects(d.get("checks")),
            last_refusal=_object_or_none(d.get("last_refusal")),
            trimmed=d.get("trimmed") is True,
            jsa_required=d.get("jsa_required") is True,
            certificates=_objects(d.get("certificates")),
            omitted=_count_or_zero(d.get("omitted")),
        )

    def type_text(self, lang: str) -> str:
        """The permit type in ``lang`` (English fallback, then the type id)."""
        return _text_in(self.type_name, lang, self.type or "?")


@dataclass(frozen=True)
class PermitBoard:
    """The engine's permit board: the permits that matter now, in the engine's order (most urgent first).

    ``engine_ts_s`` is the engine time of the board; ``version`` grows with every board the link takes in.
    """

    permits: tuple[PermitInfo, ...]
    engine_ts_s: float
    version: int

    @property
    def omitted(self) -> int:
        """How many permits the engine left off this board (each permit it kept says so; 0: none)."""
        return max((p.omitted for p in self.permits), default=0)


@dataclass(frozen=True)
class MusterPoint:
    """One muster point during an emergency: its zone, its name, how many people are inside (and who)."""

    zone: str
    name: Mapping[str, str]
    count: int
    people: tuple[str, ...]

    def name_text(self, lang: str) -> str:
        return _text_in(self.name, lang, self.zone)


@dataclass(frozen=True)
class MissingPerson:
    """Someone on the muster roster who has not reached a muster point: last known position (site metres, None
    if never located), the age of that fix in seconds at the status's engine time (NaN if unknown), the zones
    the person is in."""

    person: str
    tag: str
    name: str
    position_m: tuple[float, float, float] | None
    fix_age_s: float
    zones: tuple[str, ...]


@dataclass(frozen=True)
class MusterStatus:
    """The emergency muster as the engine last published it (``muster.status``). Times are engine seconds.

    ``active`` False: no emergency declared (the other fields are empty). ``area`` is ``"all"`` or the
    declared zone ids; ``roster`` counts the people to account for, ``mustered`` those at a muster point,
    ``missing_count`` the others (``missing`` lists them); ``version`` grows with every status taken in.
    """

    active: bool
    engine_ts_s: float
    version: int = 0
    declared_ts_s: float = math.nan
    declared_by: str = ""
    area: str | tuple[str, ...] = "all"
    elapsed_s: float = math.nan
    roster: int = 0
    mustered: int = 0
    missing_count: int = 0
    points: tuple[MusterPoint, ...] = ()
    missing: tuple[MissingPerson, ...] = ()

    @classmethod
    def from_meta(cls, meta: Any, version: int = 0) -> MusterStatus:
        """Check one ``muster.status`` meta (or a snapshot's ``muster``); ``ValueError`` says what is wrong."""
        if not isinstance(meta, Mapping):
            raise ValueError(f"muster status is not an object: {meta!r:.80}")  # noqa: TRY004 - one error kind
        active = meta.get("active")
        if not isinstance(active, bool):
            raise ValueError(f"muster status without a boolean 'active' (got {active!r:.40})")
        ts = float_or_nan(meta.get("engine_ts_s"))
        if not active:
            return cls(active=False, engine_ts_s=ts, version=version)
        counts = meta.get("counts") if isinstance(meta.get("counts"), Mapping) else {}
        area = meta.get("area")
        points = []
        for p in meta.get("muster_points") or ():
            if isinstance(p, Mapping) and isinstance(p.get("zone"), str):
                people = p.get("people")
                points.append(
                    MusterPoint(
                        zone=p["zone"],
                        name=_texts(p.get("name")),
                        count=_count_or_zero(p.get("count")),
                        people=tuple(x for x in people if isinstance(x, str))
                        if isinstance(people, list)
                        else (),
                    )
                )
        missing = []
        for m in meta.get("missing") or ():
            if not isinstance(m, Mapping) or not isinstance(m.get("person"), str):
                continue
            pos = m.get("position_m")
            position = None
            if isinstance(pos, (list, tuple)) and len(pos) >= 2:
                xyz = [float_or_nan(v) for v in (*pos[:3], *([0.0] * (3 - len(pos[:3]))))]
                if math.isfinite(xyz[0]) and math.isfinite(xyz[1]):
                    position = (xyz[0], xyz[1], xyz[2])
            zones = m.get("zones")
            missing.append(
                MissingPerson(
                    person=m["person"],
                    tag=_text_or_none(m.get("tag")) or "",
                    name=_text_or_none(m.get("name")) or "",
                    position_m=position,
                    fix_age_s=float_or_nan(m.get("fix_age_s")),
                    zones=tuple(z for z in zones if isinstance(z, str)) if isinstance(zones, list) else (),
                )
            )
        return cls(
            active=True,
            engine_ts_s=ts,
            version=version,
            declared_ts_s=float_or_nan(meta.get("declared_ts_s")),
            declared_by=_text_or_none(meta.get("declared_by")) or "",
            area=tuple(a for a in area if isinstance(a, str)) if isinstance(area, list) else "all",
            elapsed_s=float_or_nan(meta.get("elapsed_s")),
            roster=_count_or_zero(counts.get("roster")),
            mustered=_count_or_zero(counts.get("mustered")),
            missing_count=_count_or_zero(counts.get("missing")) or len(missing),
            points=tuple(points),
            missing=tuple(missing),
        )

    def elapsed_at(self, now_s: float | None) -> float:
        """Seconds since the declaration at engine time ``now_s`` (the published ``elapsed_s`` when unknown)."""
        if now_s is not None and math.isfinite(now_s) and math.isfinite(self.declared_ts_s):
            return max(0.0, now_s - self.declared_ts_s)
        return self.elapsed_s


@dataclass(frozen=True)
class AlarmRecord:
    """One alarm as the engine publishes it (see the ``alarm.delta`` topic). Times are engine seconds."""

    id: str
    condition: str
    source: str
    zone: str | None
    person: str | None
    priority: str
    state: str
    message: Mapping[str, str]
    activated_ts_s: float
    changed_ts_s: float
    position_m: tuple[float, float] | None
    condition_active: bool | None = (
        None  # the record's ``active`` flag (None when the engine did not send it)
    )
    area: str | None = None
    acked_by: str | None = None
    acked: bool | None = None  # the record's ``acked`` flag (None when the engine did not send it)
    shelved: ShelveInfo | None = None
    out_of_service: OutOfServiceInfo | None = None
    escalation_step: int = 0  # escalation steps taken since the activation
    chattering: bool = False

    @classmethod
    def from_json(cls, d: Any) -> AlarmRecord:
        """Check and convert one JSON record; raise ``ValueError`` saying what is wrong."""
        if not isinstance(d, dict):
            raise ValueError(f"alarm record is not an object: {d!r:.80}")  # noqa: TRY004 - see from_json
        for key in ("id", "condition", "source", "priority", "state"):
            if not isinstance(d.get(key), str) or not d.get(key):
                raise ValueError(f"alarm record field {key!r} missing or not a string")
        if d["priority"] not in PRIORITIES:
            raise ValueError(f"alarm {d['id']}: unknown priority {d['priority']!r}")
        # a state this console does not know yet is kept and shown as it is: never hide an alarm
        for key in ("zone", "person", "area", "acked_by"):
            if d.get(key) is not None and not isinstance(d.get(key), str):
                raise ValueError(f"alarm {d['id']}: field {key!r} is not a string or null")
        msg = d.get("message") or {}
        if not isinstance(msg, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in msg.items()
        ):
            raise ValueError(f"alarm {d['id']}: message must map language -> text")
        pos = d.get("position_m")
        position: tuple[float, float] | None = None
        if pos is not None:
            if not isinstance(pos, (list, tuple)) or len(pos) < 2:
                raise ValueError(f"alarm {d['id']}: position_m must be [x, y] or null")
            position = (_finite_or_nan(pos[0], "position_m[0]"), _finite_or_nan(pos[1], "position_m[1]"))
        return cls(
            id=d["id"],
            condition=d["condition"],
            source=d["source"],
            zone=d.get("zone"),
            person=d.get("person"),
            priority=d["priority"],
            state=d["state"],
            message=MappingProxyType(dict(msg)),
            activated_ts_s=_finite_or_nan(d.get("activated_ts_s"), "activated_ts_s"),
            changed_ts_s=_finite_or_nan(d.get("changed_ts_s"), "changed_ts_s"),
            position_m=position,
            condition_active=d["active"] if isinstance(d.get("active"), bool) else None,
            area=d.get("area"),
            acked_by=d.get("acked_by"),
            acked=d["acked"] if isinstance(d.get("acked"), bool) else None,
            shelved=ShelveInfo.from_json(d.get("shelved")),
            out_of_service=OutOfServiceInfo.from_json(d.get("out_of_service")),
            escalation_step=_count_or_zero(d.get("escalation_step")),
            chattering=d.get("chattering") is True,
        )

    @property
    def rank(self) -> int:
        """1 low .. 4 critical (the engine's per-person ``alarm`` code)."""
        return PRIORITIES.index(self.priority) + 1

    @property
    def on_list(self) -> bool:
        """Annunciated: on the operator's alarm list (not shelved, suppressed, out of service or normal)."""
        return self.state not in OFF_LIST_STATES

    @property
    def active(self) -> bool:
        """On the list and still needing the operator: condition present (acknowledged or not) or latched."""
        return self.on_list and (
            self.state.startswith(("active_", "latched_")) or self.condition_active is True
        )

    @property
    def unacknowledged(self) -> bool:
        """On the list and nobody has acknowledged it yet (active, latched, or returned to normal)."""
        return self.state in UNACK_STATES or (self.on_list and self.state not in ALARM_STATES)

    def text(self, lang: str) -> str:
        """The message in ``lang``, falling back to English, then to the alarm id."""
        key = "zh-CN" if lang.lower().startswith("zh") else "en"
        return self.message.get(key) or self.message.get("en") or self.id


@dataclass(frozen=True)
class AlarmCounts:
    """The counts every page shows of one alarm table, defined once (status bar, alarm tile, workstation):

    - ``in_alarm``: alarms whose condition is present (or latched), not shelved, suppressed or out of service;
    - ``unacknowledged``: every alarm nobody has acknowledged yet, returned-to-normal ones included;
    - ``on_list``: rows of the operator's alarm list (in alarm, or cleared but not yet acknowledged);
    - ``off_list``: shelved, suppressed or out of service (kept, not annunciated).
    """

    in_alarm: int = 0
    unacknowledged: int = 0
    on_list: int = 0
    off_list: int = 0


def alarm_counts(alarms: Iterable[AlarmRecord] | Mapping[str, AlarmRecord]) -> AlarmCounts:
    """The :class:`AlarmCounts` of an alarm table (records by id, or the records)."""
    recs = list(alarms.values()) if isinstance(alarms, Mapping) else list(alarms)
    on = [r for r in recs if r.on_list]
    return AlarmCounts(
        in_alarm=sum(1 for r in on if r.active),
        unacknowledged=sum(1 for r in on if r.unacknowledged),
        on_list=len(on),
        off_list=sum(1 for r in recs if not r.on_list and r.state != "normal"),
    )
