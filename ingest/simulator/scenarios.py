"""Scenario names, what they script, and their timing parameters (seconds of simulation time).

A scenario string is one name or several joined by commas (``"gas_leak,man_down"``). Every timing
parameter has a default that tells the story at a watchable pace; tests pass small values so that
the story happens within seconds.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SCENARIOS", "SCENARIO_TIMING", "parse_scenario", "resolve_timing"]

SCENARIOS: dict[str, str] = {
    "normal": "200 people walk between work stations along the roads; background gas, healthy machines.",
    "gas_leak": "CH4 leak from a flange in Unit 200 upwind of GD07; the release rate ramps up and a Gaussian "
    "plume carried by a 2 m/s WNW wind takes GD07 past low, high and over range, later GD08 past low.",
    "restricted_entry": "Worker P0050 (tag T0050) walks from the road into restricted zone Z-SUB about 10 s "
    "after start, stays inside for dwell_s (>= 20 s), then walks out.",
    "watcher_walkaway": "Watcher P0186 stands at the entrance of confined space Z-V205 while entrant P0185 is "
    "inside; at walkaway_start_s the watcher walks ~60 m away and is gone for away_s (17 min).",
    "bearing_degradation": "VP04 (P-201A reflux pump) develops an outer-race bearing defect: BPFO and harmonics "
    "grow and the overall RMS velocity rises from ~1.5 to ~6 mm/s over degradation_s.",
    "man_down": "P0077 stops moving at fall_s and its wearable sends a 'fall' event.",
    "sos": "P0033 presses the SOS button of its wearable at sos_s (keeps walking).",
    "detector_fault": "GD03 reports Bad_SensorFailure and GD12 Uncertain_SensorCalibration from fault_start_s "
    "for fault_s, then both are Good again.",
    "ppe_violation": "P0120 (no helmet) and P0121 (no vest) work in view of the first camera; their detections "
    "carry no_helmet / no_vest from ppe_start_s for ppe_s.",
}

#: default timing parameters per scenario, seconds of simulation time (rates in their own units)
SCENARIO_TIMING: dict[str, dict[str, float]] = {
    "normal": {},
    "gas_leak": {"leak_start_s": 30.0, "ramp_s": 240.0, "leak_rate_kg_s": 0.7, "wind_speed_m_s": 2.0},
    "restricted_entry": {"entry_start_s": 10.0, "dwell_s": 40.0},
    "watcher_walkaway": {"walkaway_start_s": 60.0, "away_s": 1020.0},
    "bearing_degradation": {"degradation_start_s": 30.0, "degradation_s": 600.0},
    "man_down": {"fall_s": 30.0},
    "sos": {"sos_s": 20.0},
    "detector_fault": {"fault_start_s": 20.0, "fault_s": 120.0},
    "ppe_violation": {"ppe_start_s": 0.0, "ppe_s": 600.0},
}


def parse_scenario(scenario: str) -> frozenset[str]:
    """``"gas_leak,man_down"`` -> the set of names; raises ValueError naming an unknown one."""
    names = frozenset(n.strip() for n in scenario.split(",") if n.strip()) or frozenset({"normal"})
    unknown = sorted(names - SCENARIOS.keys())
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    return names


def resolve_timing(names: frozenset[str], overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """Defaults of the named scenarios updated by ``overrides``; an override no scenario knows is an error."""
    timing: dict[str, float] = {}
    for n in sorted(names):
        timing.update(SCENARIO_TIMING[n])
    known = {k for v in SCENARIO_TIMING.values() for k in v}
    for k, v in (overrides or {}).items():
        if k not in known:
            raise ValueError(f"unknown timing parameter {k!r} (known: {', '.join(sorted(known))})")
        timing[k] = float(v)
    return timing
