"""kernels.trilateration: exactness, agreement with a scipy reference, the Cramer-Rao bound, NLOS
robustness, 2-D mode, degenerate geometry and input validation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import least_squares

from kernels.trilateration import Fixes, trilaterate

# A 30 m x 20 m hall: 8 anchors around the tags at mixed mounting heights (so z is observable).
HALL = np.array(
    [
        [0.0, 0.0, 3.0],
        [30.0, 0.0, 6.0],
        [30.0, 20.0, 3.5],
        [0.0, 20.0, 7.0],
        [15.0, -2.0, 4.0],
        [15.0, 22.0, 5.5],
        [-2.0, 10.0, 6.5],
        [32.0, 10.0, 2.5],
    ]
)
SIGMA = 0.1


def true_ranges(anchors: np.ndarray, tags: np.ndarray) -> np.ndarray:
    return np.linalg.norm(tags[:, None, :] - anchors[None, :, :], axis=2)


def random_tags(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.column_stack([rng.uniform(2, 28, n), rng.uniform(2, 18, n), rng.uniform(0.3, 2.0, n)])


def crlb_trace(anchors: np.ndarray, tag: np.ndarray, sigma: float, dims: int = 3) -> float:
    """trace(J^-1) with J = sum_k u_k u_k^T / sigma^2, u_k the unit vector anchor -> tag."""
    u = tag[None, :] - anchors
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u = u[:, :dims]
    fisher = u.T @ u / sigma**2
    return float(np.trace(np.linalg.inv(fisher)))


def scipy_fix(anchors: np.ndarray, r: np.ndarray, start: np.ndarray) -> np.ndarray:
    ok = np.isfinite(r)
    res = least_squares(
        lambda x: np.linalg.norm(x - anchors[ok], axis=1) - r[ok], start, xtol=1e-12, ftol=1e-12, gtol=1e-12
    )
    return res.x


def test_returns_fixes_with_documented_shapes_and_dtypes():
    rng = np.random.default_rng(0)
    tags = random_tags(rng, 5)
    fixes = trilaterate(HALL, true_ranges(HALL, tags))
    assert isinstance(fixes, Fixes)
    assert fixes.position.shape == (5, 3) and fixes.position.dtype == np.float64
    assert fixes.rms.shape == (5,) and fixes.rms.dtype == np.float64
    assert fixes.used.shape == (5,) and fixes.used.dtype == np.int32
    assert fixes.valid.shape == (5,) and fixes.valid.dtype == np.bool_
    assert fixes.gdop.shape == (5,) and fixes.gdop.dtype == np.float64


@pytest.mark.parametrize("parallel", [True, False])
def test_noiseless_ranges_recover_the_position_exactly_in_3d(parallel):
    rng = np.random.default_rng(1)
    tags = random_tags(rng, 2000)
    fixes = trilaterate(HALL, true_ranges(HALL, tags), parallel=parallel)
    assert fixes.valid.all()
    np.testing.assert_allclose(fixes.position, tags, atol=1e-6)
    assert (fixes.used == len(HALL)).all()
    assert fixes.rms.max() < 1e-6


def test_noiseless_ranges_recover_the_position_exactly_for_random_anchor_layouts():
    rng = np.random.default_rng(2)
    for _ in range(30):
        k = int(rng.integers(4, 12))
        anchors = np.column_stack([rng.uniform(-50, 50, k), rng.uniform(-50, 50, k), rng.uniform(0, 15, k)])
        tags = np.column_stack([rng.uniform(-40, 40, 50), rng.uniform(-40, 40, 50), rng.uniform(0, 15, 50)])
        fixes = trilaterate(anchors, true_ranges(anchors, tags), sigma=SIGMA)
        assert fixes.valid.mean() > 0.9
        err = np.linalg.norm(fixes.position - tags, axis=1)[fixes.valid]
        # Exact, or (flat layouts, where a mirror solution fits too) never more confident than it should be.
        assert ((err < 1e-6) | (err <= SIGMA * fixes.gdop[fixes.valid])).all()
        assert (err < 1e-6).mean() > 0.8


def test_noiseless_ranges_recover_the_position_exactly_in_2d_with_tag_height():
    rng = np.random.default_rng(3)
    tags = random_tags(rng, 1000)
    fixes = trilaterate(HALL, true_ranges(HALL, tags), dims=2, tag_height=tags[:, 2])
    assert fixes.valid.all()
    np.testing.assert_allclose(fixes.position, tags, atol=1e-6)


def test_agrees_with_scipy_least_squares_on_random_noisy_inputs():
    rng = np.random.default_rng(4)
    n = 300
    tags = random_tags(rng, n)
    ranges = true_ranges(HALL, tags) + rng.normal(0, SIGMA, (n, len(HALL)))
    ranges[rng.random(ranges.shape) < 0.1] = np.nan  # some missing measurements
    fixes = trilaterate(HALL, ranges, sigma=SIGMA)
    assert fixes.valid.all()
    n_all = 0
    for i in range(n):
        ok = np.isfinite(ranges[i])
        assert fixes.used[i] <= ok.sum()
        if fixes.used[i] < ok.sum():
            continue
        # No anchor rejected: the plain least-squares minimum over all ranges.
        n_all += 1

        def cost(x, ok=ok, r=ranges[i]):
            return np.sum((np.linalg.norm(x - HALL[ok], axis=1) - r[ok]) ** 2)

        ref = scipy_fix(HALL, ranges[i], tags[i])
        # Never a worse minimum than scipy started at the truth; where the geometry pins the tag down,
        # the same point (with a few missing anchors z can have two minima, and ours may be the lower).
        assert cost(fixes.position[i]) <= cost(ref) * (1 + 1e-6) + 1e-12
        if fixes.gdop[i] < 10:
            np.testing.assert_allclose(fixes.position[i], ref, atol=1e-4)  # 10x the solver's tolerance
        assert fixes.rms[i] == pytest.approx(np.sqrt(cost(fixes.position[i]) / ok.sum()), rel=1e-9)
    assert n_all > 0.95 * n


def test_gdop_matches_the_geometry_of_the_anchors_used():
    rng = np.random.default_rng(5)
    tags = random_tags(rng, 50)
    fixes = trilaterate(HALL, true_ranges(HALL, tags))
    for tag, g in zip(tags, fixes.gdop):
        assert g == pytest.approx(np.sqrt(crlb_trace(HALL, tag, 1.0)), rel=1e-9)
    fixes2 = trilaterate(HALL, true_ranges(HALL, tags), dims=2, tag_height=tags[:, 2])
    for tag, g in zip(tags, fixes2.gdop):
        assert g == pytest.approx(np.sqrt(crlb_trace(HALL, tag, 1.0, dims=2)), rel=1e-9)


@pytest.mark.parametrize("n_anchors", [6, 8])
def test_los_position_rmse_is_within_10_percent_of_the_cramer_rao_bound(n_anchors):
    rng = np.random.default_rng(6)
    anchors = HALL[:n_anchors] if n_anchors == 8 else HALL[[0, 1, 2, 3, 4, 7]]
    spots = np.array([[15.0, 10.0, 1.2], [5.0, 4.0, 0.5], [25.0, 15.0, 1.8], [10.0, 16.0, 1.0]])
    per_spot = 2500  # 10,000 fixes in all
    sq_err = []
    bound = []
    for spot in spots:
        ranges = true_ranges(anchors, np.repeat(spot[None], per_spot, 0))
        ranges += rng.normal(0, SIGMA, ranges.shape)
        fixes = trilaterate(anchors, ranges, sigma=SIGMA)
        assert fixes.valid.all()
        sq_err.append(np.sum((fixes.position - spot) ** 2, axis=1))
        bound.append(crlb_trace(anchors, spot, SIGMA))
    rmse = np.sqrt(np.mean(np.concatenate(sq_err)))
    crlb_rmse = np.sqrt(np.mean(bound))
    assert rmse == pytest.approx(crlb_rmse, rel=0.10)


def nlos_ranges(rng: np.random.Generator, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LOS Gaussian noise plus, on 0-2 of the ranges of each fix, a positive NLOS excess: gamma with mean
    0.22 m, sd 0.38 m (p95 ~0.97 m, as measured in an industrial hall) or, one time in four, a gross
    +0.3..+3 m."""
    n, k = clean.shape
    ranges = clean + rng.normal(0, SIGMA, clean.shape)
    n_bad = rng.integers(0, 3, n)
    shape = (0.22 / 0.38) ** 2
    scale = 0.38**2 / 0.22
    biased = np.zeros(clean.shape, dtype=bool)
    for i in range(n):
        cols = rng.choice(k, n_bad[i], replace=False)
        gross = rng.random(n_bad[i]) < 0.25
        excess = np.where(gross, rng.uniform(0.3, 3.0, n_bad[i]), rng.gamma(shape, scale, n_bad[i]))
        ranges[i, cols] += excess
        biased[i, cols] = True
    return ranges, biased


