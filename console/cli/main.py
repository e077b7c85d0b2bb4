"""The ``watchfloor`` command line. Each sub-command is one process that can run alone, on its own host.

This module is the composition root: it dispatches to each package's ``main`` by a lazy import, so the
console's Panel pages themselves never import engine internals (DESIGN.md, "Imports run one way").
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from datetime import UTC, tzinfo
from pathlib import Path

__all__ = ["main"]

ENTRY = {
    "engine": "ingest.engine:main",
    "console": "console.web.app:main",
    "simulate": "ingest.simulator:main",
    "ingest.uwb": "ingest.uwb:main",
    "ingest.gas": "ingest.gas:main",
    "ingest.vibration": "ingest.vibration:main",
    "ingest.camera": "ingest.camera:main",
    "ingest.permits": "ingest.permits:main",
    "alarms-server": "console.opcua.server:main",
}


def _call(entry: str, argv: list[str]) -> int:
    mod, fn = ENTRY[entry].split(":")
    return int(getattr(importlib.import_module(mod), fn)(argv) or 0)


def _config_check(path: str) -> int:
    from config import ConfigError, load_site, site_summary
    from config.loader import inline_secrets, weak_accounts

    try:
        site = load_site(path)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        print(f"{path}: {len(e.issues)} problem(s)", file=sys.stderr)
        return 1
    for w in inline_secrets(path):
        print(f"warning: {w.render(path)}", file=sys.stderr)
    weak = weak_accounts(site)
    if weak:
        for w in weak:
            print(w.render(path), file=sys.stderr)
        print(f"{path}: {len(weak)} problem(s)", file=sys.stderr)
        return 1
    print(f"{path}: ok: {site_summary(site)}" + (" (a demo site: demo credentials accepted)" if site.access.demo else ""))
    return 0


def _keys(args: argparse.Namespace) -> int:
    from alarms.keys import JOURNAL_SIGNING_KEY, KeyDirError, init_key_dir, read_journal_fingerprint

    try:
        if args.keys_cmd == "init":
            fp = init_key_dir(args.dir)
            print(f"{args.dir}: new journal-signing key {Path(args.dir) / JOURNAL_SIGNING_KEY} (mode 0600, folder 0700)")
            print("pin it in the site file:  signing: {key_dir: " + str(args.dir) + ", fingerprint: " + fp + "}")
            print(fp)
        else:
            print(read_journal_fingerprint(args.dir))
    except (KeyDirError, OSError) as e:
        print(f"watchfloor keys {args.keys_cmd}: {e}", file=sys.stderr)
        return 1
    return 0


def _report_check(path: str, r) -> bool:
    """Print one database's verdict; True when it is proven (signed with the pinned key, intact, closed or
    ``--allow-open``)."""
    unit = "input" if r.kind == "recording" else "row"
    if not r.ok:
        if not r.verifiable:
            print(f"{path}: {r.kind} not verifiable: {r.reason.removeprefix('not verifiable: ')}", file=sys.stderr)
        else:
            where = f" (first bad {unit}: {r.bad_row})" if r.bad_row is not None else ""
            print(f"{path}: {r.kind} NOT intact{where}: {r.reason}", file=sys.stderr)
        return False
    if not r.verifiable:
        print(f"{path}: {r.kind} not verifiable: {r.reason.removeprefix('not verifiable: ')} "
              "(an empty database proves nothing)", file=sys.stderr)
        return False
    notes = "".join(f"\n  note: {n}" for n in r.notes if n != "no seals")
    if not r.signed:
        seals = (f"{r.seals} seals not checked: give --site or --fingerprint" if r.seals
                 else "no seals: its engine ran without a signing key")
        print(f"{path}: {r.kind} unsigned: chain intact but not proven ({r.rows} {unit}s, head {r.head}; "
              f"{seals}){notes}")
        return False
    state = "closed" if r.closed else "OPEN (--allow-open)"
    print(f"{path}: {r.kind} intact and signed: {r.rows} {unit}s, head {r.head}, {r.seals} seals by {r.fingerprint}"
          f" for site {r.site_id}, {state}{notes}")
    return True


def _journal_verify(args: argparse.Namespace) -> int:
    """Exit 0 only when everything given is proven; 1 for anything else (tampered, not verifiable, unsigned,
    open); 2 for a usage or site-file problem."""
    import re

    from alarms.journal import verify_journal
    from alarms.keys import FINGERPRINT_PATTERN
    from ingest.engine.audit import compare_with_replay, database_kind
    from ingest.engine.recording import verify_recording

    fingerprint, site_id = args.fingerprint, None
    if fingerprint is not None and not re.match(FINGERPRINT_PATTERN, fingerprint):
        print(f"--fingerprint {fingerprint!r}: expected sha256:<64 hex digits> (as `watchfloor keys show` prints)",
              file=sys.stderr)
        return 2
    if args.site:
        from config import ConfigError, load_site

        try:
            site = load_site(args.site)
        except ConfigError as e:
            print(str(e), file=sys.stderr)
            return 2
        fingerprint, site_id = site.signing.fingerprint, site.id
        if fingerprint is None:
            print(f"{args.site}: pins no signing.fingerprint: nothing to check the seals with", file=sys.stderr)
            return 2
    kind = database_kind(args.file) or "journal"  # not a database at all: verify_journal says why
    journal = args.file if kind == "journal" else None
    recording = args.file if kind == "recording" else args.recording
    if args.recording and kind == "recording":
        print(f"{args.file} is a recording: give the journal as FILE and the recording with --recording",
              file=sys.stderr)
        return 2
    opts = {"fingerprint": fingerprint, "site_id": site_id, "allow_open": args.allow_open}
    good = True
    rec_ok = False
    if journal is not None:
        good &= _report_check(journal, verify_journal(journal, **opts))
    if recording is not None:
        r = verify_recording(recording, **opts)
        rec_ok = r.ok and r.verifiable
        good &= _report_check(recording, r)
    if journal is not None and recording is not None:
        if not rec_ok:
            print(f"{journal}: not compared with a replay of {recording} (the recording is not intact)",
                  file=sys.stderr)
            good = False
        else:
            diff, rows = compare_with_replay(journal, recording)
            if diff:
                print(f"{journal}: does not match the replay of {recording}: {diff}", file=sys.stderr)
                good = False
            else:
                print(f"{journal}: matches the replay of {recording} ({rows} rows, byte for byte)")
    return 0 if good else 1


def _time_arg(text: str | None, tz: tzinfo = UTC) -> float | None:
    """Epoch seconds or an ISO 8601 time (in ``tz``, the site's time zone, when no offset is given)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        from datetime import datetime

        dt = datetime.fromisoformat(text)
        return (dt if dt.tzinfo else dt.replace(tzinfo=tz)).timestamp()


def _kpi_zone(args: argparse.Namespace) -> tzinfo:
    """The time zone the KPIs are read in: ``--tz``, else the site's (``--site``, else the recording beside the
    journal, which keeps the site file it ran with), else UTC."""
    from zoneinfo import ZoneInfo

    if args.tz:
        return ZoneInfo(args.tz)
    name = None
    if args.site:
        from config import load_site

        name = load_site(args.site).timezone
    else:
        rec = Path(args.journal).with_name("recording.sqlite")
        if rec.exists():
            import sqlite3

            import yaml

            db = sqlite3.connect(f"file:{rec}?mode=ro", uri=True)
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'site_yaml'").fetchone()
            finally:
                db.close()
            data = yaml.safe_load(row[0]) if row else None
            name = data.get("timezone") if isinstance(data, dict) else None
    return ZoneInfo(name) if isinstance(name, str) and name else UTC


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
        tz = _kpi_zone(args)
        t0, t1 = _time_arg(args.t_from, tz), _time_arg(args.t_to, tz)
    except (ValueError, KeyError, OSError) as e:
        print(f"watchfloor kpi: bad time or time zone: {e}", file=sys.stderr)
        return 2
    k = compute_kpis(read_journal_events(args.journal), t0, t1, operator_positions=args.positions)
    print(json.dumps(k.as_dict(), indent=2) if args.json else format_kpis(k, tz))
    return 0


def _replay(args: argparse.Namespace) -> int:
    from ingest.engine import replay

    out = Path(args.out) if args.out else Path(args.recording).with_suffix("").parent / "replay"
    summary = replay(args.recording, out, speed=args.speed)
    print(f"replayed {summary['recording_seq']} inputs: {summary['positions']} positions, "
          f"{summary['alarms_raised']} alarms raised, journal {out / 'journal.sqlite'} "
          f"({summary['journal_rows']} rows, head {summary['journal_head'][:16]})")
    return 0


def _scenarios_epilog() -> str:
    """The simulator's scenarios for ``watchfloor demo --help`` (imported only then: the simulator is heavy)."""
    from ingest.simulator.scenarios import SCENARIOS

    lines = ["scenarios (--scenario NAME[,NAME...]):"]
    lines += [f"  {name:22} {text}" for name, text in SCENARIOS.items()]
    lines.append("demo login: op1, op2 (operators), sup1, sup2 (supervisors), safety1; password demo")
    return "\n".join(lines)


def build_parser(demo_epilog: str = "") -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="watchfloor", description="Real-time operations console for a hazardous site")
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="cmd", required=True)

    d = sub.add_parser("demo", help="the simulated demo plant, everything on this machine", epilog=demo_epilog,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
    jv = jsub.add_parser("verify", help="check a journal and/or a recording: chain, seals, replay",
                         description="Exit 0 only when proven: intact, signed with the pinned key, closed. "
                                     "Exit 1 otherwise (tampered, not verifiable, unsigned, open); 2: usage.")
    jv.add_argument("file", help="journal.sqlite or recording.sqlite (told apart by their tables)")
    jv.add_argument("--recording", default=None, help="also check this recording and replay it against FILE")
    key = jv.add_mutually_exclusive_group()
    key.add_argument("--site", default=None, help="site file whose signing.fingerprint (and id) the seals must have")
    key.add_argument("--fingerprint", default=None, help="sha256:<hex> of the signing key (as `keys show` prints)")
    jv.add_argument("--allow-open", action="store_true",
                    help="a running engine's files: unsealed last rows and no close seal are not a failure")

    from .users import add_parser as add_users_parser

    add_users_parser(sub)

    ks = sub.add_parser("keys", help="the key directory (journal-signing key)")
    ksub = ks.add_subparsers(dest="keys_cmd", required=True)
    for name, help_ in (("init", "make DIR (mode 0700) and a new journal-signing key; print its fingerprint"),
                        ("show", "print the fingerprint of DIR's journal-signing key")):
        ksub.add_parser(name, help=help_).add_argument("--dir", required=True, help="the key directory")

    k = sub.add_parser("kpi", help="alarm KPIs of a journal")
    k.add_argument("journal")
    k.add_argument("--from", dest="t_from", default=None)
    k.add_argument("--to", dest="t_to", default=None)
    k.add_argument("--positions", type=int, default=1, help="operator positions sharing these alarms")
    k.add_argument("--json", action="store_true")
    k.add_argument("--site", default=None, help="read times in this site's time zone (default: the recording's "
                                               "beside the journal, else UTC)")
    k.add_argument("--tz", default=None, help="an IANA time zone, e.g. Asia/Shanghai (overrides the site's)")

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
    demo_help = argv[:1] == ["demo"] and ("-h" in argv or "--help" in argv)
    args, rest = build_parser(_scenarios_epilog() if demo_help else "").parse_known_args(argv)
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

        from .launch import parse_duration, run_demo

        return run_demo(headless=args.headless, duration_s=parse_duration(args.duration) if args.duration else None,
                        out=Path(args.out) if args.out else None, scenario=args.scenario, seed=args.seed,
                        site_path=Path(args.site) if args.site else DEMO_SITE, console_port=args.port,
                        timing=args.timing)
    if args.cmd == "run":
        from .launch import run_site

        return run_site(Path(args.site), Path(args.out) if args.out else None)
    if args.cmd == "replay":
        return _replay(args)
    if args.cmd == "users":
        from .users import run as run_users

        return run_users(args)
    if args.cmd == "config":
        return _config_check(args.file)
    if args.cmd == "journal":
        return _journal_verify(args)
    if args.cmd == "keys":
        return _keys(args)
    if args.cmd == "kpi":
        return _kpi(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
