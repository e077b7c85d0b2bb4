"""The permit board stays within the bus header whatever the permits carry: what one command may bring is bounded
(workers, polygon points, gas values, the length of reasons), a full board leaves off its least urgent permits and
says how many (``omitted``), and the engine forgets finished permits hours later (their journal rows stay). The board
is checked as the consoles get it: encoded and decoded by the bus framing, published by the engine process's own
code."""

from __future__ import annotations

import json
import math

import pytest

import alarms.permits as permits_module
from alarms.permits import BOARD_BUDGET_BYTES, FINISHED_KEEP_S, MAX_TEXT_CHARS
from ingest import bus
from ingest.engine.process import EngineProcess
from ingest.protocol.names import TOPIC_PERMITS
from ingest.protocol.records import PermitBoard, PermitInfo
from tests import test_permits
from tests.test_permits import HW1, T0

rig = test_permits.rig  # the permit tests' engine in-process (a fixture); its journal is verified at the end


class _Publisher:
    """The engine process's own board publishing (ingest/engine/process.py), its PUB socket a list of frames."""

    _publish_board = EngineProcess._publish_board
    _publish_meta = EngineProcess._publish_meta

    def __init__(self, engine) -> None:
        self.engine, self.pub, self.sent = engine, self, []

    def send_multipart(self, frames: list[bytes]) -> None:
        self.sent.append(frames)


def _published_board(rig) -> tuple[list[bytes], bus.Message]:
    pub = _Publisher(rig.engine)
    pub._publish_board()
    (frames,) = pub.sent
    return frames, bus.decode(frames)  # FramingError over 64 KiB: every console would refuse the board


def _circle(cx: float, cy: float, r: float, n: int) -> list[list[float]]:
    return [[cx + r * math.cos(2 * math.pi * k / n), cy + r * math.sin(2 * math.pi * k / n)] for k in range(n)]


def _reason(rig, op, **req) -> str:
    reply = rig.cmd(op, **req).reply
    assert reply["ok"] is False, reply
    return reply["reason"]


def _tags(rig, n: int, but=("T0187",)) -> list[str]:
    return [t for t in rig.tags if t not in but][:n]


def test_a_full_board_fits_the_bus_header_and_leaves_off_the_least_urgent_permits_counted(rig):
    # red: a hot work at work, its gas test with the 20 gases allowed, names of 16 characters
    rig.ready("A1")
    gases = {"LEL": 1.0, "O2": 20.9, **{f"VOC-DETECTOR-{k:03d}": 0.5 for k in range(18)}}
    assert rig.cmd("permit_gas_test", permit="A1", user="op1", values=gases).reply["ok"]
    # amber: a hot work on its own polygon of 200 points (x 171..189, clear of Z-HW1), suspended with a long reason
    rig.ready("S1", zone=None, polygon=_circle(180.0, 160.0, 9.0, 200))
    assert rig.cmd("permit_suspend", permit="S1", user="sup1", reason="wind " * 1000).reply["ok"]
    # green: the reviewer's 150 requested permits, each with 50 workers and a description far over 500 characters
    workers = _tags(rig, 50)
    for k in range(150):
        assert rig.cmd("permit_request", user="op1", permit=f"G{k}", type="lifting", grade="3", zone="Z-HW1",
                       workers=workers, valid_from_s=T0 + 60 * k, valid_to_s=T0 + 60 * k + 3600,
                       description="lift the exchanger bundle " * 200).reply["ok"]
    # grey: 30 closed within the hour, each with a long reason
    for k in range(30):
        assert rig.cmd("permit_request", user="op1", permit=f"C{k}", type="excavation", zone="Z-U100",
                       workers=["T0101"], valid_from_s=T0, valid_to_s=T0 + 7200).reply["ok"]
        assert rig.cmd("permit_close", permit=f"C{k}", user="sup1", reason="not needed " * 500).reply["ok"]

    frames, msg = _published_board(rig)
    assert (msg.topic, msg.kind) == (TOPIC_PERMITS, "permit_board")
    assert len(frames[1]) <= bus.MAX_HEADER_BYTES
    recs = msg.meta["permits"]
    assert len(json.dumps(recs)) <= BOARD_BUDGET_BYTES
    kept = len(recs)
    # the work in progress and the suspended permit stay; then the planned ones ending first; every closed one and
    # the planned ones ending last are left off, and every permit kept says how many
    assert [r["id"] for r in recs] == ["A1", "S1"] + [f"G{k}" for k in range(kept - 2)]
    assert 2 < kept < 152
    assert {r["omitted"] for r in recs} == {2 + 150 + 30 - kept}
    # details are left out from the least urgent up; the room left gives the work in progress its own back
    trimmed = [bool(r.get("trimmed")) for r in recs]
    assert trimmed == sorted(trimmed) and trimmed[0] is False and trimmed[-1] is True
    a1, s1 = recs[0], recs[1]
    assert (a1["board"], s1["board"]) == ("red", "amber")
    assert len(a1["gas_test"]["values"]) == 20
    assert [h["event"] for h in a1["history"]][-2:] == ["permit_activate", "permit_gas_test"]
    assert len(s1["polygon"]) == 200 and s1["polygon"][0] == [189.0, 160.0]  # to the millimetre
    assert s1["reason"] == ("wind " * 1000).strip()[:MAX_TEXT_CHARS]
    assert all(len(r["description"]) == MAX_TEXT_CHARS for r in recs[2:])
    # as a console reads it
    board = PermitBoard(tuple(PermitInfo.from_json(r) for r in recs), msg.event_ts_s, 1)
    assert board.omitted == 182 - kept and board.permits[1].reason == s1["reason"]


