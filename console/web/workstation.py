"""The workstation page (``/workstation``): operators and supervisors log in and act on alarms.

One :class:`Workstation` per browser session. Who is logged in is kept in that object (per session, never
process-wide); the :class:`~console.auth.LoginGuard` that counts failed logins is per console process.

The page, logged in:

- the status bar (as on the wall), the user with role and a log-out button, escalation banners for the user's
  role (with a beep), and the flood banner while the engine reports an alarm flood;
- the alarm table in the wall list's order (grouped by area and condition during a flood, first-out and
  life-safety alarms on top; a group row expands when selected); a second view lists shelved and
  out-of-service alarms (who, why, until when);
- the action panel: the selected alarm, a reason / comment field, the shelve duration (choices depend on the
  alarm's priority, ``site.max_shelve_s``), one button per action (disabled when the role or the alarm's state
  does not allow it) and a status line with the engine's reply, its refusal reason included;
- the emergency muster line: whether an emergency is declared (since when, by whom, the headcount); for a shift
  supervisor a button to declare one for the whole site or to end it, each asking for a confirmation first, and
  the engine's reply.

Commands go to the engine through the console's :class:`~console.link.EngineLink` without blocking the
server: the button handler awaits the reply. There is deliberately no "acknowledge all" (ISA-18.2).
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import pandas as pd
import panel as pn
from panel.io.document import hold

from config import Site
from ingest.protocol.records import AlarmRecord, FloodState, MusterStatus

from ..auth import LoggedIn, LoginGuard
from ..link import EngineLink, LinkSnapshot
from .actions import (
    ACTIONS,
    NEEDS_REASON,
    command_for,
    enabled_actions,
    format_duration,
    muster_command,
    muster_enabled,
    shelve_choices,
)
from .banners import EscalationBanner
from .flood import FloodView, alarm_sort_key, flood_view
from .i18n import TEXTS, condition_label, normalize_language, t
from .theme import PRIORITY_STYLE, Theme
from .tiles import StatusBar, StatusBarOptions, TileContext, format_clock, format_elapsed

log = logging.getLogger(__name__)

__all__ = [
    "GROUP_PREFIX",
    "WORKSTATION_PATH",
    "Workstation",
    "alarm_rows",
    "make_workstation",
    "muster_line_html",
    "off_list_rows",
]

WORKSTATION_PATH = "/workstation"
GROUP_PREFIX = "group:"  # row keys of group rows in the flood view; alarm rows are keyed by alarm id
TICK_MS = 250
#: the workstation is read at arm's length on a desktop monitor: wall sizes x 0.5 fit 1920 CSS px
DEFAULT_SCALE = 0.5

_ALARM_COLUMNS = ("key", "priority", "time", "area", "message", "state", "by")
_OFF_COLUMNS = ("key", "priority", "message", "state", "by", "reason", "until")


# -- rows (pure) ------------------------------------------------------------------------------------------------
def _state_label(state: str, lang: str) -> str:
    key = f"state.{state}"
    return t(key, lang) if key in TEXTS["en"] else state.upper()


def _priority_html(priority: str, rank: int, unacknowledged: bool, lang: str) -> str:
    style = PRIORITY_STYLE[rank]
    blink = " wf-blink" if unacknowledged else ""
    return (
        f'<span class="wf-pri{blink}" style="color:{style.color}">{style.symbol} '
        f"{html.escape(t(f'priority.{priority}', lang))}</span>"
    )


def _area(rec_area: str | None, area_names: Mapping[str, str], lang: str) -> str:
    return area_names.get(rec_area, rec_area) if rec_area else t("area.none", lang)


def _alarm_row(
    cols: dict[str, list[Any]],
    rec: AlarmRecord,
    lang: str,
    tz: tzinfo,
    area_names: Mapping[str, str],
    *,
    tag: str | None = None,
    indent: bool = False,
) -> None:
    msg = html.escape(rec.text(lang))
    if tag:
        color = PRIORITY_STYLE[rec.rank].color
        msg = (
            f'<span class="wf-tag" style="color:{color};border-color:{color}">{html.escape(tag)}</span> {msg}'
        )
    if indent:
        msg = f'<span class="wf-indent">{msg}</span>'
    state = _state_label(rec.state, lang)
    if rec.chattering:
        state += f" \u00b7 {t('ws.chattering', lang)}"
    cols["key"].append(rec.id)
    cols["priority"].append(_priority_html(rec.priority, rec.rank, rec.unacknowledged, lang))
    cols["time"].append(format_clock(rec.activated_ts_s, tz))
    cols["area"].append(_area(rec.area or rec.zone, area_names, lang))
    cols["message"].append(msg)
    cols["state"].append(state)
    cols["by"].append(rec.acked_by or "")


def alarm_rows(
    alarms: Mapping[str, AlarmRecord],
    lang: str,
    tz: tzinfo,
    area_names: Mapping[str, str],
    *,
    flood: FloodState | None = None,
    expanded: frozenset[str] | set[str] = frozenset(),
) -> dict[str, list[Any]]:
    """The rows of the workstation's alarm table (columns ``key, priority, time, area, message, state, by``).

    Without a flood: every alarm on the operator's list in the wall list's order (``key`` = alarm id). During a
    flood (``flood.flood``): the first-out alarm (tagged), the life-safety alarms, then one row per group
    (``key`` = ``'group:<area>|<condition>'``), each followed by its alarms when its key is in ``expanded``; a
    group of one alarm is shown as that alarm.
    ``priority`` and ``message`` are HTML (texts escaped).
    """
    cols: dict[str, list[Any]] = {k: [] for k in _ALARM_COLUMNS}
    if flood is None or not flood.flood:
        for rec in sorted((r for r in alarms.values() if r.on_list), key=alarm_sort_key):
            _alarm_row(cols, rec, lang, tz, area_names)
        return cols
    view: FloodView = flood_view(alarms, flood)
    if view.first_out is not None:
        _alarm_row(cols, view.first_out, lang, tz, area_names, tag=t("flood.first_out", lang))
    for rec in view.safety:
        _alarm_row(cols, rec, lang, tz, area_names)
    for g in view.groups:
        if g.count == 1:  # a group of one is shown as its alarm: nothing to fold
            _alarm_row(cols, g.alarms[0], lang, tz, area_names)
            continue
        key = GROUP_PREFIX + g.key
        is_open = key in expanded
        area = _area(g.area, area_names, lang)
        text = t(
            "ws.group_open" if is_open else "ws.group",
            lang,
            n=g.count,
            condition=condition_label(g.condition, lang),
            area=area,
        )
        cols["key"].append(key)
        cols["priority"].append(_priority_html(g.priority, g.rank, g.unacknowledged > 0, lang))
        cols["time"].append(format_clock(g.newest_ts_s, tz))
        cols["area"].append(area)
        cols["message"].append(f'<b class="wf-group">{html.escape(text)}</b>')
        cols["state"].append(t("ws.group_unack", lang, n=g.unacknowledged) if g.unacknowledged else "")
        cols["by"].append("")
        if is_open:
            for rec in g.alarms:
                _alarm_row(cols, rec, lang, tz, area_names, indent=True)
    return cols


def off_list_rows(
    alarms: Mapping[str, AlarmRecord],
    lang: str,
    tz: tzinfo,
    engine_ts_s: float | None,
) -> dict[str, list[Any]]:
    """Shelved and out-of-service alarms (columns ``key, priority, message, state, by, reason, until``).

    Shelved first (the soonest to come back first), then out of service (highest priority first). ``until`` is
    the shelve's end in the site's time zone with the time left from ``engine_ts_s`` (engine time).
    """
    shelved = [r for r in alarms.values() if r.state == "shelved"]
    oos = [r for r in alarms.values() if r.state == "out_of_service"]

    def until_of(r: AlarmRecord) -> float:
        u = r.shelved.until_ts_s if r.shelved is not None else math.nan
        return u if math.isfinite(u) else math.inf

    shelved.sort(key=lambda r: (until_of(r), alarm_sort_key(r)))
    oos.sort(key=alarm_sort_key)
    cols: dict[str, list[Any]] = {k: [] for k in _OFF_COLUMNS}
    for r in shelved + oos:
        cols["key"].append(r.id)
        cols["priority"].append(_priority_html(r.priority, r.rank, False, lang))
        cols["message"].append(html.escape(r.text(lang)))
        cols["state"].append(_state_label(r.state, lang))
        if r.state == "shelved":
            info = r.shelved
            by, reason = (info.by or "", info.reason) if info is not None else ("", "")
            u = until_of(r)
            if math.isfinite(u):
                when = format_clock(u, tz)
                until = (
                    t("ws.until", lang, time=when, left=format_duration(max(0.0, u - engine_ts_s), lang))
                    if engine_ts_s is not None
                    else when
                )
            else:
                until = "---"
        else:
            info_o = r.out_of_service
            by, reason = (info_o.by or "", info_o.reason) if info_o is not None else ("", "")
            until = "\u2014"
        cols["by"].append(by)
        cols["reason"].append(reason)
        cols["until"].append(until)
    return cols


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


# -- the page ----------------------------------------------------------------------------------------------------
def _frame(cols: Mapping[str, list[Any]]) -> pd.DataFrame:
    # every column is text: Tabulator picks its formatters from the dtypes (an empty column would be float)
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})


def _css(theme: Theme) -> str:
    p = theme.palette
    return f"""
