"""UWB trilateration: tag positions from tag-to-anchor ranges, batched over tags, robust to NLOS.

API
---
``trilaterate(anchors, ranges, *, sigma=0.1, dims=3, tag_height=None, ...) -> Fixes``

- ``anchors``: float64 ``[K, 3]`` anchor positions in site metres (x east, y north, z up).
- ``ranges``: float64 ``[N, K]`` measured tag-to-anchor distances in metres. NaN, inf and *negative* values
  mean "no measurement" (the anchor is left out for that tag; the MQTT adapter already rejects and counts
  such values, so here they are treated as missing rather than raised).
- ``sigma``: standard deviation of a line-of-sight range error in metres; it sets the chi-square consistency
  test that decides when to look for NLOS ranges.
- ``dims=2`` solves x, y with z fixed at ``tag_height`` (a scalar or a float64 ``[N]`` per tag, metres);
  ``dims=3`` solves x, y, z.

Returns :class:`Fixes`, a NamedTuple of arrays over the N tags:
``position`` float64 ``[N, 3]`` (NaN where not valid), ``rms`` float64 ``[N]`` (root-mean-square range
residual in metres over the anchors used), ``used`` int32 ``[N]`` (anchors kept after outlier rejection),
``valid`` bool ``[N]`` and ``gdop`` float64 ``[N]`` (geometric dilution of precision of the anchors used,
over x, y, z in 3-D and x, y in 2-D, so that ``sigma * gdop`` is the RMS position error to expect).

A fix is not valid (position NaN, ``valid`` False, never an exception) when fewer than ``dims + 1`` ranges
are usable, when the anchors used are collinear (2-D) or coplanar (3-D) within about 1 part in 2,000 of
their spread, when the solver does not converge, or when ``gdop > max_gdop``.

Algorithm, per tag (see docs/positioning.md)
--------------------------------------------
1. Closed-form start: linear least squares on differences of squared ranges (centred on the anchor mean).
   In 3-D with nearly coplanar anchors that start cannot see z, so a second start takes x, y from the
   horizontal part and puts z *below* the anchors (tags are worn below ceiling / mast anchors); the better
   of the two minima is kept.
2. Levenberg-Marquardt (Gauss-Newton steps, damped only when a step does not lower the cost) on the range
   residuals ``|x - a_k| - r_k``, until the distance left to the minimum is estimated below 10 um.
3. Consistency test: the normalised cost ``sum(e^2) / sigma^2`` against the chi-square quantile with
   ``used - dims`` degrees of freedom at ``1 - false_alarm``. A consistent fix is the plain least-squares
   solution, which is efficient: its error covariance reaches the Cramer-Rao bound ``sigma^2 (H^T H)^-1``.
4. Mirror check (3-D), when the anchors are nearly coplanar or the test failed: LM also runs from the
   reflection of the solution across the anchors' best-fit plane, and the lower cost wins. If both fit
   about as well (within the 1-degree-of-freedom chi-square quantile) the position is only known to within
   their separation, and gdop is raised to at least ``separation / sigma``.
5. NLOS rejection when the test still fails. With at most ``exhaustive_max`` (8) anchors every subset that
   drops one anchor is solved, then every subset that drops two, keeping at least one degree of freedom;
   the first level with a consistent subset wins (the lowest cost there). With more anchors: a greedy loop
   of Huber-weighted IRLS (which exposes the worst range instead of spreading its bias), dropping the range
   longest beyond its fitted distance and re-testing. If nothing passes, the least inconsistent subset is
   kept. Two physical priors: NLOS only lengthens a range (a subset whose dropped range is more than
   3 sigma *shorter* than the fit is refused), and a subset may not have a gdop above ``max_gdop_growth``
   times the full set's (having lost the anchors that pin a direction, it would fit anything along it).
6. Quality: rms, used and GDOP ``sqrt(trace((H^T H)^-1))``, H the unit line-of-sight vectors of the anchors
   kept.

Threads: ``parallel=True`` (the default) splits the tags in blocks over numba's threads (use
``numba.set_num_threads`` to choose how many); ``parallel=False`` runs the same code on one thread. Each
block allocates its small work arrays once; nothing is allocated per tag.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from kernels._linalg import flatness, least_axis_sym3, solve_sym, trace_inv_sym

__all__ = ["Fixes", "trilaterate"]


# Floating-point licences for the hot loops: reassociation and contraction (FMA) but no assumption that
# values are finite, so NaN / inf checks keep working.
_FAST = {"nsz", "arcp", "contract", "reassoc", "afn"}

# Status codes of a single solve.
_OK = 0
_TOO_FEW = 1
_DEGENERATE = 2
_NOT_CONVERGED = 3

# How _fit starts.
_START_WARM = 0
_START_LINEAR = 1
_START_BELOW = 2

# Anchor sets flatter than this (see kernels._linalg.flatness) are collinear (2-D) / coplanar (3-D): about
# 1 part in 2,000 of out-of-line/plane spread. Below _FLAT_WEAK the linear start cannot see z in 3-D.
_FLAT_DEGENERATE = 1e-6
_FLAT_WEAK = 2e-2
# Converged when the distance left to the minimum is estimated below _STEP_TOL_M, or a step is tiny.
_STEP_TOL_M = 1e-5
_TINY_STEP_M = 1e-7
_HUBER_K = 1.5  # Huber threshold in units of sigma
_IRLS_ROUNDS = 4
# Slots of the cfg array handed to the kernels.
_CFG_SIGMA = 0
_CFG_Z = 1  # standard-normal quantile of 1 - false_alarm
_CFG_MAX_GDOP = 2
_CFG_MAX_ITER = 3
_CFG_EXHAUSTIVE_MAX = 4
_CFG_MAX_GDOP_GROWTH = 5
_CFG_SIZE = 6
_SHORT_K = 3.0  # a dropped range may be at most this many sigma shorter than the fit says


class Fixes(NamedTuple):
    """Trilateration results over N tags (see the module docstring)."""

    position: np.ndarray  # float64 [N, 3], site metres, NaN where not valid
    rms: np.ndarray  # float64 [N], metres
    used: np.ndarray  # int32 [N]
    valid: np.ndarray  # bool [N]
    gdop: np.ndarray  # float64 [N]


@njit(cache=True, inline="always")
def _chi2_quantile(dof, z):
    """Wilson-Hilferty approximation of the chi-square quantile for ``dof`` degrees of freedom at the
    standard-normal quantile ``z`` (within about 3 % of the exact value for dof >= 1 at z ~ 2.3-3.1)."""
    k = float(dof)
    c = 2.0 / (9.0 * k)
    t = 1.0 - c + z * math.sqrt(c)
    return k * t * t * t


@njit(cache=True, inline="always", fastmath=_FAST)
def _normal_eq(ax, ay, az, rr, w, m, nd, p0, p1, p2):
    """Weighted cost ``sum w e^2``, normal matrix ``J^T W J`` and gradient ``J^T W e`` at (p0, p1, p2)."""
    cost = 0.0
    h00 = h01 = h02 = h11 = h12 = h22 = 0.0
    g0 = g1 = g2 = 0.0
    for k in range(m):
        wk = w[k]
        if wk == 0.0:
            continue
        dx = p0 - ax[k]
        dy = p1 - ay[k]
        dz = p2 - az[k]
        d = math.sqrt(dx * dx + dy * dy + dz * dz)
        d = max(d, 1e-9)
        e = d - rr[k]
        inv = 1.0 / d
        ux = dx * inv
        uy = dy * inv
        uz = dz * inv
        cost += wk * e * e
        h00 += wk * ux * ux
        h01 += wk * ux * uy
        h11 += wk * uy * uy
        g0 += wk * ux * e
        g1 += wk * uy * e
        if nd == 3:
            h02 += wk * ux * uz
            h12 += wk * uy * uz
            h22 += wk * uz * uz
            g2 += wk * uz * e
    return cost, h00, h01, h02, h11, h12, h22, g0, g1, g2


@njit(cache=True, fastmath=_FAST)
def _lm(ax, ay, az, rr, w, m, nd, p, max_iter, hq):
    """Levenberg-Marquardt from p (in/out, float64 [3]; p[2] stays fixed in 2-D). Returns (status, cost).

    ``hq`` [7] receives the cost and the weighted normal matrix (upper triangle) at the final p."""
    p0 = p[0]
    p1 = p[1]
    p2 = p[2]
    cost, h00, h01, h02, h11, h12, h22, g0, g1, g2 = _normal_eq(ax, ay, az, rr, w, m, nd, p0, p1, p2)
    lam = 0.0
    converged = False
    prev_step = 0.0
    for _ in range(max_iter):
        mu = lam * (h00 + h11 + h22) / nd
        ok, d0, d1, d2 = solve_sym(h00 + mu, h01, h02, h11 + mu, h12, h22 + mu, -g0, -g1, -g2, nd)
        if not ok:
            if lam >= 1e8:
                break
            lam = 1e-6 if lam == 0.0 else lam * 10.0
            continue
        step = math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
        q0 = p0 + d0
        q1 = p1 + d1
        q2 = p2 + d2
        c, a00, a01, a02, a11, a12, a22, b0, b1, b2 = _normal_eq(ax, ay, az, rr, w, m, nd, q0, q1, q2)
        if c <= cost:
            p0, p1, p2 = q0, q1, q2
            cost = c
            h00, h01, h02, h11, h12, h22 = a00, a01, a02, a11, a12, a22
            g0, g1, g2 = b0, b1, b2
            lam = lam * 0.1 if lam > 1e-9 else 0.0
            # Near a minimum Gauss-Newton steps shrink geometrically (or faster) with ratio
            # rho = step / prev_step; the distance left is about step * rho / (1 - rho).
            if step < _TINY_STEP_M or (
                lam == 0.0 and prev_step > step and step * step < _STEP_TOL_M * (prev_step - step)
            ):
                converged = True
                break
            prev_step = step
        else:
            if step < _TINY_STEP_M:
                # No step, however small, lowers the cost: at the minimum to rounding.
                converged = True
                break
            lam = 1e-4 if lam == 0.0 else lam * 10.0
            if lam > 1e8:
                break
    p[0] = p0
    p[1] = p1
    p[2] = p2
    hq[0] = cost
    hq[1] = h00
    hq[2] = h01
    hq[3] = h02
    hq[4] = h11
    hq[5] = h12
    hq[6] = h22
    if not converged or not math.isfinite(cost):
        return _NOT_CONVERGED, cost
    return _OK, cost


@njit(cache=True)
def _fit(ax, ay, az, rr, w, m, nd, p, start, max_iter, plane, hq):
    """Least squares over the anchors with w > 0: geometry check, a start, then LM.

    ``start``: _START_WARM (p is the start), _START_LINEAR (closed form on differences of squared ranges)
    or _START_BELOW (3-D: x, y from the horizontal block of the closed form, z below the anchors). In 3-D
    the anchors' best-fit plane is written to ``plane`` [6] (centroid, unit normal). Returns
    (status, cost, flatness)."""
    n = 0
    sx = sy = sz = 0.0
    for k in range(m):
        if w[k] > 0.0:
            n += 1
            sx += ax[k]
            sy += ay[k]
            sz += az[k]
    if n < nd + 1:
        return _TOO_FEW, math.inf, 0.0
    mx = sx / n
    my = sy / n
    mz = sz / n
    s00 = s01 = s02 = s11 = s12 = s22 = 0.0
    b0 = b1 = b2 = 0.0
    for k in range(m):
        if w[k] > 0.0:
            x = ax[k] - mx
            y = ay[k] - my
            z = az[k] - mz
            s00 += x * x
            s01 += x * y
            s11 += y * y
            if nd == 3:
                s02 += x * z
                s12 += y * z
                s22 += z * z
                c = 0.5 * (ax[k] * ax[k] + ay[k] * ay[k] + az[k] * az[k] - rr[k] * rr[k])
            else:
                # z is known: the horizontal range squared is r^2 - dz^2.
                dz = p[2] - az[k]
                c = 0.5 * (ax[k] * ax[k] + ay[k] * ay[k] - (rr[k] * rr[k] - dz * dz))
            b0 += x * c
            b1 += y * c
            b2 += z * c
    fl = flatness(s00, s01, s02, s11, s12, s22, nd)
    if fl < _FLAT_DEGENERATE:
        return _DEGENERATE, math.inf, fl
    if nd == 3:
        n0, n1, n2 = least_axis_sym3(s00, s01, s02, s11, s12, s22)
        plane[0] = mx
        plane[1] = my
        plane[2] = mz
        plane[3] = n0
        plane[4] = n1
        plane[5] = n2
    if start == _START_LINEAR:
        ok, x0, x1, x2 = solve_sym(s00, s01, s02, s11, s12, s22, b0, b1, b2, nd)
        if not ok:
            return _DEGENERATE, math.inf, fl
        p[0] = x0
        p[1] = x1
        if nd == 3:
            p[2] = x2
    elif start == _START_BELOW:
        # Dropping the z column is right when the anchors' z spread is small: then (a_k - mean) . x
        # hardly depends on z.
        ok, x0, x1, _ = solve_sym(s00, s01, 0.0, s11, 0.0, 0.0, b0, b1, 0.0, 2)
        if not ok:
            return _DEGENERATE, math.inf, fl
        acc = 0.0
        for k in range(m):
            if w[k] > 0.0:
                dx = x0 - ax[k]
                dy = x1 - ay[k]
                acc += rr[k] * rr[k] - dx * dx - dy * dy
        p[0] = x0
        p[1] = x1
        p[2] = mz - math.sqrt(max(acc / n, 0.0))
    status, cost = _lm(ax, ay, az, rr, w, m, nd, p, max_iter, hq)
    return status, cost, fl


@njit(cache=True)
def _quality(ax, ay, az, rr, w, m, nd, p0, p1, p2):
    """(rms residual in metres, anchors used, gdop) at (p0, p1, p2) over the anchors with w > 0."""
    n = 0
    ss = 0.0
    h00 = h01 = h02 = h11 = h12 = h22 = 0.0
    for k in range(m):
        if w[k] > 0.0:
            dx = p0 - ax[k]
            dy = p1 - ay[k]
            dz = p2 - az[k]
            d = math.sqrt(dx * dx + dy * dy + dz * dz)
            d = max(d, 1e-9)
            e = d - rr[k]
            ss += e * e
            n += 1
            ux = dx / d
            uy = dy / d
            uz = dz / d
            h00 += ux * ux
            h01 += ux * uy
            h02 += ux * uz
            h11 += uy * uy
            h12 += uy * uz
            h22 += uz * uz
    rms = math.sqrt(ss / n) if n > 0 else math.nan
    gdop = math.sqrt(trace_inv_sym(h00, h01, h02, h11, h12, h22, nd))
    return rms, n, gdop


@njit(cache=True)
def _irls_huber(ax, ay, az, rr, w, wh, m, nd, p, sigma, max_iter, hq):
    """Huber-weighted IRLS from p over the anchors with w > 0 (wh is scratch). Returns the status."""
    status = _OK
    kc = _HUBER_K * sigma
    for _ in range(_IRLS_ROUNDS):
        for k in range(m):
            if w[k] > 0.0:
                dx = p[0] - ax[k]
                dy = p[1] - ay[k]
                dz = p[2] - az[k]
                a = abs(math.sqrt(dx * dx + dy * dy + dz * dz) - rr[k])
                wh[k] = 1.0 if a <= kc else kc / a
            else:
                wh[k] = 0.0
        status, _ = _lm(ax, ay, az, rr, wh, m, nd, p, max_iter, hq)
        if status != _OK:
            break
    return status


@njit(cache=True)
def _subset_gdop(ax, ay, az, w, m, nd, p):
    """GDOP at p of the anchors with w > 0."""
    h00 = h01 = h02 = h11 = h12 = h22 = 0.0
    for k in range(m):
        if w[k] > 0.0:
            dx = p[0] - ax[k]
            dy = p[1] - ay[k]
            dz = p[2] - az[k]
            d2 = dx * dx + dy * dy + dz * dz
            d2 = max(d2, 1e-18)
            h00 += dx * dx / d2
            h01 += dx * dy / d2
            h02 += dx * dz / d2
            h11 += dy * dy / d2
            h12 += dy * dz / d2
            h22 += dz * dz / d2
    return math.sqrt(trace_inv_sym(h00, h01, h02, h11, h12, h22, nd))


@njit(cache=True, inline="always")
def _too_short(ax, ay, az, rr, k, p, sigma):
    """True when anchor k's range is shorter than the distance from p by more than _SHORT_K sigma: NLOS
    (a reflected or penetrated path) only makes a range longer, so dropping such an anchor explains
    nothing."""
    dx = p[0] - ax[k]
    dy = p[1] - ay[k]
    dz = p[2] - az[k]
    return math.sqrt(dx * dx + dy * dy + dz * dz) - rr[k] > _SHORT_K * sigma


@njit(cache=True)
def _mirror(ax, ay, az, rr, w, m, nd, p, pm, plane, max_iter, hq):
    """LM from the reflection of p across the anchors' best-fit plane, into pm. Returns (status, cost)."""
    d = (p[0] - plane[0]) * plane[3] + (p[1] - plane[1]) * plane[4] + (p[2] - plane[2]) * plane[5]
    pm[0] = p[0] - 2.0 * d * plane[3]
    pm[1] = p[1] - 2.0 * d * plane[4]
    pm[2] = p[2] - 2.0 * d * plane[5]
    return _lm(ax, ay, az, rr, w, m, nd, pm, max_iter, hq)


