"""Where a person has been and who was where, answered by the real engine: its trails follow every recorded fix,
a console's link gets them on connect and keeps them from the positions frames; zone visits come from the fences;
a workstation marks a found person on the walls for 30 s (checked, journaled, in the engine's status)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from console.link import EngineLink
from ingest import bus
from ingest.engine.recording import RecordingReader
from ingest.protocol.highlight import HIGHLIGHT_OP, HIGHLIGHT_S
from tests.engine_stack import EngineStack, Plant


@pytest.fixture(scope="module")
def plant(demo_site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("history")
    with EngineStack(demo_site, folder) as stack, Plant(stack, walkers=20) as plant:
        yield plant


def _recorded_fixes(stack: EngineStack, person: int) -> tuple[np.ndarray, np.ndarray]:
    """Every fix of ``person`` in the engine's recording: (ts_s [k], xy_m [k, 2]) in time order."""
    rec = RecordingReader(stack.out_dir / "recording.sqlite")
    try:
        ts, xy = [], []
        for _, frames in rec.inputs():
            msg = bus.decode(frames)
            if msg.kind != "positions":
                continue
            a = msg.arrays
            hit = (a["person_index"] == person) & a["valid"].astype(bool)
            ts += list(a["ts_s"][hit])
            xy += list(a["xyz_m"][hit, :2])
    finally:
        rec.close()
    order = np.argsort(ts, kind="stable")
    return np.asarray(ts)[order], np.asarray(xy).reshape(-1, 2)[order]


def test_the_engine_keeps_every_recorded_fix_and_a_late_console_gets_the_trail_on_connect(plant):
    stack = plant.stack
    tag = plant.walkers[0][0]
    person = next(i for i, p in enumerate(stack.site.people) if p.tag == tag)
    time.sleep(3.0)  # 15 batches of the plant's 5 Hz walk before the console joins
    with EngineLink(stack.site, context=stack.ctx) as link:
        link.wait_until(lambda s: s.trails is not None and len(s.trails.trail(person)[0]) >= 15, timeout_s=10)
        joined = time.time()
        link.wait_until(lambda s: s.trails.trail(person)[0][-1] > joined + 1.5, timeout_s=10)  # then live frames
        got_ts, got_xy = link.trails.trail(person)
    eng_ts, eng_xy = stack.proc.engine.trails.trail(person)
    rec_ts, rec_xy = _recorded_fixes(stack, person)
    # the engine's trail is the recording's fixes of that person (every one: 5 Hz < the ring's 11 Hz); the
    # recording is read a moment later, so it may hold more, or fewer not yet committed
    n = min(len(eng_ts), len(rec_ts))
    assert n >= 30
    np.testing.assert_array_equal(eng_ts[:n], rec_ts[:n])
    np.testing.assert_allclose(eng_xy[:n], rec_xy[:n], atol=1e-4)
    # the console: one sample a second from the engine's answer, then every frame; each sample is a recorded fix
    assert link.trails.loaded >= 3 and link.trails.from_frames > 0
    assert np.all(np.diff(got_ts) > 0)
    got_xy, got_ts = got_xy[got_ts <= rec_ts[-1]], got_ts[got_ts <= rec_ts[-1]]
    k = np.abs(rec_ts[None, :] - got_ts[:, None]).argmin(axis=1)  # the recorded fix nearest in time
    assert len(set(k)) == len(k)  # no fix twice
    np.testing.assert_allclose(rec_ts[k], got_ts, atol=2e-3)  # frame times are the fix times to the ms
    np.testing.assert_allclose(rec_xy[k], got_xy, atol=1e-3)
    assert got_ts[0] == pytest.approx(eng_ts[0], abs=2e-3)  # from the first fix the engine kept


