"""The Part 9 view of an engine alarm record: pure functions and data, tested without a server.

An :class:`ingest.protocol.records.AlarmRecord` becomes a :class:`ConditionState` (``condition_state``), a
ConditionClass (``condition_class``) and an OPC UA Severity (``SEVERITY``); an engine refusal becomes a status
code (``refusal_status``). A :class:`Condition` is what the server keeps per alarm between events (event ids,
comment, sub-state transition times) and ``event_fields`` turns it into the fields of one event notification.
"""

from __future__ import annotations

import math
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from asyncua import ua

from console.auth import ENDED_REASONS
from ingest.protocol.records import AlarmRecord

__all__ = [
    "MAX_EVENT_IDS",
    "SEVERITY",
    "Condition",
    "ConditionState",
    "EventFields",
    "condition_class",
    "condition_state",
    "event_fields",
    "refusal_status",
    "status",
]

#: OPC UA Severity (1..1000) of each watchfloor priority
SEVERITY: Mapping[str, int] = MappingProxyType({"low": 250, "medium": 500, "high": 750, "critical": 1000})

#: event ids kept per condition activation: an Acknowledge may name any of them (bounded)
MAX_EVENT_IDS = 32

#: event field path ("/"-joined browse names below the condition) -> (value, variant type)
EventFields = dict[str, tuple[Any, ua.VariantType]]

_ON_OFF_TEXT = {
    "EnabledState": ("Enabled", "Disabled"),
    "ActiveState": ("Active", "Inactive"),
    "AckedState": ("Acknowledged", "Unacknowledged"),
    "SuppressedState": ("Suppressed", "Unsuppressed"),
    "OutOfServiceState": ("Out of Service", "In Service"),
    "LatchedState": ("Latched", "Unlatched"),
}
_SHELVING_STATE_ID = {
    "Unshelved": ua.ObjectIds.ShelvedStateMachineType_Unshelved,
    "TimedShelved": ua.ObjectIds.ShelvedStateMachineType_TimedShelved,
}
#: condition classes by the first part of watchfloor's condition name (``zone.restricted`` -> ``zone``)
_CLASS_BY_PREFIX = {
    "zone": ua.ObjectIds.SafetyConditionClassType,
    "gas": ua.ObjectIds.SafetyConditionClassType,
    "permit": ua.ObjectIds.SafetyConditionClassType,
    "wearable": ua.ObjectIds.SafetyConditionClassType,
    "camera": ua.ObjectIds.SafetyConditionClassType,
    "detection": ua.ObjectIds.SafetyConditionClassType,
    "watcher": ua.ObjectIds.SafetyConditionClassType,
    "comms": ua.ObjectIds.SystemConditionClassType,
    "stale": ua.ObjectIds.SystemConditionClassType,
    "fault": ua.ObjectIds.SystemConditionClassType,
    "vibration": ua.ObjectIds.MaintenanceConditionClassType,
}
_CLASS_NAMES = {
    ua.ObjectIds.SafetyConditionClassType: "Safety",
    ua.ObjectIds.SystemConditionClassType: "System",
    ua.ObjectIds.MaintenanceConditionClassType: "Maintenance",
    ua.ObjectIds.ProcessConditionClassType: "Process",
}
_GOOD = ua.StatusCode(ua.StatusCodes.Good)
_NO_COMMUNICATION = ua.StatusCode(ua.StatusCodes.BadNoCommunication)


def status(name: str) -> ua.StatusCode:
    """The OPC UA status code called ``name`` (e.g. ``"BadUserAccessDenied"``)."""
    return ua.StatusCode(getattr(ua.StatusCodes, name))


def condition_class(condition: str) -> tuple[int, str]:
    """The Part 9 ConditionClass (ns=0 ObjectId, short name) of a watchfloor condition name, e.g.
    ``zone.restricted`` -> SafetyConditionClassType; an unknown kind is a process condition."""
    cid = _CLASS_BY_PREFIX.get(condition.split(".", 1)[0], ua.ObjectIds.ProcessConditionClassType)
    return cid, _CLASS_NAMES[cid]


