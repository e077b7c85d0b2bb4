"""The alarm journal: every alarm state change and person action, hash-chained, in SQLite (WAL).

Each row carries the hash of the row before it, so a changed byte, a deleted row or a reordering breaks the
chain at the first affected row. ``chain_head`` keeps the row count and the last hash. The engine signs the
head every few seconds of engine time and at close (``seals``, :mod:`alarms.seal`), so a cut tail with a
rewritten head, a chain recomputed from some row on, or rows added after the close are found too, given the
key's fingerprint pinned in the site file.

The journal is written only from engine state (engine time, input sequence numbers), never from the wall
clock, so replaying a recording writes the same rows and head, byte for byte (a replay writes no seals).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .seal import GENESIS_HASH, SEALS_SCHEMA, Seal, VerifyResult, check_chain_end, read_seals, write_seal

__all__ = ["Journal", "JournalRow", "VerifyResult", "verify_journal", "GENESIS_HASH"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    row INTEGER PRIMARY KEY,
    input_seq INTEGER NOT NULL,
    engine_ts_s REAL NOT NULL,
    event TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), rows INTEGER, hash TEXT);
""" + SEALS_SCHEMA


@dataclass(frozen=True)
class JournalRow:
    """One journal entry. ``event``: activate, clear, acknowledge, refused, ... ; ``actor``: user id or 'engine'."""

    row: int
    input_seq: int
    engine_ts_s: float
    event: str
    alarm_id: str
    state: str
    actor: str
    role: str
    detail: str
    prev_hash: str
    hash: str


def _row_hash(prev_hash: str, row: int, input_seq: int, ts: float, event: str, alarm_id: str, state: str,
              actor: str, role: str, detail: str) -> str:
    body = json.dumps([row, input_seq, repr(float(ts)), event, alarm_id, state, actor, role, detail],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


class Journal:
    """Append-only writer. Rows go into an open transaction; ``commit()`` ends it (the engine commits once per
    applied input that wrote rows, in live running and in replay alike). A new journal has a head (0 rows)
    from the start: a journal without one was emptied."""

    seal_kind = "journal"

    def __init__(self, path: str | Path, *, resume: bool = False) -> None:
        """A new journal; or, with ``resume``, the journal of an engine that stopped (crashed), which the engine
        rebuilds by applying its recording again: rows it already holds are then *checked* (each regenerated
        row must hash to the stored one) instead of written, and new rows are appended after them."""
        self.path = Path(path)
        if self.path.exists() and not resume:
            raise FileExistsError(f"{self.path} exists: a journal is never appended to by a new run")
        if resume:
            check = verify_journal(self.path)
            if not check.ok:
                raise ValueError(f"cannot resume {self.path}: {check.reason}")
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if resume:
            self.db.executescript(SCHEMA)
        else:  # the schema and the empty head in one transaction: a new journal is never headless
            self.db.executescript(f"BEGIN; {SCHEMA}; INSERT INTO chain_head VALUES (1, 0, '{GENESIS_HASH}'); COMMIT;")
        self.rows = 0
        self.head = GENESIS_HASH
        self._open = False
        self._stored = self.db.execute("SELECT count(*) FROM journal").fetchone()[0] if resume else 0

    def append(self, *, input_seq: int, engine_ts_s: float, event: str, alarm_id: str, state: str,
               actor: str = "engine", role: str = "", detail: dict[str, Any] | None = None) -> JournalRow:
        if self.rows < self._stored:
            return self._check_stored(input_seq, engine_ts_s, event, alarm_id, state, actor, role, detail)
        if not self._open:
            self.db.execute("BEGIN")
            self._open = True
        self.rows += 1
        d = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        h = _row_hash(self.head, self.rows, input_seq, engine_ts_s, event, alarm_id, state, actor, role, d)
        r = JournalRow(self.rows, input_seq, float(engine_ts_s), event, alarm_id, state, actor, role, d, self.head, h)
        self.db.execute("INSERT INTO journal VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (r.row, r.input_seq, r.engine_ts_s, r.event, r.alarm_id, r.state, r.actor, r.role,
                         r.detail, r.prev_hash, r.hash))
        self.head = h
        return r

    def _check_stored(self, input_seq, engine_ts_s, event, alarm_id, state, actor, role, detail) -> JournalRow:
        self.rows += 1
        d = json.dumps(detail or {}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        h = _row_hash(self.head, self.rows, input_seq, engine_ts_s, event, alarm_id, state, actor, role, d)
        stored = self.db.execute("SELECT hash FROM journal WHERE row = ?", (self.rows,)).fetchone()
        if stored is None or stored[0] != h:
            raise ValueError(f"resuming {self.path}: row {self.rows} does not match what the recording gives "
                             "(different code or configuration, or the journal was changed)")
        r = JournalRow(self.rows, input_seq, float(engine_ts_s), event, alarm_id, state, actor, role, d, self.head, h)
        self.head = h
        return r

    @property
    def resuming(self) -> bool:
        """True while rows already stored are being checked rather than written."""
        return self.rows < self._stored

    def commit(self) -> None:
        if self._open:
            self.db.execute("INSERT OR REPLACE INTO chain_head VALUES (1, ?, ?)", (self.rows, self.head))
            self.db.execute("COMMIT")
            self._open = False

    def add_seal(self, seal: Seal) -> None:
        """Write a seal of the committed chain (see :mod:`alarms.seal`); seals are not chained rows."""
        self.commit()
        write_seal(self.db, seal)

    def close(self) -> None:
        self.commit()
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()


def verify_journal(path: str | Path, *, fingerprint: str | None = None, site_id: str | None = None,
                   allow_open: bool = False) -> VerifyResult:
    """Walk the chain, then check the head and the seals (:func:`alarms.seal.check_chain_end`).

    The first row whose position, link or hash is wrong is reported with the reason. With ``fingerprint``
    (``sha256:<hex>``, pinned in the site file) the seals must be signed with that key and the last one must
    close every row (unless ``allow_open``: a running engine's journal). ``site_id``: the seals must name it."""
    p = Path(path)
    if not p.is_file():
        return VerifyResult(False, 0, None, f"no journal at {p}", verifiable=False, fingerprint=fingerprint)
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        seals = read_seals(db)
        wanted = {s.rows for s in seals}
        hash_at = {0: GENESIS_HASH}
        prev = GENESIS_HASH
        n = 0
        for pos, rec in enumerate(db.execute("SELECT * FROM journal ORDER BY rowid"), start=1):
            r = JournalRow(*rec)
            n = pos
            if r.row != pos:
                return VerifyResult(False, n, r.row, f"row {r.row} found at position {pos}: a row was deleted "
                                                     "or rows were reordered")
            if r.prev_hash != prev:
                return VerifyResult(False, n, r.row, f"row {r.row} does not link to the row before it")
            h = _row_hash(prev, r.row, r.input_seq, r.engine_ts_s, r.event, r.alarm_id, r.state, r.actor, r.role,
                          r.detail)
            if h != r.hash:
                return VerifyResult(False, n, r.row, f"row {r.row} was changed (its hash does not match its content)")
            prev = r.hash
            if pos in wanted:
                hash_at[pos] = prev
        head = db.execute("SELECT rows, hash FROM chain_head WHERE id = 1").fetchone()
        return check_chain_end("journal", n, prev, hash_at, head, seals, fingerprint=fingerprint, site_id=site_id,
                               allow_open=allow_open)
    except sqlite3.DatabaseError as e:
        return VerifyResult(False, 0, None, f"not a readable journal: {e}", verifiable=False)
    finally:
        db.close()
