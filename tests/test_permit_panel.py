"""The workstation's permit tab with no server: what each role may press, the forms' own errors (a bad time or
number never reaches the engine), the commands it sends with the person's token, the engine's refusal shown as
it is, the list's filters and a permit's detail (certificates, checks, QR code), every text escaped."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from types import MappingProxyType

import pytest

from console.auth import Credential, LoggedIn
from console.link import AlarmTable, Frame, LinkCounters, LinkSnapshot
from console.web.theme import Theme
from console.web.tiles import TileContext
from console.web.workstation.permit_detail import detail_html, permit_rows
from console.web.workstation.permit_panel import PermitPanel
from ingest.protocol.records import PermitBoard, PermitInfo

T0 = 1795309200.0  # 2026-11-22 09:00 Asia/Shanghai (the demo site's zone) = 01:00 UTC
SUP = LoggedIn("sup1", "Shift supervisor", "supervisor")


def _permit(**kw) -> dict:
    rec = {"id": "HW-7", "type": "hot_work", "type_name": {"en": "Hot work", "zh-CN": "动火作业"}, "grade": "1",
           "zone": "Z-HW1", "polygon": [], "workers": ["T0101", "T0042"], "watcher": "T0187",
           "valid_from_s": T0 - 60, "valid_to_s": T0 + 3600, "state": "requested", "board": "green",
           "applicant": "sup1", "approver": None, "reason": "", "description": "weld <flange>"}
    return {**rec, **kw}


def _snap(*records: dict) -> LinkSnapshot:
    status = Frame("engine.status", MappingProxyType({}), MappingProxyType({"engine_ts_s": T0}), T0, 0.0, 1)
    board = PermitBoard(tuple(PermitInfo.from_json(r) for r in records), T0, 1)
    return LinkSnapshot(positions=None, sensors=None, status=status,
                        alarms=AlarmTable(seq=1, version=1, synced=True, alarms=MappingProxyType({})),
                        counters=LinkCounters(), state="ok", last_frame_age_s=0.1, permits=board)


class FakeLink:
    """Answers every command with ``reply`` (its id copied) and keeps what was sent."""

    def __init__(self, reply: dict) -> None:
        self.reply, self.sent = reply, []

    def submit(self, request: dict) -> concurrent.futures.Future:
        self.sent.append(request)
        fut: concurrent.futures.Future = concurrent.futures.Future()
        fut.set_result({"token": "fresh", **self.reply})
        return fut


@pytest.fixture
def panel(demo_site):
    def make(role: str = "supervisor", reply: dict | None = None) -> PermitPanel:
        link = FakeLink(reply or {"ok": True, "permit": "HW-7", "state": "approved"})
        p = PermitPanel(demo_site, link, TileContext(site=demo_site, lang="en", theme=Theme(scale=0.5)),
                        signin_base="http://console:5006")
        p.set_user(Credential(LoggedIn("u1", "U", role), "t0", "s1", 900.0))
        p.update(_snap(_permit()))
        return p

    return make


def test_each_role_finds_only_what_it_may_do_enabled(panel):
    every = {"permit_request", "permit_gas_test", "permit_jsa", "permit_approve", "permit_activate", "permit_suspend",
             "permit_resume", "permit_close", "permit_cancel"}
    assert panel("supervisor").enabled() == every
    assert panel("operator").enabled() == {"permit_request", "permit_gas_test", "permit_jsa", "permit_suspend",
                                           "permit_cancel"}
    assert panel("safety_manager").enabled() == {"permit_request", "permit_jsa", "permit_approve", "permit_suspend",
                                                 "permit_cancel"}
    p = panel("operator")
    assert p.buttons["permit_approve"].disabled and not p.buttons["permit_suspend"].disabled
    p.set_user(None)
    assert p.enabled() == frozenset() and all(b.disabled for b in p.buttons.values())


def test_the_request_form_sends_site_times_and_refuses_a_time_it_cannot_read(panel):
    p = panel()
    p.open_form("permit_request")
    assert p.f_id.value == "HW-10"  # a free id for the type
    p.f_grade.value = "1"
    p.f_zone.value = "Z-HW1"
    p.f_workers.value = ["T0101", "T0102"]
    p.f_watcher.value = "T0187"
    p.f_from.value, p.f_to.value = "2026-11-22 09:00", "2026-11-22 17:30"
    req = p.form_request()
    assert req == {"op": "permit_request", "permit": "HW-10", "type": "hot_work", "grade": "1", "zone": "Z-HW1",
                   "workers": ["T0101", "T0102"], "watcher": "T0187",
                   "valid_from_s": T0, "valid_to_s": T0 + 8.5 * 3600}  # site time, Asia/Shanghai
    p.f_to.value = "17:30 tomorrow"
    asyncio.run(p.send_form())
    assert p.link.sent == []  # never sent
    assert "\u2716 New permit: Valid to: write a time as YYYY-MM-DD HH:MM" in p.status_line.object


def test_a_gas_test_takes_numbers_only_and_a_decimal_comma(panel):
    p = panel()
    p.select("HW-7")
    p.open_form("permit_gas_test")
    p.g_values["LEL"].value, p.g_values["O2"].value = "1,5", "20.9"
    assert p.form_request() == {"op": "permit_gas_test", "permit": "HW-7", "values": {"LEL": 1.5, "O2": 20.9}}
    p.g_values["O2"].value = "twenty"
    asyncio.run(p.send_form())
    assert p.link.sent == [] and "O\u2082: write a number" in p.status_line.object


def test_an_action_carries_the_token_and_the_engines_refusal_is_shown_as_it_is(panel):
    reason = "sup1 applied for permit HW-7: another person approves it"
    p = panel("supervisor", {"ok": False, "reason": reason})
    asyncio.run(p.act("permit_approve"))  # nothing selected: not sent
    assert p.link.sent == [] and "select a permit first" in p.status_line.object
    p.select("HW-7")
    reply = asyncio.run(p.act("permit_approve"))
    assert p.link.sent == [{"op": "permit_approve", "permit": "HW-7", "user": "u1", "token": "t0"}]
    assert reply["ok"] is False and p.credential.token == "fresh"
    assert f"\u2716 Approve refused by the engine: {reason}" in p.status_line.object
    p.reason.value = "wind"
    asyncio.run(p.act("permit_suspend"))
    assert p.link.sent[-1] == {"op": "permit_suspend", "permit": "HW-7", "reason": "wind", "user": "u1",
                               "token": "fresh"}


def test_the_list_filters_by_state_type_and_zone(demo_site):
    board = _snap(_permit(), _permit(id="CS-1", type="confined_space", grade=None, zone="Z-V205", state="active"),
                  _permit(id="WH-3", type="working_at_height", grade="II", state="cancelled")).permits
    tz = TileContext(site=demo_site, lang="en", theme=Theme()).tz

    def ids(**f):
        return permit_rows(demo_site, board, T0, "en", tz, **f)["id"]

    assert ids() == ["HW-7", "CS-1", "WH-3"]
    assert ids(state="active") == ["CS-1"] and ids(ptype="working_at_height") == ["WH-3"]
    assert ids(zone="Z-HW1") == ["HW-7", "WH-3"] and ids(state="closed") == []
    assert permit_rows(demo_site, board, T0, "zh-CN", tz)["state"] == ["已申请", "作业中", "已取消"]


def test_the_detail_shows_certificates_checks_and_the_signin_code_escaped(demo_site):
    rec = _permit(checks=[{"check": "certificates", "ok": False,
                           "reason": "T0042 (Zhang Hui): certificate expired on 2026-10-31 for hot_work"}],
                  gas_test={"values": {"LEL": 0.5, "O2": 20.9}, "ts_s": T0 - 600, "by": "sup1"},
                  last_refusal={"ts_s": T0, "op": "permit_approve", "actor": "sup1", "reason": "<b>no</b>"},
                  jsa_required=True,
                  certificates=[{"tag": "T0101", "type": "hot_work", "expires": "2027-09-30", "status": "ok"},
                                {"tag": "T0042", "type": "hot_work", "expires": "2026-10-31", "status": "expired"}])
    p = PermitInfo.from_json(rec)
    tz = TileContext(site=demo_site, lang="en", theme=Theme()).tz
    text = detail_html(demo_site, p, T0, "en", tz, signin_url="http://console:5006/signin/HW-7")
    assert 'data-worker="T0101" data-cert="ok"' in text and "valid until 2027-09-30" in text  # Li Jie
    assert 'data-worker="T0042" data-cert="expired"' in text and "EXPIRED on 2026-10-31" in text
    assert 'data-check="certificates" data-ok="false"' in text
    assert 'data-gas-age-s="600"' in text and "10 min ago" in text
    assert 'data-jsa="none"' in text and "required before approval" in text
    assert "&lt;b&gt;no&lt;/b&gt;" in text and "<b>no</b>" not in text and "weld &lt;flange&gt;" in text
    assert re.search(r'data-signin-url="http://console:5006/signin/HW-7"><svg', text)
    over = PermitInfo.from_json(_permit(state="closed", board="grey"))
    assert "<svg" not in detail_html(demo_site, over, T0, "en", tz, signin_url="http://x/y")


def test_the_walls_permit_board_links_each_permit_to_its_detail_at_the_workstation(demo_site):
    from console.web.tiles.permit_board import PermitBoardTile

    tz = TileContext(site=demo_site, lang="en", theme=Theme()).tz
    cols = PermitBoardTile.columns(demo_site, _snap(_permit(id="HW 7&x")).permits, T0, "zh-CN", tz)
    body = PermitBoardTile.rows_html(cols, True, "zh-CN")
    assert 'href="/workstation?permit=HW+7%26x&amp;lang=zh-CN"' in body  # quoted in the URL, escaped in HTML


class _Replies(FakeLink):
    """A login answer first, then the sign-in's."""

    def __init__(self, *replies: dict) -> None:
        super().__init__({})
        self.replies = list(replies)

    def submit(self, request: dict) -> concurrent.futures.Future:
        self.reply = self.replies.pop(0) if self.replies else {"ok": True}
        return super().submit(request)


