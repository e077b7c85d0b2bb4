"""The workstation's decisions without a server: buttons by role and state, shelve choices, commands, the flood
grouping, escalation banners, logins, and the page object driven by hand."""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from alarms.lifecycle import ROLE_ACTIONS as ENGINE_ROLE_ACTIONS  # the name the engine checks with
from console.link import AlarmTable, LinkCounters, LinkSnapshot
from console.web.actions import (
    ACTIONS,
    ROLE_ACTIONS,
    command_for,
    enabled_actions,
    format_duration,
    shelve_choices,
)
from console.web.banners import EscalationBanner, banner_html, banner_notifications
from console.web.flood import flood_view, is_safety_alarm
from console.web.theme import Theme
from console.web.tiles import AlarmList
from console.web.workstation import GROUP_PREFIX, Workstation, alarm_rows, off_list_rows
from ingest.protocol.records import AlarmRecord, FloodState, Notification
from tests.records import EPOCH_S, alarm_record

UTC = ZoneInfo("UTC")
DEMO_MAX_SHELVE_S = {"critical": 3600.0, "high": 14400.0, "medium": 28800.0, "low": 43200.0}


def rec(n: int, **kw) -> AlarmRecord:
    return AlarmRecord.from_json(alarm_record(n, **kw))


def table(*records: AlarmRecord, version: int = 1) -> dict[str, AlarmRecord]:
    return {r.id: r for r in records}


def snapshot(alarms: dict[str, AlarmRecord], *, version: int = 1, notes=(), flood=None, engine_ts_s=None):
    floods = MappingProxyType({} if flood is None else {flood.position: flood})
    return LinkSnapshot(
        positions=None,
        sensors=None,
        status=None,
        alarms=AlarmTable(seq=version, version=version, synced=True, alarms=MappingProxyType(alarms)),
        counters=LinkCounters(),
        state="ok",
        last_frame_age_s=0.1,
        notifications=tuple(notes),
        floods=floods,
    )


# -- roles and states -------------------------------------------------------------------------------------------
def test_the_console_and_the_engine_check_one_role_table():
    assert ROLE_ACTIONS is ENGINE_ROLE_ACTIONS  # one table, in ingest.protocol.names: nothing to drift apart
    assert set(ACTIONS) == set().union(*ROLE_ACTIONS.values())


OP = {"acknowledge", "comment"}


@pytest.mark.parametrize(
    ("role", "state", "enabled"),
    [
        ("operator", "active_unack", {"acknowledge", "comment"}),
        ("operator", "rtn_unack", {"acknowledge", "comment"}),
        ("operator", "latched_unack", {"acknowledge", "comment"}),  # acknowledge first, then reset
        ("operator", "latched_ack", {"reset", "comment"}),
        ("operator", "active_ack", {"comment"}),
        ("operator", "shelved", {"comment"}),
        ("supervisor", "active_unack", {"acknowledge", "shelve", "remove_from_service", "comment"}),
        ("supervisor", "latched_ack", {"reset", "shelve", "remove_from_service", "comment"}),
        ("supervisor", "shelved", {"unshelve", "remove_from_service", "comment"}),
        ("supervisor", "out_of_service", {"return_to_service", "comment"}),
        ("supervisor", "suppressed", {"shelve", "remove_from_service", "comment"}),  # nothing to acknowledge
        ("admin", "out_of_service", {"return_to_service", "comment"}),
        ("safety_manager", "active_unack", {"comment"}),
        ("visitor", "active_unack", set()),  # a role the engine does not know may do nothing
    ],
)
def test_buttons_enabled_follow_role_and_alarm_state(role, state, enabled):
    r = rec(1, state=state)
    assert enabled_actions(role, r, DEMO_MAX_SHELVE_S) == enabled


def test_nothing_is_enabled_without_a_user_or_a_selection():
    assert enabled_actions(None, rec(1), DEMO_MAX_SHELVE_S) == frozenset()
    assert enabled_actions("supervisor", None, DEMO_MAX_SHELVE_S) == frozenset()


def test_acknowledge_follows_the_records_acked_flag_when_sent():
    raw = {
        **alarm_record(1, state="active_unack"),
        "acked": True,
    }  # the engine's flag wins over the state name
    assert "acknowledge" not in enabled_actions("operator", AlarmRecord.from_json(raw), DEMO_MAX_SHELVE_S)


