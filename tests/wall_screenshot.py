"""Screenshots of the wall page through Debian's Chromium (playwright's sync API, no downloaded browser).

:func:`capture_wall` is the one code path for the README picture and the browser test's screenshot. The
helpers read the live Bokeh document of an open page (Bokeh renders into shadow roots, so the document is
more reliable than the DOM text).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

__all__ = [
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "PEOPLE_SOURCE",
    "capture_wall",
    "main",
    "people_xy",
    "wait_for_stable_layout",
    "wait_for_wall",
]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: the name of the floor map's people ColumnDataSource in the Bokeh document
PEOPLE_SOURCE = "wall-people"

_PEOPLE_JS = """(name) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const doc of docs) {
    const src = doc.get_model_by_name(name);
    if (src) {
      return {x: Array.from(src.data.x, v => Number.isFinite(v) ? v : null),
              y: Array.from(src.data.y, v => Number.isFinite(v) ? v : null)};
    }
  }
  return null;
}"""

_READY_JS = """(name) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const doc of docs) {
    const src = doc.get_model_by_name(name);
    if (src && Array.from(src.data.x).some(v => Number.isFinite(v))) return true;
  }
  return false;
}"""


_LAYOUT_JS = """() => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  const sizes = [];
  for (const doc of docs)
    for (const m of doc.all_models)
      if (m.outer_width !== undefined && m.inner_width !== undefined) sizes.push(m.outer_width, m.outer_height);
  return sizes.join(',');
}"""


def wait_for_wall(page: Any, timeout_s: float = 30.0) -> None:
    """Wait until the wall's Bokeh document is live and at least one person has a position."""
    page.wait_for_function(_READY_JS, arg=PEOPLE_SOURCE, timeout=timeout_s * 1000, polling=100)


def wait_for_stable_layout(page: Any, timeout_s: float = 10.0, still_polls: int = 8) -> None:
    """Wait until the plots' sizes have stayed the same for ``still_polls`` polls 100 ms apart (bounded).

    The grid settles a few hundred ms after the first render; the map's ranges follow the final size.
    """
    last, same = None, 0
    for _ in range(int(timeout_s * 10)):
        sizes = page.evaluate(_LAYOUT_JS)
        same = same + 1 if sizes == last else 0
        if same >= still_polls:
            return
        last = sizes
        page.wait_for_timeout(100)
    log.warning("wall layout still changing after %.0f s; taking the screenshot anyway", timeout_s)


def people_xy(page: Any) -> tuple[list[float | None], list[float | None]]:
    """The people glyph coordinates (m) now in the browser; None where a person has no fix."""
    xy = page.evaluate(_PEOPLE_JS, PEOPLE_SOURCE)
    if xy is None:
        raise RuntimeError(f"no {PEOPLE_SOURCE!r} data source in the page's Bokeh document")
    return xy["x"], xy["y"]


def capture_wall(
    url: str,
    path: str | Path,
    width: int = 3840,
    height: int = 2160,
    *,
    executable_path: str = CHROMIUM,
    args: list[str] | None = None,
    timeout_s: float = 60.0,
) -> Path:
    """Open ``url`` (the wall page) at ``width`` x ``height`` CSS px, wait for live data, save a PNG at ``path``.

    Waits for the first people positions, for the layout to settle, for the fonts, and for two animation
    frames so the canvas shows the latest data. Returns the path written.
    """
    from playwright.sync_api import sync_playwright

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=executable_path, headless=True, args=list(CHROMIUM_ARGS if args is None else args)
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="load", timeout=timeout_s * 1000)
            wait_for_wall(page, timeout_s)
            wait_for_stable_layout(page)
            page.evaluate("() => document.fonts.ready.then(() => true)")
            page.evaluate(
                "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(true))))"
            )
            page.screenshot(path=str(out), timeout=timeout_s * 1000)
        finally:
            browser.close()
    log.info("wall screenshot %s (%d x %d) saved to %s", url, width, height, out)
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.wall_screenshot URL PATH [--width W --height H]``: save a screenshot of a running wall."""
    p = argparse.ArgumentParser(prog="python -m tests.wall_screenshot", description=capture_wall.__doc__)
    p.add_argument("url", help="e.g. http://127.0.0.1:5006/wall")
    p.add_argument("path", help="PNG file to write")
    p.add_argument("--width", type=int, default=3840)
    p.add_argument("--height", type=int, default=2160)
    args = p.parse_args(argv)
    capture_wall(args.url, args.path, args.width, args.height)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
