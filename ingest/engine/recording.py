"""The shift recording: every input the engine applies, in sequence order, in SQLite.

A recording holds the site configuration it ran with (``meta`` table, secrets stripped) and, per input, the raw
bus frames (``inputs`` table). Replaying it through :mod:`ingest.engine.replay` reproduces the engine exactly.
The frames of one input are stored as one blob: ``u32 count, count x u32 length, frame bytes...``.

The inputs are a hash chain like the journal's (:mod:`alarms.journal`): each row carries the hash of the row
before it, over its sequence number, topic, receive time, the dead letters it carries and its frames blob;
``chain_head`` keeps the count and the last hash; ``seals`` holds the engine's signatures of the head
(:mod:`alarms.seal`). :func:`verify_recording` checks all of it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

import yaml

from alarms.seal import (
    GENESIS_HASH,
    SEALS_SCHEMA,
    Seal,
    VerifyResult,
    check_chain_end,
    read_seals,
    write_seal,
)

__all__ = ["RecordingWriter", "RecordingReader", "pack_frames", "unpack_frames", "verify_recording",
           "input_hash", "strip_site_secrets", "FORMAT", "SECRET_KEYS"]

FORMAT = "watchfloor-recording-2"

#: site file keys whose values never go into a recording (user password hashes, broker and webhook secrets)
SECRET_KEYS = frozenset({"password", "password_sha256", "password_hash", "pin", "pin_hash", "secret", "token"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    received_ts_s REAL NOT NULL,
    frames BLOB NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chain_head (id INTEGER PRIMARY KEY CHECK (id = 1), rows INTEGER, hash TEXT);
""" + SEALS_SCHEMA


def input_hash(prev_hash: str, seq: int, topic: str, received_ts_s: float, frames_blob: bytes,
               dead_letters: list[tuple[str, ...]]) -> str:
    """``sha256(prev_hash + json([seq, topic, repr(received_ts_s), dead_letters]) + "\\n" + frames_blob)``:
    compact JSON, UTF-8; ``dead_letters`` as [source, reason, topic, payload, detail] in the order stored. The JSON holds
    no raw newline, so the first one ends it."""
    body = json.dumps([seq, topic, repr(float(received_ts_s)), [list(d) for d in dead_letters]],
                      ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(prev_hash.encode("ascii") + body.encode("utf-8") + b"\n" + frames_blob).hexdigest()


def strip_site_secrets(site_text: str) -> str:
    """The site file without its secrets (every key in :data:`SECRET_KEYS`, at any depth), as YAML. It still
    parses as the same site (those fields are optional), which is what replay and resume need of it."""
    data = yaml.safe_load(site_text)

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in SECRET_KEYS}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o

    return yaml.safe_dump(strip(data), sort_keys=False, allow_unicode=True, width=120)


def pack_frames(frames: list[bytes]) -> bytes:
    head = struct.pack(f"<I{len(frames)}I", len(frames), *(len(f) for f in frames))
    return head + b"".join(frames)


def unpack_frames(blob: bytes) -> list[bytes]:
    (n,) = struct.unpack_from("<I", blob, 0)
    lengths = struct.unpack_from(f"<{n}I", blob, 4)
    out, pos = [], 4 + 4 * n
    for ln in lengths:
        out.append(blob[pos : pos + ln])
        pos += ln
    if pos != len(blob):
        raise ValueError(f"recording blob has {len(blob) - pos} trailing bytes")
    return out


class RecordingWriter:
    """Appends inputs; ``commit()`` makes them durable. Write before apply (DESIGN principle 1)."""

    seal_kind = "recording"

    def __init__(self, path: str | Path, meta: dict[str, str], *, resume: bool = False) -> None:
        """A new recording; with ``resume``, continue the recording of an engine that stopped (its inputs
        are kept and their chain checked, new ones follow with the next sequence number and continue it)."""
        self.path = Path(path)
        if self.path.exists() and not resume:
            raise FileExistsError(f"{self.path} exists: a recording is never appended to or overwritten")
        existed = self.path.exists()
        if existed:
            check = verify_recording(self.path)
            if not check.ok:
                raise ValueError(f"cannot resume {self.path}: {check.reason}")
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        if not existed:  # schema, meta and the empty head in one transaction
            self.db.execute("BEGIN")
            for stmt in SCHEMA.split(";"):
                if stmt.strip():
                    self.db.execute(stmt)
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            self.db.execute("INSERT INTO chain_head VALUES (1, 0, ?)", (GENESIS_HASH,))
            self.db.execute("COMMIT")
        else:
            self.db.executescript(SCHEMA)
        last = self.db.execute("SELECT seq, hash FROM inputs ORDER BY seq DESC LIMIT 1").fetchone()
        self.next_seq = (last[0] if last else 0) + 1
        self._head = last[1] if last else GENESIS_HASH
        self._open_tx = False

    @property
    def rows(self) -> int:
        """Inputs appended so far (committed or not)."""
        return self.next_seq - 1

    @property
    def head(self) -> str:
        """Hash of the last input appended."""
        return self._head

    def append(self, topic: str, frames: list[bytes], received_ts_s: float,
               rejects: list[dict[str, str]] | None = None, source: str = "") -> int:
        """Record one input. ``received_ts_s`` is when the engine took it (wall clock; for latency figures,
        never used by the engine itself). ``rejects`` of a rejected-input batch also go to ``dead_letters``."""
        if not self._open_tx:
            self.db.execute("BEGIN")
            self._open_tx = True
        seq = self.next_seq
        ts = float(received_ts_s)
        blob = pack_frames(frames)
        dead = [(str(source), str(r.get("reason", "")), str(r.get("topic", "")), str(r.get("payload", "")),
                 str(r.get("detail", ""))) for r in rejects or []]
        h = input_hash(self._head, seq, topic, ts, blob, dead)
        self.db.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?)", (seq, topic, ts, blob, self._head, h))
        if dead:
            self.db.executemany("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?, ?)", [(seq, *d) for d in dead])
        self._head = h
        self.next_seq += 1
        return seq

    def commit(self) -> None:
        if self._open_tx:
            self.db.execute("INSERT OR REPLACE INTO chain_head VALUES (1, ?, ?)", (self.rows, self._head))
            self.db.execute("COMMIT")
            self._open_tx = False

    def add_seal(self, seal: Seal) -> None:
        """Write a seal of the committed chain (see :mod:`alarms.seal`)."""
        self.commit()
        write_seal(self.db, seal)

    def close(self) -> None:
        self.commit()
        self.db.close()


