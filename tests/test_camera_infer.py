"""Camera inference on frames with a real onnxruntime session and a synthetic YOLO model whose output is known:
boxes come back to the frame, NMS removes the duplicate but keeps other classes, unmapped model classes are
ignored, the pixels reach the model, feet land on hand-computed floor points within 1 cm. Bad headers, non-JPEG
and undecodable images, wrong sizes and unusable models are refused with their reason and counted; the adapter
sends edge and frame detections as one batch and dead-letters the rest while it keeps going."""

from __future__ import annotations

import io
import json
import threading
import time

import numpy as np
import paho.mqtt.client as mqtt
import pytest
import zmq
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from config.cameras import CameraInferenceSettings
from ingest import bus
from ingest.camera import CameraAdapter
from ingest.camera_infer import (
    Frame,
    FrameDetector,
    FrameRejected,
    encode_frame,
    parse_frame,
    read_frame_directory,
    synthetic_yolo_model,
)

# the model's own classes: two of them (helmet, vest) are positives watchfloor does not report
CLASS_NAMES = ["person", "helmet", "head_no_helmet", "vest", "body_no_vest"]
CLASS_MAP = {"person": "person", "head_no_helmet": "no_helmet", "body_no_vest": "no_vest"}

# CAM1 of the demo plant, 1920 x 1080 -> 640 input: scale 1/3, 140 rows of padding above and below.
# A frame box (x1, y1, x2, y2) is (x1 / 3, y1 / 3 + 140, ...) in the input; anchors are (cx, cy, w, h, 5 scores).
A_FRAME = (930.0, 900.0, 990.0, 1080.0)  # feet (960, 1080) -> floor (110, 150), hand-computed
B_FRAME = (450.0, 960.0, 510.0, 1080.0)  # feet (480, 1080) -> (110, 137.5)
C_FRAME = (1410.0, 990.0, 1470.0, 1080.0)  # feet (1440, 1080) -> (110, 162.5)
ANCHORS = [
    [320, 470, 20, 60, 0.90, 0, 0, 0, 0],  # 0 A: person 0.9
    [321, 471, 20, 60, 0.80, 0, 0, 0, 0],  # 1 A shifted 1/3 px: same class, IoU ~0.95: suppressed by NMS
    [320, 470, 20, 60, 0, 0, 0.70, 0, 0],  # 2 A again as head_no_helmet 0.7: other class, kept -> no_helmet
    [500, 200, 40, 40, 0, 0.95, 0, 0, 0],  # 3 helmet 0.95: not a watchfloor class, ignored
    [160, 480, 20, 40, 0.60, 0, 0, 0, 0],  # 4 B: person 0.6
    [400, 300, 30, 30, 0.10, 0, 0, 0, 0],  # 5 person 0.1: below the 0.25 threshold
    [480, 485, 20, 30, 0.0, 0, 0, 0, 0],  # 6 C: person score = mean of the input tensor (brightness)
    [320, 100, 20, 20, 0.50, 0, 0, 0, 0],  # 7 inside the top padding: nothing of it is in the frame
    [100, 400, 20, 20, 0, 0, 0, 0, 0.55],  # 8 body_no_vest 0.55 -> no_vest, frame box (270, 750, 330, 810)
]
# mean of the input of a white frame: 360 rows of 1.0 and 280 rows of 114/255, over 640 rows
WHITE_MEAN = (360 * 1.0 + 280 * 114 / 255) / 640  # 0.75809
BLACK_MEAN = 280 * 114 / 255 / 640  # 0.19559, below the threshold


def jpeg_of(image: np.ndarray, fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, quality=95)
    return buf.getvalue()


def settings_for(path, **kw) -> CameraInferenceSettings:
    return CameraInferenceSettings(model_path=str(path), class_names=CLASS_NAMES, class_map=CLASS_MAP, **kw)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("model") / "synthetic.onnx"
    p.write_bytes(synthetic_yolo_model(np.array(ANCHORS), brightness=(6, 4)))
    return p


@pytest.fixture(scope="module")
def detector(demo_site, model_path):
    return FrameDetector(demo_site, settings_for(model_path))


WHITE = np.full((1080, 1920, 3), 255, np.uint8)
BLACK = np.zeros((1080, 1920, 3), np.uint8)


