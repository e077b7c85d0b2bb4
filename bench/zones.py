"""``watchfloor bench zones``: tag x zone membership tests per second for 10,000 tags x 200 zones.

The fence kernel (:func:`kernels.geofence.fence_update`: bounding boxes first, then even-odd test and edge
distance for the hysteresis band) on one thread and on all threads, against shapely 2's vectorised
``contains_xy`` (GEOS) on the same points and polygons in the same run. The target is 10 Hz for the whole
grid on one core: 10,000 x 200 x 10 = 20 M tests/s.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from bench import best_time, report
from kernels.geofence import fence_update, pack_polygons

__all__ = ["run"]


def _zones(n: int, rng) -> list[list[tuple[float, float]]]:
    """n random zones (8-16 vertices, 5-40 m across, some concave) over a 2 km x 1 km site."""
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(50, 1950), rng.uniform(50, 950)
        m = int(rng.integers(8, 17))
        a = np.sort(rng.uniform(0, 2 * np.pi, m))
        r = rng.uniform(5, 20) * rng.uniform(0.6, 1.0, m)
        out.append([(cx + ri * np.cos(ai), cy + ri * np.sin(ai)) for ai, ri in zip(a, r)])
    return out



def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench zones")
    ap.add_argument("--tags", type=int, default=10_000)
    ap.add_argument("--zones", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args(args)
    rng = np.random.default_rng(3)
    polys = _zones(a.zones, rng)
    packed = pack_polygons(polys)
    # half the tags near zones (so the exact tests run), half anywhere
    centres = np.array([np.mean(p, axis=0) for p in polys])
    near = centres[rng.integers(0, a.zones, a.tags // 2)] + rng.normal(0, 15, (a.tags // 2, 2))
    anywhere = np.column_stack([rng.uniform(0, 2000, a.tags - len(near)), rng.uniform(0, 1000, a.tags - len(near))])
    xy = np.vstack([near, anywhere])
    xyz = np.column_stack([xy, np.full(a.tags, 1.2)])
    idx = np.arange(a.tags)
    zb = np.full((a.zones, 2), np.nan)

    def kernel():
        inside = np.zeros((a.tags, a.zones), bool)
        pending = np.full((a.tags, a.zones), np.nan)
        entered = np.full((a.tags, a.zones), np.nan)
        fence_update(idx, xyz, np.zeros(a.tags), packed, zb, 0.5, 0.0, inside, pending, entered)
        return inside

    t0 = time.perf_counter()
    inside = kernel()
    report("zones-first-call-s", time.perf_counter() - t0, "s")
    pairs = a.tags * a.zones
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    t1 = best_time(kernel, a.repeat)
    numba.set_num_threads(threads)
    tn = best_time(kernel, a.repeat)
    report("zones-tag-zone-tests-per-s-1thread", pairs / t1, "tests/s")
    report(f"zones-tag-zone-tests-per-s-{threads}threads", pairs / tn, "tests/s")
    report("zones-grid-rate-1thread", 1.0 / t1, "Hz (10,000 x 200)")

    import shapely

    shp = [shapely.Polygon(p) for p in polys]
    for s in shp:
        shapely.prepare(s)

    def peer():
        return np.column_stack([shapely.contains_xy(s, xy[:, 0], xy[:, 1]) for s in shp])

    ts = best_time(peer, max(1, a.repeat // 2))
    report("shapely-contains-xy-tests-per-s", pairs / ts, "tests/s")
    report("zones-vs-shapely-1thread", ts / t1, "x")
    # the kernel's band: points within 0.5 m of an edge are neither in nor out; elsewhere they must agree
    truth = peer()
    dist = np.column_stack([shapely.distance(s.exterior, shapely.points(xy)) for s in shp])
    clear = dist > 0.5
    report("zones-agreement-with-shapely", 100.0 * np.mean(inside[clear] == truth[clear]), "%")
