"""Alarm-system KPIs (EEMUA 191 / ISA-18.2 clause 16) computed from a journal, for any time window.

All times are engine time (seconds since the epoch, UTC). Definitions used here:

- *alarm rate*: activations (``activate`` and ``re_alarm`` rows) per operator position per 10 minutes; the
  average over every 10-minute interval of the window (intervals aligned to the window start) and the peak;
- *flood*: a 10-minute interval with more than 10 alarms per operator position; reported as the percentage of
  intervals in flood;
- *chattering*: an alarm with 3 or more activations within any 60 s;
- *standing*: an alarm active for more than 24 h (activated and not cleared for 24 h), at any time in the window;
- *time to acknowledge*: ``after_s`` of the ``acknowledge`` rows (seconds from activation), median and p95;
- *camera detections verified*, per camera and class (``person``: the untagged-person finding): ``confirmed``
  (``detection_confirmed`` rows), ``false_positive`` (``detection_rejected`` rows) and the *false-positive rate*
  false_positive / (confirmed + false_positive), as docs/cameras.md defines it.
"""

from __future__ import annotations

import json
import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, tzinfo
from pathlib import Path

import numpy as np

__all__ = ["AlarmKpis", "compute_kpis", "detection_verdicts", "read_journal_events", "format_kpis", "INTERVAL_S",
           "FLOOD_PER_INTERVAL"]

INTERVAL_S = 600.0
FLOOD_PER_INTERVAL = 10
CHATTER_COUNT, CHATTER_WINDOW_S = 3, 60.0
STANDING_S = 24 * 3600.0


@dataclass
class AlarmKpis:
    from_ts_s: float
    to_ts_s: float
    operator_positions: int
    activations: int
    intervals: int
    rate_avg_per_10min: float
    rate_peak_per_10min: int
    flood_intervals_pct: float
    top10: list[tuple[str, int]] = field(default_factory=list)
    chattering: list[str] = field(default_factory=list)
    standing: list[str] = field(default_factory=list)
    priority: dict[str, int] = field(default_factory=dict)
    ack_count: int = 0
    ack_median_s: float | None = None
    ack_p95_s: float | None = None
    shelved: int = 0
    out_of_service: int = 0
    refused: int = 0
    #: per camera and class: ``camera``, ``class``, ``confirmed``, ``false_positive``, ``fp_rate``
    detections: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def read_journal_events(path: str | Path) -> list[tuple[float, str, str, str]]:
    """(engine_ts_s, event, alarm_id, detail JSON) of every row, in journal order."""
    db = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        return db.execute("SELECT engine_ts_s, event, alarm_id, detail FROM journal ORDER BY row").fetchall()
    finally:
        db.close()


def detection_verdicts(events: list[tuple[float, str, str, str]]) -> list[dict]:
    """Verdicts on camera detections per camera and class, from journal rows (engine_ts_s, event, alarm_id, detail
    JSON): ``camera``, ``class``, ``confirmed``, ``false_positive``, ``fp_rate`` (false_positive / verified)."""
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for _, ev, _, d in events:
        if ev in ("detection_confirmed", "detection_rejected"):
            detail = json.loads(d)
            tally[(str(detail.get("camera")), str(detail.get("class")))][ev == "detection_rejected"] += 1
    return [{"camera": cam, "class": cls, "confirmed": c, "false_positive": r, "fp_rate": r / (c + r)}
            for (cam, cls), (c, r) in sorted(tally.items())]