def test_known_boxes_come_back_mapped_suppressed_and_on_the_floor_within_a_centimetre(detector):
    assert detector.usable and detector.layout == "yolov8"
    d = detector.detect(Frame("CAM1", 1763798400.5, jpeg_of(WHITE), 7))
    assert d.camera_index == 0 and d.ts_s == 1763798400.5
    # highest score first: A person 0.9, C person 0.758, A no_helmet 0.7, B person 0.6, no_vest 0.55
    assert d.class_id.tolist() == [0, 0, 1, 0, 2]
    np.testing.assert_allclose(d.confidence, [0.9, WHITE_MEAN, 0.7, 0.6, 0.55], atol=1e-4)
    np.testing.assert_allclose(d.boxes_px, [A_FRAME, C_FRAME, A_FRAME, B_FRAME, (270, 750, 330, 810)], atol=1e-3)
    np.testing.assert_allclose(d.xy_m[:4], [[110, 150], [110, 162.5], [110, 150], [110, 137.5]], atol=0.01)
    assert detector.counts["box outside the image"] >= 1  # anchor 7
    assert detector.counts["ignored model class"] >= 1  # the helmet
    # same payload shape as an edge box sends
    p = d.payload()
    assert set(p) == {"camera", "ts", "frame", "detections"} and p["frame"] == 7
    assert p["detections"][2] == {"class": "no_helmet", "confidence": 0.7, "box_px": list(A_FRAME)}


def test_the_pixels_reach_the_model(detector):
    d = detector.detect(Frame("CAM1", 1.0, jpeg_of(BLACK)))
    # C's score is the mean of the input: black frame -> only the padding grey, 0.196 < 0.25 threshold
    assert BLACK_MEAN < 0.25
    assert d.class_id.tolist() == [0, 1, 0, 2]
    np.testing.assert_allclose(d.boxes_px[:3], [A_FRAME, A_FRAME, B_FRAME], atol=1e-3)


def test_yolov5_layout_gives_the_same_detections(demo_site, tmp_path):
    a = np.array(ANCHORS, dtype=np.float64)
    # YOLOv5: (cx, cy, w, h, objectness, probabilities); objectness 1 keeps the scores; C's objectness is bright
    v5 = np.column_stack([a[:, :4], np.ones(len(a)), a[:, 4:]])
    v5[6, 4], v5[6, 5] = 0.0, 1.0
    v5 = np.vstack([v5, np.zeros((1, 10))])  # N = 10: [1, 10, 10] is YOLOv5 only ([1, 9, 10] would fit both)
    p = tmp_path / "v5.onnx"
    p.write_bytes(synthetic_yolo_model(v5, layout="yolov5", brightness=(6, 4)))
    det = FrameDetector(demo_site, settings_for(p))
    assert det.layout == "yolov5"
    d = det.detect(Frame("CAM1", 1.0, jpeg_of(WHITE)))
    assert d.class_id.tolist() == [0, 0, 1, 0, 2]
    np.testing.assert_allclose(d.confidence, [0.9, WHITE_MEAN, 0.7, 0.6, 0.55], atol=1e-4)


def test_thresholds_and_camera_list_come_from_the_settings(demo_site, model_path):
    det = FrameDetector(demo_site, settings_for(model_path, confidence_threshold=0.65, cameras=["CAM1"]))
    d = det.detect(Frame("CAM1", 1.0, jpeg_of(WHITE)))
    assert d.confidence.min() >= 0.65 and d.class_id.tolist() == [0, 0, 1]
    with pytest.raises(FrameRejected, match="CAM2"):
        det.detect(Frame("CAM2", 1.0, jpeg_of(WHITE)))


