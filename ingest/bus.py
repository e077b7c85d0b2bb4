"""ZeroMQ bus framing and sockets.

A bus message is one multipart ZeroMQ message::

    [topic, header, *array_frames]

- ``topic``: ASCII bytes, e.g. ``b"uwb.positions"``; subscribers filter on its prefix.
- ``header``: UTF-8 JSON object with ``v`` (framing version), ``source`` (who sent it, e.g. ``"uwb"``),
  ``kind`` (what it is, e.g. ``"positions"``), ``event_ts_s`` (source event time, seconds since the epoch),
  ``ingest_ts_s`` (when the adapter took it in), ``seq`` (per-sender sequence number, from 0, no gaps),
  ``arrays`` (name, dtype, shape of each array frame, in order) and ``meta`` (small JSON extras).
- ``array_frames``: the raw C-ordered bytes of each numpy array. Never pickle.

One message carries a batch (all tags of a time slice), never one tag.

Sockets (see DESIGN.md, principle 3):

- ingest -> engine: PUSH (adapters, connect) -> PULL (engine, bind). PUSH blocks at its high-water mark
  instead of dropping, so a slow engine slows the adapters down rather than losing data.
- engine -> consoles: PUB (engine, bind) -> SUB (consoles, connect). Display frames may be conflated;
  alarm deltas carry their own sequence numbers so a console detects a gap and asks for a snapshot.
- console -> engine commands: DEALER (console, connect) -> ROUTER (engine, bind), request / reply in JSON.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from ingest.protocol import wire

FRAMING_VERSION = 1
MAX_HEADER_BYTES = 64 * 1024
MAX_NDIM = 4
MAX_DIM = 1 << 31
#: numpy dtypes allowed on the bus (explicit little-endian or byte-order free); anything else is refused.
ALLOWED_DTYPES = frozenset(
    {"<f8", "<f4", "<i8", "<i4", "<i2", "|i1", "<u8", "<u4", "<u2", "|u1", "|b1"}
)

__all__ = [
    "FRAMING_VERSION",
    "drain",
    "FramingError",
    "Message",
    "encode",
    "decode",
    "Sender",
    "DEFAULT_HWM",
    "push_socket",
    "pull_socket",
    "pub_socket",
    "sub_socket",
    "router_socket",
    "dealer_socket",
    "bound_endpoint",
]


class FramingError(ValueError):
    """A multipart message that does not follow the bus framing; the text says what is wrong."""


@dataclass
class Message:
    """One bus message: a batch from one source.

    ``arrays`` maps names to numpy arrays (any shape, dtypes in ``ALLOWED_DTYPES``); ``meta`` is small JSON.
    """

    topic: str
    source: str
    kind: str
    event_ts_s: float
    ingest_ts_s: float
    seq: int = 0
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _header(msg: Message) -> dict[str, Any]:
    specs = []
    for name, arr in msg.arrays.items():
        a = np.asarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        specs.append({"name": name, "dtype": dt.str, "shape": list(a.shape)})
    return {
        "v": FRAMING_VERSION,
        "source": msg.source,
        "kind": msg.kind,
        "event_ts_s": float(msg.event_ts_s),
        "ingest_ts_s": float(msg.ingest_ts_s),
        "seq": int(msg.seq),
        "arrays": specs,
        "meta": msg.meta,
    }


def encode(msg: Message) -> list[bytes]:
    """Turn a message into multipart frames ``[topic, header, *arrays]``."""
    header = _header(msg)
    frames = [msg.topic.encode("ascii"), json.dumps(header, separators=(",", ":"), allow_nan=False).encode()]
    for spec, arr in zip(header["arrays"], msg.arrays.values()):
        if spec["dtype"] not in ALLOWED_DTYPES:
            raise FramingError(f"array {spec['name']!r}: dtype {spec['dtype']} is not allowed on the bus")
        frames.append(np.ascontiguousarray(arr, dtype=np.dtype(spec["dtype"])).tobytes())
    return frames


def decode(frames: list[bytes] | list[zmq.Frame]) -> Message:
    """Parse multipart frames into a :class:`Message`; raise :class:`FramingError` with the reason."""
    raw = [bytes(f.buffer) if isinstance(f, zmq.Frame) else bytes(f) for f in frames]
    if len(raw) < 2:
        raise FramingError(f"expected at least 2 frames (topic, header), got {len(raw)}")
    try:
        topic = raw[0].decode("ascii")
    except UnicodeDecodeError:
        raise FramingError("topic frame is not ASCII") from None
    if len(raw[1]) > MAX_HEADER_BYTES:
        raise FramingError(f"header is {len(raw[1])} bytes, more than {MAX_HEADER_BYTES}")
    try:
        h = wire.loads(raw[1], MAX_HEADER_BYTES)
    except wire.PayloadError as e:
        what = "is not JSON" if e.code == "not_json" else "refused"
        raise FramingError(f"header {what}: {e.detail}") from None
    if not isinstance(h, dict):
        raise FramingError("header is not a JSON object")
    if h.get("v") != FRAMING_VERSION:
        raise FramingError(f"framing version {repr(h.get('v'))[:20]}, this reader speaks {FRAMING_VERSION}")
    for key, typ in (("source", str), ("kind", str), ("seq", int), ("arrays", list)):
        if not isinstance(h.get(key), typ) or isinstance(h.get(key), bool):
            raise FramingError(f"header field {key!r} missing or not {typ.__name__}")
    if not 0 <= h["seq"] < 2**63:
        raise FramingError("header field 'seq' outside 0 .. 2^63")
    if len(h["source"]) > 64 or len(h["kind"]) > 64 or len(topic) > 128:
        raise FramingError("topic, source or kind longer than allowed")
    for key in ("event_ts_s", "ingest_ts_s"):
        v = h.get(key)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise FramingError(f"header field {key!r} missing or not a finite number")
    specs = h["arrays"]
    if len(specs) != len(raw) - 2:
        raise FramingError(f"header lists {len(specs)} arrays but {len(raw) - 2} array frames follow")
    arrays: dict[str, np.ndarray] = {}
    for spec, buf in zip(specs, raw[2:]):
        try:
            name, dtype, shape = spec["name"], spec["dtype"], spec["shape"]
            if not (isinstance(name, str) and isinstance(dtype, str) and isinstance(shape, list)):
                raise TypeError
            if not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
                raise TypeError
        except (KeyError, TypeError):
            raise FramingError(f"bad array spec {str(spec)[:200]}") from None
        if dtype not in ALLOWED_DTYPES:
            raise FramingError(f"array {name[:40]!r}: dtype {dtype[:20]!r} is not allowed on the bus")
        if len(shape) > MAX_NDIM or any(s < 0 or s > MAX_DIM for s in shape):
            raise FramingError(f"array {name[:40]!r}: shape {shape} (at most {MAX_NDIM} dimensions of "
                               f"at most {MAX_DIM})")
        if name in arrays:
            raise FramingError(f"array {name[:40]!r} appears twice")
        dt = np.dtype(dtype)
        expected = dt.itemsize * math.prod(shape)  # Python integers: no overflow
        if expected != len(buf):
            raise FramingError(f"array {name[:40]!r}: shape {tuple(shape)} x {dtype} needs {expected} bytes, "
                               f"got {len(buf)}")
        arrays[name] = np.frombuffer(buf, dtype=dt).reshape(shape)
    meta = h.get("meta", {})
    if not isinstance(meta, dict):
        raise FramingError("header field 'meta' is not an object")
    return Message(
        topic=topic,
        source=h["source"],
        kind=h["kind"],
        event_ts_s=float(h["event_ts_s"]),
        ingest_ts_s=float(h["ingest_ts_s"]),
        seq=h["seq"],
        arrays=arrays,
        meta=meta,
    )


DEFAULT_HWM = 1000  # messages (batches), both ends


def _socket(ctx: zmq.Context, kind: int, hwm: int) -> zmq.Socket:
    s = ctx.socket(kind)
    s.setsockopt(zmq.SNDHWM, hwm)
    s.setsockopt(zmq.RCVHWM, hwm)
    s.setsockopt(zmq.LINGER, 2000)
    return s


def push_socket(ctx: zmq.Context, endpoint: str, hwm: int = DEFAULT_HWM) -> zmq.Socket:
    """An adapter's flow-controlled sender to the engine (connects). Sends block at the high-water mark."""
    s = _socket(ctx, zmq.PUSH, hwm)
    s.setsockopt(zmq.IMMEDIATE, 1)  # queue only on a live connection: no silent loss into a dead pipe
    s.connect(endpoint)
    return s


