"""The plant simulator's model: people, ranges, gas, vibration, cameras (pure functions, no I/O)."""

from __future__ import annotations

import base64
import itertools
import json
import logging
import math
import re

import numpy as np
import pytest

from config.schema import Zone
from ingest.simulator import (
    SCENARIO_PARTS,
    SCENARIOS,
    WALK_SPEED_M_S,
    PermitCommand,
    PermitDesk,
    PlantModel,
    build_network,
    command_payload,
    gaussian_plume_kg_m3,
    parse_scenario,
    ranges_payloads,
    synthesize_detections,
    synthesize_ranges,
    truth_payload,
    waveform_payload,
)
from ingest.simulator.gas import (
    STATUS_BAD_SENSOR_FAILURE,
    STATUS_GOOD,
    STATUS_UNCERTAIN_EU_EXCEEDED,
    STATUS_UNCERTAIN_SENSOR_CALIBRATION,
)
from ingest.simulator.layout import AVOID_KINDS, near_polygons
from ingest.simulator.stories import STORIES
from ingest.simulator.stories.stage import JSA_BY_TYPE
from ingest.simulator.vibration import FS_HZ, N_SAMPLES, NOISE_ACC_M_S2, bearing_defect_frequencies
from ingest.tracker import TagTracker
from kernels.geofence import distance_to_edges, points_in_polygon


def _closed_zones(site) -> list[np.ndarray]:
    return [np.asarray(z.polygon, dtype=float) for z in site.zones if z.kind in AVOID_KINDS]


def _zone(site, zid: str) -> np.ndarray:
    return np.asarray(next(z.polygon for z in site.zones if z.id == zid), dtype=float)


def _track(model: PlantModel, t0: float, t1: float, step: float) -> tuple[np.ndarray, np.ndarray]:
    ts = np.arange(t0, t1, step)
    return ts, np.stack([model.truth(t) for t in ts])


@pytest.fixture(scope="module")
def normal_track(demo_site):
    """30 minutes of the normal day at 1 s."""
    model = PlantModel(demo_site, seed=7)
    return _track(model, 0.0, 1800.0, 1.0)


# --- people --------------------------------------------------------------------------------------------------


def test_truth_is_a_pure_function_of_seed_and_time(demo_site):
    a = PlantModel(demo_site, seed=1)
    b = PlantModel(demo_site, seed=1)
    c = PlantModel(demo_site, seed=2)
    times = [0.0, 0.5, 37.25, 600.0, 2400.0, 5000.0]
    forward = [a.truth(t) for t in times]
    backward = [b.truth(t) for t in reversed(times)][::-1]  # asked in another order: same answer
    for fa, fb in zip(forward, backward):
        np.testing.assert_array_equal(fa, fb)
    assert not np.allclose(forward[3], c.truth(600.0))


def test_truth_gives_every_person_in_site_order_at_tag_height(demo_site):
    t = PlantModel(demo_site, seed=1).truth(12.0)
    assert t.shape == (len(demo_site.people), 3) and t.dtype == np.float64
    assert np.all(t[:, 2] == demo_site.uwb.tag_height_m)


def test_walking_speed_stays_within_bounds(normal_track):
    _, x = normal_track
    speed = np.hypot(*np.diff(x[:, :, :2], axis=0).transpose(2, 0, 1))  # m/s over 1 s steps
    lo, hi = WALK_SPEED_M_S
    assert speed.max() <= hi + 1e-9
    walking = speed[speed > 0.85]  # the short moves at work go at 0.5-0.8 m/s
    assert lo <= np.median(walking) <= hi
    # most samples fully inside a straight leg move at the person's leg speed, 1.0-1.5 m/s
    assert np.mean(walking >= lo - 1e-9) > 0.9
    assert 0.15 < np.mean(speed > 0.85) < 0.6  # people walk between stations ...
    assert 0.1 < np.mean((speed > 0.05) & (speed < 0.85)) < 0.5  # ... and move about at work


def test_everyone_stays_inside_the_extent(normal_track, demo_site):
    _, x = normal_track
    x0, y0, x1, y1 = demo_site.floor_plan.extent_m
    assert x[:, :, 0].min() >= x0 and x[:, :, 0].max() <= x1
    assert x[:, :, 1].min() >= y0 and x[:, :, 1].max() <= y1


def test_nobody_enters_restricted_confined_or_hazardous_zones_in_normal(normal_track, demo_site):
    assert {"restricted", "confined_space", "hazardous"} <= set(AVOID_KINDS)
    _, x = normal_track
    assert not near_polygons(x[:, :, :2].reshape(-1, 2), _closed_zones(demo_site), 0.0).any()


def test_people_spread_over_the_plant(normal_track, demo_site):
    _, x = normal_track
    for zid in ("Z-TF", "Z-U200", "Z-U100"):
        inside = points_in_polygon(x[-1, :, :2], _zone(demo_site, zid))
        assert inside.sum() >= 5, zid


def test_every_walkway_and_station_keeps_clear_of_closed_zones(demo_site):
    net = build_network(demo_site)
    assert net.kind == "demo"
    pts = net.sample_walkable()
    assert not near_polygons(pts, _closed_zones(demo_site), 1.0).any()


def test_a_site_whose_zones_block_the_drawn_walkways_gets_a_grid_that_avoids_them(demo_site):
    block = Zone(
        id="Z-NEW",
        name={"en": "Closed road", "zh-CN": "封闭道路"},
        kind="restricted",
        polygon=[(150, 90), (175, 90), (175, 125), (150, 125)],
    )
    site = demo_site.model_copy(update={"zones": [*demo_site.zones, block]})
    model = PlantModel(site, seed=3)
    assert model.network.kind == "grid"
    _, x = _track(model, 0.0, 600.0, 2.0)
    assert not near_polygons(x[:, :, :2].reshape(-1, 2), _closed_zones(site), 0.0).any()


