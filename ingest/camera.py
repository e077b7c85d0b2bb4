"""The camera adapter: edge detections and (optionally) JPEG frames over MQTT -> detections on the floor.

Edge path, topic ``<prefix>/camera/<camera_id>/detections``: ``{"camera", "ts", "frame", "detections":
[{"class", "confidence", "box_px": [x1, y1, x2, y2]}]}``. The bottom centre of each box (the feet) is projected to
site metres through the camera's ground-plane homography.

Frame path, topic ``<prefix>/camera/<camera_id>/frames`` (only when the site has an enabled ``camera_inference``
section): a JSON header line and a JPEG (:mod:`ingest.camera_infer`); the adapter runs the detector and the boxes
it finds go the same way as edge boxes. Both paths end in one ``camera.detections`` batch per slice.

Snapshots (``camera_snapshots``, on by default; docs/cameras.md "Snapshots"): the adapter takes the frames topic
also without a model, and keeps each camera's recent frames in a bounded ring (:class:`FrameRing`). A detections
batch names, in ``meta.snapshots``, the SHA-256 of each frame it came from that the ring holds (an edge box's frame
is the camera's frame with the same capture time, published before its detections). When the engine raises a
detection alarm it asks for the frame that raised it (``blob.wanted`` on its publish socket); the adapter sends
that frame from its ring as a ``blob`` (JPEG bytes, boxes as data) to the engine's blob store.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from config import Site
from config.cameras import CameraInferenceSettings
from kernels.detection import project_feet

from . import bus
from .adapter import ClockWatch, MqttAdapter, adapter_main
from .camera_infer import FRAMES_TOPIC, Frame, FrameDetector, FrameRejected, parse_frame
from .mqtt_source import RawMessage
from .protocol import wire
from .protocol.blobs import (
    BLOB_KIND,
    CONTENT_TYPES,
    JPEG,
    MAX_BOXES,
    MAX_WANTED,
    TOPIC_BLOB,
    TOPIC_BLOB_WANTED,
    blob_arrays,
    is_sha256,
    sha256_hex,
    snapshot_meta,
)
from .protocol.names import DETECTION_CLASSES
from .protocol.wire import PayloadError

log = logging.getLogger(__name__)

__all__ = ["CameraAdapter", "DETECTION_CLASSES", "DETECTIONS_TOPIC", "FrameRing", "HeldFrame", "project_feet", "main"]

#: a snapshot sent is not sent again within this long, however often the engine asks (wall seconds)
RESEND_AFTER_S = 10.0

#: subscription of the edge path, relative to the site's topic prefix
DETECTIONS_TOPIC = "camera/+/detections"


def _excerpt(payload: bytes) -> str:
    """What of a refused frame is kept: its header line, never the JPEG bytes."""
    nl = payload.find(b"\n", 0, 513)
    if nl >= 0 and payload[:2] != b"\xff\xd8":
        return payload[:nl].decode("utf-8", "replace")
    return f"<{len(payload)} bytes, no header line>"


@dataclass
class HeldFrame:
    """One frame in a camera's ring: capture time, the JPEG and its SHA-256, and the boxes detected in it
    (``class``, ``confidence``, ``box_px``), filled in when its detections are batched."""

    camera: str
    ts_s: float
    sha256: str
    jpeg: bytes
    boxes: list[dict[str, Any]] = field(default_factory=list)


class FrameRing:
    """The recent frames of each camera, newest last, bounded per camera by ``max_frames`` and ``max_bytes``; the
    oldest go first (counted in :attr:`evicted`). A frame is found by its capture time (:meth:`at`, to pair edge
    detections with their frame) or by its hash (:meth:`find`, what the engine asks for)."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames, self.max_bytes = int(max_frames), int(max_bytes)
        self.frames: dict[str, deque[HeldFrame]] = {}
        self.bytes: Counter[str] = Counter()
        self.evicted = 0

    def add(self, camera: str, ts_s: float, jpeg: bytes) -> HeldFrame:
        """Keep one frame (its hash computed here); returns it. The oldest of the camera go while over a bound."""
        held = HeldFrame(camera, float(ts_s), sha256_hex(jpeg), jpeg)
        ring = self.frames.setdefault(camera, deque())
        ring.append(held)
        self.bytes[camera] += len(jpeg)
        while len(ring) > self.max_frames or (self.bytes[camera] > self.max_bytes and len(ring) > 1):
            old = ring.popleft()
            self.bytes[camera] -= len(old.jpeg)
            self.evicted += 1
        return held

    def at(self, camera: str, ts_s: float) -> HeldFrame | None:
        """The newest frame of ``camera`` captured at exactly ``ts_s`` (None: not held)."""
        for held in reversed(self.frames.get(camera, ())):
            if held.ts_s == ts_s:
                return held
        return None

    def find(self, camera: str, sha256: str) -> HeldFrame | None:
        """The frame of ``camera`` whose JPEG hashes to ``sha256`` (None: not held, or no longer)."""
        for held in reversed(self.frames.get(camera, ())):
            if held.sha256 == sha256:
                return held
        return None

    def __len__(self) -> int:
        return sum(len(r) for r in self.frames.values())


