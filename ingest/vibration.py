"""The vibration adapter: MQTT waveforms or smart-sensor overall values -> RMS velocity batches.

Topic ``<prefix>/vibration/<point_id>`` (docs/protocol.md): either a waveform
``{"point", "ts", "fs_hz", "unit": "m/s2", "n", "samples": base64 little-endian float32}`` or an overall value
``{"point", "ts", "overall": {"rms_mm_s": x}}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading

import numpy as np

from config import Site
from kernels.vibration import features

from .adapter import MqttAdapter, adapter_main
from .mqtt_source import RawMessage

__all__ = ["VibrationAdapter", "parse_vibration", "main"]

MAX_SAMPLES = 1 << 20
MAX_RMS_MM_S = 500.0  # far beyond zone D of any machine: a unit or sensor error


FEATURES = ("peak_m_s2", "crest", "kurtosis", "dominant_hz", "dominant_mm_s")


def parse_vibration(doc: object, point_index: dict[str, int]) -> tuple[int, float, float, tuple[float, ...]]:
    """(point index, ts_s, rms_mm_s, the other features in :data:`FEATURES` order, NaN for an overall value)
    from one payload; ValueError with the reason when it is wrong."""
    if not isinstance(doc, dict):
        raise ValueError("payload is not an object")
    point = doc.get("point")
    if point not in point_index:
        raise ValueError("unknown point")
    ts = doc.get("ts")
    if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
        raise ValueError("ts is not a finite number")
    if "overall" in doc:
        ov = doc["overall"]
        v = ov.get("rms_mm_s") if isinstance(ov, dict) else None
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError("overall.rms_mm_s is not a finite number")
        rms = float(v)
        extra = (float("nan"),) * len(FEATURES)
    else:
        if doc.get("unit") != "m/s2":
            raise ValueError(f"unit {doc.get('unit')!r} is not m/s2")
        fs = doc.get("fs_hz")
        if not isinstance(fs, (int, float)) or not (100.0 <= fs <= 1_000_000.0):
            raise ValueError("fs_hz missing or outside 100 Hz .. 1 MHz")
        try:
            raw = base64.b64decode(doc.get("samples", ""), validate=True)
        except (binascii.Error, TypeError):
            raise ValueError("samples are not base64") from None
        if len(raw) % 4:
            raise ValueError("samples are not a whole number of float32")
        a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        if doc.get("n") != len(a):
            raise ValueError(f"n says {doc.get('n')} samples, payload has {len(a)}")
        if not 64 <= len(a) <= MAX_SAMPLES:
            raise ValueError(f"{len(a)} samples: need 64 .. {MAX_SAMPLES}")
        if not np.isfinite(a).all():
            raise ValueError("samples contain NaN or inf")
        f = features(a, float(fs))
        rms = float(f.rms_mm_s)
        extra = tuple(float(getattr(f, name)) for name in FEATURES)
    if not 0.0 <= rms <= MAX_RMS_MM_S:
        raise ValueError(f"rms velocity {rms:.1f} mm/s is absurd")
    return point_index[point], float(ts), rms, extra


class VibrationAdapter(MqttAdapter):
    name = "vibration"
    topics = ["vibration/+"]

    def __init__(self, site: Site, stop: threading.Event) -> None:
        super().__init__(site, stop, slice_s=0.5)
        self.point_index = {p.id: i for i, p in enumerate(site.vibration_points)}

    def batches(self, raws: list[RawMessage], now_s: float):
        rows = []
        for raw in raws:
            try:
                rows.append(parse_vibration(json.loads(raw.payload), self.point_index))
            except (ValueError, UnicodeDecodeError) as e:  # JSONDecodeError is a ValueError
                self.rejects.add(str(e) if not isinstance(e, json.JSONDecodeError) else "not JSON", raw.topic,
                                 raw.payload[:512])
        if not rows:
            return []
        idx, ts, rms, extra = zip(*rows)
        arrays = {"point_index": np.array(idx, np.int32), "ts_s": np.array(ts), "rms_mm_s": np.array(rms)}
        ex = np.array(extra, dtype=np.float64).reshape(len(rows), len(FEATURES))
        for k, name in enumerate(FEATURES):
            arrays[name] = ex[:, k]
        return [("vibration.features", "vibration_features", max(ts), arrays)]


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest vibration --site FILE``."""
    return adapter_main("vibration", argv, lambda site, stop: VibrationAdapter(site, stop).run())
