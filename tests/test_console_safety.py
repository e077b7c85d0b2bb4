"""The wall's safety layers with no server: the gas cloud, machines and permit areas on the floor map, the permit
board, the emergency muster tile, the link's parsing of their messages and the layout stack that swaps the board
for the muster. Values are checked against hand calculations."""

from __future__ import annotations

import math
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from console.link import AlarmTable, Frame, LinkCounters, LinkSnapshot
from console.web.app import build_wall, update_page
from console.web.i18n import t
from console.web.theme import BOARD_COLORS, PRIORITY_STYLE, Theme
from console.web.tiles import (
    WALL_TILES,
    FloorMap,
    MusterTile,
    PermitBoardTile,
    TileContext,
    format_elapsed,
)
from console.web.tiles.floor_map import GAS_FIELD_BANDS
from ingest.protocol.records import AlarmRecord, MusterStatus, PermitBoard, PermitInfo
from layouts import LayoutError, build_page, parse_layout
from tests.records import EPOCH_S, alarm_record, default_permits, permit_record

THEME = Theme()
SHANGHAI = ZoneInfo("Asia/Shanghai")  # EPOCH_S is 16:00:00 there


def board_of(*records: dict, version: int = 1) -> PermitBoard:
    return PermitBoard(tuple(PermitInfo.from_json(r) for r in records), EPOCH_S, version)


def snap_with(*, permits=None, muster=None, gasfield=None, sensors=None, alarms=(), engine_ts_s=None):
    status = None
    if engine_ts_s is not None:
        status = Frame(
            "engine.status",
            MappingProxyType({}),
            MappingProxyType({"engine_ts_s": engine_ts_s}),
            engine_ts_s,
            0.0,
            1,
        )
    recs = {r.id: r for r in (AlarmRecord.from_json(a) for a in alarms)}
    return LinkSnapshot(
        positions=None,
        sensors=sensors,
        status=status,
        alarms=AlarmTable(seq=1, version=1, synced=True, alarms=MappingProxyType(recs)),
        counters=LinkCounters(),
        state="ok",
        last_frame_age_s=0.1,
        gasfield=gasfield,
        permits=permits,
        muster=muster,
    )


def frame(topic: str, arrays: dict, meta: dict | None = None, number: int = 1) -> Frame:
    return Frame(
        topic,
        MappingProxyType({k: np.asarray(v) for k, v in arrays.items()}),
        MappingProxyType(meta or {}),
        EPOCH_S,
        0.0,
        number,
    )


# -- gas field --------------------------------------------------------------------------------------------------
GRID_META = {"extent_m": [0.0, 0.0, 8.0, 6.0], "dx_m": 2.0}


def test_gas_field_bands_follow_the_field_between_cell_centres():
    # cell centres x = 1, 3, 5, 7 m; the field rises 0.2 per metre from x = 1: f(x) = 0.2 (x - 1)
    field = np.tile(np.array([0.0, 0.4, 0.8, 1.2], dtype=np.float32), (3, 1))
    cols = FloorMap.gas_field_columns(field, THEME, GRID_META)
    assert cols["band"] == [b[0] for b in GAS_FIELD_BANDS]
    # band edges where f = 0.2, 0.35, 0.5, 0.75, 1.0: x = 2, 2.75, 3.5, 4.75, 6; the last band reaches x = 7
    edges = [(2.0, 2.75), (2.75, 3.5), (3.5, 4.75), (4.75, 6.0), (6.0, 7.0)]
    for k, (lo, hi) in enumerate(edges):
        xs = [x for poly in cols["xs"][k] for ring in poly for x in ring]
        ys = [y for poly in cols["ys"][k] for ring in poly for y in ring]
        assert (min(xs), max(xs)) == pytest.approx((lo, hi)), k
        assert (min(ys), max(ys)) == pytest.approx((1.0, 5.0))  # first and last row centres
    assert cols["fill_color"][0] == THEME.palette.gas_field_quiet
    assert (
        cols["fill_color"][2] == PRIORITY_STYLE[3].color and cols["fill_color"][4] == PRIORITY_STYLE[4].color
    )
    assert cols["fill_alpha"] == [b[2] for b in GAS_FIELD_BANDS]
    assert cols["fill_alpha"][0] < cols["fill_alpha"][2] < cols["fill_alpha"][4]  # quieter when lower


