"""Constant-velocity Kalman tracking of tags on the floor plane, batched over N tags with irregular time steps.

State and covariance live in plain arrays the caller owns; every function is pure (returns new arrays)
unless ``inplace=True`` is passed, in which case the inputs are updated and returned.

- ``state``: float64 ``[N, 4]`` = x, y (site metres), vx, vy (m/s). A row of NaN is a track not started yet:
  the first measurement starts it.
- ``cov``: float64 ``[N, 4, 4]`` state covariance (m^2, m^2/s, m^2/s^2).

API
---
``init_tracks(n) -> (state, cov)``
    N unstarted tracks.
``predict(state, cov, dt_s, *, accel_psd=0.5, inplace=False) -> (state, cov)``
    Move every track ``dt_s`` seconds ahead (scalar or float64 ``[N]``; ``dt_s <= 0`` or NaN leaves a
    track as it is). Process noise: white acceleration with power spectral density ``accel_psd``
    (m^2/s^3) on each axis, ``Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]]`` per axis.
``update(state, cov, xy, sigma_xy, misses, *, gate=13.82, reset_after=5, start_speed_sigma=1.5,
inplace=False) -> (state, cov, misses, gated, d2)``
    Kalman update with position fixes ``xy`` float64 ``[N, 2]`` (NaN rows = no fix for that tag) whose
    per-axis standard deviation is ``sigma_xy`` float64 ``[N]`` (metres; see :func:`measurement_sigma`).
    Mahalanobis gating: ``d2 = nu^T S^-1 nu`` with innovation nu and its covariance S; a fix with
    ``d2 > gate`` is a jump the motion model cannot explain: it is not used, ``gated`` is True for it and
    ``misses`` (int32 ``[N]``, consecutive gated fixes) goes up. The default gate is the chi-square
    quantile with 2 degrees of freedom at 0.999. After ``reset_after`` consecutive gated fixes the track
    restarts at the newest fix (the tag really is elsewhere: a lost track must not lock out the truth).
    Unstarted tracks start at their first fix with velocity 0 +- ``start_speed_sigma`` m/s.
``measurement_sigma(rms, gdop, sigma, dims) -> sigma_xy``
    Per-axis standard deviation of a fix from :func:`kernels.trilateration.trilaterate` outputs:
    ``max(sigma, rms) * gdop / sqrt(dims)``; ``sigma * gdop`` is the expected RMS position error over
    ``dims`` axes, and an inconsistent fix (rms above the nominal range sigma) is trusted less.
``stationary(state, ts_s, since_s, spot_xy, *, speed_threshold=0.2, radius_m=1.0, hold_s=30.0,
inplace=False) -> (flag, since_s, spot_xy)``
    Stationary (man-down / lone-worker) detector. A tag whose filtered speed falls below
    ``speed_threshold`` m/s is stopping: ``since_s`` float64 ``[N]`` takes the current time and
    ``spot_xy`` float64 ``[N, 2]`` its filtered position. It stays stationary while its filtered position
    stays within ``radius_m`` of that spot, whatever the speed estimate does: a Kalman velocity is noisy
    (about 0.35 m/s per axis at 10 Hz fixes of 0.1 m with the default process noise), the distance from
    a spot is not (about 0.05 m), so a still person is not "moving" at every noisy velocity and a walking
    person leaves the radius within a second. ``since_s`` is NaN while moving. ``flag`` is True where
    ``ts_s - since_s >= hold_s``. ``ts_s`` is the current time in seconds, scalar or ``[N]``.
    Over the hold time this bounds the average speed by ``radius_m / hold_s``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["GATE_CHI2_2DOF_999", "init_tracks", "measurement_sigma", "predict", "stationary", "update"]

# chi-square quantile, 2 degrees of freedom, probability 0.999: -2 ln(0.001).
GATE_CHI2_2DOF_999 = -2.0 * math.log(1e-3)


def init_tracks(n: int) -> tuple[np.ndarray, np.ndarray]:
    """N unstarted tracks: state float64 [N, 4] of NaN, cov float64 [N, 4, 4] of NaN."""
    return np.full((n, 4), np.nan), np.full((n, 4, 4), np.nan)


@njit(cache=True)
def _predict(state, cov, dt, q):
    n = state.shape[0]
    for i in range(n):
        t = dt[i]
        if not (t > 0.0) or not math.isfinite(state[i, 0]):
            continue
        state[i, 0] += t * state[i, 2]
        state[i, 1] += t * state[i, 3]
        p = cov[i]
        # P <- F P F^T with F = [[I, t I], [0, I]]: rows then columns.
        for c in range(4):
            p[0, c] += t * p[2, c]
            p[1, c] += t * p[3, c]
        for r in range(4):
            p[r, 0] += t * p[r, 2]
            p[r, 1] += t * p[r, 3]
        q11 = q * t * t * t / 3.0
        q12 = q * t * t / 2.0
        q22 = q * t
        p[0, 0] += q11
        p[1, 1] += q11
        p[0, 2] += q12
        p[2, 0] += q12
        p[1, 3] += q12
        p[3, 1] += q12
        p[2, 2] += q22
        p[3, 3] += q22


@njit(cache=True)
def _update(state, cov, xy, sig, misses, gate, reset_after, v0, gated, d2out):
    n = state.shape[0]
    k0 = np.empty(4)
    k1 = np.empty(4)
    ph0 = np.empty(4)
    ph1 = np.empty(4)
    for i in range(n):
        gated[i] = False
        d2out[i] = math.nan
        zx = xy[i, 0]
        zy = xy[i, 1]
        s = sig[i]
        if not (math.isfinite(zx) and math.isfinite(zy) and math.isfinite(s) and s > 0.0):
            continue
        r = s * s
        p = cov[i]
        started = math.isfinite(state[i, 0])
        if started:
            nx = zx - state[i, 0]
            ny = zy - state[i, 1]
            s00 = p[0, 0] + r
            s01 = p[0, 1]
            s11 = p[1, 1] + r
            det = s00 * s11 - s01 * s01
            i00 = s11 / det
            i01 = -s01 / det
            i11 = s00 / det
            d2 = nx * nx * i00 + 2.0 * nx * ny * i01 + ny * ny * i11
            d2out[i] = d2
            if d2 > gate:
                misses[i] += 1
                if misses[i] < reset_after:
                    gated[i] = True
                    continue
                started = False  # restart at this fix, below
            else:
                misses[i] = 0
                # K = P H^T S^-1 (4x2); x += K nu; P -= K S K^T = K (P H^T)^T.
                for a in range(4):
                    k0[a] = p[a, 0] * i00 + p[a, 1] * i01
                    k1[a] = p[a, 0] * i01 + p[a, 1] * i11
                for a in range(4):
                    state[i, a] += k0[a] * nx + k1[a] * ny
                for a in range(4):
                    ph0[a] = p[a, 0]
                    ph1[a] = p[a, 1]
                for a in range(4):
                    for b in range(4):
                        p[a, b] -= k0[a] * ph0[b] + k1[a] * ph1[b]
                for a in range(4):
                    for b in range(a + 1, 4):
                        m = 0.5 * (p[a, b] + p[b, a])
                        p[a, b] = m
                        p[b, a] = m
        if not started:
            misses[i] = 0
            state[i, 0] = zx
            state[i, 1] = zy
            state[i, 2] = 0.0
            state[i, 3] = 0.0
            for a in range(4):
                for b in range(4):
                    p[a, b] = 0.0
            p[0, 0] = r
            p[1, 1] = r
            p[2, 2] = v0 * v0
            p[3, 3] = v0 * v0


@njit(cache=True)
def _stationary(state, ts, since, spot, thr, radius, hold, flag):
    n = state.shape[0]
    r2 = radius * radius
    for i in range(n):
        x = state[i, 0]
        y = state[i, 1]
        vx = state[i, 2]
        vy = state[i, 3]
        t = ts[i]
        if not (math.isfinite(x) and math.isfinite(vx)):
            since[i] = math.nan
        elif math.isnan(since[i]):
            if vx * vx + vy * vy < thr * thr:
                since[i] = t
                spot[i, 0] = x
                spot[i, 1] = y
        else:
            dx = x - spot[i, 0]
            dy = y - spot[i, 1]
            if dx * dx + dy * dy > r2:
                since[i] = math.nan
        flag[i] = (not math.isnan(since[i])) and t - since[i] >= hold


def _per_tag(value: float | np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    try:
        return np.ascontiguousarray(np.broadcast_to(arr, (n,)))
    except ValueError:
        raise ValueError(f"{name} must be a scalar or have shape [{n}], got {arr.shape}") from None


def _checked(state: np.ndarray, cov: np.ndarray, inplace: bool) -> tuple[np.ndarray, np.ndarray]:
    if state.ndim != 2 or state.shape[1] != 4:
        raise ValueError(f"state must have shape [N, 4], got {state.shape}")
    if cov.shape != (state.shape[0], 4, 4):
        raise ValueError(f"cov must have shape [{state.shape[0]}, 4, 4], got {cov.shape}")
    if inplace:
        if state.dtype != np.float64 or cov.dtype != np.float64:
            raise ValueError("inplace needs float64 state and cov")
        if not (state.flags.c_contiguous and cov.flags.c_contiguous):
            raise ValueError("inplace needs C-contiguous state and cov")
        return state, cov
    return np.array(state, dtype=np.float64, order="C"), np.array(cov, dtype=np.float64, order="C")


def predict(
    state: np.ndarray,
    cov: np.ndarray,
    dt_s: float | np.ndarray,
    *,
    accel_psd: float = 0.5,
    inplace: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Constant-velocity prediction ``dt_s`` seconds ahead (scalar or [N]); see the module docstring.

    ``accel_psd`` (m^2/s^3) is the white-acceleration spectral density: about 0.5 for people walking
    (a 1 s change of pace of ~0.7 m/s).
    """
    state, cov = _checked(state, cov, inplace)
    if not accel_psd >= 0:
        raise ValueError(f"accel_psd must be >= 0, got {accel_psd!r}")
    _predict(state, cov, _per_tag(dt_s, state.shape[0], "dt_s"), float(accel_psd))
    return state, cov


