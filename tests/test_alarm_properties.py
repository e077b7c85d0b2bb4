"""Property tests of the alarm lifecycle: random shifts of condition changes, clock ticks, rule
suppression and person actions by random roles (unknown ones too) on four alarm definitions (plain; latching
with re-alarm; on/off-delayed with a repeating, priority-raising escalation; re-alarming with a one-step
escalation).

A shift is data (a list of plain tuples), applied the way the engine applies its inputs: engine time only
moves forward, every input has the next sequence number, a clock tick fires the timers before the next input
at that time, and the journal is committed after every input. What must hold, whatever the shift:

- nothing raises but ``Refused``; every state is one of ``STATES``;
- a refused action changes no alarm record, and writes exactly one 'refused' row naming actor, role, action
  and the exact reason it raised;
- every input that changes some alarm's state writes at least one row; every escalation step writes one
  'escalate' row and one notification;
- the journal chain verifies at the end, with as many rows as were counted along the way;
- replaying the same shift into a fresh book writes the same journal, hash for hash.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alarms.journal import Journal, JournalRow, verify_journal
from alarms.lifecycle import AlarmBook, AlarmDefinition, EscalationPlan, Refused
from ingest.protocol.names import ALARM_STATES as STATES
from ingest.protocol.names import PRIORITIES


def _define(id: str, priority: str, **behaviour: Any) -> AlarmDefinition:
    return AlarmDefinition(
        id=id,
        condition="test",
        source=id.split(":")[1],
        priority=priority,
        message_en=f"{id} abnormal",
        message_zh=f"{id} 异常",
        **behaviour,
    )


DEFINITIONS = (
    _define("test:PLAIN", "high"),
    _define("test:LATCH", "medium", latching=True, re_alarm_s=30.0),
    _define(
        "test:DELAY",
        "low",
        on_delay_s=5.0,
        off_delay_s=3.0,
        escalation=EscalationPlan(
            ((20.0, "supervisor"), (50.0, "safety_manager")), repeat_every_s=15.0, raise_priority=True
        ),
    ),
    _define("test:REALARM", "critical", re_alarm_s=10.0, escalation=EscalationPlan(((10.0, "supervisor"),))),
)
UNKNOWN_ALARM = "test:NOSUCH"
ALARM_IDS = tuple(d.id for d in DEFINITIONS) + (UNKNOWN_ALARM,)
ROLES = ("operator", "supervisor", "safety_manager", "admin", "wizard")
ACTIONS = (
    "acknowledge",
    "reset",
    "shelve",
    "unshelve",
    "remove_from_service",
    "return_to_service",
    "comment",
)
#: engine time, seconds, that passes before an input: short against the definitions' delays and timer periods,
#: so that inputs land inside them; a clock tick alone may jump far, onto and past the timers' due times
DT = st.sampled_from([0.0, 0.1, 1.0, 2.9, 3.0])
DT_TICK = st.sampled_from([0.1, 1.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 400.0])


@st.composite
def shifts(draw: st.DrawFn) -> list[tuple]:
    """A list of steps. In half the shifts only one alarm changes; in the others most steps concern one
    'focus' alarm. Either way, sequences on the same alarm (raise, clear, raise again inside a delay...) are
    common. Conditions change three times as often as a rule or the clock, person actions twice as often."""
    focus = draw(st.integers(0, len(DEFINITIONS) - 1))
    alone = draw(st.booleans())
    alarm = st.just(focus) if alone else st.sampled_from([focus] * 3 + list(range(len(DEFINITIONS))))
    target = st.sampled_from([focus] * 4 + list(range(len(ALARM_IDS))))  # a person may name no alarm at all
    kinds = st.sampled_from(["condition"] * 3 + ["tick", "suppress"] + ["person"] * 2)
    steps = []
    for _ in range(draw(st.integers(10, 50))):
        kind = draw(kinds)
        if kind == "condition":
            steps.append(("condition", draw(alarm), draw(st.booleans()), draw(DT)))
        elif kind == "tick":
            steps.append(("tick", draw(DT_TICK)))
        elif kind == "suppress":
            steps.append(("suppress", draw(alarm), draw(st.booleans()), draw(DT)))
        else:
            steps.append(
                (
                    "person",
                    draw(st.sampled_from(ACTIONS)),
                    draw(target),
                    draw(st.sampled_from(ROLES)),
                    draw(st.sampled_from(["", "maintenance"])),
                    draw(st.sampled_from([0.0, 30.0, 600.0, 5000.0, 50_000.0])),
                    draw(DT),
                )
            )
    return steps


SHIFT = shifts()
T0 = 1000.0

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


class Shift:
    """Applies a shift's steps to a fresh book with a journal in ``folder``; yields control to a checker
    around every input (the automatic tick before a step is an input too)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "journal.sqlite"
        self.journal = Journal(self.path)
        self.book = AlarmBook(self.journal)
        self.now = T0
        self.seq = 0

    def run(self, steps: list[tuple], check=None) -> None:
        for step in steps:
            dt = step[-1]
            self.now += dt
            self._input(("tick", dt), check)
            if step[0] != "tick":
                self._input(step, check)

    def _input(self, step: tuple, check) -> None:
        self.seq += 1
        before = Before(self) if check else None
        refused: Refused | None = None
        out: Any = None
        try:
            out = self._apply(step)
        except Refused as e:
            refused = e
        finally:
            self.journal.commit()
        if check:
            check(self, step, before, out, refused)

    def _apply(self, step: tuple) -> Any:
        b, ts, seq = self.book, self.now, self.seq
        kind = step[0]
        if kind == "tick":
            return b.tick(ts, seq)
        if kind == "condition":
            _, i, abnormal, _ = step
            return b.set_condition(DEFINITIONS[i], abnormal, ts, seq)
        if kind == "suppress":
            _, i, on, _ = step
            return b.set_suppressed(DEFINITIONS[i].id, DEFINITIONS[i], on, "rule", ts, seq)
        _, action, a, role, text, duration_s, _ = step
        aid, user = ALARM_IDS[a], f"u-{role}"
        if action == "acknowledge":
            return b.acknowledge(aid, user, role, text, ts, seq)
        if action == "reset":
            return b.reset(aid, user, role, ts, seq)
        if action == "shelve":
            return b.shelve(aid, user, role, text, duration_s, ts, seq)
        if action == "unshelve":
            return b.unshelve(aid, user, role, ts, seq)
        if action == "remove_from_service":
            return b.remove_from_service(aid, None, user, role, text, ts, seq)  # as the engine calls it
        if action == "return_to_service":
            return b.return_to_service(aid, user, role, ts, seq)
        return b.comment(aid, user, role, text, ts, seq)

    def rows(self) -> list[JournalRow]:
        return [JournalRow(*r) for r in self.journal.db.execute("SELECT * FROM journal ORDER BY row")]

    def hashes(self) -> list[str]:
        return [h for (h,) in self.journal.db.execute("SELECT hash FROM journal ORDER BY row")]


