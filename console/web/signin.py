"""The watcher's sign-in at the work, on a phone: ``/signin/<permit>`` (the QR code on the permit opens it) and the
printable QR card ``/qr/<permit>``.

The watcher logs in with their field-worker id and PIN (the engine checks them, as for every login: console/auth.py)
and presses one button: the page sends ``permit_signin`` with that login's token and shows the engine's answer. The
engine checks that the account's tag is the permit's watcher and that the tag is within
``permit_settings.watcher_max_distance_m`` of the work, and journals the sign-in; a refusal is shown in its own
words. The login ends right after (a phone left on a scaffold is not a logged-in phone).
"""

from __future__ import annotations

import html
import logging
import math
import re
from typing import Any

import panel as pn
import tornado.web
from bokeh.events import DocumentReady
from bokeh.models import CustomJS

from config import Site

from ..auth import LoginSink, login_request, login_result
from ..link import EngineLink, LinkSnapshot
from .i18n import normalize_language, t
from .session import PageSession, session_address, session_arg, session_scale
from .theme import Theme
from .tiles.permit_board import person_label
from .watchdog import LinkWatchdog
from .workstation.commands import ask_engine
from .workstation.permit_detail import qr_svg, signin_path, state_label

log = logging.getLogger(__name__)

__all__ = ["PERMIT_ID", "QR_PATTERN", "SIGNIN_ROUTE", "QrCardHandler", "SignInPage", "make_signin"]

#: a permit id as the engine takes it (letters, digits, - and _; at most 64)
PERMIT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: the phone page's route (a Panel path template: the permit is a route parameter)
SIGNIN_ROUTE = "signin/{permit}"
#: the printable QR card's route (Tornado pattern)
QR_PATTERN = r"/qr/([A-Za-z0-9_-]{1,64})"
#: a phone is read at hand's length: wall sizes x 0.6 give about 22 px text
PHONE_SCALE = 0.6
#: Panel's page has no viewport tag: without one a phone lays the page out 980 px wide and shrinks it
_VIEWPORT_JS = """
if (!document.querySelector('meta[name=viewport]')) {
  const m = document.createElement('meta');
  m.name = 'viewport';
  m.content = 'width=device-width, initial-scale=1';
  document.head.appendChild(m);
}
"""


def _css(theme: Theme) -> str:
    p = theme.palette
    return theme.workstation_panel_css() + f"""
.wf-si-title {{ font-size: {theme.large_px}px; font-weight: bold; }}
.wf-si-permit {{ margin: {theme.px(12)}px 0; line-height: 1.35; }}
.wf-si-ok {{ color: {p.text}; font-weight: bold; font-size: {theme.large_px}px; }}
.wf-si-bad {{ color: #ff9a1f; font-weight: bold; font-size: {theme.large_px}px; overflow-wrap: anywhere; }}
"""


