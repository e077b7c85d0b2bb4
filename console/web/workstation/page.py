"""The workstation page: the status bar and escalation banner over the login form, or, logged in, over the user
line, the horn, the muster panel, the flood banner and the tabs: *Alarms* (the alarm tables and the action panel),
*Permits* (the permit list, the selected permit and its actions), *Cameras* (detections to verify, with their
snapshots) and *People* (the people search, the picked person's trail on a map, who is or was in a zone). A tab is
one line of :meth:`Workstation.tab_views`."""

from __future__ import annotations

import logging
from typing import Any

import panel as pn
from bokeh.events import DocumentReady

from config import Site
from ingest.protocol.records import AlarmRecord

from ...auth import Credential, LoggedIn
from ...link import EngineLink, LinkSnapshot
from ..banners import EscalationBanner
from ..i18n import normalize_language, t
from ..session import TICK_MS, PageSession, session_address, session_arg, session_scale
from ..theme import Theme
from ..tiles import StatusBar, StatusBarOptions, TileContext
from ..watchdog import LinkWatchdog
from .action_panel import ActionPanel
from .alarm_tables import AlarmTables, FloodBanner
from .horn_panel import HornPanel
from .login import LoginView
from .muster_panel import MusterPanel
from .people_panel import PeoplePanel
from .permit_panel import PermitPanel
from .verify_panel import VerifyPanel

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_SCALE", "WORKSTATION_PATH", "Workstation", "make_workstation"]

WORKSTATION_PATH = "/workstation"
#: the workstation is read at arm's length on a desktop monitor: wall sizes x 0.5 fit 1920 CSS px
DEFAULT_SCALE = 0.5


