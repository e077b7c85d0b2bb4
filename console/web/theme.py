"""The look of the wall and the workstation: an ISA-101 high-performance HMI on a dark control-room background.

Grey and calm when all is well; colour (red, amber, yellow, magenta) only for abnormal states and always
paired with a shape and a text, never colour alone; blinking only for unacknowledged alarms.

Sizes are CSS pixels for a 3840 x 2160 (4K) screen seen from a few metres; ``Theme.scale`` shrinks them for
smaller screens (0.5 on a 1920 x 1080 monitor).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "BOARD_COLORS",
    "PALETTE",
    "PRIORITY_NAMES",
    "PRIORITY_RANK",
    "PRIORITY_STYLE",
    "Palette",
    "PriorityStyle",
    "Theme",
]

#: alarm priority by rank, as in the engine's per-person ``alarm`` array (0 = no alarm)
PRIORITY_NAMES: tuple[str, ...] = ("none", "low", "medium", "high", "critical")
PRIORITY_RANK: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(PRIORITY_NAMES)})


@dataclass(frozen=True)
class PriorityStyle:
    """How one alarm priority is drawn: a colour, a Bokeh marker, a text symbol (same shape as the marker)."""

    color: str
    marker: str
    symbol: str


#: rank -> style; each priority has its own shape so that colour is never the only cue
PRIORITY_STYLE: Mapping[int, PriorityStyle] = MappingProxyType(
    {
        4: PriorityStyle(color="#ff3b3b", marker="square", symbol="\u25a0"),  # red square
        3: PriorityStyle(color="#ff9a1f", marker="triangle", symbol="\u25b2"),  # amber triangle
        2: PriorityStyle(color="#f2e01f", marker="diamond", symbol="\u25c6"),  # yellow diamond
        1: PriorityStyle(color="#e26bff", marker="inverted_triangle", symbol="\u25bc"),  # magenta
    }
)


#: permit board colour (``permit.board``) -> the colour drawn: red = work in progress, amber = suspended or ending
#: soon, green = planned, grey = over. A board colour is never shown alone: the permit's state is written beside.
BOARD_COLORS: Mapping[str, str] = MappingProxyType(
    {"red": "#ff3b3b", "amber": "#ff9a1f", "green": "#4cc36b", "grey": "#8c9399"}
)


@dataclass(frozen=True)
class Palette:
    """Greys for everything normal. Hex colours."""

    page: str = "#1d2023"
    tile: str = "#25292c"
    tile_border: str = "#33383c"
    map_background: str = "#2b2f32"
    structure_fill: str = "#3d4347"
    structure_line: str = "#555c62"
    structure_text: str = "#8f979e"
    road_fill: str = "#383d41"
    zone_line: str = "#a9b0b6"
    zone_line_quiet: str = "#737a80"
    zone_text: str = "#b7bdc2"
    anchor: str = "#7d858b"
    text: str = "#d9dcdf"
    text_dim: str = "#8c9399"
    person: str = "#e4e7ea"
    person_line: str = "#1d2023"
    person_stale: str = "#7a8187"
    gas_normal: str = "#9aa2a8"
    gas_text: str = "#c3c8cc"
    outline_dark: str = "#101214"
    link_lost_background: str = "#ff9a1f"
    link_lost_text: str = "#101214"
    gas_field_quiet: str = "#c3c8cc"  # a gas cloud below the first alarm level: a light haze, no alarm colour
    machine: str = "#9aa2a8"
    emergency_background: str = "#ff3b3b"
    emergency_text: str = "#101214"


PALETTE = Palette()

#: blinking is only for unacknowledged alarms (class ``wf-blink``)
_BLINK_CSS = """@keyframes wf-blink { 0%, 49% { opacity: 1; } 50%, 100% { opacity: 0.35; } }
.wf-blink { animation: wf-blink 1s infinite; }
"""


@dataclass(frozen=True)
class Theme:
    """Sizes for one page. ``scale`` = 1 is sized for 3840 px wide; every size is multiplied by it."""

    scale: float = 1.0
    palette: Palette = PALETTE
    font_family: str = (
        "'Liberation Sans', Arial, 'Helvetica Neue', 'Noto Sans CJK SC', 'WenQuanYi Micro Hei', "
        "'Microsoft YaHei', 'DejaVu Sans', sans-serif"
    )
    #: for Bokeh canvas text: Bokeh measures text by parsing this, and quoted names break the parse
    canvas_font: str = "Liberation Sans, Arial, Helvetica, sans-serif"

    def px(self, n: float) -> int:
        """A size in CSS pixels at this scale (at least 1)."""
        return max(1, round(n * self.scale))

    def font(self, n: float) -> str:
        """A font size string for Bokeh text properties, e.g. ``'30px'``."""
        return f"{self.px(n)}px"

    # the few sizes every tile shares, in CSS px at scale 1
    @property
    def text_px(self) -> int:
        return self.px(36)

    @property
    def small_px(self) -> int:
        return self.px(28)

    @property
    def large_px(self) -> int:
        return self.px(48)

    @property
    def huge_px(self) -> int:
        return self.px(60)

    @property
    def gap_px(self) -> int:
        return self.px(12)

    def page_css(self) -> str:
        """Stylesheet for the page itself (body, fonts, the alarm blink). Goes into the page head."""
        p = self.palette
        return f"""
