"""The live engine process: sequencer + recording + engine + publisher.

One loop, one thread:
1. poll the ingest PULL socket and the command ROUTER socket until the next clock tick is due;
2. turn everything that arrived into sequenced inputs (a batch, a tick, a rejected-input record, a command);
3. write them to the recording and commit (write before apply);
4. apply them to the engine (which journals), publish alarm deltas, reply to commands;
5. on display ticks publish the conflated display frames and the status.

Read-only requests (:data:`ingest.protocol.queries.QUERY_OPS`: ``snapshot``, ``detections``, ``blob_get``) are
answered at once and not recorded: they change nothing (ingest/engine/queries.py).

Blobs (camera snapshots, :mod:`ingest.protocol.blobs`) are stored directly in the blob store (ingest/engine/blobs.py)
as they come, never sequenced into the recording; a refused blob is recorded as a ``rejected`` input (its header
only). The process asks the camera adapter for the snapshots its detections name and the store lacks
(``blob.wanted``, when a detection opens and with the status, once a second).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
import zmq

from alarms.journal import Journal
from alarms.notify import Notifier, sinks_from_site
from alarms.seal import sealer_from_site
from config import Site
from ingest import bus
from ingest.bus import FramingError, Message
from ingest.protocol import wire
from ingest.protocol.blobs import BLOB_KIND, MAX_WANTED, TOPIC_BLOB_WANTED, WANTED_KIND
from ingest.protocol.names import (
    TOPIC_ALARM_DELTA,
    TOPIC_FENCE,
    TOPIC_FLOOD,
    TOPIC_GASFIELD,
    TOPIC_MUSTER,
    TOPIC_NOTIFY,
    TOPIC_PERMIT_REPLY,
    TOPIC_PERMITS,
    TOPIC_POSITIONS,
    TOPIC_SENSORS,
    TOPIC_STATUS,
)
from ingest.protocol.queries import PERSONAL_QUERY_OPS, QUERY_OPS
from ingest.rejects import RejectBin
from kernels.gasfield import idw_field

from .blobs import BLOB_FILE, BlobRefused, BlobStore
from .core import Engine, Outcome, decode_recorded
from .gate import Gate, Passed
from .queries import answer
from .recording import FORMAT, RecordingReader, RecordingWriter, strip_site_secrets
from .retention import RetentionKeeper

log = logging.getLogger(__name__)

__all__ = ["EngineProcess", "tick_message", "site_meta"]

MAX_DRAIN = 2000  # inputs taken per loop turn before the tick gets its turn
MAX_REJECT_PAYLOAD = 1024  # bytes of a refused message's header kept (escaped, truncated further) in the reject
GAS_FIELD_DX_M = 2.0
GAS_FIELD_RADIUS_M = 25.0  # a detector speaks for its surroundings, not for the far side of the plant


def tick_message(t_s: float) -> Message:
    """A clock tick: the only way engine time advances."""
    return Message(topic="clock.tick", source="engine", kind="tick", event_ts_s=t_s, ingest_ts_s=t_s)


def recorded_site_text(site: Site, site_text: str) -> str:
    """The site file as a recording keeps it: its secrets stripped, and the roster of the users file written in
    (ids, names, roles; never a hash) in place of the users file's name, so it replays with nothing else."""
    data = yaml.safe_load(site_text)
    if isinstance(data, dict) and isinstance(data.get("access"), dict) and data["access"].get("users_file"):
        data["access"] = {k: v for k, v in data["access"].items() if k != "users_file"}
        data["users"] = [u.model_dump(mode="json", exclude_defaults=True) for u in site.users]
        site_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    elif isinstance(data, dict) and not data.get("users") and site.users:  # a users file named by the environment
        data["users"] = [u.model_dump(mode="json", exclude_defaults=True) for u in site.users]
        site_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
    return strip_site_secrets(site_text)


def site_meta(site: Site, site_text: str) -> dict[str, str]:
    """What a recording stores about the run, so that it replays with nothing else (its secrets stripped)."""
    return {"site_id": site.id, "site_yaml": recorded_site_text(site, site_text), "format": FORMAT}


