"""Rejected input: counted by reason, kept (dead-lettered) by sending it to the engine, which records it.

An adapter never drops bad input silently and never dies of it: it sends a ``rejected`` batch listing each
reject's reason, source topic and an excerpt of the payload. The engine records it like any other input
(the recording's ``dead_letters`` view) and counts it per reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Reject", "RejectBin", "MAX_EXCERPT"]

MAX_EXCERPT = 512  # characters of the offending payload kept with the reason
MAX_PER_MESSAGE = 200


@dataclass(frozen=True)
class Reject:
    reason: str
    topic: str
    payload: str


@dataclass
class RejectBin:
    """Collects rejects of one time slice; ``take()`` yields bus-sized chunks of them."""

    pending: list[Reject] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, reason: str, topic: str, payload: bytes | str) -> None:
        text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        self.pending.append(Reject(reason, topic, text[:MAX_EXCERPT]))
        self.counts[reason] += 1

    def take(self) -> list[list[dict[str, str]]]:
        chunks = [self.pending[i : i + MAX_PER_MESSAGE] for i in range(0, len(self.pending), MAX_PER_MESSAGE)]
        self.pending = []
        return [[{"reason": r.reason, "topic": r.topic, "payload": r.payload} for r in c] for c in chunks]