def test_restricted_entry_worker_is_inside_zsub_at_the_scripted_time(demo_site):
    model = PlantModel(
        demo_site, seed=1, scenario="restricted_entry", timing={"entry_start_s": 2.0, "dwell_s": 20.0}
    )
    i = [p.id for p in demo_site.people].index("P0050")
    assert demo_site.people[i].tag == "T0050"
    ms = model.milestones
    enter, leave = ms["restricted_entry.enter_s"], ms["restricted_entry.leave_s"]
    # 4 m from the road (x = 161) to the fence (x = 157) at 1.0-1.5 m/s
    assert 2.0 + 4.0 / 1.5 - 0.05 <= enter <= 2.0 + 4.0 / 1.0 + 0.05
    assert leave - enter >= 20.0
    zsub = _zone(demo_site, "Z-SUB")
    for t, want in (
        (enter - 0.5, False),
        (enter + 0.5, True),
        ((enter + leave) / 2, True),
        (leave - 0.5, True),
        (leave + 0.5, False),
    ):
        assert points_in_polygon(model.truth(t)[i : i + 1, :2], zsub)[0] == want, t
    # nobody else goes in
    _, x = _track(model, 0.0, 120.0, 1.0)
    others = np.delete(x[:, :, :2], i, axis=1).reshape(-1, 2)
    assert not points_in_polygon(others, zsub).any()


def test_restricted_entry_starts_about_ten_seconds_after_start_by_default(demo_site):
    ms = PlantModel(demo_site, seed=1, scenario="restricted_entry").milestones
    assert 10.0 < ms["restricted_entry.enter_s"] < 15.0
    assert ms["restricted_entry.leave_s"] - ms["restricted_entry.enter_s"] >= 20.0


#: the permit office at test pace: seconds between request, gas test, approval and activation
FAST_OFFICE = {"gas_test_after_s": 2.0, "approve_after_s": 2.0, "activate_after_s": 2.0, "enter_after_s": 3.0}


