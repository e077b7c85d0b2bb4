"""Recording retention: the recordings of a site are kept ``recording.retention_days`` (never less than
:data:`config.schema.MIN_RETENTION_DAYS`) and, with ``recording.max_total_gb``, at most that much together.

Each engine start makes (``watchfloor run``) or uses one run folder (``--out``) holding one ``recording.sqlite``;
the folder that holds the run folders is the *recordings folder*. A pass looks at the run folders there (one
level, no symbolic links), keeps those whose recording is of another site or cannot be read, and removes the
oldest recordings (by the time their last input was taken) first: those that ended longer ago than the retention,
then, while the recordings together are over the size limit, the oldest of the rest. Never the running recording,
never one that ended less than the floor ago. Only ``recording.sqlite`` (and its ``-wal`` / ``-shm``) goes: the
run's journal, summary and logs stay.

The decision is a pure function (:func:`plan_removals`); the I/O is at the edge (:func:`scan_recordings`,
:func:`remove_recording`); :class:`RetentionKeeper` runs a pass at engine start and every
``recording.check_every_s`` in a thread of its own (the engine loop never waits on a disk), and hands each pass's
outcome to the engine loop, which records it as a ``retention`` input and applies it: the engine journals every
removal (``recording_removed``) and every failed one (``recording_removal_failed``) from the recorded input, so a
replay of the running recording writes the same rows. Replay removes nothing: only the live engine process runs
a keeper.
"""

from __future__ import annotations

import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.schema import MIN_RETENTION_DAYS, RecordingSettings
from ingest.bus import MAX_HEADER_BYTES

log = logging.getLogger(__name__)

__all__ = ["StoredRecording", "Removal", "plan_removals", "scan_recordings", "remove_recording", "RetentionKeeper",
           "RECORDING_FILE", "DAY_S", "MAX_REMOVALS_PER_INPUT", "MAX_INPUT_META_BYTES", "MAX_FIELD_BYTES"]

RECORDING_FILE = "recording.sqlite"
DAY_S = 86400.0
#: removals per ``retention`` input, at most (fewer when they would not fit in :data:`MAX_INPUT_META_BYTES`)
MAX_REMOVALS_PER_INPUT = 50
#: a ``retention`` input's meta as the bus encodes it, at most: the bus refuses a header over its 64 KiB when it is
#: read back (a replay), not when it is written, so an input over it would be applied live and be undecodable in
#: the recording. An entry is ~300 bytes in ASCII, but ~1.5 kB with a long non-ASCII run folder name (JSON writes
#: each such character as ``\uXXXX``, 6 or 12 bytes): counting entries is not enough.
MAX_INPUT_META_BYTES = MAX_HEADER_BYTES * 3 // 4
#: each text of a ``retention`` input (a path, a run folder name, a reason, an error), at most, as the bus encodes
#: it: so that the largest entry and the pass's root fit in an input with room to spare
MAX_FIELD_BYTES = 2048
_SIDE_FILES = ("-wal", "-shm")  # SQLite's write-ahead log and its index, beside the database


@dataclass(frozen=True)
class StoredRecording:
    """One run's recording as retention sees it. Times are wall-clock epoch seconds of the first and the last
    input taken (the recording's ``received_ts_s``; the file's modification time for an empty recording);
    ``bytes`` counts the file and its ``-wal`` / ``-shm``."""

    path: Path
    run: str
    first_ts_s: float
    last_ts_s: float
    bytes: int
    inputs: int


@dataclass(frozen=True)
class Removal:
    recording: StoredRecording
    reason: str


def plan_removals(recordings: Sequence[StoredRecording], *, now_s: float, retention_days: float,
                  max_total_bytes: int | None = None, running: Path | None = None,
                  floor_days: float = MIN_RETENTION_DAYS) -> list[Removal]:
    """The recordings to remove, oldest first (by ``last_ts_s``), each with its reason.

    Removed: every recording that ended more than ``retention_days`` before ``now_s``; then, while the total of
    ``bytes`` over all ``recordings`` (the running one included) is above ``max_total_bytes``, the oldest of the
    rest. Never ``running``, never one that ended less than ``floor_days`` ago (the floor holds against the size
    limit too, and against a ``retention_days`` below it), never one whose times are not finite (a recording
    whose age is unknown is kept)."""
    keep_days = max(retention_days, floor_days)
    total = sum(r.bytes for r in recordings)
    candidates = sorted((r for r in recordings if (running is None or r.path != running)
                         and math.isfinite(r.last_ts_s) and math.isfinite(r.first_ts_s)),
                        key=lambda r: (r.last_ts_s, r.first_ts_s, str(r.path)))
    out: list[Removal] = []
    for r in candidates:
        age_days = (now_s - r.last_ts_s) / DAY_S
        if age_days < floor_days:
            break  # sorted by end time: every later one is younger still
        if age_days > keep_days:
            reason = f"ended {age_days:.1f} days ago: older than the {keep_days:g} days kept"
        elif max_total_bytes is not None and total > max_total_bytes:
            reason = (f"the recordings take {total} bytes, over the {max_total_bytes} kept: the oldest goes first "
                      f"(it ended {age_days:.1f} days ago)")
        else:
            break  # younger than the retention and the total is within the limit: so are the rest
        out.append(Removal(r, reason))
        total -= r.bytes
    return out


