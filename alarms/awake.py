"""Engine time with the engine's own stalls taken out: how long a sensor has really been silent.

A sensor is called silent when it has not reported for a few of its intervals *of engine time*. But when the
engine itself stops (a paused process, a machine swapping, a debugger), its clock jumps when it resumes, and
what the sensors sent meanwhile is still in the sockets: judged on the plain clock, every sensor looks silent
for the length of the stall. So the engine counts its stalls (a gap between two clock ticks longer than
``max_gap_s``; the time beyond one tick counts as stalled) and staleness is judged on awake time: the engine
time that passed since the sensor's last value, minus the stalls since then. A sensor that really went quiet
still alarms: its silence keeps growing once the engine is awake again.

Pure bookkeeping over the engine's recorded clock ticks, so replay and recovery judge the same way.
"""

from __future__ import annotations

import math

__all__ = ["AwakeClock"]


class AwakeClock:
    """``stalled_s``: the engine time lost to stalls so far. Call :meth:`tick` with each clock tick's time."""

    def __init__(self, tick_s: float, max_gap_s: float = 1.0) -> None:
        self.tick_s = float(tick_s)
        self.max_gap_s = max(float(max_gap_s), 2.0 * self.tick_s)
        self.stalled_s = 0.0
        self.stalls = 0
        self._last = math.nan

    def tick(self, now_s: float) -> None:
        gap = now_s - self._last
        if math.isfinite(gap) and gap > self.max_gap_s:
            self.stalled_s += gap - self.tick_s
            self.stalls += 1
        self._last = now_s

    def silent_for(self, now_s: float, since_s: float, stalled_then_s: float) -> float:
        """Awake seconds from ``since_s`` (a sample's time, when ``stalled_s`` was ``stalled_then_s``) to now."""
        return (now_s - since_s) - (self.stalled_s - stalled_then_s)
