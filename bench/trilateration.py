"""Trilateration throughput: kernels.trilateration against scipy and the PyPI ``localization`` package.

``watchfloor bench trilateration [--n 100000] [--subsample 300] [--seed 0]``

All solvers get the same data: N tags in a 30 m x 20 m hall with 8 anchors at mixed heights, 3-D,
line-of-sight Gaussian range noise of 0.1 m. Figures:

- numba compile time of a cold cache (a subprocess with an empty NUMBA_CACHE_DIR) and the first call
  with that cache filled (what a restarted engine pays, since the kernels use ``cache=True``);
- fixes/s on one thread (the serial kernel) and on all numba threads (the parallel kernel), best of 3;
- the same on an NLOS mix (0-2 of 8 ranges biased), which exercises the subset search;
- a per-tag ``scipy.optimize.least_squares`` loop on a subsample (default trust-region solver, started over
  the anchors' centroid at 1 m), extrapolated per fix, and the ratio;
- the same for ``localization`` (PyPI ``localization==0.1.7``, kamalshadi/Localization, its LSE solver:
  scipy BFGS from a weighted anchor centroid), if installed;
- accuracy on the subsample: 3-D RMSE of each solver against the Cramer-Rao bound.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import report

ANCHORS = np.array(
    [
        [0.0, 0.0, 3.0],
        [30.0, 0.0, 6.0],
        [30.0, 20.0, 3.5],
        [0.0, 20.0, 7.0],
        [15.0, -2.0, 4.0],
        [15.0, 22.0, 5.5],
        [-2.0, 10.0, 6.5],
        [32.0, 10.0, 2.5],
    ]
)
SIGMA = 0.1

_COMPILE_SNIPPET = """
import time, numpy as np
t = time.perf_counter()
from kernels.trilateration import trilaterate
a = np.array([[0, 0, 3], [30, 0, 6], [30, 20, 3.5], [0, 20, 7.0]])
trilaterate(a, np.full((2, 4), 15.0), parallel=False)
trilaterate(a, np.full((2, 4), 15.0), parallel=True)
print(time.perf_counter() - t)
"""


def _first_call_s(cache_dir: str) -> float:
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, PYTHONPATH=str(root))
    out = subprocess.run(
        [sys.executable, "-c", _COMPILE_SNIPPET],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(out.stdout.strip().splitlines()[-1])


def _data(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    tags = np.column_stack([rng.uniform(2, 28, n), rng.uniform(2, 18, n), rng.uniform(0.3, 2.0, n)])
    clean = np.linalg.norm(tags[:, None, :] - ANCHORS[None], axis=2)
    return tags, clean


def _nlos(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    n, k = clean.shape
    ranges = clean + rng.normal(0, SIGMA, clean.shape)
    shape, scale = (0.22 / 0.38) ** 2, 0.38**2 / 0.22
    for i in range(n):
        m = rng.integers(0, 3)
        cols = rng.choice(k, m, replace=False)
        ranges[i, cols] += rng.gamma(shape, scale, m)
    return ranges


def _best_rate(fn, n: int, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def _crlb_rmse(tags: np.ndarray) -> float:
    total = 0.0
    for tag in tags:
        u = tag - ANCHORS
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        total += np.trace(np.linalg.inv(u.T @ u)) * SIGMA**2
    return float(np.sqrt(total / len(tags)))


def run(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="watchfloor bench trilateration")
    parser.add_argument("--n", type=int, default=100_000, help="tags per batch")
    parser.add_argument("--subsample", type=int, default=300, help="fixes for the per-tag python solvers")
    parser.add_argument("--seed", type=int, default=0)
    opts = parser.parse_args(args)

    with tempfile.TemporaryDirectory() as cache:
        report("trilaterate-compile-cold-s", _first_call_s(cache), "s")
        report("trilaterate-first-call-cached-s", _first_call_s(cache), "s")

    import numba

    from kernels.trilateration import trilaterate

    rng = np.random.default_rng(opts.seed)
    tags, clean = _data(rng, opts.n)
    ranges = clean + rng.normal(0, SIGMA, clean.shape)
    trilaterate(ANCHORS, ranges[:10], parallel=False)
    trilaterate(ANCHORS, ranges[:10], parallel=True)

    rate1 = _best_rate(lambda: trilaterate(ANCHORS, ranges, sigma=SIGMA, parallel=False), opts.n)
    rate_all = _best_rate(lambda: trilaterate(ANCHORS, ranges, sigma=SIGMA, parallel=True), opts.n)
    report("trilaterate-fixes-per-s-1thread", rate1, "fixes/s")
    report(f"trilaterate-fixes-per-s-{numba.get_num_threads()}threads", rate_all, "fixes/s")
    fixes = trilaterate(ANCHORS, ranges, sigma=SIGMA)
    rmse = float(np.sqrt(np.mean(np.sum((fixes.position - tags) ** 2, axis=1))))
    report("trilaterate-rmse-vs-crlb", 100.0 * rmse / _crlb_rmse(tags[:2000]), "%")
    report("trilaterate-valid", 100.0 * fixes.valid.mean(), "%")

    nlos = _nlos(rng, clean)
    rate_nlos = _best_rate(lambda: trilaterate(ANCHORS, nlos, sigma=SIGMA, parallel=False), opts.n)
    report("trilaterate-nlos-fixes-per-s-1thread", rate_nlos, "fixes/s")
    nf = trilaterate(ANCHORS, nlos, sigma=SIGMA)
    h = np.linalg.norm(nf.position[nf.valid, :2] - tags[nf.valid, :2], axis=1)
    report("trilaterate-nlos-horizontal-p95-m", float(np.percentile(h, 95)), "m")

    # Per-tag python solvers on a subsample of the same data.
    sub = np.arange(min(opts.subsample, opts.n))
    from scipy.optimize import least_squares

    # Started where a careful user would start: over the anchors' centroid at a tag's height. (From the
    # centroid itself, at the anchors' mean height, about 6 % of the fixes land on the mirror minimum above.)
    start = np.array([*ANCHORS[:, :2].mean(axis=0), 1.0])
    est = np.empty((len(sub), 3))
    t = time.perf_counter()
    for j, i in enumerate(sub):
        r = ranges[i]
        est[j] = least_squares(lambda x, r=r: np.linalg.norm(x - ANCHORS, axis=1) - r, start).x
    scipy_rate = len(sub) / (time.perf_counter() - t)
    report("scipy-least-squares-fixes-per-s", scipy_rate, "fixes/s")
    report("trilaterate-vs-scipy", rate1 / scipy_rate, "x")
    report("trilaterate-vs-scipy-all-threads", rate_all / scipy_rate, "x")
    crlb = _crlb_rmse(tags[sub])
    ours = float(np.sqrt(np.mean(np.sum((fixes.position[sub] - tags[sub]) ** 2, axis=1))))
    report("trilaterate-subsample-rmse-m", ours, "m")
    report("scipy-subsample-rmse-m", float(np.sqrt(np.mean(np.sum((est - tags[sub]) ** 2, axis=1)))), "m")
    report("crlb-subsample-rmse-m", crlb, "m")

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import localization as lx
    except ImportError as exc:
        print(f"localization (PyPI localization==0.1.7 + shapely) not installed, skipped: {exc}")
        return
    names = [f"A{k}" for k in range(len(ANCHORS))]
    lx_est = np.empty((len(sub), 3))
    t = time.perf_counter()
    # The package prints a line per solve; that is part of its cost, kept out of the terminal.
    with contextlib.redirect_stdout(io.StringIO()):
        for j, i in enumerate(sub):
            project = lx.Project(mode="3D", solver="LSE")
            for name, a in zip(names, ANCHORS):
                project.add_anchor(name, tuple(a))
            target, _ = project.add_target()
            for name, r in zip(names, ranges[i]):
                target.add_measure(name, float(r))
            project.solve()
            lx_est[j] = (target.loc.x, target.loc.y, target.loc.z)
    lx_rate = len(sub) / (time.perf_counter() - t)
    report("localization-lse-fixes-per-s", lx_rate, "fixes/s")
    report("trilaterate-vs-localization", rate1 / lx_rate, "x")
    report(
        "localization-subsample-rmse-m",
        float(np.sqrt(np.mean(np.sum((lx_est - tags[sub]) ** 2, axis=1)))),
        "m",
    )
