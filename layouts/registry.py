"""The registry of tile kinds a layout may name. Console code registers its tiles; the page code only asks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["TileKind", "TileRegistry"]

#: a tile factory: (context, parsed options or None) -> an object with ``root`` and ``update(snapshot)``
TileFactory = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class TileKind:
    """One kind of tile: its name in layout files, how to build it, and its options model (pydantic)."""

    name: str
    factory: TileFactory
    options: type[BaseModel] | None = None
    description: str = ""


class TileRegistry:
    """Tile kinds by name. Adding a tile to the wall is one ``register`` call; the page code is not touched."""

    def __init__(self, kinds: list[TileKind] | None = None) -> None:
        self._kinds: dict[str, TileKind] = {}
        for k in kinds or []:
            self.register(k.name, k.factory, k.options, k.description)

    def register(
        self, name: str, factory: TileFactory, options: type[BaseModel] | None = None, description: str = ""
    ) -> None:
        """Add a kind; a name registered twice is a programming error (``ValueError``)."""
        if name in self._kinds:
            raise ValueError(f"tile kind {name!r} is already registered")
        self._kinds[name] = TileKind(name, factory, options, description)

    def kinds(self) -> tuple[str, ...]:
        """Registered kind names, sorted."""
        return tuple(sorted(self._kinds))

    def __contains__(self, name: object) -> bool:
        return name in self._kinds

    def get(self, name: str) -> TileKind:
        try:
            return self._kinds[name]
        except KeyError:
            raise KeyError(f"unknown tile kind {name!r} (known: {', '.join(self.kinds())})") from None

    def parse_options(self, name: str, raw: Mapping[str, Any]) -> BaseModel | None:
        """Validate a placement's ``options`` against the kind's model (raises pydantic ``ValidationError``)."""
        kind = self.get(name)
        if kind.options is None:
            if raw:
                raise ValueError(f"tile kind {name!r} takes no options")
            return None
        return kind.options.model_validate(dict(raw))

    def create(self, name: str, context: Any, raw_options: Mapping[str, Any] | None = None) -> Any:
        """Build one tile of kind ``name``."""
        return self.get(name).factory(context, self.parse_options(name, raw_options or {}))
