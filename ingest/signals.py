"""Stopping a process on SIGINT / SIGTERM without deadlocking it.

A Python signal handler runs in the main thread between two bytecodes, possibly while that thread holds the
lock of the very ``threading.Event`` the handler would set (``Event.wait`` takes it to re-check the flag): an
``Event.set`` there waits for a lock its own thread holds, forever. Seen as an adapter that never stopped after
its supervisor was killed (PR_SET_PDEATHSIG's SIGTERM arrived in ``run_slices``' wait). The handler therefore
only starts a short thread that sets the event; the interrupted main thread goes on and releases the lock.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["set_soon", "stop_on_signals"]


def set_soon(event: threading.Event) -> None:
    """Set ``event`` from a thread of its own: safe to call from a signal handler."""
    threading.Thread(target=event.set, name="stop-on-signal", daemon=True).start()


def stop_on_signals(
    stop: threading.Event, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM)
) -> dict[int, Callable[..., Any] | int | None]:
    """Set ``stop`` when one of ``signals`` arrives (main thread only); returns the handlers it replaced."""
    previous = {}
    for sig in signals:
        previous[sig] = signal.signal(sig, lambda *_: set_soon(stop))
    return previous
