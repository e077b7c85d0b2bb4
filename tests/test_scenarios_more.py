"""The permit and people-safety checks that tests/test_scenarios.py leaves out, through the real pipeline:
`watchfloor demo --headless` runs the simulator (UWB over MQTT, the permit office over MQTT), the adapters and
the engine; the journal must show each check's alarm at the time the story says.

One run plays worker_outside, unauthorized_entry, permit_expiry, gas_test_stale and lone_worker together (their
people and work places are apart), on a demo-site copy with short limits: a worker may be outside his permit's
zone 8 s (not 120 s), a gas test is valid 30 s (not 2 h), one person alone in a hazardous or confined-space zone
is a lone worker after 10 s (not 120 s). Times are seconds of simulation time (journal engine time minus the
run's start epoch, which the simulator publishes on `<prefix>/sim/scenario`).

Tolerances: a position reaches the engine within a UWB slice (0.25 s) plus the tracker's filtering, and the
engine decides at its ticks (0.1 s); geofences confirm an entry after `fences.min_dwell_s` (2 s) of dwell.
"""

from __future__ import annotations

import pytest

from alarms.journal import verify_journal
from config import DEMO_SITE, load_site
from console.cli.launch import write_site
from ingest.simulator import PlantModel
from tests.scenario_run import permit_rows, play, raised

pytestmark = pytest.mark.slow

GRACE_S = 8.0  # permit_settings.worker_outside_grace_s
GAS_VALID_S = 30.0  # permit_settings.gas_test_validity_s
LONE_S = 10.0  # people_safety.lone_worker_s
#: a crossing of the true track reaches the engine's decision this late at most: a UWB slice, the tracker,
#: a tick, with slack for a busy machine (measured on an idle one: 0.3-0.9 s), seconds
LATE_S = 2.0
#: an engine decision on its own clock (permit expiry, gas test age) comes at the first tick past the time;
#: slack for a tick that comes late on a busy machine, seconds
TICK_SLACK_S = 0.3
SCENARIO = "worker_outside,unauthorized_entry,permit_expiry,gas_test_stale,lone_worker"
TIMING = {
    # the permit office at test pace; crews go in a second after activation, well within the 8 s grace
    "gas_test_after_s": 2.0, "approve_after_s": 2.0, "activate_after_s": 2.0, "enter_after_s": 1.0,
    "pace_pause_s": 3.0,
    "outside_request_s": 3.0, "stray_after_s": 10.0,  # WH-1: P0029 steps out 10 s after the crew is in
    "intrude_request_s": 4.0, "intrude_after_s": 6.0, "intrude_stay_s": 12.0,  # WH-2: P0143 walks in
    "expiry_request_s": 5.0, "expiry_work_s": 15.0, "exit_after_s": 10.0,  # WH-3 ends 15 s after activation
    "stale_request_s": 6.0,  # HW-5, tested once
    "lone_start_s": 5.0, "lone_stay_s": 15.0,  # P0097 in tank T-3
}


def _short_limit_site(path) -> None:
    site = load_site(DEMO_SITE)
    permits = site.permit_settings.model_copy(
        update={"worker_outside_grace_s": GRACE_S, "gas_test_validity_s": GAS_VALID_S})
    people = site.people_safety.model_copy(update={"lone_worker_s": LONE_S})
    write_site(site.model_copy(update={"permit_settings": permits, "people_safety": people}), path)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scenarios_more")
    site_file = tmp / "site-short-limits.yaml"
    _short_limit_site(site_file)
    model = PlantModel(load_site(site_file), seed=1, scenario=SCENARIO, timing=TIMING)
    ms = model.milestones
    run_s = max(ms["permit_expiry.all_out_s"], ms["unauthorized_entry.leave_s"], ms["gas_test_stale.stale_s"],
                ms["lone_worker.leave_s"], ms["worker_outside.out_s"] + GRACE_S) + 5.0
    run = play(tmp / "out", site_file, SCENARIO, TIMING, run_s)
    run["model"] = model
    return run




def _within(t: float, lo: float, hi: float) -> bool:
    if not lo <= t <= hi:
        print(f"at {t:.3f} s, expected within [{lo:.3f}, {hi:.3f}] s")
    return lo <= t <= hi


def _states(journal, permit):
    return [(r["event"], r["actor"], r["state"]) for r in permit_rows(journal, permit)]


def test_the_simulator_played_the_scripted_milestones_and_the_office_got_every_answer_it_expected(run):
    assert run["ms"] == pytest.approx(run["model"].milestones, abs=1e-3)
    assert "sending it again" not in run["sim_log"], "a permit command went unanswered"
    assert "'unexpected': 0" in run["sim_log"], run["sim_log"][-2000:]
    assert verify_journal(run["out"] / "journal.sqlite").ok
    # the crews are in within the grace: the stories are told as scripted
    for story in ("worker_outside", "unauthorized_entry", "permit_expiry", "gas_test_stale"):
        assert run["ms"][f"{story}.crew_in_s"] - run["ms"][f"{story}.activate_s"] < GRACE_S - 2.0, story


