"""Rejected input: counted by reason code, kept (dead-lettered) by sending it to the engine, which records it.

An adapter never drops bad input silently and never dies of it: it sends ``rejected`` batches listing each
reject's reason code (:data:`ingest.protocol.wire.REASONS`), the detail beside it, the source topic and an escaped,
truncated excerpt of the payload. The engine records them like any other input (the recording's
``dead_letters`` table) and counts them per source and code, so the adapter's counts and the engine's agree
exactly. A batch is cut to stay well under the bus header limit, whatever the payloads were.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from .protocol.wire import REASONS, excerpt

__all__ = ["Reject", "RejectBin", "MAX_EXCERPT", "MAX_BATCH_BYTES"]

MAX_EXCERPT = 256  # characters of the offending payload kept with the reason
MAX_DETAIL = 200
MAX_TOPIC = 160
MAX_PER_MESSAGE = 200
MAX_BATCH_BYTES = 32 * 1024  # JSON bytes of one batch's rejects: half the 64 KiB header limit


@dataclass(frozen=True)
class Reject:
    reason: str
    detail: str
    topic: str
    payload: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "detail": self.detail, "topic": self.topic, "payload": self.payload}


@dataclass
class RejectBin:
    """Collects rejects of one time slice; ``take()`` yields bus-sized chunks of them."""

    pending: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, topic: str, payload: object, detail: str = "") -> None:
        """Count and keep one reject. ``reason`` is a code of :data:`ingest.protocol.wire.REASONS`."""
        if reason not in REASONS:
            detail, reason = f"{reason}: {detail}" if detail else reason, "internal_error"
        self.pending.append(Reject(reason, excerpt(detail, MAX_DETAIL), excerpt(topic, MAX_TOPIC),
                                   excerpt(payload, MAX_EXCERPT)))
        self.counts[reason] += 1

    def take(self) -> list[list[dict[str, str]]]:
        """The pending rejects in chunks of at most :data:`MAX_PER_MESSAGE` and :data:`MAX_BATCH_BYTES`."""
        chunks: list[list[dict[str, str]]] = []
        cur: list[dict[str, str]] = []
        size = 0
        for r in self.pending:
            d = r.as_dict()
            n = len(json.dumps(d, separators=(",", ":")).encode())  # ASCII-escaped, as the bus encodes it
            if cur and (len(cur) >= MAX_PER_MESSAGE or size + n > MAX_BATCH_BYTES):
                chunks.append(cur)
                cur, size = [], 0
            cur.append(d)
            size += n + 1
        if cur:
            chunks.append(cur)
        self.pending = []
        return chunks