def test_gas_field_below_a_fifth_of_level_two_or_unknown_draws_nothing():
    empty = {"xs": [], "ys": [], "band": [], "fill_color": [], "fill_alpha": []}
    low = np.full((3, 4), 0.19, dtype=np.float32)
    assert FloorMap.gas_field_columns(low, THEME, GRID_META) == empty
    assert FloorMap.gas_field_columns(np.full((3, 4), np.nan, np.float32), THEME, GRID_META) == empty
    assert FloorMap.gas_field_columns(None, THEME) == empty
    # a cloud at 0.4 only: one quiet band (0.35 .. 0.5), no alarm colour
    mid = np.full((3, 4), 0.4, dtype=np.float32)
    cols = FloorMap.gas_field_columns(mid, THEME, GRID_META)
    assert cols["band"] == [0.35] and cols["fill_color"] == [THEME.palette.gas_field_quiet]


def test_gas_field_leaves_out_cells_without_a_detector_near():
    field = np.full((3, 4), 1.5, dtype=np.float32)
    field[:, :2] = np.nan  # the west half is unknown
    cols = FloorMap.gas_field_columns(field, THEME, GRID_META)
    assert cols["band"] == [GAS_FIELD_RED_LOWER]
    xs = [x for poly in cols["xs"][0] for ring in poly for x in ring]
    assert min(xs) == pytest.approx(5.0) and max(xs) == pytest.approx(7.0)


GAS_FIELD_RED_LOWER = GAS_FIELD_BANDS[-1][0]


def test_floor_map_sends_the_gas_field_only_when_a_new_frame_changes_it(demo_site):
    fmap = FloorMap(TileContext(demo_site, "en"))
    meta = {"extent_m": [0.0, 0.0, 300.0, 200.0], "dx_m": 2.0}
    field = np.zeros((100, 150), dtype=np.float32)
    field[40:60, 90:110] = 1.2
    fmap.update(snap_with(gasfield=frame("display.gasfield", {"field": field}, meta, number=1)))
    assert fmap.gasfield_source.data["band"][-1] == 1.0
    fmap.gasfield_source.data = {k: [] for k in fmap.gasfield_source.data}  # a marker the same frame keeps
    fmap.update(snap_with(gasfield=frame("display.gasfield", {"field": field}, meta, number=1)))
    assert fmap.gasfield_source.data["band"] == []  # same frame: nothing recomputed
    fmap.update(snap_with(gasfield=frame("display.gasfield", {"field": field}, meta, number=2)))
    assert fmap.gasfield_source.data["band"][-1] == 1.0
    fmap.update(snap_with(gasfield=frame("display.gasfield", {"field": field * 0}, meta, number=3)))
    assert fmap.gasfield_source.data["band"] == []  # the cloud has gone


# -- vibration points -------------------------------------------------------------------------------------------
def vib_arrays(rms, quality=None, zone=None):
    v = len(rms)
    out = {
        "vib_rms_mm_s": np.asarray(rms, dtype=np.float64),
        "vib_quality": np.asarray(quality if quality is not None else [0] * v, dtype=np.uint8),
    }
    if zone is not None:
        out["vib_zone"] = np.asarray(zone, dtype=np.uint8)
    return out


def test_vibration_zones_from_iso_boundaries_when_the_engine_sends_none(demo_site):
    # VP01, VP02, VP04.. group 2 rigid: A/B 1.4, B/C 2.8, C/D 4.5 mm/s; VP03, VP10 group 1 rigid: 2.3, 4.5, 7.1
    rms = [1.4, 1.41, 7.2, 2.8, 4.5, 4.51, float("nan"), 0.5, 0.5, 4.6]
    zones = FloorMap.vibration_zones(demo_site, vib_arrays(rms, quality=[0, 0, 0, 0, 0, 0, 0, 2, 3, 0]))
    # a boundary value belongs to the lower zone; bad (2) and no data (3) are unknown
    assert zones.tolist() == [1, 2, 4, 2, 3, 4, 0, 0, 0, 3]
    given = FloorMap.vibration_zones(demo_site, vib_arrays([9.0] * 10, zone=[1, 2, 3, 4, 0, 1, 1, 1, 1, 1]))
    assert given.tolist()[:5] == [1, 2, 3, 4, 0]  # the engine's zone wins over the value
    assert FloorMap.vibration_zones(demo_site, None).tolist() == [0] * 10


