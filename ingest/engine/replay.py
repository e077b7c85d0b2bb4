"""Replay a shift recording through the engine, as fast as it goes (or paced).

The recording carries the site configuration it ran with, so nothing else is needed. The journal written
here equals the live run's journal byte for byte: the same inputs, applied in the same order, through the
same :meth:`Engine.apply`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alarms.journal import Journal
from ingest import bus

from .core import Engine, Outcome, decode_recorded
from .process import _clean, site_from_text
from .recording import RecordingReader

__all__ = ["replay"]


def replay(recording: str | Path, out_dir: str | Path, *, speed: float | None = None,
           on_outcome: Callable[[int, bus.Message, Outcome, Engine], None] | None = None) -> dict[str, Any]:
    """Apply every input of ``recording``; write ``out_dir/journal.sqlite`` and return the run summary.

    ``speed``: None = as fast as possible; X = X times real time, paced by the recorded clock ticks.
    ``on_outcome`` is called after each input (for a console feed or a test).
    """
    reader = RecordingReader(recording)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    site = site_from_text(reader.meta["site_yaml"], f"{recording}:meta.site_yaml")
    journal = Journal(out / "journal.sqlite")
    engine = Engine(site, journal)
    first_tick: float | None = None
    wall0 = time.monotonic()
    try:
        for seq, frames in reader.inputs():
            msg = decode_recorded(frames)
            if speed is not None and msg.kind == "tick":
                first_tick = msg.event_ts_s if first_tick is None else first_tick
                delay = (msg.event_ts_s - first_tick) / speed - (time.monotonic() - wall0)
                if delay > 0:
                    time.sleep(delay)
            outcome = engine.apply(seq, msg)
            if on_outcome is not None:
                on_outcome(seq, msg, outcome, engine)
        summary = {**engine.status(), "journal_rows": journal.rows, "journal_head": journal.head}
    finally:
        journal.close()
        reader.close()
    (out / "summary.json").write_text(json.dumps(_clean(summary), indent=2, sort_keys=True))
    return summary
