"""Emergency muster: the roster fixed at declaration (everyone located, or the people in the declared zones),
live headcount per muster point, the missing with last position and fix age, late joiners, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest

from alarms.muster import Muster, MusterRefused
from alarms.zones import ZoneMembership
from tests.test_people_rules import small_site


class Scene:
    """Four people on the small site (Z-HAZ (10..30)^2, Z-CS x 60..70 y 10..20, Z-MP1 (80..95)^2,
    Z-MP2 x 5..20 y 80..95); positions and fix times kept like the engine's state."""

    def __init__(self, site):
        self.site = site
        self.m = ZoneMembership(site)
        self.xyz = np.full((4, 3), np.nan)
        self.fix_ts = np.full(4, np.nan)
        self.muster = Muster(site)

    def at(self, ts, **xy):
        idx = np.array([int(k[1:]) - 1 for k in xy])
        xyz = np.array([[x, y, 1.2] for x, y in xy.values()])
        self.xyz[idx] = xyz
        self.fix_ts[idx] = ts
        self.muster.on_fence_events(self.m.update(idx, xyz, np.full(len(idx), ts)))

    def status(self, now):
        return self.muster.status(now, self.xyz, self.fix_ts, self.m)


@pytest.fixture(scope="module")
def site():
    return small_site()


def test_site_wide_muster_counts_heads_per_point_and_lists_the_missing_with_fix_age(site):
    s = Scene(site)
    s.at(990.0, T1=(20.0, 20.0), T2=(65.0, 15.0))
    s.at(995.0, T3=(85.0, 85.0))  # already at muster point 1; T4 was never located
    rec = s.muster.declare(1000.0, "sup1", "all", s.m, s.fix_ts)
    assert rec == {"event": "muster_declare", "number": 1, "declared_ts_s": 1000.0, "declared_by": "sup1",
                   "area": "all", "roster": ["P1", "P2", "P3"]}
    s.at(1010.0, T1=(12.0, 85.0))  # T1 reaches muster point 2
    st = s.status(1012.5)
    assert st["active"] and st["elapsed_s"] == 12.5 and st["engine_ts_s"] == 1012.5
    assert st["counts"] == {"roster": 3, "mustered": 2, "missing": 1}
    assert [(p["zone"], p["count"], p["people"]) for p in st["muster_points"]] == [
        ("Z-MP1", 1, ["P3"]), ("Z-MP2", 1, ["P1"])]
    assert st["muster_points"][0]["name"] == {"en": "Muster 1", "zh-CN": "集合点1"}
    assert st["missing"] == [{"person": "P2", "tag": "T2", "name": "Worker 2", "position_m": [65.0, 15.0, 1.2],
                              "fix_age_s": 22.5, "zones": ["Z-CS"]}]
    json.dumps(st, allow_nan=False)  # ready to publish


def test_zone_muster_accounts_for_the_people_in_the_area_and_late_entrants(site):
    s = Scene(site)
    s.at(0.0, T1=(20.0, 20.0), T2=(25.0, 25.0), T3=(65.0, 15.0))  # T1, T2 in Z-HAZ; T3 in Z-CS
    s.muster.declare(100.0, "sup1", ["Z-HAZ"], s.m, s.fix_ts)
    st = s.status(100.0)
    assert st["area"] == ["Z-HAZ"] and st["counts"] == {"roster": 2, "mustered": 0, "missing": 2}
    assert [p["person"] for p in st["missing"]] == ["P1", "P2"]
    # T4 walks into the declared zone and out again between two looks: it must still be accounted for
    s.at(101.0, T4=(15.0, 15.0))
    s.at(102.0, T4=(50.0, 50.0))
    s.at(103.0, T1=(90.0, 90.0), T2=(10.0, 90.0))
    st = s.status(110.0)
    assert st["counts"] == {"roster": 3, "mustered": 2, "missing": 1}
    assert st["missing"][0]["person"] == "P4" and st["missing"][0]["fix_age_s"] == 8.0
    assert st["missing"][0]["zones"] == []


