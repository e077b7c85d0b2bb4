"""Detection kernels: the letterbox keeps pixels and maps boxes both ways exactly, YOLOv8 / YOLOv5 outputs decode
to hand-computed boxes and scores, anything else is refused with the shapes it expected, class-aware NMS keeps
exactly what a plain-numpy greedy reference keeps on random boxes, and feet project to hand-computed floor points."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.detection import (
    PAD_VALUE,
    YoloOutputError,
    boxes_from_letterbox,
    boxes_to_letterbox,
    decode_yolo,
    detect_layout,
    letterbox,
    letterbox_params,
    letterbox_tensor,
    nms,
    postprocess,
    project_feet,
)


# -- letterbox ----------------------------------------------------------------------------------------------
def test_letterbox_params_of_a_full_hd_frame_are_a_third_and_140_rows_of_padding():
    # 1920 x 1080 into 640: scale min(640/1920, 640/1080) = 1/3, resized 640 x 360, (640 - 360) / 2 = 140
    lb = letterbox_params(1920, 1080, 640)
    assert lb.scale == pytest.approx(1 / 3) and (lb.new_w, lb.new_h) == (640, 360)
    assert (lb.pad_x, lb.pad_y, lb.size) == (0, 140, 640)
    portrait = letterbox_params(1080, 1920, 640)
    assert (portrait.pad_x, portrait.pad_y, portrait.new_w, portrait.new_h) == (140, 0, 360, 640)


def test_letterbox_at_scale_one_copies_pixels_and_pads_with_grey_114():
    img = np.random.default_rng(1).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    out, lb = letterbox(img, 640)
    assert lb.scale == 1.0 and lb.pad_y == 80
    assert np.array_equal(out[80:560], img)
    assert (out[:80] == PAD_VALUE).all() and (out[560:] == PAD_VALUE).all()


def test_letterbox_halving_a_pixel_doubled_image_gives_the_original_back_exactly():
    small = np.random.default_rng(2).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    big = small.repeat(2, axis=0).repeat(2, axis=1)  # 1280 x 960, every pixel a 2 x 2 block
    out, lb = letterbox(big, 640)
    assert lb.scale == 0.5 and (lb.pad_x, lb.pad_y) == (0, 80)
    # bilinear with aligned pixel centres samples halfway between the two equal pixels of each block
    assert np.array_equal(out[80:560], small)


def test_letterbox_tensor_is_nchw_float_zero_to_one():
    img = np.full((1080, 1920, 3), 255, dtype=np.uint8)
    t, lb = letterbox_tensor(img, 640)
    assert t.shape == (1, 3, 640, 640) and t.dtype == np.float32
    assert t[0, :, 140:500].min() == 1.0
    assert np.allclose(t[0, :, :140], 114 / 255) and np.allclose(t[0, :, 500:], 114 / 255)


def test_boxes_round_trip_through_the_letterbox():
    rng = np.random.default_rng(3)
    for w, h in ((1920, 1080), (1280, 720), (640, 480), (1000, 1700), (37, 53)):
        lb = letterbox_params(w, h, 640)
        xy = rng.uniform(0, 1, (100, 2)) * [w, h]
        boxes = np.column_stack([xy, xy + rng.uniform(1, 50, (100, 2))])
        back = boxes_from_letterbox(boxes_to_letterbox(boxes, lb), lb)
        np.testing.assert_allclose(back, boxes, rtol=0, atol=1e-9)
    # hand check: the resized area of a 1920 x 1080 frame is the whole image
    lb = letterbox_params(1920, 1080, 640)
    np.testing.assert_allclose(boxes_from_letterbox(np.array([[0, 140, 640, 500]]), lb), [[0, 0, 1920, 1080]])
    # clipping to the image
    np.testing.assert_allclose(boxes_from_letterbox(np.array([[-30, 100, 700, 520]]), lb, 1920, 1080),
                               [[0, 0, 1920, 1080]])


# -- decoding -----------------------------------------------------------------------------------------------
def _v8(anchors: list[list[float]]) -> np.ndarray:
    return np.array(anchors, dtype=np.float32).T[None]


def test_yolov8_output_decodes_to_corner_boxes_with_the_best_class():
    out = _v8([
        [100, 200, 20, 40, 0.10, 0.90, 0.00, 0.20],  # class 1 at 0.9
        [300, 300, 10, 10, 0.30, 0.05, 0.00, 0.00],  # class 0 at 0.3
        [50, 50, 10, 10, 0.10, 0.20, 0.24, 0.00],  # best 0.24 < 0.25: dropped
    ])
    assert out.shape == (1, 8, 3)
    boxes, scores, classes = decode_yolo(out, 4, 0.25)
    np.testing.assert_allclose(boxes, [[90, 180, 110, 220], [295, 295, 305, 305]])
    np.testing.assert_allclose(scores, [0.9, 0.3], rtol=1e-6)
    assert classes.tolist() == [1, 0]


def test_yolov5_output_scores_are_objectness_times_class_probability():
    out = np.array([[
        [100, 200, 20, 40, 0.8, 0.1, 0.9, 0.0, 0.0],  # 0.8 x 0.9 = 0.72, class 1
        [300, 300, 10, 10, 0.2, 1.0, 0.0, 0.0, 0.0],  # objectness 0.2 < 0.25: dropped
        [60, 60, 10, 10, 0.5, 0.4, 0.0, 0.0, 0.0],  # 0.5 x 0.4 = 0.2 < 0.25: dropped
        [10, 20, 4, 8, 0.5, 0.0, 0.0, 0.0, 0.6],  # 0.3, class 3
    ]], dtype=np.float32)
    assert out.shape == (1, 4, 9)
    boxes, scores, classes = decode_yolo(out, 4, 0.25)
    np.testing.assert_allclose(boxes, [[90, 180, 110, 220], [8, 16, 12, 24]])
    np.testing.assert_allclose(scores, [0.72, 0.3], rtol=1e-6)
    assert classes.tolist() == [1, 3]


@pytest.mark.parametrize("shape", [(8, 100), (2, 8, 100), (1, 7, 100), (1, 100, 10), (1, 8, 100, 1)])
def test_other_output_shapes_are_refused_naming_the_expected_layouts(shape):
    with pytest.raises(YoloOutputError) as e:
        decode_yolo(np.zeros(shape, np.float32), 4)
    assert "[1, 8, N]" in str(e.value) and "[1, N, 9]" in str(e.value)


def test_a_shape_both_layouts_fit_needs_the_layout_configured():
    with pytest.raises(YoloOutputError, match="set the layout"):
        detect_layout((1, 8, 9), 4)
    assert detect_layout((1, 8, 9), 4, "yolov8") == "yolov8"
    assert detect_layout((1, 8, 9), 4, "yolov5") == "yolov5"
    with pytest.raises(YoloOutputError, match="layout yolov5"):
        detect_layout((1, 8, 100), 4, "yolov5")
    assert detect_layout((1, 8, 8400), 4) == "yolov8" and detect_layout((1, 25200, 9), 4) == "yolov5"


def test_nan_scores_never_pass_the_threshold():
    out = _v8([[100, 100, 10, 10, np.nan, np.nan], [200, 200, 10, 10, 0.5, np.nan]])
    boxes, scores, classes = decode_yolo(out, 2, 0.25)
    assert scores.tolist() == [0.5] and classes.tolist() == [0]


# -- NMS ----------------------------------------------------------------------------------------------------
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def reference_nms(boxes, scores, classes, iou_threshold, max_det):
    """Plain greedy NMS: down the scores, keep a box unless a kept box of its class overlaps it > threshold."""
    keep: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if len(keep) == max_det:
            break
        if all(classes[k] != classes[i] or _iou(boxes[k], boxes[i]) <= iou_threshold for k in keep):
            keep.append(int(i))
    return np.array(keep, dtype=np.int64)


def _random_boxes(rng, n: int, n_classes: int):
    centres = rng.uniform(0, 640, (max(1, n // 20), 2))  # clusters, so that many boxes overlap
    c = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 8, (n, 2))
    wh = rng.uniform(5, 80, (n, 2))
    boxes = np.column_stack([c - wh / 2, c + wh / 2])
    return boxes, rng.uniform(0, 1, n), rng.integers(0, n_classes, n)


@pytest.mark.parametrize("seed", range(6))
def test_nms_keeps_what_the_greedy_reference_keeps_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 600))
    boxes, scores, classes = _random_boxes(rng, n, int(rng.integers(1, 5)))
    for thr in (0.3, 0.45, 0.7):
        for max_det in (300, 10):
            got = nms(boxes, scores, classes, thr, max_det)
            assert np.array_equal(got, reference_nms(boxes, scores, classes, thr, max_det)), (thr, max_det)


def test_nms_is_class_aware_and_suppresses_only_above_the_threshold():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 0, 11, 10], [5, 0, 15, 10]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # same box, other class: kept; [1,0,11,10] vs first: IoU 90/110 = 0.818 > 0.5: gone;
    # [5,0,15,10] vs first: IoU 50/150 = 1/3 <= 1/3: kept (strictly above suppresses)
    assert nms(boxes, scores, np.array([0, 1, 0, 0]), 1 / 3).tolist() == [0, 1, 3]
    assert nms(boxes, scores, np.array([0, 1, 0, 0]), 0.3).tolist() == [0, 1]
    # equal scores: the lower index wins
    assert nms(boxes[:2], np.array([0.5, 0.5]), np.array([0, 0]), 0.5).tolist() == [0]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)).tolist() == []


def test_postprocess_maps_kept_boxes_back_to_the_frame():
    lb = letterbox_params(1920, 1080, 640)
    out = _v8([[320, 470, 20, 60, 0.9, 0.0], [321, 470, 20, 60, 0.8, 0.0], [100, 300, 30, 30, 0.0, 0.6]])
    det = postprocess(out, lb, 1920, 1080, 2, conf_threshold=0.25, iou_threshold=0.45)
    # (310, 440, 330, 500) in the input is ((310 - 0) x 3, (440 - 140) x 3, ...) in the frame
    np.testing.assert_allclose(det.boxes_px, [[930, 900, 990, 1080], [255, 435, 345, 525]], atol=1e-3)
    assert det.class_ids.tolist() == [0, 1]


# -- floor projection ---------------------------------------------------------------------------------------
def test_feet_project_through_the_homography_to_hand_computed_points(demo_site):
    h = np.array(demo_site.cameras[0].homography)  # CAM1
    # bottom row v = 1080: w = 0.00037037 x 1080 + 1 = 1.4; x = (0.105555556 x 1080 + 40) / 1.4 = 154 / 1.4 = 110;
    # y = (0.036458333 u + 60 + 115) / 1.4: u = 960 -> 210 / 1.4 = 150, u = 480 -> 137.5, u = 1440 -> 162.5
    boxes = np.array([[930, 900, 990, 1080], [450, 960, 510, 1080], [1410, 990, 1470, 1080]], dtype=float)
    # (the site file rounds H to 9 digits: 0.00037037 for 1/2700 moves the points by 0.05 mm)
    np.testing.assert_allclose(project_feet(h, boxes), [[110, 150], [110, 137.5], [110, 162.5]], atol=1e-4)
