"""The ISA-18.2 alarm lifecycle (``alarms.lifecycle.AlarmBook``), transition by transition.

One test per row of the state table in docs/alarms.md (from state, trigger, to state, journal row), one per
refused action (the state is unchanged, the reason is the exact text, one ``refused`` row names actor, role,
action and reason), and the timers at their exact due times: on-delay, off-delay, re-alarm, shelve expiry,
escalation. The last tests drive the same through the engine's command path.

Some tests hold the fixes of defects found while writing them (docs/alarms.md lists them).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alarms.journal import Journal, JournalRow, verify_journal
from alarms.lifecycle import (
    DEFAULT_MAX_SHELVE_S,
    AlarmBook,
    AlarmDefinition,
    EscalationPlan,
    Refused,
)
from config.schema import FenceSettings
from ingest.bus import Message
from ingest.engine import Engine, tick_message
from ingest.protocol.names import ALARM_STATES as STATES

T0 = 1000.0  # engine time of the first activation in most tests, seconds
GAS_ID = "gas.high:GD-01"


def gas_alarm(priority: str = "high", **behaviour: Any) -> AlarmDefinition:
    """An H2S high alarm on detector GD-01 with the given behaviour (delays, latching, re-alarm,
    escalation)."""
    return AlarmDefinition(
        id=GAS_ID,
        condition="gas.high",
        source="GD-01",
        priority=priority,
        message_en="H2S high at GD-01",
        message_zh="GD-01 硫化氢浓度高",
        **behaviour,
    )


class Rig:
    """An AlarmBook with a real journal, driven the way the engine drives it: one input sequence number per
    call, the journal committed after every input (refused or not)."""

    def __init__(self, path: Path, **book_kw: Any) -> None:
        self.path = path
        self.journal = Journal(path)
        self.book = AlarmBook(self.journal, **book_kw)
        self.seq = 0

    def _input(self, fn, *args: Any) -> Any:
        self.seq += 1
        try:
            return fn(*args, self.seq)
        finally:
            self.journal.commit()

    # inputs
    def condition(self, d: AlarmDefinition, abnormal: bool, ts: float, position_m=None):
        self.seq += 1
        try:
            return self.book.set_condition(d, abnormal, ts, self.seq, position_m)
        finally:
            self.journal.commit()

    def tick(self, ts: float) -> list[dict[str, Any]]:
        return self._input(self.book.tick, ts)

    def suppress(
        self,
        d: AlarmDefinition | None,
        on: bool,
        ts: float,
        reason: str = "permit PTW-17 valid",
        alarm_id: str = GAS_ID,
    ):
        return self._input(self.book.set_suppressed, alarm_id, d, on, reason, ts)

    def ack(
        self, ts: float, user: str = "op1", role: str = "operator", comment: str = "", alarm_id: str = GAS_ID
    ):
        return self._input(self.book.acknowledge, alarm_id, user, role, comment, ts)

    def reset(self, ts: float, user: str = "op1", role: str = "operator", alarm_id: str = GAS_ID):
        return self._input(self.book.reset, alarm_id, user, role, ts)

    def shelve(
        self,
        ts: float,
        duration_s: float = 600.0,
        reason: str = "detector being recalibrated",
        user: str = "sup1",
        role: str = "supervisor",
        alarm_id: str = GAS_ID,
    ):
        return self._input(self.book.shelve, alarm_id, user, role, reason, duration_s, ts)

    def unshelve(self, ts: float, user: str = "sup1", role: str = "supervisor", alarm_id: str = GAS_ID):
        return self._input(self.book.unshelve, alarm_id, user, role, ts)

    def out_of_service(
        self,
        ts: float,
        reason: str = "detector replaced",
        user: str = "sup1",
        role: str = "supervisor",
        alarm_id: str = GAS_ID,
        definition: AlarmDefinition | None = None,
    ):
        return self._input(self.book.remove_from_service, alarm_id, definition, user, role, reason, ts)

    def return_to_service(
        self, ts: float, user: str = "sup1", role: str = "supervisor", alarm_id: str = GAS_ID
    ):
        return self._input(self.book.return_to_service, alarm_id, user, role, ts)

    def comment(
        self, ts: float, text: str, user: str = "op1", role: str = "operator", alarm_id: str = GAS_ID
    ):
        return self._input(self.book.comment, alarm_id, user, role, text, ts)

    # views
    def state(self, alarm_id: str = GAS_ID) -> str:
        """The alarm's state; an alarm the book no longer holds is normal (it left the live list)."""
        a = self.book.alarms.get(alarm_id)
        return "normal" if a is None else a.state

    def rows(self) -> list[JournalRow]:
        return [JournalRow(*r) for r in self.journal.db.execute("SELECT * FROM journal ORDER BY row")]

    def last(self) -> JournalRow:
        return self.rows()[-1]

    def events(self) -> list[tuple[str, float, str]]:
        return [(r.event, r.engine_ts_s, r.state) for r in self.rows()]

    def snapshot(self) -> str:
        """Everything a refused action must leave as it was (records as JSON: NaN compares equal)."""
        return json.dumps(
            {
                "live": self.book.live(),
                "raised": self.book.raised_total,
                "notifications": self.book.notifications,
            },
            sort_keys=True,
        )


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    """``make_rig(**book_kw)``: a Rig with its own journal; every journal is closed and verified at the end."""
    rigs: list[Rig] = []

    def make(**book_kw: Any) -> Rig:
        rigs.append(Rig(tmp_path / f"journal-{len(rigs)}.sqlite", **book_kw))
        return rigs[-1]

    yield make
    for r in rigs:
        r.journal.close()
        v = verify_journal(r.path)
        assert v.ok, v.reason  # every test's journal chain verifies


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


def assert_refused(
    rig: Rig, call, reason: str, *, action: str, actor: str, role: str, alarm_id: str = GAS_ID
) -> JournalRow:
    """``call`` raises Refused(reason), changes nothing, and writes exactly one 'refused' row."""
    before, rows_before, state_before = rig.snapshot(), rig.journal.rows, rig.state(alarm_id)
    with pytest.raises(Refused) as exc:
        call()
    assert str(exc.value) == reason
    assert rig.snapshot() == before
    assert rig.journal.rows == rows_before + 1
    row = rig.last()
    assert (row.event, row.alarm_id, row.actor, row.role) == ("refused", alarm_id, actor, role)
    assert json.loads(row.detail) == {"action": action, "reason": reason}
    assert row.input_seq == rig.seq
    if alarm_id in rig.book.alarms:
        assert row.state == state_before
    return row


