"""Wall tiles. Each owns ``source`` (its Bokeh data) and ``root`` (what the page shows) and has
``update(snapshot)``; turning engine data into columns is a pure static function on the class.

``WALL_TILES`` is the registry of tile kinds that layout files name: ``floor_map``, ``alarm_list``,
``status_bar``. A new tile is one module here and one ``register`` line below.
"""

from layouts import TileRegistry

from .alarm_list import AlarmList, AlarmListOptions
from .base import Tile, TileContext, format_clock, format_value, site_timezone
from .floor_map import FloorMap, FloorMapOptions
from .status_bar import StatusBar, StatusBarOptions

__all__ = [
    "WALL_TILES",
    "AlarmList",
    "AlarmListOptions",
    "FloorMap",
    "FloorMapOptions",
    "StatusBar",
    "StatusBarOptions",
    "Tile",
    "TileContext",
    "format_clock",
    "format_value",
    "site_timezone",
]

WALL_TILES = TileRegistry()
WALL_TILES.register("floor_map", FloorMap, FloorMapOptions, "plant map with people, zones, gas detectors")
WALL_TILES.register("alarm_list", AlarmList, AlarmListOptions, "live alarms, most important first")
WALL_TILES.register("status_bar", StatusBar, StatusBarOptions, "site, engine clock, throughput, link health")