def _size(path: Path) -> int:
    n = 0
    for suffix in ("", *_SIDE_FILES):
        try:
            n += path.with_name(path.name + suffix).stat().st_size
        except OSError:
            pass
    return n


def _read(path: Path) -> tuple[str | None, float, float, int]:
    """(site id, first and last received time, inputs) of a recording, read only. A closed recording (no ``-wal``
    beside it) is opened immutable: a plain read-only open of a WAL database would leave a ``-shm`` file behind."""
    closed = not path.with_name(path.name + "-wal").exists()
    db = sqlite3.connect(f"file:{path}?mode=ro" + ("&immutable=1" if closed else ""), uri=True, timeout=1.0)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'site_id'").fetchone()
        first = db.execute("SELECT received_ts_s FROM inputs ORDER BY seq LIMIT 1").fetchone()
        last = db.execute("SELECT seq, received_ts_s FROM inputs ORDER BY seq DESC LIMIT 1").fetchone()
    finally:
        db.close()
    if first is None or last is None:
        mtime = path.stat().st_mtime
        return (row[0] if row else None), mtime, mtime, 0
    return (row[0] if row else None), float(first[0]), float(last[1]), int(last[0])


def scan_recordings(root: Path, site_id: str, *, skip_newer_than_s: float | None = None
                    ) -> tuple[list[StoredRecording], list[str]]:
    """The recordings of site ``site_id`` in the run folders of ``root``, and a note for each one passed over
    because it could not be read. Run folders and recording files that are symbolic links are not followed.
    ``skip_newer_than_s``: recordings whose file changed after this time are not opened (with no size limit they
    cannot be removed anyway, and a busy engine's file is left alone)."""
    found: list[StoredRecording] = []
    problems: list[str] = []
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError as e:
        return [], [f"{root}: cannot list the recordings folder: {e.strerror or e}"]
    for folder in folders:
        rec = folder / RECORDING_FILE
        try:
            if rec.is_symlink() or not rec.is_file():
                continue
            if skip_newer_than_s is not None and rec.stat().st_mtime > skip_newer_than_s:
                continue
            site, first, last, inputs = _read(rec)
        except (OSError, sqlite3.Error) as e:
            problems.append(f"{rec}: not read, kept ({e})")
            continue
        if site != site_id:
            continue
        found.append(StoredRecording(rec, folder.name, first, last, _size(rec), inputs))
    return found, problems


def remove_recording(rec: StoredRecording) -> str | None:
    """Remove the recording file, then its ``-wal`` / ``-shm``; None when done, else why not (nothing else was
    removed when the recording itself could not be)."""
    try:
        rec.path.unlink()
    except FileNotFoundError:
        return "already gone"
    except OSError as e:
        return f"{e.__class__.__name__}: {e.strerror or e}"
    for suffix in _SIDE_FILES:
        try:
            rec.path.with_name(rec.path.name + suffix).unlink(missing_ok=True)
        except OSError as e:
            return f"removed, but its {suffix[1:]} file stays: {e.strerror or e}"
    return None


def _json_bytes(o: Any) -> int:
    """Bytes of ``o`` as the bus writes it into a header (compact, ASCII-only JSON)."""
    return len(json.dumps(o, separators=(",", ":")))


def _cut(text: str, max_bytes: int = MAX_FIELD_BYTES) -> str:
    """``text``, cut so that it takes at most ``max_bytes`` as a JSON string (quotes included)."""
    if 12 * len(text) + 2 <= max_bytes or _json_bytes(text) <= max_bytes:  # 12: an escaped surrogate pair
        return text
    n = 2
    for i, ch in enumerate(text):
        n += _json_bytes(ch) - 2
        if n > max_bytes:
            return text[:i]
    return text


