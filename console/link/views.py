"""What a console session reads from its engine link: immutable views of the latest engine state.

Every object here is frozen (read-only numpy arrays, read-only mappings), so a Bokeh callback can keep and use
one without locks while the link's thread goes on (see :mod:`console.link.engine_link`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from ingest.protocol.records import AlarmRecord, FloodState, MusterStatus, Notification, PermitBoard

from .trails import LinkTrails

__all__ = ["MAX_NOTIFICATIONS", "AlarmTable", "Frame", "LinkCounters", "LinkSnapshot", "LinkState"]

LinkState = Literal["waiting", "ok", "lost"]

#: escalation notifications kept for sessions to show (newest last); older ones are counted, not kept
MAX_NOTIFICATIONS = 64


@dataclass(frozen=True)
class Frame:
    """The latest message of one display topic. ``arrays`` are read-only numpy arrays."""

    topic: str
    arrays: Mapping[str, np.ndarray]
    meta: Mapping[str, Any]
    event_ts_s: float
    received_s: float  # time.monotonic() when the link took it in
    number: int  # how many frames of this topic the link has taken in, this one included


@dataclass(frozen=True)
class AlarmTable:
    """The live alarm list: every alarm not back to normal, by id.

    ``seq`` is the last ``alarm.delta`` sequence number applied; ``version`` grows on every change, so a tile
    can skip a redraw when it has not moved; ``synced`` is False until the first snapshot has arrived and while
    a resync is in flight.
    """

    seq: int = 0
    version: int = 0
    synced: bool = False
    alarms: Mapping[str, AlarmRecord] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class LinkCounters:
    """Everything the link took in, ignored, refused or lost since it started."""

    frames: int = 0  # bus messages received on the SUB socket, all topics
    positions_frames: int = 0
    sensors_frames: int = 0
    status_frames: int = 0
    gasfield_frames: int = 0
    permit_boards: int = 0  # permit.board messages taken in
    muster_updates: int = 0  # muster.status messages taken in
    bad_frames: int = 0  # framing errors, unknown topics, arrays that do not match the site
    deltas: int = 0  # alarm.delta messages received
    deltas_applied: int = 0
    deltas_ignored: int = 0  # older than the table (already in the snapshot)
    gaps: int = 0  # a delta's seq was not the next one
    restarts: int = 0  # the delta seq went back: the engine started again
    resyncs: int = 0  # snapshots applied to repair a gap, restart or lost link (the first one is not counted)
    snapshots: int = 0  # snapshots applied, the first one included
    snapshot_requests: int = 0
    snapshot_failures: int = 0  # replies with ok = false, or no reply in time
    pending_overflow: int = 0  # deltas that did not fit in the buffer while a snapshot was awaited
    bad_alarms: int = 0  # alarm records that failed their check
    alarms_dropped: int = 0  # alarms evicted because the table was full
    commands: int = 0
    command_timeouts: int = 0
    replies_unmatched: int = 0
    link_lost: int = 0  # times the link went from ok to lost
    notifications: int = 0  # alarm.notify messages taken in
    floods: int = 0  # alarm.flood messages taken in


@dataclass(frozen=True)
class LinkSnapshot:
    """What one session tick sees: the latest frames, the alarm table, the counters and the link health."""

    positions: Frame | None
    sensors: Frame | None
    status: Frame | None
    alarms: AlarmTable
    counters: LinkCounters
    state: LinkState
    last_frame_age_s: float | None  # seconds since the last message from the engine; None: never
    #: the latest escalation notifications, oldest first (at most ``MAX_NOTIFICATIONS``)
    notifications: tuple[Notification, ...] = ()
    #: the latest flood state per operator position
    floods: Mapping[str, FloodState] = field(default_factory=lambda: MappingProxyType({}))
    #: the latest ``display.gasfield`` frame (array ``field`` float32 [ny, nx]; meta ``extent_m``, ``dx_m``)
    gasfield: Frame | None = None
    #: the latest permit board (None until the engine said anything about permits)
    permits: PermitBoard | None = None
    #: the latest emergency muster status (None until known; ``active`` False when no emergency)
    muster: MusterStatus | None = None
    #: where everyone has been lately (console/link/trails.py: thread-safe, read one person at a time)
    trails: LinkTrails | None = None

    def flood(self, position: str = "main") -> FloodState | None:
        """The flood state of ``position`` (None until the engine said anything about it)."""
        return self.floods.get(position)

    @property
    def engine_ts_s(self) -> float | None:
        """The newest engine time heard (status or positions frame), seconds since the epoch; None: none yet."""
        times = [f.meta.get("engine_ts_s") for f in (self.status, self.positions) if f is not None]
        times = [float(v) for v in times if isinstance(v, (int, float)) and not isinstance(v, bool)]
        return max(times) if times else None
