"""The alarm lifecycle (ISA-18.2 / IEC 62682), with the sub-states of OPC UA Part 9 Alarms & Conditions.

An alarm is the product of orthogonal sub-states, as in OPC UA Part 9:

- ``active`` (ActiveState): the condition, after its on-delay and off-delay, is abnormal;
- ``acked`` (AckedState): a person acknowledged the latest activation;
- ``latched`` (LatchedState): a latching alarm whose condition returned to normal; it needs a reset;
- ``shelved`` (ShelvingState, timed): a person took it off the operator's list for a while, with a reason;
- ``suppressed`` (SuppressedState): suppressed by design, by a rule (e.g. a zone alarm under a valid permit);
- ``out_of_service`` (OutOfServiceState): removed for maintenance by a supervisor, with a reason.

The state an operator sees (:attr:`Alarm.state`) is derived from them, in this order: ``out_of_service``,
``shelved``, ``suppressed``, ``active_unack``, ``active_ack``, ``latched_unack``, ``latched_ack``,
``rtn_unack``, ``normal``. docs/alarms.md has the whole transition table.

Every change is journaled with the input sequence number and engine time that caused it; every refused
person action too, with its reason, and the state stays as it was. Timers (on-delay, off-delay, re-alarm,
shelve expiry, escalation) are due times in engine time, kept in a heap and fired by :meth:`AlarmBook.tick`:
they are state derived from the input log, so replay and crash recovery reproduce them exactly.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.protocol.names import PRIORITIES, PRIORITY_RANK, ROLE_ACTIONS

from .journal import Journal

__all__ = [
    "AlarmDefinition",
    "Alarm",
    "AlarmBook",
    "EscalationPlan",
    "DEFAULT_MAX_SHELVE_S",
    "Refused",
]


#: longest shelve per priority, seconds (a critical alarm may be shelved for at most an hour)
DEFAULT_MAX_SHELVE_S = {"critical": 3600.0, "high": 4 * 3600.0, "medium": 8 * 3600.0, "low": 12 * 3600.0}

CHATTER_COUNT, CHATTER_WINDOW_S = 3, 60.0


class Refused(Exception):
    """A person action the lifecycle does not allow; the text says why. State is unchanged."""


@dataclass(frozen=True)
class EscalationPlan:
    """When an unacknowledged alarm goes up the chain: ``steps`` of (after_s, notify_role), then every
    ``repeat_every_s`` the last step again (None: no repeat). ``raise_priority``: each step raises the
    alarm's priority one level (severity that rises with elapsed time)."""

    steps: tuple[tuple[float, str], ...]
    repeat_every_s: float | None = None
    raise_priority: bool = False


@dataclass(frozen=True)
class AlarmDefinition:
    """What an alarm is: stable ``id`` (its tag), the condition kind that raises it, its source and text, and
    how it behaves (delays in seconds of engine time, latching, re-alarm, escalation)."""

    id: str
    condition: str
    source: str
    priority: str
    message_en: str
    message_zh: str
    zone: str | None = None
    person: str | None = None
    area: str | None = None
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    latching: bool = False
    re_alarm_s: float | None = None
    escalation: EscalationPlan | None = None


