"""Camera detections fused with UWB tags: untagged people, missing PPE, supervisor verification, FP rate.

:class:`DetectionFusion` takes ``camera_detections`` batches (docs/protocol.md) with the latest tag fixes and
clock ticks and returns condition changes ``(definition, active, position)`` for
:meth:`AlarmBook.set_condition`. It is pure: every time is an event or engine time passed in.

Rules (settings: :class:`config.cameras.DetectionFusionSettings`, section ``detection_fusion``):

- Detections weaker than ``min_confidence``, or with an unknown camera / class or non-finite values, are
  ignored (counted in :attr:`DetectionFusion.ignored`). A ``box_px`` that is not finite or not inside its
  camera's image (``0 <= x1 < x2 <= w``, ``0 <= y1 < y2 <= h``: the camera adapter's own rule) is left out of
  the detection's boxes, counted; the detection itself still counts (its feet ``xy_m`` are what the rules use).
- A tag *fix counts* for a frame when it is finite and at most ``max_fix_age_s`` from the frame time.
- **People**: in each frame (one camera, one ``ts_s``) person detections are matched one-to-one to counted fixes
  within ``gate_m`` of their feet, nearest pairs first (ties: lower row, then lower person index). A person left
  without a tag is *untagged*: ``camera.untagged_person:<camera>`` (condition ``camera.untagged_person``,
  ``untagged_priority``, medium by default), at the most confident untagged person's feet.
- **PPE** (``no_helmet``, ``no_vest``, ``no_harness``): the box is the whole person, so it belongs to the person
  detection of the same frame whose feet are within ``same_person_m``, and takes that person's tag; with no such
  person detection, to the nearest counted fix within ``gate_m``. With a tag: ``ppe.<class>:<tag>`` (condition
  ``ppe.<class>``, ``ppe_priority``). Without one it is counted (the untagged-person alarm covers that person).
- **Start-up grace**: no untagged-person finding (frames are not even counted) until tag fixes have been
  reaching the engine for ``untagged_grace_s``, in engine time from the first fix (:meth:`DetectionFusion.on_fixes`),
  so replay decides alike. Before that every person in view would be "untagged": the cameras see people before
  the tracker has their tags' first fixes (and a positioning that never comes is a UWB fault, not a camera
  finding). PPE findings need a tag anyway and are not held back.
- A finding raises once it was seen in ``min_frames`` distinct frames within ``frame_window_s``, and clears
  ``hold_s`` after the last frame that showed it (on a tick). Frames already older than ``hold_s`` are ignored.
- **Snapshot**: a detection keeps what the frame that raised it showed: the SHA-256 of its JPEG (from the batch's
  ``meta.snapshots``, when the camera adapter holds the frame; the image itself is in the engine's blob store,
  never here) and the boxes of that frame (array ``box_px``), the finding's own marked.
- **Verification**: each raise opens a *detection* (id ``D<n>``) pending verification. A supervisor (a role
  in ``verifier_roles``) confirms or rejects it (a false positive, with its reason) with
  :meth:`DetectionFusion.verify`; anyone else is refused with the reason. A reject clears the alarm and keeps it
  down while the same finding goes on (until it lapses for ``hold_s``); a confirm leaves it. At most ``max_pending`` detections wait; beyond that the oldest expires
  unverified (counted). Verified and expired detections stay in a bounded history (``max_history``).
- **False-positive rate** per camera and class: rejected / (confirmed + rejected) (``person`` stands for the
  untagged-person finding).
"""

from __future__ import annotations

import bisect
import logging
import math
import re
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config import Site
from config.cameras import DetectionFusionSettings
from config.rules import DETECTION_CLASSES

from .definitions import AlarmCatalog
from .journal import Journal
from .lifecycle import AlarmDefinition, Refused

log = logging.getLogger(__name__)

__all__ = ["DetectionFusion", "Verification", "Change", "VERDICTS", "MAX_REASON_CHARS"]

