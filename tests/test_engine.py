"""The engine as a pure function of its inputs: restricted-zone alarm, acknowledgement, replay determinism."""

from __future__ import annotations

import time

import numpy as np
import pytest

from alarms.journal import verify_journal
from config import DEMO_SITE
from ingest import bus
from ingest.bus import Message
from ingest.engine import Engine, RecordingReader, replay, tick_message
from tests.builders import positions
from tests.engine_stack import EngineStack, reply_without_token


def test_worker_entering_restricted_zone_raises_then_clears_alarm(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(1000.0))
    # T0050 is a worker, not on Z-SUB's allowed list; Z-SUB spans x 133..157, y 58..82. The fences need a
    # tag 0.5 m past the boundary for 2 s (site.fences) before it counts as inside.
    assert eng.apply(2, positions(demo_site, {"T0050": (145.0, 70.0)}, 1000.05)).alarms == []
    assert eng.apply(3, positions(demo_site, {"T0050": (145.5, 70.0)}, 1002.0)).alarms == []  # 1.95 s
    out = eng.apply(4, positions(demo_site, {"T0050": (146.0, 70.0)}, 1002.1))
    assert [a["id"] for a in out.alarms] == ["zone.restricted:Z-SUB:T0050"]
    assert out.alarms[0]["state"] == "active_unack"
    assert out.alarms[0]["activated_ts_s"] == 1000.0  # engine time, not the fix's event time
    assert eng.person_alarm_rank()[49] == 3  # high
    assert out.fences[0].kind == "region_entry" and out.fences[0].ts_s == 1000.05  # when it crossed
    assert eng.apply(5, positions(demo_site, {"T0050": (157.2, 70.0)}, 1003.0)).alarms == []  # border band
    assert eng.apply(6, positions(demo_site, {"T0050": (160.0, 70.0)}, 1004.0)).alarms == []
    out = eng.apply(7, positions(demo_site, {"T0050": (162.0, 70.0)}, 1006.0))
    assert out.alarms[0]["state"] == "rtn_unack"
    assert out.fences[0].kind == "region_exit" and out.fences[0].dwell_s == pytest.approx(3.95)


def test_allowed_person_in_restricted_zone_raises_nothing(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, positions(demo_site, {"T0001": (145.0, 70.0)}, 5.0))  # P0001 is on Z-SUB's list
    out = eng.apply(2, positions(demo_site, {"T0001": (145.0, 70.0)}, 8.0))
    assert out.alarms == [] and out.fences[0].kind == "region_entry"


def test_acknowledge_by_known_user_and_refusal_reasons(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, positions(demo_site, {"T0050": (145.0, 70.0)}, 5.0))
    eng.apply(2, positions(demo_site, {"T0050": (145.0, 70.0)}, 7.5))
    aid = "zone.restricted:Z-SUB:T0050"

    def cmd(seq, **req):
        m = Message(topic="command", source="console", kind="command", event_ts_s=6.0, ingest_ts_s=6.0,
                    meta={"id": f"r{seq}", **req})
        return eng.apply(seq, m)

    assert cmd(3, op="ack", alarm=aid, user="nobody").reply["reason"] == "unknown user 'nobody'"
    assert cmd(4, op="ack", alarm=aid, user="op1").reply["ok"] is True
    assert eng.book.alarms[aid].state == "active_ack"
    refused = cmd(5, op="ack", alarm=aid, user="op1").reply
    assert refused == {"id": "r5", "ok": False, "reason": "alarm is active_ack: nothing to acknowledge"}
    assert cmd(6, op="ack", alarm="no.such", user="op1").reply["reason"] == "no such alarm"


def _escalations(eng: Engine, seq: int, t0: float, t1: float, aid: str) -> tuple[int, list[tuple[float, str, int]]]:
    """Tick the engine every 0.5 s from ``t0`` to ``t1`` (engine s); the escalation notices of alarm ``aid``:
    (time, role, step). Returns the next sequence number too."""
    found = []
    for t in np.arange(t0, t1 + 1e-9, 0.5):
        out = eng.apply(seq, tick_message(float(t)))
        seq += 1
        found += [(n.ts_s, n.notify_role, n.step) for n in out.notices if n.kind == "escalate" and n.alarm == aid]
    return seq, found


def test_demo_plant_escalates_an_unacknowledged_high_alarm_to_the_supervisor_after_120_s(demo_site):
    """demo-plant.yaml: default_escalation {high: default (120 s supervisor, 7200 s safety manager), critical:
    urgent (60 s, 600 s)}; no alarm rule names a policy, so each high or critical alarm takes its priority's."""
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(1000.0))
    eng.apply(2, positions(demo_site, {"T0050": (146.0, 70.0)}, 1000.0))
    eng.apply(3, positions(demo_site, {"T0050": (146.0, 70.0)}, 1002.1))  # inside Z-SUB for the fences' 2 s
    aid = "zone.restricted:Z-SUB:T0050"
    alarm = eng.book.alarms[aid]
    assert (alarm.priority, alarm.state, alarm.activated_ts_s) == ("high", "active_unack", 1000.0)
    seq, found = _escalations(eng, 4, 1000.5, 1119.5, aid)
    assert found == []  # nothing before activation + 120 s
    seq, found = _escalations(eng, seq, 1120.0, 1300.0, aid)
    assert found == [(1120.0, "supervisor", 1)]
    assert eng.book.alarms[aid].state == "active_unack" and eng.book.alarms[aid].escalation_step == 1