# -- conditions: normal <-> active, return to normal, acknowledge --------------------------------------------


def test_condition_raises_alarm_active_unacknowledged(rig):
    rec = rig.condition(gas_alarm(), True, T0, position_m=(145.12345, 70.0))
    assert rec["state"] == "active_unack" and rec["activated_ts_s"] == T0 and rec["acked"] is False
    row = rig.last()
    assert (row.event, row.state, row.actor, row.role, row.input_seq, row.engine_ts_s) == (
        "activate",
        "active_unack",
        "engine",
        "",
        1,
        T0,
    )
    assert json.loads(row.detail) == {"priority": "high", "position_m": [145.123, 70.0]}
    assert rig.book.raised_total == 1


def test_normal_condition_for_unknown_alarm_is_ignored(rig):
    assert rig.condition(gas_alarm(), False, T0) is None
    assert rig.book.alarms == {} and rig.journal.rows == 0


def test_unacknowledged_alarm_whose_condition_clears_is_returned_unacknowledged(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rec = rig.condition(d, False, T0 + 10)
    assert rec["state"] == "rtn_unack" and rec["active"] is False
    assert rig.events()[-1] == ("clear", T0 + 10, "rtn_unack")


def test_operator_acknowledges_active_alarm(rig):
    rig.condition(gas_alarm(), True, T0)
    rec = rig.ack(T0 + 12, comment="going to look")
    assert rec["state"] == "active_ack" and rec["acked_by"] == "op1"
    row = rig.last()
    assert (row.event, row.state, row.actor, row.role, row.engine_ts_s) == (
        "acknowledge",
        "active_ack",
        "op1",
        "operator",
        T0 + 12,
    )
    assert json.loads(row.detail) == {"comment": "going to look", "after_s": 12.0}


def test_acknowledged_alarm_whose_condition_clears_returns_to_normal_and_leaves_the_list(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rec = rig.condition(d, False, T0 + 2)
    assert rec["state"] == "normal"
    assert rig.book.alarms == {} and rig.book.live() == []
    assert rig.events()[-1] == ("clear", T0 + 2, "normal")


def test_acknowledging_returned_alarm_returns_it_to_normal(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 10)
    rec = rig.ack(T0 + 20)
    assert rec["state"] == "normal" and rig.book.live() == []
    assert rig.events()[-1] == ("acknowledge", T0 + 20, "normal")


def test_condition_returning_before_acknowledgement_raises_the_alarm_again(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 10)
    rec = rig.condition(d, True, T0 + 100)
    assert rec["state"] == "active_unack" and rec["activated_ts_s"] == T0 + 100
    assert [e for e, _, _ in rig.events()] == ["activate", "clear", "activate"]
    assert rig.book.raised_total == 2


# -- latching ------------------------------------------------------------------------------------------------


def test_latching_alarm_latches_unacknowledged_then_acknowledge_then_reset(rig):
    d = gas_alarm(latching=True)
    rig.condition(d, True, T0)
    assert rig.condition(d, False, T0 + 5)["state"] == "latched_unack"
    assert rig.ack(T0 + 6)["state"] == "latched_ack"
    rec = rig.reset(T0 + 7)
    assert rec["state"] == "normal" and rig.book.live() == []
    assert rig.events() == [
        ("activate", T0, "active_unack"),
        ("clear", T0 + 5, "latched_unack"),
        ("acknowledge", T0 + 6, "latched_ack"),
        ("reset", T0 + 7, "normal"),
    ]
    assert (rig.last().actor, rig.last().role) == ("op1", "operator")


def test_latching_alarm_acknowledged_while_active_latches_acknowledged(rig):
    d = gas_alarm(latching=True)
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    assert rig.condition(d, False, T0 + 5)["state"] == "latched_ack"
    assert rig.reset(T0 + 9)["state"] == "normal"


def test_latched_alarm_is_raised_again_when_its_condition_returns(rig):
    d = gas_alarm(latching=True)
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rig.condition(d, False, T0 + 5)
    rec = rig.condition(d, True, T0 + 8)
    assert rec["state"] == "active_unack"
    # and it no longer needs a reset: clearing latches it anew
    rig.ack(T0 + 9)
    assert rig.condition(d, False, T0 + 10)["state"] == "latched_ack"


def test_reset_of_latched_alarm_before_acknowledgement_is_refused(rig):
    d = gas_alarm(latching=True)
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 5)
    assert_refused(
        rig,
        lambda: rig.reset(T0 + 6),
        "acknowledge the latched alarm before resetting it",
        action="reset",
        actor="op1",
        role="operator",
    )
    assert rig.state() == "latched_unack"


@pytest.mark.parametrize("acked", [False, True])
def test_reset_of_non_latched_alarm_is_refused(rig, acked):
    rig.condition(gas_alarm(), True, T0)
    if acked:
        rig.ack(T0 + 1)
    state = "active_ack" if acked else "active_unack"
    assert_refused(
        rig,
        lambda: rig.reset(T0 + 2),
        f"alarm is {state}: only a latched alarm is reset",
        action="reset",
        actor="op1",
        role="operator",
    )


# -- shelving ------------------------------------------------------------------------------------------------


def test_supervisor_shelves_active_alarm_with_reason_and_expiry(rig):
    rig.condition(gas_alarm(), True, T0)
    rec = rig.shelve(T0 + 10, 600.0, "detector being recalibrated")
    assert rec["state"] == "shelved"
    assert rec["shelved"] == {"until_ts_s": T0 + 610, "by": "sup1", "reason": "detector being recalibrated"}
    row = rig.last()
    assert (row.event, row.state, row.actor, row.role) == ("shelve", "shelved", "sup1", "supervisor")
    assert json.loads(row.detail) == {
        "reason": "detector being recalibrated",
        "duration_s": 600.0,
        "until_ts_s": T0 + 610,
    }


def test_shelve_that_expires_while_alarm_is_active_returns_it_unacknowledged(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.ack(T0 + 5)
    rig.shelve(T0 + 10, 600.0)
    assert rig.tick(T0 + 609.9) == [] and rig.state() == "shelved"
    out = rig.tick(T0 + 700.0)  # a late tick: the expiry is journaled at its due time, not the tick's
    assert [r["state"] for r in out] == ["active_unack"]
    row = rig.last()
    assert (row.event, row.engine_ts_s, row.input_seq, row.state, row.actor) == (
        "shelve_expired",
        T0 + 610,
        rig.seq,
        "active_unack",
        "engine",
    )
    assert rig.book.alarms[GAS_ID].activated_ts_s == T0 + 610  # escalation counts from its return


def test_manual_unshelve_of_active_alarm_returns_it_acknowledged(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.shelve(T0 + 10, 600.0)
    rec = rig.unshelve(T0 + 100)
    assert rec["state"] == "active_ack" and rec["shelved"] is None
    assert (rig.last().event, rig.last().actor, rig.last().role) == ("unshelve", "sup1", "supervisor")
    rows = rig.journal.rows
    assert rig.tick(T0 + 700.0) == [] and rig.journal.rows == rows  # the old expiry timer is dead


def test_shelve_that_expires_after_condition_cleared_returns_to_normal(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.shelve(T0 + 10, 600.0)
    rig.condition(d, False, T0 + 100)
    assert rig.state() == "shelved" and rig.events()[-1] == ("clear", T0 + 100, "shelved")
    out = rig.tick(T0 + 610)
    assert [r["state"] for r in out] == ["normal"] and rig.book.live() == []
    assert rig.events()[-1] == ("shelve_expired", T0 + 610, "normal")


def test_latching_alarm_that_clears_while_shelved_is_latched_acknowledged_after_expiry(rig):
    d = gas_alarm(latching=True)
    rig.condition(d, True, T0)
    rig.shelve(T0 + 10, 600.0)  # shelving counts as seen
    rig.condition(d, False, T0 + 100)
    rig.tick(T0 + 610)
    assert rig.state() == "latched_ack"
    assert rig.reset(T0 + 620)["state"] == "normal"


@pytest.mark.parametrize("priority", ["critical", "high", "medium", "low"])
def test_shelve_up_to_the_priority_maximum_is_accepted_and_beyond_it_refused(make_rig, priority):
    limit = DEFAULT_MAX_SHELVE_S[priority]
    rig = make_rig()
    rig.condition(gas_alarm(priority), True, T0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 1, limit + 1.0),
        f"a {priority} alarm may be shelved for at most {limit:.0f} s",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )
    assert rig.shelve(T0 + 2, limit)["shelved"]["until_ts_s"] == T0 + 2 + limit


def test_shelve_maximum_comes_from_the_site_config(make_rig):
    rig = make_rig(max_shelve_s={"critical": 600.0, "high": 900.0, "medium": 1800.0, "low": 3600.0})
    rig.condition(gas_alarm("critical"), True, T0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 1, 601.0),
        "a critical alarm may be shelved for at most 600 s",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )
    assert rig.shelve(T0 + 1, 600.0)["state"] == "shelved"


@pytest.mark.parametrize("reason", ["", "   "])
def test_shelve_without_reason_is_refused(rig, reason):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 1, 60.0, reason),
        "a shelve needs a reason",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )


