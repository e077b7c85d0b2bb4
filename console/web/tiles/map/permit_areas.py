"""Permit areas: each live permit's area outlined in its board colour, with its id, type and state beside it."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site
from ingest.protocol.records import PermitBoard

from ....link import LinkSnapshot
from ...i18n import TEXTS, t
from ...theme import BOARD_COLORS, Theme
from .base import LABEL_BACKGROUND_ALPHA, MapLayer, empty_columns

log = logging.getLogger(__name__)

__all__ = ["PermitAreaLayer"]

_PERMIT_FONT = 26.0  # px at scale 1
_PERMIT_INSET_M = 1.0  # a permit's outline is drawn this far inside its zone's, so both stay visible


class PermitAreaLayer(MapLayer):
    """Dashed permit outlines with their labels; follows the permit board (``permit.board``)."""

    source_name = "wall-map-permits"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        ctx = self.ctx
        return self.columns(ctx.site, snap.permits if snap is not None else None, ctx.lang, ctx.theme)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.permits.version if snap.permits is not None else 0

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            self.draw_outlines(fig, line_width=theme.px(5), line_dash=[theme.px(22), theme.px(10)]),
            self.draw_text(
                fig,
                xy=("label_x", "label_y"),
                text="label",
                color="line_color",
                font_px=_PERMIT_FONT,
                box_alpha=LABEL_BACKGROUND_ALPHA,
                text_font_style="bold",
                text_align="left",
                text_baseline="top",
                y_offset="label_dy",
                text_line_height=1.1,
                padding=theme.px(4),
            ),
        ]

    @staticmethod
    def columns(site: Site, board: PermitBoard | None, lang: str, theme: Theme) -> dict[str, list[Any]]:
        """One closed outline per permit that is not over (board red, amber or green), in the board's order.

        The outline is the permit's zone (``zone``) or its own ``polygon``, drawn :data:`_PERMIT_INSET_M` metres
        inside it (so a zone's own outline stays visible), in the board colour (``BOARD_COLORS``), with
        ``'HW-1 · Hot work\\nACTIVE'`` written under its bottom-left corner (state in words; ``· ENDING SOON``
        when the board is amber for an active permit). The k-th permit on the same area (0 first) is drawn
        k + 1 insets deep and its label ``label_dy`` px lower, under the earlier ones. A permit whose area is
        unknown is not drawn.
        """
        cols = empty_columns(
            "xs", "ys", "permit", "board", "line_color", "label", "label_x", "label_y", "label_dy"
        )
        if board is None:
            return cols
        zones = {z.id: z for z in site.zones}
        on_area: dict[Any, int] = {}  # permits already drawn on the same area: nest outlines, stack labels
        for p in board.permits:
            if p.board == "grey":
                continue
            if p.zone is not None and p.zone in zones:
                poly = [(float(x), float(y)) for x, y in zones[p.zone].polygon]
            elif p.polygon:
                poly = list(p.polygon)
            else:
                log.debug("permit %s: area unknown (zone %r), not drawn", p.id, p.zone)
                continue
            area = p.zone if p.zone in zones else tuple(poly)
            k = on_area.get(area, 0)
            on_area[area] = k + 1
            xs0 = [q[0] for q in poly]
            ys0 = [q[1] for q in poly]
            cx, cy = (min(xs0) + max(xs0)) / 2.0, (min(ys0) + max(ys0)) / 2.0
            d = _PERMIT_INSET_M * (1 + k)
            xs = [x + d * float(np.sign(cx - x)) for x in xs0]
            ys = [y + d * float(np.sign(cy - y)) for y in ys0]
            state_key = f"permit.state.{p.state}"
            state = t(state_key, lang) if state_key in TEXTS["en"] else p.state.upper()
            if p.board == "amber" and p.state == "active":
                state += f" \u00b7 {t('permit.ending_soon', lang)}"
            cols["xs"].append([*xs, xs[0]])
            cols["ys"].append([*ys, ys[0]])
            cols["permit"].append(p.id)
            cols["board"].append(p.board)
            cols["line_color"].append(BOARD_COLORS[p.board])
            cols["label"].append(f"{p.id} \u00b7 {p.type_text(lang)}\n{state}")
            cols["label_x"].append(min(xs))
            cols["label_y"].append(min(ys))
            cols["label_dy"].append(theme.px(10) + k * theme.px(2 * 1.1 * _PERMIT_FONT + 12))
        return cols
