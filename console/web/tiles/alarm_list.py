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
from .fit import LINE, flex_lines, tile_size, wrapped_lines
from .map.labels import text_width
from .more import follow_hidden_cards, more_span

__all__ = ["AlarmList", "AlarmListOptions"]

# the card's box in px at scale 1, shared by the stylesheet and the estimate of how many cards fit
_CARD_PAD = (10, 18, 12, 16)  # top, right, bottom, left
_CARD_BORDER_LEFT = 12
_CARD_BORDER_BOTTOM = 2
_MSG_LINE = 1.25  # line height of the message, in font sizes
#: the first line's height: fixed, because its symbol comes from a fallback font with taller metrics that would
#: otherwise make the line box taller than the text
_FIRST_LINE = 50
#: the share of a line's width the estimate trusts (the browser's own rounding and scrollbars take the rest)
_WIDTH_TRUST = 0.97
#: px a card may grow beyond the estimate (a fallback font's metrics within a message line)
_CARD_SLACK = 3
_MSG_GAP = 4
_TEXT = 36  # theme.text_px at scale 1
_HEAD = 48  # theme.large_px: the header's words
_HEAD_PAD = (10, 18)  # theme.tile_css .wf-tile-head: vertical, horizontal
_HEAD_GAP = (24, 4)  # column gap, row gap

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
.wf-alarms {{
  height: 100%; overflow: hidden; display: flex; flex-direction: column; flex-wrap: wrap; align-content: flex-start;
}}
.wf-alarm {{
  padding: {" ".join(f"{theme.px(v)}px" for v in _CARD_PAD)};
  border-bottom: {theme.px(_CARD_BORDER_BOTTOM)}px solid {p.tile_border};
  border-left: {theme.px(_CARD_BORDER_LEFT)}px solid transparent;
  width: 100%; box-sizing: border-box; flex: none;
}}
.wf-alarm-line {{
  display: flex; align-items: baseline; gap: {theme.px(20)}px; font-size: {theme.text_px}px;
  white-space: nowrap; height: {theme.px(_FIRST_LINE)}px;
}}
.wf-pri {{ font-weight: bold; min-width: {theme.px(230)}px; }}
.wf-time {{ color: {p.text}; font-variant-numeric: tabular-nums; }}
.wf-state {{ margin-left: auto; color: {p.text_dim}; }}
.wf-unack .wf-state {{ color: {p.text}; font-weight: bold; }}
.wf-alarm-msg {{
  font-size: {theme.text_px}px; color: {p.text}; line-height: {_MSG_LINE}; margin-top: {theme.px(_MSG_GAP)}px;
  overflow-wrap: anywhere;
}}
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
        follow_hidden_cards(self.body)
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
    def cards_that_fit(
        messages: list[str], counts: AlarmCounts, lang: str, share: tuple[float, float], *, flood: bool = False
    ) -> int:
        """How many cards with ``messages`` (in list order) fit whole in a tile taking ``share`` of the screen,
        under the header with ``counts`` (and a "+N more"); at least one.

        Each card is its first line and its message wrapped at the card's width, in the page font's advance
        widths (:mod:`.fit`); px at scale 1, as the stylesheet sizes them.
        """
        width, height = tile_size(share)
        head = [
            text_width(t("alarms.title", lang), _HEAD, bold=True),
            text_width(t("alarms.count", lang, n=counts.in_alarm), _HEAD),
            text_width(t("alarms.unacknowledged", lang, n=counts.unacknowledged), _HEAD, bold=True),
            text_width(t("alarms.more", lang, n=max(counts.on_list, 1)), _TEXT),
        ]
        if counts.off_list:
            head.append(text_width(t("alarms.shelved", lang, n=counts.off_list), _TEXT))
        if flood:
            head.append(text_width(t("flood.title", lang), _HEAD, bold=True))
        rows = flex_lines(head, _HEAD_GAP[0], _WIDTH_TRUST * (width - 2 * _HEAD_PAD[1]))
        room = height - (rows * _HEAD * LINE + (rows - 1) * _HEAD_GAP[1] + 2 * _HEAD_PAD[0] + 2)
        inner = _WIDTH_TRUST * (width - _CARD_BORDER_LEFT - _CARD_PAD[1] - _CARD_PAD[3])
        fixed = _CARD_PAD[0] + _FIRST_LINE + _MSG_GAP + _CARD_PAD[2] + _CARD_BORDER_BOTTOM + _CARD_SLACK
        n = 0
        for msg in messages:
            room -= fixed + wrapped_lines(msg, inner, _TEXT) * _TEXT * _MSG_LINE
            if room < 0:
                break
            n += 1
        return max(n, 1)

    @staticmethod
    def header_html(
        counts: AlarmCounts, shown: int, synced: bool, lang: str, flood: bool = False, tile: str = ""
    ) -> str:
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
        # the browser adds the cards it had to hide (console/web/tiles/more.py)
        parts.append(more_span(tile, max(counts.on_list - shown, 0), t("alarms.more", lang, n="{n}")))
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
    def flood_cards(
        view: FloodView, lang: str, tz: tzinfo, area_names: Mapping[str, str]
    ) -> list[tuple[str, int, str]]:
        """Cards for a flood (:func:`console.web.flood.flood_view`) as (HTML, alarms it stands for, message):
        the first-out alarm tagged, the life-safety alarms one by one, then one card per group with its count
        (a group of one: its alarm's card)."""
        cards: list[tuple[str, int, str]] = []
        if view.first_out is not None:
            rec = view.first_out
            cards.append((_alarm_card(rec, lang, tz, tag=t("flood.first_out", lang)), 1, rec.text(lang)))
        cards.extend((_alarm_card(r, lang, tz), 1, r.text(lang)) for r in view.safety)
        for g in view.groups:
            if g.count == 1:  # a group of one is shown as its alarm
                cards.append((_alarm_card(g.alarms[0], lang, tz), 1, g.alarms[0].text(lang)))
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
                (
                    f'<div class="wf-alarm wf-group" style="border-left-color:{style.color}" '
                    f'data-group="{html.escape(g.key)}" data-count="{g.count}">'
                    f'<div class="wf-alarm-line">'
                    f'<span class="wf-pri{blink}" style="color:{style.color}">{style.symbol} '
                    f"{html.escape(t(f'priority.{g.priority}', lang))}</span>"
                    f'<span class="wf-count">'
                    f"{html.escape(t('flood.group', lang, n=g.count, condition=condition_label(g.condition, lang)))}"
                    f"</span>{unack}</div>"
                    f'<div class="wf-alarm-msg">{html.escape(area)} \u00b7 '
                    f'<span class="wf-time">{format_clock(g.newest_ts_s, tz)}</span></div></div>',
                    g.count,
                    f"{area} \u00b7 {format_clock(g.newest_ts_s, tz)}",
                )
            )
        return cards

    @staticmethod
    def flood_html(
        view: FloodView,
        lang: str,
        tz: tzinfo,
        area_names: Mapping[str, str],
        synced: bool = True,
        max_rows: int | None = None,
    ) -> str:
        """The cards of :meth:`flood_cards` as the tile's body, at most ``max_rows``."""
        return AlarmList.cards_html([c[0] for c in AlarmList.flood_cards(view, lang, tz, area_names)][:max_rows],
                                    synced, lang)

    @staticmethod
    def cards_html(cards: list[str], synced: bool, lang: str, tile: str = "") -> str:
        """The tile's body: the cards (``tile``: the id the header's "+N more" counter shares, see
        :mod:`.more`), or a sentence when there are none."""
        if not cards:
            key = "alarms.none" if synced else "alarms.waiting"
            return f'<div class="wf-alarms"><div class="wf-empty">{html.escape(t(key, lang))}</div></div>'
        cls = "wf-alarms wf-cards" if synced else "wf-alarms wf-cards wf-unsynced"
        return f'<div class="{cls}" data-tile="{html.escape(tile)}">{"".join(cards)}</div>'

    @staticmethod
    def rows_html(cols: Mapping[str, list[Any]], synced: bool, lang: str, tile: str = "") -> str:
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
        return AlarmList.cards_html(rows, synced, lang, tile)

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
        # only whole cards: the rest is "+N more" in the header
        fit = self.cards_that_fit(cols["message"], counts, ctx.lang, ctx.share)
        cols = {k: v[:fit] for k, v in cols.items()}
        self.source.data = cols
        if flooding:
            view = flood_view(table.alarms, flood)
            cards = self.flood_cards(view, ctx.lang, ctx.tz, self._area_names)[: self.options.max_rows]
            cards = cards[: self.cards_that_fit([c[2] for c in cards], counts, ctx.lang, ctx.share, flood=True)]
            # "+N more": the alarms that no card shown stands for
            header = self.header_html(counts, sum(c[1] for c in cards), table.synced, ctx.lang, flood=True,
                                      tile=self.body.id)
            body = self.cards_html([c[0] for c in cards], table.synced, ctx.lang, self.body.id)
        else:
            header = self.header_html(counts, len(cols["id"]), table.synced, ctx.lang, tile=self.body.id)
            body = self.rows_html(cols, table.synced, ctx.lang, self.body.id)
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
