"""More of the console's words, one module per part of the product (``EN`` and ``ZH`` dicts each), merged into
:data:`console.web.i18n.TEXTS`. A key may be defined in one place only (checked on import)."""

from __future__ import annotations

from . import cameras, people, permits

__all__ = ["PARTS"]

#: the parts, each a module with ``EN`` and ``ZH``
PARTS = (permits, cameras, people)