@pytest.mark.parametrize("duration_s", [0.0, -60.0, math.nan, math.inf])
def test_shelve_without_positive_finite_duration_is_refused(rig, duration_s):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 1, duration_s),
        "a shelve needs a positive duration",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )


def test_operator_may_not_shelve(rig):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 1, 60.0, user="op1", role="operator"),
        "role operator may not shelve",
        action="shelve",
        actor="op1",
        role="operator",
    )
    assert rig.state() == "active_unack"


def test_shelving_a_shelved_alarm_is_refused(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.shelve(T0 + 1, 60.0)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 2, 600.0),
        "alarm is shelved",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )
    rig.tick(T0 + 61)  # the first shelve still expires when it said
    assert rig.state() == "active_unack"


def test_shelving_an_alarm_out_of_service_is_refused(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.out_of_service(T0 + 1)
    assert_refused(
        rig,
        lambda: rig.shelve(T0 + 2, 60.0),
        "alarm is out_of_service",
        action="shelve",
        actor="sup1",
        role="supervisor",
    )


def test_unshelving_an_alarm_that_is_not_shelved_is_refused(rig):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.unshelve(T0 + 1),
        "alarm is active_unack, not shelved",
        action="unshelve",
        actor="sup1",
        role="supervisor",
    )


def test_acknowledging_a_shelved_alarm_is_refused(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.shelve(T0 + 1, 60.0)
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 2),
        "alarm is shelved: nothing to acknowledge",
        action="acknowledge",
        actor="op1",
        role="operator",
    )


# -- suppression by design -----------------------------------------------------------------------------------


