"""The workstation's login: the form shown while nobody is logged in, and the user line with its log-out button.

Who is logged in is kept per browser session (by the page), never process-wide. The password goes once to the
engine, which checks it, throttles failures per source address and answers with the session token the page's
commands carry (:mod:`console.auth`).
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
from collections.abc import Callable

import panel as pn

from config import Site

from ...auth import Credential, LoggedIn, LoginResult, LoginSink, engine_login, login_request, login_result
from ..i18n import t
from ..theme import Theme

log = logging.getLogger(__name__)

__all__ = ["LoginView"]


class LoginView:
    """``form`` (shown while nobody is logged in) and ``user_row`` (the user and a log-out button).

    ``on_login(credential)`` is called after a successful login, ``on_logout()`` when the log-out button is
    pressed. ``address`` is the browser's source address (the engine throttles failed logins by it), ``console``
    this console's name in the journal. Nothing here depends on the engine's state, so it has no ``update``.
    """

    def __init__(
        self,
        site: Site,
        link: LoginSink,
        theme: Theme,
        lang: str,
        *,
        on_login: Callable[[Credential], None],
        on_logout: Callable[[], None],
        address: str = "unknown",
        console: str = "workstation",
        timeout_s: float = 5.0,
    ) -> None:
        self.link, self.lang = link, lang
        self.address, self.console, self.timeout_s = address, console, timeout_s
        self.busy = False
        self.on_login, self.on_logout = on_login, on_logout
        th = theme
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css()]

        self.user = pn.widgets.TextInput(
            label=t("login.user", lang), placeholder=t("login.user", lang), width=th.px(900), stylesheets=wcss
        )
        self.password = pn.widgets.PasswordInput(
            label=t("login.password", lang),
            placeholder=t("login.password", lang),
            width=th.px(900),
            stylesheets=wcss,
        )
        self.button = pn.widgets.Button(
            label=t("login.submit", lang), color="primary", width=th.px(900), stylesheets=wcss
        )
        self.button.on_click(self._on_click)
        self.message = pn.pane.HTML('<div class="wf-login-msg"></div>', stylesheets=pcss, width=th.px(900))
        self.form = pn.Column(
            pn.pane.HTML(
                f'<div class="wf-login-title">{html.escape(site.name.get(lang))} \u2014 '
                f"{html.escape(t('ws.title', lang))}</div>"
                f'<div class="wf-dim">{html.escape(t("login.title", lang))}</div>',
                stylesheets=pcss,
                width=th.px(900),
            ),
            self.user,
            self.password,
            self.button,
            self.message,
            pn.pane.HTML(
                f'<div class="wf-dim">{html.escape(t("login.hint", lang))}</div>'
                + (f'<div class="wf-dim wf-demo">{html.escape(t("login.demo", lang))}</div>'
                   if site.access.demo else ""),
                stylesheets=pcss,
                width=th.px(900),
            ),
            styles={
                "background": th.palette.tile,
                "border": f"{th.px(2)}px solid {th.palette.tile_border}",
                "padding": f"{th.px(24)}px",
                "margin": f"{th.px(120)}px auto 0 auto",
            },
        )

        self.user_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.logout_button = pn.widgets.Button(
            label=t("login.logout", lang), color="default", width=th.px(300), stylesheets=wcss
        )
        self.logout_button.on_click(lambda _e: self.on_logout())
        self.user_row = pn.Row(self.user_line, self.logout_button, sizing_mode="stretch_width")

    def _form(self, user_id: str | None, password: str | None) -> tuple[str, str]:
        """The typed (or given) id and password; the password field is cleared at once."""
        uid = self.user.value_input if user_id is None else user_id
        uid = uid if uid is not None else self.user.value
        pw = self.password.value_input if password is None else password
        pw = pw if pw is not None else self.password.value
        self.password.value = ""
        self.password.value_input = ""
        return (uid or "").strip(), pw or ""

    def submit(self, user_id: str | None = None, password: str | None = None) -> bool:
        """Log in with the form's (or the given) id and password, waiting for the engine (tests and scripts; the
        page's button uses :meth:`submit_async`, which does not hold the server)."""
        uid, pw = self._form(user_id, password)
        return self._finish(engine_login(self.link, uid, pw, console=self.console, address=self.address,
                                         timeout_s=self.timeout_s))

    async def submit_async(self, user_id: str | None = None, password: str | None = None) -> bool:
        uid, pw = self._form(user_id, password)
        if not uid or not pw:
            return self._finish(LoginResult(None, "login.empty"))
        if self.busy:
            return False
        self.busy = True
        self.button.disabled = True
        try:
            fut = self.link.submit(login_request(uid, pw, pin=False, console=self.console, address=self.address))
            reply = await asyncio.wait_for(asyncio.wrap_future(fut), self.timeout_s)
        except (TimeoutError, RuntimeError) as e:
            log.warning("workstation: login of %r: no answer from the engine (%s)", uid, e)
            reply = None
        finally:
            self.busy = False
            self.button.disabled = False
        return self._finish(login_result(reply))

    async def _on_click(self, _event: object) -> None:
        await self.submit_async()

    def _finish(self, result: LoginResult) -> bool:
        """Show why a login was refused, or clear the form and hand the credential to the page."""
        cred = result.credential
        if cred is not None and cred.user.role == "field_worker":
            self._say(t("login.field_only", self.lang))
            self.link.submit(cred.sign({"op": "logout", "reason": "user"}))
            return False
        if cred is None:
            self._say(t(result.reason or "login.wrong", self.lang, s=math.ceil(result.retry_after_s)))
            return False
        self._say("")
        self.user.value = ""
        self.user.value_input = ""
        self.on_login(cred)
        return True

    def _say(self, text: str) -> None:
        self.message.object = f'<div class="wf-login-msg">{html.escape(text)}</div>'

    def ended(self, text: str) -> None:
        """Say on the login form why the last login ended (idle, expired)."""
        self._say(text)

    def show_user(self, user: LoggedIn | None) -> None:
        """Write who is logged in, with the role, in the user line (kept as it was when nobody is)."""
        if user is None:
            return
        role = t(f"role.{user.role}", self.lang)
        self.user_line.object = (
            f'<div class="wf-user" data-user="{html.escape(user.id)}" data-role="{html.escape(user.role)}">'
            f"{html.escape(t('login.as', self.lang, name=user.name, id=user.id, role=role))}</div>"
        )