#: what a verifier may say about a detection
VERDICTS = ("confirm", "reject")
#: a verdict's reason, at most (characters); a reject needs one
MAX_REASON_CHARS = 500
#: boxes of the raising frame kept with a detection, at most
MAX_BOXES = 50
_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: a condition change for :meth:`AlarmBook.set_condition`: (definition, active, (x, y) site metres or None)
Change = tuple[AlarmDefinition, bool, tuple[float, float] | None]

_PPE_TEXT = {
    "no_helmet": ("No helmet", "未戴安全帽"),
    "no_vest": ("No high-visibility vest", "未穿反光背心"),
    "no_harness": ("No safety harness", "未系安全带"),
}


@dataclass(frozen=True)
class Verification:
    """The outcome of :meth:`DetectionFusion.verify`: the detection ``record`` after the verdict (a copy) and
    the condition ``changes`` it causes (a reject clears the alarm)."""

    record: dict[str, Any]
    changes: list[Change]


@dataclass
class _Episode:
    """One finding going on: an untagged person in front of a camera, or a person without a piece of PPE."""

    key: tuple[Any, ...]
    class_id: int
    person: int  # -1: untagged
    camera: int  # camera of the newest frame
    xy: tuple[float, float]
    frames: list[float] = field(default_factory=list)  # distinct frame times within the window, ascending
    last_ts: float = -math.inf
    active: bool = False
    rejected: bool = False
    record: dict[str, Any] | None = None