def test_shelve_is_disabled_for_a_priority_that_may_not_be_shelved():
    r = rec(1, priority="critical")
    assert "shelve" not in enabled_actions("supervisor", r, {**DEMO_MAX_SHELVE_S, "critical": 0.0})


# -- shelve durations ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("priority", "limits", "choices"),
    [
        ("critical", DEMO_MAX_SHELVE_S, [900, 1800, 3600]),  # at most 1 h
        ("high", DEMO_MAX_SHELVE_S, [900, 1800, 3600, 7200, 14400]),  # 4 h
        ("medium", DEMO_MAX_SHELVE_S, [900, 1800, 3600, 7200, 14400, 28800]),  # 8 h
        ("low", DEMO_MAX_SHELVE_S, [900, 1800, 3600, 7200, 14400, 28800, 43200]),  # 12 h
        ("high", {"high": 5400.0}, [900, 1800, 3600, 5400]),  # a maximum between steps is offered too
        ("high", {"high": 600.0}, [600]),  # shorter than every step: only the maximum
        ("high", {"high": 0.0}, []),
        ("high", {}, []),
    ],
)
def test_shelve_choices_stop_at_the_priority_maximum(priority, limits, choices):
    assert shelve_choices(priority, limits) == choices


def test_demo_site_shelve_limits_are_the_ones_tested(demo_site):
    assert dict(demo_site.max_shelve_s) == DEMO_MAX_SHELVE_S


@pytest.mark.parametrize(
    ("seconds", "lang", "text"),
    [
        (900, "en", "15 min"),
        (3600, "en", "1 h"),
        (5400, "en", "1 h 30 min"),
        (45, "en", "45 s"),
        (7200, "zh-CN", "2小时"),
        (math.nan, "en", "---"),
    ],
)
def test_durations_read_in_hours_and_minutes(seconds, lang, text):
    assert format_duration(seconds, lang) == text


def test_commands_carry_what_the_engine_reads():
    assert command_for("acknowledge", "a1", "op1", text="seen") == {
        "op": "ack",
        "alarm": "a1",
        "user": "op1",
        "comment": "seen",
    }
    assert command_for("shelve", "a1", "sup1", text="permit", duration_s=3600) == {
        "op": "shelve",
        "alarm": "a1",
        "user": "sup1",
        "reason": "permit",
        "duration_s": 3600.0,
    }
    assert command_for("remove_from_service", "a1", "sup1", text="sensor swap") == {
        "op": "remove_from_service",
        "alarm": "a1",
        "user": "sup1",
        "reason": "sensor swap",
    }
    assert command_for("return_to_service", "a1", "sup1") == {
        "op": "return_to_service",
        "alarm": "a1",
        "user": "sup1",
    }
    with pytest.raises(ValueError, match="duration"):
        command_for("shelve", "a1", "sup1", text="x")
    with pytest.raises(ValueError, match="unknown action"):
        command_for("ack_all", "a1", "op1")


# -- flood grouping -----------------------------------------------------------------------------------------------
def _flood_alarms() -> dict[str, AlarmRecord]:
    return table(
        rec(1, priority="high", zone="Z-U200", ts_s=EPOCH_S + 10),
        rec(2, priority="medium", zone="Z-U200", ts_s=EPOCH_S + 30),
        rec(3, priority="medium", zone="Z-U200", ts_s=EPOCH_S + 20, state="active_ack"),
        rec(4, priority="low", zone="Z-TF", ts_s=EPOCH_S + 40),
        rec(5, priority="low", zone="Z-TF", ts_s=EPOCH_S + 5),
        rec(6, priority="high", zone="Z-U200", ts_s=EPOCH_S + 50, state="shelved"),  # off the list
        rec(7, priority="critical", zone="Z-T3", condition="person.man_down", ts_s=EPOCH_S + 15),
        rec(8, priority="critical", zone="Z-TF", condition="person.sos", ts_s=EPOCH_S + 25),
        rec(9, priority="high", zone="Z-U100", condition="gas.high", ts_s=EPOCH_S + 1),
        rec(10, priority="medium", zone="Z-U100", condition="gas.high", ts_s=EPOCH_S + 2),
        rec(11, priority="critical", zone=None, ts_s=EPOCH_S + 3),  # no area at all
    )


