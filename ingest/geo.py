"""Site metres <-> geodetic coordinates (pyproj), and omlox-style Location objects.

Site metres are a local tangent plane at the site origin: x east, y north (after the site's rotation), z up.
A transverse Mercator centred on the origin with scale 1 keeps distortion under 1 mm per km across a site.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pyproj import CRS, Transformer

from config import Site

__all__ = ["SiteProjection", "omlox_locations"]


class SiteProjection:
    """Converts site metres to longitude / latitude in EPSG:4326 or the site's own geodetic frame."""

    def __init__(self, site: Site, target_epsg: int | None = None) -> None:
        o = site.origin
        self.epsg = target_epsg or o.epsg
        local = CRS.from_proj4(f"+proj=tmerc +lat_0={o.lat_deg} +lon_0={o.lon_deg} +k=1 +x_0=0 +y_0=0 "
                               "+ellps=GRS80 +units=m +no_defs")
        self._to_geo = Transformer.from_crs(local, CRS.from_epsg(self.epsg), always_xy=True)
        self._to_local = Transformer.from_crs(CRS.from_epsg(self.epsg), local, always_xy=True)
        # site x is rotated clockwise from east by rotation_deg
        r = math.radians(o.rotation_deg)
        self._rot = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
        self.height_m = o.height_m

    def to_lonlat(self, xy_m: np.ndarray) -> np.ndarray:
        """float64 [N, 2] site metres -> float64 [N, 2] (longitude, latitude) in degrees."""
        en = np.asarray(xy_m, dtype=np.float64)[:, :2] @ self._rot.T
        lon, lat = self._to_geo.transform(en[:, 0], en[:, 1])
        return np.column_stack([lon, lat])

    def to_site(self, lonlat: np.ndarray) -> np.ndarray:
        """float64 [N, 2] (longitude, latitude) -> site metres."""
        ll = np.asarray(lonlat, dtype=np.float64)
        e, n = self._to_local.transform(ll[:, 0], ll[:, 1])
        return np.column_stack([e, n]) @ self._rot


def _iso(ts_s: float) -> str:
    return datetime.fromtimestamp(ts_s, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def omlox_locations(tags: list[str], xyz_m: np.ndarray, ts_s: np.ndarray, accuracy_m: np.ndarray, *,
                    source: str, projection: SiteProjection | None = None, sent_ts_s: float | None = None
                    ) -> list[dict[str, Any]]:
    """omlox-hub style Location objects: GeoJSON point, ``crs`` "local" (site metres) or "EPSG:<code>"
    (longitude, latitude, height) when a projection is given, ``provider_type`` "uwb", ``accuracy`` in m."""
    if projection is not None:
        ll = projection.to_lonlat(xyz_m)
        coords = np.column_stack([ll, xyz_m[:, 2] + projection.height_m])
        crs = f"EPSG:{projection.epsg}"
    else:
        coords, crs = xyz_m, "local"
    sent = _iso(sent_ts_s) if sent_ts_s is not None else None
    out = []
    for tag, c, t, acc in zip(tags, coords, ts_s, accuracy_m):
        loc = {
            "position": {"type": "Point", "coordinates": [round(float(v), 9 if crs != "local" else 3) for v in c]},
            "source": source,
            "provider_type": "uwb",
            "provider_id": tag,
            "timestamp_generated": _iso(float(t)),
            "crs": crs,
            "associated": False,
            "accuracy": round(float(acc), 3) if np.isfinite(acc) else None,
        }
        if sent is not None:
            loc["timestamp_sent"] = sent
        out.append(loc)
    return out
