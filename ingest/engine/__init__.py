"""The engine: sequencer, recording, site state, replay. One process; see DESIGN.md, principle 1."""

from .core import Engine, Outcome
from .process import EngineProcess, load_site_text, site_from_text, tick_message
from .recording import RecordingReader, RecordingWriter
from .replay import replay

__all__ = ["Engine", "Outcome", "EngineProcess", "RecordingReader", "RecordingWriter", "replay", "tick_message",
           "load_site_text", "site_from_text", "main"]


def main(argv: list[str] | None = None) -> int:
    """``watchfloor engine --site FILE --out DIR``: run the engine until SIGINT / SIGTERM. With a signing key
    (site ``signing.key_dir`` or ``$WATCHFLOOR_KEY_DIR``) it seals its journal and recording; a key that is not
    the one the site pins (``signing.fingerprint``) stops it before it starts (exit 2)."""
    import argparse
    import logging
    import threading

    from alarms.keys import KeyDirError
    from ingest.signals import stop_on_signals

    ap = argparse.ArgumentParser(prog="watchfloor engine")
    ap.add_argument("--site", required=True)
    ap.add_argument("--out", required=True, help="folder for recording.sqlite, journal.sqlite, summary.json")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s engine %(levelname)s %(message)s")
    site, text = load_site_text(args.site)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        proc = EngineProcess(site, text, args.out)
    except KeyDirError as e:  # a signing key that is missing, too open, or not the pinned one: do not start
        logging.getLogger(__name__).error("refusing to start: %s", e)
        return 2
    try:
        proc.run(stop)
    finally:
        summary = proc.close()
    logging.getLogger(__name__).info("engine stopped: %s inputs, %s journal rows", summary["recording_seq"],
                                     summary["journal_rows"])
    return 0