def test_rule_suppresses_active_alarm(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rec = rig.suppress(d, True, T0 + 5, "permit PTW-17 valid")
    assert rec["state"] == "suppressed"
    row = rig.last()
    assert (row.event, row.state, row.actor) == ("suppress", "suppressed", "engine")
    assert json.loads(row.detail) == {"reason": "permit PTW-17 valid"}


def test_suppression_lifted_while_alarm_active_returns_it_unacknowledged(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rig.suppress(d, True, T0 + 5)
    rec = rig.suppress(d, False, T0 + 100, "permit PTW-17 closed")
    assert rec["state"] == "active_unack" and rec["activated_ts_s"] == T0 + 100
    assert rig.events()[-1] == ("unsuppress", T0 + 100, "active_unack")


def test_suppression_lifted_after_condition_cleared_returns_to_normal(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.suppress(d, True, T0 + 5)
    rig.condition(d, False, T0 + 50)
    assert rig.state() == "suppressed"
    assert rig.suppress(d, False, T0 + 100)["state"] == "normal"  # now: rtn_unack


def test_suppressed_alarm_raised_during_suppression_is_journaled_but_not_annunciated(rig):
    d = gas_alarm()
    assert rig.suppress(d, True, T0)["state"] == "suppressed"
    rec = rig.condition(d, True, T0 + 10)
    assert rec["state"] == "suppressed" and rec["active"] is True
    assert rig.events()[-1] == ("activate", T0 + 10, "suppressed")
    assert list(rig.book.active()) == []  # not on the operator's list
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 11),
        "alarm is suppressed: nothing to acknowledge",
        action="acknowledge",
        actor="op1",
        role="operator",
    )
    assert rig.suppress(d, False, T0 + 20)["state"] == "active_unack"


def test_lifting_suppression_of_unknown_alarm_does_nothing(rig):
    assert rig.suppress(None, False, T0) is None
    assert rig.suppress(None, True, T0) is None  # no definition: nothing to hold
    assert rig.journal.rows == 0


# -- out of service ------------------------------------------------------------------------------------------


def test_supervisor_takes_alarm_out_of_service_with_reason(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.ack(T0 + 1)
    rec = rig.out_of_service(T0 + 10, "detector replaced")
    assert rec["state"] == "out_of_service" and rec["out_of_service"] == {
        "by": "sup1",
        "reason": "detector replaced",
    }
    row = rig.last()
    assert (row.event, row.state, row.actor, row.role) == (
        "out_of_service",
        "out_of_service",
        "sup1",
        "supervisor",
    )
    assert json.loads(row.detail) == {"reason": "detector replaced"}


def test_return_to_service_while_active_returns_unacknowledged(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.ack(T0 + 1)
    rig.out_of_service(T0 + 10)
    rec = rig.return_to_service(T0 + 500)
    assert (
        rec["state"] == "active_unack" and rec["activated_ts_s"] == T0 + 500 and rec["out_of_service"] is None
    )
    assert rig.events()[-1] == ("return_to_service", T0 + 500, "active_unack")


def test_conditions_are_journaled_while_out_of_service(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rig.out_of_service(T0 + 10)
    rig.condition(d, False, T0 + 20)
    rig.condition(d, True, T0 + 30)
    rig.condition(d, False, T0 + 40)
    assert rig.events()[-3:] == [
        ("clear", T0 + 20, "out_of_service"),
        ("activate", T0 + 30, "out_of_service"),
        ("clear", T0 + 40, "out_of_service"),
    ]
    assert rig.state() == "out_of_service"


def test_return_to_service_of_an_acknowledged_alarm_after_clear_is_normal(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rig.out_of_service(T0 + 10)
    rig.condition(d, False, T0 + 20)
    assert rig.return_to_service(T0 + 50)["state"] == "normal"
    assert rig.book.live() == []


def test_return_to_service_after_clear_is_normal_even_if_raised_while_out_of_service(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.ack(T0 + 1)
    rig.out_of_service(T0 + 10)
    rig.condition(d, False, T0 + 20)
    rig.condition(d, True, T0 + 30)  # nobody is shown this activation: the alarm is out of service
    rig.condition(d, False, T0 + 40)
    assert rig.return_to_service(T0 + 50)["state"] == "normal"  # now: rtn_unack


def test_alarm_not_yet_raised_can_be_taken_out_of_service_with_its_definition(rig):
    d = gas_alarm()
    assert rig.out_of_service(T0, definition=d)["state"] == "out_of_service"
    rig.condition(d, True, T0 + 10)
    assert rig.state() == "out_of_service"
    assert rig.return_to_service(T0 + 20)["state"] == "active_unack"


def test_out_of_service_refusals(rig):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.out_of_service(T0 + 1, user="op1", role="operator"),
        "role operator may not remove from service",
        action="remove_from_service",
        actor="op1",
        role="operator",
    )
    assert_refused(
        rig,
        lambda: rig.out_of_service(T0 + 1, reason=" "),
        "taking an alarm out of service needs a reason",
        action="remove_from_service",
        actor="sup1",
        role="supervisor",
    )
    assert_refused(
        rig,
        lambda: rig.return_to_service(T0 + 1),
        "alarm is active_unack, not out of service",
        action="return_to_service",
        actor="sup1",
        role="supervisor",
    )
    rig.out_of_service(T0 + 2)
    assert_refused(
        rig,
        lambda: rig.out_of_service(T0 + 3),
        "alarm is already out of service",
        action="remove_from_service",
        actor="sup1",
        role="supervisor",
    )
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 3),
        "alarm is out_of_service: nothing to acknowledge",
        action="acknowledge",
        actor="op1",
        role="operator",
    )
    assert_refused(
        rig,
        lambda: rig.return_to_service(T0 + 4, user="op1", role="operator"),
        "role operator may not return to service",
        action="return_to_service",
        actor="op1",
        role="operator",
    )


# -- other refusals and the role table -----------------------------------------------------------------------


def test_acknowledging_an_acknowledged_alarm_is_refused(rig):
    rig.condition(gas_alarm(), True, T0)
    rig.ack(T0 + 1)
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 2, user="op2"),
        "alarm is active_ack: nothing to acknowledge",
        action="acknowledge",
        actor="op2",
        role="operator",
    )


def test_acknowledging_a_normal_alarm_is_refused(rig):
    rig.condition(gas_alarm(on_delay_s=30.0), True, T0)  # pending in its on-delay: held, but normal
    assert rig.state() == "normal"
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 1),
        "alarm is normal: nothing to acknowledge",
        action="acknowledge",
        actor="op1",
        role="operator",
    )


@pytest.mark.parametrize(
    "action", ["ack", "reset", "shelve", "unshelve", "out_of_service", "return_to_service", "comment"]
)
def test_action_on_unknown_alarm_is_refused(rig, action):
    call = {
        "ack": lambda: rig.ack(T0, user="sup1", role="supervisor", alarm_id="gas.high:GD-99"),
        "reset": lambda: rig.reset(T0, user="sup1", role="supervisor", alarm_id="gas.high:GD-99"),
        "shelve": lambda: rig.shelve(T0, 60.0, alarm_id="gas.high:GD-99"),
        "unshelve": lambda: rig.unshelve(T0, alarm_id="gas.high:GD-99"),
        "out_of_service": lambda: rig.out_of_service(T0, alarm_id="gas.high:GD-99"),
        "return_to_service": lambda: rig.return_to_service(T0, alarm_id="gas.high:GD-99"),
        "comment": lambda: rig.comment(T0, "?", user="sup1", role="supervisor", alarm_id="gas.high:GD-99"),
    }[action]
    name = {"ack": "acknowledge", "out_of_service": "remove_from_service"}.get(action, action)
    row = assert_refused(
        rig, call, "no such alarm", action=name, actor="sup1", role="supervisor", alarm_id="gas.high:GD-99"
    )
    assert row.state == "unknown"


@pytest.mark.parametrize("role", ["wizard", ""])
def test_unknown_role_is_refused(rig, role):
    rig.condition(gas_alarm(), True, T0)
    assert_refused(
        rig,
        lambda: rig.ack(T0 + 1, user="x1", role=role),
        f"unknown role {role!r}",
        action="acknowledge",
        actor="x1",
        role=role,
    )


def test_role_check_comes_before_the_alarm_lookup(rig):
    assert_refused(
        rig,
        lambda: rig.shelve(T0, 60.0, user="op1", role="operator", alarm_id="nope"),
        "role operator may not shelve",
        action="shelve",
        actor="op1",
        role="operator",
        alarm_id="nope",
    )


