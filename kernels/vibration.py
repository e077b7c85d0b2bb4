"""Vibration features from acceleration waveforms (pure functions over arrays).

Band-limited RMS velocity per ISO 20816-3: the acceleration spectrum is integrated in the frequency domain
(V(f) = A(f) / (j 2 pi f)) and only the bins inside ``band_hz`` (10-1000 Hz by default) are summed by
Parseval's theorem. No window: a waveform holding whole cycles gives the exact RMS of a sine.

:func:`features` adds the time-domain statistics a bearing fault shows first (peak, crest factor, kurtosis;
numba) and the dominant line of the velocity spectrum (Hann window, interpolated peak). docs/vibration.md has
the formulas.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

__all__ = ["rms_velocity_mm_s", "VibrationFeatures", "features", "time_stats", "dominant_line"]


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


class VibrationFeatures(NamedTuple):
    """Features of each waveform row; every field is float64 [...] (the input's leading shape).

    - ``rms_mm_s``: band-limited RMS velocity (ISO 20816-3 overall), mm/s (:func:`rms_velocity_mm_s`)
    - ``peak_m_s2``: largest absolute deviation of the acceleration from its mean (0-peak), m/s^2
    - ``crest``: ``peak_m_s2`` / RMS of the acceleration about its mean (sqrt(2) for a sine); NaN for a
      constant row
    - ``kurtosis``: Pearson kurtosis m4 / m2^2 of the acceleration (1.5 for a sine, 3 for Gaussian noise,
      higher for impacts); NaN for a constant row
    - ``dominant_hz``: frequency of the largest line of the velocity spectrum in the band, Hz (interpolated
      between bins); NaN when no bin lies in the band or the row is constant
    - ``dominant_mm_s``: RMS velocity of that line, mm/s
    """

    rms_mm_s: np.ndarray
    peak_m_s2: np.ndarray
    crest: np.ndarray
    kurtosis: np.ndarray
    dominant_hz: np.ndarray
    dominant_mm_s: np.ndarray


@njit(cache=True)
def time_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(peak, rms, kurtosis) float64 [m] of the rows of ``a`` float64 [m, n], all about the row mean.

    peak = max |x - mean| (0-peak); rms = sqrt(m2); kurtosis = m4 / m2^2 (Pearson, biased moments: what
    ``scipy.stats.kurtosis(fisher=False)`` gives); NaN where m2 == 0 (a constant row: also where the RMS is
    below 1e-12 of the mean, which is rounding of the mean, and peak and rms are then 0). Two passes (mean, then central moments)
    so a large DC offset (gravity on a MEMS sensor) costs no precision.
    """
    m, n = a.shape
    peak = np.empty(m)
    rms = np.empty(m)
    kurt = np.empty(m)
    for r in range(m):
        s = 0.0
        for i in range(n):
            s += a[r, i]
        mean = s / n
        m2 = 0.0
        m4 = 0.0
        pk = 0.0
        for i in range(n):
            d = a[r, i] - mean
            d2 = d * d
            m2 += d2
            m4 += d2 * d2
            ad = abs(d)
            if ad > pk:
                pk = ad
        m2 /= n
        m4 /= n
        if np.sqrt(m2) <= 1e-12 * abs(mean):
            # a constant row whose mean did not round exactly: what is left is rounding, not vibration
            m2, pk = 0.0, 0.0
        peak[r] = pk
        rms[r] = np.sqrt(m2)
        kurt[r] = m4 / (m2 * m2) if m2 > 0.0 else np.nan
    return peak, rms, kurt


def _hann(n: int) -> np.ndarray:
    # periodic Hann (the DFT-even form): its spectrum of a tone spans exactly bins k-1, k, k+1 at 1/4, 1/2, 1/4
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)


