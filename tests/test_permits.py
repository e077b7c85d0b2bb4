"""Permits-to-work through the engine: the stories the console exists to stop, each an alarm with its timing,
and each refusal with its reason."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from alarms.journal import Journal, verify_journal
from ingest.bus import Message
from ingest.engine import Engine, tick_message

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()
HW1 = (140.0, 160.0)  # the middle of Z-HW1 (x 132..148, y 150..170), a hazardous zone
#: a job safety analysis (grade 1 hot work and confined-space entry need one before approval)
JSA = {"hazards": ["sparks near a drain"], "measures": ["drain covered, fire blanket"], "prepared_by": "op1",
       "reviewed_by": "safety1"}


class Rig:
    def __init__(self, site, path):
        self.site = site
        self.journal = Journal(path)
        self.engine = Engine(site, self.journal)
        self.seq = 0
        self.tags = [p.tag for p in site.people]
        self.now = T0
        self.stationary = {}

    def apply(self, msg):
        self.seq += 1
        return self.engine.apply(self.seq, msg)

    def tick(self, t):
        self.now = t
        return self.apply(tick_message(t))

    def at(self, t, **where):
        """Fixes for tags (tag=(x, y)), twice 2.1 s apart so the fences' dwell is met, then a tick at t."""
        out = []
        for dt in (-2.1, 0.0):
            idx = np.array([self.tags.index(k) for k in where], np.int32)
            xyz = np.array([[x, y, 1.2] for x, y in where.values()])
            st = np.array([self.stationary.get(k, np.nan) for k in where])
            n = len(idx)
            out.append(self.apply(Message("uwb.positions", "uwb", "positions", t + dt, t + dt, arrays={
                "person_index": idx, "xyz_m": xyz, "ts_s": np.full(n, t + dt), "valid": np.ones(n, bool),
                "gdop": np.ones(n), "rms_m": np.full(n, 0.1), "stationary_s": st})))
        out.append(self.tick(t))
        return [a for o in out for a in o.alarms]

    def cmd(self, op, user="sup1", **req):
        m = Message("command", "console", "command", self.now, self.now, meta={"id": str(self.seq), "op": op,
                                                                                "user": user, **req})
        return self.apply(m)

    def request(self, pid="P1", type="hot_work", grade="1", zone="Z-HW1", workers=("T0101", "T0102"),
                watcher="T0187", hours=8.0, user="op1", jsa=JSA, **kw):
        return self.cmd("permit_request", user=user, permit=pid, type=type, grade=grade, zone=zone,
                        workers=list(workers), watcher=watcher, valid_from_s=T0 - 60, valid_to_s=T0 + hours * 3600,
                        jsa=jsa, **kw).reply

    def ready(self, pid="P1", **kw):
        assert self.request(pid, **kw)["ok"]
        assert self.cmd("permit_gas_test", permit=pid, user="op1", values={"LEL": 1.0, "O2": 20.9}).reply["ok"]
        assert self.cmd("permit_approve", permit=pid).reply["ok"]
        self.at(self.now, T0187=(150.0, 160.0))  # the watcher is at the work, 2 m from the zone
        assert self.cmd("permit_signin", user="P0187", permit=pid).reply["ok"]  # and signs in there
        r = self.cmd("permit_activate", permit=pid).reply
        assert r == {"id": r["id"], "ok": True, "permit": pid, "state": "active"}, r

    def alarms(self, prefix):
        return {k: a.state for k, a in self.engine.book.alarms.items() if k.startswith(prefix)}

    def permit(self, pid="P1"):
        return self.engine.permits.permits[pid]


@pytest.fixture
def rig(demo_site, tmp_path):
    r = Rig(demo_site, tmp_path / "journal.sqlite")
    r.tick(T0)
    yield r
    r.journal.close()
    assert verify_journal(tmp_path / "journal.sqlite").ok


