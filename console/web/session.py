"""One browser session of a page: its URL arguments, its periodic tick and its clean-up.

Every page (``/wall``, ``/workstation``) is built per browser session and driven the same way: it takes the
link's current snapshot when it is built, then one periodic callback per session takes the link's latest
snapshot and updates the page inside one ``hold()``, so a tick reaches the browser as one message. The callback
stops when the session is destroyed. A receiver thread never touches the page: the tick runs on the session's
own event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import panel as pn
from panel.io.document import hold

from ..link import LinkSnapshot

log = logging.getLogger(__name__)

__all__ = ["TICK_MS", "PageSession", "SnapshotSource", "session_address", "session_arg", "session_scale"]

TICK_MS = 250  # one session update every 250 ms: 4 Hz, above the 2 Hz the wall needs, below the 5 Hz frames


class SnapshotSource(Protocol):
    """What a page reads from: the console's :class:`~console.link.EngineLink` (or a stand-in in tests)."""

    def snapshot(self) -> LinkSnapshot: ...


def session_arg(name: str) -> str | None:
    """The first value of URL argument ``name`` of the current Panel session (``?lang=zh-CN``), or None."""
    args = pn.state.session_args or {}
    values = args.get(name)
    if not values:
        return None
    raw = values[0]
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)


def session_address() -> str:
    """The browser's address as this server saw the connection (never a header the browser could write)."""
    ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    request = getattr(ctx, "request", None) if ctx is not None else None
    ip = getattr(request, "remote_ip", None) if request is not None else None
    return str(ip) if ip else "unknown"


def session_scale(default: float) -> float:
    """The page scale from URL argument ``scale`` (1 = sized for 3840 CSS px), else ``default``; kept in
    0.2 to 4 so that a typo cannot make the page unreadable."""
    try:
        scale = float(session_arg("scale") or default)
    except ValueError:
        scale = default
    return min(4.0, max(0.2, scale))


class PageSession:
    """Drives one session's page from ``link``: ``update(snap)`` now, then once per tick until the session ends.

    ``name`` says which page in the log; ``on_end()`` runs when the browser session ends (the tab closed, the
    connection lost for good). An update that raises is logged once per session (a broken update must
    be loud, not flood the log) and the next tick tries again.
    """

    def __init__(
        self,
        link: SnapshotSource,
        update: Callable[[LinkSnapshot], None],
        *,
        name: str,
        period_ms: int = TICK_MS,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.link = link
        self.update = update
        self.on_end = on_end
        self.name = name
        self.period_ms = int(period_ms)
        self.doc = pn.state.curdoc
        self.callback: Any = None
        self._failed = False

    @property
    def serving(self) -> bool:
        """True inside a served browser session (False when a page is built by hand, e.g. in a test)."""
        return self.doc is not None and self.doc.session_context is not None

    def start(self, title: str | None = None) -> None:
        """Hand the page the link's current snapshot; when serving, set the browser tab's ``title``, start the
        periodic tick and stop it with the session."""
        self.update(self.link.snapshot())
        if not self.serving:
            return
        if title is not None:
            self.doc.title = title
        self.callback = pn.state.add_periodic_callback(self.tick, period=self.period_ms)
        pn.state.on_session_destroyed(self._destroyed)

    def tick(self) -> None:
        """One tick: the link's latest snapshot into the page, sent to the browser as one message."""
        snap = self.link.snapshot()
        with hold(self.doc):
            try:
                self.update(snap)
            except Exception:
                if not self._failed:
                    log.exception("%s update failed", self.name)
                    self._failed = True

    def stop(self) -> None:
        """Stop the tick (idempotent)."""
        if self.callback is not None:
            self.callback.stop()
            self.callback = None

    def _destroyed(self, _ctx: Any) -> None:
        self.stop()
        if self.on_end is not None:
            try:
                self.on_end()
            except Exception:  # the session is gone either way
                log.exception("%s: ending the session failed", self.name)
