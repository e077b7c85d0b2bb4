"""The camera adapter: edge detections and (optionally) JPEG frames over MQTT -> detections on the floor.

Edge path, topic ``<prefix>/camera/<camera_id>/detections``: ``{"camera", "ts", "frame", "detections":
[{"class", "confidence", "box_px": [x1, y1, x2, y2]}]}``. The bottom centre of each box (the feet) is projected to
site metres through the camera's ground-plane homography.

Frame path, topic ``<prefix>/camera/<camera_id>/frames`` (only when the site has an enabled ``camera_inference``
section): a JSON header line and a JPEG (:mod:`ingest.camera_infer`); the adapter runs the detector and the boxes
it finds go the same way as edge boxes. Both paths end in one ``camera.detections`` batch per slice.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path

import numpy as np

from config import Site
from config.cameras import CameraInferenceSettings
from kernels.detection import project_feet

from .adapter import ClockWatch, MqttAdapter, adapter_main
from .camera_infer import FRAMES_TOPIC, FrameDetector, parse_frame
from .mqtt_source import RawMessage
from .protocol import wire
from .protocol.names import DETECTION_CLASSES
from .protocol.wire import PayloadError

__all__ = ["CameraAdapter", "DETECTION_CLASSES", "DETECTIONS_TOPIC", "project_feet", "main"]

#: subscription of the edge path, relative to the site's topic prefix
DETECTIONS_TOPIC = "camera/+/detections"


def _excerpt(payload: bytes) -> str:
    """What of a refused frame is kept: its header line, never the JPEG bytes."""
    nl = payload.find(b"\n", 0, 513)
    if nl >= 0 and payload[:2] != b"\xff\xd8":
        return payload[:nl].decode("utf-8", "replace")
    return f"<{len(payload)} bytes, no header line>"


class CameraAdapter(MqttAdapter):
    name = "camera"
    payload_kind = "camera"
    topics = [DETECTIONS_TOPIC]

    def __init__(self, site: Site, stop: threading.Event, *, inference: CameraInferenceSettings | None = None,
                 base_dir: Path | None = None) -> None:
        """``inference`` defaults to the site's ``camera_inference`` section; without one (or disabled) only the
        edge path runs. ``base_dir`` resolves a relative ``model_path``."""
        settings = inference if inference is not None else getattr(site, "camera_inference", None)
        self.detector: FrameDetector | None = None
        if settings is not None and settings.enabled:
            self.topics = [DETECTIONS_TOPIC, FRAMES_TOPIC]
            self.detector = FrameDetector(site, settings, base_dir=base_dir)
        super().__init__(site, stop, slice_s=0.5)
        self.cameras = {c.id: (i, np.array(c.homography), c.image_size_px) for i, c in enumerate(site.cameras)}
        self.rows: list[tuple] = []
        self.frames: list[tuple] = []
        self.watch = ClockWatch(site.clock.camera)

    def _edge(self, raw: RawMessage, doc: object) -> None:
        if not isinstance(doc, dict):
            raise PayloadError("bad_field", "payload is not an object")
        camera = wire.text(doc, "camera")
        if camera not in self.cameras:
            raise PayloadError("unknown_id", f"unknown camera {camera[:32]!r}")
        t = wire.finite_number(doc, "ts")
        self.watch.check(t, raw.received_ts_s)
        ci, _, (w, h) = self.cameras[camera]
        dets = doc.get("detections", [])
        if not isinstance(dets, list):
            raise PayloadError("bad_field", "detections is not a list")
        rows = []
        for det in dets:
            try:
                if not isinstance(det, dict):
                    raise PayloadError("bad_field", "a detection is not an object")
                cls = det.get("class")
                if not isinstance(cls, str) or cls not in DETECTION_CLASSES:
                    raise PayloadError("unknown_id", f"unknown class {str(cls)[:32]!r}")
                p = wire.finite_number(det, "confidence", 0.0, 1.0)
                b = det.get("box_px")
                if (not isinstance(b, list) or len(b) != 4
                        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in b)):
                    raise PayloadError("bad_field", "box_px is not four numbers")
                if not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h):
                    raise PayloadError("out_of_range", "box outside the image")
            except PayloadError as e:
                self.rejects.add(e.code, raw.topic, det, e.detail)
                continue
            rows.append((ci, DETECTION_CLASSES.index(cls), p, [float(x) for x in b], t))
        self.rows += rows

    def excerpt_of(self, raw: RawMessage) -> str | bytes:
        return _excerpt(raw.payload) if raw.topic.endswith("/frames") else raw.payload

    def take(self, raw: RawMessage, now_s: float) -> None:
        if self.detector is not None and raw.topic.endswith("/frames"):
            self.frames.append((raw, parse_frame(raw.topic, raw.payload)))
        else:
            self._edge(raw, self.load(raw))

    def _infer(self, frames: list) -> None:
        """Run the detector on the slice's frames (the newest of each camera when ``latest_frame_only``)."""
        if self.detector.settings.latest_frame_only:
            newest: dict[str, float] = {}
            for _, f in frames:
                newest[f.camera] = max(newest.get(f.camera, -math.inf), f.ts_s)
            kept = []
            for raw, f in frames:
                if f.ts_s < newest[f.camera] or any(k[1].camera == f.camera for k in kept):
                    self.rejects.add("superseded", raw.topic, f.header,
                                     "frame skipped: a newer frame of the camera came in the same slice")
                else:
                    kept.append((raw, f))
            frames = kept
        for raw, f in frames:
            try:
                self.watch.check(f.ts_s, raw.received_ts_s)
                d = self.detector.detect(f)
            except Exception as e:  # noqa: BLE001 - one frame (or a detector bug) never stops the others
                self.guard("inference", e, raw.topic, f.header)
                continue
            self.rows += [(d.camera_index, int(k), float(p), b, d.ts_s)
                          for k, p, b in zip(d.class_id.tolist(), d.confidence.tolist(), d.boxes_px.tolist())]

    def batches(self, now_s: float):
        frames, self.frames = self.frames, []
        if frames:
            self._infer(frames)
        rows, self.rows = self.rows, []
        if not rows:
            return []
        cam, cls, conf, boxes, ts = zip(*rows)
        cam_a, boxes_a = np.array(cam, np.int32), np.array(boxes, np.float64).reshape(-1, 4)
        xy = np.zeros((len(cam), 2))
        for ci, (_, h, _) in enumerate(self.cameras.values()):
            sel = cam_a == ci
            if sel.any():
                xy[sel] = project_feet(h, boxes_a[sel])
        return [("camera.detections", "camera_detections", max(ts),
                 {"camera_index": cam_a, "class_id": np.array(cls, np.uint8), "confidence": np.array(conf),
                  "xy_m": xy, "ts_s": np.array(ts)})]


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest camera --site FILE``."""
    return adapter_main("camera", argv, lambda site, stop: CameraAdapter(site, stop).run())
