"""Permits from the console, in Debian's Chromium: a real console process against the real engine
(tests/engine_stack.py). sup1 requests a grade-1 hot-work permit and records its gas test; he may not approve his
own permit (the engine's refusal is shown); sup2, opening it from the wall's link, approves it once a JSA is
attached and activates it once the watcher has signed in on the phone page (390x844); then suspends it. A
welder's expired certificate refuses an activation in the engine's own words; an operator finds Approve greyed out
and the engine refuses it anyway."""

from __future__ import annotations

import re
import time
import urllib.request

import pytest

from tests.engine_stack import DEMO_PIN, EngineStack, Plant, chromium, console_process

pytestmark = [pytest.mark.slow, pytest.mark.browser]

WATCHER_AT = (150.0, 160.0)  # 2 m east of Z-HW1 (x 132..148): the plant keeps him on a 2 m circle around it
OPEN_GROUND = [[20.0, 20.0], [30.0, 20.0], [30.0, 30.0], [20.0, 30.0]]  # away from every zone


@pytest.fixture(scope="module")
def console(demo_site, tmp_path_factory):
    folder = tmp_path_factory.mktemp("permits")
    with EngineStack(demo_site, folder) as stack, Plant(stack, walkers=30) as plant:
        plant.place({"T0187": WATCHER_AT})
        with console_process(stack, folder / "console.log") as base:
            yield stack, base


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _open(browser, url: str, **kw):
    page = browser.new_page(viewport={"width": 1920, "height": 1080}, **kw)
    page.goto(url, timeout=60_000)
    return page


def _login(page, user: str, name: str) -> None:
    page.get_by_placeholder("User id").fill(user)
    page.get_by_placeholder("Password").fill("demo")
    page.get_by_role("button", name="Log in").click()
    page.get_by_text(f"{name} ({user})").wait_for(timeout=30_000)


