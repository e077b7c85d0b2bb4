"""The plant simulator: a deterministic model of the demo plant published over the real field protocols.

- :class:`PlantModel` (model.py): people walking the site, wearables, the gas field, machine vibration,
  all pure functions of (site, seed, scenario, timing, t_s).
- :class:`Simulator` (run.py): serves the model on MQTT (UWB ranges, truth, vibration, camera detections,
  wearable events) and OPC UA (gas detectors) until stopped; :func:`main` is ``watchfloor simulate``.
- ``SCENARIOS``: scenario name -> what it scripts; ``SCENARIO_TIMING``: their timing parameters.

Payloads are documented in docs/protocol.md ("Field side").
"""

from .camera import CameraView, detections_payload, synthesize_detections
from .clock import SimClock
from .gas import GasField, GasReadings, gaussian_plume_kg_m3
from .layout import WalkwayNetwork, build_network
from .model import WALK_SPEED_M_S, PlantModel, WearableEvent
from .opcua import GasOpcUaServer
from .run import Simulator, main, topics, wearable_payload
from .scenarios import SCENARIO_TIMING, SCENARIOS, parse_scenario, resolve_timing
from .uwb import ranges_payloads, synthesize_ranges, truth_payload
from .vibration import VibrationBank, bearing_defect_frequencies, overall_payload, waveform_payload

__all__ = [
    "SCENARIOS",
    "SCENARIO_TIMING",
    "WALK_SPEED_M_S",
    "CameraView",
    "GasField",
    "GasOpcUaServer",
    "GasReadings",
    "PlantModel",
    "SimClock",
    "Simulator",
    "VibrationBank",
    "WalkwayNetwork",
    "WearableEvent",
    "bearing_defect_frequencies",
    "build_network",
    "detections_payload",
    "gaussian_plume_kg_m3",
    "main",
    "overall_payload",
    "parse_scenario",
    "ranges_payloads",
    "resolve_timing",
    "synthesize_detections",
    "synthesize_ranges",
    "topics",
    "truth_payload",
    "waveform_payload",
    "wearable_payload",
]
