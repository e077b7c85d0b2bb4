"""The ``watchfloor console`` server: the wall page (``/wall``), the workstation page (``/workstation``), the
permit watcher's sign-in phone page (``/signin/<permit>``) and the permits' printable QR cards (``/qr/<permit>``).

One :class:`~console.link.EngineLink` per console process receives everything from the engine and carries the
workstation's logins and commands (the engine checks passwords and tokens); every browser session builds its own page
and runs one periodic callback (250 ms, :class:`~console.web.session.PageSession`) that takes the link's latest
snapshot and updates the page inside one ``hold()``, so a tick reaches the browser as one message. The callback
stops when the session is destroyed.

    watchfloor console --site FILE [--port P] [--address A] [--layout NAME] [--lang en|zh-CN]

URL arguments of ``/wall``: ``lang`` (en, zh-CN), ``screen`` (a screen id of the layout), ``scale`` (1 = sized for
a 3840 px wide screen; 0.5 for 1920 px). ``/workstation`` (console/web/workstation/) takes ``lang``, ``scale``
(default 0.5), ``position`` and ``permit`` (that permit's detail after the login: the wall's permit board links
there). ``/signin/<permit>`` (console/web/signin.py) takes ``lang`` and ``scale``.

The wall also shows escalation banners (every role, with a beep) over the top of the map, and its alarm list
groups alarms by area and condition while the engine reports an alarm flood. On the default layout the
emergency muster tile takes the permit board's place while an emergency is declared.
"""

from __future__ import annotations

import argparse
import html
import logging
import signal
import sys
from typing import Any
from urllib.parse import urlencode

import panel as pn
from bokeh.events import DocumentReady
from bokeh.models import CustomJS

from config import Site
from layouts import LayoutError, Page, TileRegistry, WallLayout, build_page, layout_names, load_layout

from ..link import EngineLink, LinkSnapshot
from ..startup import load_site_or_report, start_logging
from .banners import EscalationBanner
from .horn import Horn
from .i18n import LANGUAGES, normalize_language, t
from .session import TICK_MS, PageSession, session_arg, session_scale
from .signin import QR_PATTERN, SIGNIN_ROUTE, QrCardHandler, make_signin
from .theme import Theme
from .tiles import WALL_TILES, TileContext, site_timezone
from .tiles.more import MORE_JS
from .watchdog import LinkWatchdog
from .workstation import WORKSTATION_PATH, make_workstation

log = logging.getLogger(__name__)

__all__ = [
    "TICK_MS",
    "WALL_PATH",
    "WORKSTATION_PATH",
    "build_wall",
    "main",
    "make_wall",
    "serve_pages",
    "update_page",
]

WALL_PATH = "/wall"
_configured = False


def _configure_panel(theme: Theme) -> None:
    """Process-wide Panel settings: the dark page background and fonts (idempotent)."""
    global _configured
    if _configured:
        return
    pn.config.theme = "dark"
    pn.config.raw_css = [*pn.config.raw_css, theme.page_css()]
    _configured = True


def build_wall(
    site: Site,
    layout: WallLayout | str = "wall-default",
    *,
    lang: str | None = None,
    screen: str | None = None,
    scale: float = 1.0,
    registry: TileRegistry = WALL_TILES,
) -> Page:
    """Build one screen's tiles and page (no server needed). ``lang`` defaults to ``site.console.language``."""
    if not isinstance(layout, WallLayout):
        layout = load_layout(layout, registry)
    theme = Theme(scale=scale)
    ctx = TileContext(site=site, lang=normalize_language(lang or site.console.language), theme=theme)
    return build_page(
        layout, registry, ctx, screen=screen, gap_px=theme.gap_px, background=theme.palette.page
    )


def screen_list_page(
    site: Site, layout: WallLayout, screen: str, lang: str, theme: Theme, *, named: bool = False
) -> pn.viewable.Viewable:
    """A wall URL naming a screen the layout does not have: say so and list the screens, each a link (never a
    traceback on the wall). ``named``: the layout was named in the URL, and the links name it too."""
    chosen = f"layout={layout.name}&" if named else ""
    log.info("wall: screen %r asked for, layout %s has %s", screen, layout.name, [s.id for s in layout.screens])
    return _links_page(
        theme,
        t("wall.no_screen", lang, screen=screen, layout=layout.name),
        t("wall.screens", lang),
        [(f"?{chosen}screen={s.id}&lang={lang}", t("wall.screen", lang, id=s.id)) for s in layout.screens],
    )


