"""Small geometry checks used while validating a site and comparing permit areas.

Segment crossings, self-intersection, area and extent are pure Python and live only here. Point in polygon and
distance to a polygon are the scalar face of :mod:`kernels.geofence` (the one implementation, shared with the
simulator, the zone fences and the permit checks), so a point on an edge goes the same way everywhere.
"""

from __future__ import annotations

import numpy as np

__all__ = ["polygon_area", "self_intersection", "inside_extent", "point_in_polygon", "distance_to_polygon",
           "polygons_overlap"]


def polygon_area(poly: list[tuple[float, float]]) -> float:
    """Signed area (m^2) by the shoelace formula; positive when counter-clockwise."""
    a = 0.0
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        a += x0 * y1 - x1 * y0
    return a / 2.0


def _orient(a, b, c) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _segments_cross(p1, p2, q1, q2) -> bool:
    d1, d2 = _orient(q1, q2, p1), _orient(q1, q2, p2)
    d3, d4 = _orient(p1, p2, q1), _orient(p1, p2, q2)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True

    def on_seg(a, b, c) -> bool:  # c collinear with a-b and within its box
        return min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return (
        (d1 == 0 and on_seg(q1, q2, p1))
        or (d2 == 0 and on_seg(q1, q2, p2))
        or (d3 == 0 and on_seg(p1, p2, q1))
        or (d4 == 0 and on_seg(p1, p2, q2))
    )


def self_intersection(poly: list[tuple[float, float]]) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges (i, j) that touch or cross, or None for a simple polygon.

    Edge i runs from vertex i to vertex i+1 (closing edge last). O(n^2), fine for zone polygons.
    """
    n = len(poly)
    edges = [(poly[i], poly[(i + 1) % n]) for i in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            if j == i + 1 or (i == 0 and j == n - 1):
                continue  # adjacent edges share a vertex by construction
            if _segments_cross(*edges[i], *edges[j]):
                return i, j
    return None


def inside_extent(pt: tuple[float, ...], extent: tuple[float, float, float, float], margin: float = 0.0) -> bool:
    x0, y0, x1, y1 = extent
    return x0 - margin <= pt[0] <= x1 + margin and y0 - margin <= pt[1] <= y1 + margin


def point_in_polygon(pt: tuple[float, ...], poly: list[tuple[float, float]]) -> bool:
    """Whether ``pt`` (x, y metres) is inside ``poly``: :func:`kernels.geofence.points_in_polygon` on one point
    (even-odd rule; a point on an edge goes the one fixed way described there)."""
    # Imported here, not at the top: every process imports config, and only a few ever test a point; this keeps
    # numba (half a second) out of the console's and the CLI's start-up.
    from kernels.geofence import points_in_polygon

    return bool(points_in_polygon(np.array([pt[:2]], dtype=np.float64), poly)[0])


def distance_to_polygon(pt: tuple[float, ...], poly: list[tuple[float, float]]) -> float:
    """Metres from ``pt`` (x, y) to ``poly``: 0 inside, else the distance to the nearest edge; inf if ``pt`` is not
    finite. :func:`kernels.geofence.distance_to_polygon` on one point."""
    from kernels.geofence import distance_to_polygon  # lazily, as in point_in_polygon

    return float(distance_to_polygon(np.array([pt[:2]], dtype=np.float64), poly)[0])


def polygons_overlap(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> bool:
    """True when two simple polygons share area or touch: an edge crosses, or one holds a vertex of the other."""
    na, nb = len(a), len(b)
    for i in range(na):
        for j in range(nb):
            if _segments_cross(a[i], a[(i + 1) % na], b[j], b[(j + 1) % nb]):
                return True
    return point_in_polygon(a[0], b) or point_in_polygon(b[0], a)
