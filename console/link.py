"""The console's one link to the engine: a receiver thread per console process.

The thread owns both ZeroMQ sockets (a SUB connected to the engine's publisher and a DEALER connected to its
command ROUTER; ZeroMQ sockets are not thread-safe, so no other thread touches them). It keeps:

- the latest frame of each display topic (``display.positions``, ``display.sensors``, ``display.gasfield``,
  ``engine.status``): display frames are conflated, latest wins;
- the latest permit board (``permit.board``) and emergency muster status (``muster.status``): each message is
  the whole state, so they are conflated too; a snapshot reply fills them for a console that joins late;
- the live alarm table, built from a snapshot and then sequence-numbered ``alarm.delta`` messages. A gap in
  the sequence, an engine restart (the sequence going back) or a link that comes back after being lost
  makes the link ask for a fresh snapshot and replace its table (DESIGN principle 3: the alarm channel is
  never silently lossy);
- counters of everything received, ignored, refused or lost.

Sessions read it through :meth:`EngineLink.snapshot`, which returns immutable objects (frozen dataclasses,
read-only numpy arrays, read-only mappings) so a Bokeh callback can use them without locks. The thread never
touches a Bokeh model.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal, Self

import numpy as np
import zmq

from config import Site
from ingest import bus

log = logging.getLogger(__name__)

__all__ = [
    "ALARM_STATES",
    "OFF_LIST_STATES",
    "PERMIT_BOARDS",
    "PRIORITIES",
    "TOPIC_ALARM_DELTA",
    "TOPIC_FLOOD",
    "TOPIC_GASFIELD",
    "TOPIC_MUSTER",
    "TOPIC_NOTIFY",
    "TOPIC_PERMITS",
    "TOPIC_POSITIONS",
    "TOPIC_SENSORS",
    "TOPIC_STATUS",
    "AlarmRecord",
    "AlarmTable",
    "EngineLink",
    "FloodState",
    "Frame",
    "LinkCounters",
    "LinkSnapshot",
    "LinkState",
    "MAX_NOTIFICATIONS",
    "MissingPerson",
    "MusterPoint",
    "MusterStatus",
    "Notification",
    "OutOfServiceInfo",
    "PermitBoard",
    "PermitInfo",
    "ShelveInfo",
]

TOPIC_POSITIONS = "display.positions"
TOPIC_SENSORS = "display.sensors"
TOPIC_ALARM_DELTA = "alarm.delta"
TOPIC_STATUS = "engine.status"
TOPIC_NOTIFY = "alarm.notify"  # an escalation step: tell the people of a role
TOPIC_FLOOD = "alarm.flood"  # an alarm flood at an operator position began or ended
TOPIC_GASFIELD = "display.gasfield"  # the gas detectors interpolated onto a grid, 1 Hz
TOPIC_PERMITS = "permit.board"  # the permits that matter now, on change and every 5 s
TOPIC_MUSTER = "muster.status"  # the emergency muster, on declare / end and ~1 Hz while active
#: conflated display topics -> the counter of frames taken in
_DISPLAY_COUNTERS = {
    TOPIC_POSITIONS: "positions_frames",
    TOPIC_SENSORS: "sensors_frames",
    TOPIC_STATUS: "status_frames",
    TOPIC_GASFIELD: "gasfield_frames",
}
_DISPLAY_TOPICS = tuple(_DISPLAY_COUNTERS)

PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
#: the states an operator sees (alarms/lifecycle.py); ``normal`` takes an alarm out of the live table
ALARM_STATES: tuple[str, ...] = (
    "active_unack",
    "active_ack",
    "latched_unack",
    "latched_ack",
    "rtn_unack",
    "shelved",
    "suppressed",
    "out_of_service",
    "normal",
)
#: kept in the table but taken off the operator's list by a person or a rule (ISA-18.2)
OFF_LIST_STATES: frozenset[str] = frozenset({"shelved", "suppressed", "out_of_service", "normal"})
_UNACK_STATES = frozenset({"active_unack", "latched_unack", "rtn_unack"})

LinkState = Literal["waiting", "ok", "lost"]

#: escalation notifications kept for sessions to show (newest last); older ones are counted, not kept
MAX_NOTIFICATIONS = 64

#: a delta whose seq is this far behind the table's is taken as an engine restart, not a late duplicate
_RESTART_WINDOW = 1000


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


def _float_or_nan(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


def _texts(v: Any) -> Mapping[str, str]:
    """A ``{language: text}`` object (type names, muster point names), leniently: bad entries are left out."""
    return _message(v)


def _text_in(texts: Mapping[str, str], lang: str, fallback: str) -> str:
    key = "zh-CN" if lang.lower().startswith("zh") else "en"
    return texts.get(key) or texts.get("en") or fallback


def _xy_list(v: Any) -> tuple[tuple[float, float], ...]:
    if not isinstance(v, list):
        return ()
    out = []
    for p in v:
        if isinstance(p, (list, tuple)) and len(p) >= 2:
            x, y = _float_or_nan(p[0]), _float_or_nan(p[1])
            if math.isfinite(x) and math.isfinite(y):
                out.append((x, y))
    return tuple(out)


#: the colours of a permit board (``alarms/permits.py``): red = work in progress, amber = suspended or ending
#: soon, green = planned (requested or approved), grey = over (closed or expired)
PERMIT_BOARDS: tuple[str, ...] = ("red", "amber", "green", "grey")


# Permits and the muster are read leniently like the shelve annotations: a permit with a malformed field is
# still shown (the field as unknown), because a permit missing from the board is worse than one shown badly.
@dataclass(frozen=True)
class PermitInfo:
    """One permit-to-work as the engine's board publishes it (``permit.board``). Times are engine seconds.

    ``zone`` is a zone id of the site, or None when the permit has its own ``polygon`` (site metres);
    ``workers`` and ``watcher`` are tags; ``board`` is one of :data:`PERMIT_BOARDS`.
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
            valid_from_s=_float_or_nan(d.get("valid_from_s")),
            valid_to_s=_float_or_nan(d.get("valid_to_s")),
            state=_text_or_none(d.get("state")) or "unknown",
            # an unknown colour is shown as work in progress: the safe reading of a board we do not understand
            board=board if board in PERMIT_BOARDS else "red",
            applicant=_text_or_none(d.get("applicant")),
            approver=_text_or_none(d.get("approver")),
            reason=_text_or_none(d.get("reason")) or "",
            description=_text_or_none(d.get("description")) or "",
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
        ts = _float_or_nan(meta.get("engine_ts_s"))
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
                xyz = [_float_or_nan(v) for v in (*pos[:3], *([0.0] * (3 - len(pos[:3]))))]
                if math.isfinite(xyz[0]) and math.isfinite(xyz[1]):
                    position = (xyz[0], xyz[1], xyz[2])
            zones = m.get("zones")
            missing.append(
                MissingPerson(
                    person=m["person"],
                    tag=_text_or_none(m.get("tag")) or "",
                    name=_text_or_none(m.get("name")) or "",
                    position_m=position,
                    fix_age_s=_float_or_nan(m.get("fix_age_s")),
                    zones=tuple(z for z in zones if isinstance(z, str)) if isinstance(zones, list) else (),
                )
            )
        return cls(
            active=True,
            engine_ts_s=ts,
            version=version,
            declared_ts_s=_float_or_nan(meta.get("declared_ts_s")),
            declared_by=_text_or_none(meta.get("declared_by")) or "",
            area=tuple(a for a in area if isinstance(a, str)) if isinstance(area, list) else "all",
            elapsed_s=_float_or_nan(meta.get("elapsed_s")),
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
        return self.state in _UNACK_STATES or (self.on_list and self.state not in ALARM_STATES)

    def text(self, lang: str) -> str:
        """The message in ``lang``, falling back to English, then to the alarm id."""
        key = "zh-CN" if lang.lower().startswith("zh") else "en"
        return self.message.get(key) or self.message.get("en") or self.id


@dataclass(frozen=True)
class Frame:
    """The latest message of one display topic. ``arrays`` are read-only numpy arrays."""

    topic: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]
    event_ts_s: float
    received_s: float  # time.monotonic() when the link took it in
    number: int  # how many frames of this topic the link has taken in, this one included


