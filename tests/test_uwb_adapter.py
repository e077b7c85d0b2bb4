"""The UWB adapter against a real mosquitto broker: ranges in, positions to the engine socket, omlox
Locations back on MQTT, and every bad payload rejected with its reason while the adapter keeps going."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from ingest import bus
from ingest.uwb import UwbAdapter

pytestmark = pytest.mark.slow


def test_ranges_become_positions_and_bad_payloads_are_dead_lettered(demo_site, mosquitto, tmp_path):
    site = demo_site.model_copy(update={
        "mqtt": demo_site.mqtt.model_copy(update={"port": mosquitto.port}),
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc"}),
    })
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    adapter = UwbAdapter(site, stop)
    th = threading.Thread(target=adapter.run)
    th.start()
    assert adapter.source.wait_connected(10)

    locations = []
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-locations")
    sub.on_message = lambda c, u, m: locations.extend(json.loads(m.payload))
    sub.connect("127.0.0.1", mosquitto.port)
    sub.subscribe(f"{site.mqtt.topic_prefix}/uwb/locations")
    sub.loop_start()
    time.sleep(0.3)

    anchors = np.array([a.position_m for a in site.anchors])
    truth = {"T0007": (60.0, 80.0, site.uwb.tag_height_m), "T0150": (210.0, 140.0, site.uwb.tag_height_m)}
    now = time.time()
    dist = {tag: np.linalg.norm(anchors - np.array(xyz), axis=1) for tag, xyz in truth.items()}
    payload = [{"tag": tag, "ts": now, "ranges": {a.id: round(float(dist[tag][k]), 4)
                                                  for k, a in enumerate(site.anchors)
                                                  if dist[tag][k] <= site.uwb.max_range_m}}
               for tag in truth]
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-gateway")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    topic = f"{site.mqtt.topic_prefix}/uwb/ranges"
    pub.publish(topic, b"\x00\xffnot json", qos=1)
    pub.publish(topic, json.dumps({"tag": "T0007", "ts": now, "ranges": {"A01": float("nan")}}), qos=1)
    pub.publish(topic, json.dumps({"tag": "NOPE", "ts": now, "ranges": {"A01": 3}}), qos=1)
    pub.publish(topic, json.dumps(payload), qos=1).wait_for_publish(5)

    positions, rejects = {}, {}
    deadline = time.monotonic() + 15
    while (len(positions) < 2 or sum(rejects.values()) < 3) and time.monotonic() < deadline:
        if not pull.poll(200):
            continue
        m = bus.decode(pull.recv_multipart())
        if m.kind == "positions":
            for i, xyz, ok in zip(m.arrays["person_index"], m.arrays["xyz_m"], m.arrays["valid"]):
                if ok:
                    positions[site.people[i].tag] = xyz
        elif m.kind == "rejected":
            for r in m.meta["rejects"]:
                rejects[r["reason"]] = rejects.get(r["reason"], 0) + 1
    stop.set()
    th.join(10)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    pull.close(linger=0)
    ctx.term()

    for tag, xyz in truth.items():
        assert np.allclose(positions[tag], xyz, atol=1e-3), (tag, positions.get(tag))
    assert rejects == {"not_json": 1, "bad_number": 1, "unknown_id": 1}
    by_tag = {loc["provider_id"]: loc for loc in locations}
    assert set(by_tag) >= {"T0007", "T0150"}
    assert by_tag["T0007"]["crs"] == "EPSG:4490" and by_tag["T0007"]["provider_type"] == "uwb"
    assert not th.is_alive()


def test_a_gateway_an_hour_ahead_has_every_fix_refused_and_still_raises_the_clock_alarm(demo_site, tmp_path):
    """Refusing a gateway's fixes for their time must not hide why: the slice's clock figure rides on the
    rejects batch, and the engine raises ``clock.skew:uwb``."""
    from ingest.engine import Engine, tick_message
    from ingest.mqtt_source import RawMessage

    site = demo_site.model_copy(update={"bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/i.ipc"})})
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    adapter = UwbAdapter(site, threading.Event())
    try:
        now = time.time()
        for k in range(5):
            item = {"tag": site.people[k].tag, "ts": now + 3600.0 + k, "ranges": {"A01": 10.0}}
            adapter.source.queue.put(RawMessage("p/uwb/ranges", json.dumps(item).encode(), now))
        adapter.step(False)
        assert pull.poll(5000)
        msg = bus.decode(pull.recv_multipart())
    finally:
        adapter.link.close()
        pull.close(linger=0)
        ctx.term()
    assert msg.kind == "rejected" and [r["reason"] for r in msg.meta["rejects"]] == ["bad_time"] * 5
    assert msg.meta["skew_s"] == pytest.approx(3604.0)  # the least-delayed of the five
    eng = Engine(site, None)
    eng.apply(1, tick_message(now))
    out = eng.apply(2, msg)
    assert [(a["id"], a["state"]) for a in out.alarms] == [("clock.skew:uwb", "active_unack")]
    assert eng.status()["clock_skew_s"] == {"uwb": pytest.approx(3604.0)}