def test_machines_in_zone_c_or_d_take_their_alarm_priority_colour_shape_and_letter(demo_site):
    arrays = vib_arrays(
        [1.0, 2.0, 3.6, 5.0, 1.0, 1, 1, 1, 1, 1],
        quality=[0, 0, 0, 0, 2, 0, 0, 0, 0, 0],
        zone=[1, 2, 3, 4, 0, 1, 1, 1, 1, 1],
    )
    cols = FloorMap.vibration_columns(demo_site, arrays, None, "en", THEME)
    assert cols["text"][:5] == ["VP01\nA", "VP02\nB", "VP03\nC 3.60 mm/s", "VP04\nD 5.00 mm/s", "VP05\nBAD"]
    assert cols["marker"][:2] == ["circle_cross", "circle_cross"]
    # zone C: the medium priority of vibration.zone_c (yellow diamond); zone D: high (amber triangle)
    assert (cols["rank"][2], cols["marker"][2], cols["fill_color"][2]) == (
        2,
        "diamond",
        PRIORITY_STYLE[2].color,
    )
    assert (cols["rank"][3], cols["marker"][3], cols["text_color"][3]) == (
        3,
        "triangle",
        PRIORITY_STYLE[3].color,
    )
    assert cols["size"][3] > cols["size"][0]
    # the label stays where the map's label plan put it, whatever the machine's state (no jumping)
    quiet = FloorMap.vibration_columns(demo_site, None, None, "en", THEME)
    for k in ("label_x", "label_y", "label_dx", "label_dy", "label_align", "label_baseline"):
        assert list(cols[k]) == list(quiet[k])
    assert cols["label_bg_alpha"][3] > 0 and cols["label_bg_alpha"][0] == 0  # a box only behind alarm text
    # the alarm list's priority wins: a site that made VP04's zone D alarm critical sees a red square
    crit = alarm_record(1, priority="critical", condition="vibration.zone_d", zone=None)
    crit["id"] = "vibration.zone_d:VP04"
    cols = FloorMap.vibration_columns(
        demo_site, arrays, {crit["id"]: AlarmRecord.from_json(crit)}, "en", THEME
    )
    assert (cols["rank"][3], cols["marker"][3], cols["fill_color"][3]) == (
        4,
        "square",
        PRIORITY_STYLE[4].color,
    )
    none = FloorMap.vibration_columns(demo_site, None, None, "zh-CN", THEME)
    assert none["text"][0] == "VP01\n---" and none["fill_alpha"][0] == 0.0


# -- permits on the map -----------------------------------------------------------------------------------------
def test_permit_areas_are_outlined_inside_their_zone_in_board_colour_with_id_type_and_state(demo_site):
    board = board_of(
        *default_permits(),
        permit_record("HW-7", state="closed", board="grey"),  # over: not drawn
        permit_record("EX-1", zone="Z-NOWHERE", polygon=None),  # unknown area: not drawn
        permit_record("HW-2", zone="Z-SUB", state="active", board="amber"),
    )
    cols = FloorMap.permit_area_columns(demo_site, board, "en", THEME)
    assert cols["permit"] == ["HW-1", "CS-1", "HW-9", "HW-2"]
    # Z-HW1 is x 132..148, y 150..170: HW-1 one metre inside it, HW-9 (same zone) two metres
    assert cols["xs"][0] == [133.0, 147.0, 147.0, 133.0, 133.0]
    assert cols["ys"][0] == [151.0, 151.0, 169.0, 169.0, 151.0]
    assert cols["xs"][2] == [134.0, 146.0, 146.0, 134.0, 134.0]
    assert cols["label"][0] == "HW-1 \u00b7 Hot work\nACTIVE"
    assert cols["label"][1] == "CS-1 \u00b7 Confined space entry\nSUSPENDED"
    assert cols["label"][2] == "HW-9 \u00b7 Hot work\nAPPROVED"
    assert cols["label"][3] == "HW-2 \u00b7 Hot work\nACTIVE \u00b7 ENDING SOON"
    assert cols["line_color"] == [BOARD_COLORS[b] for b in ("red", "amber", "green", "amber")]
    # labels under the bottom-left corner; the second permit on Z-HW1 below the first one's two lines of 26 px
    # (with 4 px padding), where the map has room
    assert (cols["label_x"][0], cols["label_y"][0]) == (133.0, 151.0)
    assert (cols["label_align"][0], cols["label_baseline"][0]) == ("left", "top")
    assert cols["label_dy"][0] == 10 and (cols["label_x"][2], cols["label_y"][2]) == (134.0, 150.0 + 2.0)
    assert cols["label_dy"][2] >= 10 + 2 * 1.1 * 26 + 8
    assert cols["xs"][1] == [227.0, 235.0, 235.0, 227.0, 227.0]  # CS-1's own 226..236 square, inset
    zh = FloorMap.permit_area_columns(demo_site, board, "zh-CN", THEME)
    assert zh["label"][0] == "HW-1 \u00b7 动火作业\n作业中"
    assert FloorMap.permit_area_columns(demo_site, None, "en", THEME)["permit"] == []


