"""Turn one screen of a wall layout into a Panel page: a grid of equal cells, one tile per placement."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import panel as pn
from bokeh.model import Model

from .model import Screen, WallLayout
from .registry import TileRegistry

__all__ = ["Page", "build_page"]

_EQUAL_TRACKS_CSS = """
:host {
  grid-auto-columns: minmax(0, 1fr);
  grid-auto-rows: minmax(0, 1fr);
  grid-auto-flow: column;
  grid-template-columns: unset;
  grid-template-rows: unset;
}
"""


@dataclass
class Page:
    """A built screen: the Panel ``root`` to serve and the ``tiles`` to update, in layout order."""

    root: pn.viewable.Viewable
    tiles: list[Any]
    screen: Screen
    layout: WallLayout


def _viewable(obj: Any, margin: int) -> pn.viewable.Viewable:
    if isinstance(obj, Model):
        return pn.pane.Bokeh(obj, sizing_mode="stretch_both", margin=margin)
    if isinstance(obj, pn.viewable.Viewable):
        return obj
    return pn.panel(obj, sizing_mode="stretch_both", margin=margin)


def build_page(
    layout: WallLayout,
    registry: TileRegistry,
    context: Any,
    *,
    screen: str | None = None,
    gap_px: int = 12,
    background: str = "#1d2023",
) -> Page:
    """Build the tiles of one screen (the first by default) and place them on a grid filling the window.

    ``context`` is handed to every tile factory as it is (the console passes its ``TileContext``);
    ``gap_px`` is the space between tiles in CSS px. The layout must have been checked against ``registry``
    (:func:`layouts.load_layout` does that).
    """
    sc = layout.screen(screen)
    # Panel fetches the grid's equal-track rules as a stylesheet after the first render, so the page would
    # first lay out with content-sized tracks and jump a moment later: give the same rules inline
    grid = pn.GridSpec(
        sizing_mode="stretch_both",
        ncols=sc.columns,
        nrows=sc.rows,
        margin=0,
        styles={"background": background},
        stylesheets=[_EQUAL_TRACKS_CSS],
    )
    tiles = []
    half = max(0, gap_px // 2)
    for placement in sc.tiles:
        tile = registry.create(placement.kind, context, placement.options)
        tiles.append(tile)
        grid[
            placement.row : placement.row + placement.rows, placement.col : placement.col + placement.cols
        ] = _viewable(tile.root, half)
    root = pn.Column(
        grid,
        sizing_mode="stretch_both",
        margin=0,
        styles={
            "background": background,
            "height": "100vh",
            "width": "100vw",
            "padding": f"{half}px",
            "box-sizing": "border-box",
        },
    )
    return Page(root=root, tiles=tiles, screen=sc, layout=layout)
