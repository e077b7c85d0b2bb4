"""The gas field the detectors read: quiet background, and the scripted CH4 leak as a Gaussian plume.

Leak physics (scenario ``gas_leak``):

- Source: a flange in Unit 200, 6 m upwind of GD07 (or of the first flammable-gas detector), 1.5 m up.
- Release rate Q(t) kg/s ramps linearly from 0 at ``leak_start_s`` to ``leak_rate_kg_s`` over ``ramp_s``
  (a gasket failing progressively), then stays there.
- Wind: ``wind_speed_m_s`` (2 m/s) blowing towards ESE (from bearing 300 deg, WNW), with a slow +-4 deg
  meander of period 240 s; Pasquill stability D (neutral, overcast day).
- Concentration: the steady Gaussian plume with ground reflection,
  C(x, y, z) = Q / (2 pi u sy sz) * exp(-y^2 / 2 sy^2) * [exp(-(z - H)^2 / 2 sz^2) + exp(-(z + H)^2 / 2 sz^2)]
  kg/m^3, x downwind, y crosswind; Briggs open-country class D spreads sy = 0.08 x (1 + 0.0001 x)^-1/2,
  sz = 0.06 x (1 + 0.0015 x)^-1/2, each combined in quadrature with a 1 m initial source size.
  The plume is not instant: a receptor x metres downwind sees the rate released x / u seconds ago.
- Units: volume fraction = C / rho, rho(CH4) = 0.668 kg/m^3 (20 degC, 101.325 kPa);
  %LEL = 100 * fraction / 0.044 (LEL of methane 4.4 %vol, IEC 60079-20-1). O2 detectors see the
  air displaced: O2 %vol = 20.9 * (1 - fraction).

With the defaults GD07 (6 m downwind) passes its low level (20 %LEL) about 35 s into the ramp, high
(40 %LEL) about 65 s in, and is over range about 170 s in; GD08 (46 m downwind) passes low ~195 s in.

Detector readings: value clipped to [0, range_max] (over range -> Uncertain_EngineeringUnitsExceeded),
rounded to 0.1 (%LEL, ppm) or 0.01 (%vol); noise drawn from a stream keyed by (seed, tick), so a
reading is a pure function of the time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config.schema import Site

__all__ = [
    "CH4_DENSITY_KG_M3",
    "CH4_LEL_VOL_FRACTION",
    "STATUS_BAD_SENSOR_FAILURE",
    "STATUS_GOOD",
    "STATUS_NAMES",
    "STATUS_UNCERTAIN_EU_EXCEEDED",
    "STATUS_UNCERTAIN_SENSOR_CALIBRATION",
    "GasField",
    "GasReadings",
    "gaussian_plume_kg_m3",
]

# OPC UA status codes (Part 4 / Part 6 StatusCode values)
STATUS_GOOD = 0x00000000
STATUS_UNCERTAIN_EU_EXCEEDED = 0x40940000
STATUS_UNCERTAIN_SENSOR_CALIBRATION = 0x420A0000
STATUS_BAD_SENSOR_FAILURE = 0x808C0000
STATUS_NAMES = {
    STATUS_GOOD: "Good",
    STATUS_UNCERTAIN_EU_EXCEEDED: "UncertainEngineeringUnitsExceeded",
    STATUS_UNCERTAIN_SENSOR_CALIBRATION: "UncertainSensorCalibration",
    STATUS_BAD_SENSOR_FAILURE: "BadSensorFailure",
}

CH4_LEL_VOL_FRACTION = 0.044
CH4_DENSITY_KG_M3 = 0.668
O2_AIR_PCT_VOL = 20.9
_FLAMMABLE = ("CH4", "C3H8", "H2", "VOC")
_SOURCE_HEIGHT_M = 1.5
_SOURCE_UPWIND_M = 6.0
_SOURCE_SIZE_M = 1.0
_WIND_TO_DEG = -30.0  # maths convention: towards ESE, i.e. from bearing 300 deg
_MEANDER_DEG, _MEANDER_PERIOD_S = 4.0, 240.0


@dataclass(frozen=True)
class GasReadings:
    """One scan of every detector: ``values`` float64 [D] in each detector's unit, ``status`` uint32 [D]."""

    values: np.ndarray
    status: np.ndarray


def gaussian_plume_kg_m3(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, q_kg_s: np.ndarray | float, u_m_s: float, h_m: float
) -> np.ndarray:
    """Steady Gaussian plume with ground reflection, Briggs open-country class D; arrays of the same shape.

    x downwind, y crosswind, z height (m); upwind points (x <= 0) get 0.
    """
    xd = np.maximum(x, 1e-3)
    sy = np.hypot(_SOURCE_SIZE_M, 0.08 * xd / np.sqrt(1 + 0.0001 * xd))
    sz = np.hypot(_SOURCE_SIZE_M, 0.06 * xd / np.sqrt(1 + 0.0015 * xd))
    c = (
        np.asarray(q_kg_s)
        / (2 * math.pi * u_m_s * sy * sz)
        * np.exp(-(y**2) / (2 * sy**2))
        * (np.exp(-((z - h_m) ** 2) / (2 * sz**2)) + np.exp(-((z + h_m) ** 2) / (2 * sz**2)))
    )
    return np.where(x > 0, c, 0.0)


