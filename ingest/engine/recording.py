"""The shift recording: every input the engine applies, in sequence order, in SQLite.

A recording holds the site configuration it ran with (``meta`` table) and, per input, the raw bus frames
(``inputs`` table). Replaying it through :mod:`ingest.engine.replay` reproduces the engine exactly.
The frames of one input are stored as one blob: ``u32 count, count x u32 length, frame bytes...``.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["RecordingWriter", "RecordingReader", "pack_frames", "unpack_frames"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS inputs (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    received_ts_s REAL NOT NULL,
    frames BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    seq INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""


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

    def __init__(self, path: str | Path, meta: dict[str, str], *, resume: bool = False) -> None:
        """A new recording; with ``resume``, continue the recording of an engine that stopped (its inputs
        are kept, new ones follow with the next sequence number)."""
        self.path = Path(path)
        if self.path.exists() and not resume:
            raise FileExistsError(f"{self.path} exists: a recording is never appended to or overwritten")
        existed = self.path.exists()
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        if not existed:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
            self.db.execute("COMMIT")
        self.next_seq = (self.db.execute("SELECT max(seq) FROM inputs").fetchone()[0] or 0) + 1
        self._open_tx = False

    def append(self, topic: str, frames: list[bytes], received_ts_s: float,
               rejects: list[dict[str, str]] | None = None, source: str = "") -> int:
        """Record one input. ``received_ts_s`` is when the engine took it (wall clock; for latency figures,
        never used by the engine itself). ``rejects`` of a rejected-input batch also go to ``dead_letters``."""
        if not self._open_tx:
            self.db.execute("BEGIN")
            self._open_tx = True
        seq = self.next_seq
        self.db.execute("INSERT INTO inputs VALUES (?, ?, ?, ?)", (seq, topic, received_ts_s, pack_frames(frames)))
        if rejects:
            self.db.executemany("INSERT INTO dead_letters VALUES (?, ?, ?, ?, ?)",
                                [(seq, source, str(r.get("reason", "")), str(r.get("topic", "")),
                                  str(r.get("payload", ""))) for r in rejects])
        self.next_seq += 1
        return seq

    def commit(self) -> None:
        if self._open_tx:
            self.db.execute("COMMIT")
            self._open_tx = False

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

    def dead_letters(self) -> list[tuple[int, str, str, str, str]]:
        """(seq, source, reason, topic, payload excerpt) of every rejected input."""
        return self.db.execute("SELECT seq, source, reason, topic, payload FROM dead_letters ORDER BY rowid").fetchall()

    def close(self) -> None:
        self.db.close()
