"""kernels.tracking: the constant-velocity Kalman filter against a matrix reference and against its own
covariance (NEES), gating of jumps, track restarts and the stationary detector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.tracking import (
    GATE_CHI2_2DOF_999,
    init_tracks,
    measurement_sigma,
    predict,
    stationary,
    update,
)


def reference_matrices(dt: float, q: float) -> tuple[np.ndarray, np.ndarray]:
    f = np.eye(4)
    f[0, 2] = f[1, 3] = dt
    block = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    qm = np.zeros((4, 4))
    qm[np.ix_([0, 2], [0, 2])] = block
    qm[np.ix_([1, 3], [1, 3])] = block
    return f, qm


def random_spd(rng: np.random.Generator, n: int) -> np.ndarray:
    a = rng.normal(size=(n, 4, 4))
    return a @ a.transpose(0, 2, 1) + 0.1 * np.eye(4)


def test_predict_and_update_match_the_textbook_matrix_form():
    rng = np.random.default_rng(0)
    n = 50
    state = rng.normal(size=(n, 4))
    cov = random_spd(rng, n)
    dt = rng.uniform(0.01, 2.0, n)
    q = 0.7
    s1, p1 = predict(state, cov, dt, accel_psd=q)
    xy = state[:, :2] + rng.normal(0, 0.3, (n, 2))
    sig = rng.uniform(0.05, 0.5, n)
    s2, p2, misses, gated, d2 = update(s1, p1, xy, sig, np.zeros(n, np.int32), gate=1e9)
    h = np.eye(2, 4)
    for i in range(n):
        f, qm = reference_matrices(dt[i], q)
        x = f @ state[i]
        p = f @ cov[i] @ f.T + qm
        np.testing.assert_allclose(s1[i], x, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(p1[i], p, rtol=1e-10, atol=1e-12)
        s = h @ p @ h.T + sig[i] ** 2 * np.eye(2)
        k = p @ h.T @ np.linalg.inv(s)
        nu = xy[i] - h @ x
        np.testing.assert_allclose(s2[i], x + k @ nu, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(p2[i], (np.eye(4) - k @ h) @ p, rtol=1e-8, atol=1e-10)
        assert d2[i] == pytest.approx(nu @ np.linalg.solve(s, nu), rel=1e-10)
    assert not gated.any() and (misses == 0).all()
    # Pure functions: the inputs are untouched.
    s0, p0 = predict(state, cov, 0.0)
    np.testing.assert_array_equal(s0, state)
    np.testing.assert_array_equal(p0, cov)


def simulate_white_acceleration(rng, n_tags, n_steps, q, meas_sigma):
    """Truth drawn from the filter's own motion model with irregular steps, and noisy fixes."""
    truth = np.zeros((n_tags, 4))
    truth[:, :2] = rng.uniform(0, 100, (n_tags, 2))
    truth[:, 2:] = rng.normal(0, 1.0, (n_tags, 2))
    steps = []
    for _ in range(n_steps):
        dt = rng.uniform(0.05, 0.3, n_tags)
        new = np.empty_like(truth)
        for i in range(n_tags):
            f, qm = reference_matrices(dt[i], q)
            new[i] = f @ truth[i] + rng.multivariate_normal(np.zeros(4), qm)
        truth = new
        steps.append((dt, truth.copy(), truth[:, :2] + rng.normal(0, meas_sigma, (n_tags, 2))))
    return steps


def test_filter_covariance_is_consistent_with_its_errors_nees_near_4():
    rng = np.random.default_rng(1)
    q, meas_sigma, n_tags = 0.5, 0.1, 200
    state, cov = init_tracks(n_tags)
    misses = np.zeros(n_tags, np.int32)
    nees = []
    for step, (dt, truth, xy) in enumerate(simulate_white_acceleration(rng, n_tags, 150, q, meas_sigma)):
        state, cov = predict(state, cov, dt, accel_psd=q)
        state, cov, misses, _, _ = update(state, cov, xy, meas_sigma, misses)
        if step >= 50:
            err = state - truth
            nees.append(np.einsum("ni,nij,nj->n", err, np.linalg.inv(cov), err))
    nees = np.concatenate(nees)
    # E[NEES] = 4 (state dimension) for a consistent filter; 20,000 samples, correlated in time.
    assert np.mean(nees) == pytest.approx(4.0, rel=0.1)


def steady_state_covariance(dt: float, q: float, meas_sigma: float) -> np.ndarray:
    """Posterior covariance the filter converges to at a fixed step: the discrete Riccati fixed point."""
    from scipy.linalg import solve_discrete_are

    f, qm = reference_matrices(dt, q)
    h = np.eye(2, 4)
    r = meas_sigma**2 * np.eye(2)
    prior = solve_discrete_are(f.T, h.T, qm, r)
    return prior - prior @ h.T @ np.linalg.inv(h @ prior @ h.T + r) @ h @ prior


def test_constant_velocity_track_converges_to_the_riccati_steady_state():
    rng = np.random.default_rng(2)
    v = np.array([1.2, -0.5])
    q = 0.02  # the target really keeps its velocity: little process noise
    state, cov = init_tracks(1)
    misses = np.zeros(1, np.int32)
    pos = np.array([10.0, 20.0])
    n_gated = 0
    for _ in range(400):  # about 40 s at an irregular ~10 Hz
        dt = rng.uniform(0.05, 0.15)
        pos = pos + v * dt
        state, cov = predict(state, cov, dt, accel_psd=q)
        z = (pos + rng.normal(0, 0.1, 2))[None]
        state, cov, misses, gated, _ = update(state, cov, z, 0.1, misses)
        n_gated += int(gated.sum())
    assert n_gated <= 3  # the gate rejects 1 in 1,000 good fixes
    sd = np.sqrt(np.diag(cov[0]))
    sd_theory = np.sqrt(np.diag(steady_state_covariance(0.1, q, 0.1)))
    np.testing.assert_allclose(sd, sd_theory, rtol=0.3)
    assert sd[0] < 0.1  # better than a single fix
    err = state[0] - np.r_[pos, v]
    assert (np.abs(err) < 4 * sd).all()


