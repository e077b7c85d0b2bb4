"""Object-detector kernels: letterbox, YOLO output decoding, class-aware NMS, floor projection.

Pure functions over arrays (numpy and numba), no I/O. Pixel coordinates: x right, y down, origin at the
top-left corner of the image, continuous (pixel ``i`` covers ``[i, i + 1)``). Boxes are ``[x1, y1, x2, y2]``.

The model side follows the standard YOLO exports:

- input: float32 ``[1, 3, S, S]``, RGB, values 0..1, the frame letterboxed to ``S x S`` (resized keeping its
  aspect ratio, centred, padded with grey 114);
- output, detected by shape for ``C`` classes:
  - YOLOv8 / v11 style ``[1, 4 + C, N]``: per anchor ``cx, cy, w, h`` (input pixels), then ``C`` class scores;
  - YOLOv5 style ``[1, N, 5 + C]``: per anchor ``cx, cy, w, h, objectness``, then ``C`` class probabilities
    (score = objectness x class probability).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numba import njit

__all__ = [
    "Letterbox",
    "Detections",
    "YoloOutputError",
    "PAD_VALUE",
    "letterbox_params",
    "letterbox",
    "letterbox_tensor",
    "boxes_to_letterbox",
    "boxes_from_letterbox",
    "detect_layout",
    "decode_yolo",
    "nms",
    "postprocess",
    "project_feet",
]

#: grey of the letterbox padding (the value YOLO models are trained with)
PAD_VALUE = 114

Layout = Literal["auto", "yolov8", "yolov5"]


class Letterbox(NamedTuple):
    """How an image was fitted into the square model input: ``x_in = x * scale + pad_x`` (same for y)."""

    scale: float  # model-input pixels per image pixel
    pad_x: int  # columns of padding left of the image
    pad_y: int  # rows of padding above the image
    new_w: int  # width of the resized image inside the input, pixels
    new_h: int
    size: int  # side of the square model input, pixels


class Detections(NamedTuple):
    """Detections of one image: ``boxes_px`` float64 [k, 4] (x1, y1, x2, y2 image pixels), ``scores``
    float64 [k] (0..1), ``class_ids`` int64 [k] (model classes), highest score first."""

    boxes_px: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray


class YoloOutputError(ValueError):
    """A model output that is neither of the supported YOLO layouts; the text says what was expected."""


# -- letterbox ----------------------------------------------------------------------------------------------
def letterbox_params(width: int, height: int, size: int = 640) -> Letterbox:
    """Scale and padding that fit a ``width x height`` image into ``size x size`` keeping its aspect ratio."""
    if width <= 0 or height <= 0 or size <= 0:
        raise ValueError(f"image {width}x{height} and input size {size} must be positive")
    scale = min(size / width, size / height)
    new_w = min(size, max(1, int(round(width * scale))))
    new_h = min(size, max(1, int(round(height * scale))))
    return Letterbox(scale, (size - new_w) // 2, (size - new_h) // 2, new_w, new_h, size)


@njit(cache=True, inline="always")
def _source(dst: int, scale: float, n_src: int) -> tuple[int, int, float]:
    """Bilinear source pixels (i0, i1) and weight of i1 for output pixel ``dst`` (pixel centres aligned)."""
    s = (dst + 0.5) / scale - 0.5
    if s <= 0.0:
        return 0, 0, 0.0
    if s >= n_src - 1:
        return n_src - 1, n_src - 1, 0.0
    i0 = int(s)
    return i0, i0 + 1, s - i0


@njit(cache=True)
def _letterbox_hwc(src, scale, pad_x, pad_y, new_w, new_h, size, pad_value):
    h, w, c = src.shape
    out = np.full((size, size, c), pad_value, dtype=np.uint8)
    for y in range(new_h):
        y0, y1, fy = _source(y, scale, h)
        for x in range(new_w):
            x0, x1, fx = _source(x, scale, w)
            for k in range(c):
                top = src[y0, x0, k] * (1.0 - fx) + src[y0, x1, k] * fx
                bottom = src[y1, x0, k] * (1.0 - fx) + src[y1, x1, k] * fx
                v = top * (1.0 - fy) + bottom * fy
                out[pad_y + y, pad_x + x, k] = np.uint8(min(255.0, max(0.0, np.floor(v + 0.5))))
    return out


@njit(cache=True)
def _hwc_to_chw01(img):
    size_y, size_x, c = img.shape
    out = np.empty((1, c, size_y, size_x), dtype=np.float32)
    for k in range(c):
        for y in range(size_y):
            for x in range(size_x):
                out[0, k, y, x] = np.float32(img[y, x, k]) / np.float32(255.0)
    return out


def letterbox(image: np.ndarray, size: int = 640, pad_value: int = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """Fit ``image`` uint8 [H, W, 3] into uint8 [size, size, 3]: bilinear resize by ``scale`` (pixel centres
    aligned, so a scale of 1 copies pixels exactly), centred, the rest ``pad_value``. Returns (image, params)."""
    if image.ndim != 3 or image.dtype != np.uint8:
        raise ValueError(f"letterbox wants uint8 [H, W, C], got {image.dtype} {image.shape}")
    lb = letterbox_params(image.shape[1], image.shape[0], size)
    out = _letterbox_hwc(np.ascontiguousarray(image), lb.scale, lb.pad_x, lb.pad_y, lb.new_w, lb.new_h, size,
                         pad_value)
    return out, lb


def letterbox_tensor(image: np.ndarray, size: int = 640, pad_value: int = PAD_VALUE
                     ) -> tuple[np.ndarray, Letterbox]:
    """The model input for ``image`` uint8 [H, W, 3] (RGB): float32 [1, 3, size, size], values 0..1."""
    img, lb = letterbox(image, size, pad_value)
    return _hwc_to_chw01(img), lb


def boxes_to_letterbox(boxes_px: np.ndarray, lb: Letterbox) -> np.ndarray:
    """Image-pixel boxes float [n, 4] -> model-input pixels (``x * scale + pad``)."""
    b = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)
    return b * lb.scale + np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], dtype=np.float64)


def boxes_from_letterbox(boxes_in: np.ndarray, lb: Letterbox, width: int | None = None,
                         height: int | None = None) -> np.ndarray:
    """Model-input boxes float [n, 4] -> image pixels (``(x - pad) / scale``), clipped to the ``width x height``
    image when given."""
    b = np.asarray(boxes_in, dtype=np.float64).reshape(-1, 4)
    out = (b - np.array([lb.pad_x, lb.pad_y, lb.pad_x, lb.pad_y], dtype=np.float64)) / lb.scale
    if width is not None and height is not None:
        np.clip(out[:, 0::2], 0.0, float(width), out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, float(height), out=out[:, 1::2])
    return out


# -- decoding -----------------------------------------------------------------------------------------------
def detect_layout(shape: tuple[int, ...], num_classes: int, layout: Layout = "auto") -> str:
    """``"yolov8"`` for [1, 4 + C, N], ``"yolov5"`` for [1, N, 5 + C]; raises :class:`YoloOutputError` for any
    other shape, or when both readings fit and ``layout`` is ``"auto"``."""
    c = num_classes
    want = f"YOLOv8 [1, {4 + c}, N] or YOLOv5 [1, N, {5 + c}] for {c} classes"
    if len(shape) != 3 or shape[0] != 1:
        raise YoloOutputError(f"model output has shape {list(shape)}; expected {want}")
    v8 = shape[1] == 4 + c and shape[2] >= 1
    v5 = shape[2] == 5 + c and shape[1] >= 1
    if layout == "yolov8":
        if not v8:
            raise YoloOutputError(f"model output has shape {list(shape)}; layout yolov8 expects [1, {4 + c}, N]")
        return "yolov8"
    if layout == "yolov5":
        if not v5:
            raise YoloOutputError(f"model output has shape {list(shape)}; layout yolov5 expects [1, N, {5 + c}]")
        return "yolov5"
    if v8 and v5:
        raise YoloOutputError(f"model output shape {list(shape)} fits both YOLOv8 and YOLOv5 layouts for {c} "
                              "classes; set the layout in the configuration")
    if v8:
        return "yolov8"
    if v5:
        return "yolov5"
    raise YoloOutputError(f"model output has shape {list(shape)}; expected {want}")


@njit(cache=True)
def _decode_v8(out, num_classes, conf_threshold):
    n = out.shape[1]
    boxes = np.empty((n, 4), dtype=np.float64)
    scores = np.empty(n, dtype=np.float64)
    classes = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        best = -np.inf
        cls = 0
        for c in range(num_classes):
            s = out[4 + c, j]
            if s > best:
                best = s
                cls = c
        if best >= conf_threshold:  # NaN scores fail this test and are dropped
            cx, cy, w, h = out[0, j], out[1, j], out[2, j], out[3, j]
            boxes[k, 0] = cx - w / 2.0
            boxes[k, 1] = cy - h / 2.0
            boxes[k, 2] = cx + w / 2.0
            boxes[k, 3] = cy + h / 2.0
            scores[k] = best
            classes[k] = cls
            k += 1
    return boxes[:k], scores[:k], classes[:k]


@njit(cache=True)
def _decode_v5(out, num_classes, conf_threshold):
    n = out.shape[0]
    boxes = np.empty((n, 4), dtype=np.float64)
    scores = np.empty(n, dtype=np.float64)
    classes = np.empty(n, dtype=np.int64)
    k = 0
    for j in range(n):
        obj = np.float64(out[j, 4])
        if not obj >= conf_threshold:  # score = obj x p <= obj: cannot pass
            continue
        best = -np.inf
        cls = 0
        for c in range(num_classes):
            s = out[j, 5 + c]
            if s > best:
                best = s
                cls = c
        score = obj * best
        if score >= conf_threshold:
            cx, cy, w, h = out[j, 0], out[j, 1], out[j, 2], out[j, 3]
            boxes[k, 0] = cx - w / 2.0
            boxes[k, 1] = cy - h / 2.0
            boxes[k, 2] = cx + w / 2.0
            boxes[k, 3] = cy + h / 2.0
            scores[k] = score
            classes[k] = cls
            k += 1
    return boxes[:k], scores[:k], classes[:k]


def decode_yolo(output: np.ndarray, num_classes: int, conf_threshold: float = 0.25, layout: Layout = "auto"
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidates of a YOLO output (layout detected by shape, see :func:`detect_layout`): each anchor's best
    class, kept when its score >= ``conf_threshold``. Returns (boxes float64 [n, 4] x1 y1 x2 y2 in model-input
    pixels, scores float64 [n], class_ids int64 [n]) in anchor order."""
    out = np.asarray(output)
    kind = detect_layout(tuple(out.shape), num_classes, layout)
    a = np.ascontiguousarray(out[0], dtype=np.float32 if out.dtype != np.float64 else np.float64)
    if kind == "yolov8":
        return _decode_v8(a, num_classes, float(conf_threshold))
    return _decode_v5(a, num_classes, float(conf_threshold))


