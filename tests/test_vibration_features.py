"""Waveform features (peak, crest factor, kurtosis, dominant line) against theory and scipy.

Known answers: a sine has crest factor sqrt(2) and Pearson kurtosis 3/2 (E[sin^4] / E[sin^2]^2 = (3/8) / (1/4));
Gaussian noise has kurtosis 3 and, over n samples, a largest |x| of about sqrt(2 ln n) sigma (~4 for n = 5120);
impacts (a bearing defect) put weight in the tails and raise both.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats

from kernels.vibration import VibrationFeatures, features, rms_velocity_mm_s

FS, N = 5120.0, 5120  # 1 s: bins 1 Hz apart
T = np.arange(N) / FS


def tone(f_hz: float, v_rms_mm_s: float, phase: float = 0.0) -> np.ndarray:
    """Acceleration m/s^2 of a velocity sinusoid of RMS v at f: a = sqrt(2) v 2 pi f cos(2 pi f t + phase)."""
    return math.sqrt(2) * v_rms_mm_s / 1000 * 2 * math.pi * f_hz * np.cos(2 * math.pi * f_hz * T + phase)


@pytest.mark.parametrize("f_hz, v_mm_s", [(24.0, 1.5), (50.0, 4.5), (400.0, 11.0), (999.0, 3.0)])
def test_whole_cycle_sine_has_crest_root_two_kurtosis_one_and_a_half_and_is_its_own_dominant_line(
    f_hz, v_mm_s
):
    r = features(tone(f_hz, v_mm_s), FS)
    a_peak = math.sqrt(2) * v_mm_s / 1000 * 2 * math.pi * f_hz
    assert r.rms_mm_s == pytest.approx(v_mm_s, rel=0.02)
    assert r.peak_m_s2 == pytest.approx(a_peak, rel=1e-9)  # cos(0) is sampled: the peak itself
    assert r.crest == pytest.approx(math.sqrt(2), rel=1e-9)
    assert r.kurtosis == pytest.approx(1.5, rel=1e-9)
    assert r.dominant_hz == pytest.approx(f_hz, abs=1e-6)
    assert r.dominant_mm_s == pytest.approx(v_mm_s, rel=1e-6)


@pytest.mark.parametrize("f_hz", [37.3, 123.4, 160.7, 555.55])
def test_a_sine_between_bins_is_located_within_a_twentieth_of_a_bin_and_its_level_within_one_percent(f_hz):
    r = features(tone(f_hz, 2.5, phase=0.7), FS)
    assert r.dominant_hz == pytest.approx(f_hz, abs=0.05)  # bins are 1 Hz apart
    assert r.dominant_mm_s == pytest.approx(2.5, rel=0.01)
    assert r.rms_mm_s == pytest.approx(2.5, rel=0.02)
    assert r.kurtosis == pytest.approx(1.5, rel=0.01)
    assert r.crest == pytest.approx(math.sqrt(2), rel=0.01)


def test_gaussian_noise_has_kurtosis_three_and_crest_between_three_and_five():
    rng = np.random.default_rng(20816)
    x = rng.normal(0.0, 0.3, (8, N))
    r = features(x, FS)
    # the kurtosis estimate of n Gaussian samples has standard deviation sqrt(24 / n) = 0.068
    assert np.all(np.abs(r.kurtosis - 3.0) < 0.3)
    assert np.mean(r.kurtosis) == pytest.approx(3.0, abs=0.1)
    assert np.all((r.crest > 3.0) & (r.crest < 5.0))
    assert np.mean(r.crest) == pytest.approx(math.sqrt(2 * math.log(N)), abs=0.5)


def test_dominant_line_of_two_tones_is_the_larger_velocity():
    r = features(tone(50.0, 2.0) + tone(161.3, 4.0, phase=1.0), FS)
    assert r.dominant_hz == pytest.approx(161.3, abs=0.05)
    assert r.dominant_mm_s == pytest.approx(4.0, rel=0.01)
    assert r.rms_mm_s == pytest.approx(math.hypot(2.0, 4.0), rel=0.02)


def test_dominant_line_is_chosen_in_velocity_not_in_acceleration():
    # 25 Hz at 3 mm/s is 0.47 m/s^2 RMS; 400 Hz at 1 mm/s is 2.5 m/s^2: the velocity spectrum peaks at 25 Hz
    r = features(tone(25.0, 3.0) + tone(400.0, 1.0), FS)
    assert r.dominant_hz == pytest.approx(25.0, abs=1e-6)
    assert r.dominant_mm_s == pytest.approx(3.0, rel=1e-6)


def test_lines_outside_the_band_are_not_dominant():
    slow = 5.0 * np.cos(2 * math.pi * 3.0 * T)  # 3 Hz: 265 mm/s of velocity, below 10 Hz
    fast = tone(2000.0, 50.0)  # above 1000 Hz
    r = features(slow + fast + tone(120.0, 1.0), FS)
    assert r.dominant_hz == pytest.approx(120.0, abs=1e-6)
    assert r.dominant_mm_s == pytest.approx(1.0, rel=0.01)
    wide = features(slow + fast + tone(120.0, 1.0), FS, band_hz=(10.0, 2500.0))
    assert wide.dominant_hz == pytest.approx(2000.0, abs=1e-6)


def test_impacts_of_a_bearing_defect_raise_kurtosis_and_crest():
    rng = np.random.default_rng(7)
    base = tone(24.75, 1.5) + rng.normal(0.0, 0.02, N)
    bpfo = 3.037 * 24.75  # outer race of a 6309 at 1485 rpm
    since = np.mod(T, 1.0 / bpfo)  # time since the last ball passed the defect
    impacts = 8.0 * np.exp(-since / 0.002) * np.sin(2 * math.pi * 2300.0 * since)  # ringing resonance
    healthy, faulty = features(base, FS), features(base + impacts, FS)
    assert healthy.kurtosis == pytest.approx(1.5, abs=0.05)
    assert faulty.kurtosis > 6.0
    assert faulty.crest > 2 * healthy.crest


def test_simulated_bearing_degradation_shows_in_kurtosis_before_the_overall_level(demo_site):
    from ingest.simulator.vibration import FS_HZ, VibrationBank

    bank = VibrationBank(
        demo_site, 1, frozenset({"bearing_degradation"}), {"degradation_start_s": 0.0, "degradation_s": 100.0}
    )
    vp04 = [p.id for p in demo_site.vibration_points].index("VP04")
    healthy, early, late = (features(bank.waveform(vp04, t), FS_HZ) for t in (0.0, 30.0, 100.0))
    assert healthy.kurtosis < 2.5  # 1x, 2x, 3x together: about 2
    # severity 0.16: impacts already make the waveform impulsive while the overall is still zone B
    assert early.kurtosis > 3.0 and early.crest > 1.5 * healthy.crest
    assert early.rms_mm_s < 2.8
    assert late.rms_mm_s > 4.5 > healthy.rms_mm_s  # into zone D of group 2, rigid
    bpfo = 3.037 * 24.75
    assert late.dominant_hz == pytest.approx(bpfo, abs=0.1)  # BPFO at 5 mm/s outgrows 1x
    assert late.dominant_mm_s == pytest.approx(5.0, rel=0.05)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_time_statistics_match_scipy_and_numpy_on_random_rows(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(64, 3000))
    x = np.concatenate(
        [
            rng.normal(9.81, 0.5, (3, n)),  # a DC offset (gravity on a MEMS sensor) costs no precision
            rng.standard_t(3.0, (3, n)),  # heavy tails
            rng.uniform(-1.0, 1.0, (2, n)) ** 3,
        ]
    ).reshape(2, 4, n)
    r = features(x, 2000.0)
    assert isinstance(r, VibrationFeatures) and r.kurtosis.shape == (2, 4)
    d = x - x.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        r.kurtosis, scipy.stats.kurtosis(x, axis=-1, fisher=False, bias=True), rtol=1e-9
    )
    np.testing.assert_allclose(r.peak_m_s2, np.abs(d).max(axis=-1), rtol=1e-12)
    np.testing.assert_allclose(r.crest, np.abs(d).max(axis=-1) / x.std(axis=-1), rtol=1e-9)
    np.testing.assert_allclose(r.rms_mm_s, rms_velocity_mm_s(x, 2000.0), rtol=1e-12)


def test_float32_rows_and_a_single_row_give_the_same_features():
    x = (tone(80.0, 2.0) + np.random.default_rng(3).normal(0, 0.05, N)).astype("<f4")
    one = features(x, FS)
    many = features(np.stack([x, x]), FS)
    assert np.shape(one.rms_mm_s) == () and many.rms_mm_s.shape == (2,)
    for a, b in zip(one, many):
        assert float(a) == pytest.approx(float(b[1]), rel=1e-12)


def test_a_constant_row_has_no_crest_kurtosis_or_dominant_line():
    r = features(np.full((2, 256), 9.81), 1000.0)
    assert np.all(r.rms_mm_s == 0.0) and np.all(r.peak_m_s2 == 0.0)
    for field in (r.crest, r.kurtosis, r.dominant_hz, r.dominant_mm_s):
        assert np.all(np.isnan(field))


@pytest.mark.parametrize(
    "args, reason",
    [
        ((np.zeros(4), 1000.0), "too short"),
        ((np.zeros(64), 0.0), "sample rate"),
        ((np.zeros(64), 1000.0, (100.0, 50.0)), "band"),
    ],
)
def test_bad_inputs_are_refused_with_the_reason(args, reason):
    with pytest.raises(ValueError, match=reason):
        features(*args)
