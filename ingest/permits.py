"""The permits adapter: the plant's permit-to-work system talks to watchfloor over MQTT.

Commands arrive on ``<prefix>/permits/commands`` (JSON, one command per message: ``{"id", "op", "user",
"token", ...}`` with ``op`` one of :data:`~ingest.protocol.names.PERMIT_OPS`: ``permit_request``, ``permit_jsa``,
``permit_gas_test``, ``permit_approve``, ``permit_signin``, ``permit_activate``, ``permit_suspend``,
``permit_resume``, ``permit_close``, ``permit_cancel``; fields in docs/protocol.md). Who acts is proven the way
a console proves it: the permit office first sends ``{"id", "op": "login", "user", "password"}`` (or a field
worker's ``pin``), which this adapter passes to the engine's login over its own command connection; the reply,
with the session token, comes back on ``<prefix>/permits/replies``. Each command carries that token; the engine
checks it (and that it was given through this adapter) before recording the command as a ``permit_command``
input with the verified user, then checks the role and journals it like the console's commands. The engine's
reply comes back on the bus topic ``permit.reply`` and is published on ``<prefix>/permits/replies``. Malformed
commands are rejected here with their reason (counted, dead-lettered).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from typing import Any

import zmq

from config import Site
from ingest import bus
from ingest.protocol import wire
from ingest.protocol.names import PERMIT_OPS, TOPIC_PERMIT_REPLY

from .adapter import MqttAdapter, adapter_main
from .mqtt_source import RawMessage
from .protocol.wire import PayloadError

log = logging.getLogger(__name__)

__all__ = ["PermitsAdapter", "parse_permit_command", "main"]


def parse_permit_command(payload: bytes, users: set[str]) -> dict:
    """The command (or a ``login``) as a dict, or :class:`~ingest.protocol.wire.PayloadError` with the reason."""
    doc = wire.loads(payload, wire.MAX_PAYLOAD_BYTES["permits"])
    if not isinstance(doc, dict):
        raise PayloadError("bad_field", "command is not an object")
    op = doc.get("op")
    if not isinstance(op, str) or (op not in PERMIT_OPS and op != "login"):
        raise PayloadError("unknown_id", f"unknown op {str(op)[:40]!r}")
    wire.text(doc, "id", 128)
    user = wire.text(doc, "user", 64)
    if op == "login":
        secret = "pin" if "pin" in doc else "password"
        wire.text(doc, secret, 1024)
        return {"id": doc["id"], "op": "login", "user": user, secret: doc[secret]}
    if user not in users:
        raise PayloadError("unknown_id", f"unknown user {user!r}")
    if "token" in doc:  # without one the engine refuses the command, and journals the refusal
        wire.text(doc, "token", 2048)
    if len(json.dumps(doc)) > 32 << 10:  # it travels on in a bus header (64 KiB, non-ASCII escaped 6-fold)
        raise PayloadError("too_large", "command too large once escaped for the bus")
    return doc


class PermitsAdapter(MqttAdapter):
    name = "permits"
    payload_kind = "permits"
    topics = ["permits/commands"]

    def __init__(self, site: Site, stop: threading.Event) -> None:
        super().__init__(site, stop, slice_s=0.1)
        self.users = {u.id for u in site.users}
        self.sub = bus.sub_socket(self.link.ctx, site.bus.publish, [TOPIC_PERMIT_REPLY])
        self.reply_topic = f"{self.source.prefix}/permits/replies"
        self.commands: list[dict] = []
        # the permit office's logins go to the engine over this adapter's own command connection: the tokens the
        # engine gives are bound to it, and the commands say so (``binding``)
        self.routing_id = b"ingest-permits-" + secrets.token_hex(16).encode("ascii")
        self.dealer = bus.dealer_socket(self.link.ctx, site.bus.command, routing_id=self.routing_id)
        self.logins_pending: dict[str, str] = {}  # login id -> user (for the log)

    def take(self, raw: RawMessage, now_s: float) -> None:
        self.commands.append(parse_permit_command(raw.payload, self.users))

    def batches(self, now_s: float):
        commands, self.commands = self.commands, []
        for cmd in commands:
            if cmd["op"] == "login":
                self._login(cmd)
                continue
            meta = {**cmd, "binding": self.routing_id.hex()}
            self.link.send("permits.command", "permit_command", time.time(), meta=meta)
            self.items_sent += 1
        self._relay_logins()
        self._relay_replies()
        return []

    def _login(self, cmd: dict[str, Any]) -> None:
        req = {**cmd, "console": "permit-office", "address": "mqtt"}
        try:
            self.dealer.send(json.dumps(req).encode(), zmq.NOBLOCK)
            self.logins_pending[str(cmd["id"])] = str(cmd["user"])
        except zmq.Again:
            self._publish_reply({"id": cmd["id"], "ok": False, "reason": "engine not reachable: try again"})

    def _relay_logins(self) -> None:
        """The engine's answers to the permit office's logins (with the token), back to MQTT."""
        for frames in bus.drain(self.dealer):
            try:
                reply = json.loads(frames[-1])
            except (ValueError, IndexError):
                continue
            if isinstance(reply, dict):
                user = self.logins_pending.pop(str(reply.get("id")), "?")
                log.info("permit office login of %s: %s", user, "ok" if reply.get("ok") else reply.get("reason"))
                self._publish_reply(reply)

    def _publish_reply(self, reply: dict[str, Any]) -> None:
        self.source.client.publish(self.reply_topic, json.dumps(reply, ensure_ascii=False), qos=1)

    def _relay_replies(self) -> None:
        for frames in bus.drain(self.sub):
            try:
                reply = bus.decode(frames).meta
            except bus.FramingError as e:
                log.warning("permit reply not relayed: %s", e)
                continue
            self._publish_reply(reply)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.sub.close(linger=0)
            self.dealer.close(linger=0)


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest permits --site FILE``."""
    return adapter_main("permits", argv, lambda site, stop: PermitsAdapter(site, stop).run())
