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
    assert dict(rb.counts) == {
        "not JSON: JSONDecodeError": 1, "unknown tag": 1, "missing field 'tag'": 1, "ts is not a finite number": 1,
        "ts in the future": 1, "ts too old": 1, "ranges is not a non-empty object": 1, "item is not an object": 1,
        "negative range": 1, "range is not a finite number": 1, "unknown anchor": 1,
        "range beyond the anchors' reach": 1,
    }
    # the one good range of T0004 is kept
    assert b.person_index.tolist() == [3] and b.ranges_m[0, 3] == 7.25
    assert all(len(r["payload"]) <= 512 for chunk in rb.take() for r in chunk)


def test_wearable_events_are_parsed_and_bad_ones_rejected(demo_site):
    from ingest.uwb import parse_wearable

    rb = RejectBin()
    tags = {p.tag: i for i, p in enumerate(demo_site.people)}
    raws = [RawMessage("p/wearable/events", json.dumps(d).encode(), NOW) for d in (
        {"tag": "T0077", "ts": NOW - 1, "event": "fall"},
        [{"tag": "T0033", "ts": NOW, "event": "sos"}, {"tag": "T0033", "ts": NOW, "event": "dance"}],
        {"tag": "T9999", "ts": NOW, "event": "sos"},
        {"tag": "T0001", "ts": NOW + 600, "event": "battery_low"},
    )] + [RawMessage("p/wearable/events", b"][", NOW)]
    events = parse_wearable(raws, tags, rb, NOW, 5.0)
    assert events == [{"tag": "T0077", "ts": NOW - 1, "event": "fall"}, {"tag": "T0033", "ts": NOW, "event": "sos"}]
    assert dict(rb.counts) == {"unknown wearable event 'dance'": 1, "unknown tag": 1, "ts in the future": 1,
                               "not JSON": 1}
