"""The muster drill (``--scenario muster_drill``).

On the demo plant as shipped (the model alone, no I/O): the supervisor's declaration and all clear are scripted
for the control room; everyone but the chosen few walks the walkways, never through a closed zone, to the
muster point nearest by the walkways and is inside it after the declaration plus their reaction delay; the few
stay at their stations (the first in a building) and never set foot in a muster point. (That the same seed gives
the same drill, asked in any order, tests/test_simulator.py checks for every scenario.)

Through the real pipeline (`watchfloor demo --headless`: the simulator's control room logs in and declares the
emergency over the engine's command socket, UWB over MQTT, the adapters, the engine): the journal shows the
verified supervisor's login and declaration; the engine's muster status, as published on its bus, counts each
person as mustered once the model has them at a muster point (within the latency of positions and fences) and,
at the end, has exactly the chosen few missing, with their last positions. To keep the run under a minute the
test site has seven more muster points at road junctions and the crowd runs at four times its walking pace (on
the demo plant's two muster points, at walking pace, the last person arrives ~6 minutes after the declaration).
Times are seconds of simulation time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from config import DEMO_SITE, load_site
from config.schema import Zone
from console.cli.launch import write_site
from ingest.protocol.names import TOPIC_MUSTER
from ingest.simulator import PlantModel
from ingest.simulator.layout import AVOID_KINDS
from kernels.geofence import points_in_polygon
from tests.scenario_run import play

#: the drill at test pace: declared 3 s in, reactions 1-3 s, everyone runs (4x their walking pace), three stay
#: missing, no all clear
TIMING = {"declare_s": 3.0, "react_min_s": 1.0, "react_max_s": 3.0, "muster_pace_x": 4.0, "stay_missing": 3.0,
          "all_clear_after_s": 0.0}
#: a person inside a muster point reaches the engine's count this late at most: a UWB slice, the tracker (which
#: gates a few fixes of a runner who stops), a fence's min_dwell_s (2 s), a tick (measured on an idle machine:
#: 3.5 s median, 5.6 s at most); with slack for a busy one, seconds
LATE_S = 8.0
#: the junctions of the demo plant's roads that get a muster point on the test site: (x, y) centre, half side, m
JUNCTIONS = {"Z-MP3": (125, 111, 9), "Z-MP4": (215, 111, 9), "Z-MP5": (161, 140, 9), "Z-MP6": (161, 30, 9),
             "Z-MP7": (75, 190, 8), "Z-MP8": (215, 190, 8), "Z-MP9": (100, 9, 8)}


def _poly(site, zid: str) -> np.ndarray:
    return np.asarray(next(z.polygon for z in site.zones if z.id == zid), dtype=float)


# --- the model on the demo plant as shipped ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def drill(demo_site):
    return PlantModel(demo_site, seed=1, scenario="muster_drill")


def test_the_control_room_declares_at_declare_s_and_sounds_the_all_clear_later(drill):
    cmds = [(c.t_s, c.op, c.user, dict(c.fields), c.id) for c in drill.console_commands]
    assert cmds == [(60.0, "muster_declare", "sup1", {"area": "all"}, "sim-cr-001-muster_declare"),
                    (660.0, "muster_end", "sup1", {}, "sim-cr-002-muster_end")]
    assert drill.permit_commands == []  # nothing goes through the permit office
    assert drill.milestones["muster_drill.declare_s"] == 60.0 and drill.milestones["muster_drill.all_clear_s"] == 660.0


def test_everyone_but_the_missing_walks_to_the_nearest_muster_point_after_a_reaction_delay(drill, demo_site):
    d = drill.drill
    people = [p.id for p in demo_site.people]
    assert len(d.missing) == 3 and set(d.arrive_s) == set(people) - set(d.missing)
    arrive = np.array([d.arrive_s[p] for p in people if p in d.arrive_s])
    # nobody is quicker than the declaration plus the shortest reaction; everyone is in well before the all clear
    assert arrive.min() >= 60.0 + 5.0 - 1e-9 and arrive.max() < 660.0
    assert drill.milestones["muster_drill.all_in_s"] == arrive.max()
    polys = {zid: _poly(demo_site, zid) for zid in ("Z-MP1", "Z-MP2")}
    closed = [np.asarray(z.polygon, dtype=float) for z in demo_site.zones if z.kind in AVOID_KINDS]
    idx = [people.index(p) for p in d.arrive_s]
    # at their arrival time (plus a step) each is inside their point, and stays there until the all clear
    for t_off in (0.05, 30.0, 200.0):
        for i in idx:
            pid = people[i]
            t = d.arrive_s[pid] + t_off
            if t >= 660.0:
                continue
            xy = drill.truth(t)[i:i + 1, :2]
            assert points_in_polygon(xy, polys[d.point[pid]])[0], (pid, t)
    # on the way, nobody enters a restricted, confined-space or hazardous zone
    for t in np.arange(60.0, arrive.max() + 1.0, 1.0):
        xy = drill.truth(t)[idx, :2]
        for poly in closed:
            assert not points_in_polygon(xy, poly).any(), t
    # both muster points are used: each person goes to the one nearer by the walkways
    assert set(d.point.values()) == {"Z-MP1", "Z-MP2"}


def test_after_the_all_clear_everyone_goes_back_to_work(drill, demo_site):
    """All clear at 660 s; each person sets off again within 5-60 s: four minutes later most are back at work."""
    polys = [_poly(demo_site, zid) for zid in ("Z-MP1", "Z-MP2")]

    def at_points(t):
        xy = drill.truth(t)[:, :2]
        return sum(int(points_in_polygon(xy, p).sum()) for p in polys)

    assert at_points(659.0) >= 197
    assert at_points(660.0 + 60.0 + 180.0) < 40


def test_the_missing_stay_at_their_stations_one_in_a_building_and_never_reach_a_muster_point(drill, demo_site):
    d = drill.drill
    people = [p.id for p in demo_site.people]
    idx = [people.index(p) for p in d.missing]
    polys = [_poly(demo_site, zid) for zid in ("Z-MP1", "Z-MP2")]
    ts = np.arange(60.0, 660.0, 1.0)
    track = np.stack([drill.truth(t)[idx, :2] for t in ts])  # [T, 3, 2]
    for poly in polys:
        assert not points_in_polygon(track.reshape(-1, 2), poly).any()
    buildings = [np.asarray(s.polygon, dtype=float) for s in demo_site.floor_plan.structures if s.kind == "building"]
    first = track[-1, 0:1]  # where the first of them is at the end: at work in a building
    assert any(points_in_polygon(first, b)[0] for b in buildings)
    # they keep working (short moves between pauses), they do not stand still
    moved = np.hypot(*np.diff(track, axis=0).transpose(2, 0, 1))
    assert (moved.sum(axis=0) > 20.0).all()


# --- through the pipeline --------------------------------------------------------------------------------------


def _junction_site(path) -> None:
    site = load_site(DEMO_SITE)
    extra = [Zone(id=zid, name={"en": f"Muster point {zid[-1]}", "zh-CN": f"集合点 {zid[-1]}"}, kind="muster_point",
                  polygon=[(x - h, y - h), (x + h, y - h), (x + h, y + h), (x - h, y + h)])
             for zid, (x, y, h) in JUNCTIONS.items()]
    write_site(site.model_copy(update={"zones": site.zones + extra}), path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("muster_drill")
    site_file = tmp / "site-junction-muster-points.yaml"
    _junction_site(site_file)
    model = PlantModel(load_site(site_file), seed=1, scenario="muster_drill", timing=TIMING)
    run_s = model.milestones["muster_drill.all_in_s"] + LATE_S + 1.0
    assert run_s < 50.0  # the test stays short
    run = play(tmp / "out", site_file, "muster_drill", TIMING, run_s, watch=[TOPIC_MUSTER])
    run["model"] = model
    return run


@pytest.mark.slow
def test_the_supervisor_logs_in_and_declares_the_emergency_through_the_engines_gate(run):
    j = run["journal"]
    logins = [r for r in j if r["event"] == "login" and r["actor"] == "sup1"]
    declared = [r for r in j if r["event"] == "muster_declare"]
    assert len(logins) == 1 and logins[0]["detail"]["console"] == "simulator control room"
    assert len(declared) == 1, [r for r in j if r["alarm_id"] == "muster"]
    d = declared[0]
    assert (d["actor"], d["alarm_id"], d["state"], d["detail"]["area"]) == ("sup1", "muster", "active", "all")
    # at declare_s, after the login (an argon2 check on a busy machine): within 3 x the 2 s it takes when idle
    assert logins[0]["t"] <= d["t"] and 3.0 <= d["t"] <= 3.0 + 6.0
    assert "control room: muster_declare by sup1: ok" in run["sim_log"]
    assert run["scenario"]["drill"]["missing"] == list(run["model"].drill.missing)


@pytest.mark.slow
def test_the_engine_counts_each_person_at_a_muster_point_as_they_arrive(run):
    """Everyone the model has at a muster point LATE_S ago is mustered; nobody is mustered whom the model has not
    had inside a muster point within the last LATE_S."""
    model, drill = run["model"], run["model"].drill
    statuses = [m for m in run["published"] if m.get("active")]
    assert len(statuses) >= 10, run["published"][:3]
    assert all(s["declared_by"] == "sup1" for s in statuses)
    people = [p["id"] for p in run["site"]["people"]]
    polys = [np.asarray(z["polygon"], dtype=float) for z in run["site"]["zones"] if z["kind"] == "muster_point"]
    for s in statuses:
        t = s["engine_ts_s"] - run["start_epoch"]
        mustered = {p for mp in s["muster_points"] for p in mp["people"]}
        due = {p for p, t_in in drill.arrive_s.items() if t_in <= t - LATE_S}
        assert due <= mustered, (t, sorted(due - mustered))
        lately = np.zeros(len(people), dtype=bool)
        for tt in np.arange(max(t - LATE_S, 0.0), t + 0.25, 0.25):
            xy = model.truth(tt)[:, :2]
            for poly in polys:
                lately |= points_in_polygon(xy, poly)
        assert mustered <= {p for p, hit in zip(people, lately) if hit}, t
        assert s["counts"]["mustered"] + s["counts"]["missing"] == s["counts"]["roster"]


@pytest.mark.slow
def test_at_the_end_exactly_the_chosen_few_are_missing_with_their_last_positions(run):
    drill = run["model"].drill
    # the last status while the simulator still ran (the demo stops it first, then the adapters, the engine last)
    last = [m for m in run["published"] if m.get("active") and m["engine_ts_s"] - run["start_epoch"] < run["run_s"]][-1]
    assert last["counts"]["roster"] == 200 and last["counts"]["missing"] == 3
    assert [m["person"] for m in last["missing"]] == list(drill.missing)
    t = last["engine_ts_s"] - run["start_epoch"]
    truth = run["model"].truth(t)
    people = [p["id"] for p in run["site"]["people"]]
    for m in last["missing"]:
        assert m["fix_age_s"] is not None and m["fix_age_s"] < 3.0  # still located: missing, not lost
        i = people.index(m["person"])
        assert math.dist(m["position_m"][:2], truth[i, :2]) < 2.0  # where the model has them
    assert last["counts"]["mustered"] == 197
    where = {p for mp in last["muster_points"] for p in mp["people"]}
    for pid, zid in drill.point.items():
        assert pid in next(mp["people"] for mp in last["muster_points"] if mp["zone"] == zid), (pid, zid)
    assert where >= set(drill.point)
