"""The permit board: the permits-to-work that matter now, as the engine's ``permit.board`` lists them.

One card per permit, in the engine's order (work in progress first, then suspended or ending soon, then
planned). The board colour (red = work in progress, amber = suspended or ending soon, green = planned) is the
card's left edge and the colour of its state, which is always written in words (ISA-101: never colour alone).
Each card gives the permit id, its type in the page language and its grade, the zone, the time left (or the
planned window), the workers and the watcher by name (from the site's people, by tag), and the reason of a
suspension. The permit id links to the permit's detail at the workstation (``/workstation?permit=<id>``, shown
after the login). The header's "+N more" counts the cards that do not fit and the permits the engine left off a
full board (``omitted``).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any
from urllib.parse import urlencode

from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, InlineStyleSheet
from pydantic import BaseModel, ConfigDict, Field

from config import Site
from ingest.protocol.names import PERMIT_BOARDS
from ingest.protocol.records import PermitBoard

from ...link import LinkSnapshot
from ..actions import format_duration
from ..i18n import TEXTS, t
from ..theme import BOARD_COLORS, Theme
from .base import TileContext, format_clock
from .fit import LINE, flex_lines, tile_size, wrapped_lines
from .map.labels import text_width
from .more import follow_hidden_cards, more_span

__all__ = ["PermitBoardOptions", "PermitBoardTile", "person_label", "workstation_link"]

_COLUMNS = (
    "id",
    "board",
    "color",
    "state",
    "state_label",
    "title",
    "zone",
    "time",
    "workers",
    "watcher",
    "reason",
)


class PermitBoardOptions(BaseModel):
    """Layout options of a ``permit_board`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rows: int = Field(
        default=20, ge=1, le=500, description="cards sent to the page; the header counts all"
    )
    show_over: bool = Field(default=False, description="also list closed and expired permits (grey)")


def workstation_link(permit: str, lang: str) -> str:
    """The workstation's page for one permit: its detail, after the login."""
    return "/workstation?" + urlencode({"permit": permit, "lang": lang})


def person_label(site_people: Mapping[str, str], tag: str) -> str:
    """``'Zhang Wei (T0101)'`` for a tag of the site, the bare tag for one the site does not know."""
    name = site_people.get(tag)
    return f"{name} ({tag})" if name else tag


# the card's box in px at scale 1, shared by the stylesheet and the estimate of how many cards fit
_PAD = (8, 18, 10, 16)  # top, right, bottom, left
_BORDER_LEFT, _BORDER_BOTTOM = 12, 2
_GAP = 18  # between the words of the first line
_LINE_PX = 46  # one line of the first line's row (36 px text; fixed: a fallback font's metrics would vary it)
_TEXT, _SMALL = 36, 28  # theme.text_px, theme.small_px at scale 1
_FACTS_LINE = 1.3
_WIDTH_TRUST = 0.97  # the share of a line's width the estimate trusts
_SLACK = 3  # px a card may grow beyond the estimate


def _css(theme: Theme) -> str:
    p = theme.palette
    return (
        theme.tile_css()
        + f"""
.wf-permits {{
  height: 100%; overflow: hidden; display: flex; flex-direction: column; flex-wrap: wrap; align-content: flex-start;
}}
.wf-permit {{
  padding: {" ".join(f"{theme.px(v)}px" for v in _PAD)};
  border-bottom: {theme.px(_BORDER_BOTTOM)}px solid {p.tile_border};
  border-left: {theme.px(_BORDER_LEFT)}px solid transparent;
  width: 100%; box-sizing: border-box; flex: none;
}}
.wf-permit-line {{
  display: flex; flex-wrap: wrap; align-items: baseline; column-gap: {theme.px(_GAP)}px; font-size: {theme.text_px}px;
  white-space: nowrap; line-height: {theme.px(_LINE_PX)}px;
}}
.wf-permit-state {{ font-weight: bold; }}
.wf-permit-id {{ font-weight: bold; color: {p.text}; text-decoration: none; }}
.wf-permit-type {{ color: {p.text}; white-space: normal; }}
.wf-permit-time {{ margin-left: auto; color: {p.text}; font-variant-numeric: tabular-nums; }}
.wf-permit-facts {{
  font-size: {theme.small_px}px; color: {p.text_dim}; line-height: {_FACTS_LINE}; margin-top: {theme.px(2)}px;
  overflow-wrap: anywhere;
}}
.wf-permit-facts b {{ color: {p.text}; font-weight: normal; }}
.wf-permit-reason {{ font-size: {theme.small_px}px; color: {p.text}; line-height: {_FACTS_LINE};
  overflow-wrap: anywhere; }}
.wf-empty {{ font-size: {theme.large_px}px; color: {p.text_dim}; padding: {theme.px(30)}px {theme.px(18)}px; }}
"""
    )


class PermitBoardTile:
    """The permit board tile. ``source`` holds one row per card shown, ``root`` the header and the cards."""

    def __init__(self, ctx: TileContext, options: PermitBoardOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or PermitBoardOptions()
        theme = ctx.theme
        css = InlineStyleSheet(css=_css(theme))
        self._names = {p.tag: p.name for p in ctx.site.people}
        cols = self.columns(ctx.site, None, None, ctx.lang, ctx.tz)
        self.source = ColumnDataSource(cols, name="wall-permit-board")
        self.header = Div(
            text=self.header_html(self.counts(None), 0, 0, False, ctx.lang),
            stylesheets=[css],
            sizing_mode="stretch_width",
            name="wall-permits-header",
        )
        self.body = Div(
            text=self.rows_html(cols, False, ctx.lang),
            stylesheets=[css],
            sizing_mode="stretch_both",
            name="wall-permits-body",
        )
        follow_hidden_cards(self.body)
        self.root = column(
            self.header,
            self.body,
            sizing_mode="stretch_both",
            spacing=0,
            styles={"background": theme.palette.tile, "overflow": "hidden"},
            name="wall-permits",
        )

    # -- pure functions (tested with no server) --------------------------------------------------------------
    @staticmethod
    def time_text(
        state: str, valid_from_s: float, valid_to_s: float, now_s: float | None, lang: str, tz: tzinfo
    ) -> str:
        """What the card says about time. A permit at work (active or suspended): the time left to its end at
        engine time ``now_s`` (``'1 h 20 min left'``, ``'5 min past its end'``); any other permit, or when the
        engine time is unknown: its window in the site's time zone (``'14:00–18:00'``)."""
        if state in ("active", "suspended") and now_s is not None and math.isfinite(valid_to_s):
            left = valid_to_s - now_s
            if left >= 0:
                return t("permits.left", lang, t=format_duration(left, lang))
            return t("permits.overdue", lang, t=format_duration(-left, lang))
        start, end = (format_clock(v, tz)[:5] for v in (valid_from_s, valid_to_s))
        return t("permits.window", lang, start=start, end=end)

    @staticmethod
    def columns(
        site: Site,
        board: PermitBoard | None,
        now_s: float | None,
        lang: str,
        tz: tzinfo,
        max_rows: int | None = None,
        *,
        show_over: bool = False,
    ) -> dict[str, list[Any]]:
        """One row per permit on the board, in the engine's order, grey ones (over) only with ``show_over``,
        at most ``max_rows``.

        Columns: ``id``, ``board`` (red / amber / green / grey), ``color``, ``state``, ``state_label`` (in
        ``lang``; ``· ENDING SOON`` added for an active permit on amber), ``title`` (type in ``lang`` and grade),
        ``zone`` (zone name in ``lang``, or *own area* for a permit with its own polygon), ``time``
        (:meth:`time_text`), ``workers`` and ``watcher`` (names with tags), ``reason`` (of a suspension or
        closure, else empty).
        """
        cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        if board is None:
            return cols
        names = {p.tag: p.name for p in site.people}
        zones = {z.id: z.name.get(lang) for z in site.zones}
        permits = [p for p in board.permits if show_over or p.board != "grey"]
        if max_rows is not None:
            permits = permits[:max_rows]
        for p in permits:
            key = f"permit.state.{p.state}"
            state = t(key, lang) if key in TEXTS["en"] else p.state.upper()
            if p.board == "amber" and p.state == "active":
                state += f" \u00b7 {t('permit.ending_soon', lang)}"
            title = p.type_text(lang)
            if p.grade:
                title = t("permits.type_grade", lang, type=title, grade=p.grade)
            cols["id"].append(p.id)
            cols["board"].append(p.board)
            cols["color"].append(BOARD_COLORS[p.board])
            cols["state"].append(p.state)
            cols["state_label"].append(state)
            cols["title"].append(title)
            cols["zone"].append(zones.get(p.zone, p.zone) if p.zone else t("permits.own_area", lang))
            cols["time"].append(
                PermitBoardTile.time_text(p.state, p.valid_from_s, p.valid_to_s, now_s, lang, tz)
            )
            cols["workers"].append(
                ", ".join(person_label(names, w) for w in p.workers) or t("permits.nobody", lang)
            )
            cols["watcher"].append(person_label(names, p.watcher) if p.watcher else t("permits.nobody", lang))
            cols["reason"].append(p.reason if p.state in ("suspended", "closed") else "")
        return cols

    @staticmethod
    def counts(board: PermitBoard | None) -> dict[str, int]:
        """How many permits of each board colour (every colour of :data:`~console.link.PERMIT_BOARDS`)."""
        out = dict.fromkeys(PERMIT_BOARDS, 0)
        for p in board.permits if board is not None else ():
            out[p.board] += 1
        return out

    @staticmethod
    def header_html(
        counts: Mapping[str, int], total: int, shown: int, received: bool, lang: str, tile: str = ""
    ) -> str:
        """``Permits to work  2 in progress  1 suspended or ending  1 planned  +3 more``."""
        parts = [f'<span class="wf-em">{html.escape(t("permits.title", lang))}</span>']
        for board in ("red", "amber", "green"):
            n = counts.get(board, 0)
            if n:
                parts.append(
                    f'<span style="color:{BOARD_COLORS[board]}">{html.escape(t(f"permits.count_{board}", lang, n=n))}'
                    "</span>"
                )
        # the browser adds the cards it had to hide (console/web/tiles/more.py)
        parts.append(more_span(tile, max(total - shown, 0), t("permits.more", lang, n="{n}")))
        if not received:
            parts.append(f'<span class="wf-dim">{html.escape(t("permits.waiting", lang))}</span>')
        return f'<div class="wf-tile-head">{"".join(parts)}</div>'

    @staticmethod
    def rows_html(cols: Mapping[str, list[Any]], received: bool, lang: str, tile: str = "") -> str:
        """The cards for :meth:`columns`' rows; every text is escaped (it comes from people and the site)."""
        n = len(cols["id"])
        if n == 0:
            key = "permits.none" if received else "permits.waiting"
            return f'<div class="wf-permits"><div class="wf-empty">{html.escape(t(key, lang))}</div></div>'
        cards = []
        e = html.escape
        for i in range(n):
            color = cols["color"][i]
            reason = (
                f'<div class="wf-permit-reason">{e(t("permits.reason", lang, reason=cols["reason"][i]))}</div>'
                if cols["reason"][i]
                else ""
            )
            cards.append(
                f'<div class="wf-permit" style="border-left-color:{color}" data-permit="{e(cols["id"][i])}" '
                f'data-board="{e(cols["board"][i])}">'
                f'<div class="wf-permit-line">'
                f'<span class="wf-permit-state" style="color:{color}">{e(cols["state_label"][i])}</span>'
                f'<a class="wf-permit-id" href="{e(workstation_link(cols["id"][i], lang))}" target="_blank">'
                f'{e(cols["id"][i])}</a>'
                f'<span class="wf-permit-type">{e(cols["title"][i])}</span>'
                f'<span class="wf-permit-time">{e(cols["time"][i])}</span></div>'
                f'<div class="wf-permit-facts">{e(cols["zone"][i])}</div>'
                f'<div class="wf-permit-facts">{e(t("permits.workers", lang))}: <b>{e(cols["workers"][i])}</b>'
                f" \u00b7 {e(t('permits.watcher', lang))}: <b>{e(cols['watcher'][i])}</b></div>"
                f"{reason}</div>"
            )
        return f'<div class="wf-permits wf-cards" data-tile="{e(tile)}">{"".join(cards)}</div>'

    @staticmethod
    def cards_that_fit(cols: Mapping[str, list[Any]], header_items: list[float], lang: str,
                       share: tuple[float, float]) -> int:
        """How many of the cards of ``cols`` fit whole in a tile taking ``share`` of the screen under a header of
        items ``header_items`` wide (px at scale 1); at least one. Every line is wrapped as the browser wraps
        it, in the page font's advance widths (:mod:`.fit`)."""
        width, height = tile_size(share)
        rows = flex_lines(header_items, 24, _WIDTH_TRUST * (width - 36))
        room = height - (rows * 48 * LINE + (rows - 1) * 4 + 22)
        inner = _WIDTH_TRUST * (width - _BORDER_LEFT - _PAD[1] - _PAD[3])
        facts = _SMALL * _FACTS_LINE
        n = 0
        for i in range(len(cols["id"])):
            words = [
                text_width(cols["state_label"][i], _TEXT, bold=True),
                text_width(cols["id"][i], _TEXT, bold=True),
                *(text_width(w, _TEXT) for w in cols["title"][i].split(" ")),
                text_width(cols["time"][i], _TEXT),
            ]
            first = flex_lines(words, _GAP * 0.5, inner)  # the title's words wrap at spaces (narrower gap)
            workers = (f"{t('permits.workers', lang)}: {cols['workers'][i]} \u00b7 "
                       f"{t('permits.watcher', lang)}: {cols['watcher'][i]}")
            lines = wrapped_lines(cols["zone"][i], inner, _SMALL) + wrapped_lines(workers, inner, _SMALL)
            if cols["reason"][i]:
                lines += wrapped_lines(t("permits.reason", lang, reason=cols["reason"][i]), inner, _SMALL)
            card = _PAD[0] + first * _LINE_PX + lines * facts + 4 + _PAD[2] + _BORDER_BOTTOM + _SLACK
            room -= card
            if room < 0:
                break
            n += 1
        return max(n, 1)

    # -- live update -----------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Rebuild the cards from the latest board and engine time; send only what changed (the time left
        changes once a minute)."""
        ctx, opts = self.ctx, self.options
        board = snap.permits
        cols = self.columns(
            ctx.site, board, snap.engine_ts_s, ctx.lang, ctx.tz, opts.max_rows, show_over=opts.show_over
        )
        listed = 0 if board is None else sum(1 for p in board.permits if opts.show_over or p.board != "grey")
        listed += 0 if board is None else board.omitted  # left off a full board by the engine: not shown either
        counts = self.counts(board)
        head = [text_width(t("permits.title", ctx.lang), 48, bold=True)]
        head += [text_width(t(f"permits.count_{b}", ctx.lang, n=counts[b]), 48) for b in ("red", "amber", "green")
                 if counts.get(b)]
        head.append(text_width(t("permits.more", ctx.lang, n=max(listed, 1)), 36))
        # only whole cards: the rest is "+N more" in the header
        fit = self.cards_that_fit(cols, head, ctx.lang, ctx.share)
        cols = {k: v[:fit] for k, v in cols.items()}
        header = self.header_html(counts, listed, len(cols["id"]), board is not None, ctx.lang, self.body.id)
        body = self.rows_html(cols, board is not None, ctx.lang, self.body.id)
        if header != self.header.text:
            self.header.text = header
        if body != self.body.text:
            self.body.text = body
            self.source.data = cols
