"""Who acts is proven: logins checked by the engine, and the short-lived session tokens every command carries.

The console authenticates the person by passing the id and password (or a field worker's PIN) to the engine's
``login`` command; the engine checks the argon2id hash of the users file and answers with a **session token**:

    v1.<payload>.<mac>   payload = base64url(JSON {u: user, r: role, c: console name, b: binding, s: session id,
                                                    iat, exp}), mac = base64url(HMAC-SHA256(key, "v1." payload))

``b`` binds the token to the connection that logged in (the ZeroMQ routing id of the console's DEALER socket, which
the console draws at random when it starts), so a token replayed from another connection is refused. ``exp`` is
the idle limit (``access.idle_logout_s``) from the last action: every accepted command is answered with a fresh
token, so a person who keeps working stays logged in and one who walks away is logged out. A logout revokes the
session id. The key lives in the signing key directory (``session-token.key``, mode 0600) when the site has one,
so logins survive an engine restart; otherwise it is drawn at start.

Failed logins are throttled per source address and per (user id, source address): after
``access.free_login_failures`` failures each further try from there must wait (doubling, at most
``access.max_login_wait_s``); the refusal says how long. The server never sleeps, and an id is never locked for
everybody: a stranger typing wrong passwords for sup1 from another address does not stop sup1 logging in.

The checks here run before anything is recorded; the recording keeps only their verified result (the user, the
role, the console, the session), never a password, PIN or token. Replay does not check tokens again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.users import Account, dummy_verify, verify_secret

log = logging.getLogger(__name__)

__all__ = ["TOKEN_KEY_FILE", "Claims", "LoginThrottle", "SessionTokens", "Doorkeeper", "LoginOutcome",
           "load_token_key"]

TOKEN_KEY_FILE = "session-token.key"
_VERSION = "v1"
#: sources (addresses, user-at-address pairs) whose failures are remembered; the oldest are forgotten beyond it
_MAX_TRACKED = 20000


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_token_key(key_dir: str | Path | None) -> tuple[bytes, str]:
    """The token key and where it came from. With a key directory the key is read from (or made in)
    ``session-token.key`` there, mode 0600; without one a random key is drawn (logins end with the engine)."""
    if not key_dir:
        return secrets.token_bytes(32), "drawn at start (no signing.key_dir: logins end when the engine stops)"
    path = Path(key_dir) / TOKEN_KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fd = -1
    if fd < 0:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}): chmod 600 it")
        key = path.read_bytes()
        if len(key) < 32:
            raise ValueError(f"{path} holds {len(key)} bytes, a token key needs 32")
        return key, str(path)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    return path.read_bytes(), f"{path} (new)"


@dataclass(frozen=True)
class Claims:
    """What a valid token proves: who, in which role, at which console, in which session, bound to what."""

    user: str
    role: str
    console: str
    binding: str
    session: str
    issued_s: float
    expires_s: float


class SessionTokens:
    """Signs and checks session tokens with one HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a token key needs at least 32 bytes")
        self._key = key

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())

    def issue(self, claims: Claims) -> str:
        payload = {"u": claims.user, "r": claims.role, "c": claims.console, "b": claims.binding, "s": claims.session,
                   "iat": round(claims.issued_s, 3), "exp": round(claims.expires_s, 3)}
        body = f"{_VERSION}.{_b64(json.dumps(payload, separators=(',', ':'), sort_keys=True).encode())}"
        return f"{body}.{self._mac(body)}"

    def check(self, token: Any, now_s: float) -> Claims | str:
        """The token's claims, or why it is refused (``no token``, ``bad token``, ``token expired``)."""
        if token is None or token == "":
            return "no token: log in first"
        if not isinstance(token, str) or len(token) > 2048 or not token.isascii() or token.count(".") != 2:
            return "bad token"
        version, payload, mac = token.split(".")
        if version != _VERSION or not hmac.compare_digest(mac, self._mac(f"{version}.{payload}")):
            return "bad token (not signed by this engine)"
        try:
            p = json.loads(_unb64(payload))
            claims = Claims(user=str(p["u"]), role=str(p["r"]), console=str(p["c"]), binding=str(p["b"]),
                            session=str(p["s"]), issued_s=float(p["iat"]), expires_s=float(p["exp"]))
        except (ValueError, KeyError, TypeError):
            return "bad token"
        if not math.isfinite(claims.expires_s) or now_s > claims.expires_s:
            return "token expired: log in again"
        return claims


@dataclass
class _Source:
    failures: int = 0
    wait_until_s: float = -math.inf
    last_s: float = -math.inf