# -- non-maximum suppression --------------------------------------------------------------------------------
@njit(cache=True)
def _nms_sorted(x1, y1, x2, y2, starts, iou_threshold, max_det):
    """Greedy NMS over boxes sorted by class, then score descending; ``starts`` [G + 1] bounds each class.
    Returns bool [n]: kept. Boxes of other classes are never visited, and the inner loop has no branch."""
    n = x1.shape[0]
    area = np.empty(n, dtype=np.float64)
    for i in range(n):
        area[i] = max(0.0, x2[i] - x1[i]) * max(0.0, y2[i] - y1[i])
    suppressed = np.zeros(n, dtype=np.bool_)
    kept = np.zeros(n, dtype=np.bool_)
    for g in range(starts.shape[0] - 1):
        k = 0
        for a in range(starts[g], starts[g + 1]):
            if suppressed[a]:
                continue
            kept[a] = True
            k += 1
            if k == max_det:
                break
            ax1, ay1, ax2, ay2, aa = x1[a], y1[a], x2[a], y2[a], area[a]
            for b in range(a + 1, starts[g + 1]):
                w = min(ax2, x2[b]) - max(ax1, x1[b])
                h = min(ay2, y2[b]) - max(ay1, y1[b])
                inter = max(w, 0.0) * max(h, 0.0)
                # IoU > threshold, without a division; a zero union has no intersection and never suppresses
                suppressed[b] |= inter > iou_threshold * (aa + area[b] - inter)
    return kept


