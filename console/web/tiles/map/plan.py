"""The static plan under everything: the site's extent, the floor plan image, structures with their names,
and (drawn later, over the permit outlines) the UWB anchors. Drawn once; ``update`` does nothing."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site

from ....link import LinkSnapshot
from ...theme import Theme
from ..base import TileContext
from .base import MapLayer, empty_columns
from .label_plan import ANCHOR_MARK, STRUCTURE_FONT, LabelPlan, slot_columns, structure_label

log = logging.getLogger(__name__)

__all__ = ["STRUCTURE_FONT", "AnchorLayer", "PlanLayer"]


def _centroid(poly: list[tuple[float, float]]) -> tuple[float, float]:
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return (min(xs) + max(xs)) / 2.0, (min(ys) + max(ys)) / 2.0


def _image_data_url(path: str | None) -> str | None:
    if not path:
        return None
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        log.warning("floor plan image %s cannot be read (%s): drawing without it", p, e.strerror)
        return None
    mime = (
        "image/png"
        if p.suffix.lower() == ".png"
        else "image/svg+xml"
        if p.suffix.lower() == ".svg"
        else "image/jpeg"
    )
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


class PlanLayer(MapLayer):
    """The plant's extent as a filled box, the floor plan image over it, and the structures (``source``)."""

    source_name = "wall-structures"

    def __init__(
        self,
        ctx: TileContext,
        fig: figure,
        plan: LabelPlan,
        *,
        image_alpha: float = 1.0,
        show_labels: bool = True,
    ) -> None:
        self.image_alpha = image_alpha
        self.show_labels = show_labels
        super().__init__(ctx, fig, plan)

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        return self.columns(self.ctx.site, self.ctx.theme, self.ctx.lang, self.plan)

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        site, theme = self.ctx.site, self.ctx.theme
        pal = theme.palette
        x0, y0, x1, y1 = site.floor_plan.extent_m
        out = [
            fig.quad(
                left=x0,
                right=x1,
                bottom=y0,
                top=y1,
                fill_color=pal.map_background,
                line_color=pal.structure_line,
                line_width=theme.px(2),
            )
        ]
        url = _image_data_url(site.floor_plan.image)
        if url:
            out.append(
                fig.image_url(
                    url=[url],
                    x=x0,
                    y=y0,
                    w=x1 - x0,
                    h=y1 - y0,
                    anchor="bottom_left",
                    global_alpha=self.image_alpha,
                )
            )
        out.append(
            fig.patches(
                "xs",
                "ys",
                source=self.source,
                fill_color="fill_color",
                fill_alpha="fill_alpha",
                line_color=pal.structure_line,
                line_width=theme.px(2),
            )
        )
        if self.show_labels:
            out.append(
                self.draw_text(
                    fig,
                    xy=("label_x", "label_y"),
                    text="label",
                    color=pal.structure_text,
                    font_px=STRUCTURE_FONT,
                    text_align="label_align",
                    text_baseline="label_baseline",
                    x_offset="label_dx",
                    y_offset="label_dy",
                )
            )
        return out

    @staticmethod
    def columns(site: Site, theme: Theme, lang: str = "en", plan: LabelPlan | None = None) -> dict[str, Any]:
        """One patch per structure (buildings, units, tanks, racks, roads, fences), its name in ``lang`` where
        ``plan`` put it (default: the plan of the default wall's map): at its centre, or at its foot for a
        unit drawn around other structures."""
        pal = theme.palette
        cols = empty_columns("xs", "ys", "fill_color", "fill_alpha", "label", "kind")
        structures = site.floor_plan.structures
        plan = plan or LabelPlan.build(site, lang)
        for s in structures:
            cols["xs"].append([p[0] for p in s.polygon])
            cols["ys"].append([p[1] for p in s.polygon])
            cols["fill_color"].append(pal.road_fill if s.kind == "road" else pal.structure_fill)
            cols["fill_alpha"].append(0.0 if s.kind == "fence" else 1.0)
            cols["label"].append(structure_label(s.label, lang))
            cols["kind"].append(s.kind)
        slots = [plan.slot(f"structure:{s.id}") for s in structures]
        return {**cols, **slot_columns(slots, theme, [_centroid(s.polygon) for s in structures])}


class AnchorLayer(MapLayer):
    """The UWB anchors: small hollow triangles."""

    source_name = "wall-anchors"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        return self.columns(self.ctx.site)

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            fig.scatter(
                "x",
                "y",
                source=self.source,
                marker="triangle",
                size=theme.px(ANCHOR_MARK),
                fill_alpha=0.0,
                line_color=theme.palette.anchor,
                line_width=theme.px(2),
            )
        ]

    @staticmethod
    def columns(site: Site) -> dict[str, Any]:
        """UWB anchors: ``x``, ``y`` in m and ``anchor`` ids."""
        return {
            "x": np.array([a.position_m[0] for a in site.anchors], dtype=np.float64),
            "y": np.array([a.position_m[1] for a in site.anchors], dtype=np.float64),
            "anchor": [a.id for a in site.anchors],
        }