def test_the_phone_page_logs_in_with_a_pin_signs_in_and_logs_out(demo_site):
    from console.web.signin import SignInPage

    bad = SignInPage(demo_site, _Replies(), "HW-7;drop")
    assert bad.permit is None and "not a permit id" in bad.info.object and asyncio.run(bad.submit("P0187", "1")) is None
    wrong = SignInPage(demo_site, _Replies({"ok": False, "reason": "wrong user id or PIN"}), "HW-7")
    assert asyncio.run(wrong.submit("P0187", "9999")) is None
    assert "Login refused: wrong user id or PIN" in wrong.message.object
    assert wrong.link.sent == [{"op": "login", "user": "P0187", "pin": "9999", "console": "phone",
                                "address": "unknown"}]
    login = {"ok": True, "token": "tk", "user": "P0187", "name": "P", "role": "field_worker", "session": "s"}
    page = SignInPage(demo_site, _Replies(login, {"ok": True, "permit": "HW-7", "state": "approved",
                                                  "distance_m": 2.6}), "HW-7")
    page.update(_snap(_permit()))
    assert "Huang Ming (T0187)" in page.info.object
    reply = asyncio.run(page.submit("P0187", "1234"))
    assert reply["ok"] and "Signed in as the watcher of HW-7, 3 m from the work" in page.message.object
    assert [r["op"] for r in page.link.sent] == ["login", "permit_signin", "logout"]
    assert page.link.sent[1] == {"op": "permit_signin", "permit": "HW-7", "user": "P0187", "token": "tk"}
    assert page.link.sent[2]["token"] == "fresh"  # the sign-in's reply renewed it