:host {{ font-family: {theme.font_family}; color: {p.text}; font-size: {theme.text_px}px; }}
.wf-pri {{ font-weight: bold; white-space: nowrap; }}
.wf-tag {{ font-weight: bold; border: {theme.px(2)}px solid; padding: 0 {theme.px(8)}px; margin-right: {theme.px(6)}px;
  font-size: {theme.small_px}px; }}
.wf-indent {{ padding-left: {theme.px(48)}px; display: inline-block; }}
.wf-group {{ font-weight: bold; }}
@keyframes wf-blink {{ 0%, 49% {{ opacity: 1; }} 50%, 100% {{ opacity: 0.35; }} }}
.wf-blink {{ animation: wf-blink 1s infinite; }}
"""


def _table_css(theme: Theme) -> str:
    p = theme.palette
    # !important: the Tabulator theme's own sheet is added after ours
    return (
        _css(theme)
        + f"""
.tabulator {{ font-size: {theme.text_px}px !important; background-color: {p.tile} !important;
  border: {theme.px(2)}px solid {p.tile_border} !important; }}
.tabulator .tabulator-header, .tabulator .tabulator-header .tabulator-col {{
  background-color: {p.page} !important; color: {p.text_dim} !important; border-color: {p.tile_border} !important; }}
.tabulator .tabulator-tableholder, .tabulator .tabulator-tableholder .tabulator-table {{
  background-color: {p.tile} !important; color: {p.text} !important; }}
