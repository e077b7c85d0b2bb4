"""Key figures of the shift at a glance: people, alarm load against the EEMUA 191 target, what waits for an
operator, and the permits by state.

Each figure is a big number with its name under it. ISA-101: grey while normal; a figure takes a priority's
colour (and a symbol) only when it is abnormal: alarms per 10 minutes above the EEMUA 191 target (about one
alarm per 10 minutes per operator is "very likely acceptable"; more than ten is a flood), an unacknowledged alarm
older than ``stale_unack_s``. The people figures come from the engine (who is where, judged once, in the
engine), the alarm figures from the same alarm table and counts as the status bar and the alarm list. The camera
figures are the false-positive rate of each camera and class with a verdict (the engine's status
``detection_verdicts``): false positives / verified, with the counts under it.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from bokeh.models import ColumnDataSource, Div, InlineStyleSheet
from pydantic import BaseModel, ConfigDict, Field

from ingest.protocol.records import AlarmRecord, PermitBoard, alarm_counts

from ...link import LinkSnapshot
from ..i18n import t
from ..theme import PRIORITY_STYLE, Theme
from .base import TileContext

__all__ = ["EEMUA_TARGET_PER_10MIN", "KpiOptions", "KpiTile"]

#: EEMUA 191: about one alarm per 10 minutes per operator is very likely acceptable; more than 10 is a flood (as
#: the engine's flood monitor judges it)
EEMUA_TARGET_PER_10MIN = 1
_FLOOD_PER_10MIN = 10
#: the permit states the tile counts, in this order
_PERMIT_STATES = ("active", "suspended", "approved", "requested")
#: camera / class false-positive figures shown, at most (the rest are counted in one more figure)
MAX_FP_FIGURES = 8


class KpiOptions(BaseModel):
    """Layout options of a ``kpi`` tile."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    position: str = Field(default="main", min_length=1, description="operator position of the alarm rate")
    stale_unack_s: float = Field(default=300.0, gt=0, le=86_400, description="an unacknowledged alarm older "
                                 "than this is shown in colour")


def _css(theme: Theme) -> str:
    p = theme.palette
    return (
        theme.tile_css()
        + f"""
.wf-kpis {{ display: grid; grid-template-columns: repeat(auto-fit, minmax({theme.px(200)}px, 1fr));
  gap: {theme.px(8)}px {theme.px(16)}px; padding: {theme.px(10)}px {theme.px(18)}px; height: 100%;
  box-sizing: border-box; align-content: start; }}
.wf-kpi {{ display: flex; flex-direction: column; }}
.wf-kpi-value {{ font-size: {theme.huge_px}px; font-weight: bold; color: {p.text};
  font-variant-numeric: tabular-nums; white-space: nowrap; }}
.wf-kpi-name {{ font-size: {theme.small_px}px; color: {p.text_dim}; line-height: 1.2; }}
.wf-kpi-note {{ font-size: {theme.small_px}px; color: {p.text_dim}; white-space: nowrap; }}
"""
    )


