"""Zone conditions. First rule: a person inside a restricted zone who is not allowed there."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from config import Site
from kernels.geofence import pack_polygons, points_in_polygons

from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition

__all__ = ["RestrictedZoneRule"]


class RestrictedZoneRule:
    """Raises ``zone.restricted:<zone>:<tag>`` while a person not allowed in a restricted zone is inside it.

    Allowed: the zone's ``allowed_people``, or a person whose role is in ``allowed_roles``.
    """

    def __init__(self, site: Site, catalog: AlarmCatalog | None = None) -> None:
        self.catalog = catalog or AlarmCatalog(site)
        self.zones = [z for z in site.zones if z.kind == "restricted"]
        self.people = site.people
        self.packed = pack_polygons([z.polygon for z in self.zones]) if self.zones else None
        # allowed[p, z]: person p may be in restricted zone z
        self.allowed = np.zeros((len(site.people), len(self.zones)), dtype=bool)
        for zi, z in enumerate(self.zones):
            for pi, p in enumerate(site.people):
                self.allowed[pi, zi] = p.id in z.allowed_people or p.role in z.allowed_roles
        self.inside = np.zeros((len(site.people), len(self.zones)), dtype=bool)
        self._defs: dict[tuple[int, int], AlarmDefinition] = {}

    def definition(self, pi: int, zi: int) -> AlarmDefinition:
        key = (pi, zi)
        d = self._defs.get(key)
        if d is None:
            p, z = self.people[pi], self.zones[zi]
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

    def evaluate(self, person_index: np.ndarray, xyz_m: np.ndarray
                 ) -> Iterator[tuple[AlarmDefinition, bool, tuple[float, float]]]:
        """Yield (definition, active, position) for every (person, zone) whose violation state changed."""
        if self.packed is None or len(person_index) == 0:
            return
        now_in = points_in_polygons(np.ascontiguousarray(xyz_m[:, :2]), *self.packed)
        violating_now = now_in & ~self.allowed[person_index]
        violating_before = self.inside[person_index] & ~self.allowed[person_index]
        changed = np.argwhere(violating_now != violating_before)
        self.inside[person_index] = now_in
        for row, zi in changed:
            pi = int(person_index[row])
            yield (self.definition(pi, int(zi)), bool(violating_now[row, zi]),
                   (float(xyz_m[row, 0]), float(xyz_m[row, 1])))
