"""``watchfloor bench malformed``: a burst of bad input at full speed alongside the normal demo load (issue 10).

The demo plant runs as ``watchfloor demo --headless`` runs it (its own mosquitto broker on loopback, the engine,
the simulator with ``--scenario`` and the five ingest adapters, each its own process under one Supervisor).
After a warm-up and a quiet window, ``--count`` bad MQTT payloads (default 100,000) are published at full speed,
QoS 1 (every one acknowledged by the broker, which then hands it on at QoS 1), spread over the adapters'
topics, and ``--frames`` raw bad frames (default 400) are pushed straight into the engine's ingest socket
in between. The burst stops after ``--seconds`` at the latest.

Every payload is built to give exactly ONE dead letter (a single object, or a whole payload refused before it is
read), with a known source and reason code (:data:`ingest.protocol.wire.REASONS`). Wearable events stamped 1 h old or
ahead are not sent: by design they are not rejected (a late SOS is raised, marked LATE). Items with a known tag and
only a bad range (unknown anchor, negative, absurd) are rejected range by range: the item itself becomes an
invalid (all-NaN) fix, which the tracker and the engine skip; the latency figures take valid fixes only.

Figures: payloads sent (acknowledged by the broker) and frames sent; processes that died or were replaced during
the run; the share of the bad input found in the recording's ``dead_letters`` (in all, and per source);
the latency of the good (valid) positions (gateway ``ts_s`` to the engine's receive time) in the quiet window
before the burst and in the burst window (from the first bad payload to the last dead letter), and the longest
time without any positions batch in each; dead letters recorded per second during the burst.
Printed first: a table of expected against recorded dead letters per (topic family, source, reason), each
adapter's own reject count against the dead letters of its source, ERROR lines in the logs before the stop,
whether the signed recording still verifies, and any process that died or was left running.

``--count 5000`` is a quick smoke run (about 1.5 minutes); the default 100,000 takes about 2.5 minutes here.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from bench import report, write_bench_site
from config import DEMO_SITE, load_site
from console.cli.launch import demo_signing, effective_demo_site, start_broker_argv
from console.cli.supervisor import Supervisor, wait_port
from ingest import bus
from ingest.engine import RecordingReader

__all__ = ["run"]

ADAPTERS = ("uwb", "gas", "vibration", "camera", "permits")
SOURCES = ("uwb", "vibration", "camera", "permits", "engine")
MAX_UNACKED = 5000  # bad payloads queued in the bench's own client, not yet acknowledged by the broker


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def _deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


def _digits(n: int) -> str:
    return "9" * n


class Payloads:
    """The bad MQTT payload classes: name -> (family, expected source, expected reason, weight, make(i))."""

    def __init__(self, site, seed: int) -> None:
        p = site.mqtt.topic_prefix.rstrip("/")
        self.rng = np.random.default_rng(seed)
        tags = [x.tag for x in site.people]
        anchors = [a.id for a in site.anchors]
        points = [v.id for v in site.vibration_points]
        cams = [c.id for c in site.cameras]
        user = site.users[0].id
        t_uwb, t_wear, t_perm = f"{p}/uwb/ranges", f"{p}/wearable/events", f"{p}/permits/commands"
        D400, D5000 = _digits(400), _digits(5000)
        rand = self._random

        def now() -> float:
            return time.time()

        def tag(i):
            return tags[i % len(tags)]

        def pt(i):
            return points[i % len(points)]

        def cam(i):
            return cams[i % len(cams)]

        def uts(i):
            # a timestamp no simulator fix has (those are whole ms) and unique per item: no duplicate reject
            t = int(time.time() * 1000) / 1000.0
            return f"{t + 0.0005 + (i % 400) * 1e-6:.7f}"

        def j(d) -> bytes:
            return json.dumps(d, separators=(",", ":")).encode()

        big_uwb = b'{"tag":"T0001","pad":"' + b"x" * 2_000_000 + b'"}'
        big_wear = b'{"tag":"T0001","pad":"' + b"x" * 100_000 + b'"}'
        big_vib = b'{"point":"VP01","pad":"' + b"x" * 9_000_000 + b'"}'
        big_cam = b'{"camera":"CAM1","pad":"' + b"x" * 300_000 + b'"}'
        big_perm = b'{"op":"permit_close","pad":"' + b"x" * 20_000 + b'"}'
        deep1k, deep10k = _deep(1000), _deep(10000)
        a0 = anchors[0]
        C = {}

        # -- UWB ranges (source uwb) --
        C["uwb-not-json"] = ("uwb/ranges", "uwb", "not_json", 1, lambda i: (t_uwb, b'{"tag": "T0001", "ts": '))
        C["uwb-bad-utf8"] = ("uwb/ranges", "uwb", "not_json", 1,
                             lambda i: (t_uwb, b'{"tag":"T\xff\xfe01","ts":1,"ranges":{}}'))
        C["uwb-deep-1000"] = ("uwb/ranges", "uwb", "too_deep", 1, lambda i: (t_uwb, deep1k))
        C["uwb-deep-10000"] = ("uwb/ranges", "uwb", "too_deep", 1, lambda i: (t_uwb, deep10k))
        C["uwb-ts-400-digits"] = ("uwb/ranges", "uwb", "bad_number", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{D400},"ranges":{{"{a0}":5.0}}}}'.encode()))
        C["uwb-range-400-digits"] = ("uwb/ranges", "uwb", "bad_number", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{now():.3f},"ranges":{{"{a0}":{D400}}}}}'.encode()))
        C["uwb-int-5000-digits"] = ("uwb/ranges", "uwb", "bad_number", 1, lambda i: (t_uwb, D5000.encode()))
        C["uwb-tag-list"] = ("uwb/ranges", "uwb", "bad_field", 1, lambda i: (
            t_uwb, j({"tag": [tag(i)], "ts": round(now(), 3), "ranges": {a0: 5.0}})))
        C["uwb-nan-ts"] = ("uwb/ranges", "uwb", "bad_number", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":NaN,"ranges":{{"{a0}":5.0}}}}'.encode()))
        C["uwb-infinity-range"] = ("uwb/ranges", "uwb", "bad_number", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{now():.3f},"ranges":{{"{a0}":-Infinity}}}}'.encode()))
        C["uwb-unknown-tag"] = ("uwb/ranges", "uwb", "unknown_id", 1, lambda i: (
            t_uwb, j({"tag": f"ZZ{i:07d}", "ts": round(now(), 3), "ranges": {a0: 5.0}})))
        C["uwb-unknown-anchor"] = ("uwb/ranges", "uwb", "unknown_id", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{uts(i)},"ranges":{{"ZZ-ANCHOR":5.0}}}}'.encode()))
        C["uwb-negative-range"] = ("uwb/ranges", "uwb", "out_of_range", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{uts(i)},"ranges":{{"{a0}":-5.0}}}}'.encode()))
        C["uwb-absurd-range"] = ("uwb/ranges", "uwb", "out_of_range", 1, lambda i: (
            t_uwb, f'{{"tag":"{tag(i)}","ts":{uts(i)},"ranges":{{"{a0}":1e9}}}}'.encode()))
        C["uwb-ts-1h-ahead"] = ("uwb/ranges", "uwb", "bad_time", 1, lambda i: (
            t_uwb, j({"tag": tag(i), "ts": round(now() + 3600, 3), "ranges": {a0: 5.0}})))
        C["uwb-ts-1h-old"] = ("uwb/ranges", "uwb", "bad_time", 1, lambda i: (
            t_uwb, j({"tag": tag(i), "ts": round(now() - 3600, 3), "ranges": {a0: 5.0}})))
        C["uwb-2MB"] = ("uwb/ranges", "uwb", "too_large", 0.015, lambda i: (t_uwb, big_uwb))
        C["uwb-empty"] = ("uwb/ranges", "uwb", "not_json", 1, lambda i: (t_uwb, b""))
        C["uwb-random-bytes"] = ("uwb/ranges", "uwb", "not_json", 1, lambda i: (t_uwb, rand()))
        # -- wearable events (the UWB adapter: source uwb) --
        C["wear-tag-list"] = ("wearable/events", "uwb", "bad_field", 1, lambda i: (
            t_wear, j({"tag": [tag(i)], "ts": round(now(), 3), "event": "sos"})))
        C["wear-unknown-tag"] = ("wearable/events", "uwb", "unknown_id", 1, lambda i: (
            t_wear, j({"tag": f"ZZ{i:07d}", "ts": round(now(), 3), "event": "sos"})))
        C["wear-unknown-event"] = ("wearable/events", "uwb", "unknown_id", 1, lambda i: (
            t_wear, j({"tag": tag(i), "ts": round(now(), 3), "event": "explode"})))
        C["wear-ts-text"] = ("wearable/events", "uwb", "bad_field", 1, lambda i: (
            t_wear, j({"tag": tag(i), "ts": "yesterday", "event": "sos"})))
        C["wear-nan-ts"] = ("wearable/events", "uwb", "bad_number", 1, lambda i: (
            t_wear, f'{{"tag":"{tag(i)}","ts":NaN,"event":"sos"}}'.encode()))
        C["wear-ts-400-digits"] = ("wearable/events", "uwb", "bad_number", 1, lambda i: (
            t_wear, f'{{"tag":"{tag(i)}","ts":{D400},"event":"sos"}}'.encode()))
        C["wear-deep-10000"] = ("wearable/events", "uwb", "too_deep", 1, lambda i: (t_wear, deep10k))
        C["wear-100kB"] = ("wearable/events", "uwb", "too_large", 0.07, lambda i: (t_wear, big_wear))
        C["wear-not-json"] = ("wearable/events", "uwb", "not_json", 1, lambda i: (t_wear, b"sos!"))
        C["wear-empty"] = ("wearable/events", "uwb", "not_json", 1, lambda i: (t_wear, b""))
        C["wear-random-bytes"] = ("wearable/events", "uwb", "not_json", 1, lambda i: (t_wear, rand()))
        # -- vibration (source vibration) --
        vt = f"{p}/vibration/"
        C["vib-point-list"] = ("vibration", "vibration", "bad_field", 1, lambda i: (
            vt + pt(i), j({"point": [pt(i)], "ts": round(now(), 3), "overall": {"rms_mm_s": 1.0}})))
        C["vib-ts-400-digits"] = ("vibration", "vibration", "bad_number", 1, lambda i: (
            vt + pt(i), f'{{"point":"{pt(i)}","ts":{D400},"overall":{{"rms_mm_s":1.0}}}}'.encode()))
        C["vib-rms-400-digits"] = ("vibration", "vibration", "bad_number", 1, lambda i: (
            vt + pt(i), f'{{"point":"{pt(i)}","ts":{now():.3f},"overall":{{"rms_mm_s":{D400}}}}}'.encode()))
        C["vib-deep-1000"] = ("vibration", "vibration", "too_deep", 1, lambda i: (vt + pt(i), deep1k))
        C["vib-deep-10000"] = ("vibration", "vibration", "too_deep", 1, lambda i: (vt + pt(i), deep10k))
        C["vib-unknown-point"] = ("vibration", "vibration", "unknown_id", 1, lambda i: (
            vt + "ZZ-POINT", j({"point": "ZZ-POINT", "ts": round(now(), 3), "overall": {"rms_mm_s": 1.0}})))
        C["vib-nan-rms"] = ("vibration", "vibration", "bad_number", 1, lambda i: (
            vt + pt(i), f'{{"point":"{pt(i)}","ts":{now():.3f},"overall":{{"rms_mm_s":NaN}}}}'.encode()))
        C["vib-absurd-rms"] = ("vibration", "vibration", "out_of_range", 1, lambda i: (
            vt + pt(i), j({"point": pt(i), "ts": round(now(), 3), "overall": {"rms_mm_s": 1e6}})))
        C["vib-negative-rms"] = ("vibration", "vibration", "out_of_range", 1, lambda i: (
            vt + pt(i), j({"point": pt(i), "ts": round(now(), 3), "overall": {"rms_mm_s": -1.0}})))
        C["vib-ts-1h-ahead"] = ("vibration", "vibration", "bad_time", 1, lambda i: (
            vt + pt(i), j({"point": pt(i), "ts": round(now() + 3600, 3), "overall": {"rms_mm_s": 1.0}})))
        C["vib-ts-1h-old"] = ("vibration", "vibration", "bad_time", 1, lambda i: (
            vt + pt(i), j({"point": pt(i), "ts": round(now() - 3600, 3), "overall": {"rms_mm_s": 1.0}})))
        C["vib-9MB"] = ("vibration", "vibration", "too_large", 0.004, lambda i: (vt + pt(i), big_vib))
        C["vib-not-json"] = ("vibration", "vibration", "not_json", 1, lambda i: (vt + pt(i), b"\x00\x01rms"))
        C["vib-bad-utf8"] = ("vibration", "vibration", "not_json", 1, lambda i: (
            vt + pt(i), b'{"point":"VP\xc3\x28","ts":1}'))
        C["vib-empty"] = ("vibration", "vibration", "not_json", 1, lambda i: (vt + pt(i), b""))
        C["vib-random-bytes"] = ("vibration", "vibration", "not_json", 1, lambda i: (vt + pt(i), rand()))
        # -- camera edge detections (source camera) --
        def ct(c):
            return f"{p}/camera/{c}/detections"

        det = {"class": "person", "confidence": 0.9, "box_px": [100, 100, 200, 400]}
        C["cam-camera-list"] = ("camera", "camera", "bad_field", 1, lambda i: (
            ct(cam(i)), j({"camera": [cam(i)], "ts": round(now(), 3), "frame": i, "detections": [det]})))
        C["cam-detections-5"] = ("camera", "camera", "bad_field", 1, lambda i: (
            ct(cam(i)), j({"camera": cam(i), "ts": round(now(), 3), "frame": i, "detections": 5})))
        C["cam-deep-1000"] = ("camera", "camera", "too_deep", 1, lambda i: (ct(cam(i)), deep1k))
        C["cam-deep-10000"] = ("camera", "camera", "too_deep", 1, lambda i: (ct(cam(i)), deep10k))
        C["cam-unknown-camera"] = ("camera", "camera", "unknown_id", 1, lambda i: (
            ct("ZZ-CAM"), j({"camera": "ZZ-CAM", "ts": round(now(), 3), "frame": i, "detections": [det]})))
        C["cam-ts-1h-ahead"] = ("camera", "camera", "bad_time", 1, lambda i: (
            ct(cam(i)), j({"camera": cam(i), "ts": round(now() + 3600, 3), "frame": i, "detections": [det]})))
        C["cam-ts-1h-old"] = ("camera", "camera", "bad_time", 1, lambda i: (
            ct(cam(i)), j({"camera": cam(i), "ts": round(now() - 3600, 3), "frame": i, "detections": [det]})))
        C["cam-ts-400-digits"] = ("camera", "camera", "bad_number", 1, lambda i: (
            ct(cam(i)), f'{{"camera":"{cam(i)}","ts":{D400},"detections":[]}}'.encode()))
        C["cam-nan-confidence"] = ("camera", "camera", "bad_number", 1, lambda i: (
            ct(cam(i)), (f'{{"camera":"{cam(i)}","ts":{now():.3f},"detections":[{{"class":"person",'
                         f'"confidence":NaN,"box_px":[1,2,3,4]}}]}}').encode()))
        C["cam-unknown-class"] = ("camera", "camera", "unknown_id", 1, lambda i: (
            ct(cam(i)), j({"camera": cam(i), "ts": round(now(), 3), "frame": i,
                           "detections": [{**det, "class": "zebra"}]})))
        C["cam-box-outside"] = ("camera", "camera", "out_of_range", 1, lambda i: (
            ct(cam(i)), j({"camera": cam(i), "ts": round(now(), 3), "frame": i,
                           "detections": [{**det, "box_px": [0, 0, 50000, 50000]}]})))
        C["cam-300kB"] = ("camera", "camera", "too_large", 0.07, lambda i: (ct(cam(i)), big_cam))
        C["cam-not-json"] = ("camera", "camera", "not_json", 1, lambda i: (ct(cam(i)), b"<detections/>"))
        C["cam-empty"] = ("camera", "camera", "not_json", 1, lambda i: (ct(cam(i)), b""))
        C["cam-random-bytes"] = ("camera", "camera", "not_json", 1, lambda i: (ct(cam(i)), rand()))
        # -- permit commands (source permits) --
        C["perm-unknown-op"] = ("permits", "permits", "unknown_id", 1, lambda i: (
            t_perm, j({"id": f"ZZ-{i}", "op": "permit_explode", "user": user})))
        C["perm-unknown-user"] = ("permits", "permits", "unknown_id", 1, lambda i: (
            t_perm, j({"id": f"ZZ-{i}", "op": "permit_close", "user": "zz-nobody"})))
        C["perm-id-list"] = ("permits", "permits", "bad_field", 1, lambda i: (
            t_perm, j({"id": [f"ZZ-{i}"], "op": "permit_close", "user": user})))
        C["perm-deep-1000"] = ("permits", "permits", "too_deep", 1, lambda i: (t_perm, deep1k))
        # 20 kB of brackets: over the permits' 16 KiB limit, refused for its size before it is read
        C["perm-deep-10000"] = ("permits", "permits", "too_large", 1, lambda i: (t_perm, deep10k))
        C["perm-int-5000-digits"] = ("permits", "permits", "bad_number", 1, lambda i: (
            t_perm, f'{{"id":{D5000},"op":"permit_close","user":"{user}"}}'.encode()))
        C["perm-nan"] = ("permits", "permits", "bad_number", 1, lambda i: (
            t_perm, f'{{"id":"ZZ-{i}","op":"permit_gas_test","user":"{user}","value":NaN}}'.encode()))
        C["perm-20kB"] = ("permits", "permits", "too_large", 0.07, lambda i: (t_perm, big_perm))
        C["perm-not-json"] = ("permits", "permits", "not_json", 1, lambda i: (t_perm, b"close HW-1"))
        C["perm-empty"] = ("permits", "permits", "not_json", 1, lambda i: (t_perm, b""))
        C["perm-random-bytes"] = ("permits", "permits", "not_json", 1, lambda i: (t_perm, rand()))
        self.classes = C
        self.names = list(C)

    def _random(self) -> bytes:
        # leading 0xff: never UTF-8, so never JSON (a bare random digit would be); the rest is random
        return b"\xff" + self.rng.integers(0, 256, int(self.rng.integers(8, 512)), dtype=np.uint8).tobytes()

    def schedule(self, count: int) -> np.ndarray:
        w = np.array([self.classes[n][3] for n in self.names], dtype=np.float64)
        return self.rng.choice(len(self.names), size=count, p=w / w.sum())


def engine_frames(seed: int) -> dict[str, tuple[str, callable]]:
    """Raw bad bus frames for the engine's ingest socket: name -> (expected reason, make(i) -> frames)."""
    rng = np.random.default_rng(seed + 1)

    def head(i: int, **kw) -> dict:
        t = time.time()
        return {"v": 1, "source": "gas", "kind": "gas_values", "event_ts_s": t, "ingest_ts_s": t, "seq": i,
                "arrays": [], "meta": {}, **kw}

    def js(d) -> bytes:
        return json.dumps(d, separators=(",", ":")).encode()

    def deep_meta(i):
        h = js(head(i, meta={"x": 0}))
        return [b"gas.values", h.replace(b'"x":0', b'"x":' + _deep(10000))]

    def seq5000(i):
        return [b"gas.values", js(head(i)).replace(f'"seq":{i}'.encode(), b'"seq":' + _digits(5000).encode())]

    def shape(i):
        return [b"uwb.positions", js(head(i, source="uwb", kind="positions",
                                          arrays=[{"name": "xyz_m", "dtype": "<f8", "shape": [2**62, 4]}])),
                bytes(64)]

    return {
        "frame-gas-values-no-arrays": ("bad_frame", lambda i: [b"gas.values", js(head(i))]),
        "frame-meta-10000-deep": ("bad_frame", deep_meta),
        "frame-seq-5000-digits": ("bad_frame", seq5000),
        "frame-shape-2^62x4": ("bad_frame", shape),
        "frame-random-bytes": ("bad_frame", lambda i: [rng.integers(0, 256, 200, dtype=np.uint8).tobytes()]),
        "frame-random-header": ("bad_frame", lambda i: [b"gas.values", b"\xff" + rng.integers(
            0, 256, 200, dtype=np.uint8).tobytes()]),
        "frame-header-100kB": ("bad_frame", lambda i: [b"gas.values", js(head(i, meta={"pad": "x" * 100_000}))]),
        "frame-kind-tick": ("not_allowed", lambda i: [b"clock.tick", js(head(i, source="engine", kind="tick"))]),
    }


