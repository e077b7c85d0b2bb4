"""EngineLink against the real engine (tests/engine_stack.py) on ipc endpoints, through relays that can play a
faulty network (a lost delta, a silent link, an unanswered request, a peer's bad frame)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import numpy as np
import pytest

from console.link import EngineLink
from ingest import bus
from ingest.bus import Message
from ingest.protocol.records import AlarmRecord
from tests.builders import gas_values, positions, wearable_events
from tests.engine_stack import (
    CommandRelay,
    EngineStack,
    Logins,
    PublishRelay,
    quick_rules,
    reply_without_token,
)
from tests.records import alarm_record, permit_record

RESTRICTED = "zone.restricted:Z-SUB:T0050"  # T0050 is a worker, not on Z-SUB's allowed list


class Net:
    """The engine and the relays a console link talks through."""

    def __init__(self, stack: EngineStack, pub: PublishRelay, cmd: CommandRelay) -> None:
        self.stack, self.pub, self.cmd = stack, pub, cmd

    def link(self, **kw) -> EngineLink:
        return EngineLink(self.stack.site, publish_endpoint=self.pub.endpoint, command_endpoint=self.cmd.endpoint,
                          **kw)

    def sos(self, *tags: str) -> list[str]:
        """Press SOS on each tag's wearable, one batch each (one alarm.delta each); the alarm ids."""
        for tag in tags:
            self.stack.send(wearable_events([(tag, "sos")], time.time()))
        return [f"person.sos:{tag}" for tag in tags]


@contextlib.contextmanager
def _net(site, folder) -> Iterator[Net]:
    """An engine in ``folder`` with a publish and a command relay in front of it."""
    with EngineStack(site, folder, **quick_rules(site)) as stack:
        with (
            PublishRelay(stack.ctx, stack.site.bus.publish, f"ipc://{folder}/relay-pub.ipc") as pub,
            CommandRelay(stack.ctx, stack.site.bus.command, f"ipc://{folder}/relay-cmd.ipc") as cmd,
        ):
            yield Net(stack, pub, cmd)


@pytest.fixture(scope="module")
def net(demo_site, tmp_path_factory):
    """One engine for the module (tests use alarms of their own)."""
    with _net(demo_site, tmp_path_factory.mktemp("link")) as n:
        yield n


def _ids(snap) -> set[str]:
    return set(snap.alarms.alarms)


def _states(alarms) -> dict[str, str]:
    return {k: (a.state if hasattr(a, "state") else a["state"]) for k, a in alarms.items()}


def _in_step_with_the_engine(link: EngineLink, stack: EngineStack, timeout_s: float = 10.0):
    """Wait until the link's alarm table holds what the engine holds (ids and states); the link's snapshot."""
    deadline = time.monotonic() + timeout_s
    while True:
        engine = _states(stack.alarms())
        snap = link.snapshot()
        if snap.alarms.synced and _states(snap.alarms.alarms) == engine:
            return snap
        if time.monotonic() > deadline:
            raise AssertionError(f"link {sorted(_states(snap.alarms.alarms).items())} != engine {sorted(engine.items())}")
        time.sleep(0.05)


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


# -- with the real engine -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_test_records_have_the_shape_of_the_engines_records(net):
    (aid,) = net.sos("T0030")
    real = net.stack.wait_alarm(aid)
    assert set(alarm_record(1)) == set(real)  # tests/records.py builds what the engine publishes
    assert AlarmRecord.from_json(real).id == aid


