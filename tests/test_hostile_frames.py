"""Nothing sent to the engine's ingest socket can stop it or poison the recording.

A raw pyzmq PUSH socket (what a broken gateway or an attacker on the plant network has) sends the frames that
killed the first release's engine, then thousands of hypothesis-made frames interleaved with valid batches, to
a live engine. The engine lives; every message sent is in the recording exactly once, as itself or as a
counted ``rejected`` input; every valid batch is applied; and the recording replays to the same journal bytes.
"""

from __future__ import annotations

import json
import sqlite3
import time

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config import DEMO_SITE
from ingest import bus
from ingest.engine import Engine, EngineProcess, RecordingReader, replay, tick_message
from ingest.engine.core import decode_recorded
from tests.builders import positions
from tests.engine_stack import EngineStack

pytestmark = pytest.mark.slow

T0 = 1_800_000_000.0


def header(**over) -> bytes:
    h = {"v": 1, "source": "gas", "kind": "gas_values", "event_ts_s": T0, "ingest_ts_s": T0, "seq": 0,
         "arrays": [], "meta": {}}
    h.update(over)
    return json.dumps(h, separators=(",", ":")).encode()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


#: the frames of issue 10 that crashed the engine (before or after recording) or were recorded and replayed badly
KILLERS = {
    "gas_values without arrays (172 bytes)": [b"gas.values", header()],
    "meta nested 10,000 deep": [b"gas.values", header()[:-3] + f'{{"x":{nested(10_000)}}}}}'.encode()],
    "seq as a 5,000-digit integer": [b"gas.values", header()[:-1].replace(b'"seq":0', b'"seq":' + b"9" * 5000)
                                     + b"}"],
    "array shape [2**62, 4]": [b"uwb.positions", header(kind="positions", arrays=[
        {"name": "xyz_m", "dtype": "<f8", "shape": [2**62, 4]}]), b"\0" * 32],
    "positions with a wrong-shaped array": [b"uwb.positions", header(kind="positions", arrays=[
        {"name": "person_index", "dtype": "<i4", "shape": [2]}, {"name": "xyz_m", "dtype": "<f8", "shape": [3, 3]},
        {"name": "ts_s", "dtype": "<f8", "shape": [2]}, {"name": "valid", "dtype": "|b1", "shape": [2]},
        {"name": "gdop", "dtype": "<f8", "shape": [2]}, {"name": "rms_m", "dtype": "<f8", "shape": [2]}]),
        b"\0" * 8, b"\0" * 72, b"\0" * 16, b"\1\1", b"\0" * 16, b"\0" * 16],
    "a clock tick from outside": [b"clock.tick", header(kind="tick", source="engine")],
    "a command from outside": [b"command", header(kind="command", source="console",
                                                  meta={"op": "ack", "user": "sup1", "alarm": "x"})],
    "rejects with a reason that is no code": [b"rejected.uwb", header(kind="rejected", source="uwb", meta={
        "rejects": [{"reason": "whatever I like", "topic": "t", "payload": "p"}]})],
    "a single frame": [b"garbage"],
    "no frames but bytes": [b"\xff\xfe", b"\x00"],
}


@pytest.fixture
def live_engine(demo_site, tmp_path):
    with EngineStack(demo_site, tmp_path, site_text=DEMO_SITE.read_text()) as stack:
        yield stack.site, stack.proc, stack.push, stack.sender("uwb"), stack.thread, stack.stop


def recorded(path) -> tuple[list[bus.Message], list[tuple]]:
    rec = RecordingReader(path)
    msgs = [decode_recorded(f) for _, f in rec.inputs()]
    dead = rec.dead_letters()
    rec.close()
    return msgs, dead


