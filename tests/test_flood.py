"""Flood detection: on above 10 alarms in 10 minutes, off below 5, first-out pinned."""

from __future__ import annotations

from alarms.flood import FloodMonitor


def test_eleventh_alarm_within_ten_minutes_starts_the_flood_and_pins_the_first():
    m = FloodMonitor("main")
    changes = [m.activation(100.0 + 10 * k, f"a{k}") for k in range(11)]
    assert changes[:10] == [None] * 10
    c = changes[10]
    assert c.flood and c.count == 11 and c.first_out == "a0" and c.ts_s == 200.0
    assert m.activation(210.0, "a11") is None  # already in flood


def test_ten_alarms_spread_over_more_than_ten_minutes_are_no_flood():
    m = FloodMonitor("main")
    assert all(m.activation(61.0 * k, f"a{k}") is None for k in range(30))
    assert not m.flood


def test_flood_ends_only_below_five_in_the_window():
    m = FloodMonitor("main")
    for k in range(11):
        m.activation(10.0 * k, f"a{k}")  # t = 0 .. 100
    for k in range(6):
        m.activation(500.0 + k, f"b{k}")  # 6 more at t = 500 .. 505
    assert m.tick(650.0) is None  # t=0..50 expired: 4 + 6 = 10 left: still flood (hysteresis)
    assert m.tick(700.9) is None  # only b0..b5 left (6): not below 5
    assert m.tick(1101.0).flood is False  # b0 and b1 expired at 1100, 1101: 4 left
    assert not m.flood and m.first_out is None
