"""``watchfloor bench camera``: camera inference frames per second on the CPU and the cost of decode + NMS.

The model is the synthetic YOLOv8-layout test model (:func:`ingest.camera_infer.synthetic_yolo_model`): a
640 x 640 input, 8400 anchors (the anchor count of a real 640 YOLOv8), 4 classes, clustered boxes of which about
half (4247) pass the 0.25 threshold: a stress case for NMS (a real frame has a few hundred candidates). Its head
is a constant plus the input mean, so the model time is what onnxruntime needs to read a 640 x 640 tensor, not
what a real detector needs (a YOLOv8n takes tens of ms on a CPU core); the figures measure watchfloor's own
pipeline around a model (JPEG decode, letterbox, decode, NMS, projection).

Figures: end-to-end frames/s of a 1920 x 1080 JPEG through :class:`FrameDetector`, the time of each stage, the
decode + NMS time on the model output, and the numba NMS against a plain-numpy greedy NMS (vectorised IoU per
kept box) on the same candidates in the same run.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import best_time, report
from config import DEMO_SITE, load_site
from config.cameras import CameraInferenceSettings
from ingest.camera_infer import Frame, FrameDetector, synthetic_yolo_model
from kernels.detection import decode_yolo, nms

__all__ = ["run"]


def numpy_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou_threshold: float,
              max_det: int) -> np.ndarray:
    """The usual plain-numpy greedy NMS: take the best, drop same-class boxes overlapping it, repeat."""
    order = np.argsort(-scores, kind="stable")
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    keep = []
    while order.size and len(keep) < max_det:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])).clip(0)
        h = (np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])).clip(0)
        inter = w * h
        iou = inter / np.maximum(area[i] + area[rest] - inter, 1e-12)
        order = rest[(iou <= iou_threshold) | (classes[rest] != classes[i])]
    return np.array(keep, dtype=np.int64)


def _anchors(rng: np.random.Generator, n: int, n_classes: int) -> np.ndarray:
    centres = rng.uniform(40, 600, (60, 2))
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 6, (n, 2))
    wh = rng.uniform(15, 90, (n, 2))
    scores = np.zeros((n, n_classes))
    scores[np.arange(n), rng.integers(0, n_classes, n)] = rng.uniform(0, 1, n) ** 2
    return np.column_stack([c, wh, scores])



def run(args: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="watchfloor bench camera")
    ap.add_argument("--frames", type=int, default=30, help="frames through the whole pipeline")
    ap.add_argument("--anchors", type=int, default=8400)
    ap.add_argument("--repeat", type=int, default=20, help="repeats of the decode / NMS timings (best kept)")
    a = ap.parse_args(args)
    from PIL import Image

    rng = np.random.default_rng(11)
    classes = ["person", "no_helmet", "no_vest", "no_harness"]
    anchors = _anchors(rng, a.anchors, len(classes))
    site = load_site(DEMO_SITE)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.onnx"
        path.write_bytes(synthetic_yolo_model(anchors))
        settings = CameraInferenceSettings(model_path=str(path), class_names=classes, max_detections=300)
        det = FrameDetector(site, settings)
        w, h = site.cameras[0].image_size_px
        img = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=85)
        frame = Frame(site.cameras[0].id, 0.0, buf.getvalue())

        det.detect(frame)  # compile the kernels and warm the session
        det.reset_timing()
        t0 = time.perf_counter()
        for _ in range(a.frames):
            n_det = len(det.detect(frame).class_id)
        total = time.perf_counter() - t0
        tm = det.timing
        report("camera-frames-per-s-1920x1080-jpeg", a.frames / total, "frames/s")
        report("camera-jpeg-decode-ms", 1e3 * tm.decode_s / tm.frames, "ms")
        report("camera-letterbox-ms", 1e3 * tm.letterbox_s / tm.frames, "ms")
        report("camera-model-ms-640x640", 1e3 * tm.model_s / tm.frames, "ms")
        report("camera-postprocess-ms", 1e3 * tm.post_s / tm.frames, "ms")
        report("camera-detections-per-frame", n_det, "boxes")

        tensor = np.zeros((1, 3, 640, 640), np.float32)
        sess = det.session
        t_model = best_time(lambda: sess.run(None, {det.input_name: tensor}), a.repeat)
        report("camera-model-frames-per-s-640x640", 1.0 / t_model, "frames/s")
        output = sess.run(None, {det.input_name: tensor})[0]

    boxes, scores, cls = decode_yolo(output, len(classes), 0.25)
    report("camera-candidates-after-threshold", len(boxes), "boxes")
    t_decode = best_time(lambda: decode_yolo(output, len(classes), 0.25), a.repeat)
    t_nms = best_time(lambda: nms(boxes, scores, cls, 0.45, 300), a.repeat)
    report("camera-decode-ms", 1e3 * t_decode, "ms")
    report("camera-nms-ms", 1e3 * t_nms, "ms")
    report("camera-decode-plus-nms-ms", 1e3 * (t_decode + t_nms), "ms")
    t_np = best_time(lambda: numpy_nms(boxes, scores, cls, 0.45, 300), max(1, a.repeat // 4))
    report("camera-numpy-nms-ms", 1e3 * t_np, "ms")
    same = np.array_equal(nms(boxes, scores, cls, 0.45, 300), numpy_nms(boxes, scores, cls, 0.45, 300))
    report("camera-nms-agrees-with-numpy", 100.0 if same else 0.0, "%")
    report("camera-nms-vs-numpy", t_np / t_nms, "x")