class LoginThrottle:
    """Failed logins per source address, per (user id, source address) and, with ten times the free failures, per
    connection (a console reports its browsers' addresses; a raw client that makes up a new address for every try
    still has one connection). Never a hard lockout of an id."""

    #: a connection carries the logins of many people: it waits only after this many times the free failures
    CONNECTION_FACTOR = 10

    #: a source with no failure for this long starts again from nothing (typos spread over a shift add up to
    #: nothing; a guessing run keeps its count)
    FORGET_S = 900.0

    def __init__(self, free_failures: int = 5, max_wait_s: float = 300.0) -> None:
        self.free_failures = int(free_failures)
        self.max_wait_s = float(max_wait_s)
        self._sources: OrderedDict[str, _Source] = OrderedDict()

    @staticmethod
    def _keys(user: str, address: str, connection: str) -> tuple[str, ...]:
        keys = (f"addr {address}", f"user {user} at {address}")
        return (*keys, f"conn {connection}") if connection else keys

    def wait_s(self, user: str, address: str, now_s: float, connection: str = "") -> float:
        """Seconds before another try from ``address`` (for ``user``) is looked at; 0: now."""
        waits = [s.wait_until_s - now_s for k in self._keys(user, address, connection) if (s := self._sources.get(k))]
        return max([0.0, *waits])

    def failed(self, user: str, address: str, now_s: float, connection: str = "") -> float:
        """Count one failure; returns the wait now asked of that source."""
        wait = 0.0
        for k in self._keys(user, address, connection):
            s = self._sources.pop(k, None) or _Source()
            if now_s - s.last_s > max(self.FORGET_S, s.wait_until_s - s.last_s):
                s.failures = 0  # quiet for long enough: a fresh count
            s.failures += 1
            s.last_s = now_s
            free = self.free_failures * (self.CONNECTION_FACTOR if k.startswith("conn ") else 1)
            over = s.failures - free
            if over >= 0:
                s.wait_until_s = now_s + min(self.max_wait_s, 2.0 ** min(over, 30))
                wait = max(wait, s.wait_until_s - now_s)
            self._sources[k] = s
        while len(self._sources) > _MAX_TRACKED:
            self._sources.popitem(last=False)
        return wait

    def succeeded(self, user: str, address: str) -> None:
        """The person got in from there: their own count starts again (the address's stays)."""
        self._sources.pop(self._keys(user, address, "")[1], None)


@dataclass(frozen=True)
class LoginOutcome:
    """The result of checking one login: ``claims`` when it succeeded, else ``reason`` for the journal."""

    claims: Claims | None
    reason: str = ""
    name: str = ""


class Doorkeeper:
    """The engine's door: the accounts, the token key, the throttle and the sessions logged out.

    ``check_login`` is the slow part (argon2id) and touches nothing shared but the accounts, so the engine runs it
    on a worker thread; everything else runs on the engine's loop.
    """

    def __init__(self, accounts: Iterable[Account], key: bytes, *, idle_s: float = 900.0, field_idle_s: float = 300.0,
                 free_failures: int = 5, max_wait_s: float = 300.0) -> None:
        self.accounts = {a.id: a for a in accounts}
        self.tokens = SessionTokens(key)
        self.throttle = LoginThrottle(free_failures, max_wait_s)
        self.idle_s = float(idle_s)
        self.field_idle_s = float(field_idle_s)
        self._revoked: dict[str, float] = {}  # session id -> when its last token expires (then forgotten)

    def check_login(self, user: str, secret: str, *, pin: bool, console: str, binding: str,
                    now_s: float) -> LoginOutcome:
        """Check one login (slow: argon2id). Unknown ids cost the same time as known ones."""
        acc = self.accounts.get(user)
        field = acc is not None and acc.role == "field_worker"
        encoded = None if acc is None else (acc.pin_hash if pin else acc.password_hash)
        if acc is None or encoded is None:
            dummy_verify(secret)
            return LoginOutcome(None, "unknown user id" if acc is None else
                                ("a field worker signs in with a PIN" if field else "no PIN for this account"))
        if not verify_secret(encoded, secret):
            return LoginOutcome(None, "wrong PIN" if pin else "wrong password")
        if not acc.enabled:
            return LoginOutcome(None, "account disabled")
        idle = self.field_idle_s if field else self.idle_s
        claims = Claims(user=acc.id, role=acc.role, console=console, binding=binding,
                        session=secrets.token_hex(12), issued_s=now_s, expires_s=now_s + idle)
        return LoginOutcome(claims, name=acc.name)

    def token(self, claims: Claims) -> str:
        return self.tokens.issue(claims)

    def renewed(self, claims: Claims, now_s: float) -> tuple[Claims, str]:
        """The same session, its idle limit counted again from now."""
        idle = self.field_idle_s if claims.role == "field_worker" else self.idle_s
        fresh = Claims(claims.user, claims.role, claims.console, claims.binding, claims.session, claims.issued_s,
                       now_s + idle)
        return fresh, self.tokens.issue(fresh)

    def verify(self, token: Any, binding: str, now_s: float) -> Claims | str:
        """The claims of a command's token, or why it is refused."""
        got = self.tokens.check(token, now_s)
        if isinstance(got, str):
            return got
        if not hmac.compare_digest(got.binding, binding):
            return "token of another console"
        if got.session in self._revoked:
            return "session logged out: log in again"
        acc = self.accounts.get(got.user)
        if acc is None or not acc.enabled:
            return "account disabled"
        return got

    def logged_out(self, session: str, until_s: float, now_s: float) -> None:
        """Revoke a session: its tokens are refused until they would have expired anyway (a renewed token still in
        flight may expire up to one idle limit after now)."""
        self._revoked[session] = max(until_s, now_s + max(self.idle_s, self.field_idle_s))
        for sid in [s for s, t in self._revoked.items() if t < now_s]:
            del self._revoked[sid]
