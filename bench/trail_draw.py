"""``watchfloor bench trail-draw``: drawing a found person's trail of the last 10 minutes at 10 Hz (6,000 fixes).

What a tick of the wall or the workstation does when a marked person's trail is due: read the person's samples
since ten minutes ago from the link's trails (console/link/trails.py: a numpy ring per person, read under a lock),
turn them into the line's columns (console/web/tiles/map/marks.py), and serialise the columns as Bokeh sends them
to the browser. Measured on a ring of ``--people`` people (default 200, the demo plant) with ``--fixes`` samples of
the marked one (default 6,000), ``--draws`` times. The peer, measured in the same run on the same fixes: the ordinary
Python way, a ``collections.deque`` of (t, x, y) tuples per person (bounded by ``maxlen``) filtered by time into
two lists, and the same deque turned into a numpy array at each draw (so Bokeh sends binary arrays, as ours);
all go through the same Bokeh serialisation.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import deque

import numpy as np

from bench import p95, report

__all__ = ["run"]



def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench trail-draw")
    ap.add_argument("--people", type=int, default=200)
    ap.add_argument("--fixes", type=int, default=6000)
    ap.add_argument("--draws", type=int, default=300)
    args = ap.parse_args(argv)

    from bokeh.core.serialization import Serializer

    from console.link.trails import LinkTrails
    from console.web.tiles.map.marks import MarksLayer

    rng = np.random.default_rng(3)
    t0 = 1_800_000_000.0
    ts = t0 + np.arange(args.fixes) / 10.0  # 10 Hz
    xy = np.cumsum(rng.normal(0, 0.1, (args.fixes, 2)), axis=0) + 100.0
    trails = LinkTrails(args.people, rate_hz=10.0)  # every fix kept
    for k in range(0, args.fixes, 200):  # as frames would bring them, 200 at a time
        sl = slice(k, k + 200)
        trails.add(np.full(len(ts[sl]), 7), xy[sl], ts[sl])
    now = float(ts[-1])
    peer_store = deque(((float(a), float(b), float(c)) for a, (b, c) in zip(ts, xy, strict=True)),
                       maxlen=args.fixes)
    serial = Serializer()

    ours, peer, peer_np, points = [], [], [], 0
    for _ in range(args.draws):
        t = time.perf_counter()
        cols = MarksLayer.trail_columns([7], trails, now, 600.0)
        serial.serialize(cols)
        ours.append(time.perf_counter() - t)
        points = len(cols["xs"][0])

        t = time.perf_counter()
        since = now - 600.0
        xs = [x for (s, x, _) in peer_store if s >= since]
        ys = [y for (s, _, y) in peer_store if s >= since]
        serial.serialize({"xs": [xs], "ys": [ys], "person": [7]})
        peer.append(time.perf_counter() - t)

        t = time.perf_counter()
        a = np.asarray(peer_store)
        a = a[a[:, 0] >= since]
        serial.serialize({"xs": [a[:, 1]], "ys": [a[:, 2]], "person": [7]})
        peer_np.append(time.perf_counter() - t)

    report("trail-draw-points", points, "points")
    report("trail-draw-p95", p95(ours) * 1000, "ms")
    report("trail-draw-median", statistics.median(ours) * 1000, "ms")
    report("trail-draw-peer-deque-p95", p95(peer) * 1000, "ms")
    report("trail-draw-speedup-vs-deque", p95(peer) / p95(ours), "x")
    report("trail-draw-peer-deque-numpy-p95", p95(peer_np) * 1000, "ms")
    report("trail-draw-speedup-vs-deque-numpy", p95(peer_np) / p95(ours), "x")
    report("trail-console-memory-per-person", LinkTrails(1).samples_per_person * 16 / 1024, "KiB")