@dataclass
class Alarm:
    definition: AlarmDefinition
    condition: bool = False  # the raw condition as last reported (after any deadband)
    pending_since: float = math.nan  # when the condition last became abnormal (on-delay runs from here)
    clearing_since: float = math.nan  # when it last became normal (off-delay runs from here)
    active: bool = False
    acked: bool = True
    latched: bool = False
    shelved_until: float | None = None
    shelved_by: str | None = None
    shelve_reason: str = ""
    suppressed: bool = False
    out_of_service: bool = False
    oos_by: str | None = None
    oos_reason: str = ""
    priority: str = ""
    activated_ts_s: float = math.nan
    changed_ts_s: float = math.nan
    acked_ts_s: float = math.nan
    acked_by: str | None = None
    position_m: tuple[float, float] | None = None
    area: str | None = None  # where it was raised, when its definition names no area (the book's ``area_of``)
    escalation_step: int = 0
    activations: list[float] = field(default_factory=list)  # recent activation times (chattering)
    generation: int = 0  # bumps on every change: stale timers are ignored

    def __post_init__(self) -> None:
        self.priority = self.priority or self.definition.priority

    @property
    def state(self) -> str:
        if self.out_of_service:
            return "out_of_service"
        if self.shelved_until is not None:
            return "shelved"
        if self.suppressed:
            return "suppressed"
        if self.active:
            return "active_ack" if self.acked else "active_unack"
        if self.latched:
            return "latched_ack" if self.acked else "latched_unack"
        return "normal" if self.acked else "rtn_unack"

    @property
    def annunciated(self) -> bool:
        """On the operator's list and counted as an alarm to act on."""
        return self.state in ("active_unack", "active_ack", "latched_unack", "latched_ack", "rtn_unack")

    @property
    def chattering(self) -> bool:
        return len(self.activations) >= CHATTER_COUNT

    @property
    def idle(self) -> bool:
        """Nothing left to remember: normal, no person-set flag, no condition pending."""
        return (self.state == "normal" and not self.condition and self.shelved_until is None
                and not self.out_of_service and not self.suppressed)

    def record(self) -> dict[str, Any]:
        """The AlarmRecord sent to consoles (docs/protocol.md)."""
        d = self.definition
        return {
            "id": d.id,
            "condition": d.condition,
            "source": d.source,
            "zone": d.zone,
            "person": d.person,
            "area": d.area or self.area,
            "priority": self.priority,
            "state": self.state,
            "active": self.active,
            "acked": self.acked,
            "message": {"en": d.message_en, "zh-CN": d.message_zh},
            "activated_ts_s": self.activated_ts_s,
            "changed_ts_s": self.changed_ts_s,
            "acked_by": self.acked_by,
            "shelved": None if self.shelved_until is None else {
                "until_ts_s": self.shelved_until, "by": self.shelved_by, "reason": self.shelve_reason},
            "out_of_service": None if not self.out_of_service else {"by": self.oos_by, "reason": self.oos_reason},
            "escalation_step": self.escalation_step,
            "chattering": self.chattering,
            "position_m": list(self.position_m) if self.position_m is not None else None,
        }


