"""Camera verification at the workstation (the "Cameras" tab): the AI screens, a person confirms.

The panel lists the camera detections the engine holds pending verification (the read-only ``detections`` query,
about once a second), shows the selected one's snapshot, the frame that raised its alarm, fetched from the engine's
blob store with ``blob_get`` (never from a disk: the engine may be on another host), with the detection boxes
drawn over it, and lets a verifier (``detection_fusion.verifier_roles``: supervisors) mark it **confirmed** or a
**false positive** with a reason (``verify_detection``; the engine checks the role, journals the verdict and its
reason, and a false positive clears the alarm). Under it: confirmed / false-positive counts and the
false-positive rate per camera and class, and the latest verdicts.

Queries go through the link without waiting: a request is submitted in one tick and its reply taken in a later
one (:meth:`VerifyPanel.update`), so a tick never blocks. Every widget here is a Panel widget or HTML pane.
"""

from __future__ import annotations

import concurrent.futures
import html
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import panel as pn

from ingest.protocol.queries import OP_BLOB_GET, OP_DETECTIONS

from ...auth import Credential
from ...link import LinkSnapshot
from ..i18n import t
from ..tiles import TileContext, format_clock
from .commands import CommandSink, Status, send_as, status_html

log = logging.getLogger(__name__)

__all__ = ["VerifyPanel", "VERIFY_OP", "snapshot_html", "rates_html", "detection_label"]

#: the engine command of a verdict
VERIFY_OP = "verify_detection"
#: snapshots kept in the panel (base64 JPEGs), most recently used
MAX_IMAGES = 8
#: snapshots whose fetch failed, remembered (the newest) for the pause before fetching again; one forgotten is only
#: fetched again sooner
MAX_FAILED_FETCHES = 32
#: the pause before a failed snapshot fetch is tried again (s)
RETRY_FETCH_S = 2.0
_FINDING_COLOUR = "#ff9a1f"  # amber, always with its label: ISA-101, never colour alone
_OTHER_COLOUR = "#d0d0d0"


def detection_label(rec: Mapping[str, Any], lang: str, tz: Any) -> str:
    """One detection in the list: ``D3 · CAM1 · Person without a tag · 14:02:31``."""
    what = t(f"cam.kind.{rec.get('class')}", lang)
    who = f" ({rec['tag']})" if rec.get("tag") else ""
    return f"{rec.get('id')} \u00b7 {rec.get('camera')} \u00b7 {what}{who} \u00b7 {format_clock(rec.get('raised_ts_s'), tz)}"