def test_comment_is_journaled_without_changing_state(rig):
    rig.condition(gas_alarm(), True, T0)
    before = rig.snapshot()
    assert rig.comment(T0 + 3, "crew on the way", user="safety1", role="safety_manager") is None
    assert rig.snapshot() == before
    row = rig.last()
    assert (row.event, row.state, row.actor, row.role) == (
        "comment",
        "active_unack",
        "safety1",
        "safety_manager",
    )
    assert json.loads(row.detail) == {"text": "crew on the way"}
    assert_refused(
        rig,
        lambda: rig.comment(T0 + 4, "  "),
        "empty comment",
        action="comment",
        actor="op1",
        role="operator",
    )


# Who may do what (issue 4; docs/alarms.md, "Roles"). Written out here on purpose, not read from ROLE_ACTIONS.
EVERY_ACTION = (
    "acknowledge",
    "reset",
    "comment",
    "shelve",
    "unshelve",
    "remove_from_service",
    "return_to_service",
)
MAY = {
    "operator": {"acknowledge", "reset", "comment"},
    "supervisor": set(EVERY_ACTION),
    "safety_manager": {"comment"},
    "admin": set(EVERY_ACTION),
}


@pytest.mark.parametrize("role", sorted(MAY))
@pytest.mark.parametrize("action", EVERY_ACTION)
def test_role_table_is_enforced_by_the_book(make_rig, role, action):
    rig = make_rig()
    latching = gas_alarm(latching=True)
    rig.condition(latching, True, T0)
    # put the alarm in the one state where the action is valid, so only the role can refuse it
    if action == "reset":
        rig.ack(T0 + 1)
        rig.condition(latching, False, T0 + 2)
    elif action == "unshelve":
        rig.shelve(T0 + 1, 60.0)
    elif action == "return_to_service":
        rig.out_of_service(T0 + 1)
    call = {
        "acknowledge": lambda: rig.ack(T0 + 5, user="u1", role=role),
        "reset": lambda: rig.reset(T0 + 5, user="u1", role=role),
        "comment": lambda: rig.comment(T0 + 5, "note", user="u1", role=role),
        "shelve": lambda: rig.shelve(T0 + 5, 60.0, user="u1", role=role),
        "unshelve": lambda: rig.unshelve(T0 + 5, user="u1", role=role),
        "remove_from_service": lambda: rig.out_of_service(T0 + 5, user="u1", role=role),
        "return_to_service": lambda: rig.return_to_service(T0 + 5, user="u1", role=role),
    }[action]
    if action in MAY[role]:
        call()
        assert rig.last().event != "refused"
    else:
        assert_refused(
            rig, call, f"role {role} may not {action.replace('_', ' ')}", action=action, actor="u1", role=role
        )


# -- re-alarm ------------------------------------------------------------------------------------------------


def test_acknowledged_alarm_still_active_re_alarms_after_its_re_alarm_time(rig):
    rig.condition(gas_alarm(re_alarm_s=300.0), True, T0)
    rig.ack(T0 + 10)
    assert rig.tick(T0 + 309.9) == [] and rig.state() == "active_ack"
    out = rig.tick(T0 + 310.0)
    assert [r["state"] for r in out] == ["active_unack"] and out[0]["activated_ts_s"] == T0 + 310
    row = rig.last()
    assert (row.event, row.engine_ts_s, row.input_seq, row.actor) == ("re_alarm", T0 + 310, rig.seq, "engine")
    rig.ack(T0 + 320)  # and again, counted from the new acknowledgement
    rig.tick(T0 + 700)
    assert rig.events()[-1] == ("re_alarm", T0 + 620, "active_unack")


def test_re_alarm_does_not_fire_once_the_condition_cleared(rig):
    d = gas_alarm(re_alarm_s=300.0)
    rig.condition(d, True, T0)
    rig.ack(T0 + 10)
    rig.condition(d, False, T0 + 100)
    assert rig.tick(T0 + 1000) == []
    assert [e for e, _, _ in rig.events()] == ["activate", "acknowledge", "clear"]


def test_re_alarm_counts_from_a_manual_unshelve(rig):
    rig.condition(gas_alarm(re_alarm_s=300.0), True, T0)
    rig.shelve(T0 + 10, 600.0)
    assert rig.tick(T0 + 400) == []  # no re-alarm while shelved
    rig.unshelve(T0 + 450)
    rig.tick(T0 + 749.9)
    assert rig.state() == "active_ack"
    rig.tick(T0 + 750)
    assert rig.events()[-1] == ("re_alarm", T0 + 750, "active_unack")


@pytest.mark.parametrize("hidden_by", ["out_of_service", "suppressed"])
def test_re_alarm_does_not_fire_while_out_of_service_or_suppressed(rig, hidden_by):
    d = gas_alarm(re_alarm_s=300.0)
    rig.condition(d, True, T0)
    rig.ack(T0 + 10)
    if hidden_by == "out_of_service":
        rig.out_of_service(T0 + 20)
    else:
        rig.suppress(d, True, T0 + 20)
    rows = rig.journal.rows
    assert rig.tick(T0 + 400) == []
    assert rig.journal.rows == rows


# -- on-delay and off-delay ----------------------------------------------------------------------------------


def test_condition_shorter_than_on_delay_raises_nothing(rig):
    d = gas_alarm(on_delay_s=5.0)
    assert rig.condition(d, True, T0) is None
    assert rig.tick(T0 + 4.9) == []
    assert rig.condition(d, False, T0 + 4.95) is None
    assert rig.tick(T0 + 10) == []
    assert rig.journal.rows == 0 and rig.book.alarms == {} and rig.book.raised_total == 0


def test_condition_lasting_the_on_delay_raises_at_its_due_time(rig):
    d = gas_alarm(on_delay_s=5.0)
    rig.condition(d, True, T0)
    assert rig.tick(T0 + 4.9) == []
    out = rig.tick(T0 + 5.3)  # the tick after the due time: journaled at the due time
    assert [(r["state"], r["activated_ts_s"]) for r in out] == [("active_unack", T0 + 5)]
    row = rig.last()
    assert (row.event, row.engine_ts_s, row.input_seq) == ("activate", T0 + 5, rig.seq)


