"""Crash recovery is replay: an engine killed with SIGKILL and started again on the same folder re-applies
its recording, checks every journal row it already wrote, and its escalation timer still fires at the
activation time + T1 in engine time."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import zmq

from alarms.journal import verify_journal
from config.schema import AlarmRule, EscalationPolicy, EscalationStep, Notifications
from console.cli.launch import write_site
from ingest import bus
from ingest.engine import replay
from tests.builders import positions
from tests.conftest import free_port, wait_port

pytestmark = pytest.mark.slow


def start_engine(site_file, out):
    return subprocess.Popen([sys.executable, "-m", "console.cli", "engine", "--site", str(site_file), "--out",
                             str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def journal_events(path):
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return db.execute("SELECT event, alarm_id, engine_ts_s, detail FROM journal ORDER BY row").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def test_escalation_timer_survives_a_killed_engine(demo_site, tmp_path):
    ports = [free_port() for _ in range(3)]
    site = demo_site.model_copy(update={
        "bus": demo_site.bus.model_copy(update={"ingest": f"tcp://127.0.0.1:{ports[0]}",
                                                "publish": f"tcp://127.0.0.1:{ports[1]}",
                                                "command": f"tcp://127.0.0.1:{ports[2]}"}),
        "escalation_policies": [EscalationPolicy(id="p", steps=[EscalationStep(after_s=4.0,
                                                                               notify_role="supervisor")])],
        "alarm_rules": [AlarmRule(condition="zone.restricted", escalation="p")],
        "default_escalation": {},  # only the rule's alarms escalate here (the demo's defaults name its policies)
        "notifications": Notifications(mqtt=False),
    })
    site_file = tmp_path / "site.yaml"
    write_site(site, site_file)
    out = tmp_path / "run"
    engine = start_engine(site_file, out)
    wait_port("127.0.0.1", ports[2], 30, )
    ctx = zmq.Context()
    push = bus.push_socket(ctx, site.bus.ingest)
    t = time.time()
    for ts in (t, t + 2.1):  # still inside after the fences' 2 s dwell: the entry counts
        push.send_multipart(bus.encode(positions(site, {"T0050": (145.0, 70.0)}, ts, gdop=1.0)))
    deadline = time.monotonic() + 10
    while not journal_events(out / "journal.sqlite") and time.monotonic() < deadline:
        time.sleep(0.05)
    activate = journal_events(out / "journal.sqlite")[0]
    assert activate[0] == "activate"
    engine.send_signal(signal.SIGKILL)  # a crash: no clean shutdown, no final commit beyond what was made
    engine.wait(10)
    push.close(linger=0)
    ctx.term()

    engine = start_engine(site_file, out)  # the supervisor starts it again on the same folder
    deadline = time.monotonic() + 20
    while not any(e[0] == "escalate" for e in journal_events(out / "journal.sqlite")) and time.monotonic() < deadline:
        time.sleep(0.1)
    engine.send_signal(signal.SIGTERM)
    assert engine.wait(20) == 0
    events = journal_events(out / "journal.sqlite")
    esc = [e for e in events if e[0] == "escalate"]
    assert len(esc) == 1 and esc[0][1] == activate[1]
    assert esc[0][2] == pytest.approx(activate[2] + 4.0)  # due time in engine time, across the crash
    assert json.loads(esc[0][3])["notify_role"] == "supervisor"
    assert verify_journal(out / "journal.sqlite").ok
    # the whole recording (both lives) replays to the same chain
    summary = replay(out / "recording.sqlite", tmp_path / "replay")
    assert summary["journal_head"] == verify_journal(out / "journal.sqlite").head
