"""The engine's blob store (ingest/engine/blobs.py): blobs are addressed by the SHA-256 of their bytes, a duplicate
put keeps one blob, the bounds (count, bytes, age) evict the oldest first and count it, bad blobs are refused with
their reason; through the real engine a blob is stored as it comes and never enters the recording, a refused one
is a counted ``rejected`` input holding its header only, and consoles fetch blobs with the read-only ``blob_get``."""

from __future__ import annotations

import base64
import sqlite3
import time

import pytest

from ingest.engine.blobs import BlobRefused, BlobStore
from ingest.engine.queries import ANSWERS
from ingest.protocol.blobs import JPEG, sha256_hex
from ingest.protocol.queries import QUERY_OPS
from tests.engine_stack import EngineStack, camera_frame, snapshot_blob


def jpeg(k: int) -> bytes:
    """A tiny distinct 'JPEG' (the store checks the markers and the hash, it does not decode)."""
    return b"\xff\xd8\xff\xe0" + bytes([k % 256]) * (100 + k) + b"\xff\xd9"


def meta(data: bytes, **extra) -> dict:
    return {"sha256": sha256_hex(data), "content_type": JPEG, "camera": "CAM1", "ts_s": 1.0, **extra}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def store(tmp_path, clock=None, **bounds) -> BlobStore:
    kw = {"max_blob_bytes": 10_000, "max_blobs": 100, "max_bytes": 1_000_000, "max_age_s": 3600.0}
    return BlobStore(tmp_path / "blobs.sqlite", cameras=["CAM1", "CAM2"], clock=clock or Clock(), **{**kw, **bounds})


def test_a_blob_is_addressed_by_the_sha256_of_its_bytes_and_a_duplicate_put_is_one_blob(tmp_path):
    s = store(tmp_path)
    data = jpeg(1)
    assert s.put(data, meta(data, boxes=[{"class": "person"}])) == (sha256_hex(data), True)
    assert s.put(data, meta(data)) == (sha256_hex(data), False)
    blob = s.get(sha256_hex(data))
    assert blob.data == data and blob.content_type == JPEG and blob.meta["boxes"] == [{"class": "person"}]
    assert (len(s.index), s.stored, s.duplicates, s.total_bytes) == (1, 1, 1, len(data))
    assert s.get("0" * 64) is None and s.not_found == 1
    s.close()
    again = store(tmp_path)  # the store outlives the process: reopened, same blobs
    assert again.has(sha256_hex(data)) and again.total_bytes == len(data)
    again.close()


def test_the_bounds_evict_the_oldest_first_and_count_why(tmp_path):
    clock = Clock()
    blobs = [jpeg(k) for k in range(6)]  # 106, 107, ... 111 bytes
    s = store(tmp_path, clock, max_blobs=3)
    for b in blobs[:4]:
        clock.t += 1
        s.put(b, meta(b))
    assert list(s.index) == [sha256_hex(b) for b in blobs[1:4]] and s.evicted == {"count": 1}
    s.close()

    (tmp_path / "b").mkdir()
    s = store(tmp_path / "b", clock, max_bytes=sum(len(b) for b in blobs[3:6]))
    for b in blobs[3:6]:
        s.put(b, meta(b))
    clock.t += 1
    s.put(blobs[0], meta(blobs[0]))  # 106 bytes more: blobs[3] (109) must go, then it fits
    assert list(s.index) == [sha256_hex(b) for b in (blobs[4], blobs[5], blobs[0])]
    assert s.evicted == {"bytes": 1} and s.total_bytes == 110 + 111 + 106
    clock.t += 3600.5  # everything stored longer ago than max_age_s
    assert s.evict() == 3 and s.evicted == {"bytes": 1, "age": 3} and s.total_bytes == 0
    rows = sqlite3.connect(s.path).execute("SELECT COUNT(*) FROM blobs").fetchone()[0]
    assert rows == 0
    s.close()


