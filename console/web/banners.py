"""Escalation banners and their sound, on the wall and at the workstation (topic ``alarm.notify``).

When an unacknowledged alarm escalates, the engine names the role to tell. The workstation shows the banner to
a person logged in with that role, the wall to everyone; it stays while the alarm is still unacknowledged and
goes when someone acknowledges it (or the alarm leaves the list). Each new escalation also plays a short beep
in the browser, generated with WebAudio in JavaScript (no audio file): two tones, three for a critical alarm.

Browsers start audio only after a person has interacted with the page (autoplay policy): the workstation has
its login click; a wall browser that nobody touches needs ``--autoplay-policy=no-user-gesture-required``
(docs/operator-guide.md). The banner shows either way.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from datetime import tzinfo

from bokeh.models import ColumnDataSource, CustomJS, Div, InlineStyleSheet

from ingest.protocol.records import AlarmRecord, Notification

from ..link import LinkSnapshot
from .horn import AUDIO_JS
from .i18n import t
from .theme import PRIORITY_RANK, PRIORITY_STYLE, Theme
from .tiles.base import format_clock

__all__ = ["BEEP_JS", "EscalationBanner", "banner_notifications", "banner_html"]

#: plays the beep; ``source.data`` holds ``count`` (beeps asked so far) and ``priority`` of the newest.
#: ``window.wfBeeps`` counts beeps played on the page (tests read it).
BEEP_JS = (
    AUDIO_JS
    + """
const pri = (source.data.priority || ['high'])[0];
window.wfBeeps = (window.wfBeeps || 0) + 1;
window.wfLastBeep = {priority: pri, at: Date.now()};
window.wfPlay(pri === 'critical' ? 3 : 2, pri === 'critical' ? 1046.5 : 880.0, 0.15);
"""
)


def banner_notifications(
    notifications: Iterable[Notification],
    alarms: Mapping[str, AlarmRecord],
    role: str | None = None,
) -> list[Notification]:
    """The escalations to show, newest first: the latest notification of each alarm that is still on the list
    and unacknowledged, for ``role`` (None: every role, as on the wall)."""
    latest: dict[str, Notification] = {}
    for n in notifications:
        if role is not None and n.notify_role != role:
            continue
        if n.alarm not in latest or n.number > latest[n.alarm].number:
            latest[n.alarm] = n
    out = []
    for n in latest.values():
        rec = alarms.get(n.alarm)
        if rec is not None and rec.unacknowledged:
            out.append(n)
    out.sort(key=lambda n: -n.number)
    return out


def _css(theme: Theme) -> str:
    p = theme.palette
    return f"""
