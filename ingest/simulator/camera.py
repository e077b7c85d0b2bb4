"""Camera detections: people on the ground plane projected into each camera's image.

``Camera.homography`` H maps an image pixel (u, v, 1) to the ground (x, y, 1) in site metres, so a
ground point goes to the image through H^-1. A person is a box whose bottom centre is the feet (on the
ground, exact) and whose top is the head: the head (x, y, h) lies on the camera ray that meets the
ground at c + (p - c) * c_z / (c_z - h) (c = camera position, p = feet), and every point of one ray
has the same pixel, so the head's pixel is that ground point's pixel through H^-1.
"""

from __future__ import annotations

import json

import numpy as np

from config.schema import Camera
from ingest.protocol.names import DETECTION_CLASSES

__all__ = [
    "BOX_ASPECT",
    "DETECTION_CLASSES",
    "PERSON_HEIGHT_M",
    "CameraView",
    "detections_payload",
    "render_frame",
    "synthesize_detections",
]

#: standing height used for the top of a person box, metres
PERSON_HEIGHT_M = 1.75
#: box width / box height of a standing person
BOX_ASPECT = 0.41


class CameraView:
    """One camera's geometry: ground <-> pixel through its homography, and person boxes."""

    def __init__(self, camera: Camera) -> None:
        self.id = camera.id
        self.H = np.asarray(camera.homography, dtype=float)
        self.H_inv = np.linalg.inv(self.H)
        self.width_px, self.height_px = camera.image_size_px
        self.position_m = np.asarray(camera.position_m, dtype=float)

    def to_image(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ground points [N, 2] m -> pixels [N, 2] (u right, v down) and the homogeneous scale [N]."""
        g = np.column_stack([xy[:, 0], xy[:, 1], np.ones(len(xy))])
        h = g @ self.H_inv.T
        s = h[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = h[:, :2] / s[:, None]
        return uv, s

    def to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Pixels [N, 2] -> ground points [N, 2] m."""
        h = np.column_stack([uv[:, 0], uv[:, 1], np.ones(len(uv))]) @ self.H.T
        return h[:, :2] / h[:, 2:3]

    def in_view(self, xy: np.ndarray) -> np.ndarray:
        """bool [N]: the ground point is in front of the camera and inside the image."""
        uv, s = self.to_image(xy)
        # the sign of the scale flips on the far side of the horizon line
        s_ref = (
            self.H_inv @ np.array([*self.to_ground(np.array([[self.width_px / 2, self.height_px]]))[0], 1.0])
        )[2]
        seen = (
            (np.sign(s) == np.sign(s_ref))
            & (uv[:, 0] >= 0)
            & (uv[:, 0] < self.width_px)
            & (uv[:, 1] >= 0)
            & (uv[:, 1] <= self.height_px)
        )
        # a person cut by the image's left or right edge is not reported: a real detector would clip the
        # box, and a clipped box's bottom centre is no longer the feet
        idx = np.nonzero(seen)[0]
        if len(idx):
            boxes = self.person_boxes(xy[idx])
            seen[idx] = (boxes[:, 0] >= 0.0) & (boxes[:, 2] <= self.width_px)
        return seen

    def person_boxes(self, xy: np.ndarray, height_m: float = PERSON_HEIGHT_M) -> np.ndarray:
        """Boxes [N, 4] (x1, y1, x2, y2) px of people standing at ground points ``xy`` [N, 2] m.

        The bottom centre ((x1 + x2) / 2, y2) is exactly the feet's pixel; y1 is clipped to the image top.
        """
        feet, _ = self.to_image(xy)
        c = self.position_m
        cz = c[2]
        if cz > height_m + 0.1:
            k = cz / (cz - height_m)
            behind = c[:2] + (xy - c[:2]) * k
            head, _ = self.to_image(behind)
            h_px = np.maximum(feet[:, 1] - head[:, 1], 2.0)
        else:  # camera at head height: use the local ground scale instead
            up, _ = self.to_image(xy + np.array([0.0, 0.01]))
            scale = np.hypot(*(up - feet).T) / 0.01
            h_px = np.maximum(scale * height_m, 2.0)
        w_px = BOX_ASPECT * h_px
        y1 = np.maximum(feet[:, 1] - h_px, 0.0)
        return np.column_stack([feet[:, 0] - w_px / 2, y1, feet[:, 0] + w_px / 2, feet[:, 1]])


def synthesize_detections(
    view: CameraView,
    xy: np.ndarray,
    ppe: dict[int, tuple[str, ...]],
    rng: np.random.Generator,
    miss_probability: float = 0.03,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """What a person detector reports for people at ``xy`` [P, 2] m.

    Returns classes (list of M), confidence float64 [M], boxes float64 [M, 4] px and the person index
    int64 [M] of each detection (kept by the simulator, not published). A person in view is missed with
    ``miss_probability``; a PPE violation in ``ppe`` (person index -> classes) adds a detection of that
    class with the person's box.
    """
    seen = np.nonzero(view.in_view(xy))[0]
    keep = seen[rng.random(len(seen)) >= miss_probability]
    boxes = view.person_boxes(xy[keep]) if len(keep) else np.empty((0, 4))
    # a small box (far away) is detected with less confidence
    h = boxes[:, 3] - boxes[:, 1]
    conf = np.clip(0.55 + 0.4 * np.minimum(h / 300.0, 1.0) + rng.normal(0.0, 0.03, len(keep)), 0.3, 0.99)
    classes = ["person"] * len(keep)
    extra_box, extra_conf, extra_who = [], [], []
    for j, i in enumerate(keep):
        for cls in ppe.get(int(i), ()):
            classes.append(cls)
            extra_box.append(boxes[j])
            extra_conf.append(float(np.clip(conf[j] - rng.uniform(0.05, 0.25), 0.3, 0.99)))
            extra_who.append(int(i))
    if extra_box:
        boxes = np.vstack([boxes, np.array(extra_box)])
        conf = np.concatenate([conf, extra_conf])
        keep = np.concatenate([keep, extra_who])
    return classes, conf, boxes, keep.astype(np.int64)


def detections_payload(
    camera_id: str, ts: float, frame: int, classes: list[str], confidence: np.ndarray, boxes_px: np.ndarray
) -> bytes:
    """The JSON of one camera frame's detections (boxes rounded to 0.01 px, confidence to 0.001)."""
    dets = [
        {"class": c, "confidence": round(float(p), 3), "box_px": [round(float(v), 2) for v in b]}
        for c, p, b in zip(classes, confidence, boxes_px)
    ]
    return json.dumps(
        {"camera": camera_id, "ts": round(ts, 3), "frame": int(frame), "detections": dets},
        separators=(",", ":"),
    ).encode()


def render_frame(view: CameraView, boxes_px: np.ndarray, *, quality: int = 60) -> bytes:
    """A synthetic grey camera frame (JPEG, the camera's ``image_size_px``) with a person drawn in each box
    (``boxes_px`` [N, 4] x1, y1, x2, y2 px): so the demo's snapshots have a picture. Deterministic: the same boxes
    give the same bytes (and hash)."""
    import io

    from PIL import Image

    w, h = view.width_px, view.height_px
    horizon = h // 3
    img = np.empty((h, w), dtype=np.uint8)
    img[:horizon] = 150  # sky
    img[horizon:] = np.linspace(95, 125, h - horizon, dtype=np.float64).astype(np.uint8)[:, None]  # the yard
    img[horizon : horizon + 3] = 60  # the far fence
    for x in range(0, w, max(w // 12, 1)):  # pipe racks along the fence
        img[horizon - h // 10 : horizon, x : x + max(w // 200, 2)] = 80
    for x1, y1, x2, y2 in np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4):
        i1, j1 = int(np.clip(x1, 0, w)), int(np.clip(y1, 0, h))
        i2, j2 = int(np.clip(x2, 0, w)), int(np.clip(y2, 0, h))
        if i2 - i1 < 2 or j2 - j1 < 2:
            continue
        head = j1 + max((j2 - j1) // 7, 1)
        img[j1:head, i1 + (i2 - i1) // 4 : i2 - (i2 - i1) // 4] = 200  # head (and helmet)
        img[head:j2, i1:i2] = 40  # body
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