def test_only_alarm_readings_get_a_box_to_stay_readable_on_the_gas_cloud(demo_site):
    g = len(demo_site.gas_detectors)
    level = np.zeros(g, dtype=np.uint8)
    level[1], level[3] = 2, 1
    arrays = {"gas_value": np.full(g, 5.0), "gas_quality": np.zeros(g, np.uint8), "gas_level": level}
    cols = FloorMap.gas_columns(demo_site, arrays, "en", THEME)
    assert [i for i, a in enumerate(cols["label_bg_alpha"]) if a > 0] == [1, 3]


def test_legend_names_the_gas_cloud_machines_and_permit_areas(demo_site):
    html = FloorMap.legend_html(demo_site, "en", THEME)
    assert "gas cloud" in html and "20\u201350 %" in html and "vibration zone A\u2013D" in html
    assert "permit area" in html
    assert "气体分布" in FloorMap.legend_html(demo_site, "zh-CN", THEME)


# -- permit board -----------------------------------------------------------------------------------------------
def test_permit_board_rows_keep_the_engine_order_with_names_time_left_and_state_in_words(demo_site):
    overdue = permit_record("HW-5", valid_to_s=EPOCH_S - 300, workers=["T0101", "T9999"], watcher=None)
    board = board_of(*default_permits(), overdue, permit_record("HW-7", state="closed", board="grey"))
    cols = PermitBoardTile.columns(demo_site, board, EPOCH_S, "en", SHANGHAI)
    assert cols["id"] == ["HW-1", "CS-1", "HW-9", "HW-5"]  # as sent; the closed one is left off
    assert cols["state_label"][:3] == ["ACTIVE", "SUSPENDED", "APPROVED"]
    assert cols["title"][0] == "Hot work, grade 2" and cols["title"][1] == "Confined space entry"
    assert cols["zone"][:2] == ["Hot work at pipe bridge PB-1", "own area"]
    # valid until EPOCH_S + 4 h: 4 h left; the approved one shows its window, 22:00-02:00 in Shanghai
    assert cols["time"][:3] == ["4 h left", "4 h left", "22:00\u201302:00"]
    assert cols["time"][3] == "5 min past its end"
    assert cols["workers"][0] == "Li Jie (T0101), Zhang Hui (T0102)"
    assert cols["watcher"][0] == "Huang Ming (T0187)"
    assert cols["workers"][3] == "Li Jie (T0101), T9999" and cols["watcher"][3] == "none"
    assert cols["reason"][1] == "watcher away from the permit area" and cols["reason"][0] == ""
    assert cols["color"][:3] == [BOARD_COLORS["red"], BOARD_COLORS["amber"], BOARD_COLORS["green"]]
    assert PermitBoardTile.columns(demo_site, board, EPOCH_S, "en", SHANGHAI, max_rows=2)["id"] == [
        "HW-1",
        "CS-1",
    ]
    assert (
        PermitBoardTile.columns(demo_site, board, EPOCH_S, "en", SHANGHAI, show_over=True)["id"][-1] == "HW-7"
    )
    zh = PermitBoardTile.columns(demo_site, board, EPOCH_S, "zh-CN", SHANGHAI)
    assert (
        zh["title"][0] == "动火作业，2 级"
        and zh["time"][0] == "剩余 4小时"
        and zh["state_label"][1] == "已暂停"
    )
    # without engine time the window is shown: valid from EPOCH_S - 1 h (15:00) to + 4 h (20:00)
    assert PermitBoardTile.columns(demo_site, board, None, "en", SHANGHAI)["time"][0] == "15:00\u201320:00"


