"""Wall tiles with no server: the pure column functions (values checked by hand) and update() behaviour."""

from __future__ import annotations

import math
import re
import string
from datetime import UTC
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from console.link import AlarmTable, Frame, LinkCounters, LinkSnapshot
from console.web.i18n import TEXTS, normalize_language, t
from console.web.theme import PRIORITY_STYLE, Theme
from console.web.tiles import AlarmList, FloorMap, StatusBar, TileContext, format_clock, format_value
from ingest.protocol.names import REJECT_GATED
from ingest.protocol.records import AlarmCounts, AlarmRecord, alarm_counts
from tests.records import EPOCH_S, alarm_record

THEME = Theme()
SHANGHAI = ZoneInfo("Asia/Shanghai")


def frame(topic: str, arrays: dict | None = None, meta: dict | None = None, number: int = 1) -> Frame:
    arrays = {k: np.asarray(v) for k, v in (arrays or {}).items()}
    for a in arrays.values():
        a.flags.writeable = False
    return Frame(
        topic=topic,
        arrays=MappingProxyType(arrays),
        meta=MappingProxyType(meta or {}),
        event_ts_s=EPOCH_S,
        received_s=0.0,
        number=number,
    )


def snapshot(
    positions=None, sensors=None, status=None, alarms=(), version=1, synced=True, state="ok", age_s=0.1
) -> LinkSnapshot:
    recs = {r.id: r for r in (AlarmRecord.from_json(a) for a in alarms)}
    table = AlarmTable(seq=len(recs), version=version, synced=synced, alarms=MappingProxyType(recs))
    return LinkSnapshot(
        positions=positions,
        sensors=sensors,
        status=status,
        alarms=table,
        counters=LinkCounters(),
        state=state,
        last_frame_age_s=age_s,
    )


def positions_arrays(
    n: int, *, rank: dict[int, int] | None = None, age: dict[int, float] | None = None, seed: int = 1
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    xyz = np.column_stack([rng.uniform(0, 300, n), rng.uniform(0, 200, n), np.full(n, 1.2)])
    ages = np.full(n, 0.2)
    alarm = np.zeros(n, dtype=np.uint8)
    for i, r in (rank or {}).items():
        alarm[i] = r
    for i, a in (age or {}).items():
        ages[i] = a
        if math.isnan(a):
            xyz[i] = np.nan
    return {"xyz_m": xyz, "age_s": ages, "gdop": np.full(n, 1.5), "alarm": alarm}


# -- formatting -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("v", "text"), [(4.254, "4.25"), (20.94, "20.9"), (512.4, "512"), (-0.5, "-0.50"), (float("nan"), "---")]
)
def test_format_value_keeps_three_significant_figures(v, text):
    assert format_value(v) == text


def test_format_clock_shows_engine_time_in_site_zone():
    # 2025-11-22 08:00:00 UTC is 16:00:00 in Shanghai (UTC+8, no daylight saving)
    assert format_clock(EPOCH_S, SHANGHAI) == "16:00:00"
    assert format_clock(EPOCH_S + 3661, UTC, date=True) == "2025-11-22 09:01:01"
    assert format_clock(None, SHANGHAI) == "--:--:--"
    assert format_clock(float("nan"), SHANGHAI, date=True).endswith("--:--:--")


# -- translations and theme -----------------------------------------------------------------------------------
def test_both_languages_have_the_same_keys_and_placeholders():
    en, zh = TEXTS["en"], TEXTS["zh-CN"]
    assert set(en) == set(zh)
    fields = string.Formatter()
    for key in en:
        assert {f for _, f, _, _ in fields.parse(en[key]) if f} == {
            f for _, f, _, _ in fields.parse(zh[key]) if f
        }, key


def test_translation_fills_placeholders_and_falls_back_to_english():
    assert t("alarms.count", "en", n=3) == "3 in alarm"
    assert t("alarms.count", "zh_CN", n=3) == "3 条报警中"
    assert t("priority.high", "de") == "HIGH"
    assert normalize_language("zh-cn") == "zh-CN" and normalize_language(None) == "en"
    with pytest.raises(KeyError):
        t("no.such.key")


