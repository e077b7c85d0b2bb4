"""The UWB adapter: MQTT ranges -> validated batches -> trilateration -> position batches to the engine.

Payload (DESIGN.md): topic ``<prefix>/uwb/ranges``, JSON, one object or a list of them::

    {"tag": "T0001", "ts": 1763798400.125, "ranges": {"A01": 12.345, "A02": 8.1}}

A whole item is rejected (with its reason code, :data:`ingest.protocol.wire.REASONS`) when it is not an object, its tag
is unknown, its ``ts`` is missing, not finite or outside the ``clock.uwb`` window around its receive time, or it
repeats a (tag, ts) already taken (a QoS 1 redelivery). A single range is rejected (and the rest of the item
kept) when its anchor is unknown or its value is not a finite number in [0, 1.5 x max_range_m]. Every reject is
counted and dead-lettered.
"""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from config import Site
from config.schema import SourceClock
from kernels.trilateration import trilaterate

from .adapter import ClockWatch, MqttAdapter, adapter_main
from .geo import SiteProjection, omlox_locations
from .mqtt_source import RawMessage
from .protocol import wire
from .protocol.names import WEARABLE_EVENTS
from .rejects import RejectBin
from .tracker import TagTracker

__all__ = ["RangeParser", "RangeBatch", "UwbAdapter", "parse_wearable", "main"]

DEDUP_PER_TAG = 16  # recent fix times remembered per tag against MQTT QoS 1 redelivery


@dataclass
class RangeBatch:
    """Validated ranges of one slice: ``person_index`` int32 [n], ``ts_s`` float64 [n], ``ranges_m`` [n, K],
    ``received_ts_s`` float64 [n] (when the adapter took each in)."""

    person_index: np.ndarray
    ts_s: np.ndarray
    ranges_m: np.ndarray
    received_ts_s: np.ndarray | None = None


class RangeParser:
    """Turns raw MQTT payloads into a :class:`RangeBatch`, rejecting what is wrong (no I/O; it remembers recent
    fix times per tag to drop redeliveries)."""

    def __init__(self, site: Site) -> None:
        self.tag_index = {p.tag: i for i, p in enumerate(site.people)}
        self.anchor_index = {a.id: k for k, a in enumerate(site.anchors)}
        self.k = len(site.anchors)
        self.max_range = 1.5 * site.uwb.max_range_m
        self.watch = ClockWatch(site.clock.uwb)
        self.seen: dict[str, deque[float]] = {}
        self.rows: list[tuple[int, float, np.ndarray, float]] = []

    def parse(self, raws: list[RawMessage], rejects: RejectBin, now_s: float | None = None) -> RangeBatch:
        """All of ``raws`` at once (each message on its own: a refused message never stops the others)."""
        for raw in raws:
            try:
                self.take(raw, wire.loads(raw.payload, wire.MAX_PAYLOAD_BYTES["uwb"]), rejects)
            except wire.PayloadError as e:
                rejects.add(e.code, raw.topic, raw.payload, e.detail)
        return self.batch()

    def take(self, raw: RawMessage, doc: object, rejects: RejectBin) -> None:
        """One message's items (one object or a list) into the slice; a bad item is rejected, the rest kept."""
        items = doc if isinstance(doc, list) else [doc]
        rows = []
        for item in items:
            try:
                rows.append(self._item(item, raw, rejects))
            except wire.PayloadError as e:
                rejects.add(e.code, raw.topic, item, e.detail)
        for tag, row in rows:  # remembered only once the whole message is through
            self.seen.setdefault(tag, deque(maxlen=DEDUP_PER_TAG)).append(row[1])
            self.rows.append(row)

    def batch(self) -> RangeBatch:
        """The slice's rows as arrays; the buffer is emptied."""
        rows, self.rows = self.rows, []
        if not rows:
            return RangeBatch(np.empty(0, np.int32), np.empty(0), np.empty((0, self.k)), np.empty(0))
        idx, ts, ranges, rx = zip(*rows)
        return RangeBatch(np.array(idx, np.int32), np.array(ts, np.float64), np.vstack(ranges),
                          np.array(rx, np.float64))

    def _item(self, item: object, raw: RawMessage, rejects: RejectBin) -> tuple[str, tuple]:
        if not isinstance(item, dict):
            raise wire.PayloadError("bad_field", "item is not an object")
        tag = wire.text(item, "tag")
        if tag not in self.tag_index:
            raise wire.PayloadError("unknown_id", f"unknown tag {tag[:32]!r}")
        ts = wire.finite_number(item, "ts")
        self.watch.check(ts, raw.received_ts_s)
        if ts in self.seen.get(tag, ()):
            raise wire.PayloadError("duplicate", f"{tag} at {ts!r} already taken")
        ranges = item.get("ranges")
        if not isinstance(ranges, dict) or not ranges:
            raise wire.PayloadError("bad_field", "ranges is not a non-empty object")
        row = np.full(self.k, np.nan)
        for anchor, r in ranges.items():
            k = self.anchor_index.get(anchor)
            where = f"{tag} {anchor[:32]}"
            if k is None:
                rejects.add("unknown_id", raw.topic, f"{where}={r}", f"unknown anchor {anchor[:32]!r}")
            elif isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r):
                rejects.add("bad_number", raw.topic, f"{where}={r}", "range is not a finite number")
            elif r < 0:
                rejects.add("out_of_range", raw.topic, f"{where}={r}", "negative range")
            elif r > self.max_range:
                rejects.add("out_of_range", raw.topic, f"{where}={r}", "range beyond the anchors' reach")
            else:
                row[k] = r
        return tag, (self.tag_index[tag], ts, row, raw.received_ts_s)