def test_on_delay_restarts_when_condition_returns_for_an_alarm_still_on_the_list(rig):
    d = gas_alarm(on_delay_s=5.0)
    rig.condition(d, True, T0)
    rig.tick(T0 + 5)
    rig.condition(d, False, T0 + 6)  # rtn_unack: the alarm stays in the book
    rig.condition(d, True, T0 + 7)
    rig.condition(d, False, T0 + 8)
    rig.condition(d, True, T0 + 9)
    assert rig.tick(T0 + 13.9) == [] and rig.state() == "rtn_unack"
    rig.tick(T0 + 14)
    assert rig.events()[-1] == ("activate", T0 + 14, "active_unack")


def test_on_delay_restarts_when_condition_returns_after_a_short_blip(rig):
    d = gas_alarm(on_delay_s=5.0)
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 3)  # 3 s < on-delay: nothing, and the alarm leaves the book
    rig.condition(d, True, T0 + 4)  # a new 5 s on-delay: due at T0+9
    assert rig.tick(T0 + 8.9) == [] and rig.state() == "normal"  # bug: activates at T0+5 (old timer)
    rig.tick(T0 + 9)
    assert rig.events() == [("activate", T0 + 9, "active_unack")]


def test_clear_shorter_than_off_delay_does_not_clear(rig):
    d = gas_alarm(off_delay_s=3.0)
    rig.condition(d, True, T0)
    assert rig.condition(d, False, T0 + 10) is None
    assert rig.tick(T0 + 12.9) == []
    rig.condition(d, True, T0 + 12.95)
    assert rig.tick(T0 + 20) == [] and rig.state() == "active_unack"
    assert [e for e, _, _ in rig.events()] == ["activate"]


def test_clear_lasting_the_off_delay_clears_at_its_due_time(rig):
    d = gas_alarm(off_delay_s=3.0)
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 10)
    out = rig.tick(T0 + 13.5)
    assert [r["state"] for r in out] == ["rtn_unack"]
    assert rig.events()[-1] == ("clear", T0 + 13, "rtn_unack") and rig.last().input_seq == rig.seq


# -- escalation ----------------------------------------------------------------------------------------------

PLAN = EscalationPlan(((60.0, "supervisor"), (300.0, "safety_manager")), repeat_every_s=120.0)


def test_unacknowledged_alarm_escalates_per_policy_then_repeats_the_last_step(rig):
    rig.condition(gas_alarm(escalation=PLAN), True, T0)
    assert rig.tick(T0 + 59.9) == [] and rig.book.notifications == []
    out = rig.tick(T0 + 60)
    assert out[0]["escalation_step"] == 1
    assert rig.book.notifications == [
        {
            "alarm": GAS_ID,
            "notify_role": "supervisor",
            "step": 1,
            "priority": "high",
            "ts_s": T0 + 60,
            "input_seq": rig.seq,
        }
    ]
    row = rig.last()
    assert (row.event, row.engine_ts_s, row.state) == ("escalate", T0 + 60, "active_unack")
    assert json.loads(row.detail) == {
        "step": 1,
        "notify_role": "supervisor",
        "priority": "high",
        "repeat": False,
    }
    for ts in (T0 + 299.9, T0 + 300, T0 + 419.9, T0 + 420, T0 + 540):
        rig.tick(ts)
    assert [(n["step"], n["notify_role"], n["ts_s"]) for n in rig.book.notifications] == [
        (1, "supervisor", T0 + 60),
        (2, "safety_manager", T0 + 300),
        (3, "safety_manager", T0 + 420),
        (4, "safety_manager", T0 + 540),
    ]
    assert [json.loads(r.detail)["repeat"] for r in rig.rows() if r.event == "escalate"] == [
        False,
        False,
        True,
        True,
    ]
    rig.ack(T0 + 550, user="sup1", role="supervisor")  # acknowledging stops it
    rig.tick(T0 + 5000)
    assert len(rig.book.notifications) == 4
    assert sum(r.event == "escalate" for r in rig.rows()) == 4


def test_one_late_tick_fires_every_due_step_each_at_its_due_time(rig):
    rig.condition(gas_alarm(escalation=PLAN), True, T0)
    out = rig.tick(T0 + 600)
    assert [r["escalation_step"] for r in out] == [1, 2, 3, 4]
    assert [(r.event, r.engine_ts_s, r.input_seq) for r in rig.rows()[1:]] == [
        ("escalate", T0 + 60, 2),
        ("escalate", T0 + 300, 2),
        ("escalate", T0 + 420, 2),
        ("escalate", T0 + 540, 2),
    ]


def test_escalation_without_repeat_stops_after_the_last_step(rig):
    plan = EscalationPlan(((60.0, "supervisor"), (300.0, "safety_manager")))
    rig.condition(gas_alarm(escalation=plan), True, T0)
    rig.tick(T0 + 10_000)
    assert [n["step"] for n in rig.book.notifications] == [1, 2]


def test_alarm_acknowledged_before_the_first_step_never_escalates(rig):
    rig.condition(gas_alarm(escalation=PLAN), True, T0)
    rig.ack(T0 + 59)
    rig.tick(T0 + 10_000)
    assert rig.book.notifications == []


def test_escalation_raises_priority_one_level_per_step(rig):
    plan = EscalationPlan(
        ((10.0, "supervisor"), (20.0, "supervisor"), (30.0, "admin")),
        repeat_every_s=10.0,
        raise_priority=True,
    )
    d = gas_alarm("low", escalation=plan)
    rig.condition(d, True, T0)
    rig.tick(T0 + 40)
    assert [(n["step"], n["priority"]) for n in rig.book.notifications] == [
        (1, "medium"),
        (2, "high"),
        (3, "critical"),
        (4, "critical"),
    ]
    assert rig.book.alarms[GAS_ID].record()["priority"] == "critical"
    rig.ack(T0 + 41)
    rig.condition(d, False, T0 + 42)
    assert (
        rig.condition(d, True, T0 + 43)["priority"] == "low"
    )  # a new activation starts from its own priority


def test_returned_unacknowledged_alarm_does_not_escalate(rig):
    d = gas_alarm(escalation=PLAN)
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 30)
    rig.tick(T0 + 10_000)
    assert rig.state() == "rtn_unack" and rig.book.notifications == []


def test_shelved_alarm_does_not_escalate_and_counts_again_from_the_shelve_expiry(rig):
    rig.condition(gas_alarm(escalation=PLAN), True, T0)
    rig.shelve(T0 + 10, 600.0)
    rig.tick(T0 + 609.9)
    assert rig.book.notifications == []
    rig.tick(T0 + 669.9)  # back unacknowledged at T0+610: step 1 due at T0+670
    assert rig.book.notifications == []
    rig.tick(T0 + 670)
    assert [(n["step"], n["ts_s"]) for n in rig.book.notifications] == [(1, T0 + 670)]