class DetectionFusion:
    """Camera detections against the tags of a site's people; see the module docstring for the rules.

    ``settings`` default to the site's ``detection_fusion`` section (or the defaults when it has none). With a
    ``journal``, verifications and refused verifications are journaled (pass ``input_seq`` to :meth:`verify`).
    """

    def __init__(self, site: Site, catalog: AlarmCatalog | None = None,
                 settings: DetectionFusionSettings | None = None, journal: Journal | None = None) -> None:
        self.site = site
        self.catalog = catalog or AlarmCatalog(site)
        self.settings = settings or getattr(site, "detection_fusion", None) or DetectionFusionSettings()
        self.journal = journal
        self.cameras = site.cameras
        self.people = site.people
        self.episodes: dict[tuple[Any, ...], _Episode] = {}
        self.pending: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.history: deque[dict[str, Any]] = deque(maxlen=self.settings.max_history)
        self.verdicts: dict[tuple[int, int], list[int]] = {}  # (camera, class) -> [confirmed, rejected]
        self.ignored: Counter[str] = Counter()  # detections not used, by reason
        self.counts: Counter[str] = Counter()  # what happened: raised, cleared, expired unverified, ...
        self._next_id = 1
        self._defs: dict[tuple[Any, ...], AlarmDefinition] = {}
        self._by_record: dict[str, tuple[Any, ...]] = {}  # detection id -> key of its open episode
        self.fixes_since_s = math.nan  # engine time of the first tag fix (the start-up grace runs from it)
        # the batch being taken: its boxes [n, 4] and which of them may be kept (or None), its frames' hashes,
        # the frame's (rows, cls, conf)
        self._frame_boxes: tuple[np.ndarray, np.ndarray] | None = None
        self._frame_shots: dict[tuple[int, float], str] = {}
        self._frame_ctx: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    # -- definitions --------------------------------------------------------------------------------------
    def untagged_definition(self, ci: int) -> AlarmDefinition:
        """``camera.untagged_person:<camera>``."""
        key = ("untagged", ci)
        d = self._defs.get(key)
        if d is None:
            c = self.cameras[ci]
            where = f"{c.id} ({c.name})" if c.name else c.id
            where_zh = f"{c.id}（{c.name}）" if c.name else c.id
            d = self.catalog.define(
                id=f"camera.untagged_person:{c.id}", condition="camera.untagged_person", source=c.id,
                priority=self.settings.untagged_priority, message_en=f"Person without a UWB tag seen by camera {where}",
                message_zh=f"摄像头 {where_zh} 发现未佩戴定位标签的人员")
            self._defs[key] = d
        return d

    def ppe_definition(self, class_id: int, pi: int) -> AlarmDefinition:
        """``ppe.<class>:<tag>``."""
        key = ("ppe", class_id, pi)
        d = self._defs.get(key)
        if d is None:
            cls, p = DETECTION_CLASSES[class_id], self.people[pi]
            en, zh = _PPE_TEXT[cls]
            d = self.catalog.define(
                id=f"ppe.{cls}:{p.tag}", condition=f"ppe.{cls}", source=p.tag,
                priority=self.settings.ppe_priority.get(cls, "medium"),
                message_en=f"{en}: {p.name} ({p.tag}) seen by a camera", message_zh=f"摄像头发现{zh}：{p.name}（{p.tag}）",
                person=p.id)
            self._defs[key] = d
        return d

    def _definition(self, ep: _Episode) -> AlarmDefinition:
        if ep.key[0] == "untagged":
            return self.untagged_definition(ep.key[1])
        return self.ppe_definition(ep.class_id, ep.person)

    # -- positioning --------------------------------------------------------------------------------------
    def on_fixes(self, now_s: float) -> None:
        """Tag fixes reached the engine at engine time ``now_s``: the first one starts the untagged-person grace."""
        if math.isnan(self.fixes_since_s):
            self.fixes_since_s = float(now_s)

    def in_grace(self, now_s: float) -> bool:
        """True while untagged-person findings wait for the positioning (``untagged_grace_s`` after the first fix,
        or no fix yet) at engine time ``now_s``."""
        g = self.settings.untagged_grace_s
        return g > 0 and not now_s >= self.fixes_since_s + g

    # -- detections ---------------------------------------------------------------------------------------
    def _valid_rows(self, arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, ...] | None:
        try:
            cam = np.asarray(arrays["camera_index"], dtype=np.int64).reshape(-1)
            cls = np.asarray(arrays["class_id"], dtype=np.int64).reshape(-1)
            conf = np.asarray(arrays["confidence"], dtype=np.float64).reshape(-1)
            xy = np.asarray(arrays["xy_m"], dtype=np.float64)
            ts = np.asarray(arrays["ts_s"], dtype=np.float64).reshape(-1)
        except KeyError as e:
            self.ignored[f"batch without array {e.args[0]}"] += 1
            return None
        n = len(cam)
        if not (len(cls) == len(conf) == len(ts) == n) or xy.shape != (n, 2):
            self.ignored["arrays of unequal length"] += n
            return None
        bad_cam = (cam < 0) | (cam >= len(self.cameras))
        bad_cls = ~bad_cam & ((cls < 0) | (cls >= len(DETECTION_CLASSES)))
        bad_num = ~bad_cam & ~bad_cls & ~(np.isfinite(ts) & np.isfinite(xy).all(axis=1) & np.isfinite(conf))
        weak = ~bad_cam & ~bad_cls & ~bad_num & (conf < self.settings.min_confidence)
        for reason, sel in (("unknown camera index", bad_cam), ("unknown class", bad_cls),
                            ("non-finite time, position or confidence", bad_num), ("below min_confidence", weak)):
            k = int(np.count_nonzero(sel))
            if k:
                self.ignored[reason] += k
        ok = ~(bad_cam | bad_cls | bad_num | weak)
        return cam, cls, conf, xy, ts, ok

    def _checked_boxes(self, box: Any, cam: np.ndarray, used: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A batch's ``box_px`` float [n, 4] and a bool [n]: the box is finite and inside its camera's image
        (``0 <= x1 < x2 <= w``, ``0 <= y1 < y2 <= h``). Only such boxes are kept with a detection: a NaN or inf
        box would make its record unwritable as JSON. Bad boxes of the ``used`` rows are counted in
        :attr:`ignored`; None when the batch has no boxes (or boxes of the wrong shape, counted)."""
        if box is None or not len(self.cameras):
            return None
        px = np.asarray(box, dtype=np.float64)
        if px.shape != (len(cam), 4):
            self.ignored["box_px of the wrong shape (boxes left out)"] += 1
            return None
        size = np.array([c.image_size_px for c in self.cameras], dtype=np.float64)[np.where(used, cam, 0)]
        with np.errstate(invalid="ignore"):
            good = (np.isfinite(px).all(axis=1) & (px[:, 0] >= 0) & (px[:, 0] < px[:, 2]) & (px[:, 2] <= size[:, 0])
                    & (px[:, 1] >= 0) & (px[:, 1] < px[:, 3]) & (px[:, 3] <= size[:, 1]))
        k = int(np.count_nonzero(used & ~good))
        if k:
            self.ignored["box_px not finite or outside the image (box left out)"] += k
        return px, good

    def _snapshots(self, snapshots: Any) -> dict[tuple[int, float], str]:
        """(camera index, frame time) -> SHA-256 of the frame's JPEG, from a batch's ``meta.snapshots``; malformed
        entries are counted in :attr:`ignored` and left out."""
        out: dict[tuple[int, float], str] = {}
        if snapshots is None:
            return out
        if not isinstance(snapshots, list):
            self.ignored["snapshots is not a list"] += 1
            return out
        for e in snapshots:
            ci = e.get("camera_index") if isinstance(e, dict) else None
            ts = e.get("ts_s") if isinstance(e, dict) else None
            sha = e.get("sha256") if isinstance(e, dict) else None
            if (isinstance(ci, bool) or not isinstance(ci, int) or not 0 <= ci < len(self.cameras)
                    or isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts)
                    or not isinstance(sha, str) or not _SHA256.match(sha)):
                self.ignored["malformed snapshot entry"] += 1
                continue
            out[(ci, float(ts))] = sha
        return out

    def on_detections(self, arrays: dict[str, np.ndarray], xyz_m: np.ndarray, fix_ts_s: np.ndarray,
                      now_s: float, snapshots: Any = None) -> list[Change]:
        """A ``camera_detections`` batch (arrays ``camera_index`` int [n], ``class_id`` int [n], ``confidence``
        float [n], ``xy_m`` float [n, 2] feet in site metres, ``ts_s`` float [n] frame times, optional ``box_px``
        float [n, 4] image pixels) against the tag fixes ``xyz_m`` float [P, 3] (site metres, NaN unknown) taken at
        ``fix_ts_s`` float [P]. ``snapshots``: the batch's ``meta.snapshots`` (``camera_index``, ``ts_s``,
        ``sha256`` of each frame the adapter holds). Returns the changes of conditions that rose. ``now_s`` is
        the engine time."""
        out: list[Change] = []
        checked = self._valid_rows(arrays)
        if checked is None:
            return out
        cam, cls, conf, xy, ts, ok = checked
        late = ok & (ts + self.settings.hold_s <= now_s)
        if late.any():
            self.ignored["frame older than hold_s"] += int(np.count_nonzero(late))
        self._frame_boxes = self._checked_boxes(arrays.get("box_px"), cam, ok & ~late)
        self._frame_shots = self._snapshots(snapshots)
        rows = np.nonzero(ok & ~late)[0]
        if not len(rows):
            return out
        rows = rows[np.lexsort((rows, cam[rows], ts[rows]))]  # frames in time order, then camera, then row
        fixes = np.asarray(xyz_m, dtype=np.float64)[:, :2]
        fix_ts = np.asarray(fix_ts_s, dtype=np.float64)
        k = 0
        while k < len(rows):
            j = k
            while j < len(rows) and ts[rows[j]] == ts[rows[k]] and cam[rows[j]] == cam[rows[k]]:
                j += 1
            self._frame_ctx = (rows[k:j], cls, conf)
            self._frame(rows[k:j], int(cam[rows[k]]), float(ts[rows[k]]), cls, conf, xy, fixes, fix_ts, now_s, out)
            k = j
        self._frame_boxes, self._frame_shots, self._frame_ctx = None, {}, None
        return out

    def _frame(self, rows: np.ndarray, ci: int, t: float, cls: np.ndarray, conf: np.ndarray, xy: np.ndarray,
               fixes: np.ndarray, fix_ts: np.ndarray, now_s: float, out: list[Change]) -> None:
        s = self.settings
        counted = np.nonzero(np.isfinite(fix_ts) & (np.abs(fix_ts - t) <= s.max_fix_age_s)
                             & np.isfinite(fixes).all(axis=1))[0]
        persons = rows[cls[rows] == 0]
        owner = {int(r): -1 for r in persons}
        if len(persons) and len(counted):
            d = np.hypot(xy[persons, None, 0] - fixes[None, counted, 0], xy[persons, None, 1] - fixes[None, counted, 1])
            pi, ti = np.nonzero(d <= s.gate_m)
            order = np.lexsort((counted[ti], persons[pi], d[pi, ti]))
            used: set[int] = set()
            for q in order.tolist():
                r, person = int(persons[pi[q]]), int(counted[ti[q]])
                if owner[r] < 0 and person not in used:
                    owner[r] = person
                    used.add(person)
        untagged = [r for r in owner if owner[r] < 0]
        if untagged and self.in_grace(now_s):
            self.counts["untagged person in the start-up grace"] += 1
        elif untagged:
            best = max(untagged, key=lambda r: (conf[r], -r))
            self._observe(("untagged", ci), 0, -1, ci, t, (float(xy[best, 0]), float(xy[best, 1])), float(conf[best]),
                          now_s, out, row=best)
        for r in rows[cls[rows] > 0].tolist():
            person = -1
            if len(persons):
                dp = np.hypot(xy[persons, 0] - xy[r, 0], xy[persons, 1] - xy[r, 1])
                near = int(np.argmin(dp))
                if dp[near] <= s.same_person_m:
                    person = owner[int(persons[near])]
                    if person < 0:
                        self.counts["ppe on an untagged person"] += 1
                        continue
            if person < 0 and len(counted):
                dt = np.hypot(fixes[counted, 0] - xy[r, 0], fixes[counted, 1] - xy[r, 1])
                near = int(np.argmin(dt))
                if dt[near] <= s.gate_m:
                    person = int(counted[near])
            if person < 0:
                self.counts["ppe with no tag in the gate"] += 1
                continue
            c = int(cls[r])
            self._observe(("ppe", c, person), c, person, ci, t, (float(xy[r, 0]), float(xy[r, 1])), float(conf[r]),
                          now_s, out, row=r)

    def _observe(self, key: tuple[Any, ...], class_id: int, person: int, ci: int, t: float,
                 xy: tuple[float, float], conf: float, now_s: float, out: list[Change], *, row: int = -1) -> None:
        s = self.settings
        ep = self.episodes.get(key)
        if ep is None:
            ep = self.episodes[key] = _Episode(key, class_id, person, ci, xy)
        new_frame = False
        i = bisect.bisect_left(ep.frames, t)
        if i == len(ep.frames) or ep.frames[i] != t:
            ep.frames.insert(i, t)
            new_frame = True
        if t >= ep.last_ts:
            ep.last_ts, ep.xy, ep.camera = t, xy, ci
        newest = ep.frames[-1]
        while ep.frames and ep.frames[0] <= newest - s.frame_window_s:
            ep.frames.pop(0)
        rec = ep.record
        if rec is not None:
            rec["last_ts_s"] = max(rec["last_ts_s"], t)
            rec["frames"] += int(new_frame)
            rec["confidence"] = max(rec["confidence"], conf)
            rec["xy_m"] = [ep.xy[0], ep.xy[1]]
            return
        if ep.active or ep.rejected or len(ep.frames) < s.min_frames:
            return
        ep.active = True
        rec = ep.record = self._open_record(ep, conf, now_s)
        rec.update(self._raising_frame(ci, t, row))
        self.counts["raised"] += 1
        out.append((self._definition(ep), True, ep.xy))

    def _raising_frame(self, ci: int, t: float, row: int) -> dict[str, Any]:
        """What a detection keeps of the frame that raised it: ``snapshot`` (``sha256`` of its JPEG and ``ts_s``;
        None when the adapter did not hold the frame), ``image_px`` [w, h] and ``boxes`` (``class``,
        ``confidence``, ``box_px`` [x1, y1, x2, y2], ``finding``: the finding's own box), at most
        :data:`MAX_BOXES`, the finding's first; a box that failed the check (:meth:`_checked_boxes`) is left out."""
        sha = self._frame_shots.get((ci, t))
        boxes: list[dict[str, Any]] = []
        ctx, checked = self._frame_ctx, self._frame_boxes
        if ctx is not None and checked is not None:
            rows, cls, conf = ctx
            px, good = checked
            ordered = [row] + [int(r) for r in rows if int(r) != row] if row >= 0 else [int(r) for r in rows]
            for r in [r for r in ordered if good[r]][:MAX_BOXES]:
                boxes.append({"class": DETECTION_CLASSES[int(cls[r])], "confidence": round(float(conf[r]), 4),
                              "box_px": [round(float(v), 2) for v in px[r]], "finding": r == row})
        w, h = self.cameras[ci].image_size_px
        return {"snapshot": {"sha256": sha, "ts_s": t} if sha is not None else None, "image_px": [int(w), int(h)],
                "boxes": boxes}

    def _open_record(self, ep: _Episode, conf: float, now_s: float) -> dict[str, Any]:
        did = f"D{self._next_id}"
        self._next_id += 1
        p = self.people[ep.person] if ep.person >= 0 else None
        rec = {
            "id": did, "alarm": self._definition(ep).id,
            "kind": "untagged_person" if ep.key[0] == "untagged" else "ppe",
            "class": DETECTION_CLASSES[ep.class_id], "camera": self.cameras[ep.camera].id,
            "camera_index": ep.camera, "tag": p.tag if p else None, "person": p.id if p else None,
            "first_ts_s": ep.frames[0], "last_ts_s": ep.last_ts, "raised_ts_s": now_s, "frames": len(ep.frames),
            "confidence": conf, "xy_m": [ep.xy[0], ep.xy[1]], "status": "pending", "verified_by": None,
            "verified_role": None, "verified_ts_s": None, "ended_ts_s": None, "verdict_reason": None,
        }
        self.pending[did] = rec
        self._by_record[did] = ep.key
        while len(self.pending) > self.settings.max_pending:
            old_id, old = self.pending.popitem(last=False)
            old["status"] = "expired"
            self.history.append(old)
            self.counts["expired unverified"] += 1
            log.info("detection %s expired unverified (more than %d pending)", old_id, self.settings.max_pending)
        return rec

    # -- time -----------------------------------------------------------------------------------------------
    def on_tick(self, now_s: float) -> list[Change]:
        """Advance to engine time ``now_s``: findings not seen for ``hold_s`` end; a raised one clears."""
        out: list[Change] = []
        hold = self.settings.hold_s
        for key in [k for k, ep in self.episodes.items() if ep.last_ts + hold <= now_s]:
            ep = self.episodes.pop(key)
            if ep.record is not None:
                ep.record["ended_ts_s"] = now_s
                self._by_record.pop(ep.record["id"], None)
            if ep.active:
                self.counts["cleared"] += 1
                out.append((self._definition(ep), False, ep.xy))
        return out

    # -- verification -------------------------------------------------------------------------------------
    def _journal(self, event: str, alarm_id: str, state: str, user: str, role: str, ts: float, seq: int,
                 detail: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=ts, event=event, alarm_id=alarm_id, state=state,
                                actor=user, role=role, detail=detail)

    def _find(self, detection_id: str) -> dict[str, Any] | None:
        for rec in reversed(self.history):
            if rec["id"] == detection_id:
                return rec
        return None

    def verify(self, detection_id: str, user: str, role: str, verdict: str, ts: float, *, reason: str = "",
               input_seq: int = 0) -> Verification:
        """A person's verdict (``confirm`` or ``reject``: a false positive) on a pending detection at engine time
        ``ts``, with its ``reason`` (required for a reject; at most :data:`MAX_REASON_CHARS`). Raises
        :class:`alarms.lifecycle.Refused` with the reason when ``role`` may not verify, the verdict is unknown, a
        reject has no reason, or the detection is not pending (unknown, already verified, expired); nothing changes
        then. The verdict and its reason are journaled."""
        rec = self.pending.get(detection_id)

        def refuse(why: str) -> Refused:
            alarm = rec["alarm"] if rec else (old["alarm"] if old else f"detection:{detection_id}"[:80])
            self._journal("refused", alarm, "unknown", user, role, ts, input_seq,
                          {"action": "verify_detection", "detection": str(detection_id)[:64], "reason": why})
            return Refused(why)

        old = None if rec is not None else self._find(detection_id)
        if role not in self.settings.verifier_roles:
            raise refuse(f"role {role} may not verify camera detections "
                         f"({', '.join(self.settings.verifier_roles)} only)")
        if verdict not in VERDICTS:
            raise refuse(f"unknown verdict {str(verdict)[:32]!r} (confirm or reject)")
        reason = reason.strip() if isinstance(reason, str) else ""
        if verdict == "reject" and not reason:
            raise refuse("a false positive needs a reason")
        if len(reason) > MAX_REASON_CHARS:
            raise refuse(f"the reason is {len(reason)} characters, at most {MAX_REASON_CHARS}")
        if rec is None:
            if old is None:
                raise refuse(f"no such detection {detection_id!r}")
            if old["status"] == "expired":
                raise refuse(f"detection {detection_id} expired unverified")
            raise refuse(f"detection {detection_id} was already {old['status']} by {old['verified_by']}")
        del self.pending[detection_id]
        rec["status"] = "confirmed" if verdict == "confirm" else "rejected"
        rec["verified_by"], rec["verified_role"], rec["verified_ts_s"] = user, role, ts
        rec["verdict_reason"] = reason
        self.history.append(rec)
        tally = self.verdicts.setdefault((rec["camera_index"], DETECTION_CLASSES.index(rec["class"])), [0, 0])
        tally[0 if verdict == "confirm" else 1] += 1
        changes: list[Change] = []
        key = self._by_record.get(detection_id)
        ep = self.episodes.get(key) if key is not None else None
        if verdict == "reject" and ep is not None and ep.active:
            ep.active, ep.rejected = False, True
            self.counts["cleared by reject"] += 1
            changes.append((self._definition(ep), False, ep.xy))
        self._journal(f"detection_{rec['status']}", rec["alarm"], rec["status"], user, role, ts, input_seq,
                      {"detection": detection_id, "camera": rec["camera"], "class": rec["class"], "tag": rec["tag"],
                       "reason": reason, "snapshot": (rec.get("snapshot") or {}).get("sha256")})
        log.info("detection %s %s by %s (%s)", detection_id, rec["status"], user, role)
        return Verification(dict(rec), changes)

    # -- views --------------------------------------------------------------------------------------------
    def pending_detections(self) -> list[dict[str, Any]]:
        """Copies of the detections awaiting verification, oldest first."""
        return [dict(r) for r in self.pending.values()]

    def false_positive_rate(self, camera: str, cls: str) -> float:
        """rejected / (confirmed + rejected) for one camera id and class; NaN before any verdict."""
        ci = next((i for i, c in enumerate(self.cameras) if c.id == camera), -1)
        c, r = self.verdicts.get((ci, DETECTION_CLASSES.index(cls)), (0, 0)) if cls in DETECTION_CLASSES else (0, 0)
        return r / (c + r) if c + r else math.nan

    def false_positive_rates(self) -> list[dict[str, Any]]:
        """``{"camera", "class", "confirmed", "rejected", "rate"}`` for each camera and class with a verdict."""
        return [{"camera": self.cameras[ci].id, "class": DETECTION_CLASSES[k], "confirmed": c, "rejected": r,
                 "rate": r / (c + r)} for (ci, k), (c, r) in sorted(self.verdicts.items())]

    def snapshot(self) -> dict[str, Any]:
        """What a console shows: pending detections, recent verdicts, false-positive rates, counters."""
        return {"pending": self.pending_detections(), "recent": [dict(r) for r in list(self.history)[-50:]],
                "false_positive_rates": self.false_positive_rates(), "counts": dict(self.counts),
                "ignored": dict(self.ignored)}