def _age(seconds: float, lang: str) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return ""
    minutes = int(seconds // 60)
    return t("kpi.age_min", lang, n=minutes) if minutes < 120 else t("kpi.age_h", lang, n=minutes // 60)


class KpiTile:
    """The figures tile: ``source`` has one row per figure (``key``, ``value``, ``rank`` 0 normal .. 4),
    ``root`` shows them."""

    def __init__(self, ctx: TileContext, options: KpiOptions | None = None) -> None:
        self.ctx = ctx
        self.options = options or KpiOptions()
        self.source = ColumnDataSource(self.columns(None, {}, None, None, ctx.lang, self.options),
                                       name="wall-kpis")
        self.root = Div(
            text=self.html(self.source.data, ctx.lang),
            stylesheets=[InlineStyleSheet(css=_css(ctx.theme))],
            sizing_mode="stretch_both",
            styles={"background": ctx.theme.palette.tile, "overflow": "hidden"},
            name="wall-kpis-body",
        )
        self._key: Any = None

    @staticmethod
    def columns(
        status: Mapping[str, Any] | None,
        alarms: Mapping[str, AlarmRecord],
        board: PermitBoard | None,
        now_s: float | None,
        lang: str,
        options: KpiOptions,
    ) -> dict[str, list[Any]]:
        """The figures from the engine's ``status`` (``occupancy``, ``alarm_rate_10min``), the alarm table, the
        permit board and the engine time: ``key``, ``name``, ``value`` (text), ``note``, ``rank``."""
        cols: dict[str, list[Any]] = {k: [] for k in ("key", "name", "value", "note", "rank")}

        def add(key: str, value: str, note: str = "", rank: int = 0, name: str | None = None) -> None:
            cols["key"].append(key)
            cols["name"].append(t(f"kpi.{key}", lang) if name is None else name)
            cols["value"].append(value)
            cols["note"].append(note)
            cols["rank"].append(rank)

        occ = (status or {}).get("occupancy") or {}
        for key in ("on_site", "hazardous", "confined_space"):
            n = occ.get(key)
            add(key, "\u2014" if n is None else str(int(n)))
        rate = ((status or {}).get("alarm_rate_10min") or {}).get(options.position)
        if rate is None:
            add("rate", "\u2014", t("kpi.target", lang, n=EEMUA_TARGET_PER_10MIN))
        else:
            r = int(rate)
            rank = 4 if r > _FLOOD_PER_10MIN else 2 if r > EEMUA_TARGET_PER_10MIN else 0
            add("rate", str(r), t("kpi.target", lang, n=EEMUA_TARGET_PER_10MIN), rank)
        counts = alarm_counts(alarms)
        unacked = [r.activated_ts_s for r in alarms.values() if r.unacknowledged and math.isfinite(r.activated_ts_s)]
        oldest = (now_s - min(unacked)) if unacked and now_s is not None else math.nan
        stale = math.isfinite(oldest) and oldest > options.stale_unack_s
        add("unack", str(counts.unacknowledged), t("kpi.oldest", lang, age=_age(oldest, lang)) if unacked else "",
            3 if stale else 0)
        by_state = dict.fromkeys(_PERMIT_STATES, 0)
        for p in board.permits if board is not None else ():
            if p.state in by_state:
                by_state[p.state] += 1
        for state in _PERMIT_STATES:
            add(f"permits_{state}", str(by_state[state]) if board is not None else "\u2014")
        verdicts = [v for v in (status or {}).get("detection_verdicts") or () if isinstance(v, dict)]
        for v in verdicts[:MAX_FP_FIGURES]:
            confirmed, rejected = int(v.get("confirmed", 0)), int(v.get("rejected", 0))
            if confirmed + rejected <= 0:
                continue
            what = t(f"cam.class.{v.get('class')}", lang)
            add(f"fp:{v.get('camera')}:{v.get('class')}", f"{100.0 * rejected / (confirmed + rejected):.0f} %",
                t("kpi.fp_note", lang, fp=rejected, n=confirmed + rejected),
                name=t("kpi.fp_rate", lang, camera=str(v.get("camera")), what=what))
        if len(verdicts) > MAX_FP_FIGURES:
            add("fp_more", f"+{len(verdicts) - MAX_FP_FIGURES}")
        return cols

    @staticmethod
    def html(cols: Mapping[str, list[Any]], lang: str) -> str:
        cells = []
        for i in range(len(cols["key"])):
            rank = int(cols["rank"][i])
            style = f' style="color:{PRIORITY_STYLE[rank].color}"' if rank else ""
            symbol = f"{PRIORITY_STYLE[rank].symbol} " if rank else ""
            note = f'<span class="wf-kpi-note">{html.escape(cols["note"][i])}</span>' if cols["note"][i] else ""
            cells.append(
                f'<div class="wf-kpi" data-kpi="{html.escape(cols["key"][i])}"><span class="wf-kpi-value"{style}>{symbol}'
                f'{html.escape(cols["value"][i])}</span><span class="wf-kpi-name">{html.escape(cols["name"][i])}'
                f"</span>{note}</div>"
            )
        return f'<div class="wf-kpis">{"".join(cells)}</div>'

    def update(self, snap: LinkSnapshot) -> None:
        status = snap.status.meta if snap.status is not None else None
        now = snap.engine_ts_s
        key = (snap.status.number if snap.status is not None else 0, snap.alarms.version,
               snap.permits.version if snap.permits is not None else 0, int(now or 0) // 10)
        if key == self._key:
            return
        self._key = key
        cols = self.columns(status, snap.alarms.alarms, snap.permits, now, self.ctx.lang, self.options)
        if cols != dict(self.source.data):
            self.source.data = cols
            self.root.text = self.html(cols, self.ctx.lang)
