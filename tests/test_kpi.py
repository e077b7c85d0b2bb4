"""Alarm KPIs from a journal, checked against hand counts."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from alarms.journal import Journal
from alarms.kpi import compute_kpis, read_journal_events
from console.cli import main as cli

T0 = 1_800_000_000.0  # a 10-minute boundary is not needed: intervals align to the window start


def ev(t, event, alarm, **detail):
    return (t, event, alarm, json.dumps(detail, sort_keys=True))


def shift():
    e = []
    # interval 0 (T0 .. T0+600): 12 activations -> flood; gas.high chatters (3 within 60 s)
    for k in range(9):
        e.append(ev(T0 + 10 + k, "activate", f"zone.restricted:Z:{k}", priority="high"))
    for t in (100, 120, 150):
        e.append(ev(T0 + t, "activate", "gas.high:GD07", priority="critical"))
        e.append(ev(T0 + t + 5, "clear", "gas.high:GD07"))
    e.append(ev(T0 + 200, "acknowledge", "gas.high:GD07", after_s=10.0, comment=""))
    e.append(ev(T0 + 201, "acknowledge", "zone.restricted:Z:0", after_s=30.0, comment=""))
    e.append(ev(T0 + 202, "acknowledge", "zone.restricted:Z:1", after_s=50.0, comment=""))
    # interval 1: 2 activations (one a re-alarm), a shelve, an out-of-service, a refusal
    e.append(ev(T0 + 700, "activate", "vib.zone_c:VP04", priority="medium"))
    e.append(ev(T0 + 800, "re_alarm", "zone.restricted:Z:0"))
    e.append(ev(T0 + 810, "shelve", "vib.zone_c:VP04", reason="known", duration_s=600))
    e.append(ev(T0 + 820, "out_of_service", "zone.restricted:Z:2", reason="maintenance"))
    e.append(ev(T0 + 830, "refused", "x", action="shelve", reason="role operator may not shelve"))
    # interval 2: quiet
    e.append(ev(T0 + 1790, "comment", "x", text="end of shift"))
    return e


def test_rates_flood_priority_and_top10_against_hand_counts():
    k = compute_kpis(shift(), T0, T0 + 1800)
    assert k.intervals == 3 and k.activations == 14
    assert k.rate_avg_per_10min == pytest.approx(14 / 3)
    assert k.rate_peak_per_10min == 12
    assert k.flood_intervals_pct == pytest.approx(100 / 3)
    assert k.priority == {"critical": 3, "high": 9, "medium": 1}  # the re-alarm row carries no priority
    assert k.top10[0] == ("gas.high:GD07", 3) and ("zone.restricted:Z:0", 2) in k.top10
    assert k.chattering == ["gas.high:GD07"]
    assert (k.shelved, k.out_of_service, k.refused) == (1, 1, 1)


def test_time_to_acknowledge_median_and_p95():
    k = compute_kpis(shift(), T0, T0 + 1800)
    assert k.ack_count == 3 and k.ack_median_s == 30.0
    assert k.ack_p95_s == pytest.approx(10 + 0.95 * 2 * 20)  # linear interpolation of [10, 30, 50]


def test_two_operator_positions_halve_the_rate_and_end_the_flood():
    k = compute_kpis(shift(), T0, T0 + 1800, operator_positions=2)
    assert k.rate_peak_per_10min == 6 and k.flood_intervals_pct == 0.0


def test_window_selects_rows_and_standing_alarms_span_the_window():
    events = [ev(T0, "activate", "gas.low:GD01", priority="high"),
              ev(T0 + 30 * 3600, "activate", "gas.low:GD02", priority="high"),
              ev(T0 + 30 * 3600 + 60, "clear", "gas.low:GD02")]
    k = compute_kpis(events, T0 + 25 * 3600, T0 + 31 * 3600)
    assert k.activations == 1  # only GD02 activated inside the window
    assert k.standing == ["gas.low:GD01"]  # active since before the window, for > 24 h


def _journal_of_the_shift(tmp_path):
    """A real, chained journal holding :func:`shift`'s rows."""
    path = tmp_path / "journal.sqlite"
    j = Journal(path)
    for i, (t, event, alarm, detail) in enumerate(shift(), start=1):
        j.append(input_seq=i, engine_ts_s=t, event=event, alarm_id=alarm, state="x", detail=json.loads(detail))
        j.commit()
    j.close()
    return path


def test_kpi_command_reads_a_real_journal_and_refuses_a_tampered_one(tmp_path, capsys):
    path = _journal_of_the_shift(tmp_path)
    assert len(read_journal_events(path)) == len(shift())
    assert cli(["kpi", str(path), "--from", str(T0), "--to", "2027-01-15T08:30:00"]) == 0
    out = capsys.readouterr().out
    assert "10-min intervals in flood (>10)" in out and "chattering alarms (>=3 in 60 s): 1: gas.high:GD07" in out
    assert cli(["kpi", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["activations"] == 14

    import sqlite3

    db = sqlite3.connect(path)
    db.execute("UPDATE journal SET event = 'clear' WHERE row = 3")
    db.commit()
    db.close()
    assert cli(["kpi", str(path)]) == 1
    assert "NOT intact" in capsys.readouterr().err


def test_kpi_times_are_read_and_printed_in_the_site_time_zone(tmp_path, capsys):
    path = _journal_of_the_shift(tmp_path)
    assert cli(["kpi", str(path), "--json"]) == 0
    whole = json.loads(capsys.readouterr().out)
    # the same window given as Shanghai wall-clock times (UTC+8) and printed in Shanghai time
    start = datetime.fromtimestamp(whole["from_ts_s"], tz=ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert cli(["kpi", str(path), "--tz", "Asia/Shanghai", "--from", start.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["from_ts_s"] == whole["from_ts_s"]
    assert cli(["kpi", str(path), "--tz", "Asia/Shanghai"]) == 0
    out = capsys.readouterr().out
    assert f"window: {start.isoformat()}+08:00" in out and "Asia/Shanghai" in out
    assert cli(["kpi", str(path), "--tz", "Mars/Olympus"]) == 2
