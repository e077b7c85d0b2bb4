"""``watchfloor demo`` and ``watchfloor run``: every process of a site under one supervisor.

The demo starts its own mosquitto broker and picks free loopback ports for the broker, the OPC UA server
and the bus (so it never collides with a broker already running on 1883); the wall stays on the console port
of the site (5006 unless ``--port``). The effective site file is written next to the recording.

The demo signs like a real site: unless the site names a key directory (``signing.key_dir``, or
``$WATCHFLOOR_KEY_DIR``), it makes one in ``OUT/keys`` (``watchfloor keys init``) and pins that key's fingerprint
in the effective site file ``OUT/site.yaml``, which the engine reads. ``watchfloor journal verify
OUT/journal.sqlite --recording OUT/recording.sqlite --site OUT/site.yaml`` then proves the run.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from datetime import datetime
from pathlib import Path

from config import DEMO_SITE, Site, load_site
from config.loader import dump_site
from ingest.signals import stop_on_signals

from .supervisor import Supervisor, free_port, stop_with_parent, wait_port

__all__ = ["run_demo", "run_site", "effective_demo_site", "demo_signing", "start_broker_argv", "parse_duration"]

ADAPTERS = ("uwb", "gas", "vibration", "camera", "permits")


def parse_duration(text: str) -> float:
    """'30s', '5m', '1h', '90' -> seconds."""
    t = text.strip().lower()
    mult = {"s": 1.0, "m": 60.0, "h": 3600.0}.get(t[-1:], None)
    value = float(t[:-1] if mult else t)
    if value <= 0:
        raise ValueError(f"duration must be positive, got {text!r}")
    return value * (mult or 1.0)


def effective_demo_site(site: Site, console_port: int) -> Site:
    """The demo site on free loopback ports (broker, OPC UA, bus), console on ``console_port``."""
    mq, ua, b1, b2, b3 = (free_port() for _ in range(5))
    return site.model_copy(update={
        "mqtt": site.mqtt.model_copy(update={"host": "127.0.0.1", "port": mq}),
        "opcua": site.opcua.model_copy(update={"endpoint": f"opc.tcp://127.0.0.1:{ua}/watchfloor/"}),
        "bus": site.bus.model_copy(update={"ingest": f"tcp://127.0.0.1:{b1}", "publish": f"tcp://127.0.0.1:{b2}",
                                           "command": f"tcp://127.0.0.1:{b3}"}),
        "console": site.console.model_copy(update={"port": console_port}),
    })


def demo_signing(site: Site, out: Path) -> Site:
    """``site`` signing with a new key in ``out/keys``, its fingerprint pinned, unless the site (or
    ``$WATCHFLOOR_KEY_DIR``) already names a key directory. ``key_dir`` is relative to ``out/site.yaml``."""
    from alarms.keys import KEY_DIR_ENV, init_key_dir

    if site.signing.key_dir or os.environ.get(KEY_DIR_ENV):
        return site
    fp = init_key_dir(out / "keys")
    return site.model_copy(update={"signing": site.signing.model_copy(update={"key_dir": "keys", "fingerprint": fp})})


def write_site(site: Site, path: Path) -> None:
    """Write ``site`` as a site file (at once: a reader never sees it half written)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("# effective site of this run (ports chosen at start)\n" + dump_site(site), encoding="utf-8")
    os.replace(tmp, path)


def start_broker_argv(site: Site, workdir: Path) -> list[str]:
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        raise SystemExit("mosquitto is not installed: run `make demo` as root, or `sudo apt-get install mosquitto`")
    conf = workdir / "mosquitto.conf"
    # as root mosquitto would switch to user "mosquitto", and a credential change clears PR_SET_PDEATHSIG:
    # keep the running user so the demo broker dies with its supervisor (it listens on loopback only)
    user = "root" if os.geteuid() == 0 else ""
    conf.write_text(f"listener {site.mqtt.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    "log_dest stdout\nmax_queued_messages 100000\n" + (f"user {user}\n" if user else ""))
    return [mosquitto, "-c", str(conf)]


def _supervisor(site: Site, out: Path) -> Supervisor:
    """The supervisor of a run: each process's output in ``out/logs/NAME.log``, bounded by the site's ``logs``."""
    return Supervisor(out / "logs", log_max_bytes=int(site.logs.max_file_mb * 1_000_000),
                      log_backups=site.logs.backups)


def _port_of(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1].split("/")[0])


def _wait_stop(stop: threading.Event, sup: Supervisor, duration_s: float | None) -> None:
    t_end = None if duration_s is None else time.monotonic() + duration_s
    while not stop.is_set():
        if t_end is not None and time.monotonic() >= t_end:
            return
        dead = sup.dead()
        if dead:
            names = ", ".join(f"{c.name} (exit {c.proc.returncode}, log {c.log_path})" for c in dead)
            print(f"watchfloor: a process stopped unexpectedly: {names}; stopping everything", flush=True)
            return
        stop.wait(0.2)


