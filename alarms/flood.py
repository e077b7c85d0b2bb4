"""Alarm flood detection per operator position (ISA-18.2: more than 10 alarms in 10 minutes per operator;
the flood ends when the rate falls below 5 in 10 minutes). Pure: fed with engine times."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["FloodMonitor", "FloodChange"]


@dataclass(frozen=True)
class FloodChange:
    position: str
    flood: bool
    ts_s: float
    count: int
    first_out: str | None


@dataclass
class FloodMonitor:
    """Counts activations in a sliding window; ``flood`` turns on above ``start_above`` and off below
    ``end_below`` (hysteresis). ``first_out`` is the earliest alarm of the window when the flood began."""

    position: str
    window_s: float = 600.0
    start_above: int = 10
    end_below: int = 5
    flood: bool = False
    since_ts_s: float | None = None
    first_out: str | None = None
    recent: deque = field(default_factory=deque)  # (ts, alarm id)

    def _expire(self, ts: float) -> None:
        while self.recent and self.recent[0][0] <= ts - self.window_s:
            self.recent.popleft()

    def activation(self, ts: float, alarm_id: str) -> FloodChange | None:
        self._expire(ts)
        self.recent.append((ts, alarm_id))
        if not self.flood and len(self.recent) > self.start_above:
            self.flood, self.since_ts_s, self.first_out = True, ts, self.recent[0][1]
            return FloodChange(self.position, True, ts, len(self.recent), self.first_out)
        return None

    def tick(self, ts: float) -> FloodChange | None:
        self._expire(ts)
        if self.flood and len(self.recent) < self.end_below:
            first = self.first_out
            self.flood, self.since_ts_s, self.first_out = False, None, None
            return FloodChange(self.position, False, ts, len(self.recent), first)
        return None