.tabulator-row, .tabulator-row.tabulator-row-even, .tabulator-row.tabulator-row-odd {{
  background-color: {p.tile} !important; color: {p.text} !important;
  border-bottom: 1px solid {p.tile_border} !important; }}
.tabulator-row .tabulator-cell {{ border-right: none !important; padding: {theme.px(10)}px {theme.px(12)}px !important;
  text-align: left !important; }}
.tabulator-row.tabulator-selectable:hover {{ background-color: {p.structure_fill} !important; cursor: pointer; }}
.tabulator-row.tabulator-selected, .tabulator-row.tabulator-selected:hover {{
  background-color: #34495e !important; box-shadow: inset {theme.px(10)}px 0 0 {p.text}; }}
.tabulator .tabulator-placeholder span {{ color: {p.text_dim} !important; font-size: {theme.text_px}px; }}
"""
    )


def _panel_css(theme: Theme) -> str:
    p = theme.palette
    return (
        _css(theme)
        + f"""
.wf-card {{ background: {p.tile}; border: {theme.px(2)}px solid {p.tile_border}; padding: {theme.px(16)}px {theme.px(20)}px; }}
.wf-sel-line {{ display: flex; gap: {theme.px(20)}px; align-items: baseline; flex-wrap: wrap; }}
.wf-sel-msg {{ font-size: {theme.large_px}px; margin: {theme.px(8)}px 0; line-height: 1.25; }}
.wf-sel-facts {{ color: {p.text_dim}; }}
.wf-dim {{ color: {p.text_dim}; }}
.wf-status-ok {{ color: {p.text}; }}
.wf-status-refused {{ color: #ff9a1f; font-weight: bold; }}
.wf-status-busy {{ color: {p.text_dim}; }}
.wf-user {{ font-size: {theme.large_px}px; }}
.wf-user .wf-role {{ font-weight: bold; }}
.wf-flood {{ background: {p.link_lost_background}; color: {p.link_lost_text}; font-weight: bold;
  font-size: {theme.large_px}px; padding: {theme.px(10)}px {theme.px(20)}px; }}
.wf-login-title {{ font-size: {theme.large_px}px; font-weight: bold; }}
.wf-muster-on {{ background: {p.emergency_background}; color: {p.emergency_text}; font-weight: bold;
  font-size: {theme.large_px}px; padding: {theme.px(10)}px {theme.px(20)}px; }}
.wf-muster-quiet {{ color: {p.text_dim}; padding: {theme.px(10)}px {theme.px(8)}px; }}
.wf-confirm {{ font-weight: bold; padding: {theme.px(10)}px {theme.px(8)}px; }}
.wf-login-msg {{ color: #ff9a1f; font-weight: bold; min-height: 1.3em; }}
"""
    )


def _widget_css(theme: Theme) -> str:
    p = theme.palette
    return f"""
:host {{ --font-size: {theme.text_px}px; font-size: {theme.text_px}px; }}
.bk-btn, .bk-input, select, input {{ font-size: {theme.text_px}px; }}
.bk-btn {{ padding: {theme.px(14)}px {theme.px(20)}px; }}
.bk-btn[disabled] {{ opacity: 0.4; background-color: {p.tile} !important; color: {p.text_dim} !important;
  border-color: {p.tile_border} !important; }}
.bk-btn-group .bk-btn.bk-active {{ background-color: #34495e; color: {p.text}; box-shadow: inset 0 -{theme.px(6)}px 0 {p.text}; }}
.bk-input {{ padding: {theme.px(10)}px {theme.px(12)}px; height: auto; }}
label {{ font-size: {theme.small_px}px; color: {p.text_dim}; }}
"""


class Workstation:
    """One session's workstation page: ``root`` to serve, ``update(snap)`` once per tick (see the module text).

    ``position`` is the operator position whose flood state groups the table (``alarm.flood`` meta
    ``position``). Actions wait at most ``command_timeout_s`` for the engine's reply.
    """

    def __init__(
        self,
        site: Site,
        link: EngineLink,
        guard: LoginGuard,
        *,
        lang: str = "en",
        theme: Theme | None = None,
        position: str = "main",
        command_timeout_s: float = 5.0,
    ) -> None:
        self.site, self.link, self.guard = site, link, guard
        self.lang = normalize_language(lang)
        self.theme = theme or Theme(scale=DEFAULT_SCALE)
        self.position = position
        self.command_timeout_s = float(command_timeout_s)
        self.ctx = TileContext(site=site, lang=self.lang, theme=self.theme)
        self.tz = self.ctx.tz
        self.area_names = {z.id: z.name.get(self.lang) for z in site.zones}
        self.max_shelve_s: dict[str, float] = dict(site.max_shelve_s)

        self.user: LoggedIn | None = None
        self.selected: str | None = None  # an alarm id, or GROUP_PREFIX + group key
        self.expanded: set[str] = set()
        self.busy = False
        self._snap: LinkSnapshot | None = None
        self._rows_key: Any = None
        self._off_key: Any = None
        self._alarm_keys: list[str] = []
        self._off_keys: list[str] = []
        self._setting_selection = False
        self._status: tuple[str, str] = ("", "ok")
        self.muster_pending: str | None = None  # a muster command waiting for its confirmation
        self.muster_busy = False
        self._muster_reply: tuple[str, str] = ("", "ok")
        th = self.theme
        lang_ = self.lang
        wcss = [_widget_css(th)]

        # header: status bar, user line, banners
        self.status_bar = StatusBar(self.ctx, StatusBarOptions(show_clock_skew=True))
        self.status_bar.root.sizing_mode = "stretch_width"
        self.status_bar.root.height = th.px(90)
        self.user_line = pn.pane.HTML(
            "", stylesheets=[_panel_css(th)], sizing_mode="stretch_width", margin=(4, 8)
        )
        self.logout_button = pn.widgets.Button(
            label=t("login.logout", lang_), color="default", width=th.px(300), stylesheets=wcss
        )
        self.logout_button.on_click(lambda _e: self.logout())
        self.banner = EscalationBanner(th, lang_, self.tz, name="ws-escalation")
        self.flood_banner = pn.pane.HTML(
            "", stylesheets=[_panel_css(th)], sizing_mode="stretch_width", visible=False, margin=(4, 8)
        )

        # login
        self.login_user = pn.widgets.TextInput(
            label=t("login.user", lang_),
            placeholder=t("login.user", lang_),
            width=th.px(900),
            stylesheets=wcss,
        )
        self.login_password = pn.widgets.PasswordInput(
            label=t("login.password", lang_),
            placeholder=t("login.password", lang_),
            width=th.px(900),
            stylesheets=wcss,
        )
        self.login_button = pn.widgets.Button(
            label=t("login.submit", lang_), color="primary", width=th.px(900), stylesheets=wcss
        )
        self.login_button.on_click(lambda _e: self.login())
        self.login_message = pn.pane.HTML(
            '<div class="wf-login-msg"></div>', stylesheets=[_panel_css(th)], width=th.px(900)
        )
        self.login_view = pn.Column(
            pn.pane.HTML(
                f'<div class="wf-login-title">{html.escape(site.name.get(lang_))} \u2014 '
                f"{html.escape(t('ws.title', lang_))}</div>"
                f'<div class="wf-dim">{html.escape(t("login.title", lang_))}</div>',
                stylesheets=[_panel_css(th)],
                width=th.px(900),
            ),
            self.login_user,
            self.login_password,
            self.login_button,
            self.login_message,
            pn.pane.HTML(
                f'<div class="wf-dim">{html.escape(t("login.hint", lang_))}</div>',
                stylesheets=[_panel_css(th)],
                width=th.px(900),
            ),
            styles={
                "background": th.palette.tile,
                "border": f"{th.px(2)}px solid {th.palette.tile_border}",
                "padding": f"{th.px(24)}px",
                "margin": f"{th.px(120)}px auto 0 auto",
            },
        )

        # the two tables and the switch between them
        tcss = [_table_css(th)]
        common: dict[str, Any] = dict(
            show_index=False,
            selectable=1,
            disabled=True,
            sortable=False,
            hidden_columns=["key"],
            formatters={"priority": {"type": "html"}, "message": {"type": "html"}},
            layout="fit_columns",
            sizing_mode="stretch_both",
            stylesheets=tcss,
            theme="midnight",
            configuration={"placeholder": t("alarms.none", lang_)},
        )
        self.alarm_table = pn.widgets.Tabulator(
            _frame({k: [] for k in _ALARM_COLUMNS}),
            titles={c: t(f"ws.col.{c}", lang_) for c in _ALARM_COLUMNS if c != "key"},
            widths={  # the message takes the rest
                "priority": th.px(280),
                "time": th.px(190),
                "area": th.px(440),
                "state": th.px(380),
                "by": th.px(140),
            },
            **common,
        )
        self.off_table = pn.widgets.Tabulator(
            _frame({k: [] for k in _OFF_COLUMNS}),
            titles={c: t(f"ws.col.{c}", lang_) for c in _OFF_COLUMNS if c != "key"},
            widths={  # the message and the reason take the rest
                "priority": th.px(280),
                "state": th.px(340),
                "by": th.px(140),
                "until": th.px(480),
            },
            **{**common, "configuration": {"placeholder": t("ws.none_off", lang_)}},
        )
        self.alarm_table.param.watch(lambda e: self._on_selection(e, self._alarm_keys), "selection")
        self.off_table.param.watch(lambda e: self._on_selection(e, self._off_keys), "selection")
        self.view_switch = pn.widgets.RadioButtonGroup(
            options={t("ws.tab_alarms", lang_, n=0): "alarms", t("ws.tab_off", lang_, n=0): "off"},
            value="alarms",
            color="default",
            stylesheets=wcss,
        )
        self.view_switch.param.watch(self._on_view, "value")

        # the action panel
        pcss = [_panel_css(th)]
        self.selection_info = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width")
        self.text = pn.widgets.TextInput(
            label=t("ws.text", lang_),
            placeholder=t("ws.text_placeholder", lang_),
            sizing_mode="stretch_width",
            stylesheets=wcss,
        )
        self.duration = pn.widgets.Select(
            label=t("ws.duration", lang_), options={}, sizing_mode="stretch_width", stylesheets=wcss
        )
        self.buttons: dict[str, pn.widgets.Button] = {}
        for action in ACTIONS:
            b = pn.widgets.Button(
                label=t(f"action.{action}", lang_),
                color="primary" if action == "acknowledge" else "default",
                disabled=True,
                sizing_mode="stretch_width",
                stylesheets=wcss,
            )
            b.on_click(self._handler(action))
            self.buttons[action] = b
        self.status_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width")
        grid = pn.GridBox(*(self.buttons[a] for a in ACTIONS), ncols=2, sizing_mode="stretch_width")
        self.action_panel = pn.Column(
            pn.pane.HTML(
                f'<div class="wf-login-title">{html.escape(t("ws.actions", lang_))}</div>', stylesheets=pcss
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
        self.user_row = pn.Row(self.user_line, self.logout_button, sizing_mode="stretch_width")

        # the emergency muster: a line for everyone, declare / end with a confirmation for supervisors
        self.muster_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.muster_buttons: dict[str, pn.widgets.Button] = {}
        for op, key, color in (
            ("muster_declare", "ws.muster.declare", "danger"),
            ("muster_end", "ws.muster.end", "default"),
        ):
            b = pn.widgets.Button(
                label=t(key, lang_), color=color, width=th.px(820), visible=False, stylesheets=wcss
            )
            b.on_click(lambda _e, op=op: self.ask_muster(op))
            self.muster_buttons[op] = b
        self.muster_question = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.muster_confirm_button = pn.widgets.Button(
            label=t("ws.muster.confirm", lang_), color="danger", width=th.px(360), stylesheets=wcss
        )
        self.muster_confirm_button.on_click(self._confirm_muster_click)
        self.muster_cancel_button = pn.widgets.Button(
            label=t("ws.muster.cancel", lang_), color="default", width=th.px(360), stylesheets=wcss
        )
        self.muster_cancel_button.on_click(lambda _e: self.cancel_muster())
        self.muster_confirm_row = pn.Row(
            self.muster_question,
            self.muster_confirm_button,
            self.muster_cancel_button,
            sizing_mode="stretch_width",
            visible=False,
        )
        self.muster_reply_line = pn.pane.HTML(
            "", stylesheets=pcss, sizing_mode="stretch_width", margin=(0, 8)
        )
        self.muster_panel = pn.Column(
            pn.Row(self.muster_line, *self.muster_buttons.values(), sizing_mode="stretch_width"),
            self.muster_confirm_row,
            self.muster_reply_line,
            sizing_mode="stretch_width",
            margin=0,
        )
        self.table_holder = pn.Column(self.alarm_table, sizing_mode="stretch_both", margin=0)
        self.main_view = pn.Column(
            self.user_row,
            self.banner.root,
            self.muster_panel,
            self.flood_banner,
            pn.Row(
                pn.Column(self.view_switch, self.table_holder, sizing_mode="stretch_both"),
                self.action_panel,
                sizing_mode="stretch_both",
            ),
            sizing_mode="stretch_both",
            margin=0,
        )
        # the login form or the alarm view: swapped, not hidden (see _on_view)
        self.body = pn.Column(self.login_view, sizing_mode="stretch_both", margin=0)
        self.root = pn.Column(
            pn.pane.Bokeh(self.status_bar.root, sizing_mode="stretch_width", height=th.px(90), margin=0),
            self.body,
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
        self._refresh_actions()

    # -- login ----------------------------------------------------------------------------------------------
    def login(self, user_id: str | None = None, password: str | None = None) -> bool:
        """Check the form's (or the given) user id and password; on success show the alarm view."""
        uid = self.login_user.value_input if user_id is None else user_id
        uid = uid if uid is not None else self.login_user.value
        pw = self.login_password.value_input if password is None else password
        pw = pw if pw is not None else self.login_password.value
        result = self.guard.login(uid or "", pw or "")
        self.login_password.value = ""
        self.login_password.value_input = ""
        if not result.ok:
            reason = t(result.reason or "login.wrong", self.lang, s=math.ceil(result.retry_after_s))
            self.login_message.object = f'<div class="wf-login-msg">{html.escape(reason)}</div>'
            return False
        self.user = result.user
        self.login_message.object = '<div class="wf-login-msg"></div>'
        self.login_user.value = ""
        self.login_user.value_input = ""
        self.selected = None
        self.expanded.clear()
        self._status = ("", "ok")
        self.muster_pending = None
        self._muster_reply = ("", "ok")
        self._show_user()
        return True

    def logout(self) -> None:
        """Forget the session's user and show the login form again."""
        if self.user is not None:
            log.info("logout: %s", self.user.id)
        self.user = None
        self.selected = None
        self.text.value = ""
        self._status = ("", "ok")
        self.muster_pending = None
        self._muster_reply = ("", "ok")
        self._show_user()

    def _show_user(self) -> None:
        u = self.user
        if u is not None:
            role = t(f"role.{u.role}", self.lang)
            self.user_line.object = (
                f'<div class="wf-user" data-user="{html.escape(u.id)}" data-role="{html.escape(u.role)}">'
                f"{html.escape(t('login.as', self.lang, name=u.name, id=u.id, role=role))}</div>"
            )
        self._rows_key = self._off_key = None  # redraw for the new user
        if self._snap is not None:
            self.update(self._snap)  # fill the tables before they are shown
        self._refresh_actions()
        want = self.login_view if u is None else self.main_view
        if self.body.objects != [want]:
            self.body.objects = [want]

    # -- selection ------------------------------------------------------------------------------------------
    def _on_selection(self, event: Any, keys: list[str]) -> None:
        if self._setting_selection:
            return
        new = list(event.new or [])
        if not new:
            if self.selected is not None and self.selected in keys:
                if self.selected.startswith(GROUP_PREFIX):
                    self.expanded.discard(self.selected)  # a second click on a group row folds it
                    self._rows_key = None
                self.selected = None
        elif 0 <= new[0] < len(keys):
            key = keys[new[0]]
            if key.startswith(GROUP_PREFIX):
                if key in self.expanded and key == self.selected:
                    self.expanded.discard(key)
                else:
                    self.expanded.add(key)
                self._rows_key = None
            self.selected = key
        # the table itself is redrawn by the next tick: a Tabulator does not take new data from inside its
        # own selection callback
        self._refresh_actions()

    def _on_view(self, event: Any) -> None:
        # swapped, not hidden: a Tabulator laid out while hidden keeps zero-width columns
        self.table_holder.objects = [self.alarm_table if event.new == "alarms" else self.off_table]

    def selected_record(self) -> AlarmRecord | None:
        """The selected alarm as the link last had it (None: nothing, a group, or the alarm has gone)."""
        if self.selected is None or self.selected.startswith(GROUP_PREFIX) or self._snap is None:
            return None
        return self._snap.alarms.alarms.get(self.selected)

    # -- the tick -------------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Take one link snapshot: status bar, banners, tables and buttons; only what changed is sent."""
        self._snap = snap
        self.status_bar.update(snap)
        role = self.user.role if self.user is not None else None
        self.banner.update(snap, role, enabled=self.user is not None)
        if self.user is None:
            return
        alarms = snap.alarms.alarms
        flood = snap.flood(self.position)
        flooding = flood is not None and flood.flood
        if flooding:
            if math.isfinite(flood.since_ts_s):
                text = t(
                    "flood.banner",
                    self.lang,
                    time=format_clock(flood.since_ts_s, self.tz),
                    n=flood.count_10min,
                )
            else:  # known from the engine status only (this page joined during the flood)
                text = t("flood.banner_unknown", self.lang)
            obj = f'<div class="wf-flood">\u26a0 {html.escape(text)}</div>'
            if obj != self.flood_banner.object:
                self.flood_banner.object = obj
        if flooding != self.flood_banner.visible:
            self.flood_banner.visible = flooding
        if (
            self.selected is not None
            and not self.selected.startswith(GROUP_PREFIX)
            and self.selected not in alarms
        ):
            self.selected = None  # it went back to normal
        rows_key = (snap.alarms.version, flood if flooding else None, frozenset(self.expanded))
        if rows_key != self._rows_key:
            self._rows_key = rows_key
            cols = alarm_rows(
                alarms, self.lang, self.tz, self.area_names, flood=flood, expanded=self.expanded
            )
            self._alarm_keys = list(cols["key"])
            if self.selected is not None and self.selected not in self._alarm_keys:
                if self.selected.startswith(GROUP_PREFIX):
                    self.selected = None
            self._set_table(self.alarm_table, cols)
        now = snap.engine_ts_s
        off_key = (snap.alarms.version, None if now is None else int(now // 60))
        if off_key != self._off_key:
            self._off_key = off_key
            cols = off_list_rows(alarms, self.lang, self.tz, now)
            self._off_keys = list(cols["key"])
            self._set_table(self.off_table, cols)
            on_list = sum(1 for r in alarms.values() if r.on_list)
            options = {
                t("ws.tab_alarms", self.lang, n=on_list): "alarms",
                t("ws.tab_off", self.lang, n=len(self._off_keys)): "off",
            }
            if list(options) != list(self.view_switch.options):
                self.view_switch.options = options
        self._sync_selection()
        self._refresh_actions()
        self._refresh_muster()

    def _set_table(self, table: pn.widgets.Tabulator, cols: dict[str, list[Any]]) -> None:
        self._setting_selection = True
        try:
            table.value = _frame(cols)
            table.selection = []  # rows moved: _sync_selection marks the selected alarm again
        finally:
            self._setting_selection = False

    def _sync_selection(self) -> None:
        """Mark the selected alarm in both tables (it may sit in either), and nothing else."""
        self._setting_selection = True
        try:
            for table, keys in ((self.alarm_table, self._alarm_keys), (self.off_table, self._off_keys)):
                want = [keys.index(self.selected)] if self.selected in keys else []
                if list(table.selection) != want:
                    table.selection = want
        finally:
            self._setting_selection = False

    # -- actions --------------------------------------------------------------------------------------------
    def enabled(self) -> frozenset[str]:
        """The actions enabled now (none while a command is in flight)."""
        if self.busy or self.user is None:
            return frozenset()
        return enabled_actions(self.user.role, self.selected_record(), self.max_shelve_s)

    def _refresh_actions(self) -> None:
        rec = self.selected_record()
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
        info = self._selection_html(rec)
        if info != self.selection_info.object:
            self.selection_info.object = info
        text, kind = self._status
        status = f'<div class="wf-status-{kind}">{html.escape(text)}</div>' if text else ""
        if status != self.status_line.object:
            self.status_line.object = status

    def _selection_html(self, rec: AlarmRecord | None) -> str:
        lang = self.lang
        if rec is None:
            if self.selected is not None and self.selected.startswith(GROUP_PREFIX):
                n = sum(1 for k in self._alarm_keys if not k.startswith(GROUP_PREFIX))
                group = self.selected[len(GROUP_PREFIX) :]
                if self._snap is not None:
                    flood = self._snap.flood(self.position)
                    for g in flood_view(self._snap.alarms.alarms, flood).groups:
                        if g.key == group:
                            n = g.count
                return f'<div class="wf-card wf-dim">{html.escape(t("ws.group_selected", lang, n=n))}</div>'
            return f'<div class="wf-card wf-dim">{html.escape(t("ws.no_selection", lang))}</div>'
        facts = [
            html.escape(_area(rec.area or rec.zone, self.area_names, lang)),
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
                        until=format_clock(rec.shelved.until_ts_s, self.tz),
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
            f"{_priority_html(rec.priority, rec.rank, rec.unacknowledged, lang)}"
            f"<span>{format_clock(rec.activated_ts_s, self.tz)}</span>"
            f"<b>{html.escape(_state_label(rec.state, lang))}</b></div>"
            f'<div class="wf-sel-msg">{html.escape(rec.text(lang))}</div>'
            f'<div class="wf-sel-facts">{sep.join(facts)}</div></div>'
        )

    def _handler(self, action: str) -> Any:
        async def on_click(_event: Any) -> None:
            await self.act(action)

        return on_click

    async def act(self, action: str) -> dict[str, Any] | None:
        """Send ``action`` on the selected alarm and show the engine's reply; returns the reply (None: not sent)."""
        rec, user = self.selected_record(), self.user
        label = t(f"action.{action}", self.lang)
        if user is None or rec is None or self.busy or action not in self.enabled():
            return None
        text = (self.text.value_input if self.text.value_input is not None else self.text.value) or ""
        if action in NEEDS_REASON and not text.strip():
            self._status = (t("reply.need_text", self.lang, action=label), "refused")
            self._refresh_actions()
            return None
        duration = self.duration.value if action == "shelve" else None
        request = command_for(action, rec.id, user.id, text=text.strip(), duration_s=duration)
        self.busy = True
        self._status = (t("reply.sending", self.lang, action=label), "busy")
        self._refresh_actions()
        reply: dict[str, Any] | None = None
        try:
            fut = self.link.submit(request)
            reply = await asyncio.wait_for(asyncio.wrap_future(fut), self.command_timeout_s)
        except (TimeoutError, RuntimeError) as e:
            log.warning("workstation: %s on %s by %s: %s", action, rec.id, user.id, e)
            self._status = (
                t("reply.no_answer", self.lang, action=label, error=str(e) or "timeout"),
                "refused",
            )
        else:
            if reply.get("ok"):
                log.info("workstation: %s on %s by %s accepted", action, rec.id, user.id)
                self._status = (t("reply.ok", self.lang, action=label, alarm=rec.text(self.lang)), "ok")
                if action != "acknowledge" or text:
                    self.text.value = ""
                    self.text.value_input = ""
            else:
                reason = str(reply.get("reason") or "?")
                log.info("workstation: %s on %s by %s refused: %s", action, rec.id, user.id, reason)
                self._status = (t("reply.refused", self.lang, action=label, reason=reason), "refused")
        finally:
            self.busy = False
            self._refresh_actions()
        return reply

    # -- emergency muster -----------------------------------------------------------------------------------
    def muster_enabled(self) -> frozenset[str]:
        """The muster commands the logged-in user may send now (none while one is in flight)."""
        if self.user is None or self.muster_busy:
            return frozenset()
        status = self._snap.muster if self._snap is not None else None
        return muster_enabled(self.user.role, None if status is None else status.active)

    def ask_muster(self, op: str) -> None:
        """First click on declare / end: ask for the confirmation (nothing is sent yet)."""
        if op in self.muster_enabled():
            self.muster_pending = op
            self._muster_reply = ("", "ok")
        self._refresh_muster()

    def cancel_muster(self) -> None:
        """The confirmation was declined: nothing is sent."""
        self.muster_pending = None
        self._refresh_muster()

    async def _confirm_muster_click(self, _event: Any) -> None:
        await self.confirm_muster()

    async def confirm_muster(self) -> dict[str, Any] | None:
        """Send the confirmed muster command and show the engine's reply; returns it (None: not sent)."""
        op, user = self.muster_pending, self.user
        self.muster_pending = None
        if op is None or user is None or op not in self.muster_enabled():
            self._refresh_muster()
            return None
        label = t(f"action.{op}", self.lang)
        self.muster_busy = True
        self._muster_reply = (t("reply.sending", self.lang, action=label), "busy")
        self._refresh_muster()
        reply: dict[str, Any] | None = None
        try:
            fut = self.link.submit(muster_command(op, user.id))
            reply = await asyncio.wait_for(asyncio.wrap_future(fut), self.command_timeout_s)
        except (TimeoutError, RuntimeError) as e:
            log.warning("workstation: %s by %s: %s", op, user.id, e)
            self._muster_reply = (
                t("reply.no_answer", self.lang, action=label, error=str(e) or "timeout"),
                "refused",
            )
        else:
            if reply.get("ok"):
                log.info("workstation: %s by %s accepted", op, user.id)
                self._muster_reply = (t("ws.muster.ok", self.lang, action=label), "ok")
            else:
                reason = str(reply.get("reason") or "?")
                log.info("workstation: %s by %s refused: %s", op, user.id, reason)
                self._muster_reply = (t("reply.refused", self.lang, action=label, reason=reason), "refused")
        finally:
            self.muster_busy = False
            self._refresh_muster()
        return reply

    def _refresh_muster(self) -> None:
        snap = self._snap
        status = snap.muster if snap is not None else None
        line = muster_line_html(status, snap.engine_ts_s if snap is not None else None, self.lang, self.tz)
        if line != self.muster_line.object:
            self.muster_line.object = line
        supervising = self.user is not None and bool(muster_enabled(self.user.role, False))
        on = self.muster_enabled()
        active = status is not None and status.active
        for op, button in self.muster_buttons.items():
            show = supervising and (op == "muster_end") == active
            if button.visible != show:
                button.visible = show
            disabled = op not in on or self.muster_pending is not None
            if button.disabled != disabled:
                button.disabled = disabled
        pending = self.muster_pending
        if pending is not None and pending not in on:
            pending = self.muster_pending = None  # the state changed under the question (another supervisor)
        if pending is not None:
            key = "ws.muster.confirm_declare" if pending == "muster_declare" else "ws.muster.confirm_end"
            question = f'<div class="wf-confirm">{html.escape(t(key, self.lang))}</div>'
            if question != self.muster_question.object:
                self.muster_question.object = question
        if self.muster_confirm_row.visible != (pending is not None):
            self.muster_confirm_row.visible = pending is not None
        text, kind = self._muster_reply
        reply = f'<div class="wf-status-{kind}">{html.escape(text)}</div>' if text else ""
        if reply != self.muster_reply_line.object:
            self.muster_reply_line.object = reply


def session_arg(name: str) -> str | None:
    """The first value of URL argument ``name`` of the current Panel session (``?lang=zh-CN``), or None."""
    args = pn.state.session_args or {}
    values = args.get(name)
    if not values:
        return None
    raw = values[0]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def make_workstation(
    site: Site,
    link: EngineLink,
    guard: LoginGuard,
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
    try:
        scale = float(session_arg("scale") or scale)
    except ValueError:
        pass
    scale = min(4.0, max(0.2, scale))
    # the login form shows no table: load Tabulator's JS with the page, or the table would not render later
    pn.extension("tabulator")
    ws = Workstation(
        site, link, guard, lang=lang, theme=Theme(scale=scale), position=session_arg("position") or "main"
    )
    ws.update(link.snapshot())
    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        failed: list[bool] = []

        def tick() -> None:
            snap = link.snapshot()
            with hold(doc):
                try:
                    ws.update(snap)
                except Exception:
                    if not failed:  # once per session: a broken update must be loud, not flood the log
                        log.exception("workstation update failed")
                        failed.append(True)

        callback = pn.state.add_periodic_callback(tick, period=period_ms)

        def stop(_ctx: Any) -> None:
            callback.stop()

        pn.state.on_session_destroyed(stop)
        doc.title = f"{site.name.get(lang)} \u2014 {t('ws.title', lang)}"
    return ws.root
