"""Gas on the map: the gas cloud (``display.gasfield``, drawn under the zones) and the detectors with their
readings (``display.sensors``, drawn over them).

The cloud is a quiet overlay: transparent below 20 % of the detectors' second alarm level, a light grey haze
below 50 %, amber up to the second level, red beyond (filled iso-bands, two shades each); the detectors' own
readings (with ``A1``/``A2``) stay on top.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure
from contourpy import contour_generator

from config import Site
from ingest.protocol.names import QUALITY_BAD, QUALITY_NO_DATA

from ....link import LinkSnapshot
from ...i18n import t
from ...theme import PRIORITY_STYLE, Theme
from ..base import TileContext, format_value
from .base import LABEL_BACKGROUND_ALPHA, MapLayer, empty_columns
from .plan import STRUCTURE_FONT, PlanLayer
from .zones import ZONE_FONT, ZoneLayer

__all__ = [
    "GAS_FIELD_AMBER",
    "GAS_FIELD_BANDS",
    "GAS_FIELD_QUIET",
    "GAS_FIELD_RED",
    "GasCloudLayer",
    "GasDetectorLayer",
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
_GAS_SIZE = 20.0
_GAS_ALARM_SIZE = 34.0
_GAS_FONT = 26.0  # px at scale 1
_REFERENCE_MAP_WIDTH_PX = 2880  # the map's width on the default wall: 9 of 12 columns of 3840 px


class GasCloudLayer(MapLayer):
    """The gas cloud: filled iso-bands of the latest ``display.gasfield`` frame (1 Hz)."""

    source_name = "wall-gasfield"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        gf = snap.gasfield if snap is not None else None
        if gf is None:
            return self.columns(None, self.ctx.theme)
        return self.columns(gf.arrays["field"], self.ctx.theme, gf.meta)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.gasfield.number if snap.gasfield is not None else 0

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        # under the zones, detectors and people: a haze over the plant, never hiding what is drawn on it
        return [
            fig.multi_polygons(
                "xs",
                "ys",
                source=self.source,
                fill_color="fill_color",
                fill_alpha="fill_alpha",
                line_color=None,
                name="wall-gasfield-glyph",
            )
        ]

    @staticmethod
    def columns(
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
        cols = empty_columns("xs", "ys", "band", "fill_color", "fill_alpha")
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


class GasDetectorLayer(MapLayer):
    """Gas detectors: a mark per detector and its id and reading beside it (about once a second)."""

    source_name = "wall-gas"

    def __init__(self, ctx: TileContext, fig: figure) -> None:
        # computed once, for the widest reading: labels stay put while values change
        self.placement = self.place_labels(ctx.site, ctx.lang, ctx.theme)
        super().__init__(ctx, fig)

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        ctx = self.ctx
        arrays = snap.sensors.arrays if snap is not None and snap.sensors else None
        return self.columns(ctx.site, arrays, ctx.lang, ctx.theme, self.placement)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.sensors.number if snap.sensors else 0

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            self.draw_marks(fig, theme.px(2)),
            self.draw_text(
                fig,
                text="text",
                color="text_color",
                font_px=_GAS_FONT,
                # an alarm reading stays readable over the gas cloud (red on a red cloud would vanish)
                box_alpha="label_bg_alpha",
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
                text_line_height=1.1,
            ),
        ]

    @staticmethod
    def place_labels(site: Site, lang: str, theme: Theme, px_per_m: float | None = None) -> dict[str, Any]:
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
        gas_font, zone_font = theme.px(_GAS_FONT), theme.px(ZONE_FONT)

        def sx(x: float) -> float:
            return (x - x0) * ppm

        def sy(y: float) -> float:
            return (y1 - y) * ppm

        Box = tuple[float, float, float, float]  # left, top, right, bottom (screen px)
        obstacles: list[Box] = []
        zones = ZoneLayer.columns(site, None, lang, theme)
        for i in range(len(zones["zone"])):
            w = len(zones["label"][i]) * char * zone_font + theme.px(30)  # room for a priority symbol
            x, top = (
                sx(zones["label_x"][i]) + zones["label_x_offset"][i],
                sy(zones["label_y"][i]) + theme.px(8),
            )
            left = x - w if zones["label_align"][i] == "right" else x
            obstacles.append((left, top, left + w, top + 1.2 * zone_font))
        structures = PlanLayer.columns(site, theme)
        st_font = theme.px(STRUCTURE_FONT)
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

        out = empty_columns("label_dx", "label_dy", "label_align", "label_baseline")
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
    def columns(
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
        :meth:`place_labels`' result (computed when not given). ``label_bg_alpha``: the opacity of a dark box
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
        cols = empty_columns("detector", "marker", "fill_color", "line_color", "text", "text_color")
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
                label_bg_alpha[i] = LABEL_BACKGROUND_ALPHA
            else:
                cols["marker"].append("hex")
                cols["fill_color"].append(pal.gas_normal)
                cols["line_color"].append(pal.outline_dark)
                cols["text"].append(f"{d.id}\n{reading}")
                cols["text_color"].append(pal.gas_text)
                size[i] = theme.px(_GAS_SIZE)
            fill_alpha[i] = 0.5 if q == 1 else 1.0
        where = placement if placement is not None else GasDetectorLayer.place_labels(site, lang, theme)
        return {
            "x": np.array([d.position_m[0] for d in dets], dtype=np.float64),
            "y": np.array([d.position_m[1] for d in dets], dtype=np.float64),
            "size": size,
            "fill_alpha": fill_alpha,
            "label_bg_alpha": label_bg_alpha,
            **{k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in where.items()},
            **cols,
        }