def test_worker_outside_the_permit_zone_longer_than_the_grace_is_alarmed_and_his_mate_inside_is_not(run):
    ms, journal = run["ms"], run["journal"]
    assert _states(journal, "WH-1") == [
        ("permit_request", "op1", "requested"), ("permit_approve", "sup1", "approved"),
        ("permit_activate", "sup1", "active")]  # the check raises an alarm; it does not suspend the permit
    alarm = raised(journal, "permit.worker_outside:WH-1:T0029")
    assert len(alarm) == 1 and alarm[0]["detail"]["priority"] == "medium"
    # he crosses the edge at out_s; the engine sees him outside a fix later and counts 8 s from that tick
    assert _within(alarm[0]["t"], ms["worker_outside.out_s"] + GRACE_S, ms["worker_outside.out_s"] + GRACE_S + LATE_S)
    assert raised(journal, "permit.worker_outside:WH-1:T0005") == []  # his mate stays in


def test_a_person_not_on_the_permit_walking_into_its_zone_is_alarmed_at_once(run):
    ms, journal = run["ms"], run["journal"]
    assert _states(journal, "WH-2")[-1] == ("permit_activate", "sup1", "active")
    alarm = raised(journal, "permit.unauthorized:WH-2:T0143")
    assert len(alarm) == 1 and alarm[0]["detail"]["priority"] == "high"
    assert _within(alarm[0]["t"], ms["unauthorized_entry.enter_s"] - 0.3, ms["unauthorized_entry.enter_s"] + LATE_S)
    assert raised(journal, "permit.unauthorized:WH-2:T0034") == []  # the worker on the permit is not
    later = [r for r in journal if r["alarm_id"] == "permit.unauthorized:WH-2:T0143" and r["t"] > alarm[0]["t"]]
    assert later, "the alarm's condition never cleared"
    print([(r["event"], r["state"], round(r["t"], 2)) for r in later])
    assert _within(later[0]["t"], ms["unauthorized_entry.leave_s"] - 0.3, ms["unauthorized_entry.leave_s"] + LATE_S)


def test_a_permit_running_out_with_its_crew_inside_expires_and_is_alarmed_while_occupied(run):
    ms, journal = run["ms"], run["journal"]
    rows = permit_rows(journal, "WH-3")
    assert _states(journal, "WH-3") == [
        ("permit_request", "op1", "requested"), ("permit_approve", "sup1", "approved"),
        ("permit_activate", "sup1", "active"), ("permit_expire", "engine", "expired")]
    expire = rows[-1]["t"]
    tick_s = run["site"]["engine"]["tick_s"]
    assert _within(expire, ms["permit_expiry.valid_to_s"], ms["permit_expiry.valid_to_s"] + tick_s + TICK_SLACK_S)
    alarm = raised(journal, "permit.expired_occupied:WH-3")
    assert len(alarm) == 1 and alarm[0]["t"] == pytest.approx(expire, abs=1e-6)
    later = [r for r in journal if r["alarm_id"] == "permit.expired_occupied:WH-3" and r["t"] > expire]
    assert later, "still occupied after the crew left"
    print([(r["event"], r["state"], round(r["t"], 2)) for r in later])
    assert _within(later[0]["t"], ms["permit_expiry.all_out_s"] - 0.3, ms["permit_expiry.all_out_s"] + LATE_S)


def test_a_stale_gas_test_suspends_the_hot_work_permit(run):
    ms, journal = run["ms"], run["journal"]
    rows = permit_rows(journal, "HW-5")
    assert _states(journal, "HW-5") == [
        ("permit_request", "op1", "requested"), ("permit_gas_test", "op1", "requested"),
        ("permit_approve", "sup1", "approved"), ("permit_signin", "P0192", "approved"),
        ("permit_activate", "sup1", "active"), ("permit_suspend", "engine", "suspended")]
    tested, suspended = rows[1]["t"], rows[-1]
    tick_s = run["site"]["engine"]["tick_s"]
    assert abs(tested - ms["gas_test_stale.gas_test_s"]) < 2.0
    # the engine stamped the test with its clock; stale at the first tick past its validity
    assert _within(suspended["t"], tested + GAS_VALID_S, tested + GAS_VALID_S + tick_s + TICK_SLACK_S)
    assert "gas test" in suspended["detail"]["reason"]
    alarm = raised(journal, "permit.gas_test_expired:HW-5")
    assert len(alarm) == 1 and alarm[0]["t"] == pytest.approx(suspended["t"], abs=1e-6)


def test_one_person_alone_in_a_confined_space_is_a_lone_worker_after_the_limit(run):
    ms, journal = run["ms"], run["journal"]
    enter, dwell = ms["lone_worker.enter_s"], run["site"]["fences"]["min_dwell_s"]
    entry = raised(journal, "zone.no_permit:Z-T3:T0097")  # no permit on Z-T3: the geofence's own alarm
    assert len(entry) == 1
    assert _within(entry[0]["t"], enter + dwell - 0.3, enter + dwell + LATE_S)
    # alone since his entry (the fence dates it at his first fix inside, before the dwell confirmed it)
    lone = raised(journal, "person.lone_worker:Z-T3:T0097")
    assert len(lone) == 1 and lone[0]["detail"]["priority"] == "high"
    assert _within(lone[0]["t"], enter + LONE_S - 0.3, enter + LONE_S + LATE_S)
    cleared = [r for r in journal if r["alarm_id"] == lone[0]["alarm_id"] and r["event"] == "clear"]
    leave = ms["lone_worker.leave_s"]  # the fence confirms his exit after the same dwell
    assert len(cleared) == 1 and _within(cleared[0]["t"], leave + dwell - 0.3, leave + dwell + LATE_S)
