"""Camera inference: JPEG frames -> a YOLO-format ONNX detector -> detections on the floor.

The second camera path next to the edge detections of :mod:`ingest.camera`: a camera (or a frame grabber)
publishes JPEG frames and the camera adapter runs the detector itself. Both paths end in the same
``camera.detections`` batch (docs/protocol.md), so the engine cannot tell them apart.

Frames arrive on ``<prefix>/camera/<camera_id>/frames``; the camera id comes from the topic. The payload is a
one-line JSON header, a newline byte (0x0A), then the raw JPEG bytes::

    {"ts":1763798400.5,"frame":17}\\n<FF D8 ... FF D9>

``ts`` (capture time, epoch seconds, required) and ``frame`` (counter, optional). The header keeps the event
time with the frame on any MQTT version (user properties need MQTT 5). :func:`encode_frame` builds it.

Frames can also be read from a directory (offline evaluation): ``DIR/<camera_id>/<ts_s>.jpg``
(:func:`read_frame_directory`); ``python -m ingest.camera_infer --site FILE DIR`` prints the detections as
edge-detection payloads, one JSON line per frame.

Every refused frame (bad header, not a JPEG, undecodable, wrong image size, unusable model, wrong model
output) raises :class:`FrameRejected` with its reason; the adapter counts and dead-letters it and keeps going.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from config import Site
from config.cameras import CameraInferenceSettings
from config.rules import DETECTION_CLASSES
from ingest.protocol.wire import PayloadError, loads
from kernels.detection import (
    YoloOutputError,
    boxes_from_letterbox,
    decode_yolo,
    detect_layout,
    letterbox_tensor,
    nms,
    project_feet,
)

log = logging.getLogger(__name__)

__all__ = [
    "FRAMES_TOPIC",
    "MAX_HEADER_BYTES",
    "Frame",
    "FrameRejected",
    "FrameDetections",
    "FrameDetector",
    "encode_frame",
    "parse_frame",
    "read_frame_directory",
    "synthetic_yolo_model",
    "main",
]

#: subscription of the frame path, relative to the site's topic prefix
FRAMES_TOPIC = "camera/+/frames"
#: the JSON header must end (newline) within this many bytes
MAX_HEADER_BYTES = 1024
_SOI = b"\xff\xd8"  # JPEG start-of-image marker


class FrameRejected(PayloadError):
    """A frame the detector will not use: a reason code (``bad_field`` unless given) and the detail (counted
    and dead-lettered)."""

    def __init__(self, detail: str, code: str = "bad_field") -> None:
        super().__init__(code, detail)


@dataclass(frozen=True)
class Frame:
    """One camera frame: ``camera`` id, capture time ``ts_s`` (epoch s), optional counter, the JPEG bytes."""

    camera: str
    ts_s: float
    jpeg: bytes
    frame: int | None = None
    header: str = ""  # the header text, for dead letters


@dataclass(frozen=True)
class FrameDetections:
    """What the detector saw in one frame, k detections of watchfloor classes: ``class_id`` uint8 [k] (0
    person, 1 no_helmet, 2 no_vest, 3 no_harness), ``confidence`` float64 [k], ``boxes_px`` float64 [k, 4]
    (x1, y1, x2, y2 image pixels), ``xy_m`` float64 [k, 2] (feet on the floor, site metres)."""

    camera: str
    camera_index: int
    ts_s: float
    class_id: np.ndarray
    confidence: np.ndarray
    boxes_px: np.ndarray
    xy_m: np.ndarray
    frame: int | None = None

    def payload(self) -> dict[str, Any]:
        """The edge-detections payload of docs/protocol.md for this frame (what an edge box would send)."""
        return {"camera": self.camera, "ts": self.ts_s, "frame": self.frame if self.frame is not None else 0,
                "detections": [{"class": DETECTION_CLASSES[int(c)], "confidence": round(float(p), 4),
                                "box_px": [round(float(x), 2) for x in b]}
                               for c, p, b in zip(self.class_id, self.confidence, self.boxes_px)]}


# -- the frame payload --------------------------------------------------------------------------------------
def encode_frame(ts_s: float, jpeg: bytes, frame: int | None = None) -> bytes:
    """The MQTT payload of a frame: JSON header ``{"ts", "frame"}``, a newline, the JPEG bytes."""
    head: dict[str, Any] = {"ts": ts_s}
    if frame is not None:
        head["frame"] = frame
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + jpeg


def parse_frame(topic: str, payload: bytes) -> Frame:
    """Split a frame message (``.../camera/<camera_id>/frames``) into a :class:`Frame`; raises
    :class:`FrameRejected` naming what is wrong with the header."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[-1] != "frames" or parts[-3] != "camera" or not parts[-2]:
        raise FrameRejected("frame topic is not <prefix>/camera/<camera_id>/frames")
    camera = parts[-2]
    if payload[:2] == _SOI:
        raise FrameRejected("frame without its JSON header (a bare JPEG has no capture time)")
    nl = payload.find(b"\n", 0, MAX_HEADER_BYTES + 1)
    if nl < 0:
        raise FrameRejected(f"frame header is not a JSON line within the first {MAX_HEADER_BYTES} bytes")
    text = payload[:nl].decode("utf-8", "replace")
    try:
        head = loads(payload[:nl], MAX_HEADER_BYTES)
    except PayloadError as e:
        raise FrameRejected(f"frame header: {e.detail}", e.code) from None
    if not isinstance(head, dict):
        raise FrameRejected("frame header is not a JSON object")
    ts = head.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise FrameRejected("frame header ts is not a finite number")
    counter = head.get("frame")
    if counter is not None and (isinstance(counter, bool) or not isinstance(counter, int) or counter < 0):
        raise FrameRejected("frame header frame is not a non-negative integer")
    if "camera" in head and head["camera"] != camera:
        raise FrameRejected(f"frame header camera {head['camera']!r} differs from the topic's {camera!r}")
    jpeg = payload[nl + 1 :]
    if jpeg[:2] != _SOI:
        raise FrameRejected("frame body is not a JPEG (no start-of-image marker after the header)")
    return Frame(camera, float(ts), bytes(jpeg), counter, text)