def states(book: AlarmBook) -> dict[str, str]:
    return {aid: a.state for aid, a in book.alarms.items()}


def snapshot(book: AlarmBook) -> str:
    return json.dumps(
        {"live": book.live(), "raised": book.raised_total, "notifications": book.notifications},
        sort_keys=True,
    )


class Before:
    """What the book looked like before one input."""

    def __init__(self, s: Shift) -> None:
        self.snapshot = snapshot(s.book)
        self.rows = s.journal.rows
        self.states = states(s.book)
        self.notifications = len(s.book.notifications)


def check_input(s: Shift, step: tuple, before: Before, out: Any, refused: Refused | None) -> None:
    book = s.book
    after = states(book)
    assert set(after.values()) <= set(STATES)
    for rec in book.live():
        assert rec["state"] in STATES and rec["priority"] in PRIORITIES
    if refused is not None:
        assert step[0] == "person", f"{step[0]} raised Refused: {refused}"
        _, action, a, role, _, _, _ = step
        assert snapshot(book) == before.snapshot, "a refused action changed an alarm record"
        assert s.journal.rows == before.rows + 1, "a refusal must write exactly one row"
        row = s.rows()[-1]
        assert (row.event, row.alarm_id, row.actor, row.role, row.input_seq, row.engine_ts_s) == (
            "refused",
            ALARM_IDS[a],
            f"u-{role}",
            role,
            s.seq,
            s.now,
        )
        assert json.loads(row.detail) == {"action": action, "reason": str(refused)}
        return
    new_rows = s.journal.rows - before.rows
    changed = {
        aid
        for aid in before.states.keys() | after.keys()
        if before.states.get(aid, "normal") != after.get(aid, "normal")
    }
    if changed:
        assert new_rows >= 1, f"state of {sorted(changed)} changed without a journal row"
    rows = s.rows()[before.rows :]
    assert all(r.input_seq == s.seq for r in rows)
    assert sum(r.event == "escalate" for r in rows) == len(book.notifications) - before.notifications
    if step[0] == "tick":
        assert new_rows >= len(out)  # every record a timer returned was journaled
        assert all(
            r.engine_ts_s <= s.now for r in rows
        )  # a timer fires at its due time, never later than now
    elif step[0] == "person":
        assert all(r.engine_ts_s == s.now for r in rows) and rows
        _, action, a, role, _, _, _ = step
        aid = ALARM_IDS[a]
        state = after.get(aid, "normal")
        assert (
            rows[-1].event
            == {
                "acknowledge": "acknowledge",
                "reset": "reset",
                "shelve": "shelve",
                "unshelve": "unshelve",
                "remove_from_service": "out_of_service",
                "return_to_service": "return_to_service",
                "comment": "comment",
            }[action]
        )
        if action == "acknowledge":
            assert state in ("active_ack", "latched_ack", "normal")
        elif action == "reset":
            assert state not in ("latched_ack", "latched_unack")
        elif action == "shelve":
            assert state == "shelved"
        elif action == "unshelve":
            assert state != "shelved"
        elif action == "remove_from_service":
            assert state == "out_of_service"
        elif action == "return_to_service":
            assert state != "out_of_service"
        else:
            assert snapshot(book) == before.snapshot  # a comment changes nothing but the journal