def test_escalation_of_a_new_activation_counts_from_that_activation(rig):
    d = gas_alarm(escalation=EscalationPlan(((120.0, "supervisor"),)))
    rig.condition(d, True, T0)
    rig.ack(T0 + 10)
    rig.condition(d, False, T0 + 20)  # normal: the alarm leaves the book, its escalation timer stays queued
    rig.condition(d, True, T0 + 30)  # step 1 is due at T0+150
    rig.tick(T0 + 120)
    assert rig.book.notifications == []  # bug: the first activation's timer escalates at T0+120
    rig.tick(T0 + 150)
    assert [n["ts_s"] for n in rig.book.notifications] == [T0 + 150]


def test_manual_unshelve_returns_acknowledged_even_after_a_reactivation_while_shelved(rig):
    """Issue 4: a manual unshelve of a still-active alarm returns it acknowledged: the person who brings it
    back has seen it. So nothing escalates from an activation that happened while it was shelved."""
    d = gas_alarm(escalation=EscalationPlan(((60.0, "supervisor"),)))
    rig.condition(d, True, T0)
    rig.shelve(T0 + 10, 600.0)
    rig.condition(d, False, T0 + 20)
    rig.condition(d, True, T0 + 30)  # raised again while shelved
    rec = rig.unshelve(T0 + 200)
    assert rec["state"] == "active_ack" and rec["acked_by"] == "sup1"
    rig.tick(T0 + 400)
    times = [r.engine_ts_s for r in rig.rows()]
    assert times == sorted(times)
    assert rig.book.notifications == []


# -- chattering ----------------------------------------------------------------------------------------------


def test_three_activations_within_60_s_mark_the_alarm_chattering(rig):
    d = gas_alarm()
    rig.condition(d, True, T0)
    rig.condition(d, False, T0 + 1)
    assert rig.condition(d, True, T0 + 20)["chattering"] is False
    rig.condition(d, False, T0 + 21)
    rec = rig.condition(d, True, T0 + 59.9)
    assert rec["chattering"] is True
    assert json.loads(rig.last().detail) == {"priority": "high", "chattering": 3}


def test_activations_spread_over_60_s_or_more_are_not_chattering(rig):
    d = gas_alarm()
    for ts in (T0, T0 + 30, T0 + 60):
        rig.condition(d, True, ts)
        rig.condition(d, False, ts + 1)
    assert rig.book.alarms[GAS_ID].chattering is False  # T0 is exactly 60 s before T0+60: out of the window


def test_chattering_is_detected_when_each_activation_is_acknowledged(rig):
    d = gas_alarm()
    for ts in (T0, T0 + 20):
        rig.condition(d, True, ts)
        rig.ack(ts + 1)
        rig.condition(d, False, ts + 2)
    assert rig.condition(d, True, T0 + 40)["chattering"] is True


# -- the journal and the book as a whole ---------------------------------------------------------------------


def test_a_shift_of_mixed_actions_journals_one_verifiable_chain(rig):
    d = gas_alarm(latching=True, re_alarm_s=120.0, escalation=PLAN)
    rig.condition(d, True, T0)
    rig.tick(T0 + 60)
    rig.ack(T0 + 70)
    rig.tick(T0 + 190)
    rig.shelve(T0 + 200, 300.0)
    with pytest.raises(Refused):
        rig.ack(T0 + 210)
    rig.condition(d, False, T0 + 250)
    rig.tick(T0 + 500)
    rig.reset(T0 + 510, user="sup1", role="supervisor")
    assert [e for e, _, _ in rig.events()] == [
        "activate",
        "escalate",
        "acknowledge",
        "re_alarm",
        "shelve",
        "refused",
        "clear",
        "shelve_expired",
        "reset",
    ]
    assert rig.book.live() == []
    v = verify_journal(rig.path)  # committed rows are visible to a reader while the writer is open (WAL)
    assert v.ok and v.rows == 9 and v.head == rig.journal.head


def test_every_state_is_named_in_both_console_languages_and_in_the_docs():
    from console.web.i18n import TEXTS

    doc = (Path(__file__).parents[1] / "docs" / "alarms.md").read_text(encoding="utf-8")
    for s in STATES:
        assert f"state.{s}" in TEXTS["en"] and f"state.{s}" in TEXTS["zh-CN"], s
        assert f"`{s}`" in doc and TEXTS["zh-CN"][f"state.{s}"] in doc, s


def test_refused_out_of_service_of_a_new_alarm_leaves_the_book_empty(rig):
    assert_refused(
        rig,
        lambda: rig.out_of_service(T0, reason="", definition=gas_alarm()),
        "taking an alarm out of service needs a reason",
        action="remove_from_service",
        actor="sup1",
        role="supervisor",
    )


def test_shelve_limit_of_a_priority_the_site_does_not_list_keeps_its_default(make_rig):
    rig = make_rig(max_shelve_s={"critical": 600.0})
    rig.condition(gas_alarm("high"), True, T0)
    assert rig.shelve(T0 + 1, 3600.0)["state"] == "shelved"


# -- through the engine --------------------------------------------------------------------------------------

ZONE_ALARM = "zone.restricted:Z-SUB:T0050"


class EngineRig:
    """The engine with a real journal; inputs are bus Messages sequenced from 1."""

    def __init__(self, site, path: Path) -> None:
        self.journal = Journal(path)
        self.path = path
        self.engine = Engine(site, self.journal)
        self.site = site
        self.seq = 0

    def apply(self, msg: Message):
        self.seq += 1
        return self.engine.apply(self.seq, msg)

    def tick(self, ts: float):
        return self.apply(tick_message(ts))

    def position(self, tag: str, xy: tuple[float, float], ts: float):
        i = [p.tag for p in self.site.people].index(tag)
        return self.apply(
            Message(
                topic="uwb.positions",
                source="uwb",
                kind="positions",
                event_ts_s=ts,
                ingest_ts_s=ts,
                arrays={
                    "person_index": np.array([i], np.int32),
                    "xyz_m": np.array([[xy[0], xy[1], 1.2]]),
                    "ts_s": np.array([ts]),
                    "valid": np.ones(1, bool),
                    "gdop": np.array([1.5]),
                    "rms_m": np.array([0.1]),
                },
            )
        )

    def command(self, ts: float, **req: Any):
        return self.apply(
            Message(
                topic="command",
                source="console",
                kind="command",
                event_ts_s=ts,
                ingest_ts_s=ts,
                meta={"id": f"c{self.seq + 1}", **req},
            )
        )

    def rows(self) -> list[JournalRow]:
        return [JournalRow(*r) for r in self.journal.db.execute("SELECT * FROM journal ORDER BY row")]


