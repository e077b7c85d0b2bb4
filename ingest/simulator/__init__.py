"""The plant simulator: a deterministic model of the demo plant published over the real field protocols.

- :class:`PlantModel` (model.py): people walking the site, wearables, the gas field, machine vibration,
  all pure functions of (site, seed, scenario, timing, t_s). People follow the walking model (walking.py);
  each scenario that scripts people or permits has its story in stories/ (one module per scenario).
- :class:`Simulator` (run.py): serves the model on MQTT (UWB ranges, truth, vibration, camera detections,
  wearable events) and OPC UA (gas detectors) until stopped; :func:`main` is ``watchfloor simulate``.
- :class:`PermitDesk` (permits.py): the plant's permit office, sending the stories' permit commands
  (:class:`PermitCommand`) over MQTT and reading the engine's replies.
- ``SCENARIOS``: scenario name -> what it scripts; ``SCENARIO_TIMING``: their timing parameters;
  ``SCENARIO_PARTS``: the names that stand for several scenarios (``demo``).

Payloads are documented in docs/protocol.md ("Field side").
"""

from .camera import CameraView, detections_payload, synthesize_detections
from .clock import SimClock
from .gas import GasField, GasReadings, gaussian_plume_kg_m3
from .layout import WalkwayNetwork, build_network
from .model import WALK_SPEED_M_S, PlantModel, WearableEvent
from .opcua import GasOpcUaServer
from .permits import PermitCommand, PermitDesk, command_payload
from .run import Simulator, main, topics, wearable_payload
from .scenarios import SCENARIO_PARTS, SCENARIO_TIMING, SCENARIOS, parse_scenario, resolve_timing
from .uwb import ranges_payloads, synthesize_ranges, truth_payload
from .vibration import VibrationBank, bearing_defect_frequencies, overall_payload, waveform_payload

__all__ = [
    "SCENARIOS",
    "SCENARIO_PARTS",
    "SCENARIO_TIMING",
    "WALK_SPEED_M_S",
    "CameraView",
    "GasField",
    "GasOpcUaServer",
    "GasReadings",
    "PermitCommand",
    "PermitDesk",
    "PlantModel",
    "SimClock",
    "Simulator",
    "VibrationBank",
    "WalkwayNetwork",
    "WearableEvent",
    "bearing_defect_frequencies",
    "build_network",
    "command_payload",
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
