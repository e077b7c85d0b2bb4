"""The workstation page (and the wall's banners and flood view) in Debian's Chromium: a real console process
served against the fake engine, which checks roles and states like the engine."""

from __future__ import annotations

import struct

import pytest

from tests.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.fake_engine import EPOCH_S, FakeEngine, alarm_record, console_process

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RESTRICTED = alarm_record(
    61, priority="high", zone="Z-U200", ts_s=EPOCH_S + 40, en="Wang Fang (T0061) in restricted zone Unit 200"
)
LATCHED = alarm_record(
    62,
    priority="medium",
    state="latched_ack",
    zone="Z-R101",
    ts_s=EPOCH_S + 20,
    en="Chen Jing (T0062) left confined space R-101 without sign-out",
)
GAS = alarm_record(
    70,
    priority="critical",
    zone="Z-U100",
    condition="gas.high",
    ts_s=EPOCH_S + 50,
    en="GD07 H2S 15.2 ppm above high alarm in Unit 100",
)
TANK_FARM = [
    alarm_record(
        80 + i, priority="low", zone="Z-TF", ts_s=EPOCH_S + 60 + i, en=f"Worker T{80 + i:04d} in Tank farm"
    )
    for i in range(4)
]
_BEEPS_JS = "(n) => (window.wfBeeps || 0) >= n"


@pytest.fixture(scope="module")
def console(demo_site, tmp_path_factory):
    """A fake engine with a few alarms and a console process serving /wall and /workstation."""
    log = tmp_path_factory.mktemp("workstation") / "console.log"
    with FakeEngine(demo_site) as engine:
        engine.publish_delta([RESTRICTED, LATCHED])
        with console_process(engine, log) as base:
            yield engine, base


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def _open(browser, url: str, **page_kw):
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, **page_kw)
    page.goto(url, timeout=60_000)
    return page


