"""The workstation's emergency muster line: whether an emergency is declared (since when, by whom, the headcount)
and, for a shift supervisor, a button to declare one for the whole site or to end it, each asking for a
confirmation first, with the engine's reply."""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import panel as pn

from ingest.protocol.records import MusterStatus

from ...auth import Credential, LoggedIn
from ...link import LinkSnapshot
from ..actions import muster_command, muster_enabled
from ..i18n import t
from ..tiles import MusterTile, TileContext, format_clock, format_elapsed
from .commands import CommandSink, Status, send_as, status_html

__all__ = ["MusterPanel", "missing_list_html", "muster_line_html"]


def muster_line_html(status: MusterStatus | None, now_s: float | None, lang: str, tz: tzinfo) -> str:
    """The workstation's muster line: a red banner with the time since the declaration, who declared it and the
    headcount while an emergency is declared; a quiet line otherwise."""
    if status is None or not status.active:
        return f'<div class="wf-muster-quiet">{html.escape(t("ws.muster.inactive", lang))}</div>'
    text = t(
        "ws.muster.active",
        lang,
        time=format_clock(status.declared_ts_s, tz),
        elapsed=format_elapsed(status.elapsed_at(now_s)),
        user=status.declared_by or "?",
        mustered=status.mustered,
        roster=status.roster,
        missing=status.missing_count,
    )
    return f'<div class="wf-muster-on" data-muster="active">{html.escape(text)}</div>'


def missing_list_html(cols: Mapping[str, list[Any]], lang: str, missing: int | None = None) -> str:
    """The people not yet at a muster point, one line each: those nobody knows the whereabouts of first (ring,
    bold), each with where they were last located in words and how old that fix is ("" when nobody is missing)."""
    n = len(cols["person"])
    if n == 0:
        return ""
    rows = []
    for i in range(n):
        mark = "\u25cb" if cols["stale"][i] else "\u25cf"
        cls = "wf-missing wf-missing-stale" if cols["stale"][i] else "wf-missing"
        age = f' <span class="wf-dim">{html.escape(cols["age_text"][i])}</span>' if cols["age_text"][i] else ""
        rows.append(
            f'<div class="{cls}" data-person="{html.escape(cols["person"][i])}">{mark} '
            f'<b>{html.escape(cols["name"][i])}</b> ({html.escape(cols["tag"][i])}) \u2014 '
            f"{html.escape(cols['where'][i])}{age}</div>"
        )
    total = n if missing is None else max(missing, n)
    title = f'<div class="wf-missing-title">{html.escape(t("muster.missing_title", lang, n=total))}</div>'
    if total > n:  # more missing than listed: said, never silently dropped
        rows.append(f'<div class="wf-dim">{html.escape(t("muster.more", lang, n=total - n))}</div>')
    return f'<div class="wf-missing-list">{title}{"".join(rows)}</div>'


