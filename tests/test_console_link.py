"""EngineLink against a real ZeroMQ peer (tests/fake_engine.py) on loopback ports."""

from __future__ import annotations

import math

import numpy as np
import pytest

from console.link import EngineLink
from ingest.protocol.records import AlarmRecord
from tests.fake_engine import FakeEngine, alarm_record


@pytest.fixture
def engine(demo_site):
    with FakeEngine(demo_site) as eng:
        yield eng


def _link(site, eng: FakeEngine, **kw) -> EngineLink:
    return EngineLink(
        site, publish_endpoint=eng.publish_endpoint, command_endpoint=eng.command_endpoint, **kw
    )


def _ids(snap) -> set[str]:
    return set(snap.alarms.alarms)


# -- AlarmRecord (no sockets) --------------------------------------------------------------------------------
def test_alarm_record_parses_engine_json_and_derives_rank_and_flags():
    rec = AlarmRecord.from_json(alarm_record(7, priority="medium", state="rtn_unack", person="P0007"))
    assert rec.id == "zone.restricted:Z-SUB:T0007"
    assert rec.rank == 2
    assert rec.unacknowledged and not rec.active
    assert rec.position_m == (145.0, 70.0)
    assert rec.text("zh-CN").startswith("人员进入限制区域")
    assert rec.text("fr") == rec.message["en"]  # unknown language falls back to English


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"priority": "urgent"}, "unknown priority"),
        ({"state": 3}, "'state'"),
        ({"id": ""}, "'id'"),
        ({"message": "text"}, "message"),
        ({"position_m": [1.0]}, "position_m"),
        ({"activated_ts_s": "noon"}, "activated_ts_s"),
    ],
)
def test_alarm_record_refuses_malformed_fields_with_reason(change, reason):
    raw = {**alarm_record(1), **change}
    with pytest.raises(ValueError, match=reason):
        AlarmRecord.from_json(raw)


# -- with the fake engine -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_link_takes_snapshot_on_connect_then_applies_deltas_in_order(demo_site, engine):
    engine.raise_alarm(alarm_record(1, priority="critical"))
    engine.raise_alarm(alarm_record(2))
    with _link(demo_site, engine) as link:
        snap = link.wait_until(lambda s: s.alarms.synced and s.alarms.seq == 2)
        assert _ids(snap) == {alarm_record(1)["id"], alarm_record(2)["id"]}
        engine.raise_alarm(alarm_record(3))
        engine.raise_alarm({**alarm_record(1), "state": "normal"})  # back to normal: leaves the list
        snap = link.wait_until(lambda s: s.alarms.seq == 4)
        assert _ids(snap) == {alarm_record(2)["id"], alarm_record(3)["id"]}
        c = snap.counters
        assert (c.snapshots, c.resyncs, c.gaps, c.deltas_applied) == (1, 0, 0, 2)


@pytest.mark.slow
def test_link_resyncs_from_snapshot_when_a_delta_is_lost(demo_site, engine):
    with _link(demo_site, engine) as link:
        link.wait_until(lambda s: s.alarms.synced)
        engine.raise_alarm(alarm_record(1))
        link.wait_until(lambda s: s.alarms.seq == 1)
        engine.raise_alarm(alarm_record(2), lose=True)  # seq 2 never reaches the console
        engine.raise_alarm(alarm_record(3))  # seq 3 reveals the gap
        snap = link.wait_until(lambda s: s.alarms.synced and s.alarms.seq == 3)
        assert _ids(snap) == set(engine.alarms)  # alarm 2 came back through the snapshot
        assert snap.counters.gaps == 1
        assert snap.counters.resyncs == 1
        assert engine.snapshot_requests == 2


