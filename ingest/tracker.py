"""Per-site tag tracking for the UWB adapter: owns the Kalman state of every tag and runs the kernels of
:mod:`kernels.tracking` over each batch of fixes (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kernels import tracking

__all__ = ["TagTracker", "TrackedBatch"]


@dataclass
class TrackedBatch:
    """Per fix of the batch (same order): filtered ``xy_m`` [n, 2], ``vel_m_s`` [n, 2], ``gated`` [n] (a jump
    the motion model cannot explain: the fix was not used), ``stationary_s`` [n] (seconds the tag has stood
    still, NaN while moving)."""

    xy_m: np.ndarray
    vel_m_s: np.ndarray
    gated: np.ndarray
    stationary_s: np.ndarray


class TagTracker:
    """Constant-velocity Kalman filter per tag with Mahalanobis gating and the stationary detector."""

    def __init__(self, n_tags: int, *, range_sigma_m: float, dims: int = 2, accel_psd: float = 0.5,
                 stationary_speed_m_s: float = 0.2, stationary_radius_m: float = 1.0) -> None:
        self.state, self.cov = tracking.init_tracks(n_tags)
        self.misses = np.zeros(n_tags, dtype=np.int32)
        self.last_ts = np.full(n_tags, np.nan)
        self.since = np.full(n_tags, np.nan)
        self.spot = np.full((n_tags, 2), np.nan)
        self.sigma, self.dims, self.q = range_sigma_m, dims, accel_psd
        self.speed_thr, self.radius = stationary_speed_m_s, stationary_radius_m
        self.gated_total = 0

    def step(self, person_index: np.ndarray, ts_s: np.ndarray, xyz_m: np.ndarray, valid: np.ndarray,
             rms_m: np.ndarray, gdop: np.ndarray) -> TrackedBatch:
        """Filter one batch. A tag may appear more than once: its fixes are applied in time order."""
        n = len(person_index)
        out = TrackedBatch(np.full((n, 2), np.nan), np.full((n, 2), np.nan), np.zeros(n, bool), np.full(n, np.nan))
        sig = tracking.measurement_sigma(rms_m, gdop, self.sigma, self.dims)
        order = np.lexsort((ts_s, person_index))
        # rounds: the k-th fix of each tag in round k, so every kernel call sees a tag at most once
        rank = np.zeros(n, dtype=np.int64)
        sorted_idx = person_index[order]
        for k in range(1, n):
            if sorted_idx[k] == sorted_idx[k - 1]:
                rank[k] = rank[k - 1] + 1
        n_tags = self.state.shape[0]
        for r in range(int(rank.max()) + 1 if n else 0):
            rows = order[rank == r]
            tags = person_index[rows]
            use = valid[rows] & ~(ts_s[rows] <= self.last_ts[tags])  # an older fix than the track: skip
            rows, tags = rows[use], tags[use]
            if not len(rows):
                continue
            dt = np.zeros(n_tags)
            dt[tags] = ts_s[rows] - self.last_ts[tags]
            tracking.predict(self.state, self.cov, np.nan_to_num(dt, nan=0.0), accel_psd=self.q, inplace=True)
            xy = np.full((n_tags, 2), np.nan)
            xy[tags] = xyz_m[rows, :2]
            s = np.full(n_tags, self.sigma)
            s[tags] = sig[rows]
            _, _, _, gated, _ = tracking.update(self.state, self.cov, xy, s, self.misses, inplace=True)
            self.last_ts[tags] = ts_s[rows]
            t_now = np.full(n_tags, np.nan)
            t_now[tags] = ts_s[rows]
            since_before = self.since.copy()
            spot_before = self.spot.copy()
            tracking.stationary(self.state, np.nan_to_num(t_now, nan=0.0), self.since, self.spot,
                                speed_threshold=self.speed_thr, radius_m=self.radius, hold_s=0.0, inplace=True)
            others = np.ones(n_tags, bool)
            others[tags] = False
            self.since[others] = since_before[others]  # tags without a fix this round keep their detector state
            self.spot[others] = spot_before[others]
            out.xy_m[rows] = self.state[tags, :2]
            out.vel_m_s[rows] = self.state[tags, 2:]
            out.gated[rows] = gated[tags]
            out.stationary_s[rows] = ts_s[rows] - self.since[tags]
            self.gated_total += int(gated[tags].sum())
        return out
