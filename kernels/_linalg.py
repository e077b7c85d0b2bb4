"""Small numba helpers for symmetric 2x2 / 3x3 systems kept in scalars (no arrays, nothing allocated).

A symmetric 3x3 matrix is passed as its six upper-triangle entries ``(a00, a01, a02, a11, a12, a22)``;
in 2-D use (``nd == 2``) only ``a00, a01, a11`` are read. Private to ``kernels``.
"""

from __future__ import annotations

import math

from numba import njit

# A pivot below this fraction of the largest diagonal entry counts as singular: the anchor geometry
# (or the Jacobian) has no information along some direction.
SINGULAR_RTOL = 1e-10


@njit(cache=True, inline="always")
def solve_sym(a00, a01, a02, a11, a12, a22, b0, b1, b2, nd):
    """Solve ``A x = b`` for a symmetric positive definite A by Cholesky.

    Returns ``(ok, x0, x1, x2)``; ``ok`` is False when A is not positive definite within
    :data:`SINGULAR_RTOL`. With ``nd == 2`` the third row and column are ignored and ``x2 = 0``.
    """
    scale = max(a00, a11, a22 if nd == 3 else 0.0)
    if not (scale > 0.0) or not math.isfinite(scale):
        return False, 0.0, 0.0, 0.0
    tol = SINGULAR_RTOL * scale
    if a00 <= tol:
        return False, 0.0, 0.0, 0.0
    l00 = math.sqrt(a00)
    l10 = a01 / l00
    d11 = a11 - l10 * l10
    if d11 <= tol:
        return False, 0.0, 0.0, 0.0
    l11 = math.sqrt(d11)
    if nd == 2:
        y0 = b0 / l00
        y1 = (b1 - l10 * y0) / l11
        x1 = y1 / l11
        x0 = (y0 - l10 * x1) / l00
        return True, x0, x1, 0.0
    l20 = a02 / l00
    l21 = (a12 - l20 * l10) / l11
    d22 = a22 - l20 * l20 - l21 * l21
    if d22 <= tol:
        return False, 0.0, 0.0, 0.0
    l22 = math.sqrt(d22)
    y0 = b0 / l00
    y1 = (b1 - l10 * y0) / l11
    y2 = (b2 - l20 * y0 - l21 * y1) / l22
    x2 = y2 / l22
    x1 = (y1 - l21 * x2) / l11
    x0 = (y0 - l10 * x1 - l20 * x2) / l00
    return True, x0, x1, x2


@njit(cache=True, inline="always")
def trace_inv_sym(a00, a01, a02, a11, a12, a22, nd):
    """``trace(A^-1)`` of a symmetric positive semi-definite A; ``inf`` when A is singular."""
    if nd == 2:
        det = a00 * a11 - a01 * a01
        scale = max(a00, a11)
        if not (scale > 0.0) or det <= SINGULAR_RTOL * scale * scale:
            return math.inf
        return (a00 + a11) / det
    c00 = a11 * a22 - a12 * a12
    c11 = a00 * a22 - a02 * a02
    c22 = a00 * a11 - a01 * a01
    det = a00 * c00 - a01 * (a01 * a22 - a12 * a02) + a02 * (a01 * a12 - a11 * a02)
    scale = max(a00, a11, a22)
    if not (scale > 0.0) or det <= SINGULAR_RTOL * scale * scale * scale:
        return math.inf
    return (c00 + c11 + c22) / det


@njit(cache=True, inline="always")
def flatness(a00, a01, a02, a11, a12, a22, nd):
    """Scale-free measure of how far a scatter matrix is from rank-deficient, in [0, 1].

    ``det(A) / (trace(A) / nd) ** nd``: 1 for an isotropic spread, about ``nd**nd / 2**(nd-1) * e/L`` when
    one principal variance ``e`` is much smaller than the others ``L``; 0 for collinear (2-D) or coplanar
    (3-D) points.
    """
    if nd == 2:
        tr = 0.5 * (a00 + a11)
        if not (tr > 0.0):
            return 0.0
        return max(0.0, (a00 * a11 - a01 * a01) / (tr * tr))
    tr = (a00 + a11 + a22) / 3.0
    if not (tr > 0.0):
        return 0.0
    det = a00 * (a11 * a22 - a12 * a12) - a01 * (a01 * a22 - a12 * a02) + a02 * (a01 * a12 - a11 * a02)
    return max(0.0, det / (tr * tr * tr))


@njit(cache=True, inline="always")
def least_axis_sym3(a00, a01, a02, a11, a12, a22):
    """Unit eigenvector of the smallest eigenvalue of a symmetric PSD 3x3 matrix: the normal of the
    best-fit plane when A is a scatter matrix. Power iteration on the adjugate (``det(A) A^-1``, defined
    even when A is singular), whose dominant eigenvector it is. Returns ``(n0, n1, n2)``."""
    c00 = a11 * a22 - a12 * a12
    c01 = a02 * a12 - a01 * a22
    c02 = a01 * a12 - a02 * a11
    c11 = a00 * a22 - a02 * a02
    c12 = a01 * a02 - a00 * a12
    c22 = a00 * a11 - a01 * a01
    # Start from the adjugate's largest column (never orthogonal to its dominant eigenvector unless zero).
    v0, v1, v2 = c00, c01, c02
    if c11 > abs(v0):
        v0, v1, v2 = c01, c11, c12
    if c22 > max(abs(v0), abs(v1)):
        v0, v1, v2 = c02, c12, c22
    nrm = math.sqrt(v0 * v0 + v1 * v1 + v2 * v2)
    if not (nrm > 0.0):
        return 0.0, 0.0, 1.0
    v0 /= nrm
    v1 /= nrm
    v2 /= nrm
    for _ in range(6):
        u0 = c00 * v0 + c01 * v1 + c02 * v2
        u1 = c01 * v0 + c11 * v1 + c12 * v2
        u2 = c02 * v0 + c12 * v1 + c22 * v2
        nrm = math.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
        if not (nrm > 0.0):
            break
        v0 = u0 / nrm
        v1 = u1 / nrm
        v2 = u2 / nrm
    return v0, v1, v2