class GasField:
    """Detector readings over time for ``site.gas_detectors`` (in that order)."""

    def __init__(self, site: Site, seed: int, scenarios: frozenset[str], timing: Mapping[str, float]) -> None:
        self.detectors = list(site.gas_detectors)
        self.seed = seed
        self.timing = dict(timing)
        self.leak = "gas_leak" in scenarios
        self.fault = "detector_fault" in scenarios
        d = self.detectors
        self.position_m = np.array([g.position_m for g in d], dtype=float).reshape(-1, 3)
        rng = np.random.default_rng([seed, 3])
        gases = [g.gas for g in d]
        self.is_o2 = np.array([g == "O2" for g in gases], dtype=bool)
        self.is_ch4 = np.array([g == "CH4" for g in gases], dtype=bool)
        flam = np.array([g in _FLAMMABLE for g in gases], dtype=bool)
        # each detector's own zero offset: a few %LEL for flammables, near 0 ppm for toxics
        self.base = np.where(flam, rng.uniform(0.2, 1.5, len(d)), rng.uniform(0.0, 0.3, len(d)))
        self.base = np.where(self.is_o2, O2_AIR_PCT_VOL, self.base)
        self.noise = np.where(flam, 0.15, np.where(self.is_o2, 0.03, 0.1))
        self.range_max = np.array([g.range_max for g in d], dtype=float)
        self.resolution = np.array([0.01 if g.unit == "%vol" else 0.1 for g in d])
        ids = [g.id for g in d]
        src = ids.index("GD07") if "GD07" in ids else (int(np.argmax(flam)) if flam.any() else None)
        self.leak_detector = src
        th = math.radians(_WIND_TO_DEG)
        if src is not None:
            self.source_m = np.array(
                [
                    self.position_m[src, 0] - _SOURCE_UPWIND_M * math.cos(th),
                    self.position_m[src, 1] - _SOURCE_UPWIND_M * math.sin(th),
                    _SOURCE_HEIGHT_M,
                ]
            )
        else:
            self.source_m = np.zeros(3)
        self.fault_bad = [i for i, k in enumerate(ids) if k == "GD03"]
        self.fault_uncertain = [i for i, k in enumerate(ids) if k == "GD12"]

    def release_rate_kg_s(self, t_s: float | np.ndarray) -> np.ndarray:
        """Leak rate at (emission) time ``t_s``, kg/s (0 outside the gas_leak scenario)."""
        t = np.asarray(t_s, dtype=float)
        if not self.leak:
            return np.zeros_like(t)
        frac = np.clip((t - self.timing["leak_start_s"]) / max(self.timing["ramp_s"], 1e-9), 0.0, 1.0)
        return frac * self.timing["leak_rate_kg_s"]

    def wind_to_rad(self, t_s: float) -> float:
        return math.radians(_WIND_TO_DEG + _MEANDER_DEG * math.sin(2 * math.pi * t_s / _MEANDER_PERIOD_S))

    def ch4_fraction(self, t_s: float) -> np.ndarray:
        """CH4 volume fraction from the leak at each detector, float64 [D] (0..1)."""
        if not self.leak or self.leak_detector is None:
            return np.zeros(len(self.detectors))
        u = self.timing["wind_speed_m_s"]
        th = self.wind_to_rad(t_s)
        d = self.position_m - self.source_m
        x = d[:, 0] * math.cos(th) + d[:, 1] * math.sin(th)
        y = -d[:, 0] * math.sin(th) + d[:, 1] * math.cos(th)
        q = self.release_rate_kg_s(t_s - np.maximum(x, 0.0) / u)
        c = gaussian_plume_kg_m3(x, y, self.position_m[:, 2], q, u, self.source_m[2])
        return np.minimum(c / CH4_DENSITY_KG_M3, 1.0)

    def true_values(self, t_s: float) -> np.ndarray:
        """Noise-free reading of every detector in its unit, float64 [D] (not clipped to range)."""
        frac = self.ch4_fraction(t_s)
        v = self.base.copy()
        v = np.where(self.is_ch4, v + 100.0 * frac / CH4_LEL_VOL_FRACTION, v)
        return np.where(self.is_o2, O2_AIR_PCT_VOL * (1.0 - frac), v)

    def read(self, t_s: float) -> GasReadings:
        """What the detectors report at ``t_s``: values (noisy, clipped, rounded) and OPC UA status codes."""
        rng = np.random.default_rng([self.seed, 4, round(t_s * 1000.0)])
        raw = self.true_values(t_s) + rng.normal(0.0, 1.0, len(self.detectors)) * self.noise
        status = np.where(raw > self.range_max, STATUS_UNCERTAIN_EU_EXCEEDED, STATUS_GOOD).astype(np.uint32)
        vals = np.round(np.clip(raw, 0.0, self.range_max) / self.resolution) * self.resolution
        vals = np.round(vals, 2)
        if self.fault:
            t0 = self.timing["fault_start_s"]
            if t0 <= t_s < t0 + self.timing["fault_s"]:
                status[self.fault_bad] = STATUS_BAD_SENSOR_FAILURE
                status[self.fault_uncertain] = STATUS_UNCERTAIN_SENSOR_CALIBRATION
        return GasReadings(vals, status)
