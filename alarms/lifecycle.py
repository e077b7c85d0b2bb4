"""The alarm lifecycle (ISA-18.2 / IEC 62682; state names after OPC UA Part 9 Alarms & Conditions).

First version: normal, active_unack, active_ack, rtn_unack. Every change is journaled with the input
sequence number and engine time that caused it; every refused person action too, with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .journal import Journal

__all__ = ["AlarmDefinition", "Alarm", "AlarmBook", "PRIORITY_RANK", "STATES", "Refused"]

STATES = ("normal", "active_unack", "active_ack", "rtn_unack")
PRIORITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


class Refused(Exception):
    """A person action the lifecycle does not allow; the text says why. State is unchanged."""


@dataclass(frozen=True)
class AlarmDefinition:
    """What an alarm is: stable ``id``, the condition kind that raises it, its source and text."""

    id: str
    condition: str
    source: str
    priority: str
    message_en: str
    message_zh: str
    zone: str | None = None
    person: str | None = None


@dataclass
class Alarm:
    definition: AlarmDefinition
    state: str = "normal"
    activated_ts_s: float = float("nan")
    changed_ts_s: float = float("nan")
    position_m: tuple[float, float] | None = None
    acked_by: str | None = None
    activations: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state in ("active_unack", "active_ack")

    def record(self) -> dict[str, Any]:
        """The AlarmRecord sent to consoles (docs/protocol.md)."""
        d = self.definition
        return {
            "id": d.id,
            "condition": d.condition,
            "source": d.source,
            "zone": d.zone,
            "person": d.person,
            "priority": d.priority,
            "state": self.state,
            "message": {"en": d.message_en, "zh-CN": d.message_zh},
            "activated_ts_s": self.activated_ts_s,
            "changed_ts_s": self.changed_ts_s,
            "position_m": list(self.position_m) if self.position_m is not None else None,
        }


class AlarmBook:
    """All alarms the engine knows, keyed by id. Changes return AlarmRecords for the console deltas."""

    def __init__(self, journal: Journal | None) -> None:
        self.journal = journal
        self.alarms: dict[str, Alarm] = {}
        self.raised_total = 0

    def _journal(self, alarm: Alarm, event: str, input_seq: int, ts: float, actor: str = "engine",
                 role: str = "", detail: dict[str, Any] | None = None) -> None:
        if self.journal is not None:
            self.journal.append(input_seq=input_seq, engine_ts_s=ts, event=event, alarm_id=alarm.definition.id,
                                state=alarm.state, actor=actor, role=role, detail=detail)

    def set_condition(self, definition: AlarmDefinition, active: bool, ts: float, input_seq: int,
                      position_m: tuple[float, float] | None = None) -> dict[str, Any] | None:
        """Drive an alarm from its condition. Returns the AlarmRecord when the state changed, else None."""
        alarm = self.alarms.get(definition.id)
        if alarm is None:
            if not active:
                return None
            alarm = self.alarms[definition.id] = Alarm(definition)
        if position_m is not None:
            alarm.position_m = position_m
        before = alarm.state
        if active and before in ("normal", "rtn_unack"):
            alarm.state = "active_unack"
            alarm.activated_ts_s = ts
            alarm.activations += 1
            alarm.acked_by = None
            self.raised_total += 1
            event = "activate"
        elif not active and before == "active_unack":
            alarm.state = "rtn_unack"
            event = "clear"
        elif not active and before == "active_ack":
            alarm.state = "normal"
            event = "clear"
        else:
            return None
        alarm.changed_ts_s = ts
        detail = {"position_m": [round(v, 3) for v in alarm.position_m]} if alarm.position_m else None
        self._journal(alarm, event, input_seq, ts, detail=detail)
        rec = alarm.record()
        if alarm.state == "normal":
            del self.alarms[definition.id]
        return rec

    def acknowledge(self, alarm_id: str, user: str, role: str, comment: str, ts: float,
                    input_seq: int) -> dict[str, Any]:
        """A person acknowledges. Raises :class:`Refused` (journaled) when not allowed."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None or alarm.state not in ("active_unack", "rtn_unack"):
            reason = "no such alarm" if alarm is None else f"alarm is {alarm.state}: nothing to acknowledge"
            if self.journal is not None:
                self.journal.append(input_seq=input_seq, engine_ts_s=ts, event="refused", alarm_id=alarm_id,
                                    state=alarm.state if alarm else "unknown", actor=user, role=role,
                                    detail={"action": "acknowledge", "reason": reason})
            raise Refused(reason)
        alarm.state = "active_ack" if alarm.state == "active_unack" else "normal"
        alarm.acked_by = user
        alarm.changed_ts_s = ts
        self._journal(alarm, "acknowledge", input_seq, ts, actor=user, role=role, detail={"comment": comment})
        rec = alarm.record()
        if alarm.state == "normal":
            del self.alarms[alarm_id]
        return rec

    def live(self) -> list[dict[str, Any]]:
        """AlarmRecords of every alarm not normal, in id order (stable)."""
        return [self.alarms[k].record() for k in sorted(self.alarms)]
