"""The Part 9 methods of the alarm conditions: Acknowledge and AddComment become engine commands attributed to
the calling site user (the engine checks the role and journals them); ConditionRefresh replays the retained
conditions' latest events; the methods watchfloor has no command for (Enable, Disable, Shelve ...) are refused.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from asyncua import Server, ua
from asyncua.common import event_objects

from console.auth import Credential
from console.link import EngineLink
from console.opcua.address_space import AddressSpace, MethodCallback
from console.opcua.callers import actor, current_caller
from console.opcua.mapping import Condition, refusal_status, status

log = logging.getLogger(__name__)

__all__ = ["MAX_COMMENT", "ConditionMethods"]

#: longest comment passed on to the engine, characters
MAX_COMMENT = 500


class ConditionMethods:
    """The method callbacks of the conditions in ``space``.

    ``link`` carries the commands to the engine, each with the calling session's token (an anonymous session may
    not acknowledge or comment); ``command_timeout_s`` bounds the wait for the engine's reply.
    """

    def __init__(
        self,
        server: Server,
        space: AddressSpace,
        link: EngineLink,
        *,
        command_timeout_s: float,
    ) -> None:
        self.server = server
        self.space = space
        self.link = link
        self.command_timeout_s = command_timeout_s

    def link_type_methods(self) -> None:
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

    def instance_method(self, rel: str) -> MethodCallback:
        """The callback of a condition's own method node (Acknowledge, AddComment; the others are refused)."""
        return {"Acknowledge": self._acknowledge, "AddComment": self._add_comment}.get(
            rel, self._not_supported
        )

    # -- Acknowledge, AddComment -----------------------------------------------------------------------------
    def _check_call(
        self, object_id: ua.NodeId, args: tuple[ua.Variant, ...], method: str
    ) -> tuple[Condition, str, Credential, str] | ua.StatusCode:
        """The condition, comment text, acting user and journal note of an Acknowledge / AddComment call, or
        its error status."""
        if len(args) < 2:
            return status("BadArgumentsMissing")
        if len(args) > 2:
            return status("BadTooManyArguments")
        cond = self.space.of_node(object_id)
        if cond is None:
            log.info("alarms server: %s on unknown condition %s", method, object_id.to_string())
            return status("BadNodeIdUnknown")
        event_id, comment = args[0].Value, args[1].Value
        if not isinstance(event_id, bytes):
            return status("BadTypeMismatch")
        if comment is None:
            text = ""
        elif isinstance(comment, ua.LocalizedText):
            text = comment.Text or ""
        elif isinstance(comment, str):
            text = comment
        else:
            return status("BadTypeMismatch")
        if event_id not in cond.event_ids:
            log.info("alarms server: %s of %s with an unknown or stale EventId", method, cond.alarm_id)
            return status("BadEventIdUnknown")
        cred, via = actor()
        if cred is None:
            log.warning("alarms server: %s of %s from an anonymous session refused: log in to act", method,
                        cond.alarm_id)
            return status("BadUserAccessDenied")
        return cond, text[:MAX_COMMENT], cred, via

    async def _command(self, op: str, cond: Condition, cred: Credential, comment: str) -> ua.StatusCode | None:
        """Send the engine ``op`` on the condition's alarm; None when it is done, else the status to answer."""
        user = cred.user.id
        request = cred.sign({"op": op, "alarm": cond.alarm_id, "comment": comment})
        try:
            fut = self.link.submit(request)
        except RuntimeError as e:
            log.warning("alarms server: %s %s not sent: %s", op, cond.alarm_id, e)
            return status("BadCommunicationError")
        try:
            reply = await asyncio.wait_for(asyncio.wrap_future(fut), self.command_timeout_s)
        except TimeoutError:
            fut.cancel()
            log.warning(
                "alarms server: engine did not answer %s of %s within %.1f s",
                op,
                cond.alarm_id,
                self.command_timeout_s,
            )
            return status("BadTimeout")
        except RuntimeError as e:
            log.warning("alarms server: %s of %s failed: %s", op, cond.alarm_id, e)
            return status("BadCommunicationError")
        cred.take(reply)
        if reply.get("ok"):
            return None
        reason = str(reply.get("reason", "refused"))
        refused = refusal_status(reason, acked=cond.state.acked)
        log.info(
            "alarms server: %s of %s by %s refused by the engine: %s (%s)",
            op,
            cond.alarm_id,
            user,
            reason,
            refused.name,
        )
        return refused

    async def _acknowledge(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """Part 9 Acknowledge(EventId, Comment) -> the engine's ``ack`` command, attributed to the caller."""
        checked = self._check_call(object_id, args, "Acknowledge")
        if isinstance(checked, ua.StatusCode):
            return checked
        cond, text, cred, via = checked
        refused = await self._command("ack", cond, cred, f"{via}: {text}" if text else via)
        if refused is not None:
            return refused
        log.info("alarms server: %s acknowledged by %s %s", cond.alarm_id, cred.user.id, via)
        await self._commented(cond, text, cred.user.id)
        return []

    async def _add_comment(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """Part 9 AddComment(EventId, Comment) -> the engine's ``comment`` command (journaled there)."""
        checked = self._check_call(object_id, args, "AddComment")
        if isinstance(checked, ua.StatusCode):
            return checked
        cond, text, cred, via = checked
        if not text.strip():
            return status("BadInvalidArgument")
        refused = await self._command("comment", cond, cred, f"{via}: {text}")
        if refused is not None:
            return refused
        await self._commented(cond, text, cred.user.id, fire=True)
        return []

    async def _commented(self, cond: Condition, text: str, user: str, *, fire: bool = False) -> None:
        """Keep the comment for the condition's events. After an acknowledgement the engine's delta brings the
        AckedState event; when that delta came in before the reply, the comment gets its own event."""
        if self.space.get(cond.alarm_id) is not cond:
            return  # the condition left meanwhile
        cond.comment, cond.comment_user, cond.comment_s = text, user, time.time()
        if fire or cond.state.acked:
            await self.space.report(cond)

    async def _not_supported(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode:
        return status("BadNotSupported")

    # -- ConditionRefresh ------------------------------------------------------------------------------------
    async def _condition_refresh(self, object_id: ua.NodeId, *args: ua.Variant) -> ua.StatusCode | list[Any]:
        """ConditionRefresh(SubscriptionId) / ConditionRefresh2(SubscriptionId, MonitoredItemId): the current
        state of every retained condition, between a RefreshStartEvent and a RefreshEndEvent."""
        if not args:
            return status("BadArgumentsMissing")
        sid = args[0].Value
        mid = args[1].Value if len(args) > 1 else None
        subs = self.server.iserver.subscription_service
        sub = subs.subscriptions.get(sid) if isinstance(sid, int) else None
        if sub is None:
            return status("BadSubscriptionIdInvalid")
        caller = current_caller()
        owner = getattr(sub, "session_id", None)
        if (
            caller is not None
            and caller.session_id is not None
            and owner is not None
            and owner != caller.session_id
        ):
            return status("BadSubscriptionIdInvalid")
        # asyncua has no public API for this: its own condition_refresh uses the same per-subscription service
        items = sub.monitored_item_srv
        node_of = {m: node for node, mids in items._monitored_events.items() for m in mids}
        if mid is not None and mid not in node_of:
            return status("BadMonitoredItemIdInvalid")
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
        for cond in self.space:
            ev = cond.last_event
            if ev is None or not cond.state.retain:
                continue
            for m in scope:  # the same notification again (same EventId), through the content filter
                if node_of[m] in cond.notifiers:
                    ev.emitting_node = node_of[m]
                    await items.trigger_event(ev, m)
        await bracket(event_objects.RefreshEndEvent())
        return []
