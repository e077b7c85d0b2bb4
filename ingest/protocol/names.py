"""The names of the wire protocol, defined once: topics, message kinds, alarm states and priorities, quality
codes, person actions and their ops, the role tables, permit ops and states, wearable events.

The engine, the adapters, the console pages, the OPC UA server and the tests import these; nothing is copied.
docs/protocol.md documents each one.
"""

from __future__ import annotations

from collections.abc import Mapping

from config.rules import DETECTION_CLASSES

__all__ = [
    "TOPIC_POSITIONS", "TOPIC_SENSORS", "TOPIC_ALARM_DELTA", "TOPIC_STATUS", "TOPIC_NOTIFY", "TOPIC_FLOOD",
    "TOPIC_GASFIELD", "TOPIC_PERMITS", "TOPIC_MUSTER", "TOPIC_FENCE", "TOPIC_PERMIT_REPLY",
    "PRIORITIES", "PRIORITY_RANK", "ALARM_STATES", "UNACK_STATES", "OFF_LIST_STATES",
    "QUALITY_GOOD", "QUALITY_UNCERTAIN", "QUALITY_BAD", "QUALITY_NO_DATA", "QUALITY_NAMES", "REJECT_GATED",
    "ACTIONS", "ACTION_OPS", "HORN_OP", "HORN_ROLES", "NEEDS_REASON", "ROLE_ACTIONS", "ROLES", "MUSTER_OPS", "MUSTER_ROLES",
    "PERMIT_STATES", "PERMIT_OPS", "PERMIT_ROLES", "PERMIT_BOARDS", "WEARABLE_EVENTS", "DETECTION_CLASSES",
]

# -- engine -> consoles (PUB), docs/protocol.md "Engine -> consoles" ------------------------------------------
TOPIC_POSITIONS = "display.positions"
TOPIC_SENSORS = "display.sensors"
TOPIC_ALARM_DELTA = "alarm.delta"
TOPIC_STATUS = "engine.status"
TOPIC_NOTIFY = "alarm.notify"  # an escalation step: tell the people of a role
TOPIC_FLOOD = "alarm.flood"  # an alarm flood at an operator position began or ended
TOPIC_GASFIELD = "display.gasfield"  # the gas detectors interpolated onto a grid, 1 Hz
TOPIC_PERMITS = "permit.board"  # the permits that matter now, on change and every 5 s
TOPIC_MUSTER = "muster.status"  # the emergency muster, on declare / end and ~1 Hz while active
TOPIC_FENCE = "zone.fence"  # omlox-style region entry / exit events
TOPIC_PERMIT_REPLY = "permit.reply"  # the engine's reply to a permit command from the permits adapter

# -- alarms (ISA-18.2) ------------------------------------------------------------------------------------
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
PRIORITY_RANK: Mapping[str, int] = {"low": 1, "medium": 2, "high": 3, "critical": 4}
#: every state of an alarm; ``normal`` takes an alarm out of the live table
ALARM_STATES: tuple[str, ...] = (
    "normal", "active_unack", "active_ack", "rtn_unack", "latched_unack", "latched_ack", "shelved", "suppressed",
    "out_of_service",
)
UNACK_STATES: frozenset[str] = frozenset({"active_unack", "latched_unack", "rtn_unack"})
#: kept in the table but taken off the operator's list by a person or a rule
OFF_LIST_STATES: frozenset[str] = frozenset({"shelved", "suppressed", "out_of_service", "normal"})

# -- quality of a sensor value (OPC UA status: Good, Uncertain, Bad; no data yet or stale) -------------------
QUALITY_GOOD, QUALITY_UNCERTAIN, QUALITY_BAD, QUALITY_NO_DATA = 0, 1, 2, 3
#: the engine's reject counter of UWB fixes the tracker did not believe (a quality figure, not bad input)
REJECT_GATED = "uwb: fix gated by the tracker (a jump the motion model cannot explain)"
QUALITY_NAMES: Mapping[int, str] = {QUALITY_GOOD: "good", QUALITY_UNCERTAIN: "uncertain", QUALITY_BAD: "bad",
                                    QUALITY_NO_DATA: "no_data"}