@dataclass(frozen=True)
class ConditionState:
    """An alarm as OPC UA Part 9 sub-states. Times are engine seconds since the epoch (UTC).

    ``shelving`` is ``"Unshelved"`` or ``"TimedShelved"`` (the engine's shelves are timed); ``unshelve_in_s``
    is the shelve time left at ``time_s`` (None when not shelved). ``quality_good`` is False while the engine
    link is down: the state shown may be stale.
    """

    active: bool
    acked: bool
    latched: bool
    shelving: str
    suppressed: bool
    out_of_service: bool
    retain: bool
    severity: int
    message: Mapping[str, str]
    source_name: str
    condition_name: str
    time_s: float
    activated_s: float
    acked_by: str | None
    unshelve_in_s: float | None = None
    quality_good: bool = True

    @property
    def suppressed_or_shelved(self) -> bool:
        """Part 9 SuppressedOrShelved: suppressed, shelved or out of service."""
        return self.suppressed or self.out_of_service or self.shelving != "Unshelved"

    def sub_states(self) -> dict[str, bool | str]:
        """The sub-states that can change, by the browse name of their state variable (ShelvingState: its
        current state name; the others: their TwoState Id)."""
        return {
            "ActiveState": self.active,
            "AckedState": self.acked,
            "SuppressedState": self.suppressed,
            "OutOfServiceState": self.out_of_service,
            "LatchedState": self.latched,
            "ShelvingState": self.shelving,
        }

    def returned_to_normal(self) -> ConditionState:
        """The state of an alarm that left the live table: inactive, acknowledged, no longer retained."""
        return replace(
            self,
            active=False,
            acked=True,
            latched=False,
            shelving="Unshelved",
            suppressed=False,
            out_of_service=False,
            retain=False,
            unshelve_in_s=None,
        )


def condition_state(rec: AlarmRecord, *, quality_good: bool = True) -> ConditionState:
    """Map one engine AlarmRecord (docs/protocol.md) to its Part 9 sub-states.

    The record's ``active`` / ``acked`` flags are used when the engine sent them; otherwise they are derived
    from ``state``. Latched, suppressed and out of service come from ``state`` (the engine's derived state
    shows the first that applies, in the order out_of_service, shelved, suppressed), so an alarm that is both
    shelved and suppressed shows as shelved only.
    """
    state = rec.state
    active = (
        rec.condition_active if rec.condition_active is not None else state in ("active_unack", "active_ack")
    )
    acked = (
        rec.acked if rec.acked is not None else state not in ("active_unack", "latched_unack", "rtn_unack")
    )
    shelved = rec.shelved is not None or state == "shelved"
    unshelve_in = None
    if rec.shelved is not None and math.isfinite(rec.shelved.until_ts_s) and math.isfinite(rec.changed_ts_s):
        unshelve_in = max(0.0, rec.shelved.until_ts_s - rec.changed_ts_s)
    return ConditionState(
        active=bool(active),
        acked=bool(acked),
        latched=state in ("latched_unack", "latched_ack"),
        shelving="TimedShelved" if shelved else "Unshelved",
        suppressed=state == "suppressed",
        out_of_service=rec.out_of_service is not None or state == "out_of_service",
        retain=state != "normal",
        severity=SEVERITY.get(rec.priority, 750),
        message=rec.message,
        source_name=rec.source,
        condition_name=rec.condition,
        time_s=rec.changed_ts_s,
        activated_s=rec.activated_ts_s,
        acked_by=rec.acked_by,
        unshelve_in_s=unshelve_in,
        quality_good=quality_good,
    )