@pytest.mark.slow
def test_link_ignores_deltas_already_in_the_snapshot(demo_site, engine):
    engine.set_answers(snapshots=False)
    with _link(demo_site, engine, snapshot_timeout_s=0.5) as link:
        link.wait_until(lambda s: s.counters.snapshot_requests >= 1)
        for n in (1, 2, 3):  # they arrive while the snapshot is awaited: held back
            engine.raise_alarm(alarm_record(n))
        link.wait_until(lambda s: s.counters.deltas == 3)
        assert not link.alarms().synced
        engine.set_answers(snapshots=True)  # the next request's snapshot is at seq 3
        snap = link.wait_until(lambda s: s.alarms.synced, timeout_s=10)
        assert snap.alarms.seq == 3
        assert _ids(snap) == set(engine.alarms)
        assert snap.counters.deltas_ignored == 3  # all three were already in the snapshot


@pytest.mark.slow
def test_link_resyncs_when_the_engine_restarts_its_sequence(demo_site, engine):
    with _link(demo_site, engine) as link:
        for n in (1, 2, 3):
            engine.raise_alarm(alarm_record(n))
        link.wait_until(lambda s: s.alarms.synced and s.alarms.seq == 3)
        engine.restart()
        engine.raise_alarm(alarm_record(9))  # seq 1 again
        snap = link.wait_until(lambda s: s.alarms.synced and s.counters.restarts == 1 and s.alarms.seq == 1)
        assert _ids(snap) == {alarm_record(9)["id"]}


@pytest.mark.slow
def test_link_keeps_latest_frames_and_reports_lost_then_back(demo_site, engine):
    with _link(demo_site, engine, lost_after_s=0.5) as link:
        snap = link.wait_until(
            lambda s: s.positions is not None and s.sensors is not None and s.status is not None
        )
        assert snap.state == "ok"
        xyz = snap.positions.arrays["xyz_m"]
        assert xyz.shape == (len(demo_site.people), 3)
        assert not xyz.flags.writeable  # readers share it: it must be immutable
        first = snap.positions.number
        snap = link.wait_until(lambda s: s.positions.number > first)
        engine.pause()
        snap = link.wait_until(lambda s: s.state == "lost", timeout_s=5)
        assert snap.last_frame_age_s > 0.5
        # the link's own thread must have seen the loss too before frames resume (it checks every poll)
        link.wait_until(lambda s: s.counters.link_lost == 1, timeout_s=5)
        requests = engine.snapshot_requests
        engine.pause(False)
        snap = link.wait_until(lambda s: s.state == "ok" and s.alarms.synced and s.counters.link_lost == 1)
        assert engine.snapshot_requests == requests + 1  # a link that comes back starts from a snapshot


@pytest.mark.slow
def test_link_counts_frames_that_do_not_match_the_site_and_keeps_the_last_good_one(demo_site, engine):
    with _link(demo_site, engine) as link:
        good = link.wait_until(lambda s: s.positions is not None).positions
        engine.pause()
        engine.publish_raw(
            "display.positions",
            {
                "xyz_m": np.zeros((3, 3)),
                "age_s": np.zeros(3),
                "gdop": np.zeros(3),
                "alarm": np.zeros(3, np.uint8),
            },
            {},
        )
        snap = link.wait_until(lambda s: s.counters.bad_frames >= 1)
        assert snap.positions.arrays["xyz_m"].shape == good.arrays["xyz_m"].shape


@pytest.mark.slow
def test_link_command_returns_the_engine_reply_and_times_out_without_one(demo_site, engine):
    engine.raise_alarm(alarm_record(1))
    with _link(demo_site, engine) as link:
        link.wait_until(lambda s: s.alarms.synced)
        reply = link.command({"op": "ack", "alarm": alarm_record(1)["id"], "user": "op1", "comment": ""})
        assert reply["ok"] is True and reply["id"].startswith("cmd-")
        refused = link.command({"op": "ack", "alarm": "no-such-alarm", "user": "op1"})
        assert refused == {"id": refused["id"], "ok": False, "reason": "no such alarm"}  # the engine's words
        engine.set_answers(commands=False)
        with pytest.raises(TimeoutError):
            link.command({"op": "ack", "alarm": alarm_record(1)["id"], "user": "op1"}, timeout_s=0.3)