def parse_wearable(raw: RawMessage, doc: object, tag_index: dict[str, int], rejects: RejectBin,
                   clock: SourceClock) -> list[dict]:
    """Wearable events ``{"tag", "ts", "event"}`` of one message (one or a list); bad ones rejected with a reason.

    An event older than the window is still passed on, with ``late_s`` (how late it arrived): a worker out of
    coverage may still be in danger. One stamped ahead of the window is applied at its receive time, with
    ``clock_ahead_s``. The engine drops redeliveries of an event it already raised."""
    out = []
    for item in doc if isinstance(doc, list) else [doc]:
        try:
            if not isinstance(item, dict):
                raise wire.PayloadError("bad_field", "item is not an object")
            tag = wire.text(item, "tag")
            if tag not in tag_index:
                raise wire.PayloadError("unknown_id", f"unknown tag {tag[:32]!r}")
            event = wire.text(item, "event", 32)
            if event not in WEARABLE_EVENTS:
                raise wire.PayloadError("unknown_id", f"unknown wearable event {event!r}")
            ts = wire.finite_number(item, "ts")
        except wire.PayloadError as e:
            rejects.add(e.code, raw.topic, item, e.detail)
            continue
        ev = {"tag": tag, "ts": ts, "event": event}
        lag = raw.received_ts_s - ts
        if lag > clock.past_s:
            ev["late_s"] = round(lag, 3)
        elif -lag > clock.future_s:
            ev["clock_ahead_s"] = round(-lag, 3)
            ev["ts"] = raw.received_ts_s
        out.append(ev)
    return out


class UwbAdapter(MqttAdapter):
    """Solves a slice of ranges at a time (2D, at the people tags' wearing height) and sends the fixes."""

    name = "uwb"
    topics = ["uwb/ranges", "wearable/events"]

    def __init__(self, site: Site, stop: threading.Event) -> None:
        super().__init__(site, stop, slice_s=site.uwb.slice_s)
        self.anchors = np.array([a.position_m for a in site.anchors], dtype=np.float64)
        self.parser = RangeParser(site)
        self.tracker = TagTracker(len(site.people), range_sigma_m=site.uwb.range_sigma_m, dims=2)
        self.tags = [p.tag for p in site.people]
        crs = site.uwb.location_crs
        self.projection = None if crs == "local" else SiteProjection(site, 4326 if crs == "EPSG:4326" else None)
        self.locations_topic = f"{self.source.prefix}/uwb/locations"
        self.events: list[dict] = []
        self.watch = self.parser.watch

    def solve(self, batch: RangeBatch) -> dict[str, np.ndarray]:
        """Position arrays for one batch of ranges: trilaterate (2D at the tag height), then track.

        ``xyz_m`` is the tracked (filtered) position; ``raw_xyz_m`` the fix itself. A fix the motion model
        cannot explain is ``gated`` (not valid) and counted.
        """
        fx = trilaterate(self.anchors, batch.ranges_m, sigma=self.site.uwb.range_sigma_m, dims=2,
                         tag_height=self.site.uwb.tag_height_m)
        tr = self.tracker.step(batch.person_index, batch.ts_s, fx.position, fx.valid, fx.rms, fx.gdop)
        xyz = np.column_stack([tr.xy_m, np.full(len(tr.xy_m), self.site.uwb.tag_height_m)])
        return {"person_index": batch.person_index, "xyz_m": xyz, "ts_s": batch.ts_s,
                "valid": fx.valid & ~tr.gated, "gdop": fx.gdop, "rms_m": fx.rms, "raw_xyz_m": fx.position,
                "vel_m_s": tr.vel_m_s, "stationary_s": tr.stationary_s, "gated": tr.gated}

    def take(self, raw: RawMessage, now_s: float) -> None:
        if raw.topic.endswith("/wearable/events"):
            doc = wire.loads(raw.payload, wire.MAX_PAYLOAD_BYTES["wearable"])
            self.events += parse_wearable(raw, doc, self.parser.tag_index, self.rejects, self.site.clock.wearable)
        else:
            self.parser.take(raw, self.load(raw), self.rejects)

    def batches(self, now_s: float):
        out = []
        events, self.events = self.events, []
        if events:
            out.append(("wearable.events", "wearable_events", max(e["ts"] for e in events), {}, {"events": events}))
        batch = self.parser.batch()
        if not len(batch.person_index):
            return out
        arrays = self.solve(batch)
        if self.site.uwb.publish_locations:
            self.publish_locations(arrays, now_s)
        return out + [("uwb.positions", "positions", float(batch.ts_s.max()), arrays)]

    def publish_locations(self, arrays: dict[str, np.ndarray], now_s: float) -> None:
        """The fixes of this slice as omlox Location objects, one JSON list per slice, for other RTLS tools."""
        ok = arrays["valid"]
        if not ok.any():
            return
        accuracy = self.site.uwb.range_sigma_m * arrays["gdop"][ok]
        locs = omlox_locations([self.tags[i] for i in arrays["person_index"][ok]], arrays["xyz_m"][ok],
                               arrays["ts_s"][ok], accuracy, source=self.site.id, projection=self.projection,
                               sent_ts_s=now_s)
        self.source.client.publish(self.locations_topic, json.dumps(locs, separators=(",", ":")), qos=0)


def main(argv: list[str] | None = None) -> int:
    """``watchfloor ingest uwb --site FILE``."""
    return adapter_main("uwb", argv, lambda site, stop: UwbAdapter(site, stop).run())
