"""The alarms address space: the ``Alarms`` folder, one notifier object per zone and one AlarmConditionType node
tree per alarm, cloned from a blueprint; writing a condition's nodes and reporting its events.

Address space (namespace ``f"{site.opcua.namespace_uri}:alarms"``; docs/opcua-alarms.md has the whole of it)::

    Objects/Alarms                      ns=N;s=Alarms           event notifier; HasNotifier from Server
      EngineLink                        ns=N;s=Alarms.EngineLink  String: waiting / ok / lost
      <zone id>                         ns=N;s=Alarms/<zone id> one event notifier per zone (HasNotifier)
        <alarm id>                      ns=N;s=<alarm id>       AlarmConditionType (ConditionId)
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from asyncua import Node, Server, ua
from asyncua.common import event_objects
from asyncua.common.instantiate_util import instantiate

from config import Site
from console.opcua.mapping import Condition, condition_state, event_fields
from ingest.protocol.records import AlarmRecord

log = logging.getLogger(__name__)

__all__ = ["AddressSpace", "MethodCallback"]

MethodCallback = Callable[..., Awaitable[Any]]

#: optional parts of AlarmConditionType that watchfloor has a state for (added to each condition)
_OPTIONAL_PARTS = (
    ("SuppressedState", ua.ObjectIds.TwoStateVariableType),
    ("OutOfServiceState", ua.ObjectIds.TwoStateVariableType),
    ("LatchedState", ua.ObjectIds.TwoStateVariableType),
    ("ShelvingState", ua.ObjectIds.ShelvedStateMachineType),
)


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
    # it warns about attributes a VariableType does not have; they are not needed
    quiet.setLevel(logging.ERROR)
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


class AddressSpace:
    """The alarms part of ``server``'s address space and the conditions in it, by alarm id and by node id.

    ``lang`` (``en`` or ``zh-CN``) picks the language of ``Message``. :meth:`build` once before the server
    starts; then :meth:`add`, :meth:`report` and :meth:`remove` conditions as the alarm table changes.
    """

    def __init__(self, server: Server, lang: str) -> None:
        self.server = server
        self.lang = lang
        self.ns = 0
        self.alarms_id = ua.NodeId()
        self.events_fired = 0  # event notifications built (one per state change, reported by every notifier)
        self._conds: dict[str, Condition] = {}
        self._by_node: dict[ua.NodeId, Condition] = {}
        self._areas: dict[str, ua.NodeId] = {}
        self._blueprint: list[_Part] = []
        self._rel_ids: set[str] = set()
        self._link_state_id = ua.NodeId()
        self._instance_method: Callable[[str], MethodCallback] | None = None

    async def build(
        self, namespace_uri: str, site: Site, instance_method: Callable[[str], MethodCallback]
    ) -> None:
        """Register ``namespace_uri``; add ``Alarms``, its ``EngineLink`` property and one object per zone of
        ``site``; make the condition blueprint. ``instance_method`` gives the callback of a condition's own
        method node by its browse path (e.g. ``"Acknowledge"``)."""
        s = self.server
        self._instance_method = instance_method
        self.ns = ns = await s.register_namespace(namespace_uri)
        alarms = await s.nodes.objects.add_object(ua.NodeId("Alarms", ns), ua.QualifiedName("Alarms", ns))
        await alarms.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        await s.nodes.server.add_reference(alarms.nodeid, ua.ObjectIds.HasNotifier)
        self.alarms_id = alarms.nodeid
        link_state = await alarms.add_property(
            ua.NodeId("Alarms.EngineLink", ns),
            ua.QualifiedName("EngineLink", ns),
            ua.Variant("waiting", ua.VariantType.String),
        )
        self._link_state_id = link_state.nodeid
        for z in site.zones:
            await self._area(z.id, ua.LocalizedText(z.name.get(self.lang), self.lang))
        self._blueprint = await _blueprint(s, alarms, ns)
        self._rel_ids = {p.rel.replace(".", "/") for p in self._blueprint}

    async def set_link_state(self, state: str) -> None:
        """Show the engine link's state (waiting / ok / lost) in ``Alarms.EngineLink``."""
        await self.server.write_attribute_value(
            self._link_state_id, ua.DataValue(ua.Variant(state, ua.VariantType.String))
        )

    # -- the conditions ------------------------------------------------------------------------------------
    def condition_node_id(self, alarm_id: str) -> ua.NodeId:
        """The ConditionId of an alarm: ``ns=<alarms namespace>;s=<alarm id>``."""
        return ua.NodeId(alarm_id, self.ns)

    def get(self, alarm_id: str) -> Condition | None:
        """The condition of an alarm, if it is in the address space."""
        return self._conds.get(alarm_id)

    def __iter__(self) -> Iterator[Condition]:
        return iter(list(self._conds.values()))

    def of_node(self, object_id: ua.NodeId) -> Condition | None:
        """The condition a method was called on: the condition node or its ShelvingState."""
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

    async def _area(self, key: str, display: ua.LocalizedText | None = None) -> ua.NodeId:
        nid = self._areas.get(key)
        if nid is None:
            alarms = self.server.get_node(self.alarms_id)
            node = await alarms.add_object(
                ua.NodeId(f"Alarms/{key}", self.ns), ua.QualifiedName(key, self.ns)
            )
            if display is not None:
                await node.write_attribute(ua.AttributeIds.DisplayName, ua.DataValue(ua.Variant(display)))
            await node.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
            await alarms.add_reference(node.nodeid, ua.ObjectIds.HasNotifier)
            nid = self._areas[key] = node.nodeid
        return nid

    async def add(self, rec: AlarmRecord, good: bool) -> Condition | None:
        """Clone the blueprint for a new alarm below its zone (or ``Alarms``); None if that failed (logged). No
        event is reported yet."""
        area = rec.zone or rec.area
        parent = await self._area(area) if area else self.alarms_id
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
        session = self.server.iserver.isession
        results = await session.add_nodes(items)
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
            return None
        assert self._instance_method is not None, "build() first"
        for part in self._blueprint:
            if part.item.NodeClass == ua.NodeClass.Method:
                session.add_method_callback(ids[part.rel], self._instance_method(part.rel))
        notifiers = (
            (parent, self.alarms_id, ua.NodeId(ua.ObjectIds.Server))
            if parent != self.alarms_id
            else (self.alarms_id, ua.NodeId(ua.ObjectIds.Server))
        )
        cond = Condition(
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
        return cond

    async def remove(self, cond: Condition) -> None:
        """Delete a condition's nodes (its last event is the caller's to report first)."""
        del self._conds[cond.alarm_id]
        self._by_node.pop(cond.node_id, None)
        await _delete_subtree(self.server, cond.source_node, cond.node_id, cond.node_ids)
        log.debug("alarms server: condition %s removed", cond.alarm_id)

    async def report(self, cond: Condition) -> None:
        """Write the condition's nodes and report one event notification (a new EventId) by every notifier."""
        cond.new_event_id()
        fields = event_fields(cond, self.lang)
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
        # the ConditionId (select clause NodeId)
        ev.add_property("NodeId", cond.node_id, ua.VariantType.NodeId)
        subs = self.server.iserver.subscription_service
        for notifier in cond.notifiers:
            ev.emitting_node = notifier
            await subs.trigger_event(ev)
        cond.last_event = ev
        self.events_fired += 1
