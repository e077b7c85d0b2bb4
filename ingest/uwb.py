"""The UWB adapter: MQTT ranges -> validated batches -> trilateration -> position batches to the engine.

Payload (DESIGN.md): topic ``<prefix>/uwb/ranges``, JSON, one object or a list of them::

    {"tag": "T0001", "ts": 1763798400.125, "ranges": {"A01": 12.345, "A02": 8.1}}

A whole item is rejected (with its reason) when it is not an object, its tag is unknown, or its ``ts`` is
missing, not finite, or further than ``uwb.max_clock_skew_s`` in the future / older than
:data:`MAX_AGE_S`. A single range is rejected (and the rest of the item kept) when its anchor is unknown or
its value is not a finite number in [0, 1.5 x max_range_m]. Every reject is counted and dead-lettered.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass

import numpy as np

from config import Site
from kernels.trilateration import trilaterate

from .adapter import MqttAdapter, adapter_main
from .geo import SiteProjection, omlox_locations
from .mqtt_source import RawMessage
from .rejects import RejectBin
from .tracker import TagTracker

log = logging.getLogger(__name__)

__all__ = ["RangeParser", "RangeBatch", "UwbAdapter", "MAX_AGE_S", "main"]

MAX_AGE_S = 3600.0


@dataclass
class RangeBatch:
    """Validated ranges of one slice: ``person_index`` int32 [n], ``ts_s`` float64 [n], ``ranges_m`` [n, K]."""

    person_index: np.ndarray
    ts_s: np.ndarray
    ranges_m: np.ndarray


class RangeParser:
    """Turns raw MQTT payloads into a :class:`RangeBatch`, rejecting what is wrong (pure: no I/O)."""

    def __init__(self, site: Site) -> None:
        self.tag_index = {p.tag: i for i, p in enumerate(site.people)}
        self.anchor_index = {a.id: k for k, a in enumerate(site.anchors)}
        self.k = len(site.anchors)
        self.max_range = 1.5 * site.uwb.max_range_m
        self.max_skew = site.uwb.max_clock_skew_s

    def parse(self, raws: list[RawMessage], rejects: RejectBin, now_s: float) -> RangeBatch:
        idx: list[int] = []
        tss: list[float] = []
        rows: list[np.ndarray] = []
        for raw in raws:
            try:
                doc = json.loads(raw.payload)
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                rejects.add(f"not JSON: {e.__class__.__name__}", raw.topic, raw.payload)
                continue
            items = doc if isinstance(doc, list) else [doc]
            for item in items:
                self._item(item, raw.topic, rejects, now_s, idx, tss, rows)
        ranges = np.vstack(rows) if rows else np.empty((0, self.k))
        return RangeBatch(np.array(idx, dtype=np.int32), np.array(tss, dtype=np.float64), ranges)

    def _item(self, item, topic, rejects, now_s, idx, tss, rows) -> None:
        def bad(reason: str) -> None:
            rejects.add(reason, topic, json.dumps(item, default=str)[:512])

        if not isinstance(item, dict):
            return bad("item is not an object")
        for key in ("tag", "ts", "ranges"):
            if key not in item:
                return bad(f"missing field {key!r}")
        tag, ts, ranges = item["tag"], item["ts"], item["ranges"]
        if not isinstance(tag, str) or tag not in self.tag_index:
            return bad("unknown tag")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or not math.isfinite(ts):
            return bad("ts is not a finite number")
        if ts > now_s + self.max_skew:
            return bad("ts in the future")
        if ts < now_s - MAX_AGE_S:
            return bad("ts too old")
        if not isinstance(ranges, dict) or not ranges:
            return bad("ranges is not a non-empty object")
        row = np.full(self.k, np.nan)
        for anchor, r in ranges.items():
            k = self.anchor_index.get(anchor)
            if k is None:
                rejects.add("unknown anchor", topic, f"{tag} {anchor}={r}")
                continue
            if not isinstance(r, (int, float)) or isinstance(r, bool) or not math.isfinite(r):
                rejects.add("range is not a finite number", topic, f"{tag} {anchor}={r}")
                continue
            if r < 0:
                rejects.add("negative range", topic, f"{tag} {anchor}={r}")
                continue
            if r > self.max_range:
                rejects.add("range beyond the anchors' reach", topic, f"{tag} {anchor}={r}")
                continue
            row[k] = r
        idx.append(self.tag_index[tag])
        tss.append(float(ts))
        rows.append(row)


WEARABLE_EVENTS = ("sos", "fall", "battery_low")


def parse_wearable(raws: list[RawMessage], tag_index: dict[str, int], rejects: RejectBin, now_s: float,
                   max_skew_s: float) -> list[dict]:
    """Wearable events ``{"tag", "ts", "event"}`` (one or a list per message); bad ones rejected with a reason."""
    out = []
    for raw in raws:
        try:
            doc = json.loads(raw.payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            rejects.add("not JSON", raw.topic, raw.payload)
            continue
        for item in doc if isinstance(doc, list) else [doc]:
            reason = None
            if not isinstance(item, dict):
                reason = "item is not an object"
            elif item.get("tag") not in tag_index:
                reason = "unknown tag"
            elif item.get("event") not in WEARABLE_EVENTS:
                reason = f"unknown wearable event {item.get('event')!r}"
            elif (not isinstance(item.get("ts"), (int, float)) or isinstance(item.get("ts"), bool)
                  or not math.isfinite(item["ts"])):
                reason = "ts is not a finite number"
            elif item["ts"] > now_s + max_skew_s:
                reason = "ts in the future"
            if reason:
                rejects.add(reason, raw.topic, json.dumps(item, default=str)[:512])
                continue
            out.append({"tag": item["tag"], "ts": float(item["ts"]), "event": item["event"]})
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

    def batches(self, raws: list[RawMessage], now_s: float):
        wearable = [r for r in raws if r.topic.endswith("/wearable/events")]
        out = []
        if wearable:
            events = parse_wearable(wearable, self.parser.tag_index, self.rejects, now_s,
                                    self.site.uwb.max_clock_skew_s)
            if events:
                out.append(("wearable.events", "wearable_events", max(e["ts"] for e in events), {},
                            {"events": events}))
        batch = self.parser.parse([r for r in raws if not r.topic.endswith("/wearable/events")], self.rejects, now_s)
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
