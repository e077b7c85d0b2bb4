"""Who was in which zone when: visits from the fences' entry and exit events, asked by zone and period; old visits
forgotten within bounds, and the answer says from when it is complete."""

from __future__ import annotations

import math

import pytest

from alarms.zones import FenceEvent
from ingest.engine.presence import MAX_ROWS, ZonePresence


def _ev(kind: str, person: int, zone: int, ts: float) -> FenceEvent:
    return FenceEvent(kind, person, zone, ts, 0.0, 0.0)


def test_visits_answer_who_is_in_a_zone_now_and_who_was_there_in_a_period(demo_site):
    zp = ZonePresence(demo_site)
    z = demo_site.zones[3].id
    zp.on_fence_events([_ev("region_entry", 5, 3, 100.0), _ev("region_entry", 6, 3, 150.0),
                        _ev("region_entry", 7, 4, 120.0)], 150.0)
    zp.on_fence_events([_ev("region_exit", 5, 3, 200.0)], 200.0)
    zp.on_fence_events([_ev("region_entry", 5, 3, 300.0)], 300.0)

    def who(t1: float, t2: float) -> list[tuple[str, float, float | None]]:
        return [(v["person"], v["enter_ts_s"], v["exit_ts_s"]) for v in zp.query(z, t1, t2, 400.0)["visits"]]

    p5, p6 = demo_site.people[5].id, demo_site.people[6].id
    assert who(400.0, 400.0) == [(p5, 300.0, None), (p6, 150.0, None)]  # now: both inside, newest entry first
    assert who(210.0, 290.0) == [(p6, 150.0, None)]  # 5 was out between 200 and 300
    assert who(0.0, 120.0) == [(p5, 100.0, 200.0)]  # 6 came at 150
    assert who(200.0, 200.0) == [(p6, 150.0, None), (p5, 100.0, 200.0)]  # an exit at t still counts at t
    row = zp.query(z, 0.0, 1000.0, 400.0)
    assert row["n"] == 3 and not row["truncated"] and row["complete"] and row["history_from_ts_s"] is None
    assert row["visits"][0]["name"] == demo_site.people[5].name and row["visits"][0]["tag"] == demo_site.people[5].tag


def test_bad_questions_are_refused_with_the_reason(demo_site):
    zp = ZonePresence(demo_site)
    with pytest.raises(ValueError, match="unknown zone 'nowhere'"):
        zp.query("nowhere", 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="ends before it begins"):
        zp.query(demo_site.zones[0].id, 2.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        zp.query(demo_site.zones[0].id, math.nan, 1.0, 1.0)


def test_old_visits_are_forgotten_by_age_and_by_count_and_the_answer_says_from_when_it_is_complete(demo_site):
    zp = ZonePresence(demo_site, keep_s=1000.0, max_visits=2000)
    assert zp._compact_at == 1024
    # 1100 closed visits of person 1 in zone 0, one a second, each 0.5 s long, and person 2 inside since t=0
    zp.on_fence_events([_ev("region_entry", 2, 0, 0.0)], 0.0)
    for k in range(1100):
        zp.on_fence_events([_ev("region_entry", 1, 0, 10.0 + k), _ev("region_exit", 1, 0, 10.5 + k)], 10.5 + k)
    # compacted once at 1024 visits (t = 1032.5): those that ended before 32.5 were forgotten (10.5 .. 31.5: 22)
    assert zp.forgotten == 22 and zp.history_from_ts_s == pytest.approx(32.5)
    assert zp.total == 1101 - 22
    ans = zp.query(demo_site.zones[0].id, 0.0, 2000.0, 2000.0)
    assert not ans["complete"] and ans["history_from_ts_s"] == pytest.approx(32.5)
    assert ans["n"] == 1101 - 22 and len(ans["visits"]) == MAX_ROWS and ans["truncated"]
    assert ans["visits"][-1]["person"] != demo_site.people[2].id  # newest first: the open visit is the oldest
    assert zp.query(demo_site.zones[0].id, 40.0, 40.0, 2000.0)["complete"]
    # the open visit outlives every cut
    assert (2, 0) in zp.open and zp.query(demo_site.zones[0].id, 5000.0, 5000.0, 5000.0)["n"] == 1


def test_beyond_the_count_bound_the_visits_that_ended_first_go(demo_site):
    zp = ZonePresence(demo_site, keep_s=1e9, max_visits=1500)
    for k in range(2250):  # compaction at 1024, then at 1024 + 750 = 1774 ... bounded by 1.5 x max_visits
        zp.on_fence_events([_ev("region_entry", 1, 0, float(k)), _ev("region_exit", 1, 0, k + 0.5)], k + 0.5)
        assert zp.total <= 1.5 * 1500
    assert zp.forgotten > 0
    ans = zp.query(demo_site.zones[0].id, 0.0, 1e6, 1e6)
    # the first visit kept ended at or after the cut; every earlier one is gone
    first_kept = min(v["exit_ts_s"] for v in zp.query(demo_site.zones[0].id, 0.0, 1e6, 1e6)["visits"][-1:])
    assert first_kept >= zp.history_from_ts_s and ans["n"] == zp.total
