"""Gas conditions against hand calculations: levels with deadband, STEL and TWA over sliding windows,
oxygen, over-range, bad status and stale detectors."""

from __future__ import annotations

import numpy as np
import pytest

from alarms.definitions import AlarmCatalog
from alarms.gas import EXPOSURE_LIMITS_PPM, GasConditions, SlidingMean, mg_m3_to_ppm


def feed(g, site, det_id, samples, q=0):
    k = [d.id for d in site.gas_detectors].index(det_id)
    out = []
    for t, v in samples:
        out += g.on_values(np.array([k]), np.array([float(v)]), np.array([q], np.uint8), np.array([float(t)]), t)
    return [(d.id, a) for d, a, _ in out]


@pytest.fixture
def g(demo_site):
    return GasConditions(demo_site, AlarmCatalog(demo_site))


def test_lel_levels_with_deadband(g, demo_site):
    # GD07: CH4, low 20, high 40 %LEL, range 100 -> default deadband 2 %LEL
    assert feed(g, demo_site, "GD07", [(0, 19.9)]) == []
    assert feed(g, demo_site, "GD07", [(1, 20.0)]) == [("gas.low:GD07", True)]
    assert feed(g, demo_site, "GD07", [(2, 18.5)]) == []  # inside the deadband: stays
    assert feed(g, demo_site, "GD07", [(3, 17.9)]) == [("gas.low:GD07", False)]
    assert feed(g, demo_site, "GD07", [(4, 45.0)]) == [("gas.low:GD07", True), ("gas.high:GD07", True)]
    assert feed(g, demo_site, "GD07", [(5, 100.0)]) == [("gas.over_range:GD07", True)]


def test_oxygen_deficiency_and_enrichment(g, demo_site):
    assert feed(g, demo_site, "GD17", [(0, 20.9)]) == []
    assert feed(g, demo_site, "GD17", [(1, 19.4)]) == [("gas.o2_low:GD17", True)]
    assert feed(g, demo_site, "GD17", [(2, 24.0)]) == [("gas.o2_low:GD17", False), ("gas.o2_high:GD17", True)]


def test_bad_status_is_a_fault_and_freezes_the_levels(g, demo_site):
    feed(g, demo_site, "GD07", [(0, 25.0)])
    assert feed(g, demo_site, "GD07", [(1, 0.0)], q=2) == [("gas.fault:GD07", True)]  # not a clear of gas.low
    assert g.active["gas.low:GD07"] is True
    assert feed(g, demo_site, "GD07", [(2, 0.0)]) == [("gas.fault:GD07", False), ("gas.low:GD07", False)]


def test_stale_detector_raises_after_three_intervals(g, demo_site):
    feed(g, demo_site, "GD01", [(100.0, 1.0)])
    assert g.on_tick(102.9) == []
    assert [(d.id, a) for d, a, _ in g.on_tick(103.1)] == [("gas.stale:GD01", True)]
    assert ("gas.stale:GD01", False) in feed(g, demo_site, "GD01", [(104.0, 1.0)])


def test_sliding_mean_matches_the_hand_integral():
    m = SlidingMean(window_s=900.0, max_hold_s=3.0)
    for t in range(0, 1200):  # 1 Hz: 0 ppm for 600 s, then 10 ppm
        m.add(float(t), 0.0 if t < 600 else 10.0)
    # window [299, 1199]: 0 ppm over 299..600 (301 s), 10 ppm over 600..1199 (599 s)
    assert m.mean(1199.0) == pytest.approx(10.0 * 599 / 900)
    gap = SlidingMean(window_s=900.0, max_hold_s=3.0)
    gap.add(0.0, 6.0)
    gap.add(100.0, 12.0)  # each sample holds 3 s at most: older than that is no data, not the last value
    assert gap.mean(110.0) == pytest.approx((6 * 3 + 12 * 3) / 6)


def test_co_stel_from_gbz_limit_fires_when_the_15_min_mean_crosses_it(g, demo_site):
    stel, twa = EXPOSURE_LIMITS_PPM["CO"]
    assert stel == pytest.approx(30.0 * 24.04 / 28.01) and twa == pytest.approx(mg_m3_to_ppm(20.0, 28.01))
    # GD05 is CO (ppm): 0 ppm for 10 min, then 30 ppm. The 15-min mean at t (window full) is 30 (t - 600) / 900,
    # above the STEL (25.75 ppm) once t - 600 > 900 * 25.75 / 30 = 772.5 s: first at the sample t = 1373.
    k = [d.id for d in demo_site.gas_detectors].index("GD05")
    fired_at = None
    for t in range(0, 1500):
        v = 0.0 if t < 600 else 30.0
        ch = g.on_values(np.array([k]), np.array([v]), np.array([0], np.uint8), np.array([float(t)]), float(t))
        if any(d.id == "gas.stel:GD05" and a for d, a, _ in ch):
            fired_at = t
            break
    assert fired_at == 600 + int(np.floor(900 * stel / 30.0)) + 1


def _mean_reference(samples, window_s, max_hold_s, now):
    """The plain sum over every sample in the window (what SlidingMean did at every tick before)."""
    t0 = now - window_s
    total = covered = 0.0
    for k, (t, v) in enumerate(samples):
        end = min(samples[k + 1][0] if k + 1 < len(samples) else now, t + max_hold_s)
        a, b = max(t, t0), min(end, now)
        if b > a:
            total += v * (b - a)
            covered += b - a
    return total / covered if covered > 0 else float("nan")


@pytest.mark.parametrize("seed", range(5))
def test_the_running_mean_equals_a_fresh_sum_over_the_window_at_every_tick(seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    window, hold = 60.0, 3.0
    m = SlidingMean(window_s=window, max_hold_s=hold)
    kept: list[tuple[float, float]] = []
    t = now = 0.0
    for _ in range(3000):
        t += float(rng.choice([0.5, 1.0, 1.0, 2.5, 7.0]))  # regular, then gaps longer than the hold
        v = float(rng.uniform(0, 50))
        m.add(t, v)
        kept.append((t, v))
        now = max(now, t + float(rng.uniform(0, 4)))  # engine time never goes back
        want = _mean_reference([s for s in kept if s[0] > now - window - 10.0], window, hold, now)
        got = m.mean(now)
        assert got == pytest.approx(want, rel=1e-9, abs=1e-9) or (np.isnan(got) and np.isnan(want))
    assert len(m.samples) <= window / 0.5 + 2  # bounded by the window
    # a long silence: the window empties of data and the mean says so
    assert np.isnan(m.mean(t + window + hold + 1.0))