def _outside_m(xy: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Distance [N] of points outside ``poly`` to it (0 inside)."""
    return np.where(points_in_polygon(xy, poly), 0.0, distance_to_edges(xy, poly))


def _longest_still_s(track: np.ndarray, ts: np.ndarray, radius_m: float = 1.0) -> float:
    """Longest time a track [T, 2] stays within ``radius_m`` of where such a stay began (the tracker's test)."""
    longest, k0 = 0.0, 0
    for k in range(1, len(ts)):
        if np.hypot(*(track[k] - track[k0])) > radius_m:
            longest, k0 = max(longest, ts[k] - ts[k0]), k
    return max(longest, ts[-1] - ts[k0])


def test_watcher_walks_about_60_m_away_from_the_confined_space_and_comes_back(demo_site):
    model = PlantModel(
        demo_site,
        seed=1,
        scenario="watcher_walkaway",
        timing={**FAST_OFFICE, "walkaway_request_s": 2.0, "walkaway_start_s": 20.0, "away_s": 300.0},
    )
    ids = [p.id for p in demo_site.people]
    w, e = ids.index("P0186"), ids.index("P0185")
    assert demo_site.people[w].role == "watcher"
    ms = model.milestones
    v205 = _zone(demo_site, "Z-V205")
    assert ms["watcher_walkaway.activate_s"] == 8.0  # request 2 + gas test 2 + approval 2 + activation 2
    assert ms["watcher_walkaway.leave_s"] == 20.0
    # at the manhole until he leaves: outside, close enough for the permit (<= 50 m), moving now and then
    ts = np.arange(0.0, 20.0, 0.5)
    at_post = np.array([model.truth(t)[w, :2] for t in ts])
    assert np.all((_outside_m(at_post, v205) >= 1.5) & (_outside_m(at_post, v205) <= 8.0))
    far = model.truth(ms["watcher_walkaway.far_s"] + 1.0)[w, :2]
    assert 50.0 <= np.hypot(*(far - at_post[0])) <= 75.0
    # he passes the permit's 50 m at the milestone the tests use to time the alarm
    limit = demo_site.permit_settings.watcher_max_distance_m
    t_beyond = ms["watcher_walkaway.beyond_limit_s"]
    for t, beyond in ((t_beyond - 0.1, False), (t_beyond + 0.1, True)):
        assert (_outside_m(model.truth(t)[w : w + 1, :2], v205)[0] > limit) == beyond
    assert ms["watcher_walkaway.back_s"] == pytest.approx(20.0 + 300.0, abs=1e-6)
    back = model.truth(ms["watcher_walkaway.back_s"] + 1.0)[w : w + 1, :2]
    assert _outside_m(back, v205)[0] <= 8.0
    # the entrant goes in only after CS-1 is active, and is inside the whole time the watcher is away
    enter = ms["watcher_walkaway.enter_s"]
    assert 8.0 + 3.0 < enter < 8.0 + 3.0 + 10.0
    for t in np.arange(0.0, ms["watcher_walkaway.back_s"], 5.0):
        assert points_in_polygon(model.truth(t)[e : e + 1, :2], v205)[0] == (t > enter)


def test_confined_space_permit_is_issued_before_the_entrant_goes_in(demo_site):
    timing = {**FAST_OFFICE, "walkaway_request_s": 2.0, "walkaway_start_s": 20.0, "away_s": 300.0}
    model = PlantModel(demo_site, seed=1, scenario="watcher_walkaway", timing=timing)
    cmds = [(c.t_s, c.op, c.user, c.permit, c.expect) for c in model.permit_commands]
    assert cmds == [
        (2.0, "permit_request", "op1", "CS-1", "ok"),
        (4.0, "permit_gas_test", "op1", "CS-1", "ok"),
        (6.0, "permit_approve", "sup1", "CS-1", "ok"),
        (8.0, "permit_signin", "P0186", "CS-1", "ok"),  # the watcher signs in at the manhole on his phone
        (8.0, "permit_activate", "sup1", "CS-1", "ok"),
        (model.milestones["watcher_walkaway.entrant_out_s"] + 10.0, "permit_close", "sup1", "CS-1", "ok"),
    ]
    req = model.permit_commands[0]
    assert req.id == "sim-001-CS-1-request"
    sent = json.loads(command_payload(req, start_epoch=1_800_000_000.0))
    assert sent == {
        "id": "sim-001-CS-1-request",
        "op": "permit_request",
        "user": "op1",
        "permit": "CS-1",
        "type": "confined_space",
        "zone": "Z-V205",
        "workers": ["T0185"],
        "watcher": "T0186",
        "description": "Internal inspection of vessel V-205",
        "valid_from_s": 1_800_000_000.0 + 2.0 - 60.0,  # from a minute before the request ...
        "valid_to_s": 1_800_000_000.0 + 2.0 - 60.0 + 8 * 3600.0,  # ... for a shift of 8 h
        "jsa": {**JSA_BY_TYPE["confined_space"], "prepared_by": "op1", "reviewed_by": "sup1"},  # every entry
    }
    assert model.permit_commands[3].by_pin  # the field worker logs in with a PIN
    gas = json.loads(command_payload(model.permit_commands[1], 0.0))
    assert gas["values"]["O2"] == 20.8 and gas["values"]["LEL"] == 0.0  # passes: LEL <= 10 %, O2 19.5-23.5 %


def test_still_watcher_stands_stock_still_then_moves_and_the_supervisor_resumes(demo_site):
    site = demo_site.model_copy(
        update={"permit_settings": demo_site.permit_settings.model_copy(update={"watcher_max_stationary_s": 10.0})}
    )
    timing = {**FAST_OFFICE, "walkaway_request_s": 2.0, "still_start_s": 14.0, "watcher_still_s": 20.0,
              "resume_after_s": 5.0, "walkaway_start_s": 30.0, "pace_pause_s": 5.0}
    model = PlantModel(site, seed=1, scenario="watcher_walkaway", timing=timing)
    w = [p.id for p in site.people].index("P0186")
    ms = model.milestones
    still_from, still_until = ms["watcher_walkaway.still_from_s"], ms["watcher_walkaway.still_until_s"]
    # at still_start_s, but not before the entrant is in (activation 8 s + 3 s + 5 s): 16 s, he makes a last
    # move (2-5.7 m at 0.5-0.8 m/s) and stops
    assert 16.0 + 2.0 / 0.8 <= still_from <= 16.0 + 4.0 * math.sqrt(2.0) / 0.5
    assert still_until == pytest.approx(still_from + 20.0)
    assert np.hypot(*(model.truth(16.0)[w, :2] - model.truth(still_from)[w, :2])) >= 2.0 - 1e-9
    stand = model.truth(still_from)[w]
    for t in np.linspace(still_from, still_until, 9):
        np.testing.assert_array_equal(model.truth(t)[w], stand)
    ts = np.arange(0.0, still_from, 0.25)  # before: never still for the threshold
    track = np.array([model.truth(t)[w, :2] for t in ts])
    assert _longest_still_s(track, ts) < 10.0
    assert ms["watcher_walkaway.resume_s"] == pytest.approx(still_until + 5.0)
    assert ms["watcher_walkaway.leave_s"] == pytest.approx(still_until + 5.0 + 1.0)  # after the resume
    ops = [(c.op, c.t_s) for c in model.permit_commands if c.op == "permit_resume"]
    assert ops == [("permit_resume", ms["watcher_walkaway.resume_s"])]
    # with the site's 300 s limit, 20 s of standing still suspends nothing: no resume scripted
    calm = PlantModel(demo_site, seed=1, scenario="watcher_walkaway", timing=timing)
    assert "permit_resume" not in [c.op for c in calm.permit_commands]


def test_hot_work_crew_goes_in_only_after_hw1_is_active_and_nobody_else_enters(demo_site):
    timing = {**FAST_OFFICE, "hot_work_request_s": 3.0}
    model = PlantModel(demo_site, seed=1, scenario="hot_work", timing=timing)
    ids = [p.id for p in demo_site.people]
    crew, w = [ids.index("P0101"), ids.index("P0102")], ids.index("P0187")
    ms = model.milestones
    # activation waits for the watcher at the work (the engine refuses it otherwise)
    assert ms["hot_work.activate_s"] == max(3.0 + 6.0, ms["hot_work.watcher_at_post_s"] + 3.0)
    cmds = [(c.op, c.user, c.expect) for c in model.permit_commands]
    assert cmds == [("permit_request", "op1", "ok"), ("permit_gas_test", "op1", "ok"),
                    ("permit_approve", "sup1", "ok"), ("permit_signin", "P0187", "ok"),
                    ("permit_activate", "sup1", "ok")]
    assert "jsa" not in model.permit_commands[0].fields  # grade 2 hot work needs no JSA
    req = model.permit_commands[0].fields
    assert (req["type"], req["grade"], req["zone"], req["workers"], req["watcher"]) == (
        "hot_work", "2", "Z-HW1", ["T0101", "T0102"], "T0187")
    hw1 = _zone(demo_site, "Z-HW1")
    ts, x = _track(model, 0.0, 900.0, 0.5)
    enter = ms["hot_work.enter_s"]
    assert ms["hot_work.activate_s"] + 3.0 < enter < ms["hot_work.activate_s"] + 3.0 + 10.0
    for i in crew:
        inside = points_in_polygon(x[:, i, :2], hw1)
        assert not inside[ts < ms["hot_work.activate_s"] + 3.0].any()
        # in to work, 2.5 m or more from the edges once there (the fences' band is 0.5 m)
        settled = ts > enter + 10.0
        assert inside[settled].all()
        assert distance_to_edges(x[settled, i, :2], hw1).min() >= 2.5 - 1e-9
        assert _longest_still_s(x[:, i, :2], ts) < 60.0  # never long enough for man-down
    # the watcher stands 1.5-4.5 m outside the east edge (2 m at his post), never still for the 300 s limit
    watch = x[ts > ms["hot_work.watcher_at_post_s"], w, :2]
    assert 1.5 - 1e-9 <= _outside_m(watch, hw1).min() and _outside_m(watch, hw1).max() <= 4.5
    assert _longest_still_s(x[:, w, :2], ts) < 60.0
    others = np.delete(x[:, :, :2], crew, axis=1).reshape(-1, 2)
    assert not points_in_polygon(others, hw1).any()


def test_expired_certificate_welder_waits_outside_and_leaves_after_the_office_cancels(demo_site):
    timing = {**FAST_OFFICE, "expired_request_s": 4.0, "cancel_after_s": 4.0}
    model = PlantModel(demo_site, seed=1, scenario="expired_certificate", timing=timing)
    ids = [p.id for p in demo_site.people]
    welder, w = ids.index("P0042"), ids.index("P0188")
    cmds = [(c.op, c.permit, c.expect) for c in model.permit_commands]
    assert cmds == [("permit_request", "HW-2", "ok"), ("permit_gas_test", "HW-2", "ok"),
                    ("permit_approve", "HW-2", "ok"), ("permit_signin", "HW-2", "ok"),
                    ("permit_activate", "HW-2", "refused"),
                    ("permit_close", "HW-2", "ok")]
    req = model.permit_commands[0].fields
    assert req["workers"] == ["T0042"] and req["watcher"] == "T0188" and "zone" not in req
    poly = np.asarray(req["polygon"], dtype=float)
    ms = model.milestones
    ts, x = _track(model, 0.0, ms["expired_certificate.close_s"] + 10.0, 0.5)
    assert not points_in_polygon(x[:, welder, :2], poly).any()  # he never starts
    waiting = ts >= ms["expired_certificate.activate_s"] - 3.0
    assert _outside_m(x[waiting, w, :2], poly).max() < 10.0  # the watcher is at the work for the activation
    later = model.truth(ms["expired_certificate.close_s"] + 60.0)[welder, :2]
    assert _outside_m(later[None], poly)[0] > 5.0  # gone back to other work


def test_incompatible_jobs_brings_hot_work_and_asks_for_hw3_while_hw1_is_active(demo_site):
    assert parse_scenario("incompatible_jobs") == {"incompatible_jobs", "hot_work"}
    timing = {**FAST_OFFICE, "hot_work_request_s": 3.0, "conflict_request_s": 1.0, "cancel_after_s": 4.0}
    model = PlantModel(demo_site, seed=1, scenario="incompatible_jobs", timing=timing)
    ms = model.milestones
    hw3 = [c for c in model.permit_commands if c.permit == "HW-3"]
    assert [(c.op, c.expect) for c in hw3] == [("permit_request", "ok"), ("permit_gas_test", "ok"),
                                               ("permit_approve", "refused"), ("permit_close", "ok")]
    assert hw3[0].t_s == ms["hot_work.activate_s"] + 5.0  # not before HW-1 is active
    assert hw3[0].fields["jsa"]["reviewed_by"] == "sup1"  # grade 1 hot work: a JSA before approval
    assert hw3[0].fields["zone"] == "Z-HW1" and hw3[0].fields["type"] == "hot_work"
    ids = [c.id for c in model.permit_commands]
    assert len(set(ids)) == len(ids)
    assert [c.t_s for c in model.permit_commands] == sorted(c.t_s for c in model.permit_commands)


def test_demo_is_a_calm_mix_and_permit_stories_are_deterministic(demo_site):
    assert parse_scenario("demo") == {"hot_work", "restricted_entry", "expired_certificate", "bearing_degradation"}
    a = PlantModel(demo_site, seed=3, scenario="demo,watcher_walkaway")
    b = PlantModel(demo_site, seed=3, scenario="demo,watcher_walkaway")
    assert a.permit_commands == b.permit_commands and a.milestones == b.milestones
    times = [0.0, 55.0, 130.0, 1000.0, 4000.0]
    forward = [a.truth(t) for t in times]
    backward = [b.truth(t) for t in reversed(times)][::-1]
    for fa, fb in zip(forward, backward):
        np.testing.assert_array_equal(fa, fb)


@pytest.fixture(scope="module")
def story_site(demo_site):
    """The demo plant with a tenth of its crowd plus everyone a scenario names (a smaller crowd walks faster)."""
    named = set(re.findall(r"P\d{4}", " ".join(SCENARIOS.values())))
    people = [p for k, p in enumerate(demo_site.people) if k % 10 == 0 or p.id in named]
    return demo_site.model_copy(update={"people": people})


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_every_scenario_is_a_pure_function_of_seed_and_time(story_site, scenario, caplog):
    """Built twice, each scenario scripts the same story and gives the same truth, asked in any order."""
    timing = {**FAST_OFFICE, "pace_pause_s": 3.0}
    a = PlantModel(story_site, seed=2, scenario=scenario, timing=timing)
    b = PlantModel(story_site, seed=2, scenario=scenario, timing=timing)
    assert "is not on site" not in caplog.text  # the smaller crowd keeps everyone the stories need
    assert a.permit_commands == b.permit_commands and list(a.milestones) == list(b.milestones)
    np.testing.assert_equal(a.milestones, b.milestones)  # NaN (a crossing that never happens) equals NaN
    assert a.wearable_events(0.0, 600.0) == b.wearable_events(0.0, 600.0)
    times = [0.0, 0.5, 1.25, 2.0, 3.5, 5.0, 8.0, 60.0]
    forward = [a.truth(t) for t in times]
    backward = [b.truth(t) for t in reversed(times)][::-1]
    for fa, fb in zip(forward, backward):
        np.testing.assert_array_equal(fa, fb)


def test_every_scenario_has_a_story_unless_it_changes_only_sensors_or_stands_for_others():
    assert set(STORIES) <= set(SCENARIOS)
    sensors_only = {"normal", "gas_leak", "bearing_degradation", "detector_fault"}
    assert set(SCENARIOS) - set(STORIES) == sensors_only | set(SCENARIO_PARTS) - set(STORIES)


def test_the_trackers_stationary_detector_never_sees_anyone_at_work_still_for_long(demo_site):
    """Fixes (truth + 0.07 m noise per axis, 2 Hz) through the UWB adapter's tracker: normal station work stays
    well under man-down's 60 s, and a crew or watcher moving every pace_pause_s (3 s here) under a permit's
    short test limit of 10 s for a watcher standing still."""
    model = PlantModel(demo_site, seed=1, scenario="hot_work,watcher_walkaway",
                       timing={"pace_pause_s": 3.0, "walkaway_start_s": 900.0})
    ids = [p.id for p in demo_site.people]
    story = [ids.index(p) for p in ("P0101", "P0102", "P0187", "P0186", "P0185")]
    n = len(ids)
    tracker = TagTracker(n, range_sigma_m=0.1, dims=2)
    rng = np.random.default_rng(0)
    longest = np.zeros(n)
    for t in np.arange(0.0, 900.0, 0.5):
        xyz = model.truth(t)
        xyz[:, :2] += rng.normal(0.0, 0.07, (n, 2))
        out = tracker.step(np.arange(n, dtype=np.int32), np.full(n, t), xyz, np.ones(n, bool), np.full(n, 0.1),
                           np.ones(n))
        longest = np.fmax(longest, out.stationary_s)
    assert longest[story].max() < 10.0 - 1.5
    others = np.delete(longest, story)
    assert 15.0 < others.max() < 60.0 - 15.0  # they do pause at work (8-25 s)


def test_man_down_stops_moving_and_the_wearable_reports_a_fall(demo_site):
    model = PlantModel(demo_site, seed=1, scenario="man_down", timing={"fall_s": 5.0})
    i = [p.id for p in demo_site.people].index("P0077")
    before = np.hypot(*(model.truth(4.0)[i, :2] - model.truth(3.0)[i, :2]))
    assert 0.9 <= before <= 1.5  # walking when it happens
    down = model.truth(5.0)[i]
    for t in (5.5, 60.0, 3600.0):
        np.testing.assert_array_equal(model.truth(t)[i], down)
    events = [(e.t_s, e.tag, e.event) for e in model.wearable_events(0.0, 10.0)]
    assert (5.0, "T0077", "fall") in events


def test_wearable_events_split_cleanly_over_half_open_intervals(demo_site):
    a = PlantModel(demo_site, seed=4, scenario="sos", timing={"sos_s": 20.0})
    whole = a.wearable_events(-1.0, 7200.0)
    parts = (
        a.wearable_events(-1.0, 20.0) + a.wearable_events(20.0, 3600.0) + a.wearable_events(3600.0, 7200.0)
    )
    assert whole == parts
    assert whole == PlantModel(demo_site, seed=4, scenario="sos", timing={"sos_s": 20.0}).wearable_events(
        -1.0, 7200.0
    )
    assert [e.event for e in whole if e.tag == "T0033"][:1] == ["sos"]
    assert {e.event for e in whole} <= {"sos", "fall", "battery_low"}
    assert all(x.t_s <= y.t_s for x, y in itertools.pairwise(whole))


def test_unknown_scenario_or_timing_is_refused(demo_site):
    with pytest.raises(ValueError, match="unknown scenario"):
        PlantModel(demo_site, scenario="meteor")
    with pytest.raises(ValueError, match="unknown timing"):
        PlantModel(demo_site, scenario="man_down", timing={"fal_s": 1.0})
    for name in (
        "normal",
        "gas_leak",
        "restricted_entry",
        "watcher_walkaway",
        "bearing_degradation",
        "man_down",
    ):
        assert name in SCENARIOS


# --- UWB ranges -------------------------------------------------------------------------------------------------


def test_range_noise_has_the_configured_mean_and_sigma():
    rng = np.random.default_rng(0)
    anchors = np.array([[0.0, 0.0, 8.0], [50.0, 0.0, 6.0], [0.0, 50.0, 10.0]])
    truth = np.column_stack([rng.uniform(5, 45, 40000), rng.uniform(5, 45, 40000), np.full(40000, 1.2)])
    d = np.linalg.norm(truth[:, None] - anchors[None], axis=2)
    sigma = 0.1
    r = synthesize_ranges(truth, anchors, rng, sigma_m=sigma, max_range_m=200.0, nlos_probability=0.0)
    err = (r - d).ravel()
    n = err.size
    assert abs(err.mean()) < 4 * sigma / math.sqrt(n)
    # std of a sample std is sigma / sqrt(2n); rounding to mm adds 1e-3^2/12 of variance
    assert err.std() == pytest.approx(math.sqrt(sigma**2 + 1e-6 / 12), abs=4 * sigma / math.sqrt(2 * n))
    np.testing.assert_allclose(r * 1000, np.round(r * 1000), atol=1e-6)  # mm resolution


def test_nlos_bias_is_positive_exponential_and_rare():
    rng = np.random.default_rng(1)
    anchors = np.array([[0.0, 0.0, 8.0], [60.0, 0.0, 6.0], [0.0, 60.0, 10.0], [60.0, 60.0, 9.0]])
    truth = np.column_stack([rng.uniform(0, 60, 50000), rng.uniform(0, 60, 50000), np.full(50000, 1.2)])
    d = np.linalg.norm(truth[:, None] - anchors[None], axis=2)
    r = synthesize_ranges(
        truth, anchors, rng, sigma_m=1e-6, max_range_m=500.0, nlos_probability=0.05, nlos_mean_m=0.4
    )
    bias = (r - d).ravel()
    assert bias.min() >= -0.0005 - 1e-5  # only mm rounding (and 1 um of noise) below the truth
    late = bias[bias > 0.002]
    # P(Exp(0.4) <= 2 mm) = 0.5 %, so 5 % * 99.5 % of ranges are visibly late
    assert len(late) / bias.size == pytest.approx(0.05 * math.exp(-0.002 / 0.4), rel=0.05)
    assert (late - 0.002).mean() == pytest.approx(0.4, rel=0.05)  # memoryless: mean excess = mean


def test_ranges_beyond_max_range_are_not_heard_and_left_out_of_the_payload():
    anchors = np.array([[0.0, 0.0, 2.0], [100.0, 0.0, 2.0], [0.0, 10.0, 2.0]])
    truth = np.array([[5.0, 0.0, 1.2], [500.0, 500.0, 1.2]])
    r = synthesize_ranges(truth, anchors, np.random.default_rng(0), sigma_m=0.1, max_range_m=50.0)
    assert np.isnan(r[0, 1]) and np.isfinite(r[0, [0, 2]]).all() and np.isnan(r[1]).all()
    msgs = [
        json.loads(m) for m in ranges_payloads(["T0001", "T0002"], 1763798400.1254, r, ["A01", "A02", "A03"])
    ]
    assert msgs == [[{"tag": "T0001", "ts": 1763798400.125, "ranges": {"A01": r[0, 0], "A03": r[0, 2]}}]]


def test_range_payloads_batch_at_most_fifty_tags(demo_site):
    model = PlantModel(demo_site, seed=1)
    truth = model.truth(3.0)
    anchors = np.array([a.position_m for a in demo_site.anchors])
    r = synthesize_ranges(truth, anchors, np.random.default_rng(2), sigma_m=0.1, max_range_m=160.0)
    msgs = [json.loads(m) for m in ranges_payloads(model.tags, 1000.5, r, [a.id for a in demo_site.anchors])]
    assert [len(m) for m in msgs] == [50, 50, 50, 50]
    item = msgs[1][0]
    assert set(item) == {"tag", "ts", "ranges"} and item["tag"] == "T0051" and item["ts"] == 1000.5
    assert all(isinstance(v, float) and v > 0 for v in item["ranges"].values())
    t = json.loads(truth_payload(model.tags, 1000.5, truth))
    assert t["ts"] == 1000.5 and len(t["tags"]) == 200
    np.testing.assert_allclose(t["tags"]["T0051"], truth[50], atol=5e-4)


# --- gas ---------------------------------------------------------------------------------------------------------


def test_gaussian_plume_matches_a_hand_calculation():
    # x = 100 m, on axis, ground receptor, ground source, Q = 1 kg/s, u = 2 m/s
    sy = math.hypot(1.0, 0.08 * 100 / math.sqrt(1.01))  # 8.0224
    sz = math.hypot(1.0, 0.06 * 100 / math.sqrt(1.15))  # 5.6844
    want = 1.0 / (2 * math.pi * 2.0 * sy * sz) * 2.0  # reflection doubles a ground-level plume
    got = gaussian_plume_kg_m3(np.array([100.0]), np.array([0.0]), np.array([0.0]), 1.0, 2.0, 0.0)[0]
    assert got == pytest.approx(want, rel=1e-12)
    assert gaussian_plume_kg_m3(np.array([-5.0]), np.array([0.0]), np.array([0.0]), 1.0, 2.0, 0.0)[0] == 0.0


def test_background_gas_readings_are_quiet_and_good(demo_site):
    gas = PlantModel(demo_site, seed=1).gas
    dets = demo_site.gas_detectors
    for t in (0.0, 1.0, 250.0):
        r = gas.read(t)
        assert r.values.shape == (len(dets),) and np.all(r.status == STATUS_GOOD)
        for d, v in zip(dets, r.values):
            if d.unit == "%LEL":
                assert 0.0 <= v <= 2.0
            elif d.gas == "O2":
                assert v == pytest.approx(20.9, abs=0.2)
            else:
                assert 0.0 <= v < 1.0


def test_gas_leak_takes_gd07_past_low_then_high_then_over_range(demo_site):
    model = PlantModel(demo_site, seed=1, scenario="gas_leak")
    ids = [d.id for d in demo_site.gas_detectors]
    gd06, gd07, gd08 = (ids.index(k) for k in ("GD06", "GD07", "GD08"))
    d07 = demo_site.gas_detectors[gd07]
    ts = np.arange(0.0, 600.0, 1.0)
    reads = [model.gas.read(t) for t in ts]
    v07 = np.array([r.values[gd07] for r in reads])
    t_low = ts[np.argmax(v07 >= d07.low)]
    t_high = ts[np.argmax(v07 >= d07.high)]
    t_over = ts[np.argmax([r.status[gd07] == STATUS_UNCERTAIN_EU_EXCEEDED for r in reads])]
    assert 30.0 < t_low < t_high < t_over < 600.0
    assert t_high - 30.0 < 240.0  # within the ramp: minutes, not hours
    assert v07[:30].max() <= 2.0
    assert max(r.values[gd08] for r in reads) >= demo_site.gas_detectors[gd08].low  # the plume reaches GD08
    assert max(r.values[gd06] for r in reads) <= 2.0  # upwind stays clean


def test_detector_fault_marks_gd03_bad_and_gd12_uncertain_for_its_duration(demo_site):
    gas = PlantModel(
        demo_site, seed=1, scenario="detector_fault", timing={"fault_start_s": 5.0, "fault_s": 10.0}
    ).gas
    ids = [d.id for d in demo_site.gas_detectors]
    gd03, gd12 = ids.index("GD03"), ids.index("GD12")
    assert gas.read(4.0).status[gd03] == STATUS_GOOD
    r = gas.read(5.0)
    assert (
        r.status[gd03] == STATUS_BAD_SENSOR_FAILURE and r.status[gd12] == STATUS_UNCERTAIN_SENSOR_CALIBRATION
    )
    assert np.count_nonzero(r.status) == 2
    assert gas.read(15.0).status[gd03] == STATUS_GOOD


def test_status_codes_match_the_opc_ua_standard():
    from asyncua import ua

    assert STATUS_BAD_SENSOR_FAILURE == ua.StatusCodes.BadSensorFailure
    assert STATUS_UNCERTAIN_EU_EXCEEDED == ua.StatusCodes.UncertainEngineeringUnitsExceeded
    assert STATUS_UNCERTAIN_SENSOR_CALIBRATION == ua.StatusCodes.UncertainSensorCalibration


# --- vibration -------------------------------------------------------------------------------------------------


def _velocity_rms_mm_s(acc: np.ndarray, fs: float, band=(10.0, 1000.0)) -> float:
    """Integrate in the frequency domain (V = A / j 2 pi f) over the band, Parseval for the RMS."""
    spec = np.fft.rfft(acc.astype(float))
    f = np.fft.rfftfreq(len(acc), 1 / fs)
    keep = (f >= band[0]) & (f <= band[1])
    v = spec[keep] / (2j * np.pi * f[keep])
    return 1e3 * math.sqrt(2 * np.sum(np.abs(v) ** 2)) / len(acc)


def test_healthy_pump_waveform_rms_matches_the_hand_calculation(demo_site):
    bank = PlantModel(demo_site, seed=1).vibration
    i = [p.id for p in demo_site.vibration_points].index("VP01")
    comps = bank.components(i, 0.0)
    f1, v1 = comps[0]
    assert f1 == 24.75  # 1485 rpm
    assert [f for f, _ in comps] == [24.75, 49.5, 74.25]
    overall = bank.rms_velocity_mm_s(i, 0.0)
    assert 1.3 <= overall <= 1.7
    assert overall == pytest.approx(1e3 * v1 * math.sqrt(1 + 0.4**2 + 0.2**2))
    w = bank.waveform(i, 10.0)
    assert w.dtype == np.dtype("<f4") and w.shape == (N_SAMPLES,)
    # a = v * 2 pi f per component, plus the white noise
    a_rms = math.sqrt(sum((v * 2 * math.pi * f) ** 2 for f, v in comps) + NOISE_ACC_M_S2**2)
    assert float(np.sqrt(np.mean(w.astype(float) ** 2))) == pytest.approx(a_rms, rel=0.02)
    assert _velocity_rms_mm_s(w, FS_HZ) == pytest.approx(overall, rel=0.03)


def test_bearing_degradation_raises_vp04_to_zone_d_with_a_bpfo_line(demo_site):
    model = PlantModel(
        demo_site,
        seed=1,
        scenario="bearing_degradation",
        timing={"degradation_start_s": 10.0, "degradation_s": 100.0},
    )
    bank = model.vibration
    i = [p.id for p in demo_site.vibration_points].index("VP04")
    assert bank.rms_velocity_mm_s(i, 0.0) < 2.0
    assert (
        bank.rms_velocity_mm_s(i, 40.0) < bank.rms_velocity_mm_s(i, 80.0) < bank.rms_velocity_mm_s(i, 110.0)
    )
    w = bank.waveform(i, 120.0)
    v = _velocity_rms_mm_s(w, FS_HZ)
    assert v > 4.5  # ISO 20816-3 group 2, rigid: zone D
    assert v == pytest.approx(bank.rms_velocity_mm_s(i, 120.0), rel=0.05)
    spec = np.abs(np.fft.rfft(w.astype(float)))
    f = np.fft.rfftfreq(len(w), 1 / FS_HZ)
    vel = np.where(f > 5, spec / np.maximum(2 * np.pi * f, 1e-9), 0)
    bpfo = bearing_defect_frequencies(24.75)["bpfo"]
    assert bpfo == pytest.approx(4 * 24.75 * (1 - 17.46 / 72.5))
    assert abs(f[np.argmax(vel)] - bpfo) <= 1.0


def test_waveform_payload_carries_little_endian_float32_in_base64():
    w = np.array([0.5, -1.25, 3.0], dtype="<f4")
    msg = json.loads(waveform_payload("VP01", 1763798400.0, w))
    assert msg["point"] == "VP01" and msg["fs_hz"] == 5120.0 and msg["unit"] == "m/s2" and msg["n"] == 3
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(msg["samples"]), dtype="<f4"), w)


