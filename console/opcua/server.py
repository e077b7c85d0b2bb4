"""watchfloor's live alarms as OPC UA Alarms & Conditions (OPC UA Part 9), for a plant DCS or any OPC UA client.

A separate process, like the console: it talks to the engine only over the bus, through one
:class:`console.link.EngineLink` (a snapshot of the live alarm table, then sequence-numbered ``alarm.delta``
messages; a resync on any gap). Every alarm in that table is one ``AlarmConditionType`` instance in an asyncua
server; every change of its Part 9 state is one event notification, and the ``Acknowledge`` method sends the
engine an ``ack`` command that the engine checks (the user's role) and journals, attributed to a site user.

Address space (namespace ``f"{site.opcua.namespace_uri}:alarms"``; docs/opcua-alarms.md has the whole of it)::

    Objects/Alarms                      ns=N;s=Alarms           event notifier; HasNotifier from Server
      EngineLink                        ns=N;s=Alarms.EngineLink  String: waiting / ok / lost
      <zone id>                         ns=N;s=Alarms/<zone id> one event notifier per zone (HasNotifier)
        <alarm id>                      ns=N;s=<alarm id>       AlarmConditionType (ConditionId)

An event of a condition is reported by its zone object, by ``Alarms`` and by the ``Server`` object, so a client
may subscribe to any of the three. The method callbacks learn who is calling from the OPC UA session (username
login maps to a site user; an anonymous session acts as the configured ``ack_user``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import copy
import logging
import math
import signal
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common import event_objects
from asyncua.common.instantiate_util import instantiate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager

from config import ConfigError, Site, load_site
from console.auth import LoginGuard
from console.link import EngineLink
from ingest.protocol.records import AlarmRecord

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_PORT",
    "SEVERITY",
    "AlarmsServer",
    "ConditionState",
    "condition_class",
    "condition_state",
    "main",
    "refusal_status",
]

DEFAULT_PORT = 4841
DEFAULT_ENDPOINT = f"opc.tcp://127.0.0.1:{DEFAULT_PORT}/watchfloor/alarms/"

#: OPC UA Severity (1..1000) of each watchfloor priority
SEVERITY: Mapping[str, int] = MappingProxyType({"low": 250, "medium": 500, "high": 750, "critical": 1000})

#: event ids kept per condition activation: an Acknowledge may name any of them (bounded)
MAX_EVENT_IDS = 32
#: longest comment passed on to the engine, characters
MAX_COMMENT = 500
#: conditions created or updated between two yields to the event loop, so a flood does not stall clients
_BATCH = 50

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
#: optional parts of AlarmConditionType that watchfloor has a state for (added to each condition)
_OPTIONAL_PARTS = (
    ("SuppressedState", ua.ObjectIds.TwoStateVariableType),
    ("OutOfServiceState", ua.ObjectIds.TwoStateVariableType),
    ("LatchedState", ua.ObjectIds.TwoStateVariableType),
    ("ShelvingState", ua.ObjectIds.ShelvedStateMachineType),
)
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


def _status(name: str) -> ua.StatusCode:
    return ua.StatusCode(getattr(ua.StatusCodes, name))


# -- the Part 9 view of an alarm record: pure functions -----------------------------------------------------
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

    A status code carries no text: the reason itself is logged here and journaled by the engine. ``acked``
    (the condition's AckedState as this server knows it) tells "already acknowledged" from "not acknowledgeable
    now" when the engine's text does not.
    """
    r = reason.lower()
    if r.startswith(("unknown user", "unknown role")) or " may not " in r:
        return _status("BadUserAccessDenied")
    if r == "no such alarm":
        return _status("BadNodeIdUnknown")
    if "nothing to acknowledge" in r:
        if r.startswith(("alarm is active_ack", "alarm is latched_ack", "alarm is normal")) or (
            acked is True
            and not r.startswith(("alarm is shelved", "alarm is suppressed", "alarm is out_of_service"))
        ):
            return _status("BadConditionBranchAlreadyAcked")
        return _status(
            "BadInvalidState"
        )  # shelved, suppressed, out of service: not on the list to acknowledge
    if "empty comment" in r:
        return _status("BadInvalidArgument")
    if r.startswith("command failed"):
        return _status("BadInternalError")
    return _status("BadInvalidState")


def _utc(ts_s: float) -> datetime:
    return datetime.fromtimestamp(ts_s, UTC) if math.isfinite(ts_s) else datetime.now(UTC)


def _text(message: Mapping[str, str], lang: str, fallback: str) -> ua.LocalizedText:
    key = "zh-CN" if lang.lower().startswith("zh") else "en"
    text = message.get(key) or message.get("en") or fallback
    return ua.LocalizedText(text, key if message.get(key) else "en")


