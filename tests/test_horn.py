"""The control room's horn (ingest/protocol/horn.py): which alarms sound it, what a 60 s silence covers, and the
engine's silence command (roles, journal, published status)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from alarms.journal import Journal, verify_journal
from ingest.bus import Message
from ingest.engine import Engine, tick_message
from ingest.protocol.horn import HORN_SILENCE_S, Silence, horn_call

T0 = 1_800_000_000.0


def test_high_and_critical_unacknowledged_alarms_sound_the_rest_do_not():
    alarms = [
        ("a.crit", 4, T0, True),
        ("a.high", 3, T0, True),
        ("a.med", 2, T0, True),  # medium and low never sound
        ("a.acked", 4, T0, False),  # acknowledged: quiet
    ]
    call = horn_call(alarms, None, T0 + 1)
    assert (call.rank, call.alarms, call.silenced) == (4, ("a.crit", "a.high"), 0)
    assert horn_call(alarms[2:], None, T0 + 1).rank == 0


def test_a_silence_covers_what_sounded_and_lower_newcomers_for_60_s_not_an_equal_or_higher_newcomer():
    s = Silence("main", T0 + 10, T0 + 10 + HORN_SILENCE_S, rank=3, user="op1")  # silenced while a HIGH sounded
    old_high = ("old.high", 3, T0 + 5, True)
    assert horn_call([old_high], s, T0 + 20).rank == 0 and horn_call([old_high], s, T0 + 20).silenced == 1
    # a new HIGH (equal) and a new CRITICAL (higher) sound again during the silence
    assert horn_call([old_high, ("new.high", 3, T0 + 30, True)], s, T0 + 31).alarms == ("new.high",)
    assert horn_call([("new.crit", 4, T0 + 30, True)], s, T0 + 31).rank == 4
    # after a silence over a CRITICAL, a new HIGH stays quiet until the silence ends
    c = Silence("main", T0 + 10, T0 + 70, rank=4)
    assert horn_call([("new.high", 3, T0 + 30, True)], c, T0 + 31).rank == 0
    # at the end of the silence (70 s after T0 + 10: exclusive), everything unacknowledged sounds again
    assert horn_call([old_high, ("new.high", 3, T0 + 30, True)], c, T0 + 70).rank == 3
    with pytest.raises(ValueError, match="ends before"):
        Silence.from_json({"position": "main", "since_ts_s": 5, "until_ts_s": 1, "rank": 3})
    assert Silence.from_json(s.as_json()) == s


def cmd(eng, seq, ts, **req):
    return eng.apply(seq, Message("command", "console", "command", ts, ts, meta={"id": f"c{seq}", **req}))


def test_the_engine_silences_a_position_journals_it_and_publishes_it_until_it_ends(demo_site, tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    eng = Engine(demo_site, j)
    eng.apply(1, tick_message(T0))
    eng.apply(2, Message("wearable.events", "uwb", "wearable_events", T0, T0,
                         meta={"events": [{"tag": "T0033", "ts": T0, "event": "sos"}]}))
    assert eng.horn("main").alarms == ("person.sos:T0033",) and eng.horn("main").rank == 4

    assert cmd(eng, 3, T0 + 1, op="silence_horn", user="safety1").reply["reason"] == \
        "role safety_manager may not silence the horn"
    assert cmd(eng, 4, T0 + 1, op="silence_horn", user="op1", position="nowhere").reply["reason"] == \
        "unknown operator position 'nowhere'"
    eng.apply(5, tick_message(T0 + 2))  # the engine's clock: commands take the time of its last tick
    reply = cmd(eng, 6, T0 + 2, op="silence_horn", user="op1").reply
    assert reply["ok"] and reply["silence"] == {"position": "main", "since_ts_s": T0 + 2,
                                                "until_ts_s": T0 + 62, "rank": 4, "user": "op1"}
    assert eng.horn("main").rank == 0 and eng.status()["horn_silenced"]["main"]["until_ts_s"] == T0 + 62

    # a new critical alarm during the silence sounds again
    eng.apply(7, tick_message(T0 + 10))
    eng.apply(8, Message("wearable.events", "uwb", "wearable_events", T0 + 10, T0 + 10,
                         meta={"events": [{"tag": "T0034", "ts": T0 + 10, "event": "sos"}]}))
    assert eng.horn("main").alarms == ("person.sos:T0034",)
    # after 60 s the silence is over: not published any more, both sound
    eng.apply(9, tick_message(T0 + 62.5))
    assert "main" not in eng.status()["horn_silenced"]
    assert eng.horn("main").alarms == ("person.sos:T0033", "person.sos:T0034")
    j.close()
    rows = sqlite3.connect(tmp_path / "j.sqlite").execute(
        "SELECT event, actor, detail FROM journal WHERE alarm_id = 'horn:main'").fetchall()
    assert [r[:2] for r in rows] == [("refused", "safety1"), ("horn_silenced", "op1")]
    assert json.loads(rows[1][2])["sounding"] == ["person.sos:T0033"]
    assert verify_journal(tmp_path / "j.sqlite").ok


def test_the_page_horn_follows_the_alarms_of_its_position_and_shows_the_silence_escaped(demo_site):
    """The page side (console/web/horn.py) on a snapshot: a new CRITICAL sounds at once (the sequence moves), a
    silence published by the engine quiets it and is said on the page, the user's name escaped."""
    from types import MappingProxyType

    from console.link import AlarmTable, Frame, LinkCounters, LinkSnapshot
    from console.web.horn import Horn
    from ingest.protocol.records import AlarmRecord
    from tests.records import EPOCH_S, alarm_record

    def snap(now, silence=None):
        meta = {"engine_ts_s": now, "horn_silenced": {"main": silence} if silence else {}}
        rec = AlarmRecord.from_json(alarm_record(1, priority="critical", ts_s=EPOCH_S, area="Z-SUB"))
        return LinkSnapshot(positions=None, sensors=None,
                            status=Frame("engine.status", MappingProxyType({}), MappingProxyType(meta), now, 0.0, 1),
                            alarms=AlarmTable(seq=1, version=1, synced=True, alarms=MappingProxyType({rec.id: rec})),
                            counters=LinkCounters(), state="ok", last_frame_age_s=0.1)

    horn = Horn(demo_site)
    horn.update(snap(EPOCH_S + 1))
    assert horn.source.data["rank"] == [4] and horn.source.data["sequence"] == [1] and not horn.root.visible
    silence = {"position": "main", "since_ts_s": EPOCH_S + 2, "until_ts_s": EPOCH_S + 62, "rank": 4,
               "user": "<b>op1</b>"}
    horn.update(snap(EPOCH_S + 20, silence))
    assert horn.source.data["rank"] == [0] and horn.source.data["silenced"] == [1]
    assert "HORN SILENCED 42 s" in horn.root.text and "&lt;b&gt;op1" in horn.root.text and horn.root.visible
    horn.update(snap(EPOCH_S + 62, silence))  # the silence is over: it sounds again, at once
    assert horn.source.data["rank"] == [4] and horn.source.data["sequence"] == [2] and not horn.root.visible
