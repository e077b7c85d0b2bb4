"""Ctrl-C on `watchfloor demo` stops every process it started, in order, and still leaves a complete run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alarms.journal import verify_journal
from tests.engine_stack import REPO

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[str]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmd:
            out.append(f"{pid}: {cmd}")
    return out


def test_ctrl_c_stops_everything_and_leaves_no_orphans(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "demo", "--headless", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    line = ""
    while "recording to" not in line and time.monotonic() < deadline:
        line = proc.stdout.readline()
    assert "recording to" in line, "the demo did not come up"
    time.sleep(3)
    children = processes_mentioning(str(out))
    assert len(children) >= 6, children  # broker, engine, simulator, 4 adapters (cmdlines name the out folder)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C does to the supervisor
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "summary:" in rest and "positions computed:" in rest
    assert processes_mentioning(str(out)) == []
    assert verify_journal(out / "journal.sqlite").ok


def test_a_killed_supervisor_takes_its_children_with_it(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "console.cli", "demo", "--headless", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    line = ""
    while "recording to" not in line and time.monotonic() < deadline:
        line = proc.stdout.readline()
    assert processes_mentioning(str(out))
    proc.kill()  # SIGKILL: the supervisor gets no chance to clean up
    proc.wait(10)
    deadline = time.monotonic() + 30
    while processes_mentioning(str(out)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(str(out)) == []  # PR_SET_PDEATHSIG sent them SIGTERM


def test_demo_help_lists_the_scenarios_and_the_demo_login(capsys):
    from console.cli import main as cli
    from ingest.simulator.scenarios import SCENARIOS

    with pytest.raises(SystemExit) as e:
        cli(["demo", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    assert all(f"  {name} " in out for name in SCENARIOS) and "password demo" in out


def test_a_port_handed_out_here_is_not_handed_out_by_another_process_meanwhile():
    """A test worker and the demo it starts pick ports from the same range: a port one of them picked (and may not
    have bound yet) is claimed, so the other never picks it."""
    from console.cli.supervisor import free_port

    mine = [free_port() for _ in range(20)]
    code = ("from console.cli.supervisor import _claim, free_port\n"
            f"print([_claim(p) for p in {mine}], len(set(free_port() for _ in range(300)) & set({mine})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.strip() == f"{[False] * 20} 0", out.stderr


def test_ports_handed_out_are_free_distinct_and_never_ones_an_outgoing_connection_could_take():
    import socket

    from console.cli.supervisor import ephemeral_range, free_port

    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200 and all(1024 < p < low for p in ports)
    # outgoing connections meanwhile take their source ports from the ephemeral range, never one of ours
    server = socket.create_server(("127.0.0.1", 0))
    clients = [socket.create_connection(server.getsockname()) for _ in range(50)]
    try:
        assert not {c.getsockname()[1] for c in clients} & set(ports)
        for p in ports[:20]:  # and ours still bind
            with socket.socket() as s:
                s.bind(("127.0.0.1", p))
    finally:
        for c in clients:
            c.close()
        server.close()


def test_the_demo_stops_cleanly_when_whatever_started_it_goes(tmp_path):
    """`make demo` killed by a signal to make's own PID (not its process group): the demo must not live on.
    Here a wrapper process stands in for make; it is SIGKILLed (it cannot forward anything)."""
    out, log = tmp_path / "run", tmp_path / "demo.log"
    wrapper = subprocess.Popen([sys.executable, "-c", (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-m', 'console.cli', 'demo', '--headless', '--out', {str(out)!r}],"
        f" stdout=open({str(log)!r}, 'w'), stderr=subprocess.STDOUT)\n"
        "time.sleep(600)\n")])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "recording to" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.2)
        assert "recording to" in log.read_text(), "the demo did not come up"
        wrapper.kill()
        wrapper.wait(10)
        deadline = time.monotonic() + 60
        while processes_mentioning(str(out)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert processes_mentioning(str(out)) == []
        text = log.read_text()
        assert "summary:" in text and "positions computed:" in text  # it stopped through its own clean path
        assert verify_journal(out / "journal.sqlite").ok
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