def test_flood_view_pins_first_out_keeps_safety_alarms_on_top_and_counts_groups():
    alarms = _flood_alarms()
    first = rec(9, zone="Z-U100", condition="gas.high").id
    view = flood_view(alarms, FloodState("main", True, EPOCH_S, first, 25))
    assert view.first_out is not None and view.first_out.id == first
    # man-down, SOS and the other gas alarm stay single, most important first (critical newest first)
    assert [r.source for r in view.safety] == ["T0008", "T0007", "T0010"]
    groups = [(g.area, g.condition, g.count, g.unacknowledged, g.priority) for g in view.groups]
    assert groups == [
        ("", "zone.restricted", 1, 1, "critical"),
        ("Z-U200", "zone.restricted", 3, 2, "high"),  # the shelved one is not on the list
        ("Z-TF", "zone.restricted", 2, 2, "low"),
    ]
    assert view.groups[1].newest_ts_s == EPOCH_S + 30
    on_list = sum(1 for r in alarms.values() if r.on_list)
    assert view.count == on_list == 10  # every alarm on the list exactly once


def test_flood_view_without_flood_or_with_first_out_off_the_list_pins_nothing():
    alarms = _flood_alarms()
    assert flood_view(alarms, None).first_out is None
    shelved = rec(6, priority="high", zone="Z-U200", state="shelved").id
    view = flood_view(alarms, FloodState("main", True, EPOCH_S, shelved, 25))
    assert view.first_out is None and view.count == 10


def test_safety_alarms_are_man_down_sos_and_gas():
    assert [
        is_safety_alarm(rec(1, condition=c))
        for c in ("person.man_down", "person.sos", "gas.high", "gas.low", "zone.restricted", "person.watcher")
    ] == [True, True, True, True, False, False]


def test_workstation_rows_keep_the_wall_order_and_expand_a_group_in_a_flood():
    alarms = _flood_alarms()
    cols = alarm_rows(alarms, "en", UTC, {"Z-U200": "Unit 200"})
    assert cols["key"] == AlarmList.columns(alarms, "en", UTC)["id"]  # the same order as the wall list
    flood = FloodState("main", True, EPOCH_S, None, 25)
    folded = alarm_rows(alarms, "en", UTC, {"Z-U200": "Unit 200"}, flood=flood)
    group = GROUP_PREFIX + "Z-U200|zone.restricted"
    assert group in folded["key"] and not any(k.startswith("zone.restricted:Z-U200") for k in folded["key"])
    i = folded["key"].index(group)
    assert "3 \u00d7 Restricted zone, Unit 200" in folded["message"][i]
    assert rec(11, zone=None).id in folded["key"]  # a group of one alarm shows as that alarm
    opened = alarm_rows(alarms, "en", UTC, {}, flood=flood, expanded={group})
    j = opened["key"].index(group)
    assert [k.split(":")[-1] for k in opened["key"][j + 1 : j + 4]] == ["T0001", "T0002", "T0003"]


def test_off_list_rows_say_who_why_and_how_long():
    now = EPOCH_S + 100
    shelved = {
        **alarm_record(1, state="shelved"),
        "shelved": {"until_ts_s": now + 5400, "by": "sup1", "reason": "permit renewal"},
    }
    sooner = {
        **alarm_record(2, state="shelved"),
        "shelved": {"until_ts_s": now + 600, "by": "sup1", "reason": "x"},
    }
    oos = {
        **alarm_record(3, state="out_of_service"),
        "out_of_service": {"by": "sup1", "reason": "sensor swap"},
    }
    alarms = {r["id"]: AlarmRecord.from_json(r) for r in (shelved, sooner, oos)} | table(rec(4))
    cols = off_list_rows(alarms, "en", UTC, now)
    assert [k.split(":")[-1] for k in cols["key"]] == ["T0002", "T0001", "T0003"]  # soonest back first
    # 2025-11-22 08:00:00 UTC + 100 s + 5400 s = 09:31:40, 1 h 30 min from now
    assert cols["until"][1] == "09:31:40 (in 1 h 30 min)"
    assert (cols["by"][2], cols["reason"][2], cols["state"][2]) == ("sup1", "sensor swap", "OUT OF SERVICE")


