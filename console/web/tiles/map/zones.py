"""Zones: one outline per zone with its name; a zone named by an active alarm takes the alarm's colour."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site
from ingest.protocol.records import AlarmRecord

from ....link import LinkSnapshot
from ...theme import PRIORITY_STYLE, Theme
from .base import MapLayer, empty_columns
from .label_plan import ZONE_FONT, LabelPlan, slot_columns

__all__ = ["ZONE_FONT", "ZoneLayer"]

_ZONE_ALARM_WIDTH = 8.0
#: zone kind -> (dash pattern, line width at scale 1, quiet?) -- kinds differ by line, not by colour
_ZONE_STYLE: Mapping[str, tuple[str, float, bool]] = {
    "restricted": ("solid", 4.0, False),
    "hazardous": ("dashed", 4.0, False),
    "confined_space": ("dotted", 5.0, False),
    "muster_point": ("dashdot", 4.0, False),
    "area": ("solid", 2.0, True),
}


class ZoneLayer(MapLayer):
    """Zone outlines and names; follows the alarm table, sends only when a zone's alarm rank changed."""

    source_name = "wall-zones"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        ctx = self.ctx
        alarms = snap.alarms.alarms if snap is not None else None
        return self.columns(ctx.site, alarms, ctx.lang, ctx.theme, self.plan)

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.alarms.version

    def publish(self, new: dict[str, Any]) -> None:
        # everything else in a row follows from its rank
        if new["rank"] != list(self.source.data["rank"]):
            self.source.data = new

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        return [
            self.draw_outlines(fig, line_width="line_width", line_dash="line_dash", line_alpha=0.95),
            self.draw_text(
                fig,
                xy=("label_x", "label_y"),
                text="label",
                color="label_color",
                font_px=ZONE_FONT,
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
            ),
        ]

    @staticmethod
    def columns(
        site: Site,
        alarms: Mapping[str, AlarmRecord] | None,
        lang: str,
        theme: Theme,
        plan: LabelPlan | None = None,
    ) -> dict[str, Any]:
        """One closed outline per zone (site order) with its name in ``lang`` where ``plan`` put it (inside a
        corner, first choice the top-left one; default: the plan of the default wall's map).

        Kinds differ by dash and width in grey; a zone named by an active alarm takes the colour of its
        highest-priority active alarm, a thicker line, and the priority symbol before its name.
        """
        pal = theme.palette
        worst: dict[str, int] = {}
        for rec in (alarms or {}).values():
            if rec.zone and rec.active:
                worst[rec.zone] = max(worst.get(rec.zone, 0), rec.rank)
        cols = empty_columns(
            "xs",
            "ys",
            "zone",
            "kind",
            "line_color",
            "line_width",
            "line_dash",
            "label",
            "label_color",
            "rank",
        )
        plan = plan or LabelPlan.build(site, lang)
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
        slots = [plan.slot(f"zone:{z.id}") for z in site.zones]
        return {**cols, **slot_columns(slots, theme, [(min(p[0] for p in z.polygon), max(p[1] for p in z.polygon))
                                                      for z in site.zones])}
