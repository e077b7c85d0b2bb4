"""Gas field for the map: inverse-distance interpolation of the detectors onto the site grid (numba).

Values are normalised by the caller (e.g. fraction of each detector's level-2 alarm), so different gases and
units share one scale. A cell farther than ``radius_m`` from every detector with a value has no estimate (NaN):
the map shows nothing there rather than an extrapolation.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["idw_field"]


@njit(cache=True, parallel=True)
def _idw(det_xy, values, x0, y0, dx, nx, ny, power, radius, out):
    g = det_xy.shape[0]
    for j in prange(ny):
        y = y0 + (j + 0.5) * dx
        for i in range(nx):
            x = x0 + (i + 0.5) * dx
            num = 0.0
            den = 0.0
            exact = -1.0
            for k in range(g):
                v = values[k]
                if not np.isfinite(v):
                    continue
                ddx = x - det_xy[k, 0]
                ddy = y - det_xy[k, 1]
                d2 = ddx * ddx + ddy * ddy
                if d2 > radius * radius:
                    continue
                if d2 < 1e-12:
                    exact = v
                    break
                w = 1.0 / d2 ** (power / 2.0)
                num += w * v
                den += w
            if exact >= 0.0:
                out[j, i] = exact
            elif den > 0.0:
                out[j, i] = num / den
            else:
                out[j, i] = np.nan


def idw_field(det_xy: np.ndarray, values: np.ndarray, extent_m: tuple[float, float, float, float], dx_m: float,
              *, power: float = 2.0, radius_m: float = 60.0) -> np.ndarray:
    """float32 [ny, nx] over ``extent_m`` (x0, y0, x1, y1) with cells of ``dx_m`` metres (row 0 = south).

    det_xy float64 [G, 2] detector positions (m); values float64 [G] (NaN = no valid value, left out).
    Each cell is the inverse-distance weighted mean (weights 1 / d^power) of the detectors within ``radius_m``;
    NaN where there is none.
    """
    x0, y0, x1, y1 = extent_m
    nx, ny = int(np.ceil((x1 - x0) / dx_m)), int(np.ceil((y1 - y0) / dx_m))
    out = np.empty((ny, nx), dtype=np.float32)
    _idw(np.ascontiguousarray(det_xy, dtype=np.float64), np.ascontiguousarray(values, dtype=np.float64),
         float(x0), float(y0), float(dx_m), nx, ny, float(power), float(radius_m), out)
    return out
