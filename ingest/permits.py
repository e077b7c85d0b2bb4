"""The permits adapter: the plant's permit-to-work system talks to watchfloor over MQTT.

Commands arrive on ``<prefix>/permits/commands`` (JSON, one command per message: ``{"id", "op", "user", ...}``
with ``op`` one of ``permit_request``, ``permit_approve``, ``permit_activate``, ``permit_suspend``,
``permit_resume``, ``permit_close``, ``permit_gas_test``; fields in docs/protocol.md). They go to the engine
as ``permit_command`` inputs, are checked against the user's role there, recorded and journaled like the
console's commands. The engine's reply comes back on the bus topic ``permit.reply`` and is published on
``<prefix>/permits/replies``. Malformed commands are rejected here with their reason (counted, dead-lettered).
The broker's ACL decides who may publish commands; the ``user`` named must be a site user.
"""

from __future__ import annotations

import json
import logging
import threading
import time

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
    """The command as a dict, or :class:`~ingest.protocol.wire.PayloadError` with the reason."""
    doc = wire.loads(payload, wire.MAX_PAYLOAD_BYTES["permits"])
    if not isinstance(doc, dict):
        raise PayloadError("bad_field", "command is not an object")
    op = doc.get("op")
    if not isinstance(op, str) or op not in PERMIT_OPS:
        raise PayloadError("unknown_id", f"unknown op {str(op)[:40]!r}")
    wire.text(doc, "id", 128)
    user = wire.text(doc, "user", 64)
    if user not in users:
        raise PayloadError("unknown_id", f"unknown user {user!r}")
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

    def take(self, raw: RawMessage, now_s: float) -> None:
        self.commands.append(parse_permit_command(raw.payload, self.users))

    def batches(self, now_s: float):
        commands, self.commands = self.commands, []
        for cmd in commands:
            self.link.send("permits.command", "permit_command", time.time(), meta=cmd)
            self.items_sent += 1
        self._relay_replies()
        return []

    def _relay_replies(self) -> None:
        while True:
            try:
                frames = self.sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                reply = bus.decode(frames).meta
            except bus.FramingError as e:
                log.warning("permit reply not relayed: %s", e)
                continue
            self.source.client.publish(self.reply_topic, json.dumps(reply, ensure_ascii=False), qos=1)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.sub.close(linger=0)


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest permits --site FILE``."""
    return adapter_main("permits", argv, lambda site, stop: PermitsAdapter(site, stop).run())