def snapshot_html(rec: Mapping[str, Any], image: tuple[str, str] | None, lang: str, *, width_px: int = 960) -> str:
    """The snapshot of a detection: the JPEG (``image`` = (sha256, base64)) with the raising frame's boxes over it
    (an SVG in image pixels; the finding's box amber and labelled inside the picture, the others dashed grey with
    their label as a tooltip: a crowd's labels would cover each other), or a line saying why there is no picture.
    A box that is not four finite numbers is left out."""
    snap = rec.get("snapshot")
    if not snap:
        return f'<div class="wf-dim" data-snapshot="none">{html.escape(t("cam.no_snapshot", lang))}</div>'
    if image is None or image[0] != snap.get("sha256"):
        key = "cam.snapshot_loading" if rec.get("snapshot_held") else "cam.snapshot_waiting"
        return f'<div class="wf-dim" data-snapshot="waiting">{html.escape(t(key, lang))}</div>'
    sha, b64 = image
    w, h = (rec.get("image_px") or [1920, 1080])[:2]
    stroke = max(2.0, w / 480)
    font = stroke * 12
    others, finding = [], []
    for b in rec.get("boxes") or ():
        box = _box(b.get("box_px"))
        if box is None:
            continue
        x1, y1, x2, y2 = box
        cls = t(f"cam.class.{b.get('class')}", lang)
        label = f"{cls} {_number(b.get('confidence')):.2f}"
        rect = f'x="{x1:.1f}" y="{y1:.1f}" width="{x2 - x1:.1f}" height="{y2 - y1:.1f}" fill="none"'
        if not b.get("finding"):
            others.append(f'<g><title>{html.escape(label)}</title><rect {rect} stroke="{_OTHER_COLOUR}" '
                          f'stroke-width="{stroke:.1f}" stroke-dasharray="12 8"/></g>')
            continue
        # the label stays inside the picture: above the box, else below it, else inside its top; towards the
        # middle from a box in the right half
        ty = y1 - 8 if y1 - 8 >= font else (y2 + font + 4 if y2 + font + 4 <= h else y1 + font + 4)
        tx, anchor = (x2, "end") if (x1 + x2) / 2 > w / 2 else (x1, "start")
        finding.append(
            f'<rect {rect} stroke="{_FINDING_COLOUR}" stroke-width="{stroke * 2:.1f}"/>'
            f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" fill="{_FINDING_COLOUR}" font-size="{font:.0f}" '
            f'font-family="sans-serif" font-weight="bold" stroke="#000000" stroke-width="{stroke * 1.5:.1f}" '
            f'paint-order="stroke">{html.escape(chr(0x25B2) + " " + label)}</text>'
        )
    return (
        f'<div class="wf-snapshot" style="position:relative;width:100%;max-width:{width_px}px">'
        f'<img data-sha256="{html.escape(sha)}" alt="{html.escape(t("cam.snapshot_alt", lang, id=rec.get("id")))}" '
        f'src="data:image/jpeg;base64,{b64}" style="width:100%;display:block"/>'
        f'<svg viewBox="0 0 {int(w)} {int(h)}" preserveAspectRatio="none" '
        f'style="position:absolute;left:0;top:0;width:100%;height:100%">{"".join(others + finding)}</svg></div>'
    )


