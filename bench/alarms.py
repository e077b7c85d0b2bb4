"""``watchfloor bench alarms``: condition evaluations per second through the engine, and a 10,000-alarm flood.

1. Condition evaluations: the engine's position path (restricted-zone rule over every restricted zone, then the
   lifecycle) on batches of 2,000 tags walking in and out of a zone; figure = tag x zone evaluations / s.
2. Flood: 10,000 people enter a restricted zone within 10 s of engine time (100 batches of 100, one every
   0.1 s, with clock ticks between); every activation is journaled (SQLite WAL, hash chain). Figures: wall time
   to apply and journal them all, the ratio to the 10 s they span, and the activations lost (journal rows
   counted against the 10,000; must be 0).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from alarms.journal import Journal, verify_journal
from bench import report
from config import DEMO_SITE, load_site
from ingest.bus import Message
from ingest.engine import Engine, tick_message

__all__ = ["run"]


def _site_with(n: int):
    base = load_site(DEMO_SITE)
    t = base.people[60]  # a worker: not allowed in the substation
    people = [t.model_copy(update={"id": f"B{i:05d}", "tag": f"U{i:05d}", "certificates": []}) for i in range(n)]
    return base.model_copy(update={"people": people})


def _positions(idx: np.ndarray, xy: np.ndarray, ts: float) -> Message:
    n = len(idx)
    return Message("uwb.positions", "uwb", "positions", ts, ts, arrays={
        "person_index": idx.astype(np.int32), "xyz_m": np.column_stack([xy, np.full(n, 1.2)]),
        "ts_s": np.full(n, ts), "valid": np.ones(n, bool), "gdop": np.ones(n), "rms_m": np.full(n, 0.1)})


def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench alarms")
    ap.add_argument("--tags", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--flood", type=int, default=10_000)
    a = ap.parse_args(args)
    tmp = Path(tempfile.mkdtemp(prefix="wf-bench-alarms-"))
    rng = np.random.default_rng(5)

    # 1. condition evaluations through Engine.apply
    site = _site_with(a.tags)
    eng = Engine(site, Journal(tmp / "eval.sqlite"))
    n_zones = len(site.zones)  # the fence kernel tests every zone; the zone rules read its result
    idx = np.arange(a.tags)
    inside, outside = np.array([145.0, 70.0]), np.array([120.0, 70.0])
    eng.apply(1, _positions(idx, np.tile(outside, (a.tags, 1)), 1000.0))  # warm the kernels
    seq, t0 = 1, time.perf_counter()
    for b in range(a.batches):
        go_in = rng.random(a.tags) < 0.05  # 5 % of the tags are in the zone in each batch (most do not stay
        # the fences' dwell: this measures evaluation, not alarms)
        xy = np.where(go_in[:, None], inside, outside) + rng.normal(0, 0.5, (a.tags, 2))
        seq += 1
        eng.apply(seq, _positions(idx, xy, 1000.0 + 0.1 * (b + 1)))
    dt = time.perf_counter() - t0
    evals = a.batches * a.tags * n_zones
    eng.journal.close()
    report("alarms-condition-evals-per-s", evals / dt, "tag-zone-evals/s")

    # 2. the flood
    site = _site_with(a.flood)
    journal_path = tmp / "flood.sqlite"
    eng = Engine(site, Journal(journal_path))
    per_batch = a.flood // 100
    dwell = site.fences.min_dwell_s
    seq = 1
    eng.apply(seq, tick_message(2000.0))
    t0 = time.perf_counter()
    for b in range(100):
        sel = np.arange(b * per_batch, (b + 1) * per_batch)
        for dt_fix in (0.0, dwell):  # a first fix inside, and one after the fences' dwell: the entry counts
            seq += 1
            eng.apply(seq, _positions(sel, np.tile(inside, (len(sel), 1)), 2000.0 - dwell + 0.1 * b + dt_fix))
        seq += 1
        eng.apply(seq, tick_message(2000.0 + 0.1 * (b + 1)))
    dt = time.perf_counter() - t0
    eng.journal.close()
    db = sqlite3.connect(journal_path)
    activated = db.execute("SELECT count(DISTINCT alarm_id) FROM journal WHERE event = 'activate'").fetchone()[0]
    flood_rows = db.execute("SELECT count(*) FROM journal WHERE event = 'flood_start'").fetchone()[0]
    db.close()
    ok = verify_journal(journal_path).ok
    report("alarms-flood-activations", a.flood, "alarms")
    report("alarms-flood-journal-s", dt, "s")
    report("alarms-flood-vs-realtime", 10.0 / dt, "x")
    report("alarms-flood-lost", a.flood - activated, "alarms")
    report("alarms-flood-start-rows", flood_rows, "rows")
    report("alarms-flood-journal-intact", 1.0 if ok else 0.0, "bool")
