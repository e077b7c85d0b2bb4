"""Zone membership with hysteresis: the kernel agrees with shapely away from edges, a tag standing on a
boundary does not chatter, entries need the dwell and carry the crossing time, height bands count."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from alarms.zones import ZoneMembership
from config.schema import FenceSettings
from kernels.geofence import fence_update, pack_polygons


def state(p, z):
    return np.zeros((p, z), bool), np.full((p, z), np.nan), np.full((p, z), np.nan)


def star(cx, cy, r_out, r_in, n=7):
    a = np.linspace(0, 2 * np.pi, 2 * n, endpoint=False)
    r = np.where(np.arange(2 * n) % 2 == 0, r_out, r_in)
    return [(cx + ri * np.cos(ai), cy + ri * np.sin(ai)) for ai, ri in zip(a, r)]


def test_membership_matches_shapely_for_random_points_away_from_edges():
    rng = np.random.default_rng(11)
    polys = [star(50, 50, 30, 12), [(0, 0), (40, 0), (40, 10), (10, 10), (10, 40), (0, 40)],  # concave L
             [(60, 0), (100, 0), (80, 30)]]
    packed = pack_polygons(polys)
    pts = rng.uniform(-5, 105, (5000, 2))
    xyz = np.column_stack([pts, np.full(len(pts), 1.2)])
    inside, pending, entered = state(len(pts), len(polys))
    fence_update(np.arange(len(pts)), xyz, np.zeros(len(pts)), packed, np.full((3, 2), np.nan), 0.25, 0.0,
                 inside, pending, entered)
    for k, poly in enumerate(polys):
        shp = shapely.Polygon(poly)
        truth = shapely.contains_xy(shp, pts[:, 0], pts[:, 1])
        clear = shapely.distance(shp.exterior, shapely.points(pts)) > 0.25
        assert np.array_equal(inside[clear, k], truth[clear])
        assert not inside[~clear, k].any()  # never inside from outside while within the border band


def test_a_tag_standing_on_the_boundary_does_not_chatter():
    packed = pack_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)]])
    inside, pending, entered = state(1, 1)
    events = []
    for k in range(200):  # 20 s at 10 Hz, +-0.3 m around x = 10 (the border is 0.5 m)
        x = 10.0 + 0.3 * np.sin(k)
        ev = fence_update(np.array([0]), np.array([[x, 5.0, 1.2]]), np.array([0.1 * k]), packed,
                          np.full((1, 2), np.nan), 0.5, 2.0, inside, pending, entered)
        events.append(int(ev[0, 0]))
    assert events == [0] * 200


def test_entry_needs_the_dwell_and_is_dated_when_it_began():
    packed = pack_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)]])
    inside, pending, entered = state(1, 1)
    zb = np.full((1, 2), np.nan)

    def fix(x, t):
        return int(fence_update(np.array([0]), np.array([[x, 5.0, 1.2]]), np.array([t]), packed, zb, 0.5, 2.0,
                                inside, pending, entered)[0, 0])

    assert [fix(-3, 0.0), fix(3, 1.0), fix(3, 2.5), fix(-3, 2.9), fix(3, 3.0), fix(3, 4.9)] == [0] * 6
    assert fix(3, 5.0) == 1 and entered[0, 0] == 3.0  # the stay that lasted 2 s began at 3.0
    assert fix(-3, 6.0) == 0 and fix(-3, 8.0) == -1


def test_height_band_keeps_a_tag_on_another_floor_out():
    packed = pack_polygons([[(0, 0), (10, 0), (10, 10), (0, 10)]])
    inside, pending, entered = state(2, 1)
    fence_update(np.array([0, 1]), np.array([[5, 5, 1.2], [5, 5, 7.5]]), np.zeros(2), packed,
                 np.array([[0.0, 3.0]]), 0.5, 0.0, inside, pending, entered)
    assert inside[:, 0].tolist() == [True, False]


def test_zone_membership_applies_two_fixes_of_one_person_in_time_order(demo_site):
    site = demo_site.model_copy(update={"fences": FenceSettings(border_m=0.5, min_dwell_s=2.0)})
    m = ZoneMembership(site)
    sub = [z.id for z in site.zones].index("Z-SUB")
    ev = m.update(np.array([49, 49, 49]), np.array([[145.0, 70, 1.2], [146, 70, 1.2], [145.5, 70, 1.2]]),
                  np.array([11.9, 10.0, 11.0]))  # out of order in the batch; 1.9 s inside
    assert ev == []
    ev = m.update(np.array([49]), np.array([[145.0, 70, 1.2]]), np.array([12.1]))
    assert [(e.kind, site.zones[e.zone].id, e.ts_s) for e in ev] == [("region_entry", "Z-SUB", 10.0)]
    assert m.people_in(sub).tolist() == [49]
    assert m.dwell_s(20.0)[49, sub] == pytest.approx(10.0)
