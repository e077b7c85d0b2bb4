"""How much of a list fits in its tile: text wrapped the way the browser wraps it, in the wall's font metrics.

A tile that lists cards (alarms, permits) shows only the cards that fit whole and says "+N more" for the rest;
nothing is cut off at the bottom. The server decides, from the tile's share of the screen (the page sets it)
and the advance widths of the page's font (Liberation Sans, metric-compatible with Arial, as on the canvas).
Sizes are CSS px at scale 1 (a 3840 x 2160 screen); the page's CSS draws with the same numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .map.labels import text_width

__all__ = ["LINE", "tile_size", "wrapped_lines", "flex_lines"]

#: a line of text in the page's font, in font sizes (Liberation Sans: ascent + descent + line gap = 1.149)
LINE = 1.15
_SCREEN = (3840.0, 2160.0)
_GAP = 12.0
# a run that the browser keeps on one line: a word, a space, or one CJK character (CJK breaks anywhere)
_TOKENS = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]|\s+|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]+")


def tile_size(share: tuple[float, float]) -> tuple[float, float]:
    """Width and height in px (scale 1) of a tile taking ``share`` of the screen, inside its margins."""
    return share[0] * (_SCREEN[0] - _GAP) - _GAP, share[1] * (_SCREEN[1] - _GAP) - _GAP


def wrapped_lines(text: str, width_px: float, font_px: float, *, bold: bool = False) -> int:
    """Lines ``text`` takes when the browser wraps it at ``width_px`` (greedy, at spaces and between CJK
    characters; a word longer than a line breaks where it must)."""
    lines, used = 1, 0.0
    for tok in _TOKENS.findall(text):
        w = text_width(tok, font_px, bold=bold)
        if tok.isspace():
            used += w  # a space at the end of a line hangs outside it
            continue
        if used > 0 and used + w > width_px:
            lines += 1
            used = 0.0
        while w > width_px:  # overflow-wrap: a word wider than the line is broken
            lines += 1
            w -= width_px
        used += w
    return lines


def flex_lines(widths: Iterable[float], gap_px: float, width_px: float) -> int:
    """Lines a wrapping flex row of items of ``widths`` takes at ``width_px`` with ``gap_px`` between them."""
    lines, used = 1, None
    for w in widths:
        if used is not None and used + gap_px + w > width_px:
            lines += 1
            used = None
        used = w if used is None else used + gap_px + w
    return lines