def test_each_priority_has_its_own_colour_and_shape():
    styles = [PRIORITY_STYLE[r] for r in (1, 2, 3, 4)]
    assert len({s.color for s in styles}) == 4
    assert len({s.marker for s in styles}) == 4
    assert "circle" not in {
        s.marker for s in styles
    }  # a normal person is a circle: alarms never look like it
    assert Theme(scale=0.5).px(36) == 18 and Theme().font(30) == "30px"


# -- floor map ------------------------------------------------------------------------------------------------
def test_people_columns_draw_alarms_last_with_shape_size_colour_and_label(demo_site):
    n = len(demo_site.people)
    arrays = positions_arrays(n, rank={5: 4, 10: 2}, age={3: 25.0, 0: float("nan")})
    cols = FloorMap.people_columns(demo_site, arrays, 10.0, THEME)
    assert len(cols["x"]) == n
    # stable order by rank: everyone without alarm in site order, then rank 2 (P0011), then rank 4 (P0006)
    assert cols["person"][:3] == ["P0001", "P0002", "P0003"]
    assert cols["person"][-2:] == ["P0011", "P0006"]
    last = n - 1
    assert cols["x"][last] == arrays["xyz_m"][5, 0] and cols["y"][last] == arrays["xyz_m"][5, 1]
    assert cols["marker"][last] == "square" and cols["fill_color"][last] == PRIORITY_STYLE[4].color
    assert cols["marker"][last - 1] == "diamond" and cols["label"][last - 1] == "P0011"
    assert cols["size"][last] > cols["size"][0]
    normal = cols["person"].index("P0002")
    assert (
        cols["marker"][normal] == "circle"
        and cols["label"][normal] == ""
        and cols["fill_alpha"][normal] == 1.0
    )


def test_people_columns_draw_stale_and_never_fixed_people_hollow(demo_site):
    n = len(demo_site.people)
    arrays = positions_arrays(n, age={3: 25.0, 0: float("nan"), 4: 10.0})
    cols = FloorMap.people_columns(demo_site, arrays, 10.0, THEME)
    by = {p: i for i, p in enumerate(cols["person"])}
    assert cols["fill_alpha"][by["P0004"]] == 0.0 and cols["stale"][by["P0004"]]  # 25 s > 10 s
    assert cols["fill_alpha"][by["P0005"]] == 1.0  # exactly 10 s is not yet stale
    assert math.isnan(cols["x"][by["P0001"]]) and cols["stale"][by["P0001"]]


def test_people_columns_before_any_frame_place_nobody(demo_site):
    cols = FloorMap.people_columns(demo_site, None, 10.0, THEME)
    assert np.isnan(cols["x"]).all() and cols["stale"].all()


def test_gas_columns_show_value_level_and_quality_never_a_bad_number(demo_site):
    g = len(demo_site.gas_detectors)
    value = np.full(g, 5.0)
    quality = np.zeros(g, dtype=np.uint8)
    level = np.zeros(g, dtype=np.uint8)
    value[0] = 12.34  # GD01 CH4 %LEL: normal
    value[1], level[1] = 45.0, 2  # GD02: high alarm
    value[2], quality[2] = 99.0, 2  # GD03: bad quality -> no number even if one is sent
    value[3], quality[3], level[3] = 12.0, 1, 1  # GD04 H2S ppm: uncertain, low alarm
    quality[4] = 3  # GD05: no data
    cols = FloorMap.gas_columns(
        demo_site, {"gas_value": value, "gas_quality": quality, "gas_level": level}, "en", THEME
    )
    assert cols["text"][0] == "GD01 CH4\n12.3 %LEL" and cols["marker"][0] == "hex"
    assert cols["text"][1] == "GD02 CH4\n45.0 %LEL A2" and cols["marker"][1] == "square"
    assert cols["fill_color"][1] == PRIORITY_STYLE[4].color
    assert cols["text"][2] == "GD03 CH4\nBAD" and cols["marker"][2] == "x" and "99" not in cols["text"][2]
    assert cols["text"][3] == "GD04 H2S\n12.0 ppm? A1" and cols["marker"][3] == "triangle"
    assert cols["fill_alpha"][3] == 0.5
    assert cols["text"][4] == "GD05 CO\n---" and cols["fill_alpha"][4] == 0.0
    zh = FloorMap.gas_columns(
        demo_site, {"gas_value": value, "gas_quality": quality, "gas_level": level}, "zh-CN", THEME
    )
    assert zh["text"][1].endswith("二级") and zh["text"][2] == "GD03 CH4\n故障"


