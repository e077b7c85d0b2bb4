"""Shared fixtures: real peers on loopback, started and stopped by the fixture."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

#: the test files that wait longest on real-time runs go first, so that with two workers (`make test` runs
#: pytest-xdist, one file per worker at a time) they overlap each other and the short files fill the gaps
SLOW_FIRST = ("test_scenarios.py", "test_scenarios_more.py", "test_pipeline.py", "test_muster_drill.py",
              "test_hostile_payloads.py",
              "test_demo_stop.py", "test_gas_adapter.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: file order kept otherwise


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1, free now and below the ephemeral range (so no outgoing connection takes it
    meanwhile): the launcher's own choice (console/cli/supervisor.py)."""
    from console.cli.supervisor import free_port as launcher_free_port

    return launcher_free_port()


def wait_port(host: str, port: int, timeout_s: float = 10.0) -> None:
    """Poll until host:port accepts a TCP connection (bounded)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"{host}:{port} did not accept a connection within {timeout_s} s")


class Broker:
    """A real mosquitto broker on a loopback port."""

    def __init__(self, workdir: Path) -> None:
        if not Path(MOSQUITTO).exists():
            pytest.fail("mosquitto is not installed: run `make test` (installs it as root) or apt-get install mosquitto")
        self.host = "127.0.0.1"
        self.port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stdout\n"
            "max_queued_messages 100000\n"
        )
        self.log = workdir / "mosquitto.log"
        self._log_f = open(self.log, "w")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=self._log_f, stderr=subprocess.STDOUT)
        wait_port(self.host, self.port)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_f.close()


@pytest.fixture
def mosquitto(tmp_path):
    """A fresh mosquitto broker for one test; yields the Broker (host, port)."""
    b = Broker(tmp_path)
    yield b
    b.stop()


@pytest.fixture(scope="session")
def demo_site():
    from config import DEMO_SITE, load_site

    return load_site(DEMO_SITE)
