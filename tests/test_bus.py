"""Bus framing and flow control: arrays survive byte for byte, malformed frames are refused with a reason,
and a slow engine slows the sender down instead of losing batches."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest
import zmq

from ingest import bus
from ingest.bus import FramingError, Message


def sample() -> Message:
    return Message(topic="uwb.positions", source="uwb", kind="positions", event_ts_s=1763798400.125,
                   ingest_ts_s=1763798400.2, seq=7,
                   arrays={"person_index": np.arange(5, dtype=np.int32), "xyz_m": np.random.default_rng(1).normal(
                       size=(5, 3)), "valid": np.array([1, 0, 1, 1, 0], bool)}, meta={"slice": 3})


def test_round_trip_keeps_arrays_dtypes_shapes_and_header():
    m = sample()
    frames = bus.encode(m)
    assert len(frames) == 2 + 3 and frames[0] == b"uwb.positions"
    header = json.loads(frames[1])
    assert header["arrays"][1] == {"name": "xyz_m", "dtype": "<f8", "shape": [5, 3]}
    assert len(frames[3]) == 5 * 3 * 8  # raw float64 bytes, no pickle, no base64
    back = bus.decode(frames)
    assert (back.topic, back.source, back.kind, back.seq, back.meta) == ("uwb.positions", "uwb", "positions", 7,
                                                                         {"slice": 3})
    assert back.event_ts_s == m.event_ts_s
    for k, a in m.arrays.items():
        assert back.arrays[k].dtype == a.dtype and np.array_equal(back.arrays[k], a)


def test_big_endian_input_is_sent_little_endian():
    m = Message("t", "s", "k", 1.0, 1.0, arrays={"x": np.array([1.5, 2.5], dtype=">f8")})
    assert bus.decode(bus.encode(m)).arrays["x"].tolist() == [1.5, 2.5]


def test_object_arrays_are_refused_when_encoding():
    m = Message("t", "s", "k", 1.0, 1.0, arrays={"x": np.array(["a"], dtype=object)})
    with pytest.raises(FramingError, match="dtype |O is not allowed"):
        bus.encode(m)


def _mutated(fn):
    frames = bus.encode(sample())
    return fn(frames)


@pytest.mark.parametrize("frames, reason", [
    ([b"only-topic"], "expected at least 2 frames (topic, header), got 1"),
    ([b"t", b"{not json"], "header is not JSON"),
    ([b"t", b"[1, 2]"], "header is not a JSON object"),
    ([b"\xff", b"{}"], "topic frame is not ASCII"),
    (_mutated(lambda f: f[:2] + f[3:]), "header lists 3 arrays but 2 array frames follow"),
    (_mutated(lambda f: f[:3] + [f[3][:-8]] + f[4:]), "array 'xyz_m': shape (5, 3) x <f8 needs 120 bytes, got 112"),
    (_mutated(lambda f: [f[0], f[1].replace(b'"v":1', b'"v":9')] + f[2:]), "framing version 9"),
    (_mutated(lambda f: [f[0], f[1].replace(b'"<i4"', b'"|O"')] + f[2:]), "dtype '|O' is not allowed"),
    (_mutated(lambda f: [f[0], f[1].replace(b'"seq":7', b'"seq":"7"')] + f[2:]), "'seq' missing or not int"),
    ([b"t", json.dumps({"v": 1, "source": "s", "kind": "k", "seq": 0, "arrays": [], "event_ts_s": "x",
                        "ingest_ts_s": 1}).encode()], "'event_ts_s' missing or not a finite number"),
])
def test_malformed_frames_are_refused_with_their_reason(frames, reason):
    with pytest.raises(FramingError) as ei:
        bus.decode(frames)
    assert reason in str(ei.value)


def test_slow_engine_blocks_the_sender_and_loses_nothing(tmp_path):
    """PUSH/PULL with small high-water marks: a sender that outruns the receiver waits (TimeoutError is its
    signal to hold the batch), and every batch that was sent arrives once, in order."""
    ctx = zmq.Context()
    endpoint = f"ipc://{tmp_path}/bp.ipc"
    pull = bus.pull_socket(ctx, endpoint, hwm=5)
    push = bus.push_socket(ctx, endpoint, hwm=5)
    sender = bus.Sender(push, "uwb")
    payload = {"x": np.zeros(20_000)}  # 160 kB per batch so the OS buffers fill quickly
    sent, timeouts = 0, 0
    deadline = time.monotonic() + 10
    while timeouts == 0 and time.monotonic() < deadline:
        try:
            sender.send("uwb.positions", "positions", 1.0, payload, timeout_s=0.2)
            sent += 1
        except TimeoutError:
            timeouts += 1
    assert timeouts == 1, "the sender never felt back-pressure"
    assert sender.seq == sent  # the refused batch did not consume a sequence number

    received: list[int] = []

    def drain():
        while len(received) < sent + 50:
            if not pull.poll(5000):
                return
            received.append(bus.decode(pull.recv_multipart()).seq)
            time.sleep(0.001)  # a slow engine

    th = threading.Thread(target=drain)
    th.start()
    for _ in range(50):  # the held batch and more go through once the engine catches up
        sender.send("uwb.positions", "positions", 1.0, payload, timeout_s=10)
    th.join(30)
    assert received == list(range(sent + 50))
    for s in (pull, push):
        s.close(linger=0)
    ctx.term()


def test_push_without_engine_does_not_queue_into_nowhere(tmp_path):
    ctx = zmq.Context()
    push = bus.push_socket(ctx, f"ipc://{tmp_path}/nobody.ipc")
    with pytest.raises(TimeoutError, match="engine did not take"):
        bus.Sender(push, "gas").send("gas.values", "gas_values", 1.0, timeout_s=0.1)
    push.close(linger=0)
    ctx.term()
