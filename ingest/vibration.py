"""The vibration adapter: MQTT waveforms or smart-sensor overall values -> RMS velocity batches.

Topic ``<prefix>/vibration/<point_id>`` (docs/protocol.md): either a waveform
``{"point", "ts", "fs_hz", "unit": "m/s2", "n", "samples": base64 little-endian float32}`` or an overall value
``{"point", "ts", "overall": {"rms_mm_s": x}}``.
"""

from __future__ import annotations

import base64
import binascii
import threading

import numpy as np

from config import Site
from kernels.vibration import features

from .adapter import ClockWatch, MqttAdapter, adapter_main
from .mqtt_source import RawMessage
from .protocol import wire
from .protocol.wire import PayloadError

__all__ = ["VibrationAdapter", "parse_vibration", "main"]

MAX_SAMPLES = 1 << 20
MAX_RMS_MM_S = 500.0  # far beyond zone D of any machine: a unit or sensor error


FEATURES = ("peak_m_s2", "crest", "kurtosis", "dominant_hz", "dominant_mm_s")


def parse_vibration(doc: object, point_index: dict[str, int]) -> tuple[int, float, float, tuple[float, ...], float]:
    """(point index, ts_s, rms_mm_s, the other features in :data:`FEATURES` order (NaN for an overall value),
    the waveform's length in seconds (0 for an overall value)) from one payload; :class:`~ingest.protocol.wire.PayloadError`
    with the reason when it is wrong."""
    if not isinstance(doc, dict):
        raise PayloadError("bad_field", "payload is not an object")
    point = wire.text(doc, "point")
    if point not in point_index:
        raise PayloadError("unknown_id", f"unknown point {point[:32]!r}")
    ts = wire.finite_number(doc, "ts")
    if "overall" in doc:
        ov = doc["overall"]
        if not isinstance(ov, dict):
            raise PayloadError("bad_field", "overall is not an object")
        rms = wire.finite_number(ov, "rms_mm_s")
        extra = (float("nan"),) * len(FEATURES)
        span_s = 0.0
    else:
        if doc.get("unit") != "m/s2":
            raise PayloadError("bad_field", f"unit {str(doc.get('unit'))[:16]!r} is not m/s2")
        fs = wire.finite_number(doc, "fs_hz", 100.0, 1_000_000.0)
        samples = doc.get("samples")
        if not isinstance(samples, str):
            raise PayloadError("bad_field", "samples is not a base64 string")
        try:
            raw = base64.b64decode(samples, validate=True)
        except (binascii.Error, ValueError):
            raise PayloadError("bad_field", "samples are not base64") from None
        if len(raw) % 4:
            raise PayloadError("bad_field", "samples are not a whole number of float32")
        a = np.frombuffer(raw, dtype="<f4").astype(np.float64)
        n = doc.get("n")
        if isinstance(n, bool) or n != len(a):
            raise PayloadError("bad_field", f"n says {str(n)[:20]} samples, payload has {len(a)}")
        if not 64 <= len(a) <= MAX_SAMPLES:
            raise PayloadError("out_of_range", f"{len(a)} samples: need 64 .. {MAX_SAMPLES}")
        if not np.isfinite(a).all():
            raise PayloadError("bad_number", "samples contain NaN or inf")
        f = features(a, float(fs))
        rms = float(f.rms_mm_s)
        extra = tuple(float(getattr(f, name)) for name in FEATURES)
        span_s = len(a) / float(fs)
    if not 0.0 <= rms <= MAX_RMS_MM_S:
        raise PayloadError("out_of_range", f"rms velocity {rms:.1f} mm/s is absurd")
    return point_index[point], ts, rms, extra, span_s


class VibrationAdapter(MqttAdapter):
    name = "vibration"
    payload_kind = "vibration"
    topics = ["vibration/+"]

    def __init__(self, site: Site, stop: threading.Event) -> None:
        super().__init__(site, stop, slice_s=0.5)
        self.point_index = {p.id: i for i, p in enumerate(site.vibration_points)}
        self.rows: list[tuple] = []
        self.watch = ClockWatch(site.clock.vibration)

    def take(self, raw: RawMessage, now_s: float) -> None:
        row = parse_vibration(self.load(raw), self.point_index)
        self.watch.check(row[1], raw.received_ts_s, span_s=row[4])  # a waveform ends span s after its ts
        self.rows.append(row)

    def batches(self, now_s: float):
        rows, self.rows = self.rows, []
        if not rows:
            return []
        idx, ts, rms, extra, _ = zip(*rows)
        arrays = {"point_index": np.array(idx, np.int32), "ts_s": np.array(ts), "rms_mm_s": np.array(rms)}
        ex = np.array(extra, dtype=np.float64).reshape(len(rows), len(FEATURES))
        for k, name in enumerate(FEATURES):
            arrays[name] = ex[:, k]
        return [("vibration.features", "vibration_features", max(ts), arrays)]


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest vibration --site FILE``."""
    return adapter_main("vibration", argv, lambda site, stop: VibrationAdapter(site, stop).run())
