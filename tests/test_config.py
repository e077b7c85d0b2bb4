"""Site config validation: the shipped site is valid; each broken file names file, path and reason."""

from __future__ import annotations

import copy

import pytest
import yaml

from config import DEMO_SITE, ConfigError, load_site, parse_site
from console.cli import main as cli

RAW = yaml.safe_load(DEMO_SITE.read_text())
PLANNED = {"id": "HW-9", "type": "hot_work", "grade": "1", "workers": ["T0101"], "watcher": "T0187",
           "valid_from": "2026-11-22T08:00:00", "valid_to": "2026-11-22T16:00:00", "applicant": "sup1"}


def broken(mutate) -> ConfigError:
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(ConfigError) as ei:
        parse_site(data, "site.yaml")
    return ei.value


def test_demo_plant_meets_the_issue_sizes():
    s = load_site(DEMO_SITE)
    assert len(s.people) >= 200 and len(s.anchors) >= 10 and len(s.gas_detectors) >= 20
    assert len(s.vibration_points) >= 10 and len(s.cameras) >= 4 and len(s.zones) >= 8
    kinds = {z.kind for z in s.zones}
    assert {"restricted", "hazardous", "confined_space", "muster_point"} <= kinds
    assert s.origin.epsg == 4490


@pytest.mark.parametrize("mutate, path, reason", [
    (lambda d: d["zones"][3]["polygon"].__setitem__(slice(None), [[0, 0], [1, 1]]),
     "zones[3].polygon", "List should have at least 3 items"),
    (lambda d: d["zones"][3].__setitem__("polygon", [[250, 150], [265, 160], [265, 150], [250, 160]]),
     "zones[3].polygon", "polygon intersects itself (edges 0 and 2)"),
    (lambda d: d["zones"][0].__setitem__("polygon", [[10, 10], [20, 10], [20, 900]]),
     "zones[0].polygon[2]", "point [20.0, 900.0] is outside the floor plan [0.0, 0.0, 300.0, 200.0]"),
    (lambda d: d["zones"][0].__setitem__("allowed_people", ["P9999"]),
     "zones[0].allowed_people[0]", "unknown person 'P9999'"),
    (lambda d: d["zones"][1].__setitem__("kind", "forbidden"),
     "zones[1].kind", "Input should be 'restricted', 'hazardous', 'confined_space', 'muster_point' or 'area'"),
    (lambda d: d["people"][5].__setitem__("tag", "T0001"),
     "people[5].tag", "duplicate tag 'T0001' (first at people[0])"),
    (lambda d: d["people"][7].__setitem__("role", "pilot"),
     "people[7].role", "unknown role 'pilot'"),
    (lambda d: d["gas_detectors"][2].__setitem__("high", 5),
     "gas_detectors[2]", "alarm levels need 0 < low < high <= range_max, got 20.0, 5.0"),
    (lambda d: d["anchors"][0].__setitem__("position_m", [1, "x", 3]),
     "anchors[0].position_m[1]", "Input should be a valid number"),
    (lambda d: d["anchors"][0].__setitem__("position_m", [1, float("nan"), 3]),
     "anchors[0].position_m[1]", "Input should be a finite number"),
    (lambda d: d["cameras"][1].__setitem__("homography", [[1, 0, 0], [0, 1, 0], [0, 0, 0]]),
     "cameras[1].homography", "homography is singular (not invertible)"),
    (lambda d: d["floor_plan"].__setitem__("extent_m", [10, 0, 5, 100]),
     "floor_plan.extent_m", "extent must be x0 < x1 and y0 < y1"),
    (lambda d: d.__setitem__("colour", "red"), "colour", "unknown field (a typo?)"),
    (lambda d: d.__setitem__("permits", [dict(PLANNED, polygon=[[10, 10], [20, 10], [20, 250]])]),
     "permits[0].polygon[2]", "permit zone point [20.0, 250.0] is outside the site [0.0, 0.0, 300.0, 200.0]"),
    (lambda d: d.__setitem__("permits", [dict(PLANNED, polygon=[[10, 10], [20, 20], [20, 10], [10, 20]])]),
     "permits[0].polygon", "polygon intersects itself (edges 0 and 2)"),
    (lambda d: d.__setitem__("permits", [dict(PLANNED, polygon=[[10, 10], [20, 10], [20, 20]], workers=["T9999"])]),
     "permits[0].workers[0]", "unknown tag 'T9999'"),
    (lambda d: d.__setitem__("permits", [dict(PLANNED, zone="Z-NOPE")]), "permits[0].zone", "unknown zone 'Z-NOPE'"),
    (lambda d: d.__setitem__("permits", [dict(PLANNED, zone="Z-HW1", grade=None)]),
     "permits[0]", "hot_work needs a grade, one of special, 1, 2"),
    (lambda d: d["opcua"].__setitem__("security_policy", "Basic256Sha256"),
     "opcua", "security_policy Basic256Sha256 needs certificate and private_key"),
    (lambda d: d.setdefault("bus", {}).update(ingest="tcp://*:5602", publish="tcp://127.0.0.1:5602"),
     "bus", "publish (tcp://127.0.0.1:5602) and ingest (tcp://*:5602) are one address: each bus socket needs its own"),
    (lambda d: d.setdefault("bus", {}).update(command="ipc:///run/wf.ipc", publish="ipc:///run/wf.ipc"),
     "bus", "command (ipc:///run/wf.ipc) and publish (ipc:///run/wf.ipc) are one address"),
    (lambda d: d.setdefault("clock", {}).update(gas={"past_s": 0.5}),
     "clock.gas", "skew_alarm_s must be smaller than the window (future_s and past_s)"),
    (lambda d: d["escalation_policies"][0]["steps"].reverse(),
     "escalation_policies[0].steps", "step times must strictly increase, got [7200.0, 120.0]"),
    (lambda d: d["default_escalation"].__setitem__("high", "nightly"),
     "default_escalation.high", "unknown escalation policy 'nightly' (policies: default, urgent)"),
    (lambda d: d["default_escalation"].__setitem__("urgent", "default"),
     "default_escalation.urgent.[key]", "Input should be 'critical', 'high', 'medium' or 'low'"),
])
def test_broken_site_is_refused_with_path_and_reason(mutate, path, reason):
    err = broken(mutate)
    rendered = [i.render("site.yaml") for i in err.issues]
    assert any(r.startswith(f"site.yaml: {path}: ") and reason in r for r in rendered), rendered


