"""The UWB adapter's tracker: filtering lowers the error of a walking tag, a jump is gated and counted,
two fixes of one tag in one batch are applied in time order, a still tag accumulates stationary time."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.tracker import TagTracker

FIX_NOISE_PER_AXIS = 0.1 / np.sqrt(2)


def walk(tracker, n_steps, dt=0.5, speed=1.3, noise=FIX_NOISE_PER_AXIS, seed=0):
    """A tag walking east; fixes with per-axis noise ``noise`` (gdop 1, sigma 0.1: 2D RMS 0.1 m)."""
    rng = np.random.default_rng(seed)
    raw_err, filt_err = [], []
    for k in range(n_steps):
        truth = np.array([[speed * k * dt, 20.0, 1.2]])
        fix = truth + np.append(rng.normal(0, noise, 2), 0.0)
        b = tracker.step(np.array([0]), np.array([k * dt]), fix, np.array([True]), np.array([0.1]),
                         np.array([1.0]))
        if k > 20:  # after convergence
            raw_err.append(np.hypot(*(fix[0, :2] - truth[0, :2])))
            filt_err.append(np.hypot(*(b.xy_m[0] - truth[0, :2])))
    return np.sqrt(np.mean(np.square(raw_err))), np.sqrt(np.mean(np.square(filt_err))), b


def steady_state_position_sigma(dt: float, q: float, r: float) -> float:
    """Per-axis posterior position standard deviation of the constant-velocity Kalman filter, from the
    discrete Riccati recursion (F = [[1, dt], [0, 1]], Q = q [[dt^3/3, dt^2/2], [dt^2/2, dt]], H = [1, 0])."""
    F = np.array([[1.0, dt], [0.0, 1.0]])
    Q = q * np.array([[dt**3 / 3, dt**2 / 2], [dt**2 / 2, dt]])
    P = np.eye(2) * 10.0
    for _ in range(500):
        P = F @ P @ F.T + Q
        k = P[:, 0] / (P[0, 0] + r * r)
        P = P - np.outer(k, P[0, :])
    return float(np.sqrt(P[0, 0]))


def test_filtered_walk_error_matches_the_kalman_steady_state_and_beats_the_raw_fixes():
    raw, filt, last = walk(TagTracker(1, range_sigma_m=0.1), 2000)
    assert raw == pytest.approx(0.1, rel=0.1)  # 2D RMS of two N(0, 0.1 / sqrt 2) axes
    # sigma_xy fed to the filter: max(sigma, rms) * gdop / sqrt(2) = 0.1 / sqrt(2) per axis
    theory = np.sqrt(2) * steady_state_position_sigma(0.5, 0.5, 0.1 / np.sqrt(2))
    assert filt == pytest.approx(theory, rel=0.15)
    assert filt < raw
    assert last.vel_m_s[0] == pytest.approx([1.3, 0.0], abs=0.25)
    assert np.isnan(last.stationary_s[0])


def test_a_twenty_metre_jump_is_gated_and_counted():
    t = TagTracker(1, range_sigma_m=0.1)
    walk(t, 40)
    b = t.step(np.array([0]), np.array([20.0]), np.array([[45.0, 20.0, 1.2]]), np.array([True]),
               np.array([0.1]), np.array([1.0]))
    assert b.gated[0] and t.gated_total == 1
    assert abs(b.xy_m[0, 0] - 1.3 * 20.0) < 1.0  # the track stayed where the walker is


def test_two_fixes_of_one_tag_in_a_batch_are_applied_in_time_order():
    t = TagTracker(2, range_sigma_m=0.1)
    b = t.step(np.array([0, 1, 0]), np.array([1.0, 1.0, 0.5]),
               np.array([[10.5, 0.0, 1.2], [50.0, 50.0, 1.2], [10.0, 0.0, 1.2]]),
               np.ones(3, bool), np.full(3, 0.1), np.full(3, 1.0))
    assert b.xy_m[2] == pytest.approx([10.0, 0.0])  # the t=0.5 fix started the track
    assert 10.0 < b.xy_m[0, 0] <= 10.5  # the t=1.0 fix moved it east
    assert t.last_ts[0] == 1.0


def test_a_tag_standing_still_accumulates_stationary_time_and_others_keep_theirs():
    t = TagTracker(2, range_sigma_m=0.1)
    rng = np.random.default_rng(3)
    for k in range(60):
        xyz = np.array([[30.0, 30.0, 1.2]]) + np.append(rng.normal(0, 0.05, 2), 0)
        b = t.step(np.array([0]), np.array([k * 0.5]), xyz, np.array([True]), np.array([0.1]), np.array([1.0]))
    assert b.stationary_s[0] == pytest.approx(29.5, abs=1.0)
    assert np.isnan(t.since[1])  # the tag never seen has no detector state
