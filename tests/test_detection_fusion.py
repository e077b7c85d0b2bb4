"""Camera detections fused with tags, on hand-built scenes: a person with no fresh tag within the gate raises
camera.untagged_person:<camera> after min_frames (not before the positioning has been live for
untagged_grace_s) and clears hold_s after the last sighting; tags are matched one
to one; PPE findings attach to the tag of their person; supervisors confirm or reject pending detections (others
are refused with the reason), a reject clears the alarm for the rest of that sighting; the false-positive rate per
camera and class is rejected / (confirmed + rejected); the pending list is bounded; the same inputs give the same
outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from alarms.detections import DetectionFusion
from alarms.journal import Journal, verify_journal
from alarms.lifecycle import AlarmBook, Refused
from config import parse_site
from config.cameras import DetectionFusionSettings

PERSON, NO_HELMET, NO_VEST, NO_HARNESS = range(4)
NAN = math.nan


@pytest.fixture(scope="module")
def site():
    return parse_site({
        "id": "yard", "name": {"en": "Yard", "zh-CN": "场地"}, "origin": {"lat_deg": 31.0, "lon_deg": 121.0},
        "floor_plan": {"extent_m": [0, 0, 100, 100]},
        "anchors": [{"id": "A1", "position_m": [0, 0, 5]}, {"id": "A2", "position_m": [100, 0, 5]},
                    {"id": "A3", "position_m": [0, 100, 5]}],
        "cameras": [
            {"id": "CAM1", "name": "Gate", "position_m": [0, 0, 6],
             "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]},
            {"id": "CAM2", "position_m": [50, 0, 6], "homography": [[0.01, 0, 0], [0, 0.01, 0], [0, 0, 1]]}],
        "people": [{"id": f"P{i}", "name": f"Worker {i}", "tag": f"T{i}", "role": "worker"} for i in range(1, 5)],
    })


class Scene:
    """Tag fixes (T1..T4) and a fusion under test; ``frame`` feeds one camera frame of detections. The start-up
    grace is off unless a test sets ``untagged_grace_s`` (its own tests below)."""

    def __init__(self, site, **settings) -> None:
        settings.setdefault("untagged_grace_s", 0.0)
        self.fusion = DetectionFusion(site, settings=DetectionFusionSettings(**settings))
        self.xyz = np.full((4, 3), NAN)
        self.fix_ts = np.full(4, NAN)

    def tag(self, k: int, x: float, y: float, ts: float) -> None:
        self.xyz[k - 1] = (x, y, 1.2)
        self.fix_ts[k - 1] = ts

    def frame(self, camera: int, ts: float, dets: list[tuple[int, float, float]], conf: float = 0.9,
              now: float | None = None):
        arrays = {"camera_index": np.full(len(dets), camera, np.int32),
                  "class_id": np.array([d[0] for d in dets], np.uint8), "confidence": np.full(len(dets), conf),
                  "xy_m": np.array([d[1:] for d in dets], float).reshape(-1, 2), "ts_s": np.full(len(dets), ts)}
        return self.fusion.on_detections(arrays, self.xyz, self.fix_ts, ts if now is None else now)


def ids(changes) -> list[tuple[str, bool]]:
    return [(d.id, active) for d, active, _ in changes]


def test_a_person_with_no_tag_in_the_gate_raises_untagged_after_two_frames(site):
    s = Scene(site)
    s.tag(1, 20, 20, 100.0)
    # 0.5 m from T1: that is T1; the one at (40, 40) has no tag within 2 m
    assert s.frame(0, 100.0, [(PERSON, 20.5, 20), (PERSON, 40, 40)]) == []
    s.tag(1, 20, 20, 101.0)
    changes = s.frame(0, 101.0, [(PERSON, 20.5, 20), (PERSON, 40, 40)])
    assert ids(changes) == [("camera.untagged_person:CAM1", True)]
    d, _, pos = changes[0]
    assert pos == (40.0, 40.0) and d.priority == "medium" and d.condition == "camera.untagged_person"
    assert d.source == "CAM1" and "CAM1 (Gate)" in d.message_en
    (rec,) = s.fusion.pending_detections()
    assert (rec["id"], rec["status"], rec["class"], rec["camera"], rec["tag"], rec["frames"]) == (
        "D1", "pending", "person", "CAM1", None, 2)
    # a third frame updates the detection, raises nothing new
    assert s.frame(0, 102.0, [(PERSON, 40.2, 40)]) == []
    assert s.fusion.pending_detections()[0]["frames"] == 3


def test_the_gate_and_the_fix_age_decide_who_is_tagged(site):
    s = Scene(site, min_frames=1)
    s.tag(1, 20, 20, 100.0)
    assert s.frame(0, 100.0, [(PERSON, 21.99, 20)]) == []  # 1.99 m: inside the 2 m gate
    s2 = Scene(site, min_frames=1)
    s2.tag(1, 20, 20, 100.0)
    assert ids(s2.frame(0, 100.0, [(PERSON, 22.01, 20)])) == [("camera.untagged_person:CAM1", True)]
    s3 = Scene(site, min_frames=1)
    s3.tag(1, 20, 20, 97.9)  # 2.1 s before the frame: older than max_fix_age_s = 2
    assert ids(s3.frame(0, 100.0, [(PERSON, 20, 20)])) == [("camera.untagged_person:CAM1", True)]


def test_one_tag_accounts_for_one_person_only(site):
    s = Scene(site, min_frames=1)
    s.tag(1, 20, 20, 100.0)
    # both within 2 m of T1; the nearer (0.3 m) is T1, the other (1.5 m) is somebody without a tag
    changes = s.frame(0, 100.0, [(PERSON, 21.5, 20), (PERSON, 20.3, 20)])
    assert ids(changes) == [("camera.untagged_person:CAM1", True)] and changes[0][2] == (21.5, 20.0)
    s.tag(2, 21.6, 20, 100.0)  # a second tag next to the second person: nobody is untagged
    s2 = Scene(site, min_frames=1)
    s2.xyz, s2.fix_ts = s.xyz, s.fix_ts
    assert s2.frame(0, 100.0, [(PERSON, 21.5, 20), (PERSON, 20.3, 20)]) == []


def test_no_untagged_person_until_the_positioning_has_been_live_for_the_grace(site):
    """untagged_grace_s 10: the first fix reaches the engine at 100; a person with no tag raises nothing before
    110 (frames in the grace do not count towards min_frames either), then after two frames as usual."""
    s = Scene(site, untagged_grace_s=10.0)
    assert s.frame(0, 95.0, [(PERSON, 40, 40)]) == []  # no fix yet: everybody would look untagged
    assert s.frame(0, 96.0, [(PERSON, 40, 40)]) == []
    s.tag(1, 20, 20, 100.0)
    s.fusion.on_fixes(100.0)
    s.fusion.on_fixes(105.0)  # later fixes do not move the start
    for t in np.arange(100.0, 110.0, 0.5):
        s.tag(1, 20, 20, t)
        assert s.frame(0, t, [(PERSON, 20.5, 20), (PERSON, 40, 40)]) == [], t
    assert s.fusion.counts["untagged person in the start-up grace"] == 22 and s.fusion.pending_detections() == []
    assert s.frame(0, 110.0, [(PERSON, 40, 40)]) == []  # the first frame after the grace: one of two
    changes = s.frame(0, 110.5, [(PERSON, 40, 40)])
    assert ids(changes) == [("camera.untagged_person:CAM1", True)] and changes[0][2] == (40.0, 40.0)
    assert s.fusion.pending_detections()[0]["first_ts_s"] == 110.0


def test_the_grace_is_engine_time_and_ppe_on_a_tagged_person_is_not_held_back(site):
    s = Scene(site, untagged_grace_s=10.0, min_frames=1)
    s.fusion.on_fixes(100.0)
    s.tag(1, 20, 20, 103.0)
    # a frame stamped after the grace but judged at engine time 104: still in the grace
    assert s.frame(0, 103.0, [(PERSON, 40, 40)], now=104.0) == []
    assert ids(s.frame(0, 103.0, [(PERSON, 20.2, 20), (NO_HELMET, 20.2, 20)], now=104.0)) == [
        ("ppe.no_helmet:T1", True)]
    assert ids(s.frame(0, 103.5, [(PERSON, 40, 40)], now=110.0)) == [("camera.untagged_person:CAM1", True)]


def test_the_engine_starts_the_grace_at_its_first_fix_and_then_alarms_a_real_untagged_person(demo_site):
    """Through the engine on the demo plant: camera CAM1 sees a person where no tag is from the engine's start;
    the first fix comes at 1002; nothing until 1002 + 10 s, then camera.untagged_person:CAM1."""
    from ingest.bus import Message
    from ingest.engine import Engine, tick_message
    from tests.builders import positions

    eng = Engine(demo_site, None)
    cam = demo_site.cameras[0]
    xy = np.asarray(cam.homography) @ [960.0, 1000.0, 1.0]  # the feet of someone in the middle of CAM1's picture
    xy = xy[:2] / xy[2]

    def frame(seq, t):
        m = Message(topic="camera.detections", source="camera", kind="camera_detections", event_ts_s=t,
                    ingest_ts_s=t, arrays={"camera_index": np.array([0], np.int32), "class_id": np.array([0], np.uint8),
                                           "confidence": np.array([0.9]), "xy_m": np.array([xy]),
                                           "ts_s": np.array([t])})
        return eng.apply(seq, m)

    seq, raised = 1, []
    for k in range(40):
        t = 1000.0 + 0.5 * k
        for msg in [tick_message(t), positions(demo_site, {"T0001": (5.0, 190.0)}, t) if t >= 1002.0 else None]:
            if msg is not None:
                eng.apply(seq, msg)
                seq += 1
        raised += [(t, a["id"]) for a in frame(seq, t).alarms]
        seq += 1
    assert raised == [(1012.5, "camera.untagged_person:CAM1")]  # frames at 1012.0 and 1012.5: min_frames 2


def test_ppe_findings_attach_to_the_tag_of_their_person(site):
    s = Scene(site)
    s.tag(1, 20, 20, 100.0)
    s.tag(2, 21, 20, 100.0)
    # P1's box: person + no_helmet at the same feet; T2 is 0.6 m from them but T1 is nearer (0.4 m)
    frame = [(PERSON, 20.4, 20), (NO_HELMET, 20.4, 20), (PERSON, 21.2, 20), (NO_HARNESS, 21.2, 20)]
    assert s.frame(0, 100.0, frame) == []
    changes = s.frame(1, 101.0, frame)  # another camera sees the same: the finding is per person
    assert ids(changes) == [("ppe.no_helmet:T1", True), ("ppe.no_harness:T2", True)]
    helmet, harness = changes[0][0], changes[1][0]
    assert (helmet.person, helmet.priority, helmet.condition) == ("P1", "medium", "ppe.no_helmet")
    assert (harness.person, harness.priority) == ("P2", "high")
    assert [r["camera"] for r in s.fusion.pending_detections()] == ["CAM2", "CAM2"]


def test_ppe_on_an_untagged_person_is_counted_not_attached(site):
    s = Scene(site, min_frames=1)
    s.tag(1, 22.3, 20, 100.0)  # 2.3 m away: outside the gate
    changes = s.frame(0, 100.0, [(PERSON, 20, 20), (NO_VEST, 20, 20), (NO_VEST, 60, 60)])
    assert ids(changes) == [("camera.untagged_person:CAM1", True)]
    assert s.fusion.counts["ppe on an untagged person"] == 1
    assert s.fusion.counts["ppe with no tag in the gate"] == 1


def test_a_ppe_box_without_a_person_box_takes_the_nearest_tag_in_the_gate(site):
    s = Scene(site, min_frames=1)
    s.tag(1, 20, 20, 100.0)
    s.tag(3, 21, 21, 100.0)
    assert ids(s.frame(0, 100.0, [(NO_VEST, 20.9, 20.8)])) == [("ppe.no_vest:T3", True)]


def test_frames_outside_the_window_do_not_add_up(site):
    s = Scene(site)  # min_frames 2 within 5 s
    assert s.frame(0, 100.0, [(PERSON, 40, 40)]) == []
    assert s.frame(0, 105.0, [(PERSON, 40, 40)]) == []  # 100 is 5 s back: out of the window
    assert ids(s.frame(0, 109.9, [(PERSON, 40, 40)])) == [("camera.untagged_person:CAM1", True)]


def test_the_condition_clears_hold_s_after_the_last_sighting(site):
    s = Scene(site)
    s.frame(0, 100.0, [(PERSON, 40, 40)])
    s.frame(0, 101.0, [(PERSON, 40, 40)])
    assert s.fusion.on_tick(110.9) == []
    changes = s.fusion.on_tick(111.0)  # 101 + hold_s 10
    assert ids(changes) == [("camera.untagged_person:CAM1", False)] and changes[0][2] == (40.0, 40.0)
    assert s.fusion.on_tick(200.0) == []
    assert s.fusion.pending_detections()[0]["ended_ts_s"] == 111.0  # still awaiting verification


def test_weak_unknown_and_late_detections_are_ignored_and_counted(site):
    s = Scene(site, min_frames=1)
    assert s.frame(0, 100.0, [(PERSON, 40, 40)], conf=0.49) == []
    assert s.frame(7, 100.0, [(PERSON, 40, 40)]) == []
    assert s.frame(0, 100.0, [(9, 40, 40), (PERSON, NAN, 40)]) == []
    assert s.frame(0, 90.0, [(PERSON, 40, 40)], now=100.0) == []  # 10 s old: it would clear at once
    assert dict(s.fusion.ignored) == {"below min_confidence": 1, "unknown camera index": 1, "unknown class": 1,
                                      "non-finite time, position or confidence": 1, "frame older than hold_s": 1}


def test_a_box_that_is_not_finite_or_not_in_the_image_is_left_out_of_the_detection_and_counted(site):
    """The finding (the most confident person) has a NaN box, another an inf one, another one beyond the 1920 x 1080
    image, the fourth a good box: the detection still raises at the finding's feet, keeps only the good box, and
    its record is JSON without NaN (what the engine answers with)."""
    import json

    s = Scene(site, min_frames=1)
    arrays = {"camera_index": np.zeros(4, np.int32), "class_id": np.zeros(4, np.uint8),
              "confidence": np.array([0.95, 0.9, 0.85, 0.8]), "ts_s": np.full(4, 100.0),
              "xy_m": np.array([[40.0, 40.0], [50.0, 40.0], [60.0, 40.0], [70.0, 40.0]]),
              "box_px": np.array([[NAN, 10, 50, 90], [100, 10, math.inf, 90], [200, 10, 5000, 90], [300, 10, 350, 90]])}
    changes = s.fusion.on_detections(arrays, s.xyz, s.fix_ts, 100.0)
    assert ids(changes) == [("camera.untagged_person:CAM1", True)] and changes[0][2] == (40.0, 40.0)
    (rec,) = s.fusion.pending_detections()
    assert rec["boxes"] == [{"class": "person", "confidence": 0.8, "box_px": [300.0, 10.0, 350.0, 90.0],
                             "finding": False}]
    assert dict(s.fusion.ignored) == {"box_px not finite or outside the image (box left out)": 3}
    json.dumps(s.fusion.snapshot(), allow_nan=False)


# -- verification -------------------------------------------------------------------------------------------
def raised(site, **kw) -> Scene:
    s = Scene(site, min_frames=1, **kw)
    s.frame(0, 100.0, [(PERSON, 40, 40)])
    return s


def test_only_supervisors_verify_and_refusals_say_why(site):
    s = raised(site)
    with pytest.raises(Refused, match=r"role operator may not verify camera detections \(supervisor only\)"):
        s.fusion.verify("D1", "U1", "operator", "confirm", 105.0)
    with pytest.raises(Refused, match="unknown verdict 'maybe'"):
        s.fusion.verify("D1", "U2", "supervisor", "maybe", 105.0)
    with pytest.raises(Refused, match="no such detection 'D9'"):
        s.fusion.verify("D9", "U2", "supervisor", "confirm", 105.0)
    assert s.fusion.pending_detections()[0]["status"] == "pending"
    v = s.fusion.verify("D1", "U2", "supervisor", "confirm", 105.0)
    assert v.changes == [] and (v.record["status"], v.record["verified_by"], v.record["verified_ts_s"]) == (
        "confirmed", "U2", 105.0)
    with pytest.raises(Refused, match="D1 was already confirmed by U2"):
        s.fusion.verify("D1", "U3", "supervisor", "reject", 106.0, reason="a shadow")
    assert s.fusion.pending_detections() == []


def test_a_reject_clears_the_alarm_for_the_rest_of_the_sighting(site):
    s = raised(site)
    v = s.fusion.verify("D1", "U2", "supervisor", "reject", 100.5, reason="a mannequin")
    assert ids(v.changes) == [("camera.untagged_person:CAM1", False)]
    # the same (false) person keeps being seen: nothing raises while the sighting goes on
    for t in (101.0, 105.0, 110.0):
        assert s.frame(0, t, [(PERSON, 40, 40)]) == []
        assert s.fusion.on_tick(t) == []
    assert s.fusion.on_tick(120.0) == []  # the sighting lapses (110 + 10): no clear, it was already down
    changes = s.frame(0, 130.0, [(PERSON, 40, 40)])  # a new sighting is a new detection
    assert ids(changes) == [("camera.untagged_person:CAM1", True)]
    assert [r["id"] for r in s.fusion.pending_detections()] == ["D2"]


def test_false_positive_rate_is_rejected_over_verified_per_camera_and_class(site):
    s = Scene(site, min_frames=1)
    s.tag(1, 20, 20, 0.0)
    t = 0.0
    verdicts = {"CAM1": ["confirm", "reject", "reject"], "CAM2": ["confirm"]}
    for cam, vs in verdicts.items():
        for v in vs:
            t += 100.0
            s.tag(1, 20, 20, t)
            s.frame(site.cameras.index(next(c for c in site.cameras if c.id == cam)), t,
                    [(PERSON, 40, 40), (PERSON, 20, 20), (NO_HELMET, 20, 20)])
            for rec in s.fusion.pending_detections():
                if rec["class"] == "person":
                    s.fusion.verify(rec["id"], "U2", "supervisor", v, t, reason="seen on the camera")
                else:
                    s.fusion.verify(rec["id"], "U2", "supervisor", "reject", t, reason="a reflection")
            s.fusion.on_tick(t + 50.0)
    assert s.fusion.false_positive_rate("CAM1", "person") == pytest.approx(2 / 3)
    assert s.fusion.false_positive_rate("CAM2", "person") == 0.0
    assert s.fusion.false_positive_rate("CAM1", "no_helmet") == 1.0
    assert math.isnan(s.fusion.false_positive_rate("CAM2", "no_vest"))
    rates = {(r["camera"], r["class"]): (r["confirmed"], r["rejected"]) for r in s.fusion.false_positive_rates()}
    assert rates == {("CAM1", "person"): (1, 2), ("CAM1", "no_helmet"): (0, 3), ("CAM2", "person"): (1, 0),
                     ("CAM2", "no_helmet"): (0, 1)}


def test_the_pending_list_is_bounded_and_the_oldest_expires_counted(site):
    s = Scene(site, min_frames=1, max_pending=3, max_history=2)
    for k in range(5):  # five sightings, each ended before the next
        s.frame(0, 100.0 + 20 * k, [(PERSON, 40, 40)])
        s.fusion.on_tick(115.0 + 20 * k)
    assert [r["id"] for r in s.fusion.pending_detections()] == ["D3", "D4", "D5"]
    assert s.fusion.counts["expired unverified"] == 2
    assert [r["id"] for r in s.fusion.history] == ["D1", "D2"]
    with pytest.raises(Refused, match="D2 expired unverified"):
        s.fusion.verify("D2", "U2", "supervisor", "confirm", 300.0)


def test_changes_drive_the_alarm_book_and_verifications_are_journaled(site, tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    book = AlarmBook(journal)
    fusion = DetectionFusion(site, settings=DetectionFusionSettings(min_frames=1, untagged_grace_s=0.0),
                             journal=journal)
    arrays = {"camera_index": np.array([1], np.int32), "class_id": np.array([0], np.uint8),
              "confidence": np.array([0.8]), "xy_m": np.array([[60.0, 10.0]]), "ts_s": np.array([100.0])}
    seq = 1
    for d, active, pos in fusion.on_detections(arrays, np.full((4, 3), NAN), np.full(4, NAN), 100.0):
        book.set_condition(d, active, 100.0, seq, pos)
    alarm = book.alarms["camera.untagged_person:CAM2"]
    assert alarm.state == "active_unack" and alarm.position_m == (60.0, 10.0)
    with pytest.raises(Refused):
        fusion.verify("D1", "U1", "operator", "reject", 101.0, reason="glare", input_seq=2)
    v = fusion.verify("D1", "U2", "supervisor", "reject", 102.0, reason="glare", input_seq=3)
    for d, active, pos in v.changes:
        book.set_condition(d, active, 102.0, 3, pos)
    assert book.alarms["camera.untagged_person:CAM2"].state == "rtn_unack"
    journal.commit()
    rows = journal.db.execute("SELECT input_seq, event, alarm_id, actor, role FROM journal").fetchall()
    assert rows[1] == (2, "refused", "camera.untagged_person:CAM2", "U1", "operator")
    assert (3, "detection_rejected", "camera.untagged_person:CAM2", "U2", "supervisor") in rows
    journal.close()
    assert verify_journal(tmp_path / "j.sqlite").ok


def test_the_same_inputs_give_the_same_outputs(site):
    def run():
        rng = np.random.default_rng(5)
        s = Scene(site)
        out = []
        for k in range(60):
            t = 100.0 + k
            for tag in range(1, 5):
                s.tag(tag, *rng.uniform(0, 30, 2), t)
            dets = [(int(rng.integers(0, 4)), *rng.uniform(0, 30, 2)) for _ in range(int(rng.integers(0, 6)))]
            out += [(d.id, a, p) for d, a, p in s.frame(int(rng.integers(0, 2)), t, dets)]
            out += [(d.id, a, p) for d, a, p in s.fusion.on_tick(t)]
            if k % 7 == 0 and s.fusion.pending:
                out.append(s.fusion.verify(next(iter(s.fusion.pending)), "U2", "supervisor", "reject", t,
                                                  reason="a puddle").record["id"])
        return out, s.fusion.snapshot()

    first, second = run(), run()
    assert first == second and len(first[0]) > 5
