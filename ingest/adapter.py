"""What every ingest adapter process shares: the engine sender, the reject bin, the slice loop, main()."""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import zmq

from config import Site, load_site
from config.schema import SourceClock
from ingest import bus
from ingest.protocol import wire
from ingest.signals import stop_on_signals

from .rejects import RejectBin

log = logging.getLogger(__name__)

__all__ = ["EngineSender", "MqttAdapter", "run_slices", "adapter_main", "ClockWatch"]


class EngineSender:
    """The adapter's flow-controlled PUSH to the engine. ``send`` waits while the engine is behind; it gives
    up only when the adapter is stopping, and then counts what it could not deliver (``undelivered``)."""

    def __init__(self, site: Site, source: str, stop: threading.Event, ctx: zmq.Context | None = None) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.sock = bus.push_socket(self.ctx, site.bus.ingest)
        self.sender = bus.Sender(self.sock, source)
        self.stop = stop
        self.undelivered = 0
        self.waited_s = 0.0

    def send(self, topic: str, kind: str, event_ts_s: float, arrays: dict[str, np.ndarray] | None = None,
             meta: dict[str, Any] | None = None) -> bool:
        t0 = time.monotonic()
        while True:
            try:
                self.sender.send(topic, kind, event_ts_s, arrays, meta, timeout_s=0.5)
                self.waited_s += time.monotonic() - t0
                return True
            except TimeoutError:
                if self.stop.is_set() and time.monotonic() - t0 > 5.0:
                    self.undelivered += 1
                    log.error("engine unreachable while stopping: %s seq %d not delivered", topic, self.sender.seq)
                    return False
                if time.monotonic() - t0 > 5.0 and int(time.monotonic() - t0) % 10 == 0:
                    log.warning("engine has not taken %s for %.0f s; holding it", topic, time.monotonic() - t0)

    def send_rejects(self, source: str, rejects: RejectBin, extra: dict[str, Any] | None = None) -> None:
        """Send the pending rejects; ``extra`` meta (a clock skew figure) rides on the first batch."""
        for chunk in rejects.take():
            self.send(f"rejected.{source}", "rejected", time.time(), meta={"rejects": chunk, **(extra or {})})
            extra = None

    def close(self) -> None:
        self.sock.close(linger=2000)


def run_slices(slice_s: float, stop: threading.Event, step: Callable[[bool], None]) -> None:
    """Call ``step(final)`` every ``slice_s`` until ``stop``; one last call with final=True."""
    next_t = time.monotonic()
    while not stop.is_set():
        next_t += slice_s
        step(False)
        delay = next_t - time.monotonic()
        if delay > 0:
            stop.wait(delay)
        else:
            next_t = time.monotonic()
    step(True)


