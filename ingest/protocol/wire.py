"""The wire protocol's checks, in one place beside the bus framing: what a payload or a bus message may be.

Everything that crosses a process boundary is checked here **before** it is used or recorded:

- :func:`loads` is the only JSON reader for outside input: a size limit before parsing, no NaN / Infinity
  literals, integers of at most :data:`MAX_INT_DIGITS` digits, nesting at most :data:`MAX_DEPTH` deep. Python's
  own ``json.loads`` dies of a 10,000-deep list (RecursionError) and of a 5,000-digit integer (ValueError from
  ``int``); here both are a :class:`PayloadError` like any other bad payload.
- :data:`REASONS` is the small, stable set of reject reason codes. A reject carries one code and a free-text
  detail beside it, so the dead-letter table groups by code and still says exactly what was wrong.
- :func:`check_message` validates a decoded bus message against the schema of its ``kind`` (array names,
  dtypes, shapes, equal lengths, a maximum batch size; the meta of the meta-only kinds), so that
  ``Engine.apply`` only ever sees inputs it can apply.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

__all__ = [
    "PayloadError", "REASONS", "MAX_DEPTH", "MAX_INT_DIGITS", "MAX_ROWS", "MAX_PAYLOAD_BYTES", "loads",
    "check_depth", "check_time", "finite_number", "text", "check_message", "INGEST_KINDS", "ENGINE_KINDS",
    "SOURCE_OF_KIND", "excerpt",
]

#: reject reason codes (code -> what it means); the detail beside a code says exactly what was wrong
REASONS: dict[str, str] = {
    "too_large": "the payload is larger than its kind allows",
    "not_json": "the payload is not UTF-8 JSON",
    "too_deep": "JSON nested deeper than allowed",
    "bad_number": "a number that is too large, not finite, or a NaN / Infinity literal",
    "bad_field": "a field is missing or has the wrong type or shape",
    "out_of_range": "a value outside what the field allows",
    "unknown_id": "an id (tag, anchor, detector, point, camera, class, user, op) the site does not know",
    "bad_time": "a timestamp outside the source's window around ingest time",
    "duplicate": "a redelivery of an item already taken (MQTT QoS 1)",
    "bad_frame": "a bus message that does not follow the framing or its kind's schema",
    "not_allowed": "a message kind this sender may not send",
    "superseded": "dropped on purpose: a newer item of the same source came in the same slice",
    "internal_error": "the adapter or engine failed on this input (a bug); the input is kept here",
}

MAX_DEPTH = 8  # the deepest payload we define (camera detections: object > list > object > list) is 4
MAX_INT_DIGITS = 19  # fits int64; a timestamp in ms (13 digits) or ns (19) still parses
MAX_ROWS = 100_000  # items in one bus batch
MAX_PAYLOAD_BYTES = {  # per MQTT payload, checked before parsing
    "uwb": 1 << 20,
    "wearable": 64 << 10,
    "vibration": 8 << 20,  # 2^20 float32 samples in base64 is 5.6 MB
    "camera": 256 << 10,
    "permits": 16 << 10,  # the command travels on in a bus header (64 KiB)
    "command": 64 << 10,
}
EXCERPT_CHARS = 256


class PayloadError(ValueError):
    """A payload or message that is refused: ``code`` (one of :data:`REASONS`) and ``detail`` (free text)."""

    def __init__(self, code: str, detail: str) -> None:
        assert code in REASONS, code
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def _parse_int(s: str) -> int:
    if len(s.lstrip("-")) > MAX_INT_DIGITS:
        raise PayloadError("bad_number", f"integer of {len(s.lstrip('-'))} digits")
    return int(s)


def _parse_constant(s: str) -> Any:
    raise PayloadError("bad_number", f"{s} is not a number JSON allows")


def loads(payload: bytes | str, max_bytes: int) -> Any:
    """Parse outside JSON with limits (size, depth, integer digits, no NaN literals); PayloadError otherwise."""
    if len(payload) > max_bytes:
        raise PayloadError("too_large", f"{len(payload)} bytes, at most {max_bytes}")
    try:
        doc = json.loads(payload, parse_int=_parse_int, parse_constant=_parse_constant)
    except PayloadError:
        raise
    except RecursionError:
        raise PayloadError("too_deep", f"nested deeper than {MAX_DEPTH}") from None
    except UnicodeDecodeError:
        raise PayloadError("not_json", "not UTF-8") from None
    except json.JSONDecodeError as e:
        raise PayloadError("not_json", f"{e.msg} at line {e.lineno} column {e.colno}") from None
    except ValueError as e:  # anything else the parser refuses
        raise PayloadError("not_json", str(e)[:120]) from None
    check_depth(doc)
    return doc


def check_depth(doc: Any, max_depth: int = MAX_DEPTH) -> None:
    """PayloadError("too_deep") when lists / objects nest deeper than ``max_depth`` (iterative: no recursion)."""
    stack = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise PayloadError("too_deep", f"nested deeper than {max_depth}")
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def finite_number(doc: dict, key: str, lo: float = -math.inf, hi: float = math.inf) -> float:
    """``doc[key]`` as a float: present, a JSON number (not a bool), finite, within [lo, hi]."""
    if key not in doc:
        raise PayloadError("bad_field", f"missing field {key!r}")
    v = doc[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise PayloadError("bad_field", f"{key} is not a number")
    f = float(v)
    if not math.isfinite(f):
        raise PayloadError("bad_number", f"{key} is not finite")
    if not lo <= f <= hi:
        raise PayloadError("out_of_range", f"{key} = {f:.6g} outside [{lo:g}, {hi:g}]")
    return f


def text(doc: dict, key: str, max_len: int = 128) -> str:
    """``doc[key]`` as a non-empty string of at most ``max_len`` characters."""
    if key not in doc:
        raise PayloadError("bad_field", f"missing field {key!r}")
    v = doc[key]
    if not isinstance(v, str) or not v:
        raise PayloadError("bad_field", f"{key} is not a non-empty string")
    if len(v) > max_len:
        raise PayloadError("out_of_range", f"{key} is {len(v)} characters, at most {max_len}")
    return v


def check_time(ts_s: float, received_ts_s: float, future_s: float, past_s: float) -> None:
    """PayloadError("bad_time") when ``ts_s`` lies outside [received - past_s, received + future_s]."""
    d = ts_s - received_ts_s
    if d > future_s:
        raise PayloadError("bad_time", f"ts {d:.1f} s ahead of ingest time (window +{future_s:g} s)")
    if d < -past_s:
        raise PayloadError("bad_time", f"ts {-d:.1f} s behind ingest time (window -{past_s:g} s)")


def excerpt(payload: bytes | str | Any, limit: int = EXCERPT_CHARS) -> str:
    """What of a refused payload is kept: printable text, escaped, at most ``limit`` characters (+ a marker)."""
    if isinstance(payload, bytes):
        s = payload[: limit * 4].decode("utf-8", "backslashreplace")
        total = len(payload)
    elif isinstance(payload, str):
        s, total = payload, len(payload)
    else:
        try:
            s = json.dumps(payload, default=str, ensure_ascii=False)
        except (ValueError, TypeError, RecursionError):
            s = repr(type(payload))
        total = len(s)
    s = s.encode("unicode_escape", "backslashreplace").decode("ascii") if not s.isprintable() else s
    if len(s) > limit:
        return f"{s[:limit]}...[{total} in all]"
    return s


# -- bus messages --------------------------------------------------------------------------------------
_INT, _FLOAT, _BOOL, _U8 = "iu", "f", "b", "u"

# kind -> (required arrays, optional arrays); an array is (dtype kinds, trailing shape after the row axis)
ARRAY_KINDS: dict[str, tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, tuple[str, tuple[int, ...]]]]] = {
    "positions": (
        {"person_index": (_INT, ()), "xyz_m": (_FLOAT, (3,)), "ts_s": (_FLOAT, ()), "valid": ("bu", ()),
         "gdop": (_FLOAT, ()), "rms_m": (_FLOAT, ())},
        {"raw_xyz_m": (_FLOAT, (3,)), "vel_m_s": (_FLOAT, (2,)), "stationary_s": (_FLOAT, ()),
         "gated": ("bu", ())},
    ),
    "gas_values": (
        {"detector_index": (_INT, ()), "value": (_FLOAT, ()), "quality": (_U8, ()), "ts_s": (_FLOAT, ())},
        {},
    ),
    "vibration_features": (
        {"point_index": (_INT, ()), "ts_s": (_FLOAT, ()), "rms_mm_s": (_FLOAT, ())},
        {k: (_FLOAT, ()) for k in ("peak_m_s2", "crest", "kurtosis", "dominant_hz", "dominant_mm_s")},
    ),
    "camera_detections": (
        {"camera_index": (_INT, ()), "class_id": (_INT, ()), "confidence": (_FLOAT, ()), "xy_m": (_FLOAT, (2,)),
         "ts_s": (_FLOAT, ())},
        {"box_px": (_FLOAT, (4,))},
    ),
    "input_values": ({"input_index": (_INT, ()), "value": (_FLOAT, ()), "ts_s": (_FLOAT, ())}, {}),
}
META_KINDS = ("wearable_events", "permit_command", "rejected")
#: what an ingest process may send to the engine
INGEST_KINDS = frozenset(ARRAY_KINDS) | frozenset(META_KINDS)
#: what only the engine itself makes (clock, console commands, logins, notifier results, recordings removed by
#: retention): refused from the ingest socket
ENGINE_KINDS = frozenset({"tick", "command", "notification_result", "session", "command_refused", "retention"})
MAX_META_ITEMS = 10_000
#: the adapter each kind comes from (the header's ``source``; until the bus is keyed this is what the engine can
#: check): a positions batch from the permits adapter is refused. Kinds not listed (``input_values`` from a plant
#: system, ``rejected`` from any adapter) come from any source.
SOURCE_OF_KIND: dict[str, frozenset[str]] = {
    "positions": frozenset({"uwb"}),
    "wearable_events": frozenset({"uwb"}),
    "gas_values": frozenset({"gas"}),
    "vibration_features": frozenset({"vibration"}),
    "camera_detections": frozenset({"camera"}),
    "permit_command": frozenset({"permits"}),
}


def check_message(msg: Any) -> None:
    """Raise PayloadError when a bus message from ingest does not follow its kind's schema."""
    kind = msg.kind
    if kind in ENGINE_KINDS:
        raise PayloadError("not_allowed", f"kind {kind!r} may only come from the engine itself")
    sources = SOURCE_OF_KIND.get(kind)
    if sources is not None and msg.source not in sources:
        raise PayloadError("not_allowed", f"{kind} comes only from the {'/'.join(sorted(sources))} adapter, not "
                                          f"from {str(msg.source)[:40]!r}")
    if kind in ARRAY_KINDS:
        _check_arrays(kind, msg.arrays)
    elif kind in META_KINDS:
        if msg.arrays:
            raise PayloadError("bad_frame", f"{kind} carries no arrays")
        _check_meta(kind, msg.meta)
    else:
        raise PayloadError("bad_frame", f"unknown message kind {kind!r}")
    skew = msg.meta.get("skew_s")
    if skew is not None and (isinstance(skew, bool) or not isinstance(skew, (int, float))
                             or not math.isfinite(skew)):
        raise PayloadError("bad_frame", "meta.skew_s is not a finite number")


