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
from .label_plan import GAS_ALARM_MARK, GAS_FONT, READING_LINE_HEIGHT, LabelPlan, gas_label_head, slot_columns

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

    def __init__(self, ctx: TileContext, fig: figure, plan: LabelPlan) -> None:
        # placed once, for the widest reading: labels stay put while values change
        self.placement = slot_columns(
            [plan.slot(f"gas:{d.id}") for d in ctx.site.gas_detectors],
            ctx.theme,
            [(d.position_m[0], d.position_m[1]) for d in ctx.site.gas_detectors],
        )
        super().__init__(ctx, fig, plan)

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
                xy=("label_x", "label_y"),
                text="text",
                color="text_color",
                font_px=GAS_FONT,
                # an alarm reading stays readable over the gas cloud (red on a red cloud would vanish)
                box_alpha="label_bg_alpha",
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
                text_line_height=READING_LINE_HEIGHT,
            ),
        ]

    @staticmethod
    def columns(
        site: Site,
        arrays: Mapping[str, np.ndarray] | None,
        lang: str,
        theme: Theme,
        placement: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One row per gas detector (site order) from a ``display.sensors`` frame's arrays, or None (no data).

        The text is two lines, the id and the gas, then the reading: ``'GD01 CH4\\n12.0 %LEL'``. Normal: small grey hexagon.
        Low alarm (level 1): amber triangle and ``A1``. High alarm (2): red square and ``A2``. Uncertain
        quality: reading with ``?``, half-filled mark. Bad quality: an ``x`` and ``BAD``, never a number (DESIGN
        principle 4). No data / stale: hollow hexagon and ``---``. ``placement``: the label columns
        (:func:`.label_plan.slot_columns`) of the map's :class:`LabelPlan` (default: the default wall's map). ``label_bg_alpha``: the opacity of a dark box
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
            head = gas_label_head(d)
            cols["detector"].append(d.id)
            if q == QUALITY_BAD:
                cols["marker"].append("x")
                cols["fill_color"].append(pal.text)
                cols["line_color"].append(pal.text)
                cols["text"].append(f"{head}\n{t('gas.bad', lang)}")
                cols["text_color"].append(pal.text)
                size[i], fill_alpha[i] = theme.px(_GAS_SIZE), 1.0
                continue
            if q >= QUALITY_NO_DATA or not math.isfinite(v):
                cols["marker"].append("hex")
                cols["fill_color"].append(pal.gas_normal)
                cols["line_color"].append(pal.text_dim)
                cols["text"].append(f"{head}\n{t('gas.no_data', lang)}")
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
                cols["text"].append(f"{head}\n{reading} {t('gas.level2' if lv >= 2 else 'gas.level1', lang)}")
                cols["text_color"].append(style.color)
                size[i] = theme.px(GAS_ALARM_MARK)
                label_bg_alpha[i] = LABEL_BACKGROUND_ALPHA
            else:
                cols["marker"].append("hex")
                cols["fill_color"].append(pal.gas_normal)
                cols["line_color"].append(pal.outline_dark)
                cols["text"].append(f"{head}\n{reading}")
                cols["text_color"].append(pal.gas_text)
                size[i] = theme.px(_GAS_SIZE)
            fill_alpha[i] = 0.5 if q == 1 else 1.0
        if placement is None:
            plan = LabelPlan.build(site, lang)
            placement = slot_columns(
                [plan.slot(f"gas:{d.id}") for d in dets], theme, [(d.position_m[0], d.position_m[1]) for d in dets]
            )
        where = placement
        return {
            "x": np.array([d.position_m[0] for d in dets], dtype=np.float64),
            "y": np.array([d.position_m[1] for d in dets], dtype=np.float64),
            "size": size,
            "fill_alpha": fill_alpha,
            "label_bg_alpha": label_bg_alpha,
            **{k: (v.copy() if isinstance(v, np.ndarray) else list(v)) for k, v in where.items()},
            **cols,
        }
