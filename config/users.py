"""The users file: who may log in, with what role, and the argon2id hash of each password or PIN.

It is named by the site file (``access.users_file``, relative to the site file; ``$WATCHFLOOR_USERS_FILE``
overrides it) and is never the site file itself: the site file travels (into every recording, onto every host),
the users file stays on the hosts that check logins, mode 0600. Managed with ``watchfloor users``.

Two kinds of account:

- **staff** (operator, supervisor, safety manager, admin): an id and a password, for the workstation and the
  OPC UA Alarms & Conditions server;
- **field workers** (role ``field_worker``): a person with a tag, who signs in on the phone pages with the id and a
  PIN (a watcher signing in at a permit, anyone reporting a hazard); they take no alarm actions.

Hashes are argon2id (RFC 9106) with a random salt per hash, at the OWASP-recommended minimum cost (19 MiB, two
passes): about 25 ms to check on one core of this machine. Nothing here keeps or logs a password.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "USERS_FILE_ENV",
    "STAFF_ROLES",
    "ACCOUNT_ROLES",
    "Account",
    "UsersFileError",
    "hash_secret",
    "verify_secret",
    "dummy_verify",
    "weak_secret",
    "load_users_file",
    "save_users_file",
]

USERS_FILE_ENV = "WATCHFLOOR_USERS_FILE"
STAFF_ROLES: tuple[str, ...] = ("operator", "supervisor", "safety_manager", "admin")
ACCOUNT_ROLES: tuple[str, ...] = (*STAFF_ROLES, "field_worker")

#: argon2id at OWASP's minimum: m=19 MiB, t=2, p=1
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID)
_ARGON2ID = re.compile(r"^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$")


@functools.cache
def _dummy_hash() -> str:
    """Hashed once per process, so an unknown id costs the same time as a known one."""
    return _HASHER.hash("watchfloor: no such user")


#: passwords nobody may use on a real site: defaults, the demo's, keyboard walks, the site's own words
_WEAK = frozenset({
    "demo", "password", "passw0rd", "admin", "administrator", "operator", "supervisor", "changeme", "change-me",
    "welcome", "letmein", "qwerty", "qwertyuiop", "123456", "1234567", "12345678", "123456789", "1234567890",
    "0000", "1111", "1234", "000000", "111111", "abc123", "secret", "watchfloor", "default", "root", "guest",
})
MIN_PASSWORD_CHARS = 10
MIN_PIN_DIGITS = 6


class UsersFileError(Exception):
    """A users file that cannot be used: the file, the path in it and what is wrong."""


class Account(BaseModel):
    """One person who may log in. ``password_hash`` / ``pin_hash`` are argon2id encodings (``$argon2id$...``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    name: str = Field(min_length=1, max_length=120)
    role: Literal["operator", "supervisor", "safety_manager", "admin", "field_worker"]
    team: str = Field(default="", max_length=64)
    enabled: bool = True
    tag: str | None = Field(default=None, description="a field worker's UWB tag (the person signing in)")
    password_hash: str | None = None
    pin_hash: str | None = None

    @field_validator("password_hash", "pin_hash")
    @classmethod
    def _argon2id(cls, v: str | None) -> str | None:
        if v is not None and not _ARGON2ID.match(v):
            raise ValueError("not an argon2id hash ($argon2id$v=19$m=..,t=..,p=..$salt$hash): set it with "
                             "`watchfloor users passwd`")
        return v


def hash_secret(secret: str) -> str:
    """A new argon2id hash of ``secret`` with its own random salt."""
    return _HASHER.hash(secret)


def verify_secret(encoded: str | None, secret: str) -> bool:
    """Does ``secret`` match the argon2id hash ``encoded``? A missing hash costs the same time and says no."""
    try:
        return _HASHER.verify(encoded or _dummy_hash(), secret) and encoded is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def dummy_verify(secret: str) -> None:
    """Spend the time of one check (for an unknown id, so ids cannot be told apart by timing)."""
    verify_secret(None, secret)


def weak_secret(secret: str, *, user_id: str = "", pin: bool = False) -> str | None:
    """Why ``secret`` is too weak for a real site, or None. PINs: at least 6 digits, not one digit repeated nor
    a run; passwords: at least 10 characters, not a known default nor the user id."""
    s = secret.strip()
    if pin:
        if not s.isdigit() or len(s) < MIN_PIN_DIGITS:
            return f"a PIN needs at least {MIN_PIN_DIGITS} digits"
        if len(set(s)) == 1 or s in "01234567890123456789" or s in "98765432109876543210":
            return "a PIN may not be one digit repeated or a run of digits"
        return None
    low = s.lower()
    if low in _WEAK or (user_id and low == user_id.lower()):
        return "a default, demo or guessable password"
    if len(s) < MIN_PASSWORD_CHARS:
        return f"shorter than {MIN_PASSWORD_CHARS} characters"
    if len(set(low)) < 4:
        return "too few different characters"
    return None


def _issue(file: Path | str, path: str, reason: str) -> UsersFileError:
    return UsersFileError(f"{file}: {path or '<top>'}: {reason}")


def load_users_file(path: str | Path) -> list[Account]:
    """Read and check a users file. Raises :class:`UsersFileError` naming the file, the path and the problem."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise _issue(p, "", f"cannot read the users file: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise _issue(p, where, f"not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {"users": []}
    if not isinstance(data, dict) or set(data) - {"users"} or not isinstance(data.get("users", []), list):
        raise _issue(p, "", "a users file holds one key, users: a list of accounts")
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    problems: list[str] = []
    for i, raw in enumerate(data.get("users") or []):
        if isinstance(raw, dict) and "password_sha256" in raw:
            problems.append(f"users[{i}].password_sha256: unsalted SHA-256 passwords are no longer accepted; set a "
                            f"new one with `watchfloor users passwd {raw.get('id', 'ID')} --site SITE`")
            continue
        try:
            acc = Account.model_validate(raw)
        except ValidationError as e:
            for err in e.errors():
                loc = ".".join(str(x) for x in err["loc"])
                msg = "unknown field (a typo?)" if err["type"] == "extra_forbidden" else err["msg"]
                problems.append(f"users[{i}]{'.' + loc if loc else ''}: {msg.removeprefix('Value error, ')}")
            continue
        if acc.id in seen:
            problems.append(f"users[{i}].id: duplicate id {acc.id!r} (first at users[{seen[acc.id]}])")
            continue
        if acc.role == "field_worker" and acc.tag is None:
            problems.append(f"users[{i}].tag: a field worker signs in as a person with a tag: give the tag")
        if acc.role == "field_worker" and acc.password_hash is not None:
            problems.append(f"users[{i}].password_hash: a field worker signs in with a PIN, not a password")
        if acc.role != "field_worker" and acc.pin_hash is not None:
            problems.append(f"users[{i}].pin_hash: only field workers sign in with a PIN")
        seen[acc.id] = i
        accounts.append(acc)
    if problems:
        raise UsersFileError("\n".join(f"{p}: {x}" for x in problems))
    return accounts


def save_users_file(path: str | Path, accounts: Iterable[Account]) -> None:
    """Write the users file (mode 0600, replaced atomically), keeping a short header."""
    p = Path(path)
    doc = {"users": [a.model_dump(exclude_none=True, exclude_defaults=False) for a in accounts]}
    text = ("# watchfloor users file: who may log in (argon2id hashes). Keep it mode 0600 and out of the site file.\n"
            "# Change it with `watchfloor users add|passwd|disable|list --site SITE`.\n"
            + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=200))
    tmp = p.with_name(p.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, p)