def test_the_welder_with_an_expired_certificate_is_refused_and_alarmed(rig):
    assert rig.request(workers=("T0042",))["ok"]
    rig.cmd("permit_gas_test", permit="P1", user="op1", values={"LEL": 0.0, "O2": 20.9})
    assert rig.cmd("permit_approve", permit="P1").reply["ok"]
    out = rig.cmd("permit_activate", permit="P1")
    assert out.reply["ok"] is False
    assert out.reply["reason"] == "T0042 (Zhang Hui): certificate expired on 2026-10-31 for hot_work"
    assert [a["id"] for a in out.alarms] == ["permit.certificate:P1:T0042"] * 2  # raised, then waits for ack
    assert out.alarms[-1]["state"] == "rtn_unack" and rig.permit().state == "approved"


def test_incompatible_permits_overlapping_in_space_and_time_are_refused_at_approval(rig):
    rig.ready("P1")
    assert rig.request("P2", workers=("T0045",), type="confined_space", grade=None, watcher="T0188")["ok"]
    out = rig.cmd("permit_approve", permit="P2")
    assert out.reply["reason"] == "incompatible with permit P1 (hot_work) overlapping in space and time"
    assert rig.alarms("permit.conflict") == {"permit.conflict:P2:P1": "rtn_unack"}
    # the same work later in the day does not overlap in time
    assert rig.cmd("permit_request", user="op1", permit="P3", type="working_at_height", grade="II", zone="Z-HW1",
                   workers=["T0044"], valid_from_s=T0, valid_to_s=T0 + 3600).reply["ok"]
    assert rig.cmd("permit_approve", permit="P3").reply["ok"]  # height work is compatible with hot work


def test_watcher_walking_away_raises_and_suspends_then_resume_needs_him_back(rig):
    rig.ready()
    crew = {"T0101": HW1, "T0102": (141.0, 161.0)}
    assert rig.at(T0 + 10, T0187=(150.0, 160.0), **crew) == []  # watcher 2 m from the zone
    out = rig.at(T0 + 20, T0187=(200.0, 160.0), **crew)  # 52 m from the zone's east edge
    assert [a["id"] for a in out] == ["permit.watcher_away:P1"]
    assert rig.permit().state == "suspended" and "watcher T0187 is 52 m away" in rig.permit().reason
    assert rig.cmd("permit_resume", permit="P1").reply["reason"].startswith("still abnormal: Watcher T0187")
    rig.at(T0 + 40, T0187=(150.0, 160.0), **crew)
    assert rig.alarms("permit.watcher_away") == {"permit.watcher_away:P1": "rtn_unack"}
    assert rig.cmd("permit_resume", permit="P1").reply["ok"] and rig.permit().state == "active"


def test_watcher_standing_still_for_five_minutes_fires_within_the_tick(rig):
    rig.ready()
    crew = {"T0101": HW1, "T0102": (141.0, 161.0)}
    rig.stationary["T0187"] = 0.0  # the watcher stops at T0 + 10
    rig.at(T0 + 10, T0187=(150.0, 160.0), **crew)
    rig.stationary["T0187"] = 250.0
    rig.at(T0 + 260, T0187=(150.0, 160.0), **crew)
    assert rig.tick(T0 + 309.9).alarms == []  # 299.9 s still
    out = rig.tick(T0 + 310.1)  # 300.1 s: past the 300 s limit, at the first tick after it
    assert [a["id"] for a in out.alarms] == ["permit.watcher_stationary:P1"]
    assert rig.permit().state == "suspended"


def test_person_not_on_the_permit_inside_its_zone_and_worker_outside(rig):
    rig.ready()
    rig.at(T0 + 10, T0187=(150.0, 160.0), T0101=HW1, T0102=(141.0, 161.0))
    out = rig.at(T0 + 20, T0050=(138.0, 155.0), T0187=(150.0, 160.0), T0101=HW1, T0102=(141.0, 161.0))
    assert [a["id"] for a in out] == ["permit.unauthorized:P1:T0050"]
    assert "zone.no_permit:Z-HW1:T0050" not in rig.engine.book.alarms  # the permit's check says it once
    rig.at(T0 + 30, T0187=(150.0, 160.0), T0101=HW1, T0102=(100.0, 100.0), T0050=(100.0, 90.0))
    assert rig.alarms("permit.worker_outside") == {}  # within the 120 s grace
    out = rig.at(T0 + 30 + 121, T0187=(150.0, 160.0), T0101=HW1, T0102=(100.0, 100.0))
    assert "permit.worker_outside:P1:T0102" in [a["id"] for a in out]


