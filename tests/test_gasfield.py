"""The gas field: IDW against a plain-numpy reference, exact at detectors, bounded by the radius."""

from __future__ import annotations

import numpy as np

from kernels.gasfield import idw_field


def reference(det_xy, values, extent, dx, power, radius):
    x0, y0, x1, y1 = extent
    nx, ny = int(np.ceil((x1 - x0) / dx)), int(np.ceil((y1 - y0) / dx))
    xs, ys = x0 + (np.arange(nx) + 0.5) * dx, y0 + (np.arange(ny) + 0.5) * dx
    out = np.full((ny, nx), np.nan)
    ok = np.isfinite(values)
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            d = np.hypot(x - det_xy[ok, 0], y - det_xy[ok, 1])
            near = d <= radius
            if near.any():
                w = 1.0 / d[near] ** power
                out[j, i] = np.sum(w * values[ok][near]) / np.sum(w)
    return out


def test_idw_matches_the_reference_on_random_detectors():
    rng = np.random.default_rng(4)
    det = rng.uniform(0, 100, (12, 2))
    vals = rng.uniform(0, 1, 12)
    vals[3] = np.nan  # a detector with a bad value is left out
    got = idw_field(det, vals, (0, 0, 100, 60), 2.5, power=2.0, radius_m=30.0)
    want = reference(det, vals, (0, 0, 100, 60), 2.5, 2.0, 30.0)
    assert got.shape == (24, 40)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    assert np.allclose(got[~np.isnan(got)], want[~np.isnan(want)], rtol=1e-5)


def test_a_cell_on_a_detector_takes_its_value_and_far_cells_are_empty():
    det = np.array([[5.0, 5.0], [95.0, 5.0]])
    got = idw_field(det, np.array([0.8, 0.2]), (0, 0, 100, 10), 10.0, radius_m=20.0)
    assert abs(got[0, 0] - 0.8) < 1e-6  # the cell centre (5, 5) is the detector itself
    assert np.isnan(got[0, 5])  # (55, 5): 50 m from both
