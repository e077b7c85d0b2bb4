"""The simulator process on real peers: a mosquitto broker and its own asyncua server, read by real clients."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from datetime import UTC

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from config.loader import dump_site
from ingest.simulator import Simulator, main
from tests.conftest import free_port

pytestmark = pytest.mark.slow


def _site_for(demo_site, broker):
    """The demo plant wired to the test broker and a free OPC UA port."""
    port = free_port()
    return demo_site.model_copy(
        update={
            "mqtt": demo_site.mqtt.model_copy(update={"host": broker.host, "port": broker.port}),
            "opcua": demo_site.opcua.model_copy(
                update={"endpoint": f"opc.tcp://127.0.0.1:{port}/watchfloor/"}
            ),
        }
    )


class _Collector:
    """A paho subscriber to ``<prefix>/#`` that keeps (topic, qos, payload) in arrival order."""

    def __init__(self, broker, prefix: str) -> None:
        self.messages: list[tuple[str, int, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-sim-collector")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/#", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg) -> None:
        with self._lock:
            self.messages.append((msg.topic, msg.qos, msg.payload))

    def of(self, topic: str) -> list[tuple[int, bytes]]:
        with self._lock:
            return [(q, p) for t, q, p in self.messages if t == topic]

    def wait_for(self, predicate, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class _Running:
    """Runs a Simulator in a thread; stops it and checks that it left no thread behind."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.stop = threading.Event()
        self.before = set(threading.enumerate())
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, name="test-sim")
        self.thread.start()
        assert sim.ready.wait(60), "simulator did not become ready"

    def _run(self) -> None:
        try:
            self.sim.run(self.stop)
        except Exception as e:  # noqa: BLE001 - reported by close()
            self.error = e

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "Simulator.run did not return after stop"
        assert self.error is None, self.error
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and set(threading.enumerate()) - self.before:
            time.sleep(0.05)
        assert not (set(threading.enumerate()) - self.before), "threads left behind"


def test_simulator_publishes_every_field_payload_over_mqtt(mosquitto, demo_site):
    site = _site_for(demo_site, mosquitto)
    prefix = site.mqtt.topic_prefix
    col = _Collector(mosquitto, prefix)
    sim = Simulator(site, seed=3, scenario="man_down", timing={"fall_s": 1.5})
    run = _Running(sim)
    try:
        got_all = col.wait_for(
            lambda: (
                len(col.of(f"{prefix}/sim/truth")) >= 2
                and all(col.of(f"{prefix}/camera/{c.id}/detections") for c in site.cameras)
                and col.of(f"{prefix}/vibration/VP01")
                and col.of(f"{prefix}/vibration/VP08")
                and col.of(f"{prefix}/wearable/events")
            ),
            timeout_s=30,
        )
    finally:
        run.close()
        col.close()
    assert got_all, sorted({t for t, _, _ in col.messages})
    anchors = {a.id for a in site.anchors}
    tags = [p.tag for p in site.people]

    # UWB: lists of <= 50 tags; each round's ts equals its truth message's ts
    truths = [json.loads(p) for _, p in col.of(f"{prefix}/sim/truth")]
    ranges = [json.loads(p) for q, p in col.of(f"{prefix}/uwb/ranges")]
    assert all(isinstance(m, list) and 1 <= len(m) <= 50 for m in ranges)
    items = [it for m in ranges for it in m]
    first = [it for it in items if it["ts"] == truths[0]["ts"]]
    assert sorted(it["tag"] for it in first) == tags
    for it in first:
        assert set(it) == {"tag", "ts", "ranges"} and set(it["ranges"]) <= anchors and len(it["ranges"]) >= 3
        x = np.array(truths[0]["tags"][it["tag"]])
        for a in site.anchors:
            if a.id in it["ranges"]:  # within noise + NLOS of the true distance
                err = it["ranges"][a.id] - np.linalg.norm(x - np.array(a.position_m))
                assert -0.6 < err < 6.0
    assert truths[1]["ts"] - truths[0]["ts"] == pytest.approx(0.5, abs=1e-3)  # 2 Hz
    assert abs(truths[0]["ts"] - time.time()) < 120

    cam = json.loads(col.of(f"{prefix}/camera/CAM1/detections")[0][1])
    assert set(cam) == {"camera", "ts", "frame", "detections"} and cam["camera"] == "CAM1"
    for d in cam["detections"]:
        assert (
            set(d) == {"class", "confidence", "box_px"} and d["class"] == "person" and len(d["box_px"]) == 4
        )

    wave = json.loads(col.of(f"{prefix}/vibration/VP01")[0][1])
    assert (
        wave["point"] == "VP01" and wave["fs_hz"] == 5120.0 and wave["unit"] == "m/s2" and wave["n"] == 5120
    )
    samples = np.frombuffer(base64.b64decode(wave["samples"]), dtype="<f4")
    assert samples.shape == (5120,) and 0.1 < float(np.sqrt(np.mean(samples.astype(float) ** 2))) < 1.0
    smart = json.loads(col.of(f"{prefix}/vibration/VP08")[0][1])
    assert set(smart) == {"point", "ts", "overall"} and 0.5 < smart["overall"]["rms_mm_s"] < 4.0

    events = [(q, json.loads(p)) for q, p in col.of(f"{prefix}/wearable/events")]
    falls = [(q, e) for q, e in events if e["event"] == "fall"]
    assert falls and falls[0][0] == 1 and falls[0][1]["tag"] == "T0077"
    assert falls[0][1]["ts"] == pytest.approx(sim.clock.epoch(1.5), abs=1e-3)
    assert sim.counts["ranges"] >= 8 and sim.counts["wearable"] >= 1


async def _read_opcua(endpoint: str, uri: str, deadline_s: float) -> dict:
    from asyncua import Client, ua

    out: dict = {}
    async with Client(endpoint, timeout=10) as client:
        out["ns"] = await client.get_namespace_index(uri)

        async def dv(nodeid: str) -> ua.DataValue:
            return await client.get_node(nodeid).read_data_value(raise_on_bad_status=False)

        end = time.monotonic() + deadline_s
        while time.monotonic() < end:  # the first scan is written as soon as the clock starts
            out["GD01"] = await dv("ns=2;s=GD01.PV")
            if out["GD01"].StatusCode.value != ua.StatusCodes.BadWaitingForInitialData:
                break
            await asyncio.sleep(0.05)
        out["GD03"] = await dv("ns=2;s=GD03.PV")
        out["GD12"] = await dv("ns=2;s=GD12.PV")
        out["unit"] = await client.get_node("ns=2;s=GD01.Unit").read_value()
        out["gas"] = await client.get_node("ns=2;s=GD04.Gas").read_value()
        out["now"] = time.time()
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:  # the leak ramps up in 3 s and pins GD07 at full scale
            out["GD07"] = await dv("ns=2;s=GD07.PV")
            if out["GD07"].StatusCode.value == ua.StatusCodes.UncertainEngineeringUnitsExceeded:
                break
            await asyncio.sleep(0.1)
    return out


def test_gas_detectors_on_opcua_carry_value_status_and_event_time(mosquitto, demo_site):
    from asyncua import ua

    site = _site_for(demo_site, mosquitto)
    sim = Simulator(
        site,
        seed=1,
        scenario="detector_fault,gas_leak",
        timing={"fault_start_s": 0.0, "fault_s": 1000.0, "leak_start_s": 0.0, "ramp_s": 3.0},
    )
    run = _Running(sim)
    try:
        r = asyncio.run(_read_opcua(site.opcua.endpoint, site.opcua.namespace_uri, deadline_s=20))
    finally:
        run.close()
    assert r["ns"] == 2
    gd01 = r["GD01"]
    assert gd01.StatusCode.is_good() and 0.0 <= gd01.Value.Value <= 2.0
    assert gd01.Value.VariantType == ua.VariantType.Double
    src = (
        gd01.SourceTimestamp.replace(tzinfo=UTC)
        if gd01.SourceTimestamp.tzinfo is None
        else gd01.SourceTimestamp
    )
    # the source time is the simulated event time: a whole second of the simulation clock
    t_s = src.timestamp() - sim.clock.start_epoch
    assert t_s == pytest.approx(round(t_s), abs=2e-3)  # (OPC UA time has 100 ns ticks)
    assert -2e-3 <= t_s <= r["now"] - sim.clock.start_epoch + 1
    assert r["GD03"].StatusCode.value == ua.StatusCodes.BadSensorFailure
    assert r["GD12"].StatusCode.value == ua.StatusCodes.UncertainSensorCalibration
    assert r["GD07"].StatusCode.value == ua.StatusCodes.UncertainEngineeringUnitsExceeded
    assert r["GD07"].Value.Value == 100.0
    assert r["unit"] == "%LEL" and r["gas"] == "H2S"


def test_main_runs_for_the_given_time_and_returns_zero(mosquitto, demo_site, tmp_path):
    site = _site_for(demo_site, mosquitto)
    f = tmp_path / "site.yaml"
    f.write_text(dump_site(site), encoding="utf-8")
    col = _Collector(mosquitto, site.mqtt.topic_prefix)
    before = set(threading.enumerate())
    try:
        assert main(["--site", str(f), "--for", "2", "--seed", "5", "--speed", "2"]) == 0
    finally:
        col.close()
    assert col.of(f"{site.mqtt.topic_prefix}/uwb/ranges")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(threading.enumerate()) - before:
        time.sleep(0.05)
    assert not (set(threading.enumerate()) - before)


def test_main_refuses_an_unknown_scenario_and_lists_the_known_ones(demo_site, tmp_path, capsys):
    f = tmp_path / "site.yaml"
    f.write_text(dump_site(demo_site), encoding="utf-8")
    assert main(["--site", str(f), "--scenario", "meteor"]) == 2
    assert "unknown scenario" in capsys.readouterr().err
    assert main(["--list-scenarios"]) == 0
    assert "restricted_entry" in capsys.readouterr().out


class _PermitResponder:
    """Stands in for the permits adapter and engine: answers every permit command on the replies topic,
    ignoring the first one it hears (as if it was not subscribed yet) and refusing ``refuse`` ops."""

    def __init__(self, broker, prefix: str, refuse: set[str]) -> None:
        self.commands: list[tuple[int, dict]] = []
        self.logins: list[tuple[str, str]] = []
        self.refuse = refuse
        self.prefix = prefix
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-permit-responder")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/permits/commands", qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, client, userdata, msg) -> None:
        cmd = json.loads(msg.payload)
        if cmd["op"] == "login":  # the desk signs each person in first: a token back, as the engine would
            self.logins.append((cmd["user"], cmd.get("password", cmd.get("pin"))))  # a field worker: a PIN
            reply = {"id": cmd["id"], "ok": True, "token": f"t-{cmd['user']}"}
            client.publish(f"{self.prefix}/permits/replies", json.dumps(reply), qos=1)
            return
        self.commands.append((msg.qos, cmd))
        if len(self.commands) == 1:
            return
        ok = cmd["op"] not in self.refuse
        reply = {"id": cmd["id"], "ok": ok, "permit": cmd["permit"], "state": "fine"}
        if not ok:
            reply = {"id": cmd["id"], "ok": False, "reason": "no, for the test"}
        client.publish(f"{self.prefix}/permits/replies", json.dumps(reply), qos=1)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_permit_office_sends_the_scripted_commands_and_reads_the_replies(mosquitto, demo_site):
    site = _site_for(demo_site, mosquitto)
    prefix = site.mqtt.topic_prefix
    responder = _PermitResponder(mosquitto, prefix, refuse={"permit_activate"})
    timing = {"walkaway_request_s": 0.5, "gas_test_after_s": 0.3, "approve_after_s": 0.3,
              "activate_after_s": 0.3, "walkaway_start_s": 600.0}
    sim = Simulator(site, seed=1, scenario="watcher_walkaway", timing=timing, permit_reply_timeout_s=1.0)
    run = _Running(sim)
    col = _Collector(mosquitto, prefix)  # joins late: the scenario message is retained
    try:
        done = col.wait_for(lambda: len(sim.desk.outcomes) == 5 and sim.desk.outcomes[-1].reply is not None, 30)
    finally:
        col.close()
        run.close()
        responder.close()
    assert done, sim.desk.outcomes
    qos, cmds = zip(*responder.commands)
    assert set(qos) == {1}
    assert [c["id"] for c in cmds] == ["sim-001-CS-1-request", "sim-001-CS-1-request", "sim-002-CS-1-gas_test",
                                       "sim-003-CS-1-approve", "sim-004-CS-1-signin",
                                       "sim-005-CS-1-activate"]  # the first one again
    assert cmds[0]["valid_from_s"] == pytest.approx(sim.clock.start_epoch + 0.5 - 60.0, abs=1e-3)
    # each person logs in once, before their first command: the applicant op1, the supervisor sup1, and the
    # watcher P0186 with his PIN (his phone, at the work)
    assert responder.logins == [("op1", "demo"), ("sup1", "demo"), ("P0186", "1234")]
    assert [c["user"] for c in cmds] == ["op1", "op1", "op1", "sup1", "P0186", "sup1"]
    assert all(c["token"] == f"t-{c['user']}" for c in cmds)
    assert [o.reply["ok"] for o in sim.desk.outcomes] == [True, True, True, True, False]
    assert sim.desk.summary() == {"sent": 5, "ok": 4, "refused": 1, "unanswered": 0, "unexpected": 1}
    (q, payload), = col.of(f"{prefix}/sim/scenario")
    doc = json.loads(payload)
    assert doc["start_epoch"] == pytest.approx(sim.clock.start_epoch, abs=1e-6)
    assert doc["scenarios"] == ["watcher_walkaway"] and doc["timing"]["walkaway_request_s"] == 0.5
    assert doc["milestones"]["watcher_walkaway.activate_s"] == pytest.approx(3.0)  # not before he is located
    assert [c["op"] for c in doc["permit_commands"]][:5] == [
        "permit_request", "permit_gas_test", "permit_approve", "permit_signin", "permit_activate"]


def test_control_room_logs_in_on_the_command_socket_and_sends_each_command_with_its_token():
    """The muster drill's console: a DEALER to the engine's ROUTER (a fake engine here) logs sup1 in with the
    demo password first, then sends the declaration with the token; the next command waits for its reply."""
    import zmq

    from ingest import bus
    from ingest.simulator.control_room import ControlRoom
    from ingest.simulator.permits import PermitCommand

    ctx = zmq.Context()
    router = bus.router_socket(ctx, "tcp://127.0.0.1:*")
    cmds = [PermitCommand(3.0, "muster_declare", "sup1", {"area": "all"}, id="sim-cr-001-muster_declare"),
            PermitCommand(9.0, "muster_end", "sup1", {}, id="sim-cr-002-muster_end")]
    room = ControlRoom(cmds, bus.bound_endpoint(router), ctx=ctx)

    def receive() -> tuple[bytes, dict]:
        assert router.poll(2000), "nothing reached the engine"
        ident, payload = router.recv_multipart()
        return ident, json.loads(payload)

    def reply(ident: bytes, doc: dict) -> None:
        router.send_multipart([ident, json.dumps(doc).encode()])
        deadline = time.monotonic() + 2.0
        while room.in_flight and time.monotonic() < deadline:
            room.step(5.0)
            time.sleep(0.01)

    try:
        room.step(2.9)
        assert not router.poll(100)  # not due yet
        room.step(3.0)
        ident, login = receive()
        assert {k: login[k] for k in ("op", "user", "password", "console", "address")} == {
            "op": "login", "user": "sup1", "password": "demo", "console": "simulator control room",
            "address": "simulator"}
        router.send_multipart([ident, json.dumps({"id": login["id"], "ok": True, "token": "tok-1"}).encode()])
        deadline = time.monotonic() + 2.0
        while not router.poll(10) and time.monotonic() < deadline:
            room.step(3.1)
        ident, cmd = receive()
        assert cmd == {"id": "sim-cr-001-muster_declare", "op": "muster_declare", "user": "sup1", "token": "tok-1",
                       "area": "all"}
        reply(ident, {"id": cmd["id"], "ok": True})
        room.step(8.0)
        assert not router.poll(100)  # the all clear is not due yet
        room.step(9.0)
        ident, end = receive()
        assert (end["op"], end["token"]) == ("muster_end", "tok-1")  # the same login
        reply(ident, {"id": end["id"], "ok": False, "reason": "no emergency is declared"})
        assert room.desk.summary() == {"sent": 2, "ok": 1, "refused": 1, "unanswered": 0, "unexpected": 1}
    finally:
        room.close()
        router.close(linger=0)
        ctx.term()