def _entry(r: StoredRecording, root: Path) -> dict[str, Any]:
    try:
        name = str(r.path.relative_to(root))
    except ValueError:
        name = str(r.path)
    return {"file": _cut(name), "run": _cut(r.run), "bytes": r.bytes, "inputs": r.inputs,
            "first_ts_s": r.first_ts_s, "last_ts_s": r.last_ts_s}


class RetentionKeeper:
    """Runs retention passes over ``root`` for site ``site_id``: one at :meth:`start`, then every
    ``settings.check_every_s``. :meth:`results` drains the finished passes' outcomes, each a dict ready to be a
    ``retention`` input's meta: ``root``, ``retention_days``, ``max_total_gb``, ``removed`` (file relative to
    root, run, bytes, inputs, first_ts_s, last_ts_s, reason) and ``failed`` (the same and ``error``), at most
    :data:`MAX_REMOVALS_PER_INPUT` entries together and :data:`MAX_INPUT_META_BYTES` as JSON (a pass's outcome
    is split over as many as it takes; each text cut to :data:`MAX_FIELD_BYTES`); a pass that removed nothing and
    failed at nothing reports nothing."""

    def __init__(self, root: Path, site_id: str, running: Path, settings: RecordingSettings, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root).resolve()  # resolved both: the running recording is told apart by its path
        self.site_id = site_id
        self.running = Path(running).resolve()
        self.settings = settings
        self.clock = clock
        self.passes = 0
        self._results: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._warned: set[str] = set()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop after the removal under way (a pass checks before each file); wait up to ``timeout_s``. False when
        the keeper is still at work then (a removal that finishes later is in no :meth:`results` taken before)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def results(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self._results.get_nowait())
            except queue.Empty:
                return out

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except Exception:  # noqa: BLE001 - housekeeping must never stop the engine; the next pass tries again
                log.exception("retention pass over %s failed", self.root)
            self._stop.wait(self.settings.check_every_s)

    def run_pass(self) -> None:
        """One pass: scan, plan, remove; its outcome (if any) goes to :meth:`results`."""
        s = self.settings
        now = self.clock()
        cap = None if s.max_total_gb is None else int(s.max_total_gb * 1e9)
        floor_s = now - MIN_RETENTION_DAYS * DAY_S
        found, problems = scan_recordings(self.root, self.site_id, skip_newer_than_s=floor_s if cap is None else None)
        for p in problems:
            if p not in self._warned:  # once per run: a file that stays unreadable is not news every hour
                self._warned.add(p)
                log.warning("retention: %s", p)
        plan = plan_removals(found, now_s=now, retention_days=s.retention_days, max_total_bytes=cap,
                             running=self.running)
        self.passes += 1
        left = sum(r.bytes for r in found) - sum(rm.recording.bytes for rm in plan)
        if cap is not None and left > cap:  # hourly at most: the disk may fill, and the floor is why
            log.warning("retention: the recordings of %s in %s take %d bytes, over recording.max_total_gb (%d), but "
                        "the rest is the running recording or ended within the last %g days: kept", self.site_id,
                        self.root, left, cap, MIN_RETENTION_DAYS)
        removed: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        empty = size = _json_bytes(self._meta([], []))
        for rm in plan:
            # stopping (before the first removal too: the engine may have taken its last results already): what is
            # done is reported; the rest waits for the next start
            if self._stop.is_set():
                break
            error = remove_recording(rm.recording)
            entry = {**_entry(rm.recording, self.root), "reason": _cut(rm.reason)}
            if error is None:
                log.info("retention: removed %s (%d bytes, %s)", rm.recording.path, rm.recording.bytes, rm.reason)
            else:
                log.error("retention: could not remove %s: %s", rm.recording.path, error)
                entry["error"] = _cut(error)
            entry_bytes = _json_bytes(entry) + 1  # and a comma
            if (removed or failed) and size + entry_bytes > MAX_INPUT_META_BYTES:
                self._report(removed, failed)
                removed, failed, size = [], [], empty
            (removed if error is None else failed).append(entry)
            size += entry_bytes
            if len(removed) + len(failed) >= MAX_REMOVALS_PER_INPUT:
                self._report(removed, failed)
                removed, failed, size = [], [], empty
        if removed or failed:
            self._report(removed, failed)

    def _meta(self, removed: list[dict[str, Any]], failed: list[dict[str, Any]]) -> dict[str, Any]:
        s = self.settings
        return {"root": _cut(str(self.root)), "retention_days": s.retention_days, "max_total_gb": s.max_total_gb,
                "removed": removed, "failed": failed}

    def _report(self, removed: list[dict[str, Any]], failed: list[dict[str, Any]]) -> None:
        self._results.put(self._meta(removed, failed))
