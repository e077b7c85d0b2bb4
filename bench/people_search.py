"""``watchfloor bench people-search``: how fast the workstation finds a person among 10,000.

10,000 people (the demo plant's 200, repeated with new ids and tags; Chinese names from 20 surnames x 20 given
names), indexed once (console/web/search.py: names, characters, toneless pinyin, initials, tag, id, company), then
``--queries`` queries typed the way a control room asks: characters, pinyin with and without spaces, initials, a
tag, a company word, a miss. The goal is p95 under 50 ms at the console. The peer, measured in the same run: the
same fields as numpy string arrays searched with ``np.char.find`` (vectorised, no Python loop over people).

Options: ``--people N`` (default 10000), ``--queries N`` (default 300).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench import p95, report

__all__ = ["run"]


def _site(n: int):
    from config import DEMO_SITE, load_site

    base = load_site(DEMO_SITE)
    people = []
    for k in range(n):
        p = base.people[k % len(base.people)]
        people.append(p.model_copy(update={"id": f"P{k:05d}", "tag": f"T{k:05d}"}))
    return base.model_copy(update={"people": people})



def run(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench people-search")
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args(argv)

    from console.web.search import PeopleIndex

    site = _site(args.people)
    t0 = time.perf_counter()
    index = PeopleIndex(site)
    report("people-search-index-build", (time.perf_counter() - t0) * 1000, "ms")
    typed = ["张辉", "zhanghui", "zhang hui", "zh", "T04242", "contractor", "li jie", "李", "wangwei", "nobody"]
    queries = [typed[i % len(typed)] for i in range(args.queries)]

    ours = []
    for q in queries:
        t = time.perf_counter()
        index.search(q)
        ours.append(time.perf_counter() - t)

    # the peer: the same precomputed fields as numpy string arrays, np.char.find on each (a vectorised scan)
    cols = [np.array(c) for c in zip(*index._fields)]
    peer = []
    for q in queries:
        needle = q.strip().lower()
        tight = needle.replace(" ", "")
        t = time.perf_counter()
        hit = np.zeros(len(index.people), dtype=bool)
        for c in cols:
            hit |= np.char.find(c, needle) >= 0
            hit |= np.char.find(c, tight) >= 0
        np.flatnonzero(hit)[:20]
        peer.append(time.perf_counter() - t)

    report("people-search-p95", p95(ours) * 1000, "ms")
    report("people-search-median", statistics.median(ours) * 1000, "ms")
    report("people-search-peer-numpy-char-p95", p95(peer) * 1000, "ms")
    report("people-search-speedup-vs-numpy-char", p95(peer) / p95(ours), "x")
