"""The floor map's label placement (console/web/tiles/map/labels.py, label_plan.py), checked by hand.

The browser test (test_wall_browser) measures the same boxes with the canvas font in Chromium; these check the
arithmetic and the rules: text widths from the font's advance widths, the map's fit, first free slot wins,
leader lines when nothing near is free, and no two fixed labels of the demo plant overlapping at any view.
"""

from __future__ import annotations

import itertools

import pytest

from console.web.theme import Theme
from console.web.tiles import FloorMap, FloorMapOptions, TileContext
from console.web.tiles.map.label_plan import LabelPlan, map_view
from console.web.tiles.map.labels import Box, Label, MapView, Slot, around, place_labels, text_width

THEME = Theme()


def test_text_width_from_the_fonts_advance_widths():
    # Liberation Sans / Arial: G 778, D 722, 0 556, 1 556 thousandths of an em
    assert text_width("GD01", 26.0) == pytest.approx((778 + 722 + 556 + 556) * 26 / 1000)
    # the widest line counts; bold is wider; a CJK character is one em
    assert text_width("ab\nW", 10.0) == pytest.approx(5.56 + 5.56)  # a + b (11.12 px) is wider than W (9.44)
    assert text_width("Hot", 26.0, bold=True) > text_width("Hot", 26.0)  # o 611 bold, 556 regular
    assert text_width("变电所", 20.0) == pytest.approx(60.0)


def test_map_view_fit_is_the_browsers():
    # 300 x 200 m with 3 m of padding into a 2855 x 1839 px plot (measured in Chromium on the 4K wall):
    # the plot is wider than the site, so the height sets the scale: 1839 / 206 px per metre
    v = MapView.fit((0, 0, 300, 200), 3.0, 2855, 1839)
    assert v.px_per_m == pytest.approx(1839 / 206)
    assert (v.y0, v.y1) == pytest.approx((-3.0, 203.0))
    assert v.px(150, 100) == pytest.approx((2855 / 2, 1839 / 2))
    # the estimate from the tile's share of a 3840 x 2160 screen is within 1 % of the browser's 8.927
    demo = map_view(_site())
    assert demo.px_per_m == pytest.approx(8.927, rel=0.01)
    # a quadrant in a tile of the same size: twice the scale
    assert map_view(_site(), view=(0, 0.5, 0.5, 1)).px_per_m == pytest.approx(2 * demo.px_per_m, rel=0.02)


def _site():
    from config import DEMO_SITE, load_site

    return load_site(DEMO_SITE)


def test_a_pinned_view_keeps_its_side_at_the_edge_and_sends_the_spare_room_away():
    # a 150 x 100 m quadrant (no padding) in a 16:9 plot: height sets the scale (10.8 px/m), 177.8 m across
    v = MapView.fit((0, 100, 150, 200), 0.0, 1920, 1080, "se")
    assert v.px_per_m == pytest.approx(10.8)
    assert (v.x1, v.y0) == pytest.approx((150.0, 100.0))  # the seam with screens 2 and 4 at the tile's edge
    assert v.x0 == pytest.approx(150 - 1920 / 10.8)
    w = MapView.fit((150, 100, 300, 200), 0.0, 1920, 1080, "sw")
    assert w.x0 == pytest.approx(150.0)  # its neighbour starts where it ends


def test_first_free_slot_wins_and_close_labels_go_to_different_sides():
    view = MapView(0, 0, 100, 100, 10.0)  # 1000 x 1000 px
    a = Label("a", "GA", 20.0, around(50, 50, 10.0), mark=(50, 50, 12.0))
    b = Label("b", "GB", 20.0, around(52, 50, 10.0), mark=(52, 50, 12.0))  # 20 px to the right of a
    placed = place_labels([a, b], view)
    assert placed["a"].slot == a.slots[0]  # below its mark: the first choice, free
    assert placed["b"].slot != b.slots[0]  # below would cover a's label
    assert placed["a"].box.overlap(placed["b"].box) == 0.0
    # deterministic
    assert place_labels([a, b], view) == placed


