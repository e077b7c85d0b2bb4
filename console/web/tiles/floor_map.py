"""The floor map: the plant drawn in site metres with everyone's latest fix, gas detectors and zones on it.

One component per layer (:mod:`console.web.tiles.map`): the static plan, the gas cloud (``display.gasfield``),
zones (their outline turns to the alarm's colour while an alarm names the zone), permit areas
(``permit.board``), anchors, gas detectors (``display.sensors``), vibration points and people
(``display.positions``). :class:`FloorMap` owns the figure, builds the layers in drawing order, calls each
layer's ``update`` and shows the link-lost banner; the key under the map is :meth:`FloorMap.legend_html`.

ISA-101: everything normal is grey or white-ish; colour only for abnormal states, always with a shape or text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from bokeh.layouts import column
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    Div,
    InlineStyleSheet,
    Label,
    MetricLength,
    Range1d,
    ScaleBar,
)
from bokeh.plotting import figure
from pydantic import BaseModel, ConfigDict, Field, field_validator

from config import Site

from ...link import LinkSnapshot
from ..i18n import t
from ..theme import PRIORITY_STYLE, Theme
from .base import TileContext
from .map import (
    GAS_FIELD_AMBER,
    GAS_FIELD_BANDS,
    GAS_FIELD_QUIET,
    GAS_FIELD_RED,
    VIBRATION_ZONE_RANK,
    AnchorLayer,
    GasCloudLayer,
    GasDetectorLayer,
    MapLayer,
    MarksLayer,
    PeopleLayer,
    PermitAreaLayer,
    PlanLayer,
    VibrationLayer,
    ZoneLayer,
)
from .map.label_plan import LabelPlan, LeaderLayer, map_view, view_extent, view_pad

__all__ = [
    "GAS_FIELD_AMBER",
    "GAS_FIELD_BANDS",
    "GAS_FIELD_QUIET",
    "GAS_FIELD_RED",
    "VIBRATION_ZONE_RANK",
    "FloorMap",
    "FloorMapOptions",
]

_FIT_EXTENT_JS = """
const w = fig.inner_width, h = fig.inner_height;
if (!(w > 0 && h > 0)) return;
const [x0, y0, x1, y1] = extent;
let dx = x1 - x0 + 2 * pad, dy = y1 - y0 + 2 * pad;
if (dx / dy > w / h) { dy = dx * h / w; } else { dx = dy * w / h; }
// the spare room goes away from the pinned side, which has no padding (a quadrant of a video wall meets its
// neighbour exactly at the seam)
const xs = anchor.includes('e') ? x1 - dx : anchor.includes('w') ? x0 : (x0 + x1 - dx) / 2;
const ys = anchor.includes('n') ? y1 - dy : anchor.includes('s') ? y0 : (y0 + y1 - dy) / 2;
xr.setv({start: xs, end: xs + dx});
yr.setv({start: ys, end: ys + dy});
"""


class FloorMapOptions(BaseModel):
    """Layout options of a ``floor_map`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    show_anchors: bool = True
    show_gas: bool = True
    show_gas_field: bool = True
    show_vibration: bool = True
    show_permits: bool = True
    show_structure_labels: bool = True
    show_legend: bool = True
    image_alpha: float = Field(default=1.0, ge=0.0, le=1.0)
    #: the part of the site shown, as fractions of its extent: x0, y0, x1, y1 (0 = west/south edge); e.g.
    #: [0, 0.5, 0.5, 1] is the north-west quadrant. Maps showing equal parts in equal tiles share one scale.
    view: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)
    #: which side of the view stays at the tile's edge when the tile is wider or taller than the view: "center",
    #: or a compass side or corner ("se": the south-east corner; the spare room goes north and west). The
    #: quadrants of a video wall pin their shared corner, so the plant continues across the bezels.
    anchor: Literal["center", "n", "ne", "e", "se", "s", "sw", "w", "nw"] = "center"

    @field_validator("view")
    @classmethod
    def _view_inside(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = v
        if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
            raise ValueError(f"view must be fractions 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, got {list(v)}")
        return v


def _rgb(color: str) -> tuple[int, int, int]:
    """``'#ff9a1f'`` -> (255, 154, 31)."""
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


class FloorMap:
    """The floor map tile: the figure, its layers (``layers``, in drawing order) and the legend under it.

    ``source`` is the people layer's (one row per person, site order by alarm rank). A layer the options or
    the site leave out (no detectors, no vibration points, ...) is not built: its attribute is None.
    """

    def __init__(self, ctx: TileContext, options: FloorMapOptions | None = None, *,
                 picked: Callable[[], Iterable[str]] = tuple) -> None:
        self.ctx = ctx
        self.options = opts = options or FloorMapOptions()
        site, theme = ctx.site, ctx.theme
        self.stale_s = site.engine.fix_stale_s
        self.figure = fig = self._figure(site, theme, opts.view, opts.anchor)
        # every fixed label placed once, for this tile's size and view, before the layers draw them
        self.label_plan = labels = LabelPlan.build(
            site, ctx.lang, map_view(site, ctx.share, opts.view, legend=opts.show_legend, anchor=opts.anchor)
        )

        self.plan = PlanLayer(
            ctx, fig, labels, image_alpha=opts.image_alpha, show_labels=opts.show_structure_labels
        )
        self.gas_cloud = GasCloudLayer(ctx, fig) if opts.show_gas_field else None
        self.zones = ZoneLayer(ctx, fig, labels)
        self.permit_areas = PermitAreaLayer(ctx, fig, labels) if opts.show_permits else None
        self.anchors = AnchorLayer(ctx, fig) if opts.show_anchors and site.anchors else None
        self.leaders = LeaderLayer(ctx, fig, labels)
        self.gas = GasDetectorLayer(ctx, fig, labels) if opts.show_gas and site.gas_detectors else None
        self.vibration = (
            VibrationLayer(ctx, fig, labels) if opts.show_vibration and site.vibration_points else None
        )
        self.people = PeopleLayer(ctx, fig, labels)
        # people found at a workstation: marked on every wall by the engine, or ``picked`` on this map
        self.marks = MarksLayer(ctx, fig, labels, picked=picked)
        self.layers: list[MapLayer] = [
            layer
            for layer in (
                self.plan,
                self.gas_cloud,
                self.zones,
                self.permit_areas,
                self.anchors,
                self.leaders,
                self.gas,
                self.vibration,
                self.people,
                self.marks,
            )
            if layer is not None
        ]
        self.source = self.people.source

        self._add_scale_bar(fig, theme)
        self.lost_label = self._add_lost_label(fig, view_extent(site, opts.view), theme, ctx.lang)
        if opts.show_legend:
            legend = Div(
                text=self.legend_html(site, ctx.lang, theme, opts),
                stylesheets=[InlineStyleSheet(css=theme.tile_css())],
                sizing_mode="stretch_width",
                height=theme.px(104),
                styles={"background": theme.palette.tile},
                name="wall-map-legend",
            )
            self.root = column(
                fig, legend, sizing_mode="stretch_both", spacing=0, styles={"background": theme.palette.tile}
            )
        else:
            self.root = fig

    # -- the figure and its fixed furniture ------------------------------------------------------------------
    @staticmethod
    def _figure(
        site: Site, theme: Theme, view: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0), anchor: str = "center"
    ) -> figure:
        pal = theme.palette
        x0, y0, x1, y1 = view_extent(site, view)
        pad = view_pad(site, view)
        fig = figure(
            x_range=Range1d(x0 - pad, x1 + pad),
            y_range=Range1d(y0 - pad, y1 + pad),
            sizing_mode="stretch_both",
            toolbar_location=None,
            tools="",
            background_fill_color=pal.tile,
            border_fill_color=pal.tile,
            outline_line_color=None,
            min_border=theme.px(8),
            name="wall-floor-map",
        )
        fig.axis.visible = False
        fig.grid.visible = False
        # metres must be square whatever the tile's shape: refit the ranges in the browser whenever the plot
        # area changes size (Bokeh's match_aspect can keep a stale fit when the grid settles late)
        fit = CustomJS(
            args={"fig": fig, "xr": fig.x_range, "yr": fig.y_range, "extent": [x0, y0, x1, y1], "pad": pad,
                  "anchor": "" if anchor == "center" else anchor},
            code=_FIT_EXTENT_JS,
        )
        fig.js_on_change("inner_width", fit)
        fig.js_on_change("inner_height", fit)
        return fig

    @staticmethod
    def _add_scale_bar(fig: figure, theme: Theme) -> None:
        pal = theme.palette
        fig.add_layout(
            ScaleBar(
                range=fig.x_range,
                unit="m",
                dimensional=MetricLength(),
                location="bottom_left",
                bar_line_color=pal.text_dim,
                bar_line_width=theme.px(3),
                label_text_color=pal.text_dim,
                label_text_font_size=theme.font(28),
                label_text_font=theme.canvas_font,
                background_fill_alpha=0.0,
                border_line_alpha=0.0,
                bar_length=0.15,
            )
        )

    @staticmethod
    def _add_lost_label(
        fig: figure, extent: tuple[float, float, float, float], theme: Theme, lang: str
    ) -> Label:
        pal = theme.palette
        x0, _, x1, y1 = extent
        label = Label(
            x=(x0 + x1) / 2.0,
            y=y1,
            x_units="data",
            y_units="data",
            text=t("map.link_lost", lang),
            text_font=theme.canvas_font,
            text_font_size=theme.font(56),
            text_font_style="bold",
            text_color=pal.link_lost_text,
            background_fill_color=pal.link_lost_background,
            background_fill_alpha=1.0,
            padding=theme.px(16),
            visible=False,
            name="wall-map-link-lost",
            text_align="center",
            text_baseline="top",
        )
        fig.add_layout(label)
        return label

    @staticmethod
    def legend_html(site: Site, lang: str, theme: Theme, options: FloorMapOptions | None = None) -> str:
        """The key under the map: what a dot, a ring and each priority shape mean; then the gas field's bands,
        the machine glyph and the permit outline (each only when the map draws it)."""
        pal = theme.palette
        opts = options or FloorMapOptions()
        parts = []
        for r in (4, 3, 2, 1):
            s = PRIORITY_STYLE[r]
            name = t(f"priority.{('none', 'low', 'medium', 'high', 'critical')[r]}", lang)
            parts.append(f'<span style="color:{s.color}">{s.symbol} {name}</span>')
        items = [t("map.legend", lang, s=f"{site.engine.fix_stale_s:g}", alarms="&nbsp;&nbsp;".join(parts))]
        if opts.show_permits:
            items.append(t("map.legend_permit", lang))
        if opts.show_gas_field and site.gas_detectors:

            def swatch(color: str, alpha: float) -> str:
                r, g, b = _rgb(color)
                return (
                    f'<span style="display:inline-block;width:{theme.px(40)}px;height:{theme.px(22)}px;'
                    f"background:rgba({r},{g},{b},{alpha});border:{theme.px(1)}px solid {pal.structure_line};"
                    'vertical-align:middle"></span>'
                )

            items.append(
                t(
                    "map.legend_gas",
                    lang,
                    quiet=swatch(pal.gas_field_quiet, GAS_FIELD_BANDS[1][2]),
                    amber=swatch(PRIORITY_STYLE[3].color, GAS_FIELD_BANDS[3][2]),
                    red=swatch(PRIORITY_STYLE[4].color, GAS_FIELD_BANDS[4][2]),
                )
            )
        if opts.show_vibration and site.vibration_points:
            items.append(t("map.legend_vib", lang, mark=f'<span style="color:{pal.machine}">\u2295</span>'))
        spans = "".join(f'<span style="white-space:pre">{x}</span>' for x in items)
        return (
            f'<div class="wf-legend" style="font-size:{theme.px(30)}px;color:{pal.text_dim};'
            f"padding:{theme.px(8)}px {theme.px(18)}px;display:flex;flex-wrap:wrap;"
            f'column-gap:{theme.px(48)}px;row-gap:{theme.px(6)}px;line-height:1.2">{spans}</div>'
        )

    # -- live update -----------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Refresh the live layers from the link's snapshot; each layer only when its input changed."""
        for layer in self.layers:
            layer.update(snap)
        lost = snap.state == "lost"
        if self.lost_label.visible != lost:
            self.lost_label.visible = lost

    # -- the names callers used before the map was split into layers ----------------------------------------
    people_columns = staticmethod(PeopleLayer.columns)
    gas_columns = staticmethod(GasDetectorLayer.columns)
    zone_columns = staticmethod(ZoneLayer.columns)
    gas_field_columns = staticmethod(GasCloudLayer.columns)
    vibration_zones = staticmethod(VibrationLayer.zones)
    vibration_columns = staticmethod(VibrationLayer.columns)
    permit_area_columns = staticmethod(PermitAreaLayer.columns)
    structure_columns = staticmethod(PlanLayer.columns)
    anchor_columns = staticmethod(AnchorLayer.columns)

    @property
    def gas_source(self) -> ColumnDataSource | None:
        return self.gas.source if self.gas else None

    @property
    def gasfield_source(self) -> ColumnDataSource | None:
        return self.gas_cloud.source if self.gas_cloud else None

    @property
    def zone_source(self) -> ColumnDataSource:
        return self.zones.source

    @property
    def vibration_source(self) -> ColumnDataSource | None:
        return self.vibration.source if self.vibration else None

    @property
    def permit_source(self) -> ColumnDataSource | None:
        return self.permit_areas.source if self.permit_areas else None
