"""People-safety rules: man-down rises exactly when stationary_s reaches its limit and clears on movement, a
fall latches, SOS latches and holds, lone worker fires at entry + N s and clears when a second person comes,
battery_low holds 8 h, bad wearable events are refused with their reason. Timings are hand-checked."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from alarms.definitions import AlarmCatalog
from alarms.lifecycle import AlarmBook
from alarms.people import PeopleSafety
from alarms.zones import ZoneMembership
from config import parse_site
from config.rules import PeopleSafetySettings
from config.schema import AlarmRule

NAN = math.nan


def small_site_data() -> dict:
    """100 m x 100 m; Z-HAZ hazardous (10..30)^2, Z-CS confined space x 60..70 y 10..20, Z-AREA area x 40..50
    y 10..20, Z-MP1 (80..95)^2 and Z-MP2 x 5..20 y 80..95 muster points; GD01, VP01, CAM1, CAM2; four people
    P1..P4 with tags T1..T4; fences without dwell (a tag is inside from the fix that puts it 0.5 m in)."""
    square = lambda x0, y0, x1, y1: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]  # noqa: E731
    data = {
        "id": "small", "name": {"en": "Small site", "zh-CN": "小厂"},
        "origin": {"lat_deg": 31.0, "lon_deg": 121.0},
        "fences": {"border_m": 0.5, "min_dwell_s": 0.0},
        "floor_plan": {"extent_m": [0, 0, 100, 100]},
        "anchors": [{"id": "A1", "position_m": [0, 0, 5]}, {"id": "A2", "position_m": [100, 0, 5]},
                    {"id": "A3", "position_m": [0, 100, 5]}],
        "zones": [
            {"id": "Z-HAZ", "name": {"en": "Hot work", "zh-CN": "动火区"}, "kind": "hazardous",
             "polygon": square(10, 10, 30, 30)},
            {"id": "Z-CS", "name": {"en": "Vessel", "zh-CN": "容器"}, "kind": "confined_space",
             "polygon": square(60, 10, 70, 20)},
            {"id": "Z-AREA", "name": {"en": "Unit", "zh-CN": "单元"}, "kind": "area",
             "polygon": square(40, 10, 50, 20)},
            {"id": "Z-MP1", "name": {"en": "Muster 1", "zh-CN": "集合点1"}, "kind": "muster_point",
             "polygon": square(80, 80, 95, 95)},
            {"id": "Z-MP2", "name": {"en": "Muster 2", "zh-CN": "集合点2"}, "kind": "muster_point",
             "polygon": square(5, 80, 20, 95)},
        ],
        "gas_detectors": [
            {"id": "GD01", "position_m": [20, 20, 1], "node_id": "ns=2;s=GD01.PV", "gas": "CH4", "unit": "%LEL",
             "low": 20, "high": 40, "range_max": 100, "expected_interval_s": 1.0}],
        "vibration_points": [
            {"id": "VP01", "machine": "P-1", "machine_group": "group2", "position_m": [45, 15, 0.5]}],
        "cameras": [
            {"id": "CAM1", "position_m": [0, 0, 6], "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]},
            {"id": "CAM2", "position_m": [50, 0, 6], "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]}],
        "people": [{"id": f"P{i}", "name": f"Worker {i}", "tag": f"T{i}", "role": "worker"} for i in range(1, 5)],
    }
    return data


def small_site(**extra):
    return parse_site({**small_site_data(), **extra})


@pytest.fixture(scope="module")
def site():
    return small_site()


def fix(ps: PeopleSafety, pi: int, ts: float, stationary: float, xy=(50.0, 50.0)):
    return ps.on_positions(np.array([pi]), np.array([stationary]), np.array([[xy[0], xy[1], 1.2]]), np.array([ts]),
                           ts)


def ids(changes):
    return [(d.id, active) for d, active, _ in changes]


# -- man-down ------------------------------------------------------------------------------------------------
def test_man_down_rises_exactly_when_stationary_time_reaches_the_limit_and_clears_on_movement(site):
    ps = PeopleSafety(site)
    assert fix(ps, 0, 100.0, 0.0) == []
    assert fix(ps, 0, 159.5, 59.5) == []
    out = fix(ps, 0, 160.0, 60.0, xy=(12.5, 40.0))  # 60 s of the default 60 s
    assert ids(out) == [("person.man_down:T1", True)]
    d, _, pos = out[0]
    assert d.priority == "critical" and d.condition == "person.man_down" and d.person == "P1"
    assert not d.latching  # a stationary man-down clears by itself when the person moves
    assert pos == (12.5, 40.0)
    assert fix(ps, 0, 160.5, 60.5) == []  # still down: no repeat
    assert ids(fix(ps, 0, 161.0, NAN)) == [("person.man_down:T1", False)]


def test_man_down_limit_comes_from_the_settings(site):
    ps = PeopleSafety(site, settings=PeopleSafetySettings(man_down_s=30.0))
    assert fix(ps, 1, 29.9, 29.9) == []
    assert ids(fix(ps, 1, 30.0, 30.0)) == [("person.man_down:T2", True)]
    assert "30 s" in ps.man_down_definition(1, False).message_en


def test_fixes_of_a_batch_are_taken_in_time_order_per_person(site):
    ps = PeopleSafety(site)
    # given out of order: T1 up at 61 s, moving at 62 s; T2 up at 70 s
    out = ps.on_positions(np.array([0, 1, 0]), np.array([NAN, 70.0, 61.0]), np.zeros((3, 3)),
                          np.array([62.0, 70.0, 61.0]), 70.0)
    assert ids(out) == [("person.man_down:T1", True), ("person.man_down:T1", False), ("person.man_down:T2", True)]


def test_a_fall_raises_a_latching_man_down_that_movement_clears_only_after_fall_clear_s(site):
    ps = PeopleSafety(site)
    fix(ps, 2, 99.0, NAN, xy=(33.0, 44.0))
    out, rejects = ps.on_wearable([{"tag": "T3", "ts": 100.0, "event": "fall"}], 100.2)
    assert rejects == []
    assert ids(out) == [("person.man_down:T3", True)]
    d, _, pos = out[0]
    assert d.latching and d.priority == "critical" and pos == (33.0, 44.0)
    assert "fall" in d.message_en and "跌倒" in d.message_zh
    assert fix(ps, 2, 105.0, NAN) == []  # still settling after the fall (fall_clear_s 10 s)
    assert fix(ps, 2, 109.9, 2.0) == []
    out = fix(ps, 2, 110.0, NAN)  # moving 10 s after the fall
    assert ids(out) == [("person.man_down:T3", False)] and out[0][0].latching


def test_fall_raised_man_down_stays_latched_in_the_book_until_acknowledged_and_reset(site):
    ps, book = PeopleSafety(site), AlarmBook(None)

    def apply(changes, ts):
        for d, active, pos in changes:
            book.set_condition(d, active, ts, 1, pos)

    apply(ps.on_wearable([("T3", 100.0, "fall")], 100.0)[0], 100.0)
    assert book.alarms["person.man_down:T3"].state == "active_unack"
    apply(fix(ps, 2, 120.0, NAN), 120.0)
    assert book.alarms["person.man_down:T3"].state == "latched_unack"
    book.acknowledge("person.man_down:T3", "op1", "operator", "", 121.0, 2)
    assert book.alarms["person.man_down:T3"].state == "latched_ack"
    book.reset("person.man_down:T3", "op1", "operator", 122.0, 3)
    assert "person.man_down:T3" not in book.alarms


def test_a_fall_during_a_stationary_man_down_re_reports_it_with_the_latching_definition(site):
    ps = PeopleSafety(site)
    assert ids(fix(ps, 0, 60.0, 60.0)) == [("person.man_down:T1", True)]
    out, _ = ps.on_wearable([("T1", 61.0, "fall")], 61.0)
    assert ids(out) == [("person.man_down:T1", True)] and out[0][0].latching
    assert ps.on_wearable([("T1", 62.0, "fall")], 62.0)[0] == []  # a second fall: nothing new
    assert fix(ps, 0, 65.0, NAN) == []  # within fall_clear_s of the last fall
    out = fix(ps, 0, 72.0, NAN)
    assert ids(out) == [("person.man_down:T1", False)] and out[0][0].latching


def test_an_alarm_rule_overrides_the_latching_default_and_the_priority(site):
    ruled = site.model_copy(update={"alarm_rules": [
        AlarmRule(condition="person.man_down", latching=False),
        AlarmRule(condition="person.battery_low", priority="medium")]})
    ps = PeopleSafety(ruled, AlarmCatalog(ruled))
    assert not ps.man_down_definition(0, True).latching
    assert ps.sos_definition(0).latching  # no rule for SOS: latching by default
    assert ps.battery_definition(0).priority == "medium"


# -- SOS and battery -------------------------------------------------------------------------------------------
def test_sos_is_critical_latching_and_holds_sos_hold_s_after_the_last_press(site):
    ps = PeopleSafety(site, settings=PeopleSafetySettings(sos_hold_s=300.0))
    m = ZoneMembership(site)
    out, _ = ps.on_wearable([{"tag": "T2", "ts": 1000.0, "event": "sos"}], 1000.0)
    assert ids(out) == [("person.sos:T2", True)]
    d = out[0][0]
    assert d.priority == "critical" and d.latching and d.condition == "person.sos"
    assert ps.on_wearable([("T2", 1100.0, "sos")], 1100.0)[0] == []  # pressed again: holds longer
    assert ps.on_tick(1300.0, m) == []  # 300 s after the first press, 200 s after the second
    assert ps.on_tick(1399.9, m) == []
    assert ids(ps.on_tick(1400.0, m)) == [("person.sos:T2", False)]
    assert ps.on_tick(1500.0, m) == []


def test_battery_low_is_a_low_alarm_that_clears_8_hours_after_the_last_report(site):
    ps = PeopleSafety(site)
    m = ZoneMembership(site)
    out, _ = ps.on_wearable([("T4", 0.0, "battery_low")], 0.0)
    assert ids(out) == [("person.battery_low:T4", True)] and out[0][0].priority == "low"
    assert not out[0][0].latching
    assert ps.on_wearable([("T4", 3600.0, "battery_low")], 3600.0)[0] == []
    assert ps.on_tick(8 * 3600.0, m) == []
    assert ids(ps.on_tick(9 * 3600.0, m)) == [("person.battery_low:T4", False)]


def test_bad_wearable_events_are_refused_with_their_reason_and_the_good_ones_applied(site):
    ps = PeopleSafety(site)
    events = [
        {"tag": "T9", "ts": 1.0, "event": "sos"},
        {"tag": "T1", "ts": 1.0, "event": "explode"},
        {"tag": "T1", "event": "sos"},
        {"tag": "T1", "ts": "soon", "event": "sos"},
        {"tag": "T1", "ts": True, "event": "sos"},
        {"tag": "T1", "ts": float("inf"), "event": "sos"},
        "sos",
        {"tag": "T1", "ts": 5.0, "event": "sos"},
        {"tag": "T1", "ts": 5.0, "event": "sos"},  # QoS 1 redelivery
    ]
    out, rejects = ps.on_wearable(events, 5.0)
    assert ids(out) == [("person.sos:T1", True)]
    assert [r for r, _ in rejects] == [
        "wearable event from an unknown tag",
        "unknown wearable event (sos, fall, battery_low)",
        "wearable event without tag, ts or event",
        "wearable event ts is not a finite number",
        "wearable event ts is not a finite number",
        "wearable event ts is not a finite number",
        "wearable event is not an object with tag, ts and event",
        "duplicate wearable event (QoS 1 redelivery)",
    ]
    assert json.loads(rejects[0][1]) == {"tag": "T9", "ts": 1.0, "event": "sos"}  # the payload excerpt
    assert ps.on_wearable([{"tag": "T1", "ts": 5.0, "event": "sos"}], 6.0)[1][0][0].startswith("duplicate")


def test_wearable_events_of_a_batch_apply_in_time_order(site):
    ps = PeopleSafety(site)
    fix(ps, 0, 10.0, 61.0)  # stationary man-down up
    # the fall (t 12) comes after the movement (t 20) in the list but happened first: it still latches
    out, _ = ps.on_wearable([("T1", 20.0, "battery_low"), ("T1", 12.0, "fall")], 20.0)
    assert ids(out) == [("person.man_down:T1", True), ("person.battery_low:T1", True)]


# -- lone worker -------------------------------------------------------------------------------------------------
class Scene:
    """Fixes through a real ZoneMembership, fence events handed to PeopleSafety as the engine does."""

    def __init__(self, site, **settings):
        self.m = ZoneMembership(site)
        self.ps = PeopleSafety(site, settings=PeopleSafetySettings(**settings))

    def at(self, ts, **xy):
        idx = np.array([int(k[1:]) - 1 for k in xy])
        xyz = np.array([[x, y, 1.2] for x, y in xy.values()])
        events = self.m.update(idx, xyz, np.full(len(idx), ts))
        self.ps.on_fence_events(events)
        self.ps.on_positions(idx, np.full(len(idx), NAN), xyz, np.full(len(idx), ts), ts)

    def tick(self, now):
        return ids(self.ps.on_tick(now, self.m))


def test_lone_worker_fires_at_entry_plus_n_and_clears_when_a_second_person_enters(site):
    s = Scene(site)
    s.at(10.0, T1=(20.0, 20.0))  # into Z-HAZ (hazardous) at 10 s
    assert s.tick(129.9) == []
    assert s.tick(130.0) == [("person.lone_worker:Z-HAZ:T1", True)]
    d = s.ps.lone_worker_definition(0, 0)
    assert d.priority == "high" and d.zone == "Z-HAZ" and d.area == "Z-HAZ" and d.person == "P1"
    assert s.tick(131.0) == []
    s.at(140.0, T2=(25.0, 25.0))
    assert s.tick(140.1) == [("person.lone_worker:Z-HAZ:T1", False)]
    # T2 leaves at 150 s: T1 is alone again from then, so the alarm waits another 120 s
    s.at(150.0, T2=(50.0, 50.0))
    assert s.tick(150.1) == [] and s.tick(269.9) == []
    assert s.tick(270.0) == [("person.lone_worker:Z-HAZ:T1", True)]
    s.at(300.0, T1=(50.0, 60.0))
    assert s.tick(300.1) == [("person.lone_worker:Z-HAZ:T1", False)]


def test_the_second_person_left_alone_gets_the_alarm_timed_from_the_first_ones_exit(site):
    s = Scene(site)
    s.at(0.0, T1=(65.0, 15.0), T2=(66.0, 15.0))  # both into Z-CS (confined space)
    assert s.tick(200.0) == []
    s.at(210.0, T1=(50.0, 50.0))
    assert s.tick(329.9) == []
    assert s.tick(330.0) == [("person.lone_worker:Z-CS:T2", True)]


def test_lone_worker_applies_only_to_the_configured_zone_kinds(site):
    s = Scene(site)
    s.at(0.0, T1=(45.0, 15.0))  # Z-AREA is an area
    assert s.tick(1000.0) == []
    s = Scene(site, lone_worker_zone_kinds=["area"], lone_worker_s=60.0)
    s.at(0.0, T1=(45.0, 15.0), T2=(20.0, 20.0))
    assert s.tick(60.0) == [("person.lone_worker:Z-AREA:T1", True)]


def test_the_same_inputs_give_the_same_changes(site):
    def run():
        s = Scene(site)
        out = []
        for k in range(40):
            t = 10.0 * k
            s.at(t, T1=(20.0 + (k % 3), 20.0), T2=(20.0 if k % 7 else 50.0, 25.0))
            out += s.tick(t + 0.1)
            out += ids(s.ps.on_positions(np.array([2]), np.array([float(k * 5)]), np.zeros((1, 3)),
                                         np.array([t]), t))
        return out

    assert run() == run() and run() != []