def test_permit_board_header_counts_colours_in_words_and_cards_escape_text(demo_site):
    board = board_of(
        *default_permits(),
        permit_record("HW-8", state="suspended", board="amber", reason="<b>wind</b> & rain"),
    )
    counts = PermitBoardTile.counts(board)
    assert counts == {"red": 1, "amber": 2, "green": 1, "grey": 0}
    head = PermitBoardTile.header_html(counts, 4, 4, True, "en")
    assert "1 in progress" in head and "2 suspended or ending" in head and "1 planned" in head
    assert "+2 more" in PermitBoardTile.header_html(counts, 4, 2, True, "en")
    cols = PermitBoardTile.columns(demo_site, board, EPOCH_S, "en", SHANGHAI)
    body = PermitBoardTile.rows_html(cols, True, "en")
    assert "&lt;b&gt;wind&lt;/b&gt; &amp; rain" in body and "<b>wind" not in body
    assert body.count('data-board="amber"') == 2 and "Watcher" in body
    empty = PermitBoardTile.columns(demo_site, None, EPOCH_S, "en", SHANGHAI)
    assert "not yet received" in PermitBoardTile.rows_html(empty, False, "en")
    assert "No live permits" in PermitBoardTile.rows_html(empty, True, "en")


# -- muster -----------------------------------------------------------------------------------------------------
MUSTER_META = {
    "active": True,
    "number": 1,
    "engine_ts_s": EPOCH_S + 75,
    "declared_ts_s": EPOCH_S,
    "declared_by": "sup1",
    "area": "all",
    "elapsed_s": 75.0,
    "counts": {"roster": 198, "mustered": 194, "missing": 4},
    "muster_points": [
        {
            "zone": "Z-MP1",
            "name": {"en": "Muster point 1 (control room)", "zh-CN": "集合点 1（中控室）"},
            "count": 150,
            "people": [],
        },
        {
            "zone": "Z-MP2",
            "name": {"en": "Muster point 2 (east gate)", "zh-CN": "集合点 2（东门）"},
            "count": 44,
            "people": [],
        },
    ],
    "missing": [
        {
            "person": "P0002",
            "tag": "T0002",
            "name": "Zhang Hui",
            "position_m": [145.2, 70.1, 1.2],
            "fix_age_s": 3.0,
            "zones": ["Z-SUB"],
        },
        {
            "person": "P0003",
            "tag": "T0003",
            "name": "Liu Fang",
            "position_m": [225.8, 119.3, 1.2],
            "fix_age_s": 30.0,
            "zones": [],
        },
        {
            "person": "P0005",
            "tag": "T0005",
            "name": "Yang Bo",
            "position_m": [10.0, 20.0, 1.2],
            "fix_age_s": 0.4,
            "zones": [],
        },
        {
            "person": "P0001",
            "tag": "T0001",
            "name": "Li Jie",
            "position_m": None,
            "fix_age_s": None,
            "zones": [],
        },
        {"bad": "entry"},
    ],
}


def test_muster_status_reads_the_engines_meta_leniently():
    st = MusterStatus.from_meta(MUSTER_META, version=3)
    assert st.active and st.version == 3 and st.roster == 198 and st.missing_count == 4
    assert [m.person for m in st.missing] == ["P0002", "P0003", "P0005", "P0001"]  # the bad entry is left out
    assert st.missing[3].position_m is None and math.isnan(st.missing[3].fix_age_s)
    assert st.points[1].name_text("zh-CN") == "集合点 2（东门）" and st.points[0].count == 150
    assert st.elapsed_at(EPOCH_S + 80) == 80.0 and st.elapsed_at(None) == 75.0
    off = MusterStatus.from_meta({"active": False, "engine_ts_s": EPOCH_S})
    assert not off.active and off.missing == ()
    with pytest.raises(ValueError, match="active"):
        MusterStatus.from_meta({"engine_ts_s": EPOCH_S})


