"""The names of blobs on the bus (docs/protocol.md, "Blobs"), defined once: camera snapshots travel from the camera
adapter to the engine's content-addressed blob store, outside the recording; the recording and the journal keep
only their SHA-256.

- ``blob`` (topic :data:`TOPIC_BLOB`, ingest -> engine PULL): one blob, array ``data`` uint8 [n] (the file's
  bytes, unchanged) and meta ``sha256`` (64 lower-case hex digits of ``data``), ``content_type``, and for a camera
  snapshot ``camera``, ``ts_s`` (capture time), ``image_px`` [w, h] and ``boxes`` (the detections of the frame:
  ``class``, ``confidence``, ``box_px`` [x1, y1, x2, y2]). The engine process stores it directly: it is never
  sequenced into the recording. A refused blob is counted and kept as a ``rejected`` input (its header, never
  its bytes).
- ``blob.wanted`` (topic :data:`TOPIC_BLOB_WANTED`, engine PUB): meta ``wanted``, a list of ``{"sha256", "camera",
  "ts_s"}``: snapshots of detections the engine raised that its store does not have yet. Sent when a detection
  opens and every second while it is missing, for ``camera_snapshots.want_for_s`` of engine time; the camera
  adapter answers from its ring of recent frames with a ``blob``.
- ``meta.snapshots`` of a ``camera_detections`` batch: one ``{"camera_index", "ts_s", "sha256"}`` per frame whose
  JPEG the adapter holds: how a detection knows the hash of the frame that raised it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np

__all__ = ["BLOB_KIND", "TOPIC_BLOB", "TOPIC_BLOB_WANTED", "WANTED_KIND", "CONTENT_TYPES", "JPEG", "MAX_WANTED",
           "MAX_BOXES", "sha256_hex", "is_sha256", "blob_arrays", "blob_bytes", "snapshot_meta"]

BLOB_KIND = "blob"
TOPIC_BLOB = "blob.camera"
TOPIC_BLOB_WANTED = "blob.wanted"
WANTED_KIND = "blob_wanted"
JPEG = "image/jpeg"
#: the content types the blob store takes (and the magic bytes each must start and end with)
CONTENT_TYPES: dict[str, tuple[bytes, bytes]] = {JPEG: (b"\xff\xd8\xff", b"\xff\xd9")}
#: entries of one ``blob.wanted`` message, at most
MAX_WANTED = 200
#: boxes kept with a snapshot (a detection record and a blob's meta), at most
MAX_BOXES = 50
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes | bytearray | memoryview) -> str:
    """The SHA-256 of ``data``, 64 lower-case hex digits: a blob's address."""
    return hashlib.sha256(data).hexdigest()


def is_sha256(text: Any) -> bool:
    """True for 64 lower-case hex digits."""
    return isinstance(text, str) and _HEX64.match(text) is not None


def blob_arrays(data: bytes) -> dict[str, np.ndarray]:
    """The arrays of a ``blob`` message: ``data`` uint8 [n]."""
    return {"data": np.frombuffer(data, dtype=np.uint8)}


def blob_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """The bytes of a ``blob`` message (its ``data`` array)."""
    return np.ascontiguousarray(arrays["data"], dtype=np.uint8).tobytes()


def snapshot_meta(sha256: str, camera: str, ts_s: float, image_px: tuple[int, int],
                  boxes: list[dict[str, Any]]) -> dict[str, Any]:
    """The meta of a camera snapshot's ``blob`` message."""
    return {"sha256": sha256, "content_type": JPEG, "camera": camera, "ts_s": float(ts_s),
            "image_px": [int(image_px[0]), int(image_px[1])], "boxes": boxes[:MAX_BOXES]}