class CameraAdapter(MqttAdapter):
    name = "camera"
    payload_kind = "camera"
    topics = [DETECTIONS_TOPIC]

    def __init__(self, site: Site, stop: threading.Event, *, inference: CameraInferenceSettings | None = None,
                 base_dir: Path | None = None) -> None:
        """``inference`` defaults to the site's ``camera_inference`` section; without one (or disabled) only the
        edge path runs. ``base_dir`` resolves a relative ``model_path``."""
        settings = inference if inference is not None else getattr(site, "camera_inference", None)
        self.detector: FrameDetector | None = None
        snaps = site.camera_snapshots
        self.ring: FrameRing | None = None
        if snaps.enabled:
            self.topics = [DETECTIONS_TOPIC, FRAMES_TOPIC]
            self.ring = FrameRing(snaps.ring_frames, int(snaps.ring_mb * 1e6))
        if settings is not None and settings.enabled:
            self.topics = [DETECTIONS_TOPIC, FRAMES_TOPIC]
            self.detector = FrameDetector(site, settings, base_dir=base_dir)
        super().__init__(site, stop, slice_s=0.5)
        self.cameras = {c.id: (i, np.array(c.homography), c.image_size_px) for i, c in enumerate(site.cameras)}
        self.camera_ids = [c.id for c in site.cameras]
        self.rows: list[tuple] = []
        self.frames: list[tuple] = []
        self.watch = ClockWatch(site.clock.camera)
        self.max_blob_bytes = snaps.max_blob_bytes
        #: the engine's requests for snapshots (``blob.wanted`` on its publish socket)
        self.wanted_sub = (bus.sub_socket(self.link.ctx, site.bus.publish, [TOPIC_BLOB_WANTED])
                           if self.ring is not None else None)
        self.snapshots_sent = 0
        self.snapshot_counts: Counter[str] = Counter()  # asked for but not sent, by reason
        self._sent: OrderedDict[str, float] = OrderedDict()  # sha256 -> when sent (monotonic), newest last
        self._missed: OrderedDict[str, None] = OrderedDict()  # asked for, not in the ring (counted once each)

    def _edge(self, raw: RawMessage, doc: object) -> None:
        if not isinstance(doc, dict):
            raise PayloadError("bad_field", "payload is not an object")
        camera = wire.text(doc, "camera")
        if camera not in self.cameras:
            raise PayloadError("unknown_id", f"unknown camera {camera[:32]!r}")
        t = wire.finite_number(doc, "ts")
        self.watch.check(t, raw.received_ts_s)
        ci, _, (w, h) = self.cameras[camera]
        dets = doc.get("detections", [])
        if not isinstance(dets, list):
            raise PayloadError("bad_field", "detections is not a list")
        rows = []
        for det in dets:
            try:
                if not isinstance(det, dict):
                    raise PayloadError("bad_field", "a detection is not an object")
                cls = det.get("class")
                if not isinstance(cls, str) or cls not in DETECTION_CLASSES:
                    raise PayloadError("unknown_id", f"unknown class {str(cls)[:32]!r}")
                p = wire.finite_number(det, "confidence", 0.0, 1.0)
                b = det.get("box_px")
                if (not isinstance(b, list) or len(b) != 4
                        or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in b)):
                    raise PayloadError("bad_field", "box_px is not four numbers")
                if not (0 <= b[0] < b[2] <= w and 0 <= b[1] < b[3] <= h):
                    raise PayloadError("out_of_range", "box outside the image")
            except PayloadError as e:
                self.rejects.add(e.code, raw.topic, det, e.detail)
                continue
            rows.append((ci, DETECTION_CLASSES.index(cls), p, [float(x) for x in b], t))
        self.rows += rows

    def excerpt_of(self, raw: RawMessage) -> str | bytes:
        return _excerpt(raw.payload) if raw.topic.endswith("/frames") else raw.payload

    def take(self, raw: RawMessage, now_s: float) -> None:
        if raw.topic.endswith("/frames") and (self.detector is not None or self.ring is not None):
            frame = parse_frame(raw.topic, raw.payload)
            if self.detector is not None:
                self.frames.append((raw, frame))
            else:
                self._hold(raw, frame)
        else:
            self._edge(raw, self.load(raw))

    def _hold(self, raw: RawMessage, frame: Frame) -> HeldFrame | None:
        """Keep a frame for snapshots (without a model: refuse what could never be one, with the reason)."""
        if self.ring is None:
            return None
        if frame.camera not in self.cameras:
            raise FrameRejected(f"frames of camera {frame.camera[:32]!r} are not taken (unknown camera)", "unknown_id")
        if len(frame.jpeg) > self.max_blob_bytes:
            raise FrameRejected(f"frame of {len(frame.jpeg)} bytes, at most {self.max_blob_bytes} "
                                "(camera_snapshots.max_blob_bytes)", "too_large")
        if not frame.jpeg.rstrip(b"\x00\r\n ").endswith(CONTENT_TYPES[JPEG][1]):
            raise FrameRejected("frame body is not a whole JPEG (no end-of-image marker)")
        self.watch.check(frame.ts_s, raw.received_ts_s)
        return self.ring.add(frame.camera, frame.ts_s, frame.jpeg)

    def _infer(self, frames: list) -> None:
        """Run the detector on the slice's frames (the newest of each camera when ``latest_frame_only``)."""
        if self.detector.settings.latest_frame_only:
            newest: dict[str, float] = {}
            for _, f in frames:
                newest[f.camera] = max(newest.get(f.camera, -math.inf), f.ts_s)
            kept = []
            for raw, f in frames:
                if f.ts_s < newest[f.camera] or any(k[1].camera == f.camera for k in kept):
                    self.rejects.add("superseded", raw.topic, f.header,
                                     "frame skipped: a newer frame of the camera came in the same slice")
                else:
                    kept.append((raw, f))
            frames = kept
        for raw, f in frames:
            try:
                self.watch.check(f.ts_s, raw.received_ts_s)
                d = self.detector.detect(f)
            except Exception as e:  # noqa: BLE001 - one frame (or a detector bug) never stops the others
                self.guard("inference", e, raw.topic, f.header)
                continue
            self.rows += [(d.camera_index, int(k), float(p), b, d.ts_s)
                          for k, p, b in zip(d.class_id.tolist(), d.confidence.tolist(), d.boxes_px.tolist())]
            if self.ring is not None and len(f.jpeg) <= self.max_blob_bytes:
                self.ring.add(f.camera, f.ts_s, f.jpeg)

    def batches(self, now_s: float):
        frames, self.frames = self.frames, []
        if frames:
            self._infer(frames)
        rows, self.rows = self.rows, []
        if not rows:
            return []
        cam, cls, conf, boxes, ts = zip(*rows)
        cam_a, boxes_a = np.array(cam, np.int32), np.array(boxes, np.float64).reshape(-1, 4)
        xy = np.zeros((len(cam), 2))
        for ci, (_, h, _) in enumerate(self.cameras.values()):
            sel = cam_a == ci
            if sel.any():
                xy[sel] = project_feet(h, boxes_a[sel])
        meta = {"snapshots": self._snapshots(rows)} if self.ring is not None else {}
        return [("camera.detections", "camera_detections", max(ts),
                 {"camera_index": cam_a, "class_id": np.array(cls, np.uint8), "confidence": np.array(conf),
                  "xy_m": xy, "ts_s": np.array(ts), "box_px": boxes_a}, meta)]

    def _snapshots(self, rows: list[tuple]) -> list[dict[str, Any]]:
        """``meta.snapshots`` of a batch: the hash of each of its frames the ring holds (the frame's boxes are noted
        beside it in the ring, for the blob)."""
        by_frame: dict[tuple[int, float], list[tuple]] = {}
        for r in rows:
            by_frame.setdefault((r[0], r[4]), []).append(r)
        out = []
        for (ci, t), frame_rows in by_frame.items():
            held = self.ring.at(self.camera_ids[ci], t) if self.ring is not None else None
            if held is None:
                self.snapshot_counts["detections without a held frame"] += 1
                continue
            held.boxes = [{"class": DETECTION_CLASSES[k], "confidence": round(p, 4),
                           "box_px": [round(float(v), 2) for v in b]} for _, k, p, b, _ in frame_rows][:MAX_BOXES]
            out.append({"camera_index": int(ci), "ts_s": float(t), "sha256": held.sha256})
        return out

    # -- snapshots the engine asks for --------------------------------------------------------------------
    def answer_wanted(self) -> int:
        """Send the engine the frames it asked for (``blob.wanted``) that the ring holds; returns how many."""
        if self.wanted_sub is None:
            return 0
        sent = 0
        now = time.monotonic()
        for frames in bus.drain(self.wanted_sub, 100):
            try:
                wanted = bus.decode(frames).meta.get("wanted", [])
            except bus.FramingError as e:
                self.snapshot_counts["undecodable blob.wanted"] += 1
                log.warning("camera adapter: undecodable blob.wanted message: %s", e)
                continue
            for w in wanted[:MAX_WANTED] if isinstance(wanted, list) else ():
                sha, camera = (w.get("sha256"), w.get("camera")) if isinstance(w, dict) else (None, None)
                if not is_sha256(sha) or camera not in self.cameras:
                    self.snapshot_counts["malformed request"] += 1
                    continue
                if now - self._sent.get(sha, -math.inf) < RESEND_AFTER_S:
                    continue
                held = self.ring.find(camera, sha)
                if held is None:
                    if sha not in self._missed:
                        self._missed[sha] = None
                        self.snapshot_counts["asked for, not in the ring"] += 1
                        log.warning("camera adapter: snapshot %s of %s asked for, no longer in the ring", sha[:16],
                                    camera)
                        while len(self._missed) > 1000:
                            self._missed.popitem(last=False)
                    continue
                meta = snapshot_meta(sha, camera, held.ts_s, self.cameras[camera][2], held.boxes)
                if self.link.send(TOPIC_BLOB, BLOB_KIND, held.ts_s, blob_arrays(held.jpeg), meta):
                    sent += 1
                    self.snapshots_sent += 1
                    self._sent[sha] = now
                    self._sent.move_to_end(sha)
                    while len(self._sent) > 1000:
                        self._sent.popitem(last=False)
        return sent

    def step(self, final: bool) -> None:
        super().step(final)
        try:
            self.answer_wanted()
        except Exception as e:  # noqa: BLE001 - a request gone wrong never stops the adapter
            self.guard("answering blob.wanted", e, TOPIC_BLOB_WANTED, "")

    def run(self) -> None:
        try:
            super().run()
        finally:
            if self.wanted_sub is not None:
                self.wanted_sub.close(linger=0)
            log.info("camera adapter: %d snapshots sent, %s", self.snapshots_sent, dict(self.snapshot_counts))


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest camera --site FILE``."""
    return adapter_main("camera", argv, lambda site, stop: CameraAdapter(site, stop).run())