def position_list_page(
    site: Site, position: str, lang: str, theme: Theme, keep: dict[str, str] | None = None
) -> pn.viewable.Viewable:
    """A wall URL naming an operator position the site does not have: a wall there would never sound the horn
    of any real position. Say so and list the positions (each a link keeping the URL's other arguments ``keep``:
    layout, screen, scale), never a quiet wall."""
    ids = [p.id for p in site.operator_positions]
    log.info("wall: operator position %r asked for, the site has %s", position, ids)
    others = {k: v for k, v in (keep or {}).items() if v is not None and k not in ("position", "lang")}
    return _links_page(theme, t("wall.no_position", lang, position=position), t("wall.positions", lang),
                       [("?" + urlencode({**others, "position": pid, "lang": lang}), t("wall.position", lang, id=pid))
                        for pid in ids])


def _links_page(theme: Theme, what: str, heading: str, links: list[tuple[str, str]]) -> pn.viewable.Viewable:
    p = theme.palette
    items = "".join(f'<li><a style="color:{p.text}" href="{html.escape(href)}">{html.escape(text)}</a></li>'
                    for href, text in links)
    body = (f'<div style="font-size:{theme.px(48)}px;color:{p.text};padding:{theme.px(60)}px">'
            f"<p>{html.escape(what)}</p><p>{html.escape(heading)}</p><ul>{items}</ul></div>")
    return pn.Column(pn.pane.HTML(body, sizing_mode="stretch_both"), sizing_mode="stretch_both",
                     styles={"background": p.page, "height": "100vh"})


def update_page(page: Page, snap: LinkSnapshot, failed: set[int] | None = None) -> None:
    """Hand one snapshot to every tile, then let each stack of tiles show the one with something to show (the
    muster tile during an emergency). A failing tile is logged (once) and does not stop the others."""
    for i, tile in enumerate(page.tiles):
        try:
            tile.update(snap)
        except Exception:
            if failed is None or i not in failed:
                log.exception("tile %s failed to update", type(tile).__name__)
                if failed is not None:
                    failed.add(i)
    page.refresh_stacks()


def make_wall(
    site: Site,
    link: EngineLink,
    layout_name: WallLayout | str = "wall-default",
    *,
    lang: str | None = None,
    screen: str | None = None,
    scale: float = 1.0,
    period_ms: int = TICK_MS,
) -> pn.viewable.Viewable:
    """The wall page for one browser session, with its periodic callback (stopped when the session ends).

    URL arguments ``lang``, ``screen``, ``scale`` and ``layout`` (one of the shipped layouts, by name: a URL never
    names a file) override the keyword arguments.
    """
    lang = session_arg("lang") or lang
    screen = session_arg("screen") or screen
    scale = session_scale(scale)
    theme = Theme(scale=scale)
    _configure_panel(theme)
    shown = normalize_language(lang or site.console.language)
    asked = session_arg("layout")
    if asked is not None and asked in layout_names():
        layout_name = asked
    elif asked is not None:
        log.info("wall: layout %r asked for, not one of %s: the console's own", asked, layout_names())
    layout = layout_name if isinstance(layout_name, WallLayout) else load_layout(layout_name, WALL_TILES)
    if screen is not None and screen not in {s.id for s in layout.screens}:
        return screen_list_page(site, layout, screen, shown, theme, named=asked in layout_names())
    position = session_arg("position") or site.operator_positions[0].id
    if position not in {p.id for p in site.operator_positions}:
        return position_list_page(site, position, shown, theme,
                                  {k: session_arg(k) for k in ("layout", "screen", "scale")})
    page = build_wall(site, layout, lang=lang, screen=screen, scale=scale)
    # floats over the map, below the status bar: an escalation must not move the tiles (the map would re-fit)
    banner = EscalationBanner(theme, shown, site_timezone(site), name="wall-escalation", overlay=True)
    page.root.append(pn.pane.Bokeh(banner.root, sizing_mode="stretch_width", margin=0))
    watchdog = LinkWatchdog(theme, shown)  # judged in the browser: a dead console cannot say it is dead
    page.root.append(pn.pane.Bokeh(watchdog.overlay, margin=0))
    # the control room's horn: the alarms of this wall's operator position, silenced from a workstation
    horn = Horn(site, position, name="wall-horn", theme=theme, lang=shown)
    page.root.append(pn.pane.Bokeh(horn.root, margin=0))
    failed: set[int] = set()

    def update(snap: LinkSnapshot) -> None:
        update_page(page, snap, failed)
        banner.update(snap)
        horn.update(snap)
        watchdog.update(snap)

    # the lists' "+N more" counts what the browser had to hide, from the first render on (tiles/more.py)
    if pn.state.curdoc is not None:
        pn.state.curdoc.js_on_event(DocumentReady, CustomJS(code=MORE_JS))
        # a wall opened while an alarm already sounds sounds at once (its data came with the page: no change)
        pn.state.curdoc.js_on_event(DocumentReady, horn.on_page_ready())
    PageSession(link, update, name="wall", period_ms=period_ms).start(
        title=f"{site.name.get(shown)} \u2014 {t('page.title', shown)}"
    )
    return page.root


