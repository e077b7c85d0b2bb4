"""EngineLink against a real ZeroMQ peer (tests/fake_engine.py) on loopback ports."""

from __future__ import annotations

import numpy as np
import pytest

from console.link import AlarmRecord, EngineLink
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
