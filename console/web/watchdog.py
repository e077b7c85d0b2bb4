"""The page's own watchdog: a picture that is not live says so, even when the console server is gone.

The server can only tell the browser what it still knows; when the console process dies or its connection
drops, nothing more arrives and the last picture stays. So the judgement is made in the browser: the page
gets a heartbeat every tick (the session's tick number and the engine time it shows), and JavaScript in the
page checks it every 250 ms:

- no tick for ``stale_ms`` (2.5 s): **CONSOLE LINK LOST** over the whole page. Once its websocket has closed
  (the console process died or the connection dropped: the session is gone) the page asks the console server
  every 2 s whether it is back and reloads itself when it is (a new session, a fresh picture). A server that is
  only slow (its socket still open) is never reloaded away from: the overlay goes when the ticks come back, and
  nobody at a workstation is logged out by a busy moment;
- ticks arrive but the engine time has not moved for ``stale_ms``: **ENGINE NOT LIVE** over the whole page
  (the console is fine, the engine is not; the overlay goes by itself when the engine time moves again).

``window.wfWatch`` holds the watchdog's state for tests (``state``: ``live``, ``console_lost``,
``engine_stalled``; ``lostAt``, ``reloads``, ``socketLost``).
"""

from __future__ import annotations

import html
import math

from bokeh.models import ColumnDataSource, CustomJS, Div, InlineStyleSheet

from ..link import LinkSnapshot
from .i18n import t
from .theme import Theme

__all__ = ["STALE_MS", "WATCHDOG_JS", "LinkWatchdog"]

#: the picture is called not live after this long without news (the issue's goal: shown within 3 s)
STALE_MS = 2500

WATCHDOG_JS = """
const now = Date.now();
const d = beat.data;
const tick = (d.tick || [0])[0], engine = (d.engine_ts_s || [NaN])[0];
const w = window.wfWatch || (window.wfWatch = {state: 'live', tick: -1, engine: NaN, tickAt: now, engineAt: now,
                                                 reloads: 0, lostAt: null, polling: false, started: now});
if (tick !== w.tick) { w.tick = tick; w.tickAt = now; }
if (!(engine === w.engine) && !(Number.isNaN(engine) && Number.isNaN(w.engine))) { w.engine = engine; w.engineAt = now; }
if (!w.hooked && beat.document) {  // the websocket closed: this session is gone, a reload is needed
  w.hooked = true;
  beat.document.on_event('connection_lost', () => { w.socketLost = true; });
}
if (w.timer) { return; }
function show(state) {
  if (w.state === state) { return; }
  w.state = state;
  if (state === 'live') { overlay.visible = false; w.lostAt = null; return; }
  w.lostAt = w.lostAt || Date.now();
  overlay.text = state === 'console_lost' ? texts.console_lost : texts.engine_stalled;
  overlay.visible = true;
}
function poll() {  // the console server is back: a new session (the old one is gone with its process)
  if (w.polling) { return; }
  w.polling = true;
  fetch(new URL('liveness', window.location.href), {cache: 'no-store'}).then((r) => {
    w.polling = false;
    if (r.ok && w.state === 'console_lost' && w.socketLost) { w.reloads += 1; window.location.reload(); }
  }).catch(() => { w.polling = false; });
}
w.timer = setInterval(() => {
  const t = Date.now();
  if (t - w.tickAt > stale) {
    show('console_lost');
    if (w.socketLost && (!w.lastPoll || t - w.lastPoll > 2000)) { w.lastPoll = t; poll(); }
  } else if (t - w.engineAt > stale) {
    show('engine_stalled');
  } else {
    show('live');
  }
}, 250);
"""


class LinkWatchdog:
    """``heartbeat`` (a data source updated every tick) and ``overlay`` (the full-page message the browser shows
    by itself). Put both in the page; call :meth:`update` every tick."""

    def __init__(self, theme: Theme, lang: str, *, stale_ms: int = STALE_MS) -> None:
        th = theme
        self.tick = 0
        self.heartbeat = ColumnDataSource({"tick": [0], "engine_ts_s": [math.nan]}, name="wf-heartbeat")
        texts = {
            key: (f'<div class="wf-lost"><div class="wf-lost-title">{html.escape(t(f"watchdog.{key}", lang))}'
                  f'</div><div class="wf-lost-hint">{html.escape(t(f"watchdog.{key}.hint", lang))}</div></div>')
            for key in ("console_lost", "engine_stalled")
        }
        css = InlineStyleSheet(css=f"""
:host {{ position: fixed !important; inset: 0; z-index: 1000; }}
.wf-lost {{ position: fixed; inset: 0; display: flex; flex-direction: column; align-items: center;
  justify-content: center; background: rgba(40, 0, 0, 0.82); color: #fff; text-align: center; }}
.wf-lost-title {{ font-size: {th.px(120)}px; font-weight: 700; letter-spacing: 0.05em; color: #ff5a4f; }}
.wf-lost-hint {{ font-size: {th.px(40)}px; margin-top: {th.px(24)}px; max-width: 80vw; }}
""")
        self.overlay = Div(text=texts["console_lost"], visible=False, name="wf-link-lost", stylesheets=[css],
                           sizing_mode="fixed", width=1, height=1, tags=[self.heartbeat])  # tags: in the document
        self.heartbeat.js_on_change("data", CustomJS(
            args={"beat": self.heartbeat, "overlay": self.overlay, "texts": texts, "stale": int(stale_ms)},
            code=WATCHDOG_JS))

    def update(self, snap: LinkSnapshot) -> None:
        """One heartbeat: this tick's number and the engine time the page shows (NaN: none yet)."""
        self.tick += 1
        engine = snap.engine_ts_s
        self.heartbeat.data = {"tick": [self.tick], "engine_ts_s": [math.nan if engine is None else float(engine)]}
