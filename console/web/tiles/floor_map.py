"""The floor map: the plant drawn in site metres with everyone's latest fix, gas detectors and zones on it.

Static layers (floor plan image, structures, anchors) are drawn once. Live layers are one
``ColumnDataSource`` each: people (updated several times a second, usually only ``x``/``y``), gas detectors
(about once a second), zones (their outline turns to the alarm's colour while an alarm names the zone), the
gas field (``display.gasfield``, 1 Hz), vibration points (with ``display.sensors``) and permit areas
(``permit.board``).

ISA-101: everything normal is grey or white-ish; a person with an active alarm gets the priority's colour AND
its shape (square, triangle, diamond, inverted triangle) AND a bigger size AND an id label; a fix older than
``site.engine.fix_stale_s`` is drawn hollow and dim. The gas field is a quiet overlay: transparent below 20 % of
the detectors' second alarm level, a light grey haze below 50 %, amber up to the second level, red beyond
(filled iso-bands, two shades each), the detectors' own readings (with ``A1``/``A2``) staying on top. A machine in vibration zone C or D takes the colour
and shape of its vibration alarm's priority with its zone letter; a permit's area is outlined in its board colour
with its id, type and state written beside it.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.core.properties import value
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
from contourpy import contour_generator
from pydantic import BaseModel, ConfigDict, Field

from config import Site
from config.vibration import VibrationSettings
from ingest.protocol.names import QUALITY_BAD, QUALITY_NO_DATA
from ingest.protocol.records import AlarmRecord, PermitBoard

from ...link import LinkSnapshot
from ..i18n import TEXTS, t
from ..theme import BOARD_COLORS, PRIORITY_STYLE, Theme
from .base import TileContext, format_value

log = logging.getLogger(__name__)

__all__ = [
    "GAS_FIELD_AMBER",
    "GAS_FIELD_BANDS",
    "GAS_FIELD_QUIET",
    "GAS_FIELD_RED",
    "VIBRATION_ZONE_RANK",
    "FloorMap",
    "FloorMapOptions",
]

#: gas field bands, as a fraction of each detector's second alarm level (the field's unit): transparent below
#: ``GAS_FIELD_QUIET``, a grey haze up to ``GAS_FIELD_AMBER`` (about the first level on the demo plant's
#: detectors), amber up to ``GAS_FIELD_RED`` (= the second level), red at and above it
GAS_FIELD_QUIET = 0.2
GAS_FIELD_AMBER = 0.5
GAS_FIELD_RED = 1.0
#: the filled iso-bands drawn: (lower bound, colour, fill alpha); each band reaches the next one's lower bound,
#: the last one has no upper bound. Two shades per colour so the cloud's gradient shows without a new colour.
GAS_FIELD_BANDS: tuple[tuple[float, str, float], ...] = (
    (GAS_FIELD_QUIET, "quiet", 0.10),
    (0.35, "quiet", 0.18),
    (GAS_FIELD_AMBER, "amber", 0.30),
    (0.75, "amber", 0.42),
    (GAS_FIELD_RED, "red", 0.55),
)
#: ISO 20816-3 zone (1 A .. 4 D) -> the priority of the alarm alarms/vibration.py raises for it (0: none):
#: zone C medium, zone D high. The map uses that priority's colour and shape so that it matches the alarm list;
#: when the alarm list holds the point's zone alarm, its actual priority wins.
VIBRATION_ZONE_RANK: Mapping[int, int] = {0: 0, 1: 0, 2: 0, 3: 2, 4: 3}
_ZONE_LETTERS = ("?", "A", "B", "C", "D")
_VIB_SIZE = 22.0
_VIB_ALARM_SIZE = 34.0
_VIB_FONT = 24.0
_PERMIT_FONT = 26.0
_LABEL_BACKGROUND_ALPHA = 0.75  # behind alarm-coloured labels, which may be drawn on the gas cloud
_PERMIT_INSET_M = 1.0  # a permit's outline is drawn this far inside its zone's, so both stay visible
#: zone kind -> (dash pattern, line width at scale 1, quiet?) -- kinds differ by line, not by colour
_ZONE_STYLE: Mapping[str, tuple[str, float, bool]] = {
    "restricted": ("solid", 4.0, False),
    "hazardous": ("dashed", 4.0, False),
    "confined_space": ("dotted", 5.0, False),
    "muster_point": ("dashdot", 4.0, False),
    "area": ("solid", 2.0, True),
}
_ZONE_ALARM_WIDTH = 8.0
_PERSON_SIZE = 18.0
_PERSON_ALARM_SIZE = 40.0
_GAS_SIZE = 20.0
_GAS_ALARM_SIZE = 34.0
_GAS_FONT = 26.0  # px at scale 1
_ZONE_FONT = 28.0
_STRUCTURE_FONT = 26.0
_REFERENCE_MAP_WIDTH_PX = 2880  # the map's width on the default wall: 9 of 12 columns of 3840 px
_FIT_EXTENT_JS = """
const w = fig.inner_width, h = fig.inner_height;
if (!(w > 0 && h > 0)) return;
const [x0, y0, x1, y1] = extent;
let dx = x1 - x0 + 2 * pad, dy = y1 - y0 + 2 * pad;
if (dx / dy > w / h) { dy = dx * h / w; } else { dx = dy * w / h; }
const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
xr.setv({start: cx - dx / 2, end: cx + dx / 2});
yr.setv({start: cy - dy / 2, end: cy + dy / 2});
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


