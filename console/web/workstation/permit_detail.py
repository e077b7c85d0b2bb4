"""The workstation's permits as text: the list's rows (filtered by state, type and zone) and one permit's detail
(workers with their certificates, the watcher and the sign-in, the gas test and its age, the JSA, the checks with
the engine's own sentences, the last refusal, the history, the sign-in QR code). Pure functions of the engine's
board and the site: tested with no server. What the rules say (is a JSA required, is a certificate valid) is the
engine's verdict as the board carries it, never worked out here again."""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from typing import Any

import segno

from config import Site
from ingest.protocol.records import PermitBoard, PermitInfo

from ..actions import format_duration
from ..i18n import TEXTS, t
from ..theme import BOARD_COLORS
from ..tiles import format_clock
from ..tiles.permit_board import PermitBoardTile, person_label

__all__ = ["CERT_STATUSES", "LIST_COLUMNS", "detail_html", "permit_rows", "qr_svg", "signin_path", "state_label"]

#: the list's columns (``id`` is also the key)
LIST_COLUMNS = ("id", "state", "title", "zone", "time", "applicant")
#: a worker's certificate as the engine judges it (``certificates`` of a permit record); what activation accepts
CERT_STATUSES = {"ok": True, "expiring": True, "expired": False, "missing": False}


def signin_path(permit: str) -> str:
    """Where the watcher of ``permit`` signs in (the phone page; its QR code holds this on the console's host)."""
    return f"/signin/{permit}"


def state_label(state: str, lang: str) -> str:
    key = f"permit.state.{state}"
    return t(key, lang) if key in TEXTS["en"] else state.upper()


def _title(p: PermitInfo, lang: str) -> str:
    title = p.type_text(lang)
    return t("permits.type_grade", lang, type=title, grade=p.grade) if p.grade else title


def _zone(site: Site, p: PermitInfo, lang: str) -> str:
    names = {z.id: z.name.get(lang) for z in site.zones}
    return names.get(p.zone, p.zone) if p.zone else t("permits.own_area", lang)


def permit_rows(site: Site, board: PermitBoard | None, now_s: float | None, lang: str, tz: tzinfo, *,
                state: str | None = None, ptype: str | None = None, zone: str | None = None
                ) -> dict[str, list[str]]:
    """One row per permit of the board (every state, closed and cancelled ones for their last hour too), in the
    engine's order, kept when it matches the filters (None: any). Columns :data:`LIST_COLUMNS`, all text."""
    cols: dict[str, list[str]] = {k: [] for k in LIST_COLUMNS}
    for p in board.permits if board is not None else ():
        if (state and p.state != state) or (ptype and p.type != ptype) or (zone and p.zone != zone):
            continue
        cols["id"].append(p.id)
        cols["state"].append(state_label(p.state, lang))
        cols["title"].append(_title(p, lang))
        cols["zone"].append(_zone(site, p, lang))
        cols["time"].append(PermitBoardTile.time_text(p.state, p.valid_from_s, p.valid_to_s, now_s, lang, tz))
        cols["applicant"].append(p.applicant or "")
    return cols


@functools.lru_cache(maxsize=256)
def qr_svg(url: str, scale: int = 4) -> str:
    """The QR code of ``url`` as inline SVG (dark on white: a phone camera reads it off any screen)."""
    return segno.make(url, error="m").svg_inline(scale=scale, dark="#000", light="#fff", border=2)


def _e(x: Any) -> str:
    return html.escape(str(x))


def _section(title: str, body: str) -> str:
    return f'<div class="wf-pd-sec"><div class="wf-pd-h">{_e(title)}</div>{body}</div>'


def _mark(ok: bool) -> str:
    # never colour alone: a tick or a cross, and the words
    return '<span class="wf-pd-ok">\u2714</span>' if ok else '<span class="wf-pd-bad">\u2716</span>'


def _workers_html(site: Site, p: PermitInfo, now_s: float | None, lang: str, tz: tzinfo) -> str:
    names = {q.tag: f"{q.name} {q.name_zh}".strip() for q in site.people}
    certs = {c.get("tag"): c for c in p.certificates}
    today = datetime.fromtimestamp(now_s if now_s is not None and math.isfinite(now_s) else 0.0, tz).date()
    rows = []
    for tag in p.workers:
        c = certs.get(tag, {})
        status = c.get("status") if c.get("status") in CERT_STATUSES else "unknown"
        try:
            expires = date.fromisoformat(c["expires"]) if isinstance(c.get("expires"), str) else None
        except ValueError:
            expires = None
        d = expires.isoformat() if expires else ""
        text = t(f"pw.d.cert_{status}", lang, date=d, days=(expires - today).days if expires else 0)
        rows.append(f'<div class="wf-pd-row" data-worker="{_e(tag)}" data-cert="{status}">'
                    f"{_mark(CERT_STATUSES.get(status, False))} <b>{_e(names.get(tag, tag))}</b> ({_e(tag)}) "
                    f"\u2014 {_e(text)}</div>")
    return _section(t("pw.d.workers", lang, type=p.type_text(lang)), "".join(rows))


