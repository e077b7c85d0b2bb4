"""Geofence kernels: which points lie in which polygons (numba, pure functions over arrays).

Polygons are packed: ``vertices`` float64 [V, 2] for all polygons back to back, ``starts`` int64 [Z + 1]
(polygon z owns vertices[starts[z]:starts[z+1]]), ``bbox`` float64 [Z, 4] (x0, y0, x1, y1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["pack_polygons", "points_in_polygons"]


def pack_polygons(polygons: list[list[tuple[float, float]]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pack polygons (each a list of (x, y) in metres) into (vertices [V, 2], starts [Z+1], bbox [Z, 4])."""
    starts = np.zeros(len(polygons) + 1, dtype=np.int64)
    for i, p in enumerate(polygons):
        starts[i + 1] = starts[i] + len(p)
    vertices = np.zeros((int(starts[-1]), 2), dtype=np.float64)
    bbox = np.zeros((len(polygons), 4), dtype=np.float64)
    for i, p in enumerate(polygons):
        a = np.asarray(p, dtype=np.float64).reshape(-1, 2)
        vertices[starts[i] : starts[i + 1]] = a
        bbox[i] = (a[:, 0].min(), a[:, 1].min(), a[:, 0].max(), a[:, 1].max())
    return vertices, starts, bbox


@njit(cache=True)
def _inside(x: float, y: float, vertices, s: int, e: int) -> bool:
    inside = False
    j = e - 1
    for i in range(s, e):
        xi, yi = vertices[i, 0], vertices[i, 1]
        xj, yj = vertices[j, 0], vertices[j, 1]
        if (yi > y) != (yj > y):
            xc = xi + (y - yi) * (xj - xi) / (yj - yi)
            if x < xc:
                inside = not inside
        j = i
    return inside


@njit(cache=True, parallel=True)
def points_in_polygons(points, vertices, starts, bbox):
    """bool [N, Z]: point n (float64 [N, 2+]) strictly inside polygon z (even-odd rule). NaN points: False."""
    n = points.shape[0]
    z = starts.shape[0] - 1
    out = np.zeros((n, z), dtype=np.bool_)
    for i in prange(n):
        x, y = points[i, 0], points[i, 1]
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        for k in range(z):
            if x < bbox[k, 0] or x > bbox[k, 2] or y < bbox[k, 1] or y > bbox[k, 3]:
                continue
            out[i, k] = _inside(x, y, vertices, starts[k], starts[k + 1])
    return out
