"""The engine: a deterministic function of its input sequence (DESIGN principle 1).

``Engine.apply(seq, msg)`` takes one sequenced input (an ingest batch, a clock tick, a rejected-input record,
or a person's command) and returns what changed. It never reads the wall clock: ``now_s`` only moves with
clock ticks. Live running (:mod:`ingest.engine.process`) and replay (:mod:`ingest.engine.replay`) both drive
it through :func:`apply`, so they write the same journal.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections import Counter, deque
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from alarms.awake import AwakeClock
from alarms.definitions import AlarmCatalog
from alarms.detections import DetectionFusion
from alarms.flood import FloodChange, FloodMonitor
from alarms.gas import GasConditions
from alarms.journal import Journal
from alarms.lifecycle import AlarmBook, Refused
from alarms.muster import Muster, MusterRefused
from alarms.notify import Notice
from alarms.people import PeopleSafety
from alarms.permits import PermitBook
from alarms.rules import CompositeRules, nearest_person
from alarms.vibration import VibrationConditions
from alarms.zones import FenceEvent, RestrictedZoneRule, ZoneMembership
from config import Site
from config.geometry import point_in_polygon
from ingest.bus import Message
from ingest.protocol.highlight import HIGHLIGHT_OP, HIGHLIGHT_ROLES, HIGHLIGHT_S, MAX_HIGHLIGHTS, Highlight
from ingest.protocol.horn import HORN_OP, HORN_ROLES, HORN_SILENCE_S, Silence, horn_call
from ingest.protocol.names import (
    MUSTER_ROLES,
    PERMIT_OPS,
    PRIORITY_RANK,
    QUALITY_BAD,
    QUALITY_GOOD,
    QUALITY_NO_DATA,
    REJECT_GATED,
)
from ingest.protocol.trails import TrailRing

from .presence import ZonePresence
from .state import SiteState

log = logging.getLogger(__name__)

__all__ = ["Engine", "Outcome", "CLOCK_SOURCES", "decode_recorded"]

#: adapters whose batches report their source's clock skew (``meta.skew_s``; ``clock.<source>`` settings)
SKEW_WINDOW_S = 30.0  # engine seconds over which a source's clock skew figure is taken
CLOCK_SOURCES = ("uwb", "gas", "vibration", "camera")  # senders whose batches (data or rejects) carry skew_s


@dataclass
class Outcome:
    """What one applied input changed: alarm records for the console deltas, a reply for a command."""

    alarms: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    tick: bool = False
    notices: list[Notice] = field(default_factory=list)
    fences: list[FenceEvent] = field(default_factory=list)
    muster: dict[str, Any] | None = None
    floods: list[FloodChange] = field(default_factory=list)


def decode_recorded(frames: list[bytes]) -> Message:
    """A recorded input as a message. The live engine records only frames that decode; a recording damaged
    since gives an ``undecodable`` input, which :meth:`Engine.apply` journals as failed and skips."""
    from ingest.bus import FramingError, decode

    try:
        return decode(frames)
    except FramingError as e:
        return Message(topic="undecodable", source="recording", kind="undecodable", event_ts_s=float("nan"),
                       ingest_ts_s=float("nan"), meta={"error": str(e)[:200]})


class Engine:
    def __init__(self, site: Site, journal: Journal | None) -> None:
        self.site = site
        self.journal = journal
        self.state = SiteState(site)
        self.book = AlarmBook(journal, max_shelve_s=dict(site.max_shelve_s), area_of=self._area_of)
        self.catalog = AlarmCatalog(site)
        self.now_s = float("nan")
        self.ticks = 0
        self.last_seq = 0
        self.inputs: Counter[str] = Counter()
        self.items: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self.positions = 0
        self.person_ids = [p.id for p in site.people]
        self.users = {u.id: u for u in site.users}
        self.membership = ZoneMembership(site)
        # where everyone has been (10 min) and who was in which zone when: rebuilt by replay like the rest
        self.trails = TrailRing(len(site.people))
        self.presence = ZonePresence(site)
        self.highlights: dict[str, Highlight] = {}  # person id -> the mark on the walls
        self.permits = PermitBook(site, self.book, self.catalog, journal)
        self._reply_extra: dict[str, Any] = {}
        self.muster_changed = False
        self.permits.locate = self._locate
        self._tag_index = {p.tag: i for i, p in enumerate(site.people)}
        self._person_index = {p.id: i for i, p in enumerate(site.people)}
        # where the fixed sensors stand: an alarm of theirs is raised in the area around them
        self._sensor_xy = {s.id: (float(s.position_m[0]), float(s.position_m[1]))
                           for s in (*site.gas_detectors, *site.vibration_points)}
        self.people_safety = PeopleSafety(site, self.catalog)
        # the engine's own stalls are not sensor silence (alarms/awake.py): one clock for every staleness judgement
        self.awake = AwakeClock(site.engine.tick_s)
        self.gas = GasConditions(site, self.catalog, self.awake)
        self.vibration = VibrationConditions(site, self.catalog, awake=self.awake)
        self.detection_fusion = DetectionFusion(site, self.catalog, journal=journal)
        self.muster = Muster(site)
        self.composite_rules = CompositeRules(site, self.catalog, membership=self.membership)
        self.permit_zones = [k for k, z in enumerate(site.zones) if z.kind in ("hazardous", "confined_space")]
        self.restricted = RestrictedZoneRule(site, self.catalog)
        self.last_detections: dict[str, np.ndarray] = {}
        self.positions_areas = [(p.id, p.areas) for p in site.operator_positions]
        self.floods = {p.id: FloodMonitor(p.id) for p in site.operator_positions}
        self.silences: dict[str, Silence] = {}  # the latest horn silence per operator position
        self.notices_total = 0
        self.failed_inputs = 0
        self.recordings_removed = 0  # by the retention setting (journaled: recording_removed)
        self.clock_skew_s: dict[str, float] = {}  # source -> clock skew figure (s, + = source clock ahead)
        self._skews: dict[str, deque[tuple[float, float]]] = {}  # source -> (engine time, batch skew_s)
        self.retimed: Counter[str] = Counter()  # gas values applied at ingest time (source time outside window)

    def _reject(self, reason: str, n: int = 1) -> None:
        if n > 0:
            self.rejected[reason] += n

    # -- dispatch ---------------------------------------------------------------------------------------
    def apply(self, seq: int, msg: Message) -> Outcome:
        if seq != self.last_seq + 1:
            raise ValueError(f"input {seq} applied after {self.last_seq}: the sequence must have no gaps")
        self.last_seq = seq
        self.inputs[msg.source] += 1
        out = Outcome()
        handler = {
            "tick": self._tick,
            "positions": self._positions,
            "gas_values": self._gas,
            "vibration_features": self._vibration,
            "camera_detections": self._detections,
            "rejected": self._rejected,
            "command": self._command,
            "permit_command": self._permit_command,
            "wearable_events": self._wearable,
            "input_values": self._inputs,
            "notification_result": self._notification_result,
            "session": self._session,
            "command_refused": self._command_refused,
            "retention": self._retention,
            "undecodable": self._undecodable,
        }.get(msg.kind)
        if handler is None:
            self._reject("engine: unknown message kind")
        else:
            try:
                handler(seq, msg, out)
                if msg.source in CLOCK_SOURCES and "skew_s" in msg.meta:
                    self._clock_skew(seq, msg, out)
            except Exception as e:  # noqa: BLE001 - validated input cannot get here; if it does, the engine goes on
                self._input_failed(seq, msg, e, out)
        self._after(seq, out)
        if self.journal is not None:
            self.journal.commit()
        return out

    def _undecodable(self, seq: int, msg: Message, out: Outcome) -> None:
        raise ValueError(f"recorded frames do not decode: {msg.meta.get('error')}")

    def _input_failed(self, seq: int, msg: Message, e: Exception, out: Outcome) -> None:
        """An input that could not be applied: journaled with its sequence number and a critical alarm that
        stays until acknowledged and reset. Live and replay skip it the same way (what the handler did before
        it failed stays done in both), so the recording still replays byte-exact."""
        self.failed_inputs += 1
        reason = f"{e.__class__.__name__}: {str(e)[:160]}"
        log.error("input %d (%s from %s) could not be applied: %s", seq, msg.kind, msg.source, reason, exc_info=e)
        t = self._now(msg.event_ts_s)
        t = t if np.isfinite(t) else 0.0
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event="input_failed", alarm_id="engine.input_failed",
                                state="", detail={"kind": msg.kind[:64], "source": msg.source[:64], "error": reason})
        d = dataclasses.replace(self.catalog.define(
            id="engine.input_failed", condition="engine.input_failed", source="engine", priority="critical",
            message_en=f"Engine could not apply input {seq} ({msg.kind[:32]} from {msg.source[:32]}): {reason[:80]}; "
                       "it was skipped",
            message_zh=f"引擎无法处理输入 {seq}（{msg.kind[:32]}，来自 {msg.source[:32]}）：{reason[:80]}；已跳过"),
            latching=True)
        for active in (True, False):
            rec = self.book.set_condition(d, active, t, seq)
            if rec is not None:
                out.alarms.append(rec)

    def _clock_skew(self, seq: int, msg: Message, out: Outcome) -> None:
        """A source's clock against the ingest clock: the largest of its batches' ``skew_s`` (each the batch's
        least-delayed item, :class:`ingest.adapter.ClockWatch`) over the last :data:`SKEW_WINDOW_S` of engine
        time, so that transport delay, which only ever makes an item look behind, does not count unless every
        batch of the window was late. Above the source's ``skew_alarm_s`` a medium alarm; it clears below half
        of that (deadband)."""
        skew = msg.meta.get("skew_s")
        if skew is None:
            return
        source = msg.source
        t = self._now(msg.event_ts_s)
        window = self._skews.setdefault(source, deque(maxlen=10_000))
        window.append((t, float(skew)))
        while window and window[0][0] < t - SKEW_WINDOW_S:
            window.popleft()
        skew = max(s for _, s in window)
        self.clock_skew_s[source] = skew
        if msg.meta.get("retimed"):
            self.retimed[source] += int(msg.meta["retimed"])
        limit = getattr(self.site.clock, source).skew_alarm_s
        aid = f"clock.skew:{source}"
        active = self.book.alarms[aid].condition if aid in self.book.alarms else False
        if (not active and abs(skew) > limit) or (active and abs(skew) < 0.5 * limit):
            way = "ahead of" if skew > 0 else "behind"
            d = self.catalog.define(
                id=aid, condition="clock.skew", source=source, priority="medium",
                message_en=f"Clock of the {source} source is {abs(skew):.1f} s {way} the ingest clock "
                           f"(limit {limit:g} s)",
                message_zh=f"{source} 数据源时钟与接入时钟相差 {abs(skew):.1f} 秒（限值 {limit:g} 秒）")
            rec = self.book.set_condition(d, not active, t, seq)
            if rec is not None:
                out.alarms.append(rec)

    def position_of(self, area: str | None) -> str:
        """The operator position answering for an alarm's area (first match; the first position by default)."""
        for pid, patterns in self.positions_areas:
            if any(fnmatchcase(area or "", pat) for pat in patterns):
                return pid
        return self.positions_areas[0][0]

    def _after(self, seq: int, out: Outcome) -> None:
        """Activations feed flood detection and notices; escalation steps become notices."""
        b = self.book
        k = 0
        for alarm in b.activated:
            d = alarm.definition
            k += 1
            out.notices.append(Notice(f"{seq}.{k}", "activate", d.id, alarm.priority, alarm.activated_ts_s,
                                      {"en": d.message_en, "zh-CN": d.message_zh}))
            change = self.floods[self.position_of(d.area or alarm.area)].activation(alarm.activated_ts_s, d.id)
            if change is not None:
                self._flood(seq, change, out)
        for n in b.notifications:
            k += 1
            d = b.alarms[n["alarm"]].definition if n["alarm"] in b.alarms else None
            msg = {"en": d.message_en, "zh-CN": d.message_zh} if d else {"en": n["alarm"], "zh-CN": n["alarm"]}
            out.notices.append(Notice(f"{seq}.{k}", "escalate", n["alarm"], n["priority"], n["ts_s"], msg,
                                      n["notify_role"], n["step"]))
        b.activated.clear()
        b.notifications.clear()
        self.notices_total += len(out.notices)
        if out.tick:
            for m in self.floods.values():
                change = m.tick(self.now_s)
                if change is not None:
                    self._flood(seq, change, out)

    def _flood(self, seq: int, change: FloodChange, out: Outcome) -> None:
        out.floods.append(change)
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=change.ts_s,
                                event="flood_start" if change.flood else "flood_end",
                                alarm_id=f"flood:{change.position}", state="flood" if change.flood else "normal",
                                detail={"count_10min": change.count, "first_out": change.first_out})

    def _notification_result(self, seq: int, msg: Message, out: Outcome) -> None:
        for r in msg.meta.get("results", []):
            if self.journal is None:
                continue
            alarm = self.book.alarms.get(str(r.get("alarm")))
            detail = {k: r.get(k) for k in ("notice", "kind", "sink", "attempt", "ok", "error")}
            self.journal.append(input_seq=seq, engine_ts_s=self._now(msg.event_ts_s), event="notify",
                                alarm_id=str(r.get("alarm", "")), state=alarm.state if alarm else "normal",
                                detail=detail)
            if r.get("final") and not r.get("ok"):
                self._reject(f"notifier: {r.get('sink')}: dead letter")
                self.journal.append(input_seq=seq, engine_ts_s=self._now(msg.event_ts_s),
                                    event="notify_dead_letter", alarm_id=str(r.get("alarm", "")),
                                    state=alarm.state if alarm else "normal", detail=detail)

    # -- handlers ---------------------------------------------------------------------------------------
    def _tick(self, seq: int, msg: Message, out: Outcome) -> None:
        if np.isfinite(self.now_s) and msg.event_ts_s < self.now_s:
            self._reject("engine: clock tick went backwards")
            return
        self.now_s = msg.event_ts_s
        self.awake.tick(self.now_s)
        self.ticks += 1
        out.tick = True
        out.alarms += self.book.tick(self.now_s, seq)
        self._apply_changes(self.people_safety.on_tick(self.now_s, self.membership), self.now_s, seq, out)
        self._apply_changes(self.gas.on_tick(self.now_s), self.now_s, seq, out)
        self._apply_changes(self.vibration.on_tick(self.now_s), self.now_s, seq, out)
        self._apply_changes(self.detection_fusion.on_tick(self.now_s), self.now_s, seq, out)
        self._apply_changes(self.composite_rules.on_tick(self.now_s, self.state.xyz_m), self.now_s, seq, out)
        st = self.state
        out.alarms += self.permits.tick(self.now_s, seq, st.xyz_m, st.fix_ts_s, st.stationary_s, self.membership,
                                        self.gas_level())
        out.alarms += self._zone_permit_rules(seq)

    def _now(self, fallback: float) -> float:
        return self.now_s if np.isfinite(self.now_s) else fallback

    def _positions(self, seq: int, msg: Message, out: Outcome) -> None:
        a = msg.arrays
        try:
            idx = a["person_index"].astype(np.int64)
            xyz, ts, valid = a["xyz_m"], a["ts_s"], a["valid"].astype(bool)
            gdop, rms = a["gdop"], a["rms_m"]
        except KeyError as e:
            self._reject(f"engine: positions without array {e.args[0]}")
            return
        n = len(idx)
        if xyz.shape != (n, 3) or not (len(ts) == len(valid) == len(gdop) == len(rms) == n):
            self._reject("engine: positions arrays of unequal length")
            return
        if "gated" in a:
            self._reject(REJECT_GATED, int(np.sum(a["gated"])))
        known = (idx >= 0) & (idx < len(self.person_ids))
        finite = np.isfinite(xyz).all(axis=1) & np.isfinite(ts)
        self._reject("engine: position with unknown person index", int(np.sum(valid & ~known)))
        self._reject("engine: valid position that is not finite", int(np.sum(valid & known & ~finite)))
        ok = valid & known & finite
        idx, xyz, ts, gdop, rms = idx[ok], xyz[ok], ts[ok], gdop[ok], rms[ok]
        self.trails.add(idx, xyz, ts)  # every fix of the batch, also those a newer one replaces below
        # only newer fixes replace older ones (batches from several gateways may interleave)
        newer = ~(ts <= self.state.fix_ts_s[idx])
        idx, xyz, ts, gdop, rms = idx[newer], xyz[newer], ts[newer], gdop[newer], rms[newer]
        self.state.xyz_m[idx] = xyz
        self.state.fix_ts_s[idx] = ts
        self.state.gdop[idx] = gdop
        self.state.rms_m[idx] = rms
        st = a["stationary_s"] if "stationary_s" in a and a["stationary_s"].shape == (n,) else np.full(n, np.nan)
        st = st[ok][newer]
        self.state.stationary_s[idx] = st
        self.positions += len(idx)
        self.items["positions"] += len(idx)
        t = self._now(msg.event_ts_s)
        if len(idx):
            self.detection_fusion.on_fixes(t)  # positioning is live: the cameras' untagged-person grace runs
        events = self.membership.update(idx, xyz, ts)
        out.fences += events
        self.presence.on_fence_events(events, t)
        self.people_safety.on_fence_events(events)
        self.muster.on_fence_events(events)
        self._apply_changes(self.people_safety.on_positions(idx, st, xyz, ts, t), t, seq, out)
        for definition, active, pos in self.restricted.evaluate(events):
            rec = self.book.set_condition(definition, active, t, seq, pos)
            if rec is not None:
                out.alarms.append(rec)

    def _zone_permit_rules(self, seq: int) -> list[dict[str, Any]]:
        """Hazardous and confined-space zones: entry only under an active permit that lists the person.
        Restricted zones: an alarm is suppressed by design while an active permit on the zone lists the person."""
        out = []
        t = self.now_s
        people = self.site.people
        violating: set[str] = set()
        for k in self.permit_zones:
            z = self.site.zones[k]
            if self.permits.has_live_permit(z.id):
                continue  # the permit's own check names people who are not on it (permit.unauthorized)
            for i in self.membership.people_in(k):
                tag = people[i].tag
                if self.permits.covers(z.id, tag):
                    continue
                d = self.catalog.define(
                    id=f"zone.no_permit:{z.id}:{tag}", condition="zone.no_permit", source=tag, priority=z.priority,
                    message_en=f"{people[i].name} ({tag}) in {z.kind.replace('_', ' ')} zone {z.name.en} without a "
                               "permit",
                    message_zh=f"{people[i].name}（{tag}）无作业许可进入 {z.name.zh_CN}",
                    zone=z.id, person=people[i].id, area=z.id)
                violating.add(d.id)
                rec = self.book.set_condition(d, True, t, seq,
                                              (float(self.state.xyz_m[i, 0]), float(self.state.xyz_m[i, 1])))
                if rec is not None:
                    out.append(rec)
        for a in list(self.book.alarms.values()):
            d = a.definition
            if d.condition == "zone.no_permit" and a.condition and d.id not in violating:
                rec = self.book.set_condition(d, False, t, seq)
                if rec is not None:
                    out.append(rec)
            elif d.condition == "zone.restricted":
                covered = self.permits.covers(d.zone, d.source)
                rec = self.book.set_suppressed(d.id, d, covered, "an active permit covers this person here", t, seq)
                if rec is not None:
                    out.append(rec)
            elif d.condition == "person.lone_worker":
                watched = d.zone is not None and self.permits.watched(d.zone, d.source)
                rec = self.book.set_suppressed(d.id, d, watched, "a permit's watcher is at the work", t, seq)
                if rec is not None:
                    out.append(rec)
        return out

    def _gas(self, seq: int, msg: Message, out: Outcome) -> None:
        a = msg.arrays
        idx = a["detector_index"].astype(np.int64)
        ok = (idx >= 0) & (idx < len(self.state.gas_value))
        self._reject("engine: gas value for unknown detector index", int(np.sum(~ok)))
        idx = idx[ok]
        q = a["quality"][ok]
        v = a["value"][ok].astype(np.float64)
        v[q == QUALITY_BAD] = np.nan  # a bad value is shown as bad, never as a number (principle 4)
        self.state.gas_value[idx] = v
        self.state.gas_quality[idx] = q
        self.state.gas_ts_s[idx] = a["ts_s"][ok]
        self.items["gas_values"] += len(idx)
        t = self._now(msg.event_ts_s)
        self._apply_changes(self.gas.on_values(idx, a["value"][ok].astype(np.float64), q, a["ts_s"][ok], t), t, seq,
                            out)
        self._apply_changes(self.composite_rules.on_values("gas", idx, v, a["ts_s"][ok], t), t, seq, out)

    def _vibration(self, seq: int, msg: Message, out: Outcome) -> None:
        a = msg.arrays
        idx = a["point_index"].astype(np.int64)
        ok = (idx >= 0) & (idx < len(self.state.vib_rms_mm_s))
        self._reject("engine: vibration for unknown point index", int(np.sum(~ok)))
        idx = idx[ok]
        self.state.vib_rms_mm_s[idx] = a["rms_mm_s"][ok]
        self.state.vib_quality[idx] = QUALITY_GOOD
        self.state.vib_ts_s[idx] = a["ts_s"][ok]
        self.items["vibration_features"] += len(idx)
        t = self._now(msg.event_ts_s)
        self._apply_changes(self.vibration.on_features(idx, a["rms_mm_s"][ok], a["ts_s"][ok], t), t, seq, out)
        self._apply_changes(self.composite_rules.on_values("vibration", idx, a["rms_mm_s"][ok], a["ts_s"][ok], t),
                            t, seq, out)

    def _detections(self, seq: int, msg: Message, out: Outcome) -> None:
        # first version: counted and kept for display; fusion with tags comes with the sensing work
        a = msg.arrays
        self.items["camera_detections"] += len(a.get("camera_index", ()))
        self.last_detections = a
        t = self._now(msg.event_ts_s)
        self._apply_changes(self.detection_fusion.on_detections(a, self.state.xyz_m, self.state.fix_ts_s, t,
                                                                msg.meta.get("snapshots")), t, seq, out)
        if self.composite_rules.rules and len(a.get("camera_index", ())):
            t = self._now(msg.event_ts_s)
            who = nearest_person(a["xy_m"], a["ts_s"], self.state.xyz_m, self.state.fix_ts_s)
            self._apply_changes(self.composite_rules.on_detections(a, who, t), t, seq, out)

    def _apply_changes(self, changes, t: float, seq: int, out: Outcome) -> None:
        """Feed (definition, active, position) changes of a rule module to the lifecycle."""
        for definition, active, pos in changes:
            rec = self.book.set_condition(definition, active, t, seq, pos)
            if rec is not None:
                out.alarms.append(rec)

    def _wearable(self, seq: int, msg: Message, out: Outcome) -> None:
        t = self._now(msg.event_ts_s)
        changes, rejects = self.people_safety.on_wearable(msg.meta.get("events", []), t)
        for reason, _ in rejects:
            self._reject(f"wearable: {reason}")
        self.items["wearable_events"] += len(msg.meta.get("events", []))
        self._apply_changes(changes, t, seq, out)

    def _inputs(self, seq: int, msg: Message, out: Outcome) -> None:
        """Named numeric inputs (e.g. wind speed) for the composite rules: arrays input_index, value, ts_s."""
        a = msg.arrays
        try:
            idx, val, ts = a["input_index"].astype(np.int64), a["value"].astype(np.float64), a["ts_s"]
        except KeyError as e:
            self._reject(f"engine: input values without array {e.args[0]}")
            return
        t = self._now(msg.event_ts_s)
        self._apply_changes(self.composite_rules.on_values("input", idx, val, ts, t), t, seq, out)

    def _rejected(self, seq: int, msg: Message, out: Outcome) -> None:
        for r in msg.meta.get("rejects", []):
            self._reject(f"{msg.source}: {r.get('reason', '?')}")

    def _session(self, seq: int, msg: Message, out: Outcome) -> None:
        """A login, a failed login or a logout, as the engine's gate decided it (ingest/engine/gate.py)."""
        m = msg.meta
        event = str(m.get("event"))
        if event not in ("login", "login_failed", "logout"):
            raise ValueError(f"unknown session event {event[:32]!r}")
        if self.journal is not None:
            detail = {k: m[k] for k in ("console", "address", "session", "reason", "method") if k in m}
            self.journal.append(input_seq=seq, engine_ts_s=self._now(msg.event_ts_s), event=event,
                                alarm_id="access", state="", actor=str(m.get("user", ""))[:64],
                                role=str(m.get("role", ""))[:32], detail=detail)

    def _command_refused(self, seq: int, msg: Message, out: Outcome) -> None:
        """A command the gate refused before it reached the alarm book (no valid token for the person claimed)."""
        m = msg.meta
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=self._now(msg.event_ts_s), event="refused",
                                alarm_id=str(m.get("alarm", ""))[:200], state="unknown",
                                actor=str(m.get("user", ""))[:64], role="",
                                detail={"action": str(m.get("op", ""))[:64], "reason": str(m.get("reason", ""))})
        if m.get("channel") == "permits":  # the permit office waits for its answer on MQTT
            out.reply = {"id": m.get("id"), "ok": False, "reason": str(m.get("reason", ""))}

    def _retention(self, seq: int, msg: Message, out: Outcome) -> None:
        """Recordings the engine process removed by the retention setting (ingest/engine/retention.py), and
        those it could not: one journal row each, from the recorded input (a replay removes nothing)."""
        m = msg.meta
        keys = ("file", "run", "bytes", "inputs", "first_ts_s", "last_ts_s", "reason")
        for event, entries, extra in (("recording_removed", m.get("removed", []), ()),
                                      ("recording_removal_failed", m.get("failed", []), ("error",))):
            for r in entries:
                if event == "recording_removed":
                    self.recordings_removed += 1
                if self.journal is not None:
                    self.journal.append(input_seq=seq, engine_ts_s=self._now(msg.event_ts_s), event=event,
                                        alarm_id="engine.retention", state="",
                                        detail={**{k: r.get(k) for k in keys + extra},
                                                "root": m.get("root"), "retention_days": m.get("retention_days"),
                                                "max_total_gb": m.get("max_total_gb")})

    def _command(self, seq: int, msg: Message, out: Outcome) -> None:
        req = msg.meta
        rid = req.get("id")
        op = req.get("op")
        user = self.users.get(str(req.get("user")))
        t = self._now(msg.event_ts_s)
        if user is None:
            reason = f"unknown user {req.get('user')!r}"
            if self.journal is not None:
                self.journal.append(input_seq=seq, engine_ts_s=t, event="refused", alarm_id=str(req.get("alarm", "")),
                                    state="unknown", actor=str(req.get("user"))[:64], role="",
                                    detail={"action": str(op)[:64], "reason": reason})
            out.reply = {"id": rid, "ok": False, "reason": reason}
            return
        try:
            out.reply = {"id": rid, "ok": True}
            self._reply_extra = {}
            self.permits.records = []
            rec = self._person_action(op, req, user.id, user.role, t, seq)
            if rec is not None:
                out.alarms.append(rec)
            out.reply.update(self._reply_extra)
            out.alarms += self.permits.records
        except Refused as e:
            out.reply = {"id": rid, "ok": False, "reason": str(e)}
            out.alarms += self.permits.records  # alarms raised on the way to a refusal (conflict, certificate)
        except Exception as e:  # noqa: BLE001 - a person's command must never stop the engine (nor its replay)
            log.exception("command %r failed", op)
            reason = f"command failed: {e.__class__.__name__}"
            if self.journal is not None:
                self.journal.append(input_seq=seq, engine_ts_s=t, event="refused", alarm_id=str(req.get("alarm", "")),
                                    state="unknown", actor=user.id, role=user.role,
                                    detail={"action": str(op)[:64], "reason": reason})
            out.reply = {"id": rid, "ok": False, "reason": reason}

    def _refused(self, seq: int, t: float, user: str, role: str, alarm_id: str, action: str, reason: str) -> Refused:
        """Journal a person's refused action (``refused``, with the action and the reason); the error to raise."""
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event="refused", alarm_id=alarm_id, state="",
                                actor=user, role=role, detail={"action": action, "reason": reason})
        return Refused(reason)

    def _muster_command(self, op: str, req: dict[str, Any], user: str, role: str, t: float, seq: int) -> None:
        """A supervisor declares or ends an emergency muster; both journaled."""
        if role not in MUSTER_ROLES:
            raise self._refused(seq, t, user, role, "muster", op,
                                f"role {role} may not {'declare' if op == 'muster_declare' else 'end'} a muster")
        try:
            if op == "muster_declare":
                rec = self.muster.declare(t, user, req.get("area", "all"), self.membership, self.state.fix_ts_s)
            else:
                rec = self.muster.end(t, user)
        except MusterRefused as e:
            raise self._refused(seq, t, user, role, "muster", op, str(e)) from None
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event=rec["event"], alarm_id="muster",
                                state="active" if op == "muster_declare" else "ended", actor=user, role=role,
                                detail=rec)
        self.muster_changed = True
        return None

    def _area_of(self, d: Any, position: tuple[float, float] | None) -> str | None:
        """The zone an alarm whose definition names no area is raised in: around its position, else its person's
        fix (within ``engine.fix_stale_s``), else its sensor's place (gas detector, machine); an ``area`` zone
        first (units, tank farm: what a flood groups by), else the first other zone, muster points aside; outside
        every zone, the nearest area zone within 15 m (a pump just outside its unit's fence belongs to the unit)."""
        xy = position if position is not None and all(np.isfinite(position)) else None
        if xy is None and d.person is not None:
            i = self._person_index.get(d.person)
            if i is not None and self.now_s - self.state.fix_ts_s[i] <= self.site.engine.fix_stale_s:
                xy = (float(self.state.xyz_m[i, 0]), float(self.state.xyz_m[i, 1]))
        if xy is None:
            xy = self._sensor_xy.get(d.source)
        if xy is None:
            return None
        inside = [z for z in self.site.zones if z.kind != "muster_point" and point_in_polygon(xy, list(z.polygon))]
        if inside:
            return next((z.id for z in inside if z.kind == "area"), inside[0].id)
        near = []
        for z in self.site.zones:
            if z.kind == "area":
                xs, ys = [p[0] for p in z.polygon], [p[1] for p in z.polygon]
                d = math.hypot(max(min(xs) - xy[0], 0.0, xy[0] - max(xs)), max(min(ys) - xy[1], 0.0, xy[1] - max(ys)))
                if d <= 15.0:
                    near.append((d, z.id))
        return min(near)[1] if near else None

    def occupancy(self) -> dict[str, int]:
        """People with a fix younger than ``engine.fix_stale_s``: on site, and inside hazardous, confined-space
        and restricted zones (a person in two zones of a kind counts once)."""
        if not np.isfinite(self.now_s):
            return {"on_site": 0, "hazardous": 0, "confined_space": 0, "restricted": 0}
        fresh = self.now_s - self.state.fix_ts_s <= self.site.engine.fix_stale_s
        inside = self.membership.inside
        out = {"on_site": int(np.count_nonzero(fresh))}
        for kind in ("hazardous", "confined_space", "restricted"):
            cols = [k for k, z in enumerate(self.site.zones) if z.kind == kind]
            out[kind] = int(np.count_nonzero(fresh & inside[:, cols].any(axis=1))) if cols else 0
        return out

    def horn(self, position: str, now_s: float | None = None):
        """What the horn of ``position`` does now (ingest/protocol/horn.py)."""
        now = self.now_s if now_s is None else now_s
        alarms = (
            (a.definition.id, PRIORITY_RANK[a.priority], a.activated_ts_s,
             a.state in ("active_unack", "latched_unack", "rtn_unack"))
            for a in self.book.alarms.values()
            if self.position_of(a.definition.area or a.area) == position
        )
        return horn_call(alarms, self.silences.get(position), now)

    def _silence_horn(self, req: dict[str, Any], user: str, role: str, t: float, seq: int) -> None:
        """An operator silences the horn of their position for HORN_SILENCE_S; journaled with what it covers."""
        position = str(req.get("position") or self.positions_areas[0][0])[:64]
        reason = None
        if role not in HORN_ROLES:
            reason = f"role {role} may not silence the horn"
        elif position not in self.floods:
            reason = f"unknown operator position {position!r}"
        if reason is not None:
            raise self._refused(seq, t, user, role, f"horn:{position}", HORN_OP, reason)
        call = self.horn(position, t)
        silence = Silence(position, t, t + HORN_SILENCE_S, call.rank, user)
        self.silences[position] = silence
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event="horn_silenced", alarm_id=f"horn:{position}",
                                state="silenced", actor=user, role=role,
                                detail={**silence.as_json(), "sounding": list(call.alarms)})
        self._reply_extra = {"silence": silence.as_json()}

    def _highlight(self, req: dict[str, Any], user: str, role: str, t: float, seq: int) -> None:
        """Mark a person on the walls for HIGHLIGHT_S (ingest/protocol/highlight.py); journaled."""
        person = str(req.get("person", ""))[:64]
        reason = None
        if role not in HIGHLIGHT_ROLES:
            reason = f"role {role} may not mark people on the wall"
        elif person not in self._person_index:
            reason = f"unknown person {person!r}"
        if reason is not None:
            raise self._refused(seq, t, user, role, f"person:{person}", HIGHLIGHT_OP, reason)
        live = {p: h for p, h in self.highlights.items() if t < h.until_ts_s and p != person}
        while len(live) >= MAX_HIGHLIGHTS:  # the oldest mark goes
            del live[min(live, key=lambda p: live[p].since_ts_s)]
        mark = live[person] = Highlight(person, t, t + HIGHLIGHT_S, user)
        self.highlights = live
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event="person_highlighted", alarm_id=f"person:{person}",
                                state="", actor=user, role=role, detail=mark.as_json())
        self._reply_extra = {"highlight": mark.as_json()}

    def muster_status(self) -> dict[str, Any] | None:
        """The live muster (headcounts, who is missing), or None when no emergency is declared."""
        if not self.muster.active:
            return None
        return self.muster.status(self.now_s, self.state.xyz_m, self.state.fix_ts_s, self.membership)

    def _locate(self, tag: str) -> tuple[float, float] | None:
        """Where a tag is now, if it had a fix within ``engine.fix_stale_s``."""
        i = self._tag_index.get(tag)
        if i is None:
            return None
        age = self._now(self.state.fix_ts_s[i]) - self.state.fix_ts_s[i]
        if not (age <= self.site.engine.fix_stale_s):
            return None
        return float(self.state.xyz_m[i, 0]), float(self.state.xyz_m[i, 1])

    def _permit_command(self, seq: int, msg: Message, out: Outcome) -> None:
        """A permit command from the plant's permit system over MQTT (``watchfloor ingest permits``): the same
        checks and journal as from the console, but only permit operations."""
        if msg.meta.get("op") not in PERMIT_OPS:
            out.reply = {"id": msg.meta.get("id"), "ok": False,
                         "reason": f"only permit operations come this way, not {msg.meta.get('op')!r}"}
            return
        self._command(seq, msg, out)

    def _person_action(self, op: Any, req: dict[str, Any], user: str, role: str, t: float, seq: int
                       ) -> dict[str, Any] | None:
        b = self.book
        aid = str(req.get("alarm", ""))
        text = str(req.get("comment", req.get("reason", "")))
        if op == "verify_detection":
            v = self.detection_fusion.verify(str(req.get("detection", "")), user, role, str(req.get("verdict", "")),
                                             t, reason=str(req.get("reason", "")), input_seq=seq)
            self._reply_extra = {"detection": v.record}
            rec = None
            for d, active, pos in v.changes:
                rec = self.book.set_condition(d, active, t, seq, pos) or rec
            return rec
        if op in ("muster_declare", "muster_end"):
            return self._muster_command(op, req, user, role, t, seq)
        if op == HORN_OP:
            self._silence_horn(req, user, role, t, seq)
            return None
        if op == HIGHLIGHT_OP:
            self._highlight(req, user, role, t, seq)
            return None
        if op in PERMIT_OPS:
            self._reply_extra = self.permits.command(op, req, user, role, t, seq)
            return None
        if op == "ack":
            return b.acknowledge(aid, user, role, text, t, seq)
        if op == "reset":
            return b.reset(aid, user, role, t, seq)
        if op == "shelve":
            duration = req.get("duration_s")
            try:
                if isinstance(duration, bool) or not isinstance(duration, (int, float)):
                    raise TypeError
                duration = float(duration)
            except (TypeError, OverflowError):
                duration = float("nan")
            return b.shelve(aid, user, role, str(req.get("reason", "")), duration, t, seq)
        if op == "unshelve":
            return b.unshelve(aid, user, role, t, seq)
        if op == "remove_from_service":
            return b.remove_from_service(aid, None, user, role, str(req.get("reason", "")), t, seq)
        if op == "return_to_service":
            return b.return_to_service(aid, user, role, t, seq)
        if op == "comment":
            b.comment(aid, user, role, text, t, seq)
            return None
        reason = f"unknown command {op!r}"
        if self.journal is not None:
            self.journal.append(input_seq=seq, engine_ts_s=t, event="refused", alarm_id=aid, state="unknown",
                                actor=user, role=role, detail={"action": str(op)[:64], "reason": reason})
        raise Refused(reason)

    # -- views for publishing -------------------------------------------------------------------------
    def person_alarm_rank(self) -> np.ndarray:
        """uint8 [P]: highest priority (0 none .. 4 critical) of any active alarm on each person."""
        rank = np.zeros(len(self.person_ids), dtype=np.uint8)
        index = {pid: i for i, pid in enumerate(self.person_ids)}
        for alarm in self.book.alarms.values():
            p = alarm.definition.person
            if p in index and alarm.annunciated and alarm.active:
                rank[index[p]] = max(rank[index[p]], PRIORITY_RANK[alarm.priority])
        return rank

    def gas_quality_now(self) -> np.ndarray:
        """Detector quality with staleness applied: no update within 3x the expected interval -> no data."""
        q = self.state.gas_quality.copy()
        if np.isfinite(self.now_s):
            limit = np.array([3.0 * d.expected_interval_s for d in self.site.gas_detectors])
            stale = ~(self.now_s - self.state.gas_ts_s <= limit)
            q[stale] = QUALITY_NO_DATA
        return q

    def gas_level(self) -> np.ndarray:
        """uint8 [G]: 0 normal, 1 level 1 (O2 enrichment), 2 level 2 (O2 deficiency, over range); with the
        alarms' deadband, so the map and the permits agree with the alarm list."""
        return self.gas.levels()

    def status(self) -> dict[str, Any]:
        return {
            "engine_ts_s": self.now_s if np.isfinite(self.now_s) else None,
            "inputs": dict(sorted(self.inputs.items())),
            "items": dict(sorted(self.items.items())),
            "rejected": dict(sorted(self.rejected.items())),
            "positions": self.positions,
            "alarms_active": sum(1 for _ in self.book.active()),
            "alarms_raised": self.book.raised_total,
            "notices": self.notices_total,
            "flood": {pid: m.flood for pid, m in self.floods.items()},
            "occupancy": self.occupancy(),
            # alarms raised in the last 10 minutes per operator position (EEMUA 191: about 1 is acceptable)
            "alarm_rate_10min": {pid: len(m.recent) for pid, m in self.floods.items()},
            # silences still running, per position (ingest/protocol/horn.py)
            "horn_silenced": {pid: s.as_json() for pid, s in self.silences.items() if self.now_s < s.until_ts_s},
            # people marked on the walls from a workstation (ingest/protocol/highlight.py)
            "highlights": [h.as_json() for h in self.highlights.values() if self.now_s < h.until_ts_s],
            "recording_seq": self.last_seq,
            "failed_inputs": self.failed_inputs,
            "recordings_removed": self.recordings_removed,
            "clock_skew_s": {k: round(v, 3) for k, v in sorted(self.clock_skew_s.items())},
            "retimed": dict(sorted(self.retimed.items())),
            "stalls": self.awake.stalls,  # gaps between clock ticks beyond awake.max_gap_s (alarms/awake.py)
            "stalled_s": round(self.awake.stalled_s, 3),
            # verdicts on camera detections per camera and class: confirmed, rejected (false positives), rate
            "detection_verdicts": self.detection_fusion.false_positive_rates(),
        }