class EngineProcess:
    """Owns the sockets, the recording, the journal and the engine. ``run(stop)`` blocks until stop is set."""

    def __init__(self, site: Site, site_text: str, out_dir: str | Path, *, ctx: zmq.Context | None = None,
                 notify: bool = True) -> None:
        self.site = given = site  # `given`: this host's key and secrets, which the recording does not keep
        self.sealer = sealer_from_site(given)  # None without a key; refuses a key that is not the pinned one
        self.out = Path(out_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ctx = ctx or zmq.Context.instance()
        rec_path = self.out / "recording.sqlite"
        self.resumed_inputs = 0
        self.gate = Gate(given)  # logins and tokens: from this host's users file and key directory
        self._claims: dict[str, Any] = {}  # command id -> the verified session whose fresh token goes in the reply
        self._post_replies: list[tuple[bytes, dict[str, Any]]] = []  # sent once the step has recorded their input
        if rec_path.exists():
            # crash recovery is replay: the recorded config, the recorded inputs, the same apply()
            reader = RecordingReader(rec_path)
            recorded_text = reader.meta["site_yaml"]
            if recorded_text != recorded_site_text(given, site_text):
                log.warning("resuming %s with the site file it was recorded with (the given one differs)", rec_path)
            site = self.site = site_from_text(recorded_text, f"{rec_path}:meta.site_yaml")
            self.recording = RecordingWriter(rec_path, {}, resume=True)
            self.journal = Journal(self.out / "journal.sqlite", resume=(self.out / "journal.sqlite").exists())
            self.engine = Engine(site, self.journal)
            for seq, frames in reader.inputs():
                msg = decode_recorded(frames)
                self.gate.observe(msg)
                self.engine.apply(seq, msg)
                self.resumed_inputs += 1
            self.engine.book.activated.clear()
            reader.close()
            log.info("resumed from %s: %d inputs applied again, journal checked", rec_path, self.resumed_inputs)
        else:
            self.recording = RecordingWriter(rec_path, site_meta(site, site_text))
            self.journal = Journal(self.out / "journal.sqlite")
            self.engine = Engine(site, self.journal)
        self.pull = bus.pull_socket(self.ctx, site.bus.ingest)
        self.pub = bus.pub_socket(self.ctx, site.bus.publish)
        self.router = bus.router_socket(self.ctx, site.bus.command)
        self.alarm_seq = 0
        #: this run of the engine: the alarm.delta numbers start again at 1 with each run, so a console told
        #: another epoch (in a delta, the status or a snapshot) knows its table is another engine's
        self.epoch = secrets.token_hex(6)
        self.frame = 0
        self.tick_s = site.engine.tick_s
        self.late_ticks = 0
        self.refused_frames = 0
        self.ready = threading.Event()
        #: this site's recordings beside this run's folder, kept by the retention setting of this host's site file
        #: (housekeeping, like the notification sinks: not replayed; what it removed is, as ``retention`` inputs)
        self.retention = RetentionKeeper(self.out.resolve().parent, given.id, rec_path, given.recording)
        #: camera snapshots, beside the recording and outside it, bounded by this host's settings
        snaps = given.camera_snapshots
        self.blobs = BlobStore(
            self.out / BLOB_FILE, cameras=[c.id for c in site.cameras], max_blob_bytes=snaps.max_blob_bytes,
            max_blobs=snaps.store_max_blobs, max_bytes=int(snaps.store_max_mb * 1e6),
            max_age_s=86400.0 * (snaps.store_retention_days or given.recording.retention_days))
        self.want_for_s = snaps.want_for_s
        self.snapshots_missing = 0  # snapshots of pending detections that did not come within want_for_s
        self._asked: dict[str, float] = {}  # sha256 -> raise time (engine s) of snapshots asked for, not yet held
        self.notifier: Notifier | None = None
        if notify:
            sinks = sinks_from_site(given)
            if sinks:
                n = site.notifications
                self.notifier = Notifier(sinks, max_attempts=n.max_attempts, retry_base_s=n.retry_base_s,
                                         queue_size=n.queue_size)

    # -- inputs ------------------------------------------------------------------------------------------
    def _rejected_frames(self, frames: list[bytes], code: str, detail: str) -> list[bytes]:
        """A bus message the engine refused, as a ``rejected`` input of its own: recorded and counted (never the
        refused frames themselves, which could not be applied, only an escaped excerpt of them)."""
        head = bytes(frames[1 if len(frames) > 1 else 0][:MAX_REJECT_PAYLOAD]) if frames else b""
        topic = bytes(frames[0][:128]).decode("ascii", "backslashreplace") if frames else ""
        rejects = RejectBin()
        rejects.add(code, topic, bytes(head), detail)
        (chunk,) = rejects.take()
        now = time.time()
        msg = Message(topic="rejected.engine", source="engine", kind="rejected", event_ts_s=now, ingest_ts_s=now,
                      meta={"rejects": chunk})
        return bus.encode(msg)

    def _take_ingest(self, batch: list[tuple[list[bytes], Message, float]]) -> None:
        """Ingest messages: only those that decode and follow their kind's schema are recorded as they are;
        any other becomes a counted, kept ``rejected`` input (DESIGN principle 3)."""
        for _ in range(MAX_DRAIN):
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = bus.decode(frames)
                if msg.kind == BLOB_KIND:  # stored as it comes, never sequenced into the recording
                    self._take_blob(frames, msg, batch)
                    continue
                wire.check_message(msg)
                if msg.kind == "permit_command":  # who acts is proven before anything is recorded
                    msg = self.gate.permit_command(msg, time.time())
                    frames = bus.encode(msg)
            except (FramingError, wire.PayloadError) as e:
                code = e.code if isinstance(e, wire.PayloadError) else "bad_frame"
                self._refused(frames, code, str(e.detail if isinstance(e, wire.PayloadError) else e))
                frames = self._rejected_frames(frames, code, str(e))
                msg = bus.decode(frames)
            except Exception as e:  # noqa: BLE001 - nothing a peer sends may stop the engine
                log.exception("decoding an ingest message failed")
                frames = self._rejected_frames(frames, "internal_error", f"decoding: {e.__class__.__name__}")
                msg = bus.decode(frames)
            batch.append((frames, msg, time.time()))

    def _take_blob(self, frames: list[bytes], msg: Message, batch: list[tuple[list[bytes], Message, float]]) -> None:
        """A blob into the store; a refused one becomes a counted, recorded ``rejected`` input (its header only)."""
        try:
            self.blobs.put_message(msg)
        except BlobRefused as e:
            self._refused(frames, e.code, e.detail)
            rejected = self._rejected_frames(frames, e.code, f"blob refused: {e.detail}")
            batch.append((rejected, bus.decode(rejected), time.time()))

    def _refused(self, frames: list[bytes], code: str, detail: str) -> None:
        self.refused_frames += 1
        if self.refused_frames <= 10 or self.refused_frames % 1000 == 0:
            log.warning("refused bus message #%d (%s): %s", self.refused_frames, code, detail[:200])

    def _take_commands(self, batch: list[tuple[list[bytes], Message, float]], waiting: dict[str, bytes]) -> None:
        for _ in range(MAX_DRAIN):
            try:
                ident, *rest = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue
            try:
                req = wire.loads(rest[-1], wire.MAX_PAYLOAD_BYTES["command"]) if rest else None
                if not isinstance(req, dict):
                    raise wire.PayloadError("bad_field", "request is not a JSON object")
                if not isinstance(req.get("id", ""), (str, int)) or len(str(req.get("id", ""))) > 128:
                    raise wire.PayloadError("bad_field", "id is not a string of at most 128 characters")
            except wire.PayloadError as e:
                self.router.send_multipart([ident, json.dumps({"ok": False, "reason": f"bad request: {e}"}).encode()])
                continue
            try:
                self._take_command(ident, req, batch, waiting)
            except Exception as e:  # noqa: BLE001 - no request may stop the engine; it is answered and logged
                log.exception("request %.40r could not be handled", req.get("op"))
                self._reply(ident, {"id": req.get("id"), "ok": False,
                                    "reason": f"internal error: {e.__class__.__name__}"})

    def _take_command(self, ident: bytes, req: dict[str, Any], batch: list[tuple[list[bytes], Message, float]],
                      waiting: dict[str, bytes]) -> None:
        """One request: a snapshot is answered now; a login starts its check; anything else passes the gate
        (recorded with the verified user) or is refused there (recorded as refused)."""
        op = req.get("op")
        if op in QUERY_OPS:
            refused = self.gate.query_allowed(ident, req, time.time()) if op in PERSONAL_QUERY_OPS else None
            if refused is not None:
                log.info("query %s refused: %s", op, refused)
                self._reply(ident, {"id": req.get("id"), "ok": False, "reason": refused})
            else:
                self._reply(ident, answer(self, req))
            return
        now = time.time()
        if op == "login":
            reply, note = self.gate.login(ident, req, now)
            if note is not None:
                batch.append((bus.encode(note), note, now))
            if reply is not None:
                self._post_replies.append((ident, reply))
            return
        rid = f"{ident.hex()}:{req.get('id')}"
        got = self.gate.command(ident, req, rid, now)
        if not isinstance(got, Passed):  # refused before anything else: recorded as refused, then answered
            reply, refused = got
            batch.append((bus.encode(refused), refused, now))
            self._post_replies.append((ident, reply))
            return
        msg = got.message
        if msg is None:  # renew: a fresh token, nothing to record
            self._reply(ident, {"id": req.get("id"), "ok": True, **self.gate.renewed_token(got.claims, now)})
            return
        batch.append((bus.encode(msg), msg, now))
        if msg.kind == "session":  # a logout
            self._post_replies.append((ident, {"id": req.get("id"), "ok": True}))
            return
        waiting[rid] = ident
        self._claims[rid] = got.claims

    def _take_logins(self, batch: list[tuple[list[bytes], Message, float]]) -> None:
        """Logins whose password check finished: the outcome is recorded, then answered (with the token)."""
        now = time.time()
        for ident, reply, msg in self.gate.finished_logins(now):
            batch.append((bus.encode(msg), msg, now))
            self._post_replies.append((ident, reply))

    def _take_notifier_results(self, batch: list[tuple[list[bytes], Message, float]]) -> None:
        if self.notifier is None:
            return
        results = self.notifier.results()
        for i in range(0, len(results), 200):
            now = time.time()
            msg = Message(topic="notifier.results", source="notifier", kind="notification_result", event_ts_s=now,
                          ingest_ts_s=now, meta={"results": results[i : i + 200]})
            batch.append((bus.encode(msg), msg, now))

    def _take_retention(self, batch: list[tuple[list[bytes], Message, float]]) -> None:
        """What the retention keeper removed (or failed to) since the last turn: recorded, then journaled."""
        for result in self.retention.results():
            now = time.time()
            msg = Message(topic="engine.retention", source="engine", kind="retention", event_ts_s=now,
                          ingest_ts_s=now, meta=_clean(result))
            batch.append((bus.encode(msg), msg, now))

    def snapshot(self, rid: Any) -> dict[str, Any]:
        t = self.engine.now_s if np.isfinite(self.engine.now_s) else 0.0
        return {"id": rid, "ok": True, "seq": self.alarm_seq, "epoch": self.epoch, "alarms": self.engine.book.live(),
                "permits": self.engine.permits.board(t), "muster": self.engine.muster_status(),
                "detections": self.engine.detection_fusion.snapshot(),
                "floods": [{"position": pid, "flood": m.flood, "since_ts_s": m.since_ts_s, "first_out": m.first_out,
                            "count_10min": len(m.recent)} for pid, m in self.engine.floods.items()],
                "engine_ts_s": self.engine.now_s if np.isfinite(self.engine.now_s) else None}

    def _reply(self, ident: bytes, body: dict[str, Any]) -> None:
        # cleaned like published meta: one NaN anywhere in an answer (a snapshot is the consoles' resync) must not
        # turn the whole answer into "internal error"
        self.router.send_multipart([ident, json.dumps(_clean(body), allow_nan=False, default=_jsonable).encode()])

    # -- outputs -----------------------------------------------------------------------------------------
    def _publish_alarms(self, records: list[dict[str, Any]]) -> None:
        self.alarm_seq += 1
        msg = Message(topic=TOPIC_ALARM_DELTA, source="engine", kind="alarm_delta", event_ts_s=self.engine.now_s
                      if np.isfinite(self.engine.now_s) else 0.0, ingest_ts_s=time.time(), seq=self.alarm_seq,
                      meta={"seq": self.alarm_seq, "epoch": self.epoch, "alarms": _clean(records)})
        self.pub.send_multipart(bus.encode(msg))

    def wanted_snapshots(self) -> list[dict[str, Any]]:
        """Snapshots of pending detections raised within ``want_for_s`` (engine time) that the store lacks."""
        now = self.engine.now_s
        wanted = []
        for rec in self.engine.detection_fusion.pending.values():
            snap = rec.get("snapshot")
            if snap and now - rec["raised_ts_s"] <= self.want_for_s and not self.blobs.has(snap["sha256"]):
                wanted.append({"sha256": snap["sha256"], "camera": rec["camera"], "ts_s": snap["ts_s"]})
        return wanted[-MAX_WANTED:]

    def _publish_wanted(self) -> None:
        """Ask the camera adapter for the snapshots wanted now; count those whose time to come has passed while
        their detection still waited for them (one verified or expired before its snapshot came is not missing)."""
        wanted = self.wanted_snapshots()
        asking = {w["sha256"] for w in wanted}
        now = self.engine.now_s
        raised = {r["snapshot"]["sha256"]: r["raised_ts_s"] for r in self.engine.detection_fusion.pending.values()
                  if r.get("snapshot")}  # sha256 -> newest raise of a pending detection
        for sha in [s for s in self._asked if s not in asking]:
            held, t = self.blobs.has(sha), raised.get(sha)
            if not held and t is not None and now - t <= self.want_for_s:
                continue  # still in its time, only beyond MAX_WANTED this turn: asked for again later
            del self._asked[sha]
            if not held and t is not None:
                self.snapshots_missing += 1
                log.warning("snapshot %s never came (asked for %.0f s)", sha[:16], self.want_for_s)
        for w in wanted:
            self._asked.setdefault(w["sha256"], self.engine.now_s)
        if wanted:
            self._publish_meta(TOPIC_BLOB_WANTED, WANTED_KIND, {"wanted": wanted})

    def _publish_gas_field(self, t: float) -> None:
        """``display.gasfield``: the detectors interpolated onto a 2 m grid, as a fraction of each detector's
        level-2 alarm (1.0 = at level 2), NaN where no detector is within 25 m. Oxygen is left out."""
        dets = self.site.gas_detectors
        if not dets:
            return
        v = self.engine.state.gas_value.copy()
        high = np.array([d.high for d in dets])
        o2 = np.array([d.gas == "O2" for d in dets])
        frac = np.where(o2 | ~(self.engine.gas_quality_now() <= 1), np.nan, v / high)
        xy = np.array([d.position_m[:2] for d in dets], dtype=np.float64)
        field = idw_field(xy, frac, self.site.floor_plan.extent_m, GAS_FIELD_DX_M, radius_m=GAS_FIELD_RADIUS_M)
        msg = Message(topic=TOPIC_GASFIELD, source="engine", kind="gas_field", event_ts_s=t,
                      ingest_ts_s=time.time(), arrays={"field": field},
                      meta={"extent_m": list(self.site.floor_plan.extent_m), "dx_m": GAS_FIELD_DX_M,
                            "unit": "fraction of level 2"})
        self.pub.send_multipart(bus.encode(msg))

    def _publish_muster(self) -> None:
        status = self.engine.muster_status()
        t = self.engine.now_s if np.isfinite(self.engine.now_s) else 0.0
        self._publish_meta(TOPIC_MUSTER, "muster_status", status or {"active": False, "engine_ts_s": t})

    def _publish_board(self) -> None:
        t = self.engine.now_s if np.isfinite(self.engine.now_s) else 0.0
        self._publish_meta(TOPIC_PERMITS, "permit_board", {"permits": self.engine.permits.board(t)})

    def _publish_fences(self, events) -> None:
        """omlox-style fence events (region_entry / region_exit) on ``zone.fence``."""
        zones, people = self.site.zones, self.site.people
        self._publish_meta(TOPIC_FENCE, "fence_events", {"events": [
            {"event_type": e.kind, "fence_id": zones[e.zone].id, "zone_kind": zones[e.zone].kind,
             "provider_id": people[e.person].tag, "person": people[e.person].id, "ts_s": e.ts_s,
             "position_m": [round(e.x_m, 3), round(e.y_m, 3)], "dwell_s": e.dwell_s} for e in events]})

    def _publish_meta(self, topic: str, kind: str, meta: dict[str, Any]) -> None:
        t = self.engine.now_s if np.isfinite(self.engine.now_s) else 0.0
        msg = Message(topic=topic, source="engine", kind=kind, event_ts_s=t, ingest_ts_s=time.time(),
                      meta=_clean(meta))
        self.pub.send_multipart(bus.encode(msg))

    def _publish_display(self) -> None:
        e = self.engine
        t = e.now_s
        self.frame += 1
        age = t - e.state.fix_ts_s
        pos = Message(topic=TOPIC_POSITIONS, source="engine", kind="positions", event_ts_s=t,
                      ingest_ts_s=time.time(), seq=self.frame,
                      arrays={"xyz_m": e.state.xyz_m, "age_s": age, "gdop": e.state.gdop,
                              "alarm": e.person_alarm_rank()},
                      meta={"engine_ts_s": t, "frame": self.frame})
        self.pub.send_multipart(bus.encode(pos))
        if self.frame % 25 == 1:  # the board also changes by the clock (expiring soon): refresh every 5 s
            self._publish_board()
        if self.frame % 5 == 1 and self.engine.muster.active:  # live headcount about once a second
            self._publish_muster()
        if self.frame % 5 == 1:
            sens = Message(topic=TOPIC_SENSORS, source="engine", kind="sensors", event_ts_s=t,
                           ingest_ts_s=time.time(), seq=self.frame,
                           arrays={"gas_value": e.state.gas_value, "gas_quality": e.gas_quality_now(),
                                   "gas_level": e.gas_level(), "vib_rms_mm_s": e.state.vib_rms_mm_s,
                                   "vib_zone": (e.vibration.zone.astype(np.int16) + 1).astype(np.uint8),
                                   "vib_quality": e.state.vib_quality},
                           meta={"engine_ts_s": t})
            self.pub.send_multipart(bus.encode(sens))
            self._publish_gas_field(t)
            st = Message(topic=TOPIC_STATUS, source="engine", kind="status", event_ts_s=t,
                         ingest_ts_s=time.time(), meta=_clean({**e.status(), "epoch": self.epoch,
                                                               "blobs": self.blob_status()}))
            self.pub.send_multipart(bus.encode(st))
            self._publish_wanted()
            if self.frame % 300 == 1:  # the age bound, about once a minute (puts check the others)
                self.blobs.evict()

    def blob_status(self) -> dict[str, Any]:
        """The blob store's figures, and the snapshots asked for that never came."""
        return {**self.blobs.stats(), "snapshots_missing": self.snapshots_missing}

    # -- the loop ----------------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        poller = zmq.Poller()
        poller.register(self.pull, zmq.POLLIN)
        poller.register(self.router, zmq.POLLIN)
        waiting: dict[str, bytes] = {}
        next_tick = time.time()
        self.retention.start()  # its first pass now, then every recording.check_every_s
        self.ready.set()
        log.info("engine up: ingest %s, publish %s, command %s", self.site.bus.ingest, self.site.bus.publish,
                 self.site.bus.command)
        final = False
        while True:
            if stop.is_set():
                final = True  # one last drain so everything already sent is recorded and applied
            timeout_ms = 0 if final else max(0.0, (next_tick - time.time()) * 1000)
            poller.poll(timeout_ms)
            batch: list[tuple[list[bytes], Message, float]] = []
            self._take_ingest(batch)
            self._take_commands(batch, waiting)
            self._take_logins(batch)
            if final and self.notifier is not None:
                self.notifier.stop(3.0)  # what is still unsent is reported as such, then recorded below
            self._take_notifier_results(batch)
            if final and not self.retention.stop():  # a removal under way finishes and is recorded below
                log.warning("retention: still removing a recording after 10 s: its removal is logged below, "
                            "not journaled")
            self._take_retention(batch)
            now = time.time()
            if now >= next_tick:
                tick = tick_message(now)
                batch.append((bus.encode(tick), tick, now))
                next_tick += self.tick_s
                if next_tick < now:  # fell behind: do not burst ticks, count it
                    self.late_ticks += 1
                    next_tick = now + self.tick_s
            self._step(batch, waiting)
            for ident, reply in self._post_replies:
                self._reply(ident, reply)
            self._post_replies.clear()
            if final:
                break

    def _step(self, batch: list[tuple[list[bytes], Message, float]], waiting: dict[str, bytes]) -> None:
        if not batch:
            return
        seqs = [self.recording.append(m.topic, frames, t, m.meta.get("rejects") if m.kind == "rejected" else None,
                                      m.source) for frames, m, t in batch]
        self.recording.commit()
        if self.sealer is not None:  # by engine time (the inputs just recorded are not applied yet)
            self.sealer.maybe_seal(self.engine.now_s, self.journal, self.recording)
        for seq, (_, msg, _) in zip(seqs, batch):
            out: Outcome = self.engine.apply(seq, msg)
            if out.alarms:
                self._publish_alarms(out.alarms)
                if msg.kind == "camera_detections":  # a detection opened: ask for its snapshot now
                    self._publish_wanted()
            for notice in out.notices:
                if self.notifier is not None:
                    self.notifier.submit(notice)
                if notice.kind == "escalate":  # the console sink: a banner and a sound on the pages
                    self._publish_meta(TOPIC_NOTIFY, "notify", {
                        "alarm": notice.alarm, "notify_role": notice.notify_role, "step": notice.step,
                        "priority": notice.priority, "ts_s": notice.ts_s, "message": notice.message})
            if out.fences:
                self._publish_fences(out.fences)
            for change in out.floods:
                m = self.engine.floods[change.position]
                self._publish_meta(TOPIC_FLOOD, "flood", {
                    "position": change.position, "flood": change.flood, "since_ts_s": m.since_ts_s,
                    "first_out": change.first_out, "count_10min": change.count})
            if out.reply is not None:
                rid = str(out.reply.get("id"))
                ident = waiting.pop(rid, None)
                claims = self._claims.pop(rid, None)
                if ident is not None:
                    extra = self.gate.renewed_token(claims, time.time()) if claims is not None else {}
                    self._reply(ident, {**out.reply, **extra, "id": rid.split(":", 1)[1]})
                elif msg.kind == "permit_command" or msg.meta.get("channel") == "permits":  # to MQTT, by the adapter
                    self._publish_meta(TOPIC_PERMIT_REPLY, "permit_reply", out.reply)
            if self.engine.permits.changed:
                self.engine.permits.changed = False
                self._publish_board()
            if self.engine.muster_changed:
                self.engine.muster_changed = False
                self._publish_muster()
            if out.tick and self.engine.ticks % self.site.engine.publish_every_ticks == 0:
                self._publish_display()

    def close(self) -> dict[str, Any]:
        """Close files and sockets; write and return the run summary."""
        summary = {**self.engine.status(), "late_ticks": self.late_ticks, "journal_rows": self.journal.rows,
                   "journal_head": self.journal.head, "blobs": self.blob_status()}
        if self.notifier is not None:
            self.notifier.stop(1.0)
        self.retention.stop()  # run() stopped it already; an engine closed without running never started it
        self.gate.close()
        if self.sealer is not None:
            self.sealer.seal_close(self.engine.now_s, self.journal, self.recording)
        self.recording.close()
        self.journal.close()
        self.blobs.close()
        for s in (self.pull, self.pub, self.router):
            s.close(linger=0)
        (self.out / "summary.json").write_text(json.dumps(_clean(summary), indent=2, sort_keys=True))
        return summary


def _jsonable(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    raise TypeError(f"not JSON: {type(o)}")


def _clean(o: Any) -> Any:
    """JSON-safe copy: NaN / inf -> None (the bus header refuses NaN)."""
    if isinstance(o, float) or isinstance(o, np.floating):
        return float(o) if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.integer):
        return int(o)
    return o


def load_site_text(path: str | Path) -> tuple[Site, str]:
    """Load a site file and keep its text (it goes into the recording)."""
    from config import load_site

    site = load_site(path)
    return site, Path(path).read_text(encoding="utf-8")


def site_from_text(text: str, file: str = "<recording>") -> Site:
    from config import parse_site

    return parse_site(yaml.safe_load(text), file)
