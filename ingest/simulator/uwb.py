"""UWB range synthesis and the gateway's MQTT payloads.

A tag-to-anchor range is the true 3D distance plus Gaussian noise N(0, sigma^2); with probability
``nlos_probability`` the direct path is blocked and the first path arrives late, adding a positive
exponential bias of mean ``nlos_mean_m``. Anchors beyond ``max_range_m`` (true distance) are not heard,
and a heard range is lost with probability ``drop_probability``. Ranges are rounded to the millimetre.
"""

from __future__ import annotations

import json
import math

import numpy as np

__all__ = ["NLOS_MEAN_M", "NLOS_PROBABILITY", "ranges_payloads", "synthesize_ranges", "truth_payload"]

NLOS_PROBABILITY = 0.05
NLOS_MEAN_M = 0.4


def synthesize_ranges(
    truth_m: np.ndarray,
    anchors_m: np.ndarray,
    rng: np.random.Generator,
    *,
    sigma_m: float,
    max_range_m: float,
    nlos_probability: float = NLOS_PROBABILITY,
    nlos_mean_m: float = NLOS_MEAN_M,
    drop_probability: float = 0.0,
) -> np.ndarray:
    """Measured ranges float64 [N, K] (metres, mm resolution) for tags ``truth_m`` [N, 3] and anchors [K, 3].

    NaN where the anchor did not hear the tag (out of range or dropped). Never negative.
    """
    d = np.linalg.norm(truth_m[:, None, :] - anchors_m[None, :, :], axis=2)
    shape = d.shape
    r = d + rng.normal(0.0, sigma_m, shape)
    nlos = rng.random(shape) < nlos_probability
    r = r + np.where(nlos, rng.exponential(nlos_mean_m, shape), 0.0)
    r = np.round(np.maximum(r, 0.0), 3)
    lost = (d > max_range_m) | (rng.random(shape) < drop_probability)
    return np.where(lost, np.nan, r)


def ranges_payloads(
    tags: list[str], ts: float, ranges_m: np.ndarray, anchor_ids: list[str], batch: int = 50
) -> list[bytes]:
    """JSON lists of ``{"tag", "ts", "ranges": {anchor: metres}}``, at most ``batch`` tags per message.

    ``ranges_m`` float64 [N, K] (NaN = not heard); a tag that heard no anchor is left out.
    """
    items = []
    t = round(ts, 3)
    for tag, row in zip(tags, ranges_m):
        heard = {a: float(v) for a, v in zip(anchor_ids, row) if not math.isnan(v)}
        if heard:
            items.append({"tag": tag, "ts": t, "ranges": heard})
    return [
        json.dumps(items[k : k + batch], separators=(",", ":")).encode() for k in range(0, len(items), batch)
    ]


def truth_payload(tags: list[str], ts: float, truth_m: np.ndarray) -> bytes:
    """JSON ``{"ts", "tags": {tag: [x, y, z]}}`` of the true positions (metres, mm resolution)."""
    pos = {tag: [round(float(v), 3) for v in p] for tag, p in zip(tags, truth_m)}
    return json.dumps({"ts": round(ts, 3), "tags": pos}, separators=(",", ":")).encode()
