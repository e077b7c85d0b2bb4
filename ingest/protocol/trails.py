"""Where each person has been lately: a bounded ring of positions per person, kept by the engine (from every
fix it takes, so a replay or a crash recovery rebuilds it) and by each console's link (filled from the engine's
``trails`` answer on connect, then from the positions frames).

The ring of each person holds N samples, N chosen so that all P people fit in ``budget_bytes`` (16 bytes a
sample) and never more than ``span_s`` at ``rate_hz`` (with 10 % slack for jitter); a sample is kept only when
it is at least ``span_s / N`` newer than the person's last one, so a ring always covers ``span_s`` seconds: at
full rate for a few hundred people, thinned evenly for tens of thousands. Nothing grows.

On the wire (the engine's answer to ``{"op": "trails"}``) a trail set is three base64 arrays of equal length,
``person`` (int32, index into the site's people), ``ts_s`` (float64, epoch seconds) and ``xy_m`` (float32 pairs,
site metres), people in index order and each person's samples oldest first.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

from kernels.trails import trail_append, trail_export, trail_order

__all__ = ["TRAIL_SPAN_S", "TrailRing", "decode_trails", "encode_trails"]

#: how far back a trail goes, seconds (the issue's 10 minutes)
TRAIL_SPAN_S = 600.0
#: bytes a sample costs: time float64 + x, y float32
_SAMPLE_BYTES = 16


class TrailRing:
    """The recent positions of ``n_people`` people (see the module's docstring)."""

    def __init__(self, n_people: int, *, span_s: float = TRAIL_SPAN_S, rate_hz: float = 10.0,
                 budget_bytes: int = 64 << 20) -> None:
        if n_people < 0 or not span_s > 0 or not rate_hz > 0 or budget_bytes <= 0:
            raise ValueError("a trail ring needs people >= 0 and a positive span, rate and budget")
        self.span_s = float(span_s)
        full = math.ceil(round(span_s * rate_hz * 1.1, 6))
        self.n = max(16, min(full, budget_bytes // (_SAMPLE_BYTES * max(1, n_people))))
        #: the smallest time between two kept samples of one person, seconds
        self.min_dt_s = self.span_s / self.n if self.n < full else 1.0 / (rate_hz * 1.1)
        self.ts_s = np.full((n_people, self.n), np.nan)
        self.xy_m = np.full((n_people, self.n, 2), np.nan, dtype=np.float32)
        self.head = np.zeros(n_people, dtype=np.int64)
        self.count = np.zeros(n_people, dtype=np.int64)
        self.last_ts_s = np.full(n_people, np.nan)

    @property
    def n_people(self) -> int:
        return self.ts_s.shape[0]

    def add(self, person: np.ndarray, xy_m: np.ndarray, ts_s: np.ndarray) -> int:
        """Take fixes: ``person`` int [M] (indices), ``xy_m`` float [M, >=2] m, ``ts_s`` float [M] s, in any order
        (sorted here by person, then time). Unknown indices and non-finite fixes are skipped. Returns how many
        samples were kept."""
        person = np.asarray(person, dtype=np.int64)
        if not len(person):
            return 0
        xy = np.ascontiguousarray(np.asarray(xy_m, dtype=np.float64)[:, :2])
        ts = np.asarray(ts_s, dtype=np.float64)
        ok = (person >= 0) & (person < self.n_people)
        order = np.lexsort((ts[ok], person[ok]))
        return int(trail_append(self.ts_s, self.xy_m, self.head, self.count, self.last_ts_s,
                                person[ok][order], xy[ok][order], ts[ok][order], self.min_dt_s))

    def trail(self, i: int, since_ts_s: float = -math.inf) -> tuple[np.ndarray, np.ndarray]:
        """Person ``i``'s samples at or after ``since_ts_s``, oldest first: (ts_s float64 [k], xy_m float32 [k, 2])."""
        slots = trail_order(int(self.head[i]), int(self.count[i]), self.n)
        ts = self.ts_s[i, slots]
        keep = ts >= since_ts_s
        return ts[keep], self.xy_m[i, slots[keep]]

    def export(self, since_ts_s: float = -math.inf, step_s: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Everyone's samples at or after ``since_ts_s``, thinned to the first of each ``step_s`` interval (of the
        epoch: at most one per interval) and each person's newest: (person int32 [M], ts_s float64 [M], xy_m
        float32 [M, 2]), people in index order, each oldest first. One compiled pass over the ring
        (:func:`kernels.trails.trail_export`): the engine answers it between two inputs."""
        return trail_export(self.ts_s, self.xy_m, self.head, self.count, float(since_ts_s), float(step_s))

    def clear(self) -> None:
        self.ts_s[:] = np.nan
        self.xy_m[:] = np.nan
        self.head[:] = 0
        self.count[:] = 0
        self.last_ts_s[:] = np.nan


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")


def encode_trails(person: np.ndarray, ts_s: np.ndarray, xy_m: np.ndarray) -> dict[str, Any]:
    """The wire form of a trail set (see the module's docstring)."""
    return {"n": len(person), "person": _b64(person.astype("<i4")), "ts_s": _b64(ts_s.astype("<f8")),
            "xy_m": _b64(xy_m.astype("<f4"))}


def decode_trails(doc: Any, n_people: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The arrays of a wire trail set; ``ValueError`` saying what is wrong (lengths, indices, encoding)."""
    if not isinstance(doc, dict):
        raise ValueError("trails: not an object")
    try:
        n = int(doc["n"])
        person = np.frombuffer(base64.b64decode(doc["person"], validate=True), dtype="<i4")
        ts = np.frombuffer(base64.b64decode(doc["ts_s"], validate=True), dtype="<f8")
        xy = np.frombuffer(base64.b64decode(doc["xy_m"], validate=True), dtype="<f4").reshape(-1, 2)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"trails: bad encoding ({e})") from None
    if not len(person) == len(ts) == len(xy) == n:
        raise ValueError(f"trails: arrays of unequal length ({len(person)}, {len(ts)}, {len(xy)}; n={n})")
    if n and (person.min() < 0 or person.max() >= n_people):
        raise ValueError(f"trails: person index outside 0..{n_people - 1}")
    return person.astype(np.int64), ts.astype(np.float64), xy.astype(np.float64)
