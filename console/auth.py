"""A person's login at a console page or OPC UA session, as the engine proved it.

The console never checks a password itself: it passes the id and password (or a field worker's PIN) once to the
engine's ``login`` command (see ingest/engine/access.py) with the browser's source address, and keeps what the
engine answers: a short-lived **session token** bound to this console process, which every command carries. Each
accepted command's reply brings a fresh token, so the idle limit (``access.idle_logout_s``) counts from the last
action. The throttling of failed logins (per source address, and per id from an address) is the engine's, so it
is the same at every console and cannot be used to lock a person out everywhere.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger(__name__)

#: the engine's refusals that mean this login is over (see ingest/engine/access.py)
ENDED_REASONS = ("no token", "bad token", "token expired", "token of another console", "session logged out",
                 "account disabled")

__all__ = ["Credential", "LoggedIn", "LoginResult", "LoginSink", "engine_login", "login_request", "login_result"]


@dataclass(frozen=True)
class LoggedIn:
    """A person logged in at one session: the site user's id, name and role."""

    id: str
    name: str
    role: str


@dataclass
class Credential:
    """The engine's proof of one login: the token to send with each command, renewed by each reply.

    ``idle_s`` is the engine's idle limit; ``last_action_s`` (``clock``, monotonic) is when the person last acted
    here, so the page can log them out when idle (the engine refuses an idle token anyway)."""

    user: LoggedIn
    token: str
    session: str
    idle_s: float
    clock: Callable[[], float] = time.monotonic
    last_action_s: float = field(default=math.nan)
    #: why the engine stopped taking this login's token ("" while it does)
    ended: str = ""

    def __post_init__(self) -> None:
        if math.isnan(self.last_action_s):
            self.last_action_s = self.clock()

    def sign(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """``request`` with this login's token and user id (the engine checks that they agree)."""
        self.last_action_s = self.clock()
        return {**request, "user": self.user.id, "token": self.token}

    def take(self, reply: Mapping[str, Any] | None) -> None:
        """Keep the fresh token an engine reply brings; note when the engine no longer takes this login."""
        if reply is None:
            return
        if isinstance(reply.get("token"), str):
            self.token = reply["token"]
        reason = str(reply.get("reason") or "")
        if not reply.get("ok") and reason.startswith(ENDED_REASONS):
            self.ended = reason

    def idle_for_s(self) -> float:
        return self.clock() - self.last_action_s

    def idle(self) -> bool:
        """No action for longer than the engine's idle limit (a few seconds early, so no action is refused)."""
        return self.idle_for_s() > max(1.0, self.idle_s - 5.0)


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one attempt: ``credential`` when it succeeded, else ``reason`` (a translation key of
    ``console.web.i18n``) and, when the source must wait, ``retry_after_s``; ``detail`` is the engine's text."""

    credential: Credential | None
    reason: str | None = None
    retry_after_s: float = 0.0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.credential is not None

    @property
    def user(self) -> LoggedIn | None:
        return None if self.credential is None else self.credential.user


class LoginSink(Protocol):
    """What a login is sent through: the console's ``EngineLink``."""

    def submit(self, request: dict[str, Any]) -> concurrent.futures.Future: ...


def login_request(user_id: str, secret: str, *, pin: bool, console: str, address: str) -> dict[str, Any]:
    return {"op": "login", "user": user_id, ("pin" if pin else "password"): secret, "console": console,
            "address": address}


def login_result(reply: Mapping[str, Any] | None, *, clock: Callable[[], float] = time.monotonic) -> LoginResult:
    """Read the engine's answer to a ``login`` (None: no answer)."""
    if reply is None:
        return LoginResult(None, "login.no_engine")
    if reply.get("ok") and isinstance(reply.get("token"), str):
        user = LoggedIn(str(reply.get("user")), str(reply.get("name") or reply.get("user")), str(reply.get("role")))
        idle = reply.get("idle_s")
        idle_s = float(idle) if isinstance(idle, (int, float)) and idle > 0 else 900.0
        return LoginResult(Credential(user, reply["token"], str(reply.get("session", "")), idle_s, clock))
    detail = str(reply.get("reason") or "")
    wait = reply.get("wait_s")
    if isinstance(wait, (int, float)) and wait > 0 and "wait" in detail:
        return LoginResult(None, "login.locked", float(wait), detail)
    if detail.startswith("account disabled"):
        return LoginResult(None, "login.disabled", detail=detail)
    if detail.startswith("give a user id"):
        return LoginResult(None, "login.empty", detail=detail)
    return LoginResult(None, "login.wrong", detail=detail)


def engine_login(link: LoginSink, user_id: str, secret: str, *, pin: bool = False, console: str, address: str,
                 timeout_s: float = 5.0) -> LoginResult:
    """Log in at the engine and wait for its answer (blocking; pages use :func:`login_request` and await)."""
    user_id = user_id.strip()
    if not user_id or not secret:
        return LoginResult(None, "login.empty")
    try:
        reply = link.submit(login_request(user_id, secret, pin=pin, console=console, address=address)).result(timeout_s)
    except (concurrent.futures.TimeoutError, TimeoutError, RuntimeError) as e:
        log.warning("login of %r: no answer from the engine (%s)", user_id, e)
        reply = None
    return login_result(reply)
