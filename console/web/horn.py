"""The horn, in the browser: every wall and workstation page of an operator position sounds it while a HIGH or
CRITICAL alarm of that position is unacknowledged (ingest/protocol/horn.py says which), until a silence.

The server decides *what* sounds (:class:`Horn` follows the alarm table and the engine's published silences);
the page's own JavaScript plays it and repeats it, so the pattern keeps time whatever the server's tick:
CRITICAL three high tones every 2 s, HIGH two lower tones every 5 s; a new sounding alarm plays at once.
Sounds are generated with WebAudio (no audio file). ``window.wfHorn`` holds the state and ``window.wfHornPlays``
counts the patterns played (tests read both). A browser plays audio only after a person interacted with the
page, or with ``--autoplay-policy=no-user-gesture-required`` on a wall PC (docs/operator-guide.md).
"""

from __future__ import annotations

import html
import logging
import math
from collections.abc import Sequence
from fnmatch import fnmatchcase

from bokeh.models import ColumnDataSource, CustomJS, Div, InlineStyleSheet

from config import Site
from ingest.protocol.horn import HornCall, Silence, horn_call

from ..link import LinkSnapshot
from .i18n import t
from .theme import Theme

log = logging.getLogger(__name__)

__all__ = ["AUDIO_JS", "HORN_JS", "Horn", "position_of"]

#: defines ``window.wfPlay(tones, freq, volume)`` once per page: ``tones`` short square-wave tones at ``freq``
AUDIO_JS = """
if (!window.wfPlay) {
  window.wfPlay = (tones, freq, volume) => {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) { return; }
    if (!window.wfAudio) {
      window.wfAudio = new AC();
      // a browser keeps audio suspended until a person interacts with the page: resume at the first touch
      const resume = () => { if (window.wfAudio.state === 'suspended') { window.wfAudio.resume(); } };
      document.addEventListener('pointerdown', resume);
      document.addEventListener('keydown', resume);
    }
    const ctx = window.wfAudio;
    if (ctx.state === 'suspended') { ctx.resume(); }
    let start = ctx.currentTime + 0.02;
    for (let i = 0; i < tones; i++) {
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'square';
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, start);
      gain.gain.exponentialRampToValueAtTime(volume, start + 0.01);
      gain.gain.setValueAtTime(volume, start + 0.14);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.16);
      osc.connect(gain);
      gain.connect(ctx.destination);
      osc.start(start);
      osc.stop(start + 0.17);
      start += 0.25;
    }
    window.wfAudioState = ctx.state;
  };
}
"""

#: takes the horn's state from ``source`` (``rank``, ``sequence`` of new sounding alarms) and keeps one timer
#: per page that plays the pattern of the rank and repeats it
HORN_JS = (
    AUDIO_JS
    + """
const d = source.data;
const rank = Number(d.rank[0]), sequence = Number(d.sequence[0]);
const prev = window.wfHorn || {rank: 0, sequence: 0};
window.wfHorn = {rank: rank, sequence: sequence, state: rank >= 4 ? 'critical' : rank >= 3 ? 'high' : 'quiet',
                 silenced: Number(d.silenced[0]), nextAt: prev.nextAt || 0};
if (sequence !== prev.sequence && rank > 0) { window.wfHorn.nextAt = 0; }  // a new alarm: sound at once
window.wfHornPlays = window.wfHornPlays || 0;
if (!window.wfHornTimer) {
  window.wfHornTimer = setInterval(() => {
    const h = window.wfHorn;
    if (!h || h.rank < 3) { return; }
    const now = Date.now();
    if (now < h.nextAt) { return; }
    const critical = h.rank >= 4;
    h.nextAt = now + (critical ? 2000 : 5000);
    window.wfHornPlays += 1;
    window.wfLastHorn = {state: h.state, at: now};
    window.wfPlay(critical ? 3 : 2, critical ? 1046.5 : 659.3, 0.15);
  }, 200);
}
"""
)


def position_of(positions: Sequence[tuple[str, Sequence[str]]], area: str | None) -> str:
    """The operator position answering for ``area``: the first whose area patterns match (the first position
    by default), as the engine decides it for floods and silences."""
    for pid, patterns in positions:
        if any(fnmatchcase(area or "", pat) for pat in patterns):
            return pid
    return positions[0][0] if positions else "main"


