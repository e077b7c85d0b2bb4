"""Site metres to WGS84 / CGCS2000 and omlox Location objects."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ingest.geo import SiteProjection, omlox_locations


def test_origin_maps_to_the_configured_lat_lon_and_back(demo_site):
    proj = SiteProjection(demo_site, 4326)
    ll = proj.to_lonlat(np.array([[0.0, 0.0]]))
    assert ll[0] == pytest.approx([demo_site.origin.lon_deg, demo_site.origin.lat_deg], abs=1e-12)
    pts = np.array([[0.0, 0.0], [300.0, 200.0], [150.0, 20.0]])
    assert proj.to_site(proj.to_lonlat(pts)) == pytest.approx(pts, abs=1e-6)


def test_hundred_metres_north_and_east_match_the_ellipsoid(demo_site):
    """Hand check with the meridian / parallel radii of curvature of GRS80 at the origin latitude."""
    proj = SiteProjection(demo_site, 4326)
    lat = math.radians(demo_site.origin.lat_deg)
    a, e2 = 6378137.0, 0.00669438002290
    m = a * (1 - e2) / (1 - e2 * math.sin(lat) ** 2) ** 1.5  # meridian radius
    n = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)  # prime vertical radius
    ll = proj.to_lonlat(np.array([[0.0, 100.0], [100.0, 0.0]]))
    assert ll[0, 1] - demo_site.origin.lat_deg == pytest.approx(math.degrees(100 / m), rel=1e-6)
    assert ll[1, 0] - demo_site.origin.lon_deg == pytest.approx(math.degrees(100 / (n * math.cos(lat))), rel=1e-6)


def test_cgcs2000_and_wgs84_agree_within_centimetres_here(demo_site):
    a = SiteProjection(demo_site, 4326).to_lonlat(np.array([[120.0, 80.0]]))
    b = SiteProjection(demo_site, 4490).to_lonlat(np.array([[120.0, 80.0]]))
    assert np.abs(a - b).max() < 1e-6  # about 0.1 m in degrees at most


def test_omlox_location_objects(demo_site):
    xyz = np.array([[10.0, 20.0, 1.2]])
    local = omlox_locations(["T0001"], xyz, np.array([1763798400.125]), np.array([0.12]), source="demo-plant")
    assert local[0] == {"position": {"type": "Point", "coordinates": [10.0, 20.0, 1.2]}, "source": "demo-plant",
                        "provider_type": "uwb", "provider_id": "T0001",
                        "timestamp_generated": "2025-11-22T08:00:00.125Z", "crs": "local", "associated": False,
                        "accuracy": 0.12}
    geo = omlox_locations(["T0001"], xyz, np.array([1763798400.0]), np.array([0.12]), source="demo-plant",
                          projection=SiteProjection(demo_site))
    assert geo[0]["crs"] == "EPSG:4490"
    lon, lat, h = geo[0]["position"]["coordinates"]
    assert lon == pytest.approx(121.348, abs=0.001) and lat == pytest.approx(30.742, abs=0.001)
    assert h == pytest.approx(1.2 + demo_site.origin.height_m)
