"""Checking a run's record: which database a file is, and whether a journal is what its recording replays to.

The chains and seals are checked by :func:`alarms.journal.verify_journal` and
:func:`ingest.engine.recording.verify_recording`; this adds the cross-check that only the engine can make:
replaying the recording (the same code path as crash recovery) must write the same journal rows.
"""

from __future__ import annotations

import sqlite3
import tempfile
from itertools import zip_longest
from pathlib import Path

__all__ = ["database_kind", "first_journal_difference", "compare_with_replay"]

JOURNAL_COLUMNS = ("row", "input_seq", "engine_ts_s", "event", "alarm_id", "state", "actor", "role", "detail",
                   "prev_hash", "hash")


def database_kind(path: str | Path) -> str | None:
    """``"journal"``, ``"recording"`` or None (missing, not SQLite, or neither)."""
    p = Path(path)
    if not p.is_file():
        return None
    try:
        db = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return None
    if "journal" in tables:
        return "journal"
    if "inputs" in tables:
        return "recording"
    return None


def _rows(path: Path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        yield from db.execute(f"SELECT {', '.join(JOURNAL_COLUMNS)} FROM journal ORDER BY row")
    finally:
        db.close()


def first_journal_difference(journal: str | Path, reference: str | Path) -> str | None:
    """The first row where ``journal`` differs from ``reference`` (the replayed one), described; None if every
    row is the same, byte for byte."""
    n = 0
    for n, (a, b) in enumerate(zip_longest(_rows(Path(journal)), _rows(Path(reference))), start=1):
        if a == b:
            continue
        if a is None:
            return f"the journal ends after row {n - 1}; the replay goes on with row {n} ({b[3]} {b[4]})"
        if b is None:
            return f"the journal has row {n} ({a[3]} {a[4]}) and more that the replay does not write"
        cols = [f"{c} is {x!r} in the journal, {y!r} in the replay"
                for c, x, y in zip(JOURNAL_COLUMNS, a, b) if x != y and c not in ("prev_hash", "hash")]
        return f"row {n} differs: " + ("; ".join(cols) if cols else "its hashes differ (an earlier row changed)")
    return None


def compare_with_replay(journal: str | Path, recording: str | Path) -> tuple[str | None, int]:
    """Replay ``recording`` into a temporary folder and compare its journal with ``journal``.

    Returns (first difference or None, rows the replay wrote). A recording that does not replay is reported
    as the difference."""
    from .replay import replay

    with tempfile.TemporaryDirectory(prefix="watchfloor-verify-") as tmp:
        try:
            summary = replay(recording, tmp)
        except Exception as e:  # noqa: BLE001 - any failure is the finding, reported, not raised
            return f"the recording does not replay: {e.__class__.__name__}: {e}", 0
        return first_journal_difference(journal, Path(tmp) / "journal.sqlite"), int(summary["journal_rows"])
