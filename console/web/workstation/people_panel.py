"""People at the workstation: find a person (:class:`SearchPanel`), see them and their trail of the last 10 minutes
on a map, show them on every wall of the site for 30 s (the engine's ``person_highlight``, journaled), and ask the
engine who is in a zone now or was there in a recent period (its ``zone_presence`` answer; a console never reads
the recording)."""

from __future__ import annotations

import html
import logging
import time
from datetime import datetime
from typing import Any

import panel as pn

from config import Site
from ingest.protocol.highlight import HIGHLIGHT_OP
from ingest.protocol.queries import OP_ZONE_PRESENCE

from ...auth import Credential
from ...link import LinkSnapshot
from ..i18n import t
from ..tiles import TileContext
from ..tiles.floor_map import FloorMap, FloorMapOptions
from .commands import CommandSink, Status, ask_engine, send_command, status_html
from .search_panel import MAX_SHOWN, SearchPanel

log = logging.getLogger(__name__)

__all__ = ["BETWEEN", "PERIODS_S", "PeoplePanel"]

#: the periods a zone question may cover, seconds back from now (0: at this moment); BETWEEN: two times chosen
PERIODS_S: tuple[int, ...] = (0, 900, 3600, 8 * 3600, 24 * 3600)
BETWEEN = -1


def _age_text(age_s: float) -> str:
    """``45 s``, ``12 min``, ``3 h``."""
    if age_s < 120:
        return f"{age_s:.0f} s"
    if age_s < 7200:
        return f"{age_s / 60:.0f} min"
    return f"{age_s / 3600:.0f} h"