def test_a_20_m_jump_is_gated_counted_and_after_repeated_jumps_the_track_restarts():
    n = 3
    state, cov = init_tracks(n)
    misses = np.zeros(n, np.int32)
    xy = np.array([[0.0, 0.0], [50.0, 50.0], [100.0, 0.0]])
    for _ in range(30):
        state, cov = predict(state, cov, 0.1)
        state, cov, misses, gated, _ = update(state, cov, xy, 0.1, misses)
    jumped = xy.copy()
    jumped[1, 0] += 20.0
    counted = 0
    for k in range(4):
        state, cov = predict(state, cov, 0.1)
        state, cov, misses, gated, d2 = update(state, cov, jumped, 0.1, misses, reset_after=5)
        assert gated.tolist() == [False, True, False]
        assert d2[1] > GATE_CHI2_2DOF_999
        counted += int(gated.sum())
        assert misses[1] == k + 1
        assert abs(state[1, 0] - 50.0) < 1.0  # the track stayed where it was
    assert counted == 4
    state, cov = predict(state, cov, 0.1)
    state, cov, misses, gated, _ = update(state, cov, jumped, 0.1, misses, reset_after=5)
    assert not gated[1] and misses[1] == 0
    assert state[1, 0] == pytest.approx(70.0) and state[1, 2] == 0.0


def test_missing_fixes_leave_tracks_alone_and_first_fixes_start_them():
    state, cov = init_tracks(2)
    misses = np.zeros(2, np.int32)
    xy = np.array([[1.0, 2.0], [np.nan, np.nan]])
    state, cov, misses, gated, d2 = update(state, cov, xy, np.array([0.1, 0.1]), misses)
    assert state[0].tolist() == [1.0, 2.0, 0.0, 0.0]
    assert cov[0, 0, 0] == pytest.approx(0.01) and cov[0, 2, 2] == pytest.approx(1.5**2)
    assert np.isnan(state[1]).all() and not gated.any() and np.isnan(d2).all()
    before = state.copy()
    state, cov = predict(state, cov, np.array([-1.0, 0.5]))  # a negative step is ignored
    np.testing.assert_array_equal(state[0], before[0])


def test_stationary_flag_rises_after_hold_time_and_clears_when_moving_again():
    rng = np.random.default_rng(3)
    hold = 10.0
    state, cov = init_tracks(1)
    misses = np.zeros(1, np.int32)
    since = np.full(1, np.nan)
    spot = np.full((1, 2), np.nan)
    pos = np.array([0.0, 0.0])
    t = 0.0
    stop_at, move_at = 20.0, 60.0
    first_flag = None
    cleared = None
    while t < 80.0:
        dt = rng.uniform(0.08, 0.12)
        t += dt
        v = np.array([1.0, 0.3]) if (t < stop_at or t > move_at) else np.zeros(2)
        pos = pos + v * dt
        state, cov = predict(state, cov, dt)
        state, cov, misses, _, _ = update(state, cov, (pos + rng.normal(0, 0.1, 2))[None], 0.1, misses)
        flag, since, spot = stationary(state, t, since, spot, hold_s=hold)
        if t < stop_at:
            assert not flag[0]
        if flag[0] and first_flag is None:
            first_flag = t
            # The stop was noticed within a few seconds (filter lag), and the flag waited hold_s after it.
            assert stop_at - 0.5 <= since[0] < stop_at + 3.0
            assert np.linalg.norm(spot[0] - pos) < 0.5
            assert t - since[0] == pytest.approx(hold, abs=0.2)
        if first_flag is not None and t < move_at:
            assert flag[0], "velocity noise must not restart the stationary clock"
        if t > move_at and not flag[0] and cleared is None:
            cleared = t
    assert first_flag is not None and cleared is not None
    assert cleared - move_at < 2.0
    assert np.isnan(since[0])


def test_measurement_sigma_scales_gdop_by_the_larger_of_sigma_and_rms():
    s = measurement_sigma(np.array([0.05, 0.4]), np.array([1.0, 2.0]), 0.1, 2)
    np.testing.assert_allclose(s, [0.1 / math.sqrt(2), 0.4 * 2 / math.sqrt(2)])


def test_inplace_updates_the_callers_arrays():
    state, cov = init_tracks(1)
    misses = np.zeros(1, np.int32)
    s, c, m, _, _ = update(state, cov, np.array([[1.0, 1.0]]), 0.1, misses, inplace=True)
    assert s is state and c is cov and m is misses
    assert state[0, 0] == 1.0


@pytest.mark.parametrize(
    "call",
    [
        lambda: predict(np.zeros((2, 3)), np.zeros((2, 4, 4)), 0.1),
        lambda: predict(np.zeros((2, 4)), np.zeros((3, 4, 4)), 0.1),
        lambda: predict(np.zeros((2, 4)), np.zeros((2, 4, 4)), np.zeros(3)),
        lambda: update(np.zeros((2, 4)), np.zeros((2, 4, 4)), np.zeros((2, 3)), 0.1, np.zeros(2, np.int32)),
        lambda: stationary(np.zeros((2, 4)), 0.0, np.zeros(3), np.zeros((2, 2))),
    ],
)
def test_bad_shapes_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
