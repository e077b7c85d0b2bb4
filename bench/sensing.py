"""``watchfloor bench sensing``: sustained sensing throughput on this machine, each source through its real
protocol into the engine, with the p99 latency from the source's timestamp to the engine taking the batch.

- gas: 500 detectors at 1 Hz served by the simulator's asyncua OPC UA server, subscribed by the gas adapter
  (its own process), into the engine (its own process);
- vibration: 200 points each sending a 1 s waveform at 25.6 kHz (float32, base64 JSON) every second over a real
  mosquitto broker, through the vibration adapter (RMS velocity and features per waveform) into the engine;
- camera: 4 cameras sending 1920 x 1080 JPEG frames over MQTT at ``--camera-fps`` each, through the camera
  adapter running a YOLO-format ONNX model (the synthetic test model, 640 x 640 input, 8400 anchors) into the
  engine; then the stage timings of ``watchfloor bench camera``.
"""

from __future__ import annotations

import argparse
import base64
import importlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bench import report, write_bench_site
from config import DEMO_SITE, load_site
from console.cli.launch import effective_demo_site, start_broker_argv, write_site
from console.cli.supervisor import Supervisor, wait_port
from ingest import bus
from ingest.engine import RecordingReader

__all__ = ["run"]


def _site(tmp: Path, n_gas: int, n_vib: int):
    base = effective_demo_site(load_site(DEMO_SITE), console_port=5006)
    rng = np.random.default_rng(2)
    x0, y0, x1, y1 = base.floor_plan.extent_m
    t = base.gas_detectors[0]
    gas = [t.model_copy(update={"id": f"G{i:03d}", "name": f"G{i:03d}", "node_id": f"ns=2;s=G{i:03d}.PV",
                                "position_m": (float(rng.uniform(x0 + 5, x1 - 5)), float(rng.uniform(y0 + 5, y1 - 5)),
                                               1.0)}) for i in range(n_gas)]
    v = base.vibration_points[0]
    vib = [v.model_copy(update={"id": f"V{i:03d}", "machine": f"pump {i}", "expected_interval_s": 1.0})
           for i in range(n_vib)]
    site = base.model_copy(update={"gas_detectors": gas, "vibration_points": vib,
                                   "uwb": base.uwb.model_copy(update={"publish_locations": False})})
    return write_bench_site(site, tmp)


def _latency(rec_path: Path, kind: str) -> tuple[int, float, np.ndarray]:
    rec = RecordingReader(rec_path)
    received = rec.received_times()
    n, lat, t0, t1 = 0, [], None, None
    for seq, frames in rec.inputs():
        m = bus.decode(frames)
        if m.kind != kind:
            continue
        n += len(m.arrays["ts_s"])
        lat.append(received[seq] - m.arrays["ts_s"])
        t0 = received[seq] if t0 is None else t0
        t1 = received[seq]
    rec.close()
    span = (t1 - t0) if t0 is not None and t1 > t0 else float("nan")
    return n, span, np.concatenate(lat) * 1000 if lat else np.array([np.nan])


def _gas(tmp: Path, site, site_path: Path, seconds: float) -> None:
    py = [sys.executable, "-m", "console.cli"]
    with Supervisor(tmp / "logs-gas") as sup:
        broker = sup.start("mosquitto", start_broker_argv(site, tmp), stage=9)
        wait_port("127.0.0.1", site.mqtt.port, 10, broker.proc)
        engine = sup.start("engine", py + ["engine", "--site", str(site_path), "--out", str(tmp / "gas")], stage=3)
        wait_port("127.0.0.1", int(site.bus.command.rsplit(":", 1)[1]), 30, engine.proc)
        sim = sup.start("simulator", py + ["simulate", "--site", str(site_path), "--scenario", "normal"], stage=0)
        wait_port("127.0.0.1", int(site.opcua.endpoint.rsplit(":", 1)[1].split("/")[0]), 60, sim.proc)
        sup.start("ingest-gas", py + ["ingest", "gas", "--site", str(site_path)], stage=1)
        time.sleep(seconds + 5.0)
    n, span, lat = _latency(tmp / "gas" / "recording.sqlite", "gas_values")
    report("sensing-gas-detectors", len(site.gas_detectors), "detectors at 1 Hz")
    report("sensing-gas-values-per-s", n / span, "values/s")
    report("sensing-gas-latency-p50", float(np.nanpercentile(lat, 50)), "ms")
    report("sensing-gas-latency-p99", float(np.nanpercentile(lat, 99)), "ms")


