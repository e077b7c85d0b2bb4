"""The console's one link to the engine: a receiver thread per console process.

The thread owns both ZeroMQ sockets (a SUB connected to the engine's publisher and a DEALER connected to its
command ROUTER; ZeroMQ sockets are not thread-safe, so no other thread touches them). It keeps:

- the latest frame of each display topic (``display.positions``, ``display.sensors``, ``display.gasfield``,
  ``engine.status``): display frames are conflated, latest wins;
- the latest permit board (``permit.board``) and emergency muster status (``muster.status``): each message is
  the whole state, so they are conflated too; a snapshot reply fills them for a console that joins late;
- the live alarm table (:class:`~console.link.alarm_mirror.AlarmMirror`), built from a snapshot and then
  sequence-numbered ``alarm.delta`` messages; on a gap, an engine restart or a link that comes back after
  being lost the link asks for a fresh snapshot (DESIGN principle 3: the alarm channel is never silently
  lossy);
- where everyone has been in the last 10 minutes (:class:`~console.link.trails.LinkTrails`), asked of the engine
  (``trails``) when the link connects or comes back and then followed from the positions frames;
- counters of everything received, ignored, refused or lost.

Sessions read it through :meth:`EngineLink.snapshot`, which returns immutable objects (frozen dataclasses,
read-only numpy arrays, read-only mappings; :mod:`console.link.views`) so a Bokeh callback can use them without
locks. The thread never touches a Bokeh model. Display frames that do not fit the site are refused
(:mod:`console.link.frame_checks`).
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import math
import queue
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import fields
from types import MappingProxyType
from typing import Any, Self

import zmq

from config import Site
from console.link.alarm_mirror import AlarmMirror
from console.link.frame_checks import check_display_arrays
from console.link.trails import LinkTrails
from console.link.views import MAX_NOTIFICATIONS, AlarmTable, Frame, LinkCounters, LinkSnapshot, LinkState
from ingest import bus
from ingest.protocol.names import (
    TOPIC_ALARM_DELTA,
    TOPIC_FLOOD,
    TOPIC_GASFIELD,
    TOPIC_MUSTER,
    TOPIC_NOTIFY,
    TOPIC_PERMITS,
    TOPIC_POSITIONS,
    TOPIC_SENSORS,
    TOPIC_STATUS,
)
from ingest.protocol.records import (
    FloodState,
    MusterStatus,
    Notification,
    PermitBoard,
    PermitInfo,
    float_or_nan,
)

log = logging.getLogger(__name__)

__all__ = ["EngineLink"]

#: conflated display topics -> the counter of frames taken in
_DISPLAY_COUNTERS = {
    TOPIC_POSITIONS: "positions_frames",
    TOPIC_SENSORS: "sensors_frames",
    TOPIC_STATUS: "status_frames",
    TOPIC_GASFIELD: "gasfield_frames",
}
_DISPLAY_TOPICS = tuple(_DISPLAY_COUNTERS)


class EngineLink:
    """One console process's link to the engine (see the module text).

    ``publish_endpoint`` / ``command_endpoint`` default to the site's ``bus.publish`` / ``bus.command``.
    ``lost_after_s``: with no message from the engine for longer than this the link is "lost" (the engine
    publishes positions at about 5 Hz and its status at 1 Hz, so 3 s is several missed frames).
    """

    def __init__(
        self,
        site: Site,
        *,
        publish_endpoint: str | None = None,
        command_endpoint: str | None = None,
        context: zmq.Context | None = None,
        lost_after_s: float = 3.0,
        snapshot_timeout_s: float = 2.0,
        command_timeout_s: float = 2.0,
        max_alarms: int = 5000,
        max_pending_deltas: int = 10000,
        poll_interval_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        console_name: str = "console",
    ) -> None:
        self.site = site
        self.publish_endpoint = publish_endpoint or site.bus.publish
        self.command_endpoint = command_endpoint or site.bus.command
        self.lost_after_s = float(lost_after_s)
        self.snapshot_timeout_s = float(snapshot_timeout_s)
        self.command_timeout_s = float(command_timeout_s)
        self.max_alarms = int(max_alarms)
        self.poll_interval_s = float(poll_interval_s)
        self.console_name = console_name
        self._clock = clock
        #: this console's identity at the engine's command socket, drawn at start: session tokens are bound to it
        self.routing_id = b"console-" + secrets.token_hex(16).encode("ascii")
        self._own_context = context is None
        self._ctx = context
        self._n_people = len(site.people)
        self._n_gas = len(site.gas_detectors)
        self._n_vib = len(site.vibration_points)

        # shared with readers: replaced whole under the lock, never mutated
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}
        self._table = AlarmTable()
        self._counters = LinkCounters()
        self._last_frame_s: float | None = None
        self._notifications: tuple[Notification, ...] = ()
        self._floods: Mapping[str, FloodState] = MappingProxyType({})
        self._permits: PermitBoard | None = None
        self._muster: MusterStatus | None = None
        self.trails = LinkTrails(self._n_people)  # thread-safe itself

        # owned by the receiver thread
        self._count: dict[str, int] = {f.name: 0 for f in fields(LinkCounters)}
        self._mirror = AlarmMirror(self._count, max_alarms=max_alarms, max_pending=max_pending_deltas)
        self._snapshot_id: str | None = None
        self._snapshot_deadline = 0.0  # reply due by then
        self._snapshot_retry_at = 0.0  # no new request before then
        self._trails_id: str | None = None  # the trails request in flight
        self._trails_wanted = True  # ask the engine for everyone's trails (at the start and after a loss)
        self._trails_retry_at = 0.0
        self._trails_deadline = 0.0
        self._was_lost = False
        self._commands: dict[str, tuple[concurrent.futures.Future, float]] = {}
        self._notify_buf: deque[Notification] = deque(maxlen=MAX_NOTIFICATIONS)

        self._outbox: queue.Queue[tuple[dict[str, Any], concurrent.futures.Future]] = queue.Queue(maxsize=100)
        self._stop = threading.Event()
        self._started = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- lifetime ----------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start the receiver thread (connects; the engine need not be up yet). Returns self."""
        if self._thread is not None:
            raise RuntimeError("EngineLink already started")
        if self._ctx is None:
            self._ctx = zmq.Context()
        self._thread = threading.Thread(target=self._run, name="engine-link", daemon=False)
        self._thread.start()
        if not self._started.wait(10.0):
            raise RuntimeError("engine link thread did not start")
        if self._error is not None:
            raise RuntimeError(f"engine link failed to start: {self._error}") from self._error
        log.info(
            "engine link: subscribed to %s, commands to %s", self.publish_endpoint, self.command_endpoint
        )
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread, close the sockets (and the context if the link made it). Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("engine link thread did not stop within %.1f s", timeout_s)
        if self._own_context and self._ctx is not None and not (self._thread and self._thread.is_alive()):
            self._ctx.term()
            self._ctx = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- readers (any thread) ----------------------------------------------------------------------------
    def snapshot(self) -> LinkSnapshot:
        """Everything a session tick needs, taken under one lock. All parts are immutable."""
        now = self._clock()
        with self._lock:
            frames, table, counters, last = self._frames, self._table, self._counters, self._last_frame_s
            notifications, floods = self._notifications, self._floods
            permits, muster = self._permits, self._muster
        age = None if last is None else max(0.0, now - last)
        state: LinkState = "waiting" if age is None else ("lost" if age > self.lost_after_s else "ok")
        return LinkSnapshot(
            positions=frames.get(TOPIC_POSITIONS),
            sensors=frames.get(TOPIC_SENSORS),
            status=frames.get(TOPIC_STATUS),
            alarms=table,
            counters=counters,
            state=state,
            last_frame_age_s=age,
            notifications=notifications,
            floods=floods,
            gasfield=frames.get(TOPIC_GASFIELD),
            permits=permits,
            muster=muster,
            trails=self.trails,
        )

    def positions(self) -> Frame | None:
        """The latest ``display.positions`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_POSITIONS)

    def sensors(self) -> Frame | None:
        """The latest ``display.sensors`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_SENSORS)

    def status(self) -> Frame | None:
        """The latest ``engine.status`` frame."""
        with self._lock:
            return self._frames.get(TOPIC_STATUS)

    def alarms(self) -> AlarmTable:
        """The live alarm table."""
        with self._lock:
            return self._table

    def counters(self) -> LinkCounters:
        with self._lock:
            return self._counters

    def wait_until(self, predicate: Callable[[LinkSnapshot], bool], timeout_s: float = 5.0) -> LinkSnapshot:
        """Poll :meth:`snapshot` until ``predicate`` holds (bounded); raise ``TimeoutError`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            snap = self.snapshot()
            if predicate(snap):
                return snap
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"engine link condition not met within {timeout_s} s (counters: {snap.counters})"
                )
            time.sleep(0.01)

    # -- commands (any thread) ---------------------------------------------------------------------------
    def submit(self, request: Mapping[str, Any]) -> concurrent.futures.Future:
        """Queue one command without waiting: the future resolves to the engine's reply.

        It fails with ``TimeoutError`` when no reply comes within 4 x ``command_timeout_s`` and ``RuntimeError``
        when the link stops first. Cancelling it forgets the command (a late reply is counted as unmatched).
        For callers on an event loop (a Panel session): ``await asyncio.wrap_future(link.submit(req))``.
        Raises ``RuntimeError`` at once when the link is not running or too many commands are in flight.
        """
        if not self.running:
            raise RuntimeError("engine link is not running")
        req = dict(request)
        req.setdefault("id", f"cmd-{uuid.uuid4().hex}")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        try:
            self._outbox.put_nowait((req, fut))
        except queue.Full:
            raise RuntimeError("too many engine commands in flight") from None
        return fut

    def command(self, request: Mapping[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        """Send one command (e.g. ``{"op": "ack", "alarm": id, "user": "op1", "comment": ""}``), wait for the reply.

        An ``id`` is added when missing. Returns the engine's reply (``ok`` true or false with a ``reason``);
        raises ``TimeoutError`` when no reply comes within ``timeout_s`` (default ``command_timeout_s``) and
        ``RuntimeError`` when the link is not running or too many commands are in flight.
        """
        req = dict(request)
        req.setdefault("id", f"cmd-{uuid.uuid4().hex}")
        timeout = self.command_timeout_s if timeout_s is None else float(timeout_s)
        fut = self.submit(req)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(
                f"engine did not answer {req.get('op')!r} ({req['id']}) within {timeout} s"
            ) from None

    # -- the receiver thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        assert self._ctx is not None
        try:
            topics = [
                TOPIC_POSITIONS,
                TOPIC_SENSORS,
                TOPIC_ALARM_DELTA,
                TOPIC_STATUS,
                TOPIC_NOTIFY,
                TOPIC_FLOOD,
                TOPIC_GASFIELD,
                TOPIC_PERMITS,
                TOPIC_MUSTER,
            ]
            sub = bus.sub_socket(self._ctx, self.publish_endpoint, topics)
            dealer = bus.dealer_socket(self._ctx, self.command_endpoint, routing_id=self.routing_id)
        except zmq.ZMQError as e:
            self._error = e
            self._started.set()
            return
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(dealer, zmq.POLLIN)
        self._started.set()
        poll_ms = max(1, int(self.poll_interval_s * 1000))
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(poll_ms))
                changed = False
                if sub in events:
                    changed |= self._drain_sub(sub)
                if dealer in events:
                    changed |= self._drain_dealer(dealer)
                self._send_commands(dealer)
                changed |= self._maintain(dealer)
                if changed:
                    self._publish()
        except Exception:  # a bug here must be loud, and must not leave a silently frozen wall
            log.exception("engine link thread failed")
            raise
        finally:
            for fut, _ in self._commands.values():
                if not fut.done():
                    fut.set_exception(RuntimeError("engine link stopped"))
            while not self._outbox.empty():
                _, fut = self._outbox.get_nowait()
                if not fut.done():
                    fut.set_exception(RuntimeError("engine link stopped"))
            sub.close(linger=0)
            dealer.close(linger=0)

    def _bump(self, name: str, n: int = 1) -> None:
        self._count[name] += n

    def _publish(self) -> None:
        """Hand the thread's state to readers: new immutable objects, swapped under the lock."""
        counters = LinkCounters(**self._count)
        table = self._mirror.table(self._table)
        with self._lock:
            if table is not None:
                self._table = table
            self._counters = counters

    # SUB side
    def _drain_sub(self, sub: zmq.Socket, max_messages: int = 2000) -> bool:
        latest: dict[str, bus.Message] = {}
        checked: dict[int, str | None] = {}  # positions messages already checked (by id) -> their problem
        changed = False
        for _ in range(max_messages):
            try:
                frames = sub.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            now = self._clock()
            self._bump("frames")
            changed = True
            with self._lock:
                self._last_frame_s = now
            try:
                msg = bus.decode(frames)
            except bus.FramingError as e:
                self._bump("bad_frames")
                self._log_bad(f"undecodable message: {e}")
                continue
            if msg.topic == TOPIC_ALARM_DELTA:
                self._on_delta(msg)
            elif msg.topic == TOPIC_NOTIFY:
                self._on_notify(msg.meta)
            elif msg.topic == TOPIC_FLOOD:
                self._on_flood(msg.meta)
            elif msg.topic == TOPIC_PERMITS:
                self._on_permits(msg.meta.get("permits"), msg.event_ts_s)
            elif msg.topic == TOPIC_MUSTER:
                self._on_muster(msg.meta)
            elif msg.topic in _DISPLAY_TOPICS:
                if msg.topic == TOPIC_POSITIONS:  # every frame feeds the trails, not only the newest
                    checked[id(msg)] = problem = check_display_arrays(msg, self._n_people, self._n_gas, self._n_vib)
                    if not problem:
                        self.trails.on_positions(msg.arrays, msg.event_ts_s)
                latest[msg.topic] = msg  # conflate: only the newest of a drain is kept
                if msg.topic == TOPIC_STATUS:
                    self._reconcile_flood(msg.meta.get("flood"))  # in order with alarm.flood messages
                    if self._mirror.note_epoch(msg.meta.get("epoch")):  # another engine run: its first deltas
                        self._snapshot_id = None  # may have been lost; ask for its table
                self._bump(_DISPLAY_COUNTERS[msg.topic])
            else:
                self._bump("bad_frames")
                self._log_bad(f"unexpected topic {msg.topic!r}")
        if latest:
            now = self._clock()
            new_frames: dict[str, Frame] = {}
            for topic, msg in latest.items():
                if id(msg) in checked:  # positions: checked once, as they came
                    problem = checked[id(msg)]
                else:
                    problem = check_display_arrays(msg, self._n_people, self._n_gas, self._n_vib)
                if problem:
                    self._bump("bad_frames")
                    self._log_bad(f"{topic}: {problem}")
                    continue
                number = self._count[_DISPLAY_COUNTERS[topic]]
                new_frames[topic] = Frame(
                    topic=topic,
                    arrays=MappingProxyType(dict(msg.arrays)),
                    meta=MappingProxyType(dict(msg.meta)),
                    event_ts_s=msg.event_ts_s,
                    received_s=now,
                    number=number,
                )
            if new_frames:
                with self._lock:
                    self._frames = {**self._frames, **new_frames}
        return changed

    def _log_bad(self, what: str) -> None:
        n = self._count["bad_frames"]
        if n <= 10 or n % 1000 == 0:
            log.warning("engine link: %s (%d bad so far)", what, n)

    # escalation notifications and flood state: events, never conflated
    def _on_notify(self, meta: Mapping[str, Any]) -> None:
        try:
            note = Notification.from_meta(self._count["notifications"] + 1, meta)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        self._bump("notifications")
        self._notify_buf.append(note)
        log.info("engine link: escalation step %d of %s to role %s", note.step, note.alarm, note.notify_role)
        notifications = tuple(self._notify_buf)
        with self._lock:
            self._notifications = notifications

    def _on_flood(self, meta: Any) -> None:
        try:
            if not isinstance(meta, Mapping):
                raise ValueError("flood state is not an object")  # noqa: TRY004 - one error kind
            state = FloodState.from_meta(meta)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        self._bump("floods")
        with self._lock:
            before = self._floods.get(state.position)
            self._floods = MappingProxyType({**self._floods, state.position: state})
        if before is None or before.flood != state.flood:
            log.info("engine link: alarm flood at %s: %s", state.position, "on" if state.flood else "off")

    # permit board and muster: each message is the whole state, latest wins
    def _on_permits(self, records: Any, engine_ts_s: float, *, from_snapshot: bool = False) -> None:
        if not isinstance(records, list):
            self._bump("bad_frames")
            self._log_bad(f"permit board without a permits list (got {type(records).__name__})")
            return
        current = self._permits
        if from_snapshot and current is not None and not current.engine_ts_s <= engine_ts_s:
            return  # the board message already taken in is newer than the snapshot
        permits = []
        for raw in records:
            try:
                permits.append(PermitInfo.from_json(raw))
            except ValueError as e:
                self._bump("bad_frames")
                self._log_bad(str(e))
        if not from_snapshot:
            self._bump("permit_boards")
        version = (current.version if current is not None else 0) + 1
        board = PermitBoard(permits=tuple(permits), engine_ts_s=float(engine_ts_s), version=version)
        with self._lock:
            self._permits = board

    def _on_muster(self, meta: Any, *, from_snapshot: bool = False) -> None:
        current = self._muster
        version = (current.version if current is not None else 0) + 1
        try:
            status = MusterStatus.from_meta(meta, version)
        except ValueError as e:
            self._bump("bad_frames")
            self._log_bad(str(e))
            return
        if from_snapshot and current is not None and not current.engine_ts_s <= status.engine_ts_s:
            return  # the status message already taken in is newer than the snapshot
        if not from_snapshot:
            self._bump("muster_updates")
        if current is None or current.active != status.active:
            log.info(
                "engine link: emergency muster %s",
                f"declared by {status.declared_by}" if status.active else "not active",
            )
        with self._lock:
            self._muster = status

    def _reconcile_flood(self, flags: Any) -> None:
        """The engine's status carries ``flood``: {position: bool} every second. A console that missed a flood's
        start or end takes the flag from there; since when and the first-out stay unknown (NaN, None) until the
        next snapshot or ``alarm.flood`` message (a console that joins gets them from its snapshot)."""
        if not isinstance(flags, Mapping):
            return
        for position, on in flags.items():
            if not isinstance(position, str) or not isinstance(on, bool):
                continue
            current = self._floods.get(position)
            if current is not None and current.flood == on:
                continue
            state = FloodState(
                position=position, flood=on, since_ts_s=math.nan, first_out=None, count_10min=0
            )
            with self._lock:
                self._floods = MappingProxyType({**self._floods, position: state})
            log.info(
                "engine link: alarm flood at %s: %s (from the engine status)", position, "on" if on else "off"
            )

    # alarm table
    def _on_delta(self, msg: bus.Message) -> None:
        seq, records = msg.meta.get("seq"), msg.meta.get("alarms")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1 or not isinstance(records, list):
            self._bump("deltas")
            self._bump("bad_frames")
            self._log_bad(f"alarm.delta without a valid seq / alarms list (seq={seq!r})")
            return
        epoch = msg.meta.get("epoch")
        if self._mirror.on_delta(seq, records, epoch if isinstance(epoch, str) else None):
            self._snapshot_id = None  # a reply still in flight may predate the restart: ask again

    def _request_resync(self) -> None:
        self._mirror.request_resync()
        self._snapshot_id = None

    def _on_snapshot(self, reply: dict[str, Any]) -> None:
        self._snapshot_id = None
        seq, records = reply.get("seq"), reply.get("alarms")
        if (
            not reply.get("ok")
            or not isinstance(seq, int)
            or isinstance(seq, bool)
            or not isinstance(records, list)
        ):
            self._bump("snapshot_failures")
            log.warning("engine link: snapshot refused or malformed: %.200s", reply)
            self._snapshot_retry_at = self._clock() + self.snapshot_timeout_s  # retry later, not at once
            return
        ts = float_or_nan(reply.get("engine_ts_s"))
        if "permits" in reply:
            self._on_permits(reply["permits"], ts, from_snapshot=True)
        if "muster" in reply:
            muster = reply["muster"]
            meta = muster if isinstance(muster, dict) else {"active": False}
            self._on_muster({**meta, "engine_ts_s": meta.get("engine_ts_s", ts)}, from_snapshot=True)
        floods = reply.get("floods")
        if isinstance(floods, list):  # a console that joins during a flood: since when and the first-out too
            for f in floods:
                if isinstance(f, Mapping) and (cur := self._floods.get(str(f.get("position")))) is not None \
                        and cur.flood == f.get("flood") and math.isfinite(cur.since_ts_s):
                    continue  # the flood message already taken in says as much
                self._on_flood(f)
        epoch = reply.get("epoch")
        self._mirror.on_snapshot(seq, records, epoch if isinstance(epoch, str) else None)

    def _on_trails(self, reply: dict[str, Any]) -> None:
        self._trails_id = None
        try:
            if not reply.get("ok"):
                raise ValueError(str(reply.get("reason", "refused")))
            self.trails.load(reply.get("trails"))
            self._trails_wanted = False
        except ValueError as e:  # an older engine without trails, or a bad answer: the frames still fill them
            log.warning("engine link: trails not taken: %.200s", e)
            self._trails_wanted = False

    # DEALER side
    def _drain_dealer(self, dealer: zmq.Socket, max_messages: int = 1000) -> bool:
        changed = False
        for _ in range(max_messages):
            try:
                frames = dealer.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            changed = True
            try:
                reply = json.loads(frames[-1])  # a REQ-style empty delimiter, if any, comes first
                if not isinstance(reply, dict):
                    raise ValueError("reply is not an object")  # noqa: TRY004 - handled just below
            except (ValueError, IndexError) as e:
                self._bump("bad_frames")
                self._log_bad(f"undecodable command reply: {e}")
                continue
            rid = reply.get("id")
            if rid is not None and rid == self._snapshot_id:
                self._on_snapshot(reply)
            elif rid is not None and rid == self._trails_id:
                self._on_trails(reply)
            elif rid in self._commands:
                fut, _ = self._commands.pop(rid)
                if not fut.done():
                    fut.set_result(reply)
            else:
                self._bump("replies_unmatched")
        return changed

    def _send(self, dealer: zmq.Socket, request: dict[str, Any]) -> bool:
        try:
            dealer.send(json.dumps(request, separators=(",", ":")).encode(), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    def _send_commands(self, dealer: zmq.Socket) -> None:
        now = self._clock()
        while True:
            try:
                req, fut = self._outbox.get_nowait()
            except queue.Empty:
                break
            if not fut.set_running_or_notify_cancel():
                continue
            if not self._send(dealer, req):
                fut.set_exception(RuntimeError("engine command channel is full"))
                continue
            self._bump("commands")
            self._commands[req["id"]] = (fut, now + self.command_timeout_s * 4)
        for rid in [rid for rid, (fut, deadline) in self._commands.items() if fut.done() or now > deadline]:
            fut, _ = self._commands.pop(rid)
            if not fut.done():
                fut.set_exception(TimeoutError("no reply from the engine"))
            self._bump("command_timeouts")

    def _maintain(self, dealer: zmq.Socket) -> bool:
        """Link health and snapshot requests. Returns True when something readers see changed."""
        now = self._clock()
        with self._lock:
            last = self._last_frame_s
        alive = last is not None and now - last <= self.lost_after_s
        changed = False
        if last is not None and not alive and not self._was_lost:
            self._was_lost = True
            self._bump("link_lost")
            log.warning("engine link lost: no message for %.1f s", now - last)
            self._request_resync()  # what happened while we were away is unknown: start from a snapshot
            self._trails_wanted = True  # and where everyone went meanwhile
            changed = True
        elif alive and self._was_lost:
            self._was_lost = False
            log.info("engine link back")
        if self._snapshot_id is not None and now > self._snapshot_deadline:
            self._bump("snapshot_failures")
            log.warning("engine link: no snapshot reply within %.1f s, asking again", self.snapshot_timeout_s)
            self._snapshot_id = None
            changed = True
        # ask only while the engine is heard from, so requests do not pile up in a dead connection
        if (
            self._mirror.need_snapshot
            and self._snapshot_id is None
            and alive
            and now >= self._snapshot_retry_at
        ):
            rid = f"snap-{uuid.uuid4().hex}"
            if self._send(dealer, {"id": rid, "op": "snapshot"}):
                self._snapshot_id = rid
                self._snapshot_deadline = now + self.snapshot_timeout_s
                self._bump("snapshot_requests")
                changed = True
        if self._trails_id is not None and now > self._trails_deadline:
            self._trails_id = None  # no answer: ask again below
        if self._trails_wanted and self._trails_id is None and alive and now >= self._trails_retry_at:
            rid = f"trails-{uuid.uuid4().hex}"
            if self._send(dealer, {"id": rid, "op": "trails", "step_s": 1.0}):
                self._trails_id = rid
                self._trails_deadline = now + 4 * self.snapshot_timeout_s  # a few MB for a big site
                self._trails_retry_at = now + 4 * self.snapshot_timeout_s
        return changed
