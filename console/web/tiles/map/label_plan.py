"""The floor map's fixed labels, placed once per map: zone names, structure names, gas detector and machine
labels, with the point marks they must not cover. The layers draw their labels where :class:`LabelPlan`
put them; labels that come and go (permit areas, people in alarm) are placed around the fixed ones by
:meth:`LabelPlan.place_more`. A label that had to move away from its mark gets a leader line
(:class:`LeaderLayer`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bokeh.models import GlyphRenderer
from bokeh.plotting import figure

from config import Site

from ....link import LinkSnapshot
from ...i18n import t
from ...theme import Theme
from ..base import format_value
from .base import MapLayer
from .labels import Box, Label, MapView, Placed, Slot, around, place_labels

__all__ = [
    "GAS_ALARM_MARK",
    "GAS_FONT",
    "PERSON_ALARM_MARK",
    "STRUCTURE_FONT",
    "VIB_ALARM_MARK",
    "VIB_FONT",
    "ZONE_FONT",
    "LabelPlan",
    "LeaderLayer",
    "gas_label_head",
    "map_view",
    "structure_label",
]

# sizes in px at scale 1, shared by the layers that draw these labels and marks
ZONE_FONT = 28.0
STRUCTURE_FONT = 26.0
GAS_FONT = 26.0
GAS_ALARM_MARK = 34.0
VIB_FONT = 24.0
VIB_ALARM_MARK = 34.0
PERSON_ALARM_MARK = 40.0
ANCHOR_MARK = 14.0
#: the two-line readings of gas detectors and machines are set tighter than other text
READING_LINE_HEIGHT = 1.1
#: a zone name sits this far inside its zone's corner
_ZONE_INSET = 8.0

#: how far from a moving label's anchor a fixed label can be in its way (px at scale 1): the furthest leader
#: slot (220 px) plus the widest label
_NEAR_PX = 700.0

# the page the map is sized for, at scale 1 (see layouts.page and FloorMap): screen, tile gaps, the key under
# the map, the plot's border
SCREEN_PX = (3840.0, 2160.0)
_GAP = 12.0
_LEGEND = 104.0
_BORDER = 8.0


def map_view(
    site: Site,
    share: tuple[float, float] = (9 / 12, 11 / 12),
    view: Sequence[float] = (0.0, 0.0, 1.0, 1.0),
    *,
    legend: bool = True,
    anchor: str = "center",
) -> MapView:
    """The map's view at scale 1: the part ``view`` (fractions x0, y0, x1, y1 of the site's extent) of the site,
    in a tile taking ``share`` (width, height fractions) of a 3840 x 2160 screen, with the key under it when
    ``legend``, pinned at ``anchor`` (see ``FloorMapOptions.anchor``). Matches the browser's fit to within a few px
    (tested in Chromium)."""
    w = share[0] * (SCREEN_PX[0] - _GAP) - _GAP - 2 * _BORDER
    h = share[1] * (SCREEN_PX[1] - _GAP) - _GAP - 2 * _BORDER - (_LEGEND if legend else 0.0)
    return MapView.fit(view_extent(site, view), view_pad(site, view), max(w, 1.0), max(h, 1.0), anchor)


def view_extent(site: Site, view: Sequence[float]) -> tuple[float, float, float, float]:
    """The site metres of ``view`` (fractions of the site's extent)."""
    x0, y0, x1, y1 = site.floor_plan.extent_m
    fx0, fy0, fx1, fy1 = view
    return (x0 + fx0 * (x1 - x0), y0 + fy0 * (y1 - y0), x0 + fx1 * (x1 - x0), y0 + fy1 * (y1 - y0))


def view_pad(site: Site, view: Sequence[float]) -> float:
    """Margin around the view, metres: 1 % of its longer side."""
    x0, y0, x1, y1 = view_extent(site, view)
    return 0.01 * max(x1 - x0, y1 - y0)


def structure_label(text: Any, lang: str) -> str:
    """A structure's name in ``lang`` (a plain string names it in every language)."""
    return text.get(lang) if hasattr(text, "get") else str(text)


def gas_label_head(det: Any) -> str:
    """The first line of a gas detector's label: its id and the gas it measures (``'GD19 Cl2'``)."""
    return f"{det.id} {det.gas}"


def _centre(poly: Sequence[Sequence[float]]) -> tuple[float, float, float, float, float, float]:
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys), (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2


def _zone_labels(site: Site, lang: str) -> list[Label]:
    out = []
    d = _ZONE_INSET
    for z in site.zones:
        x0, y0, x1, y1, _, _ = _centre(z.polygon)
        # the widest the name gets: with a priority symbol while an alarm names the zone
        text = f"\u25b2 {z.name.get(lang)}"
        slots = (
            Slot(x0, y1, d, d, "left", "top"),  # inside the top-left corner
            Slot(x1, y1, -d, d, "right", "top"),
            Slot(x0, y0, d, -d, "left", "bottom"),
            Slot(x1, y0, -d, -d, "right", "bottom"),
            Slot(x0, y1, 0.0, -d / 2, "left", "bottom"),  # just outside, above the top edge
            Slot(x0, y0, 0.0, d / 2, "left", "top"),  # just outside, below the bottom edge
            Slot(x1, y1, 0.0, -d / 2, "right", "bottom"),
            Slot(x1, y0, 0.0, d / 2, "right", "top"),
        )
        out.append(Label(f"zone:{z.id}", text, ZONE_FONT, slots))
    return out


def _structure_labels(site: Site, lang: str) -> list[Label]:
    structures = site.floor_plan.structures
    boxes = [_centre(s.polygon) for s in structures]
    out = []
    for i, s in enumerate(structures):
        text = structure_label(s.label, lang)
        if not text:
            continue
        x0, y0, x1, y1, cx, cy = boxes[i]
        holds_others = any(x0 < b[4] < x1 and y0 < b[5] < y1 for j, b in enumerate(boxes) if j != i)
        foot, head = (cx, y0 + 0.02 * (y1 - y0)), (cx, y1 - 0.02 * (y1 - y0))
        if holds_others:
            # a unit drawn around tanks or columns leaves its centre to their names: its own goes to its foot
            slots = (
                Slot(*foot, 0.0, 0.0, "center", "bottom"),
                Slot(x0, foot[1], _ZONE_INSET, 0.0, "left", "bottom"),
                Slot(x1, foot[1], -_ZONE_INSET, 0.0, "right", "bottom"),
                Slot(*head, 0.0, 0.0, "center", "top"),
            )
        else:
            slots = (
                Slot(cx, cy, 0.0, 0.0, "center", "middle"),
                Slot(*head, 0.0, 0.0, "center", "top"),
                Slot(*foot, 0.0, 0.0, "center", "bottom"),
                Slot(cx, y1, 0.0, -_ZONE_INSET / 2, "center", "bottom"),  # just above it
                Slot(cx, y0, 0.0, _ZONE_INSET / 2, "center", "top"),  # just below it
            )
        out.append(Label(f"structure:{s.id}", text, STRUCTURE_FONT, slots))
    return out


def _point_label(key: str, pos, text: str, font: float, mark: float) -> Label:
    """The label of a point mark (a detector, a machine): two lines around it, a leader when crowded."""
    x, y = float(pos[0]), float(pos[1])
    return Label(key, text, font, around(x, y, mark / 2 + 4.0), mark=(x, y, mark), line_height=READING_LINE_HEIGHT)


def _gas_labels(site: Site, lang: str) -> list[Label]:
    # the widest reading a detector can show: full scale, uncertain, second alarm level
    return [
        _point_label(f"gas:{d.id}", d.position_m, f"{gas_label_head(d)}\n{format_value(d.range_max)} {d.unit}"
                     f"{t('gas.uncertain', lang)} {t('gas.level2', lang)}", GAS_FONT, GAS_ALARM_MARK)
        for d in site.gas_detectors
    ]


def _vibration_labels(site: Site, lang: str) -> list[Label]:
    # the widest: zone D with its value (a quiet machine shows its zone letter only)
    return [_point_label(f"vib:{p.id}", p.position_m, f"{p.id}\nD 99.9 mm/s", VIB_FONT, VIB_ALARM_MARK)
            for p in site.vibration_points]


def _mark_boxes(site: Site, view: MapView) -> list[Box]:
    """The point marks no label may cover: gas detectors and machines (at their alarm size) and anchors."""
    marks = [(d.position_m, GAS_ALARM_MARK) for d in site.gas_detectors]
    marks += [(p.position_m, VIB_ALARM_MARK) for p in site.vibration_points]
    marks += [(a.position_m, ANCHOR_MARK) for a in site.anchors]
    out = []
    for pos, size in marks:
        x, y = view.px(pos[0], pos[1])
        out.append(Box(x - size / 2, y - size / 2, x + size / 2, y + size / 2))
    return out


@dataclass
class LabelPlan:
    """The fixed labels of one map, placed: ``placed`` by key (``zone:<id>``, ``structure:<id>``,
    ``gas:<id>``, ``vib:<id>``), the point marks (``marks``) and the ``view`` they were placed in. ``moving``: the
    boxes of the labels that come and go, by the layer that placed them last (permit areas, people, marks), so a
    layer drawn later keeps clear of them too; ``versions`` (by layer) grow whenever they change."""

    view: MapView
    placed: dict[str, Placed]
    marks: list[Box] = field(default_factory=list)
    moving: dict[str, list[Box]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    @classmethod
    def build(cls, site: Site, lang: str, view: MapView | None = None) -> LabelPlan:
        """Place every fixed label of ``site`` in ``lang``: zones, then structures, gas detectors, machines."""
        v = view or map_view(site)
        marks = _mark_boxes(site, v)
        labels = _zone_labels(site, lang) + _structure_labels(site, lang)
        labels += _gas_labels(site, lang) + _vibration_labels(site, lang)
        # a map showing part of the site places what it shows first; the rest only stays out of its way
        bounds = v.bounds

        def shown(lab: Label) -> bool:
            x, y = v.px(lab.slots[0].x, lab.slots[0].y)
            return bounds.left <= x <= bounds.right and bounds.top <= y <= bounds.bottom

        inside = place_labels([lab for lab in labels if shown(lab)], v, marks)
        # what is out of view keeps its first choice: searching would pull it (and a leader) into the view
        outside = {lab.key: Placed(lab.slots[0], lab.box(lab.slots[0], v)) for lab in labels if not shown(lab)}
        return cls(v, {**inside, **outside}, marks)

    def place_more(self, labels: Iterable[Label], *, leaders: bool = True, owner: str | None = None
                   ) -> dict[str, Placed]:
        """Place labels that come and go around the fixed ones, the other layers' moving ones and each other.
        Only the boxes near the new labels are looked at (within :data:`_NEAR_PX` of any of their slots'
        anchors): a crowd of labels stays cheap. ``owner`` (a layer's name): the boxes placed are kept as that
        layer's moving labels, for the layers placed after it."""
        labels = list(labels)
        if not labels:
            self._keep_moving(owner, [])
            return {}
        pts = [self.view.px(s.x, s.y) for lab in labels for s in lab.slots]
        window = Box(min(p[0] for p in pts) - _NEAR_PX, min(p[1] for p in pts) - _NEAR_PX,
                     max(p[0] for p in pts) + _NEAR_PX, max(p[1] for p in pts) + _NEAR_PX)
        others = [b for name, boxes in self.moving.items() if name != owner for b in boxes]
        near = [b for b in (*(p.box for p in self.placed.values()), *others) if b.overlap(window) > 0.0]
        marks = [b for b in self.marks if b.overlap(window) > 0.0]
        placed = place_labels(labels, self.view, marks, placed=near, leaders=leaders)
        self._keep_moving(owner, [p.box for p in placed.values()])
        return placed

    def _keep_moving(self, owner: str | None, boxes: list[Box]) -> None:
        if owner is not None and self.moving.get(owner, []) != boxes:
            self.moving[owner] = boxes
            self.versions[owner] = self.versions.get(owner, 0) + 1

    def others_version(self, owner: str) -> int:
        """How often the other layers' moving labels changed: a layer's cached placement is stale when it grew."""
        return sum(v for name, v in self.versions.items() if name != owner)

    def slot(self, key: str) -> Slot | None:
        p = self.placed.get(key)
        return p.slot if p is not None else None

    def leaders(self) -> list[tuple[float, float, float, float]]:
        return [p.leader for p in self.placed.values() if p.leader is not None]


def slot_columns(slots: Sequence[Slot | None], theme: Theme, fallback: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Text glyph columns for labels at ``slots`` (a missing slot: centred on its ``fallback`` point):
    ``label_x``, ``label_y`` (m), ``label_dx``, ``label_dy`` (px at the theme's scale), ``label_align``,
    ``label_baseline``."""
    s = theme.scale
    cols: dict[str, list[Any]] = {k: [] for k in ("label_align", "label_baseline")}
    xs, ys, dxs, dys = [], [], [], []
    for slot, (fx, fy) in zip(slots, fallback):
        slot = slot or Slot(fx, fy)
        xs.append(slot.x)
        ys.append(slot.y)
        dxs.append(slot.dx * s)
        dys.append(slot.dy * s)
        cols["label_align"].append(slot.align)
        cols["label_baseline"].append(slot.baseline)
    return {
        "label_x": np.array(xs, dtype=np.float64),
        "label_y": np.array(ys, dtype=np.float64),
        "label_dx": np.array(dxs, dtype=np.float64),
        "label_dy": np.array(dys, dtype=np.float64),
        **cols,
    }


class LeaderLayer(MapLayer):
    """Thin lines from a mark to its label where the label had to move away from the mark (static)."""

    source_name = "wall-map-leaders"

    def columns_of(self, snap: LinkSnapshot | None) -> dict[str, Any]:
        lines = self.plan.leaders()
        return {k: [ln[i] for ln in lines] for i, k in enumerate(("x0", "y0", "x1", "y1"))}

    def key(self, snap: LinkSnapshot) -> Hashable:
        return None

    def draw(self, fig: figure) -> list[GlyphRenderer]:
        theme = self.ctx.theme
        return [
            fig.segment(
                "x0", "y0", "x1", "y1", source=self.source, line_color=theme.palette.text_dim,
                line_width=theme.px(2), line_alpha=0.8,
            )
        ]
