"""People: everyone's latest fix (``display.positions``, several times a second), drawn on top of the map.

ISA-101: a person with no alarm is a small light dot; one with an active alarm gets the priority's colour AND
its shape (square, triangle, diamond, inverted triangle) AND a bigger size AND an id label; a fix older than
``site.engine.fix_stale_s`` is drawn hollow and dim. A pointer resting on a dot shows who it is: id, name, company,
the zone they are in and how old the fix is.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer, HoverTool
from bokeh.plotting import figure

from config import Site

from ....link import LinkSnapshot
from ...i18n import t
from ...places import Places
from ...theme import PRIORITY_STYLE, Theme
from ..base import TileContext
from .base import LABEL_BACKGROUND_ALPHA, MapLayer, empty_columns, same_columns
from .label_plan import PERSON_ALARM_MARK, LabelPlan
from .labels import Label, Slot

__all__ = ["PeopleLayer", "label_places"]

_PERSON_SIZE = 18.0
_PERSON_FONT = 30.0  # px at scale 1
#: the columns that change when people only move (a leader line moves with its person)
_MOVING = ("x", "y", "leader_x0", "leader_y0", "leader_x1", "leader_y1", "age_s", "zone")
#: at most this many people carry an id label (the highest priorities: rows come sorted by rank, the highest
#: last); the others in alarm keep their colour, shape and size. Twenty names fill a crowd already.
_MAX_LABELS = 20
#: the label places are kept while the labelled people stay within the same cell of this size (m)
_REPLACE_CELL_M = 2.0
#: the pointer's card names the zones at the centre of the person's cell of this size (m)
_ZONE_CELL_M = 0.5


class PeopleLayer(MapLayer):
    """One mark per person (``source``: one row per person, site order by alarm rank) and alarm labels.

    When only positions moved, only ``x`` and ``y`` are sent.
    """

    source_name = "wall-people"

    def __init__(self, ctx: TileContext, fig: figure, plan: LabelPlan) -> None:
        self.stale_s = ctx.site.engine.fix_stale_s
        self._style: dict[str, Any] | None = None  # the columns last sent but the moving ones
        self._places: dict[Any, Any] = {}  # the last label placement, by who is labelled where (see columns)
        self._named = Places(ctx.site, ctx.lang)
        self._zone_of_cell: dict[tuple[int, int], str] = {}  # 0.5 m cell -> the zones there, in words
        zh = ctx.lang == "zh-CN"
        self._who = {p.id: (f"{p.name_zh} {p.name}" if zh and p.name_zh else p.name, p.company)
                     for p in ctx.site.people}
        super().__init__(ctx, fig, plan)
        fig.add_tools(HoverTool(renderers=self.renderers[:1], tooltips=[
            ("", "@person · @name"), ("", "@company"), (t("people.hover_zone", ctx.lang), "@zone"),
            (t("people.hover_fix", ctx.lang), "@age_s{0.0} s")]))

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        arrays = snap.positions.arrays if snap is not None and snap.positions else None
        cols = self.columns(self.ctx.site, arrays, self.stale_s, self.ctx.theme, self.plan, self._places)
        cols["name"] = [self._who[p][0] for p in cols["person"]]
        cols["company"] = [self._who[p][1] for p in cols["person"]]
        cols["zone"] = [self._zone_at(x, y) for x, y in zip(cols["x"], cols["y"], strict=True)]
        return cols

    def _zone_at(self, x: float, y: float) -> str:
        """The zones at (x, y) in words, looked up once per 0.5 m cell (for the pointer's card): at most 0.35 m
        off at a zone's edge, within a UWB fix's own accuracy."""
        if not (np.isfinite(x) and np.isfinite(y)):
            return ""
        cell = (int(x // _ZONE_CELL_M), int(y // _ZONE_CELL_M))
        text = self._zone_of_cell.get(cell)
        if text is None:
            if len(self._zone_of_cell) > 100_000:  # bounded: cells where people walk, forgotten all at once
                self._zone_of_cell.clear()
            cx, cy = (cell[0] + 0.5) * _ZONE_CELL_M, (cell[1] + 0.5) * _ZONE_CELL_M
            text = self._zone_of_cell[cell] = " · ".join(self._named.zones_text(self._named.zones_at(cx, cy)))
        return text

    def key(self, snap: LinkSnapshot) -> Hashable:
        return snap.positions.number if snap.positions else 0

    def publish(self, new: dict[str, Any]) -> None:
        style = {k: v for k, v in new.items() if k not in _MOVING}
        if self._style is not None and same_columns(style, self._style):
            self.source.data.update({k: new[k] for k in _MOVING})  # only the moving part goes out
        else:
            self.source.data = new
            self._style = style

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        return [
            self.draw_marks(fig, "line_width"),
            # a label that found no room beside its person points back to them
            fig.segment(
                "leader_x0", "leader_y0", "leader_x1", "leader_y1", source=self.source, line_color="label_color",
                line_width=self.ctx.theme.px(2),
            ),
            self.draw_text(
                fig,
                text="label",
                color="label_color",
                font_px=_PERSON_FONT,
                box_alpha=LABEL_BACKGROUND_ALPHA,
                text_font_style="bold",
                text_align="label_align",
                text_baseline="label_baseline",
                x_offset="label_dx",
                y_offset="label_dy",
            ),
        ]

    @staticmethod
    def columns(
        site: Site,
        arrays: Mapping[str, np.ndarray] | None,
        stale_s: float,
        theme: Theme,
        plan: LabelPlan | None = None,
        cache: dict[Any, Any] | None = None,
    ) -> dict[str, Any]:
        """One row per person, in site order except that people with alarms come last (drawn on top).

        ``arrays`` is a ``display.positions`` frame's arrays (``xyz_m`` [P, 3], ``age_s`` [P], ``alarm`` [P]) or
        None before the first frame (everyone unplaced). Columns: ``x``, ``y`` (m, NaN = no fix), ``person``,
        ``rank`` (0 none .. 4 critical), ``stale`` (fix older than ``stale_s`` or none), ``marker``, ``size``
        (px), ``fill_color``, ``fill_alpha``, ``line_color``, ``line_width`` (px), ``label``, ``label_color``,
        and where the label goes: ``label_dx``, ``label_dy`` (px), ``label_align``, ``label_baseline``, placed
        around the map's fixed labels (``plan``; default: the default wall's map), up and right of the mark
        when that is free. ``cache`` (a dict the caller keeps): the placement is reused while the labelled people
        stay in the same 2 m cells (their leader lines follow them).
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
        cols = empty_columns("person", "marker", "fill_color", "line_color", "label", "label_color")
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
                size[j] = theme.px(PERSON_ALARM_MARK)
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
        where = label_places(xyz[order], cols["label"], plan or LabelPlan.build(site, "en"), theme, cache)
        return {
            "x": xyz[order, 0].copy(),
            "y": xyz[order, 1].copy(),
            "rank": rank[order].copy(),
            "stale": stale[order].copy(),
            "age_s": age[order].copy(),
            "size": size,
            "fill_alpha": fill_alpha,
            "line_width": line_width,
            **cols,
            **where,
        }