def test_default_escalation_gives_each_priority_its_policy_unless_a_rule_names_one():
    from alarms.definitions import AlarmCatalog

    data = copy.deepcopy(RAW)
    data["alarm_rules"] = [
        {"condition": "zone.restricted", "match": "zone.restricted:Z-SUB:*", "escalation": "urgent"},  # its own
        {"condition": "person.lone_worker", "priority": "critical"},  # names none: its (new) priority's
    ]
    cat = AlarmCatalog(parse_site(data))

    def plan(condition, priority, aid):
        p = cat.define(id=aid, condition=condition, source="x", priority=priority, message_en="", message_zh="")
        return p.escalation.steps if p.escalation else None

    default, urgent = ((120.0, "supervisor"), (7200.0, "safety_manager")), ((60.0, "supervisor"), (600.0, "safety_manager"))
    assert plan("vibration.zone_d", "high", "vibration.zone_d:VP04") == default  # no rule: the site default
    assert plan("gas.high", "critical", "gas.high:GD07") == urgent
    assert plan("zone.restricted", "high", "zone.restricted:Z-SUB:T0050") == urgent  # the rule's policy
    assert plan("zone.restricted", "high", "zone.restricted:Z-R101:T0050") == default  # the rule does not match
    assert plan("person.lone_worker", "high", "person.lone_worker:Z-T3") == urgent  # raised to critical by its rule
    assert plan("camera.untagged_person", "medium", "camera.untagged_person:CAM1") is None  # no default for medium
    data.pop("default_escalation")
    assert AlarmCatalog(parse_site(data)).define(id="a", condition="gas.high", source="x", priority="critical",
                                                 message_en="", message_zh="").escalation is None


def test_every_problem_is_listed_not_only_the_first():
    def two(d):
        d["people"][7]["role"] = "pilot"
        d["zones"][0]["allowed_people"] = ["P9999"]

    assert len(broken(two).issues) == 2


def test_config_check_command_exit_codes_and_messages(tmp_path, capsys):
    assert cli(["config", "check", str(DEMO_SITE)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "ok: site demo-plant: 200 people" in out

    bad = tmp_path / "bad.yaml"
    data = copy.deepcopy(RAW)
    data["zones"][3]["polygon"] = [[0, 0], [1, 1]]
    bad.write_text(yaml.safe_dump(data))
    assert cli(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: zones[3].polygon: List should have at least 3 items" in err

    notyaml = tmp_path / "broken.yaml"
    notyaml.write_text("id: [unclosed\n")
    assert cli(["config", "check", str(notyaml)]) == 1
    assert f"{notyaml}: line 2, column 1: not valid YAML" in capsys.readouterr().err

    assert cli(["config", "check", str(tmp_path / "missing.yaml")]) == 1
    assert "cannot read: No such file or directory" in capsys.readouterr().err