class Workstation:
    """One session's workstation page: ``root`` to serve, ``update(snap)`` once per tick.

    Composes :class:`LoginView`, :class:`AlarmTables`, :class:`ActionPanel` and :class:`MusterPanel` and keeps who
    is logged in (per session). ``position`` is the operator position whose flood state groups the table
    (``alarm.flood`` meta ``position``). Actions wait at most ``command_timeout_s`` for the engine's reply.
    ``address`` is the browser's source address (logins are throttled by it).

    A login ends on the log-out button, after ``access.idle_logout_s`` without an action (idle logout: the right
    to act goes, the alarms stay in view on the status bar and banner), or when the engine refuses its token.

    ``signin_base`` is the console's address as the browser reached it (the permits' sign-in QR codes point
    there); ``open_permit`` a permit to show after the first login (``?permit=`` in the URL, from the wall).
    """

    def __init__(
        self,
        site: Site,
        link: EngineLink,
        *,
        lang: str = "en",
        theme: Theme | None = None,
        position: str = "main",
        command_timeout_s: float = 5.0,
        address: str = "unknown",
        console: str = "workstation",
        signin_base: str | None = None,
        open_permit: str | None = None,
    ) -> None:
        self.site, self.link = site, link
        self.lang = normalize_language(lang)
        self.theme = th = theme or Theme(scale=DEFAULT_SCALE)
        self.ctx = TileContext(site=site, lang=self.lang, theme=th)
        self.credential: Credential | None = None
        self._snap: LinkSnapshot | None = None

        self.status_bar = StatusBar(self.ctx, StatusBarOptions(show_clock_skew=True))
        self.status_bar.root.sizing_mode = "stretch_width"
        self.status_bar.root.height = th.px(90)
        self.banner = EscalationBanner(th, self.lang, self.ctx.tz, name="ws-escalation")
        self.login_view = LoginView(
            site, link, th, self.lang, on_login=self._set_user, on_logout=self.logout, address=address,
            console=console, timeout_s=command_timeout_s,
        )
        self.tables = AlarmTables(self.ctx, position=position, on_select=lambda: self.actions.refresh())
        self.flood_banner = FloodBanner(self.ctx, position=position)  # above the tabs: follows every tick
        self.actions = ActionPanel(
            link,
            self.ctx,
            self.tables.selection,
            max_shelve_s=site.max_shelve_s,
            command_timeout_s=command_timeout_s,
        )
        self.muster = MusterPanel(link, self.ctx, command_timeout_s=command_timeout_s)
        self.horn = HornPanel(site, link, self.ctx, position, command_timeout_s=command_timeout_s)
        # "where is Zhang Wei?": the search, the trail on a map, shown on the walls, who was in a zone
        self.people = PeoplePanel(site, link, self.ctx, command_timeout_s=command_timeout_s)
        self.search = self.people.search
        self.cameras = VerifyPanel(link, self.ctx, command_timeout_s=command_timeout_s)  # AI screens, a person confirms
        self.permits = PermitPanel(site, link, self.ctx, command_timeout_s=command_timeout_s,
                                   signin_base=signin_base)
        self.open_permit = open_permit
        self.alarm_view = pn.Column(
            pn.Row(self.tables.root, self.actions.root, sizing_mode="stretch_both"),
            sizing_mode="stretch_both",
            margin=0,
        )
        views = self.tab_views()
        self.tab_bar = pn.widgets.RadioButtonGroup(
            options={t(key, self.lang): name for name, key, _ in views}, value=views[0][0], color="default",
            stylesheets=[th.widget_css()], css_classes=["wf-ws-tabs"], margin=(4, 8),
        )
        self.tab_bar.param.watch(lambda e: self.show_tab(e.new), "value")
        # swapped, not hidden: a Tabulator laid out while hidden keeps zero-width columns
        self.tab_holder = pn.Column(views[0][2], sizing_mode="stretch_both", margin=0)
        self.main_view = pn.Column(
            self.login_view.user_row,
            self.banner.root,
            self.horn.root,
            self.muster.root,
            self.flood_banner.root,
            self.tab_bar,
            self.tab_holder,
            sizing_mode="stretch_both",
            margin=0,
        )
        # the login form or the alarm view: swapped, not hidden (a Tabulator laid out while hidden keeps
        # zero-width columns)
        self.body = pn.Column(self.login_view.form, sizing_mode="stretch_both", margin=0)
        self.watchdog = LinkWatchdog(th, self.lang)  # nobody acts on a picture that is not live
        self.root = pn.Column(
            pn.pane.Bokeh(self.status_bar.root, sizing_mode="stretch_width", height=th.px(90), margin=0),
            self.body,
            pn.pane.Bokeh(self.watchdog.overlay, margin=0),
            pn.pane.Bokeh(self.horn.horn.root, margin=0),
            sizing_mode="stretch_both",
            margin=0,
            styles={
                "background": th.palette.page,
                "height": "100vh",
                "width": "100vw",
                "padding": f"{th.px(12)}px",
                "box-sizing": "border-box",
            },
        )
        # the widgets tests and callers reach for, under the names they have always had
        self.login_message = self.login_view.message
        self.buttons, self.text = self.actions.buttons, self.actions.text
        self.duration, self.status_line = self.actions.duration, self.actions.status_line
        self.muster_line, self.muster_buttons = self.muster.line, self.muster.buttons
        self.muster_question, self.muster_confirm_row = self.muster.question, self.muster.confirm_row
        self.muster_reply_line = self.muster.reply_line

    def tab_views(self) -> list[tuple[str, str, pn.viewable.Viewable]]:
        """The tabs, in order: (name, the text key of its label, its view). A new panel is one more line."""
        return [
            ("alarms", "ws.tab.alarms", self.alarm_view),
            ("permits", "ws.tab.permits", self.permits.root),
            ("cameras", "cam.tab", self.cameras.root),
            ("people", "people.tab", self.people.root),
        ]

    @property
    def tab(self) -> str:
        """The tab shown (its name)."""
        return str(self.tab_bar.value)

    def show_tab(self, name: str) -> None:
        """Show tab ``name`` (one of :meth:`tab_views`)."""
        view = next((v for n, _, v in self.tab_views() if n == name), None)
        if view is None:
            return
        if self.tab_bar.value != name:
            self.tab_bar.value = name  # comes back here through the watcher
            return
        if self.tab_holder.objects != [view]:
            self.tab_holder.objects = [view]
        if self._snap is not None and self.user is not None:
            self._update_tab(self._snap)  # Panel widgets only: this runs outside the session's tick too

    # -- who is logged in -----------------------------------------------------------------------------------
    def login(self, user_id: str | None = None, password: str | None = None) -> bool:
        """Check the form's (or the given) user id and password; on success show the alarm view."""
        return self.login_view.submit(user_id, password)

    @property
    def user(self) -> LoggedIn | None:
        """Who is logged in at this session (None: nobody)."""
        return None if self.credential is None else self.credential.user

    def logout(self, reason: str = "user") -> None:
        """End the session's login (``reason``: ``user``, ``idle``, ``closed``) at the engine and show the login
        form again."""
        cred = self.credential
        if cred is not None:
            log.info("logout: %s (%s)", cred.user.id, reason)
            try:
                self.link.submit(cred.sign({"op": "logout", "reason": reason}))  # journaled by the engine
            except RuntimeError as e:
                log.warning("logout of %s not sent to the engine: %s", cred.user.id, e)
        self._set_user(None)

    def _set_user(self, cred: Credential | None) -> None:
        self.credential = cred
        user = None if cred is None else cred.user
        self.login_view.show_user(user)
        self.tables.reset()
        self.actions.set_user(cred)
        self.muster.set_user(cred)
        self.horn.set_user(cred)
        self.permits.set_user(cred)
        self.cameras.set_user(cred)
        self.people.set_user(cred)
        if cred is None:  # the next person starts on the first tab
            self.show_tab(self.tab_views()[0][0])
        elif self.open_permit:  # from the wall's permit board: that permit, once
            self.permits.select(self.open_permit)
            self.open_permit = None
            self.show_tab("permits")
        if self._snap is not None:
            self.update(self._snap)  # fill the tables before they are shown
        self.actions.refresh()
        want = self.login_view.form if user is None else self.main_view
        if self.body.objects != [want]:
            self.body.objects = [want]

    # -- the selection, the actions and the muster, as the components have them -----------------------------
    @property
    def selected(self) -> str | None:
        """The selected row's key: an alarm id, or ``GROUP_PREFIX`` + a group key (None: nothing)."""
        return self.tables.selected

    @selected.setter
    def selected(self, key: str | None) -> None:
        self.tables.selected = key

    def selected_record(self) -> AlarmRecord | None:
        """The selected alarm as the link last had it (None: nothing, a group, or the alarm has gone)."""
        return self.tables.selected_record()

    def enabled(self) -> frozenset[str]:
        """The actions enabled now (none while a command is in flight)."""
        return self.actions.enabled()

    async def act(self, action: str) -> dict[str, Any] | None:
        """Send ``action`` on the selected alarm and show the engine's reply; returns the reply (None: not sent)."""
        return await self.actions.act(action)

    @property
    def muster_pending(self) -> str | None:
        """The muster command waiting for its confirmation (None: none)."""
        return self.muster.pending

    def muster_enabled(self) -> frozenset[str]:
        """The muster commands the logged-in user may send now."""
        return self.muster.enabled()

    def ask_muster(self, op: str) -> None:
        """First click on declare / end: ask for the confirmation (nothing is sent yet)."""
        self.muster.ask(op)

    def cancel_muster(self) -> None:
        """The confirmation was declined: nothing is sent."""
        self.muster.cancel()

    async def confirm_muster(self) -> dict[str, Any] | None:
        """Send the confirmed muster command and show the engine's reply; returns it (None: not sent)."""
        return await self.muster.confirm()

    # -- the tick -------------------------------------------------------------------------------------------
    def tick(self, snap: LinkSnapshot) -> None:
        """The page session's tick: the watchdog's heartbeat (it changes every tick, so it is sent only from
        here, under the session's document lock) and the horn, then :meth:`update`."""
        self.watchdog.update(snap)
        self.horn.follow(snap)
        self.update(snap)

    def update(self, snap: LinkSnapshot) -> None:
        """Take one link snapshot: status bar, banners, tables and buttons; only what changed is sent."""
        self._snap = snap
        cred = self.credential
        if cred is not None and cred.idle():
            self.logout("idle")
            self.login_view.ended(t("login.idle", self.lang, min=round(cred.idle_s / 60)))
        elif cred is not None and cred.ended:
            self._set_user(None)
            self.login_view.ended(t("login.expired", self.lang, reason=cred.ended))
        self.status_bar.update(snap)
        role = self.user.role if self.user is not None else None
        self.banner.update(snap, role, enabled=self.user is not None)
        self.horn.refresh()
        if self.user is None:
            return
        self.muster.update(snap)
        self.flood_banner.update(snap)
        self._update_tab(snap)

    def _update_tab(self, snap: LinkSnapshot) -> None:
        """The tab shown takes the snapshot; the others wait until they are shown."""
        if self.tab == "alarms":
            self.tables.update(snap)
            self.actions.refresh()
        elif self.tab == "permits":
            self.permits.update(snap)
        elif self.tab == "cameras":
            self.cameras.update(snap)
        elif self.tab == "people":
            self.people.update(snap)


