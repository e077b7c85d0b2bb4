"""The control room's horn: which alarms sound it, and what a silence covers. Shared by the engine (which
journals a silence and publishes it) and every page of the position (which sound it).

A HIGH or CRITICAL alarm sounds from the moment it is raised until someone acknowledges it (returned to normal
but unacknowledged still sounds: nobody has seen it yet). An operator may silence the horn of their position
for :data:`HORN_SILENCE_S` seconds (journaled); the alarms stay unacknowledged and blinking. During a silence
an alarm raised after it began sounds again if its priority is at least the highest one that was sounding when
the horn was silenced (a new critical alarm is never hidden behind an old silence); when the silence ends,
every alarm still unacknowledged sounds again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .names import HORN_OP, HORN_ROLES  # the command and who may send it, with the other ops and roles

__all__ = [
    "HORN_OP",
    "HORN_RANK",
    "HORN_ROLES",
    "HORN_SILENCE_S",
    "HornCall",
    "Silence",
    "horn_call",
]

#: how long a silence lasts, seconds
HORN_SILENCE_S = 60.0
#: the lowest priority rank that sounds (3 high, 4 critical)
HORN_RANK = 3


@dataclass(frozen=True)
class Silence:
    """A silence of one position's horn: from ``since_ts_s`` to ``until_ts_s`` (engine seconds), over alarms up
    to priority rank ``rank`` (the highest sounding when it began), by ``user``."""

    position: str
    since_ts_s: float
    until_ts_s: float
    rank: int
    user: str = ""

    def as_json(self) -> dict[str, Any]:
        return {"position": self.position, "since_ts_s": self.since_ts_s, "until_ts_s": self.until_ts_s,
                "rank": self.rank, "user": self.user}

    @classmethod
    def from_json(cls, d: Any) -> Silence:
        """Check and convert one published silence; ``ValueError`` saying what is wrong."""
        if not isinstance(d, Mapping):
            raise ValueError("a silence is not an object")  # noqa: TRY004 - one error kind for bad input
        try:
            out = cls(str(d["position"]), float(d["since_ts_s"]), float(d["until_ts_s"]), int(d["rank"]),
                      str(d.get("user", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad silence: {e}") from None
        if not out.since_ts_s <= out.until_ts_s:
            raise ValueError("a silence ends before it begins")
        return out

    def covers(self, rank: int, activated_ts_s: float, now_s: float) -> bool:
        """Whether this silence keeps an alarm of ``rank`` raised at ``activated_ts_s`` quiet at ``now_s``."""
        if not self.since_ts_s <= now_s < self.until_ts_s:
            return False
        return activated_ts_s <= self.since_ts_s or rank < self.rank


@dataclass(frozen=True)
class HornCall:
    """What the horn does now: ``rank`` of the highest alarm sounding (0: quiet), the ids sounding (sorted), and
    ``silenced``: alarms that would sound but a silence keeps quiet."""

    rank: int = 0
    alarms: tuple[str, ...] = ()
    silenced: int = 0


def horn_call(
    alarms: Iterable[tuple[str, int, float, bool]], silence: Silence | None, now_s: float
) -> HornCall:
    """The horn for ``alarms`` of one position, each (id, priority rank, activation time, unacknowledged and on
    the list), with that position's ``silence`` (or None) at engine time ``now_s``."""
    sounding: list[tuple[str, int]] = []
    quiet = 0
    for aid, rank, activated, unack in alarms:
        if not unack or rank < HORN_RANK:
            continue
        if silence is not None and silence.covers(rank, activated, now_s):
            quiet += 1
            continue
        sounding.append((aid, rank))
    return HornCall(max((r for _, r in sounding), default=0), tuple(sorted(a for a, _ in sounding)), quiet)