def _login(page, user: str, password: str = "demo") -> None:
    page.get_by_placeholder("User id").fill(user)
    page.get_by_placeholder("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def _button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def test_operator_acknowledges_cannot_shelve_and_supervisor_shelves_with_a_reason(console, browser):
    from playwright.sync_api import expect

    engine, base = console
    page = _open(browser, f"{base}/workstation")
    try:
        _login(page, "op1", "not-the-password")
        page.get_by_text("Login refused: wrong user id or password").wait_for(timeout=30_000)
        _login(page, "op1")
        page.get_by_text("Operator 1 (op1), Operator").wait_for(timeout=20_000)
        page.get_by_text(RESTRICTED["message"]["en"]).click()
        expect(_button(page, "Acknowledge")).to_be_enabled(timeout=10_000)
        expect(_button(page, "Shelve")).to_be_disabled()  # an operator may not shelve
        expect(_button(page, "Out of service")).to_be_disabled()
        _button(page, "Acknowledge").click()
        page.get_by_text("acknowledged by op1").wait_for(timeout=10_000)  # the engine's delta came back
        assert engine.alarms[RESTRICTED["id"]]["state"] == "active_ack"
        expect(_button(page, "Acknowledge")).to_be_disabled()
        page.get_by_text(LATCHED["message"]["en"]).click()
        expect(_button(page, "Reset")).to_be_enabled(timeout=10_000)  # latched and acknowledged: reset

        _button(page, "Log out").click()
        _login(page, "sup1")
        page.get_by_text("Shift supervisor (sup1), Shift supervisor").wait_for(timeout=20_000)
        page.get_by_text(RESTRICTED["message"]["en"]).click()
        expect(_button(page, "Shelve")).to_be_enabled(timeout=10_000)
        page.get_by_placeholder("why").fill("Hot-work permit being renewed")
        page.locator("select").select_option(label="1 h")
        _button(page, "Shelve").click()
        page.get_by_text("Shelve: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("Shelved and out of service (1)").click()
        row = page.locator(".tabulator-row", has_text="Hot-work permit being renewed")
        row.wait_for(timeout=10_000)
        assert "sup1" in row.inner_text() and "SHELVED" in row.inner_text()
        shelved = engine.alarms[RESTRICTED["id"]]["shelved"]
        assert (shelved["by"], shelved["reason"]) == ("sup1", "Hot-work permit being renewed")
        sent = [c for c in engine.commands if c.get("op") == "shelve"]
        assert sent[-1]["duration_s"] == 3600.0 and sent[-1]["user"] == "sup1"
    finally:
        page.close()


def test_escalation_banner_beeps_and_the_flood_view_groups_on_workstation_and_wall(console, browser):
    engine, base = console
    engine.publish_delta([GAS, *TANK_FARM])
    desk = _open(browser, f"{base}/workstation")
    wall = _open(browser, f"{base}/wall?scale=0.5")
    try:
        _login(desk, "sup1")
        desk.get_by_text(GAS["message"]["en"]).wait_for(timeout=20_000)
        wall.get_by_text(GAS["message"]["en"]).wait_for(timeout=20_000)
        engine.notify(GAS["id"], "supervisor", step=1)
        for page in (desk, wall):
            page.get_by_text("ESCALATION to Shift supervisor (step 1)").wait_for(timeout=20_000)
            page.wait_for_function(_BEEPS_JS, arg=1, timeout=20_000, polling=100)
        engine.flood(True, first_out=GAS["id"], count_10min=12)
        wall.get_by_text("FLOOD: grouped by area").wait_for(timeout=20_000)
        wall.get_by_text("4 \u00d7 Restricted zone").wait_for(timeout=20_000)  # the tank farm, one card
        wall.get_by_text("FIRST OUT").wait_for(timeout=20_000)
        desk.get_by_text("ALARM FLOOD since").wait_for(timeout=20_000)
        desk.get_by_text("4 \u00d7 Restricted zone, Tank farm").click()  # a group row opens when selected
        desk.get_by_text(TANK_FARM[0]["message"]["en"]).wait_for(timeout=20_000)
        engine.flood(False)
        wall.get_by_text("FLOOD: grouped by area").wait_for(state="detached", timeout=20_000)
    finally:
        engine.flood(False)
        desk.close()
        wall.close()


def test_workstation_screenshot_at_4k(console, browser, tmp_path):
    """1920 x 1080 CSS px at device scale 2 (a 4K desktop monitor at 200 %): 3840 x 2160 pixels."""
    _engine, base = console
    page = _open(browser, f"{base}/workstation", device_scale_factor=2)
    try:
        _login(page, "sup1")
        page.get_by_text(LATCHED["message"]["en"]).click()
        page.get_by_text("LATCHED", exact=True).first.wait_for(timeout=10_000)
        page.evaluate("() => document.fonts.ready.then(() => true)")
        shot = tmp_path / "workstation-4k.png"
        page.screenshot(path=str(shot))
    finally:
        page.close()
    head = shot.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", head[16:24]) == (3840, 2160)


def test_supervisor_declares_and_ends_an_emergency_after_confirming(console, browser):
    engine, base = console
    page = _open(browser, f"{base}/workstation")
    try:
        _login(page, "sup1")
        page.get_by_text("Emergency muster: none declared.").wait_for(timeout=20_000)
        _button(page, "Declare emergency (whole site)\u2026").click()
        page.get_by_text("Declare a site-wide emergency?", exact=False).wait_for(timeout=10_000)
        assert not [c for c in engine.commands if c.get("op") == "muster_declare"]  # nothing sent yet
        _button(page, "Confirm").click()
        page.get_by_text("Declare emergency: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("EMERGENCY MUSTER since", exact=False).wait_for(timeout=10_000)
        _button(page, "End emergency\u2026").click()
        _button(page, "Confirm").click()
        page.get_by_text("End emergency: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("Emergency muster: none declared.").wait_for(timeout=10_000)
        sent = [c for c in engine.commands if c.get("op", "").startswith("muster_")]
        assert [(c["op"], c["user"]) for c in sent] == [("muster_declare", "sup1"), ("muster_end", "sup1")]
    finally:
        engine.end_muster()
        page.close()
