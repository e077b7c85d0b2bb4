"""The real engine for tests: ``ingest.engine.EngineProcess`` on ipc:// endpoints in a test folder, run in a
thread, fed through a real PUSH socket by a scripted input source (the bus messages the adapters send, built by
tests/builders.py), commanded through its real ROUTER.

    with EngineStack(demo_site, tmp_path) as stack:
        stack.send(positions(stack.site, {"T0050": (145.0, 70.0)}, time.time()))
        stack.command(op="ack", alarm=..., user="op1")      # a DEALER of its own; consoles use EngineLink
        stack.wait_for(lambda: ..., what="...")

The engine's clock is the wall clock (its ticks are ``time.time()``), so scripted inputs carry ``time.time()``
as their event time. :class:`PublishRelay` and :class:`CommandRelay` sit between the engine and a console to
play a faulty network (a lost message, a silent link, an unanswered request); what they pass on is the engine's
own. :func:`console_process` serves ``python -m console.web.app`` for the stack's site.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import zmq

from config import Site
from config.loader import dump_site
from ingest import bus
from ingest.bus import Message
from ingest.engine import EngineProcess

__all__ = ["EngineStack", "PublishRelay", "CommandRelay", "console_process", "ipc_site", "site_yaml", "quick_rules",
           "positions_at", "Plant", "Logins", "ConsoleRun", "DEMO_PASSWORD", "DEMO_PIN", "reply_without_token"]

REPO = Path(__file__).resolve().parents[1]
#: the password of every demo user (config/sites/demo-plant-users.yaml), and the field workers' PIN
DEMO_PASSWORD = "demo"
DEMO_PIN = "1234"


def ipc_site(site: Site, folder: Path, **update: Any) -> Site:
    """``site`` with its ingest / publish / command endpoints on ipc:// files in ``folder`` (and ``update``
    applied to its top-level fields, e.g. ``fences=FenceSettings(min_dwell_s=0.0)``)."""
    endpoints = {name: f"ipc://{folder}/{name}.ipc" for name in ("ingest", "publish", "command")}
    return site.model_copy(update={"bus": site.bus.model_copy(update=endpoints), **update})


def site_yaml(site: Site) -> str:
    """The site as a site file (what the engine records and a console process reads)."""
    return dump_site(site)


class EngineStack:
    """One real engine process (thread) on ipc endpoints in ``folder``; its recording and journal go to
    ``folder / out``. ``site_text`` is the site file it records (default: the effective site as YAML); ``update``
    applies to the site's top-level fields (see :func:`quick_rules`)."""

    def __init__(self, site: Site, folder: Path, *, out: str = "live", site_text: str | None = None,
                 **update: Any) -> None:
        self.folder = Path(folder)
        self.site = ipc_site(site, self.folder, **update)
        self.site_text = site_text if site_text is not None else site_yaml(self.site)
        self.out_dir = self.folder / out
        self.ctx = zmq.Context()
        self.proc: EngineProcess | None = None
        self.thread: threading.Thread | None = None
        self.summary: dict[str, Any] | None = None
        self._stop = threading.Event()
        self.push = bus.push_socket(self.ctx, self.site.bus.ingest)
        self._senders: dict[str, bus.Sender] = {}
        self._send_lock = threading.Lock()  # a Plant thread and the test both send: one socket, one at a time
        self._dealer: zmq.Socket | None = None
        self._requests = 0
        self._tokens: dict[str, str] = {}

    # -- lifetime -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        """Start a fresh engine (a new, empty ``out_dir`` unless one is there: then it resumes from it)."""
        self.proc = EngineProcess(self.site, self.site_text, self.out_dir, ctx=self.ctx, notify=False)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self.proc.run, args=(self._stop,), name="engine", daemon=True)
        self.thread.start()
        if not self.proc.ready.wait(10):
            raise RuntimeError("the engine did not start within 10 s")
        self.summary = None
        return self

    def stop(self) -> dict[str, Any]:
        """Stop the engine (it drains what was sent), close its files; the run summary. Idempotent."""
        if self.summary is None and self.proc is not None:
            self._stop.set()
            assert self.thread is not None
            self.thread.join(20)
            self.summary = self.proc.close()
        return self.summary or {}

    def restart(self, out: str) -> None:
        """Stop this engine and start a new one on the same endpoints with an empty ``out`` folder: its alarm
        sequence starts again from 1, as after an engine restart without its recording."""
        self.stop()
        self.out_dir = self.folder / out
        self._tokens.clear()  # a new engine without a key directory draws a new token key
        self.start()

    def close(self) -> None:
        self.stop()
        for s in (self.push, self._dealer):
            if s is not None:
                s.close(linger=0)
        self.ctx.term()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the scripted input source --------------------------------------------------------------------------
    def sender(self, source: str) -> bus.Sender:
        """The numbered sender of one adapter (``uwb``, ``gas``, ``vibration``, ``camera``, ``permits``...)."""
        if source not in self._senders:
            self._senders[source] = bus.Sender(self.push, source)
        return self._senders[source]

    def send(self, msg: Message) -> None:
        """Send an adapter's message (from tests/builders.py) as its adapter would: flow-controlled."""
        with self._send_lock:
            self.sender(msg.source).send(msg.topic, msg.kind, msg.event_ts_s, msg.arrays, msg.meta, timeout_s=5)

    def command(self, timeout_s: float = 5.0, **req: Any) -> dict[str, Any]:
        """One request on the engine's ROUTER from a DEALER of the stack's own, as ``req["user"]`` logged in with
        the demo password (the stack logs each user in once, as a workstation would); the reply."""
        user = req.get("user")
        if user is not None and req.get("op") not in ("snapshot", "login") and "token" not in req:
            req["token"] = self.token(user)
        return self.raw_command(timeout_s, **req)

    def token(self, user: str, password: str = DEMO_PASSWORD) -> str:
        """A session token of ``user`` for the stack's own DEALER (logged in once, renewed by each reply); a field
        worker logs in with the demo PIN."""
        if user not in self._tokens:
            field = any(u.id == user and u.role == "field_worker" for u in self.site.users)
            secret = {"pin": DEMO_PIN} if field else {"password": password}
            reply = self.raw_command(op="login", user=user, console="test-stack", address="127.0.0.1", **secret)
            assert reply.get("ok"), f"login of {user}: {reply}"
            self._tokens[user] = reply["token"]
        return self._tokens[user]

    def raw_command(self, timeout_s: float = 5.0, **req: Any) -> dict[str, Any]:
        """One request exactly as given (no token added); the reply."""
        if self._dealer is None:
            self._dealer = bus.dealer_socket(self.ctx, self.site.bus.command, routing_id=b"test-stack-dealer")
        self._requests += 1
        rid = req.pop("id", f"stack-{self._requests}")
        self._dealer.send_json({"id": rid, **req})
        while True:
            if not self._dealer.poll(int(timeout_s * 1000)):
                raise TimeoutError(f"no reply to {req.get('op')!r} within {timeout_s} s")
            reply = self._dealer.recv_json()
            if reply.get("id") == rid:
                if isinstance(reply.get("token"), str) and req.get("user") in self._tokens:
                    self._tokens[req["user"]] = reply["token"]
                return reply

    def alarms(self) -> dict[str, dict[str, Any]]:
        """The engine's live alarms by id, from a snapshot (read-only, as a console asks)."""
        return {a["id"]: a for a in self.command(op="snapshot")["alarms"]}

    def wait_for(self, check: Callable[[], Any], *, what: str, timeout_s: float = 10.0) -> Any:
        """Poll ``check`` (bounded) until it returns something truthy; that value."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"the engine did not get to: {what} within {timeout_s} s")
            time.sleep(0.05)

    def wait_alarm(self, alarm_id: str, state: str | None = None, *, timeout_s: float = 10.0) -> dict[str, Any]:
        """Wait until the engine holds ``alarm_id`` (in ``state``, if given); its record."""

        def check() -> dict[str, Any] | None:
            rec = self.alarms().get(alarm_id)
            return rec if rec is not None and (state is None or rec["state"] == state) else None

        return self.wait_for(check, what=f"{alarm_id} {state or 'raised'}", timeout_s=timeout_s)


    def journal(self, event: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(alarm id, actor, detail) of the journal rows of one ``event`` kind written so far (read-only)."""
        return [(a, actor, detail) for _, a, actor, detail in self.journal_rows() if _ == event]

    def journal_rows(self) -> list[tuple[str, str, str, dict[str, Any]]]:
        """(event, alarm id, actor, detail) of every journal row written so far, in order (read-only)."""
        import json
        import sqlite3

        con = sqlite3.connect(f"file:{self.out_dir / 'journal.sqlite'}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT event, alarm_id, actor, detail FROM journal ORDER BY row")
            return [(e, a, actor, json.loads(d)) for e, a, actor, d in rows]
        finally:
            con.close()

    def zone_centre(self, zone: str) -> tuple[float, float]:
        """The mean of a zone's corners (site metres): a point inside the demo site's convex zones."""
        poly = next(z.polygon for z in self.site.zones if z.id == zone)
        return (sum(p[0] for p in poly) / len(poly), sum(p[1] for p in poly) / len(poly))

    def activate_permit(self, permit: str, *, zone: str, workers: list[str], watcher: str,
                        type_: str = "hot_work", grade: str | None = "2", user: str = "sup1", applicant: str = "op1",
                        valid_for_s: float = 4 * 3600.0) -> dict[str, Any]:
        """Take a permit through the engine's own steps, as people would: its watcher and workers located at the
        work, ``permit_request`` (with a job safety analysis) and ``permit_gas_test`` (clean air) by ``applicant``,
        ``permit_approve`` by ``user``, the watcher's ``permit_signin`` (their field-worker account, with the demo
        PIN), ``permit_activate`` by ``user``; the activation's reply (each step before it must be accepted)."""
        x, y = self.zone_centre(zone)
        self.send(positions_at(self.site, {t: (x + k, y) for k, t in enumerate([watcher, *workers])}))
        now = time.time()
        jsa = {"hazards": ["the job's hazards"], "measures": ["their measures"], "prepared_by": applicant,
               "reviewed_by": user}
        account = next(u.id for u in self.site.users if u.role == "field_worker" and u.tag == watcher)
        steps = [
            (applicant, {"op": "permit_request", "type": type_, "grade": grade, "zone": zone, "workers": workers,
                         "watcher": watcher, "valid_from_s": now - 60.0, "valid_to_s": now + valid_for_s,
                         "jsa": jsa}),
            (applicant, {"op": "permit_gas_test", "values": {"LEL": 0.0, "O2": 20.9}}),
            (user, {"op": "permit_approve"}),
            (account, {"op": "permit_signin"}),
        ]
        for who, step in steps:
            reply = self.command(user=who, permit=permit, **step)
            assert reply["ok"], f"{step['op']} {permit}: {reply}"
        return self.command(op="permit_activate", user=user, permit=permit)