def test_the_detail_shows_the_engines_own_jsa_and_certificate_verdicts(demo_site, tmp_path):
    """The console judges nothing itself: a site that lists hot work twice in ``jsa_required`` (special, then 1)
    needs a JSA for both grades, and a certificate's status is the engine's on the site's date, its edges
    included (valid today or within 7 days: expiring; 8 days: ok; yesterday: expired)."""
    from datetime import date

    from config.schema import Certificate, JsaRequirement
    from tests.test_permits import Rig

    def cert(d: date) -> list[Certificate]:
        return [Certificate(type="hot_work", expires=d)]

    certs = {"T0101": cert(date(2026, 11, 30)), "T0102": cert(date(2026, 11, 29)), "T0103": cert(date(2026, 11, 22)),
             "T0042": cert(date(2026, 11, 21)), "T0104": []}
    rules = [JsaRequirement(type="hot_work", grades=["special"]), JsaRequirement(type="hot_work", grades=["1"])]
    site = demo_site.model_copy(update={
        "people": [p.model_copy(update={"certificates": certs[p.tag]}) if p.tag in certs else p
                   for p in demo_site.people],
        "permit_settings": demo_site.permit_settings.model_copy(update={"jsa_required": rules})})
    rig = Rig(site, tmp_path / "journal.sqlite")
    rig.tick(T0)
    for pid, grade in (("HW-S", "special"), ("HW-1", "1"), ("HW-2", "2")):
        assert rig.request(pid, grade=grade, workers=tuple(certs), jsa=None, hours=1)["ok"]
    board = {r["id"]: r for r in rig.engine.permits.board(T0)}
    assert {pid: r["jsa_required"] for pid, r in board.items()} == {"HW-S": True, "HW-1": True, "HW-2": False}
    assert board["HW-S"]["certificates"] == [
        {"tag": "T0101", "type": "hot_work", "expires": "2026-11-30", "status": "ok"},
        {"tag": "T0102", "type": "hot_work", "expires": "2026-11-29", "status": "expiring"},
        {"tag": "T0103", "type": "hot_work", "expires": "2026-11-22", "status": "expiring"},
        {"tag": "T0042", "type": "hot_work", "expires": "2026-11-21", "status": "expired"},
        {"tag": "T0104", "type": "hot_work", "expires": None, "status": "missing"}]
    rig.journal.close()

    panel = PermitPanel(site, FakeLink({"ok": True}), TileContext(site=site, lang="en", theme=Theme(scale=0.5)))
    panel.set_user(Credential(SUP, "t0", "s1", 900.0))
    panel.update(_snap(*rig.engine.permits.board(T0)))
    panel.select("HW-S")
    text = panel.detail.object
    assert 'data-jsa="none"' in text and "required before approval; none attached" in text
    assert [m.groups() for m in re.finditer(r'data-worker="(\w+)" data-cert="(\w+)"', text)] == [
        ("T0101", "ok"), ("T0102", "expiring"), ("T0103", "expiring"), ("T0042", "expired"), ("T0104", "missing")]
    assert "expires 2026-11-29 (in 7 d)" in text and "expires 2026-11-22 (in 0 d)" in text
    assert "EXPIRED on 2026-11-21" in text and "NO certificate" in text
    panel.select("HW-2")
    assert "not required for this work; none attached" in panel.detail.object


def test_the_permit_list_says_how_many_permits_the_engine_left_off_its_full_board(panel):
    p = panel()
    assert not p.omitted_line.visible
    p.update(_snap(_permit(omitted=105), _permit(id="HW-8", omitted=105)))
    assert p.omitted_line.visible and "+105 more not shown: the engine&#x27;s board is full" in p.omitted_line.object
    p.update(_snap(_permit()))
    assert not p.omitted_line.visible and p.omitted_line.object == ""


def test_the_walls_permit_board_counts_the_permits_the_engine_left_off_in_its_more(demo_site):
    from console.web.tiles.permit_board import PermitBoardTile

    tile = PermitBoardTile(TileContext(site=demo_site, lang="en", theme=Theme()))
    tile.update(_snap(_permit(omitted=7), _permit(id="HW-8", omitted=7)))
    assert tile.source.data["id"] == ["HW-7", "HW-8"]  # both cards fit: the 7 left off are the "+7 more"
    assert 'data-base="7"' in tile.header.text and "+7 more" in tile.header.text
    tile.update(_snap(_permit(), _permit(id="HW-8")))
    assert 'data-base="0"' in tile.header.text
