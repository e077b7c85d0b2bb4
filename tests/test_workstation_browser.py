"""The workstation page (and the wall's banners and flood view) in Debian's Chromium: a real console process
served against the real engine (tests/engine_stack.py), which checks roles and states itself."""

from __future__ import annotations

import re
import struct
import time

import pytest

from config.schema import AlarmRule, EscalationPolicy, EscalationStep
from tests.builders import wearable_events
from tests.conftest import free_port
from tests.engine_stack import EngineStack, Plant, chromium, console_process
from tests.source_proxy import source_proxy

pytestmark = [pytest.mark.slow, pytest.mark.browser]

RESTRICTED = "zone.restricted:Z-R101:T0061"  # a worker in restricted zone R-101 (high)
LATCHED = "person.sos:T0062"  # an SOS, held 0.5 s here, then latched until acknowledged and reset (critical)
GAS = "gas.high:GD07"  # level 2 in Unit 200 (critical); escalates to the supervisor 3 s after it is raised
SUBSTATION = ["T0081", "T0082", "T0083", "T0084"]  # four workers in restricted zone Substation: one group
_BEEPS_JS = "(n) => (window.wfBeeps || 0) >= n"


class Console:
    def __init__(self, stack: EngineStack, plant: Plant, base: str, other_port: int) -> None:
        self.stack, self.plant, self.base = stack, plant, base
        self.other_port = other_port  # where a browser seen as another computer (127.0.0.2) opens the pages

    def text(self, alarm_id: str) -> str:
        """The English text of one of the engine's alarms (waits until it is raised)."""
        return self.stack.wait_alarm(alarm_id)["message"]["en"]


def _rules(site) -> dict:
    gas = EscalationPolicy(id="test-gas", steps=[EscalationStep(after_s=3.0, notify_role="supervisor"),
                                                 EscalationStep(after_s=7200.0, notify_role="safety_manager")])
    return {"alarm_rules": [AlarmRule(condition="gas.high", match=GAS, escalation="test-gas"), *site.alarm_rules],
            "escalation_policies": [*site.escalation_policies, gas],
            "people_safety": site.people_safety.model_copy(update={"sos_hold_s": 0.5})}