def compute_kpis(events: list[tuple[float, str, str, str]], from_ts_s: float | None = None,
                 to_ts_s: float | None = None, *, operator_positions: int = 1) -> AlarmKpis:
    """KPIs of the rows whose time lies in [from_ts_s, to_ts_s) (default: the journal's span)."""
    if from_ts_s is None:
        from_ts_s = min((e[0] for e in events), default=0.0)
    if to_ts_s is None:
        # just after the last row (at epoch seconds, + 1e-9 would be lost to rounding and leave the last rows out)
        to_ts_s = math.nextafter(max((e[0] for e in events), default=from_ts_s), math.inf)
    inside = [e for e in events if from_ts_s <= e[0] < to_ts_s]
    acts = [(t, a, json.loads(d)) for t, ev, a, d in inside if ev in ("activate", "re_alarm")]
    n_int = max(1, int(np.ceil((to_ts_s - from_ts_s) / INTERVAL_S)))
    per_interval = np.zeros(n_int, dtype=np.int64)
    for t, _, _ in acts:
        per_interval[min(int((t - from_ts_s) // INTERVAL_S), n_int - 1)] += 1
    per_operator = per_interval / max(1, operator_positions)

    times_by_alarm: dict[str, list[float]] = defaultdict(list)
    for t, a, _ in acts:
        times_by_alarm[a].append(t)
    chattering = sorted(a for a, ts in times_by_alarm.items()
                        if any(ts[i + CHATTER_COUNT - 1] - ts[i] < CHATTER_WINDOW_S
                               for i in range(len(ts) - CHATTER_COUNT + 1)))

    # standing: replay active spans over the whole journal (an alarm may have been raised before the window)
    active_since: dict[str, float] = {}
    standing: set[str] = set()
    for t, ev, a, _ in events:
        if t >= to_ts_s:
            break
        if ev == "activate" and a not in active_since:
            active_since[a] = t
        elif ev == "clear" and a in active_since:
            if t - active_since[a] > STANDING_S and t >= from_ts_s:
                standing.add(a)
            del active_since[a]
    standing |= {a for a, t0 in active_since.items() if to_ts_s - t0 > STANDING_S}

    ack_s = np.array([json.loads(d).get("after_s", np.nan) for _, ev, _, d in inside if ev == "acknowledge"],
                     dtype=float)
    ack_s = ack_s[np.isfinite(ack_s)]
    counts = Counter(ev for _, ev, _, _ in inside)
    return AlarmKpis(
        from_ts_s=from_ts_s,
        to_ts_s=to_ts_s,
        operator_positions=operator_positions,
        activations=len(acts),
        intervals=n_int,
        rate_avg_per_10min=float(per_operator.mean()),
        rate_peak_per_10min=int(np.ceil(per_operator.max())) if n_int else 0,
        flood_intervals_pct=float(100.0 * np.mean(per_operator > FLOOD_PER_INTERVAL)),
        top10=Counter(a for _, a, _ in acts).most_common(10),
        chattering=chattering,
        standing=sorted(standing),
        priority=dict(sorted(Counter(d.get("priority", "unknown") for _, _, d in acts
                                     if "priority" in d).items())),
        ack_count=len(ack_s),
        ack_median_s=float(np.median(ack_s)) if len(ack_s) else None,
        ack_p95_s=float(np.percentile(ack_s, 95)) if len(ack_s) else None,
        shelved=counts["shelve"],
        out_of_service=counts["out_of_service"],
        refused=counts["refused"],
        detections=detection_verdicts(inside),
    )


def format_kpis(k: AlarmKpis, tz: tzinfo = UTC) -> str:
    """The KPIs as text, times in ``tz`` (the site's time zone: what the wall shows), the zone named."""
    from datetime import datetime

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, tz=tz).isoformat(timespec="seconds")

    lines = [
        f"window: {iso(k.from_ts_s)} .. {iso(k.to_ts_s)} {tz} ({k.intervals} x 10 min, {k.operator_positions} "
        "operator position(s))",
        f"activations: {k.activations}",
        f"alarms per operator per 10 min: average {k.rate_avg_per_10min:.2f}, peak {k.rate_peak_per_10min} "
        "(EEMUA 191: ~1 manageable, >10 flood)",
        f"10-min intervals in flood (>10): {k.flood_intervals_pct:.1f} %",
        "priority distribution: " + (", ".join(f"{p} {n}" for p, n in k.priority.items()) or "-"),
        "time to acknowledge: " + (f"median {k.ack_median_s:.1f} s, p95 {k.ack_p95_s:.1f} s ({k.ack_count} acks)"
                                   if k.ack_count else "no acknowledgements"),
        f"chattering alarms (>=3 in 60 s): {len(k.chattering)}" + (": " + ", ".join(k.chattering[:10])
                                                                   if k.chattering else ""),
        f"standing alarms (active > 24 h): {len(k.standing)}" + (": " + ", ".join(k.standing[:10])
                                                                  if k.standing else ""),
        f"shelved: {k.shelved}, taken out of service: {k.out_of_service}, refused actions: {k.refused}",
        "top 10 most frequent:",
    ]
    lines += [f"  {n:6d}  {a}" for a, n in k.top10] or ["  -"]
    lines.append("camera detections verified (false-positive rate = false positives / verified):")
    lines += [f"  {d['camera']} {d['class']}: {d['confirmed']} confirmed, {d['false_positive']} false positive(s), "
              f"false-positive rate {100.0 * d['fp_rate']:.1f} %" for d in k.detections] or ["  -"]
    return "\n".join(lines)