def test_status_is_a_view_and_someone_located_later_joins_a_site_wide_roster(site):
    s = Scene(site)
    s.at(0.0, T1=(20.0, 20.0))
    s.muster.declare(5.0, "sup1", "all", s.m, s.fix_ts)
    assert s.status(6.0)["counts"]["roster"] == 1
    s.at(7.0, T4=(50.0, 50.0))  # first fix of T4
    first = s.status(8.0)
    assert first["counts"] == {"roster": 2, "mustered": 0, "missing": 2}
    assert s.status(8.0) == first  # looking again changes nothing


def test_a_person_who_leaves_the_muster_point_is_missing_again(site):
    s = Scene(site)
    s.at(0.0, T1=(20.0, 20.0))
    s.muster.declare(5.0, "sup1", "all", s.m, s.fix_ts)
    s.at(6.0, T1=(85.0, 85.0))
    assert s.status(7.0)["counts"]["missing"] == 0
    s.at(8.0, T1=(50.0, 50.0))
    st = s.status(9.0)
    assert st["counts"] == {"roster": 1, "mustered": 0, "missing": 1}
    assert st["muster_points"][0]["count"] == 0


def test_people_at_a_muster_point_outside_the_roster_count_in_the_headcount_only(site):
    s = Scene(site)
    s.at(0.0, T1=(20.0, 20.0), T2=(85.0, 85.0))
    s.muster.declare(1.0, "sup1", ["Z-HAZ"], s.m, s.fix_ts)
    st = s.status(2.0)
    assert st["muster_points"][0]["count"] == 1 and st["counts"] == {"roster": 1, "mustered": 0, "missing": 1}


def test_end_closes_the_muster_and_a_new_one_can_be_declared(site):
    s = Scene(site)
    s.at(0.0, T1=(20.0, 20.0))
    s.muster.declare(10.0, "sup1", "all", s.m, s.fix_ts)
    rec = s.muster.end(70.0, "sup2")
    assert rec == {"event": "muster_end", "number": 1, "declared_ts_s": 10.0, "declared_by": "sup1", "area": "all",
                   "ended_ts_s": 70.0, "ended_by": "sup2", "duration_s": 60.0}
    assert s.status(71.0) == {"active": False, "engine_ts_s": 71.0}
    assert s.muster.declare(80.0, "sup1", ["Z-CS"], s.m, s.fix_ts)["number"] == 2


@pytest.mark.parametrize("area, user, reason", [
    (["Z-NOPE"], "sup1", "unknown zone 'Z-NOPE'"),
    ("Z-HAZ", "sup1", 'area must be "all" or a non-empty list of zone ids'),
    ([], "sup1", 'area must be "all" or a non-empty list of zone ids'),
    ("all", " ", "declaring an emergency needs a user"),
])
def test_a_bad_declaration_is_refused_with_its_reason(site, area, user, reason):
    s = Scene(site)
    with pytest.raises(MusterRefused, match=reason):
        s.muster.declare(1.0, user, area, s.m, s.fix_ts)
    assert not s.muster.active


def test_declaring_twice_or_ending_nothing_is_refused(site):
    s = Scene(site)
    with pytest.raises(MusterRefused, match="no emergency is declared"):
        s.muster.end(1.0, "sup1")
    s.muster.declare(1.0, "sup1", "all", s.m, s.fix_ts)
    with pytest.raises(MusterRefused, match=r"already declared \(since 1.000 by sup1\)"):
        s.muster.declare(2.0, "sup2", "all", s.m, s.fix_ts)


def test_a_site_without_muster_points_cannot_muster():
    no_points = small_site()
    no_points = no_points.model_copy(update={"zones": [z for z in no_points.zones if z.kind != "muster_point"]})
    s = Scene(no_points)
    with pytest.raises(MusterRefused, match="no muster_point zone"):
        s.muster.declare(1.0, "sup1", "all", s.m, s.fix_ts)