def refusal_status(reason: str, *, acked: bool | None = None) -> ua.StatusCode:
    """The OPC UA status for an engine refusal ``reason`` (the text of ``{"ok": false, "reason": ...}``).

    A status code carries no text: the caller logs the reason and the engine journals it. ``acked`` (the
    condition's AckedState as this server knows it) tells "already acknowledged" from "not acknowledgeable
    now" when the engine's text does not.
    """
    r = reason.lower()
    if r.startswith(("unknown user", "unknown role")) or " may not " in r:
        return status("BadUserAccessDenied")
    if r.startswith(ENDED_REASONS) or "is not the one logged in" in r:  # the login is over: log in again
        return status("BadIdentityTokenInvalid")
    if r == "no such alarm":
        return status("BadNodeIdUnknown")
    if "nothing to acknowledge" in r:
        if r.startswith(("alarm is active_ack", "alarm is latched_ack", "alarm is normal")) or (
            acked is True
            and not r.startswith(("alarm is shelved", "alarm is suppressed", "alarm is out_of_service"))
        ):
            return status("BadConditionBranchAlreadyAcked")
        return status(
            "BadInvalidState"
        )  # shelved, suppressed, out of service: not on the list to acknowledge
    if "empty comment" in r:
        return status("BadInvalidArgument")
    if r.startswith("command failed"):
        return status("BadInternalError")
    return status("BadInvalidState")


# -- what the server keeps per alarm between events ------------------------------------------------------------
@dataclass
class Condition:
    """One alarm's condition: its nodes, its latest record and state, and what Part 9 events carry beyond the
    record (event ids of the current activation, the last comment, sub-state transition times in epoch s)."""

    alarm_id: str
    node_id: ua.NodeId
    notifiers: tuple[ua.NodeId, ...]  # the zone object, Alarms, Server: each reports the condition's events
    source_node: ua.NodeId
    record: AlarmRecord
    state: ConditionState
    node_ids: list[ua.NodeId]
    event_id: bytes = b""
    event_ids: deque[bytes] = field(default_factory=lambda: deque(maxlen=MAX_EVENT_IDS))
    activated_s: float = math.nan
    last_severity: int = 0
    comment: str = ""
    comment_s: float = math.nan
    comment_user: str | None = None
    transitions: dict[str, float] = field(default_factory=dict)  # sub-state -> when it last changed (epoch s)
    last_event: Any = None  # the latest event notification, sent again by ConditionRefresh

    def changed(self, before: ConditionState | None, now_s: float) -> None:
        """Book a change from ``before`` (None: the condition is new) to ``self.state`` at wall time ``now_s``
        (used when the engine's time is not finite): transition times, a new activation, LastSeverity."""
        state = self.state
        now_states = state.sub_states()
        before_states = before.sub_states() if before is not None else {}
        for name, value in now_states.items():
            if before is None or before_states[name] != value:
                self.transitions[name] = state.time_s if math.isfinite(state.time_s) else now_s
        a, b = state.activated_s, self.activated_s
        if before is None or not (a == b or (math.isnan(a) and math.isnan(b))):
            # a new activation: acknowledgements and comments of the older one no longer apply
            self.event_ids.clear()
            self.activated_s = a
            self.comment, self.comment_user, self.comment_s = "", None, math.nan
        if before is not None and before.severity != state.severity:
            self.last_severity = before.severity
        elif before is None:
            self.last_severity = state.severity

    def new_event_id(self) -> bytes:
        """A fresh EventId for the next notification, kept so that an Acknowledge may name it."""
        self.event_id = uuid.uuid4().bytes
        self.event_ids.append(self.event_id)
        return self.event_id


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, UTC) if math.isfinite(ts_s) else datetime.now(UTC)


def _text(message: Mapping[str, str], lang: str, fallback: str) -> ua.LocalizedText:
    key = "zh-CN" if lang.lower().startswith("zh") else "en"
    text = message.get(key) or message.get("en") or fallback
    return ua.LocalizedText(text, key if message.get(key) else "en")