def test_the_frames_that_killed_the_engine_are_counted_kept_and_replay_byte_exact(live_engine, tmp_path):
    site, proc, push, sender, th, close = live_engine
    for k in range(3):
        m = positions(site, {"T0001": (50.0 + k, 80.0)}, T0 + k)
        sender.send(m.topic, m.kind, m.event_ts_s, m.arrays, timeout_s=5)
        for frames in KILLERS.values():
            push.send_multipart(frames)
    deadline = time.monotonic() + 20
    while (proc.refused_frames < 3 * len(KILLERS) or proc.engine.positions < 3) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert th.is_alive(), "the engine stopped while taking hostile frames"
    assert proc.refused_frames == 3 * len(KILLERS)
    assert proc.engine.failed_inputs == 0 and proc.engine.positions == 3

    msgs, dead = recorded(tmp_path / "live" / "recording.sqlite")
    assert [m.kind for m in msgs if m.kind not in ("tick",)].count("rejected") == 3 * len(KILLERS)
    assert len(dead) == 3 * len(KILLERS) and {d[1] for d in dead} == {"engine"}
    assert {d[2] for d in dead} <= {"bad_frame", "not_allowed", "too_deep"}
    assert all(len(d[4]) < 400 for d in dead)  # an escaped excerpt, never the whole frame

    # a live engine's recording replays, while it runs, to the journal it has written so far
    live = proc.engine.status()
    out = replay(tmp_path / "live" / "recording.sqlite", tmp_path / "replay")
    assert out["failed_inputs"] == 0 and out["positions"] == live["positions"] == 3
    # not_allowed: the tick and the command from outside, and positions that say they come from the gas adapter
    assert out["rejected"] == {"engine: bad_frame": 3 * (len(KILLERS) - 3), "engine: not_allowed": 9}

    # stopped, the recording replays to the journal byte for byte, and an engine started again on the same
    # folder (crash recovery is replay) takes it all and goes on
    summary = close()
    again = replay(tmp_path / "live" / "recording.sqlite", tmp_path / "replay2")
    assert again["journal_head"] == summary["journal_head"]
    assert (tmp_path / "live" / "journal.sqlite").read_bytes() == (tmp_path / "replay2" / "journal.sqlite").read_bytes()
    resumed = EngineProcess(site, DEMO_SITE.read_text(), tmp_path / "live", ctx=zmq.Context(), notify=False)
    try:
        assert resumed.resumed_inputs == summary["recording_seq"] and resumed.engine.failed_inputs == 0
    finally:
        resumed.close()


def _valid_header_strategy():
    """A header dict built from a valid positions message with one field replaced by anything JSON can hold."""
    anything = st.recursive(
        st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30) | st.floats(allow_nan=False)
        | st.text(max_size=8),
        lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
        max_leaves=12)
    fields = st.sampled_from(["v", "source", "kind", "event_ts_s", "ingest_ts_s", "seq", "arrays", "meta"])
    return st.tuples(fields, anything)


