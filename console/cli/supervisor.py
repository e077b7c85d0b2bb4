"""Starts the watchfloor processes, watches them, and stops them in order, leaving no orphans.

Children run in their own session (so a Ctrl-C reaches only the supervisor, which then stops them in a
safe order: sources first, then adapters so they flush, then the engine so it applies everything, then the
console and the broker) and get SIGTERM from the kernel if the supervisor itself dies (PR_SET_PDEATHSIG).

A child's stdout and stderr go into one pipe that a thread of the supervisor copies to ``logs/NAME.log``
(:class:`RotatingLog`), rolled over at a size and kept to a number of files: so everything the child writes is
bounded on disk, its log records and also what no logging handler sees (a traceback as the interpreter dies, a
library's or mosquitto's own output). A child writing an inherited file itself could not be bounded that way (a
rename leaves it writing the old file). A log the disk refuses is counted and dropped, never waited for: the
child (the engine) must not block on its own log.
"""

from __future__ import annotations

import ctypes
import logging
import os
import random
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["Child", "Supervisor", "RotatingLog", "ephemeral_range", "free_port", "stop_with_parent", "wait_port",
           "DEFAULT_LOG_MAX_BYTES", "DEFAULT_LOG_BACKUPS"]

DEFAULT_LOG_MAX_BYTES = 10_000_000  # the site's logs.max_file_mb default
DEFAULT_LOG_BACKUPS = 4
_CHUNK = 64 * 1024

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
#: this process's claims on the ports it handed out (see :func:`_claim`), held until it exits
_CLAIMS: list[socket.socket] = []
_MAX_CLAIMS = 64


