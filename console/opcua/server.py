"""watchfloor's live alarms as OPC UA Alarms & Conditions (OPC UA Part 9), for a plant DCS or any OPC UA client.

A separate process, like the console: it talks to the engine only over the bus, through one
:class:`console.link.EngineLink` (a snapshot of the live alarm table, then sequence-numbered ``alarm.delta``
messages; a resync on any gap). Every alarm in that table is one ``AlarmConditionType`` instance in an asyncua
server; every change of its Part 9 state is one event notification, and the ``Acknowledge`` method sends the
engine an ``ack`` command that the engine checks (the user's role) and journals, attributed to a site user.

This module runs the server (:class:`AlarmsServer`: lifetime, following the alarm table) and its command line
(``watchfloor alarms-server``, ``python -m console.opcua.server``). The parts it composes:
:mod:`console.opcua.mapping` (an alarm record as Part 9 state and event fields: pure),
:mod:`console.opcua.address_space` (the nodes and events), :mod:`console.opcua.methods` (Acknowledge,
AddComment, ConditionRefresh) and :mod:`console.opcua.callers` (logins, who is calling).

An event of a condition is reported by its zone object, by ``Alarms`` and by the ``Server`` object, so a client
may subscribe to any of the three. The method callbacks learn who is calling from the OPC UA session (username
login is checked by the engine and gives the session the engine's token; an anonymous session may only watch).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from collections.abc import Mapping
from types import MappingProxyType

from asyncua import Server, ua

from config import Site
from console.link import EngineLink
from console.opcua.address_space import AddressSpace
from console.opcua.callers import AttributedInternalServer, SiteUsers
from console.opcua.mapping import (
    SEVERITY,
    Condition,
    ConditionState,
    condition_class,
    condition_state,
    refusal_status,
)
from console.opcua.methods import ConditionMethods
from console.startup import load_site_or_report, start_logging
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

#: conditions created or updated between two yields to the event loop, so a flood does not stall clients
_BATCH = 50


class AlarmsServer:
    """An asyncua server that shows the engine link's live alarm table as Part 9 AlarmConditionType conditions.

    ``link`` is a started :class:`EngineLink` the caller owns. ``endpoint`` is the opc.tcp URL to serve;
    anonymous sessions (when allowed) may browse and subscribe but not act: acting needs a username login, which
    the engine checks; the tokens of open sessions are renewed every ``renew_every_s``;
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
        lang: str = "en",
        allow_anonymous: bool = True,
        poll_interval_s: float = 0.05,
        command_timeout_s: float = 5.0,
        renew_every_s: float | None = None,
    ) -> None:
        self.site = site
        self.link = link
        self.endpoint = endpoint
        self.renew_every_s = float(renew_every_s or min(60.0, site.access.idle_logout_s / 3))
        self.lang = "zh-CN" if lang.lower().startswith("zh") else "en"
        self.poll_interval_s = float(poll_interval_s)
        self.command_timeout_s = float(command_timeout_s)
        self.namespace_uri = f"{site.opcua.namespace_uri}:alarms"
        self.users = SiteUsers(link, allow_anonymous=allow_anonymous)
        self.server = Server(
            iserver=AttributedInternalServer(user_manager=self.users)
        )
        self._allow_anonymous = allow_anonymous
        self._space = AddressSpace(self.server, self.lang)
        self._methods = ConditionMethods(
            self.server, self._space, link, command_timeout_s=self.command_timeout_s
        )
        self._version = -1
        self._link_state = ""
        self._dropped_seen = 0
        self._started = False
        self.sync_failures = 0

    @property
    def ns(self) -> int:
        """The namespace index of the alarms namespace (0 before :meth:`start`)."""
        return self._space.ns

    @property
    def events_fired(self) -> int:
        """Event notifications built (one per state change, reported by every notifier)."""
        return self._space.events_fired

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
        await self._space.build(self.namespace_uri, self.site, self._methods.instance_method)
        self._methods.link_type_methods()
        await s.start()
        self._started = True
        log.info(
            "alarms server: serving %s (namespace %s = %d) for site %s",
            self.endpoint,
            self.namespace_uri,
            self.ns,
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
        """Follow the engine link's alarm table until ``stop`` is set; keep open sessions' logins fresh."""
        next_renew = time.monotonic() + self.renew_every_s
        while not stop.is_set():
            if time.monotonic() >= next_renew:
                next_renew = time.monotonic() + self.renew_every_s
                self.users.renew()
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
        return self._space.condition_node_id(alarm_id)

    def conditions(self) -> Mapping[str, ConditionState]:
        """The Part 9 state of every condition in the address space, by alarm id."""
        return MappingProxyType({c.alarm_id: c.state for c in self._space})

    # -- following the alarm table ---------------------------------------------------------------------
    async def sync_once(self) -> None:
        """Bring the address space in line with the link's alarm table; one event per changed condition."""
        snap = self.link.snapshot()
        table = snap.alarms
        if snap.state != self._link_state:
            self._link_state = snap.state
            await self._space.set_link_state(snap.state)
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
            for cond in [c for c in self._space if c.alarm_id not in alarms]:
                await self._remove(cond)
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)
            for alarm_id, rec in alarms.items():
                cond = self._space.get(alarm_id)
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
            for cond in [c for c in self._space if c.state.quality_good != good]:
                await self._update(cond, cond.record, good)
                n += 1
                if n % _BATCH == 0:
                    await asyncio.sleep(0)

    async def _create(self, rec: AlarmRecord, good: bool) -> None:
        cond = await self._space.add(rec, good)
        if cond is not None:
            await self._changed(cond, None)

    async def _update(self, cond: Condition, rec: AlarmRecord, good: bool) -> None:
        before = cond.state
        cond.record = rec
        state = condition_state(rec, quality_good=good)
        if state == before:
            return  # no Part 9 field moved (e.g. a new position): no event
        cond.state = state
        await self._changed(cond, before)

    async def _remove(self, cond: Condition) -> None:
        before = cond.state
        cond.state = before.returned_to_normal()
        await self._changed(cond, before)
        await self._space.remove(cond)

    async def _changed(self, cond: Condition, before: ConditionState | None) -> None:
        cond.changed(before, time.time())
        await self._space.report(cond)


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
    start_logging(args.log_level)
    site = load_site_or_report(args.site)
    if site is None:
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
