"""Trails: the recent positions of every person in a fixed ring of samples each (pure array functions).

The caller owns the arrays:

- ``ts_s``: float64 ``[P, N]`` sample times (seconds since the epoch; NaN where empty),
- ``xy_m``: float32 ``[P, N, 2]`` sample positions in site metres,
- ``head``: int64 ``[P]``, the slot the next sample of each person goes to,
- ``count``: int64 ``[P]``, how many slots of each person hold a sample (at most N),
- ``last_ts_s``: float64 ``[P]``, the time of each person's newest sample (NaN: none yet).

``trail_append`` keeps a sample only when it is at least ``min_dt_s`` newer than the person's newest one, so a
ring of N samples spans at least ``N * min_dt_s`` seconds whatever the fix rate; older samples are overwritten.
``trail_order`` gives the slots of one person oldest first.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["trail_append", "trail_order"]


@njit(cache=True)
def trail_append(ts_s, xy_m, head, count, last_ts_s, person, xy, t_s, min_dt_s):  # pragma: no cover - numba
    """Append fixes (``person`` int64 [M] in 0..P-1, ``xy`` float64 [M, 2] m, ``t_s`` float64 [M] s) in the
    given order; a fix is kept when its person has no sample yet or it is ``min_dt_s`` or more newer than the
    newest one. Returns how many were kept."""
    n = ts_s.shape[1]
    kept = 0
    for k in range(person.shape[0]):
        i = person[k]
        t = t_s[k]
        if not np.isfinite(t) or not (np.isfinite(xy[k, 0]) and np.isfinite(xy[k, 1])):
            continue
        if np.isfinite(last_ts_s[i]) and not t >= last_ts_s[i] + min_dt_s:
            continue
        h = head[i]
        ts_s[i, h] = t
        xy_m[i, h, 0] = xy[k, 0]
        xy_m[i, h, 1] = xy[k, 1]
        head[i] = (h + 1) % n
        if count[i] < n:
            count[i] += 1
        last_ts_s[i] = t
        kept += 1
    return kept


def trail_order(head: int, count: int, n: int) -> np.ndarray:
    """int64 [count]: the ring slots of one person's samples, oldest first."""
    return (head - count + np.arange(count, dtype=np.int64)) % n