# -- escalation banners -------------------------------------------------------------------------------------------
def _note(number: int, alarm: AlarmRecord, role: str, step: int = 1) -> Notification:
    return Notification(number, alarm.id, role, step, alarm.priority, EPOCH_S + number, alarm.message)


def test_banner_shows_the_latest_escalation_per_alarm_for_the_role_while_unacknowledged():
    a, b, c = rec(1), rec(2), rec(3, state="active_ack")
    notes = [
        _note(1, a, "supervisor"),
        _note(2, a, "safety_manager", 2),
        _note(3, b, "supervisor"),
        _note(4, c, "supervisor"),
        Notification(5, "gone", "supervisor", 1, "high", EPOCH_S, {}),
    ]
    alarms = table(a, b, c)
    assert [n.number for n in banner_notifications(notes, alarms, "supervisor")] == [3, 1]
    assert [n.number for n in banner_notifications(notes, alarms, None)] == [3, 2]  # the wall: every role
    assert banner_notifications(notes, alarms, "operator") == []
    text = banner_html(banner_notifications(notes, alarms, None), alarms, "en", UTC)
    assert (
        "ESCALATION to Safety manager (step 2)" in text and "ESCALATION to Shift supervisor (step 1)" in text
    )
    zh = banner_html(banner_notifications(notes, alarms, None), alarms, "zh-CN", UTC)
    assert "报警升级至安全经理（第 2 级）" in zh


def test_banner_beeps_once_per_new_escalation_and_not_for_older_ones():
    a, b = rec(1), rec(2)
    alarms = table(a, b)
    banner = EscalationBanner(Theme(0.5), "en", UTC)
    banner.update(snapshot(alarms, notes=[_note(1, a, "supervisor")]), "supervisor")
    assert banner.root.visible and banner.beeps == 0  # it was there before the session: shown, no beep
    banner.update(
        snapshot(alarms, notes=[_note(1, a, "supervisor"), _note(2, b, "supervisor")]), "supervisor"
    )
    assert banner.beeps == 1 and banner.source.data["count"] == [1]
    banner.update(
        snapshot(alarms, notes=[_note(1, a, "supervisor"), _note(2, b, "supervisor")]), "supervisor"
    )
    assert banner.beeps == 1
    acked = table(rec(1, state="active_ack"), rec(2, state="active_ack"))
    banner.update(snapshot(acked, notes=[_note(1, a, "supervisor"), _note(2, b, "supervisor")]), "supervisor")
    assert not banner.root.visible and banner.root.text == ""


# -- login (the engine checks passwords: tests/test_access.py drives the real one) -----------------------------------
# -- the page object, driven by hand ------------------------------------------------------------------------------
class Link:
    """Stands in for EngineLink in tests of the page's own logic (buttons, texts): a snapshot, a login answer
    (password "demo", the roles of the site's users; the real engine's logins: tests/test_access.py) and a reply
    to every other submitted command, which it keeps in ``sent``."""

    def __init__(self, snap: LinkSnapshot, reply: dict, site=None) -> None:
        self.snap, self.reply, self.sent = snap, reply, []
        self.roles = {u.id: (u.name, u.role) for u in site.users} if site is not None else {}

    def snapshot(self) -> LinkSnapshot:
        return self.snap

    def submit(self, request: dict) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if request.get("op") == "login":
            user = request["user"]
            if request.get("password") == "demo" and user in self.roles:
                name, role = self.roles[user]
                fut.set_result({"id": "x", "ok": True, "token": f"t-{user}", "user": user, "name": name, "role": role,
                                "session": "s", "idle_s": 900.0})
            else:
                fut.set_result({"id": "x", "ok": False, "reason": "wrong user id or password"})
            return fut
        self.sent.append(request)
        fut.set_result({"id": "x", **self.reply})
        return fut


