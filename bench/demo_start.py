"""``watchfloor bench demo-start``: start the whole demo plant ``--starts`` times in a row (default 20) and count
the starts that fail (goal 0): a process that exits early, "did not start", no summary, or a journal that does
not verify. Each run is ``watchfloor demo --headless --for 6s`` in a fresh folder; the figure of merit is the
failure count, with the median time to "recording to" (everything up).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import report

__all__ = ["run"]


def run(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench demo-start")
    ap.add_argument("--starts", type=int, default=20)
    args = ap.parse_args(argv)

    from alarms.journal import verify_journal

    failures, up_s = [], []
    for k in range(args.starts):
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "run"
            t0 = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "console.cli", "demo", "--headless", "--for", "6s",
                                     "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "recording to" in line:
                    up_s.append(time.monotonic() - t0)
            proc.wait(120)
            text = "".join(lines)
            ok = (proc.returncode == 0 and "summary:" in text and "did not start" not in text
                  and "stopped unexpectedly" not in text and (out / "journal.sqlite").exists()
                  and verify_journal(out / "journal.sqlite").ok)
            if not ok:
                failures.append(k)
                print(f"start {k}: FAILED (exit {proc.returncode})\n{text[-1500:]}", flush=True)
    report("demo_start.failures", len(failures), f"of {args.starts} starts (goal 0)")
    if up_s:
        report("demo_start.up_median", statistics.median(up_s), "s to every process up")