def _vibration(tmp: Path, site, site_path: Path, seconds: float, fs: float) -> None:
    py = [sys.executable, "-m", "console.cli"]
    n = int(fs)
    t = np.arange(n) / fs
    rng = np.random.default_rng(9)
    templates = []
    for p in site.vibration_points:
        a = (0.002 * 2 * np.pi * 24.75 * np.sqrt(2) * np.cos(2 * np.pi * 24.75 * t) + rng.normal(0, 0.05, n))
        b64 = base64.b64encode(a.astype("<f4").tobytes()).decode()
        head = json.dumps({"point": p.id, "fs_hz": fs, "unit": "m/s2", "n": n, "samples": b64})
        templates.append(head[:-1] + ', "ts": %.6f}')
    topic = f"{site.mqtt.topic_prefix}/vibration/"
    sent = 0
    with Supervisor(tmp / "logs-vib") as sup:
        broker = sup.start("mosquitto", start_broker_argv(site, tmp), stage=9)
        wait_port("127.0.0.1", site.mqtt.port, 10, broker.proc)
        engine = sup.start("engine", py + ["engine", "--site", str(site_path), "--out", str(tmp / "vib")], stage=3)
        wait_port("127.0.0.1", int(site.bus.command.rsplit(":", 1)[1]), 30, engine.proc)
        sup.start("ingest-vibration", py + ["ingest", "vibration", "--site", str(site_path)], stage=1)
        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-vib")
        gw.max_inflight_messages_set(1000)
        gw.connect("127.0.0.1", site.mqtt.port)
        gw.loop_start()
        time.sleep(2.0)
        t_next = time.time()
        t_end = t_next + seconds
        last = None
        while t_next < t_end:
            for p, tmpl in zip(site.vibration_points, templates):
                last = gw.publish(topic + p.id, tmpl % t_next, qos=1)
                sent += 1
            t_next += 1.0
            time.sleep(max(0.0, t_next - time.time()))
        if last is not None:
            last.wait_for_publish(60)
        time.sleep(3.0)
        gw.loop_stop()
        gw.disconnect()
    got, span, lat = _latency(tmp / "vib" / "recording.sqlite", "vibration_features")
    report("sensing-vibration-points", len(site.vibration_points), f"points, 1 s at {fs / 1000:.1f} kHz each second")
    report("sensing-vibration-waveforms-per-s", got / span, "waveforms/s")
    report("sensing-vibration-samples-per-s", got / span * n, "samples/s")
    report("sensing-vibration-loss", sent - got, "waveforms")
    report("sensing-vibration-latency-p50", float(np.nanpercentile(lat, 50)), "ms")
    report("sensing-vibration-latency-p99", float(np.nanpercentile(lat, 99)), "ms")


def _camera(tmp: Path, site, seconds: float, fps: float) -> None:
    import io

    from PIL import Image

    from ingest.camera_infer import encode_frame, synthetic_yolo_model

    rng = np.random.default_rng(5)
    anchors = np.column_stack([rng.uniform(40, 600, (8400, 2)), rng.uniform(15, 90, (8400, 2)),
                               (rng.uniform(0, 1, (8400, 1)) ** 8) * 0.9])
    model = tmp / "model.onnx"
    model.write_bytes(synthetic_yolo_model(anchors))
    cam_site = site.model_copy(update={"camera_inference": {"model_path": str(model), "class_names": ["person"]}})
    cam_site = type(site).model_validate(cam_site.model_dump(by_alias=True))
    path = tmp / "site-camera.yaml"
    write_site(cam_site, path)
    data = yaml.safe_load(path.read_text())
    data["floor_plan"].pop("image", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (1080, 1920, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    jpeg = buf.getvalue()
    py = [sys.executable, "-m", "console.cli"]
    sent = 0
    with Supervisor(tmp / "logs-cam") as sup:
        broker = sup.start("mosquitto", start_broker_argv(cam_site, tmp), stage=9)
        wait_port("127.0.0.1", cam_site.mqtt.port, 10, broker.proc)
        engine = sup.start("engine", py + ["engine", "--site", str(path), "--out", str(tmp / "cam")], stage=3)
        wait_port("127.0.0.1", int(cam_site.bus.command.rsplit(":", 1)[1]), 30, engine.proc)
        sup.start("ingest-camera", py + ["ingest", "camera", "--site", str(path)], stage=1)
        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-cam")
        gw.connect("127.0.0.1", cam_site.mqtt.port)
        gw.loop_start()
        time.sleep(3.0)
        t_next, t_end = time.time(), time.time() + seconds
        while t_next < t_end:
            for c in cam_site.cameras:
                gw.publish(f"{cam_site.mqtt.topic_prefix}/camera/{c.id}/frames", encode_frame(t_next, jpeg, sent), qos=0)
                sent += 1
            t_next += 1.0 / fps
            time.sleep(max(0.0, t_next - time.time()))
        time.sleep(3.0)
        gw.loop_stop()
        gw.disconnect()
    rec = RecordingReader(tmp / "cam" / "recording.sqlite")
    received = rec.received_times()
    frames, lat = set(), []
    for seq, fr in rec.inputs():
        m = bus.decode(fr)
        if m.kind == "camera_detections":
            lat.append(received[seq] - np.unique(m.arrays["ts_s"]))
            frames.update((int(c), float(t)) for c, t in zip(m.arrays["camera_index"], m.arrays["ts_s"]))
    rec.close()
    lat_ms = np.concatenate(lat) * 1000 if lat else np.array([np.nan])
    report("sensing-camera-frames-offered-per-s", len(cam_site.cameras) * fps, "frames/s (4 cameras, 1080p JPEG)")
    report("sensing-camera-frames-with-detections-per-s", len(frames) / seconds, "frames/s")
    report("sensing-camera-latency-p50", float(np.nanpercentile(lat_ms, 50)), "ms")
    report("sensing-camera-latency-p99", float(np.nanpercentile(lat_ms, 99)), "ms")


def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench sensing")
    ap.add_argument("--gas", type=int, default=500)
    ap.add_argument("--vibration", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fs", type=float, default=25600.0)
    ap.add_argument("--camera-fps", type=float, default=2.0, help="frames per second per camera")
    ap.add_argument("--skip", action="append", default=[], choices=["gas", "vibration", "camera"])
    a = ap.parse_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="wf-bench-sensing-"))
    site, site_path = _site(tmp, a.gas, a.vibration)
    if "gas" not in a.skip:
        _gas(tmp, site, site_path, a.seconds)
    if "vibration" not in a.skip:
        _vibration(tmp, site, site_path, a.seconds, a.fs)
    if "camera" not in a.skip:
        _camera(tmp, site, a.seconds, a.camera_fps)
        try:
            camera = importlib.import_module("bench.camera")
        except ImportError:
            print("(camera benchmark not installed)")
        else:
            camera.run([])