# --- cameras ------------------------------------------------------------------------------------------------------


def test_box_bottom_centre_maps_back_through_the_homography_to_the_person(demo_site):
    model = PlantModel(demo_site, seed=1)
    seen = 0
    for t in (5.0, 300.0, 900.0):
        truth = model.truth(t)
        for k, view in enumerate(model.cameras):
            classes, conf, boxes, who = synthesize_detections(
                view, truth[:, :2], {}, np.random.default_rng(k), miss_probability=0.0
            )
            assert len(classes) == int(view.in_view(truth[:, :2]).sum())
            if not len(boxes):
                continue
            feet_px = np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2, boxes[:, 3]])
            # as published: rounded to 0.01 px
            ground = view.to_ground(np.round(feet_px, 2))
            assert np.max(np.hypot(*(ground - truth[who, :2]).T)) < 0.01
            assert np.all(boxes[:, 1] < boxes[:, 3]) and np.all(boxes[:, 0] < boxes[:, 2])
            assert np.all((conf > 0) & (conf < 1))
            seen += len(boxes)
    assert seen > 20


def test_ppe_violation_adds_no_helmet_with_the_persons_box(demo_site):
    model = PlantModel(
        demo_site, seed=1, scenario="ppe_violation", timing={"ppe_start_s": 10.0, "ppe_s": 60.0}
    )
    i = [p.id for p in demo_site.people].index("P0120")
    assert model.ppe_classes(5.0) == {}
    assert model.ppe_classes(20.0)[i] == ("no_helmet",)
    truth = model.truth(20.0)
    classes, _, boxes, who = synthesize_detections(
        model.cameras[0],
        truth[:, :2],
        model.ppe_classes(20.0),
        np.random.default_rng(0),
        miss_probability=0.0,
    )
    k = classes.index("no_helmet")
    assert who[k] == i
    person = [j for j, c in enumerate(classes) if c == "person" and who[j] == i]
    np.testing.assert_array_equal(boxes[k], boxes[person[0]])
    assert "no_vest" in classes