@settings(max_examples=400, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(cases=st.lists(st.one_of(
    st.tuples(st.just("bytes"), st.lists(st.binary(max_size=64), min_size=1, max_size=4)),
    st.tuples(st.just("field"), _valid_header_strategy()),
    st.tuples(st.just("shape"), st.lists(st.integers(min_value=-2, max_value=2**63), min_size=0, max_size=5)),
    st.tuples(st.just("truncate"), st.integers(min_value=0, max_value=200)),
    st.tuples(st.just("kind"), st.sampled_from(["gas_values", "vibration_features", "camera_detections",
                                                "input_values", "wearable_events", "permit_command",
                                                "rejected", "tick", "command", "notification_result", "?"])),
), min_size=5, max_size=5))
def _fuzz_examples(cases):
    """Not a test: called by one, it makes hypothesis draw 400 x 5 derandomized hostile cases."""
    FUZZ_CASES.extend(cases)


FUZZ_CASES: list = []


def _mutate(site, case, k: int) -> list[bytes]:
    """One hostile message made from a valid positions batch by ``case``."""
    m = positions(site, {"T0002": (60.0, 90.0), "T0003": (61.0, 91.0)}, T0 + 100 + k)
    frames = bus.encode(m)
    what, arg = case
    if what == "bytes":
        return arg
    h = json.loads(frames[1])
    if what == "field":
        name, value = arg
        h[name] = value
    elif what == "shape":
        h["arrays"][1]["shape"] = arg
    elif what == "truncate":
        return [frames[0], frames[1]] + [f[: arg % (len(f) + 1)] for f in frames[2:]]
    elif what == "kind":
        h["kind"] = arg
    return [frames[0], json.dumps(h).encode()] + frames[2:]


def test_thousands_of_fuzzed_frames_among_valid_batches(live_engine, tmp_path):
    """2,000 hostile frames (hypothesis, derandomized) interleaved with 200 valid batches: the engine lives;
    each message sent is recorded once (as itself or as a counted reject); all 200 valid batches are applied."""
    site, proc, push, sender, th, close = live_engine
    FUZZ_CASES.clear()
    _fuzz_examples()
    cases = FUZZ_CASES[:2000]
    assert len(cases) == 2000
    valid_ts = []
    for k, case in enumerate(cases):
        push.send_multipart(_mutate(site, case, k))
        if k % 10 == 0:
            ts = T0 + 10_000 + k
            m = positions(site, {"T0004": (70.0, 95.0 + (k % 7))}, ts)
            sender.send(m.topic, m.kind, m.event_ts_s, m.arrays, timeout_s=5)
            valid_ts.append(ts)
    deadline = time.monotonic() + 60
    sent = len(cases) + len(valid_ts)
    while time.monotonic() < deadline:
        counts = proc.engine.inputs
        if sum(v for k, v in counts.items() if k not in ("engine",)) + proc.refused_frames >= sent:
            break
        time.sleep(0.1)
    assert th.is_alive(), "the engine stopped while taking fuzzed frames"
    assert proc.engine.failed_inputs == 0

    msgs, dead = recorded(tmp_path / "live" / "recording.sqlite")
    from_outside = [m for m in msgs if m.kind != "tick"]
    assert len(from_outside) == sent  # each message exactly once, as itself or as a reject
    refused = [m for m in from_outside if m.source == "engine" and m.kind == "rejected"]
    assert len(refused) == proc.refused_frames == len(dead)
    taken = {float(m.arrays["ts_s"][0]) for m in from_outside if m.kind == "positions"}
    assert set(valid_ts) <= taken  # every valid batch recorded as itself

    out = replay(tmp_path / "live" / "recording.sqlite", tmp_path / "replay")
    assert out["failed_inputs"] == 0


def test_an_input_that_fails_is_journaled_skipped_and_replays_the_same(demo_site, tmp_path, monkeypatch):
    """Validated input cannot make ``apply`` fail; if a bug still does, the engine journals a critical
    'input could not be applied' with the sequence number, skips it, and goes on: live and replay alike."""
    from alarms.journal import Journal

    def boom(self, seq, msg, out):
        raise KeyError("detector_index")

    monkeypatch.setattr(Engine, "_gas", boom)
    journals = []
    for name in ("a", "b"):
        j = Journal(tmp_path / f"{name}.sqlite")
        eng = Engine(demo_site, j)
        eng.apply(1, tick_message(T0))
        out = eng.apply(2, bus.Message("gas.values", "gas", "gas_values", T0, T0, arrays={}))
        assert [(a["id"], a["priority"]) for a in out.alarms][:1] == [("engine.input_failed", "critical")]
        assert "input 2 (gas_values from gas)" in out.alarms[0]["message"]["en"]
        m = positions(demo_site, {"T0001": (50.0, 80.0)}, T0)
        eng.apply(3, m)
        eng.apply(4, tick_message(T0 + 0.1))
        assert eng.failed_inputs == 1 and eng.positions == 1  # it went on
        j.close()
        journals.append((tmp_path / f"{name}.sqlite").read_bytes())
    rows = sqlite3.connect(tmp_path / "a.sqlite").execute(
        "SELECT input_seq, event, detail FROM journal WHERE event = 'input_failed'").fetchall()
    assert rows == [(2, "input_failed", '{"error":"KeyError: \'detector_index\'","kind":"gas_values","source":"gas"}')]
    assert journals[0] == journals[1]


def test_a_recorded_input_that_no_longer_decodes_is_skipped_in_replay(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(T0))
    eng.apply(2, decode_recorded([b"t", b"{broken"]))
    eng.apply(3, tick_message(T0 + 1))
    assert eng.failed_inputs == 1 and eng.now_s == T0 + 1


def test_gas_values_from_a_skewed_source_raise_and_clear_a_clock_alarm(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(T0))

    seq = iter(range(2, 100))

    def gas(at_s, skew):
        eng.apply(next(seq), tick_message(T0 + at_s))
        return eng.apply(next(seq), bus.Message("gas.values", "gas", "gas_values", T0, T0, arrays={
            "detector_index": np.array([0], np.int32), "value": np.array([0.0]), "quality": np.array([0], np.uint8),
            "ts_s": np.array([T0])}, meta={"skew_s": skew, "retimed": 1 if abs(skew) > 60 else 0}))

    assert gas(0, -0.2).alarms == []
    assert gas(10, -2.5).alarms == []  # one late batch: delay, not a clock (the window still holds -0.2)
    assert gas(20, 1.6).alarms[0]["id"] == "clock.skew:gas"  # ahead: no delay can do that
    assert "1.6 s ahead of the ingest clock (limit 1 s)" in eng.book.alarms["clock.skew:gas"].definition.message_en
    assert gas(55, 0.9).alarms == []  # inside the deadband: still skewed
    out = gas(90, 0.2)
    assert [a["id"] for a in out.alarms] == ["clock.skew:gas"] and not eng.book.alarms["clock.skew:gas"].active
    for k in range(4):  # a PLC an hour behind: every batch of the window is late
        out = gas(130 + 10 * k, -3600.0)
    assert eng.book.alarms["clock.skew:gas"].active
    assert "3600.0 s behind" in eng.book.alarms["clock.skew:gas"].definition.message_en
    st_ = eng.status()
    assert st_["clock_skew_s"] == {"gas": -3600.0} and st_["retimed"] == {"gas": 4}
