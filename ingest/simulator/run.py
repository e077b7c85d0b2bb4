"""The simulator process: publishes the plant model over the real field protocols until told to stop.

- MQTT (paho-mqtt 2.x): UWB ranges and truth, vibration, camera frames (synthetic JPEGs, for snapshots) and
  camera detections (QoS 0), wearable events (QoS 1);
  the plant's permit office: the stories' permit commands (QoS 1) and the engine's replies (permits.py);
  the run's scenario, start time and milestones, retained on ``<prefix>/sim/scenario``.
- OPC UA (asyncua, own thread and loop): the gas detectors.
- ZeroMQ, like a console: the control room's commands (the muster drill's declaration and all clear) to the
  engine's command socket (control_room.py).

``watchfloor simulate --site FILE [--scenario NAME] [--seed N] [--speed X] [--for SECONDS]`` runs :func:`main`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from config.schema import Site
from ingest.camera_infer import encode_frame
from ingest.signals import stop_on_signals

from .camera import detections_payload, render_frame, synthesize_detections
from .clock import SimClock
from .control_room import ControlRoom
from .model import PlantModel
from .opcua import GasOpcUaServer
from .permits import PermitDesk
from .scenarios import SCENARIOS
from .uwb import ranges_payloads, synthesize_ranges, truth_payload
from .vibration import FS_HZ, N_SAMPLES, overall_payload, waveform_payload

__all__ = ["Simulator", "main", "topics", "wearable_payload"]

log = logging.getLogger(__name__)

#: a stream that falls further behind than this (simulation seconds) skips to the present
_MAX_LAG_S = 2.0


def topics(prefix: str) -> dict[str, str]:
    """The MQTT topics under ``prefix`` (``{point}`` and ``{camera}`` are placeholders)."""
    return {
        "ranges": f"{prefix}/uwb/ranges",
        "truth": f"{prefix}/sim/truth",
        "vibration": f"{prefix}/vibration/{{point}}",
        "camera": f"{prefix}/camera/{{camera}}/detections",
        "camera_frames": f"{prefix}/camera/{{camera}}/frames",
        "wearable": f"{prefix}/wearable/events",
        "scenario": f"{prefix}/sim/scenario",
        "permit_commands": f"{prefix}/permits/commands",
        "permit_replies": f"{prefix}/permits/replies",
    }


def wearable_payload(tag: str, ts: float, event: str) -> bytes:
    """JSON of a wearable event: ``{"tag", "ts" (epoch s), "event": "sos" | "fall" | "battery_low"}``."""
    return json.dumps({"tag": tag, "ts": round(ts, 3), "event": event}, separators=(",", ":")).encode()


class _Publisher:
    """A paho client that connects in the background, reconnects by itself, and counts what it sends."""

    def __init__(self, site: Site, client_id: str) -> None:
        cfg = site.mqtt
        self.host, self.port = cfg.host, cfg.port
        self.connected = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.login_password())
        self.client.max_queued_messages_set(10000)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.counts: Counter[str] = Counter()
        self._pending: list[mqtt.MQTTMessageInfo] = []
        self._handlers: dict[str, Callable[[bytes], None]] = {}

    def subscribe(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Call ``handler(payload)`` (in paho's thread) for every message on ``topic``; subscribed on every
        (re)connection. Register before :meth:`start`."""
        self._handlers[topic] = handler

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        log.info("connected to MQTT broker %s:%d", self.host, self.port)
        for topic in self._handlers:
            client.subscribe(topic, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        handler = self._handlers.get(message.topic)
        if handler is not None:
            handler(message.payload)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if reason_code.is_failure:
            log.warning("MQTT connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason_code)

    def start(self) -> None:
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def publish(self, kind: str, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> bool:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.counts[kind] += 1
            if qos > 0:
                self._pending = [p for p in self._pending if not p.is_published()] + [info]
            return True
        self.counts[f"{kind}_not_sent"] += 1
        return False

    def stop(self, flush_s: float = 2.0) -> None:
        for info in self._pending:  # QoS 1 events should reach the broker before we hang up
            try:
                info.wait_for_publish(timeout=flush_s)
            except (RuntimeError, ValueError):
                break
        self.client.disconnect()
        self.client.loop_stop()


class Simulator:
    """The simulated plant on MQTT and OPC UA.

    ``run(stop_event)`` blocks until ``stop_event`` is set, then stops everything it started. Simulation
    time runs ``speed`` times the wall clock; device timestamps are ``start_epoch + t_s``. ``camera_frames``: each
    camera also publishes a synthetic JPEG of what it sees (a grey yard, its people) before its detections, for the
    snapshots of detection alarms. ``ready`` is set
    once the OPC UA server is up and the clock started. ``model`` is the :class:`PlantModel` being played;
    ``desk`` the :class:`PermitDesk` sending its permit commands (None when the scenario has none; a command
    unanswered for ``permit_reply_timeout_s`` wall seconds is sent again).
    """

    def __init__(
        self,
        site: Site,
        *,
        seed: int = 1,
        scenario: str = "normal",
        speed: float = 1.0,
        timing: Mapping[str, float] | None = None,
        range_rate_hz: float = 2.0,
        camera_rate_hz: float = 1.0,
        gas_rate_hz: float = 1.0,
        batch_size: int = 50,
        miss_probability: float = 0.03,
        drop_probability: float = 0.01,
        start_epoch: float | None = None,
        permit_reply_timeout_s: float = 5.0,
        camera_frames: bool = True,
    ) -> None:
        if not 1 <= batch_size:
            raise ValueError("batch_size must be >= 1")
        self.site = site
        self.model = PlantModel(site, seed, scenario, timing=timing)
        self.clock = SimClock(speed, start_epoch)
        self.range_rate_hz = range_rate_hz
        self.camera_rate_hz = camera_rate_hz
        self.gas_rate_hz = gas_rate_hz
        self.batch_size = batch_size
        self.miss_probability = miss_probability
        self.drop_probability = drop_probability
        self.ready = threading.Event()
        self.skipped: Counter[str] = Counter()
        self.topics = topics(site.mqtt.topic_prefix)
        self._anchors_m = np.array([a.position_m for a in site.anchors], dtype=float)
        self._anchor_ids = [a.id for a in site.anchors]
        self._truth_cache: tuple[float, np.ndarray] | None = None
        self._publisher: _Publisher | None = None
        self.opcua: GasOpcUaServer | None = None
        self.desk: PermitDesk | None = None
        self.control_room: ControlRoom | None = None
        self.permit_reply_timeout_s = permit_reply_timeout_s
        self.camera_frames = camera_frames

    @property
    def counts(self) -> Counter[str]:
        """Messages published so far, by kind (``ranges``, ``truth``, ``vibration``, ``camera``, ``wearable``)."""
        return self._publisher.counts if self._publisher else Counter()

    def _truth(self, t_s: float) -> np.ndarray:
        if self._truth_cache is None or self._truth_cache[0] != t_s:
            self._truth_cache = (t_s, self.model.truth(t_s))
        return self._truth_cache[1]

    # -- the loop -------------------------------------------------------------------------------------------
    def run(self, stop_event: threading.Event, *, for_s: float | None = None) -> None:
        """Serve until ``stop_event`` is set (or ``for_s`` wall seconds after the clock started).

        Raises if the OPC UA server cannot start.
        """
        self.opcua = GasOpcUaServer(self.site, self.model.gas, self.clock, self.gas_rate_hz)
        self._publisher = pub = _Publisher(
            self.site, f"watchfloor-sim-{self.site.id}-{os.getpid()}-{id(self):x}"
        )
        if self.model.permit_commands:
            self.desk = PermitDesk(
                self.model.permit_commands,
                lambda payload: pub.publish("permit", self.topics["permit_commands"], payload, qos=1),
                lambda: self.clock.start_epoch,
                reply_timeout_s=self.permit_reply_timeout_s,
            )
            pub.subscribe(self.topics["permit_replies"], self.desk.on_reply)
        if self.model.console_commands:
            self.control_room = ControlRoom(self.model.console_commands, self.site.bus.command,
                                            reply_timeout_s=self.permit_reply_timeout_s)
        try:
            self.opcua.start()
            pub.start()
            for _ in range(100):  # the broker is usually there at once; publishing goes on without it
                if pub.connected.wait(0.1) or stop_event.is_set():
                    break
            else:
                log.warning("MQTT broker %s:%d not reachable yet; publishing anyway", pub.host, pub.port)
            if self.model.milestones:
                log.info(
                    "scenario milestones (simulation s): %s",
                    ", ".join(f"{k}={v:.1f}" for k, v in self.model.milestones.items()),
                )
            self.clock.start()
            pub.publish("scenario", self.topics["scenario"], self.scenario_payload(), qos=1, retain=True)
            self.ready.set()
            log.info(
                "simulating %s: scenario %s, seed %d, speed %g, start epoch %.3f",
                self.site.id,
                self.model.scenario,
                self.model.seed,
                self.clock.speed,
                self.clock.start_epoch,
            )
            self._loop(stop_event, pub, None if for_s is None else time.monotonic() + for_s)
        finally:
            deadline = time.monotonic() + 1.0
            for desk in (self.desk, self.control_room):  # a reply on its way: a moment to take it in
                while desk is not None and desk.in_flight and time.monotonic() < deadline:
                    desk.step(0.0, final=True)
                    time.sleep(0.05)
            pub.stop()
            self.opcua.stop()
            log.info("simulator stopped: %s", dict(pub.counts))
            if self.desk is not None:
                log.info("permit office: %s", self.desk.summary())
            if self.control_room is not None:
                log.info("control room: %s", self.control_room.desk.summary())
                self.control_room.close()

    def scenario_payload(self) -> bytes:
        """JSON of the run: ``site``, ``scenario`` (as given), ``scenarios`` (expanded), ``seed``, ``speed``,
        ``start_epoch`` (epoch s of simulation time 0), ``timing`` and ``milestones`` (simulation s), and
        ``permit_commands`` (``t_s``, ``id``, ``op``, ``permit``, ``expect``) of the permit office, and with a
        muster drill ``console_commands`` (``t_s``, ``id``, ``op``, ``user``) of the control room and ``drill``
        (``declare_s``, ``all_clear_s``, ``missing``: the ids of the people who never come)."""
        m = self.model
        doc = {
            "site": self.site.id,
            "scenario": m.scenario,
            "scenarios": sorted(m.scenarios),
            "seed": m.seed,
            "speed": self.clock.speed,
            "start_epoch": round(self.clock.start_epoch, 6),
            "timing": m.timing,
            "milestones": {k: (None if math.isnan(v) else round(v, 3)) for k, v in m.milestones.items()},
            "permit_commands": [
                {"t_s": round(c.t_s, 3), "id": c.id, "op": c.op, "permit": c.permit, "expect": c.expect}
                for c in m.permit_commands
            ],
        }
        if m.console_commands:
            doc["console_commands"] = [
                {"t_s": round(c.t_s, 3), "id": c.id, "op": c.op, "user": c.user} for c in m.console_commands
            ]
        if m.drill is not None:
            doc["drill"] = {"declare_s": m.drill.declare_s, "all_clear_s": m.drill.all_clear_s,
                            "missing": list(m.drill.missing)}
        return json.dumps(doc, separators=(",", ":")).encode()

    def _loop(self, stop_event: threading.Event, pub: _Publisher, end_wall: float | None) -> None:
        vib = self.model.vibration
        n_vib = max(len(vib.points), 1)
        next_range = 0
        next_cam = 0
        vib_interval = [p.expected_interval_s for p in vib.points]
        vib_offset = [k * iv / n_vib for k, iv in enumerate(vib_interval)]
        next_vib = [0] * len(vib.points)
        wear_t = -1.0
        dur = N_SAMPLES / FS_HZ
        while not stop_event.is_set():
            if end_wall is not None and time.monotonic() >= end_wall:
                break
            due: list[float] = []
            now = self.clock.t_s()
            next_range = self._due(now, next_range, self.range_rate_hz, "ranges", self._emit_ranges)
            if self.model.cameras:
                next_cam = self._due(now, next_cam, self.camera_rate_hz, "camera", self._emit_cameras)
            for i in range(len(vib.points)):
                t_acq = vib_offset[i] + next_vib[i] * vib_interval[i]
                if now >= t_acq + dur:
                    if now - (t_acq + dur) > max(_MAX_LAG_S, vib_interval[i]):
                        next_vib[i] = max(int((now - dur - vib_offset[i]) / vib_interval[i]), next_vib[i] + 1)
                        self.skipped["vibration"] += 1
                        continue
                    self._emit_vibration(i, t_acq)
                    next_vib[i] += 1
            for e in self.model.wearable_events(wear_t, now):
                payload = wearable_payload(e.tag, self.clock.epoch(e.t_s), e.event)
                pub.publish("wearable", self.topics["wearable"], payload, qos=1)
            wear_t = now
            for desk in (self.desk, self.control_room):
                if desk is not None:
                    desk.step(now)
                    if (t_cmd := desk.next_due_s()) is not None:
                        due.append(t_cmd)
            due += [next_range / self.range_rate_hz]
            if self.model.cameras:
                due.append(next_cam / self.camera_rate_hz)
            due += [vib_offset[i] + next_vib[i] * vib_interval[i] + dur for i in range(len(vib.points))]
            wait = self.clock.wall_delay_s(min(due))
            stop_event.wait(min(max(wait, 0.001), 0.25))

    def _due(self, now: float, k: int, rate_hz: float, kind: str, emit) -> int:
        """Emit every tick k/rate_hz <= now of a periodic stream; returns the next tick index."""
        while k / rate_hz <= now:
            t = k / rate_hz
            if now - t > max(_MAX_LAG_S, 2.0 / rate_hz):
                skip_to = math.floor(now * rate_hz)
                self.skipped[kind] += skip_to - k
                k = skip_to
                continue
            emit(k, t)
            k += 1
        return k

    # -- the streams ----------------------------------------------------------------------------------------
    def _emit_ranges(self, k: int, t_s: float) -> None:
        truth = self._truth(t_s)
        uwb = self.site.uwb
        rng = np.random.default_rng([self.model.seed, 2, k])
        ranges = synthesize_ranges(
            truth,
            self._anchors_m,
            rng,
            sigma_m=uwb.range_sigma_m,
            max_range_m=uwb.max_range_m,
            drop_probability=self.drop_probability,
        )
        ts = self.clock.epoch(t_s)
        assert self._publisher is not None
        for payload in ranges_payloads(self.model.tags, ts, ranges, self._anchor_ids, self.batch_size):
            self._publisher.publish("ranges", self.topics["ranges"], payload)
        self._publisher.publish("truth", self.topics["truth"], truth_payload(self.model.tags, ts, truth))

    def _emit_cameras(self, k: int, t_s: float) -> None:
        truth = self._truth(t_s)
        ppe = self.model.ppe_classes(t_s)
        ts = self.clock.epoch(t_s)
        assert self._publisher is not None
        for c, view in enumerate(self.model.cameras):
            rng = np.random.default_rng([self.model.seed, 8, c, k])
            classes, conf, boxes, _ = synthesize_detections(
                view, truth[:, :2], ppe, rng, self.miss_probability
            )
            if self.camera_frames:  # the picture first: the adapter pairs the detections with it by capture time
                people = np.array([c == "person" for c in classes], dtype=bool)
                jpeg = render_frame(view, boxes[people] if len(classes) else boxes)
                self._publisher.publish("camera_frame", self.topics["camera_frames"].format(camera=view.id),
                                        encode_frame(round(ts, 3), jpeg, k))
            topic = self.topics["camera"].format(camera=view.id)
            self._publisher.publish("camera", topic, detections_payload(view.id, ts, k, classes, conf, boxes))

    def _emit_vibration(self, i: int, t_acq: float) -> None:
        vib = self.model.vibration
        point = vib.points[i].id
        ts = self.clock.epoch(t_acq)
        topic = self.topics["vibration"].format(point=point)
        if vib.smart[i]:
            payload = overall_payload(point, ts, vib.overall_mm_s(i, t_acq))
        else:
            payload = waveform_payload(point, ts, vib.waveform(i, t_acq))
        assert self._publisher is not None
        self._publisher.publish("vibration", topic, payload)


# --- command line ----------------------------------------------------------------------------------------------


def _timing_arg(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected KEY=SECONDS, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watchfloor simulate",
        description="Simulate a plant on its real field protocols (MQTT, OPC UA) for the demo and the tests.",
    )
    p.add_argument("--site", help="site file (YAML)")
    p.add_argument(
        "--scenario",
        default="normal",
        help="scenario name, or several joined by commas (see --list-scenarios)",
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same plant day)")
    p.add_argument("--speed", type=float, default=1.0, help="simulation seconds per wall second")
    p.add_argument(
        "--for",
        dest="for_s",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop after this many wall seconds of simulation (default: until SIGINT/SIGTERM)",
    )
    p.add_argument(
        "--timing",
        type=_timing_arg,
        action="append",
        default=[],
        metavar="KEY=SECONDS",
        help="override a scenario timing parameter, e.g. --timing entry_start_s=2",
    )
    p.add_argument("--list-scenarios", action="store_true", help="list the scenarios and exit")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry of ``watchfloor simulate``; returns the process exit code (0 ok, 1 failed, 2 bad arguments)."""
    from config import ConfigError, load_site

    from .scenarios import SCENARIO_TIMING

    parser = _parser()
    args = parser.parse_args(argv)
    if args.list_scenarios:
        for name, text in SCENARIOS.items():
            params = ", ".join(f"{k}={v:g}" for k, v in SCENARIO_TIMING[name].items())
            print(f"{name:20s} {text}" + (f" [{params}]" if params else ""))
        return 0
    if not args.site:
        parser.print_usage(sys.stderr)
        print("watchfloor simulate: error: --site is required", file=sys.stderr)
        return 2
    if not logging.getLogger().handlers:
        logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        if args.log_level != "DEBUG":  # asyncua narrates its address space at INFO
            logging.getLogger("asyncua").setLevel(logging.WARNING)
    try:
        site = load_site(args.site)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    try:
        sim = Simulator(
            site, seed=args.seed, scenario=args.scenario, speed=args.speed, timing=dict(args.timing)
        )
    except ValueError as e:
        print(f"watchfloor simulate: error: {e}", file=sys.stderr)
        return 2

    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = stop_on_signals(stop)
    try:
        sim.run(stop, for_s=args.for_s)
    except (OSError, RuntimeError, TimeoutError) as e:
        log.error("simulator failed: %s", e)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