def _check_arrays(kind: str, arrays: dict[str, np.ndarray]) -> None:
    required, optional = ARRAY_KINDS[kind]
    missing = [k for k in required if k not in arrays]
    if missing:
        raise PayloadError("bad_frame", f"{kind} without array(s) {', '.join(missing)}")
    n = None
    for name, a in arrays.items():
        spec = required.get(name) or optional.get(name)
        if spec is None:
            raise PayloadError("bad_frame", f"{kind}: unexpected array {name!r}")
        kinds, tail = spec
        if a.dtype.kind not in kinds:
            raise PayloadError("bad_frame", f"{kind}: array {name} has dtype {a.dtype.str}")
        if a.ndim != 1 + len(tail) or tuple(a.shape[1:]) != tail:
            raise PayloadError("bad_frame", f"{kind}: array {name} has shape {a.shape}, want (n, {tail})")
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise PayloadError("bad_frame", f"{kind}: arrays of unequal length ({name} has {a.shape[0]}, not {n})")
    if n is not None and n > MAX_ROWS:
        raise PayloadError("too_large", f"{kind}: {n} rows, at most {MAX_ROWS}")


def _check_meta(kind: str, meta: dict[str, Any]) -> None:
    if kind == "wearable_events":
        events = meta.get("events")
        if not isinstance(events, list) or len(events) > MAX_META_ITEMS:
            raise PayloadError("bad_frame", "wearable_events: meta.events is not a list of at most 10,000")
        for e in events:
            if not isinstance(e, dict):
                raise PayloadError("bad_frame", "wearable_events: an event is not an object")
            text(e, "tag")
            text(e, "event", 32)
            finite_number(e, "ts")
            if "late_s" in e:
                finite_number(e, "late_s", 0.0)
    elif kind == "permit_command":
        for key in ("id", "op", "user"):
            text(meta, key)
    elif kind == "rejected":
        rejects = meta.get("rejects")
        if not isinstance(rejects, list) or len(rejects) > MAX_META_ITEMS:
            raise PayloadError("bad_frame", "rejected: meta.rejects is not a list of at most 10,000")
        for r in rejects:
            if not isinstance(r, dict) or not all(isinstance(r.get(k, ""), str) for k in
                                                  ("reason", "detail", "topic", "payload")):
                raise PayloadError("bad_frame", "rejected: a reject is not an object of strings")
            if r.get("reason") not in REASONS:
                raise PayloadError("bad_frame", f"rejected: reason {str(r.get('reason'))[:40]!r} is not a code")
