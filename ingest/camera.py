"""The camera adapter: edge detections and (optionally) JPEG frames over MQTT -> detections on the floor.

Edge path, topic ``<prefix>/camera/<camera_id>/detections``: ``{"camera", "ts", "frame", "detections":
[{"class", "confidence", "box_px": [x1, y1, x2, y2]}]}``. The bottom centre of each box (the feet) is projected to
site metres through the camera's ground-plane homography.

Frame path, topic ``<prefix>/camera/<camera_id>/frames`` (only when the site has an enabled ``camera_inference``
section): a JSON header line and a JPEG (:mod:`ingest.camera_infer`); the adapter runs the detector and the boxes
it finds go the same way as edge boxes. Both paths end in one ``camera.detections`` batch per slice.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from pathlib import Path

import numpy as np

from config import Site
from config.cameras import CameraInferenceSettings
from kernels.detection import project_feet

from .adapter import MqttAdapter, adapter_main
from .camera_infer import FRAMES_TOPIC, FrameDetector, FrameRejected, parse_frame
from .mqtt_source import RawMessage

log = logging.getLogger(__name__)

__all__ = ["CameraAdapter", "DETECTION_CLASSES", "DETECTIONS_TOPIC", "project_feet", "main"]

DETECTION_CLASSES = ("person", "no_helmet", "no_vest", "no_harness")
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

    def _edge(self, raw: RawMessage, cam: list, cls: list, conf: list, boxes: list, ts: list) -> None:
        try:
            doc = json.loads(raw.payload)
            if not isinstance(doc, dict) or doc.get("camera") not in self.cameras:
                raise ValueError("unknown camera")
            t = doc.get("ts")
            if not isinstance(t, (int, float)) or not math.isfinite(t):
                raise ValueError("ts is not a finite number")
            ci, _, (w, h) = self.cameras[doc["camera"]]
            for det in doc.get("detections", []):
                c, p, b = det.get("class"), det.get("confidence"), det.get("box_px")
                if c not in DETECTION_CLASSES:
                    self.rejects.add("unknown class", raw.topic, json.dumps(det)[:512])
                    continue
                if not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                    self.rejects.add("confidence outside 0..1", raw.topic, json.dumps(det)[:512])
                    continue
                if (not isinstance(b, list) or len(b) != 4 or not all(isinstance(x, (int, float)) for x in b)
                        or not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h)):
                    self.rejects.add("box outside the image", raw.topic, json.dumps(det)[:512])
                    continue
                cam.append(ci)
                cls.append(DETECTION_CLASSES.index(c))
                conf.append(float(p))
                boxes.append(b)
                ts.append(float(t))
        except (ValueError, UnicodeDecodeError, AttributeError) as e:
            reason = "not JSON" if isinstance(e, json.JSONDecodeError) else str(e) or "malformed"
            self.rejects.add(reason, raw.topic, raw.payload[:512])

    def _frames(self, raws: list[RawMessage], cam: list, cls: list, conf: list, boxes: list, ts: list) -> None:
        frames = []
        for raw in raws:
            try:
                frames.append((raw, parse_frame(raw.topic, raw.payload)))
            except FrameRejected as e:
                self.rejects.add(str(e), raw.topic, _excerpt(raw.payload))
        if self.detector.settings.latest_frame_only:
            newest: dict[str, float] = {}
            for _, f in frames:
                newest[f.camera] = max(newest.get(f.camera, -math.inf), f.ts_s)
            kept = []
            for raw, f in frames:
                if f.ts_s < newest[f.camera] or any(k[1].camera == f.camera for k in kept):
                    self.rejects.add("frame skipped: a newer frame of the camera came in the same slice",
                                     raw.topic, f.header)
                else:
                    kept.append((raw, f))
            frames = kept
        for raw, f in frames:
            try:
                d = self.detector.detect(f)
            except FrameRejected as e:
                self.rejects.add(str(e), raw.topic, f.header)
                continue
            cam += [d.camera_index] * len(d.class_id)
            cls += d.class_id.tolist()
            conf += d.confidence.tolist()
            boxes += d.boxes_px.tolist()
            ts += [d.ts_s] * len(d.class_id)

    def batches(self, raws: list[RawMessage], now_s: float):
        cam, cls, conf, boxes, ts = [], [], [], [], []
        frames = []
        for raw in raws:
            if self.detector is not None and raw.topic.endswith("/frames"):
                frames.append(raw)
            else:
                self._edge(raw, cam, cls, conf, boxes, ts)
        if frames:
            self._frames(frames, cam, cls, conf, boxes, ts)
        if not cam:
            return []
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