def update(
    state: np.ndarray,
    cov: np.ndarray,
    xy: np.ndarray,
    sigma_xy: float | np.ndarray,
    misses: np.ndarray,
    *,
    gate: float = GATE_CHI2_2DOF_999,
    reset_after: int = 5,
    start_speed_sigma: float = 1.5,
    inplace: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Kalman update with gated position fixes; see the module docstring.

    Args:
        state, cov: float64 [N, 4] and [N, 4, 4].
        xy: float64 [N, 2] fixes in site metres, NaN rows = no fix.
        sigma_xy: per-axis fix standard deviation in metres, scalar or [N].
        misses: int32 [N] consecutive gated fixes per tag (start with zeros).
        gate: Mahalanobis d^2 above which a fix is rejected.
        reset_after: consecutive rejected fixes after which the track restarts at the fix.
        start_speed_sigma: m/s, velocity uncertainty of a newly started track.

    Returns:
        (state, cov, misses, gated bool [N], d2 float64 [N] (NaN where no fix or a track started)).
    """
    state, cov = _checked(state, cov, inplace)
    n = state.shape[0]
    xy = np.ascontiguousarray(xy, dtype=np.float64)
    if xy.shape != (n, 2):
        raise ValueError(f"xy must have shape [{n}, 2], got {xy.shape}")
    misses = np.asarray(misses)
    if misses.shape != (n,):
        raise ValueError(f"misses must have shape [{n}], got {misses.shape}")
    if inplace and misses.dtype == np.int32 and misses.flags.c_contiguous:
        out_misses = misses
    else:
        out_misses = np.array(misses, dtype=np.int32, order="C")
    if not gate > 0 or reset_after < 1:
        raise ValueError("gate must be > 0 and reset_after >= 1")
    gated = np.empty(n, dtype=np.bool_)
    d2 = np.empty(n)
    _update(
        state,
        cov,
        xy,
        _per_tag(sigma_xy, n, "sigma_xy"),
        out_misses,
        float(gate),
        int(reset_after),
        float(start_speed_sigma),
        gated,
        d2,
    )
    return state, cov, out_misses, gated, d2


def measurement_sigma(rms: np.ndarray, gdop: np.ndarray, sigma: float, dims: int) -> np.ndarray:
    """Per-axis standard deviation (metres) of trilaterated fixes: ``max(sigma, rms) * gdop / sqrt(dims)``."""
    rms = np.asarray(rms, dtype=np.float64)
    return np.fmax(sigma, rms) * np.asarray(gdop, dtype=np.float64) / math.sqrt(dims)


def stationary(
    state: np.ndarray,
    ts_s: float | np.ndarray,
    since_s: np.ndarray,
    spot_xy: np.ndarray,
    *,
    speed_threshold: float = 0.2,
    radius_m: float = 1.0,
    hold_s: float = 30.0,
    inplace: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stationary detector; see the module docstring.

    Args:
        state: float64 [N, 4] filtered tracks.
        ts_s: current time in seconds, scalar or [N].
        since_s: float64 [N], since when each tag has been stationary (NaN: moving; start with NaN).
        spot_xy: float64 [N, 2], where each stationary tag stopped (start with anything, e.g. NaN).
        speed_threshold: m/s; a tag slower than this may be stopping.
        radius_m: a stopped tag that moves this far from its spot is moving again.
        hold_s: seconds stationary before the flag rises.

    Returns:
        (flag bool [N], since_s float64 [N], spot_xy float64 [N, 2]).
    """
    state = np.ascontiguousarray(state, dtype=np.float64)
    if state.ndim != 2 or state.shape[1] != 4:
        raise ValueError(f"state must have shape [N, 4], got {state.shape}")
    n = state.shape[0]
    since = np.asarray(since_s)
    spot = np.asarray(spot_xy)
    if since.shape != (n,) or spot.shape != (n, 2):
        raise ValueError(
            f"since_s must have shape [{n}] and spot_xy [{n}, 2], got {since.shape}, {spot.shape}"
        )
    if not (inplace and since.dtype == np.float64 and since.flags.c_contiguous):
        since = np.array(since, dtype=np.float64, order="C")
    if not (inplace and spot.dtype == np.float64 and spot.flags.c_contiguous):
        spot = np.array(spot, dtype=np.float64, order="C")
    if not (speed_threshold > 0 and radius_m > 0 and hold_s >= 0):
        raise ValueError("need speed_threshold > 0, radius_m > 0, hold_s >= 0")
    flag = np.empty(n, dtype=np.bool_)
    _stationary(
        state,
        _per_tag(ts_s, n, "ts_s"),
        since,
        spot,
        float(speed_threshold),
        float(radius_m),
        float(hold_s),
        flag,
    )
    return flag, since, spot