def test_link_command_refused_when_not_running(demo_site):
    link = EngineLink(demo_site, publish_endpoint="tcp://127.0.0.1:1", command_endpoint="tcp://127.0.0.1:1")
    with pytest.raises(RuntimeError, match="not running"):
        link.command({"op": "snapshot"})


def test_link_waits_without_engine_and_stops_cleanly(demo_site):
    # nothing listens there: the link must say "waiting", never block, and stop promptly
    with EngineLink(
        demo_site, publish_endpoint="tcp://127.0.0.1:9", command_endpoint="tcp://127.0.0.1:9"
    ) as link:
        snap = link.snapshot()
        assert snap.state == "waiting" and snap.last_frame_age_s is None
        assert not snap.alarms.synced and snap.positions is None
    assert not link.running


# -- person commands, escalations and floods through the fake engine ----------------------------------------------
def _cmd(link: EngineLink, op: str, alarm: str, user: str, **kw) -> dict:
    return link.command({"op": op, "alarm": alarm, "user": user, **kw}, timeout_s=5)


@pytest.mark.slow
def test_person_commands_round_trip_with_the_engines_reply_and_change(demo_site, engine):
    high = alarm_record(1, priority="high")
    latched = alarm_record(2, priority="medium", state="latched_ack")
    engine.raise_alarm(high)
    engine.raise_alarm(latched)
    with _link(demo_site, engine) as link:
        link.wait_until(lambda s: s.alarms.synced and s.alarms.seq == 2)
        assert _cmd(link, "ack", high["id"], "op1", comment="radioed him")["ok"] is True
        snap = link.wait_until(lambda s: s.alarms.alarms[high["id"]].state == "active_ack")
        assert snap.alarms.alarms[high["id"]].acked_by == "op1"
        again = _cmd(link, "ack", high["id"], "op1", comment="")
        assert again["reason"] == "alarm is active_ack: nothing to acknowledge"
        refused = _cmd(link, "shelve", high["id"], "op1", reason="x", duration_s=900)
        assert (refused["ok"], refused["reason"]) == (False, "role operator may not shelve")
        too_long = _cmd(link, "shelve", high["id"], "sup1", reason="permit", duration_s=14401)
        assert too_long["reason"] == "a high alarm may be shelved for at most 14400 s"
        assert _cmd(link, "shelve", high["id"], "sup1", reason="permit renewal", duration_s=3600)["ok"]
        snap = link.wait_until(lambda s: s.alarms.alarms[high["id"]].state == "shelved")
        shelved = snap.alarms.alarms[high["id"]].shelved
        assert (shelved.by, shelved.reason) == ("sup1", "permit renewal")
        assert shelved.until_ts_s - snap.alarms.alarms[high["id"]].changed_ts_s == pytest.approx(3600.0)
        assert _cmd(link, "unshelve", high["id"], "sup1")["ok"]
        link.wait_until(lambda s: s.alarms.alarms[high["id"]].state == "active_ack")
        assert _cmd(link, "remove_from_service", high["id"], "sup1", reason="")["reason"] == (
            "taking an alarm out of service needs a reason"
        )
        assert _cmd(link, "remove_from_service", high["id"], "sup1", reason="detector swap")["ok"]
        snap = link.wait_until(lambda s: s.alarms.alarms[high["id"]].state == "out_of_service")
        assert snap.alarms.alarms[high["id"]].out_of_service.reason == "detector swap"
        assert _cmd(link, "return_to_service", high["id"], "sup1")["ok"]
        link.wait_until(lambda s: s.alarms.alarms[high["id"]].state == "active_unack")  # seen again
        assert _cmd(link, "comment", high["id"], "safety1", comment="reviewed")["ok"]
        assert _cmd(link, "reset", latched["id"], "op1")["ok"]
        snap = link.wait_until(lambda s: latched["id"] not in s.alarms.alarms)  # reset: back to normal
        assert _cmd(link, "ack", high["id"], "nobody")["reason"] == "unknown user 'nobody'"
        assert snap.counters.gaps == 0 and snap.counters.command_timeouts == 0
    assert engine.comments == [(high["id"], "safety1", "reviewed")]


