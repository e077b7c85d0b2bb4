"""Wall layouts as data (which tile where on which screen) and the code that turns one into a page.

Public names: :class:`WallLayout`, :class:`Screen`, :class:`TilePlacement`, :class:`LayoutError`,
:func:`load_layout`, :func:`parse_layout`, :func:`find_layout`, :func:`layout_names`, :data:`LAYOUTS_DIR`,
:class:`TileRegistry`, :class:`TileKind`, :func:`build_page`, :class:`Page`.

The page code knows no tile: tile kinds come from a :class:`TileRegistry` (the console's is
``console.web.tiles.WALL_TILES``).
"""

from .model import (
    LAYOUTS_DIR,
    LayoutError,
    Screen,
    TilePlacement,
    WallLayout,
    find_layout,
    layout_names,
    load_layout,
    parse_layout,
)
from .page import Page, build_page
from .registry import TileKind, TileRegistry

__all__ = [
    "LAYOUTS_DIR",
    "LayoutError",
    "Page",
    "Screen",
    "TileKind",
    "TilePlacement",
    "TileRegistry",
    "WallLayout",
    "build_page",
    "find_layout",
    "layout_names",
    "load_layout",
    "parse_layout",
]
