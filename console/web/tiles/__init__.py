"""Wall tiles. Each owns ``source`` (its Bokeh data) and ``root`` (what the page shows) and has
``update(snapshot)``; turning engine data into columns is a pure static function on the class.

``WALL_TILES`` is the registry of tile kinds that layout files name: ``floor_map``, ``alarm_list``,
``status_bar``, ``permit_board``, ``muster``, ``kpi``. A new tile is one module here and one ``register`` line below.
A tile may have a ``shown`` attribute (False: nothing to show now); a layout can stack such a tile on the
cells of another one (``stack: true``), and the page shows the first tile of the stack that has something
to show.
"""

from layouts import TileRegistry

from .alarm_list import AlarmList, AlarmListOptions
from .base import Tile, TileContext, format_clock, format_value, site_timezone
from .floor_map import FloorMap, FloorMapOptions
from .kpi import KpiOptions, KpiTile
from .muster import MusterOptions, MusterTile, format_elapsed
from .permit_board import PermitBoardOptions, PermitBoardTile, person_label
from .status_bar import StatusBar, StatusBarOptions

__all__ = [
    "WALL_TILES",
    "AlarmList",
    "AlarmListOptions",
    "FloorMap",
    "FloorMapOptions",
    "KpiOptions",
    "KpiTile",
    "MusterOptions",
    "MusterTile",
    "PermitBoardOptions",
    "PermitBoardTile",
    "StatusBar",
    "StatusBarOptions",
    "Tile",
    "TileContext",
    "format_clock",
    "format_elapsed",
    "format_value",
    "person_label",
    "site_timezone",
]

WALL_TILES = TileRegistry()
WALL_TILES.register(
    "floor_map", FloorMap, FloorMapOptions, "plant map with people, zones, gas, machines, permits"
)
WALL_TILES.register("alarm_list", AlarmList, AlarmListOptions, "live alarms, most important first")
WALL_TILES.register("status_bar", StatusBar, StatusBarOptions, "site, engine clock, throughput, link health")
WALL_TILES.register(
    "permit_board", PermitBoardTile, PermitBoardOptions, "live permits-to-work, board colours"
)
WALL_TILES.register(
    "muster", MusterTile, MusterOptions, "emergency muster headcount (only during an emergency)"
)
WALL_TILES.register("kpi", KpiTile, KpiOptions, "people, alarm rate against EEMUA 191, unacknowledged, permits")
