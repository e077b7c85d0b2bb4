"""Turn one screen of a wall layout into a Panel page: a grid of equal cells, one tile per placement."""

from __future__ import annotations

from dataclasses import dataclass, field
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
    """A built screen: the Panel ``root`` to serve and the ``tiles`` to update, in layout order.

    ``views`` holds each tile's Panel object (same order); ``stacks`` the tile indices of each stack (tiles
    sharing cells, see :mod:`layouts.model`), in layout order.
    """

    root: pn.viewable.Viewable
    tiles: list[Any]
    screen: Screen
    layout: WallLayout
    views: list[Any] = field(default_factory=list)
    stacks: list[list[int]] = field(default_factory=list)

    def refresh_stacks(self) -> None:
        """In each stack show the first tile that has something to show (``shown``, True when it has no such
        attribute) and hide the others; the last one stays shown when none has anything."""
        for stack in self.stacks:
            front = next((i for i in stack if getattr(self.tiles[i], "shown", True)), stack[-1])
            for i in stack:
                want = i == front
                # a Bokeh root is hidden itself: its Panel pane would copy every Bokeh property back on a change
                target = self.tiles[i].root if isinstance(self.tiles[i].root, Model) else self.views[i]
                if target.visible != want:
                    target.visible = want


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

    ``context`` is handed to every tile factory (the console passes its ``TileContext``); when it has a
    ``for_tile(share)`` method, each tile gets ``context.for_tile((cols / columns, rows / rows))``, its share of
    the screen (a map places its labels for its size);
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
    views = []
    half = max(0, gap_px // 2)
    by_cells: dict[tuple[int, int, int, int], list[int]] = {}
    for i, placement in enumerate(sc.tiles):
        for_tile = getattr(context, "for_tile", None)
        tile_ctx = for_tile((placement.cols / sc.columns, placement.rows / sc.rows)) if for_tile else context
        tile = registry.create(placement.kind, tile_ctx, placement.options)
        tiles.append(tile)
        views.append(_viewable(tile.root, half))
        by_cells.setdefault(placement.cells, []).append(i)
    stacks = [ids for ids in by_cells.values() if len(ids) > 1]
    for (row, col, rows, cols), ids in by_cells.items():
        # a stack is one cell holding all its tiles; the hidden ones take no room (Page.refresh_stacks)
        cell = (
            views[ids[0]]
            if len(ids) == 1
            else pn.Column(*(views[i] for i in ids), sizing_mode="stretch_both", margin=0)
        )
        grid[row : row + rows, col : col + cols] = cell
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
    page = Page(root=root, tiles=tiles, screen=sc, layout=layout, views=views, stacks=stacks)
    page.refresh_stacks()
    return page
