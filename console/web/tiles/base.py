"""What every wall tile shares: the context it is built in, the protocol it follows, small formatters."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import Site

from ...link import LinkSnapshot
from ..i18n import normalize_language
from ..theme import Theme

__all__ = ["Tile", "TileContext", "format_clock", "format_value", "site_timezone"]


def site_timezone(site: Site) -> tzinfo:
    """The site's time zone (``site.timezone``), UTC when the name is unknown on this machine."""
    try:
        return ZoneInfo(site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


@dataclass(frozen=True)
class TileContext:
    """What a tile is built with: the site, the page language, the theme, the site time zone, and the share of
    the screen the tile takes (width, height fractions; the page sets it per tile, the default is the floor
    map's on the default wall)."""

    site: Site
    lang: str = "en"
    theme: Theme = field(default_factory=Theme)
    tz: tzinfo | None = None
    share: tuple[float, float] = (9 / 12, 11 / 12)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lang", normalize_language(self.lang))
        if self.tz is None:
            object.__setattr__(self, "tz", site_timezone(self.site))

    def for_tile(self, share: tuple[float, float]) -> TileContext:
        """The same context for a tile taking ``share`` of the screen."""
        return replace(self, share=share)


@runtime_checkable
class Tile(Protocol):
    """A wall tile: owns its Bokeh data (``source``) and its Bokeh or Panel object (``root``).

    ``update`` is called by the session's periodic callback inside ``doc.hold()`` with the link's latest
    snapshot; it must skip work when nothing it shows has changed.
    """

    source: Any
    root: Any

    def update(self, snap: LinkSnapshot) -> None: ...


def format_clock(ts_s: float | None, tz: tzinfo, *, date: bool = False) -> str:
    """Seconds since the epoch -> ``'14:03:05'`` (or ``'2025-11-22 14:03:05'``) in ``tz``; ``'--:--:--'`` if unknown."""
    if ts_s is None or not math.isfinite(ts_s):
        return "----------- --:--:--" if date else "--:--:--"
    dt = datetime.fromtimestamp(ts_s, tz)
    return dt.strftime("%Y-%m-%d %H:%M:%S" if date else "%H:%M:%S")


def format_value(v: float) -> str:
    """A measured value for the wall: 3 significant figures without noise (``4.25``, ``20.9``, ``512``)."""
    if not math.isfinite(v):
        return "---"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"