@pytest.fixture
def engine_rig(demo_site, tmp_path):
    # no fence hysteresis here: these tests are about the lifecycle through the engine, not the fences
    site = demo_site.model_copy(update={"fences": FenceSettings(border_m=0.0, min_dwell_s=0.0)})
    r = EngineRig(site, tmp_path / "engine-journal.sqlite")
    r.tick(T0)
    r.position("T0050", (145.0, 70.0), T0)  # a worker inside the substation (Z-SUB: x 133..157, y 58..82)
    assert r.engine.book.alarms[ZONE_ALARM].state == "active_unack"
    yield r
    r.journal.close()
    assert verify_journal(r.path).ok


def test_engine_refuses_an_operator_shelving_and_journals_the_refusal(engine_rig):
    out = engine_rig.command(
        T0 + 1, op="shelve", alarm=ZONE_ALARM, user="op1", reason="known", duration_s=600
    )
    assert out.reply == {"id": "c3", "ok": False, "reason": "role operator may not shelve"}
    assert out.alarms == [] and engine_rig.engine.book.alarms[ZONE_ALARM].state == "active_unack"
    row = engine_rig.rows()[-1]
    assert (row.event, row.alarm_id, row.actor, row.role, row.input_seq, row.engine_ts_s) == (
        "refused",
        ZONE_ALARM,
        "op1",
        "operator",
        3,
        T0,
    )
    assert json.loads(row.detail) == {"action": "shelve", "reason": "role operator may not shelve"}


def test_engine_lets_a_supervisor_shelve_and_the_clock_tick_expires_it(engine_rig):
    out = engine_rig.command(
        T0 + 1, op="shelve", alarm=ZONE_ALARM, user="sup1", reason="escorted visit", duration_s=60
    )
    assert out.reply == {"id": "c3", "ok": True}
    assert [(r["id"], r["state"]) for r in out.alarms] == [(ZONE_ALARM, "shelved")]
    assert engine_rig.tick(T0 + 59.9).alarms == []
    out = engine_rig.tick(T0 + 60.1)
    assert [r["state"] for r in out.alarms] == ["active_unack"]
    row = engine_rig.rows()[-1]
    assert (row.event, row.engine_ts_s, row.input_seq) == ("shelve_expired", T0 + 60, engine_rig.seq)


@pytest.mark.parametrize(
    ("req", "reason"),
    [
        ({"op": "ack", "user": "safety1"}, "role safety_manager may not acknowledge"),
        (
            {"op": "shelve", "user": "sup1", "reason": "x", "duration_s": "600"},
            "a shelve needs a positive duration",
        ),
        (
            {"op": "shelve", "user": "sup1", "reason": "x", "duration_s": True},
            "a shelve needs a positive duration",
        ),
        ({"op": "shelve", "user": "sup1", "duration_s": 60}, "a shelve needs a reason"),
        ({"op": "reset", "user": "op2"}, "alarm is active_unack: only a latched alarm is reset"),
        ({"op": "return_to_service", "user": "sup1"}, "alarm is active_unack, not out of service"),
    ],
)
def test_engine_replies_with_the_refusal_reason(engine_rig, req, reason):
    rows = engine_rig.journal.rows
    out = engine_rig.command(T0 + 1, alarm=ZONE_ALARM, **req)
    assert out.reply == {"id": "c3", "ok": False, "reason": reason}
    assert engine_rig.journal.rows == rows + 1 and engine_rig.rows()[-1].event == "refused"


def test_engine_refuses_an_unknown_command(engine_rig):
    out = engine_rig.command(T0 + 1, op="frobnicate", alarm=ZONE_ALARM, user="sup1")
    assert out.reply == {"id": "c3", "ok": False, "reason": "unknown command 'frobnicate'"}
    assert engine_rig.rows()[-1].event == "refused"


def test_engine_journals_the_same_reason_it_replies_for_an_unknown_command(engine_rig):
    out = engine_rig.command(T0 + 1, op="frobnicate", alarm=ZONE_ALARM, user="sup1")
    assert json.loads(engine_rig.rows()[-1].detail)["reason"] == out.reply["reason"]


def test_engine_journals_a_command_from_an_unknown_user(engine_rig):
    rows = engine_rig.journal.rows
    out = engine_rig.command(T0 + 1, op="ack", alarm=ZONE_ALARM, user="mallory")
    assert out.reply["reason"] == "unknown user 'mallory'"
    assert engine_rig.journal.rows == rows + 1
    row = engine_rig.rows()[-1]
    assert (row.event, row.actor) == ("refused", "mallory")


def test_engine_map_rank_follows_an_escalated_priority(demo_site, tmp_path):
    from config.schema import AlarmRule, EscalationPolicy, EscalationStep

    site = demo_site.model_copy(
        update={
            "escalation_policies": [
                EscalationPolicy(
                    id="raise",
                    steps=[EscalationStep(after_s=30, notify_role="supervisor")],
                    raise_priority=True,
                )
            ],
            "alarm_rules": [AlarmRule(condition="zone.restricted", escalation="raise")],
            "default_escalation": {},  # only the rule's alarms escalate here
            "fences": FenceSettings(border_m=0.0, min_dwell_s=0.0),
        }
    )
    r = EngineRig(site, tmp_path / "j.sqlite")
    try:
        r.tick(T0)
        r.position("T0050", (145.0, 70.0), T0)
        out = r.tick(T0 + 30)
        assert out.alarms[0]["priority"] == "critical"  # Z-SUB alarms are high; one step raised them
        assert r.engine.person_alarm_rank()[49] == 4  # bug: 3 (high, the definition's priority)
    finally:
        r.journal.close()


def test_engine_refuses_a_shelve_duration_too_large_for_a_float(engine_rig):
    # json.loads gives a Python int for any integer literal; the command is recorded before it is applied, so an
    # exception here would also stop every replay of the recording
    out = engine_rig.command(
        T0 + 1, op="shelve", alarm=ZONE_ALARM, user="sup1", reason="x", duration_s=10**400
    )
    assert out.reply == {"id": "c3", "ok": False, "reason": "a shelve needs a positive duration"}