def label_places(
    xyz: np.ndarray, labels: list[str], plan: LabelPlan, theme: Theme, cache: dict[Any, Any] | None = None,
    owner: str = "people",
) -> dict[str, Any]:
    """Label offsets for the people who have a label (an alarm) and a position, clear of the map's fixed
    labels, of the moving labels of the layers placed before (permit areas; ``owner``: this layer's name in the
    plan) and of each other: up and right of the mark when free, else the next free side, else further out
    with a leader line (at most :data:`_MAX_LABELS` labels: a crowd in alarm stays cheap to draw)."""
    gap = PERSON_ALARM_MARK / 2 + 4.0
    d = gap / np.sqrt(2)
    wanted = []
    labelled = [i for i, text in enumerate(labels) if text and np.all(np.isfinite(xyz[i, :2]))][-_MAX_LABELS:]
    for i in labelled:
        text = labels[i]
        x, y = float(xyz[i, 0]), float(xyz[i, 1])
        slots = (
            Slot(x, y, d, -d, "left", "bottom"),
            Slot(x, y, gap, 0.0, "left", "middle"),
            Slot(x, y, -gap, 0.0, "right", "middle"),
            Slot(x, y, 0.0, -gap, "center", "bottom"),
            Slot(x, y, 0.0, gap, "center", "top"),
            Slot(x, y, d, d, "left", "top"),
            Slot(x, y, -d, -d, "right", "bottom"),
            Slot(x, y, -d, d, "right", "top"),
        )
        mark = (x, y, PERSON_ALARM_MARK)
        wanted.append((i, Label(f"person:{i}", text, _PERSON_FONT, slots, mark=mark, bold=True)))
    key = (plan.others_version(owner), *((lab.text, round(lab.mark[0] / _REPLACE_CELL_M),
                                          round(lab.mark[1] / _REPLACE_CELL_M)) for _, lab in wanted))
    if cache is not None and cache.get("key") == key:
        found = cache["found"]
    else:
        placed = plan.place_more((lab for _, lab in wanted), owner=owner)
        found = []  # per labelled person: its slot, and its leader relative to the mark (m) or None
        for _, lab in wanted:
            p = placed[lab.key]
            x, y = lab.mark[0], lab.mark[1]
            rel = None if p.leader is None else (p.leader[0] - x, p.leader[1] - y, p.leader[2] - x, p.leader[3] - y)
            found.append((p.slot, rel))
        if cache is not None:
            cache.update(key=key, found=found)
    n = len(labels)
    dx, dy = np.zeros(n), np.zeros(n)
    leader = np.full((n, 4), np.nan)
    align, baseline = ["left"] * n, ["bottom"] * n
    for (i, lab), (slot, rel) in zip(wanted, found):
        dx[i], dy[i] = slot.dx * theme.scale, slot.dy * theme.scale
        align[i], baseline[i] = slot.align, slot.baseline
        if rel is not None:
            x, y = lab.mark[0], lab.mark[1]
            leader[i] = (x + rel[0], y + rel[1], x + rel[2], y + rel[3])
    chosen = set(labelled)
    return {
        "label": [text if i in chosen else "" for i, text in enumerate(labels)],  # beyond the cap: no label
        "label_dx": dx,
        "label_dy": dy,
        "label_align": align,
        "label_baseline": baseline,
        **{k: leader[:, j].copy() for j, k in enumerate(("leader_x0", "leader_y0", "leader_x1", "leader_y1"))},
    }
