"""No MQTT payload can kill an adapter, and every bad one is counted and kept, end to end.

The real processes (engine, UWB, vibration, camera and permits adapters, each started as ``watchfloor ...``)
run against a real mosquitto broker. A publisher sends each adapter the payloads that killed the first release
(issue 10) and 5,000 hypothesis-made bad payloads (derandomized: the same every run), interleaved with valid
payloads. Then: every process is still the one started (no exit, no restart); every bad payload is in the
recording's dead-letter table (each is built to give exactly one reject); each adapter's own reject counts
(logged at stop) equal the engine's dead letters of that adapter, code by code; and every valid payload was
delivered.
"""

from __future__ import annotations

import ast
import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from console.cli.launch import write_site
from ingest import bus
from ingest.engine import RecordingReader
from tests.conftest import Broker

pytestmark = pytest.mark.slow

PER_ADAPTER = 5000  # hypothesis-made bad payloads per adapter
ADAPTERS = ("uwb", "vibration", "camera", "permits")
GOOD_EVERY = 25  # one valid payload after every 25 bad ones


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def big(digits: int) -> str:
    return "9" * digits


# -- hypothesis strategies: each payload is bad and gives exactly one reject ----------------------------------
_json_scalar = (st.none() | st.booleans() | st.integers(min_value=-(10**18), max_value=10**18)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
_json_any = st.recursive(_json_scalar, lambda k: st.lists(k, max_size=3) | st.dictionaries(st.text(max_size=4), k,
                                                                                           max_size=3),
                         max_leaves=8)
#: raw text spliced into a JSON document: a huge integer, a NaN literal, deep nesting, or a plain value
_hostile_raw = st.one_of(
    st.integers(min_value=20, max_value=600).map(big),
    st.sampled_from(["NaN", "Infinity", "-Infinity", deep(40).decode(), deep(2000).decode()]),
    _json_any.map(lambda v: json.dumps(v)),
)
_junk = st.binary(max_size=80).filter(lambda b: not b.lstrip(b" \t\r\n").startswith(b"["))


def _doc(fields: dict[str, str]) -> bytes:
    """A JSON object from already-encoded field values (so hostile raw text can be spliced in)."""
    return ("{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in fields.items()) + "}").encode()


def _not(valid: set[str]):
    """JSON (as text) for an id field that is never one of ``valid``: unknown strings, lists, numbers, null."""
    return st.one_of(st.text(max_size=8).filter(lambda t: t not in valid).map(json.dumps),
                     st.lists(st.sampled_from(sorted(valid)), min_size=1, max_size=2).map(json.dumps),
                     st.integers().map(str), st.just("null"), st.just(json.dumps(sorted(valid)[0] + "x")))


def bad_payloads(id_field: str, valid_ids: set[str], other_fields: list[str]):
    """A bad payload for an adapter whose payload is an object with ``id_field``: junk bytes, a scalar, or an
    object whose id is never valid (other fields anything, hostile raw text included)."""
    obj = st.fixed_dictionaries({id_field: _not(valid_ids), **{f: _hostile_raw for f in other_fields}}).map(_doc)
    return st.one_of(_junk, _json_scalar.map(lambda v: json.dumps(v).encode()), obj)


GENERATED: dict[str, list[bytes]] = {}


def generate(site) -> dict[str, list[bytes]]:
    tags = {p.tag for p in site.people}
    strategies = {
        "uwb": bad_payloads("tag", tags, ["ts", "ranges"]),
        "wearable": bad_payloads("tag", tags, ["ts", "event"]),
        "vibration": bad_payloads("point", {p.id for p in site.vibration_points}, ["ts", "overall"]),
        "camera": bad_payloads("camera", {c.id for c in site.cameras}, ["ts", "detections"]),
        "permits": st.one_of(_junk, st.fixed_dictionaries({
            "op": _not({"permit_request", "permit_approve", "permit_activate", "permit_suspend", "permit_resume",
                        "permit_close", "permit_gas_test"}), "id": _hostile_raw, "user": _hostile_raw}).map(_doc)),
    }
    out = {}
    for name, strategy in strategies.items():
        n = PER_ADAPTER // 10 if name == "wearable" else PER_ADAPTER
        out[name] = draw(strategy, n)
        assert len(out[name]) == n, (name, len(out[name]))
    return out


def draw(strategy, n: int) -> list[bytes]:
    """``n`` payloads of ``strategy``, ten per hypothesis example (its per-example cost paid a tenth as often)."""
    drawn: list[bytes] = []

    @settings(max_examples=n // 10, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(strategy, min_size=10, max_size=10))
    def collect(payloads):
        drawn.extend(payloads)

    collect()
    return drawn


# -- the payload classes of issue 10 ------------------------------------------------------------------------
def fixed_bad(site, now: float) -> dict[str, list[tuple[str, bytes]]]:
    """(topic suffix, payload) per adapter; each gives exactly one reject."""
    t, a = site.people[0].tag, site.anchors[0].id
    vp, cam = site.vibration_points[0].id, site.cameras[0].id
    ok_ranges = json.dumps({a: 10.0})
    return {
        "uwb": [("uwb/ranges", p) for p in (
            deep(1000), deep(10_000), b'{"tag":"%s","ts":%s,"ranges":%s}' % (t.encode(), big(400).encode(),
                                                                                ok_ranges.encode()),
            b'{"tag":"%s","ts":%r,"ranges":{"%s":%s}}' % (t.encode(), now, a.encode(), big(400).encode()),
            big(5000).encode(), b'{"tag":"%s","ts":NaN,"ranges":%s}' % (t.encode(), ok_ranges.encode()),
            json.dumps({"tag": t, "ts": now + 3600, "ranges": {a: 10.0}}).encode(),
            json.dumps({"tag": t, "ts": now - 3600, "ranges": {a: 10.0}}).encode(),
            json.dumps({"tag": t, "ts": now, "ranges": {"A99": 10.0}}).encode(),  # unknown anchor: that range only
            b"x" * (2 << 20), b"", b"\xff\xfe\x00",
        )] + [("wearable/events", p) for p in (
            json.dumps({"tag": [t], "ts": now, "event": "sos"}).encode(), deep(5000),
            json.dumps({"tag": t, "ts": now, "event": "dance"}).encode(),
        )],
        "vibration": [(f"vibration/{vp}", p) for p in (
            json.dumps({"point": [vp], "ts": now, "overall": {"rms_mm_s": 1.0}}).encode(),
            b'{"point":"%s","ts":%s,"overall":{"rms_mm_s":1.0}}' % (vp.encode(), big(400).encode()),
            b'{"point":"%s","ts":%r,"overall":{"rms_mm_s":%s}}' % (vp.encode(), now, big(400).encode()),
            deep(10_000), json.dumps({"point": vp, "ts": now + 3600, "overall": {"rms_mm_s": 1.0}}).encode(),
            json.dumps({"point": vp, "ts": now - 3600, "overall": {"rms_mm_s": 1.0}}).encode(),
            json.dumps({"point": vp, "ts": now, "overall": {"rms_mm_s": 1e9}}).encode(),
        )],
        "camera": [(f"camera/{cam}/detections", p) for p in (
            json.dumps({"camera": [cam], "ts": now, "detections": []}).encode(),
            json.dumps({"camera": cam, "ts": now, "detections": 5}).encode(), deep(10_000),
            json.dumps({"camera": cam, "ts": now + 3600, "detections": []}).encode(),
            json.dumps({"camera": cam, "ts": now, "detections": [{"class": "dog", "confidence": 0.5,
                                                                  "box_px": [1, 1, 2, 2]}]}).encode(),
        )],
        "permits": [("permits/commands", p) for p in (
            deep(10_000), json.dumps({"id": "x", "op": "ack", "user": "sup1"}).encode(),
            json.dumps({"id": "x", "op": "permit_suspend", "user": ["sup1"]}).encode(),
            json.dumps({"id": "x" * 200, "op": "permit_suspend", "user": "sup1"}).encode(),
            b"x" * (64 << 10),
        )],
    }


def good(site, name: str, k: int, now: float) -> tuple[str, bytes, tuple]:
    """(topic suffix, payload, what the engine must have received) of the k-th valid payload for an adapter."""
    ts = round(now, 3) + (k % 1000) * 1e-3  # within 1 s of now: inside every clock window
    if name == "uwb":
        anchors = np.array([a.position_m for a in site.anchors])
        xyz = np.array([100.0 + k % 50, 100.0, site.uwb.tag_height_m])
        d = np.linalg.norm(anchors - xyz, axis=1)
        ranges = {a.id: round(float(r), 3) for a, r in zip(site.anchors, d) if r <= site.uwb.max_range_m}
        i = 10 + k % 100
        return "uwb/ranges", json.dumps({"tag": site.people[i].tag, "ts": ts, "ranges": ranges}).encode(), (i, ts)
    if name == "vibration":
        i = k % len(site.vibration_points)
        p = site.vibration_points[i].id
        return f"vibration/{p}", json.dumps({"point": p, "ts": ts, "overall": {"rms_mm_s": 1.5}}).encode(), (i, ts)
    if name == "camera":
        c = site.cameras[0]
        w, h = c.image_size_px
        det = {"class": "person", "confidence": 0.9, "box_px": [w / 2 - 20, h / 2, w / 2 + 20, h / 2 + 100]}
        return (f"camera/{c.id}/detections", json.dumps({"camera": c.id, "ts": ts, "detections": [det]}).encode(),
                (0, ts))
    return ("permits/commands", json.dumps({"id": f"fuzz-{k}", "op": "permit_gas_test", "user": "op1",
                                            "permit": "NO-SUCH"}).encode(), f"fuzz-{k}")


# -- the stack ------------------------------------------------------------------------------------------
def start(argv: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "console.cli", *argv], stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"), env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(pred, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} within {timeout_s} s")


def dead_letter_count(rec: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{rec}?mode=ro", uri=True)
        try:
            return db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def test_every_adapter_survives_every_payload_and_every_reject_arrives(demo_site, tmp_path):
    generated = generate(demo_site)
    broker = Broker(tmp_path)
    procs: dict[str, subprocess.Popen] = {}
    try:
        site = demo_site.model_copy(update={
            "mqtt": demo_site.mqtt.model_copy(update={"host": "127.0.0.1", "port": broker.port}),
            "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc",
                                                    "publish": f"ipc://{tmp_path}/pub.ipc",
                                                    "command": f"ipc://{tmp_path}/cmd.ipc"}),
        })
        site_file = tmp_path / "site.yaml"
        write_site(site, site_file)
        run = tmp_path / "run"
        procs["engine"] = start(["engine", "--site", str(site_file), "--out", str(run)], tmp_path / "engine.log")
        wait_for(lambda: (tmp_path / "in.ipc").exists(), 30, "the engine did not bind")
        for name in ADAPTERS:
            procs[name] = start(["ingest", name, "--site", str(site_file)], tmp_path / f"{name}.log")
        wait_for(lambda: all("MQTT connected" in (tmp_path / f"{n}.log").read_text() for n in ADAPTERS), 60,
                 "the adapters did not connect")
        pids = {n: p.pid for n, p in procs.items()}

        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-gateway")
        pub.max_inflight_messages_set(200)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        prefix = site.mqtt.topic_prefix
        sent_bad: Counter[str] = Counter()
        expected: dict[str, list] = {n: [] for n in ADAPTERS}
        last = None
        now = time.time()
        for name, items in fixed_bad(site, now).items():
            for suffix, payload in items:
                pub.publish(f"{prefix}/{suffix}", payload, qos=1)
                sent_bad[name] += 1
        # a fix sent twice: the second is a duplicate (one reject); the first is delivered
        suffix, payload, want = good(site, "uwb", 999, now)
        for _ in range(2):
            pub.publish(f"{prefix}/{suffix}", payload, qos=1)
        expected["uwb"].append(want)
        sent_bad["uwb"] += 1
        streams = {"uwb": [("uwb/ranges", p) for p in generated["uwb"]]
                   + [("wearable/events", p) for p in generated["wearable"]],
                   "vibration": [(f"vibration/{site.vibration_points[k % 10].id}", p)
                                 for k, p in enumerate(generated["vibration"])],
                   "camera": [(f"camera/{site.cameras[k % 4].id}/detections", p)
                              for k, p in enumerate(generated["camera"])],
                   "permits": [("permits/commands", p) for p in generated["permits"]]}
        for name, stream in streams.items():
            for k, (suffix, payload) in enumerate(stream):
                last = pub.publish(f"{prefix}/{suffix}", payload, qos=1)
                sent_bad[name] += 1
                if k % GOOD_EVERY == 0:
                    suffix, payload, want = good(site, name, k // GOOD_EVERY, time.time())
                    last = pub.publish(f"{prefix}/{suffix}", payload, qos=1)
                    expected[name].append(want)
        last.wait_for_publish(60)
        total_bad = sum(sent_bad.values())
        rec_path = run / "recording.sqlite"
        wait_for(lambda: dead_letter_count(rec_path) >= total_bad, 120, "not every reject reached the engine")
        time.sleep(1.0)  # the last valid batches of the slice
        pub.loop_stop()
        pub.disconnect()

        # no process exited or was restarted
        assert {n: p.poll() for n, p in procs.items()} == {n: None for n in procs}
        assert {n: p.pid for n, p in procs.items()} == pids
        for name in ADAPTERS:
            procs[name].send_signal(signal.SIGINT)
        for name in ADAPTERS:
            assert procs[name].wait(30) == 0
        procs["engine"].send_signal(signal.SIGINT)
        assert procs["engine"].wait(30) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        broker.stop()

    rec = RecordingReader(run / "recording.sqlite")
    dead = rec.dead_letters()
    msgs = [bus.decode(f) for _, f in rec.inputs()]
    rec.close()
    by_source = Counter(d[1] for d in dead)
    # 100 % of the bad payloads counted and kept, one each
    if os.environ.get("DUMP"):
        Path(os.environ["DUMP"]).write_text(json.dumps(dead))
    assert dict(by_source) == dict(sent_bad), Counter((d[1], d[2], d[5][:40]) for d in dead).most_common()

    for name in ADAPTERS:
        log = (tmp_path / f"{name}.log").read_text()
        assert "Traceback" not in log, f"{name} adapter logged a failure:\n{log[-3000:]}"
        m = re.search(r"adapter stopped: \d+ items, rejects (\{.*\})", log)
        assert m, f"{name} adapter did not log its counts:\n{log[-2000:]}"
        adapter_counts = ast.literal_eval(m.group(1))
        engine_counts = Counter(d[2] for d in dead if d[1] == name)
        assert adapter_counts == dict(engine_counts), name  # counts equal end to end, code by code
    summary = json.loads((run / "summary.json").read_text())
    assert summary["failed_inputs"] == 0

    # every valid payload was delivered
    got_uwb = {(int(i), float(t)) for m in msgs if m.kind == "positions"
               for i, t in zip(m.arrays["person_index"], m.arrays["ts_s"])}
    assert set(expected["uwb"]) <= got_uwb
    got_vib = {(int(i), float(t)) for m in msgs if m.kind == "vibration_features"
               for i, t in zip(m.arrays["point_index"], m.arrays["ts_s"])}
    assert set(expected["vibration"]) <= got_vib
    got_cam = Counter(float(t) for m in msgs if m.kind == "camera_detections" for t in m.arrays["ts_s"])
    assert all(got_cam[ts] >= 1 for _, ts in expected["camera"])
    # well-formed but with no token: each reaches the engine, which refuses it (recorded, journaled): none is lost
    got_cmd = {m.meta["id"] for m in msgs if m.kind == "command_refused" and m.meta.get("channel") == "permits"}
    assert set(expected["permits"]) <= got_cmd
    assert all(math.isfinite(t) for _, t in expected["uwb"])
