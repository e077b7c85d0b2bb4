"""Wall layouts: the shipped ones load, bad files fail naming file, path and reason, pages build from data."""

from __future__ import annotations

import copy

import panel as pn
import pytest
import yaml

from console.web.tiles import WALL_TILES, AlarmList, FloorMap, StatusBar, TileContext
from layouts import (
    LAYOUTS_DIR,
    LayoutError,
    TileRegistry,
    build_page,
    find_layout,
    layout_names,
    load_layout,
    parse_layout,
)

GOOD = {
    "name": "test",
    "screens": [
        {
            "id": "main",
            "columns": 4,
            "rows": 3,
            "tiles": [
                {"kind": "status_bar", "row": 0, "col": 0, "rows": 1, "cols": 4},
                {"kind": "floor_map", "row": 1, "col": 0, "rows": 2, "cols": 3},
                {"kind": "alarm_list", "row": 1, "col": 3, "rows": 2, "cols": 1, "options": {"max_rows": 10}},
            ],
        }
    ],
}


def broken(edit) -> dict:
    data = copy.deepcopy(GOOD)
    edit(data)
    return data


def issues_of(data, file="wall-bad.yaml"):
    with pytest.raises(LayoutError) as e:
        parse_layout(data, file, WALL_TILES)
    return [(i.path, i.reason) for i in e.value.issues], str(e.value)


def test_shipped_default_layout_is_valid_and_puts_the_map_on_three_quarters():
    assert "wall-default" in layout_names()
    layout = load_layout("wall-default", WALL_TILES)
    screen = layout.screen()
    kinds = {t.kind: t for t in screen.tiles}
    assert set(kinds) == {"status_bar", "floor_map", "alarm_list", "permit_board", "muster", "kpi"}
    assert kinds["floor_map"].cols / screen.columns == 0.75
    assert kinds["status_bar"].row == 0 and kinds["status_bar"].cols == screen.columns
    # the right quarter is filled to the bottom: alarm list, permit board (or muster), key figures
    right = sorted((t.row, t.row + t.rows) for t in screen.tiles if t.col == 9 and t.kind != "muster")
    assert right[0][0] == kinds["status_bar"].rows and right[-1][1] == screen.rows
    assert all(a[1] == b[0] for a, b in zip(right, right[1:]))


def test_the_3x2_wall_shows_four_map_quadrants_at_one_scale_alarms_on_3_permits_and_figures_on_6():
    from console.web.tiles import FloorMapOptions
    from console.web.tiles.map.label_plan import map_view

    layout = load_layout("wall-3x2", WALL_TILES)
    assert [s.id for s in layout.screens] == ["1", "2", "3", "4", "5", "6"]
    views = {}
    for sid in ("1", "2", "4", "5"):
        (tile,) = layout.screen(sid).tiles
        assert tile.kind == "floor_map" and (tile.rows, tile.cols) == (12, 12)
        views[sid] = FloorMapOptions(**tile.options).view
    # NW, NE above SW, SE: together the whole site, each a quarter
    assert views == {"1": (0, 0.5, 0.5, 1), "2": (0.5, 0.5, 1, 1), "4": (0, 0, 0.5, 0.5), "5": (0.5, 0, 1, 0.5)}
    from config import DEMO_SITE, load_site

    site = load_site(DEMO_SITE)
    scales = {round(map_view(site, (1.0, 1.0), v).px_per_m, 6) for v in views.values()}
    assert len(scales) == 1  # one common scale: the plant reads as one picture across the bezels
    assert {t.kind for t in layout.screen("3").tiles} == {"status_bar", "alarm_list"}
    assert {t.kind for t in layout.screen("6").tiles} == {"status_bar", "muster", "permit_board", "kpi"}


def test_every_shipped_layout_file_loads():
    for path in LAYOUTS_DIR.glob("*.yaml"):
        load_layout(path, WALL_TILES)


