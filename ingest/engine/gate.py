"""The engine's command gate: logins, logouts and the token check in front of every command (see
:mod:`ingest.engine.access` for the tokens and the throttle).

What passes the gate is recorded as the engine's own inputs, with no secret in them:

- ``session`` (topic ``access.session``): ``login`` (user, role, console, address, session), ``login_failed``
  (the id typed, the address, why), ``logout`` (user, session, why: ``user`` or ``idle``);
- ``command_refused`` (topic ``access.refused``): a command whose token was missing, bad, expired, of another
  console, of a logged-out session, or whose claimed user is not the token's; the claimed user and the reason;
- ``command``: an accepted command with the **verified** user, role, console and session in place of the token.

The engine journals all of them in order with everything else, and replay reproduces those rows from the
recording alone (it never checks a token again). Password checks (argon2id, ~25 ms) run on one worker thread so
the engine's loop never waits for them; at most ``MAX_PENDING_LOGINS`` wait, beyond that a login is asked to retry.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from dataclasses import dataclass
from typing import Any

from config import Site
from config.loader import users_file_of
from config.users import UsersFileError, load_users_file
from ingest.bus import Message
from ingest.protocol.names import ACTION_OPS

from .access import Claims, Doorkeeper, LoginOutcome, load_token_key

log = logging.getLogger(__name__)

__all__ = ["Gate", "Passed", "MAX_PENDING_LOGINS"]

MAX_PENDING_LOGINS = 32
#: checks waiting at once from one claimed address, and from one connection
MAX_PENDING_PER_SOURCE = 2
MAX_PENDING_PER_CONNECTION = 4
#: the journal names an alarm action as the book does (``acknowledge``, not the command's ``ack``)
_ACTION_OF_OP = {op: action for action, op in ACTION_OPS.items()}
#: a source refused for waiting is journaled at most this often (with how many tries it made meanwhile)
THROTTLE_NOTE_EVERY_S = 60.0
_FIELD_LEN = 128


def _text(v: Any, n: int = _FIELD_LEN) -> str:
    return v[:n] if isinstance(v, str) else ""


def _message(topic: str, kind: str, meta: dict[str, Any]) -> Message:
    now = time.time()
    return Message(topic=topic, source="engine", kind=kind, event_ts_s=now, ingest_ts_s=now, meta=meta)


@dataclass
class _PendingLogin:
    future: concurrent.futures.Future
    ident: bytes
    rid: Any
    user: str
    address: str
    console: str
    pin: bool


@dataclass(frozen=True)
class Passed:
    """A command through the gate: the message to record (None for ``renew``, which changes nothing), and the
    claims whose fresh token goes in the reply."""

    message: Message | None
    claims: Claims


class Gate:
    """One per engine process. ``given`` is the site as started (with its users file and key directory)."""

    def __init__(self, given: Site) -> None:
        path = users_file_of(given)
        accounts = []
        if path is not None:
            try:
                accounts = load_users_file(path)
            except UsersFileError as e:  # load_site checked it; it changed since: nobody can log in, say so
                log.error("users file unusable, nobody can log in: %s", e)
        else:
            log.warning("site %s names no users file (access.users_file): nobody can log in", given.id)
        key, where = load_token_key(given.signing.key_dir)
        log.info("session tokens: key %s; %d accounts", where, len(accounts))
        a = given.access
        self.door = Doorkeeper(accounts, key, idle_s=a.idle_logout_s, field_idle_s=a.field_idle_logout_s,
                               free_failures=a.free_login_failures, max_wait_s=a.max_login_wait_s)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="login-check")
        self._pending: list[_PendingLogin] = []
        self._throttle_notes: dict[str, tuple[float, int]] = {}  # address -> (last journaled, tries since)

    # -- logins ------------------------------------------------------------------------------------------
    def login(self, ident: bytes, req: dict[str, Any], now_s: float) -> tuple[dict[str, Any] | None, Message | None]:
        """Start checking a login. Returns (a reply to send now or None when the check runs, a message to record)."""
        rid = req.get("id")
        user, address = _text(req.get("user"), 64).strip(), _text(req.get("address"), 64) or "unknown"
        console = _text(req.get("console"), 64) or "unnamed"
        pin = "pin" in req
        secret = req.get("pin" if pin else "password")
        if not user or not isinstance(secret, str) or not secret or len(secret) > 1024:
            return {"id": rid, "ok": False, "reason": "give a user id and a password (or a PIN)"}, None
        wait = self.door.throttle.wait_s(user, address, now_s, ident.hex())
        if wait > 0:
            return ({"id": rid, "ok": False, "reason": f"too many failed logins from here: wait {wait:.0f} s",
                     "wait_s": round(wait, 1)}, self._throttle_note(user, address, console, ident, now_s))
        same_source = sum(1 for p in self._pending if p.address == address)
        same_connection = sum(1 for p in self._pending if p.ident == ident)
        if (len(self._pending) >= MAX_PENDING_LOGINS or same_source >= MAX_PENDING_PER_SOURCE
                or same_connection >= MAX_PENDING_PER_CONNECTION):  # no burst of guesses before any is counted
            return {"id": rid, "ok": False, "reason": "busy checking logins: wait 1 s", "wait_s": 1.0}, None
        fut = self._pool.submit(self.door.check_login, user, secret, pin=pin, console=console, binding=ident.hex(),
                                now_s=now_s)
        self._pending.append(_PendingLogin(fut, ident, rid, user, address, console, pin))
        return None, None

    def _throttle_note(self, user: str, address: str, console: str, ident: bytes, now_s: float) -> Message | None:
        keys = (f"addr {address}", f"conn {ident.hex()}")  # a client making up addresses still has one connection
        notes = [self._throttle_notes.get(k, (-float("inf"), 0)) for k in keys]
        if any(now_s - last < THROTTLE_NOTE_EVERY_S for last, _ in notes):
            for k, (last, tries) in zip(keys, notes, strict=True):
                self._throttle_notes[k] = (last, tries + 1)
            return None
        tries = max(t for _, t in notes)
        for k in keys:
            self._throttle_notes[k] = (now_s, 0)
        while len(self._throttle_notes) > 10000:
            self._throttle_notes.pop(next(iter(self._throttle_notes)))
        return _message("access.session", "session", {
            "event": "login_failed", "user": user, "address": address, "console": console,
            "reason": f"waiting after too many failures ({tries} more tries refused since the last note)"})

    def finished_logins(self, now_s: float) -> list[tuple[bytes, dict[str, Any], Message]]:
        """Logins whose check is done: (ident, reply, the session message to record before replying)."""
        done: list[_PendingLogin] = []
        waiting: list[_PendingLogin] = []
        for p in self._pending:  # one look at each future: one that finishes meanwhile waits for the next turn
            (done if p.future.done() else waiting).append(p)
        self._pending = waiting
        out = []
        for p in done:
            try:
                out.append(self._finished(p, now_s))
            except Exception as e:  # noqa: BLE001 - a failed login is a refused login, never a dead engine
                log.exception("login of %r could not be finished", p.user)
                reason = f"internal error: {e.__class__.__name__}"
                out.append((p.ident, {"id": p.rid, "ok": False, "reason": reason}, _message(
                    "access.session", "session", {"event": "login_failed", "user": p.user, "address": p.address,
                                                  "console": p.console, "reason": reason})))
        return out

    def _finished(self, p: _PendingLogin, now_s: float) -> tuple[bytes, dict[str, Any], Message]:
        try:
            outcome: LoginOutcome = p.future.result()
        except Exception as e:  # noqa: BLE001 - a failed check is a refused login, never a dead engine
            log.exception("login check failed")
            outcome = LoginOutcome(None, f"check failed: {e.__class__.__name__}")
        if outcome.claims is None:
            wait = self.door.throttle.failed(p.user, p.address, now_s, p.ident.hex())
            reply = {"id": p.rid, "ok": False, "reason": "wrong user id or PIN" if p.pin else
                     "wrong user id or password"}
            if outcome.reason == "account disabled":
                reply["reason"] = "account disabled: ask the administrator"
            if wait > 0:
                reply["wait_s"] = round(wait, 1)
            msg = _message("access.session", "session", {
                "event": "login_failed", "user": p.user, "address": p.address, "console": p.console,
                "reason": outcome.reason})
            log.warning("login refused for %r from %s (%s)", p.user, p.address, outcome.reason)
        else:
            c = outcome.claims
            self.door.throttle.succeeded(p.user, p.address)
            reply = {"id": p.rid, "ok": True, "token": self.door.token(c), "user": c.user, "name": outcome.name,
                     "role": c.role, "session": c.session, "expires_s": c.expires_s,
                     "idle_s": c.expires_s - c.issued_s}
            msg = _message("access.session", "session", {
                "event": "login", "user": c.user, "role": c.role, "console": c.console, "address": p.address,
                "session": c.session, "method": "pin" if p.pin else "password"})
            log.info("login: %s (%s) at %s from %s", c.user, c.role, c.console, p.address)
        return p.ident, reply, msg

    # -- commands ----------------------------------------------------------------------------------------
    def command(self, ident: bytes, req: dict[str, Any], rid: str, now_s: float) -> Passed | tuple[dict, Message]:
        """Check a command's token: the command to record with the verified user, or (refusal reply, record)."""
        op = _text(req.get("op"), 64)
        got = self.door.verify(req.get("token"), ident.hex(), now_s)
        claimed = req.get("user")
        if not isinstance(got, str) and claimed is not None and claimed != got.user:
            got = f"user {_text(claimed, 64)!r} is not the one logged in ({got.user})"
        if isinstance(got, str):
            log.warning("command %s refused: %s (claimed user %r)", op, got, claimed)
            refused = _message("access.refused", "command_refused", {
                "op": _ACTION_OF_OP.get(op, op), "user": _text(claimed, 64), "alarm": _text(req.get("alarm"), 200),
                "reason": got})
            return {"id": req.get("id"), "ok": False, "reason": got}, refused
        if op == "renew":  # a console keeps a login it still holds (an open OPC UA session): nothing recorded
            return Passed(None, got)
        if op == "logout":
            reason = req.get("reason") if req.get("reason") in ("idle", "closed") else "user"
            self.door.logged_out(got.session, got.expires_s, now_s)
            msg = _message("access.session", "session", {
                "event": "logout", "user": got.user, "role": got.role, "console": got.console,
                "session": got.session, "reason": reason, "until_s": got.expires_s})
            return Passed(msg, got)
        meta = {k: v for k, v in req.items() if k != "token"}
        meta.update(id=rid, user=got.user, role=got.role, console=got.console, session=got.session)
        return Passed(_message("command", "command", meta), got)

    def query_allowed(self, ident: bytes, req: dict[str, Any], now_s: float) -> str | None:
        """Whether a personal read-only query may be answered: None, or why not (no valid token of this connection
        for the user claimed, or a field worker's login). Nothing is recorded: a query changes nothing."""
        got = self.door.verify(req.get("token"), ident.hex(), now_s)
        if isinstance(got, str):
            return got
        claimed = req.get("user")
        if claimed is not None and claimed != got.user:
            return f"user {_text(claimed, 64)!r} is not the one logged in ({got.user})"
        if got.role == "field_worker":
            return f"role {got.role} may not ask this"
        return None

    def permit_command(self, msg: Message, now_s: float) -> Message:
        """A ``permit_command`` from the permits adapter (the plant's permit office over MQTT): its token must be
        one the engine gave a login through that adapter (``meta.binding``: the adapter's routing id). Returns the
        command to record, with the verified user and no token, or a ``command_refused`` to record instead (its
        ``channel`` says the reply goes back to MQTT)."""
        m = msg.meta
        binding = m.get("binding") if isinstance(m.get("binding"), str) else ""
        got = self.door.verify(m.get("token"), binding, now_s) if binding else "no token binding: not from the adapter"
        claimed = m.get("user")
        if not isinstance(got, str) and claimed is not None and claimed != got.user:
            got = f"user {_text(claimed, 64)!r} is not the one logged in ({got.user})"
        if isinstance(got, str):
            log.warning("permit command %s refused: %s (claimed user %r)", _text(m.get("op"), 64), got, claimed)
            return _message("access.refused", "command_refused", {
                "op": _text(m.get("op"), 64), "user": _text(claimed, 64), "alarm": f"permit:{_text(m.get('permit'), 200)}",
                "reason": got, "channel": "permits", "id": m.get("id")})
        meta = {k: v for k, v in m.items() if k not in ("token", "binding")}
        meta.update(user=got.user, role=got.role, console=got.console, session=got.session)
        return Message(topic=msg.topic, source=msg.source, kind=msg.kind, event_ts_s=msg.event_ts_s,
                       ingest_ts_s=msg.ingest_ts_s, seq=msg.seq, meta=meta)

    def renewed_token(self, claims: Claims, now_s: float) -> dict[str, Any]:
        fresh, token = self.door.renewed(claims, now_s)
        return {"token": token, "expires_s": fresh.expires_s}

    def observe(self, msg: Message) -> None:
        """A recorded input seen again on resume: logouts stay logouts after a restart."""
        if msg.kind == "session" and msg.meta.get("event") == "logout":
            until = msg.meta.get("until_s")
            if isinstance(until, (int, float)):
                self.door.logged_out(str(msg.meta.get("session")), float(until), time.time())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