@pytest.mark.slow
def test_link_takes_snapshot_on_connect_then_applies_deltas_in_order(demo_site, net):
    stack = net.stack
    first, second = net.sos("T0011", "T0012")
    stack.send(gas_values(stack.site, {"GD02": 45.0}, time.time()))  # level 2: gas.low and gas.high
    stack.wait_alarm("gas.high:GD02")
    with net.link() as link:
        snap = _in_step_with_the_engine(link, stack)
        assert {first, second, "gas.low:GD02", "gas.high:GD02"} <= _ids(snap)
        (third,) = net.sos("T0013")
        for aid in ("gas.low:GD02", "gas.high:GD02"):
            assert stack.command(op="ack", alarm=aid, user="op1")["ok"]
        stack.send(gas_values(stack.site, {"GD02": 0.0}, time.time()))  # acknowledged and clear: back to normal
        snap = link.wait_until(lambda s: third in s.alarms.alarms and "gas.high:GD02" not in s.alarms.alarms)
        assert "gas.low:GD02" not in _ids(snap)  # normal alarms leave the list
        snap = _in_step_with_the_engine(link, stack)
        c = snap.counters
        assert (c.snapshots, c.resyncs, c.gaps) == (1, 0, 0)
        assert c.deltas_applied >= 4  # the SOS, two acknowledgements, the clear (and the engine's own changes)


@pytest.mark.slow
def test_link_resyncs_from_snapshot_when_a_delta_is_lost(demo_site, net):
    with net.link() as link:
        _in_step_with_the_engine(link, net.stack)
        requests = net.cmd.snapshot_requests
        net.pub.lose("alarm.delta")  # the next delta never reaches the console
        (lost,) = net.sos("T0021")
        link.wait_until(lambda s: net.pub.lost.get("alarm.delta", 0) >= 1)
        (seen,) = net.sos("T0022")  # its delta reveals the gap
        snap = link.wait_until(lambda s: s.alarms.synced and {lost, seen} <= set(s.alarms.alarms))
        assert snap.counters.gaps == 1
        assert snap.counters.resyncs == 1
        assert net.cmd.snapshot_requests == requests + 1
        _in_step_with_the_engine(link, net.stack)


@pytest.mark.slow
def test_link_ignores_deltas_already_in_the_snapshot(demo_site, net):
    net.cmd.answer_snapshots = False
    try:
        with net.link(snapshot_timeout_s=0.5) as link:
            link.wait_until(lambda s: s.counters.snapshot_requests >= 1)
            held = net.sos("T0031", "T0032", "T0033")  # they arrive while the snapshot is awaited: held back
            link.wait_until(lambda s: s.counters.deltas >= 3)
            assert not link.alarms().synced
            net.cmd.answer_snapshots = True  # the next request's snapshot holds all three
            snap = link.wait_until(lambda s: s.alarms.synced, timeout_s=10)
            assert set(held) <= _ids(snap)
            assert snap.counters.deltas_ignored >= 3  # all three were already in the snapshot
            _in_step_with_the_engine(link, net.stack)
    finally:
        net.cmd.answer_snapshots = True


@pytest.mark.slow
def test_link_keeps_latest_frames_and_reports_lost_then_back(demo_site, net):
    with net.link(lost_after_s=0.5) as link:
        snap = link.wait_until(
            lambda s: s.positions is not None and s.sensors is not None and s.status is not None
        )
        assert snap.state == "ok"
        xyz = snap.positions.arrays["xyz_m"]
        assert xyz.shape == (len(demo_site.people), 3)
        assert not xyz.flags.writeable  # readers share it: it must be immutable
        first = snap.positions.number
        snap = link.wait_until(lambda s: s.positions.number > first)
        net.pub.silence()
        try:
            snap = link.wait_until(lambda s: s.state == "lost", timeout_s=5)
            assert snap.last_frame_age_s > 0.5
            # the link's own thread must have seen the loss too before frames resume (it checks every poll)
            link.wait_until(lambda s: s.counters.link_lost == 1, timeout_s=5)
            requests = net.cmd.snapshot_requests
        finally:
            net.pub.resume()
        snap = link.wait_until(lambda s: s.state == "ok" and s.alarms.synced and s.counters.link_lost == 1)
        assert net.cmd.snapshot_requests == requests + 1  # a link that comes back starts from a snapshot


def _engine_frames(topic: str, kind: str, arrays: dict, meta: dict) -> list[bytes]:
    return bus.encode(Message(topic=topic, source="engine", kind=kind, event_ts_s=time.time(),
                              ingest_ts_s=time.time(), arrays=arrays, meta=meta))