def test_unknown_tile_kind_names_file_path_and_known_kinds():
    issues, text = issues_of(broken(lambda d: d["screens"][0]["tiles"][1].update(kind="floormap")))
    assert issues[0][0] == "screens[0].tiles[1].kind"
    assert "floormap" in issues[0][1] and "floor_map" in issues[0][1]
    assert text.startswith("wall-bad.yaml: screens[0].tiles[1].kind:")


def test_overlapping_tiles_are_refused_with_both_named():
    issues, _ = issues_of(broken(lambda d: d["screens"][0]["tiles"][2].update(col=2)))
    assert issues == [
        ("screens[0].tiles[2]", "alarm_list overlaps screens[0].tiles[1] (floor_map) at row 1, column 2")
    ]


def test_tile_outside_the_grid_is_refused():
    issues, _ = issues_of(broken(lambda d: d["screens"][0]["tiles"][2].update(cols=2)))
    path, reason = issues[0]
    assert path == "screens[0].tiles[2]"
    assert "columns 3..4" in reason and "outside the 3 x 4 grid" in reason


def test_bad_tile_options_and_unknown_fields_are_reported_with_their_path():
    issues, _ = issues_of(
        broken(lambda d: d["screens"][0]["tiles"][2].update(options={"max_rows": 0, "colour": 1}))
    )
    paths = dict(issues)
    assert "screens[0].tiles[2].options.max_rows" in paths
    assert paths["screens[0].tiles[2].options.colour"] == "unknown option (a typo?)"
    issues, _ = issues_of(broken(lambda d: d["screens"][0].update(colums=4)))
    assert ("screens[0].colums", "unknown field (a typo?)") in issues


def test_duplicate_screen_ids_and_missing_tiles_are_refused():
    issues, _ = issues_of(broken(lambda d: d["screens"].append(copy.deepcopy(d["screens"][0]))))
    assert issues[0][0] == "screens[1].id" and "duplicate" in issues[0][1]
    issues, _ = issues_of(broken(lambda d: d["screens"][0].update(tiles=[])))
    assert issues[0][0] == "screens[0].tiles"


def test_load_layout_reports_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(LayoutError, match="cannot read.*shipped layouts: .*wall-default"):
        load_layout("no-such-layout")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(LayoutError, match=r"bad.yaml: line \d+, column \d+: not valid YAML"):
        load_layout(bad)
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    assert find_layout(good) == good
    assert load_layout(good, WALL_TILES).name == "test"


def test_registry_refuses_a_kind_twice_and_names_unknown_kinds():
    reg = TileRegistry()
    reg.register("a", lambda ctx, opts: None)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda ctx, opts: None)
    with pytest.raises(KeyError, match="unknown tile kind 'b'"):
        reg.get("b")
    with pytest.raises(ValueError, match="takes no options"):
        reg.parse_options("a", {"x": 1})


def test_build_page_places_one_tile_per_placement_from_the_registry(demo_site):
    layout = parse_layout(GOOD, registry=WALL_TILES)
    page = build_page(layout, WALL_TILES, TileContext(demo_site, "en"))
    assert [type(t) for t in page.tiles] == [StatusBar, FloorMap, AlarmList]
    assert page.tiles[2].options.max_rows == 10
    grid = page.root.objects[0]
    assert isinstance(grid, pn.GridSpec)
    assert sorted(grid.objects) == [(0, 0, 1, 4), (1, 0, 3, 3), (1, 3, 3, 4)]


def test_a_new_tile_kind_needs_only_a_registry_entry(demo_site):
    class Clock:
        def __init__(self, ctx, options):
            self.source = None
            self.root = pn.pane.Markdown("clock")
            self.updates = 0

        def update(self, snap):
            self.updates += 1

    reg = TileRegistry()
    reg.register("clock", Clock)
    layout = parse_layout(
        {
            "name": "x",
            "screens": [
                {"id": "s", "columns": 1, "rows": 1, "tiles": [{"kind": "clock", "row": 0, "col": 0}]}
            ],
        },
        registry=reg,
    )
    page = build_page(layout, reg, TileContext(demo_site))
    assert isinstance(page.tiles[0], Clock)