def _on_off(name: str, on: bool) -> dict[str, tuple[Any, ua.VariantType]]:
    true, false = _ON_OFF_TEXT[name]
    return {
        name: (ua.LocalizedText(true if on else false, "en"), ua.VariantType.LocalizedText),
        f"{name}/Id": (on, ua.VariantType.Boolean),
        f"{name}/TrueState": (ua.LocalizedText(true, "en"), ua.VariantType.LocalizedText),
        f"{name}/FalseState": (ua.LocalizedText(false, "en"), ua.VariantType.LocalizedText),
    }


# -- who is calling a method ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Caller:
    user: User | None
    peer: str
    session_id: ua.NodeId | None


_CALLER: contextvars.ContextVar[_Caller | None] = contextvars.ContextVar(
    "watchfloor_opcua_caller", default=None
)


class _AttributedSession(InternalSession):
    """A session that tells method callbacks who called (asyncua passes them only the object id): the call is
    awaited in the same task, so a context variable set here is seen by the callback."""

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        token = _CALLER.set(_Caller(self.user, str(self.name), getattr(self, "session_id", None)))
        try:
            return await super().call(params)
        finally:
            _CALLER.reset(token)


_ANONYMOUS = User(role=UserRole.Anonymous)


class _AttributedInternalServer(InternalServer):
    def create_session(self, name: str, user: User = _ANONYMOUS, external: bool = False) -> InternalSession:
        return _AttributedSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )


class _SiteUsers(UserManager):
    """Username logins are checked against the site's users (console.auth: SHA-256 digests, lockout after
    failures). An anonymous session may browse, read and subscribe; it acknowledges as the ``ack_user``."""

    def __init__(self, site: Site, *, allow_anonymous: bool) -> None:
        self._guard = LoginGuard(site)
        self._allow_anonymous = allow_anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            if not certificate and self._allow_anonymous:  # asyncua passes b"" for "no certificate"
                return User(role=UserRole.User, name=None)
            return None
        result = self._guard.login(username, password or "")
        if not result.ok or result.user is None:
            log.warning("OPC UA login refused for user id %r (%s)", username, result.reason)
            return None
        log.info("OPC UA login: %s (%s)", result.user.id, result.user.role)
        return User(role=UserRole.User, name=result.user.id)


# -- the condition blueprint: AlarmConditionType instantiated once, cloned per alarm in one AddNodes call ------
@dataclass(frozen=True)
class _Part:
    rel: str  # browse-name path below the condition, '.'-joined; "" = the condition itself
    parent_rel: str | None
    item: ua.AddNodesItem


_ATTRS: dict[ua.NodeClass, tuple[type, tuple[str, ...]]] = {
    ua.NodeClass.Object: (ua.ObjectAttributes, ("DisplayName", "Description", "WriteMask", "UserWriteMask")),
    ua.NodeClass.Variable: (
        ua.VariableAttributes,
        (
            "DisplayName",
            "Description",
            "WriteMask",
            "UserWriteMask",
            "Value",
            "DataType",
            "ValueRank",
            "ArrayDimensions",
            "AccessLevel",
            "UserAccessLevel",
            "MinimumSamplingInterval",
            "Historizing",
        ),
    ),
    ua.NodeClass.Method: (
        ua.MethodAttributes,
        ("DisplayName", "Description", "WriteMask", "UserWriteMask", "Executable", "UserExecutable"),
    ),
}


async def _read_attributes(node: Node, nodeclass: ua.NodeClass) -> Any:
    cls, names = _ATTRS[nodeclass]
    attrs = cls()
    values = await node.read_attributes([getattr(ua.AttributeIds, n) for n in names])
    for name, dv in zip(names, values):
        if dv.StatusCode is not None and dv.StatusCode.is_good() and dv.Value is not None:
            setattr(attrs, name, dv.Value if name == "Value" else dv.Value.Value)
    return attrs