def console_base() -> str | None:
    """``http://host:port`` as this session's browser reached the console (None outside a server session): the
    permits' sign-in QR codes point a phone there, so open the workstation by a name the phones can reach."""
    ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    request = getattr(ctx, "request", None) if ctx is not None else None
    headers = getattr(request, "headers", None) or {}
    host = str(headers.get("Host", "")) if hasattr(headers, "get") else ""
    if not host or not all(c.isalnum() or c in ".-:[]" for c in host):
        return None
    proto = str(headers.get("X-Forwarded-Proto", "http"))
    return f"{'https' if proto == 'https' else 'http'}://{host}"


def make_workstation(
    site: Site,
    link: EngineLink,
    *,
    lang: str | None = None,
    scale: float = DEFAULT_SCALE,
    period_ms: int = TICK_MS,
) -> pn.viewable.Viewable:
    """The workstation page for one browser session, with its periodic callback (stopped with the session).

    URL arguments: ``lang`` (en, zh-CN), ``scale`` (1 = wall sizes for 3840 CSS px; default 0.5 for a
    1920 px desktop), ``position`` (operator position of the flood state, default ``main``).
    """
    lang = normalize_language(session_arg("lang") or lang or site.console.language)
    theme = Theme(scale=session_scale(scale))
    # the login form shows no table: load Tabulator's JS with the page, or the table would not render later
    pn.extension("tabulator")
    ws = Workstation(site, link, lang=lang, theme=theme, position=session_arg("position") or "main",
                     address=session_address(), console=f"workstation {link.console_name}",
                     signin_base=console_base(), open_permit=session_arg("permit"))
    if pn.state.curdoc is not None:  # the horn's state the page was built with plays too
        pn.state.curdoc.js_on_event(DocumentReady, ws.horn.horn.on_page_ready())
    # a closed tab ends its login at the engine too (journaled), instead of leaving it to expire
    PageSession(link, ws.tick, name="workstation", period_ms=period_ms,
                on_end=lambda: ws.logout("closed")).start(
        title=f"{site.name.get(lang)} \u2014 {t('ws.title', lang)}"
    )
    return ws.root
