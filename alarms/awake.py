"""Engine time with the engine's own stalls taken out: how long a sensor has really been silent.

A sensor is called silent when it has not reported for a few of its intervals *of engine time*. But when the
engine itself stops (a paused process, a machine swapping, a debugger), its clock jumps when it resumes, and
what the sensors sent meanwhile is still in the sockets: judged on the plain clock, every sensor looks silent
for the length of the stall. So the engine counts its stalls (a gap between two clock ticks longer than
``max_gap_s``; the time beyond one tick counts as stalled) and staleness is judged on awake time: the engine
time that passed since the sensor's last value, minus the stalled time inside that span (so a value stamped
near the end of a stall but taken in before the tick that revealed it is not excused for the whole stall). A sensor that really went quiet
still alarms: its silence keeps growing once the engine is awake again.

Pure bookkeeping over the engine's recorded clock ticks, so replay and recovery judge the same way.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

__all__ = ["AwakeClock"]


class AwakeClock:
    """The engine's stalls (clock-tick gaps beyond ``max_gap_s``) as intervals; :meth:`silent_for` subtracts from a
    sensor's silence only the stalled time inside it. Call :meth:`tick` with each clock tick's time."""

    #: stalls older than this are forgotten (longer than any sensor's stale limit)
    KEEP_S = 86400.0

    def __init__(self, tick_s: float, max_gap_s: float = 1.0) -> None:
        self.tick_s = float(tick_s)
        self.max_gap_s = max(float(max_gap_s), 2.0 * self.tick_s)
        self.stalled_s = 0.0  # all stalls so far (for the status)
        self.stalls = 0
        self.intervals: deque[tuple[float, float]] = deque()  # (from, to) engine time the engine was not running
        self._last = math.nan

    def tick(self, now_s: float) -> None:
        gap = now_s - self._last
        if math.isfinite(gap) and gap > self.max_gap_s:
            start = self._last + self.tick_s
            self.intervals.append((start, now_s))
            self.stalled_s += now_s - start
            self.stalls += 1
        while self.intervals and self.intervals[0][1] < now_s - self.KEEP_S:
            self.intervals.popleft()
        self._last = now_s

    def silent_for(self, now_s: float, since_s: float | np.ndarray) -> float | np.ndarray:
        """Awake seconds from ``since_s`` (a sample's time; an array of them) to ``now_s``: the stalls within
        that span do not count, whenever the samples were taken in."""
        since = np.asarray(since_s, dtype=np.float64)
        silent = now_s - since
        for start, end in self.intervals:
            silent = silent - np.clip(np.minimum(end, now_s) - np.maximum(start, since), 0.0, None)
        return float(silent) if silent.ndim == 0 else silent
