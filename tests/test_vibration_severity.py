"""ISO 20816-3 zone alarms, the sustained-rise warning and the stale fault, against hand-computed values.

Zone boundaries (RMS velocity, mm/s, 10-1000 Hz) from ISO 20816-3:2022 Tables A.1 / A.2:
group 1 rigid 2.3 / 4.5 / 7.1, flexible 3.5 / 7.1 / 11.0; group 2 rigid 1.4 / 2.8 / 4.5, flexible 2.3 / 4.5 / 7.1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from alarms.vibration import PointThresholds, TrendWindow, VibrationConditions, severity_zone
from config.schema import AlarmRule, VibrationPoint
from config.vibration import (
    ISO_20816_3_ZONES,
    TrendSettings,
    VibrationSettings,
    ZoneBoundaries,
    ZoneOverride,
    ZoneTableRow,
    check_vibration_references,
)

CLASSES = [
    # (group, foundation, A/B, B/C, C/D) as printed in the standard
    ("group1", "rigid", 2.3, 4.5, 7.1),
    ("group1", "flexible", 3.5, 7.1, 11.0),
    ("group2", "rigid", 1.4, 2.8, 4.5),
    ("group2", "flexible", 2.3, 4.5, 7.1),
]
UP, DOWN = math.inf, -math.inf


def _site(demo_site, points=None, alarm_rules=()):
    """The demo site with four points, one of each ISO class (V1..V4 in CLASSES order), 5 s apart expected."""
    if points is None:
        points = [
            VibrationPoint(
                id=f"V{k + 1}",
                machine=f"machine {k + 1}",
                machine_group=g,
                foundation=f,
                position_m=(10.0 * (k + 1), 20.0, 0.5),
                expected_interval_s=5.0,
            )
            for k, (g, f, *_) in enumerate(CLASSES)
        ]
    return demo_site.model_copy(update={"vibration_points": points, "alarm_rules": list(alarm_rules)})


def _ids(changes):
    return [(d.id, active) for d, active, _ in changes]


def _feed(vc, i, values, ts, now=None):
    """Feed point i the values at times ts (one batch); now defaults to the last time."""
    ts = np.asarray(ts, dtype=float)
    return vc.on_features(
        np.full(len(ts), i), np.asarray(values, dtype=float), ts, float(ts[-1]) if now is None else now
    )


# -- the table ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("group, foundation, ab, bc, cd", CLASSES)
def test_default_table_holds_the_iso_20816_3_boundaries(group, foundation, ab, bc, cd):
    row = VibrationSettings().table_row(group, foundation)
    assert (row.ab_mm_s, row.bc_mm_s, row.cd_mm_s) == (ab, bc, cd)
    assert len(ISO_20816_3_ZONES) == 4


@pytest.mark.parametrize("group, foundation, ab, bc, cd", CLASSES)
def test_a_value_on_a_boundary_is_in_the_lower_zone(group, foundation, ab, bc, cd):
    v = np.array(
        [0.0, ab, np.nextafter(ab, UP), bc, np.nextafter(bc, UP), cd, np.nextafter(cd, UP), 50.0, np.nan]
    )
    assert severity_zone(v, ab, bc, cd).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, -1]


@pytest.mark.parametrize("k", range(4))
def test_each_point_gets_the_boundaries_of_its_group_and_foundation_with_a_five_percent_deadband(
    demo_site, k
):
    _, _, ab, bc, cd = CLASSES[k]
    th = VibrationConditions(_site(demo_site), settings=VibrationSettings()).thresholds[k]
    assert (th.ab_mm_s, th.bc_mm_s, th.cd_mm_s) == (ab, bc, cd)
    assert th.bc_clear_mm_s == pytest.approx(0.95 * bc, rel=1e-12)
    assert th.cd_clear_mm_s == pytest.approx(0.95 * cd, rel=1e-12)
    assert th.stale_after_s == 15.0  # 3 x 5 s


# -- zone alarms and their deadband ----------------------------------------------------------------------------
@pytest.mark.parametrize("k", range(4))
def test_zone_c_rises_just_above_the_boundary_and_clears_just_below_boundary_minus_deadband(demo_site, k):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings())
    th = vc.thresholds[k]
    pid = f"V{k + 1}"
    assert _feed(vc, k, [th.bc_mm_s], [1.0]) == []  # on the boundary: still zone B
    assert _ids(_feed(vc, k, [np.nextafter(th.bc_mm_s, UP)], [2.0])) == [(f"vibration.zone_c:{pid}", True)]
    assert _feed(vc, k, [th.bc_mm_s], [3.0]) == []  # inside the deadband: holds
    assert _feed(vc, k, [th.bc_clear_mm_s], [4.0]) == []  # exactly boundary - deadband: holds
    assert _ids(_feed(vc, k, [np.nextafter(th.bc_clear_mm_s, DOWN)], [5.0])) == [
        (f"vibration.zone_c:{pid}", False)
    ]
    assert _feed(vc, k, [th.bc_mm_s], [6.0]) == []  # back on the boundary: no chatter


def test_zone_d_on_group_2_rigid_by_hand(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings())
    i = 2  # V3: group 2, rigid: C/D 4.5 mm/s, clears below 4.5 - 0.225 = 4.275
    assert vc.thresholds[i].cd_clear_mm_s == pytest.approx(4.275)
    got = _ids(_feed(vc, i, [4.6], [1.0]))
    assert got == [("vibration.zone_c:V3", True), ("vibration.zone_d:V3", True)]
    assert _feed(vc, i, [4.3], [2.0]) == []  # inside the deadband of D, still above C
    assert _ids(_feed(vc, i, [4.27], [3.0])) == [("vibration.zone_d:V3", False)]  # zone C stays
    assert vc.zone_c[i] and not vc.zone_d[i] and vc.zone[i] == 2
    assert _ids(_feed(vc, i, [2.0], [4.0])) == [("vibration.zone_c:V3", False)]
    assert vc.status()["zone"][i] == "B"


def test_samples_of_a_batch_are_judged_in_time_order_per_point(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings())
    # V3 (group 2 rigid) jumps into D and back to A within one batch that arrives out of order
    ch = vc.on_features(np.array([2, 2, 0]), np.array([1.0, 5.0, 1.0]), np.array([2.0, 1.0, 1.0]), 2.0)
    assert _ids(ch) == [
        ("vibration.zone_c:V3", True),
        ("vibration.zone_d:V3", True),
        ("vibration.zone_c:V3", False),
        ("vibration.zone_d:V3", False),
    ]


def test_a_late_sample_feeds_no_zone_and_a_repeat_is_ignored(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings())
    _feed(vc, 2, [1.0], [10.0])
    assert _feed(vc, 2, [9.0], [9.0], now=10.0) == []  # older than the newest: zones keep the newer value
    assert vc.counts["late"] == 1 and vc.last_rms_mm_s[2] == 1.0
    _feed(vc, 2, [1.0], [10.0])
    assert vc.counts["duplicate"] == 1
    vc.on_features(np.array([2]), np.array([np.nan]), np.array([11.0]), 11.0)
    assert vc.counts["invalid"] == 1 and vc.last_ts_s[2] == 10.0


def test_an_alarm_rules_deadband_in_mm_s_takes_precedence(demo_site):
    rules = [AlarmRule(condition="vibration.zone_d", deadband=0.3)]
    vc = VibrationConditions(_site(demo_site, alarm_rules=rules), settings=VibrationSettings())
    th = vc.thresholds[2]  # group 2 rigid
    assert th.cd_clear_mm_s == pytest.approx(4.2)  # 4.5 - 0.3
    assert th.bc_clear_mm_s == pytest.approx(2.66)  # zone C keeps 5 %: 2.8 - 0.14


def test_point_overrides_change_boundaries_deadband_and_trend_rate(demo_site):
    s = VibrationSettings(
        deadband_fraction=0.1,
        zone_table=[ZoneTableRow(group="group2", foundation="rigid", ab_mm_s=1.0, bc_mm_s=2.0, cd_mm_s=3.0)],
        overrides=[
            ZoneOverride(point="V3", cd_mm_s=6.0, deadband_fraction=0.0, trend_rate_mm_s_per_day=0.25)
        ],
    )
    vc = VibrationConditions(_site(demo_site), settings=s)
    assert vc.thresholds[2] == PointThresholds(1.0, 2.0, 6.0, 2.0, 6.0, 0.25, 15.0)
    assert vc.thresholds[3].bc_mm_s == 4.5  # group 2 flexible keeps the ISO row
    assert vc.thresholds[0].bc_clear_mm_s == pytest.approx(4.05)  # group 1 rigid, 10 %


def test_bad_vibration_config_is_refused_with_the_reason(demo_site):
    with pytest.raises(ValidationError, match="zone boundaries must rise"):
        ZoneBoundaries(ab_mm_s=2.8, bc_mm_s=1.4, cd_mm_s=4.5)
    with pytest.raises(ValidationError, match="more than one row"):
        VibrationSettings(
            zone_table=[ZoneTableRow(group="group1", foundation="rigid", ab_mm_s=1, bc_mm_s=2, cd_mm_s=3)] * 2
        )
    with pytest.raises(ValidationError, match="min_span_s"):
        TrendSettings(window_s=60.0, min_span_s=120.0)
    site = _site(demo_site)
    bad = VibrationSettings(
        overrides=[ZoneOverride(point="NOPE", cd_mm_s=6.0), ZoneOverride(point="V3", bc_mm_s=5.0)]
    )  # 5.0 > C/D 4.5 once merged
    issues = check_vibration_references(site, bad)
    assert issues[0] == ("vibration.overrides[0].point", "unknown vibration point 'NOPE'")
    assert issues[1][0] == "vibration.overrides[1]" and "must rise" in issues[1][1]
    with pytest.raises(ValueError, match="unknown point"):
        VibrationConditions(site, settings=bad)


def test_definitions_carry_id_condition_priority_source_and_position(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings())
    want = {"zone_c": "medium", "zone_d": "high", "trend": "low", "stale": "low"}
    for kind, prio in want.items():
        d = vc.definition(kind, 1)
        assert (d.id, d.condition, d.priority, d.source) == (
            f"vibration.{kind}:V2",
            f"vibration.{kind}",
            prio,
            "V2",
        )
        assert d.message_en and d.message_zh
    (_, _, pos), *_ = _feed(vc, 1, [8.0], [1.0])
    assert pos == (20.0, 20.0)


# -- trend ---------------------------------------------------------------------------------------------------
def _trend_settings(**kw):
    base = dict(window_s=10.0, buckets=1000, min_samples=5, min_span_s=0.0, rate_mm_s_per_day=12000.0)
    return VibrationSettings(trend=TrendSettings(**(base | kw)))


def test_trend_slope_is_the_least_squares_slope_computed_by_hand(demo_site):
    # t = 100..104 s, y = 1.0 1.2 1.1 1.5 1.6: t_bar 102, y_bar 1.28, S_ty = 0.56 + 0.08 + 0 + 0.22 + 0.64 = 1.5,
    # S_tt = 10, slope 0.15 mm/s per s = 12960 mm/s per day
    vc = VibrationConditions(_site(demo_site), settings=_trend_settings())
    y, t = [1.0, 1.2, 1.1, 1.5], [100.0, 101.0, 102.0, 103.0]
    assert _feed(vc, 0, y, t) == []  # 4 samples: fewer than min_samples
    assert np.isnan(vc.slope_mm_s_per_day[0])
    assert _ids(_feed(vc, 0, [1.6], [104.0])) == [("vibration.trend:V1", True)]
    assert vc.slope_mm_s_per_day[0] == pytest.approx(12960.0, rel=1e-9)
    assert vc.definition("trend", 0).priority == "low"


def test_trend_below_the_rate_does_not_warn(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=_trend_settings(rate_mm_s_per_day=13000.0))
    assert _feed(vc, 0, [1.0, 1.2, 1.1, 1.5, 1.6], [100.0, 101.0, 102.0, 103.0, 104.0]) == []
    assert vc.slope_mm_s_per_day[0] == pytest.approx(12960.0, rel=1e-9)


def test_trend_clears_below_the_clear_fraction_of_the_rate(demo_site):
    # rate 8640 mm/s per day = 0.1 mm/s per s; clears below 0.08 mm/s per s
    vc = VibrationConditions(
        _site(demo_site), settings=_trend_settings(rate_mm_s_per_day=8640.0, window_s=5.0)
    )
    assert _ids(_feed(vc, 0, [1.0, 1.2, 1.1, 1.5, 1.6], [0.0, 1.0, 2.0, 3.0, 4.0])) == [
        ("vibration.trend:V1", True)
    ]
    # window (5 s, buckets of 5 ms) now holds t = 1..5: y 1.2 1.1 1.5 1.6 1.6 -> y_bar 1.4,
    # S_ty = 0.4 + 0.3 + 0 + 0.2 + 0.4 = 1.3, slope 0.13: holds
    assert _feed(vc, 0, [1.6], [5.0]) == []
    assert vc.slope_mm_s_per_day[0] == pytest.approx(0.13 * 86400, rel=1e-9)
    # t = 2..6: y 1.1 1.5 1.6 1.6 1.5 -> y_bar 1.46, S_ty = 0.72 - 0.04 + 0 + 0.14 + 0.08 = 0.9, slope 0.09 >= 0.08
    assert _feed(vc, 0, [1.5], [6.0]) == []
    assert vc.slope_mm_s_per_day[0] == pytest.approx(0.09 * 86400, rel=1e-9)
    # t = 3..7: y 1.5 1.6 1.6 1.5 1.5 -> y_bar 1.54, S_ty = 0.08 - 0.06 + 0 - 0.04 - 0.08 = -0.1, slope -0.01
    assert _ids(_feed(vc, 0, [1.5], [7.0])) == [("vibration.trend:V1", False)]
    assert vc.slope_mm_s_per_day[0] == pytest.approx(-0.01 * 86400, rel=1e-9)


def test_trend_window_slides_old_samples_out(demo_site):
    # window 3 s in 3 buckets of 1 s: at t = 5 it holds t = 3, 4, 5 (y 2, 4, 4): S_ty = 2, S_tt = 2, slope 1
    vc = VibrationConditions(
        _site(demo_site),
        settings=_trend_settings(window_s=3.0, buckets=3, min_samples=3, rate_mm_s_per_day=1e9),
    )
    _feed(vc, 0, [10.0, 0.0, 1.0, 2.0, 4.0, 4.0], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert vc.slope_mm_s_per_day[0] == pytest.approx(86400.0, rel=1e-12)
    assert vc.trend.fit(0)[:2] == (3, 2.0)
    assert not vc.trend.add(0, 2.5, 100.0)  # bucket 2 has left the window


def test_trend_needs_the_minimum_span(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=_trend_settings(min_span_s=5.0))
    assert _feed(vc, 0, [1.0, 1.2, 1.1, 1.5, 1.6], [100.0, 101.0, 102.0, 103.0, 104.0]) == []  # span 4 s
    assert np.isnan(vc.slope_mm_s_per_day[0])
    assert _ids(_feed(vc, 0, [1.7], [105.0])) == [("vibration.trend:V1", True)]


def test_bucketed_window_gives_exactly_the_slope_of_its_samples():
    rng = np.random.default_rng(11)
    w = TrendWindow(2, window_s=600.0, buckets=20)  # 30 s buckets, many samples each
    t = np.sort(rng.uniform(1.7634e9, 1.7634e9 + 2000.0, 800))
    y = 2.0 + 1e-3 * (t - t[0]) + rng.normal(0, 0.05, t.size)
    for k in rng.permutation(t.size):  # any arrival order
        w.add(1, float(t[k]), float(y[k]))
    newest = math.floor(t.max() / 30.0)
    kept = np.floor(t / 30.0) > newest - 20
    n, span, slope = w.fit(1)
    assert n == kept.sum() and span == pytest.approx(np.ptp(t[kept]), abs=1e-6)
    assert slope == pytest.approx(np.polyfit(t[kept] - t[0], y[kept], 1)[0], rel=1e-9)
    n0, _, slope0 = w.fit(0)
    assert n0 == 0 and math.isnan(slope0)
    assert w.n.shape == (2, 20)  # memory is the ring, whatever was added


# -- stale ---------------------------------------------------------------------------------------------------
def test_stale_fault_after_three_expected_intervals_and_cleared_by_a_fresh_value(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings(stale_from_start=True))
    assert vc.on_tick(100.0) == []
    _feed(vc, 0, [1.0], [101.0], now=101.0)
    assert vc.on_tick(115.0) == []  # V2..V4, never heard: 15 s since the first tick is still within 3 x 5 s
    got = _ids(vc.on_tick(115.5))
    assert got == [("vibration.stale:V2", True), ("vibration.stale:V3", True), ("vibration.stale:V4", True)]
    assert vc.on_tick(116.0) == []  # V1: 15 s since its sample, exactly the limit
    assert _ids(vc.on_tick(116.1)) == [("vibration.stale:V1", True)]
    assert vc.definition("stale", 0).priority == "low"
    assert _feed(vc, 0, [1.0], [100.0], now=117.0) == []  # an old sample is no sign of life
    assert _ids(_feed(vc, 0, [1.0], [116.9], now=117.0)) == [("vibration.stale:V1", False)]
    assert vc.on_tick(117.0) == []
    assert vc.stale.tolist() == [False, True, True, True]


def test_stale_limit_follows_stale_factor_and_the_points_interval(demo_site):
    pts = [
        VibrationPoint(
            id="V1", machine="m", machine_group="group2", position_m=(0, 0, 0), expected_interval_s=2.0
        )
    ]
    vc = VibrationConditions(_site(demo_site, points=pts), settings=VibrationSettings(stale_factor=4.0, stale_from_start=True))
    vc.on_tick(0.0)
    assert vc.on_tick(8.0) == [] and _ids(vc.on_tick(8.01)) == [("vibration.stale:V1", True)]


def test_replaying_the_same_inputs_gives_the_same_changes(demo_site):
    def run():
        vc = VibrationConditions(_site(demo_site), settings=_trend_settings(window_s=30.0, buckets=30))
        rng = np.random.default_rng(5)
        out = []
        for step in range(60):
            now = 1000.0 + step
            idx = rng.integers(0, 4, 3)
            out += _ids(vc.on_features(idx, rng.uniform(0.5, 12.0, 3), now - rng.uniform(0, 2, 3), now))
            out += _ids(vc.on_tick(now + 0.5))
        return out, vc.status()

    (a, sa), (b, sb) = run(), run()
    assert a == b and sa == sb and len(a) > 10


def test_simulated_bearing_degradation_raises_zone_c_then_zone_d_on_vp04(demo_site):
    from ingest.simulator.vibration import FS_HZ, VibrationBank
    from kernels.vibration import rms_velocity_mm_s

    bank = VibrationBank(
        demo_site, 1, frozenset({"bearing_degradation"}), {"degradation_start_s": 0.0, "degradation_s": 100.0}
    )
    vc = VibrationConditions(demo_site, settings=VibrationSettings())
    vp04 = [p.id for p in demo_site.vibration_points].index("VP04")
    seen = []
    for t in np.arange(0.0, 101.0, 5.0):
        rms = float(rms_velocity_mm_s(bank.waveform(vp04, float(t)), FS_HZ))
        seen += [
            (float(t), d.id, a)
            for d, a, _ in vc.on_features(np.array([vp04]), np.array([rms]), np.array([t]), float(t))
        ]
    assert [(i, a) for _, i, a in seen] == [("vibration.zone_c:VP04", True), ("vibration.zone_d:VP04", True)]
    assert seen[0][0] < seen[1][0]


def test_points_never_heard_stay_quiet_when_stale_from_start_is_off(demo_site):
    vc = VibrationConditions(_site(demo_site), settings=VibrationSettings(stale_from_start=False))
    vc.on_tick(0.0)
    _feed(vc, 0, [1.0], [1.0], now=1.0)
    assert _ids(vc.on_tick(100.0)) == [("vibration.stale:V1", True)]
