"""The console's sequence-numbered copy of the alarm table (console.link.alarm_mirror), without sockets: every
rule of DESIGN principle 3 (gap, restart, late duplicate, deltas buffered while a snapshot is awaited, a full
table) checked against a hand-written sequence. The same rules over the real engine: tests/test_console_link.py."""

from __future__ import annotations

from dataclasses import fields

from console.link import AlarmTable, LinkCounters
from console.link.alarm_mirror import RESTART_WINDOW, AlarmMirror
from tests.records import alarm_record


def _mirror(**kw) -> tuple[AlarmMirror, dict[str, int]]:
    count = {f.name: 0 for f in fields(LinkCounters)}
    return AlarmMirror(count, **kw), count


def test_deltas_wait_for_the_snapshot_then_those_that_continue_it_are_applied():
    m, count = _mirror()
    assert m.need_snapshot and not m.synced
    m.on_delta(5, [alarm_record(5)])  # older than the snapshot: already in it
    m.on_delta(7, [alarm_record(7)])
    m.on_delta(8, [alarm_record(8)])
    m.on_snapshot(6, [alarm_record(5), alarm_record(6)])
    assert m.synced and not m.need_snapshot and m.seq == 8
    assert sorted(int(k[-4:]) for k in m.alarms) == [5, 6, 7, 8]
    assert (count["deltas"], count["deltas_applied"], count["deltas_ignored"], count["snapshots"]) == (3, 2, 1, 1)
    assert count["resyncs"] == 0  # the first snapshot is not a resync


def test_a_gap_asks_for_a_snapshot_and_the_next_snapshot_counts_as_a_resync():
    m, count = _mirror()
    m.on_snapshot(10, [])
    assert m.on_delta(11, [alarm_record(1)]) is False
    assert m.on_delta(13, [alarm_record(3)]) is True  # 12 lost
    assert m.need_snapshot and not m.synced and count["gaps"] == 1
    assert m.on_delta(14, [alarm_record(4)]) is False  # buffered, not applied
    assert set(m.alarms) == {alarm_record(1)["id"]}
    m.on_snapshot(12, [alarm_record(1), alarm_record(2)])
    assert m.seq == 14 and len(m.alarms) == 4 and count["resyncs"] == 1


def test_a_gap_right_after_the_snapshot_keeps_the_later_deltas_for_the_next_one():
    m, count = _mirror()
    m.on_delta(9, [alarm_record(9)])
    m.on_snapshot(6, [])  # 7 and 8 were never heard
    assert m.need_snapshot and count["gaps"] == 1 and m.seq == 6
    m.on_snapshot(8, [alarm_record(8)])
    assert m.seq == 9 and len(m.alarms) == 2


def test_a_sequence_that_goes_back_is_an_engine_restart_not_a_duplicate():
    m, count = _mirror()
    m.on_snapshot(50, [alarm_record(1)])
    assert m.on_delta(49, []) is False and count["deltas_ignored"] == 1  # a late duplicate
    assert m.on_delta(1, [alarm_record(2)]) is True and count["restarts"] == 1
    m.on_snapshot(1, [alarm_record(2)])  # the new engine's table replaces the dead one's
    assert set(m.alarms) == {alarm_record(2)["id"]} and m.seq == 1
    m2, count2 = _mirror()
    m2.on_snapshot(RESTART_WINDOW + 10, [])
    assert m2.on_delta(9, []) is True and count2["restarts"] == 1  # far behind: a restart too


def test_a_record_back_to_normal_leaves_the_table_and_a_bad_record_is_counted():
    m, count = _mirror()
    m.on_snapshot(1, [alarm_record(1), alarm_record(2)])
    m.on_delta(2, [alarm_record(1, state="normal"), {"id": "broken"}])
    assert set(m.alarms) == {alarm_record(2)["id"]} and count["bad_alarms"] == 1


def test_a_full_table_drops_the_lowest_priority_then_the_oldest_and_says_how_many():
    m, count = _mirror(max_alarms=3)
    recs = [
        alarm_record(1, priority="critical", ts_s=100.0),
        alarm_record(2, priority="low", ts_s=300.0),
        alarm_record(3, priority="low", ts_s=200.0),
        alarm_record(4, priority="medium", ts_s=50.0),
        alarm_record(5, priority="high", ts_s=10.0),
    ]
    m.on_snapshot(1, recs)
    kept = {r.id for r in m.alarms.values()}
    assert kept == {recs[0]["id"], recs[3]["id"], recs[4]["id"]} and count["alarms_dropped"] == 2


def test_the_pending_buffer_is_bounded_and_its_overflow_counted():
    m, count = _mirror(max_pending=3)
    for s in range(1, 6):
        m.on_delta(s, [alarm_record(s)])
    assert count["pending_overflow"] == 2
    m.on_snapshot(0, [])  # 1 and 2 fell out of the buffer: a gap, so another snapshot is asked for
    assert m.need_snapshot and count["gaps"] == 1


def test_table_is_new_only_when_something_changed():
    m, _ = _mirror()
    first = m.table(AlarmTable())
    assert first is None  # nothing yet: same seq, version and synced flag as an empty table
    m.on_snapshot(3, [alarm_record(1)])
    t = m.table(AlarmTable())
    assert t is not None and t.seq == 3 and t.synced and len(t.alarms) == 1
    assert m.table(t) is None


def test_another_engine_run_is_a_restart_even_when_its_first_deltas_were_lost():
    """The finding of issue 13: an engine started again numbers its deltas from 1; a console that lost the new
    run's first deltas used to take seq 2, 3... as late duplicates and keep the dead engine's alarms."""
    m, count = _mirror()
    m.on_snapshot(50, [alarm_record(1), alarm_record(2)], epoch="run-a")
    assert m.on_delta(51, [alarm_record(3)], epoch="run-a") is False and m.seq == 51
    # the new run's delta 1 was lost; delta 2 arrives: another epoch, so a restart, not a duplicate
    assert m.on_delta(2, [alarm_record(9)], epoch="run-b") is True
    assert m.need_snapshot and count["restarts"] == 1
    m.on_delta(3, [alarm_record(10)], epoch="run-b")
    m.on_snapshot(2, [alarm_record(9)], epoch="run-b")
    assert set(m.alarms) == {alarm_record(9)["id"], alarm_record(10)["id"]} and m.seq == 3


def test_a_status_of_another_engine_run_asks_for_its_table_and_deltas_of_the_old_run_are_dropped():
    m, count = _mirror()
    m.on_snapshot(7, [alarm_record(1)], epoch="run-a")
    assert m.note_epoch("run-a") is False and m.note_epoch(None) is False
    assert m.note_epoch("run-b") is True and m.need_snapshot  # no delta of the new run came at all
    m.on_delta(8, [alarm_record(2)], epoch="run-a")  # a late one of the old run, buffered meanwhile
    m.on_snapshot(0, [], epoch="run-b")
    assert m.alarms == {} and m.seq == 0 and m.synced and count["deltas_ignored"] == 1
