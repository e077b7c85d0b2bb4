"""The plant's permit office, simulated: scripted permit commands over MQTT, and the engine's replies.

The plant model scripts the commands (:class:`PermitCommand`, simulation times); :class:`PermitDesk` sends
them on ``<prefix>/permits/commands`` (QoS 1) when their time has come, one at a time and in order: the next
command waits for the reply to the one before, as a clerk at a permit desk would. A command without a reply
within ``reply_timeout_s`` (wall seconds) is sent again with the same id (the adapter may not have been
subscribed yet), at most ``attempts`` times. Replies arrive on ``<prefix>/permits/replies``; refusals are
logged with their reason (at INFO when the story expects them, else WARNING).

Each person signs at the desk: before the first command of a user the desk logs that user in (``op: login`` with
the demo password, ``$WATCHFLOOR_SIM_PASSWORD`` to override) and sends the session token with each of their
commands; a token the engine no longer takes (expired after the idle limit) is replaced by logging in again. A
permit's watcher signs in at the work from a phone (``permit_signin``, a command with ``by_pin``): that login
gives the field worker's PIN (``$WATCHFLOOR_SIM_PIN``, the demo's by default).

The same desk, over the engine's command socket instead of MQTT, is the simulated control room's console
(control_room.py): the requests and replies are the same JSON.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PERMIT_VALIDITY_S", "PermitCommand", "PermitDesk", "command_payload", "paperwork"]

log = logging.getLogger(__name__)

#: fields of a command that are times: simulation seconds in the script, epoch seconds on the wire
_TIME_FIELDS = ("valid_from_s", "valid_to_s")


@dataclass(frozen=True)
class PermitCommand:
    """One command of the permit office (or of the control room: ``muster_declare``, ``muster_end``).

    ``t_s`` simulation seconds when it is sent; ``op`` one of the engine's permit ops; ``user`` a site user id;
    ``fields`` the rest of the command (``permit`` always; ``valid_from_s`` / ``valid_to_s`` in simulation
    seconds); ``expect`` ``"ok"`` or ``"refused"``: what the story expects the engine to answer;
    ``id`` the command id (``sim-<n>-<permit>-<op>``, unique within a script); ``by_pin``: the user is a field
    worker, who logs in with a PIN (a watcher signing in on the phone page).
    """

    t_s: float
    op: str
    user: str
    fields: Mapping[str, Any]
    expect: str = "ok"
    id: str = ""
    by_pin: bool = False

    @property
    def permit(self) -> str:
        return str(self.fields.get("permit", ""))


#: the engine's refusals that mean the token is no good any more: log in again and resend
_LOGIN_AGAIN = ("no token", "bad token", "token expired", "session logged out", "token of another console")


def command_payload(cmd: PermitCommand, start_epoch: float, token: str | None = None) -> bytes:
    """The command as sent: JSON ``{"id", "op", "user", "token", **fields}`` with the validity window in epoch
    seconds."""
    doc: dict[str, Any] = {"id": cmd.id, "op": cmd.op, "user": cmd.user}
    if token is not None:
        doc["token"] = token
    for k, v in cmd.fields.items():
        doc[k] = round(start_epoch + float(v), 3) if k in _TIME_FIELDS else v
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class _Outcome:
    cmd: PermitCommand
    attempts: int = 0
    sent_wall_s: float = 0.0
    reply: dict[str, Any] | None = None
    awaiting_login: bool = False


@dataclass
class PermitDesk:
    """Sends ``commands`` (sorted by ``t_s``) through ``publish(payload) -> bool`` as simulation time passes.

    Call :meth:`on_reply` with every payload from the replies topic (any thread) and :meth:`step` from the
    simulator's loop. ``outcomes`` lists, in order, each command sent with its reply (None: none came).
    """

    commands: list[PermitCommand]
    publish: Callable[[bytes], bool]
    start_epoch: Callable[[], float]
    reply_timeout_s: float = 5.0
    attempts: int = 3
    password: str = field(default_factory=lambda: os.environ.get("WATCHFLOOR_SIM_PASSWORD", "demo"))
    pin: str = field(default_factory=lambda: os.environ.get("WATCHFLOOR_SIM_PIN", "1234"))
    #: who sends, for the log ("permit office"; the control room's desk says "control room")
    label: str = "permit office"
    #: extra fields of each login (a console names itself: ``console``, ``address``)
    login_fields: Mapping[str, str] = field(default_factory=dict)
    outcomes: list[_Outcome] = field(default_factory=list)
    _tokens: dict[str, str] = field(default_factory=dict)
    _logins: dict[str, str] = field(default_factory=dict)  # login id -> user
    _replies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _k: int = 0

    def __post_init__(self) -> None:
        self._ids = {c.id for c in self.commands}
        if len(self._ids) != len(self.commands):
            raise ValueError("permit command ids must be unique")

    def on_reply(self, payload: bytes) -> None:
        """A reply from the engine (via the permits adapter); replies to other systems' commands are ignored."""
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            log.warning("permit reply is not JSON: %r", payload[:200])
            return
        if not isinstance(doc, dict):
            return
        with self._lock:
            user = self._logins.pop(str(doc.get("id")), None)
            if user is not None:
                if doc.get("ok") and isinstance(doc.get("token"), str):
                    self._tokens[user] = doc["token"]
                else:
                    log.error("%s: %s could not log in: %s", self.label, user, doc.get("reason", "?"))
                return
            if doc.get("id") in self._ids:
                self._replies.setdefault(doc["id"], doc)

    @property
    def in_flight(self) -> bool:
        """A command was sent and its reply has not been taken in yet."""
        return self._k < len(self.commands) and len(self.outcomes) > self._k

    def next_due_s(self) -> float | None:
        """Simulation time of the next command to send; None when all are sent or one awaits its reply."""
        if self._k >= len(self.commands) or len(self.outcomes) > self._k:
            return None
        return self.commands[self._k].t_s

    def step(self, now_s: float, *, final: bool = False) -> None:
        """Handle replies that came, resend what timed out, send what is due at simulation time ``now_s``
        (``final``: only take in a reply that came, send nothing: the simulator is stopping)."""
        while self._k < len(self.commands):
            cmd = self.commands[self._k]
            if len(self.outcomes) > self._k:  # in flight
                out = self.outcomes[self._k]
                with self._lock:
                    reply = self._replies.get(cmd.id)
                if reply is not None and not reply.get("ok") and str(reply.get("reason", "")).startswith(
                        _LOGIN_AGAIN) and out.attempts < self.attempts:
                    with self._lock:  # the engine no longer takes this person's token: log in and send again
                        self._tokens.pop(cmd.user, None)
                        self._replies.pop(cmd.id, None)
                    self._send(out)
                    return
                if reply is not None:
                    out.reply = reply
                    self._report(out)
                    self._k += 1
                    continue
                if out.awaiting_login:
                    if cmd.user in self._tokens:
                        self._send(out)
                    elif final or time.monotonic() - out.sent_wall_s < self.reply_timeout_s:
                        return
                    elif out.attempts + 1 >= self.attempts:
                        log.error("%s: %s could not log in for %s; going on", self.label, cmd.user, cmd.id)
                        out.attempts += 1
                        self._k += 1
                        continue
                    else:
                        out.attempts += 1  # no answer to the login: ask again
                        self._send(out)
                    return
                if final or time.monotonic() - out.sent_wall_s < self.reply_timeout_s:
                    return
                if out.attempts >= self.attempts:
                    log.error(
                        "%s: no reply to %s (%s %s) after %d attempts; going on",
                        self.label,
                        cmd.id,
                        cmd.op,
                        cmd.permit,
                        out.attempts,
                    )
                    self._k += 1
                    continue
                log.warning(
                    "%s: no reply to %s within %.0f s; sending it again",
                    self.label,
                    cmd.id,
                    self.reply_timeout_s,
                )
                self._send(out)
                return
            if final or cmd.t_s > now_s:
                return
            out = _Outcome(cmd)
            self.outcomes.append(out)
            self._send(out)
            return

    def _send(self, out: _Outcome) -> None:
        out.sent_wall_s = time.monotonic()
        with self._lock:
            token = self._tokens.get(out.cmd.user)
        if token is None:
            out.awaiting_login = True
            self._login(out.cmd.user, out.cmd.by_pin)
            with self._lock:
                token = self._tokens.get(out.cmd.user)  # answered at once (a test's desk)
            if token is None:
                return
        out.awaiting_login = False
        out.attempts += 1
        if not self.publish(command_payload(out.cmd, self.start_epoch(), token)):
            log.warning("%s: %s could not be sent", self.label, out.cmd.id)

    def _login(self, user: str, by_pin: bool = False) -> None:
        """Ask the engine (through the permits adapter) for ``user``'s session token."""
        lid = f"login-{user}-{len(self._logins)}-{time.monotonic_ns()}"
        with self._lock:
            self._logins[lid] = user
        secret = {"pin": self.pin} if by_pin else {"password": self.password}
        doc = {"id": lid, "op": "login", "user": user, **secret, **self.login_fields}
        if not self.publish(json.dumps(doc).encode()):
            log.warning("%s: the login of %s could not be sent", self.label, user)

    def _report(self, out: _Outcome) -> None:
        cmd, reply = out.cmd, out.reply or {}
        ok = bool(reply.get("ok"))
        what = f"{cmd.permit} {cmd.op}" if cmd.permit else cmd.op
        if ok:
            level = logging.INFO if cmd.expect == "ok" else logging.WARNING
            log.log(
                level,
                "%s: %s by %s: ok%s%s",
                self.label,
                what,
                cmd.user,
                f" ({reply['state']})" if "state" in reply else "",
                "" if cmd.expect == "ok" else " although the story expects a refusal",
            )
        else:
            level = logging.INFO if cmd.expect == "refused" else logging.WARNING
            log.log(level, "%s: %s by %s refused: %s", self.label, what, cmd.user, reply.get("reason", "?"))

    def summary(self) -> dict[str, int]:
        """Counts: ``sent``, ``ok``, ``refused``, ``unanswered``, ``unexpected`` (answer not as scripted)."""
        done = [o for o in self.outcomes if o.reply is not None]
        ok = sum(1 for o in done if o.reply.get("ok"))
        unexpected = sum(1 for o in done if bool(o.reply.get("ok")) != (o.cmd.expect == "ok"))
        return {
            "sent": len(self.outcomes),
            "ok": ok,
            "refused": len(done) - ok,
            "unanswered": len(self.outcomes) - len(done),
            "unexpected": unexpected,
        }


