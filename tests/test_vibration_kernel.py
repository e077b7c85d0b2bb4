"""Band-limited RMS velocity against the hand calculation for sines of known amplitude and frequency."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.vibration import rms_velocity_mm_s


@pytest.mark.parametrize("f_hz, v_rms_mm_s", [(24.75, 1.5), (50.0, 4.5), (400.0, 11.0)])
def test_sine_acceleration_gives_its_rms_velocity(f_hz, v_rms_mm_s):
    fs, n = 25_600.0, 25_600  # 1 s: whole cycles for these frequencies
    t = np.arange(n) / fs
    # v(t) = V sin(wt) with V = sqrt(2) v_rms  =>  a(t) = V w cos(wt)
    a = np.sqrt(2) * v_rms_mm_s / 1000 * 2 * np.pi * f_hz * np.cos(2 * np.pi * f_hz * t)
    assert rms_velocity_mm_s(a, fs) == pytest.approx(v_rms_mm_s, rel=0.02)


def test_out_of_band_components_are_ignored_and_rows_are_independent():
    fs, n = 5120.0, 5120
    t = np.arange(n) / fs
    inband = np.sqrt(2) * 2e-3 * 2 * np.pi * 100 * np.cos(2 * np.pi * 100 * t)  # 2 mm/s at 100 Hz
    slow = 5.0 * np.cos(2 * np.pi * 3 * t)  # 3 Hz, below 10 Hz
    rows = np.stack([inband, inband + slow, np.zeros(n)])
    got = rms_velocity_mm_s(rows, fs)
    assert got.shape == (3,)
    assert got[0] == pytest.approx(2.0, rel=0.01) and got[1] == pytest.approx(2.0, rel=0.01) and got[2] == 0.0
