"""Sending one command from the workstation to the engine, and the status line that shows its reply.

Commands go through the console's :class:`~console.link.EngineLink` without blocking the server: the caller
awaits the reply. A status is ``(text, kind)`` with kind ``ok``, ``busy`` or ``refused``.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ...auth import Credential
from ..i18n import t

log = logging.getLogger(__name__)

__all__ = ["CommandSink", "Panel", "Status", "ask_engine", "send_as", "send_command", "status_html"]

Status = tuple[str, str]


class CommandSink(Protocol):
    """What a command is sent through: the console's ``EngineLink`` (or a stand-in in tests)."""

    def submit(self, request: dict[str, Any]) -> Any: ...  # a concurrent.futures.Future of the reply


async def ask_engine(link: CommandSink, request: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Send ``request`` through ``link`` and await the engine's reply without blocking the server. Raises
    ``TimeoutError`` when no reply comes within ``timeout_s`` seconds, ``RuntimeError`` when the link cannot send
    (closed, or its queue full)."""
    return await asyncio.wait_for(asyncio.wrap_future(link.submit(request)), timeout_s)


def status_html(status: Status) -> str:
    """The status line's HTML ("" when there is nothing to say)."""
    text, kind = status
    return f'<div class="wf-status-{kind}">{html.escape(text)}</div>' if text else ""


async def send_command(
    link: CommandSink,
    request: dict[str, Any],
    *,
    timeout_s: float,
    label: str,
    ok_text: str,
    lang: str,
    what: str,
) -> tuple[dict[str, Any] | None, Status]:
    """Send ``request`` and wait at most ``timeout_s`` for the engine's reply.

    Returns the reply (None: no answer) and the status to show: ``ok_text`` when accepted, the engine's refusal
    reason when refused. ``label`` names the action in the texts, ``what`` in the log.
    """
    try:
        reply = await ask_engine(link, request, timeout_s)
    except (TimeoutError, RuntimeError) as e:
        log.warning("workstation: %s: %s", what, e)
        return None, (t("reply.no_answer", lang, action=label, error=str(e) or "timeout"), "refused")
    if reply.get("ok"):
        log.info("workstation: %s accepted", what)
        return reply, (ok_text, "ok")
    reason = str(reply.get("reason") or "?")
    log.info("workstation: %s refused: %s", what, reason)
    return reply, (t("reply.refused", lang, action=label, reason=reason), "refused")


class Panel(Protocol):
    """A workstation panel that sends commands: its link, language and timeout; ``busy`` while one is in flight
    (its buttons grey out); ``refresh()`` shows its buttons and status line again."""

    link: CommandSink
    lang: str
    command_timeout_s: float
    busy: bool

    def refresh(self) -> None: ...


async def send_as(panel: Panel, cred: Credential, request: dict[str, Any], *, label: str, ok_text: str, what: str,
                  show: Callable[[Status], None]) -> dict[str, Any] | None:
    """Send ``request`` signed by ``cred`` from ``panel``: busy and "sending" while it is in flight, then the engine's
    answer through ``show``; the login keeps the fresh token the reply brings. Returns the reply (None: no answer)."""
    panel.busy = True
    show((t("reply.sending", panel.lang, action=label), "busy"))
    panel.refresh()
    reply: dict[str, Any] | None = None
    try:
        reply, status = await send_command(panel.link, cred.sign(request), timeout_s=panel.command_timeout_s,
                                           label=label, ok_text=ok_text, lang=panel.lang, what=what)
        show(status)
        cred.take(reply)
    finally:
        panel.busy = False
        panel.refresh()
    return reply
