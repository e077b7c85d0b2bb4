"""People-safety wiring through the engine: a wearable fall raises a latching man-down, a muster is declared
and ended by a supervisor and journaled, a composite rule over a named input and a gas value fires, and bad
wearable events are counted as rejects."""

from __future__ import annotations

import numpy as np
import yaml

from alarms.journal import Journal, verify_journal
from config import DEMO_SITE, parse_site
from ingest.bus import Message
from ingest.engine import Engine, tick_message
from tests.builders import vibration_features

T0 = 1_800_000_000.0


def cmd(eng, seq, **req):
    return eng.apply(seq, Message("command", "console", "command", T0, T0, meta={"id": f"c{seq}", **req}))


def test_fall_muster_and_wearable_rejects(demo_site, tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    eng = Engine(demo_site, j)
    eng.apply(1, tick_message(T0))
    out = eng.apply(2, Message("wearable.events", "uwb", "wearable_events", T0, T0, meta={"events": [
        {"tag": "T0077", "ts": T0, "event": "fall"}, {"tag": "T9999", "ts": T0, "event": "sos"}]}))
    assert [(a["id"], a["priority"], a["state"]) for a in out.alarms] == [
        ("person.man_down:T0077", "critical", "active_unack")]
    assert any(k.startswith("wearable: ") for k in eng.rejected)
    assert eng.book.alarms["person.man_down:T0077"].definition.latching

    assert cmd(eng, 3, op="muster_declare", user="op1", area="all").reply["reason"] == \
        "role operator may not declare a muster"
    xyz = np.array([[30.0, 60.0, 1.2], [100.0, 100.0, 1.2]])  # T0001 at muster point 1, T0002 on the road
    for ts in (T0 - 2.5, T0):
        eng.apply(4 if ts < T0 else 5, Message("uwb.positions", "uwb", "positions", ts, ts, arrays={
            "person_index": np.array([0, 1], np.int32), "xyz_m": xyz, "ts_s": np.full(2, ts),
            "valid": np.ones(2, bool), "gdop": np.ones(2), "rms_m": np.full(2, 0.1)}))
    assert cmd(eng, 6, op="muster_declare", user="sup1", area="all").reply["ok"]
    eng.apply(7, tick_message(T0 + 30))
    status = eng.muster_status()
    assert status["counts"] == {"roster": 2, "mustered": 1, "missing": 1} and status["elapsed_s"] == 30.0
    assert status["missing"][0]["tag"] == "T0002" and status["missing"][0]["position_m"] == [100.0, 100.0, 1.2]
    assert status["missing"][0]["fix_age_s"] == 30.0
    assert [p["count"] for p in status["muster_points"] if p["zone"] == "Z-MP1"] == [1]
    assert cmd(eng, 8, op="muster_end", user="sup1").reply["ok"]
    assert eng.muster_status() is None
    j.close()
    rows = [r[0] for r in __import__("sqlite3").connect(tmp_path / "j.sqlite").execute(
        "SELECT event FROM journal WHERE alarm_id = 'muster'")]
    assert rows[0] == "refused" and len(rows) == 3
    assert verify_journal(tmp_path / "j.sqlite").ok


def test_composite_rule_over_a_named_input_and_a_gas_value():
    data = yaml.safe_load(DEMO_SITE.read_text())
    data["inputs"] = [{"id": "WS01", "name": "wind speed", "unit": "m/s"}]
    data["rules"] = [{"id": "wind-and-gas", "priority": "high",
                      "message": {"en": "Wind and gas", "zh-CN": "大风且有可燃气"},
                      "when": {"all": [{"sensor": "WS01", "above": 8}, {"sensor": "GD07", "above": 10}]}}]
    site = parse_site(data)
    eng = Engine(site, None)
    eng.apply(1, tick_message(T0))
    gd07 = [d.id for d in site.gas_detectors].index("GD07")
    eng.apply(2, Message("gas.values", "gas", "gas_values", T0, T0, arrays={
        "detector_index": np.array([gd07], np.int32), "value": np.array([12.0]), "quality": np.array([0], np.uint8),
        "ts_s": np.array([T0])}))
    out = eng.apply(3, Message("inputs.values", "weather", "input_values", T0, T0, arrays={
        "input_index": np.array([0], np.int32), "value": np.array([9.5]), "ts_s": np.array([T0])}))
    out2 = eng.apply(4, tick_message(T0 + 0.1))
    fired = [a["id"] for a in out.alarms + out2.alarms]
    assert fired == ["rule.wind-and-gas"]


def test_a_late_sos_is_still_raised_marked_late_and_its_redelivery_is_dropped(demo_site):
    """A worker out of coverage may still be in danger: an SOS that arrives an hour late raises the critical
    alarm all the same, marked LATE with its event time (site time zone) and how late it came."""
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(T0))
    ev = {"tag": "T0033", "ts": T0 - 3600.0, "event": "sos", "late_s": 3600.4}
    out = eng.apply(2, Message("wearable.events", "uwb", "wearable_events", T0, T0, meta={"events": [ev]}))
    (alarm,) = out.alarms
    assert (alarm["id"], alarm["priority"], alarm["state"]) == ("person.sos:T0033", "critical", "active_unack")
    at = __import__("datetime").datetime.fromtimestamp(T0 - 3600.0, __import__("zoneinfo").ZoneInfo(
        demo_site.timezone)).strftime("%H:%M:%S")
    assert alarm["message"]["en"].startswith(f"LATE by 3600 s (event at {at}): SOS from ")
    assert alarm["message"]["zh-CN"].startswith(f"迟到 3600 秒（事件时间 {at}）：")
    again = eng.apply(3, Message("wearable.events", "uwb", "wearable_events", T0, T0, meta={"events": [ev]}))
    assert again.alarms == [] and eng.rejected["wearable: duplicate wearable event (QoS 1 redelivery)"] == 1


def test_alarms_of_people_and_machines_are_raised_in_the_area_around_them(demo_site):
    """An SOS names no zone: it is raised in the area the person's fix is in (Unit 100); a vibration alarm in the
    area of its machine: VP04 stands on the road 8 m south of Unit 200's zone (y 120..180), its nearest area."""
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(T0))
    eng.apply(2, Message("uwb.positions", "uwb", "positions", T0, T0, arrays={
        "person_index": np.array([32], np.int32), "xyz_m": np.array([[75.0, 165.0, 1.2]]),  # P0033, in Unit 100
        "ts_s": np.full(1, T0), "valid": np.ones(1, bool), "gdop": np.ones(1), "rms_m": np.full(1, 0.1)}))
    out = eng.apply(3, Message("wearable.events", "uwb", "wearable_events", T0, T0,
                               meta={"events": [{"tag": "T0033", "ts": T0, "event": "sos"}]}))
    (sos,) = [a for a in out.alarms if a["id"] == "person.sos:T0033"]
    assert sos["zone"] is None and sos["area"] == "Z-U100"
    raised = []
    for k in range(6):  # VP04 in zone D (ISO 20816-3) long enough for its alarm
        ts = T0 + 5.0 * (k + 1)
        eng.apply(4 + 2 * k, tick_message(ts))
        raised += eng.apply(5 + 2 * k, vibration_features(demo_site, {"VP04": 12.0}, ts)).alarms
    (vib,) = {a["id"]: a for a in raised if a["id"].startswith("vibration.zone_d:")}.values()
    assert vib["id"] == "vibration.zone_d:VP04" and vib["area"] == "Z-U200"