class SignInPage:
    """One phone's sign-in page for ``permit``: ``root``; ``update(snap)`` each tick; ``submit()`` on the button."""

    def __init__(self, site: Site, link: LoginSink, permit: str | None, *, lang: str = "en",
                 theme: Theme | None = None, address: str = "unknown", console: str = "phone",
                 timeout_s: float = 5.0) -> None:
        self.site, self.link, self.lang = site, link, normalize_language(lang)
        self.permit = permit if permit is not None and PERMIT_ID.fullmatch(permit) else None
        self.address, self.console, self.timeout_s = address, console, timeout_s
        self.theme = th = theme or Theme(scale=PHONE_SCALE)
        self.busy = False
        self.reply: dict[str, Any] | None = None
        wcss, pcss = [th.widget_css()], [_css(th)]
        lang = self.lang
        self.info = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", css_classes=["wf-si-info"])
        self.user = pn.widgets.TextInput(placeholder=t("signin.user", lang), sizing_mode="stretch_width",
                                         stylesheets=wcss, css_classes=["wf-si-user"])
        self.pin = pn.widgets.PasswordInput(placeholder=t("signin.pin", lang), sizing_mode="stretch_width",
                                            stylesheets=wcss, css_classes=["wf-si-pin"])
        self.button = pn.widgets.Button(label=t("signin.submit", lang), color="primary", sizing_mode="stretch_width",
                                        stylesheets=wcss, css_classes=["wf-si-submit"])
        self.button.on_click(self._click)
        self.message = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", css_classes=["wf-si-msg"])
        head = pn.pane.HTML(f'<div class="wf-si-title">{html.escape(t("signin.title", lang))}</div>',
                            stylesheets=pcss, sizing_mode="stretch_width")
        form = [self.user, self.pin, self.button, self.message] if self.permit else []
        self.root = pn.Column(head, self.info, *form, sizing_mode="stretch_width", margin=0,
                              styles={"background": th.palette.page, "min-height": "100vh",
                                      "padding": f"{th.px(24)}px", "box-sizing": "border-box"})
        if self.permit is None:
            self.info.object = f'<div class="wf-si-bad">{html.escape(t("signin.bad_id", lang))}</div>'

    def info_html(self, snap: LinkSnapshot | None) -> str:
        """The permit as the phone shows it: id, type, zone, state and who the watcher is."""
        e, lang = html.escape, self.lang
        board = snap.permits if snap is not None else None
        if board is None:
            return f'<div class="wf-dim">{e(t("signin.waiting", lang))}</div>'
        p = next((q for q in board.permits if q.id == self.permit), None)
        if p is None:
            return f'<div class="wf-si-bad">{e(t("signin.unknown", lang, id=self.permit))}</div>'
        zones = {z.id: z.name.get(lang) for z in self.site.zones}
        names = {q.tag: q.name for q in self.site.people}
        where = zones.get(p.zone, p.zone) if p.zone else t("permits.own_area", lang)
        watcher = person_label(names, p.watcher) if p.watcher else t("pw.d.no_watcher", lang)
        return (f'<div class="wf-si-permit" data-permit="{e(p.id)}"><b>{e(t("signin.permit", lang, id=p.id))}</b> '
                f"\u00b7 {e(state_label(p.state, lang))}<br>{e(p.type_text(lang))} \u00b7 {e(where)}<br>"
                f"{e(t('signin.watcher_is', lang, watcher=watcher))}</div>")

    def update(self, snap: LinkSnapshot) -> None:
        if self.permit is None:
            return
        text = self.info_html(snap)
        if text != self.info.object:
            self.info.object = text

    def _say(self, text: str, ok: bool) -> None:
        self.message.object = f'<div class="{"wf-si-ok" if ok else "wf-si-bad"}">{html.escape(text)}</div>'

    async def _click(self, _event: Any) -> None:
        await self.submit()

    async def _ask(self, request: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await ask_engine(self.link, request, self.timeout_s)
        except (TimeoutError, RuntimeError) as e:
            log.warning("sign-in %s: no answer from the engine (%s)", self.permit, e)
            return None

    async def submit(self, user_id: str | None = None, pin: str | None = None) -> dict[str, Any] | None:
        """Log in with the form's (or the given) id and PIN, send ``permit_signin``, show the engine's answer and
        log out again; returns the sign-in's reply (None: it was not sent)."""
        if self.permit is None or self.busy:
            return None
        uid = (user_id if user_id is not None else self.user.value_input or self.user.value or "").strip()
        secret = pin if pin is not None else self.pin.value_input or self.pin.value or ""
        self.pin.value = self.pin.value_input = ""
        if not uid or not secret:
            self._say(t("login.empty", self.lang), False)
            return None
        self.busy, self.button.disabled = True, True
        self._say(t("signin.sending", self.lang), True)
        try:
            result = login_result(await self._ask(login_request(uid, secret, pin=True, console=self.console,
                                                                address=self.address)))
            cred = result.credential
            if cred is None:
                reason = result.detail or t(result.reason or "login.wrong", self.lang,
                                            s=math.ceil(result.retry_after_s))
                self._say(t("signin.login_refused", self.lang, reason=reason), False)
                return None
            reply = self.reply = await self._ask(cred.sign({"op": "permit_signin", "permit": self.permit}))
            if reply is None:
                self._say(t("signin.no_engine", self.lang), False)
            elif reply.get("ok"):
                m = reply.get("distance_m")
                self._say(t("signin.ok", self.lang, id=self.permit,
                            m=f"{m:.0f}" if isinstance(m, (int, float)) else "?"), True)
            else:
                self._say(t("signin.refused", self.lang, reason=str(reply.get("reason") or "?")), False)
            cred.take(reply)
            self.link.submit(cred.sign({"op": "logout", "reason": "user"}))  # journaled; nothing to wait for
            return reply
        finally:
            self.busy, self.button.disabled = False, False


def make_signin(site: Site, link: EngineLink, *, lang: str | None = None) -> pn.viewable.Viewable:
    """The sign-in page for one phone's session: the permit from the route (``/signin/<permit>``), ``?lang=``."""
    lang = normalize_language(session_arg("lang") or lang or site.console.language)
    theme = Theme(scale=session_scale(PHONE_SCALE))
    permit = pn.state.route_params.get("permit")
    page = SignInPage(site, link, permit, lang=lang, theme=theme, address=session_address(),
                      console=f"phone {link.console_name}")
    watchdog = LinkWatchdog(theme, lang)  # a phone that lost the console says so, by itself

    def tick(snap: LinkSnapshot) -> None:
        watchdog.update(snap)
        page.update(snap)

    if pn.state.curdoc is not None:
        pn.state.curdoc.js_on_event(DocumentReady, CustomJS(code=_VIEWPORT_JS))
    PageSession(link, tick, name="signin").start(title=t("signin.title", lang) + (f" {permit}" if permit else ""))
    return pn.Column(page.root, pn.pane.Bokeh(watchdog.overlay, margin=0), sizing_mode="stretch_width", margin=0)


class QrCardHandler(tornado.web.RequestHandler):
    """``/qr/<permit>``: a printable card with the permit's sign-in QR code, pointing at this console's host."""

    def initialize(self, site: Site, lang: str) -> None:
        self.site, self.lang = site, lang

    def get(self, permit: str) -> None:
        lang = normalize_language(self.get_argument("lang", self.lang))
        host = self.request.host
        if not all(c.isalnum() or c in ".-:[]" for c in host):
            raise tornado.web.HTTPError(400, "bad host")
        url = f"{self.request.protocol}://{host}{signin_path(permit)}"
        e = html.escape
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(
            f'<!doctype html><html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(permit)}</title>'
            '<style>body{font-family:sans-serif;text-align:center;margin:2cm}svg{width:9cm;height:9cm}'
            "@media print{button{display:none}}</style></head><body>"
            f"<h1>{e(t('signin.permit', lang, id=permit))}</h1>{qr_svg(url, scale=8)}"
            f"<p>{e(t('qr.caption', lang, id=permit))}</p><p><code>{e(url)}</code></p>"
            f"<p>{e(self.site.name.get(lang))}</p>"
            f'<button onclick="window.print()">{e(t("pw.d.print", lang))}</button></body></html>')
