"""Camera verification (issue 14): the camera adapter's ring of recent frames (bounded; finds a frame by capture
time and by hash), the real adapter over a real broker answering the real engine's request for the frame that
raised a detection (the raising frame, not the first one that showed it), and the verdict with its reason in the
journal, the engine's status and the KPIs (false-positive rate per camera and class)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from alarms.kpi import compute_kpis, format_kpis, read_journal_events
from ingest.camera import CameraAdapter, FrameRing
from ingest.camera_infer import encode_frame
from ingest.protocol.blobs import sha256_hex
from tests.engine_stack import REPO, EngineStack, camera_frame, detections_of_frame, snapshot_blob

pytestmark = pytest.mark.slow


def test_the_ring_is_bounded_per_camera_by_frames_and_bytes_and_counts_what_it_lets_go():
    ring = FrameRing(max_frames=3, max_bytes=1000)
    frames = [bytes([k]) * 100 for k in range(5)]
    for k, f in enumerate(frames):
        ring.add("CAM1", 10.0 + k, f)
    ring.add("CAM2", 10.0, frames[0])
    assert [h.ts_s for h in ring.frames["CAM1"]] == [12.0, 13.0, 14.0] and ring.evicted == 2 and len(ring) == 4
    ring.add("CAM2", 11.0, b"x" * 950)  # over 1000 bytes with the first: the first goes
    assert [h.ts_s for h in ring.frames["CAM2"]] == [11.0] and ring.evicted == 3 and ring.bytes["CAM2"] == 950
    ring.add("CAM2", 12.0, b"y" * 2000)  # one frame larger than the bound is still kept (alone)
    assert [h.ts_s for h in ring.frames["CAM2"]] == [12.0] and ring.evicted == 4


def test_the_ring_finds_a_frame_by_capture_time_and_by_hash():
    ring = FrameRing(max_frames=30, max_bytes=10_000_000)
    for k in range(5):
        ring.add("CAM1", 100.0 + 0.5 * k, bytes([k]) * 50)
    assert ring.at("CAM1", 101.0).jpeg == bytes([2]) * 50 and ring.at("CAM1", 101.1) is None
    held = ring.find("CAM1", sha256_hex(bytes([3]) * 50))
    assert held is not None and held.ts_s == 101.5 and held.sha256 == sha256_hex(held.jpeg)
    assert ring.find("CAM2", held.sha256) is None  # a hash is looked up in its own camera's ring
    for k in range(30):  # the frame leaves the ring: no longer found
        ring.add("CAM1", 200.0 + k, bytes([100 + k]) * 50)
    assert ring.find("CAM1", held.sha256) is None


@pytest.fixture
def quick_fusion(demo_site):
    """Cameras count from the start (no tags in these tests), two frames raise, a sighting ends 2 s after."""
    return demo_site.detection_fusion.model_copy(update={"untagged_grace_s": 0.0, "hold_s": 2.0})


def test_the_adapter_sends_the_frame_that_raised_the_alarm_when_the_engine_asks(demo_site, mosquitto, tmp_path,
                                                                                 quick_fusion):
    with EngineStack(demo_site, tmp_path, detection_fusion=quick_fusion) as stack:
        site = stack.site.model_copy(update={"mqtt": stack.site.mqtt.model_copy(update={"port": mosquitto.port})})
        stop = threading.Event()
        adapter = CameraAdapter(site, stop)
        th = threading.Thread(target=adapter.run, name="camera-adapter")
        th.start()
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-camera-frames")
        try:
            assert adapter.source.wait_connected(10)
            pub.connect("127.0.0.1", mosquitto.port)
            pub.loop_start()
            prefix = site.mqtt.topic_prefix
            t0 = round(time.time(), 3)
            boxes = ([[900, 500, 1000, 900]], [[910, 500, 1010, 900]])
            frames = [camera_frame(site, "CAM1", b) for b in boxes]
            for k, (t, b, f) in enumerate(zip((t0, t0 + 0.5), boxes, frames)):
                pub.publish(f"{prefix}/camera/CAM1/frames", encode_frame(t, f, k), qos=1)  # the picture first
                edge = {"camera": "CAM1", "ts": t, "frame": k,
                        "detections": [{"class": "person", "confidence": 0.9, "box_px": b[0]}]}
                pub.publish(f"{prefix}/camera/CAM1/detections", json.dumps(edge), qos=1).wait_for_publish(5)
            pub.publish(f"{prefix}/camera/CAM9/frames", encode_frame(t0, frames[0]), qos=1).wait_for_publish(5)

            def detection():
                pending = stack.raw_command(op="detections")["pending"]
                return pending and pending[0]["snapshot_held"] and pending[0]

            rec = stack.wait_for(detection, what="the detection's snapshot in the blob store", timeout_s=20)
        finally:
            pub.loop_stop()
            pub.disconnect()
            stop.set()
            th.join(10)
        assert not th.is_alive()
        # the second frame raised it (min_frames 2): its hash, its bytes, its boxes; never the first frame's
        assert rec["snapshot"] == {"sha256": sha256_hex(frames[1]), "ts_s": t0 + 0.5}
        assert sha256_hex(frames[0]) != sha256_hex(frames[1])
        assert rec["boxes"] == [{"class": "person", "confidence": 0.9, "box_px": [910.0, 500.0, 1010.0, 900.0],
                                 "finding": True}]
        blob = stack.command(op="blob_get", sha256=rec["snapshot"]["sha256"], user="sup1")
        assert base64.b64decode(blob["data_b64"]) == frames[1]
        assert blob["meta"]["boxes"] == [{"class": "person", "confidence": 0.9, "box_px": [910.0, 500.0, 1010.0, 900.0]}]
        assert stack.command(op="blob_get", sha256=sha256_hex(frames[0]), user="sup1")["ok"] is False  # not asked
        assert adapter.snapshots_sent == 1 and len(adapter.ring) == 2
        assert adapter.rejects.counts["unknown_id"] == 1  # CAM9's frame: refused with its reason, kept
        summary = stack.stop()
    assert summary["blobs"]["stored"] == 1 and summary["blobs"]["snapshots_missing"] == 0


def test_a_false_positive_needs_a_reason_and_the_verdicts_reach_the_journal_status_and_kpis(demo_site, tmp_path,
                                                                                           quick_fusion):
    with EngineStack(demo_site, tmp_path, detection_fusion=quick_fusion) as stack:
        site = stack.site
        raising = []
        for k in range(2):  # two sightings of CAM2, one after the other: two detections of CAM2 / person
            t = time.time()
            first, second = camera_frame(site, "CAM2", [[800, 400, 900, 800]]), camera_frame(site, "CAM2", [[810 + k, 400,
                                                                                                        910, 800]])
            stack.send(detections_of_frame(site, "CAM2", t, [[800, 400, 900, 800]], jpeg=first))
            stack.send(detections_of_frame(site, "CAM2", t + 0.5, [[810 + k, 400, 910, 800]], jpeg=second))
            stack.send(snapshot_blob(site, "CAM2", t + 0.5, second))
            raising.append(sha256_hex(second))
            stack.wait_for(lambda n=k + 1: len(stack.raw_command(op="detections")["pending"]) == n,
                           what=f"detection {k + 1}")
            if k == 0:
                stack.wait_for(lambda: "camera.untagged_person:CAM2" not in stack.alarms()
                               or stack.alarms()["camera.untagged_person:CAM2"]["state"] == "rtn_unack",
                               what="the first sighting over", timeout_s=10)
        d1, d2 = stack.raw_command(op="detections")["pending"]
        assert [d1["snapshot"]["sha256"], d2["snapshot"]["sha256"]] == raising
        assert d1["snapshot_held"] and d2["snapshot_held"]
        refused = stack.command(op="verify_detection", user="sup1", detection=d2["id"], verdict="reject", reason=" ")
        assert (refused["ok"], refused["reason"]) == (False, "a false positive needs a reason")
        long = stack.command(op="verify_detection", user="sup1", detection=d2["id"], verdict="reject", reason="x" * 501)
        assert long["reason"] == "the reason is 501 characters, at most 500"
        assert stack.command(op="verify_detection", user="sup1", detection=d1["id"], verdict="confirm")["ok"]
        ok = stack.command(op="verify_detection", user="sup1", detection=d2["id"], verdict="reject",
                           reason="reflection of a worker in the control room window")
        assert ok["ok"] and ok["detection"]["verdict_reason"] == "reflection of a worker in the control room window"
        status = stack.proc.engine.status()
        assert status["detection_verdicts"] == [{"camera": "CAM2", "class": "person", "confirmed": 1, "rejected": 1,
                                                 "rate": 0.5}]
        rejected = stack.journal("detection_rejected")
        assert [(a, actor, d["reason"], d["snapshot"]) for a, actor, d in rejected] == [
            ("camera.untagged_person:CAM2", "sup1", "reflection of a worker in the control room window", raising[1])]
        refusals = [d["reason"] for _, _, d in stack.journal("refused") if d.get("action") == "verify_detection"]
        assert refusals == ["a false positive needs a reason", "the reason is 501 characters, at most 500"]
        stack.stop()
    journal = tmp_path / "live" / "journal.sqlite"
    k = compute_kpis(read_journal_events(journal))
    assert k.detections == [{"camera": "CAM2", "class": "person", "confirmed": 1, "false_positive": 1, "fp_rate": 0.5}]
    assert "  CAM2 person: 1 confirmed, 1 false positive(s), false-positive rate 50.0 %" in format_kpis(k)
    cli = subprocess.run([sys.executable, "-m", "console.cli", "kpi", str(journal), "--json"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["detections"][0]["fp_rate"] == 0.5


def test_the_wall_shows_the_false_positive_rate_of_each_camera_and_class_with_a_verdict():
    from console.web.tiles import KpiOptions, KpiTile

    status = {"detection_verdicts": [
        {"camera": "CAM1", "class": "person", "confirmed": 1, "rejected": 1, "rate": 0.5},
        {"camera": "CAM2", "class": "no_helmet", "confirmed": 2, "rejected": 1, "rate": 1 / 3}]}
    cols = KpiTile.columns(status, {}, None, None, "en", KpiOptions())
    fp = [(k, n, v, note) for k, n, v, note in zip(cols["key"], cols["name"], cols["value"], cols["note"])
          if k.startswith("fp")]
    assert fp == [("fp:CAM1:person", "False positives CAM1 person", "50 %", "1 of 2 verified"),
                  ("fp:CAM2:no_helmet", "False positives CAM2 no helmet", "33 %", "1 of 3 verified")]
    zh = KpiTile.columns(status, {}, None, None, "zh-CN", KpiOptions())
    assert zh["name"][-2:] == ["误报率 CAM1 人员", "误报率 CAM2 未戴安全帽"]
    assert not any(k.startswith("fp") for k in KpiTile.columns({}, {}, None, None, "en", KpiOptions())["key"])
    html = KpiTile.html(cols, "en")
    assert 'data-kpi="fp:CAM1:person"' in html and "50 %" in html


def test_the_snapshot_is_the_image_of_its_hash_with_the_finding_box_labelled():
    from console.web.workstation.verify_panel import snapshot_html

    rec = {"id": "D1", "snapshot": {"sha256": "ab" * 32, "ts_s": 1.0}, "snapshot_held": True, "image_px": [1920, 1080],
           "boxes": [{"class": "person", "confidence": 0.91, "box_px": [10, 20, 110, 220], "finding": True},
                     {"class": "person", "confidence": 0.8, "box_px": [300, 20, 400, 220], "finding": False}]}
    page = snapshot_html(rec, ("ab" * 32, "QUJD"), "en")
    assert f'data-sha256="{"ab" * 32}"' in page and 'src="data:image/jpeg;base64,QUJD"' in page
    assert 'viewBox="0 0 1920 1080"' in page and page.count("<rect") == 2 and "\u25b2 person 0.91" in page
    assert 'width="100.0" height="200.0"' in page
    assert "Loading the snapshot" in snapshot_html(rec, None, "en")  # held by the engine, not fetched yet
    assert "not received from the camera yet" in snapshot_html({**rec, "snapshot_held": False}, None, "en")
    assert "No snapshot" in snapshot_html({**rec, "snapshot": None}, None, "en")
    assert "快照" in snapshot_html({**rec, "snapshot": None}, None, "zh-CN")


def _with_box(msg, box_px):
    """``msg`` (a detections batch of one box) with its ``box_px`` replaced (its feet stay where they were)."""
    import numpy as np

    msg.arrays = {**msg.arrays, "box_px": np.array([box_px], dtype=np.float64)}
    return msg


@pytest.mark.parametrize("boxes_checked", [True, False], ids=["box-checked", "stored-as-before-the-check"])
def test_a_nan_box_never_breaks_the_snapshot_or_detections_answers(demo_site, tmp_path, quick_fusion, monkeypatch,
                                                                   boxes_checked):
    """A detection raised by frames whose box is NaN: the engine leaves the box out (counted with its reason), so
    the consoles' resync (``snapshot``) and ``detections`` answer whole while it is pending and once verified. And
    should a non-finite value be held all the same (here: the box check switched off, as a record of an engine
    before it), the answers still come, the value as null, never "internal error"."""
    import math

    import numpy as np

    from alarms.detections import DetectionFusion

    if not boxes_checked:
        monkeypatch.setattr(DetectionFusion, "_checked_boxes",
                            lambda self, box, cam, used: (np.asarray(box, dtype=np.float64), np.ones(len(cam), bool)))
    reason = "box_px not finite or outside the image (box left out)"
    with EngineStack(demo_site, tmp_path, detection_fusion=quick_fusion) as stack:
        site, t = stack.site, time.time()
        for dt in (0.0, 0.5):
            frame = camera_frame(site, "CAM1", [[900, 500, 1000, 900]])
            stack.send(_with_box(detections_of_frame(site, "CAM1", t + dt, [[900, 500, 1000, 900]], jpeg=frame),
                                 [math.nan, 500.0, 1000.0, math.inf]))
        rec = stack.wait_for(lambda: (p := stack.raw_command(op="detections")["pending"]) and p[0],
                             what="the detection raised")

        def answers() -> tuple[dict, dict]:
            snap, dets = stack.raw_command(op="snapshot"), stack.raw_command(op="detections")
            assert (snap["ok"], dets["ok"]) == (True, True), (snap.get("reason"), dets.get("reason"))
            return snap["detections"], dets

        for body in answers():
            (pending,) = body["pending"]
            assert pending["id"] == rec["id"] and pending["alarm"] == "camera.untagged_person:CAM1"
            if boxes_checked:
                assert pending["boxes"] == [] and body["ignored"] == {reason: 2}
            else:
                assert pending["boxes"] == [{"class": "person", "confidence": 0.9, "box_px": [None, 500.0, 1000.0, None],
                                             "finding": True}] and reason not in body["ignored"]
        verdict = stack.command(op="verify_detection", user="sup1", detection=rec["id"], verdict="confirm")
        assert verdict["ok"] and verdict["detection"]["status"] == "confirmed"
        for body in answers():  # among the recent verdicts now
            assert body["pending"] == [] and [r["id"] for r in body["recent"]] == [rec["id"]]
            assert body["recent"][0]["boxes"] == ([] if boxes_checked else pending["boxes"])
        assert stack.alarms()["camera.untagged_person:CAM1"]["state"] in ("active_unack", "rtn_unack")


def test_only_snapshots_still_wanted_count_as_missing(demo_site, tmp_path, quick_fusion):
    """Two detections whose frames never come to the blob store: the one verified at once no longer wants its
    snapshot (not missing); the one left pending is missing once ``want_for_s`` has passed."""
    from config.cameras import CameraSnapshotSettings

    with EngineStack(demo_site, tmp_path, detection_fusion=quick_fusion,
                     camera_snapshots=CameraSnapshotSettings(want_for_s=3.0)) as stack:
        site = stack.site
        stack.token("sup1")  # logged in beforehand: the verdict comes well within want_for_s
        t = time.time()
        for camera, x in (("CAM1", 800), ("CAM2", 1200)):  # other boxes, other frames: two hashes
            for dt, box in ((0.0, [x, 400, x + 100, 800]), (0.5, [x + 10, 400, x + 110, 800])):
                stack.send(detections_of_frame(site, camera, t + dt, [box], jpeg=camera_frame(site, camera, [box])))
        pending = stack.wait_for(lambda: len(p := stack.raw_command(op="detections")["pending"]) == 2 and p,
                                 what="both detections raised")
        first = next(r for r in pending if r["camera"] == "CAM1")
        assert len({r["snapshot"]["sha256"] for r in pending}) == 2
        assert not first["snapshot_held"] and stack.proc.wanted_snapshots()  # asked for, never sent
        assert stack.command(op="verify_detection", user="sup1", detection=first["id"], verdict="confirm")["ok"]
        # both have left the engine's list of snapshots asked for: D1 at its verdict, D2 when want_for_s passed
        stack.wait_for(lambda: not stack.proc.wanted_snapshots() and not stack.proc._asked,
                       what="no snapshot asked for any more", timeout_s=15)
        summary = stack.stop()
    assert summary["blobs"]["snapshots_missing"] == 1