def test_sessions_keep_their_own_user_and_show_the_engines_refusal(demo_site):
    a = rec(1, state="active_unack", priority="high")
    snap = snapshot(table(a))
    link = Link(snap, {"ok": False, "reason": "role operator may not shelve"}, demo_site)
    one, two = Workstation(demo_site, link), Workstation(demo_site, link)
    for ws in (one, two):
        ws.update(snap)
    assert one.login("op1", "demo") and two.user is None  # per session, never process-wide
    assert not two.login("sup1", "nope") and "wrong user id or password" in two.login_message.object
    assert two.login("sup1", "demo")
    one.selected = two.selected = a.id
    one.update(snap)
    two.update(snap)
    assert one.buttons["shelve"].disabled and not one.buttons["acknowledge"].disabled
    assert not two.buttons["shelve"].disabled
    assert list(two.duration.options.values()) == [900, 1800, 3600, 7200, 14400]  # high: up to 4 h
    two.text.value = "permit renewal"
    two.text.value_input = "permit renewal"
    two.duration.value = 3600
    reply = asyncio.run(two.act("shelve"))
    assert reply["ok"] is False
    assert link.sent[-1] == {
        "op": "shelve",
        "alarm": a.id,
        "user": "sup1",
        "token": "t-sup1",
        "reason": "permit renewal",
        "duration_s": 3600.0,
    }
    assert "refused by the engine: role operator may not shelve" in two.status_line.object
    assert asyncio.run(one.act("shelve")) is None and len(link.sent) == 1  # disabled: not even sent
    two.text.value = two.text.value_input = ""
    assert asyncio.run(two.act("remove_from_service")) is None  # no reason: asked for one, nothing sent
    assert "needs a reason" in two.status_line.object and len(link.sent) == 1
    one.logout()
    assert one.user is None and one.enabled() == frozenset() and two.user is not None


# -- emergency muster -------------------------------------------------------------------------------------------
def test_only_supervisors_declare_and_end_an_emergency_and_the_commands_match_the_protocol():
    from console.web.actions import muster_command, muster_enabled

    assert muster_enabled("supervisor", False) == {"muster_declare"}
    assert muster_enabled("admin", None) == {"muster_declare"}  # not known yet: declaring is offered
    assert muster_enabled("supervisor", True) == {"muster_end"}
    assert muster_enabled("operator", False) == frozenset() == muster_enabled("safety_manager", True)
    assert muster_enabled(None, False) == frozenset()
    assert muster_command("muster_declare", "sup1") == {"op": "muster_declare", "user": "sup1", "area": "all"}
    assert muster_command("muster_declare", "sup1", ("Z-U200",))["area"] == ["Z-U200"]
    assert muster_command("muster_end", "sup1") == {"op": "muster_end", "user": "sup1"}
    with pytest.raises(ValueError, match="unknown muster command"):
        muster_command("muster_pause", "sup1")


def _muster_snapshot(active: bool) -> LinkSnapshot:
    from ingest.protocol.records import MusterStatus

    status = MusterStatus(
        active=active,
        engine_ts_s=EPOCH_S + 75,
        declared_ts_s=EPOCH_S if active else math.nan,
        declared_by="sup1" if active else "",
        elapsed_s=75.0 if active else math.nan,
        roster=198 if active else 0,
        mustered=150 if active else 0,
        missing_count=48 if active else 0,
    )
    return LinkSnapshot(**{**snapshot({}).__dict__, "muster": status})


def test_declaring_an_emergency_asks_for_confirmation_then_shows_the_engines_reply(demo_site):
    snap = _muster_snapshot(False)
    link = Link(snap, {"ok": True}, demo_site)
    ws = Workstation(demo_site, link)
    ws.update(snap)
    assert ws.login("sup1", "demo")
    declare, end = ws.muster_buttons["muster_declare"], ws.muster_buttons["muster_end"]
    assert declare.visible and not declare.disabled and not end.visible
    assert "none declared" in ws.muster_line.object
    ws.ask_muster("muster_declare")
    assert ws.muster_confirm_row.visible and "Declare a site-wide emergency?" in ws.muster_question.object
    assert link.sent == [] and declare.disabled  # nothing is sent before the confirmation
    ws.cancel_muster()
    assert not ws.muster_confirm_row.visible and link.sent == []
    ws.ask_muster("muster_declare")
    reply = asyncio.run(ws.confirm_muster())
    assert reply["ok"] and link.sent == [{"op": "muster_declare", "user": "sup1", "area": "all", "token": "t-sup1"}]
    assert "Declare emergency: accepted by the engine" in ws.muster_reply_line.object
    assert not ws.muster_confirm_row.visible
    # the engine's status comes back: the line turns into the emergency banner and End is offered
    active = _muster_snapshot(True)
    link.snap = active
    ws.update(active)
    # declared at EPOCH_S (16:00:00 in Shanghai), status at EPOCH_S + 75 s
    assert (
        "\u26a0 EMERGENCY MUSTER since 16:00:00 (01:15), declared by sup1: 150 of 198 mustered, 48 missing"
        in ws.muster_line.object
    )
    assert end.visible and not declare.visible
    link.reply = {"ok": False, "reason": "no emergency is declared"}
    ws.ask_muster("muster_end")
    assert "Do it only when everyone is accounted for" in ws.muster_question.object
    asyncio.run(ws.confirm_muster())
    assert link.sent[-1] == {"op": "muster_end", "user": "sup1", "token": "t-sup1"}
    assert "End emergency refused by the engine: no emergency is declared" in ws.muster_reply_line.object