@dataclass(frozen=True)
class AlarmTable:
    """The live alarm list: every alarm not back to normal, by id.

    ``seq`` is the last ``alarm.delta`` sequence number applied; ``version`` grows on every change, so a tile
    can skip a redraw when it has not moved; ``synced`` is False until the first snapshot has arrived and while
    a resync is in flight.
    """

    seq: int = 0
    version: int = 0
    synced: bool = False
    alarms: Mapping[str, AlarmRecord] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class LinkCounters:
    """Everything the link took in, ignored, refused or lost since it started."""

    frames: int = 0  # bus messages received on the SUB socket, all topics
    positions_frames: int = 0
    sensors_frames: int = 0
    status_frames: int = 0
    gasfield_frames: int = 0
    permit_boards: int = 0  # permit.board messages taken in
    muster_updates: int = 0  # muster.status messages taken in
    bad_frames: int = 0  # framing errors, unknown topics, arrays that do not match the site
    deltas: int = 0  # alarm.delta messages received
    deltas_applied: int = 0
    deltas_ignored: int = 0  # older than the table (already in the snapshot)
    gaps: int = 0  # a delta's seq was not the next one
    restarts: int = 0  # the delta seq went back: the engine started again
    resyncs: int = 0  # snapshots applied to repair a gap, restart or lost link (the first one is not counted)
    snapshots: int = 0  # snapshots applied, the first one included
    snapshot_requests: int = 0
    snapshot_failures: int = 0  # replies with ok = false, or no reply in time
    pending_overflow: int = 0  # deltas that did not fit in the buffer while a snapshot was awaited
    bad_alarms: int = 0  # alarm records that failed their check
    alarms_dropped: int = 0  # alarms evicted because the table was full
    commands: int = 0
    command_timeouts: int = 0
    replies_unmatched: int = 0
    link_lost: int = 0  # times the link went from ok to lost
    notifications: int = 0  # alarm.notify messages taken in
    floods: int = 0  # alarm.flood messages taken in


