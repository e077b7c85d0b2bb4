"""``watchfloor bench watchdog``: how soon a wall says it is not live when its console server dies.

The real engine (in this process, ipc endpoints), a real console process and Debian's Chromium on /wall: the
console is killed (SIGKILL, no word to the browser) ``--trials`` times; each time the figure is the time from
the kill to the page's own "CONSOLE LINK LOST" (its JavaScript watchdog, console/web/watchdog.py), and then
the time until the page, finding a new console on the same port, has reloaded itself and is live again.
The goal is 3 s to the overlay (the stale limit is 2.5 s, checked every 250 ms).

Options: ``--trials N`` (default 5).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zmq

from bench import report

__all__ = ["run"]

_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _console(site_file: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "console.web.app", "--site", str(site_file), "--port", str(port),
                             "--address", "127.0.0.1"], stdout=open(log, "a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the console did not start")


def run(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench watchdog")
    ap.add_argument("--trials", type=int, default=5)
    args = ap.parse_args(argv)

    from playwright.sync_api import sync_playwright

    from config import DEMO_SITE, load_site
    from config.loader import dump_site
    from ingest.engine import EngineProcess

    base = load_site(DEMO_SITE)
    shown, back = [], []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        eps = {name: f"ipc://{folder}/{name}.ipc" for name in ("ingest", "publish", "command")}
        fp = base.floor_plan.model_copy(update={"image": None})
        site = base.model_copy(update={"bus": base.bus.model_copy(update=eps), "floor_plan": fp})
        site_file = folder / "site.yaml"
        site_file.write_text(dump_site(site), encoding="utf-8")
        ctx = zmq.Context()
        proc = EngineProcess(site, dump_site(site), folder / "run", ctx=ctx, notify=False)
        stop = threading.Event()
        engine = threading.Thread(target=proc.run, args=(stop,), daemon=True)
        engine.start()
        proc.ready.wait(10)
        port = _free_port()
        console = _console(site_file, port, folder / "console.log")
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=_ARGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(f"http://127.0.0.1:{port}/wall?scale=0.5", timeout=60_000)
                for _ in range(args.trials):
                    page.wait_for_function("() => window.wfWatch && window.wfWatch.state === 'live'",
                                           timeout=60_000, polling=50)
                    time.sleep(1.0)
                    page.evaluate("() => { window.wfMark = true; }")
                    t0 = time.monotonic()
                    os.kill(console.pid, signal.SIGKILL)
                    console.wait(10)
                    page.wait_for_function("() => window.wfWatch.state === 'console_lost'", timeout=30_000,
                                           polling=20)
                    shown.append(time.monotonic() - t0)
                    t1 = time.monotonic()
                    console = _console(site_file, port, folder / "console.log")
                    page.wait_for_function("() => window.wfMark === undefined && window.wfWatch && "
                                           "window.wfWatch.state === 'live'", timeout=60_000, polling=50)
                    back.append(time.monotonic() - t1)
                browser.close()
        finally:
            console.send_signal(signal.SIGTERM)
            console.wait(30)
            stop.set()
            engine.join(20)
            proc.close()
            ctx.term()
    report("watchdog.console_lost_shown_median", statistics.median(shown), "s (goal 3 s)")
    report("watchdog.console_lost_shown_max", max(shown), "s")
    report("watchdog.live_again_after_console_back_median", statistics.median(back), "s")
