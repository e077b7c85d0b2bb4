"""The workstation's table rows, as pure functions of the alarm table (no widgets, no server).

Each builder returns columns (``dict`` of column name -> list of cells, all text); ``frame`` turns them into the
DataFrame a Tabulator shows. ``priority`` and ``message`` cells are HTML with every text escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

import pandas as pd

from ingest.protocol.records import AlarmRecord, FloodState

from ..actions import format_duration
from ..flood import FloodView, alarm_sort_key, flood_view
from ..i18n import TEXTS, condition_label, t
from ..theme import PRIORITY_STYLE
from ..tiles import format_clock

__all__ = [
    "ALARM_COLUMNS",
    "GROUP_PREFIX",
    "OFF_COLUMNS",
    "alarm_rows",
    "area_label",
    "frame",
    "off_list_rows",
    "priority_html",
    "state_label",
]

GROUP_PREFIX = "group:"  # row keys of group rows in the flood view; alarm rows are keyed by alarm id
ALARM_COLUMNS = ("key", "priority", "time", "area", "message", "state", "by")
OFF_COLUMNS = ("key", "priority", "message", "state", "by", "reason", "until")


def state_label(state: str, lang: str) -> str:
    """An alarm state as the operator reads it (``ACTIVE, UNACKNOWLEDGED``); an unknown state in capitals."""
    key = f"state.{state}"
    return t(key, lang) if key in TEXTS["en"] else state.upper()


def priority_html(priority: str, rank: int, unacknowledged: bool, lang: str) -> str:
    """A priority as its shape, colour and name; blinking while unacknowledged."""
    style = PRIORITY_STYLE[rank]
    blink = " wf-blink" if unacknowledged else ""
    return (
        f'<span class="wf-pri{blink}" style="color:{style.color}">{style.symbol} '
        f"{html.escape(t(f'priority.{priority}', lang))}</span>"
    )


def area_label(area: str | None, area_names: Mapping[str, str], lang: str) -> str:
    """The name of zone or area ``area`` (its id when unnamed; "no area" when None)."""
    return area_names.get(area, area) if area else t("area.none", lang)


def frame(cols: Mapping[str, list[Any]]) -> pd.DataFrame:
    """The columns as a DataFrame for a Tabulator."""
    # every column is text: Tabulator picks its formatters from the dtypes (an empty column would be float)
    return pd.DataFrame({k: pd.Series(v, dtype=object) for k, v in cols.items()})


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
    state = state_label(rec.state, lang)
    if rec.chattering:
        state += f" \u00b7 {t('ws.chattering', lang)}"
    cols["key"].append(rec.id)
    cols["priority"].append(priority_html(rec.priority, rec.rank, rec.unacknowledged, lang))
    cols["time"].append(format_clock(rec.activated_ts_s, tz))
    cols["area"].append(area_label(rec.area or rec.zone, area_names, lang))
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
    cols: dict[str, list[Any]] = {k: [] for k in ALARM_COLUMNS}
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
        area = area_label(g.area, area_names, lang)
        text = t(
            "ws.group_open" if is_open else "ws.group",
            lang,
            n=g.count,
            condition=condition_label(g.condition, lang),
            area=area,
        )
        cols["key"].append(key)
        cols["priority"].append(priority_html(g.priority, g.rank, g.unacknowledged > 0, lang))
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
    cols: dict[str, list[Any]] = {k: [] for k in OFF_COLUMNS}
    for r in shelved + oos:
        cols["key"].append(r.id)
        cols["priority"].append(priority_html(r.priority, r.rank, False, lang))
        cols["message"].append(html.escape(r.text(lang)))
        cols["state"].append(state_label(r.state, lang))
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