@PROPERTY_SETTINGS
@given(SHIFT)
def test_random_shifts_keep_the_lifecycle_invariants(steps):
    with tempfile.TemporaryDirectory() as folder:
        s = Shift(Path(folder))
        s.run(steps, check_input)
        s.journal.close()
        v = verify_journal(s.path)
        assert v.ok, v.reason
        assert v.rows == s.journal.rows and v.head == s.journal.head


@PROPERTY_SETTINGS
@given(SHIFT)
def test_replaying_a_shift_into_a_fresh_book_writes_the_same_journal(steps):
    with tempfile.TemporaryDirectory() as folder:
        shifts = []
        for name in ("first", "replay"):
            (Path(folder) / name).mkdir()
            shifts.append(Shift(Path(folder) / name))
            shifts[-1].run(steps)
        first, again = shifts
        assert again.hashes() == first.hashes()
        assert snapshot(again.book) == snapshot(first.book)
        for sh in shifts:
            sh.journal.close()
        assert again.path.read_bytes() == first.path.read_bytes()


# -- timers at their due times (found two defects, since fixed: see docs/alarms.md) --------------------------

DELAY, REALARM = 2, 3  # indexes into DEFINITIONS

#: on-delay blip: the first 5 s on-delay's timer (due T0+5) activates the alarm that came back at T0+4
BLIP = [
    ("condition", DELAY, True, 0.0),
    ("condition", DELAY, False, 3.0),
    ("condition", DELAY, True, 1.0),
    ("tick", 1.0),
]
#: acknowledged, cleared (the alarm leaves the book) and raised again at T0+3: the first activation's step-1
#: timer (due T0+10) escalates the new activation 7 s after it was raised instead of 10 s
STALE_ESCALATION = [
    ("condition", REALARM, True, 0.0),
    ("person", "acknowledge", REALARM, "operator", "", 0.0, 1.0),
    ("condition", REALARM, False, 1.0),
    ("condition", REALARM, True, 1.0),
    ("tick", 10.0),
]
#: raised again while shelved, unshelved after its step time: step 1 is journaled in the past
UNSHELVE = [
    ("condition", REALARM, True, 0.0),
    ("person", "shelve", REALARM, "supervisor", "maintenance", 600.0, 1.0),
    ("condition", REALARM, False, 1.0),
    ("condition", REALARM, True, 1.0),
    ("person", "unshelve", REALARM, "supervisor", "", 0.0, 60.0),
    ("tick", 0.1),
]


def check_timers(s: Shift) -> None:
    """Replays the journal against the shift: rows never go back in time; an on-delayed activation follows at
    least its on-delay of uninterrupted condition; escalation step k comes no earlier than the step time after
    the moment the alarm was last put (back) in front of people."""
    rows = s.rows()
    times = [r.engine_ts_s for r in rows]
    assert times == sorted(times), "journal rows go back in time"
    by_id = {d.id: d for d in DEFINITIONS}
    restart: dict[str, float] = {}
    for r in rows:
        d = by_id.get(r.alarm_id)
        if d is None:
            continue
        if r.event in (
            "activate",
            "re_alarm",
            "shelve_expired",
            "unsuppress",
            "return_to_service",
            "unshelve",
        ):
            restart[r.alarm_id] = r.engine_ts_s
        if r.event == "escalate":
            plan, k = d.escalation, json.loads(r.detail)["step"]
            n = len(plan.steps)
            after = plan.steps[k - 1][0] if k <= n else plan.steps[-1][0] + plan.repeat_every_s * (k - n)
            assert r.engine_ts_s >= restart[r.alarm_id] + after - 1e-9, f"step {k} of {r.alarm_id} came early"
        if r.event == "activate" and d.on_delay_s > 0:
            since = abnormal_since(s.conditions[d.id], r.input_seq)
            assert since is not None and since <= r.engine_ts_s - d.on_delay_s + 1e-9, (
                f"{d.id} activated at {r.engine_ts_s}, abnormal since {since}"
            )


def abnormal_since(reports: list[tuple[int, float, bool]], before_seq: int) -> float | None:
    """When the condition last turned abnormal (and stayed so) among the reports before input
    ``before_seq``."""
    since, previous = None, False
    for seq, ts, abnormal in reports:
        if seq >= before_seq:
            break
        if abnormal and not previous:
            since = ts
        elif not abnormal:
            since = None
        previous = abnormal
    return since


@PROPERTY_SETTINGS
@given(SHIFT)
@example(BLIP)
@example(STALE_ESCALATION)
@example(UNSHELVE)
def test_timers_fire_no_earlier_than_their_delays_and_rows_never_go_back_in_time(steps):
    with tempfile.TemporaryDirectory() as folder:
        s = Shift(Path(folder))
        s.conditions = {d.id: [] for d in DEFINITIONS}  # (input seq, ts, abnormal) as reported

        def note(sh: Shift, step, before, out, refused) -> None:
            if step[0] == "condition":
                sh.conditions[DEFINITIONS[step[1]].id].append((sh.seq, sh.now, step[2]))

        s.run(steps, note)
        check_timers(s)
        s.journal.close()