def pull_socket(ctx: zmq.Context, endpoint: str, hwm: int = DEFAULT_HWM) -> zmq.Socket:
    """The engine's receiver of ingest batches (binds)."""
    s = _socket(ctx, zmq.PULL, hwm)
    s.bind(endpoint)
    return s


def pub_socket(ctx: zmq.Context, endpoint: str, hwm: int = DEFAULT_HWM) -> zmq.Socket:
    """The engine's publisher to consoles (binds)."""
    s = _socket(ctx, zmq.PUB, hwm)
    s.bind(endpoint)
    return s


def sub_socket(ctx: zmq.Context, endpoint: str, topics: list[str], hwm: int = DEFAULT_HWM) -> zmq.Socket:
    """A console's subscriber (connects) to the given topic prefixes."""
    s = _socket(ctx, zmq.SUB, hwm)
    for t in topics:
        s.setsockopt(zmq.SUBSCRIBE, t.encode("ascii"))
    s.connect(endpoint)
    return s


def router_socket(ctx: zmq.Context, endpoint: str, hwm: int = DEFAULT_HWM) -> zmq.Socket:
    """The engine's command endpoint (binds)."""
    s = _socket(ctx, zmq.ROUTER, hwm)
    s.bind(endpoint)
    return s


def dealer_socket(ctx: zmq.Context, endpoint: str, hwm: int = DEFAULT_HWM, routing_id: bytes | None = None
                  ) -> zmq.Socket:
    """A console's command sender (connects). ``routing_id``: how the engine's ROUTER knows this connection across
    reconnects (session tokens are bound to it); ZeroMQ draws one per connection when None."""
    s = _socket(ctx, zmq.DEALER, hwm)
    if routing_id is not None:
        s.setsockopt(zmq.ROUTING_ID, routing_id)
    s.connect(endpoint)
    return s