@pytest.fixture(scope="module")
def console(demo_site, tmp_path_factory):
    """The engine fed by a plant, with a worker in restricted zone R-101 (active, unacknowledged) and an SOS
    latched and acknowledged by op1, and a console process serving /wall and /workstation."""
    folder = tmp_path_factory.mktemp("workstation")
    with EngineStack(demo_site, folder, **_rules(demo_site)) as stack, Plant(stack) as plant:
        plant.place({"T0061": stack.zone_centre("Z-R101")})
        stack.send(wearable_events([("T0062", "sos")], time.time()))
        stack.wait_alarm(LATCHED, "latched_unack")
        assert stack.command(op="ack", alarm=LATCHED, user="op1")["ok"]
        stack.wait_alarm(RESTRICTED)
        other = free_port()
        with console_process(stack, folder / "console.log", origins=(f"127.0.0.1:{other}",)) as base:
            yield Console(stack, plant, base, other)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


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

    stack, base = console.stack, console.base
    restricted, latched = console.text(RESTRICTED), console.text(LATCHED)
    page = _open(browser, f"{base}/workstation")
    try:
        _login(page, "op1", "not-the-password")
        page.get_by_text("Login refused: wrong user id or password").wait_for(timeout=30_000)
        _login(page, "op1")
        page.get_by_text("Operator 1 (op1), Operator").wait_for(timeout=20_000)
        page.get_by_text(restricted).click()
        expect(_button(page, "Acknowledge")).to_be_enabled(timeout=10_000)
        expect(_button(page, "Shelve")).to_be_disabled()  # an operator may not shelve
        expect(_button(page, "Out of service")).to_be_disabled()
        _button(page, "Acknowledge").click()
        page.get_by_text("acknowledged by op1").wait_for(timeout=10_000)  # the engine's delta came back
        assert stack.alarms()[RESTRICTED]["state"] == "active_ack"
        expect(_button(page, "Acknowledge")).to_be_disabled()
        page.get_by_text(latched).click()
        expect(_button(page, "Reset")).to_be_enabled(timeout=10_000)  # latched and acknowledged: reset

        _button(page, "Log out").click()
        _login(page, "sup1")
        page.get_by_text("Shift supervisor (sup1), Shift supervisor").wait_for(timeout=20_000)
        page.get_by_text(restricted).click()
        expect(_button(page, "Shelve")).to_be_enabled(timeout=10_000)
        page.get_by_placeholder("why").fill("Hot-work permit being renewed")
        page.locator("select").select_option(label="1 h")
        _button(page, "Shelve").click()
        page.get_by_text("Shelve: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("Shelved and out of service (1)").click()
        row = page.locator(".tabulator-row", has_text="Hot-work permit being renewed")
        row.wait_for(timeout=10_000)
        assert "sup1" in row.inner_text() and "SHELVED" in row.inner_text()
        record = stack.alarms()[RESTRICTED]
        shelved = record["shelved"]
        assert (shelved["by"], shelved["reason"]) == ("sup1", "Hot-work permit being renewed")
        assert shelved["until_ts_s"] - record["changed_ts_s"] == pytest.approx(3600.0)  # the "1 h" chosen
    finally:
        page.close()
    # the journal names the person the engine verified, and where each login came from
    acks = [(actor, d.get("comment")) for a, actor, d in stack.journal("acknowledge") if a == RESTRICTED]
    assert acks == [("op1", "")]
    rows = [(e, actor, d.get("reason"), d.get("address"), d.get("console", "")[:11])
            for e, a, actor, d in stack.journal_rows() if a == "access" and d.get("console") != "test-stack"]
    assert rows[:4] == [("login_failed", "op1", "wrong password", "127.0.0.1", "workstation"),
                        ("login", "op1", None, "127.0.0.1", "workstation"),
                        ("logout", "op1", "user", None, "workstation"),
                        ("login", "sup1", None, "127.0.0.1", "workstation")]


def test_wrong_passwords_from_another_computer_make_it_wait_and_do_not_keep_the_supervisor_out(console, browser):
    """Through the login page in Chromium: a browser the console sees as 127.0.0.2 types wrong passwords for sup1
    until the engine makes that address wait; sup1 logs in at once from 127.0.0.1 (tests/test_access.py sends a
    thousand through the same login path)."""
    stack = console.stack
    port = int(console.base.rsplit(":", 1)[1])
    with source_proxy(console.other_port, port) as other_base:
        attacker = _open(browser, f"{other_base}/workstation")
        try:
            for k in range(12):
                _login(attacker, "sup1", f"guess-{k}")
                attacker.get_by_text("Login refused").wait_for(timeout=20_000)
                if "wait" in attacker.locator(".wf-login-msg").inner_text():
                    break
                attacker.wait_for_timeout(100)  # the next try: the message is replaced, not appended
            message = attacker.locator(".wf-login-msg").inner_text()
            assert "too many failed attempts from here, wait" in message, message
        finally:
            attacker.close()
    before = len(stack.journal_rows())
    page = _open(browser, f"{console.base}/workstation")
    try:
        _login(page, "sup1")
        page.get_by_text("Shift supervisor (sup1), Shift supervisor").wait_for(timeout=20_000)
    finally:
        page.close()
    rows = [(e, actor, d.get("address")) for e, a, actor, d in stack.journal_rows() if a == "access"]
    failed = [r for r in rows if r[0] == "login_failed"]
    assert len(failed) >= 5 and all(r[1:] == ("sup1", "127.0.0.2") for r in failed[-5:])
    after = [(e, actor, d.get("address")) for e, a, actor, d in stack.journal_rows()[before:] if a == "access"]
    mine = [r for r in after if r[2] != "127.0.0.2"]  # an attacker's try still in flight may land meanwhile
    assert mine[0] == ("login", "sup1", "127.0.0.1")  # at once; then at most the logout of the closed tab
    assert all(r[0] == "logout" for r in mine[1:])


def test_workstation_screenshot_at_4k(console, browser, tmp_path):
    """1920 x 1080 CSS px at device scale 2 (a 4K desktop monitor at 200 %): 3840 x 2160 pixels."""
    page = _open(browser, f"{console.base}/workstation", device_scale_factor=2)
    try:
        _login(page, "sup1")
        page.get_by_text(console.text(LATCHED)).click()
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
    stack = console.stack
    page = _open(browser, f"{console.base}/workstation")

    def muster_rows():
        return [(event, actor) for event, alarm, actor, _ in stack.journal_rows() if alarm == "muster"]

    try:
        _login(page, "sup1")
        page.get_by_text("Emergency muster: none declared.").wait_for(timeout=20_000)
        _button(page, "Declare emergency (whole site)\u2026").click()
        page.get_by_text("Declare a site-wide emergency?", exact=False).wait_for(timeout=10_000)
        assert muster_rows() == []  # nothing sent yet
        _button(page, "Confirm").click()
        page.get_by_text("Declare emergency: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("EMERGENCY MUSTER since", exact=False).wait_for(timeout=10_000)
        # who is missing, by name, and where in words: T0061 stands in restricted zone R-101 (not coordinates)
        page.get_by_text("Not yet at a muster point", exact=False).wait_for(timeout=10_000)
        row = page.locator('[data-person="P0061"]')
        row.wait_for(timeout=10_000)
        text = row.inner_text()
        assert "Reactor R-101 enclosure" in text and not re.search(r"\d+, \d+ m", text), text
        _button(page, "End emergency\u2026").click()
        _button(page, "Confirm").click()
        page.get_by_text("End emergency: accepted by the engine").wait_for(timeout=10_000)
        page.get_by_text("Emergency muster: none declared.").wait_for(timeout=10_000)
        assert muster_rows() == [("muster_declare", "sup1"), ("muster_end", "sup1")]  # as the engine journaled
    finally:
        if stack.command(op="snapshot")["muster"] is not None:
            stack.command(op="muster_end", user="sup1")
        page.close()


def test_an_operator_finds_a_person_by_chinese_name_and_by_pinyin(console, browser):
    """"Where is Zhang Hui?": 张辉 and zhanghui find the same people, with their tag and where they are."""
    page = _open(browser, f"{console.base}/workstation")
    try:
        _login(page, "op1")
        _button(page, "People").click()  # the People tab
        box = page.get_by_placeholder("Find a person", exact=False)
        box.fill("张辉")
        card = page.locator('.wf-found[data-person="P0002"]')
        card.wait_for(timeout=20_000)
        assert "Zhang Hui 张辉" in card.inner_text() and "T0002" in card.inner_text()
        box.fill("zhanghui")
        page.locator('.wf-found[data-person="P0002"]').wait_for(timeout=20_000)
        assert page.locator(".wf-found").count() == 8  # ten Zhang Huis on the demo plant: 8 shown, 2 counted
        page.get_by_text("+2 more", exact=False).wait_for(timeout=10_000)
    finally:
        page.close()


# last in the module: a flood, once begun, lasts until the last 10 min of engine time calm down
_LIVE_JS = "() => window.wfWatch && window.wfWatch.state === 'live' && window.wfHorn !== undefined"
_HORN_JS = "([state, plays]) => window.wfHorn && window.wfHorn.state === state && (window.wfHornPlays || 0) >= plays"


def test_a_new_critical_alarm_sounds_the_horn_until_acknowledged_and_a_silence_covers_all_walls(console, browser):
    """A new CRITICAL alarm sounds on the wall and the workstation at once and again and again; an operator
    silences the position for 60 s from the workstation (journaled), which quiets the wall too and says so on
    it; a new CRITICAL alarm during the silence sounds again; acknowledged, the horn stops."""
    stack, base = console.stack, console.base
    desk = _open(browser, f"{base}/workstation")
    wall = _open(browser, f"{base}/wall?scale=0.5")
    try:
        _login(desk, "op1")
        desk.get_by_text("Operator 1 (op1), Operator").wait_for(timeout=20_000)
        for page in (wall, desk):  # both pages drawn and live before the alarm (a loaded machine is slow)
            page.wait_for_function(_LIVE_JS, timeout=60_000, polling=200)
        first, second = "person.sos:T0071", "person.sos:T0072"
        stack.send(wearable_events([("T0071", "sos")], time.time()))
        stack.wait_alarm(first, "latched_unack")
        for page in (wall, desk):  # at once, then repeated (CRITICAL: every 2 s)
            page.wait_for_function(_HORN_JS, arg=["critical", 2], timeout=20_000, polling=100)
        late = _open(browser, f"{base}/wall?scale=0.5")  # a wall opened while it sounds: sounds at once too
        try:
            late.wait_for_function(_HORN_JS, arg=["critical", 1], timeout=30_000, polling=100)
        finally:
            late.close()
        _button(desk, "Silence horn 60 s").click()
        wall.get_by_text("HORN SILENCED", exact=False).wait_for(timeout=20_000)
        for page in (wall, desk):
            page.wait_for_function("() => window.wfHorn.state === 'quiet'", timeout=20_000, polling=100)
        plays = wall.evaluate("() => window.wfHornPlays")
        (row,) = stack.journal("horn_silenced")
        assert first in row[2]["sounding"] and row[2]["rank"] == 4 and row[1] == "op1"
        stack.send(wearable_events([("T0072", "sos")], time.time()))  # a new CRITICAL during the silence
        stack.wait_alarm(second, "latched_unack")
        wall.wait_for_function(_HORN_JS, arg=["critical", plays + 1], timeout=20_000, polling=100)
        for alarm in (first, second):
            assert stack.command(op="ack", alarm=alarm, user="op1")["ok"]
        wall.wait_for_function("() => window.wfHorn.state === 'quiet'", timeout=20_000, polling=100)
        for alarm in (first, second):  # back to normal for the tests after this one
            assert stack.command(op="reset", alarm=alarm, user="op1")["ok"]
    finally:
        desk.close()
        wall.close()


def test_escalation_banner_beeps_and_the_flood_view_groups_on_workstation_and_wall(console, browser):
    stack, plant, base = console.stack, console.plant, console.base
    desk = _open(browser, f"{base}/workstation")
    wall = _open(browser, f"{base}/wall?scale=0.5")
    try:
        _login(desk, "sup1")
        plant.gas["GD07"] = 45.0  # above level 2 (40 %LEL): gas.low and gas.high
        gas = console.text(GAS)
        # its row (the escalation banner, 3 s later, repeats the text: whichever comes first will do)
        desk.get_by_role("gridcell", name=gas).wait_for(timeout=20_000)
        wall.get_by_text(gas).first.wait_for(timeout=20_000)
        for page in (desk, wall):  # the engine escalates 3 s after the alarm
            page.get_by_text("ESCALATION to Shift supervisor (step 1)").wait_for(timeout=20_000)
            page.wait_for_function(_BEEPS_JS, arg=1, timeout=20_000, polling=100)
        x, y = stack.zone_centre("Z-SUB")
        plant.place({tag: (x - 6.0 + 4.0 * k, y) for k, tag in enumerate(SUBSTATION)})
        low = ["T0091", "T0092", "T0093", "T0094", "T0095"]  # five low battery alarms: with the rest, a flood
        stack.send(wearable_events([(tag, "battery_low") for tag in low], time.time()))
        wall.get_by_text("FLOOD: grouped by area").wait_for(timeout=20_000)
        wall.get_by_text("4 \u00d7 Restricted zone").wait_for(timeout=20_000)  # the substation, one card
        wall.get_by_text("FIRST OUT").wait_for(timeout=20_000)
        desk.get_by_text("ALARM FLOOD since").wait_for(timeout=20_000)
        desk.get_by_text("4 \u00d7 Restricted zone, Substation").click()  # a group row opens when selected
        desk.get_by_text(console.text(f"zone.restricted:Z-SUB:{SUBSTATION[0]}")).wait_for(timeout=20_000)
        (flood,) = stack.command(op="snapshot")["floods"]
        assert flood["flood"] is True and flood["first_out"] is not None
    finally:
        desk.close()
        wall.close()