def nms(boxes: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, iou_threshold: float = 0.45,
        max_det: int = 300) -> np.ndarray:
    """Class-aware greedy non-maximum suppression. ``boxes`` float [n, 4] (x1, y1, x2, y2), ``scores`` float
    [n], ``class_ids`` int [n]. Going down the scores (ties: lower index first), a box is kept unless a kept box
    of the same class overlaps it with IoU > ``iou_threshold``; at most ``max_det`` are kept. Returns int64 [k]
    indices into the inputs, highest score first."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64)
    c = np.asarray(class_ids, dtype=np.int64)
    n = len(b)
    if not (n == len(s) == len(c)):
        raise ValueError(f"boxes {n}, scores {len(s)} and class_ids {len(c)} differ in length")
    if n == 0 or max_det <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n)
    order = np.lexsort((idx, -s, c))  # by class, then score descending, then index
    cs = c[order]
    starts = np.flatnonzero(np.r_[True, cs[1:] != cs[:-1], True]).astype(np.int64)
    bs = b[order]
    kept = order[_nms_sorted(np.ascontiguousarray(bs[:, 0]), np.ascontiguousarray(bs[:, 1]),
                             np.ascontiguousarray(bs[:, 2]), np.ascontiguousarray(bs[:, 3]), starts,
                             float(iou_threshold), int(max_det))]
    return kept[np.lexsort((kept, -s[kept]))][:max_det].astype(np.int64)


def postprocess(output: np.ndarray, lb: Letterbox, width: int, height: int, num_classes: int, *,
                conf_threshold: float = 0.25, iou_threshold: float = 0.45, max_det: int = 100,
                layout: Layout = "auto") -> Detections:
    """Decode, threshold, NMS and map back to the ``width x height`` image (boxes clipped to it)."""
    boxes, scores, classes = decode_yolo(output, num_classes, conf_threshold, layout)
    keep = nms(boxes, scores, classes, iou_threshold, max_det)
    return Detections(boxes_from_letterbox(boxes[keep], lb, width, height), scores[keep], classes[keep])


# -- floor projection ---------------------------------------------------------------------------------------
def project_feet(h: np.ndarray, boxes_px: np.ndarray) -> np.ndarray:
    """Feet on the floor: float64 [n, 2] site metres of the bottom centres ((x1 + x2) / 2, y2) of ``boxes_px``
    [n, 4] through the ground-plane homography ``h`` [3, 3] (image (u, v, 1) -> ground (x, y, 1))."""
    b = np.asarray(boxes_px, dtype=np.float64).reshape(-1, 4)
    u = (b[:, 0] + b[:, 2]) / 2.0
    v = b[:, 3]
    p = np.stack([u, v, np.ones_like(u)], axis=1) @ np.asarray(h, dtype=np.float64).T
    return p[:, :2] / p[:, 2:3]
