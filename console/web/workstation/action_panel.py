"""The workstation's action panel: the selected alarm, a reason / comment field, the shelve duration, one button
per action and a status line with the engine's reply.

A button is disabled when the role or the alarm's state does not allow its action; the shelve durations depend on
the alarm's priority (``site.max_shelve_s``). There is deliberately no "acknowledge all" (ISA-18.2).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from datetime import tzinfo
from typing import Any

import panel as pn

from ...auth import Credential, LoggedIn
from ..actions import ACTIONS, NEEDS_REASON, command_for, enabled_actions, format_duration, shelve_choices
from ..i18n import condition_label, t
from ..tiles import TileContext, format_clock
from .alarm_tables import Selection
from .commands import CommandSink, Status, send_as, status_html
from .rows import area_label, priority_html, state_label

__all__ = ["ActionPanel", "selection_html"]


def selection_html(sel: Selection, lang: str, tz: tzinfo, area_names: Mapping[str, str]) -> str:
    """The card at the top of the action panel: the selected alarm with its facts, or what is selected instead."""
    rec = sel.record
    if rec is None:
        if sel.is_group:
            return f'<div class="wf-card wf-dim">{html.escape(t("ws.group_selected", lang, n=sel.group_size))}</div>'
        return f'<div class="wf-card wf-dim">{html.escape(t("ws.no_selection", lang))}</div>'
    facts = [
        html.escape(area_label(rec.area or rec.zone, area_names, lang)),
        html.escape(condition_label(rec.condition, lang)),
    ]
    if rec.acked_by:
        facts.append(html.escape(t("ws.acked_by", lang, user=rec.acked_by)))
    if rec.shelved is not None:
        facts.append(
            html.escape(
                t(
                    "ws.shelved_by",
                    lang,
                    user=rec.shelved.by or "?",
                    until=format_clock(rec.shelved.until_ts_s, tz),
                    reason=rec.shelved.reason,
                )
            )
        )
    if rec.out_of_service is not None:
        facts.append(
            html.escape(
                t("ws.oos_by", lang, user=rec.out_of_service.by or "?", reason=rec.out_of_service.reason)
            )
        )
    if rec.escalation_step:
        facts.append(html.escape(t("ws.escalation_step", lang, n=rec.escalation_step)))
    if rec.chattering:
        facts.append(html.escape(t("ws.chattering", lang)))
    sep = " \u00b7 "
    return (
        f'<div class="wf-card" data-alarm="{html.escape(rec.id)}"><div class="wf-sel-line">'
        f"{priority_html(rec.priority, rec.rank, rec.unacknowledged, lang)}"
        f"<span>{format_clock(rec.activated_ts_s, tz)}</span>"
        f"<b>{html.escape(state_label(rec.state, lang))}</b></div>"
        f'<div class="wf-sel-msg">{html.escape(rec.text(lang))}</div>'
        f'<div class="wf-sel-facts">{sep.join(facts)}</div></div>'
    )


class ActionPanel:
    """``root`` to lay out; ``refresh()`` after the selection or the tables changed; ``act(action)`` sends.

    What it shows depends on the logged-in user (``set_user``) and on ``selection()`` (the alarm tables'), read
    when shown and when an action is sent. Actions wait at most ``command_timeout_s`` for the engine's reply.
    """

    def __init__(
        self,
        link: CommandSink,
        ctx: TileContext,
        selection: Callable[[], Selection],
        *,
        max_shelve_s: Mapping[str, float],
        command_timeout_s: float = 5.0,
    ) -> None:
        self.link, self.selection = link, selection
        self.lang, self.tz = ctx.lang, ctx.tz
        self.area_names = {z.id: z.name.get(ctx.lang) for z in ctx.site.zones}
        self.max_shelve_s = dict(max_shelve_s)
        self.command_timeout_s = float(command_timeout_s)
        self.user: LoggedIn | None = None
        self.credential: Credential | None = None
        self.busy = False  # a command is in flight
        self._status: Status = ("", "ok")
        th, lang = ctx.theme, self.lang
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css()]

        self.selection_info = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width")
        self.text = pn.widgets.TextInput(
            label=t("ws.text", lang),
            placeholder=t("ws.text_placeholder", lang),
            sizing_mode="stretch_width",
            stylesheets=wcss,
        )
        self.duration = pn.widgets.Select(
            label=t("ws.duration", lang), options={}, sizing_mode="stretch_width", stylesheets=wcss
        )
        self.buttons: dict[str, pn.widgets.Button] = {}
        for action in ACTIONS:
            b = pn.widgets.Button(
                label=t(f"action.{action}", lang),
                color="primary" if action == "acknowledge" else "default",
                disabled=True,
                sizing_mode="stretch_width",
                stylesheets=wcss,
            )
            b.on_click(self._handler(action))
            self.buttons[action] = b
        self.status_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width")
        grid = pn.GridBox(*(self.buttons[a] for a in ACTIONS), ncols=2, sizing_mode="stretch_width")
        self.root = pn.Column(
            pn.pane.HTML(
                f'<div class="wf-login-title">{html.escape(t("ws.actions", lang))}</div>', stylesheets=pcss
            ),
            self.selection_info,
            self.text,
            self.duration,
            grid,
            self.status_line,
            width=th.px(1040),
            sizing_mode="stretch_height",
            styles={
                "background": th.palette.tile,
                "border": f"{th.px(2)}px solid {th.palette.tile_border}",
                "padding": f"{th.px(12)}px",
            },
        )
        self.refresh()

    def set_user(self, credential: Credential | None) -> None:
        """A new login (None: logged out): an empty text field and status line."""
        self.credential = credential
        self.user: LoggedIn | None = None if credential is None else credential.user
        self.text.value = ""
        self._status = ("", "ok")

    def enabled(self) -> frozenset[str]:
        """The actions enabled now (none while a command is in flight)."""
        if self.busy or self.user is None:
            return frozenset()
        return enabled_actions(self.user.role, self.selection().record, self.max_shelve_s)

    def refresh(self) -> None:
        """Show the selection, enable the buttons and durations it allows, show the status; only changes are sent."""
        sel = self.selection()
        rec = sel.record
        on = self.enabled()
        for action, button in self.buttons.items():
            disabled = action not in on
            if button.disabled != disabled:
                button.disabled = disabled
        choices = shelve_choices(rec.priority, self.max_shelve_s) if rec is not None else []
        options = {format_duration(s, self.lang): s for s in choices}
        if list(options.items()) != list(self.duration.options.items()):
            self.duration.options = options
            if choices:
                self.duration.value = choices[0]
        self.duration.disabled = "shelve" not in on
        info = selection_html(sel, self.lang, self.tz, self.area_names)
        if info != self.selection_info.object:
            self.selection_info.object = info
        status = status_html(self._status)
        if status != self.status_line.object:
            self.status_line.object = status

    def _handler(self, action: str) -> Any:
        async def on_click(_event: Any) -> None:
            await self.act(action)

        return on_click

    async def act(self, action: str) -> dict[str, Any] | None:
        """Send ``action`` on the selected alarm and show the engine's reply; returns the reply (None: not sent)."""
        rec, user = self.selection().record, self.user
        label = t(f"action.{action}", self.lang)
        if user is None or rec is None or self.busy or action not in self.enabled():
            return None
        text = (self.text.value_input if self.text.value_input is not None else self.text.value) or ""
        if action in NEEDS_REASON and not text.strip():
            self._status = (t("reply.need_text", self.lang, action=label), "refused")
            self.refresh()
            return None
        duration = self.duration.value if action == "shelve" else None
        cred = self.credential
        assert cred is not None  # set with the user
        reply = await send_as(
            self, cred, command_for(action, rec.id, user.id, text=text.strip(), duration_s=duration), label=label,
            ok_text=t("reply.ok", self.lang, action=label, alarm=rec.text(self.lang)),
            what=f"{action} on {rec.id} by {user.id}", show=lambda status: setattr(self, "_status", status))
        if reply is not None and reply.get("ok") and (action != "acknowledge" or text):
            self.text.value = ""
            self.text.value_input = ""
            self.refresh()
        return reply