def read_frame_directory(directory: str | Path) -> tuple[list[Frame], list[tuple[str, str]]]:
    """Frames stored as ``DIR/<camera_id>/<ts_s>.jpg`` (e.g. ``CAM1/1763798400.500.jpg``), in time order
    (then camera). Returns (frames, rejects); a reject is ``(path, reason)`` for a file whose name is not a
    time or that cannot be read."""
    root = Path(directory)
    frames: list[Frame] = []
    rejects: list[tuple[str, str]] = []
    for path in sorted(p for p in root.glob("*/*") if p.is_file()):
        if path.suffix.lower() not in (".jpg", ".jpeg"):
            rejects.append((str(path), "not a .jpg file"))
            continue
        try:
            ts = float(path.stem)
        except ValueError:
            rejects.append((str(path), "file name is not a capture time in epoch seconds"))
            continue
        if not math.isfinite(ts):
            rejects.append((str(path), "file name is not a finite capture time"))
            continue
        try:
            data = path.read_bytes()
        except OSError as e:
            rejects.append((str(path), f"cannot read: {e.strerror}"))
            continue
        frames.append(Frame(path.parent.name, ts, data, None, path.name))
    frames.sort(key=lambda f: (f.ts_s, f.camera))
    return frames, rejects


# -- the detector -------------------------------------------------------------------------------------------
@dataclass
class _Timing:
    frames: int = 0
    decode_s: float = 0.0
    letterbox_s: float = 0.0
    model_s: float = 0.0
    post_s: float = 0.0