def _watcher_html(site: Site, p: PermitInfo, lang: str, tz: tzinfo) -> str:
    names = {q.tag: q.name for q in site.people}
    if not p.watcher:
        return _section(t("pw.d.watcher", lang), f'<div class="wf-dim">{_e(t("pw.d.no_watcher", lang))}</div>')
    s = p.signin
    if s is not None and s.get("tag") == p.watcher:
        m = s.get("distance_m")
        line = _mark(True) + " " + _e(t("pw.d.signed_in", lang, time=format_clock(s.get("ts_s"), tz)[:5],
                                         user=s.get("user", "?"),
                                         m=f"{m:.0f}" if isinstance(m, (int, float)) else "?"))
    else:
        line = _mark(False) + " " + _e(t("pw.d.not_signed_in", lang))
    return _section(t("pw.d.watcher", lang), f'<div class="wf-pd-row"><b>{_e(person_label(names, p.watcher))}</b>'
                    f'</div><div class="wf-pd-row" data-signin="{"yes" if s else "no"}">{line}</div>')


def _gas_html(site: Site, p: PermitInfo, now_s: float | None, lang: str, tz: tzinfo) -> str:
    g = p.gas_test
    if not g or not isinstance(g.get("values"), Mapping):
        return _section(t("pw.d.gas", lang), f'<div class="wf-dim">{_e(t("pw.d.gas_none", lang))}</div>')
    values = ", ".join(f"{k} {v:g}" for k, v in g["values"].items() if isinstance(v, (int, float)))
    ts = g.get("ts_s") if isinstance(g.get("ts_s"), (int, float)) else math.nan
    age_s = (now_s - ts) if now_s is not None else math.nan
    line = t("pw.d.gas_line", lang, values=values, time=format_clock(ts, tz)[:5], by=g.get("by", "?"),
             age=format_duration(age_s, lang))
    valid_s = site.permit_settings.gas_test_validity_s
    old = math.isfinite(age_s) and age_s > valid_s
    tail = f' <span class="wf-pd-bad">{_e(t("pw.d.gas_old", lang, valid=round(valid_s / 60)))}</span>' if old else ""
    return _section(t("pw.d.gas", lang), f'<div class="wf-pd-row" data-gas-age-s="{age_s:.0f}">{_mark(not old)} '
                    f"{_e(line)}{tail}</div>")


def _jsa_html(p: PermitInfo, lang: str) -> str:
    j, needed = p.jsa, p.jsa_required  # the engine's verdict (permit_settings.jsa_required)
    if not j:
        key = "pw.d.jsa_needed" if needed else "pw.d.jsa_not_needed"
        body = f'<div class="wf-pd-row" data-jsa="none">{_mark(not needed)} {_e(t(key, lang))}</div>'
        return _section(t("pw.d.jsa", lang), body)

    def items(key: str, xs: Any) -> str:
        lis = "".join(f"<li>{_e(x)}</li>" for x in xs if isinstance(x, str)) if isinstance(xs, list) else ""
        return f'<div class="wf-dim">{_e(t(key, lang))}</div><ul class="wf-pd-list">{lis}</ul>' if lis else ""

    who = t("pw.d.jsa_by", lang, prepared=j.get("prepared_by", "?"), reviewed=j.get("reviewed_by", "?"))
    body = (f'<div class="wf-pd-row" data-jsa="attached">{_mark(True)} {_e(who)}</div>'
            + items("pw.d.hazards", j.get("hazards")) + items("pw.d.measures", j.get("measures")))
    return _section(t("pw.d.jsa", lang), body)


def _checks_html(p: PermitInfo, lang: str) -> str:
    if not p.checks:
        return _section(t("pw.d.checks", lang), f'<div class="wf-dim">{_e(t("pw.d.checks_none", lang))}</div>')
    rows = []
    for c in p.checks:
        name = str(c.get("check", "?"))
        key = f"pw.check.{name}"
        label = t(key, lang) if key in TEXTS["en"] else name
        reason = f" \u2014 {_e(c.get('reason'))}" if c.get("reason") else ""
        rows.append(f'<div class="wf-pd-row" data-check="{_e(name)}" data-ok="{str(bool(c.get("ok"))).lower()}">'
                    f"{_mark(bool(c.get('ok')))} {_e(label)}{reason}</div>")
    return _section(t("pw.d.checks", lang), "".join(rows))