def test_demo_plant_escalates_vibration_zone_d_and_a_critical_sos_and_not_a_medium_alarm(demo_site):
    from tests.builders import vibration_features, wearable_events

    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(1000.0))
    vp = demo_site.vibration_points[3].id  # VP04 (P-201A): 20 mm/s is far into zone D (high)
    eng.apply(2, vibration_features(demo_site, {vp: 20.0}, 1000.0))
    eng.apply(3, wearable_events([("T0033", "sos")], 1000.0))  # SOS: critical
    eng.apply(4, vibration_features(demo_site, {demo_site.vibration_points[5].id: 7.0}, 1000.0))  # zone C: medium
    active = {a.definition.id: a.priority for a in eng.book.alarms.values() if a.active}
    vib_d, vib_c, sos = f"vibration.zone_d:{vp}", f"vibration.zone_c:{demo_site.vibration_points[5].id}", \
        "person.sos:T0033"
    assert (active[vib_d], active[sos], active[vib_c]) == ("high", "critical", "medium")
    seq = 5
    notices = []
    for t in np.arange(1000.5, 1200.0, 0.5):
        out = eng.apply(seq, tick_message(float(t)))
        seq += 1
        notices += [(n.alarm, n.ts_s, n.notify_role) for n in out.notices if n.kind == "escalate"]
    assert (vib_d, 1120.0, "supervisor") in notices
    assert [(t, role) for a, t, role in notices if a == sos] == [(1060.0, "supervisor")]
    assert all(a != vib_c for a, _, _ in notices)  # medium: no default policy


def test_inputs_must_arrive_in_sequence(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(1.0))
    with pytest.raises(ValueError, match="no gaps"):
        eng.apply(3, tick_message(2.0))


def test_bad_gas_status_shows_as_bad_not_as_last_value(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(10.0))

    def gas(seq, value, quality):
        m = Message(topic="gas.values", source="gas", kind="gas_values", event_ts_s=10.0, ingest_ts_s=10.0,
                    arrays={"detector_index": np.array([0], np.int32), "value": np.array([value]),
                            "quality": np.array([quality], np.uint8), "ts_s": np.array([10.0])})
        eng.apply(seq, m)

    gas(2, 5.0, 0)
    assert eng.state.gas_value[0] == 5.0
    gas(3, 7.0, 2)
    assert np.isnan(eng.state.gas_value[0]) and eng.gas_quality_now()[0] == 2
    eng.apply(4, tick_message(10.0 + 3.5))  # 3 x 1 s expected interval passed: stale
    assert eng.gas_quality_now()[0] == 3


@pytest.mark.slow
def test_live_engine_records_before_applying_and_replay_gives_same_journal_bytes(demo_site, tmp_path):
    with EngineStack(demo_site, tmp_path, site_text=DEMO_SITE.read_text()) as stack:
        t0 = time.time()
        path = [(120.0 + 2.0 * k, 70.0) for k in range(30)]  # walks east through Z-SUB (x 133..157)
        for k, xy in enumerate(path):
            stack.send(positions(stack.site, {"T0050": xy, "T0002": (10.0 + k, 150.0)}, t0 + 0.25 * k))
            time.sleep(0.02)
        stack.push.send_multipart([b"garbage"])  # framing error: recorded as rejected, never fatal
        reply = stack.command(id="a1", op="ack", alarm="zone.restricted:Z-SUB:T0050", user="sup1")
        assert reply_without_token(reply) == {"id": "a1", "ok": True}
        time.sleep(0.3)
        summary = stack.stop()
    assert summary["rejected"] == {"engine: bad_frame": 1}
    assert summary["alarms_raised"] == 1 and summary["positions"] == 60

    rec = RecordingReader(tmp_path / "live" / "recording.sqlite")
    kinds = [bus.decode(f).kind for _, f in rec.inputs()]
    dead = rec.dead_letters()
    rec.close()
    assert len(dead) == 1 and dead[0][1:3] == ("engine", "bad_frame")
    assert dead[0][4] == "garbage"  # the offending bytes are kept (escaped, truncated)
    assert kinds.count("positions") == 30 and kinds.count("command") == 1 and kinds.count("rejected") == 1

    replayed = replay(tmp_path / "live" / "recording.sqlite", tmp_path / "replay")
    assert replayed["journal_head"] == summary["journal_head"]
    live_bytes = (tmp_path / "live" / "journal.sqlite").read_bytes()
    assert live_bytes == (tmp_path / "replay" / "journal.sqlite").read_bytes()
    v = verify_journal(tmp_path / "live" / "journal.sqlite")
    assert v.ok and v.rows == 4  # the login of the acknowledgement, activate, acknowledge, clear
