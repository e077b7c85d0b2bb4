"""The workstation's alarm tables: the alarm list, the shelved / out-of-service list, the switch between them and
what the operator has selected in them; and the flood banner, which the page shows above every tab."""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import panel as pn

from ingest.protocol.records import AlarmRecord

from ...link import LinkSnapshot
from ..flood import flood_view
from ..i18n import t
from ..theme import Theme
from ..tiles import TileContext, format_clock
from .rows import ALARM_COLUMNS, GROUP_PREFIX, OFF_COLUMNS, alarm_rows, frame, off_list_rows

__all__ = ["AlarmTables", "FloodBanner", "Selection"]


@dataclass(frozen=True)
class Selection:
    """What the operator has selected: nothing, one alarm (``record`` None once it has gone) or a flood group."""

    key: str | None = None  # an alarm id, or GROUP_PREFIX + group key
    record: AlarmRecord | None = None
    group_size: int = 0  # alarms in the selected group (0: not a group)

    @property
    def is_group(self) -> bool:
        return self.key is not None and self.key.startswith(GROUP_PREFIX)


class FloodBanner:
    """The flood banner (*ALARM FLOOD since 14:02:10: 23 alarms in 10 min...*): ``root`` (hidden while there is
    no flood at ``position``), ``update(snap)`` on every tick whatever the tab shown: the page lays it out above
    the tabs."""

    def __init__(self, ctx: TileContext, *, position: str = "main") -> None:
        self.lang, self.tz, self.position = ctx.lang, ctx.tz, position
        self.root = pn.pane.HTML(
            "",
            stylesheets=[ctx.theme.workstation_panel_css()],
            sizing_mode="stretch_width",
            visible=False,
            margin=(4, 8),
        )

    def update(self, snap: LinkSnapshot) -> None:
        """Show the flood state of the link snapshot; only what changed is sent."""
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
            if obj != self.root.object:
                self.root.object = obj
        if flooding != self.root.visible:
            self.root.visible = flooding


class AlarmTables:
    """``root`` (switch + table), ``update(snap)`` once per tick while the tables are shown.

    ``position`` is the operator position whose flood state groups the table. ``on_select()`` is called when the
    operator selects or clears a row. A group row expands when selected and folds on a second click.
    """

    def __init__(
        self,
        ctx: TileContext,
        *,
        position: str = "main",
        on_select: Callable[[], None] = lambda: None,
    ) -> None:
        self.lang, self.tz, self.position = ctx.lang, ctx.tz, position
        self.area_names = {z.id: z.name.get(ctx.lang) for z in ctx.site.zones}
        self.on_select = on_select
        self.selected: str | None = None
        self.expanded: set[str] = set()
        self._snap: LinkSnapshot | None = None
        self._rows_key: Any = None
        self._off_key: Any = None
        self._alarm_keys: list[str] = []
        self._off_keys: list[str] = []
        self._setting_selection = False
        th: Theme = ctx.theme
        lang = self.lang

        common: dict[str, Any] = dict(
            show_index=False,
            selectable=1,
            disabled=True,
            sortable=False,
            hidden_columns=["key"],
            formatters={"priority": {"type": "html"}, "message": {"type": "html"}},
            layout="fit_columns",
            sizing_mode="stretch_both",
            stylesheets=[th.workstation_table_css()],
            theme="midnight",
            configuration={"placeholder": t("alarms.none", lang)},
        )
        self.alarm_table = pn.widgets.Tabulator(
            frame({k: [] for k in ALARM_COLUMNS}),
            titles={c: t(f"ws.col.{c}", lang) for c in ALARM_COLUMNS if c != "key"},
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
            frame({k: [] for k in OFF_COLUMNS}),
            titles={c: t(f"ws.col.{c}", lang) for c in OFF_COLUMNS if c != "key"},
            widths={  # the message and the reason take the rest
                "priority": th.px(280),
                "state": th.px(340),
                "by": th.px(140),
                "until": th.px(480),
            },
            **{**common, "configuration": {"placeholder": t("ws.none_off", lang)}},
        )
        self.alarm_table.param.watch(lambda e: self._on_selection(e, self._alarm_keys), "selection")
        self.off_table.param.watch(lambda e: self._on_selection(e, self._off_keys), "selection")
        self.view_switch = pn.widgets.RadioButtonGroup(
            options={t("ws.tab_alarms", lang, n=0): "alarms", t("ws.tab_off", lang, n=0): "off"},
            value="alarms",
            color="default",
            stylesheets=[th.widget_css()],
        )
        self.view_switch.param.watch(self._on_view, "value")
        self.table_holder = pn.Column(self.alarm_table, sizing_mode="stretch_both", margin=0)
        self.root = pn.Column(self.view_switch, self.table_holder, sizing_mode="stretch_both")

    def reset(self) -> None:
        """Nothing selected, every group folded, both tables redrawn at the next update (a new user)."""
        self.selected = None
        self.expanded.clear()
        self._rows_key = self._off_key = None

    # -- selection ------------------------------------------------------------------------------------------
    def selection(self) -> Selection:
        """The selection as the link last had it."""
        key = self.selected
        if key is None:
            return Selection()
        if key.startswith(GROUP_PREFIX):
            return Selection(key, None, self._group_size(key[len(GROUP_PREFIX) :]))
        return Selection(key, None if self._snap is None else self._snap.alarms.alarms.get(key))

    def selected_record(self) -> AlarmRecord | None:
        """The selected alarm as the link last had it (None: nothing, a group, or the alarm has gone)."""
        return self.selection().record

    def _group_size(self, group: str) -> int:
        n = sum(1 for k in self._alarm_keys if not k.startswith(GROUP_PREFIX))
        if self._snap is not None:
            flood = self._snap.flood(self.position)
            for g in flood_view(self._snap.alarms.alarms, flood).groups:
                if g.key == group:
                    n = g.count
        return n

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
        self.on_select()

    def _on_view(self, event: Any) -> None:
        # swapped, not hidden: a Tabulator laid out while hidden keeps zero-width columns
        self.table_holder.objects = [self.alarm_table if event.new == "alarms" else self.off_table]

    # -- the tick -------------------------------------------------------------------------------------------
    def update(self, snap: LinkSnapshot) -> None:
        """Take one link snapshot: both tables (grouped during a flood); only what changed is sent."""
        self._snap = snap
        alarms = snap.alarms.alarms
        flood = snap.flood(self.position)
        flooding = flood is not None and flood.flood
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

    def _set_table(self, table: pn.widgets.Tabulator, cols: dict[str, list[Any]]) -> None:
        self._setting_selection = True
        try:
            table.value = frame(cols)
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
