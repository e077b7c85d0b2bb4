"""The workstation's permits: the list (filtered by state, type and zone), the selected permit in full
(permit_detail.py) and the actions, each a command through the engine link with the logged-in person's token:
request (a form: zone, workers and watcher from the people list, validity window), gas test and job safety
analysis (forms), approve, activate, suspend, resume, close and cancel (a reason where one is needed).

The console greys out only what the person's role may not do (``PERMIT_ROLES``); every other rule is the
engine's (the approver is not the applicant, the JSA, the certificates, the watcher's sign-in...), and its
refusal sentence is shown as it is.
"""

from __future__ import annotations

import html
import logging
import time
from datetime import datetime
from typing import Any

import panel as pn

from config import Site
from config.schema import PERMIT_GRADES, PERMIT_TYPES
from ingest.protocol.names import PERMIT_ROLES, PERMIT_STATES
from ingest.protocol.records import PermitInfo

from ...auth import Credential
from ...link import LinkSnapshot
from ..i18n import t
from ..tiles import TileContext
from .commands import CommandSink, Status, send_as, status_html
from .permit_detail import LIST_COLUMNS, detail_html, permit_rows, signin_path, state_label
from .rows import frame

log = logging.getLogger(__name__)

__all__ = ["PermitPanel", "ACTION_OPS", "FORM_OPS", "REASON_OPS"]

#: the ops that open a form first; the others are sent at once on the selected permit
FORM_OPS = ("permit_request", "permit_gas_test", "permit_jsa")
ACTION_OPS = ("permit_approve", "permit_activate", "permit_suspend", "permit_resume", "permit_close",
              "permit_cancel")
#: ops that send the reason field
REASON_OPS = frozenset({"permit_suspend", "permit_close", "permit_cancel"})
#: a new permit's id starts with its type's letters
_ID_PREFIX = {"hot_work": "HW", "confined_space": "CS", "blind_plate": "BP", "working_at_height": "WH",
              "lifting": "LF", "temporary_electricity": "TE", "excavation": "EX", "road_closure": "RC"}
_TIME_FORMAT = "%Y-%m-%d %H:%M"


class _Bad(ValueError):
    """A form field the console cannot send: the sentence to show."""


def _panel_css(ctx: TileContext) -> str:
    th, p = ctx.theme, ctx.theme.palette
    return th.workstation_panel_css() + f"""
.wf-pd {{ display: flex; gap: {th.px(24)}px; align-items: flex-start; }}
.wf-pd-main {{ flex: 1; min-width: 0; }}
.wf-pd-title {{ font-size: {th.large_px}px; border-left: {th.px(12)}px solid; padding-left: {th.px(12)}px; }}
.wf-pd-state {{ font-weight: bold; }}
.wf-pd-sec {{ margin-top: {th.px(12)}px; }}
.wf-pd-h {{ font-weight: bold; color: {p.text_dim}; border-bottom: {th.px(2)}px solid {p.tile_border}; }}
.wf-pd-row {{ padding: {th.px(2)}px 0; overflow-wrap: anywhere; }}
.wf-pd-ok {{ color: {p.text}; font-weight: bold; }}
.wf-pd-bad {{ color: #ff9a1f; font-weight: bold; }}
.wf-pd-refused {{ color: #ff9a1f; font-weight: bold; margin-top: {th.px(8)}px; overflow-wrap: anywhere; }}
.wf-pd-list {{ margin: 0; padding-left: {th.px(40)}px; }}
.wf-pd-qr {{ flex: none; text-align: center; width: {th.px(360)}px; }}
.wf-pd-print {{ color: {p.text}; }}
.wf-form-title {{ font-weight: bold; }}
"""