def _rgb(color: str) -> tuple[int, int, int]:
    """``'#ff9a1f'`` -> (255, 154, 31)."""
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


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


class FloorMap:
    """The floor map tile. ``source`` holds the people (one row per person, site order by alarm rank)."""

    def __init__(self, ctx: TileContext, options: FloorMapOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or FloorMapOptions()
        site, theme, lang = ctx.site, ctx.theme, ctx.lang
        pal = theme.palette
        self.stale_s = site.engine.fix_stale_s
        self.source = ColumnDataSource(
            self.people_columns(site, None, self.stale_s, theme), name="wall-people"
        )
        self._gas_placement = self.place_gas_labels(site, lang, theme)
        self.gas_source = ColumnDataSource(
            self.gas_columns(site, None, lang, theme, self._gas_placement), name="wall-gas"
        )
        self.zone_source = ColumnDataSource(self.zone_columns(site, None, lang, theme), name="wall-zones")
        self.gasfield_source = ColumnDataSource(self.gas_field_columns(None, theme), name="wall-gasfield")
        self.vibration_source = ColumnDataSource(
            self.vibration_columns(site, None, None, lang, theme), name="wall-vibration"
        )
        self.permit_source = ColumnDataSource(
            self.permit_area_columns(site, None, lang, theme), name="wall-map-permits"
        )
        self._people_style: dict[str, Any] | None = None
        self._seen: dict[str, Any] = {}

        x0, y0, x1, y1 = site.floor_plan.extent_m
        font = value(theme.canvas_font)  # a bare string would name a data column
        pad = 0.01 * max(x1 - x0, y1 - y0)
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
        fig.quad(
            left=x0,
            right=x1,
            bottom=y0,
            top=y1,
            fill_color=pal.map_background,
            line_color=pal.structure_line,
            line_width=theme.px(2),
        )
        # metres must be square whatever the tile's shape: refit the ranges in the browser whenever the plot
        # area changes size (Bokeh's match_aspect can keep a stale fit when the grid settles late)
        fit = CustomJS(
            args={"fig": fig, "xr": fig.x_range, "yr": fig.y_range, "extent": [x0, y0, x1, y1], "pad": pad},
            code=_FIT_EXTENT_JS,
        )
        fig.js_on_change("inner_width", fit)
        fig.js_on_change("inner_height", fit)
        url = _image_data_url(site.floor_plan.image)
        if url:
            fig.image_url(
                url=[url],
                x=x0,
                y=y0,
                w=x1 - x0,
                h=y1 - y0,
                anchor="bottom_left",
                global_alpha=self.options.image_alpha,
            )

        st = ColumnDataSource(self.structure_columns(site, theme), name="wall-structures")
        fig.patches(
            "xs",
            "ys",
            source=st,
            fill_color="fill_color",
            fill_alpha="fill_alpha",
            line_color=pal.structure_line,
            line_width=theme.px(2),
        )
        if self.options.show_structure_labels:
            fig.text(
                "label_x",
                "label_y",
                text="label",
                source=st,
                text_color=pal.structure_text,
                text_font=font,
                text_font_size=theme.font(_STRUCTURE_FONT),
                text_align="center",
                text_baseline="label_baseline",
            )

        if self.options.show_gas_field:
            # under the zones, detectors and people: a haze over the plant, never hiding what is drawn on it
            fig.multi_polygons(
                "xs",
                "ys",
                source=self.gasfield_source,
                fill_color="fill_color",
                fill_alpha="fill_alpha",
                line_color=None,
                name="wall-gasfield-glyph",
            )

        fig.multi_line(
            "xs",
            "ys",
            source=self.zone_source,
            line_color="line_color",
            line_width="line_width",
            line_dash="line_dash",
            line_alpha=0.95,
        )
        fig.text(
            "label_x",
            "label_y",
            text="label",
            source=self.zone_source,
            text_color="label_color",
            text_font=font,
            text_font_size=theme.font(_ZONE_FONT),
            text_align="label_align",
            text_baseline="top",
            x_offset="label_x_offset",
            y_offset=theme.px(8),
        )

        if self.options.show_permits:
            fig.multi_line(
                "xs",
                "ys",
                source=self.permit_source,
                line_color="line_color",
                line_width=theme.px(5),
                line_dash=[theme.px(22), theme.px(10)],
            )
            fig.text(
                "label_x",
                "label_y",
                text="label",
                source=self.permit_source,
                text_color="line_color",
                text_font=font,
                text_font_size=theme.font(_PERMIT_FONT),
                text_font_style="bold",
                text_align="left",
                text_baseline="top",
                y_offset="label_dy",
                text_line_height=1.1,
                background_fill_color=pal.tile,
                background_fill_alpha=_LABEL_BACKGROUND_ALPHA,
                padding=theme.px(4),
            )

        if self.options.show_anchors and site.anchors:
            an = ColumnDataSource(self.anchor_columns(site), name="wall-anchors")
            fig.scatter(
                "x",
                "y",
                source=an,
                marker="triangle",
                size=theme.px(14),
                fill_alpha=0.0,
                line_color=pal.anchor,
                line_width=theme.px(2),
            )

        if self.options.show_gas and site.gas_detectors:
            fig.scatter(
                "x",
                "y",
                source=self.gas_source,
                marker="marker",
                size="size",
                fill_color="fill_color",
                fill_alpha="fill_alpha",
                line_color="line_color",
                line_width=theme.px(2),
            )
            fig.text(
                "x",
                "y",
                text="text",
                source=self.gas_source,
                text_color="text_color",
                text_font=font,
                text_font_size=theme.font(_GAS_FONT),
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
                text_line_height=1.1,
                # an alarm reading stays readable over the gas cloud (red on a red cloud would vanish)
                background_fill_color=pal.tile,
                background_fill_alpha="label_bg_alpha",
            )

        if self.options.show_vibration and site.vibration_points:
            fig.scatter(
                "x",
                "y",
                source=self.vibration_source,
                marker="marker",
                size="size",
                fill_color="fill_color",
                fill_alpha="fill_alpha",
                line_color="line_color",
                line_width=theme.px(2.5),
            )
            fig.text(
                "x",
                "y",
                text="text",
                source=self.vibration_source,
                text_color="text_color",
                text_font=font,
                text_font_size=theme.font(_VIB_FONT),
                text_align="center",
                text_baseline="text_baseline",
                y_offset="text_dy",
                text_line_height=1.1,
                background_fill_color=pal.tile,
                background_fill_alpha="label_bg_alpha",
            )

        fig.scatter(
            "x",
            "y",
            source=self.source,
            marker="marker",
            size="size",
            fill_color="fill_color",
            fill_alpha="fill_alpha",
            line_color="line_color",
            line_width="line_width",
        )
        fig.text(
            "x",
            "y",
            text="label",
            source=self.source,
            text_color="label_color",
            text_font=font,
            text_font_size=theme.font(30),
            text_font_style="bold",
            text_align="left",
            text_baseline="bottom",
            x_offset=theme.px(22),
            y_offset=-theme.px(12),
            background_fill_color=pal.tile,
            background_fill_alpha=_LABEL_BACKGROUND_ALPHA,
        )

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
        self.lost_label = Label(
            x=0.5,
            y=1.0,
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
        self.lost_label.x = (x0 + x1) / 2.0
        self.lost_label.y = y1
        fig.add_layout(self.lost_label)
        self.figure = fig

        if self.options.show_legend:
            css = InlineStyleSheet(css=theme.tile_css())
            legend = Div(
                text=self.legend_html(site, lang, theme, self.options),
                stylesheets=[css],
                sizing_mode="stretch_width",
                height=theme.px(104),
                styles={"background": pal.tile},
                name="wall-map-legend",
            )
            self.root = column(
                fig, legend, sizing_mode="stretch_both", spacing=0, styles={"background": pal.tile}
            )
        else:
            self.root = fig

    # -- pure column builders (tested with no server) ------------------------------------------------------
    @staticmethod
    def people_columns(
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
        cols: dict[str, list[Any]] = {
            k: [] for k in ("person", "marker", "fill_color", "line_color", "label", "label_color")
        }
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

    @staticmethod
    def place_gas_labels(
        site: Site, lang: str, theme: Theme, px_per_m: float | None = None
    ) -> dict[str, Any]:
        """Where each gas detector's label goes: below, above, right or left of its mark (site order).

        The first side, in that order, whose label box covers nothing: no zone or structure name, no other mark,
        no label already placed; else the side with the least overlap. Boxes are estimated in screen px from
        character counts at ``px_per_m`` (default: the map at 9 of 12 columns of a 3840 px wall), for the
        widest reading a detector can show, so labels stay put while values change. Returns columns
        ``label_dx``, ``label_dy`` (px offsets), ``label_align`` and ``label_baseline``.
        """
        x0, _, x1, y1 = site.floor_plan.extent_m
        ppm = px_per_m if px_per_m is not None else theme.px(_REFERENCE_MAP_WIDTH_PX) / (x1 - x0)
        char = 0.56  # mean glyph width / font size of the sans fonts used
        gas_font, zone_font = theme.px(_GAS_FONT), theme.px(_ZONE_FONT)

        def sx(x: float) -> float:
            return (x - x0) * ppm

        def sy(y: float) -> float:
            return (y1 - y) * ppm

        Box = tuple[float, float, float, float]  # left, top, right, bottom (screen px)
        obstacles: list[Box] = []
        zones = FloorMap.zone_columns(site, None, lang, theme)
        for i in range(len(zones["zone"])):
            w = len(zones["label"][i]) * char * zone_font + theme.px(30)  # room for a priority symbol
            x, top = (
                sx(zones["label_x"][i]) + zones["label_x_offset"][i],
                sy(zones["label_y"][i]) + theme.px(8),
            )
            left = x - w if zones["label_align"][i] == "right" else x
            obstacles.append((left, top, left + w, top + 1.2 * zone_font))
        structures = FloorMap.structure_columns(site, theme)
        st_font = theme.px(_STRUCTURE_FONT)
        for i in range(len(structures["label"])):
            w, h = len(structures["label"][i]) * char * st_font, 1.2 * st_font
            x, y = sx(structures["label_x"][i]), sy(structures["label_y"][i])
            top = y - h if structures["label_baseline"][i] == "bottom" else y - h / 2
            obstacles.append((x - w / 2, top, x + w / 2, top + h))
        mark = theme.px(_GAS_ALARM_SIZE)
        pts = [(sx(d.position_m[0]), sy(d.position_m[1])) for d in site.gas_detectors]
        marks: list[Box] = [(x - mark / 2, y - mark / 2, x + mark / 2, y + mark / 2) for x, y in pts]
        gap = mark / 2 + theme.px(4)

        def overlap(a: Box, b: Box) -> float:
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            return w * h if w > 0 and h > 0 else 0.0

        out: dict[str, list[Any]] = {"label_dx": [], "label_dy": [], "label_align": [], "label_baseline": []}
        placed: list[Box] = []
        for i, d in enumerate(site.gas_detectors):
            widest = f"{format_value(d.range_max)} {d.unit}? {t('gas.level2', lang)}"
            w = max(len(d.id), len(widest)) * char * gas_font
            h = 2 * 1.1 * gas_font
            x, y = pts[i]
            candidates = [
                ((x - w / 2, y + gap, x + w / 2, y + gap + h), 0.0, gap, "center", "top"),
                ((x - w / 2, y - gap - h, x + w / 2, y - gap), 0.0, -gap, "center", "bottom"),
                ((x + gap, y - h / 2, x + gap + w, y + h / 2), gap, 0.0, "left", "middle"),
                ((x - gap - w, y - h / 2, x - gap, y + h / 2), -gap, 0.0, "right", "middle"),
            ]
            others = obstacles + placed + [m for j, m in enumerate(marks) if j != i]
            best = min(candidates, key=lambda c: sum(overlap(c[0], o) for o in others))
            placed.append(best[0])
            out["label_dx"].append(best[1])
            out["label_dy"].append(best[2])
            out["label_align"].append(best[3])
            out["label_baseline"].append(best[4])
        return {
            "label_dx": np.array(out["label_dx"], dtype=np.float64),
            "label_dy": np.array(out["label_dy"], dtype=np.float64),
            "label_align": out["label_align"],
            "label_baseline": out["label_baseline"],
        }

    @staticmethod
    def gas_columns(
        site: Site,
        arrays: Mapping[str, np.ndarray] | None,
        lang: str,
        theme: Theme,
        placement: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One row per gas detector (site order) from a ``display.sensors`` frame's arrays, or None (no data).

        The text is two lines, the id then the reading: ``'GD01\\n12.0 %LEL'``. Normal: small grey hexagon.
        Low alarm (level 1): amber triangle and ``A1``. High alarm (2): red square and ``A2``. Uncertain
        quality: reading with ``?``, half-filled mark. Bad quality: an ``x`` and ``BAD``, never a number (DESIGN
        principle 4). No data / stale: hollow hexagon and ``---``. ``placement`` is
        :meth:`place_gas_labels`' result (computed when not given). ``label_bg_alpha``: the opacity of a dark box
        behind the text, there only for alarm readings (they may sit on the gas cloud of the same colour).
        """
        pal = theme.palette
        dets = site.gas_detectors
        g = len(dets)
        if arrays is None:
            value = np.full(g, np.nan)
            quality = np.full(g, QUALITY_NO_DATA, dtype=np.int64)
            level = np.zeros(g, dtype=np.int64)
        else:
            value = np.asarray(arrays["gas_value"], dtype=np.float64)
            quality = np.asarray(arrays["gas_quality"]).astype(np.int64)
            level = np.asarray(arrays["gas_level"]).astype(np.int64)
        cols: dict[str, list[Any]] = {
            k: [] for k in ("detector", "marker", "fill_color", "line_color", "text", "text_color")
        }
        size = np.empty(g)
        fill_alpha = np.empty(g)
        label_bg_alpha = np.zeros(g)
        for i, d in enumerate(dets):
            q, lv, v = int(quality[i]), int(level[i]), float(value[i])
            cols["detector"].append(d.id)
            if q == QUALITY_BAD:
                cols["marker"].append("x")
                cols["fill_color"].append(pal.text)
                cols["line_color"].append(pal.text)
                cols["text"].append(f"{d.id}\n{t('gas.bad', lang)}")
                cols["text_color"].append(pal.text)
                size[i], fill_alpha[i] = theme.px(_GAS_SIZE), 1.0
                continue
            if q >= QUALITY_NO_DATA or not math.isfinite(v):
                cols["marker"].append("hex")
                cols["fill_color"].append(pal.gas_normal)
                cols["line_color"].append(pal.text_dim)
                cols["text"].append(f"{d.id}\n{t('gas.no_data', lang)}")
                cols["text_color"].append(pal.text_dim)
                size[i], fill_alpha[i] = theme.px(_GAS_SIZE), 0.0
                continue
            reading = f"{format_value(v)} {d.unit}"
            if q == 1:
                reading += t("gas.uncertain", lang)
            if lv >= 1:
                style = PRIORITY_STYLE[4 if lv >= 2 else 3]
                cols["marker"].append(style.marker)
                cols["fill_color"].append(style.color)
                cols["line_color"].append(pal.outline_dark)
                cols["text"].append(f"{d.id}\n{reading} {t('gas.level2' if lv >= 2 else 'gas.level1', lang)}")
                cols["text_color"].append(style.color)
                size[i] = theme.px(_GAS_ALARM_SIZE)
                label_bg_alpha[i] = _LABEL_BACKGROUND_ALPHA
            else:
                cols["marker"].append("hex")
                cols["fill_color"].append(pal.gas_normal)
                cols["line_color"].append(pal.outline_dark)
                cols["text"].append(f"{d.id}\n{reading}")
                cols["text_color"].append(pal.gas_text)
                size[i] = theme.px(_GAS_SIZE)
            fill_alpha[i] = 0.5 if q == 1 else 1.0
        where = placement if placement is not None else FloorMap.place_gas_labels(site, lang, theme)
        return {
            "x": np.array([d.position_m[0] for d in dets], dtype=np.float64),
            "y": np.array([d.position_m[1] for d in dets], dtype=np.float64),
            "size": size,
            "fill_alpha": fill_alpha,
            "label_bg_alpha": label_bg_alpha,
            **{k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in where.items()},
            **cols,
        }

    @staticmethod
    def zone_columns(
        site: Site, alarms: Mapping[str, AlarmRecord] | None, lang: str, theme: Theme
    ) -> dict[str, Any]:
        """One closed outline per zone (site order) with its name in ``lang`` at its top-left corner.

        Kinds differ by dash and width in grey; a zone named by an active alarm takes the colour of its
        highest-priority active alarm, a thicker line, and the priority symbol before its name.
        """
        pal = theme.palette
        worst: dict[str, int] = {}
        for rec in (alarms or {}).values():
            if rec.zone and rec.active:
                worst[rec.zone] = max(worst.get(rec.zone, 0), rec.rank)
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "xs",
                "ys",
                "zone",
                "kind",
                "line_color",
                "line_width",
                "line_dash",
                "label",
                "label_x",
                "label_y",
                "label_color",
                "label_align",
                "label_x_offset",
                "rank",
            )
        }
        x0, _, x1, _ = site.floor_plan.extent_m
        right_edge = x0 + 0.85 * (x1 - x0)
        for z in site.zones:
            dash, width, quiet = _ZONE_STYLE[z.kind]
            xs = [p[0] for p in z.polygon] + [z.polygon[0][0]]
            ys = [p[1] for p in z.polygon] + [z.polygon[0][1]]
            r = worst.get(z.id, 0)
            name = z.name.get(lang)
            cols["xs"].append(xs)
            cols["ys"].append(ys)
            cols["zone"].append(z.id)
            cols["kind"].append(z.kind)
            cols["line_dash"].append(dash)
            # near the right edge a name written rightwards would run off the map: write it leftwards
            right = max(xs) > right_edge
            cols["label_x"].append(max(xs) if right else min(xs))
            cols["label_align"].append("right" if right else "left")
            cols["label_x_offset"].append(-theme.px(8) if right else theme.px(8))
            cols["label_y"].append(max(ys))
            cols["rank"].append(r)
            if r:
                style = PRIORITY_STYLE[r]
                cols["line_color"].append(style.color)
                cols["line_width"].append(theme.px(_ZONE_ALARM_WIDTH))
                cols["label"].append(f"{style.symbol} {name}")
                cols["label_color"].append(style.color)
            else:
                cols["line_color"].append(pal.zone_line_quiet if quiet else pal.zone_line)
                cols["line_width"].append(theme.px(width))
                cols["label"].append(name)
                cols["label_color"].append(pal.text_dim if quiet else pal.zone_text)
        return cols

    @staticmethod
    def gas_field_columns(
        field: np.ndarray | None, theme: Theme, meta: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        """Filled iso-bands of a ``display.gasfield`` frame for ``multi_polygons``: one row per band of
        :data:`GAS_FIELD_BANDS` that the field reaches, lowest first; no row before the first frame.

        ``field`` float [ny, nx] in fractions of the second alarm level, row 0 = south, cell (i, j) centred at
        (x0 + (j + 0.5) dx, y0 + (i + 0.5) dx) with ``meta`` ``extent_m`` [x0, y0, x1, y1] and ``dx_m``. The
        bands are contoured between cell centres (linear interpolation, NaN cells left out), so the cloud has
        smooth edges and no grid shows. Columns: ``xs``, ``ys`` (site metres, Bokeh's nested multi-polygon
        lists: polygons, then their outer ring and holes), ``band`` (lower bound), ``fill_color``, ``fill_alpha``.
        """
        cols: dict[str, list[Any]] = {k: [] for k in ("xs", "ys", "band", "fill_color", "fill_alpha")}
        if field is None or meta is None:
            return cols
        z = np.asarray(field, dtype=np.float64)
        if z.ndim != 2 or min(z.shape) < 2 or not np.any(z >= GAS_FIELD_QUIET):
            return cols
        ny, nx = z.shape
        dx = float(meta["dx_m"])
        x0, y0 = (float(v) for v in meta["extent_m"][:2])
        gen = contour_generator(
            x0 + (np.arange(nx) + 0.5) * dx, y0 + (np.arange(ny) + 0.5) * dx, z, fill_type="OuterOffset"
        )
        colors = {
            "quiet": theme.palette.gas_field_quiet,
            "amber": PRIORITY_STYLE[3].color,
            "red": PRIORITY_STYLE[4].color,
        }
        for k, (lower, color, alpha) in enumerate(GAS_FIELD_BANDS):
            upper = GAS_FIELD_BANDS[k + 1][0] if k + 1 < len(GAS_FIELD_BANDS) else np.inf
            points, offsets = gen.filled(lower, upper)
            xs: list[list[list[float]]] = []
            ys: list[list[list[float]]] = []
            for pts, offs in zip(points, offsets):
                rings = [pts[offs[i] : offs[i + 1]] for i in range(len(offs) - 1)]
                xs.append([np.round(r[:, 0], 2).tolist() for r in rings])
                ys.append([np.round(r[:, 1], 2).tolist() for r in rings])
            if xs:
                cols["xs"].append(xs)
                cols["ys"].append(ys)
                cols["band"].append(lower)
                cols["fill_color"].append(colors[color])
                cols["fill_alpha"].append(alpha)
        return cols

    @staticmethod
    def vibration_zones(site: Site, arrays: Mapping[str, np.ndarray] | None) -> np.ndarray:
        """int64 [V]: each vibration point's ISO 20816-3 zone, 1 A .. 4 D, 0 unknown (site order).

        From the frame's ``vib_zone`` when the engine sends it; otherwise from ``vib_rms_mm_s`` and the site's
        zone boundaries (``config.vibration``: a value on a boundary belongs to the lower zone). A point whose
        quality is bad or no data (``vib_quality`` >= 2) or whose value is not finite is unknown.
        """
        pts = site.vibration_points
        v = len(pts)
        if arrays is None or "vib_rms_mm_s" not in arrays:
            return np.zeros(v, dtype=np.int64)
        quality = np.asarray(arrays.get("vib_quality", np.zeros(v))).astype(np.int64)
        if "vib_zone" in arrays:
            zone = np.clip(np.asarray(arrays["vib_zone"]).astype(np.int64), 0, 4)
        else:
            rms = np.asarray(arrays["vib_rms_mm_s"], dtype=np.float64)
            settings = getattr(site, "vibration", None) or VibrationSettings()
            zone = np.zeros(v, dtype=np.int64)
            for i, p in enumerate(pts):
                if not math.isfinite(rms[i]):
                    continue
                b = settings.boundaries_for(p.id, p.machine_group, p.foundation)
                zone[i] = 1 + int(rms[i] > b.ab_mm_s) + int(rms[i] > b.bc_mm_s) + int(rms[i] > b.cd_mm_s)
        return np.where(quality >= QUALITY_BAD, 0, zone)

    @staticmethod
    def vibration_columns(
        site: Site,
        arrays: Mapping[str, np.ndarray] | None,
        alarms: Mapping[str, AlarmRecord] | None,
        lang: str,
        theme: Theme,
    ) -> dict[str, Any]:
        """One row per vibration point (site order): a small machine glyph with the id and the zone letter.

        Zone A or B: a grey hollow circle with a cross, ``'VP01\\nB'``. Zone C or D: the colour, shape and size of
        the priority of the point's active zone alarm in ``alarms`` (``vibration.zone_d:<id>``,
        ``vibration.zone_c:<id>``), else of :data:`VIBRATION_ZONE_RANK` (C medium, D high), and the value:
        ``'VP04\\nC 3.1 mm/s'`` written above the mark (``text_baseline``, ``text_dy`` px) on a dark box
        (``label_bg_alpha``). Bad quality: ``BAD``; no data: ``---`` (dim, hollow). Columns also hold ``zone``
        (0..4) and ``rank`` (0 none .. 4 critical).
        """
        pal = theme.palette
        pts = site.vibration_points
        v = len(pts)
        zones = FloorMap.vibration_zones(site, arrays)
        if arrays is not None and "vib_rms_mm_s" in arrays:
            rms = np.asarray(arrays["vib_rms_mm_s"], dtype=np.float64)
            quality = np.asarray(arrays.get("vib_quality", np.zeros(v))).astype(np.int64)
        else:
            rms = np.full(v, np.nan)
            quality = np.full(v, 3, dtype=np.int64)
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "point",
                "marker",
                "fill_color",
                "line_color",
                "text",
                "text_color",
                "text_baseline",
                "zone",
                "rank",
            )
        }
        size = np.empty(v)
        fill_alpha = np.empty(v)
        text_dy = np.empty(v)
        label_bg_alpha = np.zeros(v)
        gap = theme.px(_VIB_ALARM_SIZE / 2 + 4)
        for i, p in enumerate(pts):
            z = int(zones[i])
            rank = VIBRATION_ZONE_RANK.get(z, 0)
            if rank and alarms:
                found = [
                    alarms[a].rank
                    for a in (f"vibration.zone_d:{p.id}", f"vibration.zone_c:{p.id}")
                    if a in alarms and alarms[a].active
                ]
                rank = max(found) if found else rank
            cols["point"].append(p.id)
            cols["zone"].append(z)
            cols["rank"].append(rank)
            if rank:
                style = PRIORITY_STYLE[rank]
                cols["marker"].append(style.marker)
                cols["fill_color"].append(style.color)
                cols["line_color"].append(pal.outline_dark)
                cols["text"].append(f"{p.id}\n{_ZONE_LETTERS[z]} {format_value(rms[i])} mm/s")
                cols["text_color"].append(style.color)
                # above the mark: the quiet labels of neighbouring machines sit below theirs
                cols["text_baseline"].append("bottom")
                size[i], fill_alpha[i], text_dy[i] = theme.px(_VIB_ALARM_SIZE), 1.0, -gap
                label_bg_alpha[i] = _LABEL_BACKGROUND_ALPHA
                continue
            q = int(quality[i])
            cols["marker"].append("circle_cross")
            cols["fill_color"].append(pal.tile)
            if q == QUALITY_BAD:
                word, dim = t("gas.bad", lang), False
            elif z == 0:
                word, dim = t("gas.no_data", lang), True
            else:
                word, dim = _ZONE_LETTERS[z], False
            cols["line_color"].append(pal.text_dim if dim else pal.machine)
            cols["text"].append(f"{p.id}\n{word}")
            cols["text_color"].append(pal.text_dim if dim else pal.gas_text)
            cols["text_baseline"].append("top")
            size[i], fill_alpha[i], text_dy[i] = theme.px(_VIB_SIZE), 0.0 if dim else 1.0, gap
        return {
            "x": np.array([p.position_m[0] for p in pts], dtype=np.float64),
            "y": np.array([p.position_m[1] for p in pts], dtype=np.float64),
            "size": size,
            "fill_alpha": fill_alpha,
            "text_dy": text_dy,
            "label_bg_alpha": label_bg_alpha,
            **cols,
        }

    @staticmethod
    def permit_area_columns(
        site: Site, board: PermitBoard | None, lang: str, theme: Theme
    ) -> dict[str, list[Any]]:
        """One closed outline per permit that is not over (board red, amber or green), in the board's order.

        The outline is the permit's zone (``zone``) or its own ``polygon``, drawn :data:`_PERMIT_INSET_M` metres
        inside it (so a zone's own outline stays visible), in the board colour (``BOARD_COLORS``), with
        ``'HW-1 · Hot work\\nACTIVE'`` written under its bottom-left corner (state in words; ``· ENDING SOON``
        when the board is amber for an active permit). The k-th permit on the same area (0 first) is drawn
        k + 1 insets deep and its label ``label_dy`` px lower, under the earlier ones. A permit whose area is
        unknown is not drawn.
        """
        cols: dict[str, list[Any]] = {
            k: []
            for k in ("xs", "ys", "permit", "board", "line_color", "label", "label_x", "label_y", "label_dy")
        }
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

    @staticmethod
    def structure_columns(site: Site, theme: Theme) -> dict[str, Any]:
        """One patch per structure (buildings, units, tanks, racks, roads, fences), label at its centre."""
        pal = theme.palette
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "xs",
                "ys",
                "fill_color",
                "fill_alpha",
                "label",
                "label_x",
                "label_y",
                "label_baseline",
                "kind",
            )
        }
        structures = site.floor_plan.structures
        centres = [_centroid(s.polygon) for s in structures]
        for i, s in enumerate(structures):
            cx, cy = centres[i]
            xs = [p[0] for p in s.polygon]
            ys = [p[1] for p in s.polygon]
            # a unit drawn around tanks or columns keeps its centre for their names: its own goes to its foot
            holds_others = any(
                min(xs) < x < max(xs) and min(ys) < y < max(ys) for j, (x, y) in enumerate(centres) if j != i
            )
            cols["xs"].append(xs)
            cols["ys"].append(ys)
            cols["fill_color"].append(pal.road_fill if s.kind == "road" else pal.structure_fill)
            cols["fill_alpha"].append(0.0 if s.kind == "fence" else 1.0)
            cols["label"].append(s.label)
            cols["label_x"].append(cx)
            cols["label_y"].append(min(ys) + 0.02 * (max(ys) - min(ys)) if holds_others else cy)
            cols["label_baseline"].append("bottom" if holds_others else "middle")
            cols["kind"].append(s.kind)
        return cols

    @staticmethod
    def anchor_columns(site: Site) -> dict[str, Any]:
        """UWB anchors: ``x``, ``y`` in m and ``anchor`` ids."""
        return {
            "x": np.array([a.position_m[0] for a in site.anchors], dtype=np.float64),
            "y": np.array([a.position_m[1] for a in site.anchors], dtype=np.float64),
            "anchor": [a.id for a in site.anchors],
        }

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
        ctx = self.ctx
        pos_key = snap.positions.number if snap.positions else 0
        if self._seen.get("positions") != pos_key:
            self._seen["positions"] = pos_key
            cols = self.people_columns(
                ctx.site, snap.positions.arrays if snap.positions else None, self.stale_s, ctx.theme
            )
            style = {k: v for k, v in cols.items() if k not in ("x", "y")}
            if self._people_style is not None and _same_columns(style, self._people_style):
                self.source.data.update(x=cols["x"], y=cols["y"])  # only the moving part goes out
            else:
                self.source.data = cols
                self._people_style = style
        sens_key = snap.sensors.number if snap.sensors else 0
        if self.options.show_gas and self._seen.get("sensors") != sens_key:
            self._seen["sensors"] = sens_key
            new = self.gas_columns(
                ctx.site,
                snap.sensors.arrays if snap.sensors else None,
                ctx.lang,
                ctx.theme,
                self._gas_placement,
            )
            if not _same_columns(new, dict(self.gas_source.data)):
                self.gas_source.data = new
        if self._seen.get("alarms") != snap.alarms.version:
            self._seen["alarms"] = snap.alarms.version
            new = self.zone_columns(ctx.site, snap.alarms.alarms, ctx.lang, ctx.theme)
            if new["rank"] != list(self.zone_source.data["rank"]):
                self.zone_source.data = new
        gf = snap.gasfield
        field_key = gf.number if gf is not None else 0
        if self.options.show_gas_field and self._seen.get("gasfield") != field_key:
            self._seen["gasfield"] = field_key
            new = self.gas_field_columns(
                gf.arrays["field"] if gf is not None else None, ctx.theme, gf.meta if gf is not None else None
            )
            if not _same_columns(new, dict(self.gasfield_source.data)):
                self.gasfield_source.data = new
        vib_key = (sens_key, snap.alarms.version)
        if self.options.show_vibration and self._seen.get("vibration") != vib_key:
            self._seen["vibration"] = vib_key
            new = self.vibration_columns(
                ctx.site,
                snap.sensors.arrays if snap.sensors else None,
                snap.alarms.alarms,
                ctx.lang,
                ctx.theme,
            )
            if not _same_columns(new, dict(self.vibration_source.data)):
                self.vibration_source.data = new
        permits_key = snap.permits.version if snap.permits is not None else 0
        if self.options.show_permits and self._seen.get("permits") != permits_key:
            self._seen["permits"] = permits_key
            new = self.permit_area_columns(ctx.site, snap.permits, ctx.lang, ctx.theme)
            if not _same_columns(new, dict(self.permit_source.data)):
                self.permit_source.data = new
        lost = snap.state == "lost"
        if self.lost_label.visible != lost:
            self.lost_label.visible = lost


def _same_columns(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
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
