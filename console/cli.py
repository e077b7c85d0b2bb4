"""The ``watchfloor`` command line. Each sub-command is one process that can run alone, on its own host.

This module is the composition root: it dispatches to each package's ``main`` by a lazy import, so the
console's Panel pages themselves never import engine internals (DESIGN.md, "Imports run one way").
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from datetime import UTC
from pathlib import Path

__all__ = ["main"]

ENTRY = {
    "engine": "ingest.engine:main",
    "console": "console.app:main",
    "simulate": "ingest.simulator:main",
    "ingest.uwb": "ingest.uwb:main",
    "ingest.gas": "ingest.gas:main",
    "ingest.vibration": "ingest.vibration:main",
    "ingest.camera": "ingest.camera:main",
    "ingest.permits": "ingest.permits:main",
    "alarms-server": "console.opcua_ac:main",
}


def _call(entry: str, argv: list[str]) -> int:
    mod, fn = ENTRY[entry].split(":")
    return int(getattr(importlib.import_module(mod), fn)(argv) or 0)


def _config_check(path: str) -> int:
    from config import ConfigError, load_site, site_summary

    try:
        site = load_site(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        print(f"{path}: {len(e.issues)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: ok: {site_summary(site)}")
    return 0


def _journal_verify(path: str) -> int:
    from alarms.journal import verify_journal

    r = verify_journal(path)
    if r.ok:
        print(f"{path}: intact, {r.rows} rows, head {r.head}")
        return 0
    where = f" (first bad row: {r.bad_row})" if r.bad_row is not None else ""
    print(f"{path}: NOT intact{where}: {r.reason}", file=sys.stderr)
    return 1


def _time_arg(text: str | None) -> float | None:
    """Epoch seconds or an ISO 8601 time (UTC when no offset is given)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        from datetime import datetime

        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _kpi(args: argparse.Namespace) -> int:
    import json

    from alarms.journal import verify_journal
    from alarms.kpi import compute_kpis, format_kpis, read_journal_events

    check = verify_journal(args.journal)
    if not check.ok:
        print(f"{args.journal}: NOT intact: {check.reason}; KPIs of a tampered journal are not computed",
              file=sys.stderr)
        return 1
    try:
        t0, t1 = _time_arg(args.t_from), _time_arg(args.t_to)
    except ValueError as e:
        print(f"watchfloor kpi: bad time: {e}", file=sys.stderr)
        return 2
    k = compute_kpis(read_journal_events(args.journal), t0, t1, operator_positions=args.positions)
    print(json.dumps(k.as_dict(), indent=2) if args.json else format_kpis(k))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ingest.engine import replay

    out = Path(args.out) if args.out else Path(args.recording).with_suffix("").parent / "replay"
    summary = replay(args.recording, out, speed=args.speed)
    print(f"replayed {summary['recording_seq']} inputs: {summary['positions']} positions, "
          f"{summary['alarms_raised']} alarms raised, journal {out / 'journal.sqlite'} "
          f"({summary['journal_rows']} rows, head {summary['journal_head'][:16]})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="watchfloor", description="Real-time operations console for a hazardous site")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="the simulated demo plant, everything on this machine")
    d.add_argument("--headless", action="store_true", help="no console page")
    d.add_argument("--for", dest="duration", default=None, help="run this long, e.g. 30s, 5m (default: until Ctrl-C)")
    d.add_argument("--out", default=None, help="folder for the recording and the journal")
    d.add_argument("--scenario", default="demo", help="simulator scenario(s), comma-separated (default: demo)")
    d.add_argument("--seed", type=int, default=1)
    d.add_argument("--site", default=None, help="site file (default: the shipped demo plant)")
    d.add_argument("--port", type=int, default=None, help="console port (default: the site's, 5006)")
    d.add_argument("--timing", action="append", default=[], metavar="KEY=SECONDS",
                   help="override a scenario timing parameter of the simulator (repeatable)")

    r = sub.add_parser("run", help="production: every process of a real site")
    r.add_argument("--site", required=True)
    r.add_argument("--out", default=None)

    i = sub.add_parser("ingest", help="one ingest adapter")
    i.add_argument("source", choices=["uwb", "gas", "vibration", "camera", "permits"])

    for name, help_ in (("engine", "the engine"), ("console", "the Panel console server"),
                        ("simulate", "the plant simulator"),
                        ("alarms-server", "live alarms as OPC UA Alarms & Conditions")):
        sub.add_parser(name, help=help_, add_help=False)

    rp = sub.add_parser("replay", help="replay a shift recording")
    rp.add_argument("recording")
    rp.add_argument("--headless", action="store_true")
    rp.add_argument("--out", default=None)
    rp.add_argument("--speed", type=float, default=None, help="x real time (default: as fast as possible)")

    c = sub.add_parser("config", help="site configuration")
    csub = c.add_subparsers(dest="config_cmd", required=True)
    csub.add_parser("check").add_argument("file")

    j = sub.add_parser("journal", help="alarm journal")
    jsub = j.add_subparsers(dest="journal_cmd", required=True)
    jsub.add_parser("verify").add_argument("file")

    k = sub.add_parser("kpi", help="alarm KPIs of a journal")
    k.add_argument("journal")
    k.add_argument("--from", dest="t_from", default=None)
    k.add_argument("--to", dest="t_to", default=None)
    k.add_argument("--positions", type=int, default=1, help="operator positions sharing these alarms")
    k.add_argument("--json", action="store_true")

    b = sub.add_parser("bench", help="run a benchmark from bench/")
    b.add_argument("name", nargs="?")
    return ap


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # process sub-commands parse their own options
    if argv and argv[0] in ("engine", "console", "simulate", "alarms-server"):
        return _call(argv[0], argv[1:])
    if len(argv) >= 2 and argv[0] == "ingest" and argv[1] in ("uwb", "gas", "vibration", "camera", "permits"):
        return _call(f"ingest.{argv[1]}", argv[2:])
    args, rest = build_parser().parse_known_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.cmd == "bench":
        import bench

        if not args.name:
            print("benchmarks: " + ", ".join(bench.available()))
            return 0
        return bench.run(args.name, rest)
    if rest:
        build_parser().error(f"unrecognized arguments: {' '.join(rest)}")
    if args.cmd == "demo":
        from config import DEMO_SITE

        from .demo import parse_duration, run_demo

        return run_demo(headless=args.headless, duration_s=parse_duration(args.duration) if args.duration else None,
                        out=Path(args.out) if args.out else None, scenario=args.scenario, seed=args.seed,
                        site_path=Path(args.site) if args.site else DEMO_SITE, console_port=args.port,
                        timing=args.timing)
    if args.cmd == "run":
        from .demo import run_site

        return run_site(Path(args.site), Path(args.out) if args.out else None)
    if args.cmd == "replay":
        return _replay(args)
    if args.cmd == "config":
        return _config_check(args.file)
    if args.cmd == "journal":
        return _journal_verify(args.file)
    if args.cmd == "kpi":
        return _kpi(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