class PeoplePanel:
    """``root``: search, pick, the map with the picked person's trail, the wall button and the zone question;
    ``update(snap)`` from the session's tick; ``set_user`` on login and logout."""

    def __init__(self, site: Site, link: CommandSink, ctx: TileContext, *, command_timeout_s: float = 5.0) -> None:
        th, lang = ctx.theme, ctx.lang
        self.site, self.link, self.lang, self.tz = site, link, lang, ctx.tz
        self.command_timeout_s = command_timeout_s
        self.credential: Credential | None = None
        self.search = SearchPanel(site, ctx)
        self._people = {p.id: p for p in site.people}
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css()]
        self.pick = pn.widgets.Select(label=t("people.pick", lang), options={}, width=th.px(900), stylesheets=wcss)
        self.show_button = pn.widgets.Button(label=t("people.show_on_wall", lang), color="primary", width=th.px(520),
                                             disabled=True, stylesheets=wcss)
        self.show_button.on_click(self._show_clicked)
        self.show_line = pn.pane.HTML("", stylesheets=pcss, margin=(4, 8))
        self.map = FloorMap(ctx.for_tile((0.5, 0.6)), FloorMapOptions(
            show_anchors=False, show_gas=False, show_gas_field=False, show_vibration=False, show_legend=False,
            show_structure_labels=False), picked=self._picked)  # people, zones and permits: where is who
        self.map.figure.name = "ws-people-map"
        self.map.marks.source.name, self.map.marks.trails.name = "ws-marks", "ws-mark-trails"
        zones = sorted(site.zones, key=lambda z: z.name.get(lang))
        self.zone = pn.widgets.Select(label=t("people.zone", lang), options={z.name.get(lang): z.id for z in zones},
                                      width=th.px(700), stylesheets=wcss)
        self.period = pn.widgets.Select(label=t("people.period", lang), width=th.px(500), stylesheets=wcss,
                                        options={**{t(f"people.period_{s}", lang): s for s in PERIODS_S},
                                                 t("people.period_between", lang): BETWEEN})
        # "who was in zone X between t1 and t2": two times of the site's clock, shown when chosen
        self.between = pn.widgets.DatetimeRangePicker(label=t("people.between", lang), width=th.px(760),
                                                      stylesheets=wcss, visible=False, enable_seconds=False)
        self.period.param.watch(lambda e: setattr(self.between, "visible", e.new == BETWEEN), "value")
        self.ask_button = pn.widgets.Button(label=t("people.ask", lang), width=th.px(360), stylesheets=wcss)
        self.ask_button.on_click(self._ask_clicked)
        # a long answer scrolls in its own box: the map above it keeps its size
        self.answer = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", height=th.px(420),
                                   styles={"overflow-y": "auto"}, margin=(4, 8))
        self.search.box.param.watch(lambda _e: self._refresh_pick(), "value_input")
        left = pn.Column(self.search.root, self.pick, pn.Row(self.show_button, self.show_line),
                         sizing_mode="stretch_both", margin=0)
        right = pn.Column(pn.pane.Bokeh(self.map.root, sizing_mode="stretch_width", height=th.px(1300)),
                          pn.pane.HTML(f"<h3>{html.escape(t('people.zone_title', lang))}</h3>",
                                       stylesheets=pcss, margin=(8, 8, 0, 8)),
                          pn.Row(self.zone, self.period, self.ask_button), self.between, self.answer,
                          sizing_mode="stretch_both", margin=0)
        self.root = pn.Row(left, right, sizing_mode="stretch_both", margin=0)
        self._snap: LinkSnapshot | None = None
        self._shown: Status = ("", "ok")

    # -- who is logged in --------------------------------------------------------------------------------------
    def set_user(self, credential: Credential | None) -> None:
        self.credential = credential
        self._shown = ("", "ok")
        self.show_line.object = ""
        self.answer.object = ""
        self._refresh_buttons()

    def _refresh_buttons(self) -> None:
        self.show_button.disabled = self.credential is None or not self.pick.value

    # -- the tick --------------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Follow the link: the answers, the picked person on the map. Bokeh models change here: call it from
        the session's tick (under the document lock)."""
        self._snap = snap
        self.search.update(snap)
        self.map.update(snap)

    def _picked(self) -> list[str]:
        return [self.pick.value] if self.pick.value else []

    def _refresh_pick(self) -> None:
        """The people the search finds now become the choices; the first is picked unless the pick is among them."""
        q = self.search.query
        hits = self.search.index.search(q, limit=MAX_SHOWN) if q else []
        options = {}
        for h in hits:
            p = self.search.index.people[h.index]
            options[f"{p.name} {p.name_zh} \u00b7 {p.id} \u00b7 {p.tag}".replace("  ", " ")] = p.id
        if options != self.pick.options:
            keep = self.pick.value if self.pick.value in options.values() else next(iter(options.values()), None)
            self.pick.options = options
            self.pick.value = keep
        self._refresh_buttons()

    # -- show on the walls ------------------------------------------------------------------------------------
    async def _show_clicked(self, _event: Any) -> None:
        await self.show_on_wall()

    async def show_on_wall(self) -> dict[str, Any] | None:
        """Ask the engine to mark the picked person on every wall for 30 s; returns its reply (None: not sent)."""
        cred, person = self.credential, self.pick.value
        if cred is None or not person:
            return None
        label = t("people.show_on_wall", self.lang)
        self.show_button.disabled = True
        try:
            reply, self._shown = await send_command(
                self.link, cred.sign({"op": HIGHLIGHT_OP, "person": person}), timeout_s=self.command_timeout_s,
                label=label, ok_text=t("people.shown", self.lang, name=self._people[person].name), lang=self.lang,
                what=f"{HIGHLIGHT_OP} {person} by {cred.user.id}")
            cred.take(reply)
        finally:
            self._refresh_buttons()
        self.show_line.object = status_html(self._shown)
        return reply

    # -- who is in a zone ---------------------------------------------------------------------------------------
    async def _ask_clicked(self, _event: Any) -> None:
        await self.ask()

    async def ask(self, now_s: float | None = None) -> dict[str, Any] | None:
        """Ask the engine who was in the chosen zone over the chosen period; shows and returns its answer."""
        cred = self.credential
        if cred is None:
            return None
        engine_now = self._snap.engine_ts_s if self._snap is not None else None
        now = now_s if now_s is not None else engine_now if engine_now is not None else time.time()  # engine time
        if self.period.value == BETWEEN:
            if not self.between.value or None in self.between.value:
                self.answer.object = status_html((t("people.between_missing", self.lang), "refused"))
                return None
            # the picker shows the site's clock: its times are the site's local times
            t1, t2 = (d.replace(tzinfo=self.tz).timestamp() for d in self.between.value)
        else:
            t1, t2 = now - int(self.period.value or 0), now
        req = cred.sign({"op": OP_ZONE_PRESENCE, "zone": self.zone.value, "from_ts_s": t1, "to_ts_s": t2})
        try:
            reply = await ask_engine(self.link, req, self.command_timeout_s)
        except (TimeoutError, RuntimeError) as e:
            log.warning("workstation: zone question: %s", e)
            self.answer.object = status_html((t("reply.no_answer", self.lang, action=t("people.ask", self.lang),
                                                error=str(e) or "timeout"), "refused"))
            return None
        self.answer.object = self.answer_html(reply)
        return reply

    def _clock(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.tz).strftime("%H:%M:%S")

    def answer_html(self, reply: dict[str, Any]) -> str:
        """The engine's answer as a table: who, when they entered, when they left (or still inside)."""
        e, lang = html.escape, self.lang
        if not reply.get("ok"):
            return status_html((t("reply.refused", lang, action=t("people.ask", lang),
                                  reason=str(reply.get("reason", "?"))), "refused"))
        visits = reply.get("visits") or []
        zone = next((z.name.get(lang) for z in self.site.zones if z.id == reply.get("zone")), reply.get("zone"))
        head = t("people.answer_head", lang, n=reply.get("n", len(visits)), zone=zone)
        rows = []
        for v in visits:
            p = self._people.get(v.get("person"))
            name = f"{p.name} {p.name_zh}".strip() if p else str(v.get("person"))
            left = v.get("exit_ts_s")
            inside = t("people.still_inside", lang)
            age = v.get("fix_age_s")
            if left is None and isinstance(age, (int, float)) and age > self.site.engine.fix_stale_s:
                inside = t("people.still_inside_stale", lang, age=_age_text(float(age)))
            rows.append(f'<tr><td>{e(name)}</td><td>{e(str(v.get("person")))}</td><td>{e(v.get("company") or "")}</td>'
                        f'<td>{e(self._clock(float(v["enter_ts_s"])))}</td>'
                        f'<td>{e(inside if left is None else self._clock(float(left)))}</td></tr>')
        notes = []
        if reply.get("truncated"):
            notes.append(t("people.truncated", lang, shown=len(visits)))
        if not reply.get("complete", True) and reply.get("history_from_ts_s") is not None:
            notes.append(t("people.incomplete", lang, since=self._clock(float(reply["history_from_ts_s"]))))
        cols = "".join(f"<th>{e(t(k, lang))}</th>" for k in ("people.col_name", "people.col_id", "people.col_company",
                                                            "people.col_entered", "people.col_left"))
        table = (f'<table class="wf-zone-presence"><tr>{cols}</tr>{"".join(rows)}</table>' if rows else "")
        tail = "".join(f'<div class="wf-dim">{e(n)}</div>' for n in notes)
        return f'<div class="wf-zone-answer"><div><b>{e(head)}</b></div>{table}{tail}</div>'