class Horn:
    """The horn of one page at ``position``: ``source`` carries the state to the page's JavaScript, ``root``
    (a Bokeh Div floating at the bottom right, in the document with the source) says "HORN SILENCED 42 s" while
    a silence runs, so nobody takes a quiet room for a calm one.

    ``update(snap)`` computes what sounds (the alarms of the position's areas, the engine's silence for it)
    and sends only changes; ``call`` is the last :class:`~ingest.protocol.horn.HornCall`, ``silence`` the
    position's silence while it runs.
    """

    def __init__(
        self,
        site: Site,
        position: str = "main",
        *,
        name: str = "wf-horn",
        theme: Theme | None = None,
        lang: str = "en",
    ) -> None:
        th = theme or Theme()
        self.lang = lang
        self.position = position
        self.positions = [(p.id, tuple(p.areas)) for p in site.operator_positions]
        self.source = ColumnDataSource(
            {"rank": [0], "sequence": [0], "sounding": [0], "silenced": [0], "until": [math.nan]}, name=name
        )
        self.source.js_on_change("data", CustomJS(args={"source": self.source}, code=HORN_JS))
        pal = th.palette
        css = (
            f":host {{ position: fixed; right: {th.px(24)}px; bottom: {th.px(24)}px; z-index: 20; }}"
            f".wf-horn-silenced {{ font-family: {th.font_family}; font-size: {th.large_px}px; font-weight: bold; "
            f"color: {pal.text}; background: {pal.outline_dark}; border: {th.px(4)}px solid {pal.text_dim}; "
            f"padding: {th.px(10)}px {th.px(20)}px; }}"
        )
        self.root = Div(text="", visible=False, stylesheets=[InlineStyleSheet(css=css)], name=f"{name}-silenced",
                        tags=[self.source])
        self.call = HornCall()
        self.silence: Silence | None = None
        self.sequence = 0
        self._heard: set[str] = set()  # the alarms sounding at the last update
        self._bad_silence_logged = False

    def on_page_ready(self) -> CustomJS:
        """The horn's script for the page's DocumentReady event: the state the page was built with plays too
        (a change event fires only for changes after the page loaded)."""
        return CustomJS(args={"source": self.source}, code=HORN_JS)

    def _silence_of(self, snap: LinkSnapshot) -> Silence | None:
        meta = snap.status.meta if snap.status is not None else {}
        raw = (meta.get("horn_silenced") or {}).get(self.position)
        if raw is None:
            return None
        try:
            return Silence.from_json(raw)
        except ValueError as e:
            if not self._bad_silence_logged:
                log.warning("horn: the engine's silence for %s cannot be read (%s): ignored", self.position, e)
                self._bad_silence_logged = True
            return None

    def update(self, snap: LinkSnapshot) -> None:
        now = snap.engine_ts_s
        self.silence = self._silence_of(snap)
        alarms = [
            (r.id, r.rank, r.activated_ts_s, r.unacknowledged)
            for r in snap.alarms.alarms.values()
            if r.on_list and position_of(self.positions, r.area) == self.position
        ]
        self.call = call = horn_call(alarms, self.silence, now if now is not None else math.inf)
        if set(call.alarms) - self._heard:  # an alarm that was not sounding a moment ago: play at once
            self.sequence += 1
        self._heard = set(call.alarms)
        data = {
            "rank": [call.rank],
            "sequence": [self.sequence],
            "sounding": [len(call.alarms)],
            "silenced": [call.silenced],
            "until": [self.silence.until_ts_s if self.silence is not None else math.nan],
        }
        old = self.source.data
        if any(list(old[k]) != v for k, v in data.items() if k != "until") or not _same_nan(old["until"][0],
                                                                                          data["until"][0]):
            self.source.data = data
        text = ""
        if self.silence is not None and now is not None and now < self.silence.until_ts_s:
            left = math.ceil(self.silence.until_ts_s - now)
            notice = t("horn.silenced", self.lang, s=left, user=self.silence.user)
            text = f'<div class="wf-horn-silenced">\U0001f507 {html.escape(notice)}</div>'
        if text != self.root.text:
            self.root.text = text
        if self.root.visible != bool(text):
            self.root.visible = bool(text)


def _same_nan(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))