# -- person actions on alarms, and who may take them -------------------------------------------------------
#: the person actions, in the order of the workstation's buttons
ACTIONS: tuple[str, ...] = ("acknowledge", "reset", "shelve", "unshelve", "remove_from_service",
                            "return_to_service", "comment")
#: action -> the ``op`` of its engine command (docs/protocol.md, "Console -> engine")
ACTION_OPS: Mapping[str, str] = {a: ("ack" if a == "acknowledge" else a) for a in ACTIONS}
#: actions the engine refuses without a text (shelve and out of service need a reason, a comment its text)
NEEDS_REASON: frozenset[str] = frozenset({"shelve", "remove_from_service", "comment"})
_SUPERVISING = frozenset(ACTIONS)
#: role -> the alarm actions it may take; the engine checks this, the pages only offer what it allows
ROLE_ACTIONS: Mapping[str, frozenset[str]] = {
    "operator": frozenset({"acknowledge", "reset", "comment"}),
    "supervisor": _SUPERVISING,
    "safety_manager": frozenset({"comment"}),
    "admin": _SUPERVISING,
    "field_worker": frozenset(),  # phone pages only (a watcher signing in, a hazard report): no alarm actions
}
ROLES: tuple[str, ...] = tuple(ROLE_ACTIONS)

#: silencing the control room's horn for a minute (ingest/protocol/horn.py): the command, and who may send it
#: (whoever may acknowledge alarms)
HORN_OP = "silence_horn"
HORN_ROLES: frozenset[str] = frozenset(r for r, acts in ROLE_ACTIONS.items() if "acknowledge" in acts)

#: the emergency muster's commands: declare, then end; and who may send them
MUSTER_OPS: tuple[str, ...] = ("muster_declare", "muster_end")
MUSTER_ROLES: frozenset[str] = frozenset({"supervisor", "admin"})

# -- permits to work ---------------------------------------------------------------------------------------
PERMIT_STATES: tuple[str, ...] = ("requested", "approved", "active", "suspended", "closed", "expired", "cancelled")
PERMIT_OPS: tuple[str, ...] = ("permit_request", "permit_approve", "permit_activate", "permit_suspend",
                               "permit_resume", "permit_close", "permit_gas_test", "permit_cancel", "permit_jsa",
                               "permit_signin")
_APPLYING = frozenset({"operator", "supervisor", "safety_manager", "admin"})
#: who may do what with permits (the engine checks; applicants may be anyone with a user account). The engine
#: also checks who the person is: the approver is not the applicant, an operator cancels only their own request,
#: only the permit's own watcher signs in (a field worker whose account has the watcher's tag)
PERMIT_ROLES: Mapping[str, frozenset[str]] = {
    "permit_request": _APPLYING,
    "permit_jsa": _APPLYING,
    "permit_gas_test": frozenset({"operator", "supervisor", "admin"}),
    "permit_approve": frozenset({"supervisor", "safety_manager", "admin"}),
    "permit_activate": frozenset({"supervisor", "admin"}),
    "permit_suspend": frozenset({"operator", "supervisor", "safety_manager", "admin"}),
    "permit_resume": frozenset({"supervisor", "admin"}),
    "permit_close": frozenset({"supervisor", "admin"}),
    "permit_cancel": _APPLYING,
    "permit_signin": frozenset({"field_worker"}),
}
#: the permit board's columns, most urgent first
PERMIT_BOARDS: tuple[str, ...] = ("red", "amber", "green", "grey")

# -- field events ------------------------------------------------------------------------------------------
WEARABLE_EVENTS: tuple[str, ...] = ("sos", "fall", "battery_low")