@dataclass(frozen=True)
class LinkSnapshot:
    """What one session tick sees: the latest frames, the alarm table, the counters and the link health."""

    positions: Frame | None
    sensors: Frame | None
    status: Frame | None
    alarms: AlarmTable
    counters: LinkCounters
    state: LinkState
    last_frame_age_s: float | None  # seconds since the last message from the engine; None: never
    #: the latest escalation notifications, oldest first (at most ``MAX_NOTIFICATIONS``)
    notifications: tuple[Notification, ...] = ()
    #: the latest flood state per operator position
    floods: Mapping[str, FloodState] = field(default_factory=lambda: MappingProxyType({}))
    #: the latest ``display.gasfield`` frame (array ``field`` float32 [ny, nx]; meta ``extent_m``, ``dx_m``)
    gasfield: Frame | None = None
    #: the latest permit board (None until the engine said anything about permits)
    permits: PermitBoard | None = None
    #: the latest emergency muster status (None until known; ``active`` False when no emergency)
    muster: MusterStatus | None = None

    def flood(self, position: str = "main") -> FloodState | None:
        """The flood state of ``position`` (None until the engine said anything about it)."""
        return self.floods.get(position)

    @property
    def engine_ts_s(self) -> float | None:
        """The newest engine time heard (status or positions frame), seconds since the epoch; None: none yet."""
        times = [f.meta.get("engine_ts_s") for f in (self.status, self.positions) if f is not None]
        times = [float(v) for v in times if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return max(times) if times else None


class EngineLink:
    """One console process's link to the engine (see the module text).

    ``publish_endpoint`` / ``command_endpoint`` default to the site's ``bus.publish`` / ``bus.command``.
    ``lost_after_s``: with no message from the engine for longer than this the link is "lost" (the engine
    publishes positions at about 5 Hz and its status at 1 Hz, so 3 s is several missed frames).
    """

    def __init__(
        self,
        site: Site,
        *,
        publish_endpoint: str | None = None,
        command_endpoint: str | None = None,
        context: zmq.Context | None = None,
        lost_after_s: float = 3.0,
        snapshot_timeout_s: float = 2.0,
        command_timeout_s: float = 2.0,
        max_alarms: int = 5000,
        max_pending_deltas: int = 10000,
        poll_interval_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.site = site
        self.publish_endpoint = publish_endpoint or site.bus.publish
        self.command_endpoint = command_endpoint or site.bus.command
        self.lost_after_s = float(lost_after_s)
        self.snapshot_timeout_s = float(snapshot_timeout_s)
        self.command_timeout_s = float(command_timeout_s)
        self.max_alarms = int(max_alarms)
        self.poll_interval_s = float(poll_interval_s)
        self._clock = clock
        self._own_context = context is None
        self._ctx = context
        self._n_people = len(site.people)
        self._n_gas = len(site.gas_detectors)
        self._n_vib = len(site.vibration_points)

        # shared with readers: replaced whole under the lock, never mutated
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}
        self._table = AlarmTable()
        self._counters = LinkCounters()
        self._last_frame_s: float | None = None
        self._notifications: tuple[Notification, ...] = ()
        self._floods: Mapping[str, FloodState] = MappingProxyType({})
        self._permits: PermitBoard | None = None
        self._muster: MusterStatus | None = None

        # owned by the receiver thread
        self._count: dict[str, int] = {f.name: 0 for f in fields(LinkCounters)}
        self._alarms: dict[str, AlarmRecord] = {}
        self._seq = 0
        self._version = 0
        self._synced = False
        self._pending: deque[tuple[int, list[Any]]] = deque(maxlen=max_pending_deltas)
        self._need_snapshot = True
        self._snapshot_id: str | None = None
        self._snapshot_deadline = 0.0  # reply due by then
        self._snapshot_retry_at = 0.0  # no new request before then
        self._was_lost = False
        self._commands: dict[str, tuple[concurrent.futures.Future, float]] = {}
        self._notify_buf: deque[Notification] = deque(maxlen=MAX_NOTIFICATIONS)

        self._outbox: queue.Queue[tuple[dict[str, Any], concurrent.futures.Future]] = queue.Queue(maxsize=100)
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifetime ----------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the receiver thread (connects; the engine need not be up yet). Returns self."""
        if self._thread is not None:
            raise RuntimeError("EngineLink already started")
        if self._ctx is None:
            self._ctx = zmq.Context()
        self._thread = threading.Thread(target=self._run, name="engine-link", daemon=False)
        self._thread.start()
        if not self._started.wait(10.0):
            raise RuntimeError("engine link thread did not start")
        if self._error is not None:
            raise RuntimeError(f"engine link failed to start: {self._error}") from self._error
        log.info(
            "engine link: subscribed to %s, commands to %s", self.publish_endpoint, self.command_endpoint
        )
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, close the sockets (and the context if the link made it). Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("engine link thread did not stop within %.1f s", timeout_s)
        if self._own_context and self._ctx is not None and not (self._thread and self._thread.is_alive()):
            self._ctx.term()
            self._ctx = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- readers (any thread) ----------------------------------------------------------------------------
    def snapshot(self) -> LinkSnapshot:
        """Everything a session tick needs, taken under one lock. All parts are immutable."""
        now = self._clock()
        with self._lock:
            frames, table, counters, last = self._frames, self._table, self._counters, self._last_frame_s
            notifications, floods = self._notifications, self._floods
            permits, muster = self._permits, self._muster
        age = None if last is None else max(0.0, now - last)
        state: LinkState = "waiting" if age is None else ("lost" if age > self.lost_after_s else "ok")
        return LinkSnapshot(
            positions=frames.get(TOPIC_POSITIONS),
            sensors=frames.get(TOPIC_SENSORS),
            status=frames.get(TOPIC_STATUS),
            alarms=table,
            counters=counters,
            state=state,
            last_frame_age_s=age,
            notifications=notifications,
            floods=floods,
            gasfield=frames.get(TOPIC_GASFIELD),
            permits=permits,
            muster=muster,
        )

    def positions(self) -> Frame | None:
        """The latest ``display.positions`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_POSITIONS)

    def sensors(self) -> Frame | None:
        """The latest ``display.sensors`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_SENSORS)

    def status(self) -> Frame | None:
        """The latest ``engine.status`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_STATUS)

    def alarms(self) -> AlarmTable:
        """The live alarm table."""
        with self._lock:
            return self._table

    def counters(self) -> LinkCounters:
        with self._lock:
            return self._counters

    def wait_until(self, predicate: Callable[[LinkSnapshot], bool], timeout_s: float = 5.0) -> LinkSnapshot:
        """Poll :meth:`snapshot` until ``predicate`` holds (bounded); raise ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"engine link condition not met within {timeout_s} s (counters: {snap.counters})"
                )
            time.sleep(0.01)

    # -- commands (any thread) ---------------------------------------------------------------------------
    def submit(self, request: Mapping[str, Any]) -> concurrent.futures.Future:
        """Queue one command without waiting: the future resolves to the engine's reply.

        It fails with ``TimeoutError`` when no reply comes within 4 x ``command_timeout_s`` and ``RuntimeError``
        when the link stops first. Cancelling it forgets the command (a late reply is counted as unmatched).
        For callers on an event loop (a Panel session): ``await asyncio.wrap_future(link.submit(req))``.
        Raises ``RuntimeError`` at once when the link is not running or too many commands are in flight.
        """
        if not self.running:
            raise RuntimeError("engine link is not running")
        req = dict(request)
        req.setdefault("id", f"cmd-{uuid.uuid4().hex}")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._outbox.put_nowait((req, fut))
        except queue.Full:
            raise RuntimeError("too many engine commands in flight") from None
        return fut

    def command(self, request: Mapping[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one command (e.g. ``{"op": "ack", "alarm": id, "user": "op1", "comment": ""}``), wait for the reply.

        An ``id`` is added when missing. Returns the engine's reply (``ok`` true or false with a ``reason``);
        raises ``TimeoutError`` when no reply comes within ``timeout_s`` (default ``command_timeout_s``) and
        ``RuntimeError`` when the link is not running or too many commands are in flight.
        """
        req = dict(request)
        req.setdefault("id", f"cmd-{uuid.uuid4().hex}")
        timeout = self.command_timeout_s if timeout_s is None else float(timeout_s)
        fut = self.submit(req)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(
                f"engine did not answer {req.get('op')!r} ({req['id']}) within {timeout} s"
            ) from None

    # -- the receiver thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._ctx is not None
        try:
            topics = [
                TOPIC_POSITIONS,
                TOPIC_SENSORS,
                TOPIC_ALARM_DELTA,
                TOPIC_STATUS,
                TOPIC_NOTIFY,
                TOPIC_FLOOD,
                TOPIC_GASFIELD,
                TOPIC_PERMITS,
                TOPIC_MUSTER,
            ]
            sub = bus.sub_socket(self._ctx, self.publish_endpoint, topics)
            dealer = bus.dealer_socket(self._ctx, self.command_endpoint)
        except zmq.ZMQError as e:
            self._error = e
            self._started.set()
            return
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(dealer, zmq.POLLIN)
        self._started.set()
        poll_ms = max(1, int(self.poll_interval_s * 1000))
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(poll_ms))
                changed = False
                if sub in events:
                    changed |= self._drain_sub(sub)
                if dealer in events:
                    changed |= self._drain_dealer(dealer)
                self._send_commands(dealer)
                changed |= self._maintain(dealer)
                if changed:
                    self._publish()
        except Exception:  # a bug here must be loud, and must not leave a silently frozen wall
            log.exception("engine link thread failed")
            raise
        finally:
            for fut, _ in self._commands.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("engine link stopped"))
            while not self._outbox.empty():
                _, fut = self._outbox.get_nowait()
                if not fut.done():
                    fut.set_exception(RuntimeError("engine link stopped"))
            sub.close(linger=0)
            dealer.close(linger=0)

    def _bump(self, name: str, n: int = 1) -> None:
        self._count[name] += n

    def _publish(self) -> None:
        """Hand the thread's state to readers: new immutable objects, swapped under the lock."""
        counters = LinkCounters(**self._count)
        t = self._table
        table = None
        if (t.seq, t.version, t.synced) != (self._seq, self._version, self._synced):
            table = AlarmTable(
                seq=self._seq,
                version=self._version,
                synced=self._synced,
                alarms=MappingProxyType(dict(self._alarms)),
            )
        with self._lock:
            if table is not None:
                self._table = table
            self._counters = counters

    # SUB side
    def _drain_sub(self, sub: zmq.Socket, max_messages: int = 2000) -> bool:
        latest: dict[str, bus.Message] = {}
        changed = False
        for _ in range(max_messages):
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            now = self._clock()
            self._bump("frames")
            changed = True
            with self._lock:
                self._last_frame_s = now
            try:
                msg = bus.decode(frames)
            except bus.FramingError as e:
                self._bump("bad_frames")
                self._log_bad(f"undecodable message: {e}")
                continue
            if msg.topic == TOPIC_ALARM_DELTA:
                self._on_delta(msg)
            elif msg.topic == TOPIC_NOTIFY:
                self._on_notify(msg.meta)
            elif msg.topic == TOPIC_FLOOD:
                self._on_flood(msg.meta)
            elif msg.topic == TOPIC_PERMITS:
                self._on_permits(msg.meta.get("permits"), msg.event_ts_s)
            elif msg.topic == TOPIC_MUSTER:
                self._on_muster(msg.meta)
            elif msg.topic in _DISPLAY_TOPICS:
                latest[msg.topic] = msg  # conflate: only the newest of a drain is kept
                if msg.topic == TOPIC_STATUS:
                    self._reconcile_flood(msg.meta.get("flood"))  # in order with alarm.flood messages
                self._bump(_DISPLAY_COUNTERS[msg.topic])
            else:
                self._bump("bad_frames")
                self._log_bad(f"unexpected topic {msg.topic!r}")
        if latest:
            now = self._clock()
            new_frames: dict[str, Frame] = {}
            for topic, msg in latest.items():
                problem = self._check_arrays(msg)
                if problem:
                    self._bump("bad_frames")
                    self._log_bad(f"{topic}: {problem}")
                    continue
                number = self._count[_DISPLAY_COUNTERS[topic]]
                new_frames[topic] = Frame(
                    topic=topic,
                    arrays=MappingProxyType(dict(msg.arrays)),
                    meta=MappingProxyType(dict(msg.meta)),
                    event_ts_s=msg.event_ts_s,
                    received_s=now,
                    number=number,
                )
            if new_frames:
                with self._lock:
                    self._frames = {**self._frames, **new_frames}
        return changed

    def _check_arrays(self, msg: bus.Message) -> str | None:
        """Arrays that do not match this console's site would draw the wrong people: refuse them."""
        p, g, v = self._n_people, self._n_gas, self._n_vib
        expected: dict[str, tuple[int, ...]] = {}
        if msg.topic == TOPIC_POSITIONS:
            expected = {"xyz_m": (p, 3), "age_s": (p,), "gdop": (p,), "alarm": (p,)}
        elif msg.topic == TOPIC_SENSORS:
            expected = {
                "gas_value": (g,),
                "gas_quality": (g,),
                "gas_level": (g,),
                "vib_rms_mm_s": (v,),
                "vib_quality": (v,),
            }
            if "vib_zone" in msg.arrays:  # ISO 20816-3 zone per point, when the engine sends it
                expected["vib_zone"] = (v,)
        elif msg.topic == TOPIC_GASFIELD:
            return self._check_gasfield(msg)
        for name, shape in expected.items():
            a = msg.arrays.get(name)
            if a is None:
                if msg.topic == TOPIC_SENSORS and name.startswith("vib"):
                    continue  # vibration is optional in a sensors frame
                return f"array {name!r} missing"
            if a.shape != shape:
                return f"array {name!r} has shape {a.shape}, this site needs {shape} (site files differ?)"
        return None

    @staticmethod
    def _check_gasfield(msg: bus.Message) -> str | None:
        """A gas field must be a float grid whose shape matches its extent and cell size (else it would be
        drawn stretched over the wrong place)."""
        a = msg.arrays.get("field")
        if a is None:
            return "array 'field' missing"
        if a.ndim != 2 or a.dtype.kind != "f":
            return f"array 'field' must be a 2-D float grid, got {a.dtype} {a.shape}"
        extent, dx = msg.meta.get("extent_m"), msg.meta.get("dx_m")
        if (
            not isinstance(extent, list)
            or len(extent) != 4
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in extent)
            or not isinstance(dx, (int, float))
            or not dx > 0
        ):
            return f"gas field without a valid extent_m / dx_m (got {extent!r:.60}, {dx!r:.20})"
        x0, y0, x1, y1 = (float(v) for v in extent)
        want = (math.ceil((y1 - y0) / dx - 1e-9), math.ceil((x1 - x0) / dx - 1e-9))
        if a.shape != want:
            return f"array 'field' has shape {a.shape}, its extent and {dx} m cells need {want}"
        return None

    def _log_bad(self, what: str) -> None:
        n = self._count["bad_frames"]
        if n <= 10 or n % 1000 == 0:
            log.warning("engine link: %s (%d bad so far)", what, n)

    # escalation notifications and flood state: events, never conflated
    def _on_notify(self, meta: Mapping[str, Any]) -> None:
        try:
            note = Notification.from_meta(self._count["notifications"] + 1, meta)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        self._bump("notifications")
        self._notify_buf.append(note)
        log.info("engine link: escalation step %d of %s to role %s", note.step, note.alarm, note.notify_role)
        notifications = tuple(self._notify_buf)
        with self._lock:
            self._notifications = notifications

    def _on_flood(self, meta: Any) -> None:
        try:
            if not isinstance(meta, Mapping):
                raise ValueError("flood state is not an object")  # noqa: TRY004 - one error kind
            state = FloodState.from_meta(meta)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        self._bump("floods")
        with self._lock:
            before = self._floods.get(state.position)
            self._floods = MappingProxyType({**self._floods, state.position: state})
        if before is None or before.flood != state.flood:
            log.info("engine link: alarm flood at %s: %s", state.position, "on" if state.flood else "off")

    # permit board and muster: each message is the whole state, latest wins
    def _on_permits(self, records: Any, engine_ts_s: float, *, from_snapshot: bool = False) -> None:
        if not isinstance(records, list):
            self._bump("bad_frames")
            self._log_bad(f"permit board without a permits list (got {type(records).__name__})")
            return
        current = self._permits
        if from_snapshot and current is not None and not current.engine_ts_s <= engine_ts_s:
            return  # the board message already taken in is newer than the snapshot
        permits = []
        for raw in records:
            try:
                permits.append(PermitInfo.from_json(raw))
            except ValueError as e:
                self._bump("bad_frames")
                self._log_bad(str(e))
        if not from_snapshot:
            self._bump("permit_boards")
        version = (current.version if current is not None else 0) + 1
        board = PermitBoard(permits=tuple(permits), engine_ts_s=float(engine_ts_s), version=version)
        with self._lock:
            self._permits = board

    def _on_muster(self, meta: Any, *, from_snapshot: bool = False) -> None:
        current = self._muster
        version = (current.version if current is not None else 0) + 1
        try:
            status = MusterStatus.from_meta(meta, version)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        if from_snapshot and current is not None and not current.engine_ts_s <= status.engine_ts_s:
            return  # the status message already taken in is newer than the snapshot
        if not from_snapshot:
            self._bump("muster_updates")
        if current is None or current.active != status.active:
            log.info(
                "engine link: emergency muster %s",
                f"declared by {status.declared_by}" if status.active else "not active",
            )
        with self._lock:
            self._muster = status

    def _reconcile_flood(self, flags: Any) -> None:
        """The engine's status carries ``flood``: {position: bool} every second. A console that joined during a
        flood (or missed its end) takes the flag from there; since when and the first-out stay unknown (NaN,
        None) until the next ``alarm.flood`` message."""
        if not isinstance(flags, Mapping):
            return
        for position, on in flags.items():
            if not isinstance(position, str) or not isinstance(on, bool):
                continue
            current = self._floods.get(position)
            if current is not None and current.flood == on:
                continue
            state = FloodState(
                position=position, flood=on, since_ts_s=math.nan, first_out=None, count_10min=0
            )
            with self._lock:
                self._floods = MappingProxyType({**self._floods, position: state})
            log.info(
                "engine link: alarm flood at %s: %s (from the engine status)", position, "on" if on else "off"
            )

    # alarm table
    def _on_delta(self, msg: bus.Message) -> None:
        self._bump("deltas")
        seq, records = msg.meta.get("seq"), msg.meta.get("alarms")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(records, list):
            self._bump("bad_frames")
            self._log_bad(f"alarm.delta without a valid seq / alarms list (seq={seq!r})")
            return
        if not self._synced:
            self._queue_pending(seq, records)
            return
        if seq <= self._seq:
            if seq == 1 or self._seq - seq > _RESTART_WINDOW:
                self._bump("restarts")
                log.warning(
                    "engine link: alarm seq went back from %d to %d: engine restarted, resyncing",
                    self._seq,
                    seq,
                )
                self._request_resync()
                self._queue_pending(seq, records)
            else:
                self._bump("deltas_ignored")
            return
        if seq != self._seq + 1:
            self._bump("gaps")
            log.warning("engine link: alarm delta gap (expected %d, got %d): resyncing", self._seq + 1, seq)
            self._request_resync()
            self._queue_pending(seq, records)
            return
        self._apply(records)
        self._seq = seq
        self._bump("deltas_applied")

    def _queue_pending(self, seq: int, records: list[Any]) -> None:
        if len(self._pending) == self._pending.maxlen:
            self._bump("pending_overflow")  # the oldest goes; continuity is checked when the snapshot lands
        self._pending.append((seq, records))

    def _request_resync(self) -> None:
        self._synced = False
        self._need_snapshot = True
        self._snapshot_id = None
        self._version += 1

    def _apply(self, records: list[Any]) -> None:
        for raw in records:
            try:
                rec = AlarmRecord.from_json(raw)
            except ValueError as e:
                self._bump("bad_alarms")
                log.warning("engine link: bad alarm record: %s", e)
                continue
            if rec.state == "normal":
                self._alarms.pop(rec.id, None)
            else:
                self._alarms[rec.id] = rec
        self._evict()
        self._version += 1

    def _evict(self) -> None:
        over = len(self._alarms) - self.max_alarms
        if over <= 0:
            return
        # keep what matters most: the highest priority, then the newest
        order = sorted(self._alarms.values(), key=lambda r: (r.rank, r.changed_ts_s))
        for rec in order[:over]:
            del self._alarms[rec.id]
        self._bump("alarms_dropped", over)
        log.warning(
            "engine link: alarm table full (%d): %d lowest-priority alarms dropped", self.max_alarms, over
        )

    def _on_snapshot(self, reply: dict[str, Any]) -> None:
        self._snapshot_id = None
        seq, records = reply.get("seq"), reply.get("alarms")
        if (
            not reply.get("ok")
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or not isinstance(records, list)
        ):
            self._bump("snapshot_failures")
            log.warning("engine link: snapshot refused or malformed: %.200s", reply)
            self._snapshot_retry_at = self._clock() + self.snapshot_timeout_s  # retry later, not at once
            return
        first = self._count["snapshots"] == 0
        ts = _float_or_nan(reply.get("engine_ts_s"))
        if "permits" in reply:
            self._on_permits(reply["permits"], ts, from_snapshot=True)
        if "muster" in reply:
            muster = reply["muster"]
            meta = muster if isinstance(muster, dict) else {"active": False}
            self._on_muster({**meta, "engine_ts_s": meta.get("engine_ts_s", ts)}, from_snapshot=True)
        self._alarms = {}
        self._apply(records)
        self._seq = seq
        self._synced = True
        self._need_snapshot = False
        self._bump("snapshots")
        if not first:
            self._bump("resyncs")
        log.info("engine link: alarm snapshot at seq %d with %d alarms", seq, len(self._alarms))
        pending = sorted(self._pending, key=lambda p: p[0])
        self._pending.clear()
        for i, (s, recs) in enumerate(pending):
            if s <= self._seq:
                self._bump("deltas_ignored")
                continue
            if s != self._seq + 1:
                self._bump("gaps")
                log.warning(
                    "engine link: gap after snapshot (expected %d, got %d): resyncing", self._seq + 1, s
                )
                self._request_resync()
                for item in pending[i:]:
                    self._queue_pending(*item)
                return
            self._apply(recs)
            self._seq = s
            self._bump("deltas_applied")

    # DEALER side
    def _drain_dealer(self, dealer: zmq.Socket, max_messages: int = 1000) -> bool:
        changed = False
        for _ in range(max_messages):
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            changed = True
            try:
                reply = json.loads(frames[-1])  # a REQ-style empty delimiter, if any, comes first
                if not isinstance(reply, dict):
                    raise ValueError("reply is not an object")  # noqa: TRY004 - handled just below
            except (ValueError, IndexError) as e:
                self._bump("bad_frames")
                self._log_bad(f"undecodable command reply: {e}")
                continue
            rid = reply.get("id")
            if rid is not None and rid == self._snapshot_id:
                self._on_snapshot(reply)
            elif rid in self._commands:
                fut, _ = self._commands.pop(rid)
                if not fut.done():
                    fut.set_result(reply)
            else:
                self._bump("replies_unmatched")
        return changed

    def _send(self, dealer: zmq.Socket, request: dict[str, Any]) -> bool:
        try:
            dealer.send(json.dumps(request, separators=(",", ":")).encode(), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _send_commands(self, dealer: zmq.Socket) -> None:
        now = self._clock()
        while True:
            try:
                req, fut = self._outbox.get_nowait()
            except queue.Empty:
                break
            if not fut.set_running_or_notify_cancel():
                continue
            if not self._send(dealer, req):
                fut.set_exception(RuntimeError("engine command channel is full"))
                continue
            self._bump("commands")
            self._commands[req["id"]] = (fut, now + self.command_timeout_s * 4)
        for rid in [rid for rid, (fut, deadline) in self._commands.items() if fut.done() or now > deadline]:
            fut, _ = self._commands.pop(rid)
            if not fut.done():
                fut.set_exception(TimeoutError("no reply from the engine"))
            self._bump("command_timeouts")

    def _maintain(self, dealer: zmq.Socket) -> bool:
        """Link health and snapshot requests. Returns True when something readers see changed."""
        now = self._clock()
        with self._lock:
            last = self._last_frame_s
        alive = last is not None and now - last <= self.lost_after_s
        changed = False
        if last is not None and not alive and not self._was_lost:
            self._was_lost = True
            self._bump("link_lost")
            log.warning("engine link lost: no message for %.1f s", now - last)
            self._request_resync()  # what happened while we were away is unknown: start from a snapshot
            changed = True
        elif alive and self._was_lost:
            self._was_lost = False
            log.info("engine link back")
        if self._snapshot_id is not None and now > self._snapshot_deadline:
            self._bump("snapshot_failures")
            log.warning("engine link: no snapshot reply within %.1f s, asking again", self.snapshot_timeout_s)
            self._snapshot_id = None
            changed = True
        # ask only while the engine is heard from, so requests do not pile up in a dead connection
        if self._need_snapshot and self._snapshot_id is None and alive and now >= self._snapshot_retry_at:
            rid = f"snap-{uuid.uuid4().hex}"
            if self._send(dealer, {"id": rid, "op": "snapshot"}):
                self._snapshot_id = rid
                self._snapshot_deadline = now + self.snapshot_timeout_s
                self._bump("snapshot_requests")
                changed = True
        return changed