def drain(sock: zmq.Socket, max_messages: int = 10_000) -> Iterator[list[bytes]]:
    """The multipart messages waiting on ``sock`` now (never blocks), at most ``max_messages``."""
    for _ in range(max_messages):
        try:
            yield sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return


def bound_endpoint(sock: zmq.Socket) -> str:
    """The endpoint a socket actually bound (resolves ``tcp://127.0.0.1:*``)."""
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


class Sender:
    """Numbers and sends one source's batches over a PUSH socket.

    ``send`` blocks while the engine is behind (flow control); after ``timeout_s`` it raises
    ``TimeoutError`` so the caller can count and keep the batch instead of dropping it.
    """

    def __init__(self, sock: zmq.Socket, source: str) -> None:
        self.sock = sock
        self.source = source
        self.seq = 0
        self.sent = 0

    def send(
        self,
        topic: str,
        kind: str,
        event_ts_s: float,
        arrays: dict[str, np.ndarray] | None = None,
        meta: dict[str, Any] | None = None,
        timeout_s: float | None = None,
    ) -> Message:
        msg = Message(
            topic=topic,
            source=self.source,
            kind=kind,
            event_ts_s=event_ts_s,
            ingest_ts_s=time.time(),
            seq=self.seq,
            arrays=arrays or {},
            meta=meta or {},
        )
        frames = encode(msg)
        if timeout_s is None:
            self.sock.send_multipart(frames, copy=False)
        else:
            if not self.sock.poll(int(timeout_s * 1000), zmq.POLLOUT):
                raise TimeoutError(f"engine did not take {topic} seq {self.seq} within {timeout_s} s")
            self.sock.send_multipart(frames, copy=False)
        self.seq += 1
        self.sent += 1
        return msg