# --- the permit office -------------------------------------------------------------------------------------------


def _desk(cmds, *, token=lambda user, n: f"t-{user}", **kw):
    """A permit desk whose logins the engine answers at once (``token(user, n)`` for the n-th login); the
    commands it publishes and the logins it asks for."""
    sent: list[dict] = []
    logins: list[dict] = []

    def publish(payload: bytes) -> bool:
        doc = json.loads(payload)
        if doc["op"] == "login":  # each person signs at the desk: the engine's answer, with the token
            logins.append(doc)
            reply = {"id": doc["id"], "ok": True, "token": token(doc["user"], len(logins))}
            desk.on_reply(json.dumps(reply).encode())
        else:
            sent.append(doc)
        return True

    desk = PermitDesk(cmds, publish, lambda: 1000.0, **kw)
    return desk, sent, logins


def test_permit_desk_sends_in_order_waits_for_replies_and_resends_what_goes_unanswered(caplog):
    cmds = [
        PermitCommand(1.0, "permit_request", "op1", {"permit": "P1", "valid_from_s": -60.0}, id="a"),
        PermitCommand(2.0, "permit_approve", "sup1", {"permit": "P1"}, expect="refused", id="b"),
        PermitCommand(2.0, "permit_close", "sup1", {"permit": "P1"}, id="c"),
    ]
    desk, sent, logins = _desk(cmds, reply_timeout_s=0.0, attempts=2)
    desk.step(0.9)
    assert sent == [] and desk.next_due_s() == 1.0
    desk.step(1.0)
    assert sent == [{"id": "a", "op": "permit_request", "user": "op1", "token": "t-op1", "permit": "P1",
                     "valid_from_s": 940.0}]
    assert [(d["user"], d["password"]) for d in logins] == [("op1", "demo")]
    assert desk.next_due_s() is None  # waits for the reply before anything else
    desk.step(5.0)  # no reply within the (zero) timeout: the same command again, same id
    assert [m["id"] for m in sent] == ["a", "a"]
    desk.on_reply(b'{"id": "zzz", "ok": true}')  # someone else's command
    desk.on_reply(b"not json")
    desk.on_reply(b'{"id": "a", "ok": true, "permit": "P1", "state": "requested"}')
    with caplog.at_level(logging.INFO, logger="ingest.simulator.permits"):
        desk.step(5.0)
        assert [m["id"] for m in sent] == ["a", "a", "b"]
        desk.step(9.0, final=True)  # stopping: no resend, nothing new
        assert [m["id"] for m in sent] == ["a", "a", "b"] and desk.in_flight
        desk.on_reply(b'{"id": "b", "ok": false, "reason": "incompatible with permit P0"}')
        desk.step(9.0, final=True)  # ... but a reply that came is taken in
        assert not desk.in_flight
        desk.step(5.0)
        desk.step(5.0)
        desk.step(5.0)  # c: sent twice, never answered, given up
    assert [m["id"] for m in sent] == ["a", "a", "b", "c", "c"]
    refusal = [r for r in caplog.records if "refused" in r.getMessage()]
    assert refusal[0].levelno == logging.INFO  # the story expects it
    assert refusal[0].getMessage() == "permit office: P1 permit_approve by sup1 refused: incompatible with permit P0"
    assert any(r.levelno == logging.ERROR and "no reply to c" in r.getMessage() for r in caplog.records)
    assert desk.summary() == {"sent": 3, "ok": 1, "refused": 1, "unanswered": 1, "unexpected": 0}
    assert [d["user"] for d in logins] == ["op1", "sup1"]  # once per person
    assert all(m["token"] == f"t-{m['user']}" for m in sent)


def test_permit_desk_logs_in_again_when_the_engine_no_longer_takes_the_token():
    cmds = [PermitCommand(1.0, "permit_request", "op1", {"permit": "P1"}, id="a")]
    desk, sent, logins = _desk(cmds, reply_timeout_s=60.0, attempts=3, token=lambda user, n: f"t{n}")
    desk.step(1.0)
    desk.on_reply(b'{"id": "a", "ok": false, "reason": "token expired: log in again"}')
    desk.step(1.1)  # the engine refused the token: a new login, the same command again with the new token
    desk.on_reply(b'{"id": "a", "ok": true, "permit": "P1", "state": "requested"}')
    desk.step(1.2)
    assert [d["user"] for d in logins] == ["op1", "op1"]
    assert [(m["id"], m["token"]) for m in sent] == [("a", "t1"), ("a", "t2")]
    assert desk.summary() == {"sent": 1, "ok": 1, "refused": 0, "unanswered": 0, "unexpected": 0}
