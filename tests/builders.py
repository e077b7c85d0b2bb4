"""Bus messages the tests send as if they came from an adapter."""

from __future__ import annotations

import numpy as np

from ingest.bus import Message

__all__ = ["positions"]


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