class RecordingReader:
    """Reads a recording: ``meta`` dict and inputs in sequence order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no recording at {self.path}")
        self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        self.meta = dict(self.db.execute("SELECT key, value FROM meta"))

    def __len__(self) -> int:
        return self.db.execute("SELECT count(*) FROM inputs").fetchone()[0]

    def inputs(self) -> Iterator[tuple[int, list[bytes]]]:
        for seq, blob in self.db.execute("SELECT seq, frames FROM inputs ORDER BY seq"):
            yield seq, unpack_frames(blob)

    def received_times(self) -> dict[int, float]:
        """seq -> wall-clock time the engine took the input."""
        return dict(self.db.execute("SELECT seq, received_ts_s FROM inputs"))

    def dead_letters(self) -> list[tuple[int, str, str, str, str, str]]:
        """(seq, source, reason code, topic, payload excerpt, detail) of every rejected input."""
        return self.db.execute("SELECT seq, source, reason, topic, payload, detail FROM dead_letters "
                               "ORDER BY rowid").fetchall()

    def close(self) -> None:
        self.db.close()


def verify_recording(path: str | Path, *, fingerprint: str | None = None, site_id: str | None = None,
                     allow_open: bool = False) -> VerifyResult:
    """Walk the inputs' chain (dead letters included), then check the head and the seals, as
    :func:`alarms.journal.verify_journal` does for a journal. ``bad_row`` is an input's sequence number."""
    p = Path(path)
    if not p.is_file():
        return VerifyResult(False, 0, None, f"no recording at {p}", kind="recording", verifiable=False)
    db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)

    def fail(n: int, bad: int | None, reason: str, verifiable: bool = True) -> VerifyResult:
        return VerifyResult(False, n, bad, reason, kind="recording", verifiable=verifiable, fingerprint=fingerprint)

    try:
        cols = {r[1] for r in db.execute("PRAGMA table_info(inputs)")}
        if not cols:
            return fail(0, None, "not a recording (no inputs table)", False)
        if "hash" not in cols:
            fmt = dict(db.execute("SELECT key, value FROM meta")).get("format", "?")
            return fail(0, None, f"not verifiable: recording format {fmt} carries no hash chain", False)
        seals = read_seals(db)
        wanted = {s.rows for s in seals}
        hash_at = {0: GENESIS_HASH}
        dead: dict[int, list[tuple[str, ...]]] = {}
        for seq, *d in db.execute("SELECT seq, source, reason, topic, payload, detail FROM dead_letters "
                                  "ORDER BY rowid"):
            dead.setdefault(seq, []).append(tuple(str(x) for x in d))
        prev = GENESIS_HASH
        n = 0
        for pos, (seq, topic, ts, blob, prev_hash, h) in enumerate(db.execute(
                "SELECT seq, topic, received_ts_s, frames, prev_hash, hash FROM inputs ORDER BY seq"), start=1):
            n = pos
            if seq != pos:
                return fail(n, seq, f"input {seq} found at position {pos}: an input was deleted")
            if prev_hash != prev:
                return fail(n, seq, f"input {seq} does not link to the input before it")
            if not isinstance(blob, bytes) or input_hash(prev, seq, topic, ts, blob, dead.pop(seq, [])) != h:
                return fail(n, seq, f"input {seq} was changed (its hash does not match its frames, fields or "
                                    "dead letters)")
            prev = h
            if pos in wanted:
                hash_at[pos] = prev
        if dead:
            orphan = min(dead)
            return fail(n, orphan, f"dead letter(s) for input {orphan}, which is not in the chain: dead letters "
                                   "were added")
        head = db.execute("SELECT rows, hash FROM chain_head WHERE id = 1").fetchone()
        return check_chain_end("recording", n, prev, hash_at, head, seals, fingerprint=fingerprint,
                               site_id=site_id, allow_open=allow_open)
    except sqlite3.DatabaseError as e:
        return fail(0, None, f"not a readable recording: {e}", False)
    finally:
        db.close()
