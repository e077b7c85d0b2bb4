"""The engine process's answers to read-only requests (names: :mod:`ingest.protocol.queries`).

A query changes nothing: it is answered at once from what the engine process holds now, never recorded. Each
answer is a function ``(process, request) -> reply body``; :data:`ANSWERS` maps every op of
:data:`~ingest.protocol.queries.QUERY_OPS` to one (checked on import). A new query is its name in
ingest/protocol/queries.py and one line here.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import numpy as np

from ingest.protocol.blobs import is_sha256
from ingest.protocol.queries import (
    OP_BLOB_GET,
    OP_DETECTIONS,
    OP_SNAPSHOT,
    OP_TRAILS,
    OP_ZONE_PRESENCE,
    QUERY_OPS,
)
from ingest.protocol.trails import encode_trails

__all__ = ["ANSWERS", "MAX_TRAIL_SAMPLES", "MIN_TRAIL_STEP_S", "answer"]

#: the most samples a ``trails`` answer holds, and its finest step (s): a console's connect stays cheap for the engine
MAX_TRAIL_SAMPLES = 500_000
MIN_TRAIL_STEP_S = 0.2

Answer = Callable[[Any, dict[str, Any]], dict[str, Any]]


def _snapshot(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    return process.snapshot(req.get("id"))


def _detections(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    """The fusion's pending and recent detections; each with ``snapshot_held``: the engine has its snapshot."""
    body = process.engine.detection_fusion.snapshot()
    for rec in (*body["pending"], *body["recent"]):
        snap = rec.get("snapshot")
        rec["snapshot_held"] = bool(snap) and process.blobs.has(snap["sha256"])
    now = process.engine.now_s
    return {"ok": True, **body, "engine_ts_s": now if now == now else None}


def _blob_get(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    sha = req.get("sha256")
    if not is_sha256(sha):
        return {"ok": False, "reason": f"sha256 {str(sha)[:80]!r} is not 64 lower-case hex digits"}
    blob = process.blobs.get(sha)
    if blob is None:
        return {"ok": False, "reason": f"no blob {sha}: not received yet, or evicted"}
    return {"ok": True, "sha256": blob.sha256, "content_type": blob.content_type, "bytes": len(blob.data),
            "meta": blob.meta, "stored_ts_s": blob.stored_ts_s, "data_b64": base64.b64encode(blob.data).decode()}


def _seconds(req: dict[str, Any], key: str, default: float) -> float:
    v = req.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        raise ValueError(f"{key} must be a number of seconds")
    return float(v)


def _trails(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    """Everyone's trail since ``since_ts_s`` (default: the ring's whole span), one sample per ``step_s``."""
    try:
        since = _seconds(req, "since_ts_s", float("-inf"))
        step = _seconds(req, "step_s", 1.0)
    except ValueError as e:
        return {"ok": False, "reason": str(e)}
    ring = process.engine.trails
    # at most MAX_TRAIL_SAMPLES in one answer (about 11 MB of base64): a larger site gets a coarser step
    active = int(np.count_nonzero(ring.count))
    step = max(step, MIN_TRAIL_STEP_S, ring.span_s * active / max(1, MAX_TRAIL_SAMPLES - 2 * active))
    return {"ok": True, "span_s": ring.span_s, "step_s": step, "trails": encode_trails(*ring.export(since, step))}


def _zone_presence(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    e = process.engine
    now = e.now_s if e.now_s == e.now_s else 0.0
    try:
        t1, t2 = _seconds(req, "from_ts_s", now), _seconds(req, "to_ts_s", now)
        return e.presence.query(str(req.get("zone", "")), t1, t2, now, e.state.fix_ts_s)
    except ValueError as err:
        return {"ok": False, "reason": str(err)}


#: op -> its answer
ANSWERS: dict[str, Answer] = {
    OP_SNAPSHOT: _snapshot,
    OP_DETECTIONS: _detections,
    OP_BLOB_GET: _blob_get,
    OP_TRAILS: _trails,
    OP_ZONE_PRESENCE: _zone_presence,
}
if set(ANSWERS) != QUERY_OPS:  # a name without an answer, or an answer without a name
    raise ImportError(f"read-only queries and their answers differ: {sorted(set(ANSWERS) ^ QUERY_OPS)}")


def answer(process: Any, req: dict[str, Any]) -> dict[str, Any]:
    """The reply to one read-only request (its ``id`` echoed)."""
    return {**ANSWERS[str(req.get("op"))](process, req), "id": req.get("id")}