def test_a_board_that_fits_omits_nothing_and_says_nothing_of_it(rig):
    rig.ready("A1")
    _, msg = _published_board(rig)
    (rec,) = msg.meta["permits"]
    assert "omitted" not in rec and "trimmed" not in rec
    assert PermitBoard((PermitInfo.from_json(rec),), msg.event_ts_s, 1).omitted == 0


def test_absurd_permit_commands_are_refused_with_their_reason_and_long_reasons_are_cut(rig, monkeypatch):
    assert rig.request("W1", workers=_tags(rig, 51))["reason"] == \
        "a permit has at most 50 workers (got 51): split the work into permits"
    assert rig.request("W1", workers=["T0101", ["T0102"]])["reason"] == "workers are tags (texts)"
    assert rig.request("W1", zone=None, polygon=_circle(180.0, 160.0, 9.0, 201))["reason"] == \
        "a polygon has at most 200 points (got 201)"
    assert "W1" not in rig.engine.permits.permits
    assert rig.request("W1", workers=_tags(rig, 50), description="x" * 5000)["ok"]
    assert rig.permit("W1").description == "x" * MAX_TEXT_CHARS
    too_many = {"LEL": 1.0, "O2": 20.9, **{f"G{k}": 0.0 for k in range(19)}}  # 21 gases
    refusal = "a gas test has at most 20 gases, each named in at most 16 characters"
    assert _reason(rig, "permit_gas_test", permit="W1", user="op1", values=too_many) == refusal
    assert _reason(rig, "permit_gas_test", permit="W1", user="op1", values={"LEL": 1.0, "X" * 17: 0.0}) == refusal
    assert rig.permit("W1").gas_test is None
    assert rig.permit("W1").last_refusal["reason"] == refusal
    # a suspension's and a closure's reason are cut like the description
    rig.ready("P1")
    assert rig.cmd("permit_suspend", permit="P1", user="op1", reason="y" * 5000).reply["ok"]
    assert rig.permit("P1").reason == "y" * MAX_TEXT_CHARS
    assert rig.cmd("permit_close", permit="P1", user="sup1", reason="z" * 5000).reply["ok"]
    assert rig.permit("P1").reason == "z" * MAX_TEXT_CHARS
    # and the number of open permits is bounded: a request beyond it is refused until one is over
    monkeypatch.setattr(permits_module, "MAX_OPEN_PERMITS", 2)
    assert rig.request("W2")["ok"]  # W1 and W2 open (P1 is closed)
    assert rig.request("W3")["reason"] == "the site has 2 open permits: close or cancel some first"
    assert rig.cmd("permit_cancel", permit="W2", user="sup1", reason="not needed").reply["ok"]
    assert rig.request("W3")["ok"]


