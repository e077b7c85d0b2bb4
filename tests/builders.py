"""Bus messages the tests send as if they came from an adapter."""

from __future__ import annotations

import numpy as np

from ingest.bus import Message

__all__ = ["positions", "gas_values", "wearable_events", "vibration_features"]


def positions(site, tags_xy: dict[str, tuple[float, float]], ts: float, *, z_m: float = 1.2,
              gdop: float = 1.5) -> Message:
    """A ``uwb.positions`` batch: one valid fix per tag at (x, y, z_m) site metres, all at time ``ts``."""
    index = {p.tag: i for i, p in enumerate(site.people)}
    idx = np.array([index[t] for t in tags_xy], dtype=np.int32)
    xyz = np.array([[x, y, z_m] for x, y in tags_xy.values()])
    n = len(idx)
    return Message(topic="uwb.positions", source="uwb", kind="positions", event_ts_s=ts, ingest_ts_s=ts,
                   arrays={"person_index": idx, "xyz_m": xyz, "ts_s": np.full(n, ts), "valid": np.ones(n, bool),
                           "gdop": np.full(n, gdop), "rms_m": np.full(n, 0.1)})


def gas_values(site, values: dict[str, float], ts: float, *, quality: int = 0) -> Message:
    """A ``gas.values`` batch: ``values`` by detector id (in the detector's unit), all with OPC UA ``quality``
    (0 good, 1 uncertain, 2 bad: then the value is sent as NaN) at time ``ts``."""
    index = {d.id: i for i, d in enumerate(site.gas_detectors)}
    n = len(values)
    value = np.array([np.nan if quality == 2 else v for v in values.values()], dtype=np.float64)
    return Message(topic="gas.values", source="gas", kind="gas_values", event_ts_s=ts, ingest_ts_s=ts,
                   arrays={"detector_index": np.array([index[d] for d in values], np.int32), "value": value,
                           "quality": np.full(n, quality, np.uint8), "ts_s": np.full(n, ts)})


def wearable_events(events: list[tuple[str, str]], ts: float) -> Message:
    """A ``wearable.events`` batch from the UWB adapter: (tag, event) pairs (``sos``, ``fall``, ``battery_low``)
    at time ``ts``."""
    return Message(topic="wearable.events", source="uwb", kind="wearable_events", event_ts_s=ts, ingest_ts_s=ts,
                   meta={"events": [{"tag": tag, "ts": ts, "event": event} for tag, event in events]})


def vibration_features(site, rms_mm_s: dict[str, float], ts: float) -> Message:
    """A ``vibration.features`` batch of smart-sensor overall values: RMS velocity (mm/s) by point id, the
    spectral features NaN."""
    index = {p.id: i for i, p in enumerate(site.vibration_points)}
    n = len(rms_mm_s)
    nan = np.full(n, np.nan)
    return Message(topic="vibration.features", source="vibration", kind="vibration_features", event_ts_s=ts,
                   ingest_ts_s=ts,
                   arrays={"point_index": np.array([index[p] for p in rms_mm_s], np.int32), "ts_s": np.full(n, ts),
                           "rms_mm_s": np.array(list(rms_mm_s.values()), np.float64), "peak_m_s2": nan,
                           "crest": nan, "kurtosis": nan, "dominant_hz": nan, "dominant_mm_s": nan})
