"""The flood view: how the alarm list is arranged while the engine reports an alarm flood (ISA-18.2).

During a flood (more alarms than a person can handle, e.g. > 10 in 10 minutes at one operator position) a flat
list buries what matters. The wall and the workstation then show, from the top:

1. the **first-out** alarm (the one that started the flood, named by the engine), pinned;
2. every **life-safety** alarm (man down, SOS, gas: :func:`is_safety_alarm`), one by one, most important first;
3. everything else in **groups** by area and condition, with a count per group, the group's highest priority
   and its newest activation; groups ordered like alarms (highest priority, then newest).

Pure functions over :class:`~console.link.AlarmRecord`; only alarms on the operator's list are arranged.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from ingest.protocol.records import AlarmRecord, FloodState

__all__ = [
    "SAFETY_PREFIXES",
    "AlarmGroup",
    "FloodView",
    "alarm_sort_key",
    "flood_view",
    "group_key",
    "is_safety_alarm",
]

#: condition kinds that are never grouped: a person in danger or a gas release is always shown on its own
SAFETY_PREFIXES: tuple[str, ...] = ("person.man_down", "person.sos", "gas.")


def is_safety_alarm(rec: AlarmRecord) -> bool:
    """A man-down, SOS or gas alarm (its condition starts with one of :data:`SAFETY_PREFIXES`)."""
    return rec.condition.startswith(SAFETY_PREFIXES)


def alarm_sort_key(rec: AlarmRecord) -> tuple[int, float, str]:
    """The alarm list's order: highest priority first, then the newest activation, then the id."""
    ts = rec.activated_ts_s if math.isfinite(rec.activated_ts_s) else -math.inf
    return (-rec.rank, -ts, rec.id)


def group_key(rec: AlarmRecord) -> tuple[str, str]:
    """(area, condition) of an alarm; the area falls back to the zone, then to ``""`` (no area)."""
    return (rec.area or rec.zone or "", rec.condition)


@dataclass(frozen=True)
class AlarmGroup:
    """Alarms of one area and condition. ``alarms`` are in list order; times are engine seconds."""

    area: str
    condition: str
    alarms: tuple[AlarmRecord, ...]

    @property
    def key(self) -> str:
        """A stable id for the group (``'<area>|<condition>'``), e.g. for a row that expands."""
        return f"{self.area}|{self.condition}"

    @property
    def count(self) -> int:
        return len(self.alarms)

    @property
    def unacknowledged(self) -> int:
        return sum(1 for r in self.alarms if r.unacknowledged)

    @property
    def rank(self) -> int:
        """The highest priority in the group (1 low .. 4 critical)."""
        return max(r.rank for r in self.alarms)

    @property
    def priority(self) -> str:
        return ("low", "medium", "high", "critical")[self.rank - 1]

    @property
    def newest_ts_s(self) -> float:
        times = [r.activated_ts_s for r in self.alarms if math.isfinite(r.activated_ts_s)]
        return max(times) if times else math.nan

    def sort_key(self) -> tuple[int, float, str]:
        ts = self.newest_ts_s
        return (-self.rank, -ts if math.isfinite(ts) else math.inf, self.key)


@dataclass(frozen=True)
class FloodView:
    """The list arranged for a flood: ``first_out`` (or None), ``safety`` alarms, then ``groups``."""

    first_out: AlarmRecord | None
    safety: tuple[AlarmRecord, ...]
    groups: tuple[AlarmGroup, ...]

    @property
    def count(self) -> int:
        """All alarms arranged (first-out, safety and grouped)."""
        return (self.first_out is not None) + len(self.safety) + sum(g.count for g in self.groups)


def flood_view(
    alarms: Iterable[AlarmRecord] | Mapping[str, AlarmRecord], flood: FloodState | None
) -> FloodView:
    """Arrange the alarms on the operator's list for a flood (see the module text).

    The first-out alarm is pinned only when it is on the list; it is not repeated in its group or among the
    safety alarms, so every alarm appears exactly once. ``flood`` may be None or not flooding: the arrangement
    is the same (the caller decides when to use it), without a first-out.
    """
    recs = [r for r in (alarms.values() if isinstance(alarms, Mapping) else alarms) if r.on_list]
    first_id = flood.first_out if flood is not None and flood.flood else None
    first = next((r for r in recs if r.id == first_id), None) if first_id else None
    rest = [r for r in recs if r is not first]
    safety = sorted((r for r in rest if is_safety_alarm(r)), key=alarm_sort_key)
    by_key: dict[tuple[str, str], list[AlarmRecord]] = {}
    for r in rest:
        if not is_safety_alarm(r):
            by_key.setdefault(group_key(r), []).append(r)
    groups = [
        AlarmGroup(area=k[0], condition=k[1], alarms=tuple(sorted(v, key=alarm_sort_key)))
        for k, v in by_key.items()
    ]
    groups.sort(key=AlarmGroup.sort_key)
    return FloodView(first_out=first, safety=tuple(safety), groups=tuple(groups))