def serve_pages(
    site: Site,
    link: EngineLink,
    layout: WallLayout | str,
    *,
    lang: str,
    port: int,
    address: str,
    origins: list[str],
) -> Any:
    """A Bokeh server (not started) with ``/wall``, ``/workstation``, ``/signin/<permit>`` and ``/qr/<permit>``;
    the caller starts and stops it."""

    def wall() -> pn.viewable.Viewable:  # a plain function: Panel would render a partial as text
        return make_wall(site, link, layout, lang=lang)

    def workstation() -> pn.viewable.Viewable:
        return make_workstation(site, link, lang=lang)

    def signin() -> pn.viewable.Viewable:
        return make_signin(site, link, lang=lang)

    return pn.serve(
        {WALL_PATH.lstrip("/"): wall, WORKSTATION_PATH.lstrip("/"): workstation, SIGNIN_ROUTE: signin},
        extra_patterns=[(QR_PATTERN, QrCardHandler, {"site": site, "lang": lang})],
        port=port,
        address=address,
        websocket_origin=origins,
        show=False,
        start=False,
        title=site.name.get(lang),
        verbose=False,
        liveness=True,  # /liveness: a cheap answer for the pages' watchdog (polling a page makes a session)
    )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="watchfloor console",
        description="Serve the wall page (/wall) and the workstation page (/workstation) of a site.",
    )
    p.add_argument("--site", required=True, help="site file (YAML)")
    p.add_argument("--port", type=int, default=None, help="HTTP port (default: the site's console.port)")
    p.add_argument("--address", default=None, help="address to listen on (default: the site's console.host)")
    p.add_argument("--layout", default=None, help="layout name or file (default: the site's console.layout)")
    p.add_argument("--lang", choices=LANGUAGES, default=None, help="page language (default: the site's)")
    p.add_argument(
        "--publish-endpoint", default=None, help="engine PUB endpoint (default: the site's bus.publish)"
    )
    p.add_argument("--command-endpoint", default=None, help="engine command endpoint (default: bus.command)")
    p.add_argument(
        "--allow-websocket-origin",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another host:port browsers may use (repeatable), e.g. the wall PC's name",
    )
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING... (default INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    """``watchfloor console``: serve ``/wall`` and ``/workstation`` until SIGTERM or Ctrl-C. Returns the exit code."""
    args = _parser().parse_args(argv)
    start_logging(args.log_level)
    site = load_site_or_report(args.site)
    if site is None:
        return 2
    try:
        layout = load_layout(args.layout or site.console.layout, WALL_TILES)
    except LayoutError as e:
        print(str(e), file=sys.stderr)
        return 2
    port = args.port if args.port is not None else site.console.port
    address = args.address or site.console.host
    lang = normalize_language(args.lang or site.console.language)
    _configure_panel(Theme())
    origins = [f"{address}:{port}", *args.allow_websocket_origin]

    link = EngineLink(site, publish_endpoint=args.publish_endpoint, command_endpoint=args.command_endpoint,
                      console_name=f"console@{address}:{port}")
    with link:
        server = serve_pages(
            site, link, layout, lang=lang, port=port, address=address, origins=origins
        )
        loop = server.io_loop
        stopping: list[int] = []

        def request_stop(signum: int) -> None:
            if not stopping:
                log.info("console: signal %d, stopping", signum)
                stopping.append(signum)
                loop.stop()

        aio = loop.asyncio_loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                aio.add_signal_handler(sig, request_stop, sig)
            except (NotImplementedError, RuntimeError):  # not the main thread: the caller owns signals
                pass
        server.start()
        log.info(
            "console: serving http://%s:%d%s and %s for site %s",
            address,
            port,
            WALL_PATH,
            WORKSTATION_PATH,
            site.id,
        )
        try:
            loop.start()
        finally:
            server.stop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    aio.remove_signal_handler(sig)
                except (NotImplementedError, RuntimeError):
                    pass
    log.info("console: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