def _history_html(p: PermitInfo, lang: str, tz: tzinfo) -> str:
    rows = []
    for h in reversed(p.history):  # the latest first
        ev = str(h.get("event", "?"))
        key = f"pw.event.{ev}"
        note = f" \u2014 {_e(h.get('note'))}" if h.get("note") else ""
        rows.append(f'<div class="wf-pd-row"><span class="wf-dim">{_e(format_clock(h.get("ts_s"), tz))}</span> '
                    f"<b>{_e(t(key, lang) if key in TEXTS['en'] else ev)}</b> {_e(h.get('actor', ''))}{note}</div>")
    if p.trimmed:
        rows.append(f'<div class="wf-dim">{_e(t("pw.d.trimmed", lang))}</div>')
    return _section(t("pw.d.history", lang), "".join(rows))


def detail_html(site: Site, p: PermitInfo, now_s: float | None, lang: str, tz: tzinfo, *,
                signin_url: str | None = None, qr_scale: int = 4) -> str:
    """One permit in full, every text escaped, as the engine judged it (its checks, ``jsa_required`` and each
    worker's certificate status). ``signin_url``: the watcher's sign-in page (absolute, for the QR code; None: no
    code, e.g. a permit over); ``qr_scale``: px per module of the code."""
    color = BOARD_COLORS.get(p.board, BOARD_COLORS["grey"])
    start, end = (format_clock(v, tz, date=True)[:16] for v in (p.valid_from_s, p.valid_to_s))
    approver = t("pw.d.approver", lang, approver=p.approver) if p.approver else t("pw.d.not_approved", lang)
    head = (f'<div class="wf-pd-title" style="border-left-color:{color}">'
            f'<span class="wf-pd-state" style="color:{color}">{_e(state_label(p.state, lang))}</span> '
            f"<b>{_e(p.id)}</b> {_e(_title(p, lang))} \u00b7 {_e(_zone(site, p, lang))}</div>"
            f'<div class="wf-pd-row">{_e(t("pw.d.window", lang, start=start, end=end))} \u00b7 '
            f"{_e(PermitBoardTile.time_text(p.state, p.valid_from_s, p.valid_to_s, now_s, lang, tz))}</div>"
            f'<div class="wf-pd-row">{_e(t("pw.d.applicant", lang, applicant=p.applicant or "?"))}, {_e(approver)}'
            "</div>")
    if p.description:
        head += f'<div class="wf-pd-row"><span class="wf-dim">{_e(t("pw.d.description", lang))}:</span> ' \
                f"{_e(p.description)}</div>"
    if p.reason:
        head += f'<div class="wf-pd-row">{_e(t("permits.reason", lang, reason=p.reason))}</div>'
    r = p.last_refusal
    if r:
        op = str(r.get("op", ""))
        op_text = t(f"pw.op.{op}", lang).rstrip("\u2026") if f"pw.op.{op}" in TEXTS["en"] else op
        head += (f'<div class="wf-pd-refused" data-refusal="{_e(op)}">\u2716 '
                 f'{_e(t("pw.d.refused", lang, time=format_clock(r.get("ts_s"), tz), op=op_text, actor=r.get("actor", "?"), reason=r.get("reason", "")))}'
                 "</div>")
    qr = ""
    if signin_url and p.state in ("requested", "approved", "active", "suspended") and p.watcher:
        qr = (f'<div class="wf-pd-qr" data-signin-url="{_e(signin_url)}">{qr_svg(signin_url, qr_scale)}'
              f'<div class="wf-dim">{_e(t("pw.d.qr", lang))}</div>'
              f'<a href="/qr/{_e(p.id)}" target="_blank" class="wf-pd-print">{_e(t("pw.d.print", lang))}</a></div>')
    left = (head + _checks_html(p, lang) + _workers_html(site, p, now_s, lang, tz) + _watcher_html(site, p, lang, tz)
            + _gas_html(site, p, now_s, lang, tz) + _jsa_html(p, lang) + _history_html(p, lang, tz))
    return (f'<div class="wf-pd" data-permit="{_e(p.id)}" data-state="{_e(p.state)}">'
            f'<div class="wf-pd-main">{left}</div>{qr}</div>')