class FrameDetector:
    """Runs the configured ONNX model on frames of the site's cameras.

    ``model_path`` is taken as given (the loader resolves it against the site file; ``base_dir`` resolves a
    relative one here). A model that cannot be loaded, whose input is not [1, 3, S, S] with S =
    ``input_size_px``, or whose output is not a YOLO layout for ``len(class_names)`` classes leaves the detector
    *unusable*: :attr:`problem` says why, it is logged once, and every frame is refused with that reason.
    :attr:`counts` counts frames done and refusals by reason; :attr:`timing` sums the stage times.
    """

    def __init__(self, site: Site, settings: CameraInferenceSettings, base_dir: Path | None = None) -> None:
        self.site = site
        self.settings = s = settings
        self.base_dir = base_dir
        self.problem: str | None = None
        self.counts: Counter[str] = Counter()
        self.timing = _Timing()
        wanted = set(s.cameras) if s.cameras is not None else None
        self.cameras = {c.id: (i, np.array(c.homography, dtype=np.float64), tuple(c.image_size_px))
                        for i, c in enumerate(site.cameras) if wanted is None or c.id in wanted}
        self.num_classes = len(s.class_names)
        # model class -> watchfloor class_id, -1: ignored
        self.class_lut = np.array([DETECTION_CLASSES.index(c) if c is not None else -1 for c in s.model_classes()],
                                  dtype=np.int64)
        self.session: Any = None
        self.input_name = ""
        self.layout: str = s.layout
        self._load()

    def _load(self) -> None:
        s = self.settings
        path = Path(s.model_path)
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        try:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = s.threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            if not path.is_file():
                raise FileNotFoundError(f"no such file {path}")
            sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
            inp = sess.get_inputs()
            if len(inp) != 1:
                raise ValueError(f"the model has {len(inp)} inputs; a YOLO model has one image input")
            shape = list(inp[0].shape)
            size = s.input_size_px
            fixed = [d if isinstance(d, int) else None for d in shape]
            if (len(shape) != 4 or fixed[0] not in (1, None) or fixed[1] not in (3, None)
                    or fixed[2] not in (size, None) or fixed[3] not in (size, None)):
                raise ValueError(f"model input {inp[0].name} has shape {shape}; expected [1, 3, {size}, {size}] "
                                 "(input_size_px)")
            if inp[0].type != "tensor(float)":
                raise ValueError(f"model input {inp[0].name} is {inp[0].type}; expected tensor(float)")
            warm = sess.run(None, {inp[0].name: np.zeros((1, 3, size, size), dtype=np.float32)})
            self.layout = detect_layout(tuple(np.shape(warm[0])), self.num_classes, s.layout)
            self.session, self.input_name = sess, inp[0].name
            log.info("camera model %s loaded: %s layout, %d classes, input %d px, cameras %s", path, self.layout,
                     self.num_classes, size, sorted(self.cameras))
        except Exception as e:  # noqa: BLE001 - any model problem leaves the adapter running on the edge path
            self.problem = f"camera model unusable: {e}"
            log.error("%s (%s); frames will be refused, edge detections still work", self.problem, path)

    @property
    def usable(self) -> bool:
        return self.session is not None

    def reset_timing(self) -> None:
        """Start the stage-time sums (:attr:`timing`) afresh."""
        self.timing = _Timing()

    def _reject(self, reason: str) -> FrameRejected:
        self.counts[reason] += 1
        return FrameRejected(reason)

    def decode_image(self, frame: Frame, size_px: tuple[int, int]) -> np.ndarray:
        """uint8 [H, W, 3] RGB of the frame's JPEG; refuses non-JPEG, undecodable and wrongly sized images."""
        from PIL import Image, UnidentifiedImageError

        if len(frame.jpeg) > self.settings.max_frame_bytes:
            raise self._reject(f"frame larger than {self.settings.max_frame_bytes} bytes")
        try:
            img = Image.open(io.BytesIO(frame.jpeg))
        except (UnidentifiedImageError, OSError, ValueError):
            raise self._reject("undecodable JPEG: not an image Pillow can identify") from None
        if img.format != "JPEG":
            raise self._reject(f"frame is a {img.format} image, not a JPEG")
        w, h = size_px
        if img.size != (w, h):
            raise self._reject(f"frame is {img.size[0]}x{img.size[1]} px, camera {frame.camera} is configured "
                               f"for {w}x{h} px (image_size_px)")
        try:
            rgb = img.convert("RGB")  # decodes; a truncated or corrupt stream raises here
        except Exception as e:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError, ... on bad data
            raise self._reject(f"undecodable JPEG: {e.__class__.__name__}") from None
        return np.asarray(rgb, dtype=np.uint8)

    def detect(self, frame: Frame) -> FrameDetections:
        """Detections of watchfloor classes in one frame (boxes clipped to the image, NMS applied). Raises
        :class:`FrameRejected` with the reason when the frame or the model cannot give any."""
        cam = self.cameras.get(frame.camera)
        if cam is None:
            raise self._reject(f"frames of camera {frame.camera!r} are not taken (unknown camera or not listed "
                               "in camera_inference.cameras)")
        if self.session is None:
            raise self._reject(self.problem or "camera model not loaded")
        ci, hom, (w, h) = cam
        s = self.settings
        t0 = time.perf_counter()
        image = self.decode_image(frame, (w, h))
        t1 = time.perf_counter()
        tensor, lb = letterbox_tensor(image, s.input_size_px)
        t2 = time.perf_counter()
        try:
            output = self.session.run(None, {self.input_name: tensor})[0]
        except Exception as e:  # noqa: BLE001 - a model that fails on a frame must not stop the adapter
            raise self._reject(f"camera model failed: {e.__class__.__name__}") from None
        t3 = time.perf_counter()
        try:
            boxes, scores, classes = decode_yolo(output, self.num_classes, s.confidence_threshold, self.layout)
        except YoloOutputError as e:
            raise self._reject(f"camera model output: {e}") from None
        # classes that map to nothing are dropped before NMS so they cannot suppress anything
        mapped = self.class_lut[classes] >= 0
        self.counts["ignored model class"] += int(np.count_nonzero(~mapped))
        boxes, scores, classes = boxes[mapped], scores[mapped], classes[mapped]
        keep = nms(boxes, scores, classes, s.iou_threshold, s.max_detections)
        px = boxes_from_letterbox(boxes[keep], lb, w, h)
        ok = (px[:, 2] > px[:, 0]) & (px[:, 3] > px[:, 1]) & np.isfinite(px).all(axis=1)
        self.counts["box outside the image"] += int(np.count_nonzero(~ok))
        px, kept_scores, kept_classes = px[ok], scores[keep][ok], classes[keep][ok]
        t4 = time.perf_counter()
        tm = self.timing
        tm.frames += 1
        tm.decode_s += t1 - t0
        tm.letterbox_s += t2 - t1
        tm.model_s += t3 - t2
        tm.post_s += t4 - t3
        self.counts["frames"] += 1
        return FrameDetections(frame.camera, ci, frame.ts_s, self.class_lut[kept_classes].astype(np.uint8),
                               np.clip(kept_scores, 0.0, 1.0), px, project_feet(hom, px), frame.frame)