async def _blueprint(server: Server, parent: Node, idx: int) -> list[_Part]:
    """Instantiate one AlarmConditionType with asyncua (mandatory children plus the optional state variables
    watchfloor has), read it back as AddNodes items and delete it. Cloning these items costs one AddNodes call
    per alarm instead of a browse of the type per alarm (about 25 ms each)."""
    root = "__watchfloor_condition_template__"
    cond = await parent.add_object(
        ua.NodeId(root, idx),
        ua.QualifiedName(root, idx),
        objecttype=ua.ObjectIds.AlarmConditionType,
        instantiate_optional=False,
    )
    quiet = logging.getLogger("asyncua.common.copy_node_util")
    level = quiet.level
    quiet.setLevel(
        logging.ERROR
    )  # it warns about attributes a VariableType does not have; they are not needed
    try:
        for name, type_id in _OPTIONAL_PARTS:
            await instantiate(
                cond,
                server.get_node(ua.NodeId(type_id)),
                nodeid=ua.NodeId(f"{root}.{name}", idx),
                bname=ua.QualifiedName(name, 0),
                instantiate_optional=False,
            )
    finally:
        quiet.setLevel(level)
    await cond.add_property(
        ua.NodeId(f"{root}.Messages", idx),
        ua.QualifiedName("Messages", idx),
        ua.Variant([], ua.VariantType.LocalizedText),
    )

    root_item = ua.AddNodesItem()
    root_item.NodeClass = ua.NodeClass.Object
    root_item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    root_item.TypeDefinition = ua.NodeId(ua.ObjectIds.AlarmConditionType)
    root_item.NodeAttributes = await _read_attributes(cond, ua.NodeClass.Object)
    parts = [_Part("", None, root_item)]
    all_nodes = [cond]

    async def walk(node: Node, rel: str) -> None:
        refs = await node.get_references(
            refs=ua.ObjectIds.HierarchicalReferences,
            direction=ua.BrowseDirection.Forward,
            includesubtypes=True,
        )
        for r in refs:
            child = server.get_node(r.NodeId)
            child_rel = f"{rel}.{r.BrowseName.Name}" if rel else r.BrowseName.Name
            item = ua.AddNodesItem()
            item.BrowseName = r.BrowseName
            item.NodeClass = r.NodeClass
            item.ReferenceTypeId = r.ReferenceTypeId
            item.TypeDefinition = r.TypeDefinition
            item.NodeAttributes = await _read_attributes(child, r.NodeClass)
            parts.append(_Part(child_rel, rel, item))
            all_nodes.append(child)
            await walk(child, child_rel)

    await walk(cond, "")
    await _delete_subtree(server, parent.nodeid, cond.nodeid, [n.nodeid for n in all_nodes])
    return parts


async def _delete_subtree(
    server: Server, parent: ua.NodeId, root: ua.NodeId, node_ids: list[ua.NodeId]
) -> None:
    """Delete a condition and its children. Target references are removed only at the parent: asyncua's
    general delete scans the whole address space once per node (about a second per condition)."""
    ref = ua.DeleteReferencesItem()
    ref.SourceNodeId = parent
    ref.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    ref.IsForward = True
    ref.TargetNodeId = root
    ref.DeleteBidirectional = False
    session = server.iserver.isession
    await session.delete_references([ref])
    params = ua.DeleteNodesParameters()
    for nid in node_ids:
        item = ua.DeleteNodesItem()
        item.NodeId = nid
        item.DeleteTargetReferences = False
        params.NodesToDelete.append(item)
    await session.delete_nodes(params)


# -- one condition -------------------------------------------------------------------------------------------
@dataclass
class _Condition:
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


_TRANSITION_OF = {
    "ActiveState": lambda s: s.active,
    "AckedState": lambda s: s.acked,
    "SuppressedState": lambda s: s.suppressed,
    "OutOfServiceState": lambda s: s.out_of_service,
    "LatchedState": lambda s: s.latched,
    "ShelvingState": lambda s: s.shelving,
}

MethodCallback = Callable[..., Awaitable[Any]]