def _button(page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def _status(page, text: str) -> None:
    page.locator(".wf-permit-status").get_by_text(text, exact=False).wait_for(timeout=15_000)


def _journal(stack, pid: str) -> list[tuple[str, str]]:
    return [(e, actor) for e, a, actor, _ in stack.journal_rows() if a == f"permit:{pid}"]


def test_request_gas_test_jsa_approval_by_another_supervisor_phone_signin_activation_and_suspension(
        console, browser):
    from playwright.sync_api import expect

    stack, base = console
    sup1 = _open(browser, f"{base}/workstation")
    sup2 = phone = None
    try:
        _login(sup1, "sup1", "Shift supervisor")
        _button(sup1, "Permits").click()
        _button(sup1, "New permit\u2026").click()
        sup1.locator(".wf-pf-id input").fill("HW-7")
        sup1.locator(".wf-pf-grade select").select_option(label="1")
        sup1.locator(".wf-pf-fzone select").select_option(label=_zone_label(stack, "Z-HW1"))
        for tag in ("T0101", "T0102"):  # picked from the people list
            sup1.locator(".wf-pf-workers input[type=search]").fill(tag)
            sup1.locator(".wf-pf-workers .choices__item--choice", has_text=f"({tag})").click()
        sup1.locator(".wf-pf-watcher select").select_option(label=_person_label(stack, "T0187"))
        sup1.locator(".wf-pf-desc input").fill("Weld flange F-12 on the pipe bridge")
        _button(sup1, "Send").click()
        _status(sup1, "\u2714 New permit HW-7: accepted by the engine (REQUESTED)")
        _button(sup1, "Gas test\u2026").click()
        sup1.locator(".wf-pf-lel input").fill("0.5")
        sup1.locator(".wf-pf-o2 input").fill("20.9")
        _button(sup1, "Send").click()
        _status(sup1, "\u2714 Gas test HW-7: accepted by the engine (REQUESTED)")
        # the applicant may not approve: enabled for his role, refused by the engine with its reason
        expect(_button(sup1, "Approve")).to_be_enabled()
        _button(sup1, "Approve").click()
        _status(sup1, "\u2716 Approve refused by the engine: sup1 applied for permit HW-7: another person "
                      "approves it")
        sup1.locator(".wf-pd-refused").get_by_text("another person approves it", exact=False).wait_for()

        # sup2 follows the wall's link to the permit: its detail opens after the login
        sup2 = _open(browser, f"{base}/workstation?permit=HW-7")
        _login(sup2, "sup2", "Second supervisor")
        detail = sup2.locator('.wf-permit-detail .wf-pd[data-permit="HW-7"]')
        detail.wait_for(timeout=15_000)
        assert detail.locator('[data-worker="T0101"]').get_attribute("data-cert") == "ok"
        assert "LEL 0.5, O2 20.9" in detail.locator("[data-gas-age-s]").inner_text()
        _button(sup2, "Approve").click()
        _status(sup2, "\u2716 Approve refused by the engine: hot_work grade 1 needs a job safety analysis (JSA) "
                      "before approval")
        _button(sup2, "JSA\u2026").click()
        sup2.locator(".wf-pf-hazards textarea").fill("flammable vapour from the drain\nsparks")
        sup2.locator(".wf-pf-measures textarea").fill("drain covered\nfire blanket and extinguisher")
        sup2.locator(".wf-pf-prepared input").fill("sup1")
        sup2.locator(".wf-pf-reviewed input").fill("sup2")
        _button(sup2, "Send").click()
        _status(sup2, "\u2714 JSA HW-7: accepted by the engine (REQUESTED)")
        _button(sup2, "Approve").click()
        _status(sup2, "\u2714 Approve HW-7: accepted by the engine (APPROVED)")
        _button(sup2, "Activate").click()  # the watcher is at the work but has not signed in
        _status(sup2, "\u2716 Activate refused by the engine: watcher T0187 has not signed in at the work "
                      "(the permit's QR code)")
        qr = sup2.locator(".wf-pd-qr[data-signin-url]")
        url = qr.get_attribute("data-signin-url")
        assert url == f"{base}/signin/HW-7" and qr.locator("svg").count() == 1

        # the watcher scans the code: the phone page, at a phone's size
        phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        phone.goto(url, timeout=60_000)
        phone.locator('.wf-si-permit[data-permit="HW-7"]').wait_for(timeout=15_000)
        phone.locator(".wf-si-user input").fill("P0186")  # someone else's phone first: refused
        phone.locator(".wf-si-pin input").fill(DEMO_PIN)
        phone.locator(".wf-si-submit button").click()
        phone.get_by_text("Refused by the engine: P0186 (tag T0186) is not the watcher of permit HW-7 (the "
                          "watcher is T0187)").wait_for(timeout=15_000)
        phone.locator(".wf-si-user input").fill("P0187")
        phone.locator(".wf-si-pin input").fill(DEMO_PIN)
        phone.locator(".wf-si-submit button").click()
        ok = phone.get_by_text(re.compile(r"Signed in as the watcher of HW-7, \d+ m from the work"))
        ok.wait_for(timeout=15_000)
        metres = int(re.search(r"(\d+) m from", ok.inner_text()).group(1))
        assert 0 <= metres <= 4  # 2 m from the edge, on a 2 m circle
        box = phone.locator(".wf-si-submit").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # the form fits the phone's width

        _button(sup2, "Activate").click()
        _status(sup2, "\u2714 Activate HW-7: accepted by the engine (ACTIVE)")
        sup2.locator(".wf-permit-reason input").fill("Wind over 10 m/s")
        _button(sup2, "Suspend").click()
        _status(sup2, "\u2714 Suspend HW-7: accepted by the engine (SUSPENDED)")
    finally:
        for p in (sup1, sup2, phone):
            if p is not None:
                p.close()
    assert _journal(stack, "HW-7") == [
        ("permit_request", "sup1"), ("permit_gas_test", "sup1"), ("refused", "sup1"), ("refused", "sup2"),
        ("permit_jsa", "sup2"), ("permit_approve", "sup2"), ("refused", "sup2"), ("refused", "P0186"),
        ("permit_signin", "P0187"), ("permit_activate", "sup2"), ("permit_suspend", "sup2")]
    rows = {e: d for e, a, _, d in stack.journal_rows() if a == "permit:HW-7" and e != "refused"}
    assert rows["permit_request"]["workers"] == ["T0101", "T0102"] and rows["permit_request"]["watcher"] == "T0187"
    assert rows["permit_gas_test"]["values"] == {"LEL": 0.5, "O2": 20.9}
    assert rows["permit_jsa"]["jsa"]["hazards"] == ["flammable vapour from the drain", "sparks"]
    assert rows["permit_signin"]["tag"] == "T0187" and round(rows["permit_signin"]["distance_m"]) == metres
    assert rows["permit_suspend"] == {"reason": "Wind over 10 m/s"}
    # the printable card points at the same page
    card = urllib.request.urlopen(f"{base}/qr/HW-7", timeout=10).read().decode()
    assert "<svg" in card and f"{base}/signin/HW-7" in card


def test_an_expired_certificate_refuses_activation_in_the_engines_words(console, browser):
    stack, base = console
    now = time.time()
    for user, step in (("op1", {"op": "permit_request", "type": "hot_work", "grade": "2", "polygon": OPEN_GROUND,
                                "workers": ["T0042"], "watcher": "T0188", "valid_from_s": now - 60,
                                "valid_to_s": now + 3600}),
                       ("op1", {"op": "permit_gas_test", "values": {"LEL": 0.0, "O2": 20.9}}),
                       ("sup1", {"op": "permit_approve"})):
        assert stack.command(user=user, permit="HW-8", **step)["ok"], step
    page = _open(browser, f"{base}/workstation?permit=HW-8")
    try:
        _login(page, "sup2", "Second supervisor")
        detail = page.locator('.wf-pd[data-permit="HW-8"]')
        detail.wait_for(timeout=15_000)
        assert detail.locator('[data-worker="T0042"]').get_attribute("data-cert") == "expired"
        reason = "T0042 (Zhang Hui): certificate expired on 2026-10-31 for hot_work"
        check = detail.locator('[data-check="certificates"]')  # said before anyone acts...
        assert check.get_attribute("data-ok") == "false" and reason in check.inner_text()
        _button(page, "Activate").click()  # ... and when someone does
        _status(page, f"\u2716 Activate refused by the engine: {reason}")
    finally:
        page.close()
    assert stack.alarms()["permit.certificate:HW-8:T0042"]["priority"] == "high"


def test_an_operator_finds_approve_greyed_out_and_the_engine_refuses_it_anyway(console, browser):
    from playwright.sync_api import expect

    stack, base = console
    now = time.time()
    assert stack.command(op="permit_request", user="sup1", permit="WH-9", type="working_at_height", grade="I",
                         polygon=OPEN_GROUND, workers=["T0044"], valid_from_s=now - 60, valid_to_s=now + 3600)["ok"]
    page = _open(browser, f"{base}/workstation")
    try:
        _login(page, "op1", "Operator 1")
        _button(page, "Permits").click()
        page.locator(".wf-permit-list").get_by_text("WH-9", exact=True).click()
        page.locator('.wf-pd[data-permit="WH-9"]').wait_for(timeout=15_000)
        for name in ("Approve", "Activate", "Resume", "Close"):
            expect(_button(page, name)).to_be_disabled()
        for name in ("New permit\u2026", "Gas test\u2026", "Suspend", "Cancel permit"):
            expect(_button(page, name)).to_be_enabled()
    finally:
        page.close()
    reply = stack.command(op="permit_approve", user="op1", permit="WH-9")
    assert (reply["ok"], reply["reason"]) == (False, "role operator may not approve permits")


def _zone_label(stack, zone: str) -> str:
    z = next(z for z in stack.site.zones if z.id == zone)
    return f"{z.name.en} ({z.id})"


def _person_label(stack, tag: str) -> str:
    p = next(p for p in stack.site.people if p.tag == tag)
    return f"{p.name} {p.name_zh} ({p.tag})"
