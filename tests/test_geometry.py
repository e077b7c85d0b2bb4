"""The one plane geometry (kernels.geofence): point in polygon and distance to edges agree with shapely and with
a plain-numpy reference on random concave polygons, points on edges go one fixed way, and config, the simulator
and the packed zone test are that same geometry."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from config import geometry as config_geometry
from ingest.simulator import layout
from kernels.geofence import (
    distance_to_edges,
    distance_to_polygon,
    pack_polygons,
    points_in_polygon,
    points_in_polygons,
)


def random_polygon(rng: np.random.Generator) -> np.ndarray:
    """A simple polygon, mostly concave: star-shaped around a centre, 3-24 vertices at random angles and radii;
    now and then with a repeated vertex (a zero-length edge)."""
    m = int(rng.integers(3, 25))
    angles = np.sort(rng.uniform(0, 2 * np.pi, m))
    radii = rng.uniform(2, 40) * rng.uniform(0.2, 1.0, m)
    c = rng.uniform(-100, 100, 2)
    poly = c + np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    if rng.random() < 0.2:
        k = int(rng.integers(0, m))
        poly = np.insert(poly, k, poly[k], axis=0)
    return poly


def rectilinear() -> np.ndarray:
    """A comb: axis-aligned edges, concave, where a ray through a vertex meets several edges."""
    return np.array([(0, 0), (30, 0), (30, 20), (25, 20), (25, 5), (20, 5), (20, 20), (10, 20), (10, 5), (5, 5),
                     (5, 20), (0, 20)], dtype=float)


def probe_points(rng: np.random.Generator, poly: np.ndarray, n: int = 300) -> np.ndarray:
    """Random points over the polygon's box, its vertices, points on its edges and a hair either side of them."""
    lo, hi = poly.min(axis=0) - 3, poly.max(axis=0) + 3
    a, b = poly, np.roll(poly, -1, axis=0)
    t = rng.uniform(0, 1, (len(poly), 1))
    on = a + t * (b - a)
    normal = np.column_stack([-(b - a)[:, 1], (b - a)[:, 0]])
    normal /= np.maximum(np.hypot(*normal.T), 1e-300)[:, None]
    return np.vstack([rng.uniform(lo, hi, (n, 2)), poly, on, on + 1e-6 * normal, on - 1e-6 * normal])


