"""Where a point of the site is, in words a person on the radio uses: the zones it is in, else the building or
unit around it, else the nearest one ("near Workshop, 12 m"). Never raw coordinates when a name will do."""

from __future__ import annotations

import math
from collections.abc import Iterable

from config import Site

from .i18n import t

__all__ = ["Places"]

#: zones named first: the most specific kinds (a confined space inside a unit) before the areas around them
_KIND_ORDER = {"confined_space": 0, "restricted": 1, "hazardous": 2, "area": 3, "muster_point": 4}
#: a structure further than this from the point is not "near" it
_NEAR_M = 40.0


def _box(poly) -> tuple[float, float, float, float]:
    xs = [p[0] for p in poly]
    ys = [p[1] for p in poly]
    return min(xs), min(ys), max(xs), max(ys)


def _inside(x: float, y: float, poly: list, box: tuple[float, float, float, float]) -> bool:
    """Even-odd ray casting in plain Python after a bounding-box test: a few microseconds for the site's
    rectangles, and no numba compile in a page's callback."""
    if not (box[0] <= x <= box[2] and box[1] <= y <= box[3]):
        return False
    inside = False
    n = len(poly)
    for i in range(n):
        (x0, y0), (x1, y1) = poly[i - 1], poly[i]
        if (y0 > y) != (y1 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
    return inside


class Places:
    """The site's zones and named structures, to name points in ``lang``."""

    def __init__(self, site: Site, lang: str) -> None:
        self.lang = lang
        self.zone_names = {z.id: z.name.get(lang) for z in site.zones}
        self.zone_kind = {z.id: z.kind for z in site.zones}
        self.zone_polygons = [(z.id, list(z.polygon), _box(z.polygon)) for z in site.zones
                              if z.kind != "muster_point"]
        named = [s for s in site.floor_plan.structures if s.label and s.kind not in ("road", "fence")]
        # smallest first: the tank before the unit around it
        named.sort(key=lambda s: (_box(s.polygon)[2] - _box(s.polygon)[0]) * (_box(s.polygon)[3] - _box(s.polygon)[1]))
        self.structures = [(s.label.get(lang) if hasattr(s.label, "get") else str(s.label), list(s.polygon),
                            _box(s.polygon)) for s in named]

    def zones_text(self, zones: Iterable[str]) -> list[str]:
        """Names of ``zones`` (ids), the most specific kind first."""
        ids = sorted(zones, key=lambda z: _KIND_ORDER.get(self.zone_kind.get(z, ""), 9))
        return [self.zone_names.get(z, z) for z in ids]

    def zones_at(self, x: float, y: float) -> list[str]:
        """Ids of the zones (muster points aside) that contain (x, y)."""
        return [zid for zid, poly, box in self.zone_polygons if _inside(x, y, poly, box)]

    def structure_at(self, x: float, y: float) -> str | None:
        """The smallest named structure that contains (x, y), or None."""
        for name, poly, box in self.structures:
            if _inside(x, y, poly, box):
                return name
        return None

    def near(self, x: float, y: float) -> tuple[str, float] | None:
        """The nearest named structure (by its outline's bounding box) within 40 m, and the distance."""
        best = None
        for name, _, (x0, y0, x1, y1) in self.structures:
            d = math.hypot(max(x0 - x, 0.0, x - x1), max(y0 - y, 0.0, y - y1))
            if d <= _NEAR_M and (best is None or d < best[1]):
                best = (name, d)
        return best

    def describe(self, x: float, y: float, zones: Iterable[str] = ()) -> str:
        """``'Tank T-3 interior · Tank farm'``, ``'Control room'``, ``'near Workshop, 12 m'``; the coordinates
        only when nothing is named near."""
        names = self.zones_text(zones)
        inside = self.structure_at(x, y)
        # the building or tank around the point, unless an area zone already names where it is (Unit 100 and
        # "Unit 100 reactors" say the same thing twice)
        in_area = any(self.zone_kind.get(z) == "area" for z in zones)
        if inside is not None and inside not in names and not in_area:
            names.append(inside)
        if names:
            return " \u00b7 ".join(names)
        near = self.near(x, y)
        if near is not None:
            return t("place.near", self.lang, name=near[0], m=f"{near[1]:.0f}")
        return f"{x:.0f}, {y:.0f} m"
