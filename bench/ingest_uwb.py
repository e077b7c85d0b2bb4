"""``watchfloor bench ingest-uwb``: sustained UWB range messages from a real mosquitto broker through the UWB
adapter (its own process) into the engine (its own process), on this machine.

Offered load: ``--tags`` tags (default 2,000) at ``--rate-hz`` (10) for ``--seconds`` (20), 50 tags per MQTT
message, QoS 1, every tag ranged by the anchors within reach with 0.1 m noise. Measured from the engine's
recording: fixes that reached the engine per second, loss (offered - fixed - rejected), and the latency from
the gateway timestamp to the engine taking the batch (p50 / p99).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench import report, write_bench_site
from config import DEMO_SITE, load_site
from console.cli.launch import effective_demo_site, start_broker_argv
from console.cli.supervisor import Supervisor, wait_port
from ingest import bus
from ingest.engine import RecordingReader

__all__ = ["run"]


def _site_with_tags(n: int, tmp: Path):
    base = effective_demo_site(load_site(DEMO_SITE), console_port=0 or 5006)
    template = base.people[0]
    people = [template.model_copy(update={"id": f"B{i:05d}", "tag": f"U{i:05d}", "certificates": []})
              for i in range(n)]
    site = base.model_copy(update={"people": people, "zones": [z for z in base.zones if z.kind != "restricted"],
                                   "uwb": base.uwb.model_copy(update={"publish_locations": False,
                                                                      "slice_s": 0.1})})
    return write_bench_site(site, tmp)


def _templates(site, rng) -> list[str]:
    """One JSON item per tag with a %s hole for ts (so the generator spends its time sending, not encoding)."""
    anchors = np.array([a.position_m for a in site.anchors])
    x0, y0, x1, y1 = site.floor_plan.extent_m
    out = []
    for p in site.people:
        xyz = np.array([rng.uniform(x0 + 20, x1 - 20), rng.uniform(y0 + 20, y1 - 20), site.uwb.tag_height_m])
        d = np.linalg.norm(anchors - xyz, axis=1)
        d = d + rng.normal(0, site.uwb.range_sigma_m, len(d))
        ranges = ",".join(f'"{a.id}":{r:.3f}' for a, r in zip(site.anchors, d) if r < site.uwb.max_range_m)
        out.append('{"tag":"' + p.tag + '","ts":%.3f,"ranges":{' + ranges + "}}")
    return out


def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench ingest-uwb")
    ap.add_argument("--tags", type=int, default=2000)
    ap.add_argument("--rate-hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--per-message", type=int, default=50)
    a = ap.parse_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="wf-bench-uwb-"))
    site, site_path = _site_with_tags(a.tags, tmp)
    templates = _templates(site, np.random.default_rng(7))
    groups = [templates[i : i + a.per_message] for i in range(0, len(templates), a.per_message)]
    topic = f"{site.mqtt.topic_prefix}/uwb/ranges"
    offered = 0
    with Supervisor(tmp / "logs") as sup:
        broker = sup.start("mosquitto", start_broker_argv(site, tmp), stage=9)
        wait_port("127.0.0.1", site.mqtt.port, 10, broker.proc)
        engine = sup.start(
            "engine", [sys.executable, "-m", "console.cli", "engine", "--site", str(site_path), "--out",
                       str(tmp / "run")], stage=3)
        wait_port("127.0.0.1", int(site.bus.command.rsplit(":", 1)[1]), 30, engine.proc)
        sup.start("ingest-uwb", [sys.executable, "-m", "console.cli", "ingest", "uwb", "--site", str(site_path)],
                  stage=1)
        gw = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-gateway")
        gw.max_inflight_messages_set(1000)
        gw.connect("127.0.0.1", site.mqtt.port)
        gw.loop_start()
        time.sleep(3.0)  # the adapter connects and subscribes (numba kernels load from cache)
        period = 1.0 / a.rate_hz
        t_next = time.time()
        t_end = t_next + a.seconds
        last = None
        while t_next < t_end:
            ts = t_next
            for g in groups:
                last = gw.publish(topic, "[" + ",".join(t % ts for t in g) + "]", qos=1)
            offered += len(templates)
            t_next += period
            delay = t_next - time.time()
            if delay > 0:
                time.sleep(delay)
        generator_s = time.time() - (t_end - a.seconds)
        if last is not None:
            last.wait_for_publish(30)
        time.sleep(3.0)  # let the adapter and engine finish the last slices
        gw.loop_stop()
        gw.disconnect()
    rec = RecordingReader(tmp / "run" / "recording.sqlite")
    received = rec.received_times()
    fixed, rejected, lat = 0, 0, []
    t_first, t_last = None, None
    for seq, frames in rec.inputs():
        m = bus.decode(frames)
        if m.kind == "positions":
            fixed += len(m.arrays["ts_s"])
            lat.append(received[seq] - m.arrays["ts_s"])
            t_first = received[seq] if t_first is None else t_first
            t_last = received[seq]
        elif m.kind == "rejected" and m.source == "uwb":
            rejected += len(m.meta["rejects"])
    rec.close()
    lat_ms = np.concatenate(lat) * 1000 if lat else np.array([np.nan])
    span = (t_last - t_first) if t_first is not None and t_last > t_first else float("nan")
    report("ingest-uwb-offered-ranges-msgs-per-s", offered / generator_s, "tag-ranges/s")
    report("ingest-uwb-fixes-per-s", fixed / span, "fixes/s")
    report("ingest-uwb-target", a.tags * a.rate_hz, "tag-ranges/s")
    report("ingest-uwb-loss", offered - fixed - rejected, "messages")
    report("ingest-uwb-rejected", rejected, "messages")
    report("ingest-uwb-latency-p50", float(np.percentile(lat_ms, 50)), "ms")
    report("ingest-uwb-latency-p99", float(np.percentile(lat_ms, 99)), "ms")