def reference_inside(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Plain numpy, the crossing rule written out: edge from vertex j = i - 1 to vertex i counts when exactly one
    end is strictly above y, and the point is strictly left of the crossing."""
    x, y = pts[:, :1], pts[:, 1:2]
    xi, yi = poly[:, 0][None, :], poly[:, 1][None, :]
    xj, yj = np.roll(poly[:, 0], 1)[None, :], np.roll(poly[:, 1], 1)[None, :]
    spans = (yi > y) != (yj > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xc = xi + (y - yi) * (xj - xi) / (yj - yi)
    return np.count_nonzero(spans & (x < xc), axis=1) % 2 == 1


def reference_edge_distance(pts: np.ndarray, poly: np.ndarray) -> np.ndarray:
    a, b, p = poly[None], np.roll(poly, -1, axis=0)[None], pts[:, None, :2]
    ab = b - a
    ll = np.sum(ab * ab, axis=2)
    t = np.clip(np.sum((p - a) * ab, axis=2) / np.where(ll == 0, 1.0, ll), 0.0, 1.0)
    d = a + t[..., None] * ab - p
    return np.sqrt(np.min(np.sum(d * d, axis=2), axis=1))


POLYGONS = [rectilinear(), *(random_polygon(np.random.default_rng(s)) for s in range(40))]


@pytest.mark.parametrize("k", range(len(POLYGONS)))
def test_inside_and_distance_match_shapely_and_numpy_on_random_concave_polygons(k):
    poly = POLYGONS[k]
    pts = probe_points(np.random.default_rng(100 + k), poly)
    inside = points_in_polygon(pts, poly)
    dist = distance_to_edges(pts, poly)
    shp = shapely.Polygon(poly)
    assert shp.is_valid
    truth_dist = shapely.distance(shp.exterior, shapely.points(pts))
    np.testing.assert_allclose(dist, truth_dist, rtol=1e-9, atol=1e-9)
    clear = truth_dist > 1e-9  # on an edge the rule decides, not shapely (next test)
    assert clear.sum() > 300
    np.testing.assert_array_equal(inside[clear], shapely.contains_xy(shp, pts[clear, 0], pts[clear, 1]))
    # the plain-numpy reference agrees everywhere, on the edges and vertices too, to the bit
    np.testing.assert_array_equal(inside, reference_inside(pts, poly))
    np.testing.assert_allclose(dist, reference_edge_distance(pts, poly), rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(distance_to_polygon(pts, poly), np.where(inside, 0.0, dist))


def test_an_axis_aligned_rectangle_holds_its_left_and_bottom_edges_but_not_its_right_and_top():
    rect = [(0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)]
    pts = np.array([(0, 2), (10, 2), (4, 0), (4, 5), (0, 0), (10, 0), (10, 5), (0, 5), (4, 2)], dtype=float)
    assert points_in_polygon(pts, rect).tolist() == [True, False, True, False, True, False, False, False, True]
    reversed_rect = rect[::-1]  # the rule does not depend on the winding
    assert points_in_polygon(pts, reversed_rect).tolist() == points_in_polygon(pts, rect).tolist()


def test_points_without_a_position_are_inside_nothing_and_infinitely_far():
    poly = rectilinear()
    pts = np.array([(np.nan, 10), (10, np.nan), (np.nan, np.nan), (np.inf, 10), (-np.inf, 10), (2, 10)])
    assert points_in_polygon(pts, poly).tolist() == [False] * 5 + [True]
    assert np.isinf(distance_to_edges(pts, poly)[:5]).all()
    assert distance_to_polygon(pts, poly).tolist() == [np.inf] * 5 + [0.0]


def test_points_may_carry_a_height_column_and_polygons_may_be_lists():
    poly = POLYGONS[3]
    pts = probe_points(np.random.default_rng(5), poly)
    xyz = np.column_stack([pts, np.full(len(pts), 1.2)])
    as_list = [tuple(v) for v in poly.tolist()]
    np.testing.assert_array_equal(points_in_polygon(xyz, as_list), points_in_polygon(pts, poly))
    np.testing.assert_array_equal(distance_to_edges(xyz[::2], as_list), distance_to_edges(pts[::2], poly))
    assert points_in_polygon(np.zeros((0, 2)), poly).shape == (0,)


def test_the_packed_zone_test_is_the_one_polygon_test_for_each_polygon():
    rng = np.random.default_rng(7)
    polys = POLYGONS[:12]
    pts = np.vstack([probe_points(rng, p, 50) for p in polys])
    together = points_in_polygons(pts, *pack_polygons([p.tolist() for p in polys]))
    for k, poly in enumerate(polys):
        np.testing.assert_array_equal(together[:, k], points_in_polygon(pts, poly), err_msg=str(k))


def test_config_and_the_simulator_use_the_kernels_geometry():
    poly = POLYGONS[8]
    pts = probe_points(np.random.default_rng(9), poly, 60)
    as_list = [tuple(v) for v in poly.tolist()]
    assert [config_geometry.point_in_polygon(tuple(p), as_list) for p in pts] == points_in_polygon(pts, poly).tolist()
    assert [config_geometry.distance_to_polygon(tuple(p), as_list) for p in pts] == \
        distance_to_polygon(pts, poly).tolist()
    assert config_geometry.distance_to_polygon((np.nan, 1.0), as_list) == np.inf
    assert layout.points_in_polygon is points_in_polygon and layout.distance_to_edges is distance_to_edges


@pytest.mark.parametrize(("b", "overlap"), [
    ([(5, 5), (15, 5), (15, 15), (5, 15)], True),  # corners cross
    ([(2, 2), (4, 2), (4, 4), (2, 4)], True),  # inside the other
    ([(10, 0), (20, 0), (20, 10), (10, 10)], True),  # shares an edge
    ([(11, 0), (20, 0), (20, 10), (11, 10)], False),  # apart
])
def test_permit_areas_overlap_when_they_cross_touch_or_nest(b, overlap):
    a = [(0, 0), (10, 0), (10, 10), (0, 10)]
    assert config_geometry.polygons_overlap(a, b) is overlap
    assert config_geometry.polygons_overlap(b, a) is overlap