@pytest.mark.slow
def test_link_counts_frames_that_do_not_match_the_site_and_keeps_the_last_good_one(demo_site, net):
    with net.link() as link:
        good = link.wait_until(lambda s: s.positions is not None).positions
        net.pub.inject(_engine_frames("display.positions", "positions", {
            "xyz_m": np.zeros((3, 3)), "age_s": np.zeros(3), "gdop": np.zeros(3), "alarm": np.zeros(3, np.uint8)},
            {}))
        snap = link.wait_until(lambda s: s.counters.bad_frames >= 1)
        assert snap.positions.arrays["xyz_m"].shape == good.arrays["xyz_m"].shape


@pytest.mark.slow
def test_link_command_returns_the_engine_reply_and_times_out_without_one(demo_site, net):
    (aid,) = net.sos("T0041")
    with net.link() as link:
        link.wait_until(lambda s: s.alarms.synced and aid in s.alarms.alarms)
        logins = Logins(link)
        reply = logins.command({"op": "ack", "alarm": aid, "user": "op1", "comment": ""})
        assert reply["ok"] is True and reply["id"].startswith("cmd-")
        refused = reply_without_token(logins.command({"op": "ack", "alarm": "no-such-alarm", "user": "op1"}))
        assert refused == {"id": refused["id"], "ok": False, "reason": "no such alarm"}  # the engine's words
        net.cmd.answer_commands = False
        try:
            with pytest.raises(TimeoutError):
                logins.command({"op": "ack", "alarm": aid, "user": "op1"}, timeout_s=0.3)
        finally:
            net.cmd.answer_commands = True


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


# -- person commands, escalations and floods through the engine --------------------------------------------------
def _cmd(logins: Logins, op: str, alarm: str, user: str, **kw) -> dict:
    return logins.command({"op": op, "alarm": alarm, "user": user, **kw}, timeout_s=5)


@pytest.mark.slow
def test_person_commands_round_trip_with_the_engines_reply_and_change(demo_site, net):
    stack = net.stack
    now = time.time()
    # past Z-SUB's border for longer than the fences' dwell (2 s): a high alarm on T0050
    stack.send(positions(stack.site, {"T0050": (145.0, 70.0)}, now - 2.5))
    stack.send(positions(stack.site, {"T0050": (146.0, 70.0)}, now))
    (latched,) = net.sos("T0042")  # critical, latching: latched_unack once the 0.5 s hold is over
    stack.wait_alarm(latched, "latched_unack")
    assert stack.command(op="ack", alarm=latched, user="op1")["ok"]
    high = stack.wait_alarm(RESTRICTED)["id"]
    with net.link() as link:
        logins = Logins(link)
        link.wait_until(lambda s: s.alarms.synced and {high, latched} <= set(s.alarms.alarms))
        assert link.alarms().alarms[high].priority == "high"
        assert _cmd(logins, "ack", high, "op1", comment="radioed him")["ok"] is True
        snap = link.wait_until(lambda s: s.alarms.alarms[high].state == "active_ack")
        assert snap.alarms.alarms[high].acked_by == "op1"
        again = _cmd(logins, "ack", high, "op1", comment="")
        assert again["reason"] == "alarm is active_ack: nothing to acknowledge"
        refused = _cmd(logins, "shelve", high, "op1", reason="x", duration_s=900)
        assert (refused["ok"], refused["reason"]) == (False, "role operator may not shelve")
        too_long = _cmd(logins, "shelve", high, "sup1", reason="permit", duration_s=14401)
        assert too_long["reason"] == "a high alarm may be shelved for at most 14400 s"
        assert _cmd(logins, "shelve", high, "sup1", reason="permit renewal", duration_s=3600)["ok"]
        snap = link.wait_until(lambda s: s.alarms.alarms[high].state == "shelved")
        shelved = snap.alarms.alarms[high].shelved
        assert (shelved.by, shelved.reason) == ("sup1", "permit renewal")
        assert shelved.until_ts_s - snap.alarms.alarms[high].changed_ts_s == pytest.approx(3600.0)
        assert _cmd(logins, "unshelve", high, "sup1")["ok"]
        link.wait_until(lambda s: s.alarms.alarms[high].state == "active_ack")
        assert _cmd(logins, "remove_from_service", high, "sup1", reason="")["reason"] == (
            "taking an alarm out of service needs a reason"
        )
        assert _cmd(logins, "remove_from_service", high, "sup1", reason="detector swap")["ok"]
        snap = link.wait_until(lambda s: s.alarms.alarms[high].state == "out_of_service")
        assert snap.alarms.alarms[high].out_of_service.reason == "detector swap"
        assert _cmd(logins, "return_to_service", high, "sup1")["ok"]
        link.wait_until(lambda s: s.alarms.alarms[high].state == "active_unack")  # seen again
        assert _cmd(logins, "comment", high, "safety1", comment="reviewed")["ok"]
        assert _cmd(logins, "reset", latched, "op1")["ok"]
        snap = link.wait_until(lambda s: latched not in s.alarms.alarms)  # reset: back to normal
        # nobody logged in as "nobody": the engine refuses before the alarm book sees it
        assert link.command({"op": "ack", "alarm": high, "user": "nobody"})["reason"] == "no token: log in first"
        assert snap.counters.gaps == 0 and snap.counters.command_timeouts == 0
    assert (high, "safety1", {"text": "reviewed"}) in stack.journal("comment")


