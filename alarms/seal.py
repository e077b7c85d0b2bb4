"""Seals: Ed25519 signatures of a hash chain's head, kept in the chained database's own ``seals`` table.

The journal and the recording are each a hash chain (every row carries the hash of the row before it) with a
``chain_head`` (row count, last hash). A chain alone does not stop someone who rewrites it from some row on and
recomputes every hash after it. A seal does: it signs what the chain was at a moment of engine time,

    (database kind, site id, rows, head hash, engine time, whether it is the close seal)

with the engine's journal-signing key (:mod:`alarms.keys`). The engine seals both databases every
``signing.seal_interval_s`` of engine time and once more when it closes. Checking then finds:

- a changed, deleted or reordered row (the chain);
- a cut tail with a rewritten head (a seal covers more rows than there are);
- a chain recomputed from some row on (a seal's signed head no longer matches the row it names);
- rows after the last seal, a missing close seal (the run did not close cleanly, or its end was cut off);
- a seal signed with another key than the pinned one, or an altered seal.

The public key that checks a seal comes only from outside the database (the fingerprint pinned in the site
file); a seal carries its public key, which is trusted only when it has that fingerprint.
Seals are not part of the chain: a replay writes the same rows without them.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .keys import KeyDirError, key_dir_for, load_journal_signing_key, raw_public
from .keys import fingerprint as key_fingerprint

if TYPE_CHECKING:
    from config import Site

log = logging.getLogger(__name__)

__all__ = ["GENESIS_HASH", "SEALS_SCHEMA", "SEAL_FORMAT", "Seal", "Signer", "Sealable", "PeriodicSealer",
           "VerifyResult", "seal_message", "write_seal", "read_seals", "check_chain_end", "sealer_from_site"]

GENESIS_HASH = "0" * 64
SEAL_FORMAT = "watchfloor-seal-1"

SEALS_SCHEMA = """
CREATE TABLE IF NOT EXISTS seals (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    site_id TEXT NOT NULL,
    rows INTEGER NOT NULL,
    head TEXT NOT NULL,
    engine_ts_s REAL,
    close INTEGER NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL
);
"""


def seal_message(kind: str, site_id: str, rows: int, head: str, engine_ts_s: float | None, close: bool) -> bytes:
    """The bytes a seal signs: compact JSON with sorted keys, UTF-8; engine time as ``repr`` (exact) or null."""
    body = {"format": SEAL_FORMAT, "kind": kind, "site_id": site_id, "rows": int(rows), "head": head,
            "engine_ts_s": None if engine_ts_s is None else repr(float(engine_ts_s)), "close": bool(close)}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Seal:
    """One signed chain head. ``engine_ts_s`` is None before the first clock tick."""

    id: int | None
    kind: str
    site_id: str
    rows: int
    head: str
    engine_ts_s: float | None
    close: bool
    public_key: bytes
    signature: bytes

    def message(self) -> bytes:
        return seal_message(self.kind, self.site_id, self.rows, self.head, self.engine_ts_s, self.close)

    def when(self) -> str:
        return f"seal {self.id}" + (f" at engine time {self.engine_ts_s:.3f}" if self.engine_ts_s is not None else "")


class Signer:
    """Signs chain heads for one site with one Ed25519 key."""

    def __init__(self, key: Ed25519PrivateKey, site_id: str) -> None:
        self.key = key
        self.site_id = site_id
        self.public_key = raw_public(key.public_key())
        self.fingerprint = key_fingerprint(self.public_key)

    def sign(self, kind: str, rows: int, head: str, engine_ts_s: float | None, close: bool) -> Seal:
        ts = float(engine_ts_s) if engine_ts_s is not None and math.isfinite(engine_ts_s) else None
        msg = seal_message(kind, self.site_id, rows, head, ts, close)
        return Seal(None, kind, self.site_id, int(rows), head, ts, bool(close), self.public_key, self.key.sign(msg))


def write_seal(db: sqlite3.Connection, seal: Seal) -> None:
    """Insert ``seal`` in its own transaction (``db`` in autocommit mode, no transaction open)."""
    db.execute("INSERT INTO seals (kind, site_id, rows, head, engine_ts_s, close, public_key, signature) "
               "VALUES (?,?,?,?,?,?,?,?)", (seal.kind, seal.site_id, seal.rows, seal.head, seal.engine_ts_s,
                                            int(seal.close), seal.public_key, seal.signature))


def read_seals(db: sqlite3.Connection) -> list[Seal]:
    """Every seal in the order written; [] when the database has no ``seals`` table."""
    has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'seals'").fetchone()
    if not has:
        return []
    rows = db.execute("SELECT id, kind, site_id, rows, head, engine_ts_s, close, public_key, signature "
                      "FROM seals ORDER BY id").fetchall()
    return [Seal(i, str(k), str(s), int(n), str(h), None if t is None else float(t), bool(c), _blob(p), _blob(g))
            for i, k, s, n, h, t, c, p, g in rows]


def _blob(v: object) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, str):
        return v.encode("utf-8")
    return b""


class Sealable(Protocol):
    """A chained database the engine writes: the journal or the recording."""

    seal_kind: str

    @property
    def rows(self) -> int: ...

    @property
    def head(self) -> str: ...

    def add_seal(self, seal: Seal) -> None: ...


class PeriodicSealer:
    """Seals chains every ``interval_s`` of engine time (never the wall clock) and once at close."""

    def __init__(self, signer: Signer, interval_s: float) -> None:
        self.signer = signer
        self.interval_s = float(interval_s)
        self.last_ts_s: float | None = None
        self._sealed: dict[str, tuple[int, str]] = {}

    @property
    def fingerprint(self) -> str:
        return self.signer.fingerprint

    def maybe_seal(self, now_s: float, *chains: Sealable) -> int:
        """Seal each chain that changed since its last seal, if ``interval_s`` of engine time passed since the
        last sealing; return how many seals were written. Before the first tick (NaN) nothing is due."""
        if not math.isfinite(now_s):
            return 0
        if self.last_ts_s is not None and 0.0 <= now_s - self.last_ts_s < self.interval_s:
            return 0  # (engine time that went back, a clock stepped back, is no reason to stop sealing)
        self.last_ts_s = now_s
        n = 0
        for c in chains:
            if getattr(c, "resuming", False):  # rows of a resumed journal are still being checked
                continue
            state = (c.rows, c.head)
            if self._sealed.get(c.seal_kind) == state:
                continue
            c.add_seal(self.signer.sign(c.seal_kind, c.rows, c.head, now_s, False))
            self._sealed[c.seal_kind] = state
            n += 1
        return n

    def seal_close(self, now_s: float, *chains: Sealable) -> None:
        """The close seal of each chain: it says the run ended here, cleanly."""
        for c in chains:
            c.add_seal(self.signer.sign(c.seal_kind, c.rows, c.head, now_s, True))
            self._sealed[c.seal_kind] = (c.rows, c.head)


def sealer_from_site(site: Site) -> PeriodicSealer | None:
    """The engine's sealer for ``site``: None when no key directory is configured (``signing.key_dir`` or
    ``$WATCHFLOOR_KEY_DIR``). Raises :class:`alarms.keys.KeyDirError` when the key is missing or is not the
    pinned one, or when a fingerprint is pinned but no key directory is given."""
    s = site.signing
    key_dir = key_dir_for(s.key_dir)
    if key_dir is None:
        if s.fingerprint:
            raise KeyDirError(f"the site pins signing.fingerprint {s.fingerprint} but names no key directory "
                              "(signing.key_dir or $WATCHFLOOR_KEY_DIR): refusing to run unsigned")
        return None
    key = load_journal_signing_key(key_dir, expected_fingerprint=s.fingerprint)
    signer = Signer(key, site.id)
    if not s.fingerprint:
        log.warning("signing with %s from %s, but the site pins no signing.fingerprint: verification needs it "
                    "given with --fingerprint", signer.fingerprint, key_dir)
    return PeriodicSealer(signer, s.seal_interval_s)


# -- checking ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyResult:
    """What checking a journal or a recording found.

    ``ok``: nothing contradicts the chain, its head or its seals; when checked against a pinned ``fingerprint``,
    also every seal is signed with that key and the last one closes every row (or ``allow_open``).
    ``verifiable``: there is something to prove (rows or seals); an empty, unsealed database is not.
    ``signed``: the seals were checked against the pinned fingerprint and hold.
    ``notes``: what is not a fault by itself (rows after the last seal, no close seal, unsigned)."""

    ok: bool
    rows: int
    bad_row: int | None = None
    reason: str = ""
    head: str = GENESIS_HASH
    kind: str = "journal"
    verifiable: bool = True
    signed: bool = False
    closed: bool = False
    seals: int = 0
    sealed_rows: int = 0
    site_id: str | None = None
    fingerprint: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def proven(self) -> bool:
        """Intact, not empty, and signed with the pinned key."""
        return self.ok and self.verifiable and self.signed


def _unit(kind: str) -> str:
    return "inputs" if kind == "recording" else "rows"


def check_chain_end(kind: str, rows: int, last_hash: str, hash_at: Mapping[int, str], head: tuple | None,
                    seals: list[Seal], *, fingerprint: str | None, site_id: str | None,
                    allow_open: bool) -> VerifyResult:
    """Everything after the row-by-row walk: seals, chain head, emptiness, the unsealed tail.

    ``rows``/``last_hash``: what the walk found; ``hash_at``: row number -> hash after that row, for every row
    number a seal names (0 -> genesis); ``head``: the ``chain_head`` row (rows, hash) or None."""
    unit = _unit(kind)
    seal_site = seals[-1].site_id if seals else None

    def fail(reason: str, bad_row: int | None = None, *, verifiable: bool = True) -> VerifyResult:
        return VerifyResult(False, rows, bad_row, reason, last_hash, kind, verifiable, False, False, len(seals),
                            0, seal_site, fingerprint)

    # 1. signatures, only against the pinned key: a key stored in the database proves nothing by itself
    if fingerprint is not None:
        if not seals:
            return fail(f"not signed: the {kind} has no seals (its engine ran without a signing key)",
                        verifiable=False)
        for s in seals:
            try:
                fp = key_fingerprint(s.public_key) if len(s.public_key) == 32 else "(no valid public key)"
            except ValueError:
                fp = "(no valid public key)"
            if fp != fingerprint:
                return fail(f"{s.when()} was signed with another key ({fp}), not the pinned {fingerprint}")
            try:
                Ed25519PublicKey.from_public_bytes(s.public_key).verify(s.signature, s.message())
            except (InvalidSignature, ValueError):
                return fail(f"{s.when()}: the signature does not match what the seal says (the seal was altered)")
            if site_id is not None and s.site_id != site_id:
                return fail(f"{s.when()} is for site {s.site_id!r}, not {site_id!r}")
    # 2. what the seals say against what the chain holds
    good = 0
    for s in seals:
        if s.kind != kind:
            return fail(f"{s.when()} is a {s.kind} seal, found in a {kind}")
        if s.rows < good:
            return fail(f"{s.when()} covers {s.rows} {unit} after a seal that covered {good}: seals out of order")
        if s.rows > rows:
            return fail(f"{s.when()} covers {s.rows} {unit}, only {rows} are there: {unit} were removed from the "
                        f"end (and the chain head rewritten)", rows + 1)
        if hash_at.get(s.rows) != s.head:
            return fail(f"{s.when()} signed head {s.head[:16]}… at {unit[:-1]} {s.rows}, which now hashes to "
                        f"{str(hash_at.get(s.rows))[:16]}…: {unit} were changed and the chain recomputed from "
                        f"some {unit[:-1]} in {good + 1}..{s.rows} on", good + 1)
        good = s.rows
    # 3. the chain head
    if head is None:
        if rows:
            return fail("chain head is missing")
        if not seals:
            return fail(f"not verifiable: no {unit} and no chain head (an empty or emptied {kind})",
                        verifiable=False)
    elif head[0] > rows:
        return fail(f"chain head says {head[0]} {unit}, found {rows}: {unit} were removed from the end", rows + 1)
    elif head[0] < rows:
        return fail(f"chain head says {head[0]} {unit}, found {rows}: {unit} were added after the head",
                    head[0] + 1)
    elif head[1] != last_hash:
        return fail(f"chain head hash does not match {unit[:-1]} {rows}: the head was rewritten", rows)
    # 4. nothing to prove (with a pinned key, step 1 already failed it)
    if rows == 0 and not seals:
        return VerifyResult(True, 0, None, f"not verifiable: no {unit} and no seals", last_hash, kind, False)
    # 5. the tail after the last seal
    notes: list[str] = []
    last = seals[-1] if seals else None
    sealed = last.rows if last else 0
    if last is None:
        notes.append("no seals")
    else:
        unsealed = rows - sealed
        if unsealed and last.close:
            notes.append(f"{unsealed} {unit} after the close seal ({last.when()}): {unit} were added after the "
                         "run closed")
        elif unsealed:
            notes.append(f"{unsealed} {unit} after the last seal ({last.when()}) are not sealed")
        if not last.close:
            notes.append("no close seal: the run did not close cleanly, or its end was cut off")
    closed = last is not None and last.close and sealed == rows
    signed = fingerprint is not None
    if signed and not closed and not allow_open:
        return VerifyResult(False, rows, sealed + 1 if sealed < rows else None, "; ".join(notes), last_hash, kind,
                            True, False, False, len(seals), sealed, seal_site, fingerprint, tuple(notes))
    return VerifyResult(True, rows, None, "", last_hash, kind, True, signed, closed, len(seals), sealed, seal_site,
                        fingerprint, tuple(notes))
