"""Workstation login: user id + password checked against the site's users, with a lockout after failures.

Passwords are kept in the site file only as SHA-256 hex digests (``users[].password_sha256``) and compared with
:func:`hmac.compare_digest`. One :class:`LoginGuard` per console process counts failed attempts per user id:
after ``max_failures`` (5) in a row that id is locked for ``lockout_s`` (60 s) in this process. Who is logged in
is per browser session (the workstation page keeps its :class:`LoggedIn`), never process-wide.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from config import Site

log = logging.getLogger(__name__)

__all__ = ["LOCKOUT_S", "MAX_FAILURES", "LoggedIn", "LoginGuard", "LoginResult", "password_sha256"]

MAX_FAILURES = 5
LOCKOUT_S = 60.0
_MAX_TRACKED = 1000  # user ids with failures remembered; beyond it the oldest are forgotten (bounded)
_DUMMY_DIGEST = "0" * 64


def password_sha256(password: str) -> str:
    """The SHA-256 hex digest of a password (UTF-8), as stored in ``users[].password_sha256``."""
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class LoggedIn:
    """A person logged in at one workstation session: the site user's id, name and role."""

    id: str
    name: str
    role: str


@dataclass(frozen=True)
class LoginResult:
    """The outcome of one attempt: ``user`` when it succeeded, else a ``reason`` (a translation key) and, for a
    lockout, ``retry_after_s``."""

    user: LoggedIn | None
    reason: str | None = None
    retry_after_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.user is not None


@dataclass
class _Failures:
    count: int = 0
    locked_until: float = -math.inf
    last: float = 0.0


class LoginGuard:
    """Checks logins for one console process (thread-safe). ``clock`` is monotonic seconds (tests pass a fake).

    Reasons (keys of ``console.web.i18n``): ``login.wrong`` (unknown user id or wrong password: the two are not told
    apart, so ids cannot be probed), ``login.locked`` (too many failures, ``retry_after_s`` left),
    ``login.empty`` (a field is empty; not counted as a failure).
    """

    def __init__(
        self,
        users: Iterable[object] | Site,
        *,
        max_failures: int = MAX_FAILURES,
        lockout_s: float = LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        people = users.users if isinstance(users, Site) else users
        self._users = {u.id: u for u in people}  # type: ignore[attr-defined]
        self.max_failures = int(max_failures)
        self.lockout_s = float(lockout_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, _Failures] = {}

    def locked_for_s(self, user_id: str) -> float:
        """Seconds until ``user_id`` may try again (0 when not locked)."""
        with self._lock:
            f = self._failures.get(user_id)
            return max(0.0, f.locked_until - self._clock()) if f else 0.0

    def login(self, user_id: str, password: str) -> LoginResult:
        """Check one attempt. A locked id is refused without looking at the password."""
        user_id = user_id.strip()
        if not user_id or not password:
            return LoginResult(None, "login.empty")
        now = self._clock()
        with self._lock:
            f = self._failures.get(user_id)
            if f is not None and now < f.locked_until:
                return LoginResult(None, "login.locked", f.locked_until - now)
        user = self._users.get(user_id)
        stored = getattr(user, "password_sha256", None) if user is not None else None
        # the digest is computed and compared even for an unknown id, so both take the same time
        match = hmac.compare_digest(password_sha256(password), stored or _DUMMY_DIGEST)
        if user is not None and stored and match:
            with self._lock:
                self._failures.pop(user_id, None)
            log.info("login: %s (%s)", user.id, user.role)
            return LoginResult(LoggedIn(user.id, user.name, user.role))
        with self._lock:
            f = self._failures.get(user_id)
            if f is None:
                if len(self._failures) >= _MAX_TRACKED:
                    oldest = min(self._failures, key=lambda k: self._failures[k].last)
                    del self._failures[oldest]
                f = self._failures[user_id] = _Failures()
            if now >= f.locked_until and f.locked_until > -math.inf:
                f.count, f.locked_until = 0, -math.inf  # the lockout has run out: a fresh count
            f.count += 1
            f.last = now
            if f.count >= self.max_failures:
                f.locked_until = now + self.lockout_s
                log.warning(
                    "login: %d failed attempts for user id %r: locked for %.0f s",
                    f.count,
                    user_id,
                    self.lockout_s,
                )
                return LoginResult(None, "login.locked", self.lockout_s)
        log.info("login refused for user id %r", user_id)
        return LoginResult(None, "login.wrong")