#: how long a scripted permit is valid, seconds (from a minute before its request)
PERMIT_VALIDITY_S = 8 * 3600.0


def paperwork(
    permit: str,
    request: Mapping[str, Any],
    *,
    request_s: float,
    timing: Mapping[str, float],
    operator: str,
    supervisor: str,
    gas_values: Mapping[str, float] | None,
    activate_not_before_s: float = -math.inf,
    expect_activate: str = "ok",
    jsa: Mapping[str, Any] | None = None,
    watcher_user: str | None = None,
) -> tuple[list[PermitCommand], dict[str, float]]:
    """The permit office's usual sequence for one permit: request (``operator``, at ``request_s``, with the job
    safety analysis ``jsa`` when given), gas test (``operator``, ``gas_test_after_s`` later; skipped when
    ``gas_values`` is None), approval (``supervisor``, ``approve_after_s`` later), the watcher's sign-in at the
    work (``watcher_user``'s phone, when given) and activation (``supervisor``), both ``activate_after_s`` later
    but not before ``activate_not_before_s``: the watcher must stand at the work. ``request`` holds the request's
    fields (type, grade, zone or polygon, workers, watcher, description); the validity window, unless given,
    runs from a minute before the request for :data:`PERMIT_VALIDITY_S`. Returns the commands and their times
    (``request_s``, ``gas_test_s``, ``approve_s``, ``activate_s``; simulation seconds)."""
    fields = {
        "permit": permit,
        "valid_from_s": request_s - 60.0,
        "valid_to_s": request_s - 60.0 + PERMIT_VALIDITY_S,
        **request,
        **({"jsa": dict(jsa)} if jsa is not None else {}),
    }
    t_gas = request_s + timing["gas_test_after_s"]
    t_approve = t_gas + timing["approve_after_s"]
    t_activate = max(t_approve + timing["activate_after_s"], activate_not_before_s)
    cmds = [PermitCommand(request_s, "permit_request", operator, fields)]
    if gas_values is not None:
        cmds.append(
            PermitCommand(t_gas, "permit_gas_test", operator, {"permit": permit, "values": dict(gas_values)})
        )
    cmds.append(PermitCommand(t_approve, "permit_approve", supervisor, {"permit": permit}))
    if watcher_user is not None:
        cmds.append(PermitCommand(t_activate, "permit_signin", watcher_user, {"permit": permit}, by_pin=True))
    cmds.append(
        PermitCommand(t_activate, "permit_activate", supervisor, {"permit": permit}, expect=expect_activate)
    )
    times = {"request_s": request_s, "gas_test_s": t_gas, "approve_s": t_approve, "activate_s": t_activate}
    return cmds, times
