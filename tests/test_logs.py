"""Logs are bounded on disk: the launcher's supervisor copies each child's output (log records, and a traceback as
it dies) to ``logs/NAME.log``, rolled over at ``max_bytes`` and kept to ``backups`` older files."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from config.schema import LogSettings
from console.cli.launch import _supervisor
from console.cli.supervisor import RotatingLog, Supervisor


def log_files(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f"{name}*"))


def all_lines(folder: Path, name: str, backups: int) -> list[str]:
    """Every line kept, oldest first."""
    paths = [folder / f"{name}.{i}" for i in range(backups, 0, -1)] + [folder / name]
    return [line for p in paths if p.exists() for line in p.read_text().splitlines()]


def test_a_rotating_log_keeps_within_its_bound_rolls_the_oldest_away_and_splits_no_line(tmp_path):
    log = RotatingLog(tmp_path / "x.log", max_bytes=10_000, backups=3)
    lines = [f"record {i:05d} " + "x" * (i % 50) + "\n" for i in range(3000)]  # ~130 kB, 13 times the limit
    for k in range(0, len(lines), 7):  # in chunks of several lines, as a pipe hands them over
        log.write("".join(lines[k : k + 7]).encode())
    log.close()
    files = log_files(tmp_path, "x.log")
    assert [p.name for p in files] == ["x.log", "x.log.1", "x.log.2", "x.log.3"]
    assert all(p.stat().st_size <= 10_000 for p in files)
    assert sum(p.stat().st_size for p in files) <= 10_000 * 4
    kept = all_lines(tmp_path, "x.log", 3)
    assert kept == [line.rstrip("\n") for line in lines[-len(kept):]]  # the newest, in order, no line cut
    assert kept[-1].startswith("record 02999") and len(kept) < 3000


def test_a_line_longer_than_a_file_is_cut_across_files_and_an_existing_log_is_appended_to(tmp_path):
    (tmp_path / "y.log").write_bytes(b"from before\n")
    log = RotatingLog(tmp_path / "y.log", max_bytes=100, backups=2)
    log.write(b"z" * 250 + b"\n")
    log.close()
    sizes = {p.name: p.stat().st_size for p in log_files(tmp_path, "y.log")}
    assert sizes == {"y.log": 51, "y.log.1": 100, "y.log.2": 100}  # "from before" rolled away with the oldest


CHATTY_CHILD = textwrap.dedent("""
    import logging, sys
    logging.basicConfig(level=logging.INFO, format="%(asctime)s child %(levelname)s %(message)s")
    log = logging.getLogger("child")
    for i in range(4000):
        log.info("notification %05d from the plant, value %.3f", i, i * 0.5)
    raise RuntimeError("the child dies with a traceback")
""")


def test_a_childs_log_and_dying_traceback_are_bounded_by_the_launchers_supervisor(tmp_path):
    sup = Supervisor(tmp_path / "logs", log_max_bytes=50_000, log_backups=2)
    child = sup.start("chatty", [sys.executable, "-c", CHATTY_CHILD], stage=0)
    assert child.proc.wait(30) == 1
    codes = sup.stop_all()
    assert codes == {"chatty": 1}
    files = log_files(tmp_path / "logs", "chatty.log")
    assert [p.name for p in files] == ["chatty.log", "chatty.log.1", "chatty.log.2"]
    assert all(p.stat().st_size <= 50_000 for p in files)  # ~300 kB written, 150 kB at most kept
    kept = all_lines(tmp_path / "logs", "chatty.log", 2)
    text = "\n".join(kept)
    assert "notification 03999" in text and "notification 00000" not in text  # the oldest rolled away
    assert kept[-1] == "RuntimeError: the child dies with a traceback" and "Traceback (most recent call last):" in text


def test_run_and_demo_bound_each_process_log_by_the_sites_logs_section(demo_site, tmp_path):
    site = demo_site.model_copy(update={"logs": LogSettings(max_file_mb=0.5, backups=2)})
    sup = _supervisor(site, tmp_path)
    assert (sup.log_dir, sup.log_max_bytes, sup.log_backups) == (tmp_path / "logs", 500_000, 2)
    assert (demo_site.logs.max_file_mb, demo_site.logs.backups) == (10.0, 4)  # 50 MB a process at most


@pytest.mark.parametrize("field, value, reason", [
    ("max_file_mb", 0.01, "Input should be greater than or equal to 0.1"),
    ("backups", 0, "Input should be greater than or equal to 1"),
])
def test_log_bounds_are_checked_with_the_file_and_path(field, value, reason):
    import yaml

    from config import DEMO_SITE, ConfigError, parse_site

    data = yaml.safe_load(DEMO_SITE.read_text())
    data["logs"] = {field: value}
    with pytest.raises(ConfigError) as ei:
        parse_site(data, "plant.yaml")
    assert f"plant.yaml: logs.{field}: {reason}" in str(ei.value)


def test_the_supervisor_never_blocks_a_child_on_a_log_the_disk_refuses(tmp_path):
    """A full disk costs the log (counted), never the child's progress: /dev/full refuses every write (ENOSPC)."""
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "full.log").symlink_to("/dev/full")
    log = RotatingLog(tmp_path / "logs" / "full.log", max_bytes=10_000_000, backups=1)
    log.write(b"a line\n" * 100)
    assert log.lost_bytes == 700
    log.close()
    sup = Supervisor(tmp_path / "logs", log_max_bytes=10_000_000, log_backups=1)
    child = sup.start("full", [sys.executable, "-c", "for i in range(20000): print('x' * 100)"], stage=0)
    try:
        assert child.proc.wait(30) == 0  # 2 MB through a 64 kB pipe: it ends only if the pipe is drained
    except subprocess.TimeoutExpired:
        pytest.fail("the child blocked on its log")
    finally:
        sup.stop_all()


