"""The site's one plane geometry: which points lie in which polygons, and how far they are from an edge.

Numba kernels, pure functions over arrays. Config (permit-overlap checks), the simulator's walkways, the zone
fences and the permit checks all use these; nothing else tests a point against a polygon.

Conventions, everywhere (so the zones, the permits and the simulator agree on a point):

- **inside** is the even-odd (crossing-number) rule with half-open edges: an edge counts when exactly one of
  its ends lies strictly above the point's y, and it is crossed when the point lies strictly left of it. A
  point exactly on an edge therefore goes one fixed way (deterministic, so replay agrees): for an
  axis-aligned rectangle [x0, x1] x [y0, y1] the inside is x0 <= x < x1, y0 <= y < y1; on a slanted edge it
  depends on rounding. Callers that must not depend on that (the fences) keep a border band instead.
- **distance to the edges** is the Euclidean distance in metres to the nearest point of any edge (the
  closing edge included), on either side; **distance to the polygon** is 0 inside, else that distance.
- A point with a non-finite x or y is inside nothing and infinitely far from everything.

Polygons are float64 [M, 2] vertex arrays (x, y metres; not closed: the last vertex joins the first) or,
for many polygons at once, packed: ``vertices`` float64 [V, 2] for all polygons back to back, ``starts``
int64 [Z + 1] (polygon z owns vertices[starts[z]:starts[z+1]]), ``bbox`` float64 [Z, 4] (x0, y0, x1, y1).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "pack_polygons",
    "points_in_polygons",
    "points_in_polygon",
    "distance_to_edges",
    "distance_to_polygon",
    "fence_update",
]


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
    """(x, y) inside the polygon vertices[s:e] by the even-odd rule with half-open edges (module docstring).
    The one point-in-polygon test of the code base: every other function here calls it."""
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


@njit(cache=True)
def _edge_distance(x: float, y: float, vertices, s: int, e: int) -> float:
    """Distance (m) from (x, y) to the nearest edge of the polygon vertices[s:e]. The one distance-to-edge
    computation of the code base."""
    best = np.inf
    j = e - 1
    for i in range(s, e):
        ax, ay = vertices[j, 0], vertices[j, 1]
        bx, by = vertices[i, 0], vertices[i, 1]
        dx, dy = bx - ax, by - ay
        ll = dx * dx + dy * dy
        t = 0.0 if ll == 0.0 else ((x - ax) * dx + (y - ay) * dy) / ll
        t = min(1.0, max(0.0, t))
        px, py = ax + t * dx - x, ay + t * dy - y
        d = px * px + py * py
        if d < best:
            best = d
        j = i
    return np.sqrt(best)


@njit(cache=True)
def _points_in_polygon(points, vertices, out) -> None:
    m = vertices.shape[0]
    for i in range(points.shape[0]):
        x, y = points[i, 0], points[i, 1]
        out[i] = np.isfinite(x) and np.isfinite(y) and _inside(x, y, vertices, 0, m)


@njit(cache=True)
def _distances(points, vertices, zero_inside: bool, out) -> None:
    m = vertices.shape[0]
    for i in range(points.shape[0]):
        x, y = points[i, 0], points[i, 1]
        if not (np.isfinite(x) and np.isfinite(y)):
            out[i] = np.inf
        elif zero_inside and _inside(x, y, vertices, 0, m):
            out[i] = 0.0
        else:
            out[i] = _edge_distance(x, y, vertices, 0, m)


def _as_points(points_m) -> np.ndarray:
    pts = np.ascontiguousarray(points_m, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2:
        raise ValueError(f"points must be [N, 2+], got shape {pts.shape}")
    return pts


def _as_polygon(polygon_m) -> np.ndarray:
    return np.ascontiguousarray(polygon_m, dtype=np.float64).reshape(-1, 2)


def points_in_polygon(points_m: np.ndarray, polygon_m: np.ndarray) -> np.ndarray:
    """bool [N]: which of ``points_m`` (float64 [N, 2+], x y metres first) are inside ``polygon_m``
    ([M, 2] vertices, array or list of (x, y)); non-finite points are outside."""
    pts = _as_points(points_m)
    out = np.zeros(pts.shape[0], dtype=np.bool_)
    _points_in_polygon(pts, _as_polygon(polygon_m), out)
    return out


def distance_to_edges(points_m: np.ndarray, polygon_m: np.ndarray) -> np.ndarray:
    """float64 [N]: metres from each of ``points_m`` ([N, 2+]) to the nearest edge of ``polygon_m`` ([M, 2]),
    on either side of it; inf for non-finite points."""
    pts = _as_points(points_m)
    out = np.empty(pts.shape[0], dtype=np.float64)
    _distances(pts, _as_polygon(polygon_m), False, out)
    return out


def distance_to_polygon(points_m: np.ndarray, polygon_m: np.ndarray) -> np.ndarray:
    """float64 [N]: metres from each of ``points_m`` ([N, 2+]) to the area of ``polygon_m`` ([M, 2]): 0 inside,
    else the distance to the nearest edge; inf for non-finite points."""
    pts = _as_points(points_m)
    out = np.empty(pts.shape[0], dtype=np.float64)
    _distances(pts, _as_polygon(polygon_m), True, out)
    return out


@njit(cache=True, parallel=True)
def points_in_polygons(points, vertices, starts, bbox):
    """bool [N, Z]: point n (float64 [N, 2+]) inside packed polygon z (even-odd rule, half-open edges, as
    :func:`points_in_polygon`; the bounding boxes only skip work). Non-finite points: False."""
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


@njit(cache=True, parallel=True)
def _fence_update(idx, points, ts, vertices, starts, bbox, zband, border, dwell, inside, pending, entered, events):
    n = idx.shape[0]
    nz = starts.shape[0] - 1
    for r in prange(n):
        i = idx[r]
        x, y, z = points[r, 0], points[r, 1], points[r, 2]
        t = ts[r]
        ok = np.isfinite(x) and np.isfinite(y)
        for k in range(nz):
            # raw: 1 inside by more than the border, 0 outside by more than the border, -1 on the border band
            if not ok:
                raw = -1
            elif (x < bbox[k, 0] - border or x > bbox[k, 2] + border or y < bbox[k, 1] - border
                  or y > bbox[k, 3] + border):
                raw = 0
            elif np.isfinite(zband[k, 0]) and np.isfinite(z) and (z < zband[k, 0] or z > zband[k, 1]):
                raw = 0
            else:
                d = _edge_distance(x, y, vertices, starts[k], starts[k + 1])
                if d <= border:
                    raw = -1
                elif _inside(x, y, vertices, starts[k], starts[k + 1]):
                    raw = 1
                else:
                    raw = 0
            cur = 1 if inside[i, k] else 0
            if raw == -1 or raw == cur:
                if raw == cur:
                    pending[i, k] = np.nan
                continue
            if not np.isfinite(pending[i, k]):
                pending[i, k] = t
            if t - pending[i, k] >= dwell:
                inside[i, k] = raw == 1
                events[r, k] = 1 if raw == 1 else -1
                if raw == 1:
                    entered[i, k] = pending[i, k]
                pending[i, k] = np.nan


def fence_update(person_index: np.ndarray, xyz_m: np.ndarray, ts_s: np.ndarray, packed, zband_m: np.ndarray,
                 border_m: float, min_dwell_s: float, inside: np.ndarray, pending_since: np.ndarray,
                 entered_ts: np.ndarray) -> np.ndarray:
    """Zone membership with hysteresis for one batch of fixes; updates the state arrays in place.

    person_index int64 [n] rows of the state arrays; xyz_m float64 [n, 3]; ts_s float64 [n] fix times (s).
    ``packed`` from :func:`pack_polygons` (Z zones); ``zband_m`` float64 [Z, 2] (NaN = no height band).
    State, float64 / bool [P, Z]: ``inside`` (current membership), ``pending_since`` (when the other side was
    first seen, NaN if none), ``entered_ts`` (entry time of the current stay).

    A tag changes side only when it is beyond ``border_m`` from the boundary on the other side, continuously for
    ``min_dwell_s`` (so a tag standing on a boundary does not chatter); the entry time is when that began.
    A tag that appears twice in one batch must be split over calls (its state is per tag).
    Returns int8 [n, Z] events: +1 region_entry, -1 region_exit, 0 none.
    """
    vertices, starts, bbox = packed
    events = np.zeros((len(person_index), len(starts) - 1), dtype=np.int8)
    if len(person_index):
        _fence_update(np.asarray(person_index, dtype=np.int64), np.ascontiguousarray(xyz_m, dtype=np.float64),
                      np.ascontiguousarray(ts_s, dtype=np.float64), vertices, starts, bbox,
                      np.ascontiguousarray(zband_m, dtype=np.float64), float(border_m), float(min_dwell_s),
                      inside, pending_since, entered_ts, events)
    return events
