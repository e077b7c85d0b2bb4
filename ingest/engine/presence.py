"""Who was in which zone when: the zone visits the engine's fences confirmed, indexed by zone, so "who is in
zone X now" and "who was in zone X between t1 and t2" are answered by the engine (a console never reads the
recording). It is fed by the fence events :meth:`ingest.engine.core.Engine.apply` produces, so a replay or a crash
recovery rebuilds it from the recording alone.

A visit runs from its ``region_entry`` to its ``region_exit`` (both at the crossing time the fence dated them);
a visit with no exit yet is open: the person is inside now, as far as their last fix tells (an open visit says how
old that fix is: a tag gone quiet inside a zone stays "inside", visibly stale). Visits that ended more than ``keep_s`` ago are
forgotten (and beyond ``max_visits`` the oldest are); :attr:`ZonePresence.history_from_ts_s` says from when the
answers are complete, and an answer says so too.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

from alarms.zones import FenceEvent
from config import Site

__all__ = ["MAX_ROWS", "ZonePresence"]

#: at most this many visits in one answer (the newest entries first)
MAX_ROWS = 500


class _Visits:
    """The visits of one zone: person index, entry and exit time (NaN while inside), in order of entry."""

    def __init__(self) -> None:
        self.person = array("l")
        self.enter = array("d")
        self.exit = array("d")

    def __len__(self) -> int:
        return len(self.person)

    def keep(self, mask: np.ndarray) -> None:
        for name, code in (("person", "l"), ("enter", "d"), ("exit", "d")):
            a = np.frombuffer(getattr(self, name), dtype=np.int64 if code == "l" else np.float64)
            setattr(self, name, array(code, a[mask].tobytes()))


class ZonePresence:
    """The zone visits of every person (see the module's docstring)."""

    def __init__(self, site: Site, *, keep_s: float = 7 * 86400.0, max_visits: int = 1_000_000) -> None:
        self.site = site
        self.keep_s, self.max_visits = float(keep_s), int(max_visits)
        self.zone_index = {z.id: k for k, z in enumerate(site.zones)}
        self.visits = [_Visits() for _ in site.zones]
        #: (person, zone) -> the row of that person's open visit in the zone's visits
        self.open: dict[tuple[int, int], int] = {}
        self.total = 0
        #: visits forgotten (older than ``keep_s`` or beyond ``max_visits``)
        self.forgotten = 0
        #: answers before this time may miss visits that were forgotten (-inf: nothing forgotten)
        self.history_from_ts_s = -math.inf
        self._compact_at = max(1024, self.max_visits // 2)

    def on_fence_events(self, events: Iterable[FenceEvent], now_s: float) -> None:
        for e in events:
            v = self.visits[e.zone]
            key = (e.person, e.zone)
            if e.kind == "region_entry":
                if key in self.open:  # an entry while inside (should not happen): the old visit ends here
                    v.exit[self.open[key]] = e.ts_s
                self.open[key] = len(v)
                v.person.append(e.person)
                v.enter.append(e.ts_s)
                v.exit.append(math.nan)
                self.total += 1
            elif e.kind == "region_exit":
                row = self.open.pop(key, None)
                if row is not None:
                    v.exit[row] = e.ts_s
        if self.total >= self._compact_at:
            self._compact(now_s)

    def _compact(self, now_s: float) -> None:
        """Forget visits that ended before ``now_s - keep_s``, and, beyond ``max_visits``, those that ended
        first; open visits are always kept. Answers from the cut on stay complete."""
        cut = now_s - self.keep_s
        if self.total > self.max_visits:
            exits = np.concatenate([np.frombuffer(v.exit, dtype=np.float64) for v in self.visits])
            ended = np.sort(exits[~np.isnan(exits)])
            drop = min(len(ended), self.total - self.max_visits)
            if drop:
                cut = max(cut, float(np.nextafter(ended[drop - 1], np.inf)))
        self.open.clear()
        total = forgotten = 0
        for z, v in enumerate(self.visits):
            exits = np.frombuffer(v.exit, dtype=np.float64)
            keep = np.isnan(exits) | (exits >= cut)
            forgotten += int(len(v) - keep.sum())
            v.keep(keep)
            total += len(v)
            for row in np.flatnonzero(np.isnan(np.frombuffer(v.exit, dtype=np.float64))):
                self.open[(int(v.person[row]), z)] = int(row)
        self.total = total
        if forgotten:
            self.forgotten += forgotten
            self.history_from_ts_s = max(self.history_from_ts_s, cut)
        self._compact_at = max(1024, total + self.max_visits // 2)

    def query(self, zone_id: str, from_ts_s: float, to_ts_s: float, now_s: float,
              fix_ts_s: np.ndarray | None = None) -> dict[str, Any]:
        """Who was in ``zone_id`` at some time between ``from_ts_s`` and ``to_ts_s`` (both epoch seconds; equal:
        at that moment; ``to_ts_s`` at or after ``now_s``: up to now, still inside included). ``ValueError``
        saying what is wrong with the question. ``fix_ts_s`` (float64 [P], the engine's latest fix time of each
        person): an open visit gets ``fix_age_s``, how old the person's last fix is at ``now_s``."""
        z = self.zone_index.get(zone_id)
        if z is None:
            raise ValueError(f"unknown zone {str(zone_id)[:64]!r}")
        if not (math.isfinite(from_ts_s) and math.isfinite(to_ts_s)):
            raise ValueError("from_ts_s and to_ts_s must be finite times (epoch seconds)")
        if to_ts_s < from_ts_s:
            raise ValueError("the period ends before it begins")
        v = self.visits[z]
        enter = np.frombuffer(v.enter, dtype=np.float64)
        exit_ = np.frombuffer(v.exit, dtype=np.float64)
        hit = (enter <= to_ts_s) & (np.isnan(exit_) | (exit_ >= from_ts_s))
        rows = np.flatnonzero(hit)[::-1][:MAX_ROWS]  # newest entries first
        people = self.site.people
        out = []
        for r in rows:
            p = people[int(v.person[r])]
            ended = float(exit_[r])
            row = {"person": p.id, "tag": p.tag, "name": p.name, "name_zh": p.name_zh, "company": p.company,
                   "enter_ts_s": float(enter[r]), "exit_ts_s": None if math.isnan(ended) else ended}
            if math.isnan(ended) and fix_ts_s is not None:
                age = now_s - float(fix_ts_s[int(v.person[r])])
                row["fix_age_s"] = round(age, 1) if math.isfinite(age) else None
            out.append(row)
        return {"ok": True, "zone": zone_id, "from_ts_s": from_ts_s, "to_ts_s": to_ts_s, "now_ts_s": now_s,
                "visits": out, "n": int(hit.sum()), "truncated": int(hit.sum()) > len(out),
                "complete": from_ts_s >= self.history_from_ts_s,
                "history_from_ts_s": None if math.isinf(self.history_from_ts_s) else self.history_from_ts_s}
