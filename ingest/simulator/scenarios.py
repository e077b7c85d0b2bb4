"""Scenario names, what they script, and their timing parameters (seconds of simulation time).

A scenario string is one name or several joined by commas (``"gas_leak,man_down"``). ``demo`` stands for
a calm mix for the wall; ``incompatible_jobs`` brings ``hot_work`` with it (its second permit needs HW-1).
Every timing parameter has a default that tells the story at a watchable pace; tests pass small values so
that the story happens within seconds (and the drill's ``muster_pace_x`` > 1, so that the crowd is at its
muster points within a minute rather than four). Parameters shared by several scenarios (the permit office's gaps)
mean the same thing in each.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["SCENARIOS", "SCENARIO_TIMING", "SCENARIO_PARTS", "parse_scenario", "resolve_timing"]

SCENARIOS: dict[str, str] = {
    "normal": "200 people walk between work stations along the roads; background gas, healthy machines.",
    "gas_leak": "CH4 leak from a flange in Unit 200 upwind of GD07; the release rate ramps up and a Gaussian "
    "plume carried by a 2 m/s WNW wind takes GD07 past low, high and over range, later GD08 past low.",
    "restricted_entry": "Worker P0050 (tag T0050) walks from the road into restricted zone Z-SUB about 10 s "
    "after start, stays inside for dwell_s (>= 20 s), then walks out.",
    "watcher_walkaway": "Entrant P0185 and watcher P0186 wait at the manhole of confined space Z-V205; the permit "
    "office issues CS-1 (request, gas test, approval, activation), P0185 goes in, P0186 watches; with "
    "watcher_still_s > 0 he first stands stock-still that long from still_start_s (the supervisor resumes CS-1 "
    "after he moves again); at walkaway_start_s he walks ~60 m away and is gone for away_s.",
    "bearing_degradation": "VP04 (P-201A reflux pump) develops an outer-race bearing defect: BPFO and harmonics "
    "grow and the overall RMS velocity rises from ~1.5 to ~6 mm/s over degradation_s.",
    "man_down": "P0077 stops moving at fall_s and its wearable sends a 'fall' event.",
    "sos": "P0033 presses the SOS button of its wearable at sos_s (keeps walking).",
    "detector_fault": "GD03 reports Bad_SensorFailure and GD12 Uncertain_SensorCalibration from fault_start_s "
    "for fault_s, then both are Good again.",
    "ppe_violation": "P0120 (no helmet) and P0121 (no vest) work in view of the first camera; their detections "
    "carry no_helmet / no_vest from ppe_start_s for ppe_s.",
    "hot_work": "Welders P0101, P0102 and watcher P0187 come to pipe bridge PB-1; permit HW-1 (hot work, grade 2, "
    "zone Z-HW1) is requested, gas-tested, approved and activated once the watcher stands 2 m east of the zone; "
    "then the crew goes in and works; HW-1 stays active and nobody else enters Z-HW1.",
    "expired_certificate": "Welder P0042 and watcher P0188 wait at pipe-rack bay PR-1/7; permit HW-2 (hot work) "
    "is requested, gas-tested and approved, but its activation is refused: P0042's hot-work certificate has "
    "expired. The welder never starts; the office cancels HW-2 and both go back to other work.",
    "incompatible_jobs": "With HW-1 active (brings hot_work), a second hot-work permit HW-3 in Z-HW1 for the "
    "same hours (welder P0103, watcher P0189) is requested; its approval is refused as a conflict and the office "
    "cancels it.",
    "worker_outside": "Working-at-height permit WH-1 (own polygon west of the main road, workers P0005 and P0029): "
    "once it is active the crew goes in; stray_after_s after the entry P0029 steps out ~5 m west of the work and "
    "keeps working there, outside the permit zone (permit.worker_outside after worker_outside_grace_s).",
    "unauthorized_entry": "Working-at-height permit WH-2 (own polygon, worker P0034) is active; intrude_after_s "
    "after its activation P0143, who is not on it, walks into its zone, stays intrude_stay_s and walks out again "
    "(permit.unauthorized while inside).",
    "permit_expiry": "Working-at-height permit WH-3 (own polygon, workers P0044 and P0072) is valid until "
    "expiry_work_s after its activation; the crew is still working when it runs out (the engine expires it: "
    "permit.expired_occupied) and leaves exit_after_s later.",
    "lone_worker": "P0097 walks from the tank-farm road into tank T-3 (confined space Z-T3, no permit) at "
    "lone_start_s, works alone inside for lone_stay_s and comes out (zone.no_permit, then person.lone_worker after "
    "people_safety.lone_worker_s).",
    "gas_test_stale": "Hot-work permit HW-5 (own polygon, welder P0105, watcher P0192 at the work) is gas-tested, "
    "approved and activated; nobody tests again, so the engine suspends it once the test is older than "
    "permit_settings.gas_test_validity_s.",
    "muster_drill": "Emergency drill: at declare_s the shift supervisor (sup1) declares a site-wide emergency at a console "
    "(through the engine's command gate); each person reacts after react_min_s..react_max_s and walks along the "
    "walkways to the nearest muster point (Z-MP1 by the control room, Z-MP2 at the east gate) at walking pace "
    "(x muster_pace_x) and waits there; stay_missing people never come (the first at work in a building); "
    "all_clear_after_s after the declaration (0: never) the supervisor ends it and everyone goes back to work.",
    "demo": "The calm default of `watchfloor demo`: hot_work + restricted_entry + expired_certificate + "
    "bearing_degradation (a busy plant with a few alarms and a permit board that tells a story).",
}

#: scenarios that stand for others (expanded by :func:`parse_scenario`)
SCENARIO_PARTS: dict[str, tuple[str, ...]] = {
    "demo": ("hot_work", "restricted_entry", "expired_certificate", "bearing_degradation"),
    "incompatible_jobs": ("incompatible_jobs", "hot_work"),
}

# the permit office's pace: request -> gas test -> approval -> activation (watcher at the work) -> entry
_PAPERWORK = {"gas_test_after_s": 15.0, "approve_after_s": 15.0, "activate_after_s": 10.0}

#: default timing parameters per scenario, seconds of simulation time (rates in their own units)
SCENARIO_TIMING: dict[str, dict[str, float]] = {
    "normal": {},
    "gas_leak": {"leak_start_s": 30.0, "ramp_s": 240.0, "leak_rate_kg_s": 0.7, "wind_speed_m_s": 2.0},
    "restricted_entry": {"entry_start_s": 10.0, "dwell_s": 40.0},
    "watcher_walkaway": {
        "walkaway_request_s": 5.0,
        **_PAPERWORK,
        "enter_after_s": 5.0,
        "pace_pause_s": 25.0,
        "still_start_s": 90.0,
        "watcher_still_s": 0.0,
        "resume_after_s": 20.0,
        "walkaway_start_s": 120.0,
        "away_s": 1020.0,
    },
    "bearing_degradation": {"degradation_start_s": 30.0, "degradation_s": 600.0},
    "man_down": {"fall_s": 30.0},
    "sos": {"sos_s": 20.0},
    "detector_fault": {"fault_start_s": 20.0, "fault_s": 120.0},
    "ppe_violation": {"ppe_start_s": 0.0, "ppe_s": 600.0},
    "hot_work": {"hot_work_request_s": 5.0, **_PAPERWORK, "enter_after_s": 5.0, "pace_pause_s": 25.0},
    "expired_certificate": {
        "expired_request_s": 20.0,
        **_PAPERWORK,
        "cancel_after_s": 30.0,
        "pace_pause_s": 25.0,
    },
    "incompatible_jobs": {"conflict_request_s": 90.0, **_PAPERWORK, "cancel_after_s": 30.0},
    "worker_outside": {
        "outside_request_s": 5.0, **_PAPERWORK, "enter_after_s": 5.0, "pace_pause_s": 25.0, "stray_after_s": 60.0,
    },
    "unauthorized_entry": {
        "intrude_request_s": 5.0, **_PAPERWORK, "enter_after_s": 5.0, "pace_pause_s": 25.0,
        "intrude_after_s": 30.0, "intrude_stay_s": 60.0,
    },
    "permit_expiry": {
        "expiry_request_s": 5.0, **_PAPERWORK, "enter_after_s": 5.0, "pace_pause_s": 25.0,
        "expiry_work_s": 120.0, "exit_after_s": 60.0,
    },
    "lone_worker": {"lone_start_s": 10.0, "lone_stay_s": 300.0, "pace_pause_s": 25.0},
    "gas_test_stale": {"stale_request_s": 5.0, **_PAPERWORK, "enter_after_s": 5.0, "pace_pause_s": 25.0},
    "muster_drill": {
        "declare_s": 60.0, "react_min_s": 5.0, "react_max_s": 60.0, "muster_pace_x": 1.0, "stay_missing": 3.0,
        "all_clear_after_s": 600.0,
    },
    "demo": {},
}


def parse_scenario(scenario: str) -> frozenset[str]:
    """``"gas_leak,man_down"`` -> the set of names (``demo`` and ``incompatible_jobs`` expanded into the
    scenarios they stand for); raises ValueError naming an unknown one."""
    names = frozenset(n.strip() for n in scenario.split(",") if n.strip()) or frozenset({"normal"})
    unknown = sorted(names - SCENARIOS.keys())
    if unknown:
        raise ValueError(f"unknown scenario {', '.join(unknown)} (known: {', '.join(SCENARIOS)})")
    return frozenset(part for n in names for part in SCENARIO_PARTS.get(n, (n,)))


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
