"""The engine's blob store: camera snapshots, content-addressed by SHA-256, outside the recording.

DESIGN ("Blobs and history"): blobs travel over the bus to the engine, which owns them; the recording and the
journal keep only their SHA-256, and consoles fetch them from the engine over the bus (``blob_get``), never from
its disk. The store is one SQLite file beside the run's recording (``blobs.sqlite``), written by the engine process
itself (blobs are few: one per detection alarm) and bounded three ways, oldest first: at most ``max_blobs``, at
most ``max_bytes`` together, none stored longer ago than ``max_age_s`` (wall clock: this is housekeeping of the
process, like recording retention, and never part of the engine's state). What is evicted is counted by reason.

A blob the store will not take raises :class:`BlobRefused` with a reason code of
:data:`ingest.protocol.wire.REASONS` and the detail: empty or too large, a malformed or mismatching hash, a content
type it does not take, bytes that are not a JPEG, an unknown camera, a malformed message. The engine process turns
it into a counted ``rejected`` input (its header, never its bytes).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.protocol.blobs import BLOB_KIND, CONTENT_TYPES, MAX_BOXES, blob_bytes, is_sha256, sha256_hex

log = logging.getLogger(__name__)

__all__ = ["Blob", "BlobRefused", "BlobStore", "BLOB_FILE", "BLOB_SOURCES"]

BLOB_FILE = "blobs.sqlite"
#: who may send blobs (the header's ``source``)
BLOB_SOURCES = frozenset({"camera"})
_MAX_META_BYTES = 16 * 1024


class BlobRefused(ValueError):
    """A blob the store does not take: ``code`` (a reject reason code) and ``detail``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


@dataclass(frozen=True)
class Blob:
    """One stored blob: its address, content type, bytes, meta (a snapshot's camera, time, boxes) and when it was
    stored (epoch s, wall clock)."""

    sha256: str
    content_type: str
    data: bytes
    meta: dict[str, Any]
    stored_ts_s: float