class AlarmsServer:
    """An asyncua server that shows the engine link's live alarm table as Part 9 AlarmConditionType conditions.

    ``link`` is a started :class:`EngineLink` the caller owns. ``endpoint`` is the opc.tcp URL to serve;
    ``ack_user`` (a site user id) acts for anonymous sessions, which otherwise may not acknowledge;
    ``lang`` (``en`` or ``zh-CN``) picks the language of ``Message`` (both are in the ``Messages`` property);
    ``poll_interval_s`` is how often the alarm table is compared with the address space (seconds);
    ``command_timeout_s`` bounds the wait for the engine's reply to an acknowledgement.

    Use ``async with AlarmsServer(...) as server: await server.run(stop_event)``.
    """

    def __init__(
        self,
        site: Site,
        link: EngineLink,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        ack_user: str | None = None,
        lang: str = "en",
        allow_anonymous: bool = True,
        poll_interval_s: float = 0.05,
        command_timeout_s: float = 5.0,
    ) -> None:
        users = {u.id: u for u in site.users}
        if ack_user is not None and ack_user not in users:
            raise ValueError(
                f"ack user {ack_user!r} is not a user of site {site.id} (users: {sorted(users)})"
            )
        self.site = site
        self.link = link
        self.endpoint = endpoint
        self.ack_user = ack_user
        self.lang = "zh-CN" if lang.lower().startswith("zh") else "en"
        self.poll_interval_s = float(poll_interval_s)
        self.command_timeout_s = float(command_timeout_s)
        self.namespace_uri = f"{site.opcua.namespace_uri}:alarms"
        self.server = Server(
            iserver=_AttributedInternalServer(user_manager=_SiteUsers(site, allow_anonymous=allow_anonymous))
        )
        self.ns = 0
        self._allow_anonymous = allow_anonymous
        self._conds: dict[str, _Condition] = {}
        self._by_node: dict[ua.NodeId, _Condition] = {}
        self._areas: dict[str, ua.NodeId] = {}
        self._blueprint: list[_Part] = []
        self._rel_ids: set[str] = set()
        self._alarms_id = ua.NodeId()
        self._link_state_id = ua.NodeId()
        self._version = -1
        self._link_state = ""
        self._dropped_seen = 0
        self._started = False
        self.events_fired = 0  # event notifications built (one per state change, reported by every notifier)
        self.sync_failures = 0

    # -- lifetime ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Build the address space and start serving ``endpoint``."""
        s = self.server
        await s.init()
        s.set_endpoint(self.endpoint)
        s.set_server_name(f"watchfloor alarms ({self.site.id})")
        await s.set_application_uri(f"urn:watchfloor:{self.site.id}:alarms")
        s.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        tokens: list[type] = [ua.UserNameIdentityToken]
        if self._allow_anonymous:
            tokens.insert(0, ua.AnonymousIdentityToken)
        s.set_identity_tokens(tokens)
        self.ns = await s.register_namespace(self.namespace_uri)
        ns = self.ns
        alarms = await s.nodes.objects.add_object(ua.NodeId("Alarms", ns), ua.QualifiedName("Alarms", ns))
        await alarms.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        await s.nodes.server.add_reference(alarms.nodeid, ua.ObjectIds.HasNotifier)
        self._alarms_id = alarms.nodeid
        link_state = await alarms.add_property(
            ua.NodeId("Alarms.EngineLink", ns),
            ua.QualifiedName("EngineLink", ns),
            ua.Variant("waiting", ua.VariantType.String),
        )
        self._link_state_id = link_state.nodeid
        for z in self.site.zones:
            await self._area(z.id, ua.LocalizedText(z.name.get(self.lang), self.lang))
        self._blueprint = await _blueprint(s, alarms, ns)
        self._rel_ids = {p.rel.replace(".", "/") for p in self._blueprint}
        self._link_type_methods()
        await s.start()
        self._started = True
        log.info(
            "alarms server: serving %s (namespace %s = %d) for site %s",
            self.endpoint,
            self.namespace_uri,
            ns,
            self.site.id,
        )

    async def stop(self) -> None:
        """Stop serving (idempotent). The engine link stays with its owner."""
        if self._started:
            self._started = False
            await self.server.stop()
            log.info("alarms server: stopped")

    async def __aenter__(self) -> AlarmsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Follow the engine link's alarm table until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.sync_once()
            except Exception:  # one bad record must not freeze the DCS's view of every other alarm
                self.sync_failures += 1
                if self.sync_failures <= 10 or self.sync_failures % 1000 == 0:
                    log.exception("alarms server: sync failed (%d so far); trying again", self.sync_failures)
            try:
                await asyncio.wait_for(stop.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    # -- public views ------------------------------------------------------------------------------------
    def condition_node_id(self, alarm_id: str) -> ua.NodeId:
        """The ConditionId of an alarm: ``ns=<alarms namespace>;s=<alarm id>``."""
        return ua.NodeId(alarm_id, self.ns)

    def conditions(self) -> Mapping[str, ConditionState]:
        """The Part 9 state of every condition in the address space, by alarm id."""
        return MappingProxyType({k: c.state for k, c in self._conds.items()})

    # -- following the alarm table ---------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Bring the address space in line with the link's alarm table; one event per changed condition."""
        snap = self.link.snapshot()
        table = snap.alarms
        if snap.state != self._link_state:
            self._link_state = snap.state
            await self.server.write_attribute_value(
                self._link_state_id, ua.DataValue(ua.Variant(snap.state, ua.VariantType.String))
            )
            log.info("alarms server: engine link %s", snap.state)
        dropped = snap.counters.alarms_dropped
        if dropped > self._dropped_seen:
            log.warning(
                "alarms server: the engine link dropped %d alarms (table full): their conditions go",
                dropped - self._dropped_seen,
            )
            self._dropped_seen = dropped
        # Quality is Good only while the engine is heard from and the table is in step with it
        good = snap.state == "ok" and table.synced
        n = 0
        if table.synced and table.version != self._version:
            alarms = table.alarms
            for alarm_id in [a for a in self._conds if a not in alarms]:
                await self._remove(self._conds[alarm_id])
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)
            for alarm_id, rec in alarms.items():
                cond = self._conds.get(alarm_id)
                if cond is None:
                    await self._create(rec, good)
                elif rec != cond.record or cond.state.quality_good != good:
                    await self._update(cond, rec, good)
                else:
                    continue
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)
            self._version = table.version  # only once all of it is in: a failure is retried on the next turn
        else:
            for cond in [c for c in self._conds.values() if c.state.quality_good != good]:
                await self._update(cond, cond.record, good)
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)

    async def _area(self, key: str, display: ua.LocalizedText | None = None) -> ua.NodeId:
        nid = self._areas.get(key)
        if nid is None:
            alarms = self.server.get_node(self._alarms_id)
            node = await alarms.add_object(
                ua.NodeId(f"Alarms/{key}", self.ns), ua.QualifiedName(key, self.ns)
            )
            if display is not None:
                await node.write_attribute(ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(display)))
            await node.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
            await alarms.add_reference(node.nodeid, ua.ObjectIds.HasNotifier)
            nid = self._areas[key] = node.nodeid
        return nid

    async def _create(self, rec: AlarmRecord, good: bool) -> None:
        area = rec.zone or rec.area
        parent = await self._area(area) if area else self._alarms_id
        root = self.condition_node_id(rec.id)
        ids: dict[str, ua.NodeId] = {"": root}
        items = []
        for part in self._blueprint:
            # a shallow copy: the address space copies attribute values into its own DataValues, and values are
            # only ever replaced whole afterwards (a deep copy was half the cost of a condition)
            item = copy.copy(part.item)
            if part.rel:
                ids[part.rel] = ua.NodeId(f"{rec.id}.{part.rel}", self.ns)
                item.ParentNodeId = ids[part.parent_rel or ""]
            else:
                item.ParentNodeId = parent
                item.BrowseName = ua.QualifiedName(rec.id, self.ns)
                item.NodeAttributes = copy.copy(item.NodeAttributes)
                item.NodeAttributes.DisplayName = ua.LocalizedText(rec.id)
            item.RequestedNewNodeId = ids[part.rel]
            items.append(item)
        results = await self.server.iserver.isession.add_nodes(items)
        bad = [
            (i.RequestedNewNodeId, r.StatusCode) for i, r in zip(items, results) if not r.StatusCode.is_good()
        ]
        if bad:
            log.error("alarms server: condition %s not created: %s", rec.id, bad[:3])
            await _delete_subtree(
                self.server,
                parent,
                root,
                [i.RequestedNewNodeId for i, r in zip(items, results) if r.StatusCode.is_good()],
            )
            return
        session = self.server.iserver.isession
        for part in self._blueprint:
            if part.item.NodeClass == ua.NodeClass.Method:
                session.add_method_callback(ids[part.rel], self._instance_method(part.rel))
        notifiers = (
            (parent, self._alarms_id, ua.NodeId(ua.ObjectIds.Server))
            if parent != self._alarms_id
            else (self._alarms_id, ua.NodeId(ua.ObjectIds.Server))
        )
        cond = _Condition(
            alarm_id=rec.id,
            node_id=root,
            notifiers=notifiers,
            source_node=parent,
            record=rec,
            state=condition_state(rec, quality_good=good),
            node_ids=list(ids.values()),
        )
        self._conds[rec.id] = cond
        self._by_node[root] = cond
        log.debug("alarms server: condition %s created", rec.id)
        await self._changed(cond, None)

    async def _update(self, cond: _Condition, rec: AlarmRecord, good: bool) -> None:
        before = cond.state
        cond.record = rec
        state = condition_state(rec, quality_good=good)
        if state == before:
            return  # no Part 9 field moved (e.g. a new position): no event
        cond.state = state
        await self._changed(cond, before)

    async def _remove(self, cond: _Condition) -> None:
        before = cond.state
        cond.state = before.returned_to_normal()
        await self._changed(cond, before)
        del self._conds[cond.alarm_id]
        self._by_node.pop(cond.node_id, None)
        await _delete_subtree(self.server, cond.source_node, cond.node_id, cond.node_ids)
        log.debug("alarms server: condition %s removed", cond.alarm_id)

    async def _changed(self, cond: _Condition, before: ConditionState | None) -> None:
        state = cond.state
        now = time.time()
        for name, get in _TRANSITION_OF.items():
            if before is None or get(before) != get(state):
                cond.transitions[name] = state.time_s if math.isfinite(state.time_s) else now
        a, b = state.activated_s, cond.activated_s
        if before is None or not (a == b or (math.isnan(a) and math.isnan(b))):
            # a new activation: acknowledgements and comments of the older one no longer apply
            cond.event_ids.clear()
            cond.activated_s = a
            cond.comment, cond.comment_user, cond.comment_s = "", None, math.nan
        if before is not None and before.severity != state.severity:
            cond.last_severity = before.severity
        elif before is None:
            cond.last_severity = state.severity
        await self._fire(cond)

    # -- events --------------------------------------------------------------------------------------------
    def _fields(self, cond: _Condition) -> dict[str, tuple[Any, ua.VariantType]]:
        s = cond.state
        class_id, class_name = condition_class(s.condition_name)
        f: dict[str, tuple[Any, ua.VariantType]] = {
            "EventId": (cond.event_id, ua.VariantType.ByteString),
            "EventType": (ua.NodeId(ua.ObjectIds.AlarmConditionType), ua.VariantType.NodeId),
            "SourceNode": (cond.source_node, ua.VariantType.NodeId),
            "SourceName": (s.source_name, ua.VariantType.String),
            "Time": (_utc(s.time_s), ua.VariantType.DateTime),
            "ReceiveTime": (datetime.now(UTC), ua.VariantType.DateTime),
            "Message": (_text(s.message, self.lang, cond.alarm_id), ua.VariantType.LocalizedText),
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
        f.update(_on_off("ActiveState", s.active))
        f.update(_on_off("AckedState", s.acked))
        f.update(_on_off("SuppressedState", s.suppressed))
        f.update(_on_off("OutOfServiceState", s.out_of_service))
        f.update(_on_off("LatchedState", s.latched))
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

    async def _fire(self, cond: _Condition) -> None:
        """Write the condition's nodes and report one event notification (a new EventId) by every notifier."""
        cond.event_id = uuid.uuid4().bytes
        cond.event_ids.append(cond.event_id)
        fields = self._fields(cond)
        write = self.server.write_attribute_value
        for path, (value, vtype) in fields.items():
            if path in self._rel_ids:
                await write(
                    ua.NodeId(f"{cond.alarm_id}.{path.replace('/', '.')}", self.ns),
                    ua.DataValue(ua.Variant(value, vtype)),
                )
        ev = event_objects.AlarmCondition()
        for path, (value, vtype) in fields.items():
            ev.add_property(path, value, vtype)
        ev.add_property(
            "NodeId", cond.node_id, ua.VariantType.NodeId
        )  # the ConditionId (select clause NodeId)
        subs = self.server.iserver.subscription_service
        for notifier in cond.notifiers:
            ev.emitting_node = notifier
            await subs.trigger_event(ev)
        cond.last_event = ev
        self.events_fired += 1

    # -- methods -------------------------------------------------------------------------------------------
    def _link_type_methods(self) -> None:
        """Clients call Part 9 methods by the type's MethodId with the condition as ObjectId: link those."""
        session = self.server.iserver.isession
        links: dict[int, MethodCallback] = {
            ua.ObjectIds.AcknowledgeableConditionType_Acknowledge: self._acknowledge,
            ua.ObjectIds.ConditionType_AddComment: self._add_comment,
            ua.ObjectIds.ConditionType_Enable: self._not_supported,
            ua.ObjectIds.ConditionType_Disable: self._not_supported,
            ua.ObjectIds.ConditionType_ConditionRefresh: self._condition_refresh,
            ua.ObjectIds.ConditionType_ConditionRefresh2: self._condition_refresh,
            ua.ObjectIds.ShelvedStateMachineType_Unshelve: self._not_supported,
            ua.ObjectIds.ShelvedStateMachineType_OneShotShelve: self._not_supported,
            ua.ObjectIds.ShelvedStateMachineType_TimedShelve: self._not_supported,
            ua.ObjectIds.ShelvedStateMachineType_Unshelve2: self._not_supported,
            ua.ObjectIds.ShelvedStateMachineType_OneShotShelve2: self._not_supported,
            ua.ObjectIds.ShelvedStateMachineType_TimedShelve2: self._not_supported,
        }
        for oid, cb in links.items():
            session.add_method_callback(ua.NodeId(oid), cb)

    def _instance_method(self, rel: str) -> MethodCallback:
        """The callback of a condition's own method node (Acknowledge, AddComment; the others are refused)."""
        return {"Acknowledge": self._acknowledge, "AddComment": self._add_comment}.get(
            rel, self._not_supported
        )

    def _condition_of(self, object_id: ua.NodeId) -> _Condition | None:
        cond = self._by_node.get(object_id)
        if (
            cond is None
            and isinstance(object_id.Identifier, str)
            and object_id.Identifier.endswith(".ShelvingState")
        ):
            cond = self._by_node.get(
                ua.NodeId(object_id.Identifier[: -len(".ShelvingState")], object_id.NamespaceIndex)
            )
        return cond

    def _actor(self) -> tuple[str | None, str]:
        """(site user id, how to describe the caller in the journal) of the session calling a method."""
        caller = _CALLER.get()
        peer = caller.peer if caller is not None else "?"
        name = caller.user.name if caller is not None and caller.user is not None else None
        if name:
            return name, f"via OPC UA from {peer}"
        if self.ack_user:
            return self.ack_user, f"via OPC UA from {peer}, anonymous session acting as {self.ack_user}"
        return None, f"via OPC UA from {peer}, anonymous session"

    async def _engine(self, request: dict[str, Any]) -> dict[str, Any] | ua.StatusCode:
        try:
            fut = self.link.submit(request)
        except RuntimeError as e:
            log.warning("alarms server: %s %s not sent: %s", request["op"], request.get("alarm"), e)
            return _status("BadCommunicationError")
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), self.command_timeout_s)
        except TimeoutError:
            fut.cancel()
            log.warning(
                "alarms server: engine did not answer %s of %s within %.1f s",
                request["op"],
                request.get("alarm"),
                self.command_timeout_s,
            )
            return _status("BadTimeout")
        except RuntimeError as e:
            log.warning("alarms server: %s of %s failed: %s", request["op"], request.get("alarm"), e)
            return _status("BadCommunicationError")

    def _check_call(
        self, object_id: ua.NodeId, args: tuple[ua.Variant, ...], method: str
    ) -> tuple[_Condition, bytes, str] | ua.StatusCode:
        """The condition, EventId and comment text of an Acknowledge / AddComment call, or its error status."""
        if len(args) < 2:
            return _status("BadArgumentsMissing")
        if len(args) > 2:
            return _status("BadTooManyArguments")
        cond = self._condition_of(object_id)
        if cond is None:
            log.info("alarms server: %s on unknown condition %s", method, object_id.to_string())
            return _status("BadNodeIdUnknown")
        event_id, comment = args[0].Value, args[1].Value
        if not isinstance(event_id, bytes):
            return _status("BadTypeMismatch")
        if comment is None:
            text = ""
        elif isinstance(comment, ua.LocalizedText):
            text = comment.Text or ""
        elif isinstance(comment, str):
            text = comment
        else:
            return _status("BadTypeMismatch")
        if event_id not in cond.event_ids:
            log.info("alarms server: %s of %s with an unknown or stale EventId", method, cond.alarm_id)
            return _status("BadEventIdUnknown")
        return cond, event_id, text[:MAX_COMMENT]

    async def _acknowledge(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """Part 9 Acknowledge(EventId, Comment) -> the engine's ``ack`` command, attributed to the caller."""
        checked = self._check_call(object_id, args, "Acknowledge")
        if isinstance(checked, ua.StatusCode):
            return checked
        cond, _, text = checked
        user, via = self._actor()
        if user is None:
            log.warning(
                "alarms server: acknowledgement of %s from an anonymous session refused: no ack user is "
                "configured",
                cond.alarm_id,
            )
            return _status("BadUserAccessDenied")
        comment = f"{via}: {text}" if text else via
        reply = await self._engine({"op": "ack", "alarm": cond.alarm_id, "user": user, "comment": comment})
        if isinstance(reply, ua.StatusCode):
            return reply
        if not reply.get("ok"):
            reason = str(reply.get("reason", "refused"))
            status = refusal_status(reason, acked=cond.state.acked)
            log.info(
                "alarms server: acknowledgement of %s by %s refused by the engine: %s (%s)",
                cond.alarm_id,
                user,
                reason,
                status.name,
            )
            return status
        log.info("alarms server: %s acknowledged by %s %s", cond.alarm_id, user, via)
        await self._commented(cond, text, user)
        return []

    async def _add_comment(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """Part 9 AddComment(EventId, Comment) -> the engine's ``comment`` command (journaled there)."""
        checked = self._check_call(object_id, args, "AddComment")
        if isinstance(checked, ua.StatusCode):
            return checked
        cond, _, text = checked
        user, via = self._actor()
        if user is None:
            return _status("BadUserAccessDenied")
        if not text.strip():
            return _status("BadInvalidArgument")
        reply = await self._engine(
            {"op": "comment", "alarm": cond.alarm_id, "user": user, "comment": f"{via}: {text}"}
        )
        if isinstance(reply, ua.StatusCode):
            return reply
        if not reply.get("ok"):
            reason = str(reply.get("reason", "refused"))
            log.info(
                "alarms server: comment on %s by %s refused by the engine: %s", cond.alarm_id, user, reason
            )
            return refusal_status(reason, acked=cond.state.acked)
        await self._commented(cond, text, user, fire=True)
        return []

    async def _commented(self, cond: _Condition, text: str, user: str, *, fire: bool = False) -> None:
        """Keep the comment for the condition's events. After an acknowledgement the engine's delta brings the
        AckedState event; when that delta came in before the reply, the comment gets its own event."""
        if self._conds.get(cond.alarm_id) is not cond:
            return  # the condition left meanwhile
        cond.comment, cond.comment_user, cond.comment_s = text, user, time.time()
        if fire or cond.state.acked:
            await self._fire(cond)

    async def _not_supported(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode:
        return _status("BadNotSupported")

    async def _condition_refresh(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """ConditionRefresh(SubscriptionId) / ConditionRefresh2(SubscriptionId, MonitoredItemId): the current
        state of every retained condition, between a RefreshStartEvent and a RefreshEndEvent."""
        if not args:
            return _status("BadArgumentsMissing")
        sid = args[0].Value
        mid = args[1].Value if len(args) > 1 else None
        subs = self.server.iserver.subscription_service
        sub = subs.subscriptions.get(sid) if isinstance(sid, int) else None
        if sub is None:
            return _status("BadSubscriptionIdInvalid")
        caller = _CALLER.get()
        owner = getattr(sub, "session_id", None)
        if (
            caller is not None
            and caller.session_id is not None
            and owner is not None
            and owner != caller.session_id
        ):
            return _status("BadSubscriptionIdInvalid")
        # asyncua has no public API for this: its own condition_refresh uses the same per-subscription service
        items = sub.monitored_item_srv
        node_of = {m: node for node, mids in items._monitored_events.items() for m in mids}
        if mid is not None and mid not in node_of:
            return _status("BadMonitoredItemIdInvalid")
        scope = [mid] if mid is not None else list(node_of)

        async def bracket(ev: Any) -> None:
            # Part 9 4.5: RefreshStart / RefreshEnd ignore the content filter; every copy has the same EventId
            ev.EventId = uuid.uuid4().bytes
            ev.Time = ev.ReceiveTime = datetime.now(UTC)
            ev.SourceNode = ua.NodeId(ua.ObjectIds.Server)
            ev.SourceName = "Server"
            for m in scope:
                mdata = items._monitored_items.get(m)
                if mdata is None or mdata.filter is None:
                    continue
                fields = ua.EventFieldList()
                fields.ClientHandle = mdata.client_handle
                fields.EventFields = ev.to_event_fields(mdata.filter.SelectClauses)
                await items.isub.enqueue_event(m, fields, mdata.queue_size)

        await bracket(event_objects.RefreshStartEvent())
        for cond in list(self._conds.values()):
            ev = cond.last_event
            if ev is None or not cond.state.retain:
                continue
            for m in scope:  # the same notification again (same EventId), through the content filter
                if node_of[m] in cond.notifiers:
                    ev.emitting_node = node_of[m]
                    await items.trigger_event(ev, m)
        await bracket(event_objects.RefreshEndEvent())
        return []


# -- the command line ----------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="watchfloor alarms-server",
        description="Serve watchfloor's live alarms as OPC UA Alarms & Conditions (Part 9)",
    )
    ap.add_argument("--site", required=True, help="site file")
    ap.add_argument(
        "--endpoint", default=DEFAULT_ENDPOINT, help=f"opc.tcp URL to serve (default {DEFAULT_ENDPOINT})"
    )
    ap.add_argument(
        "--ack-user",
        default=None,
        help="site user id that anonymous OPC UA sessions acknowledge as (default: they may not)",
    )
    ap.add_argument(
        "--no-anonymous", action="store_true", help="refuse anonymous sessions (username login only)"
    )
    ap.add_argument("--lang", default="en", choices=("en", "zh-CN"), help="language of the Message field")
    ap.add_argument(
        "--publish-endpoint", default=None, help="engine PUB endpoint (default: the site's bus.publish)"
    )
    ap.add_argument(
        "--command-endpoint", default=None, help="engine command endpoint (default: the site's bus.command)"
    )
    ap.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    return ap


async def _serve(site: Site, link: EngineLink, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread: the caller owns signals
            pass
    try:
        async with AlarmsServer(
            site,
            link,
            endpoint=args.endpoint,
            ack_user=args.ack_user,
            lang=args.lang,
            allow_anonymous=not args.no_anonymous,
        ) as server:
            await server.run(stop)
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def main(argv: list[str] | None = None) -> int:
    """``watchfloor alarms-server``: serve the live alarms over OPC UA until SIGTERM or Ctrl-C. Returns the exit
    code (2 for a bad site file or option)."""
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    try:
        site = load_site(args.site)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    users = {u.id for u in site.users}
    if args.ack_user is not None and args.ack_user not in users:
        print(
            f"--ack-user {args.ack_user!r} is not a user of site {site.id} (users: {', '.join(sorted(users))})",
            file=sys.stderr,
        )
        return 2
    if not args.endpoint.startswith("opc.tcp://"):
        print(f"--endpoint must be an opc.tcp:// URL, got {args.endpoint!r}", file=sys.stderr)
        return 2
    # asyncua logs every request at INFO: keep its warnings, not its chatter
    logging.getLogger("asyncua").setLevel(max(logging.WARNING, logging.getLogger().getEffectiveLevel()))
    link = EngineLink(site, publish_endpoint=args.publish_endpoint, command_endpoint=args.command_endpoint)
    with link:
        asyncio.run(_serve(site, link, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
