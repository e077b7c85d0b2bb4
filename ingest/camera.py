"""The camera adapter (first version: edge detections over MQTT) -> detections on the floor.

Topic ``<prefix>/camera/<camera_id>/detections``: ``{"camera", "ts", "frame", "detections": [{"class",
"confidence", "box_px": [x1, y1, x2, y2]}]}``. The bottom centre of each box (the feet) is projected to site
metres through the camera's ground-plane homography.
"""

from __future__ import annotations

import json
import math
import threading

import numpy as np

from config import Site

from .adapter import MqttAdapter, adapter_main
from .mqtt_source import RawMessage

__all__ = ["CameraAdapter", "DETECTION_CLASSES", "project_feet", "main"]

DETECTION_CLASSES = ("person", "no_helmet", "no_vest", "no_harness")


def project_feet(h: np.ndarray, boxes_px: np.ndarray) -> np.ndarray:
    """float64 [n, 2] site metres of the bottom centres of boxes [n, 4] (x1, y1, x2, y2) through 3x3 ``h``."""
    u = (boxes_px[:, 0] + boxes_px[:, 2]) / 2.0
    v = boxes_px[:, 3]
    p = np.stack([u, v, np.ones_like(u)], axis=1) @ h.T
    return p[:, :2] / p[:, 2:3]


class CameraAdapter(MqttAdapter):
    name = "camera"
    topics = ["camera/+/detections"]

    def __init__(self, site: Site, stop: threading.Event) -> None:
        super().__init__(site, stop, slice_s=0.5)
        self.cameras = {c.id: (i, np.array(c.homography), c.image_size_px) for i, c in enumerate(site.cameras)}

    def batches(self, raws: list[RawMessage], now_s: float):
        cam, cls, conf, boxes, ts = [], [], [], [], []
        for raw in raws:
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
        if not cam:
            return []
        cam_a, boxes_a = np.array(cam, np.int32), np.array(boxes, np.float64)
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