class MusterPanel:
    """``root`` to lay out; ``update(snap)`` once per tick; declare / end through ``ask``, then ``confirm`` or
    ``cancel``. Who may send is the logged-in user's role (``set_user``); replies are awaited at most
    ``command_timeout_s``."""

    def __init__(self, link: CommandSink, ctx: TileContext, *, command_timeout_s: float = 5.0) -> None:
        self.link, self.lang, self.tz = link, ctx.lang, ctx.tz
        self.command_timeout_s = float(command_timeout_s)
        self.user: LoggedIn | None = None
        self.credential: Credential | None = None
        self.pending: str | None = None  # a muster command waiting for its confirmation
        self.busy = False
        self._reply: Status = ("", "ok")
        self._snap: LinkSnapshot | None = None
        th, lang = ctx.theme, self.lang
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css()]

        self.line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.buttons: dict[str, pn.widgets.Button] = {}
        for op, key, color in (
            ("muster_declare", "ws.muster.declare", "danger"),
            ("muster_end", "ws.muster.end", "default"),
        ):
            b = pn.widgets.Button(
                label=t(key, lang), color=color, width=th.px(820), visible=False, stylesheets=wcss
            )
            b.on_click(lambda _e, op=op: self.ask(op))
            self.buttons[op] = b
        self.question = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.confirm_button = pn.widgets.Button(
            label=t("ws.muster.confirm", lang), color="danger", width=th.px(360), stylesheets=wcss
        )
        self.confirm_button.on_click(self._confirm_click)
        self.cancel_button = pn.widgets.Button(
            label=t("ws.muster.cancel", lang), color="default", width=th.px(360), stylesheets=wcss
        )
        self.cancel_button.on_click(lambda _e: self.cancel())
        self.confirm_row = pn.Row(
            self.question,
            self.confirm_button,
            self.cancel_button,
            sizing_mode="stretch_width",
            visible=False,
        )
        self.reply_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(0, 8))
        # who is missing, by name, with where they were last seen in words (scrolls when long)
        self.missing = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(0, 8),
                                    styles={"max-height": f"{th.px(520)}px", "overflow-y": "auto"}, visible=False)
        self.site, self.stale_s = ctx.site, ctx.site.engine.fix_stale_s
        self.root = pn.Column(
            pn.Row(self.line, *self.buttons.values(), sizing_mode="stretch_width"),
            self.missing,
            self.confirm_row,
            self.reply_line,
            sizing_mode="stretch_width",
            margin=0,
        )

    def set_user(self, credential: Credential | None) -> None:
        """A new login (None: logged out): no question pending, no reply shown."""
        self.credential = credential
        self.user = None if credential is None else credential.user
        self.pending = None
        self._reply = ("", "ok")

    def enabled(self) -> frozenset[str]:
        """The muster commands the logged-in user may send now (none while one is in flight)."""
        if self.user is None or self.busy:
            return frozenset()
        status = self._snap.muster if self._snap is not None else None
        return muster_enabled(self.user.role, None if status is None else status.active)

    def ask(self, op: str) -> None:
        """First click on declare / end: ask for the confirmation (nothing is sent yet)."""
        if op in self.enabled():
            self.pending = op
            self._reply = ("", "ok")
        self.refresh()

    def cancel(self) -> None:
        """The confirmation was declined: nothing is sent."""
        self.pending = None
        self.refresh()

    async def _confirm_click(self, _event: Any) -> None:
        await self.confirm()

    async def confirm(self) -> dict[str, Any] | None:
        """Send the confirmed muster command and show the engine's reply; returns it (None: not sent)."""
        op, user = self.pending, self.user
        self.pending = None
        if op is None or user is None or op not in self.enabled():
            self.refresh()
            return None
        label = t(f"action.{op}", self.lang)
        cred = self.credential
        assert cred is not None  # set with the user
        return await send_as(self, cred, muster_command(op, user.id), label=label,
                             ok_text=t("ws.muster.ok", self.lang, action=label), what=f"{op} by {user.id}",
                             show=lambda status: setattr(self, "_reply", status))

    def update(self, snap: LinkSnapshot) -> None:
        """Take one link snapshot: the muster line and the buttons; only what changed is sent."""
        self._snap = snap
        self.refresh()

    def refresh(self) -> None:
        """Show the last snapshot's muster status, the buttons the user may press, the question and the reply."""
        snap = self._snap
        status = snap.muster if snap is not None else None
        now = snap.engine_ts_s if snap is not None else None
        line = muster_line_html(status, now, self.lang, self.tz)
        if line != self.line.object:
            self.line.object = line
        missing = missing_list_html(
            MusterTile.missing_columns(self.site, status, now, self.lang, self.stale_s, max_rows=500), self.lang,
            status.missing_count if status is not None and status.active else None,
        )
        if missing != self.missing.object:
            self.missing.object = missing
        if self.missing.visible != bool(missing):
            self.missing.visible = bool(missing)
        supervising = self.user is not None and bool(muster_enabled(self.user.role, False))
        on = self.enabled()
        active = status is not None and status.active
        for op, button in self.buttons.items():
            show = supervising and (op == "muster_end") == active
            if button.visible != show:
                button.visible = show
            disabled = op not in on or self.pending is not None
            if button.disabled != disabled:
                button.disabled = disabled
        pending = self.pending
        if pending is not None and pending not in on:
            pending = self.pending = None  # the state changed under the question (another supervisor)
        if pending is not None:
            key = "ws.muster.confirm_declare" if pending == "muster_declare" else "ws.muster.confirm_end"
            question = f'<div class="wf-confirm">{html.escape(t(key, self.lang))}</div>'
            if question != self.question.object:
                self.question.object = question
        if self.confirm_row.visible != (pending is not None):
            self.confirm_row.visible = pending is not None
        reply = status_html(self._reply)
        if reply != self.reply_line.object:
            self.reply_line.object = reply
