"""Showing a person on the wall: someone at a workstation who found a person ("where is Zhang Hui?") asks the
engine to mark them on every wall of the site for :data:`HIGHLIGHT_S` seconds. The engine checks the role,
journals who asked for whom (``person_highlighted``) and lists the marks in its status (``highlights``); the walls
draw a ring and the name at the person's dot, and their trail, until the mark runs out (engine time)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .names import ROLE_ACTIONS

__all__ = ["HIGHLIGHT_OP", "HIGHLIGHT_ROLES", "HIGHLIGHT_S", "MAX_HIGHLIGHTS", "Highlight"]

#: the command: ``{"op": "person_highlight", "person": <person id>}``
HIGHLIGHT_OP = "person_highlight"
#: how long a person stays marked on the wall, seconds of engine time
HIGHLIGHT_S = 30.0
#: at most this many people marked at once (the oldest mark goes first)
MAX_HIGHLIGHTS = 4
#: who may mark a person: everyone who works at a workstation (not field workers' phone logins)
HIGHLIGHT_ROLES: frozenset[str] = frozenset(r for r in ROLE_ACTIONS if r != "field_worker")


@dataclass(frozen=True)
class Highlight:
    """``person`` (id) marked from ``since_ts_s`` to ``until_ts_s`` (engine seconds) at ``user``'s asking."""

    person: str
    since_ts_s: float
    until_ts_s: float
    user: str

    def as_json(self) -> dict[str, Any]:
        return {"person": self.person, "since_ts_s": self.since_ts_s, "until_ts_s": self.until_ts_s,
                "user": self.user}

    @classmethod
    def from_json(cls, d: Any) -> Highlight:
        """Check and convert one published mark; ``ValueError`` saying what is wrong."""
        if not isinstance(d, Mapping):
            raise ValueError("a highlight is not an object")  # noqa: TRY004 - one error kind for bad input
        try:
            return cls(str(d["person"]), float(d["since_ts_s"]), float(d["until_ts_s"]), str(d.get("user", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad highlight: {e}") from None
