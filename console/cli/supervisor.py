"""Starts the watchfloor processes, watches them, and stops them in order, leaving no orphans.

Children run in their own session (so a Ctrl-C reaches only the supervisor, which then stops them in a
safe order: sources first, then adapters so they flush, then the engine so it applies everything, then the
console and the broker) and get SIGTERM from the kernel if the supervisor itself dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["Child", "Supervisor", "ephemeral_range", "free_port", "stop_with_parent", "wait_port"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def stop_with_parent() -> None:
    """This process gets SIGTERM (and so stops cleanly, through its own handler) when the process that started it
    goes: ``make demo`` stopped by a signal to make's own PID does not leave the demo running."""
    parent = os.getppid()
    _die_with_parent()
    if os.getppid() != parent:  # the parent went before prctl took hold
        os.kill(os.getpid(), signal.SIGTERM)


#: ports handed out by this process (each once)
_HANDED_OUT: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The ports the kernel gives outgoing connections as their source port (Linux; the IANA range elsewhere)."""
    try:
        low, high = (int(v) for v in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
        return low, high
    except (OSError, ValueError):
        return 49152, 65535


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and one an outgoing connection cannot take meanwhile: chosen below the kernel's ephemeral
    range (a port the kernel picked with bind(0) could be given to the next outgoing connection as its source
    port before our process binds it: the demo's simulator once lost its OPC UA port to the demo's own MQTT
    client that way)."""
    low = max(1025, min(ephemeral_range()[0], 65536) - 12000)
    high = min(ephemeral_range()[0], 65536) - 1
    if high <= low:  # an unusual range: fall back to the kernel's choice
        with socket.socket() as s:
            s.bind((host, 0))
            return s.getsockname()[1]
    for _ in range(200):
        port = random.randint(low, high)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError(f"no free port between {low} and {high}")


def wait_port(host: str, port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before {host}:{port} opened")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{host}:{port} did not open within {timeout_s} s")


@dataclass
class Child:
    name: str
    argv: list[str]
    stage: int  # stop order: lower stages stop first
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _log_f: object = field(default=None, repr=False)


class Supervisor:
    """Owns child processes. Use as a context manager; ``stop_all`` on exit in stage order."""

    def __init__(self, log_dir: Path, *, echo: bool = False) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.echo = echo

    def start(self, name: str, argv: list[str], stage: int) -> Child:
        child = Child(name, argv, stage, log_path=self.log_dir / f"{name}.log")
        child._log_f = open(child.log_path, "ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        child.proc = subprocess.Popen(argv, stdout=None if self.echo else child._log_f, stderr=subprocess.STDOUT
                                      if not self.echo else None, stdin=subprocess.DEVNULL,
                                      start_new_session=True, preexec_fn=_die_with_parent, env=env)
        self.children.append(child)
        log.info("started %s (pid %d): %s", name, child.proc.pid, " ".join(argv))
        return child

    def start_watchfloor(self, name: str, args: list[str], stage: int) -> Child:
        return self.start(name, [sys.executable, "-m", "console.cli", *args], stage)

    def dead(self) -> list[Child]:
        return [c for c in self.children if c.proc is not None and c.proc.poll() is not None]

    def stop_all(self, timeout_s: float = 15.0) -> dict[str, int | None]:
        codes: dict[str, int | None] = {}
        for stage in sorted({c.stage for c in self.children}):
            group = [c for c in self.children if c.stage == stage and c.proc is not None]
            for c in group:
                if c.proc.poll() is None:
                    c.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            for c in group:
                try:
                    c.proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    log.warning("%s did not stop within %.0f s: killing it", c.name, timeout_s)
                    c.proc.kill()
                    c.proc.wait()
                codes[c.name] = c.proc.returncode
                if c._log_f:
                    c._log_f.close()
        return codes

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