def _family(source: str, topic: str) -> str:
    if source == "engine":
        return "engine-frames"
    for fam in ("uwb/ranges", "wearable/events", "permits"):
        if f"/{fam}" in topic:
            return fam
    for fam in ("vibration", "camera"):
        if f"/{fam}/" in topic:
            return fam
    return "other"


def _children() -> dict[int, str]:
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    kids = {}
    for line in out.stdout.splitlines():
        pid, _, args = line.strip().partition(" ")
        if pid.isdigit() and not args.startswith("ps "):
            kids[int(pid)] = args
    return kids


def _dead_letter_count(path: Path) -> int:
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return -1


def _log_time(line: str) -> float:
    """Epoch seconds of a log line ``YYYY-MM-DD HH:MM:SS,mmm ...`` (local time); +inf without one."""
    from datetime import datetime

    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return float("inf")


def _site(tmp: Path):
    site = effective_demo_site(load_site(DEMO_SITE), console_port=5006)
    site = demo_signing(site, tmp)
    return write_bench_site(site, tmp)


def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench malformed")
    ap.add_argument("--count", type=int, default=100_000, help="bad MQTT payloads (default 100,000)")
    ap.add_argument("--frames", type=int, default=400, help="raw bad frames to the engine's ingest socket")
    ap.add_argument("--seconds", type=float, default=180.0, help="the burst stops after this long at the latest")
    ap.add_argument("--quiet", type=float, default=10.0, help="seconds of normal load measured before the burst")
    ap.add_argument("--drain", type=float, default=60.0, help="seconds at most to wait for the last dead letters")
    ap.add_argument("--scenario", default="demo", help="simulator scenario (default: demo, as `watchfloor demo`)")
    ap.add_argument("--seed", type=int, default=10)
    ap.add_argument("--keep", action="store_true", help="keep the run folder (printed) instead of deleting it")
    a = ap.parse_args(args)
    t_start = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="wf-bench-malformed-"))
    site, site_path = _site(tmp)
    out = tmp / "run"
    rec_path = out / "recording.sqlite"
    payloads = Payloads(site, a.seed)
    plan = payloads.schedule(a.count)
    frames_by_kind = engine_frames(a.seed)
    frame_names = list(frames_by_kind)
    sf, py = str(site_path), [sys.executable, "-m", "console.cli"]
    sent = Counter()  # class -> acknowledged by the broker (or sent, for engine frames)
    infos: list[tuple[int, mqtt.MQTTMessageInfo]] = []
    not_queued = 0
    crashed: dict[str, str] = {}
    print(f"malformed: run folder {tmp}", flush=True)
    with Supervisor(tmp / "logs") as sup:
        broker = sup.start("mosquitto", start_broker_argv(site, tmp), stage=9)
        wait_port("127.0.0.1", site.mqtt.port, 10, broker.proc)
        engine = sup.start("engine", py + ["engine", "--site", sf, "--out", str(out)], stage=3)
        wait_port("127.0.0.1", _port(site.bus.command), 30, engine.proc)
        sim = sup.start("simulator", py + ["simulate", "--site", sf, "--scenario", a.scenario, "--seed", "1"],
                        stage=0)
        for name in ADAPTERS:
            sup.start(f"ingest-{name}", py + ["ingest", name, "--site", sf], stage=1)
        wait_port("127.0.0.1", _port(site.opcua.endpoint), 60, sim.proc)
        # the MQTT adapters are connected once the broker has seen their client ids
        want = {f"watchfloor-{n}-{site.id}" for n in ("uwb", "vibration", "camera", "permits")}
        deadline = time.time() + 60
        while time.time() < deadline and not all(w in broker.log_path.read_text(errors="replace") for w in want):
            time.sleep(0.2)
        time.sleep(3.0)  # subscriptions, numba kernels from cache, first slices
        pids_before = {c.name: c.proc.pid for c in sup.children}
        kids_before = _children()
        time.sleep(a.quiet)

        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-malformed")
        gw.max_inflight_messages_set(1000)
        gw.max_queued_messages_set(0)
        acks = [0]

        def on_publish(client, userdata, mid, reason_code, properties) -> None:
            acks[0] += 1

        gw.on_publish = on_publish
        gw.connect("127.0.0.1", site.mqtt.port)
        gw.loop_start()
        ctx = zmq.Context()
        push = bus.push_socket(ctx, site.bus.ingest)
        time.sleep(0.5)
        t_burst0 = time.time()
        t_limit = t_burst0 + a.seconds
        n_frames_due = 0
        frames_sent = Counter()
        frames_failed = 0
        for i, k in enumerate(plan):
            if time.time() > t_limit:
                break
            while len(infos) - acks[0] > MAX_UNACKED and time.time() < t_limit:
                time.sleep(0.0005)
            name = payloads.names[k]
            topic, body = payloads.classes[name][4](i)
            info = gw.publish(topic, body, qos=1)
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                infos.append((k, info))
            else:
                not_queued += 1
            # the raw frames, spread evenly over the burst
            while a.frames and n_frames_due < a.frames and n_frames_due * a.count <= i * a.frames:
                fname = frame_names[n_frames_due % len(frame_names)]
                fr = frames_by_kind[fname][1](n_frames_due)
                if push.poll(1000, zmq.POLLOUT):
                    push.send_multipart(fr)
                    frames_sent[fname] += 1
                else:
                    frames_failed += 1
                n_frames_due += 1
            if i % 2000 == 0 and sup.dead():
                for c in sup.dead():
                    crashed.setdefault(c.name, f"exited with {c.proc.returncode} during the burst")
        t_queued = time.time()
        for _, info in infos:
            left = t_limit + 30 - time.time()
            if left <= 0:
                break
            try:
                info.wait_for_publish(left)
            except (RuntimeError, ValueError):
                pass
        t_acked = time.time()
        for k, info in infos:
            if info.is_published():
                sent[payloads.names[k]] += 1
        n_sent = sum(sent.values())
        expected_total = n_sent + sum(frames_sent.values())
        # wait for the last dead letters: the expected number, or no change for 5 s, or --drain
        last_n, last_change = -2, time.time()
        deadline = time.time() + a.drain
        while time.time() < deadline:
            n = _dead_letter_count(rec_path)
            if n >= expected_total:
                break
            if n != last_n:
                last_n, last_change = n, time.time()
            elif time.time() - last_change > 5.0:
                break
            time.sleep(0.5)
        time.sleep(1.0)
        t_drained = time.time()
        gw.loop_stop()
        gw.disconnect()
        push.close(linger=0)
        ctx.term()
        for c in sup.children:
            if c.proc.poll() is not None:
                crashed.setdefault(c.name, f"exited with {c.proc.returncode}")
        kids_after = _children()
        for name, pid in pids_before.items():
            if pid not in kids_after and name not in crashed:
                crashed[name] = f"pid {pid} gone"
        if set(kids_after) != set(kids_before):
            print(f"malformed: child processes changed: before {sorted(kids_before)}, after {sorted(kids_after)}")
        all_pids = [c.proc.pid for c in sup.children]
    codes = {c.name: c.proc.returncode for c in sup.children}
    orphans = [pid for pid in all_pids if Path(f"/proc/{pid}").exists()]
    strays = subprocess.run(["pgrep", "-f", str(tmp)], capture_output=True, text=True).stdout.split()
    t_end = time.time()

    # -- what the recording holds -------------------------------------------------------------------
    rec = RecordingReader(rec_path)
    received = rec.received_times()
    dead = rec.dead_letters()
    lat_quiet, lat_burst, pos_times = [], [], []
    t_quiet0 = t_burst0 - a.quiet
    for seq, fr in rec.inputs():
        if fr[0] != b"uwb.positions":
            continue
        pos_times.append(received[seq])
        m = bus.decode(fr)
        ok = m.arrays["valid"].astype(bool)
        lat = received[seq] - m.arrays["ts_s"][ok]
        if t_quiet0 <= received[seq] < t_burst0:
            lat_quiet.append(lat)
        elif received[seq] >= t_burst0:
            lat_burst.append((received[seq], lat))
    rec.close()
    base = [d for d in dead if received[d[0]] < t_burst0]
    burst = [d for d in dead if received[d[0]] >= t_burst0]
    t_last_dl = max((received[d[0]] for d in burst), default=t_drained)
    lat_burst = [lt for t, lt in lat_burst if t <= t_last_dl]

    def max_gap(t0: float, t1: float) -> float:
        """Longest time without a positions batch reaching the engine in [t0, t1] (the UWB slice is 0.25 s)."""
        ts = [t0] + [t for t in pos_times if t0 <= t <= t1] + [t1]
        return float(np.max(np.diff(ts)))

    expected = Counter()
    for name, n in sent.items():
        fam, src, reason = payloads.classes[name][:3]
        expected[(fam, src, reason)] += n
    for name, n in frames_sent.items():
        expected[("engine-frames", "engine", frames_by_kind[name][0])] += n
    got = Counter((_family(d[1], d[3]), d[1], d[2]) for d in burst)  # (seq, source, reason, topic, ...)
    print(f"malformed: {len(base)} dead letters before the burst (not counted); run took {t_end - t_start:.0f} s "
          f"(burst queued in {t_queued - t_burst0:.1f} s, acknowledged in {t_acked - t_burst0:.1f} s, last dead "
          f"letter at {t_last_dl - t_burst0:.1f} s)")
    print(f"malformed: {'family':16} {'source':10} {'reason':15} {'sent':>8} {'dead':>8}")
    for key in sorted(set(expected) | set(got)):
        flag = "" if expected[key] == got[key] else "   <-- differs"
        print(f"malformed: {key[0]:16} {key[1]:10} {key[2]:15} {expected[key]:8d} {got[key]:8d}{flag}")
    if not_queued or frames_failed or n_sent < len(infos):
        print(f"malformed: not queued by paho {not_queued}, not acknowledged {len(infos) - n_sent}, "
              f"frames the engine socket did not take {frames_failed}")
    for log in sorted((tmp / "logs").glob("*.log")):
        text = log.read_text(errors="replace")
        errs = sum(1 for ln in text.splitlines() if " ERROR " in ln and _log_time(ln) < t_drained)
        m = re.search(r"(\w+) adapter stopped: (\d+) items, rejects (\{.*\})", text)
        extra = ""
        if m:  # the adapter's own count against the dead letters of its source (before and during the burst)
            own = sum(ast.literal_eval(m.group(3)).values())
            rec_n = sum(1 for d in dead if d[1] == m.group(1))
            extra = f"; the adapter counted {own} rejects, dead letters of {m.group(1)}: {rec_n}" + (
                "" if own == rec_n else "   <-- differs")
        drops = text.count("dropped") if log.stem == "mosquitto" else 0
        if errs or extra or drops:
            print(f"malformed: log {log.name}: {errs} ERROR lines before the stop{extra}" + (f"; {drops} 'dropped'" if drops else ""))
    try:
        from ingest.engine.recording import verify_recording

        v = verify_recording(rec_path, fingerprint=site.signing.fingerprint, site_id=site.id)
        print(f"malformed: recording {'verifies' if v.ok else 'does NOT verify'}: {v.reason or 'intact'}")
    except Exception as e:  # noqa: BLE001 - a note, not a figure
        print(f"malformed: recording not verified ({e.__class__.__name__}: {e})")
    if codes and any(v not in (0, None) for v in codes.values()):
        print(f"malformed: exit codes at stop: {codes}")
    if orphans or strays:
        print(f"malformed: processes left running: {orphans or strays}")
    for name, why in crashed.items():
        print(f"malformed: crash: {name} {why} (log {tmp / 'logs' / (name + '.log')})")

    def pct(src: str | None) -> float:
        e = sum(v for k, v in expected.items() if src is None or k[1] == src)
        g = sum(v for k, v in got.items() if src is None or k[1] == src)
        return 100.0 * g / e if e else float("nan")

    q = np.concatenate(lat_quiet) * 1000 if lat_quiet else np.array([np.nan])
    b = np.concatenate(lat_burst) * 1000 if lat_burst else np.array([np.nan])
    burst_s = max(t_last_dl - t_burst0, 1e-9)
    report("malformed-sent", n_sent, "payloads")
    report("malformed-sent-frames", sum(frames_sent.values()), "frames")
    report("malformed-crashes", len(crashed), "processes")
    report("malformed-counted-pct", pct(None), "%")
    for src in SOURCES:
        report(f"malformed-counted-pct-{src}", pct(src), "%")
    report("malformed-lost-rejects", sum(expected.values()) - sum(got.values()), "payloads")
    report("malformed-internal-errors", sum(1 for d in burst if d[2] == "internal_error"), "payloads")
    report("malformed-position-latency-p50-quiet", float(np.nanpercentile(q, 50)), "ms")
    report("malformed-position-latency-p99-quiet", float(np.nanpercentile(q, 99)), "ms")
    report("malformed-position-latency-p50-burst", float(np.nanpercentile(b, 50)), "ms")
    report("malformed-position-latency-p99-burst", float(np.nanpercentile(b, 99)), "ms")
    report("malformed-position-max-gap-quiet", max_gap(t_quiet0, t_burst0), "s")
    report("malformed-position-max-gap-burst", max_gap(t_burst0, t_last_dl), "s")
    report("malformed-latency-burst-vs-quiet", float(np.nanpercentile(b, 99) / np.nanpercentile(q, 99)), "x")
    report("malformed-rejects-per-s", len(burst) / burst_s, "payloads/s")
    if not a.keep and not crashed and pct(None) == 100.0:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
