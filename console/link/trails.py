"""The console's copy of where everyone has been lately (ingest/protocol/trails.py), kept by the link's receiver
thread and read by the sessions: a :class:`LinkTrails` is filled from the engine's ``trails`` answer when the link
connects or comes back, then from every ``display.positions`` frame (each person's newest fix: its time is the
frame's engine time minus the fix's age). Reads copy one person's trail under a lock."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import numpy as np

from ingest.protocol.trails import TRAIL_SPAN_S, TrailRing, decode_trails

__all__ = ["DISPLAY_RATE_HZ", "LinkTrails"]

#: the engine publishes positions about 5 times a second (ingest/engine/process.py)
DISPLAY_RATE_HZ = 5.0


class LinkTrails:
    """Trails of ``n_people`` people, thread-safe; see the module's docstring."""

    def __init__(self, n_people: int, *, span_s: float = TRAIL_SPAN_S, rate_hz: float = DISPLAY_RATE_HZ,
                 budget_bytes: int = 32 << 20) -> None:
        self._ring = TrailRing(n_people, span_s=span_s, rate_hz=rate_hz, budget_bytes=budget_bytes)
        self._lock = threading.Lock()
        #: samples taken in from the engine's answers and from frames, and answers that did not fit the site
        self.loaded = self.from_frames = self.refused = 0

    @property
    def span_s(self) -> float:
        return self._ring.span_s

    def load(self, doc: object) -> None:
        """Replace everything with the engine's ``trails`` answer (its wire form); ``ValueError`` when it does not
        decode or fit this site (nothing changes then)."""
        try:
            person, ts, xy = decode_trails(doc, self._ring.n_people)
        except ValueError:
            self.refused += 1
            raise
        with self._lock:
            self._ring.clear()
            self.loaded += self._ring.add(person, xy, ts)

    def on_positions(self, arrays: Mapping[str, np.ndarray], engine_ts_s: float) -> None:
        """Take a ``display.positions`` frame (``xyz_m`` [P, 3], ``age_s`` [P]) published at ``engine_ts_s``."""
        xyz, age = arrays.get("xyz_m"), arrays.get("age_s")
        if xyz is None or age is None or not math.isfinite(engine_ts_s):
            return
        ts = engine_ts_s - np.asarray(age, dtype=np.float64)
        ok = np.flatnonzero(np.isfinite(ts) & np.isfinite(xyz[:, 0]) & np.isfinite(xyz[:, 1]))
        if not len(ok):
            return
        ts = np.round(ts[ok], 3)  # t - (t - fix) is the fix time to rounding: the same fix twice is one sample
        with self._lock:
            self.from_frames += self._ring.add(ok, xyz[ok], ts)

    @property
    def samples_per_person(self) -> int:
        return self._ring.n

    def add(self, person: np.ndarray, xy_m: np.ndarray, ts_s: np.ndarray) -> int:
        """Take fixes directly (``TrailRing.add``); returns how many were kept."""
        with self._lock:
            return self._ring.add(person, xy_m, ts_s)

    def trail(self, person: int, since_ts_s: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
        """A copy of person ``person``'s samples since ``since_ts_s``: (ts_s float64 [k], xy_m float32 [k, 2])."""
        if not 0 <= person < self._ring.n_people:
            return np.zeros(0), np.zeros((0, 2), np.float32)
        with self._lock:
            ts, xy = self._ring.trail(person, since_ts_s)
            return ts.copy(), xy.copy()