def test_gas_test_too_old_suspends_and_entry_without_permit_alarms(rig):
    rig.ready()
    rig.tick(T0 + 7200.5)  # gas test at T0, valid 2 h
    assert rig.permit().state == "suspended" and "the gas test is 120 min old" in rig.permit().reason
    assert rig.cmd("permit_resume", permit="P1").reply["reason"] == "the gas test is 120 min old (valid 120 min)"
    assert rig.cmd("permit_close", permit="P1").reply["ok"]
    out = rig.at(T0 + 7300, T0050=HW1)  # no live permit on Z-HW1 now: a plain entry without permit
    assert [a["id"] for a in out] == ["zone.no_permit:Z-HW1:T0050"]


def test_gas_detector_in_the_permit_zone_at_alarm_level_suspends(rig):
    poly = [[205.0, 140.0], [225.0, 140.0], [225.0, 160.0], [205.0, 160.0]]  # around GD07 (215, 150)
    assert rig.cmd("permit_request", user="op1", permit="P9", type="blind_plate", polygon=poly, workers=["T0187"],
                   valid_from_s=T0 - 60, valid_to_s=T0 + 3600).reply["ok"]
    rig.cmd("permit_approve", permit="P9")
    assert rig.cmd("permit_activate", permit="P9").reply["ok"]
    gd07 = [d.id for d in rig.site.gas_detectors].index("GD07")
    rig.apply(Message("gas.values", "gas", "gas_values", T0 + 5, T0 + 5, arrays={
        "detector_index": np.array([gd07], np.int32), "value": np.array([25.0]), "quality": np.array([0], np.uint8),
        "ts_s": np.array([T0 + 5])}))
    out = rig.tick(T0 + 5.1)
    assert "permit.gas_detector:P9:GD07" in [a["id"] for a in out.alarms]
    assert rig.permit("P9").state == "suspended" and "gas detector GD07 at alarm level 1" in rig.permit("P9").reason


def test_expired_permit_with_people_inside_alarms_until_they_leave(rig):
    rig.ready(hours=0.1)  # ends at T0 + 360
    rig.at(T0 + 300, T0187=(150.0, 160.0), T0101=HW1, T0102=(141.0, 161.0))
    out = rig.tick(T0 + 360.05)
    assert rig.permit().state == "expired"
    assert "permit.expired_occupied:P1" in [a["id"] for a in out.alarms]
    rig.at(T0 + 400, T0101=(100.0, 100.0), T0102=(100.0, 101.0), T0187=(100.0, 102.0))
    assert rig.alarms("permit.expired_occupied") == {"permit.expired_occupied:P1": "rtn_unack"}


def test_refusals_name_their_reason(rig):
    assert rig.request(workers=("T9999",))["reason"] == "unknown tag(s) T9999"
    assert rig.request(grade="9")["reason"] == "hot_work needs a grade, one of special, 1, 2"
    assert rig.request(watcher=None)["reason"] == "hot_work needs a watcher"
    assert rig.request(zone="Z-NOPE")["reason"] == "unknown zone 'Z-NOPE'"
    assert rig.request(type="dancing")["reason"].startswith("unknown permit type 'dancing'")
    assert rig.request()["ok"]
    assert rig.cmd("permit_approve", user="op1", permit="P1").reply["reason"] == "role operator may not approve permits"
    assert rig.cmd("permit_activate", permit="P1").reply["reason"] == \
        "permit is requested: only an approved permit is activated"
    rig.cmd("permit_approve", permit="P1")
    assert rig.cmd("permit_activate", permit="P1").reply["reason"] == "hot_work needs a gas test"
    rig.cmd("permit_gas_test", permit="P1", user="op1", values={"LEL": 0, "O2": 20.9})
    assert rig.cmd("permit_activate", permit="P1").reply["reason"] == \
        "watcher T0187 is not located: the watcher must be at the work"
    rig.at(T0 + 1, T0187=(80.0, 160.0))
    assert rig.cmd("permit_activate", permit="P1").reply["reason"] == \
        "watcher T0187 is 52 m from the work (at most 50)"
    bad = rig.cmd("permit_gas_test", permit="P1", user="op1", values={"LEL": 25, "O2": 18.0}).reply
    assert bad["reason"] == "gas test failed: LEL 25.0 % > 10.0 %; O2 18.0 % outside 19.5-23.5 %"


