"""What every floor-map layer shares: the layer protocol, the skip-if-unchanged update and the glyph set-up.

A layer owns one ``ColumnDataSource`` (``source``) and the glyph renderers it adds to the map's figure
(``renderers``, in drawing order; layers built later draw on top). Turning engine data into columns is a pure
static function on the layer class (``columns``), tested with no server; ``columns_of(snap)`` feeds it from a
``LinkSnapshot`` (None: before anything was heard). ``update(snap)`` recomputes only when ``key(snap)`` changed
and sends only when the columns changed (a no-op update is skipped).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, ClassVar

import numpy as np
from bokeh.core.properties import value
from bokeh.models import ColumnDataSource, GlyphRenderer
from bokeh.plotting import figure

from ....link import LinkSnapshot
from ..base import TileContext

__all__ = [
    "LABEL_BACKGROUND_ALPHA",
    "MapLayer",
    "empty_columns",
    "same_columns",
]

#: opacity of the tile-coloured box behind alarm-coloured labels, which may be drawn on the gas cloud
LABEL_BACKGROUND_ALPHA = 0.75
_UNSEEN = object()  # no snapshot seen yet: the first update always computes


class MapLayer:
    """One layer of the floor map: builds its source, draws its glyphs on ``fig``, follows the link.

    Subclasses set ``source_name`` (the source's Bokeh name, which browser tests look up), and define
    ``columns_of`` and ``draw``; a live layer also defines ``key`` (what its input is: frame numbers, table
    versions). A static layer keeps the default ``key``, so ``update`` does nothing after the first call.
    """

    source_name: ClassVar[str]

    def __init__(self, ctx: TileContext, fig: figure, plan: Any = None) -> None:
        self.ctx = ctx
        self.plan = plan  # the map's LabelPlan (label_plan.py), for a layer that writes labels
        self.source = ColumnDataSource(self.columns_of(None), name=self.source_name)
        self.renderers: list[GlyphRenderer] = self.draw(fig)
        self._key: Any = _UNSEEN

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        """The layer's columns for ``snap`` (None: before the first snapshot): its ``columns`` bound to the context."""
        raise NotImplementedError

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        """Add the layer's glyphs to ``fig``; returns the renderers in drawing order."""
        raise NotImplementedError

    def key(self, snap: LinkSnapshot) -> Hashable:
        """What the layer's columns depend on in ``snap``; equal keys mean nothing to recompute."""
        return None

    def update(self, snap: LinkSnapshot) -> None:
        """Recompute when the input changed; send when the columns changed."""
        key = self.key(snap)
        if key == self._key:
            return
        self._key = key
        self.publish(self.columns_of(snap))

    def publish(self, new: dict[str, Any]) -> None:
        """Replace the source's data unless it already holds ``new``."""
        if not same_columns(new, dict(self.source.data)):
            self.source.data = new

    # -- glyph set-up shared by the layers ---------------------------------------------------------
    def draw_marks(self, fig: figure, line_width: float | str) -> GlyphRenderer:
        """Point marks at ``x``, ``y`` styled from the columns ``marker``, ``size`` (px), ``fill_color``,
        ``fill_alpha`` and ``line_color``; ``line_width`` is px or the name of a column."""
        return fig.scatter(
            "x",
            "y",
            source=self.source,
            marker="marker",
            size="size",
            fill_color="fill_color",
            fill_alpha="fill_alpha",
            line_color="line_color",
            line_width=line_width,
        )

    def draw_text(
        self,
        fig: figure,
        *,
        text: str,
        color: str,
        font_px: float,
        xy: tuple[str, str] = ("x", "y"),
        box_alpha: float | str | None = None,
        **style: Any,
    ) -> GlyphRenderer:
        """Text from the column ``text`` at the columns ``xy``, in the column ``color``, in the canvas font at
        ``font_px`` (px at scale 1). ``box_alpha`` (a number or a column name): a tile-coloured box behind the
        text with that opacity. ``style``: further ``text`` glyph properties (alignment, offsets, ...)."""
        theme = self.ctx.theme
        if box_alpha is not None:
            style = {**style, "background_fill_color": theme.palette.tile, "background_fill_alpha": box_alpha}
        return fig.text(
            *xy,
            text=text,
            source=self.source,
            text_color=color,
            text_font=value(theme.canvas_font),  # a bare string would name a data column
            text_font_size=theme.font(font_px),
            **style,
        )

    def draw_outlines(self, fig: figure, **line: Any) -> GlyphRenderer:
        """Closed outlines from the columns ``xs``, ``ys`` in the column ``line_color``; ``line``: width, dash, ..."""
        return fig.multi_line("xs", "ys", source=self.source, line_color="line_color", **line)


def empty_columns(*names: str) -> dict[str, list[Any]]:
    """``{name: []}`` for each name, in order: the start of a column builder."""
    return {k: [] for k in names}


def same_columns(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Column-wise equality, NaN equal to NaN (a no-op update is skipped, not sent)."""
    if a.keys() != b.keys():
        return False
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, np.ndarray) or isinstance(vb, np.ndarray):
            aa, bb = np.asarray(va), np.asarray(vb)
            if aa.shape != bb.shape:
                return False
            nan_ok = aa.dtype.kind == "f" and bb.dtype.kind == "f"
            if not np.array_equal(aa, bb, equal_nan=nan_ok):
                return False
        elif list(va) != list(vb):
            return False
    return True