def _on_off(name: str, on: bool) -> EventFields:
    true, false = _ON_OFF_TEXT[name]
    return {
        name: (ua.LocalizedText(true if on else false, "en"), ua.VariantType.LocalizedText),
        f"{name}/Id": (on, ua.VariantType.Boolean),
        f"{name}/TrueState": (ua.LocalizedText(true, "en"), ua.VariantType.LocalizedText),
        f"{name}/FalseState": (ua.LocalizedText(false, "en"), ua.VariantType.LocalizedText),
    }


def event_fields(cond: Condition, lang: str) -> EventFields:
    """The fields of the condition's next event notification (and the values of its nodes), by path.
    ``lang`` (``en`` or ``zh-CN``) picks the language of ``Message``."""
    s = cond.state
    class_id, class_name = condition_class(s.condition_name)
    f: EventFields = {
        "EventId": (cond.event_id, ua.VariantType.ByteString),
        "EventType": (ua.NodeId(ua.ObjectIds.AlarmConditionType), ua.VariantType.NodeId),
        "SourceNode": (cond.source_node, ua.VariantType.NodeId),
        "SourceName": (s.source_name, ua.VariantType.String),
        "Time": (_utc(s.time_s), ua.VariantType.DateTime),
        "ReceiveTime": (datetime.now(UTC), ua.VariantType.DateTime),
        "Message": (_text(s.message, lang, cond.alarm_id), ua.VariantType.LocalizedText),
        "Messages": (
            [ua.LocalizedText(t, k) for k, t in sorted(s.message.items())],
            ua.VariantType.LocalizedText,
        ),
        "Severity": (s.severity, ua.VariantType.UInt16),
        "ConditionClassId": (ua.NodeId(class_id), ua.VariantType.NodeId),
        "ConditionClassName": (ua.LocalizedText(class_name, "en"), ua.VariantType.LocalizedText),
        "ConditionName": (s.condition_name, ua.VariantType.String),
        "BranchId": (ua.NodeId(), ua.VariantType.NodeId),
        "Retain": (s.retain, ua.VariantType.Boolean),
        "Quality": (_GOOD if s.quality_good else _NO_COMMUNICATION, ua.VariantType.StatusCode),
        "LastSeverity": (cond.last_severity, ua.VariantType.UInt16),
        "Comment": (ua.LocalizedText(cond.comment), ua.VariantType.LocalizedText),
        "ClientUserId": (cond.comment_user or s.acked_by or "", ua.VariantType.String),
        "InputNode": (ua.NodeId(), ua.VariantType.NodeId),
        "SuppressedOrShelved": (s.suppressed_or_shelved, ua.VariantType.Boolean),
        "ShelvingState": (ua.LocalizedText(s.shelving, "en"), ua.VariantType.LocalizedText),
        "ShelvingState/CurrentState": (ua.LocalizedText(s.shelving, "en"), ua.VariantType.LocalizedText),
        "ShelvingState/CurrentState/Id": (
            ua.NodeId(_SHELVING_STATE_ID[s.shelving]),
            ua.VariantType.NodeId,
        ),
        "ShelvingState/UnshelveTime": (
            0.0 if s.unshelve_in_s is None else s.unshelve_in_s * 1000.0,
            ua.VariantType.Double,
        ),
    }
    f.update(_on_off("EnabledState", True))
    for name, on in s.sub_states().items():
        if name != "ShelvingState":  # a state machine, not a TwoStateVariable: its fields are above
            f.update(_on_off(name, bool(on)))
    for name, ts in cond.transitions.items():
        key = (
            "ShelvingState/LastTransition/TransitionTime"
            if name == "ShelvingState"
            else f"{name}/TransitionTime"
        )
        f[key] = (_utc(ts), ua.VariantType.DateTime)
    if math.isfinite(cond.comment_s):
        f["Comment/SourceTimestamp"] = (_utc(cond.comment_s), ua.VariantType.DateTime)
    f["Quality/SourceTimestamp"] = (_utc(s.time_s), ua.VariantType.DateTime)
    return f
