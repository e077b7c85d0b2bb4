"""People-safety conditions: man-down, SOS, lone worker, wearable battery.

:class:`PeopleSafety` turns fixes (with the tracker's ``stationary_s``), wearable events and clock ticks into
condition changes ``(definition, active, position)`` for :meth:`AlarmBook.set_condition`. It is pure: every
time is an event or engine time passed in, nothing reads a clock, so replay reproduces it.

- ``person.man_down:<tag>`` (condition ``person.man_down``, critical): a fix with ``stationary_s >=
  man_down_s``, or a wearable ``fall``; clears on a fix that shows the person moving (``stationary_s`` NaN),
  after a fall only once ``fall_clear_s`` have passed since it. A fall-raised man-down is latching.
- ``person.sos:<tag>`` (``person.sos``, critical, latching): a wearable ``sos``; the condition holds
  ``sos_hold_s`` after the last press, then the alarm stays latched until acknowledged and reset.
- ``person.lone_worker:<zone>:<tag>`` (``person.lone_worker``, high): the only person inside a hazardous or
  confined-space zone for ``lone_worker_s``; clears when a second person is inside or the person leaves.
- ``person.battery_low:<tag>`` (``person.battery_low``, low): a wearable ``battery_low``; holds
  ``battery_low_hold_s`` after the last report.

Latching comes from the site's ``alarm_rules`` when one matches; when none does, SOS and fall-raised man-down
are latching by default (they stay on the list until a person acknowledges and resets them).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from config import Site
from config.rules import PeopleSafetySettings
from ingest.protocol.names import WEARABLE_EVENTS

from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition
from .zones import FenceEvent, ZoneMembership

log = logging.getLogger(__name__)

__all__ = ["PeopleSafety", "Change", "WEARABLE_EVENTS"]


#: a condition change for :meth:`AlarmBook.set_condition`: (definition, active, (x, y) site metres or None)
Change = tuple[AlarmDefinition, bool, tuple[float, float] | None]

_DEDUP_KEEP = 4096  # wearable event keys remembered against QoS 1 redelivery


def _xy(v: np.ndarray) -> tuple[float, float] | None:
    return (float(v[0]), float(v[1])) if np.isfinite(v[:2]).all() else None


class PeopleSafety:
    """Man-down, SOS, lone-worker and battery conditions for the P people of a site.

    ``settings`` default to the site's ``people_safety`` section (or the defaults when the site has none).
    """

    def __init__(self, site: Site, catalog: AlarmCatalog | None = None,
                 settings: PeopleSafetySettings | None = None) -> None:
        self.site = site
        self.catalog = catalog or AlarmCatalog(site)
        self.settings = settings or getattr(site, "people_safety", None) or PeopleSafetySettings()
        self.people = site.people
        self.zones = site.zones
        n_p, n_z = len(site.people), len(site.zones)
        self.tag_index = {p.tag: i for i, p in enumerate(site.people)}
        self.last_xy = np.full((n_p, 2), np.nan)  # last fix of each person, site metres
        self.stationary = np.zeros(n_p, dtype=bool)  # the stationary cause of man-down
        self.fall_ts = np.full(n_p, np.nan)  # time of the fall that holds man-down; NaN: none
        self.man_down = np.zeros(n_p, dtype=bool)  # man-down condition as last reported
        self.man_down_fall = np.zeros(n_p, dtype=bool)  # the raised man-down has seen a fall (latching definition)
        self.sos_until = np.full(n_p, np.nan)  # SOS condition active until then; NaN: not active
        self.battery_until = np.full(n_p, np.nan)
        kinds = set(self.settings.lone_worker_zone_kinds)
        self.lone_zones = [k for k, z in enumerate(site.zones) if z.kind in kinds]
        self.last_exit_ts = np.full(n_z, -np.inf)  # latest exit crossing from each zone (fence events)
        self.lone: dict[int, int] = {}  # zone index -> person whose lone-worker condition is active
        self._seen: OrderedDict[tuple[str, float, str], None] = OrderedDict()
        self._defs: dict[tuple[Any, ...], AlarmDefinition] = {}

    # -- definitions --------------------------------------------------------------------------------------
    def _define(self, key: tuple[Any, ...], latching_default: bool, **kw: Any) -> AlarmDefinition:
        d = self._defs.get(key)
        if d is None:
            d = self.catalog.define(**kw)
            if latching_default and self.catalog.rule_for(kw["condition"], kw["id"]) is None:
                d = dataclasses.replace(d, latching=True)
            self._defs[key] = d
        return d

    def man_down_definition(self, pi: int, fall: bool) -> AlarmDefinition:
        """``person.man_down:<tag>``; a fall-raised one is latching unless an alarm rule says otherwise."""
        p = self.people[pi]
        if fall:
            en = f"Man down: the wearable of {p.name} ({p.tag}) reported a fall"
            zh = f"人员倒地：{p.name}（{p.tag}）的穿戴设备报告跌倒"
        else:
            n = f"{self.settings.man_down_s:g}"
            en = f"Man down: {p.name} ({p.tag}) has not moved for {n} s"
            zh = f"人员倒地：{p.name}（{p.tag}）已静止超过 {n} 秒"
        return self._define(("man_down", pi, fall), fall, id=f"person.man_down:{p.tag}", condition="person.man_down",
                            source=p.tag, priority="critical", message_en=en, message_zh=zh, person=p.id)

    def sos_definition(self, pi: int) -> AlarmDefinition:
        p = self.people[pi]
        return self._define(("sos", pi), True, id=f"person.sos:{p.tag}", condition="person.sos", source=p.tag,
                            priority="critical", message_en=f"SOS from {p.name} ({p.tag})",
                            message_zh=f"{p.name}（{p.tag}）发出 SOS 求救", person=p.id)

    def late_definition(self, d: AlarmDefinition, event_ts_s: float, late_s: float) -> AlarmDefinition:
        """``d`` marked LATE: the event's own time (site time zone) and how late it arrived."""
        try:
            tz = ZoneInfo(self.site.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            tz = UTC
        at = datetime.fromtimestamp(event_ts_s, tz).strftime("%H:%M:%S")
        return dataclasses.replace(
            d, message_en=f"LATE by {late_s:.0f} s (event at {at}): {d.message_en}",
            message_zh=f"迟到 {late_s:.0f} 秒（事件时间 {at}）：{d.message_zh}")

    def battery_definition(self, pi: int) -> AlarmDefinition:
        p = self.people[pi]
        return self._define(("battery", pi), False, id=f"person.battery_low:{p.tag}", condition="person.battery_low",
                            source=p.tag, priority="low", message_en=f"Wearable battery low: {p.name} ({p.tag})",
                            message_zh=f"穿戴设备电量低：{p.name}（{p.tag}）", person=p.id)

    def lone_worker_definition(self, k: int, pi: int) -> AlarmDefinition:
        p, z = self.people[pi], self.zones[k]
        n = f"{self.settings.lone_worker_s:g}"
        return self._define(
            ("lone", k, pi), False, id=f"person.lone_worker:{z.id}:{p.tag}", condition="person.lone_worker",
            source=p.tag, priority="high",
            message_en=f"Lone worker: {p.name} ({p.tag}) alone in {z.name.en} for {n} s",
            message_zh=f"单独作业：{p.name}（{p.tag}）独自在 {z.name.zh_CN} 已超过 {n} 秒",
            zone=z.id, person=p.id, area=z.id)

    # -- man-down -----------------------------------------------------------------------------------------
    def _set_man_down(self, pi: int, out: list[Change], fall_now: bool = False) -> None:
        cond = bool(self.stationary[pi]) or bool(np.isfinite(self.fall_ts[pi]))
        if cond == self.man_down[pi] and not fall_now:
            return
        self.man_down[pi] = cond
        if fall_now and self.man_down_fall[pi]:
            return  # a second fall while the fall-raised alarm is still up: nothing new
        if fall_now:
            # a fall while a stationary man-down is already up re-reports it with the latching definition
            self.man_down_fall[pi] = True
        out.append((self.man_down_definition(pi, bool(self.man_down_fall[pi])), cond, _xy(self.last_xy[pi])))
        if not cond:
            self.man_down_fall[pi] = False

    def on_positions(self, person_index: np.ndarray, stationary_s: np.ndarray, xyz_m: np.ndarray, ts_s: np.ndarray,
                     now_s: float) -> list[Change]:
        """Fixes of a batch, in any order (a person's are taken in time order): ``person_index`` int [n],
        ``stationary_s`` float [n] (seconds the tag has stood within 1 m, NaN while moving), ``xyz_m`` float
        [n, 3], ``ts_s`` float [n] (fix times). Returns the man-down changes. ``now_s`` is the engine time."""
        out: list[Change] = []
        n = len(person_index)
        if not n:
            return out
        order = np.lexsort((ts_s, person_index))
        limit = self.settings.man_down_s
        clear_after = self.settings.fall_clear_s
        for r in order.tolist():
            pi = int(person_index[r])
            self.last_xy[pi] = xyz_m[r, :2]
            st = float(stationary_s[r])
            moving = math.isnan(st)
            self.stationary[pi] = (not moving) and st >= limit
            fall = self.fall_ts[pi]
            if moving and not math.isnan(fall) and float(ts_s[r]) >= fall + clear_after:
                self.fall_ts[pi] = np.nan
            self._set_man_down(pi, out)
        return out

    # -- wearables ----------------------------------------------------------------------------------------
    def _check_event(self, e: Any) -> tuple[str, float, str] | str:
        """(tag, ts, event) of a valid wearable event, or the reason it is refused."""
        if isinstance(e, dict):
            if not {"tag", "ts", "event"} <= e.keys():
                return "wearable event without tag, ts or event"
            tag, ts, ev = e["tag"], e["ts"], e["event"]
        elif isinstance(e, (tuple, list)) and len(e) == 3:
            tag, ts, ev = e
        else:
            return "wearable event is not an object with tag, ts and event"
        if not isinstance(tag, str) or tag not in self.tag_index:
            return "wearable event from an unknown tag"
        if not isinstance(ev, str) or ev not in WEARABLE_EVENTS:
            return "unknown wearable event (sos, fall, battery_low)"
        if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
            return "wearable event ts is not a finite number"
        return tag, float(ts), ev

    def on_wearable(self, events: Iterable[Any], now_s: float
                    ) -> tuple[list[Change], list[tuple[str, str]]]:
        """Wearable events ``{"tag", "ts", "event"}`` (dicts as in the bus batch meta, or (tag, ts, event)
        tuples). Returns (changes, rejects); a reject is ``(reason, payload excerpt)``: unknown tag or event,
        missing field, non-finite ts, or a duplicate (QoS 1 redelivers; (tag, ts, event) identifies an event).
        Valid events are applied in time order. ``now_s`` is the engine time."""
        out: list[Change] = []
        rejects: list[tuple[str, str]] = []
        valid: list[tuple[str, float, str, float | None]] = []
        for e in events:
            checked = self._check_event(e)
            if isinstance(checked, str):
                rejects.append((checked, json.dumps(e, default=str, ensure_ascii=False)[:512]))
                continue
            if checked in self._seen:
                rejects.append(("duplicate wearable event (QoS 1 redelivery)",
                                json.dumps(e, default=str, ensure_ascii=False)[:512]))
                continue
            self._seen[checked] = None
            if len(self._seen) > _DEDUP_KEEP:
                self._seen.popitem(last=False)
            late = e.get("late_s") if isinstance(e, dict) else None
            valid.append((*checked, float(late) if isinstance(late, (int, float)) and late > 0 else None))
        valid.sort(key=lambda v: v[1])
        s = self.settings
        for tag, ts, ev, late in valid:
            pi = self.tag_index[tag]
            xy = _xy(self.last_xy[pi])
            n = len(out)
            if ev == "sos":
                was = not math.isnan(self.sos_until[pi])
                self.sos_until[pi] = max(ts + s.sos_hold_s, self.sos_until[pi]) if was else ts + s.sos_hold_s
                if not was:
                    out.append((self.sos_definition(pi), True, xy))
            elif ev == "fall":
                f = self.fall_ts[pi]
                self.fall_ts[pi] = ts if math.isnan(f) else max(f, ts)
                self._set_man_down(pi, out, fall_now=True)
            else:
                was = not math.isnan(self.battery_until[pi])
                until = ts + s.battery_low_hold_s
                self.battery_until[pi] = max(until, self.battery_until[pi]) if was else until
                if not was:
                    out.append((self.battery_definition(pi), True, xy))
            if late is not None:  # raised all the same, marked LATE with its event time and how late it came
                out[n:] = [(self.late_definition(d, ts, late), active, pos) for d, active, pos in out[n:]]
            log.debug("wearable %s %s at %.3f", tag, ev, ts)
        return out, rejects

    # -- zones and time -----------------------------------------------------------------------------------
    def on_fence_events(self, events: Iterable[FenceEvent]) -> None:
        """Fence events from :meth:`ZoneMembership.update`: an exit dates when the people left in a zone
        became alone (needed for the lone-worker timing)."""
        for e in events:
            if e.kind == "region_exit" and e.ts_s > self.last_exit_ts[e.zone]:
                self.last_exit_ts[e.zone] = e.ts_s

    def on_tick(self, now_s: float, membership: ZoneMembership) -> list[Change]:
        """Advance to engine time ``now_s``: SOS and battery holds that ran out clear; lone-worker conditions
        (one person inside a lone-worker zone since ``max(entry, last exit from the zone)`` for at least
        ``lone_worker_s``) rise and clear."""
        out: list[Change] = []
        for until, define in ((self.sos_until, self.sos_definition), (self.battery_until, self.battery_definition)):
            due = np.nonzero(until <= now_s)[0]
            for pi in due.tolist():
                until[pi] = np.nan
                out.append((define(pi), False, _xy(self.last_xy[pi])))
        limit = self.settings.lone_worker_s
        for k in self.lone_zones:
            inside = membership.people_in(k)
            want = None
            if len(inside) == 1:
                pi = int(inside[0])
                since = max(float(membership.entered[pi, k]), float(self.last_exit_ts[k]))
                if now_s - since >= limit:
                    want = pi
            have = self.lone.get(k)
            if want == have:
                continue
            if have is not None:
                del self.lone[k]
                out.append((self.lone_worker_definition(k, have), False, _xy(self.last_xy[have])))
            if want is not None:
                self.lone[k] = want
                out.append((self.lone_worker_definition(k, want), True, _xy(self.last_xy[want])))
        return out
