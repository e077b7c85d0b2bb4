"""The simulation clock: simulation seconds since start, and the epoch timestamps the devices stamp."""

from __future__ import annotations

import threading
import time

__all__ = ["SimClock"]


class SimClock:
    """t_s = (wall seconds since start) * speed; event time ts = start_epoch + t_s (epoch seconds, UTC).

    Before :meth:`start` the clock reads 0. Thread-safe to read.
    """

    def __init__(self, speed: float = 1.0, start_epoch: float | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed}")
        self.speed = float(speed)
        self._start_epoch = start_epoch
        self.start_epoch = start_epoch if start_epoch is not None else 0.0
        self._wall0 = 0.0
        self.started = threading.Event()

    def start(self) -> None:
        self._wall0 = time.monotonic()
        self.start_epoch = self._start_epoch if self._start_epoch is not None else time.time()
        self.started.set()

    def t_s(self) -> float:
        """Simulation seconds since start (0 before start)."""
        if not self.started.is_set():
            return 0.0
        return (time.monotonic() - self._wall0) * self.speed

    def epoch(self, t_s: float) -> float:
        """Epoch seconds of simulation time ``t_s``."""
        return self.start_epoch + t_s

    def wall_delay_s(self, t_s: float) -> float:
        """Wall seconds until simulation time ``t_s`` (negative if past)."""
        return (t_s - self.t_s()) / self.speed