def test_nlos_biased_ranges_are_rejected_so_horizontal_error_stays_near_los():
    rng = np.random.default_rng(7)
    n = 10_000
    tags = random_tags(rng, n)
    clean = true_ranges(HALL, tags)
    los = trilaterate(HALL, clean + rng.normal(0, SIGMA, clean.shape), sigma=SIGMA)
    ranges, _ = nlos_ranges(rng, clean)
    fixes = trilaterate(HALL, ranges, sigma=SIGMA)
    los_h = np.linalg.norm(los.position[:, :2] - tags[:, :2], axis=1)
    h = np.linalg.norm(fixes.position[:, :2] - tags[:, :2], axis=1)
    assert fixes.valid.mean() >= 0.99
    h = h[fixes.valid]
    assert np.median(h) < 2.0 * np.median(los_h)
    assert np.percentile(h, 95) < 0.5
    # And the rejection did something: fixes with gross errors used fewer anchors.
    gross = (ranges - clean > 0.6).any(axis=1)
    assert fixes.used[gross].mean() < len(HALL) - 0.8


def test_greedy_rejection_handles_more_anchors_than_the_exhaustive_limit():
    rng = np.random.default_rng(8)
    anchors = np.vstack([HALL, [[8.0, -3.0, 5.0], [22.0, 23.0, 3.0], [-3.0, 3.0, 4.5], [33.0, 17.0, 6.0]]])
    n = 2000
    tags = random_tags(rng, n)
    clean = true_ranges(anchors, tags)
    ranges = clean + rng.normal(0, SIGMA, clean.shape)
    ranges[:, 2] += 2.0  # one anchor 2 m long for everyone
    ranges[: n // 2, 9] += 1.0  # and a second for half the tags
    fixes = trilaterate(anchors, ranges, sigma=SIGMA)
    assert fixes.valid.all()
    h = np.linalg.norm(fixes.position[:, :2] - tags[:, :2], axis=1)
    assert np.percentile(h, 95) < 0.3
    assert (fixes.used[: n // 2] <= len(anchors) - 2).mean() > 0.95
    # The exhaustive path on the same first 8 anchors agrees in quality with the greedy one there.
    eight = trilaterate(anchors[:8], ranges[:, :8], sigma=SIGMA, exhaustive_max=0)
    h8 = np.linalg.norm(eight.position[:, :2] - tags[:, :2], axis=1)
    assert np.percentile(h8[eight.valid], 95) < 0.3


def test_2d_mode_beats_3d_when_anchor_heights_do_not_observe_z():
    rng = np.random.default_rng(9)
    # Anchors on walls at 2.0-2.3 m, tags at 1.0-1.6 m: lines of sight are nearly horizontal.
    anchors = HALL.copy()
    anchors[:, 2] = [2.0, 2.3, 2.1, 2.2, 2.05, 2.25, 2.15, 2.3]
    n = 3000
    tags = np.column_stack([rng.uniform(2, 28, n), rng.uniform(2, 18, n), rng.uniform(1.0, 1.6, n)])
    clean = true_ranges(anchors, tags)
    exact2 = trilaterate(anchors, clean, dims=2, tag_height=tags[:, 2])
    assert exact2.valid.all()
    np.testing.assert_allclose(exact2.position, tags, atol=1e-6)
    noisy = clean + rng.normal(0, SIGMA, clean.shape)
    f3 = trilaterate(anchors, noisy, sigma=SIGMA)
    f2 = trilaterate(anchors, noisy, sigma=SIGMA, dims=2, tag_height=tags[:, 2])
    assert np.median(f3.gdop[f3.valid]) > 5.0  # z is poorly observed, and gdop says so
    assert np.median(f2.gdop) < 1.0
    h3 = np.linalg.norm(f3.position[f3.valid, :2] - tags[f3.valid, :2], axis=1)
    h2 = np.linalg.norm(f2.position[:, :2] - tags[:, :2], axis=1)
    assert np.sqrt(np.mean(h2**2)) < np.sqrt(np.mean(h3**2))
    assert np.sqrt(np.mean(h2**2)) == pytest.approx(SIGMA * np.sqrt(np.mean(f2.gdop**2)), rel=0.1)


def test_nearly_coplanar_anchors_in_3d_report_the_mirror_ambiguity_in_gdop():
    anchors = HALL.copy()
    anchors[:, 2] = 6.0 + np.array([0.0, 0.01, -0.01, 0.02, 0.0, -0.02, 0.01, 0.0])
    tags = np.array([[10.0, 8.0, 1.2], [20.0, 12.0, 1.5]])
    clean = true_ranges(anchors, tags)
    fixes = trilaterate(anchors, clean, sigma=SIGMA)
    # Below the anchors is chosen; the mirror ~9.6 m above fits as well, and gdop covers it.
    assert fixes.valid.all()
    np.testing.assert_allclose(fixes.position, tags, atol=1e-6)
    separation = 2 * (6.0 - tags[:, 2])
    assert (fixes.gdop >= 0.9 * separation / SIGMA).all()
    f2 = trilaterate(anchors, clean, dims=2, tag_height=tags[:, 2])
    np.testing.assert_allclose(f2.position, tags, atol=1e-6)
    assert (f2.gdop < 1.0).all()


def test_exactly_coplanar_anchors_give_no_3d_fix_but_a_2d_one():
    anchors = HALL.copy()
    anchors[:, 2] = 5.0
    tags = np.array([[10.0, 8.0, 1.2], [20.0, 12.0, 1.5]])
    fixes = trilaterate(anchors, true_ranges(anchors, tags))
    assert not fixes.valid.any()
    assert np.isnan(fixes.position).all()
    f2 = trilaterate(anchors, true_ranges(anchors, tags), dims=2, tag_height=tags[:, 2])
    assert f2.valid.all()
    np.testing.assert_allclose(f2.position, tags, atol=1e-6)


def test_collinear_anchors_give_no_fix_in_2d_or_3d():
    anchors = np.array(
        [[0.0, 0.0, 3.0], [10.0, 0.0, 4.0], [20.0, 0.0, 5.0], [30.0, 0.0, 6.0], [40.0, 0.0, 7.0]]
    )
    tags = np.array([[10.0, 8.0, 1.2]])
    r = true_ranges(anchors, tags)
    assert not trilaterate(anchors, r).valid.any()
    # Projected on the floor they are collinear too: left-right of the line is ambiguous.
    assert not trilaterate(anchors, r, dims=2, tag_height=1.2).valid.any()


def test_too_few_ranges_give_no_fix():
    rng = np.random.default_rng(10)
    tags = random_tags(rng, 3)
    r = true_ranges(HALL, tags)
    r[0, 3:] = np.nan  # 3 ranges: enough in 2D, not in 3D
    r[1, :] = np.nan  # none
    r[2, 2:] = np.nan  # 2 ranges: enough for neither
    f3 = trilaterate(HALL, r)
    assert f3.valid.tolist() == [False, False, False]
    assert np.isnan(f3.position).all()
    assert f3.used.tolist() == [3, 0, 2]
    f2 = trilaterate(HALL, r, dims=2, tag_height=tags[:, 2])
    assert f2.valid.tolist() == [True, False, False]
    np.testing.assert_allclose(f2.position[0], tags[0], atol=1e-6)


def test_missing_and_negative_ranges_are_left_out():
    rng = np.random.default_rng(11)
    tags = random_tags(rng, 200)
    r = true_ranges(HALL, tags)
    r[::2, 0] = np.nan
    r[1::4, 1] = -1.0
    r[3::4, 5] = np.inf
    fixes = trilaterate(HALL, r)
    assert fixes.valid.all()
    np.testing.assert_allclose(fixes.position, tags, atol=1e-6)
    expect = np.isfinite(r).sum(axis=1) - (r < 0).sum(axis=1)
    np.testing.assert_array_equal(fixes.used, expect)


def test_serial_and_parallel_give_identical_fixes():
    rng = np.random.default_rng(12)
    tags = random_tags(rng, 3000)
    ranges, _ = nlos_ranges(rng, true_ranges(HALL, tags))
    a = trilaterate(HALL, ranges, parallel=True)
    b = trilaterate(HALL, ranges, parallel=False)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_empty_batch_returns_empty_arrays():
    fixes = trilaterate(HALL, np.empty((0, len(HALL))))
    assert fixes.position.shape == (0, 3) and fixes.valid.shape == (0,)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"anchors": np.zeros((4, 2))}, "anchors"),
        ({"ranges": np.zeros((3, 5))}, "ranges"),
        ({"ranges": np.zeros(8)}, "ranges"),
        ({"dims": 2}, "tag_height"),
        ({"dims": 3, "tag_height": 1.2}, "tag_height"),
        ({"dims": 4}, "dims"),
        ({"sigma": 0.0}, "sigma"),
        ({"anchors": np.where(np.eye(8, 3) > 0, np.nan, HALL)}, "finite"),
    ],
)
def test_bad_inputs_raise_value_error(kwargs, message):
    args = {"anchors": HALL, "ranges": np.ones((3, 8))}
    args.update(kwargs)
    anchors = args.pop("anchors")
    ranges = args.pop("ranges")
    with pytest.raises(ValueError, match=message):
        trilaterate(anchors, ranges, **args)


def test_arbitrary_inputs_never_raise_and_valid_fixes_are_finite():
    rng = np.random.default_rng(13)
    for trial in range(100):
        k = int(rng.integers(1, 14))
        anchors = rng.normal(0, rng.choice([1e-3, 1.0, 50.0, 1e4]), (k, 3))
        if trial % 5 == 0:
            anchors[:] = anchors[0]  # every anchor in one place
        ranges = np.abs(rng.normal(0, rng.choice([1e-3, 1.0, 50.0, 1e5]), (20, k)))
        ranges[rng.random(ranges.shape) < 0.2] = np.nan
        ranges[rng.random(ranges.shape) < 0.05] = 0.0
        for kwargs in ({}, {"dims": 2, "tag_height": 1.0}, {"exhaustive_max": 0}):
            fixes = trilaterate(anchors, ranges, **kwargs)
            assert np.isfinite(fixes.position[fixes.valid]).all()
            assert np.isnan(fixes.position[~fixes.valid]).all()
            assert (fixes.gdop[fixes.valid] <= 1000.0).all()