def test_a_permit_on_a_restricted_zone_suppresses_its_alarm_by_design(rig):
    # T0041 holds a temporary-electricity certificate but is not on the substation's list
    rig.at(T0 + 5, T0041=(145.0, 70.0))
    assert rig.alarms("zone.restricted") == {"zone.restricted:Z-SUB:T0041": "active_unack"}
    assert rig.cmd("permit_request", user="op1", permit="E1", type="temporary_electricity", zone="Z-SUB",
                   workers=["T0041"],
                   valid_from_s=T0, valid_to_s=T0 + 3600).reply["ok"]
    rig.cmd("permit_approve", permit="E1")
    assert rig.cmd("permit_activate", permit="E1").reply["ok"]
    rig.tick(T0 + 10)
    assert rig.alarms("zone.restricted") == {"zone.restricted:Z-SUB:T0041": "suppressed"}
    rig.cmd("permit_close", permit="E1")
    rig.tick(T0 + 11)  # the permit is over: still inside, the alarm is back in front of people
    assert rig.alarms("zone.restricted") == {"zone.restricted:Z-SUB:T0041": "active_unack"}


def test_a_permit_planned_in_the_site_file_starts_requested(demo_site, tmp_path):
    from config.schema import PlannedPermit

    planned = PlannedPermit(id="HW-9", type="hot_work", grade="1", zone="Z-HW1", workers=["T0101"], watcher="T0187",
                            valid_from=datetime(2026, 11, 22, 8, 0), valid_to=datetime(2026, 11, 22, 16, 0),
                            applicant="op1")
    r = Rig(demo_site.model_copy(update={"permits": [planned]}), tmp_path / "j2.sqlite")
    r.tick(T0)
    p = r.permit("HW-9")
    assert p.state == "requested" and p.valid_from_s == T0 - 3600  # 08:00 Asia/Shanghai, the site's zone
    assert r.cmd("permit_gas_test", permit="HW-9", user="op1", values={"LEL": 0, "O2": 20.9}).reply["ok"]
    assert r.cmd("permit_jsa", user="op1", permit="HW-9", jsa=JSA).reply["ok"]
    assert r.cmd("permit_approve", permit="HW-9").reply["ok"]
    r.at(T0 + 1, T0187=(150.0, 160.0))
    assert r.cmd("permit_signin", user="P0187", permit="HW-9").reply["ok"]
    assert r.cmd("permit_activate", permit="HW-9").reply["state"] == "active"
    r.journal.close()


def test_a_watched_confined_space_entrant_is_not_a_lone_worker(rig):
    assert rig.cmd("permit_request", user="op1", permit="CS-1", type="confined_space", zone="Z-V205",
                   workers=["T0185"], watcher="T0186", valid_from_s=T0 - 60, valid_to_s=T0 + 3600, jsa=JSA).reply["ok"]
    rig.cmd("permit_gas_test", permit="CS-1", user="op1", values={"LEL": 0, "O2": 20.9})
    rig.cmd("permit_approve", permit="CS-1")
    rig.at(T0 + 1, T0186=(266.0, 155.0))  # the watcher at the opening, outside the vessel
    assert rig.cmd("permit_signin", user="P0186", permit="CS-1").reply["ok"]
    assert rig.cmd("permit_activate", permit="CS-1").reply["ok"]
    rig.at(T0 + 5, T0185=(260.0, 155.0), T0186=(266.0, 155.0))
    rig.at(T0 + 200, T0185=(260.0, 155.0), T0186=(266.0, 155.5))  # alone inside for > 120 s
    assert rig.alarms("person.lone_worker") == {"person.lone_worker:Z-V205:T0185": "suppressed"}
    rig.cmd("permit_close", permit="CS-1")
    rig.tick(T0 + 201)  # no permit, no watcher: now a lone worker in front of people
    assert rig.alarms("person.lone_worker") == {"person.lone_worker:Z-V205:T0185": "active_unack"}