@njit(cache=True)
def _solve_tag(anchors, r, nd, h, cfg, out_pos, ax, ay, az, rr, w, wb, wh, p, pm, pfull, pbest, plane, hq):
    """One tag: returns (rms, used, valid, gdop) and writes out_pos [3]. cfg: see _CFG_*."""
    sigma = cfg[_CFG_SIGMA]
    z = cfg[_CFG_Z]
    max_gdop = cfg[_CFG_MAX_GDOP]
    max_iter = int(cfg[_CFG_MAX_ITER])
    exhaustive_max = int(cfg[_CFG_EXHAUSTIVE_MAX])
    max_growth = cfg[_CFG_MAX_GDOP_GROWTH]
    K = anchors.shape[0]
    m = 0
    for k in range(K):
        v = r[k]
        if math.isfinite(v) and v >= 0.0:
            ax[m] = anchors[k, 0]
            ay[m] = anchors[k, 1]
            az[m] = anchors[k, 2]
            rr[m] = v
            m += 1
    out_pos[0] = math.nan
    out_pos[1] = math.nan
    out_pos[2] = math.nan
    if m < nd + 1:
        return math.nan, m, False, math.inf
    for k in range(m):
        w[k] = 1.0
    p[0] = 0.0
    p[1] = 0.0
    p[2] = h
    status, cost, fl = _fit(ax, ay, az, rr, w, m, nd, p, _START_LINEAR, max_iter, plane, hq)
    if status == _TOO_FEW or status == _DEGENERATE:
        return math.nan, m, False, math.inf
    weak = nd == 3 and fl < _FLAT_WEAK
    if weak:
        # The closed form hardly sees z: also start below the anchors, keep the better minimum.
        st2, c2, _ = _fit(ax, ay, az, rr, w, m, nd, pm, _START_BELOW, max_iter, plane, hq)
        if st2 == _OK and (status != _OK or c2 < cost):
            status = _OK
            cost = c2
            for q in range(3):
                p[q] = pm[q]
    if status != _OK:
        return math.nan, m, False, math.inf
    s2 = sigma * sigma
    dof = m - nd
    thr = _chi2_quantile(dof, z) if dof >= 1 else math.inf
    sep = 0.0
    if not weak and cost / s2 <= thr:
        # The common case: consistent at the first minimum; hq holds its cost and normal matrix.
        gdop = math.sqrt(trace_inv_sym(hq[1], hq[2], hq[3], hq[4], hq[5], hq[6], nd))
        rms = math.sqrt(cost / m)
        if not (gdop <= max_gdop):
            return rms, m, False, gdop
        out_pos[0] = p[0]
        out_pos[1] = p[1]
        out_pos[2] = p[2]
        return rms, m, True, gdop
    if nd == 3 and (weak or cost / s2 > thr):
        # Range-only fixes have a second minimum across the anchors' plane; where it fits about as well
        # (within one degree of freedom of chi-square) the fix is only known to within the separation.
        st2, c2 = _mirror(ax, ay, az, rr, w, m, nd, p, pm, plane, max_iter, hq)
        if st2 == _OK:
            if abs(c2 - cost) / s2 <= _chi2_quantile(1, z):
                dx = pm[0] - p[0]
                dy = pm[1] - p[1]
                dzz = pm[2] - p[2]
                sep = math.sqrt(dx * dx + dy * dy + dzz * dzz) / sigma
            if c2 < cost:
                cost = c2
                for q in range(3):
                    p[q] = pm[q]
    for q in range(3):
        pbest[q] = p[q]
        pfull[q] = p[q]
    for k in range(m):
        wb[k] = 1.0
    if cost / s2 > thr:
        best_ratio = cost / s2 / thr
        gdop_full = _subset_gdop(ax, ay, az, wb, m, nd, p)
        if m <= exhaustive_max:
            for drop in range(1, 3):
                d = dof - drop
                if d < 1:
                    break
                thr_d = _chi2_quantile(d, z)
                for i in range(m):
                    for j in range(i + 1 if drop == 2 else m - 1, m):
                        for k in range(m):
                            w[k] = 1.0
                        w[i] = 0.0
                        if drop == 2:
                            w[j] = 0.0
                        for q in range(3):
                            p[q] = pfull[q]
                        st, c, _ = _fit(ax, ay, az, rr, w, m, nd, p, _START_WARM, max_iter, plane, hq)
                        if st != _OK:
                            continue
                        if _too_short(ax, ay, az, rr, i, p, sigma) or (
                            drop == 2 and _too_short(ax, ay, az, rr, j, p, sigma)
                        ):
                            continue
                        ratio = c / s2 / thr_d
                        if ratio < best_ratio and (
                            _subset_gdop(ax, ay, az, w, m, nd, p) <= max_growth * gdop_full
                        ):
                            best_ratio = ratio
                            for q in range(3):
                                pbest[q] = p[q]
                            for k in range(m):
                                wb[k] = w[k]
                if best_ratio <= 1.0:
                    break
        else:
            # Greedy: Huber IRLS shows the worst range, drop it, refit by least squares, test again.
            for k in range(m):
                w[k] = 1.0
            n_act = m
            max_drops = max(2, m // 3)
            drops = 0
            while best_ratio > 1.0 and n_act - 1 - nd >= 1 and drops < max_drops:
                for q in range(3):
                    p[q] = pbest[q]
                if _irls_huber(ax, ay, az, rr, w, wh, m, nd, p, sigma, max_iter, hq) != _OK:
                    break
                # NLOS only lengthens a range: the suspect is the one measured longest beyond the fit.
                worst = -1
                worst_e = 0.0
                for k in range(m):
                    if w[k] > 0.0:
                        dx = p[0] - ax[k]
                        dy = p[1] - ay[k]
                        dz = p[2] - az[k]
                        a = rr[k] - math.sqrt(dx * dx + dy * dy + dz * dz)
                        if a > worst_e:
                            worst_e = a
                            worst = k
                if worst < 0:
                    break
                w[worst] = 0.0
                n_act -= 1
                drops += 1
                st, c, _ = _fit(ax, ay, az, rr, w, m, nd, p, _START_WARM, max_iter, plane, hq)
                if st != _OK:
                    break
                if _subset_gdop(ax, ay, az, w, m, nd, p) > max_growth * gdop_full:
                    break
                ratio = c / s2 / _chi2_quantile(n_act - nd, z)
                if ratio < best_ratio:
                    best_ratio = ratio
                    for q in range(3):
                        pbest[q] = p[q]
                    for k in range(m):
                        wb[k] = w[k]
    rms, used, gdop = _quality(ax, ay, az, rr, wb, m, nd, pbest[0], pbest[1], pbest[2])
    gdop = max(gdop, sep)
    if not (gdop <= max_gdop):
        return rms, used, False, gdop
    out_pos[0] = pbest[0]
    out_pos[1] = pbest[1]
    out_pos[2] = pbest[2]
    return rms, used, True, gdop


@njit(cache=True)
def _solve_block(start, stop, anchors, ranges, heights, nd, cfg, pos, rms, used, valid, gdop):
    K = anchors.shape[0]
    ax = np.empty(K)
    ay = np.empty(K)
    az = np.empty(K)
    rr = np.empty(K)
    w = np.empty(K)
    wb = np.empty(K)
    wh = np.empty(K)
    p = np.empty(3)
    pm = np.empty(3)
    pfull = np.empty(3)
    pbest = np.empty(3)
    plane = np.zeros(6)
    hq = np.empty(7)
    for t in range(start, stop):
        h = heights[t] if nd == 2 else 0.0
        r_, u_, v_, g_ = _solve_tag(
            anchors, ranges[t], nd, h, cfg, pos[t], ax, ay, az, rr, w, wb, wh, p, pm, pfull, pbest, plane, hq
        )
        rms[t] = r_
        used[t] = u_
        valid[t] = v_
        gdop[t] = g_


@njit(cache=True, parallel=True)
def _trilaterate_parallel(anchors, ranges, heights, nd, cfg, pos, rms, used, valid, gdop, n_blocks):
    n = ranges.shape[0]
    for b in prange(n_blocks):
        _solve_block(
            b * n // n_blocks,
            (b + 1) * n // n_blocks,
            anchors,
            ranges,
            heights,
            nd,
            cfg,
            pos,
            rms,
            used,
            valid,
            gdop,
        )


@njit(cache=True)
def _trilaterate_serial(anchors, ranges, heights, nd, cfg, pos, rms, used, valid, gdop):
    _solve_block(0, ranges.shape[0], anchors, ranges, heights, nd, cfg, pos, rms, used, valid, gdop)


def trilaterate(
    anchors: np.ndarray,
    ranges: np.ndarray,
    *,
    sigma: float = 0.1,
    dims: int = 3,
    tag_height: float | np.ndarray | None = None,
    false_alarm: float = 0.001,
    max_gdop: float = 1000.0,
    max_iter: int = 50,
    exhaustive_max: int = 8,
    max_gdop_growth: float = 2.0,
    parallel: bool = True,
) -> Fixes:
    """Positions of N tags from their ranges to K anchors (see the module docstring for the algorithm).

    Args:
        anchors: float64 [K, 3] anchor positions, site metres (x east, y north, z up); finite.
        ranges: float64 [N, K] measured distances, metres; NaN / inf / negative = no measurement.
        sigma: line-of-sight range standard deviation, metres (> 0).
        dims: 3 solves x, y, z; 2 solves x, y with z = ``tag_height``.
        tag_height: metres, scalar or float64 [N]; required with ``dims=2``, not allowed with ``dims=3``.
        false_alarm: probability that a consistent line-of-sight fix fails the chi-square test and goes
            through NLOS rejection.
        max_gdop: fixes whose gdop exceeds this are not valid.
        max_iter: Levenberg-Marquardt iteration limit per solve.
        exhaustive_max: up to this many usable anchors, NLOS rejection tries every one- and two-anchor
            subset; above it, greedy Huber-IRLS rejection.
        max_gdop_growth: a subset is not taken if its gdop exceeds the full set's by this factor: having lost
            the anchors that pin some direction, it would fit almost anything along it.
        parallel: use all numba threads (False: the calling thread only).

    Returns:
        :class:`Fixes` with position float64 [N, 3] (NaN where not valid), rms float64 [N] (metres),
        used int32 [N], valid bool [N], gdop float64 [N].

    Raises:
        ValueError: on wrong shapes, non-finite anchors or parameters, or a missing / unexpected tag_height.
    """
    anchors = np.ascontiguousarray(anchors, dtype=np.float64)
    ranges = np.ascontiguousarray(ranges, dtype=np.float64)
    if anchors.ndim != 2 or anchors.shape[1] != 3:
        raise ValueError(f"anchors must have shape [K, 3], got {anchors.shape}")
    if not np.all(np.isfinite(anchors)):
        raise ValueError("anchors must be finite")
    if ranges.ndim != 2 or ranges.shape[1] != anchors.shape[0]:
        raise ValueError(
            f"ranges must have shape [N, {anchors.shape[0]}] (one column per anchor), got {ranges.shape}"
        )
    if not (math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number of metres, got {sigma!r}")
    if not 0.0 < false_alarm < 0.5:
        raise ValueError(f"false_alarm must be in (0, 0.5), got {false_alarm!r}")
    if max_iter < 1 or exhaustive_max < 0:
        raise ValueError("max_iter must be >= 1 and exhaustive_max >= 0")
    n = ranges.shape[0]
    if dims == 2:
        if tag_height is None:
            raise ValueError("dims=2 needs tag_height (metres, scalar or [N])")
        heights = np.ascontiguousarray(np.broadcast_to(np.asarray(tag_height, dtype=np.float64), (n,)))
        if not np.all(np.isfinite(heights)):
            raise ValueError("tag_height must be finite")
    elif dims == 3:
        if tag_height is not None:
            raise ValueError("tag_height is only used with dims=2")
        heights = np.zeros(n)
    else:
        raise ValueError(f"dims must be 2 or 3, got {dims!r}")
    pos = np.empty((n, 3))
    rms = np.empty(n)
    used = np.empty(n, dtype=np.int32)
    valid = np.empty(n, dtype=np.bool_)
    gdop = np.empty(n)
    if n:
        cfg = np.empty(_CFG_SIZE)
        cfg[_CFG_SIGMA] = sigma
        cfg[_CFG_Z] = NormalDist().inv_cdf(1.0 - false_alarm)
        cfg[_CFG_MAX_GDOP] = max_gdop
        cfg[_CFG_MAX_ITER] = max_iter
        cfg[_CFG_EXHAUSTIVE_MAX] = exhaustive_max
        cfg[_CFG_MAX_GDOP_GROWTH] = max_gdop_growth
        args = (anchors, ranges, heights, dims, cfg, pos, rms, used, valid, gdop)
        if parallel:
            # Several blocks per thread even out tags that need NLOS subset searches.
            _trilaterate_parallel(*args, min(n, 8 * numba.get_num_threads()))
        else:
            _trilaterate_serial(*args)
    if dims == 2:
        pos[valid, 2] = heights[valid]
    return Fixes(pos, rms, used, valid, gdop)