def adapter_main(name: str, argv: list[str] | None, run: Callable[[Site, threading.Event], None]) -> int:
    """Parse ``--site FILE``, install signal handlers, run the adapter until SIGINT / SIGTERM."""
    ap = argparse.ArgumentParser(prog=f"watchfloor ingest {name}")
    ap.add_argument("--site", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s ingest-{name} %(levelname)s %(message)s")
    # libraries log every message they handle at INFO (asyncua: each Publish, ~10 MB in 20 min): keep their
    # warnings, not their chatter
    for chatty in ("asyncua", "paho"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    site = load_site(args.site)
    stop = threading.Event()
    stop_on_signals(stop)
    run(site, stop)
    return 0


class MqttAdapter:
    """Base of the MQTT adapters: a source, an engine link, a reject bin, and ``step`` every ``slice_s``.

    Subclasses set ``name``, ``topics`` and ``payload_kind`` (its size limit in :data:`ingest.protocol.wire.
    MAX_PAYLOAD_BYTES`) and implement ``take(raw, now_s)``, which parses ONE message into the slice's buffers
    (all of it or nothing, raising :class:`~ingest.protocol.wire.PayloadError` for a refused message and adding refused
    items to ``self.rejects``), and ``batches(now_s)``, which turns the buffers into the bus batches ``(topic,
    kind, event_ts_s, arrays)`` (or with a fifth item, ``meta``) and empties them.

    ``step`` is the one guard of the process: whatever a message does to ``take`` (a bug included), the message
    is counted and dead-lettered with the exception's class and the adapter goes on with the next one.
    """

    name = "mqtt"
    payload_kind = "uwb"
    topics: list[str] = []

    def __init__(self, site: Site, stop: threading.Event, slice_s: float = 0.25) -> None:
        from .mqtt_source import MqttSource

        self.site = site
        self.stop = stop
        self.slice_s = slice_s
        self.source = MqttSource(site, self.topics, client_id=f"watchfloor-{self.name}-{site.id}")
        self.link = EngineSender(site, self.name, stop)
        self.rejects = RejectBin()
        self.items_sent = 0
        self.failures = 0  # internal errors caught by the guard (bugs: each is logged once per class)
        self._logged: set[str] = set()
        self.max_bytes = wire.MAX_PAYLOAD_BYTES[self.payload_kind]
        #: the source's clock: set by adapters whose payloads carry a source time (``clock.<name>``)
        self.watch: ClockWatch | None = None

    def take(self, raw, now_s: float) -> None:
        raise NotImplementedError

    def batches(self, now_s: float) -> list[tuple]:
        raise NotImplementedError

    def excerpt_of(self, raw) -> bytes | str:
        """What of a refused message is kept (the payload; an excerpt of it is taken by the reject bin)."""
        return raw.payload

    def load(self, raw) -> Any:
        """The message's JSON, read with the wire limits (size, depth, integer digits)."""
        return wire.loads(raw.payload, self.max_bytes)

    def guard(self, what: str, e: Exception, topic: str, payload: object) -> None:
        """Count and keep an input an exception was raised on; log the first of each class with its traceback."""
        if isinstance(e, wire.PayloadError):
            self.rejects.add(e.code, topic, payload, e.detail)
            return
        self.failures += 1
        name = e.__class__.__name__
        if name not in self._logged:
            self._logged.add(name)
            log.error("%s adapter: %s failed on %s (%s); input dead-lettered, going on", self.name, what, topic,
                      name, exc_info=e)
        self.rejects.add("internal_error", topic, payload, f"{what}: {name}: {str(e)[:120]}")

    def step(self, final: bool) -> None:
        now_s = time.time()
        for raw in self.source.drain():
            try:
                self.take(raw, now_s)
            except Exception as e:  # noqa: BLE001 - no payload may stop the adapter
                self.guard("parsing", e, raw.topic, self.excerpt_of(raw))
        try:
            out = self.batches(now_s)
        except Exception as e:  # noqa: BLE001 - nor a slice that breaks the solver
            self.guard("building the slice's batch", e, f"{self.name} slice", "")
            out = []
        skew = self.watch.take() if self.watch is not None else None
        clock = {"skew_s": skew} if skew is not None else None
        for topic, kind, ts, arrays, *meta in out:
            if arrays and clock:  # the figure rides on the slice's data batch, or else on its rejects
                meta = [{**(meta[0] if meta else {}), **clock}]
                clock = None
            self.link.send(topic, kind, ts, arrays, meta[0] if meta else None)
            self.items_sent += len(next(iter(arrays.values()))) if arrays else len(meta[0].get("events", ()))
        self.link.send_rejects(self.name, self.rejects, clock)

    def run(self) -> None:
        self.source.start()
        try:
            run_slices(self.slice_s, self.stop, self.step)
        finally:
            self.source.stop()
            self.link.close()
            log.info("%s adapter stopped: %d items, rejects %s", self.name, self.items_sent, dict(self.rejects.counts))


class ClockWatch:
    """One slice's evidence of a source's clock against the ingest clock, and the source's time window.

    :meth:`check` notes (source time - receive time) of every item whose time could be read, whether the item
    is then taken or refused (a gateway an hour off has all its items refused: that is when its clock matters
    most), then refuses a time outside the window. :meth:`take` gives the slice's figure: the largest offset,
    i.e. the least-delayed item. Transport and buffering only ever delay an item, so a clock that runs ahead
    shows however busy the network; the engine takes the largest over a window of slices, so one that only
    looks behind is late in every slice of it."""

    def __init__(self, clock: SourceClock) -> None:
        self.clock = clock
        self.offsets: list[float] = []

    def check(self, ts_s: float, received_ts_s: float, span_s: float = 0.0) -> None:
        """Note the item, then PayloadError("bad_time") outside the window. ``span_s``: the item covers
        [ts, ts + span] (a waveform), so it cannot arrive before ts + span."""
        self.offsets.append(ts_s + span_s - received_ts_s)
        wire.check_time(ts_s, received_ts_s, self.clock.future_s, self.clock.past_s)

    def take(self) -> float | None:
        offsets, self.offsets = self.offsets, []
        return max(offsets) if offsets else None