def test_missing_people_unknown_whereabouts_first_with_position_and_fix_age(demo_site):
    st = MusterStatus.from_meta(MUSTER_META)
    # two seconds after the status: ages 3 + 2, 30 + 2, 0.4 + 2; fix_stale_s = 10 s on the demo plant
    cols = MusterTile.missing_columns(demo_site, st, EPOCH_S + 77, "en", demo_site.engine.fix_stale_s)
    assert cols["person"] == ["P0001", "P0003", "P0002", "P0005"]  # never located, stale; then the others
    assert cols["stale"] == [True, True, False, False]
    assert cols["age_s"][1:] == pytest.approx([32.0, 5.0, 2.4])
    assert cols["age_text"] == ["", "fix 32 s old", "fix 5 s old", "fix 2 s old"]
    now = MusterTile.missing_columns(demo_site, st, EPOCH_S + 75, "en", 10.0)
    assert now["age_text"][3] == "fix just now"  # 0.4 s at the status's own time
    assert cols["where"][0] == "never located"
    # in words, not coordinates: the zone (restricted zone Substation, the building of the same name said once)
    assert cols["where"][2] == "Substation"
    # on the road 1 m south of Unit 200 (170..270 x 120..180): the nearest named structure and how far
    assert cols["where"][1] == "near Unit 200 distillation, 1 m"
    zh = MusterTile.missing_columns(demo_site, st, EPOCH_S + 77, "zh-CN", 10.0)
    assert zh["where"][1] == "精馏单元附近 1 米" and zh["where"][0] == "从未定位"
    assert MusterTile.missing_columns(demo_site, st, EPOCH_S + 77, "en", 10.0, max_rows=2)["person"] == [
        "P0001",
        "P0003",
    ]
    assert MusterTile.missing_columns(demo_site, None, EPOCH_S, "en", 10.0)["person"] == []


def test_muster_summary_and_html_say_elapsed_time_headcount_and_who_declared(demo_site):
    assert (format_elapsed(75), format_elapsed(3725), format_elapsed(float("nan"))) == (
        "01:15",
        "1:02:05",
        "--:--",
    )
    st = MusterStatus.from_meta(MUSTER_META)
    summary = MusterTile.summary(demo_site, st, EPOCH_S + 77, "en", SHANGHAI)
    assert summary["elapsed"] == "01:17"
    assert summary["declared"] == "declared 16:00:00 by sup1" and summary["area"] == "whole site"
    assert summary["points"] == [("Muster point 1 (control room)", 150), ("Muster point 2 (east gate)", 44)]
    cols = MusterTile.missing_columns(demo_site, st, EPOCH_S + 77, "en", 10.0, max_rows=3)
    html = MusterTile.html(summary, cols, "en")
    assert "EMERGENCY MUSTER" in html and "<b>4</b> MISSING" in html and "+1 more not shown" in html
    assert html.count("wf-stale") == 2
    zoned = MusterStatus.from_meta({**MUSTER_META, "area": ["Z-U200", "Z-SUB"]})
    zh = MusterTile.summary(demo_site, zoned, EPOCH_S + 77, "zh-CN", SHANGHAI)
    assert zh["area"] == "区域：精馏单元, 变电所" and zh["declared"] == "16:00:00 由 sup1 宣布"
    assert MusterTile.summary(demo_site, None, EPOCH_S, "en", SHANGHAI) is None
    assert "No emergency declared" in MusterTile.html(None, cols, "en")


# -- the layout stack -------------------------------------------------------------------------------------------
STACKED = {
    "name": "t",
    "screens": [
        {
            "id": "s",
            "columns": 2,
            "rows": 2,
            "tiles": [
                {"kind": "floor_map", "row": 0, "col": 0, "rows": 2, "cols": 1},
                {"kind": "muster", "row": 0, "col": 1, "rows": 2, "cols": 1, "stack": True},
                {"kind": "permit_board", "row": 0, "col": 1, "rows": 2, "cols": 1, "stack": True},
            ],
        }
    ],
}


def test_tiles_share_cells_only_as_a_declared_stack_on_exactly_the_same_cells():
    parse_layout(STACKED, registry=WALL_TILES)
    unstacked = {
        **STACKED,
        "screens": [
            {
                **STACKED["screens"][0],
                "tiles": [{**tile, "stack": False} for tile in STACKED["screens"][0]["tiles"]],
            }
        ],
    }
    with pytest.raises(LayoutError, match="permit_board overlaps"):
        parse_layout(unstacked, registry=WALL_TILES)
    shifted = {
        **STACKED,
        "screens": [
            {
                **STACKED["screens"][0],
                "tiles": [
                    *STACKED["screens"][0]["tiles"][:2],
                    {**STACKED["screens"][0]["tiles"][2], "row": 1, "rows": 1},
                ],
            }
        ],
    }
    with pytest.raises(LayoutError, match="overlaps"):
        parse_layout(shifted, registry=WALL_TILES)


