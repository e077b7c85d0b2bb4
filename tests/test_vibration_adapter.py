"""The vibration adapter on a real mosquitto broker: a waveform of known amplitude gives its RMS velocity and
features, a smart sensor's overall value passes through, bad payloads are rejected with their reason."""

from __future__ import annotations

import base64
import json
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from ingest import bus
from ingest.vibration import VibrationAdapter

pytestmark = pytest.mark.slow


def test_waveforms_overall_values_and_rejects(demo_site, mosquitto, tmp_path):
    site = demo_site.model_copy(update={
        "mqtt": demo_site.mqtt.model_copy(update={"port": mosquitto.port}),
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc"})})
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    adapter = VibrationAdapter(site, stop)
    th = threading.Thread(target=adapter.run)
    th.start()
    assert adapter.source.wait_connected(10)
    time.sleep(0.3)
    fs, n, f0, v_rms = 5120.0, 5120, 24.75, 4.0  # 4 mm/s RMS at 24.75 Hz, a pump running at 1485 rpm
    t = np.arange(n) / fs
    a = (np.sqrt(2) * v_rms / 1000 * 2 * np.pi * f0 * np.cos(2 * np.pi * f0 * t)).astype("<f4")
    now = time.time()
    wave = {"point": "VP04", "ts": now, "fs_hz": fs, "unit": "m/s2", "n": n,
            "samples": base64.b64encode(a.tobytes()).decode()}
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-vib")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    p = site.mqtt.topic_prefix
    pub.publish(f"{p}/vibration/VP04", json.dumps(wave), qos=1)
    pub.publish(f"{p}/vibration/VP08", json.dumps({"point": "VP08", "ts": now, "overall": {"rms_mm_s": 2.2}}), qos=1)
    pub.publish(f"{p}/vibration/VP04", json.dumps({**wave, "unit": "g"}), qos=1)
    pub.publish(f"{p}/vibration/VP99", json.dumps({**wave, "point": "VP99"}), qos=1)
    pub.publish(f"{p}/vibration/VP04", json.dumps({**wave, "n": 7}), qos=1)
    pub.publish(f"{p}/vibration/VP04", b"{nope", qos=1).wait_for_publish(5)
    got, rejects = {}, []
    deadline = time.monotonic() + 15
    while (len(got) < 2 or len(rejects) < 4) and time.monotonic() < deadline:
        if pull.poll(100):
            m = bus.decode(pull.recv_multipart())
            if m.kind == "vibration_features":
                for k, i in enumerate(m.arrays["point_index"]):
                    got[site.vibration_points[i].id] = {name: float(arr[k]) for name, arr in m.arrays.items()}
            elif m.kind == "rejected":
                rejects += [(r["reason"], r["detail"]) for r in m.meta["rejects"]]
    stop.set()
    th.join(10)
    pub.loop_stop()
    pub.disconnect()
    pull.close(linger=0)
    ctx.term()
    # 24.75 Hz does not fit whole cycles in 1 s: leakage costs a little, well inside the 2 % of issue 6
    assert got["VP04"]["rms_mm_s"] == pytest.approx(v_rms, rel=0.02)
    assert got["VP04"]["dominant_hz"] == pytest.approx(f0, abs=0.5)
    assert got["VP04"]["crest"] == pytest.approx(np.sqrt(2), rel=0.02)
    assert got["VP08"]["rms_mm_s"] == 2.2 and np.isnan(got["VP08"]["kurtosis"])
    assert sorted(rejects) == sorted([("bad_field", "unit 'g' is not m/s2"), ("unknown_id", "unknown point 'VP99'"),
                                      ("bad_field", "n says 7 samples, payload has 5120"),
                                      ("not_json", "Expecting property name enclosed in double quotes at line 1 column 2")])