def dominant_line(accel_m_s2: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = (10.0, 1000.0)
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(frequency Hz, RMS velocity mm/s) of the largest line of the velocity spectrum in ``band_hz``.

    accel_m_s2: float64 [..., n] at ``fs_hz``; returns two float64 [...]. The mean is removed and a periodic
    Hann window applied. The peak bin k is the largest |A_k| / f_k among the bins in the band; its frequency
    is refined by a parabola through ln|A| at k-1, k, k+1 (Gaussian interpolation, bias below a few hundredths
    of a bin for the Hann window). The line's RMS acceleration is the energy of bins k-2..k+2 (the Hann main
    lobe) with the window's power gain removed: a_rms^2 = 2 sum |A_j|^2 / (n sum w^2); its velocity is
    a_rms / (2 pi f). Two lines closer than about 3 bins (3 fs / n Hz) are not told apart.
    """
    a = np.asarray(accel_m_s2, dtype=np.float64)
    n = a.shape[-1]
    lead = a.shape[:-1]
    rows = a.reshape(-1, n)
    m = rows.shape[0]
    w = _hann(n)
    spec = np.fft.rfft((rows - rows.mean(axis=-1, keepdims=True)) * w, axis=-1)
    power = spec.real**2 + spec.imag**2  # [m, nb]
    nb = power.shape[-1]
    f = np.fft.rfftfreq(n, d=1.0 / fs_hz)
    lo, hi = band_hz
    sel = np.nonzero((f >= lo) & (f <= hi) & (f > 0))[0]
    hz = np.full(m, np.nan)
    mm_s = np.full(m, np.nan)
    if sel.size == 0 or m == 0:
        return hz.reshape(lead), mm_s.reshape(lead)
    # velocity magnitude is |A| / (2 pi f): compare power / f^2
    k = sel[np.argmax(power[:, sel] / f[sel] ** 2, axis=-1)]  # [m] peak bin
    r = np.arange(m)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(power)  # ln|A|^2 = 2 ln|A|: the parabola's vertex does not care about the factor 2
        km, kp = np.maximum(k - 1, 0), np.minimum(k + 1, nb - 1)
        alpha, beta, gamma = lp[r, km], lp[r, k], lp[r, kp]
        den = alpha - 2.0 * beta + gamma
        delta = np.where((k > 0) & (k < nb - 1) & np.isfinite(den) & (den < 0), 0.5 * (alpha - gamma) / den, 0.0)
    delta = np.clip(delta, -0.5, 0.5)
    # main-lobe energy: bins k-2..k+2 (clipped to the spectrum; the Nyquist bin counts once, the others twice)
    offs = np.arange(-2, 3)
    j = np.clip(k[:, None] + offs[None, :], 0, nb - 1)
    valid = (k[:, None] + offs[None, :] >= 1) & (k[:, None] + offs[None, :] <= nb - 1)
    gain = np.where((n % 2 == 0) & (j == nb - 1), 0.5, 1.0)
    energy = np.sum(np.where(valid, power[r[:, None], j] * gain, 0.0), axis=-1)
    a_rms = np.sqrt(2.0 * energy / (n * np.sum(w * w)))
    f_line = (k + delta) * (fs_hz / n)
    ok = (power[r, k] > 0) & (f_line > 0)
    hz = np.where(ok, f_line, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        mm_s = np.where(ok, a_rms / (2.0 * np.pi * f_line) * 1000.0, np.nan)
    return hz.reshape(lead), mm_s.reshape(lead)


def features(accel_m_s2: np.ndarray, fs_hz: float, band_hz: tuple[float, float] = (10.0, 1000.0)
             ) -> VibrationFeatures:
    """All features of each waveform row (see :class:`VibrationFeatures` for units).

    accel_m_s2: float [..., n] acceleration in m/s^2 sampled at ``fs_hz`` (n >= 8); ``band_hz`` (lo, hi) with
    0 <= lo < hi bounds the RMS velocity and the dominant-line search. Every field is float64 [...].
    """
    a = np.asarray(accel_m_s2, dtype=np.float64)
    if a.ndim == 0:
        raise ValueError("a waveform needs at least one axis of samples")
    n = a.shape[-1]
    if n < 8:
        raise ValueError(f"waveform of {n} samples is too short")
    if not fs_hz > 0:
        raise ValueError(f"sample rate must be positive, got {fs_hz}")
    lo, hi = band_hz
    if not 0 <= lo < hi:
        raise ValueError(f"band {band_hz} must satisfy 0 <= lo < hi")
    lead = a.shape[:-1]
    rms = np.asarray(rms_velocity_mm_s(a, fs_hz, band_hz), dtype=np.float64).reshape(lead)
    peak, arms, kurt = time_stats(np.ascontiguousarray(a.reshape(-1, n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        crest = np.where(arms > 0, peak / arms, np.nan)
    hz, mm_s = dominant_line(a, fs_hz, band_hz)
    flat = (arms == 0).reshape(lead)  # rounding residue of a constant row has no line
    hz, mm_s = np.where(flat, np.nan, hz), np.where(flat, np.nan, mm_s)
    return VibrationFeatures(rms, peak.reshape(lead), crest.reshape(lead), kurt.reshape(lead), hz, mm_s)
