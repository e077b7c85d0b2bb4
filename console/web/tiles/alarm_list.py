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

from ingest.protocol.records import AlarmCounts, AlarmRecord, alarm_counts

from ...link import LinkSnapshot
from ..flood import FloodView, alarm_sort_key, flood_view
from ..i18n import TEXTS, condition_label, t
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
    flood_position: str = Field(
        default="main", min_length=1, description="operator position whose alarm flood groups this list"
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
.wf-tag {{
  font-size: {theme.small_px}px; font-weight: bold; padding: 0 {theme.px(10)}px; border: {theme.px(2)}px solid;
}}
.wf-count {{ font-weight: bold; font-variant-numeric: tabular-nums; }}
.wf-group .wf-alarm-msg {{ color: {p.text_dim}; }}
.wf-flood-head {{ background: {p.link_lost_background}; color: {p.link_lost_text}; }}
.wf-flood-head .wf-dim {{ color: {p.link_lost_text}; }}
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
            text=self.header_html(AlarmCounts(), 0, False, ctx.lang),
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
        return alarm_sort_key(rec)

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
    def header_html(counts: AlarmCounts, shown: int, synced: bool, lang: str, flood: bool = False) -> str:
        """``Alarms  3 in alarm  5 unacknowledged  +2 more  3 shelved or out of service`` (the counts of
        :func:`~ingest.protocol.records.alarm_counts`, as the status bar and the workstation show them); a resync
        in progress is said, not hidden."""
        parts = [
            f'<span class="wf-em">{html.escape(t("alarms.title", lang))}</span>',
            f"<span>{html.escape(t('alarms.count', lang, n=counts.in_alarm))}</span>",
        ]
        if counts.unacknowledged:
            parts.append(
                f'<span class="wf-em">{html.escape(t("alarms.unacknowledged", lang, n=counts.unacknowledged))}'
                "</span>"
            )
        if counts.on_list > shown:
            parts.append(
                f'<span class="wf-dim">{html.escape(t("alarms.more", lang, n=counts.on_list - shown))}</span>'
            )
        if counts.off_list:
            parts.append(f'<span class="wf-dim">{html.escape(t("alarms.shelved", lang, n=counts.off_list))}'
                         "</span>")
        if not synced:
            parts.append(f'<span class="wf-dim">{html.escape(t("alarms.resyncing", lang))}</span>')
        if flood:
            parts.append(f'<span class="wf-em">{html.escape(t("flood.title", lang))}</span>')
            return f'<div class="wf-tile-head wf-flood-head">{"".join(parts)}</div>'
        return f'<div class="wf-tile-head">{"".join(parts)}</div>'

    @staticmethod
    def flood_html(
        view: FloodView,
        lang: str,
        tz: tzinfo,
        area_names: Mapping[str, str],
        synced: bool = True,
        max_rows: int | None = None,
    ) -> str:
        """Cards for a flood (:func:`console.web.flood.flood_view`): the first-out alarm tagged, the life-safety
        alarms one by one, then one card per group with its count (a group of one: its alarm's card); at most
        ``max_rows`` cards."""
        cards: list[str] = []
        if view.first_out is not None:
            cards.append(_alarm_card(view.first_out, lang, tz, tag=t("flood.first_out", lang)))
        cards.extend(_alarm_card(r, lang, tz) for r in view.safety)
        for g in view.groups:
            if g.count == 1:  # a group of one is shown as its alarm
                cards.append(_alarm_card(g.alarms[0], lang, tz))
                continue
            style = PRIORITY_STYLE[g.rank]
            blink = " wf-blink" if g.unacknowledged else ""
            unack = (
                f'<span class="wf-state">{html.escape(t("flood.unack", lang, n=g.unacknowledged))}</span>'
                if g.unacknowledged
                else ""
            )
            area = area_names.get(g.area, g.area) if g.area else t("area.none", lang)
            cards.append(
                f'<div class="wf-alarm wf-group" style="border-left-color:{style.color}" '
                f'data-group="{html.escape(g.key)}">'
                f'<div class="wf-alarm-line">'
                f'<span class="wf-pri{blink}" style="color:{style.color}">{style.symbol} '
                f"{html.escape(t(f'priority.{g.priority}', lang))}</span>"
                f'<span class="wf-count">'
                f"{html.escape(t('flood.group', lang, n=g.count, condition=condition_label(g.condition, lang)))}"
                f"</span>{unack}</div>"
                f'<div class="wf-alarm-msg">{html.escape(area)} \u00b7 '
                f'<span class="wf-time">{format_clock(g.newest_ts_s, tz)}</span></div></div>'
            )
        if max_rows is not None:
            cards = cards[:max_rows]
        if not cards:
            key = "alarms.none" if synced else "alarms.waiting"
            return f'<div class="wf-alarms"><div class="wf-empty">{html.escape(t(key, lang))}</div></div>'
        cls = "wf-alarms" if synced else "wf-alarms wf-unsynced"
        return f'<div class="{cls}">{"".join(cards)}</div>'

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
        """Rebuild the list when the alarm table or the flood state changed; otherwise do nothing.

        While the engine reports a flood at ``options.flood_position`` the cards are grouped (:meth:`flood_html`).
        """
        table = snap.alarms
        flood = snap.flood(self.options.flood_position)
        flooding = flood is not None and flood.flood
        key = (table.version, table.synced, flood if flooding else None)
        if key == self._version:
            return
        self._version = key
        ctx = self.ctx
        cols = self.columns(table.alarms, ctx.lang, ctx.tz, self.options.max_rows)
        counts = alarm_counts(table.alarms)
        self.source.data = cols
        if flooding:
            view = flood_view(table.alarms, flood)
            header = self.header_html(counts, counts.on_list, table.synced, ctx.lang, flood=True)
            body = self.flood_html(
                view, ctx.lang, ctx.tz, self._area_names, table.synced, self.options.max_rows
            )
        else:
            header = self.header_html(counts, len(cols["id"]), table.synced, ctx.lang)
            body = self.rows_html(cols, table.synced, ctx.lang)
        if header != self.header.text:
            self.header.text = header
        if body != self.body.text:
            self.body.text = body

    @property
    def _area_names(self) -> dict[str, str]:
        return {z.id: z.name.get(self.ctx.lang) for z in self.ctx.site.zones}


def _alarm_card(rec: AlarmRecord, lang: str, tz: tzinfo, tag: str | None = None) -> str:
    """One alarm's card (as in :meth:`AlarmList.rows_html`), with an optional tag such as FIRST OUT."""
    style = PRIORITY_STYLE[rec.rank]
    blink = " wf-blink" if rec.unacknowledged else ""
    key = f"state.{rec.state}"
    state = t(key, lang) if key in TEXTS["en"] else rec.state.upper()
    tag_html = f'<span class="wf-tag" style="color:{style.color}">{html.escape(tag)}</span>' if tag else ""
    return (
        f'<div class="wf-alarm {_STATE_CLASS.get(rec.state, "wf-unack")}" style="border-left-color:{style.color}" '
        f'data-alarm="{html.escape(rec.id)}">'
        f'<div class="wf-alarm-line">'
        f'<span class="wf-pri{blink}" style="color:{style.color}">{style.symbol} '
        f"{html.escape(t(f'priority.{rec.priority}', lang))}</span>{tag_html}"
        f'<span class="wf-time">{format_clock(rec.activated_ts_s, tz)}</span>'
        f'<span class="wf-state">{html.escape(state)}</span></div>'
        f'<div class="wf-alarm-msg">{html.escape(rec.text(lang))}</div></div>'
    )
