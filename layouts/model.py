"""Wall layouts as data: which tile sits where on which screen, read from YAML and checked once.

A layout file::

    name: wall-default
    screens:
      - id: main
        columns: 12          # the screen is a grid of columns x rows equal cells
        rows: 12
        tiles:
          - {kind: status_bar, row: 0, col: 0, rows: 1, cols: 12}
          - {kind: floor_map,  row: 1, col: 0, rows: 11, cols: 9, options: {show_anchors: true}}
          - {kind: alarm_list, row: 1, col: 9, rows: 11, cols: 3}

Tiles that say ``stack: true`` and sit on exactly the same cells form a stack: the page shows one of them at a
time, the first (in file order) that has something to show (a tile with ``shown`` False steps aside). The
default wall stacks the emergency muster tile on the permit board: it takes the board's place during an
emergency only.

Every problem (unknown field or tile kind, a tile outside its grid, two tiles on the same cell that are not a
stack, bad tile options) is reported with the file, the path inside it and the reason, like a site file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config import ConfigError, ConfigIssue

from .registry import TileRegistry

__all__ = [
    "LAYOUTS_DIR",
    "LayoutError",
    "Screen",
    "TilePlacement",
    "WallLayout",
    "find_layout",
    "layout_names",
    "load_layout",
    "parse_layout",
]

LAYOUTS_DIR = Path(__file__).parent
_Id = str


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TilePlacement(_Strict):
    """One tile on a screen: its kind, its top-left cell (0-based) and its span in cells."""

    kind: str = Field(min_length=1)
    row: int = Field(ge=0)
    col: int = Field(ge=0)
    rows: int = Field(default=1, ge=1)
    cols: int = Field(default=1, ge=1)
    options: dict[str, Any] = {}
    stack: bool = False  # may share exactly its cells with other stacking tiles (see the module text)

    @property
    def cells(self) -> tuple[int, int, int, int]:
        """(row, col, rows, cols): the rectangle the tile covers."""
        return (self.row, self.col, self.rows, self.cols)


class Screen(_Strict):
    """One physical screen of the wall: a grid of ``columns`` x ``rows`` equal cells."""

    id: _Id = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    columns: int = Field(default=12, ge=1, le=96)
    rows: int = Field(default=12, ge=1, le=96)
    tiles: list[TilePlacement] = Field(min_length=1)


class WallLayout(_Strict):
    """A whole wall: one or more screens (each served as its own page)."""

    name: str = Field(min_length=1)
    description: str = ""
    screens: list[Screen] = Field(min_length=1)

    def screen(self, screen_id: str | None = None) -> Screen:
        """The screen with this id, or the first one; ``KeyError`` naming the known ids."""
        if screen_id is None:
            return self.screens[0]
        for s in self.screens:
            if s.id == screen_id:
                return s
        raise KeyError(
            f"layout {self.name!r} has no screen {screen_id!r} (screens: {[s.id for s in self.screens]})"
        )


class LayoutError(ConfigError):
    """A layout file that cannot be used; ``issues`` lists every problem (file, path inside it, reason)."""


def _path(loc: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def _check(layout: WallLayout, registry: TileRegistry | None) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen_ids: dict[str, int] = {}
    for si, screen in enumerate(layout.screens):
        where = f"screens[{si}]"
        if screen.id in seen_ids:
            issues.append(
                ConfigIssue(
                    f"{where}.id",
                    f"duplicate screen id {screen.id!r} (first at screens[{seen_ids[screen.id]}])",
                )
            )
        seen_ids.setdefault(screen.id, si)
        owner: dict[tuple[int, int], int] = {}
        for ti, tile in enumerate(screen.tiles):
            tw = f"{where}.tiles[{ti}]"
            if registry is not None:
                if tile.kind not in registry:
                    issues.append(
                        ConfigIssue(
                            f"{tw}.kind",
                            f"unknown tile kind {tile.kind!r} (known: {', '.join(registry.kinds())})",
                        )
                    )
                else:
                    try:
                        registry.parse_options(tile.kind, tile.options)
                    except ValidationError as e:
                        for err in e.errors():
                            msg = err["msg"].removeprefix("Value error, ")
                            if err["type"] == "extra_forbidden":
                                msg = "unknown option (a typo?)"
                            sub = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
                            issues.append(ConfigIssue(f"{tw}.options{sub}", msg))
                    except ValueError as e:
                        issues.append(ConfigIssue(f"{tw}.options", str(e)))
            if tile.row + tile.rows > screen.rows or tile.col + tile.cols > screen.columns:
                issues.append(
                    ConfigIssue(
                        tw,
                        f"{tile.kind} spans rows {tile.row}..{tile.row + tile.rows - 1} and columns "
                        f"{tile.col}..{tile.col + tile.cols - 1}, outside the {screen.rows} x {screen.columns} "
                        f"grid of screen {screen.id!r} (rows 0..{screen.rows - 1}, columns 0..{screen.columns - 1})",
                    )
                )
                continue
            clash = None
            for r in range(tile.row, tile.row + tile.rows):
                for c in range(tile.col, tile.col + tile.cols):
                    other = owner.get((r, c))
                    if other is not None and clash is None:
                        first = screen.tiles[other]
                        stacked = tile.stack and first.stack and tile.cells == first.cells
                        if not stacked:
                            clash = (other, r, c)
                    owner.setdefault((r, c), ti)
            if clash is not None:
                other, r, c = clash
                issues.append(
                    ConfigIssue(
                        tw,
                        f"{tile.kind} overlaps {where}.tiles[{other}] ({screen.tiles[other].kind}) at row {r}, "
                        f"column {c}",
                    )
                )
    return issues


def parse_layout(data: Any, file: str = "<memory>", registry: TileRegistry | None = None) -> WallLayout:
    """Validate already-parsed YAML; with a registry, tile kinds and their options are checked too."""
    if not isinstance(data, dict):
        raise LayoutError(file, [ConfigIssue("", "the file must hold a mapping (key: value) at the top")])
    try:
        layout = WallLayout.model_validate(data)
    except ValidationError as e:
        issues = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (a typo?)"
            issues.append(ConfigIssue(_path(err["loc"]), msg))
        raise LayoutError(file, issues) from None
    issues = _check(layout, registry)
    if issues:
        raise LayoutError(file, issues)
    return layout


def layout_names() -> tuple[str, ...]:
    """The layouts shipped in this folder, by name."""
    return tuple(sorted(p.stem for p in LAYOUTS_DIR.glob("*.yaml")))


def find_layout(name_or_path: str | Path) -> Path:
    """A shipped layout by name (``wall-default``) or a layout file by path."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.parent != Path("."):
        return p
    return LAYOUTS_DIR / f"{name_or_path}.yaml"


def load_layout(name_or_path: str | Path, registry: TileRegistry | None = None) -> WallLayout:
    """Read and check a layout file (see :func:`parse_layout`); :class:`LayoutError` says what is wrong."""
    p = find_layout(name_or_path)
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        hint = f" (shipped layouts: {', '.join(layout_names())})" if p.parent == LAYOUTS_DIR else ""
        raise LayoutError(file, [ConfigIssue("", f"cannot read: {e.strerror}{hint}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise LayoutError(file, [ConfigIssue(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from None
    return parse_layout(data, file, registry)
