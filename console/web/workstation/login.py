"""The workstation's login: the form shown while nobody is logged in, and the user line with its log-out button.

Who is logged in is kept per browser session (by the page), never process-wide; the
:class:`~console.auth.LoginGuard` that counts failed logins is per console process.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable

import panel as pn

from config import Site

from ...auth import LoggedIn, LoginGuard
from ..i18n import t
from ..theme import Theme

__all__ = ["LoginView"]


class LoginView:
    """``form`` (shown while nobody is logged in) and ``user_row`` (the user and a log-out button).

    ``on_login(user)`` is called after a successful login, ``on_logout()`` when the log-out button is pressed.
    Nothing here depends on the engine's state, so it has no ``update``.
    """

    def __init__(
        self,
        site: Site,
        guard: LoginGuard,
        theme: Theme,
        lang: str,
        *,
        on_login: Callable[[LoggedIn], None],
        on_logout: Callable[[], None],
    ) -> None:
        self.guard, self.lang = guard, lang
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
        self.button.on_click(lambda _e: self.submit())
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
                f'<div class="wf-dim">{html.escape(t("login.hint", lang))}</div>',
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

    def submit(self, user_id: str | None = None, password: str | None = None) -> bool:
        """Check the form's (or the given) user id and password: on success the form is cleared and
        ``on_login`` called; on a refusal the form says why. The password field is always cleared."""
        uid = self.user.value_input if user_id is None else user_id
        uid = uid if uid is not None else self.user.value
        pw = self.password.value_input if password is None else password
        pw = pw if pw is not None else self.password.value
        result = self.guard.login(uid or "", pw or "")
        self.password.value = ""
        self.password.value_input = ""
        if not result.ok:
            reason = t(result.reason or "login.wrong", self.lang, s=math.ceil(result.retry_after_s))
            self.message.object = f'<div class="wf-login-msg">{html.escape(reason)}</div>'
            return False
        self.message.object = '<div class="wf-login-msg"></div>'
        self.user.value = ""
        self.user.value_input = ""
        self.on_login(result.user)
        return True

    def show_user(self, user: LoggedIn | None) -> None:
        """Write who is logged in, with the role, in the user line (kept as it was when nobody is)."""
        if user is None:
            return
        role = t(f"role.{user.role}", self.lang)
        self.user_line.object = (
            f'<div class="wf-user" data-user="{html.escape(user.id)}" data-role="{html.escape(user.role)}">'
            f"{html.escape(t('login.as', self.lang, name=user.name, id=user.id, role=role))}</div>"
        )
