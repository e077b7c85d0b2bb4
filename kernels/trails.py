"""Trails: the recent positions of every person in a fixed ring of samples each (pure array functions).

The caller owns the arrays:

- ``ts_s``: float64 ``[P, N]`` sample times (seconds since the epoch; NaN where empty),
- ``xy_m``: float32 ``[P, N, 2]`` sample positions in site metres,
- ``head``: int64 ``[P]``, the slot the next sample of each person goes to,
- ``count``: int64 ``[P]``, how many slots of each person hold a sample (at most N),
- ``last_ts_s``: float64 ``[P]``, the time of each person's newest sample (NaN: none yet).

``trail_append`` keeps a sample only when it is at least ``min_dt_s`` newer than the person's newest one, so a
ring of N samples spans at least ``N * min_dt_s`` seconds whatever the fix rate; older samples are overwritten.
``trail_order`` gives the slots of one person oldest first; ``trail_export`` takes everyone's samples since a time,
thinned to at most one per step (for a console that connects: one pass over the ring, no Python loop).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["trail_append", "trail_export", "trail_order"]


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


@njit(cache=True)
def _keep(t, since_s, step_s, prev_bucket, is_newest):  # pragma: no cover - numba
    """Whether a sample at ``t`` is exported, and its step bucket (``step_s`` <= 0: every sample)."""
    if not t >= since_s:
        return False, prev_bucket
    if step_s <= 0.0:
        return True, prev_bucket
    bucket = np.floor(t / step_s)
    return (bucket != prev_bucket) or is_newest, bucket


@njit(cache=True)
def trail_export(ts_s, xy_m, head, count, since_s, step_s):  # pragma: no cover - numba
    """Every person's samples at or after ``since_s``, oldest first, the first of each ``step_s`` interval of the
    epoch and each person's newest (``step_s`` <= 0: all): (person int32 [M], ts_s float64 [M], xy_m float32
    [M, 2]), people in index order."""
    n_people, n = ts_s.shape
    total = 0
    for i in range(n_people):  # first pass: how many
        prev = np.nan
        for k in range(count[i]):
            slot = (head[i] - count[i] + k) % n
            keep, prev = _keep(ts_s[i, slot], since_s, step_s, prev, k == count[i] - 1)
            total += keep
    person = np.empty(total, np.int32)
    ts = np.empty(total, np.float64)
    xy = np.empty((total, 2), np.float32)
    j = 0
    for i in range(n_people):
        prev = np.nan
        for k in range(count[i]):
            slot = (head[i] - count[i] + k) % n
            keep, prev = _keep(ts_s[i, slot], since_s, step_s, prev, k == count[i] - 1)
            if keep:
                person[j] = i
                ts[j] = ts_s[i, slot]
                xy[j, 0] = xy_m[i, slot, 0]
                xy[j, 1] = xy_m[i, slot, 1]
                j += 1
    return person, ts, xy
