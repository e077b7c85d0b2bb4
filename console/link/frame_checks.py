"""Display frames that do not match this console's site are refused, not drawn.

A positions frame with another number of people, or a gas field whose grid does not match its extent, would
put the wrong person or cloud in the wrong place on the wall. Pure functions over a decoded bus message.
"""

from __future__ import annotations

import math

from ingest import bus
from ingest.protocol.names import TOPIC_GASFIELD, TOPIC_POSITIONS, TOPIC_SENSORS

__all__ = ["check_display_arrays", "check_gasfield"]


def check_display_arrays(msg: bus.Message, n_people: int, n_gas: int, n_vib: int) -> str | None:
    """Why ``msg``'s arrays do not fit a site of these sizes; None when they do."""
    p, g, v = n_people, n_gas, n_vib
    expected: dict[str, tuple[int, ...]] = {}
    if msg.topic == TOPIC_POSITIONS:
        expected = {"xyz_m": (p, 3), "age_s": (p,), "gdop": (p,), "alarm": (p,)}
    elif msg.topic == TOPIC_SENSORS:
        expected = {
            "gas_value": (g,),
            "gas_quality": (g,),
            "gas_level": (g,),
            "vib_rms_mm_s": (v,),
            "vib_quality": (v,),
        }
        if "vib_zone" in msg.arrays:  # ISO 20816-3 zone per point, when the engine sends it
            expected["vib_zone"] = (v,)
    elif msg.topic == TOPIC_GASFIELD:
        return check_gasfield(msg)
    for name, shape in expected.items():
        a = msg.arrays.get(name)
        if a is None:
            if msg.topic == TOPIC_SENSORS and name.startswith("vib"):
                continue  # vibration is optional in a sensors frame
            return f"array {name!r} missing"
        if a.shape != shape:
            return f"array {name!r} has shape {a.shape}, this site needs {shape} (site files differ?)"
    return None


def check_gasfield(msg: bus.Message) -> str | None:
    """A gas field must be a float grid whose shape matches its extent and cell size (else it would be drawn
    stretched over the wrong place)."""
    a = msg.arrays.get("field")
    if a is None:
        return "array 'field' missing"
    if a.ndim != 2 or a.dtype.kind != "f":
        return f"array 'field' must be a 2-D float grid, got {a.dtype} {a.shape}"
    extent, dx = msg.meta.get("extent_m"), msg.meta.get("dx_m")
    if (
        not isinstance(extent, list)
        or len(extent) != 4
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in extent)
        or not isinstance(dx, (int, float))
        or not dx > 0
    ):
        return f"gas field without a valid extent_m / dx_m (got {extent!r:.60}, {dx!r:.20})"
    x0, y0, x1, y1 = (float(v) for v in extent)
    want = (math.ceil((y1 - y0) / dx - 1e-9), math.ceil((x1 - x0) / dx - 1e-9))
    if a.shape != want:
        return f"array 'field' has shape {a.shape}, its extent and {dx} m cells need {want}"
    return None