class Pipe:
    """A child's pipe as :meth:`RotatingLog.pump` reads it: these chunks, then the end."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def read1(self, n: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


@pytest.mark.parametrize("refusals, lost", [(1, 0), (2, 30)])
def test_a_log_that_could_not_be_opened_after_rolling_over_is_opened_again_by_the_next_write(tmp_path, monkeypatch,
                                                                                            refusals, lost):
    """The disk refuses the new file once (or the reopening too): later output still reaches the disk, and only
    what came while the file could not be opened is counted as lost."""
    import builtins
    import errno

    from console.cli import supervisor

    left = [refusals]
    opened = [False]  # the first opening (at start) goes through

    def full_disk_for_a_moment(file, mode="r", *args, **kwargs):
        if Path(file) == tmp_path / "z.log" and mode in ("wb", "ab") and left[0] and opened[0]:
            left[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(supervisor, "open", full_disk_for_a_moment, raising=False)
    log = RotatingLog(tmp_path / "z.log", max_bytes=100, backups=2)
    opened[0] = True
    a, b, c, d = (ch * 29 + b"\n" for ch in (b"a", b"b", b"c", b"d"))
    # a+a fill 60 of 100; b fits, c does not: the roll-over after b cannot open z.log; d would fit in the room left
    log.pump(Pipe([a + a, b + c, d]))
    assert left[0] == 0 and log.lost_bytes == lost
    assert (tmp_path / "z.log.1").read_bytes() == a + a + b
    assert (tmp_path / "z.log").read_bytes() == (c + d if lost == 0 else d)


def test_a_log_whose_child_could_not_start_is_closed(tmp_path):
    sup = Supervisor(tmp_path / "logs")
    with pytest.raises(FileNotFoundError) as raised:  # kept: its traceback holds start()'s locals, the log too
        sup.start("ghost", [str(tmp_path / "no-such-program")], stage=0)
    held = [fd for fd in Path("/proc/self/fd").iterdir() if _points_to(fd, tmp_path / "logs" / "ghost.log")]
    assert "no-such-program" in str(raised.value) and held == [] and sup.children == []


def _points_to(fd: Path, target: Path) -> bool:
    try:
        return Path(fd.readlink()) == target
    except OSError:
        return False


def test_logs_left_bigger_by_an_earlier_run_are_brought_within_the_bound_at_open(tmp_path):
    """An earlier run kept 7 files of 5000 bytes; this one keeps 3 of 1000: the newest 1000 of each (from a line
    start), the oversized current log rolled over, files beyond 3 removed, so 4000 bytes at most from the start."""
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = {name: [f"{name} line {i:04d} ".encode() + b"x" * (i % 30) + b"\n" for i in range(200)]
             for name in ("w.log", *(f"w.log.{i}" for i in range(1, 8)))}
    for name, ls in lines.items():
        (logs / name).write_bytes(b"".join(ls))
    (logs / "w.log.notes").write_bytes(b"not a rolled-over log: left alone")
    (logs / "other.log.7").write_bytes(b"another process's log: left alone")
    log = RotatingLog(logs / "w.log", max_bytes=1000, backups=3)
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["other.log.7", "w.log", "w.log.1", "w.log.2", "w.log.3", "w.log.notes"]
    assert (logs / "w.log").read_bytes() == b""
    for kept, was in (("w.log.1", "w.log"), ("w.log.2", "w.log.1"), ("w.log.3", "w.log.2")):
        text = (logs / kept).read_bytes()
        assert 900 < len(text) <= 1000 and text.endswith(lines[was][-1])
        assert text.splitlines(keepends=True) == lines[was][-len(text.splitlines()):]  # whole lines, the newest
    log.write(b"after the restart\n" * 100)
    log.close()
    files = log_files(logs, "w.log.") + [logs / "w.log"]
    assert sum(p.stat().st_size for p in files if p.name != "w.log.notes") <= 1000 * 4
    assert all_lines(logs, "w.log", 3)[-1] == "after the restart"


def test_an_oversized_log_without_backups_is_cut_to_its_newest_lines_and_appended_to(tmp_path):
    (tmp_path / "v.log").write_bytes(b"".join(f"old {i:03d}\n".encode() for i in range(100)))  # 800 bytes
    log = RotatingLog(tmp_path / "v.log", max_bytes=100, backups=0)
    log.write(b"new\n")
    log.close()
    assert (tmp_path / "v.log").read_bytes() == b"".join(f"old {i:03d}\n".encode() for i in range(88, 100)) + b"new\n"
