"""Vibration features from acceleration waveforms (pure functions over arrays).

Band-limited RMS velocity per ISO 20816-3: the acceleration spectrum is integrated in the frequency domain
(V(f) = A(f) / (j 2 pi f)) and only the bins inside ``band_hz`` (10-1000 Hz by default) are summed by
Parseval's theorem. No window: a waveform holding whole cycles gives the exact RMS of a sine.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rms_velocity_mm_s"]


def rms_velocity_mm_s(accel_m_s2: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = (10.0, 1000.0)
                      ) -> np.ndarray:
    """RMS velocity in mm/s of each waveform row.

    accel_m_s2: float64 [..., n] acceleration in m/s^2, one waveform per row, sampled at ``fs_hz``.
    Returns float64 [...]. The mean (DC) is removed; bins outside ``band_hz`` are ignored.
    """
    a = np.asarray(accel_m_s2, dtype=np.float64)
    n = a.shape[-1]
    if n < 8:
        raise ValueError(f"waveform of {n} samples is too short")
    if not fs_hz > 0:
        raise ValueError(f"sample rate must be positive, got {fs_hz}")
    spec = np.fft.rfft(a - a.mean(axis=-1, keepdims=True), axis=-1)
    f = np.fft.rfftfreq(n, d=1.0 / fs_hz)
    lo, hi = band_hz
    sel = (f >= lo) & (f <= hi) & (f > 0)
    v = spec[..., sel] / (2j * np.pi * f[sel])
    # one-sided Parseval: rms^2 = (2 / n^2) * sum |V_k|^2 for 0 < k < n/2 (the Nyquist bin counts once)
    weight = np.where(np.isclose(f[sel], fs_hz / 2), 1.0, 2.0)
    rms_m_s = np.sqrt(np.sum(weight * np.abs(v) ** 2, axis=-1)) / n
    return rms_m_s * 1000.0