def _print_summary(out: Path) -> dict:
    path = out / "summary.json"
    if not path.exists():
        print(f"watchfloor: the engine wrote no summary (see {out / 'logs' / 'engine.log'})")
        return {}
    s = json.loads(path.read_text())
    print("summary:")
    print("  messages in per source: " + ", ".join(f"{k} {v}" for k, v in s["inputs"].items()))
    print("  items in: " + ", ".join(f"{k} {v}" for k, v in s.get("items", {}).items()))
    rej = s["rejected"]
    print(f"  rejected: {sum(rej.values())}" + (" (" + "; ".join(f"{k}: {v}" for k, v in rej.items()) + ")"
                                               if rej else ""))
    print(f"  positions computed: {s['positions']}")
    print(f"  alarms raised: {s['alarms_raised']} (active at the end: {s['alarms_active']})")
    print(f"  journal: {s['journal_rows']} rows, head {s['journal_head'][:16]}")
    print(f"  recording: {out / 'recording.sqlite'} ({s['recording_seq']} inputs)")
    return s


def run_demo(*, headless: bool, duration_s: float | None, out: Path | None, scenario: str, seed: int,
             site_path: Path = DEMO_SITE, console_port: int | None = None, timing: list[str] | None = None) -> int:
    base = load_site(site_path)
    site = effective_demo_site(base, console_port or base.console.port)
    out = out or Path("demo-out") / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    for f in ("recording.sqlite", "journal.sqlite", "keys"):
        if (out / f).exists():
            raise SystemExit(f"{out / f} exists: choose an empty --out folder")
    site = demo_signing(site, out)
    site_file = out / "site.yaml"
    write_site(site, site_file)
    stop = threading.Event()
    stop_on_signals(stop)
    stop_with_parent()  # a make (or shell) that goes takes the demo with it, cleanly
    sfile = str(site_file)
    with _supervisor(site, out) as sup:
        broker = sup.start("mosquitto", start_broker_argv(site, out), stage=9)
        wait_port("127.0.0.1", site.mqtt.port, 10, broker.proc)
        engine = sup.start_watchfloor("engine", ["engine", "--site", sfile, "--out", str(out)], stage=3)
        wait_port("127.0.0.1", _port_of(site.bus.command), 30, engine.proc)
        sim_args = ["simulate", "--site", sfile, "--scenario", scenario, "--seed", str(seed)]
        for t in timing or []:
            sim_args += ["--timing", t]
        sim = sup.start_watchfloor("simulator", sim_args, stage=0)
        for name in ADAPTERS:
            sup.start_watchfloor(f"ingest-{name}", ["ingest", name, "--site", sfile], stage=1)
        console = None
        if not headless:
            console = sup.start_watchfloor("console", ["console", "--site", sfile], stage=2)
        # "running" only once every process is up: the simulator's OPC UA server, the console's page, no exits
        wait_port("127.0.0.1", _port_of(site.opcua.endpoint), 30, sim.proc)
        if console is not None:
            wait_port("127.0.0.1", site.console.port, 60, console.proc)
        dead = sup.dead()
        if dead:
            names = ", ".join(f"{c.name} (exit {c.proc.returncode}, log {c.log_path})" for c in dead)
            print(f"watchfloor demo did not start: {names}", flush=True)
            return 1
        if console is not None:
            print(f"watchfloor demo is running: open http://127.0.0.1:{site.console.port}/wall", flush=True)
            print(f"  workstation (log in as op1 or sup1, password demo): "
                  f"http://127.0.0.1:{site.console.port}/workstation", flush=True)
            print("  (Ctrl-C stops everything)", flush=True)
        if site.signing.fingerprint:
            print(f"journal and recording signed with {site.signing.fingerprint} (key folder "
                  f"{out / site.signing.key_dir})", flush=True)
        print(f"demo plant '{site.id}', scenario {scenario}, seed {seed}; recording to {out}", flush=True)
        _wait_stop(stop, sup, duration_s)
        print("stopping ...", flush=True)
    _print_summary(out)
    print(f"  check it: watchfloor journal verify {out / 'journal.sqlite'} --recording {out / 'recording.sqlite'} "
          f"--site {site_file}")
    return 0


def run_site(site_path: Path, out: Path | None) -> int:
    """Production: engine, adapters and console of a real site (broker and OPC UA servers are the plant's)."""
    site = load_site(site_path)
    out = out or Path("recordings") / datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    stop_on_signals(stop)
    stop_with_parent()  # a make (or shell) that goes takes the demo with it, cleanly
    sfile = str(site_path)
    with _supervisor(site, out) as sup:
        engine = sup.start_watchfloor("engine", ["engine", "--site", sfile, "--out", str(out)], stage=3)
        wait_port(site.bus.command.split("//")[1].rsplit(":", 1)[0], _port_of(site.bus.command), 30, engine.proc)
        for name in ADAPTERS:
            sup.start_watchfloor(f"ingest-{name}", ["ingest", name, "--site", sfile], stage=1)
        sup.start_watchfloor("console", ["console", "--site", sfile], stage=2)
        print(f"watchfloor is running for site {site.id}: http://{site.console.host}:{site.console.port}/wall")
        _wait_stop(stop, sup, None)
    _print_summary(out)
    return 0
