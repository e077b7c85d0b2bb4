"""Benchmarks run by ``watchfloor bench NAME``. They measure and print, never assert.

Each benchmark is a module ``bench/<name>.py`` (dashes in NAME become underscores) with ``run(args) -> None``
that prints its figures through :func:`report`, one line each: ``bench: <figure-name> <value> <unit>``.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

__all__ = ["report", "available", "run", "best_time", "p95", "write_bench_site"]


def report(figure: str, value: float, unit: str) -> None:
    """Print one figure in the project's benchmark format."""
    if abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 1:
        text = f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    else:
        text = f"{value:.3g}"
    print(f"bench: {figure} {text} {unit}", flush=True)


def p95(samples: list[float]) -> float:
    """The 95th percentile of ``samples`` (their maximum when there are fewer than 20)."""
    import statistics

    return statistics.quantiles(samples, n=20)[18] if len(samples) >= 20 else max(samples)


def write_bench_site(site, tmp):
    """Write ``site`` to ``tmp/site.yaml`` without its floor-plan image (benchmarks serve no page); return the
    site as loaded back from that file, and the path."""
    import yaml

    from config import load_site
    from console.cli.launch import write_site

    path = tmp / "site.yaml"
    write_site(site, path)
    data = yaml.safe_load(path.read_text())
    data["floor_plan"].pop("image", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return load_site(path), path


def best_time(fn, repeat: int) -> float:
    """Seconds of the fastest of ``repeat`` calls of ``fn()`` (the least disturbed by the shared machine)."""
    import time

    best = float("inf")
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def available() -> list[str]:
    """Names of the benchmarks shipped in bench/."""
    here = Path(__file__).parent
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))


def run(name: str, args: list[str]) -> int:
    mod_name = name.replace("-", "_")
    if name not in available():
        print(f"unknown benchmark {name!r}; available: {', '.join(available())}")
        return 2
    mod = importlib.import_module(f"bench.{mod_name}")
    mod.run(args)
    return 0