def test_zone_columns_take_the_colour_and_symbol_of_the_worst_active_alarm(demo_site):
    alarms = {
        r.id: r
        for r in map(
            AlarmRecord.from_json,
            [
                alarm_record(1, zone="Z-SUB", priority="high"),
                alarm_record(2, zone="Z-SUB", priority="critical", state="active_ack"),
                alarm_record(
                    3, zone="Z-HW1", priority="critical", state="rtn_unack"
                ),  # cleared: not drawn as alarm
            ],
        )
    }
    cols = FloorMap.zone_columns(demo_site, alarms, "en", THEME)
    i, j = cols["zone"].index("Z-SUB"), cols["zone"].index("Z-HW1")
    assert cols["rank"][i] == 4 and cols["line_color"][i] == PRIORITY_STYLE[4].color
    assert cols["label"][i] == "\u25a0 Substation" and cols["line_width"][i] > cols["line_width"][j]
    assert cols["rank"][j] == 0 and cols["label"][j] == "Hot work at pipe bridge PB-1"
    assert cols["line_dash"][j] == "dashed"  # hazardous; restricted is solid
    assert all(xs[0] == xs[-1] and ys[0] == ys[-1] for xs, ys in zip(cols["xs"], cols["ys"]))
    zh = FloorMap.zone_columns(demo_site, None, "zh-CN", THEME)
    assert zh["label"][i] == "变电所"


def test_structure_and_anchor_columns(demo_site):
    st = FloorMap.structure_columns(demo_site, THEME)
    k = st["label"].index("Control room")  # one language at a time: the structure's name in English
    assert (st["label_x"][k], st["label_y"][k]) == (37.5, 30.0)  # centre of (15..60, 15..45)
    assert (st["label_align"][k], st["label_baseline"][k]) == ("center", "middle")
    assert FloorMap.structure_columns(demo_site, THEME, "zh-CN")["label"][k] == "中控室"
    u = st["label"].index("Unit 100 reactors")  # holds: its name goes to its foot
    assert st["label_baseline"][u] == "bottom" and st["label_y"][u] == pytest.approx(120 + 0.02 * 60)
    an = FloorMap.anchor_columns(demo_site)
    assert len(an["x"]) == len(demo_site.anchors) == 10


def test_floor_map_update_skips_unchanged_frames_and_shows_link_lost(demo_site):
    fmap = FloorMap(TileContext(demo_site, "en"))
    n = len(demo_site.people)
    pos = frame("display.positions", positions_arrays(n), number=1)
    fmap.update(snapshot(positions=pos))
    assert fmap.source.data["x"][5] == pos.arrays["xyz_m"][5, 0]
    fmap.source.data["x"][5] = -1.0  # a marker the same frame must not overwrite
    fmap.update(snapshot(positions=pos))
    assert fmap.source.data["x"][5] == -1.0
    moved = frame("display.positions", positions_arrays(n, seed=2), number=2)
    fmap.update(snapshot(positions=moved))
    assert fmap.source.data["x"][5] == moved.arrays["xyz_m"][5, 0]
    assert not fmap.lost_label.visible
    fmap.update(snapshot(positions=moved, state="lost", age_s=4.0))
    assert fmap.lost_label.visible


# -- alarm list -----------------------------------------------------------------------------------------------
ALARMS = [
    alarm_record(1, priority="high", ts_s=EPOCH_S + 100),
    alarm_record(2, priority="critical", ts_s=EPOCH_S + 50, state="active_ack"),
    alarm_record(3, priority="high", ts_s=EPOCH_S + 200, en="<b>tag</b> & co"),
    alarm_record(4, priority="low", ts_s=EPOCH_S + 300, state="rtn_unack"),
]


def test_alarm_columns_sort_by_priority_then_newest_first():
    recs = [AlarmRecord.from_json(a) for a in ALARMS]
    cols = AlarmList.columns(recs, "en", SHANGHAI)
    assert cols["id"] == [ALARMS[i]["id"] for i in (1, 2, 0, 3)]
    assert cols["priority_label"] == ["CRITICAL", "HIGH", "HIGH", "LOW"]
    assert cols["time"] == ["16:00:50", "16:03:20", "16:01:40", "16:05:00"]
    assert cols["state_label"] == ["ACK", "UNACK", "UNACK", "CLEARED, UNACK"]
    assert cols["unacknowledged"] == [False, True, True, True]
    assert cols["symbol"][0] == PRIORITY_STYLE[4].symbol
    assert AlarmList.columns(recs, "en", SHANGHAI, max_rows=2)["id"] == cols["id"][:2]
    zh = AlarmList.columns(recs, "zh-CN", SHANGHAI)
    assert zh["priority_label"][0] == "紧急" and zh["message"][0].startswith("人员进入限制区域")