def test_the_muster_tile_takes_the_permit_boards_place_only_during_an_emergency(demo_site):
    page = build_page(parse_layout(STACKED, registry=WALL_TILES), WALL_TILES, TileContext(demo_site, "en"))
    assert page.stacks == [[1, 2]]
    muster, board = page.tiles[1], page.tiles[2]
    assert not muster.root.visible and board.root.visible
    update_page(page, snap_with(muster=MusterStatus.from_meta(MUSTER_META), engine_ts_s=EPOCH_S + 80))
    assert muster.root.visible and not board.root.visible and "01:20" in muster.root.text
    update_page(page, snap_with(muster=MusterStatus(active=False, engine_ts_s=EPOCH_S + 90)))
    assert not muster.root.visible and board.root.visible


def test_default_wall_puts_the_permit_board_under_the_alarm_list_with_the_muster_stacked_on_it(demo_site):
    page = build_wall(demo_site)
    kinds = [type(tile).__name__ for tile in page.tiles]
    assert kinds == ["StatusBar", "FloorMap", "AlarmList", "MusterTile", "PermitBoardTile", "KpiTile"]
    placements = {p.kind: p for p in page.screen.tiles}
    alarms, board = placements["alarm_list"], placements["permit_board"]
    assert board.col == alarms.col and board.row == alarms.row + alarms.rows and board.cols == alarms.cols
    assert placements["muster"].cells == board.cells and page.stacks == [[3, 4]]
    tile = page.tiles[4]
    tile.update(snap_with(permits=board_of(*default_permits()), engine_ts_s=EPOCH_S))
    assert "HW-1" in tile.body.text and "1 in progress" in tile.header.text
    assert t("permits.title", "zh-CN") == "作业许可"


# -- the link's parsing -----------------------------------------------------------------------------------------
def test_permit_records_are_read_leniently_but_need_an_id():
    p = PermitInfo.from_json({**permit_record("HW-1"), "board": "purple", "grade": 2, "workers": ["T1", 5]})
    assert p.board == "red" and p.grade == "2" and p.workers == ("T1",)  # an unknown colour reads as at work
    assert p.type_text("zh-CN") == "动火作业" and p.type_text("fr") == "Hot work"
    with pytest.raises(ValueError, match="id"):
        PermitInfo.from_json({"type": "hot_work"})
    own = PermitInfo.from_json(permit_record("CS-1", zone=None, polygon=[[1, 2], [3, "x"], [5, 6], [7, 8]]))
    assert own.polygon == ((1.0, 2.0), (5.0, 6.0), (7.0, 8.0))


def test_places_are_named_in_words_the_most_specific_first_never_twice(demo_site):
    from console.web.places import Places

    en, zh = Places(demo_site, "en"), Places(demo_site, "zh-CN")
    assert en.describe(37.0, 30.0) == "Control room" and zh.describe(37.0, 30.0) == "中控室"  # inside building B-CR
    # inside tank T-3's confined space, in the tank farm: the confined space first; the tank's own outline adds
    # nothing an area zone has not said
    assert en.describe(260.0, 40.0, ["Z-TF", "Z-T3"]) == "Tank T-3 interior \u00b7 Tank farm"
    assert en.describe(75.0, 165.0, ["Z-U100"]) == "Unit 100"  # not "Unit 100 · Unit 100 reactors"
    # on the road 1 m south of Unit 200 (y 120..180)
    assert en.describe(226.0, 119.0) == "near Unit 200 distillation, 1 m"


def test_the_workstations_missing_list_counts_everyone_missing_even_beyond_the_rows_it_lists(demo_site):
    from console.web.workstation.muster_panel import missing_list_html

    st = MusterStatus.from_meta(MUSTER_META)
    cols = MusterTile.missing_columns(demo_site, st, EPOCH_S + 77, "en", 10.0, max_rows=2)
    text = missing_list_html(cols, "en", st.missing_count)
    assert "Not yet at a muster point (4)" in text and "+2 more not shown" in text
    assert text.count("data-person=") == 2  # two people listed by name
    assert missing_list_html(MusterTile.missing_columns(demo_site, None, EPOCH_S, "en", 10.0), "en") == ""
