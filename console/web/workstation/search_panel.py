"""Finding a person at the workstation: a search box and, for each person found, where they are now in words, how
old that fix is and how accurate (range sigma x GDOP, as the positions' omlox accuracy), their company, the live
permits they work on or watch, and their alarms (console/web/search.py finds them; console/web/places.py names the
place). The answer follows the live positions while the query stands."""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import panel as pn

from config import Site

from ...link import LinkSnapshot
from ..i18n import t
from ..places import Places
from ..search import index_for
from ..theme import PRIORITY_STYLE
from ..tiles import TileContext

__all__ = ["SearchPanel"]

#: people shown for one query (the rest are counted)
MAX_SHOWN = 8


class SearchPanel:
    """``root``: the search box and the answers; ``update(snap)`` keeps the answers live."""

    def __init__(self, site: Site, ctx: TileContext) -> None:
        th = ctx.theme
        self.site, self.lang = site, ctx.lang
        self.index = index_for(site)
        self.places = Places(site, ctx.lang)
        self.stale_s = site.engine.fix_stale_s
        self.range_sigma_m = site.uwb.range_sigma_m
        self._snap: LinkSnapshot | None = None
        self.box = pn.widgets.TextInput(placeholder=t("search.placeholder", ctx.lang), width=th.px(900),
                                        stylesheets=[th.widget_css()])
        self.box.param.watch(lambda _e: self.refresh(), "value_input")
        self.answers = pn.pane.HTML("", stylesheets=[th.workstation_panel_css()], sizing_mode="stretch_width",
                                    margin=(0, 8))
        self.root = pn.Column(self.box, self.answers, sizing_mode="stretch_width", margin=0)

    @property
    def query(self) -> str:
        return (self.box.value_input or self.box.value or "").strip()

    def update(self, snap: LinkSnapshot) -> None:
        self._snap = snap
        if self.query:
            self.refresh()

    def refresh(self) -> None:
        text = self.answers_html(self.query, self._snap)
        if text != self.answers.object:
            self.answers.object = text

    def answers_html(self, query: str, snap: LinkSnapshot | None) -> str:
        """The people ``query`` finds, as cards ("" for an empty query; a sentence when nobody matches)."""
        if not query:
            return ""
        hits = self.index.search(query, limit=MAX_SHOWN + 1000)
        e = html.escape
        if not hits:
            return f'<div class="wf-dim">{e(t("search.none", self.lang, q=query))}</div>'
        arrays = snap.positions.arrays if snap is not None and snap.positions is not None else None
        alarms = snap.alarms.alarms.values() if snap is not None else ()
        board = snap.permits.permits if snap is not None and snap.permits is not None else ()
        live = [p for p in board if p.state in ("approved", "active", "suspended")]
        by_person: dict[str, list[Any]] = {}
        for rec in alarms:
            if rec.person and rec.on_list:
                by_person.setdefault(rec.person, []).append(rec)
        cards = []
        for h in hits[:MAX_SHOWN]:
            p = self.index.people[h.index]
            where, age = self._where(h.index, arrays)
            jobs = " \u00b7 ".join(
                f"{q.id} {q.type_name.get(self.lang, q.type)} ({t(f'permit.state.{q.state}', self.lang)}, "
                f"{t('search.watcher', self.lang) if q.watcher == p.tag else t('search.worker', self.lang)})"
                for q in live if p.tag in q.workers or q.watcher == p.tag)
            jobs_line = f'<div class="wf-dim">{e(t("search.permits", self.lang, permits=jobs))}</div>' if jobs else ""
            names = f"{p.name} {p.name_zh}".strip()
            extra = " \u00b7 ".join(x for x in (p.company, p.role) if x)
            alarm_lines = "".join(
                f'<div><span class="wf-pri" style="color:{PRIORITY_STYLE[r.rank].color}">{PRIORITY_STYLE[r.rank].symbol} '
                f"{e(t(f'priority.{r.priority}', self.lang))}</span> {e(r.text(self.lang))}</div>"
                for r in sorted(by_person.get(p.id, ()), key=lambda r: -r.rank)
            )
            cards.append(
                f'<div class="wf-card wf-found" data-person="{e(p.id)}">'
                f'<div class="wf-sel-line"><b>{e(names)}</b> <span>{e(p.id)} \u00b7 {e(p.tag)}</span>'
                f'<span class="wf-dim">{e(extra)}</span></div>'
                f'<div class="wf-where">{e(where)} <span class="wf-dim">{e(age)}</span></div>{jobs_line}{alarm_lines}</div>'
            )
        more = len(hits) - MAX_SHOWN
        tail = f'<div class="wf-dim">{e(t("search.more", self.lang, n=more))}</div>' if more > 0 else ""
        return f'<div class="wf-found-list">{"".join(cards)}{tail}</div>'

    def _where(self, i: int, arrays: Any) -> tuple[str, str]:
        """Where person ``i`` is in words and how old that fix is, from a positions frame's arrays."""
        if arrays is None:
            return t("search.no_fix", self.lang), ""
        xyz = np.asarray(arrays["xyz_m"], dtype=np.float64).reshape(-1, 3)
        age = float(np.asarray(arrays["age_s"], dtype=np.float64)[i])
        gdop = float(np.asarray(arrays["gdop"], dtype=np.float64)[i]) if "gdop" in arrays else math.nan
        x, y = float(xyz[i, 0]), float(xyz[i, 1])
        if not (math.isfinite(x) and math.isfinite(y)):
            return t("muster.never_located", self.lang), ""
        where = self.places.describe(x, y, self.places.zones_at(x, y))
        old = age > self.stale_s
        age_text = t("muster.fix_now", self.lang) if age < 1.0 else t("muster.fix_age", self.lang, age=f"{age:.0f} s")
        if math.isfinite(gdop):
            age_text += " \u00b7 " + t("search.accuracy", self.lang, m=f"{self.range_sigma_m * gdop:.1f}")
        return where, ("\u25cb " if old else "") + age_text
