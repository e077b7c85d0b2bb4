"""The key figures tile (console/web/tiles/kpi.py) against hand counts, and the engine's occupancy and alarm
rate that feed it (ingest/engine/core.py ``status``)."""

from __future__ import annotations

import numpy as np

from console.web.tiles import KpiOptions, KpiTile
from ingest.bus import Message
from ingest.engine import Engine, tick_message
from ingest.protocol.records import AlarmRecord, PermitBoard, PermitInfo
from tests.records import EPOCH_S, alarm_record, permit_record

T0 = 1_800_000_000.0


def _figures(cols):
    return {k: (v, n, r) for k, v, n, r in zip(cols["key"], cols["value"], cols["note"], cols["rank"])}


def test_figures_count_people_alarms_and_permits_and_colour_only_what_is_abnormal():
    recs = [
        alarm_record(1, ts_s=EPOCH_S - 600),  # unacknowledged for 10 min: older than the 5 min limit
        alarm_record(2, ts_s=EPOCH_S - 60),
        alarm_record(3, state="active_ack", ts_s=EPOCH_S - 900),  # acknowledged: not counted, not the oldest
        alarm_record(4, state="rtn_unack", ts_s=EPOCH_S - 120),  # cleared but unacknowledged: counted
    ]
    alarms = {r.id: r for r in map(AlarmRecord.from_json, recs)}
    board = PermitBoard(tuple(PermitInfo.from_json(p) for p in (
        permit_record("HW-1", state="active"), permit_record("HW-2", state="active"),
        permit_record("CS-1", state="suspended", board="amber"), permit_record("HW-3", state="requested",
                                                                               board="green"),
    )), EPOCH_S, 1)
    status = {"occupancy": {"on_site": 187, "hazardous": 12, "confined_space": 2, "restricted": 1},
              "alarm_rate_10min": {"main": 4}}
    f = _figures(KpiTile.columns(status, alarms, board, EPOCH_S, "en", KpiOptions()))
    assert f["on_site"] == ("187", "", 0) and f["hazardous"][0] == "12" and f["confined_space"][0] == "2"
    # 4 alarms in 10 minutes: above the EEMUA 191 target of 1, below a flood (10): medium
    assert f["rate"] == ("4", "EEMUA target \u2264 1", 2)
    assert f["unack"] == ("3", "oldest 10 min", 3)
    assert [f[f"permits_{s}"][0] for s in ("active", "suspended", "approved", "requested")] == ["2", "1", "0", "1"]
    calm = _figures(KpiTile.columns({"alarm_rate_10min": {"main": 1}}, {}, None, EPOCH_S, "zh-CN", KpiOptions()))
    assert calm["rate"][2] == 0 and calm["unack"] == ("0", "", 0)
    assert calm["on_site"][0] == "\u2014" and calm["permits_active"][0] == "\u2014"  # not known yet: a dash
    ten = _figures(KpiTile.columns({"alarm_rate_10min": {"main": 10}}, {}, None, EPOCH_S, "en", KpiOptions()))
    flood = _figures(KpiTile.columns({"alarm_rate_10min": {"main": 11}}, {}, None, EPOCH_S, "en", KpiOptions()))
    assert ten["rate"][2] == 2 and flood["rate"][2] == 4  # a flood is more than 10, as the engine judges it
    html = KpiTile.html(KpiTile.columns(status, alarms, board, EPOCH_S, "en", KpiOptions()), "en")
    assert 'data-kpi="rate"' in html and "In confined spaces" in html


def test_engine_counts_located_people_inside_hazardous_and_confined_zones_and_alarms_in_10_minutes(demo_site):
    eng = Engine(demo_site, None)
    eng.apply(1, tick_message(T0))
    zones = {z.id: z for z in demo_site.zones}

    def centre(zid):
        xs, ys = zip(*zones[zid].polygon)
        return (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2

    confined = next(z.id for z in demo_site.zones if z.kind == "confined_space")
    hazardous = next(z.id for z in demo_site.zones if z.kind == "hazardous")
    xy = [centre(confined), centre(hazardous), centre(hazardous), (5.0, 5.0)]
    dwell = demo_site.fences.min_dwell_s  # a person is inside a zone after this long in it
    for k, ts in enumerate((T0, T0 + dwell + 0.5)):
        eng.apply(2 + k, Message("uwb.positions", "uwb", "positions", ts, ts, arrays={
            "person_index": np.arange(4, dtype=np.int32), "xyz_m": np.array([[x, y, 1.2] for x, y in xy]),
            "ts_s": np.full(4, ts), "valid": np.ones(4, bool), "gdop": np.ones(4), "rms_m": np.full(4, 0.1)}))
    occ = eng.status()["occupancy"]
    assert occ["on_site"] == 4 and occ["confined_space"] == 1
    assert occ["hazardous"] >= 2  # the two in the hazardous zone (the confined space may lie inside another)
    # fixes older than engine.fix_stale_s no longer count as on site
    eng.apply(4, tick_message(T0 + dwell + 0.5 + demo_site.engine.fix_stale_s + 5))
    assert eng.status()["occupancy"]["on_site"] == 0
    # every alarm raised so far (people in zones without a permit, then an SOS) counts at the only position,
    # for 10 minutes
    before = eng.book.raised_total
    eng.apply(5, Message("wearable.events", "uwb", "wearable_events", T0 + 20, T0 + 20,
                         meta={"events": [{"tag": "T0033", "ts": T0 + 20, "event": "sos"}]}))
    assert eng.book.raised_total == before + 1
    assert eng.status()["alarm_rate_10min"] == {"main": eng.book.raised_total}
    at_sos = eng.book.raised_total
    eng.apply(6, tick_message(T0 + 20 + 600.5))  # ten minutes on: only what was raised since counts
    assert eng.status()["alarm_rate_10min"] == {"main": eng.book.raised_total - at_sos}
