"""Composite rules: the config language is validated with errors that name the path, references to sensors,
cameras and zones are checked, and the evaluator fires and clears on hand-checked times (windows,
consecutiveness, staleness, zones). Nothing in a rule is ever run as code."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from alarms.lifecycle import AlarmBook
from alarms.rules import CompositeRules, nearest_person
from alarms.zones import ZoneMembership
from config.loader import format_path
from config.rules import CompositeRule, NamedInput, PeopleSafetySettings, check_rule_references
from config.schema import Site
from tests.test_people_rules import small_site_data


class RuledSite(Site):
    """The site with the fields the engine lead adds to config.schema.Site."""

    people_safety: PeopleSafetySettings = PeopleSafetySettings()
    inputs: list[NamedInput] = []
    rules: list[CompositeRule] = []


HARNESS_WIND = {
    "id": "harness-wind", "priority": "high",
    "message": {"en": "No harness in high wind", "zh-CN": "大风中未系安全带"},
    "when": {"all": [
        {"detection": "no_harness", "count": 2, "consecutive": True, "within_s": 10},
        {"sensor": "WS01", "above": 8},
    ]},
}
WIND = {"id": "WS01", "name": "wind speed", "unit": "m/s", "expected_interval_s": 10}


def ruled(rules, inputs=(WIND,), **extra):
    data = {**small_site_data(), "rules": list(rules), "inputs": list(inputs), **extra}
    return RuledSite.model_validate(data)


def problems(rules, inputs=(WIND,)) -> list[tuple[str, str]]:
    """What the loader would report: pydantic's errors with their paths, else the reference checks."""
    try:
        site = ruled(copy.deepcopy(rules), copy.deepcopy(list(inputs)))
    except ValidationError as e:
        return [(format_path(x["loc"]), x["msg"].removeprefix("Value error, ")) for x in e.errors()]
    return check_rule_references(site)


# -- config ------------------------------------------------------------------------------------------------------
def test_a_valid_rule_set_with_inputs_and_settings_has_no_problems():
    site = ruled([HARNESS_WIND], people_safety={"man_down_s": 45, "lone_worker_zone_kinds": ["confined_space"]})
    assert check_rule_references(site) == []
    assert site.rules[0].per_person and site.people_safety.man_down_s == 45.0
    assert site.rules[0].message.zh_CN == "大风中未系安全带"


def rule(when, **kw):
    return {"id": kw.pop("id", "r"), "priority": "high", "message": {"en": "m", "zh-CN": "m"}, "when": when, **kw}


SENSOR = {"sensor": "WS01", "above": 8}


@pytest.mark.parametrize("when, path, reason", [
    ({"all": [{"detection": "no_harness", "above": 3}]}, "rules[0].when.all[0]",
     "'above' does not apply to a detection condition"),
    ({"all": [{"sensor": "WS01"}]}, "rules[0].when.all[0]", "a sensor condition needs above and / or below"),
    ({"sensor": "WS01", "above": 9, "below": 3}, "rules[0].when",
     "above 9.0 and below 3.0 leave no value between them"),
    ({"all": [{"detection": "person", "sensor": "WS01"}]}, "rules[0].when.all[0]",
     "a condition is one of all, any, detection, sensor, in_zone, this one has detection and sensor "
     "(put them under all or any)"),
    ({"all": [{"count": 2}]}, "rules[0].when.all[0]",
     "a condition needs one of all, any, detection, sensor, in_zone"),
    ({"detection": "no_hat"}, "rules[0].when.detection",
     "Input should be 'person', 'no_helmet', 'no_vest' or 'no_harness'"),
    ({"detection": "no_vest", "consecutive": True}, "rules[0].when", "consecutive needs count of at least 2"),
    ({"detection": "no_vest", "count": 0}, "rules[0].when.count", "Input should be greater than or equal to 1"),
    ({"all": []}, "rules[0].when.all", "List should have at least 1 item after validation, not 0"),
    ({"all": [{"sensor": "WS01", "above": "8*2"}]}, "rules[0].when.all[0].above",
     "Input should be a valid number, unable to parse string as a number"),
    ({"sensor": "__import__('os')", "above": 1}, "rules[0].when.sensor",
     "String should match pattern '^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$'"),
    ({"all": [{"all": [{"any": [{"all": [{"all": [SENSOR]}]}]}]}]}, "rules[0].when",
     "all / any nested deeper than 4 levels (at all[0].all[0].any[0].all[0])"),
    ({"any": [{"detection": "no_helmet"}, SENSOR]}, "rules[0].when",
     "mixes per-person conditions (detection, in_zone) with site-wide ones (sensor) so that it could hold for "
     "every person at once: put the per-person condition under all"),
    ({"all": [SENSOR] * 15 + [{"any": [SENSOR] * 16}]}, "rules[0].when", "33 conditions; a rule holds at most 32"),
    ({"all": [{"sensor": "WS01", "above": 8, "unit": "m/s"}]}, "rules[0].when.all[0].unit", "Extra inputs are not "
     "permitted"),
])
def test_a_broken_condition_is_refused_with_its_path_and_reason(when, path, reason):
    assert problems([rule(when)]) == [(path, reason)]