class BlobStore:
    """Content-addressed blobs in ``path`` (created when missing, reopened when there).

    ``cameras``: the camera ids a snapshot may name; ``max_blob_bytes``: the largest blob taken; ``max_blobs``,
    ``max_bytes``, ``max_age_s``: the store's bounds (oldest evicted first). ``clock``: wall-clock seconds (tests
    pass their own)."""

    def __init__(self, path: str | Path, *, cameras: Iterable[str], max_blob_bytes: int, max_blobs: int,
                 max_bytes: int, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.cameras = frozenset(cameras)
        self.max_blob_bytes, self.max_blobs, self.max_bytes = int(max_blob_bytes), int(max_blobs), int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.clock = clock
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY AUTOINCREMENT, sha256 TEXT UNIQUE "
                        "NOT NULL, content_type TEXT NOT NULL, bytes INTEGER NOT NULL, data BLOB NOT NULL, meta TEXT "
                        "NOT NULL, source TEXT NOT NULL, stored_ts_s REAL NOT NULL)")
        # sha256 -> (bytes, stored_ts_s), oldest first: what eviction and `has` look at without a query
        self.index: OrderedDict[str, tuple[int, float]] = OrderedDict(
            (sha, (n, ts)) for sha, n, ts in self.db.execute("SELECT sha256, bytes, stored_ts_s FROM blobs ORDER BY id"))
        self.total_bytes = sum(n for n, _ in self.index.values())
        self.stored = 0  # new blobs taken by this process
        self.duplicates = 0  # puts of a blob already held (one blob kept)
        self.evicted: Counter[str] = Counter()  # by bound: count, bytes, age
        self.refused: Counter[str] = Counter()  # by reason code
        self.served = 0  # blob_get answered with a blob
        self.not_found = 0  # blob_get of a blob not held

    # -- taking blobs -------------------------------------------------------------------------------------
    def check(self, data: bytes, meta: dict[str, Any]) -> tuple[str, str]:
        """(sha256, content_type) of a blob the store would take; :class:`BlobRefused` with the reason otherwise."""
        if not data:
            raise BlobRefused("bad_field", "empty blob")
        if len(data) > self.max_blob_bytes:
            raise BlobRefused("too_large", f"blob of {len(data)} bytes, at most {self.max_blob_bytes} "
                                           "(camera_snapshots.max_blob_bytes)")
        given = meta.get("sha256")
        if not is_sha256(given):
            raise BlobRefused("bad_field", f"sha256 {str(given)[:80]!r} is not 64 lower-case hex digits")
        actual = sha256_hex(data)
        if actual != given:
            raise BlobRefused("bad_field", f"hash mismatch: the bytes hash to {actual}, the message says {given}")
        ctype = meta.get("content_type")
        if ctype not in CONTENT_TYPES:
            raise BlobRefused("bad_field", f"content type {str(ctype)[:40]!r} is not taken "
                                           f"({', '.join(sorted(CONTENT_TYPES))})")
        head, tail = CONTENT_TYPES[ctype]
        if not data.startswith(head):
            raise BlobRefused("bad_field", f"not a {ctype} (no start-of-image marker)")
        if not data.rstrip(b"\x00\r\n ").endswith(tail):
            raise BlobRefused("bad_field", f"truncated {ctype} (no end-of-image marker)")
        camera = meta.get("camera")
        if camera is not None and camera not in self.cameras:
            raise BlobRefused("unknown_id", f"unknown camera {str(camera)[:32]!r}")
        ts = meta.get("ts_s")
        if ts is not None and (isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)):
            raise BlobRefused("bad_field", "ts_s is not a finite number")
        boxes = meta.get("boxes", [])
        if not isinstance(boxes, list) or len(boxes) > MAX_BOXES or not all(isinstance(b, dict) for b in boxes):
            raise BlobRefused("bad_field", f"boxes is not a list of at most {MAX_BOXES} objects")
        if len(json.dumps(meta, separators=(",", ":"))) > _MAX_META_BYTES:
            raise BlobRefused("too_large", f"blob meta over {_MAX_META_BYTES} bytes")
        return actual, ctype

    def put(self, data: bytes, meta: dict[str, Any], source: str = "camera") -> tuple[str, bool]:
        """Store one blob; returns (sha256, new). A blob already held is not stored twice (``new`` False)."""
        try:
            sha, ctype = self.check(data, meta)
        except BlobRefused as e:
            self.refused[e.code] += 1
            raise
        if sha in self.index:
            self.duplicates += 1
            return sha, False
        now = self.clock()
        keep = {k: v for k, v in meta.items() if k not in ("sha256", "content_type")}
        self.db.execute("INSERT INTO blobs (sha256, content_type, bytes, data, meta, source, stored_ts_s) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (sha, ctype, len(data), sqlite3.Binary(data), json.dumps(keep, separators=(",", ":")),
                         source[:64], now))
        self.index[sha] = (len(data), now)
        self.total_bytes += len(data)
        self.stored += 1
        self.evict(now)
        return sha, True

    def put_message(self, msg: Any) -> tuple[str, bool]:
        """Store the blob of a ``blob`` bus message (:mod:`ingest.protocol.blobs`); :class:`BlobRefused` when the
        message is not one the store takes."""
        try:
            if msg.kind != BLOB_KIND:
                raise BlobRefused("bad_frame", f"a {str(msg.kind)[:40]!r} message is not a blob")
            if msg.source not in BLOB_SOURCES:
                raise BlobRefused("not_allowed", f"blobs come only from the {'/'.join(sorted(BLOB_SOURCES))} "
                                                 f"adapter, not from {str(msg.source)[:40]!r}")
            a = msg.arrays.get("data")
            if set(msg.arrays) != {"data"} or a is None or a.ndim != 1 or a.dtype != np.uint8:
                raise BlobRefused("bad_frame", "a blob carries one array, data uint8 [n]")
        except BlobRefused as e:
            self.refused[e.code] += 1
            raise
        return self.put(blob_bytes(msg.arrays), dict(msg.meta), str(msg.source))

    # -- bounds -------------------------------------------------------------------------------------------
    def evict(self, now_s: float | None = None) -> int:
        """Remove the oldest blobs while over a bound (age, count, bytes); returns how many went."""
        now = self.clock() if now_s is None else now_s
        gone: list[str] = []
        for sha, (n, ts) in self.index.items():
            if now - ts > self.max_age_s:
                reason = "age"
            elif len(self.index) - len(gone) > self.max_blobs:
                reason = "count"
            elif self.total_bytes > self.max_bytes:
                reason = "bytes"
            else:
                break
            gone.append(sha)
            self.total_bytes -= n
            self.evicted[reason] += 1
        for sha in gone:
            del self.index[sha]
        if gone:
            self.db.executemany("DELETE FROM blobs WHERE sha256 = ?", [(s,) for s in gone])
            log.info("blob store: %d blob(s) evicted (%s), %d kept, %d bytes", len(gone), dict(self.evicted),
                     len(self.index), self.total_bytes)
        return len(gone)

    # -- reading ------------------------------------------------------------------------------------------
    def has(self, sha256: str) -> bool:
        return sha256 in self.index

    def get(self, sha256: str) -> Blob | None:
        """The blob at ``sha256`` (None: not held)."""
        if sha256 not in self.index:
            self.not_found += 1
            return None
        row = self.db.execute("SELECT content_type, data, meta, stored_ts_s FROM blobs WHERE sha256 = ?",
                              (sha256,)).fetchone()
        if row is None:
            self.not_found += 1
            return None
        self.served += 1
        return Blob(sha256, row[0], bytes(row[1]), json.loads(row[2]), float(row[3]))

    def stats(self) -> dict[str, Any]:
        """What the engine status says of the store."""
        return {"blobs": len(self.index), "bytes": self.total_bytes, "stored": self.stored,
                "duplicates": self.duplicates, "evicted": dict(self.evicted), "refused": dict(self.refused),
                "served": self.served, "not_found": self.not_found}

    def close(self) -> None:
        self.db.close()
