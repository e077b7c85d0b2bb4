"""Zones: membership of every tag in every zone (with hysteresis), fence events, and the zone conditions.

:class:`ZoneMembership` keeps, per person and zone, whether the person is inside, since when, and a pending
change; it turns fixes into omlox-style fence events (``region_entry`` / ``region_exit``).
:class:`RestrictedZoneRule` raises ``zone.restricted:<zone>:<tag>`` while a person who is not allowed in a
restricted zone is inside it (allowed: the zone's ``allowed_people``, or a role in ``allowed_roles``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from config import Site
from kernels.geofence import fence_update, pack_polygons

from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition

__all__ = ["FenceEvent", "ZoneMembership", "RestrictedZoneRule"]


@dataclass(frozen=True)
class FenceEvent:
    """An omlox-style fence event: ``kind`` is ``region_entry`` or ``region_exit``; ``ts_s`` is when the tag
    crossed (the start of the dwell that confirmed it); ``dwell_s`` is the stay's length on exit."""

    kind: str
    person: int
    zone: int
    ts_s: float
    x_m: float
    y_m: float
    dwell_s: float | None = None


class ZoneMembership:
    """Membership state of P people in Z zones, updated a batch of fixes at a time (numba kernel)."""

    def __init__(self, site: Site) -> None:
        self.zones = site.zones
        n_p, n_z = len(site.people), len(site.zones)
        self.packed = pack_polygons([z.polygon for z in site.zones]) if n_z else None
        self.zband = np.array([z.z_band_m if z.z_band_m else (np.nan, np.nan) for z in site.zones],
                              dtype=np.float64).reshape(n_z, 2)
        self.border_m = site.fences.border_m
        self.min_dwell_s = site.fences.min_dwell_s
        self.inside = np.zeros((n_p, n_z), dtype=np.bool_)
        self.pending = np.full((n_p, n_z), np.nan)
        self.entered = np.full((n_p, n_z), np.nan)
        self.events_total = 0

    def update(self, person_index: np.ndarray, xyz_m: np.ndarray, ts_s: np.ndarray) -> list[FenceEvent]:
        """Apply fixes (a person may appear more than once: in time order). Returns the fence events."""
        if self.packed is None or not len(person_index):
            return []
        out: list[FenceEvent] = []
        order = np.lexsort((ts_s, person_index))
        p_sorted = person_index[order]
        first = np.ones(len(order), dtype=bool)
        first[1:] = p_sorted[1:] != p_sorted[:-1]
        remaining = order
        while len(remaining):
            p = person_index[remaining]
            _, take_at = np.unique(p, return_index=True)
            rows = remaining[np.sort(take_at)]
            remaining = np.setdiff1d(remaining, rows, assume_unique=True)
            remaining = remaining[np.argsort(ts_s[remaining], kind="stable")] if len(remaining) else remaining
            entered_before = self.entered[person_index[rows]].copy()
            ev = fence_update(person_index[rows], xyz_m[rows], ts_s[rows], self.packed, self.zband, self.border_m,
                              self.min_dwell_s, self.inside, self.pending, self.entered)
            for r, k in zip(*np.nonzero(ev)):
                row = rows[r]
                pi = int(person_index[row])
                if ev[r, k] > 0:
                    out.append(FenceEvent("region_entry", pi, int(k), float(self.entered[pi, k]),
                                          float(xyz_m[row, 0]), float(xyz_m[row, 1])))
                else:
                    t = float(ts_s[row]) - self.min_dwell_s  # the crossing began one dwell before confirmation
                    out.append(FenceEvent("region_exit", pi, int(k), t, float(xyz_m[row, 0]), float(xyz_m[row, 1]),
                                          t - float(entered_before[r, k])))
        self.events_total += len(out)
        return out

    def people_in(self, zone: int) -> np.ndarray:
        """Indices of the people inside zone ``zone`` now."""
        return np.nonzero(self.inside[:, zone])[0]

    def dwell_s(self, now_s: float) -> np.ndarray:
        """float64 [P, Z]: seconds since entry for people inside, NaN elsewhere."""
        return np.where(self.inside, now_s - self.entered, np.nan)


class RestrictedZoneRule:
    """The restricted-zone condition, driven by fence events (so it has the fences' hysteresis)."""

    def __init__(self, site: Site, catalog: AlarmCatalog | None = None) -> None:
        self.catalog = catalog or AlarmCatalog(site)
        self.people = site.people
        self.zone_ids = [z.id for z in site.zones]
        self.restricted = {k for k, z in enumerate(site.zones) if z.kind == "restricted"}
        self.allowed = np.zeros((len(site.people), len(site.zones)), dtype=bool)
        for k, z in enumerate(site.zones):
            for pi, p in enumerate(site.people):
                self.allowed[pi, k] = p.id in z.allowed_people or p.role in z.allowed_roles
        self._defs: dict[tuple[int, int], AlarmDefinition] = {}
        self.zones = site.zones

    def definition(self, pi: int, k: int) -> AlarmDefinition:
        key = (pi, k)
        d = self._defs.get(key)
        if d is None:
            p, z = self.people[pi], self.zones[k]
            d = self._defs[key] = self.catalog.define(
                id=f"zone.restricted:{z.id}:{p.tag}",
                condition="zone.restricted",
                source=p.tag,
                priority=z.priority,
                message_en=f"{p.name} ({p.tag}) in restricted zone {z.name.en}",
                message_zh=f"{p.name}（{p.tag}）进入限制区域 {z.name.zh_CN}",
                zone=z.id,
                person=p.id,
                area=z.id,
            )
        return d

    def evaluate(self, events: list[FenceEvent]) -> Iterator[tuple[AlarmDefinition, bool, tuple[float, float]]]:
        """(definition, active, position) for each entry into / exit from a restricted zone by someone not
        allowed there."""
        for e in events:
            if e.zone in self.restricted and not self.allowed[e.person, e.zone]:
                yield self.definition(e.person, e.zone), e.kind == "region_entry", (e.x_m, e.y_m)
