"""The wall page in Debian's Chromium: a real console process served against the fake engine."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from config import DEMO_SITE
from console.snapshot import capture_wall, people_xy, wait_for_wall
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, free_port, wait_port
from tests.fake_engine import EPOCH_S, FakeEngine, alarm_record

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[1]
FIRST_ALARM = "P0050 entered restricted zone Substation"

_MOVED_JS = """([name, before]) => {
  const src = window.Bokeh.documents[0].get_model_by_name(name);
  const x = Array.from(src.data.x);
  return x.some((v, i) => Number.isFinite(v) && before[i] !== null && Math.abs(v - before[i]) > 1e-6);
}"""
_MODEL_VISIBLE_JS = "(name) => window.Bokeh.documents[0].get_model_by_name(name).visible === true"


class Wall:
    def __init__(self, engine: FakeEngine, url: str, proc: subprocess.Popen, log: Path) -> None:
        self.engine, self.url, self.proc, self.log = engine, url, proc, log


@pytest.fixture(scope="module")
def wall(demo_site, tmp_path_factory):
    """A fake engine plus `python -m console.app` serving /wall on a free port; stopped with SIGTERM."""
    log = tmp_path_factory.mktemp("wall") / "console.log"
    with FakeEngine(demo_site) as engine:
        engine.raise_alarm(
            alarm_record(50, person="P0050", priority="critical", ts_s=EPOCH_S + 30, en=FIRST_ALARM)
        )
        port = free_port()
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "console.app",
                    "--site",
                    str(DEMO_SITE),
                    "--port",
                    str(port),
                    "--address",
                    "127.0.0.1",
                    "--publish-endpoint",
                    engine.publish_endpoint,
                    "--command-endpoint",
                    engine.command_endpoint,
                ],
                cwd=REPO,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_port("127.0.0.1", port, timeout_s=60)
                yield Wall(engine, f"http://127.0.0.1:{port}/wall", proc, log)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    rc = proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    rc = None
        assert rc == 0, f"console did not stop cleanly on SIGTERM (rc {rc}):\n{log.read_text()[-3000:]}"


@pytest.fixture
def page(wall):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1920, "height": 1080})
            pg.goto(wall.url + "?scale=0.5", timeout=60_000)
            wait_for_wall(pg, timeout_s=60)
            yield pg
        finally:
            browser.close()


def test_wall_people_move_and_alarms_reach_the_page(wall, page):
    x1, y1 = people_xy(page)
    assert len(x1) == 200
    assert x1[:2] == [None, None] or None in x1  # people without a fix are not drawn
    page.wait_for_function(_MOVED_JS, arg=["wall-people", x1], timeout=20_000, polling=100)
    x2, y2 = people_xy(page)
    moved = [
        i
        for i in range(len(x1))
        if x1[i] is not None and x2[i] is not None and (x1[i], y1[i]) != (x2[i], y2[i])
    ]
    assert len(moved) > 100  # people walk on circles: nearly all of them moved between two reads
    page.get_by_text(FIRST_ALARM).wait_for(timeout=20_000)
    wall.engine.raise_alarm(
        alarm_record(51, priority="high", en="Second alarm raised while the page is open")
    )
    page.get_by_text("Second alarm raised while the page is open").wait_for(timeout=20_000)


def test_wall_screenshot_at_4k(wall, tmp_path):
    shot = capture_wall(wall.url, tmp_path / "wall-4k.png", 3840, 2160, timeout_s=60)
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (3840, 2160)


def test_wall_shows_link_lost_banner_when_engine_goes_quiet(wall, page, tmp_path):
    page.get_by_text("Engine link OK").wait_for(timeout=20_000)
    wall.engine.pause()
    try:
        page.get_by_text("ENGINE LINK LOST").wait_for(timeout=20_000)
        # the map's own warning is drawn on the canvas: read it from the Bokeh document
        page.wait_for_function(_MODEL_VISIBLE_JS, arg="wall-map-link-lost", timeout=10_000, polling=100)
        page.screenshot(path=str(tmp_path / "wall-link-lost.png"))
    finally:
        wall.engine.pause(False)
    page.get_by_text("Engine link OK").wait_for(timeout=20_000)