def test_label_box_by_alignment_and_baseline():
    view = MapView(0, 0, 100, 100, 10.0)
    lab = Label("x", "AA\nAA", 10.0, ())
    # Bokeh's box of 2 lines: 2 x the font's ascent + descent (1.117 em) and 0.2 of it between them
    w, h = text_width("AA", 10.0), 1.117 * 10.0 * (2 + 0.2)
    # (20 m, 80 m) is (200, 200) px; 5 px right, 10 px down
    def same(a: Box, b: Box) -> bool:
        return (a.left, a.top, a.right, a.bottom) == pytest.approx((b.left, b.top, b.right, b.bottom))

    assert same(lab.box(Slot(20, 80, 5, 10, "left", "top"), view), Box(205, 210, 205 + w, 210 + h))
    assert same(lab.box(Slot(20, 80, 0, 0, "center", "middle"), view), Box(200 - w / 2, 200 - h / 2, 200 + w / 2, 200 + h / 2))
    assert same(lab.box(Slot(20, 80, 0, 0, "right", "bottom"), view), Box(200 - w, 200 - h, 200, 200))


def test_a_crowded_mark_gets_its_label_further_out_with_a_leader():
    view = MapView(0, 0, 100, 100, 10.0)
    # the eight near slots of the mark at (50, 50) are all covered by an obstacle 120 px square around it
    wall = [Box(500 - 60, 500 - 60, 500 + 60, 500 + 60)]
    lab = Label("g", "GD01", 20.0, around(50, 50, 21.0), mark=(50, 50, 34.0))
    p = place_labels([lab], view, [Box(483, 483, 517, 517)], placed=wall)["g"]
    assert p.leader is not None
    assert all(p.box.overlap(w.grown(4.0)) == 0.0 for w in wall)
    x0, y0, x1, y1 = p.leader
    # the leader starts at the mark's edge and points at the label
    assert ((x0 - 50) ** 2 + (y0 - 50) ** 2) ** 0.5 == pytest.approx((34 / 2 + 2) / 10.0)
    assert ((x1 - 50) ** 2 + (y1 - 50) ** 2) ** 0.5 > 60 / 10.0


def test_a_label_stays_inside_the_view():
    view = MapView(0, 0, 100, 100, 10.0)
    lab = Label("e", "A long name at the edge", 20.0, around(99, 50, 10.0), mark=(99, 50, 10.0))
    p = place_labels([lab], view)["e"]
    assert p.box.outside(view.bounds) == 0.0 and p.slot.align == "right"


@pytest.mark.parametrize(
    "share,view,lang",
    [
        ((9 / 12, 11 / 12), (0, 0, 1, 1), "en"),
        ((9 / 12, 11 / 12), (0, 0, 1, 1), "zh-CN"),
        ((1.0, 1.0), (0, 0.5, 0.5, 1), "en"),  # a quadrant on a 1080p screen of the 3x2 wall
        ((1.0, 1.0), (0.5, 0, 1, 0.5), "en"),
    ],
)
def test_no_two_fixed_labels_of_the_demo_plant_overlap(share, view, lang):
    site = _site()
    plan = LabelPlan.build(site, lang, map_view(site, share, view))
    # only the labels of what is in view need to fit
    boxes = {k: p.box for k, p in plan.placed.items() if p.box.overlap(plan.view.bounds) > 0.0}
    assert len(boxes) > 10
    bad = [(a, b) for (a, ba), (b, bb) in itertools.combinations(boxes.items(), 2) if ba.overlap(bb) > 0.0]
    assert not bad, bad[:5]
    assert not [k for k, b in boxes.items() if any(b.overlap(m) > 0.0 for m in plan.marks)]


def test_floor_map_uses_its_tiles_share_and_view():
    site = _site()
    full = FloorMap(TileContext(site, "en"))
    quad = FloorMap(TileContext(site, "en", share=(1.0, 1.0)), FloorMapOptions(view=(0, 0.5, 0.5, 1), anchor="se"))
    assert quad.label_plan.view.px_per_m > 2 * full.label_plan.view.px_per_m
    # pinned at its south-east corner, no padding there: screen 2 begins where screen 1 ends
    assert (quad.label_plan.view.x1, quad.label_plan.view.y0) == pytest.approx((150.0, 100.0))
    assert quad.figure.x_range.start < 1.0 and quad.figure.x_range.end < 160.0