def test_bad_frames_are_refused_with_their_reason_and_counted(demo_site, model_path):
    det = FrameDetector(demo_site, settings_for(model_path))
    good = jpeg_of(WHITE)
    cases = {
        "1280x720 px, camera CAM1 is configured for 1920x1080": jpeg_of(WHITE[:720, :1280]),
        "undecodable JPEG: not an image": b"\xff\xd8 this is not a jpeg at all",
        "undecodable JPEG: ": good[: len(good) // 3],  # header fine, scan data cut off
        "PNG image, not a JPEG": jpeg_of(WHITE, "PNG"),
    }
    for reason, data in cases.items():
        with pytest.raises(FrameRejected) as e:
            det.detect(Frame("CAM1", 1.0, data))
        assert reason in str(e.value)
    assert sum(det.counts.values()) == 4 and det.counts["frames"] == 0
    assert det.detect(Frame("CAM1", 1.0, good)).class_id.size == 5  # still working afterwards


def test_a_model_with_the_wrong_output_is_unusable_and_frames_say_why(demo_site, tmp_path):
    p = tmp_path / "wrong.onnx"
    p.write_bytes(synthetic_yolo_model(np.zeros((7, 3))))  # output [1, 3, 7]
    det = FrameDetector(demo_site, settings_for(p))
    assert not det.usable
    assert "model output has shape [1, 3, 7]; expected YOLOv8 [1, 9, N] or YOLOv5 [1, N, 10]" in det.problem
    for _ in range(3):
        with pytest.raises(FrameRejected, match="camera model unusable"):
            det.detect(Frame("CAM1", 1.0, jpeg_of(BLACK)))
    assert sum(det.counts.values()) == 3


def test_an_output_both_layouts_fit_needs_the_layout_set(demo_site, tmp_path):
    p = tmp_path / "square.onnx"
    p.write_bytes(synthetic_yolo_model(np.zeros((10, 9))))  # [1, 9, 10]: YOLOv8 with N=10 or YOLOv5 with N=9
    assert "set the layout" in FrameDetector(demo_site, settings_for(p)).problem
    assert FrameDetector(demo_site, settings_for(p, layout="yolov8")).usable


def test_a_missing_model_file_or_wrong_input_size_leaves_the_detector_unusable(demo_site, tmp_path, model_path):
    det = FrameDetector(demo_site, settings_for(tmp_path / "nope.onnx"))
    assert not det.usable and "no such file" in det.problem
    det = FrameDetector(demo_site, settings_for(model_path, input_size_px=320))
    assert not det.usable and "expected [1, 3, 320, 320]" in det.problem


# -- the frame payload --------------------------------------------------------------------------------------
def test_frame_payload_is_a_json_header_line_then_the_jpeg():
    jpeg = jpeg_of(BLACK[:8, :8])
    f = parse_frame("watchfloor/demo-plant/camera/CAM3/frames", encode_frame(1763798400.25, jpeg, 12))
    assert (f.camera, f.ts_s, f.frame, f.jpeg) == ("CAM3", 1763798400.25, 12, jpeg)
    bad = {
        jpeg: "without its JSON header",
        b'{"ts": 1}' + b"x" * 2000: "not a JSON line",
        b"nope\n" + jpeg: "not_json: frame header: Expecting value",
        b"[1]\n" + jpeg: "not a JSON object",
        b'{"frame": 1}\n' + jpeg: "ts is not a finite number",
        b'{"ts": true}\n' + jpeg: "ts is not a finite number",
        b'{"ts": 1, "frame": -1}\n' + jpeg: "non-negative integer",
        b'{"ts": 1, "camera": "CAM1"}\n' + jpeg: "differs from the topic",
        b'{"ts": 1}\nGIF89a': "not a JPEG",
    }
    for payload, reason in bad.items():
        with pytest.raises(FrameRejected, match=reason):
            parse_frame("p/camera/CAM3/frames", payload)
    with pytest.raises(FrameRejected, match="topic"):
        parse_frame("p/camera/CAM3/detections", encode_frame(1.0, jpeg))


def test_a_directory_of_frames_is_read_in_time_order(tmp_path):
    for cam, ts in (("CAM2", "1763798401.000"), ("CAM1", "1763798400.500"), ("CAM1", "1763798401.000")):
        (tmp_path / cam).mkdir(exist_ok=True)
        (tmp_path / cam / f"{ts}.jpg").write_bytes(jpeg_of(BLACK[:8, :8]))
    (tmp_path / "CAM1" / "snapshot.jpg").write_bytes(b"")
    (tmp_path / "CAM1" / "notes.txt").write_text("x")
    frames, rejects = read_frame_directory(tmp_path)
    assert [(f.camera, f.ts_s) for f in frames] == [("CAM1", 1763798400.5), ("CAM1", 1763798401.0),
                                                    ("CAM2", 1763798401.0)]
    assert sorted(r for _, r in rejects) == ["file name is not a capture time in epoch seconds", "not a .jpg file"]


# -- the adapter --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_adapter_sends_frame_and_edge_detections_as_one_output_and_keeps_going(demo_site, mosquitto, tmp_path,
                                                                              model_path):
    site = demo_site.model_copy(update={
        "mqtt": demo_site.mqtt.model_copy(update={"port": mosquitto.port}),
        "bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/in.ipc"}),
    })
    ctx = zmq.Context()
    pull = bus.pull_socket(ctx, site.bus.ingest)
    stop = threading.Event()
    adapter = CameraAdapter(site, stop, inference=settings_for(model_path))
    th = threading.Thread(target=adapter.run)
    th.start()
    try:
        assert adapter.source.wait_connected(10)
        time.sleep(0.3)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-camera")
        pub.connect("127.0.0.1", mosquitto.port)
        pub.loop_start()
        prefix = site.mqtt.topic_prefix
        ts = round(time.time(), 3)  # inside the camera clock window
        pub.publish(f"{prefix}/camera/CAM1/frames", jpeg_of(WHITE), qos=1)  # no header
        pub.publish(f"{prefix}/camera/CAM3/frames", encode_frame(ts, jpeg_of(WHITE[:720, :1280])), qos=1)
        pub.publish(f"{prefix}/camera/CAM1/frames", encode_frame(ts, jpeg_of(BLACK), 3), qos=1)
        edge = {"camera": "CAM2", "ts": ts, "frame": 9, "detections": [
            {"class": "person", "confidence": 0.8, "box_px": [930, 900, 990, 1080]}]}
        pub.publish(f"{prefix}/camera/CAM2/detections", json.dumps(edge), qos=1).wait_for_publish(5)

        rows, rejects = [], {}
        deadline = time.monotonic() + 20
        while (len(rows) < 5 or sum(rejects.values()) < 2) and time.monotonic() < deadline:
            if not pull.poll(200):
                continue
            m = bus.decode(pull.recv_multipart())
            if m.kind == "camera_detections":
                a = m.arrays
                rows += list(zip(a["camera_index"].tolist(), a["class_id"].tolist(), a["xy_m"].tolist()))
            elif m.kind == "rejected":
                for r in m.meta["rejects"]:
                    rejects[r["detail"]] = rejects.get(r["detail"], 0) + 1
                    assert len(r["payload"]) < 160  # the header or a size, never the JPEG bytes
        pub.loop_stop()
        pub.disconnect()
    finally:
        stop.set()
        th.join(10)
        pull.close(linger=0)
        ctx.term()
    assert not th.is_alive()
    # the black frame of CAM1: A person, A no_helmet, B person, no_vest; the edge box of CAM2: one person
    assert sorted((c, k) for c, k, _ in rows) == [(0, 0), (0, 0), (0, 1), (0, 2), (1, 0)]
    cam1_a = [xy for c, k, xy in rows if c == 0 and k == 0]
    assert any(abs(x - 110) < 0.01 and abs(y - 150) < 0.01 for x, y in cam1_a)
    cam2 = np.array(site.cameras[1].homography)
    p = cam2 @ [960, 1080, 1]
    assert np.allclose([xy for c, _, xy in rows if c == 1][0], p[:2] / p[2], atol=1e-9)
    assert rejects == {"frame without its JSON header (a bare JPEG has no capture time)": 1,
                       "frame is 1280x720 px, camera CAM3 is configured for 1920x1080 px (image_size_px)": 1}


