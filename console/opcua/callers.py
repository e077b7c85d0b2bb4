"""Who is calling: OPC UA username logins checked by the engine (which answers with a session token for the
commands), and the calling session made known to method callbacks (asyncua passes them only the object id).

An anonymous session may browse, read and subscribe, never act. A logged-in session's token is renewed while the
session stays open (the OPC UA client owns its own idle rules) and logged out at the engine when it closes."""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass, field
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager

from console.auth import Credential, LoginSink, engine_login

log = logging.getLogger(__name__)

__all__ = ["AttributedInternalServer", "Caller", "SiteUser", "SiteUsers", "actor", "current_caller"]


@dataclass
class SiteUser(User):
    """A session's user who logged in with a site account: the engine's credential for their commands."""

    credential: Credential | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Caller:
    """The session that calls a method: its user (None before activation), peer name and session id."""

    user: User | None
    peer: str
    session_id: ua.NodeId | None


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "watchfloor_opcua_caller", default=None
)


def current_caller() -> Caller | None:
    """The session whose method call is being handled (None outside a method call)."""
    return _CALLER.get()


def actor() -> tuple[Credential | None, str]:
    """(the engine's credential, how to describe the caller in the journal) of the session calling a method; an
    anonymous session has no credential and may not act."""
    caller = _CALLER.get()
    peer = caller.peer if caller is not None else "?"
    user = caller.user if caller is not None else None
    if isinstance(user, SiteUser) and user.credential is not None:
        return user.credential, f"via OPC UA from {peer}"
    return None, f"via OPC UA from {peer}, anonymous session"


#: the session being activated (get_user is not told which one)
_ACTIVATING: contextvars.ContextVar[Any] = contextvars.ContextVar("watchfloor_opcua_activating", default=None)


def _peer_ip(session: Any) -> str:
    name = getattr(session, "name", None)
    if isinstance(name, tuple) and name:
        return str(name[0])
    return str(name) if name else "unknown"


class _AttributedSession(InternalSession):
    """A session that tells method callbacks who called: the call is awaited in the same task, so a context
    variable set here is seen by the callback."""

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        token = _CALLER.set(Caller(self.user, str(self.name), getattr(self, "session_id", None)))
        try:
            return await super().call(params)
        finally:
            _CALLER.reset(token)

    def activate_session(self, params: Any, peer_certificate: Any) -> Any:
        token = _ACTIVATING.set(self)
        try:
            result = super().activate_session(params, peer_certificate)
        finally:
            _ACTIVATING.reset(token)
        users = self.iserver.user_manager
        if isinstance(users, SiteUsers) and isinstance(self.user, SiteUser):
            users.opened(self, self.user)
        return result

    async def close_session(self, delete_subs: bool = True) -> None:
        users = self.iserver.user_manager
        if isinstance(users, SiteUsers):
            users.closed(self)
        await super().close_session(delete_subs)


_ANONYMOUS = User(role=UserRole.Anonymous)


class AttributedInternalServer(InternalServer):
    """asyncua's internal server whose sessions make the caller known to method callbacks."""

    def create_session(self, name: str, user: User = _ANONYMOUS, external: bool = False) -> InternalSession:
        return _AttributedSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )


class SiteUsers(UserManager):
    """Username logins are checked by the engine (argon2id, throttled per source address; the engine journals
    each login and failed login). An anonymous session may browse, read and subscribe, not act.

    ``link`` carries the logins; :meth:`renew` keeps the tokens of open sessions fresh, :meth:`closed` logs a
    session's user out at the engine."""

    def __init__(self, link: LoginSink, *, allow_anonymous: bool, login_timeout_s: float = 3.0) -> None:
        self._link = link
        self._allow_anonymous = allow_anonymous
        self._timeout_s = login_timeout_s
        self._open: dict[int, tuple[Any, SiteUser]] = {}  # id(session) -> (session, its user)

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            if not certificate and self._allow_anonymous:  # asyncua passes b"" for "no certificate"
                return User(role=UserRole.User, name=None)
            return None
        address = _peer_ip(_ACTIVATING.get())
        # blocks this server's loop for one engine round trip (an argon2id check, ~25 ms; at most the timeout)
        result = engine_login(self._link, username, password or "", console="opcua-alarms", address=address,
                              timeout_s=self._timeout_s)
        if result.credential is None:
            log.warning("OPC UA login refused for user id %r from %s (%s)", username, address,
                        result.detail or result.reason)
            return None
        cred = result.credential
        if cred.user.role == "field_worker":
            log.warning("OPC UA login refused for field account %r: field accounts use the phone pages", username)
            self._link.submit(cred.sign({"op": "logout", "reason": "user"}))
            return None
        log.info("OPC UA login: %s (%s) from %s", cred.user.id, cred.user.role, address)
        return SiteUser(role=UserRole.User, name=cred.user.id, credential=cred)

    def opened(self, session: Any, user: SiteUser) -> None:
        self._open[id(session)] = (session, user)

    def closed(self, session: Any) -> None:
        """The session ended: its user is logged out at the engine (journaled there)."""
        entry = self._open.pop(id(session), None)
        if entry is not None and entry[1].credential is not None:
            cred = entry[1].credential
            try:
                self._link.submit(cred.sign({"op": "logout", "reason": "user"}))
            except RuntimeError as e:
                log.warning("OPC UA logout of %s not sent: %s", cred.user.id, e)

    def renew(self) -> list[Any]:
        """Ask the engine for fresh tokens of the open sessions (futures of the replies, already wired)."""
        futures = []
        for _, user in list(self._open.values()):
            cred = user.credential
            if cred is None or cred.ended:
                continue
            try:
                fut = self._link.submit({"op": "renew", "token": cred.token, "user": cred.user.id})
            except RuntimeError:
                break
            fut.add_done_callback(lambda f, c=cred: c.take(f.result()) if not f.exception() else None)
            futures.append(fut)
        return futures