def _number(v: Any) -> float:
    """``v`` as a float (0.0 when it is not a number: a value the engine could not send)."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else 0.0


def _box(v: Any) -> tuple[float, float, float, float] | None:
    """[x1, y1, x2, y2] as four finite floats, or None."""
    if not isinstance(v, (list, tuple)) or len(v) != 4:
        return None
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
        return None
    x1, y1, x2, y2 = (float(x) for x in v)
    return x1, y1, x2, y2


def rates_html(rates: list[Mapping[str, Any]], lang: str) -> str:
    """Confirmed / false positives / false-positive rate per camera and class ("" before any verdict)."""
    if not rates:
        return f'<div class="wf-dim">{html.escape(t("cam.no_verdicts", lang))}</div>'
    head = "".join(f"<th>{html.escape(t(k, lang))}</th>" for k in
                   ("cam.col.camera", "cam.col.class", "cam.col.confirmed", "cam.col.fp", "cam.col.rate"))
    rows = []
    for r in rates:
        c, fp = int(r.get("confirmed", 0)), int(r.get("rejected", 0))
        rate = f"{100.0 * fp / (c + fp):.0f} %" if c + fp else "\u2014"
        camera, cls = html.escape(str(r.get("camera"))), str(r.get("class"))
        what = html.escape(t(f"cam.class.{cls}", lang))
        rows.append(f'<tr data-fp="{camera}:{html.escape(cls)}"><td>{camera}</td><td>{what}</td>'
                    f"<td>{c}</td><td>{fp}</td><td>{rate}</td></tr>")
    title = f'<div class="wf-login-title">{html.escape(t("cam.rates_title", lang))}</div>'
    return f'{title}<table class="wf-fp-table"><tr>{head}</tr>{"".join(rows)}</table>'


class VerifyPanel:
    """``root`` to lay out (the workstation's "Cameras" tab); ``update(snap)`` once per tick; :meth:`verify` sends a
    verdict. ``poll_s``: how often the pending detections are asked for; ``clock``: monotonic seconds (tests)."""

    def __init__(self, link: CommandSink, ctx: TileContext, *, command_timeout_s: float = 5.0, poll_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.link, self.lang, self.tz = link, ctx.lang, ctx.tz
        self.verifier_roles = frozenset(ctx.site.detection_fusion.verifier_roles)
        self.command_timeout_s, self.poll_s, self.clock = float(command_timeout_s), float(poll_s), clock
        self.credential: Credential | None = None
        self.busy = False
        self._reply: Status = ("", "ok")
        self.detections: dict[str, Any] | None = None  # the last ``detections`` reply
        self._query: concurrent.futures.Future | None = None
        self._query_sent = -math.inf
        self._blob: tuple[str, concurrent.futures.Future] | None = None  # (sha256, future) in flight
        self._blob_failed: OrderedDict[str, float] = OrderedDict()  # sha256 -> when a fetch last failed, newest last
        self.images: OrderedDict[str, str] = OrderedDict()  # sha256 -> base64 JPEG
        self.query_failures = 0
        th, lang = ctx.theme, self.lang
        wcss, pcss = [th.widget_css()], [th.workstation_panel_css() + _css(th)]
        self.title = pn.pane.HTML(f'<div class="wf-login-title">{html.escape(t("cam.title", lang))}</div>',
                                  stylesheets=pcss, margin=(4, 8))
        self.select = pn.widgets.Select(name=t("cam.pending", lang), options={}, width=th.px(1100),
                                        stylesheets=wcss, css_classes=["wf-verify-select"])
        self.select.param.watch(lambda _e: self.refresh(), "value")
        self.count = pn.pane.HTML("", stylesheets=pcss, margin=(4, 8))
        self.facts = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.picture = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(4, 8))
        self.reason = pn.widgets.TextInput(placeholder=t("cam.reason_placeholder", lang), width=th.px(900),
                                           stylesheets=wcss)
        self.confirm_button = pn.widgets.Button(label=t("cam.confirm", lang), color="primary", width=th.px(360),
                                                stylesheets=wcss)
        self.reject_button = pn.widgets.Button(label=t("cam.reject", lang), color="warning", width=th.px(360),
                                               stylesheets=wcss)
        self.confirm_button.on_click(self._confirm_click)
        self.reject_button.on_click(self._reject_click)
        self.actions = pn.Row(self.confirm_button, self.reason, self.reject_button, visible=False,
                              sizing_mode="stretch_width")
        self.reply_line = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(0, 8))
        self.rates = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(8, 8))
        self.recent = pn.pane.HTML("", stylesheets=pcss, sizing_mode="stretch_width", margin=(0, 8))
        self.root = pn.Column(self.title, pn.Row(self.select, self.count), self.facts, self.picture, self.actions,
                              self.reply_line, self.rates, self.recent, sizing_mode="stretch_width", margin=0)

    # -- who is logged in -------------------------------------------------------------------------------------
    def set_user(self, credential: Credential | None) -> None:
        """A new login (None: logged out): no reply shown, no reason left over."""
        self.credential = credential
        self._reply = ("", "ok")
        self.reason.value = self.reason.value_input = ""
        self.refresh()

    def may_verify(self) -> bool:
        """A verifier is logged in, a detection is selected and nothing is in flight."""
        cred = self.credential
        return cred is not None and cred.user.role in self.verifier_roles and not self.busy and \
            self.selected() is not None

    # -- what the engine holds --------------------------------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        return list((self.detections or {}).get("pending") or [])

    def selected(self) -> dict[str, Any] | None:
        """The selected pending detection (None: none)."""
        return next((r for r in self.pending() if r.get("id") == self.select.value), None)

    def update(self, snap: LinkSnapshot | None = None) -> None:
        """Once per tick: take the replies that came, ask again when due, show what changed. The link snapshot is
        not needed (the detections come from the ``detections`` query); a lost link shows in the watchdog."""
        if self.credential is None:
            return
        changed = self._take_replies()
        now = self.clock()
        if self._query is None and now - self._query_sent >= self.poll_s:
            self._ask(now)
        if self._want_image():
            changed = True
        if changed:
            self.refresh()

    def _ask(self, now: float) -> None:
        try:
            self._query = self.link.submit({"op": OP_DETECTIONS})
            self._query_sent = now
        except RuntimeError as e:
            self.query_failures += 1
            self._query_sent = now
            log.warning("cameras: detections not asked for: %s", e)

    def _take_replies(self) -> bool:
        changed = False
        fut = self._query
        if fut is not None and fut.done():
            self._query = None
            try:
                reply = fut.result()
            except Exception as e:  # noqa: BLE001 - a lost reply is asked again next time
                self.query_failures += 1
                log.warning("cameras: no detections reply: %s", e)
                reply = None
            if reply is not None and reply.get("ok"):
                if reply != self.detections:
                    self.detections = reply
                    changed = True
            elif reply is not None:
                self.query_failures += 1
                log.warning("cameras: detections refused: %.200s", reply.get("reason"))
        if self._blob is not None and self._blob[1].done():
            sha, fut = self._blob
            self._blob = None
            try:
                reply = fut.result()
            except Exception as e:  # noqa: BLE001 - fetched again after a pause
                reply = {"ok": False, "reason": str(e) or e.__class__.__name__}
            if reply.get("ok") and reply.get("sha256") == sha and isinstance(reply.get("data_b64"), str):
                self.images[sha] = reply["data_b64"]
                self._blob_failed.pop(sha, None)
                while len(self.images) > MAX_IMAGES:
                    self.images.popitem(last=False)
            else:
                self._fetch_failed(sha)
                log.info("cameras: snapshot %s not fetched: %.200s", sha[:16], reply.get("reason"))
            changed = True
        return changed

    def _want_image(self) -> bool:
        """Fetch the selected detection's snapshot when the engine holds it and the panel does not."""
        rec = self.selected()
        snap = (rec or {}).get("snapshot") or {}
        sha = snap.get("sha256")
        if not sha or sha in self.images or self._blob is not None or not rec.get("snapshot_held"):
            if sha in self.images:
                self.images.move_to_end(sha)
            return False
        if self.clock() - self._blob_failed.get(sha, -math.inf) < RETRY_FETCH_S or self.credential is None:
            return False
        try:  # a picture of people: asked with the login's token (the engine refuses it without)
            self._blob = (sha, self.link.submit(self.credential.sign({"op": OP_BLOB_GET, "sha256": sha})))
        except RuntimeError as e:
            self._fetch_failed(sha)
            log.warning("cameras: snapshot not asked for: %s", e)
        return False

    def _fetch_failed(self, sha: str) -> None:
        """Remember when the fetch of ``sha`` failed (the newest :data:`MAX_FAILED_FETCHES` only)."""
        self._blob_failed[sha] = self.clock()
        self._blob_failed.move_to_end(sha)
        while len(self._blob_failed) > MAX_FAILED_FETCHES:
            self._blob_failed.popitem(last=False)

    # -- showing it ---------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Show the list, the selected detection and its picture, the buttons, the reply, the rates."""
        pending = self.pending()
        options = {detection_label(r, self.lang, self.tz): r["id"] for r in pending}
        if options != self.select.options:
            keep = self.select.value if self.select.value in options.values() else None
            self.select.options = options
            self.select.value = keep if keep is not None else next(iter(options.values()), None)
        count = f'<div class="wf-dim">{html.escape(t("cam.pending_count", self.lang, n=len(pending)))}</div>'
        if count != self.count.object:
            self.count.object = count
        rec = self.selected()
        facts = self._facts_html(rec) if rec is not None else ""
        if facts != self.facts.object:
            self.facts.object = facts
        sha = ((rec or {}).get("snapshot") or {}).get("sha256")
        image = (sha, self.images[sha]) if sha in self.images else None
        picture = snapshot_html(rec, image, self.lang) if rec is not None else ""
        if picture != self.picture.object:
            self.picture.object = picture
        show = self.credential is not None and self.credential.user.role in self.verifier_roles and rec is not None
        if self.actions.visible != show:
            self.actions.visible = show
        for b in (self.confirm_button, self.reject_button):
            if b.disabled != (not self.may_verify()):
                b.disabled = not self.may_verify()
        reply = status_html(self._reply)
        if reply != self.reply_line.object:
            self.reply_line.object = reply
        rates = rates_html(list((self.detections or {}).get("false_positive_rates") or []), self.lang)
        if rates != self.rates.object:
            self.rates.object = rates
        recent = self._recent_html(list((self.detections or {}).get("recent") or []))
        if recent != self.recent.object:
            self.recent.object = recent

    def _facts_html(self, rec: Mapping[str, Any]) -> str:
        text = t("cam.facts", self.lang, frames=rec.get("frames"), confidence=f"{float(rec.get('confidence', 0)):.2f}",
                 first=format_clock(rec.get("first_ts_s"), self.tz), last=format_clock(rec.get("last_ts_s"), self.tz),
                 alarm=rec.get("alarm"))
        return (f'<div class="wf-sel-msg" data-detection="{html.escape(str(rec.get("id")))}">'
                f'{html.escape(detection_label(rec, self.lang, self.tz))}</div><div class="wf-sel-facts">'
                f"{html.escape(text)}</div>")

    def _recent_html(self, recent: list[Mapping[str, Any]]) -> str:
        done = [r for r in recent if r.get("status") in ("confirmed", "rejected")][-10:]
        if not done:
            return ""
        rows = []
        for r in reversed(done):
            key = "cam.verdict.confirmed" if r["status"] == "confirmed" else "cam.verdict.rejected"
            why = f" \u2014 {r['verdict_reason']}" if r.get("verdict_reason") else ""
            rows.append(f'<div data-verdict="{html.escape(str(r.get("id")))}">'
                        f"{html.escape(detection_label(r, self.lang, self.tz))}: "
                        f"{html.escape(t(key, self.lang, user=r.get('verified_by')))}{html.escape(why)}</div>")
        title = f'<div class="wf-login-title">{html.escape(t("cam.recent_title", self.lang))}</div>'
        return title + "".join(rows)

    # -- verdicts -----------------------------------------------------------------------------------------
    async def _confirm_click(self, _event: Any) -> None:
        await self.verify("confirm")

    async def _reject_click(self, _event: Any) -> None:
        await self.verify("reject")

    async def verify(self, verdict: str) -> dict[str, Any] | None:
        """Send the verdict (``confirm`` or ``reject``) on the selected detection with the reason typed; show the
        engine's reply and return it (None: not sent: no verifier, nothing selected, or a reject without a
        reason, which is said on the reply line)."""
        rec, cred = self.selected(), self.credential
        if rec is None or cred is None or not self.may_verify():
            return None
        reason = (self.reason.value_input or self.reason.value or "").strip()
        label = t(f"cam.{verdict}", self.lang)
        if verdict == "reject" and not reason:
            self._reply = (t("cam.reason_needed", self.lang), "refused")
            self.refresh()
            return None
        reply = await send_as(
            self, cred, {"op": VERIFY_OP, "detection": rec["id"], "verdict": verdict, "reason": reason}, label=label,
            ok_text=t("cam.verify_ok", self.lang, action=label, id=rec["id"]),
            what=f"{VERIFY_OP} {rec['id']} {verdict} by {cred.user.id}", show=lambda status: setattr(self, "_reply", status))
        if reply is not None and reply.get("ok"):
            self.reason.value = self.reason.value_input = ""
            self._query_sent = -math.inf  # the list changed: ask again at the next tick
            self.refresh()
        return reply


def _css(theme: Any) -> str:
    p = theme.palette
    return f"""
.wf-fp-table {{ border-collapse: collapse; margin: {theme.px(6)}px 0; }}
.wf-fp-table th, .wf-fp-table td {{ padding: {theme.px(4)}px {theme.px(16)}px; text-align: left;
  border-bottom: 1px solid {p.tile_border}; font-variant-numeric: tabular-nums; }}
.wf-fp-table th {{ color: {p.text_dim}; font-weight: normal; }}
"""
