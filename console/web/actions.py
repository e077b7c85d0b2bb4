"""What a person may do to an alarm (or about an emergency) at the workstation, decided from the role and the
state.

Pure functions, no server: which buttons are enabled (:func:`enabled_actions`), which shelve durations are
offered (:func:`shelve_choices`) and the command sent to the engine (:func:`command_for`). The engine checks
every command again (role and state, ``alarms/lifecycle.py``) and refuses with a reason; this module only keeps
the page from offering what would be refused. The emergency muster is declared and ended by a shift supervisor
(or an administrator): :func:`muster_enabled` and :func:`muster_command`.

The role table, the actions and their ops are the wire protocol's (:mod:`ingest.protocol.names`), the same
table the engine checks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ingest.protocol.names import (
    ACTION_OPS,
    ACTIONS,
    MUSTER_OPS,
    MUSTER_ROLES,
    NEEDS_REASON,
    ROLE_ACTIONS,
    UNACK_STATES,
)
from ingest.protocol.records import AlarmRecord

__all__ = [
    "ACTIONS",
    "ACTION_OPS",
    "MUSTER_OPS",
    "MUSTER_ROLES",
    "NEEDS_REASON",
    "ROLE_ACTIONS",
    "SHELVE_STEPS_S",
    "action_allowed",
    "command_for",
    "enabled_actions",
    "format_duration",
    "muster_command",
    "muster_enabled",
    "shelve_choices",
]

#: shelve durations offered, seconds: 15 min .. 12 h; a priority gets those up to its maximum
SHELVE_STEPS_S: tuple[float, ...] = (900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0)

_NOTHING_TO_ACK = frozenset({"shelved", "out_of_service", "suppressed"})


def action_allowed(action: str, role: str | None) -> bool:
    """May a person of ``role`` take ``action`` at all (whatever the alarm's state)?"""
    return role is not None and action in ROLE_ACTIONS.get(role, frozenset())


def _state_allows(action: str, rec: AlarmRecord, max_shelve_s: Mapping[str, float]) -> bool:
    state = rec.state
    shelved = rec.shelved is not None or state == "shelved"
    out_of_service = rec.out_of_service is not None or state == "out_of_service"
    if action == "acknowledge":
        unacked = (not rec.acked) if rec.acked is not None else state in UNACK_STATES
        return unacked and state not in _NOTHING_TO_ACK
    if action == "reset":
        return state == "latched_ack"  # latched and acknowledged: a latched_unack is acknowledged first
    if action == "shelve":
        return not shelved and not out_of_service and bool(shelve_choices(rec.priority, max_shelve_s))
    if action == "unshelve":
        return shelved
    if action == "remove_from_service":
        return not out_of_service
    if action == "return_to_service":
        return out_of_service
    if action == "comment":
        return True
    return False


def enabled_actions(
    role: str | None, rec: AlarmRecord | None, max_shelve_s: Mapping[str, float]
) -> frozenset[str]:
    """The actions whose buttons are enabled for a person of ``role`` with ``rec`` selected.

    An action is enabled when the role may take it and the alarm's state allows it, as the engine's lifecycle
    decides (docs/alarms.md, "Person actions"): acknowledge an unacknowledged alarm that is on the list; reset a
    latched alarm already acknowledged; shelve one not shelved or out of service (when its priority may be
    shelved at all: ``max_shelve_s[priority]`` > 0); unshelve a shelved one; remove from service one in service;
    return to service one out of service; comment on any. Nothing is enabled without a user or a selection.
    """
    if role is None or rec is None:
        return frozenset()
    return frozenset(a for a in ACTIONS if action_allowed(a, role) and _state_allows(a, rec, max_shelve_s))


def shelve_choices(priority: str, max_shelve_s: Mapping[str, float]) -> list[float]:
    """The shelve durations (seconds, ascending) offered for an alarm of ``priority``.

    Every step of :data:`SHELVE_STEPS_S` up to the priority's maximum (``site.max_shelve_s``); a maximum that
    is not a step is offered as the last choice too, and one shorter than the first step is the only choice.
    An unknown priority or a maximum <= 0 offers nothing (the alarm may not be shelved).
    """
    limit = max_shelve_s.get(priority, 0.0)
    if not (isinstance(limit, (int, float)) and math.isfinite(limit)) or limit <= 0:
        return []
    out = [s for s in SHELVE_STEPS_S if s <= limit]
    if not out or out[-1] < limit:
        out.append(float(limit))
    return out


def format_duration(seconds: float, lang: str = "en") -> str:
    """``900 -> '15 min'``, ``3600 -> '1 h'``, ``5400 -> '1 h 30 min'``, ``45 -> '45 s'`` (zh-CN: 分钟, 小时, 秒)."""
    zh = lang.lower().startswith("zh")
    unit_h, unit_min, unit_s = ("小时", "分钟", "秒") if zh else (" h", " min", " s")
    if not math.isfinite(seconds):
        return "---"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}{unit_s}"
    h, rem = divmod(total, 3600)
    m = rem // 60
    if h and m:
        return f"{h}{unit_h} {m}{unit_min}"
    if h:
        return f"{h}{unit_h}"
    return f"{m}{unit_min}"


def command_for(
    action: str, alarm_id: str, user: str, *, text: str = "", duration_s: float | None = None
) -> dict[str, Any]:
    """The engine command for ``action`` on one alarm by ``user`` (docs/protocol.md). ``text`` is the comment
    (acknowledge, comment) or the reason (shelve, remove from service); ``duration_s`` the shelve's length."""
    if action not in ACTION_OPS:
        raise ValueError(f"unknown action {action!r} (known: {', '.join(ACTIONS)})")
    req: dict[str, Any] = {"op": ACTION_OPS[action], "alarm": alarm_id, "user": user}
    if action in ("acknowledge", "comment"):
        req["comment"] = text
    elif action == "shelve":
        if duration_s is None:
            raise ValueError("a shelve needs a duration")
        req["reason"] = text
        req["duration_s"] = float(duration_s)
    elif action == "remove_from_service":
        req["reason"] = text
    return req


def muster_enabled(role: str | None, active: bool | None) -> frozenset[str]:
    """The muster commands a ``role`` may send now: declare while no emergency is known to be declared
    (``active`` False, or None before the engine said anything), end while one is. Nobody else may do either."""
    if role not in MUSTER_ROLES:
        return frozenset()
    return frozenset({"muster_end"} if active else {"muster_declare"})


def muster_command(op: str, user: str, area: str | list[str] = "all") -> dict[str, Any]:
    """The engine command to declare (for ``area``: ``"all"`` or zone ids) or end an emergency by ``user``."""
    if op == "muster_declare":
        return {"op": op, "user": user, "area": area if area == "all" else list(area)}
    if op == "muster_end":
        return {"op": op, "user": user}
    raise ValueError(f"unknown muster command {op!r} (known: {', '.join(MUSTER_OPS)})")