def test_zone_presence_is_asked_of_the_engine_and_bad_questions_are_refused(plant):
    stack = plant.stack
    zone = next(z for z in stack.site.zones if z.kind == "area")
    cx, cy = stack.zone_centre(zone.id)
    tag, person = stack.site.people[3].tag, stack.site.people[3].id
    t0 = time.time()
    plant.place({tag: (cx, cy)})  # walking on a 2 m circle around the zone's centre
    stack.wait_for(lambda: stack.proc.engine.membership.inside[3, stack.proc.engine.membership.zones.index(zone)],
                   what="the fence confirming the entry", timeout_s=30)
    def ask(**req):
        return stack.command(op="zone_presence", user="op1", **req)

    now = ask(zone=zone.id, from_ts_s=time.time(), to_ts_s=time.time())
    assert now["ok"] and person in [v["person"] for v in now["visits"]]
    mine = next(v for v in now["visits"] if v["person"] == person)
    assert mine["exit_ts_s"] is None and mine["enter_ts_s"] <= time.time()
    assert 0 <= mine["fix_age_s"] < 30  # walking: a recent fix (a tag gone quiet would say how old; slack for load)
    before = ask(zone=zone.id, from_ts_s=t0 - 3600, to_ts_s=t0 - 1800)
    assert before["ok"] and person not in [v["person"] for v in before["visits"]]
    bad = ask(zone="nowhere", from_ts_s=0, to_ts_s=1)
    assert not bad["ok"] and bad["reason"] == "unknown zone 'nowhere'"
    bad = ask(zone=zone.id, from_ts_s="yesterday", to_ts_s=1)
    assert not bad["ok"] and "from_ts_s must be a number" in bad["reason"]
    # who was where, by name: only for a logged-in person at a workstation, not a field worker's phone login
    anyone = stack.raw_command(op="zone_presence", zone=zone.id, from_ts_s=0, to_ts_s=1)
    assert anyone == {"id": anyone["id"], "ok": False, "reason": "no token: log in first"}
    field = next(u.id for u in stack.site.users if u.role == "field_worker")
    phone = stack.command(op="zone_presence", user=field, zone=zone.id, from_ts_s=0, to_ts_s=1)
    assert not phone["ok"] and phone["reason"] == "role field_worker may not ask this"
    # a query is not recorded: the recording holds no zone_presence input
    rec = RecordingReader(stack.out_dir / "recording.sqlite")
    try:
        assert not any(b"zone_presence" in b"".join(frames) for _, frames in rec.inputs())
    finally:
        rec.close()


def test_a_trails_answer_is_bounded_and_bad_steps_are_refused(plant):
    stack = plant.stack
    stack.wait_for(lambda: stack.raw_command(op="trails", step_s=1.0)["trails"]["n"] > 0, what="some trail")
    fine = stack.raw_command(op="trails", step_s=0)  # every sample asked for: the engine's finest step instead
    assert fine["ok"] and fine["step_s"] == 0.2 and fine["trails"]["n"] > 0
    per_second = stack.raw_command(op="trails", step_s=1.0)
    assert per_second["step_s"] == 1.0 and per_second["trails"]["n"] < fine["trails"]["n"]
    bad = stack.raw_command(op="trails", step_s="often")
    assert bad == {"id": bad["id"], "ok": False, "reason": "step_s must be a number of seconds"}


def test_a_found_person_is_marked_on_the_walls_for_30_s_journaled_and_checked(plant):
    stack = plant.stack
    person = stack.site.people[12].id
    reply = stack.command(op=HIGHLIGHT_OP, person=person, user="op1")
    assert reply["ok"], reply
    mark = reply["highlight"]
    assert mark["person"] == person and mark["until_ts_s"] - mark["since_ts_s"] == HIGHLIGHT_S
    (row,) = [r for r in stack.journal("person_highlighted") if r[2]["person"] == person]
    assert row[1] == "op1" and row[2]["user"] == "op1"
    status = stack.wait_for(lambda: [h for h in stack.proc.engine.status()["highlights"] if h["person"] == person],
                            what="the mark in the status")
    assert status[0]["until_ts_s"] == mark["until_ts_s"]
    refused = stack.command(op=HIGHLIGHT_OP, person="P9999", user="op1")
    assert not refused["ok"] and refused["reason"] == "unknown person 'P9999'"
    assert [r for r in stack.journal("refused") if r[2].get("action") == HIGHLIGHT_OP]
