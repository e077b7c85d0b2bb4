"""Vibration points: a small machine glyph with its id and ISO 20816-3 zone letter. A machine in zone C or D
takes the colour and shape of its vibration alarm's priority, with its zone letter and value."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site
from config.vibration import VibrationSettings
from ingest.protocol.names import QUALITY_BAD
from ingest.protocol.records import AlarmRecord

from ....link import LinkSnapshot
from ...i18n import t
from ...theme import PRIORITY_STYLE, Theme
from ..base import format_value
from .base import LABEL_BACKGROUND_ALPHA, MapLayer, empty_columns
from .label_plan import READING_LINE_HEIGHT, VIB_ALARM_MARK, VIB_FONT, LabelPlan, slot_columns

__all__ = ["VIBRATION_ZONE_RANK", "VibrationLayer"]

#: ISO 20816-3 zone (1 A .. 4 D) -> the priority of the alarm alarms/vibration.py raises for it (0: none):
#: zone C medium, zone D high. The map uses that priority's colour and shape so that it matches the alarm list;
#: when the alarm list holds the point's zone alarm, its actual priority wins.
VIBRATION_ZONE_RANK: Mapping[int, int] = {0: 0, 1: 0, 2: 0, 3: 2, 4: 3}
_ZONE_LETTERS = ("?", "A", "B", "C", "D")
_VIB_SIZE = 22.0


class VibrationLayer(MapLayer):
    """Machine glyphs; follows the sensors frame (``display.sensors``) and the alarm table."""

    source_name = "wall-vibration"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        ctx = self.ctx
        if snap is None:
            return self.columns(ctx.site, None, None, ctx.lang, ctx.theme, self.plan)
        arrays = snap.sensors.arrays if snap.sensors else None
        return self.columns(ctx.site, arrays, snap.alarms.alarms, ctx.lang, ctx.theme, self.plan)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return (snap.sensors.number if snap.sensors else 0, snap.alarms.version)

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            self.draw_marks(fig, theme.px(2.5)),
            self.draw_text(
                fig,
                xy=("label_x", "label_y"),
                text="text",
                color="text_color",
                font_px=VIB_FONT,
                box_alpha="label_bg_alpha",
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
                text_line_height=READING_LINE_HEIGHT,
            ),
        ]

    @staticmethod
    def zones(site: Site, arrays: Mapping[str, np.ndarray] | None) -> np.ndarray:
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
    def columns(
        site: Site,
        arrays: Mapping[str, np.ndarray] | None,
        alarms: Mapping[str, AlarmRecord] | None,
        lang: str,
        theme: Theme,
        plan: LabelPlan | None = None,
    ) -> dict[str, Any]:
        """One row per vibration point (site order): a small machine glyph with the id and the zone letter,
        written where ``plan`` put the point's label (default: the plan of the default wall's map).

        Zone A or B: a grey hollow circle with a cross, ``'VP01\\nB'``. Zone C or D: the colour, shape and size of
        the priority of the point's active zone alarm in ``alarms`` (``vibration.zone_d:<id>``,
        ``vibration.zone_c:<id>``), else of :data:`VIBRATION_ZONE_RANK` (C medium, D high), and the value:
        ``'VP04\\nC 3.1 mm/s'`` on a dark box
        (``label_bg_alpha``). Bad quality: ``BAD``; no data: ``---`` (dim, hollow). Columns also hold ``zone``
        (0..4) and ``rank`` (0 none .. 4 critical).
        """
        pal = theme.palette
        pts = site.vibration_points
        v = len(pts)
        zones = VibrationLayer.zones(site, arrays)
        if arrays is not None and "vib_rms_mm_s" in arrays:
            rms = np.asarray(arrays["vib_rms_mm_s"], dtype=np.float64)
            quality = np.asarray(arrays.get("vib_quality", np.zeros(v))).astype(np.int64)
        else:
            rms = np.full(v, np.nan)
            quality = np.full(v, 3, dtype=np.int64)
        cols = empty_columns(
            "point",
            "marker",
            "fill_color",
            "line_color",
            "text",
            "text_color",
            "zone",
            "rank",
        )
        size = np.empty(v)
        fill_alpha = np.empty(v)
        label_bg_alpha = np.zeros(v)
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
                size[i], fill_alpha[i] = theme.px(VIB_ALARM_MARK), 1.0
                label_bg_alpha[i] = LABEL_BACKGROUND_ALPHA
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
            size[i], fill_alpha[i] = theme.px(_VIB_SIZE), 0.0 if dim else 1.0
        plan = plan or LabelPlan.build(site, lang)
        where = slot_columns(
            [plan.slot(f"vib:{p.id}") for p in pts], theme, [(p.position_m[0], p.position_m[1]) for p in pts]
        )
        return {
            "x": np.array([p.position_m[0] for p in pts], dtype=np.float64),
            "y": np.array([p.position_m[1] for p in pts], dtype=np.float64),
            "size": size,
            "fill_alpha": fill_alpha,
            "label_bg_alpha": label_bg_alpha,
            **where,
            **cols,
        }