def _claim(port: int) -> bool:
    """Claim ``port`` for this process among all processes on this machine that pick ports this way (two test
    workers and a demo they start pick from the same range): an abstract-namespace Unix socket named after the
    port, which the kernel frees when the process exits. False: another process claimed it first. Where abstract
    sockets do not exist, every port counts as unclaimed."""
    if not hasattr(socket, "AF_UNIX") or not sys.platform.startswith("linux"):
        return True
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        claim.bind(f"\0watchfloor-port-{port}")
    except OSError:
        claim.close()
        return False
    _CLAIMS.append(claim)
    if len(_CLAIMS) > _MAX_CLAIMS:  # bounded: a port handed out long ago is bound (or given up) by now
        _CLAIMS.pop(0).close()
    return True


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
    client that way), and claimed against the other processes that pick ports here (a test worker and a demo
    once chose the same port: the engine of the demo could not bind its command socket)."""
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
        if not _claim(port):  # another process of ours picked it and may not have bound it yet
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


class RotatingLog:
    """A log file bounded on disk: ``path`` rolls over to ``path.1`` (``path.1`` to ``path.2``, ..., the oldest,
    ``path.<backups>``, is dropped) before a write would take it past ``max_bytes``, cut after the last whole line
    that fits when there is one. So the files hold at most ``max_bytes * (backups + 1)`` bytes. An existing
    ``path`` is appended to (an engine resuming in its run folder); what an earlier run with bigger bounds left is
    brought within these at open: each file cut to its newest ``max_bytes`` (from a line start), an oversized
    ``path`` rolled over, and ``path.N`` beyond ``backups`` removed. Writes are unbuffered (``tail -f`` sees each
    line); a write the disk refuses is counted in ``lost_bytes``, not raised."""

    def __init__(self, path: Path, max_bytes: int = DEFAULT_LOG_MAX_BYTES, backups: int = DEFAULT_LOG_BACKUPS) -> None:
        if max_bytes < 1 or backups < 0:
            raise ValueError(f"max_bytes must be positive and backups at least 0, got {max_bytes}, {backups}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        self.lost_bytes = 0
        self._broken = False  # the file could not be opened again: warned once until it can
        self._closed = False  # by close(): then nothing opens it again
        self._bound_existing()
        self._f = open(self.path, "ab", buffering=0)
        self._size = self._f.tell()

    def _backup(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _bound_existing(self) -> None:
        """Bring the files an earlier run left (with a bigger ``max_bytes`` or more ``backups``) within this log's
        bounds, so ``max_bytes * (backups + 1)`` holds from the start, not only after ``backups`` roll-overs."""
        prefix = f"{self.path.name}."
        try:
            stale = [p for p in self.path.parent.iterdir() if p.name.startswith(prefix)
                     and (n := p.name[len(prefix):]).isascii() and n.isdigit() and int(n) > self.backups]
        except OSError as e:
            log.warning("could not list %s (%s): older logs there are left as they are", self.path.parent, e)
            stale = []
        for p in stale:
            try:
                p.unlink()
            except OSError as e:
                log.warning("could not remove %s, beyond the %d kept (%s)", p, self.backups, e)
        for i in range(1, self.backups + 1):
            self._cut_to_newest(self._backup(i))
        if self._cut_to_newest(self.path) and self.backups > 0:
            self._shift()  # start a file of its own; what came before is path.1

    def _cut_to_newest(self, path: Path) -> bool:
        """Cut ``path`` (a regular file over ``max_bytes``) to its newest ``max_bytes``, from the first line start
        in them when there is one (copied in chunks: a file may be a gigabyte). True when it was over."""
        cut = path.with_name(path.name + ".cut")
        try:
            st = path.lstat()
            if not stat.S_ISREG(st.st_mode) or st.st_size <= self.max_bytes:
                return False
            with open(path, "rb") as src:
                start = st.st_size - self.max_bytes
                src.seek(start - 1)
                if src.read(1) != b"\n":  # mid-line: keep from the next line start, unless no line ends in the rest
                    at = start
                    while chunk := src.read(_CHUNK):
                        nl = chunk.find(b"\n")
                        if nl >= 0:
                            start = at + nl + 1 if at + nl + 1 < st.st_size else start
                            break
                        at += len(chunk)
                src.seek(start)
                with open(cut, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
            os.replace(cut, path)
        except FileNotFoundError:
            return False
        except OSError as e:
            log.warning("could not cut %s to %d bytes (%s): left as it is", path, self.max_bytes, e)
            try:
                cut.unlink(missing_ok=True)
            except OSError:
                pass
            return False
        return True

    def write(self, data: bytes) -> None:
        reopened = False  # once a call: a file that takes appends but cannot be rolled over must not loop
        while data:
            if self._f.closed:  # rolling over could not open it again: try once more now
                if self._closed or reopened or not self._reopen():
                    self._lose(len(data))
                    return
                reopened = True
            room = self.max_bytes - self._size
            if room <= 0 or (len(data) > room and self._size > 0 and b"\n" not in data[:room]):
                self._roll_over()
                continue
            part = data[:room]
            if len(data) > room:
                cut = part.rfind(b"\n")
                part = part[: cut + 1] if cut >= 0 else part
            try:
                n = self._f.write(part) or 0
            except (OSError, ValueError):  # a full disk: counted, not kept
                n = 0
            self._size += n
            if n < len(part):
                self._lose(len(part) - n)
            data = data[len(part):]
            if data:
                self._roll_over()

    def _lose(self, n: int) -> None:
        if not self.lost_bytes:  # once: the count comes when the child ends
            log.warning("%s: the disk refuses the log; counting what is lost", self.path)
        self.lost_bytes += n

    def _reopen(self) -> bool:
        try:
            self._f = open(self.path, "ab", buffering=0)
        except OSError as e:
            if not self._broken:
                log.warning("could not open %s again (%s): its lines are counted as lost until it opens", self.path, e)
                self._broken = True
            return False
        if self._broken:
            log.info("%s opens again", self.path)
            self._broken = False
        self._size = self._f.tell()
        return True

    def _shift(self) -> None:
        try:
            for i in range(self.backups - 1, 0, -1):
                older = self._backup(i)
                if older.exists():
                    os.replace(older, self._backup(i + 1))
            if self.backups > 0:
                os.replace(self.path, self._backup(1))
        except OSError as e:
            log.warning("could not roll %s over (%s): starting it again", self.path, e)

    def _roll_over(self) -> None:
        self._f.close()
        self._shift()
        try:
            self._f = open(self.path, "wb", buffering=0)
        except OSError as e:  # left closed: the next write tries to open it again, and counts what it cannot write
            if not self._broken:
                log.warning("could not open %s after rolling it over (%s)", self.path, e)
                self._broken = True
            return
        self._size = 0

    def close(self) -> None:
        self._closed = True
        self._f.close()

    def pump(self, stream) -> None:
        """Copy ``stream`` (a child's pipe) here until it ends; then close. Whatever happens to the file, the pipe
        is drained: a child never waits on its log."""
        try:
            while True:
                try:
                    chunk = stream.read1(_CHUNK)
                except (OSError, ValueError) as e:  # the pipe closed under us: what came is written
                    log.debug("log pipe of %s ended: %s", self.path, e)
                    break
                if not chunk:
                    break
                try:
                    self.write(chunk)
                except OSError:  # write counts what the disk refuses; this is for the unforeseen: the pipe drains
                    self.lost_bytes += len(chunk)
        finally:
            if self.lost_bytes:
                log.warning("%s: %d bytes of log could not be written", self.path, self.lost_bytes)
            self.close()


@dataclass
class Child:
    name: str
    argv: list[str]
    stage: int  # stop order: lower stages stop first
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    _log_thread: threading.Thread | None = field(default=None, repr=False)


class Supervisor:
    """Owns child processes. Use as a context manager; ``stop_all`` on exit in stage order. Each child's output goes
    to ``log_dir/NAME.log``, at most ``log_max_bytes`` a file and ``log_backups`` rolled-over files kept
    (:class:`RotatingLog`); with ``echo`` it goes to this process's terminal instead."""

    def __init__(self, log_dir: Path, *, echo: bool = False, log_max_bytes: int = DEFAULT_LOG_MAX_BYTES,
                 log_backups: int = DEFAULT_LOG_BACKUPS) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        self.echo = echo
        self.log_max_bytes = log_max_bytes
        self.log_backups = log_backups

    def start(self, name: str, argv: list[str], stage: int) -> Child:
        child = Child(name, argv, stage, log_path=self.log_dir / f"{name}.log")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        out = None if self.echo else subprocess.PIPE
        sink = None if self.echo else RotatingLog(child.log_path, self.log_max_bytes, self.log_backups)
        try:
            child.proc = subprocess.Popen(argv, stdout=out, stderr=None if self.echo else subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=_die_with_parent, env=env)
        except BaseException:  # no child (no such program, no memory...): no pump to close its log either
            if sink is not None:
                sink.close()
            raise
        if sink is not None:
            child._log_thread = threading.Thread(target=sink.pump, args=(child.proc.stdout,), name=f"log-{name}",
                                                 daemon=True)
            child._log_thread.start()
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
                if c._log_thread is not None:  # the pipe ends with the child (unless a grandchild holds it)
                    c._log_thread.join(5.0)
                if c.proc.stdout is not None and (c._log_thread is None or not c._log_thread.is_alive()):
                    c.proc.stdout.close()
        return codes

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
