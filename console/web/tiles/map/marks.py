"""Marked people: a person found at a workstation and shown on the walls (the engine's ``highlights`` in its
status, ingest/protocol/highlight.py), or picked at the workstation's own map. Each marked person gets a wide ring
at their latest fix, their name, and their trail over the last 10 minutes (the link's trails,
console/link/trails.py) as a line; a mark runs out with the engine's time.

Being found is not abnormal: the ring and the trail are in the plain text colour, never an alarm colour (ISA-101).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource, GlyphRenderer
from bokeh.plotting import figure

from ingest.protocol.highlight import Highlight

from ....link import LinkSnapshot
from ..base import TileContext
from .base import LABEL_BACKGROUND_ALPHA, MapLayer
from .label_plan import LabelPlan
from .people import label_places

__all__ = ["MarksLayer", "marked_people"]

_RING_PX = 64.0
_FONT_PX = 32.0
#: the trail's points are sent again at most once a second (the ring follows every frame)
_TRAIL_EVERY_FRAMES = 5


def marked_people(snap: LinkSnapshot | None) -> list[str]:
    """Ids of the people the engine marks on the walls now (its status' ``highlights`` still running)."""
    if snap is None or snap.status is None:
        return []
    now = snap.engine_ts_s
    out = []
    for d in snap.status.meta.get("highlights") or ():
        try:
            h = Highlight.from_json(d)
        except ValueError:
            continue
        if now is None or h.until_ts_s > now:
            out.append(h.person)
    return out


class MarksLayer(MapLayer):
    """Rings, names and trails of the marked people: the engine's marks, plus ``picked()`` (the workstation's own
    choice; default none). ``source`` has one row per marked person (``x``, ``y``, ``label``); ``trails`` one
    line per marked person (``xs``, ``ys``)."""

    source_name = "wall-marks"

    def __init__(self, ctx: TileContext, fig: figure, plan: LabelPlan, *,
                 picked: Callable[[], Iterable[str]] = tuple, span_s: float = 600.0) -> None:
        self.picked, self.span_s = picked, span_s
        site = ctx.site
        self.index = {p.id: i for i, p in enumerate(site.people)}
        zh = ctx.lang == "zh-CN"
        self.names = [(p.name_zh or p.name) if zh else p.name for p in site.people]
        self.trails = ColumnDataSource({"xs": [], "ys": [], "person": []}, name="wall-mark-trails")
        self._places: dict[Any, Any] = {}  # the last label placement (see people.label_places)
        super().__init__(ctx, fig, plan)

    def who(self, snap: LinkSnapshot | None) -> tuple[str, ...]:
        ids = [*marked_people(snap), *self.picked()]
        return tuple(dict.fromkeys(p for p in ids if p in self.index))

    def key(self, snap: LinkSnapshot) -> Hashable:
        return (snap.positions.number if snap.positions else 0, self.who(snap))

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        arrays = snap.positions.arrays if snap is not None and snap.positions is not None else None
        return self.columns([self.index[p] for p in self.who(snap)], arrays, self.names, self.plan,
                            self.ctx.theme, self._places)

    @staticmethod
    def columns(people: list[int], arrays: Any, names: list[str], plan: LabelPlan | None = None, theme: Any = None,
                cache: dict[Any, Any] | None = None) -> dict[str, Any]:
        """One row per marked person (indices ``people``) at their latest fix (NaN: none yet), the name placed
        clear of the map's fixed labels as a person's alarm label is (``plan``; None: up and right)."""
        xyz = np.full((len(people), 3), np.nan)
        if arrays is not None and people:
            xyz = np.asarray(arrays["xyz_m"], dtype=np.float64).reshape(-1, 3)[people]
        labels = [names[i] for i in people]
        cols = {"x": xyz[:, 0].copy(), "y": xyz[:, 1].copy()}
        if plan is None or theme is None:
            return {**cols, "label": labels}
        return {**cols, **label_places(xyz, labels, plan, theme, cache, owner="marks")}

    @staticmethod
    def trail_columns(people: list[int], trails: Any, now_s: float | None, span_s: float) -> dict[str, Any]:
        """One line per marked person: their samples of the last ``span_s`` before ``now_s`` (all when None)."""
        since = -math.inf if now_s is None else now_s - span_s
        xs, ys = [], []
        for i in people:
            _, xy = trails.trail(i, since) if trails is not None else (None, np.zeros((0, 2)))
            xs.append(np.asarray(xy[:, 0], dtype=np.float64))
            ys.append(np.asarray(xy[:, 1], dtype=np.float64))
        return {"xs": xs, "ys": ys, "person": list(people)}

    def update(self, snap: LinkSnapshot) -> None:
        key = self.key(snap)
        if key == self._key:
            return
        frame, who = key
        old_frame, old_who = self._key if isinstance(self._key, tuple) else (None, None)
        self._key = key
        self.publish(self.columns_of(snap))
        people = [self.index[p] for p in who]
        due = old_who != who or old_frame is None or frame // _TRAIL_EVERY_FRAMES != old_frame // _TRAIL_EVERY_FRAMES
        if due and (people or len(self.trails.data["xs"])):
            self.trails.data = self.trail_columns(people, snap.trails, snap.engine_ts_s, self.span_s)

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        th = self.ctx.theme
        pal = th.palette
        return [
            fig.multi_line("xs", "ys", source=self.trails, line_color=pal.text, line_width=th.px(4),
                           line_alpha=0.7, line_dash="dashed", name="wall-mark-trail"),
            fig.scatter("x", "y", source=self.source, marker="circle", size=th.px(_RING_PX), fill_alpha=0.0,
                        line_color=pal.text, line_width=th.px(6)),
            fig.segment("leader_x0", "leader_y0", "leader_x1", "leader_y1", source=self.source, line_color=pal.text,
                        line_width=th.px(2)),
            self.draw_text(fig, text="label", color=pal.text, font_px=_FONT_PX, box_alpha=LABEL_BACKGROUND_ALPHA,
                           text_font_style="bold", text_align="label_align", text_baseline="label_baseline",
                           x_offset="label_dx", y_offset="label_dy"),
        ]