def test_reference_errors_name_the_path():
    rules = [
        rule(SENSOR, id="a"),
        rule({"all": [{"detection": "no_helmet", "cameras": ["CAM1", "CAM9"]}, {"in_zone": "Z-NOPE"}]}, id="b",
             area="Z-X"),
        rule({"all": [{"sensor": "GD01", "above": 20}, {"sensor": "WS99", "above": 8}]}, id="c"),
        rule({"any": [{"sensor": "GD01", "above": 100}, {"sensor": "VP01", "above": 7.1}]}, id="a"),
    ]
    inputs = [WIND, {"id": "GD01"}, {"id": "WS01"}]
    assert problems(rules, inputs) == [
        ("rules[3].id", "duplicate id 'a' (first at rules[0])"),
        ("inputs[2].id", "duplicate id 'WS01' (first at inputs[0])"),
        ("inputs[1].id", "'GD01' is already a gas detector id"),
        ("rules[1].area", "unknown zone 'Z-X'"),
        ("rules[1].when.all[0].cameras[1]", "unknown camera 'CAM9'"),
        ("rules[1].when.all[1].in_zone", "unknown zone 'Z-NOPE'"),
        ("rules[2].when.all[1].sensor", "unknown sensor 'WS99' (not a gas detector, vibration point or input id)"),
        ("rules[3].when.any[0].above", "100.0 is at or above GD01's range_max 100.0 %LEL: the condition can never "
                                       "hold"),
    ]


def test_the_example_error_of_the_issue():
    rules = [rule(SENSOR, id="a"), rule(SENSOR, id="b"),
             rule({"all": [{"detection": "no_harness", "count": 2, "consecutive": True},
                           {"sensor": "WS99", "above": 8}]}, id="c")]
    (path, reason), = problems(rules)
    assert f"{path}: {reason}".startswith("rules[2].when.all[1].sensor: unknown sensor 'WS99'")


# -- evaluation ----------------------------------------------------------------------------------------------
CLASS = {"person": 0, "no_helmet": 1, "no_vest": 2, "no_harness": 3}


def frame(cr, ts, dets, cam=0):
    """One camera frame: dets = [(person index, class name, confidence, (x, y))]."""
    n = len(dets)
    arrays = {"camera_index": np.full(n, cam, np.int32), "class_id": np.array([CLASS[c] for _, c, _, _ in dets]),
              "confidence": np.array([c for _, _, c, _ in dets], float),
              "xy_m": np.array([xy for *_, xy in dets], float).reshape(n, 2), "ts_s": np.full(n, ts)}
    return ids(cr.on_detections(arrays, np.array([p for p, *_ in dets]), ts))


def seen(pi, *ppe, conf=0.8, xy=(20.0, 21.0)):
    return [(pi, "person", 0.9, xy)] + [(pi, c, conf, xy) for c in ppe]


def ids(changes):
    return [(d.id, active) for d, active, _ in changes]


def wind(cr, v, ts):
    return ids(cr.on_values("input", np.array([0]), np.array([v]), np.array([ts]), ts))