class Plant:
    """A scripted plant feeding an :class:`EngineStack` from a thread, as the adapters would: every 0.2 s the
    positions of ``walkers`` people walking on circles in open ground (clear of every zone that is not a plain
    ``area``, so they raise nothing) and of the people the test ``place``-d (on 2 m circles around their spot, so
    they never count as down); every 1 s the gas values and vibration levels the test set (a detector that goes
    quiet would raise a stale alarm). Use as a context manager."""

    def __init__(self, stack: EngineStack, *, walkers: int = 150, first: int = 10, seed: int = 7) -> None:
        import numpy as np

        self.stack = stack
        site = stack.site
        self.gas: dict[str, float] = {}
        self.vibration: dict[str, float] = {}
        self._placed: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="plant", daemon=True)
        rng = np.random.default_rng(seed)
        boxes = [(min(p[0] for p in z.polygon), min(p[1] for p in z.polygon), max(p[0] for p in z.polygon),
                  max(p[1] for p in z.polygon)) for z in site.zones if z.kind != "area"]
        x0, y0, x1, y1 = site.floor_plan.extent_m
        self.walkers: list[tuple[str, float, float, float, float, float]] = []  # tag, cx, cy, r, omega, phase
        for person in site.people[first:]:
            if len(self.walkers) == walkers:
                break
            for _ in range(200):
                cx, cy, r = rng.uniform(x0 + 15, x1 - 15), rng.uniform(y0 + 15, y1 - 15), rng.uniform(3.0, 10.0)
                if all(cx + r + 3 < bx0 or cx - r - 3 > bx1 or cy + r + 3 < by0 or cy - r - 3 > by1
                       for bx0, by0, bx1, by1 in boxes):
                    omega = rng.uniform(0.2, 0.6) * rng.choice([-1, 1])
                    self.walkers.append((person.tag, cx, cy, r, omega, rng.uniform(0, 6.28)))
                    break

    def place(self, tags_xy: dict[str, tuple[float, float]]) -> None:
        """Keep these tags walking on 2 m circles around these spots (taken off the walkers)."""
        with self._lock:
            self._placed.update(tags_xy)
            self.walkers = [w for w in self.walkers if w[0] not in tags_xy]

    def _positions(self, t: float) -> dict[str, tuple[float, float]]:
        import math

        with self._lock:
            xy = {tag: (cx + r * math.cos(om * t + ph), cy + r * math.sin(om * t + ph))
                  for tag, cx, cy, r, om, ph in self.walkers}
            for k, (tag, (x, y)) in enumerate(self._placed.items()):
                xy[tag] = (x + 2.0 * math.cos(0.5 * t + k), y + 2.0 * math.sin(0.5 * t + k))
        return xy

    def _run(self) -> None:
        from tests.builders import gas_values, positions, vibration_features

        site, k = self.stack.site, 0
        while not self._stop.wait(0.2):
            now = time.time()
            self.stack.send(positions(site, self._positions(now), now))
            if k % 5 == 0:
                if self.gas:
                    self.stack.send(gas_values(site, dict(self.gas), now))
                if self.vibration:
                    self.stack.send(vibration_features(site, dict(self.vibration), now))
            k += 1

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


