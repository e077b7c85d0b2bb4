"""The plant's control room, simulated: a supervisor at a console sends the stories' console commands (the
muster drill's ``muster_declare`` and ``muster_end``) to the engine.

They take the path a console's take: a ZeroMQ DEALER to the engine's command socket (``bus.command``), a login
with the user's password first (the engine checks it and answers with a session token bound to this
connection), then each command with that token; the engine's gate verifies the token, records the command with
the verified user and journals what it does. The sending, waiting and resending are the permit office's
(:class:`~ingest.simulator.permits.PermitDesk`): one command at a time, in order, each after the reply to the one
before; only the transport differs.
"""

from __future__ import annotations

import secrets

import zmq

from ingest import bus

from .permits import PermitCommand, PermitDesk

__all__ = ["ControlRoom"]


class ControlRoom:
    """Sends ``commands`` (sorted by ``t_s``, simulation seconds) to the engine's command endpoint as their time
    comes. Create, :meth:`step` and :meth:`close` it in one thread (it owns a ZeroMQ socket). ``desk`` holds the
    outcomes (:meth:`PermitDesk.summary`)."""

    def __init__(self, commands: list[PermitCommand], endpoint: str, *, reply_timeout_s: float = 5.0,
                 ctx: zmq.Context | None = None) -> None:
        self._own_ctx = ctx is None
        self.ctx = ctx or zmq.Context()
        # one connection for the whole run: the session token is bound to it
        routing_id = b"sim-control-room-" + secrets.token_hex(8).encode("ascii")
        self.sock = bus.dealer_socket(self.ctx, endpoint, routing_id=routing_id)
        self.desk = PermitDesk(commands, self._send, lambda: 0.0, reply_timeout_s=reply_timeout_s,
                               label="control room",
                               login_fields={"console": "simulator control room", "address": "simulator"})

    def _send(self, payload: bytes) -> bool:
        try:
            self.sock.send(payload, zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def step(self, now_s: float, *, final: bool = False) -> None:
        """Take in the engine's replies, then send (or resend) what is due at simulation time ``now_s``."""
        for frames in bus.drain(self.sock):
            self.desk.on_reply(frames[-1])
        self.desk.step(now_s, final=final)

    def next_due_s(self) -> float | None:
        return self.desk.next_due_s()

    @property
    def in_flight(self) -> bool:
        return self.desk.in_flight

    def close(self) -> None:
        self.sock.close(linger=0)
        if self._own_ctx:
            self.ctx.term()
