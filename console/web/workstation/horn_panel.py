"""The horn at the workstation: it sounds here too while someone is logged in, and an operator silences it for
the whole position (every wall and workstation of the control room) for 60 s with one button. The engine checks
the role and journals the silence (ingest/protocol/horn.py); the alarms stay unacknowledged."""

from __future__ import annotations

from typing import Any

import panel as pn

from config import Site
from ingest.protocol.horn import HORN_OP, HORN_ROLES

from ...auth import Credential
from ...link import LinkSnapshot
from ..horn import Horn
from ..i18n import t
from ..tiles import TileContext
from .commands import CommandSink, Status, send_as, status_html

__all__ = ["HornPanel"]


class HornPanel:
    """The horn of ``position`` and its silence button (``root``); ``horn.root`` floats the silence notice."""

    def __init__(
        self, site: Site, link: CommandSink, ctx: TileContext, position: str, *, command_timeout_s: float = 5.0
    ) -> None:
        th, lang = ctx.theme, ctx.lang
        self.link, self.lang, self.position, self.command_timeout_s = link, lang, position, command_timeout_s
        self.horn = Horn(site, position, name="ws-horn", theme=th, lang=lang)
        self.credential: Credential | None = None
        self.busy = False
        self._reply: Status = ("", "ok")
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css()]
        self.button = pn.widgets.Button(
            label=t("horn.silence", lang), color="warning", width=th.px(520), visible=False, stylesheets=wcss
        )
        self.button.on_click(self._click)
        self.line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.root = pn.Row(self.button, self.line, sizing_mode="stretch_width", margin=0)

    def set_user(self, credential: Credential | None) -> None:
        self.credential = credential
        self._reply = ("", "ok")

    def may_silence(self) -> bool:
        """A user who may silence is logged in, nothing is in flight, and something sounds or a silence runs."""
        cred = self.credential
        call = self.horn.call
        return (
            cred is not None
            and cred.user.role in HORN_ROLES
            and not self.busy
            and (call.rank > 0 or call.silenced > 0)
        )

    def follow(self, snap: LinkSnapshot) -> None:
        """Follow the alarms and the silence; the horn sounds only while someone is logged in. The horn's
        Bokeh models change here: call it only from the page session's tick (under the document lock)."""
        if self.credential is None:  # quiet, and no silence notice left over from the last login
            self.horn.call = type(self.horn.call)()
            if self.horn.source.data["rank"][0] != 0:
                self.horn.source.data = {**dict(self.horn.source.data), "rank": [0]}
            if self.horn.root.visible:
                self.horn.root.text, self.horn.root.visible = "", False
        else:
            self.horn.update(snap)
        self.refresh()

    def refresh(self) -> None:
        call = self.horn.call
        if call.rank:  # sounding says more than the reply to the last silence
            line = status_html((t("horn.sounding", self.lang, n=len(call.alarms)), "refused"))
        else:
            line = status_html(self._reply)
        if line != self.line.object:
            self.line.object = line
        show = self.may_silence()
        if self.button.visible != show:
            self.button.visible = show

    async def _click(self, _event: Any) -> None:
        await self.silence()

    async def silence(self) -> dict[str, Any] | None:
        """Silence the position's horn for 60 s; returns the engine's reply (None: not sent)."""
        cred = self.credential
        if cred is None or not self.may_silence():
            return None
        return await send_as(self, cred, {"op": HORN_OP, "user": cred.user.id, "position": self.position},
                             label=t("horn.silence", self.lang), ok_text=t("horn.silence_ok", self.lang),
                             what=f"{HORN_OP} at {self.position} by {cred.user.id}",
                             show=lambda status: setattr(self, "_reply", status))