class Logins:
    """Demo users logged in at the engine through a console's :class:`~console.link.EngineLink`, as a workstation
    logs them in: ``logins.command({"op": "ack", "alarm": a, "user": "op1"})`` sends it with op1's token (logging
    op1 in with the demo password the first time) and keeps the fresh token of the reply."""

    def __init__(self, link: Any, password: str = DEMO_PASSWORD) -> None:
        self.link, self.password = link, password
        self.credentials: dict[str, Any] = {}

    def credential(self, user: str) -> Any:
        from console.auth import engine_login

        if user not in self.credentials:
            result = engine_login(self.link, user, self.password, console="test", address="127.0.0.1")
            assert result.credential is not None, f"login of {user}: {result}"
            self.credentials[user] = result.credential
        return self.credentials[user]

    def command(self, request: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        cred = self.credential(str(request["user"]))
        reply = self.link.command(cred.sign(request), timeout_s=timeout_s)
        cred.take(reply)
        return reply


def reply_without_token(reply: dict[str, Any]) -> dict[str, Any]:
    """An engine reply without the fresh session token (and its expiry) every signed command's reply carries."""
    return {k: v for k, v in reply.items() if k not in ("token", "expires_s")}


def quick_rules(site: Site) -> dict[str, Any]:
    """Site settings (``EngineStack`` keyword updates) that make slow rules quick enough for a test, on the
    real engine's own code: ``gas.high`` on GD07 and GD08 escalates to a supervisor after 0.5 s and to the
    safety manager after 1 s (policy ``test-quick``); an SOS holds 0.5 s after the press (then the alarm is
    latched until acknowledged and reset)."""
    from config.schema import AlarmRule, EscalationPolicy, EscalationStep

    quick = EscalationPolicy(id="test-quick", steps=[EscalationStep(after_s=0.5, notify_role="supervisor"),
                                                     EscalationStep(after_s=1.0, notify_role="safety_manager")])
    return {
        "alarm_rules": [AlarmRule(condition="gas.high", match="gas.high:GD0[78]", escalation="test-quick"),
                        *site.alarm_rules],
        "escalation_policies": [*site.escalation_policies, quick],
        "people_safety": site.people_safety.model_copy(update={"sos_hold_s": 0.5}),
    }


def positions_at(site: Site, tags_xy: dict[str, tuple[float, float]]) -> Message:
    """A ``uwb.positions`` batch at the wall clock (the engine's clock)."""
    from tests.builders import positions

    return positions(site, tags_xy, time.time())


class _Relay:
    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.ctx = ctx
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._ready = threading.Event()

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        raise NotImplementedError


class PublishRelay(_Relay):
    """Passes the engine's published frames on from its own PUB at ``endpoint``, unless told to lose some:
    ``lose(topic, n)`` drops the next ``n`` messages of ``topic``; ``silence()`` drops everything until
    ``resume()`` (a link gone quiet); ``inject(frames)`` publishes frames of the test's own (a peer's bad frame)."""

    def __init__(self, ctx: zmq.Context, upstream: str, endpoint: str) -> None:
        super().__init__(ctx, endpoint)
        self.upstream = upstream
        self.silent = False
        self.lost: dict[str, int] = {}
        self._to_lose: dict[str, int] = {}
        self._inject: list[list[bytes]] = []

    def lose(self, topic: str, n: int = 1) -> None:
        with self._lock:
            self._to_lose[topic] = self._to_lose.get(topic, 0) + n

    def silence(self, silent: bool = True) -> None:
        self.silent = silent

    def resume(self) -> None:
        self.silence(False)

    def inject(self, frames: list[bytes]) -> None:
        with self._lock:
            self._inject.append(frames)

    def _run(self) -> None:
        sub = bus.sub_socket(self.ctx, self.upstream, [""])
        pub = bus.pub_socket(self.ctx, self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                with self._lock:
                    injected, self._inject = self._inject, []
                for frames in injected:
                    pub.send_multipart(frames)
                if not sub.poll(20):
                    continue
                frames = sub.recv_multipart()
                topic = frames[0].decode("ascii", "replace")
                with self._lock:
                    if self._to_lose.get(topic, 0) > 0:
                        self._to_lose[topic] -= 1
                        self.lost[topic] = self.lost.get(topic, 0) + 1
                        continue
                if not self.silent:
                    pub.send_multipart(frames)
        finally:
            sub.close(linger=0)
            pub.close(linger=0)


class CommandRelay(_Relay):
    """Passes requests from consoles (a ROUTER at ``endpoint``) to the engine's ROUTER, one DEALER per console,
    and the replies back; counts the snapshot requests, and drops them while ``answer_snapshots`` is False, or
    every request while ``answer_commands`` is False (an engine that does not answer)."""

    def __init__(self, ctx: zmq.Context, upstream: str, endpoint: str) -> None:
        super().__init__(ctx, endpoint)
        self.upstream = upstream
        self.answer_snapshots = True
        self.answer_commands = True
        self.snapshot_requests = 0
        self.requests: list[dict[str, Any]] = []

    def _run(self) -> None:
        import json

        front = bus.router_socket(self.ctx, self.endpoint)
        backs: dict[bytes, zmq.Socket] = {}
        poller = zmq.Poller()
        poller.register(front, zmq.POLLIN)
        self._ready.set()
        try:
            while not self._stop.is_set():
                for sock, _ in poller.poll(20):
                    if sock is front:
                        ident, *rest = front.recv_multipart()
                        try:
                            req = json.loads(rest[-1])
                        except ValueError:
                            req = {}
                        with self._lock:
                            self.requests.append(req)
                            if req.get("op") == "snapshot":
                                self.snapshot_requests += 1
                                if not self.answer_snapshots:
                                    continue
                            elif not self.answer_commands:
                                continue
                        if ident not in backs:
                            backs[ident] = bus.dealer_socket(self.ctx, self.upstream)
                            poller.register(backs[ident], zmq.POLLIN)
                        backs[ident].send_multipart(rest)
                    else:
                        ident = next(i for i, s in backs.items() if s is sock)
                        front.send_multipart([ident, *sock.recv_multipart()])
        finally:
            for s in (front, *backs.values()):
                s.close(linger=0)


class ConsoleRun(str):
    """The base URL of a console process (a str), with the process: ``proc``; a test that kills it on purpose
    sets ``killed`` so the clean-stop check is skipped."""

    proc: subprocess.Popen
    killed: bool = False


@contextlib.contextmanager
def console_process(stack: EngineStack, log_path: Path, *, publish: str | None = None, command: str | None = None,
                    stop_timeout_s: float = 30.0, origins: tuple[str, ...] = (), port: int | None = None
                    ) -> Iterator[ConsoleRun]:
    """Run ``python -m console.web.app`` on a free port with the stack's site file, so it connects to the
    engine's publish and command endpoints (or to ``publish`` / ``command``, e.g. a relay's); yields the base URL
    (``http://127.0.0.1:PORT``); ``origins``: more host:port pages may be opened from (a proxy's). On exit it sends
    SIGTERM and checks that the console stopped cleanly (exit 0)."""
    from tests.conftest import free_port, wait_port

    port = port or free_port()
    site_file = stack.folder / "site.yaml"
    endpoints = {k: v for k, v in (("publish", publish), ("command", command)) if v}
    site = stack.site.model_copy(update={"bus": stack.site.bus.model_copy(update=endpoints)})
    site_file.write_text(site_yaml(site), encoding="utf-8")
    with open(log_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "console.web.app", "--site", str(site_file), "--port", str(port),
             "--address", "127.0.0.1", *(f"--allow-websocket-origin={o}" for o in origins)],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
        run = ConsoleRun(f"http://127.0.0.1:{port}")
        run.proc = proc
        try:
            wait_port("127.0.0.1", port, timeout_s=60)
            yield run
        finally:
            if not run.killed:
                proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
    assert run.killed or rc == 0, f"console did not stop cleanly on SIGTERM (rc {rc}):\n{log_path.read_text()[-3000:]}"


# -- camera snapshots (issue 14: camera verification) ----------------------------------------------------------
def camera_frame(site: Site, camera: str, boxes_px: Any = (), *, quality: int = 60) -> bytes:
    """A synthetic JPEG of ``camera`` (its image size) with a person in each box (x1, y1, x2, y2 px), as the demo's
    simulator draws it; different boxes give a different frame (and hash)."""
    import numpy as np

    from ingest.simulator.camera import CameraView, render_frame

    view = CameraView(next(c for c in site.cameras if c.id == camera))
    return render_frame(view, np.asarray(boxes_px, dtype=float).reshape(-1, 4), quality=quality)


def detections_of_frame(site: Site, camera: str, ts_s: float, boxes_px: Any, *, classes: Any = None,
                        confidence: float = 0.9, jpeg: bytes | None = None) -> Message:
    """A ``camera_detections`` batch of one frame, as the camera adapter sends it: each box's feet (bottom centre)
    projected through the camera's homography, ``box_px``, and with ``jpeg`` the frame's hash in
    ``meta.snapshots``."""
    import numpy as np

    from ingest.protocol.blobs import sha256_hex
    from kernels.detection import project_feet

    ci = next(i for i, c in enumerate(site.cameras) if c.id == camera)
    boxes = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    cls = np.array([0] * n if classes is None else classes, dtype=np.uint8)
    meta = {"snapshots": [{"camera_index": ci, "ts_s": float(ts_s), "sha256": sha256_hex(jpeg)}]} if jpeg else {}
    return Message(topic="camera.detections", source="camera", kind="camera_detections", event_ts_s=ts_s,
                   ingest_ts_s=ts_s, meta=meta,
                   arrays={"camera_index": np.full(n, ci, np.int32), "class_id": cls,
                           "confidence": np.full(n, confidence), "ts_s": np.full(n, float(ts_s)),
                           "xy_m": project_feet(np.array(site.cameras[ci].homography), boxes), "box_px": boxes})


def snapshot_blob(site: Site, camera: str, ts_s: float, jpeg: bytes, boxes: list[dict[str, Any]] | None = None,
                  **meta: Any) -> Message:
    """The ``blob`` message the camera adapter sends for a frame (``meta`` overrides fields, e.g. a wrong hash)."""
    from ingest.protocol.blobs import BLOB_KIND, TOPIC_BLOB, blob_arrays, sha256_hex, snapshot_meta

    size = next((c.image_size_px for c in site.cameras if c.id == camera), (1920, 1080))
    return Message(topic=TOPIC_BLOB, source="camera", kind=BLOB_KIND, event_ts_s=ts_s, ingest_ts_s=ts_s,
                   arrays=blob_arrays(jpeg),
                   meta={**snapshot_meta(sha256_hex(jpeg), camera, ts_s, size, boxes or []), **meta})


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through playwright, with the test suite's arguments (tests/conftest.py); closed on exit."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