def test_alarm_cards_escape_messages_and_blink_only_when_unacknowledged():
    recs = [AlarmRecord.from_json(a) for a in ALARMS]
    cols = AlarmList.columns(recs, "en", SHANGHAI)
    body = AlarmList.rows_html(cols, True, "en")
    assert "&lt;b&gt;tag&lt;/b&gt; &amp; co" in body and "<b>tag" not in body
    cards = re.findall(r'<div class="wf-alarm (wf-\w+)".*?</div></div>', body)
    assert cards == ["wf-ack", "wf-unack", "wf-unack", "wf-rtn"]
    assert body.count("wf-blink") == 3
    assert "wf-unsynced" not in body and "wf-unsynced" in AlarmList.rows_html(cols, False, "en")
    assert "No active alarms" in AlarmList.rows_html(AlarmList.columns([], "en", SHANGHAI), True, "en")
    assert "not yet received" in AlarmList.rows_html(AlarmList.columns([], "en", SHANGHAI), False, "en")


def test_alarm_header_counts_all_and_says_how_many_are_not_shown():
    recs = [AlarmRecord.from_json(a) for a in ALARMS]
    counts = alarm_counts(recs)
    assert counts == AlarmCounts(in_alarm=3, unacknowledged=3, on_list=4, off_list=0)  # rtn_unack: not in alarm
    head = AlarmList.header_html(counts, 2, True, "en")
    assert "3 in alarm" in head and "3 unacknowledged" in head and "+2 more" in head
    assert "re-synchronising" in AlarmList.header_html(counts, 4, False, "en")


def test_alarm_list_update_redraws_only_when_the_table_version_moves(demo_site):
    tile = AlarmList(TileContext(demo_site, "en"))
    tile.update(snapshot(alarms=ALARMS, version=7))
    assert tile.source.data["id"][0] == ALARMS[1]["id"]
    assert "3 in alarm" in tile.header.text
    tile.body.text = "sentinel"
    tile.update(snapshot(alarms=ALARMS, version=7))
    assert tile.body.text == "sentinel"
    tile.update(snapshot(alarms=ALARMS[:1], version=8))
    assert "1 in alarm" in tile.header.text and tile.body.text != "sentinel"


# -- status bar -----------------------------------------------------------------------------------------------
def test_inputs_rate_is_count_difference_over_engine_time():
    assert StatusBar.rate_per_s((100.0, 1000), (102.0, 1130)) == 65.0
    assert math.isnan(StatusBar.rate_per_s((100.0, 1000), (100.0, 1000)))  # same frame
    assert math.isnan(StatusBar.rate_per_s((100.0, 1000), (101.0, 10)))  # counters reset: engine restarted
    assert math.isnan(StatusBar.rate_per_s(None, (101.0, 10)))
    assert StatusBar.inputs_total({"engine_ts_s": 5.0, "inputs": {"uwb": 7, "gas": 3}}) == (5.0, 10)
    assert StatusBar.inputs_total({"engine_ts_s": None, "inputs": {}}) is None


