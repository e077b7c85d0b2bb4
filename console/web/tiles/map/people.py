"""People: everyone's latest fix (``display.positions``, several times a second), drawn on top of the map.

ISA-101: a person with no alarm is a small light dot; one with an active alarm gets the priority's colour AND
its shape (square, triangle, diamond, inverted triangle) AND a bigger size AND an id label; a fix older than
``site.engine.fix_stale_s`` is drawn hollow and dim.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site

from ....link import LinkSnapshot
from ...theme import PRIORITY_STYLE, Theme
from ..base import TileContext
from .base import LABEL_BACKGROUND_ALPHA, MapLayer, empty_columns, same_columns

__all__ = ["PeopleLayer"]

_PERSON_SIZE = 18.0
_PERSON_ALARM_SIZE = 40.0
_PERSON_FONT = 30.0  # px at scale 1
_MOVING = ("x", "y")


class PeopleLayer(MapLayer):
    """One mark per person (``source``: one row per person, site order by alarm rank) and alarm labels.

    When only positions moved, only ``x`` and ``y`` are sent.
    """

    source_name = "wall-people"

    def __init__(self, ctx: TileContext, fig: figure) -> None:
        self.stale_s = ctx.site.engine.fix_stale_s
        self._style: dict[str, Any] | None = None  # the columns last sent but x, y
        super().__init__(ctx, fig)

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        arrays = snap.positions.arrays if snap is not None and snap.positions else None
        return self.columns(self.ctx.site, arrays, self.stale_s, self.ctx.theme)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.positions.number if snap.positions else 0

    def publish(self, new: dict[str, Any]) -> None:
        style = {k: v for k, v in new.items() if k not in _MOVING}
        if self._style is not None and same_columns(style, self._style):
            self.source.data.update(x=new["x"], y=new["y"])  # only the moving part goes out
        else:
            self.source.data = new
            self._style = style

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            self.draw_marks(fig, "line_width"),
            self.draw_text(
                fig,
                text="label",
                color="label_color",
                font_px=_PERSON_FONT,
                box_alpha=LABEL_BACKGROUND_ALPHA,
                text_font_style="bold",
                text_align="left",
                text_baseline="bottom",
                x_offset=theme.px(22),
                y_offset=-theme.px(12),
            ),
        ]

    @staticmethod
    def columns(
        site: Site, arrays: Mapping[str, np.ndarray] | None, stale_s: float, theme: Theme
    ) -> dict[str, Any]:
        """One row per person, in site order except that people with alarms come last (drawn on top).

        ``arrays`` is a ``display.positions`` frame's arrays (``xyz_m`` [P, 3], ``age_s`` [P], ``alarm`` [P]) or
        None before the first frame (everyone unplaced). Columns: ``x``, ``y`` (m, NaN = no fix), ``person``,
        ``rank`` (0 none .. 4 critical), ``stale`` (fix older than ``stale_s`` or none), ``marker``, ``size``
        (px), ``fill_color``, ``fill_alpha``, ``line_color``, ``line_width`` (px), ``label``, ``label_color``.
        """
        pal = theme.palette
        n = len(site.people)
        if arrays is None:
            xyz = np.full((n, 3), np.nan)
            age = np.full(n, np.nan)
            rank = np.zeros(n, dtype=np.int64)
        else:
            xyz = np.asarray(arrays["xyz_m"], dtype=np.float64).reshape(n, 3)
            age = np.asarray(arrays["age_s"], dtype=np.float64)
            rank = np.clip(np.asarray(arrays["alarm"]).astype(np.int64), 0, 4)
        stale = ~(age <= stale_s)  # NaN age (never fixed) counts as stale
        order = np.argsort(rank, kind="stable")
        ids = [p.id for p in site.people]
        cols = empty_columns("person", "marker", "fill_color", "line_color", "label", "label_color")
        size = np.empty(n)
        fill_alpha = np.empty(n)
        line_width = np.empty(n)
        for j, i in enumerate(order):
            r = int(rank[i])
            s = bool(stale[i])
            cols["person"].append(ids[i])
            if r > 0:
                style = PRIORITY_STYLE[r]
                cols["marker"].append(style.marker)
                cols["fill_color"].append(style.color)
                cols["line_color"].append(style.color if s else pal.outline_dark)
                cols["label"].append(ids[i])
                cols["label_color"].append(style.color)
                size[j] = theme.px(_PERSON_ALARM_SIZE)
                line_width[j] = theme.px(4) if s else theme.px(2)
            else:
                cols["marker"].append("circle")
                cols["fill_color"].append(pal.person)
                cols["line_color"].append(pal.person_stale if s else pal.person_line)
                cols["label"].append("")
                cols["label_color"].append(pal.text)
                size[j] = theme.px(_PERSON_SIZE)
                line_width[j] = theme.px(3) if s else theme.px(1.5)
            fill_alpha[j] = 0.0 if s else 1.0
        return {
            "x": xyz[order, 0].copy(),
            "y": xyz[order, 1].copy(),
            "rank": rank[order].copy(),
            "stale": stale[order].copy(),
            "size": size,
            "fill_alpha": fill_alpha,
            "line_width": line_width,
            **cols,
        }
