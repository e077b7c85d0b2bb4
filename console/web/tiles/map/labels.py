"""Where the map's names and readings go: one deterministic placement pass, so no two labels overlap.

Every fixed label of the map (zone names, structure names, gas detector and machine labels) is placed once
when the map is built, in a fixed order (zones, structures, gas detectors, machines) and, for each, the first
of its candidate slots whose box covers nothing already placed, no point mark, and stays inside the view. A
label with no free slot near its mark moves further out, with a short leader line back to the mark; only when
that fails too does it take the slot with the least overlap (logged). Labels that come and go (permit areas,
people in alarm) are placed the same way when they change, around the fixed ones.

Boxes are computed in CSS px at scale 1 from the canvas font's advance widths (Liberation Sans, metric-compatible
with Arial: the wall's canvas font), so the placement is the same on every host; CJK characters count one em.
The map's scale comes from :class:`MapView`: the tile's share of a 3840 x 2160 screen and the part of the
site it shows, fitted the way the browser fits it (square metres, the whole view visible).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = [
    "LINE_HEIGHT",
    "Box",
    "Label",
    "MapView",
    "Placed",
    "Slot",
    "around",
    "place_labels",
    "text_width",
]

#: text glyph line height (Bokeh's default), in font sizes
LINE_HEIGHT = 1.2
#: the canvas font's ascent + descent, in font sizes (Liberation Sans: 0.905 + 0.212): Bokeh's line box
FONT_BOX = 1.117
#: space kept free around every label box, px at scale 1
MARGIN = 4.0

# advance widths of Liberation Sans (= Arial's metrics) for ' ' .. '~', in thousandths of an em
_REGULAR = (
    278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 556, 278, 278, 584, 584, 584, 556, 1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667,
    556, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, 333, 556,
    556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556, 333, 500, 278, 556, 500, 722,
    500, 500, 500, 334, 260, 334, 584,
)
_BOLD = (
    278, 333, 474, 556, 556, 889, 722, 238, 333, 333, 389, 584, 278, 333, 278, 278, 556, 556, 556, 556, 556, 556,
    556, 556, 556, 556, 333, 333, 584, 584, 584, 611, 975, 722, 722, 722, 722, 667, 611, 778, 722, 278, 556, 722,
    611, 833, 722, 778, 667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 333, 278, 333, 584, 556, 333, 556,
    611, 556, 611, 556, 333, 611, 611, 278, 278, 556, 278, 889, 611, 611, 611, 611, 389, 556, 333, 611, 556, 778,
    556, 556, 500, 389, 280, 389, 584,
)
_OTHER = {"\u00b7": 278, "\u00b0": 400, "\u00b2": 333, "\u00b3": 333, "\u00b5": 576, "\u2013": 556}


def text_width(text: str, font_px: float, *, bold: bool = False) -> float:
    """Width in px of the widest line of ``text`` drawn in the canvas font at ``font_px``.

    Characters outside the table (CJK, symbols drawn from a fallback font) count one em: never narrower than
    drawn, so a placement made with it holds in the browser.
    """
    table = _BOLD if bold else _REGULAR
    widest = 0
    for line in text.split("\n"):
        w = 0
        for ch in line:
            c = ord(ch)
            w += table[c - 32] if 32 <= c < 127 else _OTHER.get(ch, 1000)
        widest = max(widest, w)
    return widest * font_px / 1000.0


@dataclass(frozen=True)
class Box:
    """A screen rectangle in px (y grows downwards)."""

    left: float
    top: float
    right: float
    bottom: float

    def overlap(self, other: Box) -> float:
        """Area shared with ``other`` (0 when they only touch)."""
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        return w * h if w > 0 and h > 0 else 0.0

    def outside(self, bounds: Box) -> float:
        """Area of this box outside ``bounds``."""
        inside = self.overlap(bounds)
        return (self.right - self.left) * (self.bottom - self.top) - inside

    def grown(self, d: float) -> Box:
        return Box(self.left - d, self.top - d, self.right + d, self.bottom + d)


@dataclass(frozen=True)
class MapView:
    """The part of the site a map shows and its scale: site metres -> px at scale 1 (origin top-left).

    :meth:`fit` sizes it the way the page's map does: the view (with its padding) fitted into the plot area,
    metres square, centred or pinned to a side.
    """

    x0: float
    y0: float
    x1: float
    y1: float
    px_per_m: float

    @classmethod
    def fit(
        cls, view_m: Sequence[float], pad_m: float, width_px: float, height_px: float, anchor: str = "center"
    ) -> MapView:
        x0, y0, x1, y1 = (float(v) for v in view_m)
        dx, dy = x1 - x0 + 2 * pad_m, y1 - y0 + 2 * pad_m
        if dx / dy > width_px / height_px:
            dy = dx * height_px / width_px
        else:
            dx = dy * width_px / height_px
        a = "" if anchor == "center" else anchor
        # a pinned side has no padding: the neighbouring screen starts exactly there
        xs = x1 - dx if "e" in a else x0 if "w" in a else (x0 + x1 - dx) / 2
        ys = y1 - dy if "n" in a else y0 if "s" in a else (y0 + y1 - dy) / 2
        return cls(xs, ys, xs + dx, ys + dy, width_px / dx)

    def px(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.px_per_m, (self.y1 - y) * self.px_per_m

    @property
    def bounds(self) -> Box:
        return Box(0.0, 0.0, (self.x1 - self.x0) * self.px_per_m, (self.y1 - self.y0) * self.px_per_m)


@dataclass(frozen=True)
class Slot:
    """One place a label may go: its anchor in site metres, a px offset from it, and the text alignment there
    (``align`` left/center/right, ``baseline`` top/middle/bottom: Bokeh's text glyph properties)."""

    x: float
    y: float
    dx: float = 0.0
    dy: float = 0.0
    align: str = "center"
    baseline: str = "middle"


@dataclass(frozen=True)
class Label:
    """A label to place: its key, its text (the widest it will show), its font, and its slots in order of
    preference. ``mark``: the point it names (site metres) and that point's mark size in px, for leader
    lines; None for a label that names an area (it never moves away from its slots)."""

    key: str
    text: str
    font_px: float
    slots: tuple[Slot, ...]
    mark: tuple[float, float, float] | None = None
    bold: bool = False
    line_height: float = LINE_HEIGHT
    padding: float = 0.0

    def box(self, slot: Slot, view: MapView) -> Box:
        """The screen box of the text at ``slot``."""
        w = text_width(self.text, self.font_px, bold=self.bold) + 2 * self.padding
        # Bokeh's text box: n lines of the font's ascent + descent, with (line height - 1) of that between them
        n = self.text.count("\n") + 1
        h = FONT_BOX * self.font_px * (n + (self.line_height - 1.0) * (n - 1)) + 2 * self.padding
        x, y = view.px(slot.x, slot.y)
        x, y = x + slot.dx, y + slot.dy
        left = x - w / 2 if slot.align == "center" else x - w if slot.align == "right" else x
        top = y - h / 2 if slot.baseline == "middle" else y - h if slot.baseline == "bottom" else y
        return Box(left, top, left + w, top + h)


@dataclass(frozen=True)
class Placed:
    """Where a label went: its slot, its box (px), and the leader line (site metres) when it moved away."""

    slot: Slot
    box: Box
    leader: tuple[float, float, float, float] | None = None


def around(x: float, y: float, gap_px: float) -> tuple[Slot, ...]:
    """The eight slots around a point mark ``gap_px`` from its centre: below, above, right, left, then the
    four diagonals (a label reads best straight under or beside its mark)."""
    d = gap_px / math.sqrt(2)
    return (
        Slot(x, y, 0.0, gap_px, "center", "top"),
        Slot(x, y, 0.0, -gap_px, "center", "bottom"),
        Slot(x, y, gap_px, 0.0, "left", "middle"),
        Slot(x, y, -gap_px, 0.0, "right", "middle"),
        Slot(x, y, d, d, "left", "top"),
        Slot(x, y, -d, d, "right", "top"),
        Slot(x, y, d, -d, "left", "bottom"),
        Slot(x, y, -d, -d, "right", "bottom"),
    )


#: how far out a label that found no free slot beside its mark may go: multiples of the first gap, then px
_LEADER_STEPS = (2.0, 3.0, 4.5)
_LEADER_PX = (60.0, 100.0, 150.0, 220.0)


def place_labels(
    labels: Iterable[Label],
    view: MapView,
    obstacles: Iterable[Box] = (),
    *,
    placed: Iterable[Box] = (),
    leaders: bool = True,
) -> dict[str, Placed]:
    """Place ``labels`` in order; each avoids ``obstacles`` (point marks), ``placed`` (labels placed before,
    e.g. the fixed ones when the moving ones are placed) and the labels placed before it in this call, and
    stays inside ``view``. ``leaders`` False: no search further out (a label with no free slot takes the least
    crowded one). Deterministic: the same input always gives the same result."""
    taken = [b.grown(MARGIN) for b in obstacles] + [b.grown(MARGIN) for b in placed]
    bounds = view.bounds
    out: dict[str, Placed] = {}
    for lab in labels:

        def cost(box: Box) -> float:
            return sum(box.overlap(t) for t in taken) + box.outside(bounds)

        choice: Placed | None = None
        best: tuple[float, Placed] | None = None
        for slot in lab.slots:
            box = lab.box(slot, view)
            c = cost(box)
            if c == 0.0:
                choice = Placed(slot, box)
                break
            if best is None or c < best[0]:
                best = (c, Placed(slot, box))
        if choice is None and lab.mark is not None and leaders:
            choice = _with_leader(lab, view, cost)
        if choice is None:
            assert best is not None, f"label {lab.key} has no slot"
            choice = best[1]
            log.debug("map label %s overlaps others (%.0f px2): no free place near its mark", lab.key, best[0])
        out[lab.key] = choice
        taken.append(choice.box.grown(MARGIN))
    return out


def _with_leader(lab: Label, view: MapView, cost) -> Placed | None:
    """The first free slot further out from the label's mark (:data:`_LEADER_STEPS`), with a leader line from
    the mark's edge to the label's near corner; None when there is none."""
    x, y, mark_px = lab.mark  # type: ignore[misc]
    gap = mark_px / 2 + 4.0
    radii = sorted({gap * s for s in _LEADER_STEPS} | {r for r in _LEADER_PX if r > gap * _LEADER_STEPS[-1]})
    for r in radii:
        for slot in around(x, y, r):
            box = lab.box(slot, view)
            if cost(box) == 0.0:
                # the leader runs from the mark's edge towards the label's anchor, stopping short of the text
                r_px = math.hypot(slot.dx, slot.dy)
                ux, uy = slot.dx / r_px, slot.dy / r_px
                start, end = mark_px / 2 + 2.0, r_px - 2.0
                m = view.px_per_m
                leader = (x + ux * start / m, y - uy * start / m, x + ux * end / m, y - uy * end / m)
                return Placed(slot, box, leader)
    return None
