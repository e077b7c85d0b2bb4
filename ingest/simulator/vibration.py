"""Machine vibration: acceleration waveforms (and smart-sensor overall values) for each vibration point.

A machine's vibration is a sum of sinusoids, each given as (frequency f Hz, RMS velocity v m/s). A
sinusoid of RMS velocity v at f has RMS acceleration a = v * 2*pi*f (peak a * sqrt(2)); the overall
RMS velocity of the sum is sqrt(sum v_k^2) (what ISO 20816-3 evaluates, 10-1000 Hz band).

Healthy machines: running speed 1x plus 2x and 3x harmonics with velocity ratios 1 : 0.4 : 0.2, scaled
so the overall RMS velocity is the machine's healthy level (pumps ~1.5 mm/s, i.e. 1x = 1.369 mm/s at
24.75 Hz, a 4-pole motor at 1485 rpm: a_rms(1x) = 0.001369 * 2*pi*24.75 = 0.2129 m/s^2).

Bearing degradation (scenario ``bearing_degradation``, VP04): an outer-race defect of a 6309 bearing
(8 balls of 17.46 mm on a 72.5 mm pitch circle, 0 deg contact angle): BPFO = n/2 * f_r * (1 - d/D cos a)
= 3.037 f_r, BPFI = 4.963 f_r, BSF = 1.956 f_r, FTF = 0.380 f_r. Severity s rises from 0 to 1 over
``degradation_s`` (s = ramp^1.5): BPFO, 2xBPFO, 3xBPFO at 5.0 s, 2.0 s, 1.0 s mm/s RMS, 1x grows by 30 % s,
plus impacts at the BPFO rate that ring a 2.3 kHz structural resonance (peak 15 s m/s^2, 2 ms decay) for
envelope analysis. The overall RMS velocity reaches ~5.8 mm/s (ISO 20816-3 group 2 rigid: zone D > 4.5).

Noise: white acceleration noise of 0.02 m/s^2 RMS (about 0.02 mm/s of velocity in 10-1000 Hz).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from config.schema import Site

__all__ = [
    "FS_HZ",
    "N_SAMPLES",
    "SMART_SENSOR_POINTS",
    "MachineProfile",
    "VibrationBank",
    "bearing_defect_frequencies",
    "overall_payload",
    "waveform_payload",
]

FS_HZ = 5120.0
N_SAMPLES = 5120
#: points that publish only the smart-sensor overall value, not a waveform
SMART_SENSOR_POINTS = ("VP08", "VP09")
NOISE_ACC_M_S2 = 0.02
HARMONICS = ((1, 1.0), (2, 0.4), (3, 0.2))
_RESONANCE_HZ, _IMPACT_PEAK_M_S2, _IMPACT_DECAY_S = 2300.0, 15.0, 0.002


@dataclass(frozen=True)
class MachineProfile:
    """Running speed (Hz) and healthy overall RMS velocity (mm/s) of a kind of machine."""

    running_hz: float
    healthy_rms_mm_s: float


_PROFILES = {
    "pump": MachineProfile(24.75, 1.5),  # 4-pole motor, 1485 rpm
    "compressor": MachineProfile(49.5, 2.0),  # 2-pole, 2970 rpm
    "blower": MachineProfile(49.5, 2.0),
    "fan": MachineProfile(16.5, 1.8),  # 6-pole, 990 rpm
    "agitator": MachineProfile(24.75, 1.2),  # measured at the motor
}


def bearing_defect_frequencies(
    running_hz: float,
    n_balls: int = 8,
    ball_d_mm: float = 17.46,
    pitch_d_mm: float = 72.5,
    contact_deg: float = 0.0,
) -> dict[str, float]:
    """BPFO, BPFI, BSF, FTF in Hz of a rolling bearing (defaults: a 6309) at ``running_hz``."""
    r = ball_d_mm / pitch_d_mm * math.cos(math.radians(contact_deg))
    return {
        "bpfo": n_balls / 2 * running_hz * (1 - r),
        "bpfi": n_balls / 2 * running_hz * (1 + r),
        "bsf": pitch_d_mm / (2 * ball_d_mm) * running_hz * (1 - r * r),
        "ftf": running_hz / 2 * (1 - r),
    }


def _profile(machine: str) -> MachineProfile:
    m = machine.lower()
    for key, prof in _PROFILES.items():
        if key in m:
            return prof
    return _PROFILES["pump"]


class VibrationBank:
    """Waveforms and overall values for ``site.vibration_points`` (in that order)."""

    def __init__(
        self,
        site: Site,
        seed: int,
        scenarios: frozenset[str],
        timing: Mapping[str, float],
        smart_points: tuple[str, ...] = SMART_SENSOR_POINTS,
    ) -> None:
        self.points = list(site.vibration_points)
        self.seed = seed
        self.timing = dict(timing)
        self.profiles = [_profile(p.machine) for p in self.points]
        ids = [p.id for p in self.points]
        self.smart = np.array([i in smart_points for i in ids], dtype=bool)
        self.degrading = (
            (ids.index("VP04") if "VP04" in ids else 0)
            if ("bearing_degradation" in scenarios and ids)
            else None
        )
        rng = np.random.default_rng([seed, 5])
        # each machine sits a little above or below its kind's typical level
        self.level = rng.uniform(0.9, 1.1, len(self.points))
        self.phases = rng.uniform(0, 2 * math.pi, (len(self.points), 8))

    def severity(self, t_s: float) -> float:
        """Bearing defect severity 0..1 at ``t_s`` (0 outside the scenario)."""
        if self.degrading is None:
            return 0.0
        x = (t_s - self.timing["degradation_start_s"]) / max(self.timing["degradation_s"], 1e-9)
        return float(np.clip(x, 0.0, 1.0) ** 1.5)

    def components(self, i: int, t_s: float) -> list[tuple[float, float]]:
        """Sinusoids of point ``i`` at ``t_s``: (frequency Hz, RMS velocity m/s)."""
        prof = self.profiles[i]
        norm = math.sqrt(sum(r * r for _, r in HARMONICS))
        v1 = prof.healthy_rms_mm_s * self.level[i] / norm * 1e-3
        s = self.severity(t_s) if i == self.degrading else 0.0
        out = [(k * prof.running_hz, v1 * r * (1 + 0.3 * s if k == 1 else 1.0)) for k, r in HARMONICS]
        if s > 0:
            bpfo = bearing_defect_frequencies(prof.running_hz)["bpfo"]
            out += [(m * bpfo, v * s * 1e-3) for m, v in ((1, 5.0), (2, 2.0), (3, 1.0))]
        return out

    def rms_velocity_mm_s(self, i: int, t_s: float) -> float:
        """Overall RMS velocity of point ``i`` at ``t_s`` from its components, mm/s (no noise)."""
        return 1e3 * math.sqrt(sum(v * v for _, v in self.components(i, t_s)))

    def waveform(self, i: int, t_s: float) -> np.ndarray:
        """1 s of acceleration from ``t_s`` at FS_HZ: float32 [N_SAMPLES], m/s^2."""
        t = t_s + np.arange(N_SAMPLES) / FS_HZ
        a = np.zeros(N_SAMPLES)
        for k, (f, v) in enumerate(self.components(i, t_s)):
            a += math.sqrt(2) * v * 2 * math.pi * f * np.sin(2 * math.pi * f * t + self.phases[i, k % 8])
        s = self.severity(t_s) if i == self.degrading else 0.0
        if s > 0:
            bpfo = bearing_defect_frequencies(self.profiles[i].running_hz)["bpfo"]
            since = np.mod(t, 1.0 / bpfo)  # time since the last ball passed the defect
            a += (
                _IMPACT_PEAK_M_S2
                * s
                * np.exp(-since / _IMPACT_DECAY_S)
                * np.sin(2 * math.pi * _RESONANCE_HZ * since)
            )
        rng = np.random.default_rng([self.seed, 6, i, round(t_s * 1000.0)])
        a += rng.normal(0.0, NOISE_ACC_M_S2, N_SAMPLES)
        return a.astype("<f4")

    def overall_mm_s(self, i: int, t_s: float) -> float:
        """A smart sensor's overall RMS velocity at ``t_s`` (mm/s, 2 decimals, +-2 % reading noise)."""
        rng = np.random.default_rng([self.seed, 9, i, round(t_s * 1000.0)])
        return round(self.rms_velocity_mm_s(i, t_s) * (1 + rng.normal(0.0, 0.02)), 2)


def waveform_payload(point: str, ts: float, samples: np.ndarray, fs_hz: float = FS_HZ) -> bytes:
    """JSON of one waveform: samples float32 little-endian, base64; ``ts`` = epoch s of the first sample."""
    raw = np.asarray(samples, dtype="<f4").tobytes()
    return json.dumps(
        {
            "point": point,
            "ts": round(ts, 3),
            "fs_hz": float(fs_hz),
            "unit": "m/s2",
            "n": len(samples),
            "samples": base64.b64encode(raw).decode("ascii"),
        },
        separators=(",", ":"),
    ).encode()


def overall_payload(point: str, ts: float, rms_mm_s: float) -> bytes:
    """JSON of a smart sensor's overall value (RMS velocity, mm/s)."""
    return json.dumps(
        {"point": point, "ts": round(ts, 3), "overall": {"rms_mm_s": float(rms_mm_s)}}, separators=(",", ":")
    ).encode()