def test_an_operator_sees_the_emergency_but_cannot_declare_or_end_it(demo_site):
    snap = _muster_snapshot(True)
    link = Link(snap, {"ok": True}, demo_site)
    ws = Workstation(demo_site, link)
    ws.update(snap)
    assert ws.login("op1", "demo")
    assert not any(b.visible for b in ws.muster_buttons.values())
    assert "EMERGENCY MUSTER" in ws.muster_line.object and 'data-muster="active"' in ws.muster_line.object
    ws.ask_muster("muster_end")
    assert ws.muster_pending is None and asyncio.run(ws.confirm_muster()) is None and link.sent == []


# -- the flood banner, above the tabs ---------------------------------------------------------------------------
@pytest.mark.parametrize("tab", ["alarms", "permits", "cameras", "people"])
def test_the_flood_banner_follows_every_tick_whatever_tab_is_shown(demo_site, tab):
    calm = snapshot({})
    link = Link(calm, {"ok": True}, demo_site)
    ws = Workstation(demo_site, link)
    ws.update(calm)
    assert ws.login("sup1", "demo")
    ws.show_tab(tab)
    assert ws.tab == tab and not ws.flood_banner.root.visible
    # EPOCH_S is 16:00:00 in Shanghai, the demo site's zone
    ws.update(snapshot({}, flood=FloodState("main", True, EPOCH_S, None, 31)))
    assert ws.flood_banner.root.visible
    assert "ALARM FLOOD since 16:00:00: 31 alarms in 10 min" in ws.flood_banner.root.object
    ws.update(snapshot({}, flood=FloodState("main", False, EPOCH_S, None, 3)))
    assert not ws.flood_banner.root.visible
    ws.update(snapshot({}, flood=FloodState("other", True, EPOCH_S, None, 31)))  # another position's flood
    assert not ws.flood_banner.root.visible


# -- asking the engine ------------------------------------------------------------------------------------------
class _Silent:
    """A link that takes the request and never answers."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def submit(self, request: dict) -> concurrent.futures.Future:
        self.sent.append(request)
        return concurrent.futures.Future()


class _Closed:
    def submit(self, request: dict) -> concurrent.futures.Future:
        raise RuntimeError("engine link is closed")


def test_ask_engine_gives_the_reply_or_raises_on_silence_and_on_a_closed_link(demo_site):
    from console.web.signin import SignInPage
    from console.web.workstation.commands import ask_engine

    link = Link(snapshot({}), {"ok": True, "n": 3})
    assert asyncio.run(ask_engine(link, {"op": "zone_presence"}, 1.0)) == {"id": "x", "ok": True, "n": 3}
    assert link.sent == [{"op": "zone_presence"}]
    with pytest.raises(TimeoutError):
        asyncio.run(ask_engine(_Silent(), {"op": "zone_presence"}, 0.01))
    with pytest.raises(RuntimeError, match="engine link is closed"):
        asyncio.run(ask_engine(_Closed(), {"op": "zone_presence"}, 1.0))
    # the phone's sign-in asks through it: silence is "no answer", not a crash
    silent = _Silent()
    page = SignInPage(demo_site, silent, "HW-7", timeout_s=0.01)
    assert asyncio.run(page.submit("P0187", "1234")) is None
    no_answer = "Login refused: Login not possible now: the engine does not answer"
    assert [r["op"] for r in silent.sent] == ["login"] and no_answer in page.message.object
    closed = SignInPage(demo_site, _Closed(), "HW-7")
    assert asyncio.run(closed.submit("P0187", "1234")) is None and no_answer in closed.message.object