def test_status_columns_count_fresh_fixes_rejects_and_show_engine_clock(demo_site):
    n = len(demo_site.people)
    pos = frame(
        "display.positions",
        positions_arrays(n, age={0: float("nan"), 1: 30.0, 2: 10.0}),
        {"engine_ts_s": EPOCH_S + 2.0},
    )
    status = frame(
        "engine.status",
        meta={
            "engine_ts_s": EPOCH_S + 1.0,
            "inputs": {"uwb": 10},
            "rejected": {"uwb: unknown anchor": 3, "gas: late": 4, REJECT_GATED: 80},
        },
    )
    table = AlarmTable(seq=3, version=3, synced=True, alarms={
        r["id"]: AlarmRecord.from_json(r) for r in (
            alarm_record(1, state="active_unack"), alarm_record(2, state="active_ack"),
            alarm_record(3, state="rtn_unack"), alarm_record(4, state="shelved"))})
    cols = StatusBar.columns(demo_site, status, pos, 64.6, "ok", 0.1, "en", SHANGHAI, alarms=table)
    assert cols["located"] == [n - 2]  # never fixed and 30 s old are not located; 10 s still is
    assert cols["rejected"] == [7] and cols["gated"] == [80]  # gated fixes are a quality figure, not bad input
    assert cols["rejected_title"] == ["4  gas: late\n3  uwb: unknown anchor"]  # the top reasons, on hover
    assert cols["clock"] == ["2025-11-22 16:00:02"]  # the newer of the two frames
    assert cols["inputs_text"] == ["65"] and (cols["in_alarm"], cols["unacknowledged"]) == ([2], [2])
    html = StatusBar.html(cols)
    assert "Demo chemical plant" in html and "wf-lost" not in html and "Engine link OK" in html
    assert "(80 gated)" in html and 'title="4  gas: late' in html
    # one definition: the alarm tile's header says the same two numbers
    head = AlarmList.header_html(alarm_counts(table.alarms), 3, True, "en")
    assert "2 in alarm" in head and "2 unacknowledged" in head and "1 shelved or out of service" in head
    unsynced = StatusBar.columns(demo_site, status, pos, 1.0, "ok", 0.1, "en", SHANGHAI,
                                 alarms=AlarmTable(synced=False))
    assert unsynced["in_alarm"] == [-1] and "In alarm</span><span class=\"wf-value\">---" in StatusBar.html(unsynced)


def test_the_workstation_bar_shows_each_sources_clock_skew_and_marks_one_beyond_its_limit(demo_site):
    status = frame("engine.status", meta={"engine_ts_s": EPOCH_S, "clock_skew_s": {"uwb": 0.021, "gas": -3600.0}})
    wall = StatusBar.columns(demo_site, status, None, 1.0, "ok", 0.1, "en", SHANGHAI)
    assert "Clock skew" not in StatusBar.html(wall)  # the wall stays calm: the figure is for the workstation
    cols = StatusBar.columns(demo_site, status, None, 1.0, "ok", 0.1, "en", SHANGHAI, skew=True)
    assert cols["skew_text"] == ["gas -3600.00 s!"]  # the bar names only the source beyond its 1 s limit
    assert cols["skew_title"] == ["gas -3600.00 s!  uwb +0.02 s"]  # the tooltip has every source
    assert "Clock skew" in StatusBar.html(cols) and 'title="gas -3600.00 s!  uwb +0.02 s"' in StatusBar.html(cols)
    calm = frame("engine.status", meta={"clock_skew_s": {"uwb": 0.021, "gas": -0.09, "camera": 0.0}})
    assert StatusBar.columns(demo_site, calm, None, 1.0, "ok", 0.1, "en", SHANGHAI, skew=True)["skew_text"] == [
        "gas -0.09 s"]  # all within their limits: the one furthest off
    none = StatusBar.columns(demo_site, None, None, 1.0, "waiting", None, "zh-CN", SHANGHAI, skew=True)
    assert none["skew_text"] == ["---"] and "时钟偏差" in StatusBar.html(none)


def test_status_bar_turns_into_a_banner_when_the_link_is_lost(demo_site):
    cols = StatusBar.columns(demo_site, None, None, float("nan"), "lost", 7.6, "en", SHANGHAI)
    html = StatusBar.html(cols)
    assert 'class="wf-status wf-lost"' in html
    assert "ENGINE LINK LOST" in html and "7 s" in html and "\u26a0" in html
    zh = StatusBar.html(
        StatusBar.columns(demo_site, None, None, float("nan"), "lost", 7.6, "zh-CN", SHANGHAI)
    )
    assert "引擎连接中断" in zh and "演示化工厂" in zh
    waiting = StatusBar.html(
        StatusBar.columns(demo_site, None, None, float("nan"), "waiting", None, "en", SHANGHAI)
    )
    assert "Connecting to engine" in waiting and "---" in waiting