class AlarmBook:
    """All alarms the engine knows, keyed by id. Every method returns the AlarmRecords that changed, for the
    console deltas; the book removes an alarm once it is idle again, so it holds only what matters now."""

    def __init__(
        self,
        journal: Journal | None,
        *,
        max_shelve_s: dict[str, float] | None = None,
        area_of: Callable[[AlarmDefinition, tuple[float, float] | None], str | None] | None = None,
    ) -> None:
        """``area_of(definition, position)``: the area an alarm whose definition names none is raised in (the
        engine looks up the zone around the alarm's position, its person's or its sensor's); None: not looked up."""
        self.journal = journal
        self.area_of = area_of
        self.alarms: dict[str, Alarm] = {}
        self.raised_total = 0
        self.max_shelve_s = {**DEFAULT_MAX_SHELVE_S, **(max_shelve_s or {})}
        self._gen = 0  # one counter for the whole book: an alarm that left and came back never reuses a number
        self._recent: dict[str, list[float]] = {}  # alarm id -> activation times within the chattering window
        self._timers: list[tuple[float, int, str, str, int]] = []  # (due, order, alarm id, kind, generation)
        self._order = 0
        self.notifications: list[dict[str, Any]] = []  # escalation notifications due; the engine drains it
        self.activated: list[Alarm] = []  # alarms (re-)activated since the engine last drained it (flood, notices)

    # -- helpers ----------------------------------------------------------------------------------------
    def _journal(self, alarm: Alarm | None, alarm_id: str, event: str, seq: int, ts: float, actor: str = "engine",
                 role: str = "", detail: dict[str, Any] | None = None) -> None:
        if self.journal is not None:
            state = alarm.state if alarm is not None else "unknown"
            self.journal.append(input_seq=seq, engine_ts_s=ts, event=event, alarm_id=alarm_id, state=state,
                                actor=actor, role=role, detail=detail)

    def _timer(self, alarm: Alarm, due: float, kind: str) -> None:
        if len(self._timers) > 1024 and len(self._timers) > 8 * len(self.alarms):
            # drop timers of alarms that changed since (they would be skipped anyway)
            self._timers = [t for t in self._timers if (a := self.alarms.get(t[2])) is not None
                            and a.generation == t[4]]
            heapq.heapify(self._timers)
        self._order += 1
        heapq.heappush(self._timers, (due, self._order, alarm.definition.id, kind, alarm.generation))

    def _changed(self, alarm: Alarm, ts: float) -> dict[str, Any]:
        alarm.changed_ts_s = ts
        self._gen += 1
        alarm.generation = self._gen
        rec = alarm.record()
        self._arm(alarm, ts)
        if alarm.idle:
            del self.alarms[alarm.definition.id]
        return rec

    def _arm(self, alarm: Alarm, ts: float) -> None:
        """(Re)start the timers the alarm's new state calls for; older timers die by generation."""
        d = alarm.definition
        if alarm.condition and not alarm.active and d.on_delay_s > 0:
            self._timer(alarm, alarm.pending_since + d.on_delay_s, "on_delay")
        if not alarm.condition and alarm.active and d.off_delay_s > 0:
            self._timer(alarm, alarm.clearing_since + d.off_delay_s, "off_delay")
        if alarm.shelved_until is not None:
            self._timer(alarm, alarm.shelved_until, "shelve_expiry")
        if alarm.active and alarm.acked and d.re_alarm_s and alarm.state == "active_ack":
            self._timer(alarm, alarm.acked_ts_s + d.re_alarm_s, "re_alarm")
        plan = d.escalation
        if plan is not None and alarm.active and not alarm.acked and alarm.annunciated:
            due = self._escalation_due(alarm, plan)
            if due is not None:
                self._timer(alarm, due, "escalate")

    @staticmethod
    def _escalation_due(alarm: Alarm, plan: EscalationPlan) -> float | None:
        k = alarm.escalation_step
        if k < len(plan.steps):
            return alarm.activated_ts_s + plan.steps[k][0]
        if plan.repeat_every_s:
            return alarm.activated_ts_s + plan.steps[-1][0] + plan.repeat_every_s * (k - len(plan.steps) + 1)
        return None

    def _get(self, definition: AlarmDefinition) -> Alarm:
        alarm = self.alarms.get(definition.id)
        if alarm is None:
            alarm = self.alarms[definition.id] = Alarm(definition)
        return alarm

    def _activate(self, alarm: Alarm, ts: float, seq: int) -> None:
        alarm.active = True
        alarm.acked = False
        alarm.latched = False
        alarm.activated_ts_s = ts
        alarm.acked_by = None
        alarm.escalation_step = 0
        alarm.priority = alarm.definition.priority
        if alarm.definition.area is None and self.area_of is not None:
            alarm.area = self.area_of(alarm.definition, alarm.position_m)
        recent = [t for t in self._recent.get(alarm.definition.id, ()) if t > ts - CHATTER_WINDOW_S] + [ts]
        self._recent[alarm.definition.id] = recent
        alarm.activations = recent
        if len(self._recent) > 4 * len(self.alarms) + 1024:  # forget ids whose window has passed
            self._recent = {k: v for k, v in self._recent.items() if v[-1] > ts - CHATTER_WINDOW_S}
        self.raised_total += 1
        detail: dict[str, Any] = {"priority": alarm.priority}
        if alarm.position_m is not None:
            detail["position_m"] = [round(v, 3) for v in alarm.position_m]
        if alarm.area is not None:
            detail["area"] = alarm.area
        if alarm.chattering:
            detail["chattering"] = len(alarm.activations)
        self._journal(alarm, alarm.definition.id, "activate", seq, ts, detail=detail)
        self.activated.append(alarm)

    def _clear(self, alarm: Alarm, ts: float, seq: int) -> None:
        alarm.active = False
        if alarm.definition.latching:
            alarm.latched = True
        self._journal(alarm, alarm.definition.id, "clear", seq, ts)

    # -- driven by conditions ---------------------------------------------------------------------------
    def set_condition(self, definition: AlarmDefinition, condition: bool, ts: float, input_seq: int,
                      position_m: tuple[float, float] | None = None) -> dict[str, Any] | None:
        """Report the condition of an alarm (True = abnormal). Returns the AlarmRecord when it changed."""
        alarm = self.alarms.get(definition.id)
        if alarm is None and not condition:
            return None
        alarm = self._get(definition)
        if alarm.definition != definition:  # e.g. a fall makes a standing man-down latching
            alarm.definition = definition
        if position_m is not None:
            alarm.position_m = position_m
        if condition == alarm.condition:
            return None
        alarm.condition = condition
        before = alarm.state
        d = definition
        if condition:
            alarm.pending_since = ts
            if not alarm.active and d.on_delay_s <= 0:
                self._activate(alarm, ts, input_seq)
        else:
            alarm.clearing_since = ts
            if alarm.active and d.off_delay_s <= 0:
                self._clear(alarm, ts, input_seq)
        rec = self._changed(alarm, ts)
        return rec if rec["state"] != before or rec["activated_ts_s"] == ts else None

    def tick(self, ts: float, input_seq: int) -> list[dict[str, Any]]:
        """Fire every timer due at or before engine time ``ts``."""
        out = []
        while self._timers and self._timers[0][0] <= ts:
            due, _, aid, kind, gen = heapq.heappop(self._timers)
            alarm = self.alarms.get(aid)
            if alarm is None or alarm.generation != gen:
                continue  # the alarm changed since this timer was set
            rec = getattr(self, f"_fire_{kind}")(alarm, due, input_seq)
            if rec is not None:
                out.append(rec)
        return out

    def _fire_on_delay(self, alarm: Alarm, due: float, seq: int) -> dict[str, Any] | None:
        if alarm.condition and not alarm.active:
            self._activate(alarm, due, seq)
            return self._changed(alarm, due)
        return None

    def _fire_off_delay(self, alarm: Alarm, due: float, seq: int) -> dict[str, Any] | None:
        if not alarm.condition and alarm.active:
            self._clear(alarm, due, seq)
            return self._changed(alarm, due)
        return None

    def _fire_shelve_expiry(self, alarm: Alarm, due: float, seq: int) -> dict[str, Any] | None:
        alarm.shelved_until = None
        if alarm.active:  # a shelve that expires while the alarm is still active returns it unacknowledged
            alarm.acked = False
            alarm.activated_ts_s = due  # escalation counts from the moment it is back in front of people
            alarm.escalation_step = 0
        self._journal(alarm, alarm.definition.id, "shelve_expired", seq, due)
        return self._changed(alarm, due)

    def _fire_re_alarm(self, alarm: Alarm, due: float, seq: int) -> dict[str, Any] | None:
        if alarm.active and alarm.acked:
            alarm.acked = False
            alarm.activated_ts_s = due
            alarm.escalation_step = 0
            self._journal(alarm, alarm.definition.id, "re_alarm", seq, due)
            self.activated.append(alarm)
            return self._changed(alarm, due)
        return None

    def _fire_escalate(self, alarm: Alarm, due: float, seq: int) -> dict[str, Any] | None:
        plan = alarm.definition.escalation
        if plan is None or alarm.acked or not alarm.active:
            return None
        k = alarm.escalation_step
        role = plan.steps[min(k, len(plan.steps) - 1)][1]
        alarm.escalation_step = k + 1
        if plan.raise_priority:
            alarm.priority = PRIORITIES[min(PRIORITY_RANK[alarm.priority], len(PRIORITIES) - 1)]
        detail = {"step": k + 1, "notify_role": role, "priority": alarm.priority, "repeat": k >= len(plan.steps)}
        self._journal(alarm, alarm.definition.id, "escalate", seq, due, detail=detail)
        self.notifications.append({"alarm": alarm.definition.id, "notify_role": role, "step": k + 1,
                                   "priority": alarm.priority, "ts_s": due, "input_seq": seq})
        return self._changed(alarm, due)

    def set_suppressed(self, alarm_id: str, definition: AlarmDefinition | None, suppressed: bool, reason: str,
                       ts: float, input_seq: int) -> dict[str, Any] | None:
        """Suppression by design (a rule). Lifting it re-annunciates an alarm that is still active."""
        alarm = self.alarms.get(alarm_id)
        if alarm is None:
            if not suppressed or definition is None:
                return None
            alarm = self._get(definition)
        if alarm.suppressed == suppressed:
            return None
        alarm.suppressed = suppressed
        if not suppressed:
            self._re_evaluate(alarm, ts)
        self._journal(alarm, alarm_id, "suppress" if suppressed else "unsuppress", input_seq, ts,
                      detail={"reason": reason})
        return self._changed(alarm, ts)

    # -- person actions -----------------------------------------------------------------------------------
    def _check_role(self, action: str, alarm: Alarm | None, alarm_id: str, user: str, role: str, ts: float,
                    seq: int) -> None:
        if role not in ROLE_ACTIONS:
            self._refuse(alarm, alarm_id, action, f"unknown role {role!r}", user, role, ts, seq)
        if action not in ROLE_ACTIONS[role]:
            self._refuse(alarm, alarm_id, action, f"role {role} may not {action.replace('_', ' ')}", user, role, ts,
                         seq)

    def _person(self, action: str, alarm_id: str, user: str, role: str, ts: float, seq: int) -> Alarm:
        alarm = self.alarms.get(alarm_id)
        self._check_role(action, alarm, alarm_id, user, role, ts, seq)
        if alarm is None:
            self._refuse(None, alarm_id, action, "no such alarm", user, role, ts, seq)
        return alarm  # type: ignore[return-value]

    def _refuse(self, alarm: Alarm | None, alarm_id: str, action: str, reason: str, user: str, role: str,
                ts: float, seq: int) -> None:
        self._journal(alarm, alarm_id, "refused", seq, ts, actor=user, role=role,
                      detail={"action": action, "reason": reason})
        raise Refused(reason)

    def acknowledge(self, alarm_id: str, user: str, role: str, comment: str, ts: float,
                    input_seq: int) -> dict[str, Any]:
        alarm = self._person("acknowledge", alarm_id, user, role, ts, input_seq)
        if alarm.acked or alarm.state in ("shelved", "out_of_service", "suppressed"):
            self._refuse(alarm, alarm_id, "acknowledge", f"alarm is {alarm.state}: nothing to acknowledge", user,
                         role, ts, input_seq)
        alarm.acked = True
        alarm.acked_by = user
        alarm.acked_ts_s = ts
        self._journal(alarm, alarm_id, "acknowledge", input_seq, ts, actor=user, role=role,
                      detail={"comment": comment, "after_s": round(ts - alarm.activated_ts_s, 3)})
        return self._changed(alarm, ts)

    def reset(self, alarm_id: str, user: str, role: str, ts: float, input_seq: int) -> dict[str, Any]:
        alarm = self._person("reset", alarm_id, user, role, ts, input_seq)
        if not alarm.latched:
            self._refuse(alarm, alarm_id, "reset", f"alarm is {alarm.state}: only a latched alarm is reset", user,
                         role, ts, input_seq)
        if not alarm.acked:
            self._refuse(alarm, alarm_id, "reset", "acknowledge the latched alarm before resetting it", user, role,
                         ts, input_seq)
        alarm.latched = False
        self._journal(alarm, alarm_id, "reset", input_seq, ts, actor=user, role=role)
        return self._changed(alarm, ts)

    def shelve(self, alarm_id: str, user: str, role: str, reason: str, duration_s: float, ts: float,
               input_seq: int) -> dict[str, Any]:
        alarm = self._person("shelve", alarm_id, user, role, ts, input_seq)
        limit = self.max_shelve_s.get(alarm.priority, 0.0)
        problem = None
        if not reason.strip():
            problem = "a shelve needs a reason"
        elif not (isinstance(duration_s, (int, float)) and math.isfinite(duration_s) and duration_s > 0):
            problem = "a shelve needs a positive duration"
        elif duration_s > limit:
            problem = f"a {alarm.priority} alarm may be shelved for at most {limit:.0f} s"
        elif alarm.state in ("shelved", "out_of_service"):
            problem = f"alarm is {alarm.state}"
        if problem:
            self._refuse(alarm, alarm_id, "shelve", problem, user, role, ts, input_seq)
        alarm.shelved_until = ts + duration_s
        alarm.shelved_by = user
        alarm.shelve_reason = reason
        alarm.acked = True  # shelving takes the alarm off the list: it counts as seen
        self._journal(alarm, alarm_id, "shelve", input_seq, ts, actor=user, role=role,
                      detail={"reason": reason, "duration_s": duration_s, "until_ts_s": alarm.shelved_until})
        return self._changed(alarm, ts)

    def unshelve(self, alarm_id: str, user: str, role: str, ts: float, input_seq: int) -> dict[str, Any]:
        alarm = self._person("unshelve", alarm_id, user, role, ts, input_seq)
        if alarm.shelved_until is None:
            self._refuse(alarm, alarm_id, "unshelve", f"alarm is {alarm.state}, not shelved", user, role, ts,
                         input_seq)
        alarm.shelved_until = None
        # the person chose to bring it back: it returns acknowledged, even if it re-activated while shelved
        alarm.acked = True
        alarm.acked_by = user
        alarm.acked_ts_s = ts
        self._journal(alarm, alarm_id, "unshelve", input_seq, ts, actor=user, role=role)
        return self._changed(alarm, ts)

    def remove_from_service(self, alarm_id: str, definition: AlarmDefinition | None, user: str, role: str,
                            reason: str, ts: float, input_seq: int) -> dict[str, Any]:
        """Out of service for maintenance. ``definition`` lets a person take an alarm that is not active yet."""
        if alarm_id not in self.alarms and definition is not None:
            self._check_role("remove_from_service", self.alarms.get(alarm_id), alarm_id, user, role, ts, input_seq)
            if not reason.strip():
                self._refuse(None, alarm_id, "remove_from_service", "taking an alarm out of service needs a reason",
                             user, role, ts, input_seq)
            self._get(definition)
        alarm = self._person("remove_from_service", alarm_id, user, role, ts, input_seq)
        if not reason.strip():
            self._refuse(alarm, alarm_id, "remove_from_service", "taking an alarm out of service needs a reason",
                         user, role, ts, input_seq)
        if alarm.out_of_service:
            self._refuse(alarm, alarm_id, "remove_from_service", "alarm is already out of service", user, role, ts,
                         input_seq)
        alarm.out_of_service = True
        alarm.oos_by = user
        alarm.oos_reason = reason
        self._journal(alarm, alarm_id, "out_of_service", input_seq, ts, actor=user, role=role,
                      detail={"reason": reason})
        return self._changed(alarm, ts)

    def return_to_service(self, alarm_id: str, user: str, role: str, ts: float, input_seq: int) -> dict[str, Any]:
        alarm = self._person("return_to_service", alarm_id, user, role, ts, input_seq)
        if not alarm.out_of_service:
            self._refuse(alarm, alarm_id, "return_to_service", f"alarm is {alarm.state}, not out of service", user,
                         role, ts, input_seq)
        alarm.out_of_service = False
        alarm.oos_by, alarm.oos_reason = None, ""
        self._re_evaluate(alarm, ts)
        self._journal(alarm, alarm_id, "return_to_service", input_seq, ts, actor=user, role=role)
        return self._changed(alarm, ts)

    @staticmethod
    def _re_evaluate(alarm: Alarm, ts: float) -> None:
        """Back in front of people (suppression lifted, returned to service): still abnormal -> a fresh
        unacknowledged alarm; normal -> normal (what happened meanwhile is in the journal, not on the list)."""
        if alarm.active:
            alarm.acked = False
            alarm.activated_ts_s = ts
            alarm.escalation_step = 0
        else:
            alarm.acked = True
            alarm.latched = False

    def comment(self, alarm_id: str, user: str, role: str, text: str, ts: float, input_seq: int) -> None:
        alarm = self._person("comment", alarm_id, user, role, ts, input_seq)
        if not text.strip():
            self._refuse(alarm, alarm_id, "comment", "empty comment", user, role, ts, input_seq)
        self._journal(alarm, alarm_id, "comment", input_seq, ts, actor=user, role=role, detail={"text": text})

    # -- views ------------------------------------------------------------------------------------------
    def live(self) -> list[dict[str, Any]]:
        """AlarmRecords of every alarm that is not idle, in id order (stable)."""
        return [self.alarms[k].record() for k in sorted(self.alarms)]

    def active(self) -> Iterable[Alarm]:
        return (a for a in self.alarms.values() if a.active and a.annunciated)
