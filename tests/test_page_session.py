"""The page-session helper shared by the wall and the workstation, driven by hand (no server)."""

from __future__ import annotations

import logging

from console.web.session import PageSession


class Link:
    def __init__(self) -> None:
        self.n = 0

    def snapshot(self) -> int:
        self.n += 1
        return self.n


def test_a_page_gets_the_current_snapshot_when_built_and_no_tick_outside_a_served_session():
    seen: list[int] = []
    session = PageSession(Link(), seen.append, name="test")
    session.start(title="ignored")
    assert seen == [1] and not session.serving and session.callback is None
    session.stop()  # nothing to stop: harmless


def test_a_failing_update_is_logged_once_per_session_and_the_next_tick_tries_again(caplog):
    calls: list[int] = []

    def update(snap: int) -> None:
        calls.append(snap)
        raise RuntimeError("broken tile")

    session = PageSession(Link(), update, name="test")
    with caplog.at_level(logging.ERROR, logger="console.web.session"):
        for _ in range(3):
            session.tick()
    assert calls == [1, 2, 3]
    assert [r.getMessage() for r in caplog.records] == ["test update failed"]