html, body {{
  margin: 0; padding: 0; width: 100%; height: 100%; overflow: hidden;
  background: {p.page}; color: {p.text}; font-family: {self.font_family};
}}
:root {{ --wf-page: {p.page}; --wf-tile: {p.tile}; --wf-text: {p.text}; --wf-text-dim: {p.text_dim}; }}
"""

    def tile_css(self) -> str:
        """Stylesheet for tiles' HTML content (status bar, alarm list header). Injected into shadow roots."""
        p = self.palette
        return f"""
:host {{ font-family: {self.font_family}; color: {p.text}; }}
.bk-clearfix {{ width: 100%; height: 100%; box-sizing: border-box; }}
.wf-tile-head {{
  display: flex; flex-wrap: wrap; align-items: baseline; column-gap: {self.px(24)}px; row-gap: {self.px(4)}px;
  padding: {self.px(10)}px {self.px(18)}px; white-space: nowrap; box-sizing: border-box;
  font-size: {self.large_px}px; color: {p.text}; border-bottom: {self.px(2)}px solid {p.tile_border};
}}
.wf-tile-head .wf-dim {{ font-size: {self.text_px}px; color: {p.text_dim}; }}
.wf-tile-head .wf-em {{ font-weight: bold; }}
.wf-status {{
  display: flex; align-items: center; gap: {self.px(56)}px; height: 100%; width: 100%; box-sizing: border-box;
  padding: 0 {self.px(24)}px; font-size: {self.large_px}px; color: {p.text}; white-space: nowrap;
}}
.wf-status .wf-site {{ font-size: {self.huge_px}px; font-weight: bold; min-width: 0; overflow: hidden;
  text-overflow: ellipsis; }}
.wf-status .wf-clock {{ font-size: {self.huge_px}px; font-variant-numeric: tabular-nums; }}
.wf-status .wf-label {{ color: {p.text_dim}; margin-right: {self.px(10)}px; }}
.wf-status .wf-value {{ font-variant-numeric: tabular-nums; }}
.wf-status .wf-spacer {{ flex: 1; }}
.wf-status .wf-link-ok {{ color: {p.text_dim}; }}
.wf-status.wf-lost {{ background: {p.link_lost_background}; color: {p.link_lost_text}; }}
.wf-status.wf-lost .wf-label {{ color: {p.link_lost_text}; }}
.wf-banner {{ font-size: {self.huge_px}px; font-weight: bold; }}
{_BLINK_CSS}"""

    # -- the workstation (console/web/workstation/) ---------------------------------------------------------
    def workstation_css(self) -> str:
        """Stylesheet for the workstation's HTML panes (priorities, tags, group rows, the blink)."""
        p = self.palette
        return f"""
:host {{ font-family: {self.font_family}; color: {p.text}; font-size: {self.text_px}px; }}
.wf-pri {{ font-weight: bold; white-space: nowrap; }}
.wf-tag {{ font-weight: bold; border: {self.px(2)}px solid; padding: 0 {self.px(8)}px; margin-right: {self.px(6)}px;
  font-size: {self.small_px}px; }}
.wf-indent {{ padding-left: {self.px(48)}px; display: inline-block; }}
.wf-group {{ font-weight: bold; }}
{_BLINK_CSS}"""

    def workstation_table_css(self) -> str:
        """Stylesheet for the workstation's alarm tables (Tabulator), on top of :meth:`workstation_css`."""
        p = self.palette
        # !important: the Tabulator theme's own sheet is added after ours
        return (
            self.workstation_css()
            + f"""
.tabulator {{ font-size: {self.text_px}px !important; background-color: {p.tile} !important;
  border: {self.px(2)}px solid {p.tile_border} !important; }}
.tabulator .tabulator-header, .tabulator .tabulator-header .tabulator-col {{
  background-color: {p.page} !important; color: {p.text_dim} !important; border-color: {p.tile_border} !important; }}
.tabulator .tabulator-tableholder, .tabulator .tabulator-tableholder .tabulator-table {{
  background-color: {p.tile} !important; color: {p.text} !important; }}
.tabulator-row, .tabulator-row.tabulator-row-even, .tabulator-row.tabulator-row-odd {{
  background-color: {p.tile} !important; color: {p.text} !important;
  border-bottom: 1px solid {p.tile_border} !important; }}
.tabulator-row .tabulator-cell {{ border-right: none !important; padding: {self.px(10)}px {self.px(12)}px !important;
  text-align: left !important; }}
.tabulator-row.tabulator-selectable:hover {{ background-color: {p.structure_fill} !important; cursor: pointer; }}
.tabulator-row.tabulator-selected, .tabulator-row.tabulator-selected:hover {{
  background-color: #34495e !important; box-shadow: inset {self.px(10)}px 0 0 {p.text}; }}
.tabulator .tabulator-placeholder span {{ color: {p.text_dim} !important; font-size: {self.text_px}px; }}
"""
        )

    def workstation_panel_css(self) -> str:
        """Stylesheet for the workstation's panels (login, user line, action card, muster line, flood banner)."""
        p = self.palette
        return (
            self.workstation_css()
            + f"""
.wf-card {{ background: {p.tile}; border: {self.px(2)}px solid {p.tile_border}; padding: {self.px(16)}px {self.px(20)}px; }}
.wf-sel-line {{ display: flex; gap: {self.px(20)}px; align-items: baseline; flex-wrap: wrap; }}
.wf-sel-msg {{ font-size: {self.large_px}px; margin: {self.px(8)}px 0; line-height: 1.25; }}
.wf-sel-facts {{ color: {p.text_dim}; }}
.wf-dim {{ color: {p.text_dim}; }}
.wf-status-ok {{ color: {p.text}; }}
.wf-status-refused {{ color: #ff9a1f; font-weight: bold; }}
.wf-status-busy {{ color: {p.text_dim}; }}
.wf-user {{ font-size: {self.large_px}px; }}
.wf-user .wf-role {{ font-weight: bold; }}
.wf-flood {{ background: {p.link_lost_background}; color: {p.link_lost_text}; font-weight: bold;
  font-size: {self.large_px}px; padding: {self.px(10)}px {self.px(20)}px; }}
.wf-login-title {{ font-size: {self.large_px}px; font-weight: bold; }}
.wf-muster-on {{ background: {p.emergency_background}; color: {p.emergency_text}; font-weight: bold;
  font-size: {self.large_px}px; padding: {self.px(10)}px {self.px(20)}px; }}
.wf-muster-quiet {{ color: {p.text_dim}; padding: {self.px(10)}px {self.px(8)}px; }}
.wf-missing-title {{ font-weight: bold; color: {p.emergency_background}; padding: {self.px(6)}px 0; }}
.wf-missing {{ padding: {self.px(2)}px 0; }}
.wf-missing-stale {{ font-weight: bold; }}
.wf-confirm {{ font-weight: bold; padding: {self.px(10)}px {self.px(8)}px; }}
.wf-login-msg {{ color: #ff9a1f; font-weight: bold; min-height: 1.3em; }}
"""
        )

    def widget_css(self) -> str:
        """Stylesheet for the workstation's widgets (buttons, inputs, selects), sized to be read at arm's length."""
        p = self.palette
        return f"""
:host {{ --font-size: {self.text_px}px; font-size: {self.text_px}px; }}
.bk-btn, .bk-input, select, input {{ font-size: {self.text_px}px; }}
.bk-btn {{ padding: {self.px(14)}px {self.px(20)}px; }}
.bk-btn[disabled] {{ opacity: 0.4; background-color: {p.tile} !important; color: {p.text_dim} !important;
  border-color: {p.tile_border} !important; }}
.bk-btn-group .bk-btn.bk-active {{ background-color: #34495e; color: {p.text}; box-shadow: inset 0 -{self.px(6)}px 0 {p.text}; }}
.bk-input {{ padding: {self.px(10)}px {self.px(12)}px; height: auto; }}
label {{ font-size: {self.small_px}px; color: {p.text_dim}; }}
"""