class PermitPanel:
    """``root`` to lay out; ``update(snap)`` once per tick; ``set_user(credential)`` on login / logout.

    ``signin_base``: the console's address as the browser reached it (``http://host:port``), for the QR code of
    the watcher's sign-in page (None: no code). Replies are awaited at most ``command_timeout_s``."""

    def __init__(self, site: Site, link: CommandSink, ctx: TileContext, *, command_timeout_s: float = 5.0,
                 signin_base: str | None = None) -> None:
        self.site, self.link, self.ctx, self.lang, self.tz = site, link, ctx, ctx.lang, ctx.tz
        self.command_timeout_s = float(command_timeout_s)
        self.signin_base = signin_base
        self.credential: Credential | None = None
        self.selected: str | None = None
        self.busy = False
        self.form: str | None = None  # the open form's op
        self._status: Status = ("", "ok")
        self._snap: LinkSnapshot | None = None
        self._ids: list[str] = []
        self._rows_key: Any = None
        self._setting_selection = False
        th, lang = ctx.theme, self.lang
        wcss, pcss = [th.widget_css()], [_panel_css(ctx)]

        def select(label_key: str, options: dict[str, str], css: str, width: int = 420) -> pn.widgets.Select:
            return pn.widgets.Select(label=t(label_key, lang), options=options, width=th.px(width), stylesheets=wcss,
                                     css_classes=[css])

        all_ = t("pw.filter.all", lang)
        type_names = {ptype: self._type_name(ptype) for ptype in PERMIT_TYPES}
        zones = {f"{z.name.get(lang)} ({z.id})": z.id for z in site.zones}
        self.state_filter = select("pw.filter.state", {all_: "", **{state_label(s, lang): s for s in PERMIT_STATES}},
                                   "wf-pf-state")
        self.type_filter = select("pw.filter.type", {all_: "", **{v: k for k, v in type_names.items()}},
                                  "wf-pf-type")
        self.zone_filter = select("pw.filter.zone", {all_: "", **zones}, "wf-pf-zone", 600)
        for w in (self.state_filter, self.type_filter, self.zone_filter):
            w.param.watch(lambda _e: self._redraw_list(), "value")
        self.table = pn.widgets.Tabulator(
            frame({k: [] for k in LIST_COLUMNS}),
            titles={c: t(f"pw.col.{c}", lang) for c in LIST_COLUMNS},
            widths={"id": th.px(180), "state": th.px(260), "zone": th.px(420), "time": th.px(300),
                    "applicant": th.px(200)},
            show_index=False, selectable=1, disabled=True, sortable=False, layout="fit_columns",
            sizing_mode="stretch_both", stylesheets=[th.workstation_table_css()], theme="midnight",
            configuration={"placeholder": t("pw.none", lang)}, css_classes=["wf-permit-list"],
        )
        self.table.param.watch(self._on_selection, "selection")
        # permits the engine left off its board (it was full): counted, never silently missing
        self.omitted_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8),
                                         visible=False, css_classes=["wf-permit-omitted"])
        self.detail = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_both", margin=(0, 8),
                                   styles={"overflow-y": "auto"}, css_classes=["wf-permit-detail"])
        self.buttons: dict[str, pn.widgets.Button] = {}
        for op in (*FORM_OPS, *ACTION_OPS):
            b = pn.widgets.Button(label=t(f"pw.op.{op}", lang), color="danger" if op == "permit_suspend" else
                                  "primary" if op in ("permit_approve", "permit_activate") else "default",
                                  width=th.px(330), stylesheets=wcss, css_classes=[f"wf-pb-{op}"])
            b.on_click(self._click(op))
            self.buttons[op] = b
        self.reason = pn.widgets.TextInput(placeholder=t("pw.reason", lang), width=th.px(1020), stylesheets=wcss,
                                           css_classes=["wf-permit-reason"])
        self.status_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8),
                                        css_classes=["wf-permit-status"])
        self._build_forms(th, wcss, pcss, type_names, zones)
        self.form_holder = pn.Column(sizing_mode="stretch_width", margin=0, visible=False)
        ops = list(self.buttons.values())
        self.actions = pn.Column(pn.Row(*ops[:5], margin=0), pn.Row(*ops[5:], margin=0), self.reason,
                                 self.status_line, self.form_holder, sizing_mode="stretch_width", margin=0)
        left = pn.Column(pn.Row(self.state_filter, self.type_filter, self.zone_filter, margin=0), self.table,
                         self.omitted_line, sizing_mode="stretch_both", margin=0)
        right = pn.Column(self.detail, self.actions, sizing_mode="stretch_both", margin=0)
        self.root = pn.Row(left, right, sizing_mode="stretch_both", margin=0)

    # -- the forms ------------------------------------------------------------------------------------------
    def _build_forms(self, th, wcss, pcss, type_names: dict[str, str], zones: dict[str, str]) -> None:
        lang = self.lang

        def text(key: str, css: str, width: int = 500, **kw: Any) -> pn.widgets.TextInput:
            return pn.widgets.TextInput(label=t(key, lang), width=th.px(width), stylesheets=wcss, css_classes=[css],
                                        **kw)

        people = {f"{p.name} {p.name_zh} ({p.tag})".replace("  ", " "): p.tag for p in self.site.people}
        self.f_title = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.f_id = text("pw.f.id", "wf-pf-id", 300)
        self.f_type = pn.widgets.Select(label=t("pw.f.type", lang), options={v: k for k, v in type_names.items()},
                                        width=th.px(420), stylesheets=wcss, css_classes=["wf-pf-ftype"])
        self.f_grade = pn.widgets.Select(label=t("pw.f.grade", lang), options={}, width=th.px(260), stylesheets=wcss,
                                         css_classes=["wf-pf-grade"])
        self.f_zone = pn.widgets.Select(label=t("pw.f.zone", lang), options=zones, width=th.px(600), stylesheets=wcss,
                                        css_classes=["wf-pf-fzone"])
        self.f_workers = pn.widgets.MultiChoice(label=t("pw.f.workers", lang), options=people, width=th.px(1000),
                                                stylesheets=wcss, css_classes=["wf-pf-workers"], search_option_limit=50)
        self.f_watcher = pn.widgets.Select(label=t("pw.f.watcher", lang),
                                           options={t("pw.f.nobody", lang): "", **people}, width=th.px(600),
                                           stylesheets=wcss, css_classes=["wf-pf-watcher"])
        self.f_from = text("pw.f.from", "wf-pf-from", 420, placeholder="YYYY-MM-DD HH:MM")
        self.f_to = text("pw.f.to", "wf-pf-to", 420, placeholder="YYYY-MM-DD HH:MM")
        self.f_desc = text("pw.f.description", "wf-pf-desc", 1000)
        self.f_type.param.watch(lambda _e: self._type_changed(), "value")
        self._type_changed()
        self.g_values = {gas: text(key, f"wf-pf-{gas.lower()}", 240) for gas, key in
                         (("LEL", "pw.f.lel"), ("O2", "pw.f.o2"), ("H2S", "pw.f.h2s"), ("CO", "pw.f.co"))}
        self.j_hazards = pn.widgets.TextAreaInput(label=t("pw.f.hazards", lang), width=th.px(1000), height=th.px(150),
                                                  stylesheets=wcss, css_classes=["wf-pf-hazards"])
        self.j_measures = pn.widgets.TextAreaInput(label=t("pw.f.measures", lang), width=th.px(1000),
                                                   height=th.px(150), stylesheets=wcss, css_classes=["wf-pf-measures"])
        self.j_prepared = text("pw.f.prepared", "wf-pf-prepared", 480)
        self.j_reviewed = text("pw.f.reviewed", "wf-pf-reviewed", 480)
        self.f_send = pn.widgets.Button(label=t("pw.f.send", lang), color="primary", width=th.px(330),
                                        stylesheets=wcss, css_classes=["wf-pf-send"])
        self.f_send.on_click(self._send_click)
        self.f_close = pn.widgets.Button(label=t("pw.f.close", lang), width=th.px(330), stylesheets=wcss,
                                         css_classes=["wf-pf-cancel"])
        self.f_close.on_click(lambda _e: self.close_form())
        buttons = pn.Row(self.f_send, self.f_close, margin=0)
        self.forms = {
            "permit_request": pn.Column(
                self.f_title, pn.Row(self.f_id, self.f_type, self.f_grade, self.f_zone, margin=0), self.f_workers,
                pn.Row(self.f_watcher, self.f_from, self.f_to, margin=0), self.f_desc, buttons, margin=0),
            "permit_gas_test": pn.Column(self.f_title, pn.Row(*self.g_values.values(), margin=0), buttons, margin=0),
            "permit_jsa": pn.Column(self.f_title, self.j_hazards, self.j_measures,
                                    pn.Row(self.j_prepared, self.j_reviewed, margin=0), buttons, margin=0),
        }

    def _type_name(self, ptype: str) -> str:
        return t(f"pw.type.{ptype}", self.lang)

    def _type_changed(self) -> None:
        grades = PERMIT_GRADES.get(self.f_type.value)
        self.f_grade.options = {t("pw.f.no_grade", self.lang): ""} if grades is None else {g: g for g in grades}
        self.f_grade.value = "" if grades is None else grades[-1]
        self.f_id.value = self._next_id(self.f_type.value)

    def _next_id(self, ptype: str) -> str:
        taken = set(self._board_ids())
        prefix = _ID_PREFIX.get(ptype, "P")
        n = 10
        while f"{prefix}-{n}" in taken:
            n += 1
        return f"{prefix}-{n}"

    def _board_ids(self) -> list[str]:
        board = self._snap.permits if self._snap is not None else None
        return [p.id for p in board.permits] if board is not None else []

    def open_form(self, op: str) -> None:
        """Show the form of ``op`` (request, gas test or JSA), its fields set to sensible starting values."""
        pid = self.selected or ""
        if op != "permit_request" and not pid:
            self._status = (t("pw.bad", self.lang, action=self._label(op), problem=t("pw.need_permit", self.lang)),
                            "refused")
            self.refresh()
            return
        self.form = op
        if op == "permit_request":
            self.f_title.object = f'<div class="wf-form-title">{html.escape(t("pw.f.request_title", self.lang))}</div>'
            self.f_id.value = self._next_id(self.f_type.value)
            now = self._now()
            self.f_from.value = datetime.fromtimestamp(now, self.tz).strftime(_TIME_FORMAT)
            self.f_to.value = datetime.fromtimestamp(now + 8 * 3600, self.tz).strftime(_TIME_FORMAT)
        elif op == "permit_gas_test":
            self.f_title.object = (f'<div class="wf-form-title">'
                                   f'{html.escape(t("pw.f.gas_title", self.lang, id=pid))}</div>')
        else:
            self.f_title.object = (f'<div class="wf-form-title">'
                                   f'{html.escape(t("pw.f.jsa_title", self.lang, id=pid))}</div>')
            if self.credential is not None and not self.j_prepared.value:
                self.j_prepared.value = self.credential.user.id
        self.form_holder.objects = [self.forms[op]]
        self.form_holder.visible = True
        self.refresh()

    def close_form(self) -> None:
        self.form = None
        self.form_holder.visible = False
        self.form_holder.objects = []

    def _now(self) -> float:
        snap = self._snap
        return snap.engine_ts_s if snap is not None and snap.engine_ts_s is not None else time.time()

    def _time(self, widget: pn.widgets.TextInput, key: str) -> float:
        text = (widget.value_input or widget.value or "").strip()
        try:
            return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=self.tz).timestamp()
        except ValueError:
            raise _Bad(t("pw.f.bad_time", self.lang, what=t(key, self.lang).split(" (")[0].split("（")[0])) from None

    def _number(self, widget: pn.widgets.TextInput, label: str, required: bool) -> float | None:
        text = (widget.value_input or widget.value or "").strip().replace(",", ".")
        if not text and not required:
            return None
        try:
            return float(text)
        except ValueError:
            raise _Bad(t("pw.f.bad_number", self.lang, what=label)) from None

    def form_request(self) -> dict[str, Any]:
        """The open form as the engine command (without the token); :class:`_Bad` with the sentence to show when a
        field cannot be sent. What the engine checks (ids, zones, the window...) is left to the engine."""
        op = self.form
        if op == "permit_request":
            req: dict[str, Any] = {
                "op": op, "permit": (self.f_id.value_input or self.f_id.value or "").strip(),
                "type": self.f_type.value, "grade": self.f_grade.value or None, "zone": self.f_zone.value,
                "workers": list(self.f_workers.value), "watcher": self.f_watcher.value or None,
                "valid_from_s": self._time(self.f_from, "pw.f.from"), "valid_to_s": self._time(self.f_to, "pw.f.to"),
            }
            desc = (self.f_desc.value_input or self.f_desc.value or "").strip()
            if desc:
                req["description"] = desc
            return req
        if op == "permit_gas_test":
            values = {}
            for gas, w in self.g_values.items():
                v = self._number(w, w.label.split(" (")[0], gas in ("LEL", "O2"))
                if v is not None:
                    values[gas] = v
            return {"op": op, "permit": self.selected, "values": values}
        if op == "permit_jsa":
            def val(w: Any) -> str:
                return (w.value_input or w.value or "").strip()

            return {"op": op, "permit": self.selected, "jsa": {
                "hazards": val(self.j_hazards).splitlines(), "measures": val(self.j_measures).splitlines(),
                "prepared_by": val(self.j_prepared), "reviewed_by": val(self.j_reviewed)}}
        raise _Bad(t("pw.need_permit", self.lang))

    # -- who, and what they may do ------------------------------------------------------------------------
    def set_user(self, credential: Credential | None) -> None:
        self.credential = credential
        self._status = ("", "ok")
        self.j_prepared.value = ""
        self.close_form()
        self.refresh()

    def may(self, op: str) -> bool:
        """The logged-in person's role may send ``op`` (the console greys out nothing else)."""
        cred = self.credential
        return cred is not None and cred.user.role in PERMIT_ROLES.get(op, ())

    def enabled(self) -> frozenset[str]:
        """The permit ops whose buttons are enabled now (none while a command is in flight)."""
        if self.busy:
            return frozenset()
        return frozenset(op for op in self.buttons if self.may(op))

    def select(self, permit: str | None) -> None:
        """Show ``permit`` (e.g. from ``?permit=`` in the URL) and select its row."""
        self.selected = permit
        self._rows_key = None
        self.refresh()

    # -- sending ---------------------------------------------------------------------------------------------
    def _label(self, op: str) -> str:
        return t(f"pw.op.{op}", self.lang).rstrip("\u2026")

    def _click(self, op: str):
        async def click(_event: Any) -> None:
            if op in FORM_OPS:
                self.open_form(op)
            else:
                await self.act(op)

        return click

    async def _send_click(self, _event: Any) -> None:
        await self.send_form()

    async def send_form(self) -> dict[str, Any] | None:
        """Send the open form (request, gas test, JSA); a request that goes through selects its new permit."""
        op = self.form
        if op is None:
            return None
        try:
            req = self.form_request()
        except _Bad as e:
            self._status = (t("pw.bad", self.lang, action=self._label(op), problem=str(e)), "refused")
            self.refresh()
            return None
        reply = await self._send(op, req)
        if reply is not None and reply.get("ok"):
            if op == "permit_request":
                self.select(str(reply.get("permit")))
            self.close_form()
            self.refresh()
        return reply

    async def act(self, op: str) -> dict[str, Any] | None:
        """Send ``op`` on the selected permit (with the reason field where one is needed); returns the engine's
        reply (None: not sent)."""
        if op in FORM_OPS:
            self.open_form(op)
            return None
        if self.selected is None:
            self._status = (t("pw.bad", self.lang, action=self._label(op), problem=t("pw.need_permit", self.lang)),
                            "refused")
            self.refresh()
            return None
        req: dict[str, Any] = {"op": op, "permit": self.selected}
        if op in REASON_OPS:
            req["reason"] = (self.reason.value_input or self.reason.value or "").strip()
        reply = await self._send(op, req)
        if reply is not None and reply.get("ok") and op in REASON_OPS:
            self.reason.value = self.reason.value_input = ""
        return reply

    async def _send(self, op: str, req: dict[str, Any]) -> dict[str, Any] | None:
        cred = self.credential
        if cred is None or op not in self.enabled():
            return None
        label = self._label(op)
        reply = await send_as(self, cred, req, label=label, ok_text="", what=f"{op} {req.get('permit')} by {cred.user.id}",
                              show=lambda status: setattr(self, "_status", status))
        if reply is not None and reply.get("ok"):
            self._status = (t("pw.ok", self.lang, action=label, id=reply.get("permit", req.get("permit")),
                              state=state_label(str(reply.get("state", "")), self.lang)), "ok")
            self.refresh()
        return reply

    # -- the tick --------------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        self._snap = snap
        self.refresh()

    def _on_selection(self, event: Any) -> None:
        if self._setting_selection:
            return
        new = list(event.new or [])
        if new and 0 <= new[0] < len(self._ids):
            self.selected = self._ids[new[0]]
        self.refresh()

    def _redraw_list(self) -> None:
        self._rows_key = None
        self.refresh()

    def selected_permit(self) -> PermitInfo | None:
        board = self._snap.permits if self._snap is not None else None
        if board is None or self.selected is None:
            return None
        return next((p for p in board.permits if p.id == self.selected), None)

    def refresh(self) -> None:
        """The list, the detail, the buttons and the reply, from the last snapshot; only what changed is sent."""
        snap = self._snap
        board = snap.permits if snap is not None else None
        now = snap.engine_ts_s if snap is not None else None
        cols = permit_rows(self.site, board, now, self.lang, self.tz, state=self.state_filter.value or None,
                           ptype=self.type_filter.value or None, zone=self.zone_filter.value or None)
        key = (tuple(tuple(v) for v in cols.values()), self.selected)
        if key != self._rows_key:
            self._rows_key = key
            self._ids = list(cols["id"])
            self._setting_selection = True
            try:
                self.table.value = frame(cols)
                self.table.selection = [self._ids.index(self.selected)] if self.selected in self._ids else []
            finally:
                self._setting_selection = False
        p = self.selected_permit()
        if p is not None:
            url = self.signin_base + signin_path(p.id) if self.signin_base else None
            text = detail_html(self.site, p, now, self.lang, self.tz, signin_url=url,
                               qr_scale=max(2, self.ctx.theme.px(10)))
        elif self.selected is not None and board is not None:
            text = f'<div class="wf-dim">{html.escape(t("pw.gone", self.lang, id=self.selected))}</div>'
        else:
            text = f'<div class="wf-dim">{html.escape(t("pw.pick", self.lang))}</div>'
        if text != self.detail.object:
            self.detail.object = text
        omitted = board.omitted if board is not None else 0
        line = f'<div class="wf-dim">{html.escape(t("pw.omitted", self.lang, n=omitted))}</div>' if omitted else ""
        if line != self.omitted_line.object:
            self.omitted_line.object = line
            self.omitted_line.visible = bool(omitted)
        on = self.enabled()
        for op, b in self.buttons.items():
            if b.disabled != (op not in on):
                b.disabled = op not in on
        if self.f_send.disabled != (self.busy or self.form is None or not self.may(self.form)):
            self.f_send.disabled = self.busy or self.form is None or not self.may(self.form)
        line = status_html(self._status)
        if line != self.status_line.object:
            self.status_line.object = line
