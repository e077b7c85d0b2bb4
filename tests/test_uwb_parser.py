"""UWB range payloads: what is kept, what is rejected, and why (no broker needed: the parser is pure)."""

from __future__ import annotations

import json

import numpy as np

from ingest.mqtt_source import RawMessage
from ingest.rejects import RejectBin
from ingest.uwb import RangeParser

NOW = 1_800_000_000.0


def parse(site, *payloads):
    rb = RejectBin()
    raws = [RawMessage("p/uwb/ranges", p if isinstance(p, bytes) else json.dumps(p).encode(), NOW) for p in payloads]
    return RangeParser(site).parse(raws, rb, NOW), rb


def test_single_object_and_list_are_both_accepted(demo_site):
    b, rb = parse(demo_site, {"tag": "T0001", "ts": NOW, "ranges": {"A01": 10.0, "A03": 20.5}},
                  [{"tag": "T0002", "ts": NOW - 1, "ranges": {"A02": 3.0}}, {"tag": "T0003", "ts": NOW,
                                                                               "ranges": {"A10": 1.0}}])
    assert b.person_index.tolist() == [0, 1, 2]
    assert b.ranges_m[0, 0] == 10.0 and b.ranges_m[0, 2] == 20.5 and np.isnan(b.ranges_m[0, 1])
    assert b.ranges_m.shape == (3, 10) and not rb.counts


def test_each_bad_item_is_rejected_with_its_reason_and_good_ones_kept(demo_site):
    b, rb = parse(
        demo_site,
        b"not json at all",
        {"tag": "T9999", "ts": NOW, "ranges": {"A01": 1.0}},
        {"ts": NOW, "ranges": {"A01": 1.0}},
        {"tag": "T0001", "ts": float("nan"), "ranges": {"A01": 1.0}},
        {"tag": "T0001", "ts": NOW + 3600, "ranges": {"A01": 1.0}},
        {"tag": "T0001", "ts": NOW - 7200, "ranges": {"A01": 1.0}},
        {"tag": "T0001", "ts": NOW, "ranges": {}},
        "a string item",
        {"tag": "T0004", "ts": NOW, "ranges": {"A01": -1.0, "A02": "x", "A99": 3.0, "A03": 1e6, "A04": 7.25}},
    )
    details = sorted((r.reason, r.detail) for r in rb.pending)
    assert details == sorted([
        ("not_json", "Expecting value at line 1 column 1"), ("unknown_id", "unknown tag 'T9999'"),
        ("bad_field", "missing field 'tag'"), ("bad_number", "NaN is not a number JSON allows"),
        ("bad_time", "ts 3600.0 s ahead of ingest time (window +5 s)"),
        ("bad_time", "ts 7200.0 s behind ingest time (window -60 s)"),
        ("bad_field", "ranges is not a non-empty object"), ("bad_field", "item is not an object"),
        ("out_of_range", "negative range"), ("bad_number", "range is not a finite number"),
        ("unknown_id", "unknown anchor 'A99'"), ("out_of_range", "range beyond the anchors' reach"),
    ])
    # the one good range of T0004 is kept
    assert b.person_index.tolist() == [3] and b.ranges_m[0, 3] == 7.25
    assert all(len(r["payload"]) <= 300 for chunk in rb.take() for r in chunk)


def test_a_redelivered_fix_is_dropped_as_a_duplicate(demo_site):
    rb = RejectBin()
    parser = RangeParser(demo_site)
    item = {"tag": "T0001", "ts": NOW, "ranges": {"A01": 10.0}}
    raws = [RawMessage("p/uwb/ranges", json.dumps(item).encode(), NOW)] * 2
    b = parser.parse(raws[:1], rb)
    b2 = parser.parse(raws[1:], rb)
    assert len(b.person_index) == 1 and len(b2.person_index) == 0
    assert [(r.reason, r.detail) for r in rb.pending] == [("duplicate", f"T0001 at {NOW!r} already taken")]


def test_wearable_events_are_parsed_and_bad_ones_rejected(demo_site):
    from ingest.uwb import parse_wearable

    rb = RejectBin()
    tags = {p.tag: i for i, p in enumerate(demo_site.people)}
    clock = demo_site.clock.wearable
    docs = (
        {"tag": "T0077", "ts": NOW - 1, "event": "fall"},
        [{"tag": "T0033", "ts": NOW, "event": "sos"}, {"tag": "T0033", "ts": NOW, "event": "dance"}],
        {"tag": "T9999", "ts": NOW, "event": "sos"},
        {"tag": "T0001", "ts": NOW + 600, "event": "battery_low"},
        {"tag": "T0002", "ts": NOW - 3600, "event": "sos"},
        {"tag": ["T0001"], "ts": NOW, "event": "sos"},
    )
    events = []
    for d in docs:
        events += parse_wearable(RawMessage("p/wearable/events", b"", NOW), d, tags, rb, clock)
    assert events == [
        {"tag": "T0077", "ts": NOW - 1, "event": "fall"}, {"tag": "T0033", "ts": NOW, "event": "sos"},
        # ahead of the window: applied at its receive time; late: passed on, marked with how late it is
        {"tag": "T0001", "ts": NOW, "event": "battery_low", "clock_ahead_s": 600.0},
        {"tag": "T0002", "ts": NOW - 3600, "event": "sos", "late_s": 3600.0}]
    assert sorted((r.reason, r.detail) for r in rb.pending) == [
        ("bad_field", "tag is not a non-empty string"), ("unknown_id", "unknown tag 'T9999'"),
        ("unknown_id", "unknown wearable event 'dance'")]
