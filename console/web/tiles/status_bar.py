"""The status bar across the top of the wall: site, engine clock, throughput, and the health of the link.

When no message has come from the engine for longer than the link's ``lost_after_s`` (3 s) the whole bar
turns into an amber banner with a warning sign and the words "ENGINE LINK LOST": what the wall shows is then
no longer live, and the operator must see that from across the room.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import numpy as np
from bokeh.models import ColumnDataSource, Div, InlineStyleSheet
from pydantic import BaseModel, ConfigDict

from config import Site
from ingest.protocol.names import REJECT_GATED
from ingest.protocol.records import AlarmCounts, alarm_counts

from ...link import AlarmTable, Frame, LinkSnapshot
from ..i18n import t
from .base import TileContext, format_clock

__all__ = ["StatusBar", "StatusBarOptions"]


_LAST_COUNTS: list[Any] = [None, None]  # [the AlarmTable counted last, its counts]


def _counts_of(table: AlarmTable) -> AlarmCounts:
    """The table's counts, computed once per table (the link replaces the table only when it changes; every
    session's bar asks at every tick)."""
    if _LAST_COUNTS[0] is not table:
        _LAST_COUNTS[:] = [table, alarm_counts(table.alarms)]
    return _LAST_COUNTS[1]


class StatusBarOptions(BaseModel):
    """Layout options of a ``status_bar`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    show_date: bool = True
    #: the workstation shows each source's clock skew (the adapters' median source - receive time)
    show_clock_skew: bool = False


class StatusBar:
    """The status bar tile. ``source`` holds one row (the values shown), ``root`` is a Div."""

    def __init__(self, ctx: TileContext, options: StatusBarOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or StatusBarOptions()
        theme = ctx.theme
        cols = self.columns(
            ctx.site, None, None, math.nan, "waiting", None, ctx.lang, ctx.tz, date=self.options.show_date
        )
        self.source = ColumnDataSource(cols, name="wall-status")
        self.root = Div(
            text=self.html(cols),
            stylesheets=[InlineStyleSheet(css=theme.tile_css())],
            sizing_mode="stretch_both",
            styles={"background": theme.palette.tile},
            name="wall-status-bar",
        )
        self._prev_inputs: tuple[float, int] | None = (
            None  # (engine ts, total inputs) of the last status frame
        )
        self._status_number = -1
        self._rate = math.nan

    @staticmethod
    def inputs_total(meta: Mapping[str, Any]) -> tuple[float, int] | None:
        """(engine time s, inputs summed over sources) from an ``engine.status`` frame's meta, or None."""
        ts, inputs = meta.get("engine_ts_s"), meta.get("inputs")
        if not isinstance(ts, (int, float)) or not isinstance(inputs, Mapping):
            return None
        return float(ts), int(sum(v for v in inputs.values() if isinstance(v, (int, float))))

    @staticmethod
    def rate_per_s(previous: tuple[float, int] | None, current: tuple[float, int] | None) -> float:
        """Inputs per second of engine time between two status frames; NaN when it cannot be told."""
        if previous is None or current is None:
            return math.nan
        dt = current[0] - previous[0]
        dn = current[1] - previous[1]
        if dt <= 0 or dn < 0:  # same frame, clock went back, or counters reset (engine restart)
            return math.nan
        return dn / dt

    @staticmethod
    def columns(
        site: Site,
        status: Frame | None,
        positions: Frame | None,
        inputs_per_s: float,
        state: str,
        age_s: float | None,
        lang: str,
        tz: tzinfo,
        *,
        stale_s: float | None = None,
        date: bool = True,
        skew: bool = False,
        alarms: AlarmTable | None = None,
    ) -> dict[str, list[Any]]:
        """One row: what the bar shows. ``state`` is the link's ``waiting`` / ``ok`` / ``lost``.

        ``clock`` is the newest engine time of the two frames; ``located`` counts people whose fix is no older
        than ``stale_s`` (default ``site.engine.fix_stale_s``); ``rejected`` sums the engine's reject counters of
        bad input (its tooltip names the top reasons) and ``gated`` the fixes the tracker did not believe (a
        quality figure, shown beside the located count); ``in_alarm`` and ``unacknowledged`` are the link's
        alarm table's :func:`~ingest.protocol.records.alarm_counts` (the alarm tile's and workstation's too).
        """
        meta = status.meta if status else {}
        times = [f.meta.get("engine_ts_s") for f in (status, positions) if f is not None]
        times = [float(v) for v in times if isinstance(v, (int, float))]
        clock_ts = max(times) if times else None
        rejected = meta.get("rejected") if isinstance(meta.get("rejected"), Mapping) else {}
        counted = {str(k): int(v) for k, v in rejected.items() if isinstance(v, (int, float)) and v > 0}
        gated = counted.pop(REJECT_GATED, 0)
        n_rejected = sum(counted.values())
        top = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
        rejected_title = "\n".join(f"{n:,}  {reason}" for reason, n in top)
        counts = _counts_of(alarms) if alarms is not None and alarms.synced else None
        stale = site.engine.fix_stale_s if stale_s is None else stale_s
        if positions is not None:
            age = np.asarray(positions.arrays["age_s"], dtype=np.float64)
            located = int(np.count_nonzero(age <= stale))
        else:
            located = 0
        if state == "lost":
            link_text = t("status.link_lost", lang, s=int(age_s or 0))
        elif state == "waiting":
            link_text = t("status.link_waiting", lang)
        else:
            link_text = t("status.link_ok", lang)
        return {
            "site": [site.name.get(lang)],
            "clock": [format_clock(clock_ts, tz, date=date)],
            "engine_ts_s": [math.nan if clock_ts is None else clock_ts],
            "inputs_per_s": [inputs_per_s],
            "inputs_text": ["---" if not math.isfinite(inputs_per_s) else f"{inputs_per_s:,.0f}"],
            "rejected": [n_rejected],
            "rejected_title": [rejected_title],
            "gated": [gated],
            "located": [located],
            "people": [len(site.people)],
            "in_alarm": [counts.in_alarm if counts is not None else -1],
            "unacknowledged": [counts.unacknowledged if counts is not None else -1],
            "link": [state],
            "link_text": [link_text],
            "lang": [lang],
            "skew_text": [StatusBar.skew_text(site, meta.get("clock_skew_s"))[0] if skew else ""],
            "skew_title": [StatusBar.skew_text(site, meta.get("clock_skew_s"))[1] if skew else ""],
        }

    @staticmethod
    def skew_text(site: Site, skews: Any) -> tuple[str, str]:
        """(what the bar shows, its tooltip) from the status' ``clock_skew_s`` (source -> seconds, + = ahead).

        The bar stays short: the source furthest off when all are within their ``clock.<source>.skew_alarm_s``
        (``gas -0.09 s``), else every source beyond its limit with a ``!`` (``gas -3600.00 s!``); the tooltip
        lists every source. ``---`` before any figure came."""
        if not isinstance(skews, Mapping):
            return "---", ""
        figures = sorted((str(s), float(v)) for s, v in skews.items()
                         if isinstance(v, (int, float)) and math.isfinite(v))
        if not figures:
            return "---", ""

        def beyond(source: str, v: float) -> bool:
            limit = getattr(site.clock, source, None)
            return limit is not None and abs(v) > limit.skew_alarm_s

        title = "  ".join(f"{s} {v:+.2f} s{'!' if beyond(s, v) else ''}" for s, v in figures)
        bad = [(s, v) for s, v in figures if beyond(s, v)]
        if bad:
            return "  ".join(f"{s} {v:+.2f} s!" for s, v in bad), title
        s, v = max(figures, key=lambda f: abs(f[1]))
        return f"{s} {v:+.2f} s", title

    @staticmethod
    def html(cols: Mapping[str, list[Any]]) -> str:
        """The bar's HTML for one row of :meth:`columns`."""
        lang = cols["lang"][0]
        state = cols["link"][0]

        def item(label_key: str, value: str) -> str:
            return (
                f'<span><span class="wf-label">{html.escape(t(label_key, lang))}</span>'
                f'<span class="wf-value">{html.escape(value)}</span></span>'
            )

        in_alarm, unack, gated = cols["in_alarm"][0], cols["unacknowledged"][0], cols["gated"][0]
        located = f"{cols['located'][0]}/{cols['people'][0]}"
        rejected = f"{cols['rejected'][0]:,}"
        parts = [
            f'<span class="wf-site" title="{html.escape(cols["site"][0])}">{html.escape(cols["site"][0])}</span>',
            f'<span class="wf-clock">{html.escape(cols["clock"][0])}</span>',
            item("status.inputs_per_s", cols["inputs_text"][0]),
            f'<span title="{html.escape(cols["rejected_title"][0])}">'
            f'{item("status.rejected", rejected)}</span>',
            item("status.people", located) if not gated else
            f'<span>{item("status.people", located)}<span class="wf-label"> '
            f'({gated:,} {html.escape(t("status.gated", lang))})</span></span>',
            item("status.alarms", "---" if in_alarm < 0 else str(in_alarm)),
            item("status.unacknowledged", "---" if unack < 0 else str(unack)),
        ]
        if cols["skew_text"][0]:
            parts.append(f'<span title="{html.escape(cols["skew_title"][0])}">'
                         f'{item("status.clock_skew", cols["skew_text"][0])}</span>')
        parts += [
            '<span class="wf-spacer"></span>',
        ]
        if state == "lost":
            parts.append(f'<span class="wf-banner">{html.escape(cols["link_text"][0])}</span>')
        else:
            parts.append(f'<span class="wf-link-ok">{html.escape(cols["link_text"][0])}</span>')
        cls = "wf-status wf-lost" if state == "lost" else "wf-status"
        return f'<div class="{cls}" data-link="{state}">{"".join(parts)}</div>'

    def update(self, snap: LinkSnapshot) -> None:
        """Recompute the row; send it only when a shown value changed."""
        ctx = self.ctx
        if snap.status is not None and snap.status.number != self._status_number:
            self._status_number = snap.status.number
            current = self.inputs_total(snap.status.meta)
            rate = self.rate_per_s(self._prev_inputs, current)
            if math.isfinite(rate):
                self._rate = rate
            elif current is None or (self._prev_inputs is not None and current[1] < self._prev_inputs[1]):
                self._rate = math.nan  # no counters, or they started again: nothing honest to show yet
            self._prev_inputs = current
        cols = self.columns(
            ctx.site,
            snap.status,
            snap.positions,
            self._rate,
            snap.state,
            snap.last_frame_age_s,
            ctx.lang,
            ctx.tz,
            date=self.options.show_date,
            skew=self.options.show_clock_skew,
            alarms=snap.alarms,
        )
        text = self.html(cols)
        if text != self.root.text:
            self.root.text = text
            self.source.data = cols