def test_a_crowd_in_alarm_gets_at_most_forty_labels_none_written_over_another_and_moving_reuses_them():
    import numpy as np

    from console.web.tiles.map.people import PeopleLayer

    site = _site()
    plan = LabelPlan.build(site, "en")
    n = len(site.people)
    xyz = np.full((n, 3), np.nan)
    xyz[:60, :2] = np.array([140.0, 70.0]) + np.random.default_rng(1).normal(0.0, 5.0, (60, 2))
    rank = np.zeros(n, dtype=np.int64)
    rank[:60] = 4
    arrays = {"xyz_m": xyz, "age_s": np.zeros(n), "alarm": rank}
    cache: dict = {}
    cols = PeopleLayer.columns(site, arrays, 10.0, THEME, plan, cache)
    labelled = [i for i, text in enumerate(cols["label"]) if text]
    assert len(labelled) == 20  # the cap; the other 40 keep their red square
    boxes = []
    for i in labelled:
        slot = Slot(cols["x"][i], cols["y"][i], cols["label_dx"][i], cols["label_dy"][i], cols["label_align"][i],
                    cols["label_baseline"][i])
        boxes.append(Label("p", cols["label"][i], 30.0, (slot,), bold=True).box(slot, plan.view))
    overlaps = sum(1 for a, b in itertools.combinations(boxes, 2) if a.overlap(b) > 0.0)
    # 20 labels within a 10 m crowd: they spread out, with leader lines
    assert overlaps == 0
    # a step of 10 cm keeps everyone in the same 2 m cells: the placement is reused, the leaders follow
    moved = {**arrays, "xyz_m": xyz + np.array([0.1, 0.0, 0.0])}
    again = PeopleLayer.columns(site, moved, 10.0, THEME, plan, cache)
    assert list(again["label_dx"]) == list(cols["label_dx"])
    lead = np.isfinite(np.asarray(cols["leader_x0"]))
    assert np.allclose(np.asarray(again["leader_x0"])[lead], np.asarray(cols["leader_x0"])[lead] + 0.1)


def test_a_persons_alarm_label_keeps_clear_of_a_permit_areas_label_and_is_placed_again_when_it_moves():
    import numpy as np

    from console.web.tiles.map.people import PeopleLayer
    from console.web.tiles.map.permit_areas import PermitAreaLayer
    from ingest.protocol.records import PermitBoard, PermitInfo

    site = _site()
    plan = LabelPlan.build(site, "en")
    zone = next(z for z in site.zones if z.kind == "hazardous")
    permit = PermitInfo.from_json({
        "id": "HW-1", "type": "hot_work", "type_name": {"en": "Hot work", "zh-CN": "动火作业"}, "grade": "2",
        "zone": zone.id, "polygon": [], "workers": ["T0101"], "watcher": "T0187", "valid_from_s": 0.0,
        "valid_to_s": 1e10, "state": "active", "board": "red"})
    PermitAreaLayer.columns(site, PermitBoard((permit,), 0.0, 1), "en", THEME, plan)
    (permit_box,) = plan.moving["permits"]
    # a person in alarm standing where their label's first choice (up and right) falls on the permit's label
    v = plan.view  # px -> m: the inverse of MapView.px
    x, y = v.x0 + (permit_box.left - 10.0) / v.px_per_m, v.y1 - (permit_box.bottom + 10.0) / v.px_per_m
    n = len(site.people)
    xyz = np.full((n, 3), np.nan)
    xyz[0, :2] = (x, y)
    rank = np.zeros(n, dtype=np.int64)
    rank[0] = 4
    arrays = {"xyz_m": xyz, "age_s": np.zeros(n), "alarm": rank}
    PeopleLayer.columns(site, arrays, 10.0, THEME, plan, {})
    (person_box,) = plan.moving["people"]
    assert person_box.overlap(permit_box) == 0.0
    assert plan.others_version("people") == 1 and plan.others_version("permits") == 1
