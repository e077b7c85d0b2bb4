"""Test support: play simulator scenarios through the whole demo pipeline and read back what the engine did."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
import zmq
from paho.mqtt.enums import CallbackAPIVersion

from ingest import bus

__all__ = ["BusWatch", "ScenarioListener", "play", "permit_rows", "raised"]


class ScenarioListener:
    """Reads the simulator's retained run description (start epoch, milestones) from the demo's broker."""

    def __init__(self, host: str, port: int, prefix: str) -> None:
        self.doc: dict | None = None
        self.got = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-scenario-listener")
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/sim/scenario", qos=1)
        self.c.on_message = self._on
        self.c.connect(host, port)
        self.c.loop_start()

    def _on(self, c, u, m) -> None:
        self.doc = json.loads(m.payload)
        self.got.set()

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class BusWatch:
    """Keeps the metas of the engine's messages on ``topics`` (its PUB socket, e.g. ``muster.status``) while a
    demo runs, with their receive order; a thread of its own until :meth:`stop`."""

    def __init__(self, endpoint: str, topics: list[str]) -> None:
        self.metas: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(endpoint, topics), daemon=True)
        self._thread.start()

    def _run(self, endpoint: str, topics: list[str]) -> None:
        ctx = zmq.Context()
        sub = bus.sub_socket(ctx, endpoint, topics)
        try:
            while not self._stop.is_set():
                if sub.poll(100):
                    for frames in bus.drain(sub):
                        self.metas.append(bus.decode(frames).meta)
        finally:
            sub.close(linger=0)
            ctx.term()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def play(out: Path, site_file: Path, scenario: str, timing: dict[str, float], run_s: float,
         watch: list[str] | None = None) -> dict:
    """Run ``watchfloor demo --headless`` for ``run_s`` with these scenarios and timings; return the journal
    (times in simulation seconds), the simulator's milestones, the effective site and the simulator's log, and
    with ``watch`` (engine bus topics) the metas the engine published on them (``"published"``)."""
    args = [sys.executable, "-m", "console.cli", "demo", "--headless", "--for", f"{run_s:.0f}s", "--out", str(out),
            "--scenario", scenario, "--site", str(site_file)]
    for k, v in timing.items():
        args += ["--timing", f"{k}={v}"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    site = None
    while not isinstance(site, dict) and time.monotonic() < deadline:  # the demo may be writing it right now
        time.sleep(0.1)
        if (out / "site.yaml").exists():
            site = yaml.safe_load((out / "site.yaml").read_text())
    assert isinstance(site, dict), f"the demo wrote no site file in {out}"
    watcher = BusWatch(site["bus"]["publish"], watch) if watch else None
    listener = None
    deadline = time.monotonic() + 30
    while listener is None and time.monotonic() < deadline:  # the demo starts its broker first
        try:
            listener = ScenarioListener("127.0.0.1", site["mqtt"]["port"], site["mqtt"]["topic_prefix"])
        except OSError:
            time.sleep(0.1)
    stdout, _ = proc.communicate(timeout=run_s + 120)
    if watcher is not None:
        watcher.stop()
    assert listener is not None and listener.got.wait(5), stdout
    listener.stop()
    assert proc.returncode == 0, stdout
    db = sqlite3.connect(out / "journal.sqlite")
    rows = db.execute("SELECT event, alarm_id, state, actor, engine_ts_s, detail FROM journal ORDER BY row").fetchall()
    db.close()
    t0 = listener.doc["start_epoch"]
    journal = [{"event": e, "alarm_id": a, "state": s, "actor": who, "t": ts - t0, "detail": json.loads(d)}
               for e, a, s, who, ts, d in rows]
    return {"out": out, "journal": journal, "ms": listener.doc["milestones"], "site": site,
            "sim_log": (out / "logs" / "simulator.log").read_text(), "start_epoch": t0, "run_s": run_s,
            "scenario": listener.doc, "published": watcher.metas if watcher else []}


def permit_rows(journal: list[dict], permit: str) -> list[dict]:
    return [r for r in journal if r["alarm_id"] == f"permit:{permit}"]


def raised(journal: list[dict], alarm_id: str) -> list[dict]:
    return [r for r in journal if r["event"] == "activate" and r["alarm_id"] == alarm_id]