@pytest.fixture
def quiet_net(demo_site, tmp_path):
    """An engine of its own, with no alarm yet: a flood must begin while the test watches (the module's engine
    is in one from its earlier tests, and a flood ends only when the last 10 min of engine time calm down)."""
    with _net(demo_site, tmp_path) as n:
        yield n


@pytest.mark.slow
def test_link_keeps_escalations_and_flood_state_and_a_late_joiner_gets_the_flood(demo_site, quiet_net):
    net, stack = quiet_net, quiet_net.stack
    with net.link() as link:
        link.wait_until(lambda s: s.alarms.synced)
        stack.send(gas_values(stack.site, {"GD07": 45.0}, time.time()))  # policy test-quick: 0.5 s, 1 s
        first = stack.wait_alarm("gas.high:GD07")
        net.sos(*[f"T{n:04d}" for n in range(110, 120)])  # ten more activations: a flood (> 10 in 10 min)
        net.pub.inject(_engine_frames("alarm.notify", "notify", {}, {"notify_role": "supervisor"}))  # no id
        snap = link.wait_until(
            lambda s: s.flood() is not None and s.flood().flood and s.counters.bad_frames >= 1
            and len(s.notifications) == 2,
            timeout_s=10,
        )
        notes = snap.notifications
        assert [(n.number, n.alarm, n.notify_role, n.step, n.priority) for n in notes] == [
            (1, first["id"], "supervisor", 1, "critical"),
            (2, first["id"], "safety_manager", 2, "critical"),
        ]
        assert notes[0].text("zh-CN") == first["message"]["zh-CN"]
        flood = snap.flood("main")
        # level 2 raised gas.low then gas.high: the first out is gas.low; the flood began at the 11th activation
        assert (flood.flood, flood.first_out, flood.count_10min) == (True, "gas.low:GD07", 11)
        assert snap.flood("east") is None
    with net.link() as late:  # joins after the flood began: its snapshot says since when and the first out
        snap = late.wait_until(lambda s: s.flood() is not None and s.flood().first_out is not None)
        joined = snap.flood()
        assert (joined.flood, joined.first_out) == (True, "gas.low:GD07") and joined.count_10min >= 11  # counts on
        assert joined.since_ts_s == pytest.approx(flood.since_ts_s)
        assert snap.notifications == ()
    # a flood ends when fewer than 5 activations are left in the last 10 min of engine time: not within a test