def test_two_consecutive_no_harness_frames_in_high_wind_raise_a_high_alarm_for_the_tag():
    site = ruled([HARNESS_WIND])
    cr = CompositeRules(site)
    assert wind(cr, 9.0, 100.0) == []
    assert frame(cr, 101.0, seen(0, "no_harness")) == []  # one of two
    arrays = {"camera_index": np.zeros(2, np.int32), "class_id": np.array([0, 3]), "confidence": np.array([.9, .8]),
              "xy_m": np.array([[20.0, 21.0], [20.0, 21.0]]), "ts_s": np.full(2, 102.0)}
    out = cr.on_detections(arrays, np.array([0, 0]), 102.0)
    assert ids(out) == [("rule.harness-wind:T1", True)]
    d, _, pos = out[0]
    assert d.priority == "high" and d.condition == "rule.composite" and d.person == "P1" and pos == (20.0, 21.0)
    assert d.message_en == "No harness in high wind: Worker 1 (T1)"
    assert d.message_zh == "大风中未系安全带：Worker 1（T1）"
    book = AlarmBook(None)
    assert book.set_condition(d, True, 102.0, 1, pos)["state"] == "active_unack"
    assert wind(cr, 7.5, 103.0) == [("rule.harness-wind:T1", False)]
    assert wind(cr, 8.5, 104.0) == [("rule.harness-wind:T1", True)]
    # the window is 10 s: the older of the two frames (101 s) leaves it at 111 s
    assert ids(cr.on_tick(110.9)) == []
    assert ids(cr.on_tick(111.0)) == [("rule.harness-wind:T1", False)]


def test_a_frame_with_the_harness_on_breaks_the_run():
    cr = CompositeRules(ruled([HARNESS_WIND]))
    wind(cr, 9.0, 100.0)
    assert frame(cr, 101.0, seen(0, "no_harness")) == []
    assert frame(cr, 102.0, seen(0)) == []  # seen with the harness on
    assert frame(cr, 103.0, seen(0, "no_harness")) == []
    assert frame(cr, 104.0, seen(0, "no_harness")) == [("rule.harness-wind:T1", True)]
    assert frame(cr, 105.0, seen(0)) == [("rule.harness-wind:T1", False)]


def test_frames_of_another_tag_do_not_count_and_a_late_frame_does_not_break_a_run():
    cr = CompositeRules(ruled([HARNESS_WIND]))
    wind(cr, 9.0, 100.0)
    assert frame(cr, 101.0, seen(0, "no_harness")) == []
    assert frame(cr, 102.0, seen(1, "no_harness", xy=(40.0, 40.0))) == []
    assert frame(cr, 103.0, seen(1, "no_harness", xy=(40.0, 40.0))) == [("rule.harness-wind:T2", True)]
    assert frame(cr, 104.0, seen(0, "no_harness")) == [("rule.harness-wind:T1", True)]
    assert frame(cr, 103.5, seen(0), cam=1) == []  # older than a frame already taken for T1: ignored


def test_count_within_a_window_ignores_frames_without_the_class():
    r = rule({"detection": "no_helmet", "count": 3, "within_s": 10}, id="helmet")
    cr = CompositeRules(ruled([r]))
    assert frame(cr, 100.0, seen(2, "no_helmet")) == []
    assert frame(cr, 101.0, seen(2)) == []
    assert frame(cr, 102.0, seen(2, "no_helmet")) == []
    assert frame(cr, 105.0, seen(2, "no_helmet")) == [("rule.helmet:T3", True)]
    assert ids(cr.on_tick(109.9)) == []
    assert ids(cr.on_tick(110.0)) == [("rule.helmet:T3", False)]  # the 100 s frame left the window


def test_cameras_and_min_confidence_filter_the_frames():
    r = rule({"detection": "no_helmet", "cameras": ["CAM2"], "min_confidence": 0.7}, id="cam2")
    cr = CompositeRules(ruled([r]))
    assert frame(cr, 1.0, seen(0, "no_helmet"), cam=0) == []  # CAM1
    assert frame(cr, 2.0, seen(0, "no_helmet", conf=0.6), cam=1) == []
    assert frame(cr, 3.0, seen(0, "no_helmet", conf=0.75), cam=1) == [("rule.cam2:T1", True)]


