"""Notifications: a real mosquitto broker gets every notice on its priority topic, a real HTTP server gets
escalations signed with HMAC, a failing webhook is retried then dead-lettered, and the live engine journals
every attempt (so replay of the recording reproduces those rows)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import paho.mqtt.client as mqtt
import pytest
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from alarms.notify import SIGNATURE_HEADER, MqttSink, Notice, Notifier, WebhookSink, sign
from config.schema import AlarmRule, EscalationPolicy, EscalationStep, Notifications
from config.schema import WebhookSink as WebhookConfig
from console.cli.launch import write_site
from ingest import bus
from ingest.engine import EngineProcess, replay
from tests.builders import positions

pytestmark = pytest.mark.slow


class Hooks:
    """A loopback HTTP server: answers ``status`` and keeps (path, headers, body) of every POST."""

    def __init__(self) -> None:
        self.got: list[tuple[str, dict, bytes]] = []
        self.status = {"/ok": 200, "/down": 500}
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((self.path, dict(self.headers), body))
                self.send_response(outer.status.get(self.path, 404))
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.th = threading.Thread(target=self.server.serve_forever)
        self.th.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.th.join(5)


@pytest.fixture
def hooks():
    h = Hooks()
    yield h
    h.stop()


def notice(kind="escalate", role="supervisor", priority="high"):
    return Notice("7.1", kind, "zone.restricted:Z-SUB:T0050", priority, 1000.0, {"en": "x", "zh-CN": "x"}, role,
                  1 if kind == "escalate" else None)


def wait_results(n: Notifier, count: int, timeout_s: float = 20.0) -> list[dict]:
    out: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < count and time.monotonic() < deadline:
        out += n.results()
        time.sleep(0.02)
    return out


def test_webhook_is_signed_and_a_failing_one_is_retried_then_dead_lettered(hooks):
    secret = b"s3cret"
    ok = WebhookSink("pager", f"{hooks.url}/ok", secret, ["supervisor"], 2.0)
    down = WebhookSink("down", f"{hooks.url}/down", None, [], 2.0)
    n = Notifier([ok, down], max_attempts=3, retry_base_s=0.05)
    n.submit(notice())
    n.submit(notice(kind="activate"))  # webhooks only take escalations
    n.submit(notice(role="safety_manager"))  # not a role the pager serves
    results = wait_results(n, 1 + 3 + 3)
    n.stop()
    ok_rows = [r for r in results if r["sink"] == "webhook:pager"]
    assert ok_rows == [{"notice": "7.1", "alarm": "zone.restricted:Z-SUB:T0050", "kind": "escalate",
                        "sink": "webhook:pager", "attempt": 1, "ok": True, "error": "", "final": True}]
    path, headers, body = next(g for g in hooks.got if g[0] == "/ok")
    assert headers[SIGNATURE_HEADER] == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    assert json.loads(body)["notify_role"] == "supervisor"
    down_rows = [r for r in results if r["sink"] == "webhook:down"]
    # two escalations (any role) x 3 attempts, interleaved by their backoff timers
    assert sorted(r["attempt"] for r in down_rows) == [1, 1, 2, 2, 3, 3]
    assert all(r["error"] == "ConnectionError: HTTP 500" for r in down_rows)
    assert all(r["final"] == (r["attempt"] == 3) for r in down_rows)
    assert sign(secret, b"{}") == "sha256=" + hmac.new(secret, b"{}", hashlib.sha256).hexdigest()


def test_mqtt_sink_publishes_on_the_priority_topic(mosquitto):
    got = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-alarms")
    sub.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe("wf/alarms/#", qos=1)
    sub.loop_start()
    time.sleep(0.2)
    n = Notifier([MqttSink("127.0.0.1", mosquitto.port, "wf")], max_attempts=5, retry_base_s=0.1)
    n.submit(notice(kind="activate", priority="critical"))
    results = wait_results(n, 1)
    n.stop()
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    sub.loop_stop()
    sub.disconnect()
    assert results[0]["ok"] and results[0]["sink"] == "mqtt"
    assert got[0][0] == "wf/alarms/critical" and got[0][1]["kind"] == "activate"


def test_live_engine_escalates_notifies_and_journals_every_attempt(demo_site, mosquitto, hooks, tmp_path):
    site = demo_site.model_copy(update={
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc",
                                                "publish": f"ipc://{tmp_path}/pub.ipc",
                                                "command": f"ipc://{tmp_path}/cmd.ipc"}),
        "mqtt": demo_site.mqtt.model_copy(update={"port": mosquitto.port}),
        "escalation_policies": [EscalationPolicy(id="fast", steps=[EscalationStep(after_s=0.3,
                                                                                  notify_role="supervisor")])],
        "alarm_rules": [AlarmRule(condition="zone.restricted", escalation="fast")],
        "default_escalation": {},  # only the rule's alarms escalate here (the demo's defaults name its policies)
        "notifications": Notifications(webhooks=[WebhookConfig(id="pager", url=f"{hooks.url}/ok", secret="k"),
                                                 WebhookConfig(id="down", url=f"{hooks.url}/down")],
                                       max_attempts=2, retry_base_s=0.05),
    })
    ctx = zmq.Context()
    write_site(site, tmp_path / "site.yaml")
    proc = EngineProcess(site, (tmp_path / "site.yaml").read_text(), tmp_path / "live", ctx=ctx)
    stop = threading.Event()
    th = threading.Thread(target=proc.run, args=(stop,))
    th.start()
    sub = bus.sub_socket(ctx, site.bus.publish, ["alarm.notify"])
    push = bus.push_socket(ctx, site.bus.ingest)
    t = time.time()
    for ts in (t, t + 2.1):  # still inside after the fences' 2 s dwell: the entry counts
        push.send_multipart(bus.encode(positions(site, {"T0050": (145.0, 70.0)}, ts, gdop=1.0)))
    assert sub.poll(10_000), "no escalation banner published"
    banner = bus.decode(sub.recv_multipart()).meta
    assert banner["notify_role"] == "supervisor" and banner["step"] == 1
    time.sleep(1.0)  # the sinks deliver and report
    stop.set()
    th.join(15)
    proc.close()
    for s in (sub, push):
        s.close(linger=0)
    ctx.term()

    import sqlite3

    db = sqlite3.connect(tmp_path / "live" / "journal.sqlite")
    rows = [(e, json.loads(d)) for e, d in db.execute("SELECT event, detail FROM journal ORDER BY row")]
    db.close()
    events = [e for e, _ in rows]
    assert events[0] == "activate" and events.count("escalate") == 1
    notify = [d for e, d in rows if e == "notify"]
    assert {(d["sink"], d["kind"], d["ok"]) for d in notify} >= {("mqtt", "activate", True),
                                                                 ("mqtt", "escalate", True),
                                                                 ("webhook:pager", "escalate", True),
                                                                 ("webhook:down", "escalate", False)}
    assert events.count("notify_dead_letter") == 1  # the down webhook, after its 2 attempts
    # the attempts are inputs: replay writes the same rows without sending anything
    replay(tmp_path / "live" / "recording.sqlite", tmp_path / "replay")
    assert (tmp_path / "live" / "journal.sqlite").read_bytes() == (tmp_path / "replay" / "journal.sqlite").read_bytes()