def test_only_the_newest_frame_of_a_camera_in_a_slice_is_inferred(demo_site, tmp_path, model_path):
    from ingest.mqtt_source import RawMessage

    site = demo_site.model_copy(update={"bus": demo_site.bus.model_copy(update={"ingest": f"ipc://{tmp_path}/i.ipc"})})
    adapter = CameraAdapter(site, threading.Event(), inference=settings_for(model_path))
    try:
        topic = f"{site.mqtt.topic_prefix}/camera/CAM1/frames"
        raws = [RawMessage(topic, encode_frame(t, jpeg_of(BLACK), n), 11.5) for n, t in ((2, 11.0), (1, 10.0))]
        for raw in raws:
            adapter.take(raw, 12.0)
        (_, kind, ts, arrays, *_), = adapter.batches(12.0)
        assert kind == "camera_detections" and ts == 11.0 and set(arrays["ts_s"].tolist()) == {11.0}
        assert adapter.watch.take() == 11.0 - 11.5  # the inferred frame's capture time - receive time
        assert adapter.rejects.counts == {"superseded": 1}
        assert adapter.rejects.pending[0].detail == "frame skipped: a newer frame of the camera came in the same slice"
        assert adapter.rejects.pending[0].payload == '{"ts":10.0,"frame":1}'
    finally:
        adapter.link.close()


def test_inference_settings_refuse_what_cannot_work():
    from pydantic import ValidationError

    from config.cameras import check_camera_references

    ok = CameraInferenceSettings(model_path="m.onnx", class_names=["helmet", "person", "no_vest"])
    assert ok.model_classes() == [None, "person", "no_vest"]  # no class_map: watchfloor names map to themselves
    for kw, reason in (
        ({"class_names": CLASS_NAMES, "class_map": {"hat": "no_helmet"}}, "not in class_names"),
        ({"class_names": ["helmet", "vest"]}, "no model class maps"),
        ({"class_names": ["person", "person"]}, "repeated"),
        ({"class_names": ["person"], "input_size_px": 600}, "multiple of 32"),
        ({"class_names": ["person"], "class_map": {"person": "hardhat"}}, "class_map"),
    ):
        with pytest.raises(ValidationError, match=reason):
            CameraInferenceSettings(model_path="m.onnx", **kw)

    class WithCameras:  # a site with the section (the schema field is added by config/schema.py)
        cameras = [type("C", (), {"id": "CAM1"})()]
        camera_inference = CameraInferenceSettings(model_path="m.onnx", class_names=["person"],
                                                   cameras=["CAM1", "CAM9"])

    assert check_camera_references(WithCameras()) == [("camera_inference.cameras[1]", "unknown camera 'CAM9'")]