@pytest.mark.slow
def test_link_takes_permits_and_muster_from_the_snapshot_then_follows_their_messages(demo_site, net):
    stack = net.stack
    reply = stack.activate_permit("HW-7", zone="Z-HW1", workers=["T0101", "T0102"], watcher="T0187")
    assert reply_without_token(reply) == {"id": reply["id"], "ok": True, "permit": "HW-7", "state": "active"}
    with net.link() as link:
        logins = Logins(link)
        # a console that joins with no emergency gets the board and "no muster" from its snapshot
        snap = link.wait_until(
            lambda s: s.permits is not None and s.muster is not None and s.gasfield is not None
        )
        assert [(p.id, p.state, p.board) for p in snap.permits.permits] == [("HW-7", "active", "red")]
        board = {p["id"]: p for p in stack.command(op="snapshot")["permits"]}
        assert set(permit_record("HW-7")) == set(board["HW-7"])  # tests/records.py builds what the engine sends
        assert not snap.muster.active
        assert snap.gasfield.arrays["field"].shape == (100, 150)  # 300 m x 200 m in 2 m cells
        refused = reply_without_token(logins.command({"op": "muster_declare", "user": "op1", "area": "all"}))
        assert refused == {
            "id": refused["id"],
            "ok": False,
            "reason": "role operator may not declare a muster",
        }
        assert logins.command({"op": "muster_declare", "user": "sup1", "area": "all"})["ok"]
        try:
            snap = link.wait_until(lambda s: s.muster.active, timeout_s=5)
            engine_muster = stack.command(op="snapshot")["muster"]
            assert snap.muster.declared_by == "sup1"
            assert snap.muster.roster == engine_muster["counts"]["roster"] >= 3  # everyone with a fix
            again = logins.command({"op": "muster_declare", "user": "sup1", "area": "all"})
            assert again["reason"].startswith("an emergency is already declared (since ")
            suspend = {"op": "permit_suspend", "user": "op1", "permit": "HW-7", "reason": "emergency"}
            assert logins.command(suspend)["ok"]
            snap = link.wait_until(lambda s: [p.state for p in s.permits.permits] == ["suspended"], timeout_s=5)
            assert (snap.permits.permits[0].reason, snap.permits.permits[0].board) == ("emergency", "amber")
            assert logins.command(suspend)["reason"] == "permit is suspended: only an active permit is suspended"
            resume = logins.command({"op": "permit_resume", "user": "op1", "permit": "HW-7"})
            assert resume["reason"] == "role operator may not resume permits"
        finally:
            assert logins.command({"op": "muster_end", "user": "sup1"})["ok"]
        link.wait_until(lambda s: not s.muster.active, timeout_s=5)
        assert logins.command({"op": "muster_end", "user": "sup1"})["reason"] == "no emergency is declared"


@pytest.mark.slow
def test_link_refuses_a_gas_field_whose_shape_does_not_match_its_extent(demo_site, net):
    with net.link() as link:
        link.wait_until(lambda s: s.gasfield is not None)
        bad_before = link.counters().bad_frames
        # 300 m / 2 m = 150 columns, not 149
        net.pub.inject(_engine_frames("display.gasfield", "gas_field", {"field": np.zeros((100, 149), np.float32)},
                                      {"extent_m": [0, 0, 300, 200], "dx_m": 2.0}))
        snap = link.wait_until(lambda s: s.counters.bad_frames > bad_before)
        assert snap.gasfield.arrays["field"].shape == (100, 150)  # the last good field is kept


@pytest.mark.slow
def test_zz_link_resyncs_when_the_engine_restarts_its_sequence(demo_site, net):
    # last in the module: the engine after it is a fresh one
    with net.link() as link:
        net.sos("T0051", "T0052", "T0053")
        link.wait_until(lambda s: s.alarms.synced and s.alarms.seq >= 3)
        net.stack.restart("after-restart")  # a new engine on the same endpoints, without the old recording
        # its frames reach the link (a PUB's first messages to a reconnecting SUB are lost): its frame count is new
        link.wait_until(lambda s: s.positions is not None and s.positions.meta["frame"] < 5, timeout_s=10)
        (fresh,) = net.sos("T0059")  # seq 1 again
        snap = link.wait_until(lambda s: s.alarms.synced and s.counters.restarts == 1 and fresh in s.alarms.alarms,
                               timeout_s=10)
        assert _ids(snap) == {fresh}
