"""Who is calling: OPC UA username logins checked against the site's users, and the calling session made known
to method callbacks (asyncua passes them only the object id)."""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from asyncua import ua
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.internal_server import InternalServer
from asyncua.server.internal_session import InternalSession
from asyncua.server.user_managers import UserManager

from config import Site
from console.auth import LoginGuard

log = logging.getLogger(__name__)

__all__ = ["AttributedInternalServer", "Caller", "SiteUsers", "actor", "current_caller"]


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


def actor(ack_user: str | None) -> tuple[str | None, str]:
    """(site user id, how to describe the caller in the journal) of the session calling a method; an anonymous
    session acts as ``ack_user`` (None: it may not act)."""
    caller = _CALLER.get()
    peer = caller.peer if caller is not None else "?"
    name = caller.user.name if caller is not None and caller.user is not None else None
    if name:
        return name, f"via OPC UA from {peer}"
    if ack_user:
        return ack_user, f"via OPC UA from {peer}, anonymous session acting as {ack_user}"
    return None, f"via OPC UA from {peer}, anonymous session"


class _AttributedSession(InternalSession):
    """A session that tells method callbacks who called: the call is awaited in the same task, so a context
    variable set here is seen by the callback."""

    async def call(self, params: list[ua.CallMethodRequest]) -> list[ua.CallMethodResult]:
        token = _CALLER.set(Caller(self.user, str(self.name), getattr(self, "session_id", None)))
        try:
            return await super().call(params)
        finally:
            _CALLER.reset(token)


_ANONYMOUS = User(role=UserRole.Anonymous)


class AttributedInternalServer(InternalServer):
    """asyncua's internal server whose sessions make the caller known to method callbacks."""

    def create_session(self, name: str, user: User = _ANONYMOUS, external: bool = False) -> InternalSession:
        return _AttributedSession(
            self, self.aspace, self.subscription_service, name, user=user, external=external
        )


class SiteUsers(UserManager):
    """Username logins are checked against the site's users (console.auth: SHA-256 digests, lockout after
    failures). An anonymous session may browse, read and subscribe; it acknowledges as the ``ack_user``."""

    def __init__(self, site: Site, *, allow_anonymous: bool) -> None:
        self._guard = LoginGuard(site)
        self._allow_anonymous = allow_anonymous

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username is None:
            if not certificate and self._allow_anonymous:  # asyncua passes b"" for "no certificate"
                return User(role=UserRole.User, name=None)
            return None
        result = self._guard.login(username, password or "")
        if not result.ok or result.user is None:
            log.warning("OPC UA login refused for user id %r (%s)", username, result.reason)
            return None
        log.info("OPC UA login: %s (%s)", result.user.id, result.user.role)
        return User(role=UserRole.User, name=result.user.id)