def _journal_events(rig, pid: str) -> list[str]:
    cur = rig.journal.db.execute("SELECT event FROM journal WHERE alarm_id = ? ORDER BY row", (f"permit:{pid}",))
    return [e for (e,) in cur]


def test_finished_permits_are_forgotten_hours_later_or_beyond_a_count_and_their_ids_stay_taken(rig, monkeypatch):
    monkeypatch.setattr(permits_module, "MAX_FINISHED", 3)
    for k in range(5):  # C0 .. C4 cancelled one second apart
        rig.tick(T0 + k)
        assert rig.request(f"C{k}")["ok"]
        assert rig.cmd("permit_cancel", permit=f"C{k}", user="sup1", reason="postponed").reply["ok"]
    rig.tick(T0 + 5)  # 5 finished, 3 kept: the two that finished first are forgotten
    assert sorted(rig.engine.permits.permits) == ["C2", "C3", "C4"]
    rig.tick(T0 + 2 + FINISHED_KEEP_S)  # C2 finished exactly FINISHED_KEEP_S ago: still kept
    assert sorted(rig.engine.permits.permits) == ["C2", "C3", "C4"]
    rig.tick(T0 + 3 + FINISHED_KEEP_S + 0.5)
    assert sorted(rig.engine.permits.permits) == ["C4"]
    assert rig.request("C0")["reason"] == "permit 'C0' existed (it is over): give the new permit another id"
    assert _journal_events(rig, "C0") == ["permit_request", "permit_cancel", "refused"]  # the record stays


def test_an_expired_permit_with_people_inside_is_kept_until_they_leave(rig):
    rig.ready(hours=0.1)  # ends at T0 + 360
    rig.at(T0 + 300, T0187=(150.0, 160.0), T0101=HW1, T0102=(141.0, 161.0))
    rig.tick(T0 + 360.05)
    assert rig.permit().state == "expired"
    late = T0 + 360.05 + FINISHED_KEEP_S + 60
    rig.at(late, T0101=HW1, T0102=(141.0, 161.0))
    assert "P1" in rig.engine.permits.permits
    assert rig.alarms("permit.expired_occupied") == {"permit.expired_occupied:P1": "active_unack"}
    rig.at(late + 10, T0101=(100.0, 100.0), T0102=(100.0, 101.0))  # they leave: the alarm clears, P1 goes
    assert rig.alarms("permit.expired_occupied") == {"permit.expired_occupied:P1": "rtn_unack"}
    assert "P1" not in rig.engine.permits.permits


@pytest.mark.parametrize("n_greens", [0, 3])
def test_fit_board_drops_grey_before_green_and_counts_them(n_greens):
    from alarms.permits import fit_board

    def rec(pid: str, board: str) -> dict:
        return {"id": pid, "board": board, "history": [], "checks": [], "jsa": None, "description": "d" * 900}

    recs = [rec("R", "red")] + [rec(f"G{k}", "green") for k in range(n_greens)] + [rec(f"X{k}", "grey")
                                                                                  for k in range(5)]
    one = len(json.dumps(recs[0])) + 2
    budget = one * 2 + 100  # room for two permits, trimmed and marked
    kept = fit_board([dict(r) for r in recs], budget)
    assert [r["id"] for r in kept] == [r["id"] for r in recs[:2]]
    assert {r["omitted"] for r in kept} == {len(recs) - 2}
    assert len(json.dumps(kept)) <= budget