:host {{ font-family: {theme.font_family}; }}
.wf-escalations {{ display: flex; flex-direction: column; gap: {theme.px(6)}px; }}
.wf-escalations.wf-overlay {{ position: fixed; top: 9vh; left: 2vw; width: 68vw; z-index: 10; }}
.wf-escalation {{
  display: flex; align-items: baseline; gap: {theme.px(24)}px; flex-wrap: wrap;
  padding: {theme.px(14)}px {theme.px(24)}px; border: {theme.px(6)}px solid;
  background: {p.outline_dark}; color: {p.text}; font-size: {theme.large_px}px;
  box-shadow: 0 0 {theme.px(24)}px rgba(0, 0, 0, 0.6);
}}
.wf-escalation .wf-esc-head {{ font-weight: bold; white-space: nowrap; }}
.wf-escalation .wf-esc-msg {{ flex: 1 1 auto; }}
.wf-escalation .wf-esc-since {{ color: {p.text_dim}; white-space: nowrap; font-size: {theme.text_px}px; }}
.wf-escalation-more {{ color: {p.text_dim}; font-size: {theme.text_px}px; padding-left: {theme.px(24)}px; }}
@keyframes wf-blink {{ 0%, 49% {{ opacity: 1; }} 50%, 100% {{ opacity: 0.35; }} }}
.wf-blink {{ animation: wf-blink 1s infinite; }}
"""


def banner_html(
    shown: list[Notification],
    alarms: Mapping[str, AlarmRecord],
    lang: str,
    tz: tzinfo,
    max_lines: int = 3,
    overlay: bool = False,
) -> str:
    """The banner for :func:`banner_notifications`' result: up to ``max_lines`` escalations, the role named in
    each, the priority as colour + shape + word, the message and since when it is unacknowledged."""
    if not shown:
        return ""
    lines = []
    for n in shown[:max_lines]:
        rec = alarms.get(n.alarm)
        priority = rec.priority if rec is not None else n.priority
        style = PRIORITY_STYLE[PRIORITY_RANK[priority]]
        role = t(f"role.{n.notify_role}", lang) if f"role.{n.notify_role}" in _ROLE_KEYS else n.notify_role
        since = rec.activated_ts_s if rec is not None else n.ts_s
        lines.append(
            f'<div class="wf-escalation" style="border-color:{style.color}" data-alarm="{html.escape(n.alarm)}">'
            f'<span class="wf-esc-head wf-blink" style="color:{style.color}">{style.symbol} '
            f"{html.escape(t('notify.banner', lang, role=role, step=n.step))}</span>"
            f'<span class="wf-esc-head" style="color:{style.color}">{html.escape(t(f"priority.{priority}", lang))}'
            "</span>"
            f'<span class="wf-esc-msg">{html.escape(rec.text(lang) if rec is not None else n.text(lang))}</span>'
            f'<span class="wf-esc-since">{html.escape(t("notify.since", lang, time=format_clock(since, tz)))}'
            "</span></div>"
        )
    more = len(shown) - max_lines
    if more > 0:
        lines.append(f'<div class="wf-escalation-more">{html.escape(t("notify.more", lang, n=more))}</div>')
    cls = "wf-escalations wf-overlay" if overlay else "wf-escalations"
    return f'<div class="{cls}">{"".join(lines)}</div>'


_ROLE_KEYS = frozenset({"role.operator", "role.supervisor", "role.safety_manager", "role.admin"})


class EscalationBanner:
    """The banner (``root``, a Bokeh Div, hidden when there is nothing to show) and its beep (``source``).

    ``update(snap, role)`` shows the escalations for ``role`` (None: all, the wall) and beeps once for every
    batch of notifications newer than the last one this session has seen; notifications that arrived before
    the session started do not beep (their banner still shows). ``overlay``: the banner floats over the page
    (fixed below the top of the window, as on the wall) instead of taking a place in the layout.
    """

    def __init__(
        self, theme: Theme, lang: str, tz: tzinfo, *, name: str = "wf-escalation", overlay: bool = False
    ) -> None:
        self.theme, self.lang, self.tz, self.overlay = theme, lang, tz, overlay
        self.source = ColumnDataSource({"count": [0], "priority": ["high"]}, name=f"{name}-beep")
        self.source.js_on_change("data", CustomJS(args={"source": self.source}, code=BEEP_JS))
        self.root = Div(
            text="",
            visible=False,
            stylesheets=[InlineStyleSheet(css=_css(theme))],
            sizing_mode="stretch_width",
            name=name,
            tags=[self.source],  # the beep's source must be in the document: it is reached through the banner
        )
        self.baseline: int | None = None  # notifications up to this number arrived before the session began
        self.beeps = 0
        self._beeped: set[int] = set()

    def update(self, snap: LinkSnapshot, role: str | None = None, *, enabled: bool = True) -> None:
        """Show the current escalations; beep for new ones. ``enabled`` False (nobody logged in) hides all.

        A notification beeps the first time it is shown (its alarm may reach the table a moment after it), if it
        arrived after this session began.
        """
        notes = snap.notifications
        if self.baseline is None:
            self.baseline = notes[-1].number if notes else 0
        shown = banner_notifications(notes, snap.alarms.alarms, role) if enabled else []
        fresh = [n for n in shown if n.number > self.baseline and n.number not in self._beeped]
        if fresh:
            self._beeped.update(n.number for n in fresh)
            self._beeped.intersection_update(n.number for n in notes)  # bounded by the link's buffer
            self.beeps += 1
            top = max(fresh, key=lambda n: PRIORITY_RANK.get(n.priority, 0))
            self.source.data = {"count": [self.beeps], "priority": [top.priority]}
        text = banner_html(shown, snap.alarms.alarms, self.lang, self.tz, overlay=self.overlay)
        if text != self.root.text:
            self.root.text = text
        visible = bool(text)
        if visible != self.root.visible:
            self.root.visible = visible
