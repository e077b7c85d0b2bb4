"""The floor map's layers, one component each, drawn in this order (later on top): the static plan (extent,
image, structures), the gas cloud, zones, permit areas, UWB anchors, gas detectors, vibration points, people,
and the marked people (found at a workstation) with their trails.

Each layer owns its ``source`` and its glyph renderers and has ``update(snap)``; its pure static ``columns``
turns engine data into columns (see :mod:`.base`). :class:`console.web.tiles.floor_map.FloorMap` composes them.
"""

from .base import MapLayer, same_columns
from .gas import (
    GAS_FIELD_AMBER,
    GAS_FIELD_BANDS,
    GAS_FIELD_QUIET,
    GAS_FIELD_RED,
    GasCloudLayer,
    GasDetectorLayer,
)
from .marks import MarksLayer, marked_people
from .people import PeopleLayer
from .permit_areas import PermitAreaLayer
from .plan import AnchorLayer, PlanLayer
from .vibration import VIBRATION_ZONE_RANK, VibrationLayer
from .zones import ZoneLayer

__all__ = [
    "GAS_FIELD_AMBER",
    "GAS_FIELD_BANDS",
    "GAS_FIELD_QUIET",
    "GAS_FIELD_RED",
    "VIBRATION_ZONE_RANK",
    "AnchorLayer",
    "GasCloudLayer",
    "GasDetectorLayer",
    "MapLayer",
    "MarksLayer",
    "PeopleLayer",
    "PermitAreaLayer",
    "PlanLayer",
    "VibrationLayer",
    "ZoneLayer",
    "marked_people",
    "same_columns",
]