# -- a synthetic model for tests, benchmarks and demos ------------------------------------------------------
def synthetic_yolo_model(anchors: np.ndarray, *, input_size_px: int = 640, layout: str = "yolov8",
                         brightness: tuple[int, int] | None = None) -> bytes:
    """A serialized ONNX model (opset 17) with the YOLO contract whose output is known in advance.

    ``anchors`` float [N, 4 + C] (yolov8: cx, cy, w, h, C scores) or [N, 5 + C] (yolov5: cx, cy, w, h,
    objectness, C probabilities), model-input pixels. The output is these anchors in the layout's shape
    ([1, 4 + C, N] or [1, N, 5 + C]); with ``brightness = (anchor, column)`` that one value additionally gets the
    mean of the input tensor added (so the output depends on the pixels: a black frame adds its padding grey
    only, a white one nearly 1).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    a = np.asarray(anchors, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError("anchors must be [N, 4 + C] or [N, 5 + C]")
    mask = np.zeros_like(a)
    if brightness is not None:
        mask[brightness] = 1.0
    if layout == "yolov8":
        const, gate = a.T[None], mask.T[None]
    elif layout == "yolov5":
        const, gate = a[None], mask[None]
    else:
        raise ValueError(f"layout {layout!r}: yolov8 or yolov5")
    s = input_size_px
    nodes = [
        # one axis at a time: a single float32 sum over 1.2 M pixels would drift by ~1e-3
        helper.make_node("ReduceMean", ["images"], ["mean_x"], axes=[3], keepdims=1),
        helper.make_node("ReduceMean", ["mean_x"], ["mean_y"], axes=[2], keepdims=1),
        helper.make_node("ReduceMean", ["mean_y"], ["mean4"], axes=[1], keepdims=1),
        helper.make_node("Reshape", ["mean4", "shape3"], ["mean3"]),
        helper.make_node("Mul", ["mean3", "gate"], ["bright"]),
        helper.make_node("Add", ["anchors", "bright"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "watchfloor_synthetic_yolo",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, s, s])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(const.shape))],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(const), "anchors"),
                     numpy_helper.from_array(np.ascontiguousarray(gate), "gate"),
                     numpy_helper.from_array(np.array([1, 1, 1], dtype=np.int64), "shape3")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="watchfloor-tests")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


# -- offline: a directory of frames -------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ingest.camera_infer --site FILE DIR``: run the site's camera model on ``DIR/<camera>/<ts>.jpg``
    and print one edge-detections payload (JSON) per frame; refused frames go to stderr with their reason."""
    from config import load_site

    ap = argparse.ArgumentParser(prog="python -m ingest.camera_infer")
    ap.add_argument("--site", required=True)
    ap.add_argument("directory")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s camera-infer %(levelname)s %(message)s")
    site = load_site(args.site)
    settings = getattr(site, "camera_inference", None)
    if settings is None:
        print(f"{args.site}: no camera_inference section", file=sys.stderr)
        return 2
    det = FrameDetector(site, settings, base_dir=Path(args.site).resolve().parent)
    frames, bad = read_frame_directory(args.directory)
    for path, reason in bad:
        print(f"{path}: {reason}", file=sys.stderr)
    for f in frames:
        try:
            print(json.dumps(det.detect(f).payload(), separators=(",", ":")))
        except FrameRejected as e:
            print(f"{f.camera}/{f.header}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
