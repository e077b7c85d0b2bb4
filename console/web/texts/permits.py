"""The console's words for permits (English and Simplified Chinese)."""

from __future__ import annotations

EN: dict[str, str] = {}

ZH: dict[str, str] = {}
