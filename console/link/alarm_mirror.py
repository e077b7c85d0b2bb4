"""The console's copy of the engine's live alarm table, kept by sequence number (DESIGN principle 3).

The engine publishes every change as an ``alarm.delta`` message numbered 1, 2, 3, ... and answers a
``snapshot`` command with the whole table and the number of the last delta in it. Each run of the engine has
its own ``epoch`` (in every delta, snapshot and status): numbers of another epoch belong to another table, so a
new epoch is a restart even when its first deltas were lost. The mirror starts from a
snapshot, applies each next delta, and asks for a fresh snapshot (``need_snapshot``) on a gap, an engine
restart (the number going back) or when its owner says the link was lost; deltas that arrive meanwhile wait in
a bounded buffer and are applied after the snapshot when they continue it. The alarm channel is never silently
lossy: every ignored, buffered-out or evicted record is counted.

Pure bookkeeping: no sockets, no threads, no clock. The engine link's thread owns one.
"""

from __future__ import annotations

import logging
from collections import deque
from types import MappingProxyType
from typing import Any

from console.link.views import AlarmTable
from ingest.protocol.records import AlarmRecord

log = logging.getLogger(__name__)

__all__ = ["RESTART_WINDOW", "AlarmMirror"]

#: a delta whose seq is this far behind the table's is taken as an engine restart, not a late duplicate
RESTART_WINDOW = 1000


class AlarmMirror:
    """The sequence-numbered alarm table. ``count`` is the owner's counter dict (names of ``LinkCounters``)."""

    def __init__(self, count: dict[str, int], *, max_alarms: int = 5000, max_pending: int = 10000) -> None:
        self._count = count
        self.max_alarms = int(max_alarms)
        self.alarms: dict[str, AlarmRecord] = {}
        self.seq = 0
        self.version = 0
        self.synced = False
        self.need_snapshot = True
        self.epoch: str | None = None  # the engine run the table is of (None: not known yet)
        self._pending: deque[tuple[int, list[Any], str | None]] = deque(maxlen=max_pending)

    def _bump(self, name: str, n: int = 1) -> None:
        self._count[name] += n

    def table(self, current: AlarmTable) -> AlarmTable | None:
        """A new immutable table when anything changed since ``current``; None when nothing did."""
        if (current.seq, current.version, current.synced) == (self.seq, self.version, self.synced):
            return None
        return AlarmTable(
            seq=self.seq, version=self.version, synced=self.synced, alarms=MappingProxyType(dict(self.alarms))
        )

    def request_resync(self) -> None:
        """Forget that the table is current: a fresh snapshot is needed (deltas are buffered meanwhile)."""
        self.synced = False
        self.need_snapshot = True
        self.version += 1

    def note_epoch(self, epoch: Any) -> bool:
        """The engine run named by a status frame or a delta: another one than the table's means the engine
        started again: ask to resync (True). Unknown (None) says nothing."""
        if not isinstance(epoch, str) or self.epoch is None or epoch == self.epoch or not self.synced:
            return False
        self._bump("restarts")
        log.warning("engine link: the engine started again (run %s, the table is of run %s): resyncing", epoch,
                    self.epoch)
        self.request_resync()
        return True

    def on_delta(self, seq: int, records: list[Any], epoch: str | None = None) -> bool:
        """Take one ``alarm.delta`` (seq >= 1, a list of records, the engine run). True when it made the mirror
        ask to resync."""
        self._bump("deltas")
        if self.note_epoch(epoch):
            self._queue_pending(seq, records, epoch)
            return True
        if not self.synced:
            self._queue_pending(seq, records, epoch)
            return False
        if seq <= self.seq:
            if seq == 1 or self.seq - seq > RESTART_WINDOW:
                self._bump("restarts")
                log.warning(
                    "engine link: alarm seq went back from %d to %d: engine restarted, resyncing",
                    self.seq,
                    seq,
                )
                self.request_resync()
                self._queue_pending(seq, records, epoch)
                return True
            self._bump("deltas_ignored")
            return False
        if seq != self.seq + 1:
            self._bump("gaps")
            log.warning("engine link: alarm delta gap (expected %d, got %d): resyncing", self.seq + 1, seq)
            self.request_resync()
            self._queue_pending(seq, records, epoch)
            return True
        self._apply(records)
        self.seq = seq
        self._bump("deltas_applied")
        return False

    def on_snapshot(self, seq: int, records: list[Any], epoch: str | None = None) -> None:
        """Replace the table with a snapshot at ``seq`` of engine run ``epoch``, then apply the buffered deltas
        of that run that continue it (those of another run are dropped, counted as ignored)."""
        first = self._count["snapshots"] == 0
        self.epoch = epoch if isinstance(epoch, str) else self.epoch
        self.alarms = {}
        self._apply(records)
        self.seq = seq
        self.synced = True
        self.need_snapshot = False
        self._bump("snapshots")
        if not first:
            self._bump("resyncs")
        log.info("engine link: alarm snapshot at seq %d with %d alarms", seq, len(self.alarms))
        pending = sorted(self._pending, key=lambda p: p[0])
        self._pending.clear()
        for i, (s, recs, run) in enumerate(pending):
            if s <= self.seq or (run is not None and self.epoch is not None and run != self.epoch):
                self._bump("deltas_ignored")
                continue
            if s != self.seq + 1:
                self._bump("gaps")
                log.warning(
                    "engine link: gap after snapshot (expected %d, got %d): resyncing", self.seq + 1, s
                )
                self.request_resync()
                for item in pending[i:]:
                    self._queue_pending(*item)
                return
            self._apply(recs)
            self.seq = s
            self._bump("deltas_applied")

    def _queue_pending(self, seq: int, records: list[Any], epoch: str | None = None) -> None:
        if len(self._pending) == self._pending.maxlen:
            self._bump("pending_overflow")  # the oldest goes; continuity is checked when the snapshot lands
        self._pending.append((seq, records, epoch))

    def _apply(self, records: list[Any]) -> None:
        for raw in records:
            try:
                rec = AlarmRecord.from_json(raw)
            except ValueError as e:
                self._bump("bad_alarms")
                log.warning("engine link: bad alarm record: %s", e)
                continue
            if rec.state == "normal":
                self.alarms.pop(rec.id, None)
            else:
                self.alarms[rec.id] = rec
        self._evict()
        self.version += 1

    def _evict(self) -> None:
        over = len(self.alarms) - self.max_alarms
        if over <= 0:
            return
        # keep what matters most: the highest priority, then the newest
        order = sorted(self.alarms.values(), key=lambda r: (r.rank, r.changed_ts_s))
        for rec in order[:over]:
            del self.alarms[rec.id]
        self._bump("alarms_dropped", over)
        log.warning(
            "engine link: alarm table full (%d): %d lowest-priority alarms dropped", self.max_alarms, over
        )
