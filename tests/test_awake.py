"""An engine stall is not a sensor fault: staleness is judged on awake time (alarms/awake.py), on the real
Engine core with recorded-style inputs (ticks at the engine's clock, values with their sources' times), and on a
real engine process paused with SIGSTOP while its sources keep reporting."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
import zmq

from alarms.awake import AwakeClock
from config.loader import dump_site
from ingest import bus
from ingest.bus import Message
from ingest.engine import Engine, tick_message
from tests.engine_stack import REPO, ipc_site

T0 = 1_800_000_000.0


def test_the_clock_counts_a_gap_beyond_its_limit_as_a_stall_and_nothing_else():
    c = AwakeClock(tick_s=0.1, max_gap_s=1.0)
    for k in range(11):
        c.tick(T0 + 0.1 * k)
    assert (c.stalls, c.stalled_s) == (0, 0.0)
    c.tick(T0 + 1.0 + 5.0)  # a 5 s pause
    assert c.stalls == 1 and c.stalled_s == pytest.approx(4.9)
    # a value from before the pause: 5.5 s of clock, of which 4.9 s stalled -> 0.6 s awake
    assert c.silent_for(T0 + 6.0, T0 + 0.5) == pytest.approx(0.6)
    # a value stamped inside the pause (sent meanwhile, taken in later): the rest of the pause is excused, and
    # from the end of the pause its silence counts in full
    assert c.silent_for(T0 + 6.0, T0 + 3.0) == pytest.approx(0.0)
    assert c.silent_for(T0 + 8.0, T0 + 3.0) == pytest.approx(2.0)
    # vectorised: the same for an array of sample times
    assert c.silent_for(T0 + 8.0, np.array([T0 + 0.5, T0 + 5.5])).tolist() == pytest.approx([2.6, 2.0])


def _gas(site, values: dict[str, float], ts: float) -> Message:
    index = {d.id: i for i, d in enumerate(site.gas_detectors)}
    k = [index[d] for d in values]
    return Message("gas.values", "gas", "gas_values", ts, ts, arrays={
        "detector_index": np.array(k, np.int32), "value": np.array(list(values.values())),
        "quality": np.zeros(len(k), np.uint8), "ts_s": np.full(len(k), ts)})


def test_a_paused_engine_resumes_without_silent_alarms_and_a_detector_that_really_stopped_still_alarms(demo_site):
    """GD01 reports every second through a 5 s pause of the engine (its values wait in the socket and are taken
    in after the first tick past the pause); GD02 stops reporting at the pause."""
    eng, seq = Engine(demo_site, None), 0
    events = []

    def apply(msg: Message) -> None:
        nonlocal seq
        seq += 1
        for rec in eng.apply(seq, msg).alarms:
            events.append((rec["id"], rec["state"], round(eng.now_s - T0, 1)))

    others = {d.id: 0.0 for d in demo_site.gas_detectors if d.id not in ("GD01", "GD02") and d.gas != "O2"}
    others |= {d.id: 20.9 for d in demo_site.gas_detectors if d.gas == "O2"}
    t = T0
    for k in range(30):  # 3 s of normal running: ticks every 0.1 s, every detector at 1 Hz
        t = T0 + 0.1 * k
        if k % 10 == 0:
            apply(_gas(demo_site, {"GD01": 0.0, "GD02": 0.0, **others}, t))
        apply(tick_message(t))
    # the pause: from 2.9 s to 7.9 s no tick; GD01 and the others kept sending (at 3, 4, 5, 6, 7 s)
    apply(tick_message(T0 + 7.9))
    for s in (3, 4, 5, 6, 7):
        apply(_gas(demo_site, {"GD01": 0.0, **others}, T0 + s))
    for k in range(1, 60):  # 6 s more of normal running; GD02 stays quiet
        t = T0 + 7.9 + 0.1 * k
        if k % 10 == 0:
            apply(_gas(demo_site, {"GD01": 0.0, **others}, round(t, 1)))
        apply(tick_message(t))
    stale = [e for e in events if e[0].startswith("gas.stale")]
    assert [e[0] for e in stale] == ["gas.stale:GD02"]  # none for the detectors that kept reporting
    # GD02's last value was at 2 s; 3 s of awake time later (0.9 s before the pause, 2.1 s after): 10.0 s
    assert stale[0][2] == pytest.approx(10.0, abs=0.15)
    assert eng.status()["stalls"] == 1 and eng.status()["stalled_s"] == pytest.approx(4.9)


def test_a_detector_that_dies_right_after_a_long_stall_alarms_on_time(demo_site):
    """A value stamped at the very end of a 10-minute stall, taken in before the tick that reveals the stall, is
    excused only for the stall after it (none): the detector, silent from then on, alarms 3 s later."""
    eng, seq, events = Engine(demo_site, None), 0, []

    def apply(msg: Message) -> None:
        nonlocal seq
        seq += 1
        for rec in eng.apply(seq, msg).alarms:
            events.append((rec["id"], round(eng.now_s - T0, 1)))

    rest = {d.id: (20.9 if d.gas == "O2" else 0.0) for d in demo_site.gas_detectors if d.id != "GD03"}
    for k in range(20):
        apply(tick_message(T0 + 0.1 * k))
    apply(_gas(demo_site, {"GD03": 0.0, **rest}, T0 + 1.0))
    apply(_gas(demo_site, {"GD03": 0.0, **rest}, T0 + 601.9))  # queued during the stall
    for k in range(60):  # the engine runs again from 602 s; only the others keep reporting
        t = T0 + 602.0 + 0.1 * k
        if k % 10 == 0:
            apply(_gas(demo_site, rest, t))
        apply(tick_message(t))
    assert [t for a, t in events if a == "gas.stale:GD03"] == [pytest.approx(605.0, abs=0.15)]


@pytest.mark.slow
def test_a_real_engine_paused_with_sigstop_raises_no_silent_alarm_for_sources_that_kept_reporting(demo_site, tmp_path):
    site = ipc_site(demo_site, tmp_path, fences=demo_site.fences)
    site_file = tmp_path / "site.yaml"
    site_file.write_text(dump_site(site), encoding="utf-8")
    engine = subprocess.Popen([sys.executable, "-m", "console.cli", "engine", "--site", str(site_file), "--out",
                               str(tmp_path / "run")], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=open(tmp_path / "engine.log", "w"))
    ctx = zmq.Context()
    push = bus.push_socket(ctx, site.bus.ingest)
    sender = bus.Sender(push, "gas")
    others = {d.id: (20.9 if d.gas == "O2" else 0.0) for d in site.gas_detectors if d.id != "GD02"}
    try:
        deadline = time.monotonic() + 60
        while "engine up" not in (tmp_path / "engine.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        t_end = time.monotonic() + 16.0
        paused = resumed = False
        t_start = time.monotonic()
        while time.monotonic() < t_end:  # every detector at 1 Hz; GD02 stops when the engine is paused
            now = time.time()
            values = others | ({} if paused else {"GD02": 0.0})
            m = _gas(site, values, now)
            sender.send(m.topic, m.kind, m.event_ts_s, m.arrays, timeout_s=10)
            elapsed = time.monotonic() - t_start
            if not paused and elapsed > 5.0:
                engine.send_signal(signal.SIGSTOP)
                paused = True
            if paused and not resumed and elapsed > 10.0:
                engine.send_signal(signal.SIGCONT)
                resumed = True
            time.sleep(1.0)
    finally:
        engine.send_signal(signal.SIGCONT)
        engine.send_signal(signal.SIGTERM)
        engine.wait(30)
        push.close(linger=0)
        ctx.term()
    db = sqlite3.connect(tmp_path / "run" / "journal.sqlite")
    rows = db.execute("SELECT alarm_id FROM journal WHERE event = 'activate' AND alarm_id LIKE 'gas.stale:%'").fetchall()
    db.close()
    assert [r[0] for r in rows] == ["gas.stale:GD02"]  # the one that really stopped; none of the other 19
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stalls"] >= 1 and summary["stalled_s"] >= 3.0