@pytest.mark.parametrize(("data", "override", "code", "reason"), [
    (b"", {}, "bad_field", "empty blob"),
    (jpeg(1) + b"x" * 20_000, {}, "too_large", "blob of 20107 bytes, at most 10000 (camera_snapshots.max_blob_bytes)"),
    (jpeg(1), {"sha256": "ABC"}, "bad_field", "sha256 'ABC' is not 64 lower-case hex digits"),
    (jpeg(1), {"sha256": "0" * 64}, "bad_field", f"hash mismatch: the bytes hash to {sha256_hex(jpeg(1))}, the message "
                                                 f"says {'0' * 64}"),
    (jpeg(1), {"content_type": "image/png"}, "bad_field", "content type 'image/png' is not taken (image/jpeg)"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, {}, "bad_field", "not a image/jpeg (no start-of-image marker)"),
    (jpeg(1)[:-2], {}, "bad_field", "truncated image/jpeg (no end-of-image marker)"),
    (jpeg(1), {"camera": "CAM9"}, "unknown_id", "unknown camera 'CAM9'"),
    (jpeg(1), {"ts_s": float("nan")}, "bad_field", "ts_s is not a finite number"),
    (jpeg(1), {"boxes": "all of them"}, "bad_field", "boxes is not a list of at most 50 objects"),
])
def test_bad_blobs_are_refused_with_their_reason_and_counted(tmp_path, data, override, code, reason):
    s = store(tmp_path)
    m = {**meta(data), **override}
    with pytest.raises(BlobRefused) as e:
        s.put(data, m)
    assert (e.value.code, e.value.detail) == (code, reason)
    assert s.refused == {code: 1} and len(s.index) == 0
    s.close()


def test_every_read_only_op_has_an_answer():
    assert set(ANSWERS) == QUERY_OPS and {"snapshot", "detections", "blob_get"} <= QUERY_OPS


def test_through_the_engine_a_blob_is_stored_never_recorded_and_fetched_over_the_bus(demo_site, tmp_path):
    with EngineStack(demo_site, tmp_path) as stack:
        site, now = stack.site, time.time()
        frame = camera_frame(site, "CAM2", [[900, 500, 1000, 900]])
        sha = sha256_hex(frame)
        stack.send(snapshot_blob(site, "CAM2", now, frame, [{"class": "person", "confidence": 0.9,
                                                             "box_px": [900, 500, 1000, 900]}]))
        stack.send(snapshot_blob(site, "CAM2", now, frame))  # the same frame again: one blob
        stack.send(snapshot_blob(site, "CAM2", now, frame[:-2]))  # truncated: no end-of-image marker
        stack.send(snapshot_blob(site, "CAM7", now, camera_frame(site, "CAM2")))  # no such camera
        bad = snapshot_blob(site, "CAM2", now, frame)
        bad.source = "uwb"  # another adapter may not send blobs
        stack.send(bad)
        # a picture of people: only for a logged-in person of a workstation role
        assert stack.raw_command(op="blob_get", sha256=sha)["reason"] == "no token: log in first"
        reply = stack.wait_for(lambda: (r := stack.command(op="blob_get", sha256=sha, user="op1"))["ok"] and r,
                               what="the blob stored")
        assert base64.b64decode(reply["data_b64"]) == frame and reply["bytes"] == len(frame)
        assert reply["meta"]["boxes"][0]["box_px"] == [900, 500, 1000, 900] and reply["meta"]["camera"] == "CAM2"
        missing = stack.command(op="blob_get", sha256="0" * 64, user="op1")
        assert missing == {"id": missing["id"], "ok": False,
                           "reason": f"no blob {'0' * 64}: not received yet, or evicted"}
        stack.wait_for(lambda: stack.proc.blobs.refused == {"bad_field": 1, "unknown_id": 1, "not_allowed": 1},
                       what="three blobs refused")
        summary = stack.stop()
    assert summary["blobs"]["blobs"] == 1 and summary["blobs"]["duplicates"] == 1
    assert summary["rejected"] == {"engine: bad_field": 1, "engine: unknown_id": 1, "engine: not_allowed": 1}
    # the recording holds the refused blobs' rejects (a header excerpt), never a blob's bytes
    raw = b"".join(p.read_bytes() for p in (tmp_path / "live").glob("recording.sqlite*"))
    assert frame[200:264] not in raw and frame[-64:] not in raw
    con = sqlite3.connect(tmp_path / "live" / "recording.sqlite")
    try:
        topics = [t for (t,) in con.execute("SELECT topic FROM inputs")]
        dead = [r for (r,) in con.execute("SELECT reason FROM dead_letters")]
    finally:
        con.close()
    assert "blob.camera" not in topics and topics.count("rejected.engine") == 3
    assert sorted(dead) == ["bad_field", "not_allowed", "unknown_id"]