def test_status_bar_update_computes_rate_from_consecutive_status_frames(demo_site):
    bar = StatusBar(TileContext(demo_site, "en"))
    s1 = frame("engine.status", meta={"engine_ts_s": EPOCH_S, "inputs": {"uwb": 100}}, number=1)
    s2 = frame("engine.status", meta={"engine_ts_s": EPOCH_S + 2, "inputs": {"uwb": 250}}, number=2)
    bar.update(snapshot(status=s1))
    assert bar.source.data["inputs_text"] == ["---"]
    bar.update(snapshot(status=s2))
    assert bar.source.data["inputs_per_s"] == [75.0]
    bar.update(snapshot(status=s2, state="lost", age_s=5.2))
    assert bar.source.data["link"] == ["lost"] and "wf-lost" in bar.root.text
    assert bar.source.data["inputs_per_s"] == [75.0]  # the same status frame again does not reset the rate


def test_alarm_list_leaves_shelved_alarms_off_the_list_but_counts_them_and_shows_any_state():
    raw = [
        alarm_record(1, priority="high", state="latched_unack"),
        alarm_record(2, priority="critical", state="shelved"),
        alarm_record(3, priority="low", state="out_of_service"),
        alarm_record(4, priority="medium", state="some_future_state"),
    ]
    recs = [AlarmRecord.from_json(a) for a in raw]
    cols = AlarmList.columns(recs, "en", SHANGHAI)
    assert cols["id"] == [raw[0]["id"], raw[3]["id"]]  # a state not understood is shown, never hidden
    assert cols["state_label"] == ["LATCHED, UNACK", "SOME_FUTURE_STATE"]
    assert cols["unacknowledged"] == [True, True]
    assert alarm_counts(recs) == AlarmCounts(in_alarm=1, unacknowledged=2, on_list=2, off_list=2)
    assert "2 shelved or out of service" in AlarmList.header_html(alarm_counts(recs), 2, True, "en")
    zones = FloorMap.zone_columns(demo_site_zones_only(), {r.id: r for r in recs}, "en", THEME)
    assert zones["rank"] == [3]  # the latched high alarm marks Z-SUB; the shelved critical one does not


def demo_site_zones_only():
    from config import DEMO_SITE, load_site

    site = load_site(DEMO_SITE)
    return site.model_copy(update={"zones": [z for z in site.zones if z.id == "Z-SUB"]})


def test_alarm_list_groups_by_area_and_condition_while_the_engine_reports_a_flood(demo_site):
    from ingest.protocol.records import FloodState

    raw = [
        alarm_record(1, priority="critical", zone="Z-U100", condition="gas.high", ts_s=EPOCH_S + 5),
        alarm_record(2, priority="critical", zone="Z-T3", condition="person.man_down", ts_s=EPOCH_S + 9),
        *[alarm_record(10 + i, priority="low", zone="Z-TF", ts_s=EPOCH_S + 10 + i) for i in range(4)],
        alarm_record(20, priority="high", zone="Z-SUB", ts_s=EPOCH_S + 30),
    ]
    tile = AlarmList(TileContext(site=demo_site, lang="en", theme=THEME))
    snap = snapshot(alarms=raw)
    tile.update(snap)
    assert raw[0]["message"]["en"] in tile.body.text and "FLOOD" not in tile.header.text
    flooding = FloodState("main", True, EPOCH_S, raw[0]["id"], 7)
    tile.update(LinkSnapshot(**{**snap.__dict__, "floods": MappingProxyType({"main": flooding})}))
    assert "FLOOD: grouped by area" in tile.header.text
    cards = re.findall(r'<div class="wf-alarm[^"]*"[^>]*data-(alarm|group)="([^"]+)"', tile.body.text)
    # first-out, the man-down alarm, the lone substation alarm (a group of one shows as itself), the tank farm
    assert cards == [
        ("alarm", raw[0]["id"]),
        ("alarm", raw[1]["id"]),
        ("alarm", raw[6]["id"]),
        ("group", "Z-TF|zone.restricted"),
    ]
    assert "FIRST OUT" in tile.body.text and "4 \u00d7 Restricted zone" in tile.body.text
    assert "Tank farm \u00b7" in tile.body.text and "4 UNACK" in tile.body.text
    ended = FloodState("main", False, EPOCH_S, None, 0)
    tile.update(LinkSnapshot(**{**snap.__dict__, "floods": MappingProxyType({"main": ended})}))
    assert "FLOOD" not in tile.header.text and 'data-group="' not in tile.body.text
