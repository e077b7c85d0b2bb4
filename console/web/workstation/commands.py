"""Sending one command from the workstation to the engine, and the status line that shows its reply.

Commands go through the console's :class:`~console.link.EngineLink` without blocking the server: the caller
awaits the reply. A status is ``(text, kind)`` with kind ``ok``, ``busy`` or ``refused``.
"""

from __future__ import annotations

import asyncio
import html
import logging
from typing import Any, Protocol

from ..i18n import t

log = logging.getLogger(__name__)

__all__ = ["CommandSink", "Status", "ask_engine", "send_command", "status_html"]

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
