"""The emergency muster tile: shown while a supervisor's emergency is declared, quiet otherwise.

From the engine's ``muster.status``: the time since the declaration (ticking with engine time), who declared it
and for which area, the headcount (to account for, mustered, missing), the count at each muster point, and the
people not yet at a muster point with their last known position (zone names and site metres) and the age of
that fix. People whose fix is stale (older than ``site.engine.fix_stale_s``) or who were never located come
first, marked with a ring: nobody knows where they are now. Within each group the order is the site's, so the
list does not jump while ages tick.

``shown`` tells the page whether the tile has anything to show (an emergency is declared): a layout can stack
it on the cells of another tile (the permit board on the default wall), which it then replaces.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from bokeh.models import ColumnDataSource, Div, InlineStyleSheet
from pydantic import BaseModel, ConfigDict, Field

from config import Site
from ingest.protocol.records import MissingPerson, MusterStatus

from ...link import LinkSnapshot
from ..actions import format_duration
from ..i18n import t
from ..places import Places
from ..theme import Theme
from .base import TileContext, format_clock

__all__ = ["MusterOptions", "MusterTile", "format_elapsed"]

_COLUMNS = ("person", "name", "tag", "where", "age_s", "age_text", "stale", "located")


class MusterOptions(BaseModel):
    """Layout options of a ``muster`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_rows: int = Field(
        default=40, ge=1, le=1000, description="missing people listed; the header counts all"
    )


def format_elapsed(seconds: float) -> str:
    """``75 -> '01:15'``, ``3725 -> '1:02:05'``; ``'--:--'`` when unknown."""
    if not math.isfinite(seconds):
        return "--:--"
    total = max(0, int(seconds))
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


#: the missing people's places in words per (status, language, site): a few statuses at a time (the wall tile and
#: the workstations of one console process share it)
_WHERE_CACHE: dict[tuple, dict[str, str]] = {}


def _css(theme: Theme) -> str:
    p = theme.palette
    return (
        theme.tile_css()
        + f"""
.wf-muster {{ height: 100%; overflow: hidden; font-size: {theme.text_px}px; }}
.wf-muster-head {{
  display: flex; align-items: baseline; gap: {theme.px(24)}px; padding: {theme.px(10)}px {theme.px(18)}px;
  background: {p.emergency_background}; color: {p.emergency_text}; font-weight: bold; font-size: {theme.large_px}px;
  white-space: nowrap;
}}
.wf-muster-clock {{ margin-left: auto; font-size: {theme.huge_px}px; font-variant-numeric: tabular-nums; }}
.wf-muster-sub {{ padding: {theme.px(6)}px {theme.px(18)}px; color: {p.text_dim}; font-size: {theme.small_px}px; }}
.wf-muster-counts {{
  display: flex; gap: {theme.px(36)}px; padding: {theme.px(6)}px {theme.px(18)}px; align-items: baseline;
  border-bottom: {theme.px(2)}px solid {p.tile_border}; white-space: nowrap;
}}
.wf-muster-counts b {{ font-size: {theme.huge_px}px; font-variant-numeric: tabular-nums; }}
.wf-muster-missing {{ color: {p.emergency_background}; font-weight: bold; }}
.wf-muster-points {{ padding: {theme.px(6)}px {theme.px(18)}px; font-size: {theme.small_px}px; color: {p.text_dim};
  border-bottom: {theme.px(2)}px solid {p.tile_border}; }}
.wf-muster-points b {{ color: {p.text}; font-variant-numeric: tabular-nums; }}
.wf-muster-title {{ padding: {theme.px(8)}px {theme.px(18)}px {theme.px(2)}px; font-weight: bold; }}
.wf-muster-row {{
  display: flex; gap: {theme.px(16)}px; align-items: baseline; padding: {theme.px(3)}px {theme.px(18)}px;
  font-size: {theme.small_px}px; white-space: nowrap; border-bottom: 1px solid {p.tile_border};
}}
.wf-muster-row .wf-who {{ color: {p.text}; }}
.wf-muster-row .wf-where {{ color: {p.text_dim}; overflow: hidden; text-overflow: ellipsis; flex: 1; }}
.wf-muster-row .wf-age {{ font-variant-numeric: tabular-nums; color: {p.text_dim}; }}
.wf-muster-row.wf-stale .wf-age, .wf-muster-row.wf-stale .wf-who {{ color: {p.text}; font-weight: bold; }}
.wf-muster-more {{ padding: {theme.px(6)}px {theme.px(18)}px; color: {p.text_dim}; font-size: {theme.small_px}px; }}
.wf-empty {{ font-size: {theme.large_px}px; color: {p.text_dim}; padding: {theme.px(30)}px {theme.px(18)}px; }}
"""
    )


class MusterTile:
    """The muster tile. ``source`` holds one row per missing person listed, ``root`` is a Div."""

    def __init__(self, ctx: TileContext, options: MusterOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or MusterOptions()
        theme = ctx.theme
        self.source = ColumnDataSource({k: [] for k in _COLUMNS}, name="wall-muster-missing")
        self.root = Div(
            text=self.html(None, {k: [] for k in _COLUMNS}, ctx.lang),
            stylesheets=[InlineStyleSheet(css=_css(theme))],
            sizing_mode="stretch_both",
            styles={"background": theme.palette.tile},
            name="wall-muster",
        )
        self.shown = False

    # -- pure functions (tested with no server) --------------------------------------------------------------
    @staticmethod
    def where_text(person: MissingPerson, places: Places, lang: str) -> str:
        """The last known position in words (:class:`~console.web.places.Places`: the zones the person is in,
        the building around them, or the nearest one); *never located* when the engine has no position."""
        if person.position_m is None:
            return t("muster.never_located", lang)
        return places.describe(person.position_m[0], person.position_m[1], person.zones)

    @staticmethod
    def missing_columns(
        site: Site,
        status: MusterStatus | None,
        now_s: float | None,
        lang: str,
        stale_s: float,
        max_rows: int | None = None,
    ) -> dict[str, list[Any]]:
        """The people not yet mustered: stale or never located first, then the others, each group in site order.

        ``age_s`` is the fix's age at engine time ``now_s`` (the published age plus the time since the status;
        NaN when never located); ``stale`` is ``age_s > stale_s`` or never located. Columns: ``person``,
        ``name``, ``tag``, ``where`` (:meth:`where_text`), ``age_s``, ``age_text`` (*fix just now* under a second,
        empty when never located), ``stale``, ``located``.
        """
        cols: dict[str, list[Any]] = {k: [] for k in _COLUMNS}
        if status is None or not status.active:
            return cols
        since = 0.0
        if now_s is not None and math.isfinite(now_s) and math.isfinite(status.engine_ts_s):
            since = max(0.0, now_s - status.engine_ts_s)
        order = {p.id: i for i, p in enumerate(site.people)}
        # the places in words change only with the status (ages change every tick): named once per status
        key = (id(status), status.version, lang, id(site))
        where = _WHERE_CACHE.get(key)
        if where is None:
            places = Places(site, lang)
            where = {m.person: MusterTile.where_text(m, places, lang) for m in status.missing}
            if len(_WHERE_CACHE) >= 16:
                _WHERE_CACHE.pop(next(iter(_WHERE_CACHE)))
            _WHERE_CACHE[key] = where
        rows = []
        for m in status.missing:
            age = m.fix_age_s + since if math.isfinite(m.fix_age_s) else math.nan
            located = m.position_m is not None
            stale = not located or not age <= stale_s
            rows.append((not stale, order.get(m.person, len(order)), m.person, m, age, stale, located))
        rows.sort(key=lambda r: r[:3])
        if max_rows is not None:
            rows = rows[:max_rows]
        for _, _, _, m, age, stale, located in rows:
            cols["person"].append(m.person)
            cols["name"].append(m.name)
            cols["tag"].append(m.tag)
            cols["where"].append(where[m.person])
            cols["age_s"].append(age)
            if not math.isfinite(age):
                age_text = ""
            elif age < 1.0:
                age_text = t("muster.fix_now", lang)
            else:
                age_text = t("muster.fix_age", lang, age=format_duration(age, lang))
            cols["age_text"].append(age_text)
            cols["stale"].append(stale)
            cols["located"].append(located)
        return cols

    @staticmethod
    def summary(
        site: Site, status: MusterStatus | None, now_s: float | None, lang: str, tz: tzinfo
    ) -> dict[str, Any] | None:
        """The head of the tile: ``elapsed`` (text), ``declared`` (when and by whom), ``area``, the counts
        ``roster`` / ``mustered`` / ``missing``, and ``points`` [(muster point name in ``lang``, count)].
        None when no emergency is declared."""
        if status is None or not status.active:
            return None
        zone_names = {z.id: z.name.get(lang) for z in site.zones}
        if status.area == "all":
            area = t("muster.area_all", lang)
        else:
            area = t("muster.area", lang, zones=", ".join(zone_names.get(z, z) for z in status.area))
        return {
            "elapsed": format_elapsed(status.elapsed_at(now_s)),
            "declared": t(
                "muster.declared",
                lang,
                time=format_clock(status.declared_ts_s, tz),
                user=status.declared_by or "?",
            ),
            "area": area,
            "roster": status.roster,
            "mustered": status.mustered,
            "missing": status.missing_count,
            "points": [(p.name_text(lang), p.count) for p in status.points],
        }

    @staticmethod
    def html(summary: Mapping[str, Any] | None, cols: Mapping[str, list[Any]], lang: str) -> str:
        """The tile's HTML; every text from the site or the engine is escaped."""
        e = html.escape
        if summary is None:
            return f'<div class="wf-muster"><div class="wf-empty">{e(t("muster.inactive", lang))}</div></div>'
        points = " &nbsp; ".join(f"{e(name)} <b>{n}</b>" for name, n in summary["points"])
        rows = []
        for i in range(len(cols["person"])):
            stale = cols["stale"][i]
            mark = "\u25cb" if stale else "\u25cf"  # ring: where the person is now is not known
            who = f"{cols['person'][i]} {cols['name'][i]}".strip()
            if cols["tag"][i]:
                who += f" ({cols['tag'][i]})"
            rows.append(
                f'<div class="wf-muster-row{" wf-stale" if stale else ""}" data-person="{e(cols["person"][i])}">'
                f'<span class="wf-who">{mark} {e(who)}</span>'
                f'<span class="wf-where">{e(cols["where"][i])}</span>'
                f'<span class="wf-age">{e(cols["age_text"][i])}</span></div>'
            )
        missing = summary["missing"]
        more = missing - len(rows)
        if not missing:
            rows.append(f'<div class="wf-muster-more">{e(t("muster.none_missing", lang))}</div>')
        elif more > 0:
            rows.append(f'<div class="wf-muster-more">{e(t("muster.more", lang, n=more))}</div>')
        return (
            '<div class="wf-muster" data-muster="active">'
            f'<div class="wf-muster-head"><span>{e(t("muster.title", lang))}</span>'
            f'<span class="wf-muster-clock">{e(summary["elapsed"])}</span></div>'
            f'<div class="wf-muster-sub">{e(summary["declared"])} \u00b7 {e(summary["area"])}</div>'
            '<div class="wf-muster-counts">'
            f"<span><b>{summary['roster']}</b> {e(t('muster.roster', lang))}</span>"
            f"<span><b>{summary['mustered']}</b> {e(t('muster.mustered', lang))}</span>"
            f'<span class="wf-muster-missing"><b>{missing}</b> {e(t("muster.missing", lang))}</span></div>'
            f'<div class="wf-muster-points">{points}</div>'
            f'<div class="wf-muster-title">{e(t("muster.missing_title", lang, n=missing))}</div>'
            f"{''.join(rows)}</div>"
        )

    # -- live update -----------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Recompute from the latest muster status and engine time; send only when the text changed."""
        ctx = self.ctx
        status = snap.muster
        now = snap.engine_ts_s
        self.shown = status is not None and status.active
        summary = self.summary(ctx.site, status, now, ctx.lang, ctx.tz)
        cols = self.missing_columns(
            ctx.site, status, now, ctx.lang, ctx.site.engine.fix_stale_s, self.options.max_rows
        )
        text = self.html(summary, cols, ctx.lang)
        if text != self.root.text:
            self.root.text = text
            self.source.data = cols
