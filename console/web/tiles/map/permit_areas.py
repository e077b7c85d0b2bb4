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
from .label_plan import READING_LINE_HEIGHT, LabelPlan, slot_columns
from .labels import Label, Slot

log = logging.getLogger(__name__)

__all__ = ["PermitAreaLayer"]

_PERMIT_FONT = 26.0  # px at scale 1
_PERMIT_INSET_M = 1.0  # a permit's outline is drawn this far inside its zone's, so both stay visible
_PERMIT_PAD = 4.0  # px at scale 1 between a label's text and the edge of its box


class PermitAreaLayer(MapLayer):
    """Dashed permit outlines with their labels; follows the permit board (``permit.board``)."""

    source_name = "wall-map-permits"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        ctx = self.ctx
        return self.columns(ctx.site, snap.permits if snap is not None else None, ctx.lang, ctx.theme, self.plan)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.permits.version if snap.permits is not None else 0

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            self.draw_outlines(fig, line_width=theme.px(5), line_dash=[theme.px(22), theme.px(10)]),
            # a label that found no room beside its area points back to it
            fig.segment(
                "leader_x0", "leader_y0", "leader_x1", "leader_y1", source=self.source, line_color="line_color",
                line_width=theme.px(2),
            ),
            self.draw_text(
                fig,
                xy=("label_x", "label_y"),
                text="label",
                color="line_color",
                font_px=_PERMIT_FONT,
                box_alpha=LABEL_BACKGROUND_ALPHA,
                text_font_style="bold",
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
                text_line_height=READING_LINE_HEIGHT,
                padding=theme.px(_PERMIT_PAD),
            ),
        ]

    @staticmethod
    def columns(
        site: Site, board: PermitBoard | None, lang: str, theme: Theme, plan: LabelPlan | None = None
    ) -> dict[str, Any]:
        """One closed outline per permit that is not over (board red, amber or green), in the board's order.

        The outline is the permit's zone (``zone``) or its own ``polygon``, drawn :data:`_PERMIT_INSET_M` metres
        inside it (so a zone's own outline stays visible), in the board colour (``BOARD_COLORS``), with
        ``'HW-1 · Hot work\\nACTIVE'`` beside it (state in words; ``· ENDING SOON`` when the board is amber for an
        active permit): under its bottom-left corner when that place is free of the map's fixed labels
        (``plan``, default: the default wall's map) and of the permits' labels before it, else under the labels
        of earlier permits on the same area, else above or inside a corner. The k-th permit on the same area
        (0 first) is drawn k + 1 insets deep. A permit whose area is unknown is not drawn.
        """
        cols = empty_columns("xs", "ys", "permit", "board", "line_color", "label")
        labels: list[Label] = []
        if board is None:
            empty = {k: np.zeros(0) for k in ("leader_x0", "leader_y0", "leader_x1", "leader_y1")}
            return {**cols, **slot_columns([], theme, []), **empty}
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
            text = f"{p.id} \u00b7 {p.type_text(lang)}\n{state}"
            cols["label"].append(text)
            labels.append(_permit_label(p.id, text, min(xs), min(ys), max(xs), max(ys)))
        plan = plan or LabelPlan.build(site, lang)
        where = plan.place_more(labels, owner="permits")  # people's and marks' labels keep clear of these
        placed = [where[lab.key] for lab in labels]
        slots = [p.slot for p in placed]
        nan = (float("nan"),) * 4
        leaders = np.array([p.leader or nan for p in placed], dtype=np.float64).reshape(-1, 4)
        return {
            **cols,
            **slot_columns(slots, theme, [(s.x, s.y) for s in slots]),
            **{k: leaders[:, i].copy() for i, k in enumerate(("leader_x0", "leader_y0", "leader_x1", "leader_y1"))},
        }


def _permit_label(permit: str, text: str, x0: float, y0: float, x1: float, y1: float) -> Label:
    """A permit area's label and where it may go, first choice first: under the area's bottom-left corner (and
    further down, under the labels of other permits on the same area), under its bottom-right corner, above its
    top corners, beside it (right, then left), inside its top-left corner."""
    step = 2 * READING_LINE_HEIGHT * _PERMIT_FONT + 2 * _PERMIT_PAD + 8
    under = tuple(Slot(x0, y0, 0.0, 10.0 + k * step, "left", "top") for k in range(4))
    above = tuple(Slot(x0, y1, 0.0, -10.0 - k * step, "left", "bottom") for k in range(3))
    cy = (y0 + y1) / 2
    return Label(
        f"permit:{permit}",
        text,
        _PERMIT_FONT,
        (
            *under,
            Slot(x1, y0, 0.0, 10.0, "right", "top"),
            *above,
            Slot(x1, y1, 0.0, -10.0, "right", "bottom"),
            Slot(x1, cy, 10.0, 0.0, "left", "middle"),
            Slot(x0, cy, -10.0, 0.0, "right", "middle"),
            Slot(x1, y0, 10.0, 10.0, "left", "top"),
            Slot(x0, y0, -10.0, 10.0, "right", "top"),
            Slot(x1, y1, 10.0, -10.0, "left", "bottom"),
            Slot(x0, y1, -10.0, -10.0, "right", "bottom"),
            Slot(x0, y1, 8.0, 8.0, "left", "top"),
        ),
        mark=(x0, y0, 0.0),  # no free place beside the area: further out, with a leader to its corner
        bold=True,
        line_height=READING_LINE_HEIGHT,
        padding=_PERMIT_PAD,
    )
