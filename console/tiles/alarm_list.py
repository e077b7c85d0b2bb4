"""The alarm list: every alarm not back to normal, most important first.

Rows are sorted by priority (critical first), then by activation time (newest first). Each row shows the
priority as colour + shape symbol + word, the activation time in the site's time zone, the state in words and
the message in the page language. Only unacknowledged alarms blink (their priority mark), as ISA-101 asks.

Rows are cards of two lines (priority, time and state; then the message) because the list is a narrow column
on the wall; the HTML is rendered on the server from the same columns that fill ``source``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import tzinfo
from typing import Any

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, InlineStyleSheet
from pydantic import BaseModel, ConfigDict, Field

from ..i18n import TEXTS, t
from ..link import AlarmRecord, LinkSnapshot
from ..theme import PRIORITY_STYLE, Theme
from .base import TileContext, format_clock

__all__ = ["AlarmList", "AlarmListOptions"]

_STATE_CLASS = {
    "active_unack": "wf-unack",
    "latched_unack": "wf-unack",
    "active_ack": "wf-ack",
    "latched_ack": "wf-ack",
    "rtn_unack": "wf-rtn",
}


class AlarmListOptions(BaseModel):
    """Layout options of an ``alarm_list`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rows: int = Field(
        default=60, ge=1, le=1000, description="rows sent to the page; the header counts all"
    )


def _css(theme: Theme) -> str:
    p = theme.palette
    return (
        theme.tile_css()
        + f"""
.wf-alarms {{ height: 100%; overflow: hidden; }}
.wf-alarm {{
  padding: {theme.px(10)}px {theme.px(18)}px {theme.px(12)}px {theme.px(16)}px;
  border-bottom: {theme.px(2)}px solid {p.tile_border};
  border-left: {theme.px(12)}px solid transparent;
}}
.wf-alarm-line {{
  display: flex; align-items: baseline; gap: {theme.px(20)}px; font-size: {theme.text_px}px;
  white-space: nowrap;
}}
.wf-pri {{ font-weight: bold; min-width: {theme.px(230)}px; }}
.wf-time {{ color: {p.text}; font-variant-numeric: tabular-nums; }}
.wf-state {{ margin-left: auto; color: {p.text_dim}; }}
.wf-unack .wf-state {{ color: {p.text}; font-weight: bold; }}
.wf-alarm-msg {{ font-size: {theme.text_px}px; color: {p.text}; line-height: 1.25; margin-top: {theme.px(4)}px; }}
.wf-rtn .wf-alarm-msg, .wf-rtn .wf-time {{ color: {p.text_dim}; }}
.wf-unsynced {{ opacity: 0.6; }}
.wf-empty {{ font-size: {theme.large_px}px; color: {p.text_dim}; padding: {theme.px(40)}px {theme.px(18)}px; }}
"""
    )


class AlarmList:
    """The alarm list tile. ``source`` holds one row per shown alarm (sorted), ``root`` the header and cards."""

    def __init__(self, ctx: TileContext, options: AlarmListOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or AlarmListOptions()
        theme = ctx.theme
        css = InlineStyleSheet(css=_css(theme))
        self.source = ColumnDataSource(
            self.columns((), ctx.lang, ctx.tz, self.options.max_rows), name="wall-alarms"
        )
        self.header = Div(
            text=self.header_html(0, 0, 0, False, ctx.lang),
            stylesheets=[css],
            sizing_mode="stretch_width",
            name="wall-alarms-header",
        )
        self.body = Div(
            text=self.rows_html(self.source.data, False, ctx.lang),
            stylesheets=[css],
            sizing_mode="stretch_both",
            name="wall-alarms-body",
        )
        self.root = column(
            self.header,
            self.body,
            sizing_mode="stretch_both",
            spacing=0,
            styles={"background": theme.palette.tile, "overflow": "hidden"},
        )
        self._version: int | None = None

    @staticmethod
    def sort_key(rec: AlarmRecord) -> tuple[int, float, str]:
        """Critical first, then the newest activation, then by id (stable for equal times)."""
        ts = rec.activated_ts_s if rec.activated_ts_s == rec.activated_ts_s else float("-inf")
        return (-rec.rank, -ts, rec.id)

    @staticmethod
    def columns(
        alarms: Iterable[AlarmRecord] | Mapping[str, AlarmRecord],
        lang: str,
        tz: tzinfo,
        max_rows: int | None = None,
    ) -> dict[str, list[Any]]:
        """Rows for the alarms on the operator's list (not shelved, suppressed or out of service), sorted by
        :meth:`sort_key`, at most ``max_rows``.

        Columns: ``id``, ``rank`` (1 low .. 4 critical), ``priority``, ``priority_label`` (in ``lang``),
        ``symbol``, ``color``, ``time`` (activation, ``HH:MM:SS`` in ``tz``), ``message`` (in ``lang``),
        ``state``, ``state_label`` (in ``lang``), ``unacknowledged`` (bool), ``css`` (row class).
        """
        recs = [r for r in (alarms.values() if isinstance(alarms, Mapping) else alarms) if r.on_list]
        recs.sort(key=AlarmList.sort_key)
        if max_rows is not None:
            recs = recs[:max_rows]
        cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "id",
                "rank",
                "priority",
                "priority_label",
                "symbol",
                "color",
                "time",
                "message",
                "state",
                "state_label",
                "unacknowledged",
                "css",
            )
        }
        for r in recs:
            style = PRIORITY_STYLE[r.rank]
            cols["id"].append(r.id)
            cols["rank"].append(r.rank)
            cols["priority"].append(r.priority)
            cols["priority_label"].append(t(f"priority.{r.priority}", lang))
            cols["symbol"].append(style.symbol)
            cols["color"].append(style.color)
            cols["time"].append(format_clock(r.activated_ts_s, tz))
            cols["message"].append(r.text(lang))
            cols["state"].append(r.state)
            key = f"state.{r.state}"
            cols["state_label"].append(t(key, lang) if key in TEXTS["en"] else r.state.upper())
            cols["unacknowledged"].append(r.unacknowledged)
            cols["css"].append(_STATE_CLASS.get(r.state, "wf-unack"))
        return cols

    @staticmethod
    def counts(alarms: Iterable[AlarmRecord] | Mapping[str, AlarmRecord]) -> tuple[int, int, int]:
        """(alarms on the operator's list, of which unacknowledged, alarms shelved)."""
        recs = list(alarms.values()) if isinstance(alarms, Mapping) else list(alarms)
        on = [r for r in recs if r.on_list]
        shelved = sum(1 for r in recs if r.state == "shelved")
        return len(on), sum(1 for r in on if r.unacknowledged), shelved

    @staticmethod
    def header_html(
        total: int, unacknowledged: int, shown: int, synced: bool, lang: str, shelved: int = 0
    ) -> str:
        """``Alarms  12 active  5 unacknowledged  +2 more  3 shelved``; a resync in progress is said, not hidden."""
        parts = [
            f'<span class="wf-em">{html.escape(t("alarms.title", lang))}</span>',
            f"<span>{html.escape(t('alarms.count', lang, n=total))}</span>",
        ]
        if unacknowledged:
            parts.append(
                f'<span class="wf-em">{html.escape(t("alarms.unacknowledged", lang, n=unacknowledged))}'
                "</span>"
            )
        if total > shown:
            parts.append(
                f'<span class="wf-dim">{html.escape(t("alarms.more", lang, n=total - shown))}</span>'
            )
        if shelved:
            parts.append(f'<span class="wf-dim">{html.escape(t("alarms.shelved", lang, n=shelved))}</span>')
        if not synced:
            parts.append(f'<span class="wf-dim">{html.escape(t("alarms.resyncing", lang))}</span>')
        return f'<div class="wf-tile-head">{"".join(parts)}</div>'

    @staticmethod
    def rows_html(cols: Mapping[str, list[Any]], synced: bool, lang: str) -> str:
        """The cards for :meth:`columns`' rows; messages are escaped (they come from configuration).

        Not ``synced`` (a resync in flight, or the link lost): the cards are dimmed.
        """
        n = len(cols["id"])
        if n == 0:
            key = "alarms.none" if synced else "alarms.waiting"
            return f'<div class="wf-alarms"><div class="wf-empty">{html.escape(t(key, lang))}</div></div>'
        rows = []
        for i in range(n):
            color = cols["color"][i]
            blink = " wf-blink" if cols["unacknowledged"][i] else ""
            rows.append(
                f'<div class="wf-alarm {cols["css"][i]}" style="border-left-color:{color}" '
                f'data-alarm="{html.escape(cols["id"][i])}">'
                f'<div class="wf-alarm-line">'
                f'<span class="wf-pri{blink}" style="color:{color}">{cols["symbol"][i]} '
                f"{html.escape(cols['priority_label'][i])}</span>"
                f'<span class="wf-time">{cols["time"][i]}</span>'
                f'<span class="wf-state">{html.escape(cols["state_label"][i])}</span></div>'
                f'<div class="wf-alarm-msg">{html.escape(cols["message"][i])}</div></div>'
            )
        # while a resync is in flight the list may be out of date: it stays readable but visibly dimmed
        cls = "wf-alarms" if synced else "wf-alarms wf-unsynced"
        return f'<div class="{cls}">{"".join(rows)}</div>'

    def update(self, snap: LinkSnapshot) -> None:
        """Rebuild the list when the alarm table changed (its version moved); otherwise do nothing."""
        table = snap.alarms
        key = (table.version, table.synced)
        if key == self._version:
            return
        self._version = key
        ctx = self.ctx
        cols = self.columns(table.alarms, ctx.lang, ctx.tz, self.options.max_rows)
        total, unack, shelved = self.counts(table.alarms)
        self.source.data = cols
        header = self.header_html(total, unack, len(cols["id"]), table.synced, ctx.lang, shelved)
        if header != self.header.text:
            self.header.text = header
        body = self.rows_html(cols, table.synced, ctx.lang)
        if body != self.body.text:
            self.body.text = body
