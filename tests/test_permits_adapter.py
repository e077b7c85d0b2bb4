"""Permit commands over MQTT from the plant's permit system, through a real mosquitto broker, the permits
adapter and the live engine: the permit office logs each person in (the engine checks the password and answers
with a token on MQTT), replies come back on MQTT, every change is journaled with its verified user, a command
without a valid token is refused and journaled, and a malformed command is rejected with its reason."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from config.schema import Notifications
from console.cli.launch import write_site
from ingest import bus
from ingest.bus import Message
from ingest.engine import EngineProcess, RecordingReader
from ingest.permits import PermitsAdapter

pytestmark = pytest.mark.slow


def test_permit_lifecycle_over_mqtt(demo_site, mosquitto, tmp_path):
    site = demo_site.model_copy(update={
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc",
                                                "publish": f"ipc://{tmp_path}/pub.ipc",
                                                "command": f"ipc://{tmp_path}/cmd.ipc"}),
        "mqtt": demo_site.mqtt.model_copy(update={"port": mosquitto.port}),
        "notifications": Notifications(mqtt=False)})
    write_site(site, tmp_path / "site.yaml")
    ctx = zmq.Context()
    engine = EngineProcess(site, (tmp_path / "site.yaml").read_text(), tmp_path / "run", ctx=ctx)
    stop = threading.Event()
    threads = [threading.Thread(target=engine.run, args=(stop,))]
    adapter_stop = threading.Event()
    adapter = PermitsAdapter(site, adapter_stop)
    threads.append(threading.Thread(target=adapter.run))
    for t in threads:
        t.start()
    replies: dict[str, dict] = {}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-ptw")
    c.on_message = lambda cl, u, m: replies.update({json.loads(m.payload)["id"]: json.loads(m.payload)})
    c.connect("127.0.0.1", mosquitto.port)
    prefix = site.mqtt.topic_prefix
    c.subscribe(f"{prefix}/permits/replies", qos=1)
    c.loop_start()
    assert adapter.source.wait_connected(10)
    time.sleep(0.5)
    now = time.time()
    commands = [
        {"id": "c1", "op": "permit_request", "user": "op1", "permit": "HW-7", "type": "hot_work", "grade": "2",
         "zone": "Z-HW1", "workers": ["T0101", "T0102"], "watcher": "T0187", "valid_from_s": now - 60,
         "valid_to_s": now + 3600, "description": "weld flange F-12"},
        {"id": "c2", "op": "permit_gas_test", "user": "op1", "permit": "HW-7", "values": {"LEL": 0.5, "O2": 20.9}},
        {"id": "c3", "op": "permit_approve", "user": "op2", "permit": "HW-7"},  # an operator may not
        {"id": "c4", "op": "permit_approve", "user": "sup1", "permit": "HW-7"},
        {"id": "c4s", "op": "permit_signin", "user": "P0187", "permit": "HW-7"},  # the watcher, on his phone
        {"id": "c5", "op": "permit_activate", "user": "sup1", "permit": "HW-7"},
    ]
    # the watcher is at the work (a fix from the UWB side)
    push = bus.push_socket(ctx, site.bus.ingest)
    i = [p.tag for p in site.people].index("T0187")
    push.send_multipart(bus.encode(Message("uwb.positions", "uwb", "positions", now, now, arrays={
        "person_index": np.array([i], np.int32), "xyz_m": np.array([[150.0, 160.0, 1.2]]), "ts_s": np.array([now]),
        "valid": np.array([True]), "gdop": np.array([1.0]), "rms_m": np.array([0.1])})))
    topic = f"{prefix}/permits/commands"

    def ask(doc: dict) -> dict:
        c.publish(topic, json.dumps(doc), qos=1)
        deadline = time.monotonic() + 10
        while doc["id"] not in replies and time.monotonic() < deadline:
            time.sleep(0.02)
        return replies.get(doc["id"], {})

    c.publish(topic, b"{broken", qos=1)
    c.publish(topic, json.dumps({"id": "x", "op": "ack", "user": "sup1"}), qos=1)
    # an anonymous client suspending a permit "as sup1": refused by the engine, journaled
    anonymous = ask({"id": "anon", "op": "permit_suspend", "user": "sup1", "permit": "HW-7", "reason": "prank"})
    tokens = {}
    for user in ("sup1", "op1", "op2"):
        login = ask({"id": f"login-{user}", "op": "login", "user": user, "password": "demo"})
        assert login["ok"] and login["role"], login
        tokens[user] = login["token"]
    login = ask({"id": "login-P0187", "op": "login", "user": "P0187", "pin": "1234"})  # a field worker's PIN
    assert login["ok"] and login["role"] == "field_worker", login
    tokens["P0187"] = login["token"]
    wrong = ask({"id": "login-bad", "op": "login", "user": "sup2", "password": "guess"})
    forged = ask({"id": "forged", "op": "permit_suspend", "user": "sup1", "token": tokens["op1"], "permit": "HW-7",
                  "reason": "x"})
    for cmd in commands:
        ask({**cmd, "token": tokens[cmd["user"]]})
    c.loop_stop()
    c.disconnect()
    adapter_stop.set()
    threads[1].join(10)
    stop.set()
    threads[0].join(10)
    engine.close()
    push.close(linger=0)
    ctx.term()

    assert anonymous == {"id": "anon", "ok": False, "reason": "no token: log in first"}
    assert (wrong["ok"], wrong["reason"]) == (False, "wrong user id or password") and "token" not in wrong
    assert forged == {"id": "forged", "ok": False, "reason": "user 'sup1' is not the one logged in (op1)"}
    assert replies["c1"] == {"id": "c1", "ok": True, "permit": "HW-7", "state": "requested"}
    assert replies["c3"] == {"id": "c3", "ok": False, "reason": "role operator may not approve permits"}
    assert replies["c5"] == {"id": "c5", "ok": True, "permit": "HW-7", "state": "active"}
    db = sqlite3.connect(tmp_path / "run" / "journal.sqlite")
    rows = db.execute("SELECT event, actor, state FROM journal WHERE alarm_id = 'permit:HW-7' "
                      "AND state != 'unknown'").fetchall()  # unknown: refused before the permit was looked at
    refused = db.execute("SELECT actor, detail FROM journal WHERE event = 'refused' AND alarm_id = 'permit:HW-7' "
                         "AND state = 'unknown'").fetchall()
    sessions = db.execute("SELECT event, actor, detail FROM journal WHERE alarm_id = 'access'").fetchall()
    db.close()
    assert [(a, json.loads(d)["reason"]) for a, d in refused] == [
        ("sup1", "no token: log in first"), ("sup1", "user 'sup1' is not the one logged in (op1)")]
    assert [(e, a) for e, a, _ in sessions] == [("login", "sup1"), ("login", "op1"), ("login", "op2"),
                                                ("login", "P0187"), ("login_failed", "sup2")]
    assert {json.loads(d)["console"] for _, _, d in sessions} == {"permit-office"}
    assert rows == [("permit_request", "op1", "requested"), ("permit_gas_test", "op1", "requested"),
                    ("refused", "op2", "requested"), ("permit_approve", "sup1", "approved"),
                    ("permit_signin", "P0187", "approved"), ("permit_activate", "sup1", "active")]
    rec = RecordingReader(tmp_path / "run" / "recording.sqlite")
    dead = {r[2] for r in rec.dead_letters()}
    recorded = b"".join(b"".join(frames) for _, frames in rec.inputs())
    rec.close()
    assert b'"password":' not in recorded and b"guess" not in recorded  # no password kept, nor any token:
    assert not any(t.encode() in recorded or t.split(".")[2].encode() in recorded for t in tokens.values())
    assert dead == {"not_json", "unknown_id"}  # the reason codes (the detail is kept beside them)