def test_a_site_wide_rule_over_gas_and_vibration_sits_at_the_first_sensor():
    r = rule({"any": [{"sensor": "GD01", "above": 20}, {"sensor": "VP01", "above": 7.1}]}, id="hot")
    cr = CompositeRules(ruled([r]))

    def val(kind, v, ts):
        return cr.on_values(kind, np.array([0]), np.array([v]), np.array([ts]), ts)

    assert val("gas", np.nan, 1.0) == []  # bad value: never above anything
    out = val("gas", 25.0, 2.0)
    assert ids(out) == [("rule.hot", True)] and out[0][2] == (20.0, 20.0) and out[0][0].person is None
    assert val("gas", 15.0, 3.0) == [(out[0][0], False, (20.0, 20.0))]
    assert ids(val("vibration", 8.0, 3.5)) == [("rule.hot", True)]
    assert ids(val("vibration", 5.0, 4.0)) == [("rule.hot", False)]
    assert val("gas", 30.0, 2.5) == []  # older than the value held: ignored


def test_a_stale_value_never_satisfies_a_threshold():
    cr = CompositeRules(ruled([rule(SENSOR, id="wind")]))
    assert wind(cr, 9.0, 100.0) == [("rule.wind", True)]
    assert ids(cr.on_tick(130.0)) == []  # 3 x expected_interval_s (10 s) = 30 s
    assert ids(cr.on_tick(130.1)) == [("rule.wind", False)]
    cr = CompositeRules(ruled([rule({**SENSOR, "max_age_s": 5}, id="wind")]))
    wind(cr, 9.0, 100.0)
    assert ids(cr.on_tick(105.1)) == [("rule.wind", False)]


def test_in_zone_rule_holds_per_person_inside_and_names_them_in_the_message():
    r = rule({"all": [{"in_zone": "Z-HAZ"}, {"sensor": "GD01", "above": 10}]}, id="gas-haz",
             message={"en": "{person} ({tag}) in hot work with gas",
                      "zh-CN": "{person}（{person_id}）在动火区遇可燃气"})
    site = ruled([r])
    m = ZoneMembership(site)
    cr = CompositeRules(site, membership=m)
    xyz = np.array([[20.0, 20.0, 1.2], [50.0, 50.0, 1.2], [np.nan] * 3, [np.nan] * 3])
    m.update(np.array([0, 1]), xyz[:2], np.array([1.0, 1.0]))
    assert ids(cr.on_values("gas", np.array([0]), np.array([12.0]), np.array([1.0]), 1.0)) == [
        ("rule.gas-haz:T1", True)]
    assert cr.definition(0, 0).message_en == "Worker 1 (T1) in hot work with gas"
    assert cr.definition(0, 0).message_zh == "Worker 1（P1）在动火区遇可燃气"
    m.update(np.array([0]), np.array([[50.0, 60.0, 1.2]]), np.array([2.0]))
    out = cr.on_tick(2.0, xyz)
    assert ids(out) == [("rule.gas-haz:T1", False)] and out[0][2] == (20.0, 20.0)  # the UWB fix it was given


def test_message_braces_are_text_not_code():
    r = rule({"detection": "person"}, id="x", message={"en": "{tag.__class__} {0} {tag}", "zh-CN": "{tag}"})
    cr = CompositeRules(ruled([r]))
    assert cr.definition(0, 1).message_en == "{tag.__class__} {0} T2"


def test_the_same_inputs_give_the_same_changes():
    def run():
        cr = CompositeRules(ruled([HARNESS_WIND, rule(SENSOR, id="wind")]))
        out = []
        for k in range(60):
            t = 100.0 + k
            out += wind(cr, 7.0 + (k % 5), t)
            out += frame(cr, t, seen(k % 3, *(["no_harness"] if k % 4 else [])))
            out += ids(cr.on_tick(t + 0.5))
        return out

    first = run()
    assert first == run() and len(first) > 5


def test_nearest_person_matches_within_the_radius_and_the_fix_age():
    xyz = np.array([[0.0, 0.0, 1.2], [10.0, 0.0, 1.2], [np.nan] * 3, [3.0, 0.0, 1.2]])
    fix_ts = np.array([100.0, 100.0, np.nan, 90.0])  # the last one is 10 s old
    det = np.array([[0.5, 0.0], [9.0, 0.0], [5.0, 0.0], [3.0, 0.1]])
    got = nearest_person(det, np.full(4, 100.5), xyz, fix_ts, radius_m=1.5, max_age_s=2.0)
    assert got.tolist() == [0, 1, -1, -1]
    assert nearest_person(np.zeros((0, 2)), np.zeros(0), xyz, fix_ts).tolist() == []