@pytest.mark.slow
def test_link_keeps_escalations_and_flood_state_and_a_late_joiner_gets_the_flood(demo_site, engine):
    first = alarm_record(1, priority="critical", condition="gas.high", zone="Z-U100")
    engine.raise_alarm(first)
    with _link(demo_site, engine) as link:
        link.wait_until(lambda s: s.alarms.synced)
        engine.notify(first["id"], "supervisor", step=2)
        engine.flood(True, first_out=first["id"], count_10min=14)
        engine.publish_raw("alarm.notify", {}, {"notify_role": "supervisor"})  # no alarm id: refused
        snap = link.wait_until(lambda s: s.flood() is not None and s.counters.bad_frames >= 1)
        (note,) = snap.notifications
        assert (note.number, note.alarm, note.notify_role, note.step, note.priority) == (
            1,
            first["id"],
            "supervisor",
            2,
            "critical",
        )
        assert note.text("zh-CN") == first["message"]["zh-CN"]
        flood = snap.flood("main")
        assert (flood.flood, flood.first_out, flood.count_10min) == (True, first["id"], 14)
        assert snap.flood("east") is None
    with _link(demo_site, engine) as late:  # joins after the flood began: the engine status says so
        snap = late.wait_until(lambda s: s.flood() is not None)
        flood = snap.flood()
        assert (flood.flood, flood.first_out, math.isnan(flood.since_ts_s)) == (True, None, True)
        assert snap.notifications == ()
        engine.flood(False)
        late.wait_until(lambda s: s.flood().flood is False)


@pytest.mark.slow
def test_link_takes_permits_and_muster_from_the_snapshot_then_follows_their_messages(demo_site, engine):
    from tests.fake_engine import permit_record

    with _link(demo_site, engine) as link:
        # a console that joins with no emergency gets the board and "no muster" from its snapshot
        snap = link.wait_until(
            lambda s: s.permits is not None and s.muster is not None and s.gasfield is not None
        )
        assert [p.id for p in snap.permits.permits] == ["HW-1", "CS-1", "HW-9"]
        assert not snap.muster.active
        assert snap.gasfield.arrays["field"].shape == (100, 150)  # 300 m x 200 m in 2 m cells
        refused = link.command({"op": "muster_declare", "user": "op1", "area": "all"})
        assert refused == {
            "id": refused["id"],
            "ok": False,
            "reason": "role operator may not declare a muster",
        }
        assert link.command({"op": "muster_declare", "user": "sup1", "area": "all"})["ok"]
        snap = link.wait_until(lambda s: s.muster.active, timeout_s=5)
        assert snap.muster.declared_by == "sup1" and snap.muster.roster == len(demo_site.people) - 2
        engine.set_permits([permit_record("HW-1", state="suspended", board="amber", reason="emergency")])
        snap = link.wait_until(lambda s: [p.state for p in s.permits.permits] == ["suspended"], timeout_s=5)
        assert snap.permits.permits[0].reason == "emergency"
        assert link.command({"op": "muster_end", "user": "sup1"})["ok"]
        link.wait_until(lambda s: not s.muster.active, timeout_s=5)


@pytest.mark.slow
def test_link_refuses_a_gas_field_whose_shape_does_not_match_its_extent(demo_site, engine):
    with _link(demo_site, engine) as link:
        link.wait_until(lambda s: s.gasfield is not None)
        engine.set_gas_field(None)
        bad_before = link.counters().bad_frames
        # 300 m / 2 m = 150 columns, not 149
        engine.publish_raw(
            "display.gasfield",
            {"field": np.zeros((100, 149), np.float32)},
            {"extent_m": [0, 0, 300, 200], "dx_m": 2.0},
        )
        snap = link.wait_until(lambda s: s.counters.bad_frames > bad_before)
        assert snap.gasfield.arrays["field"].shape == (100, 150)  # the last good field is kept
