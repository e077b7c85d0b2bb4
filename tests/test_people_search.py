"""Finding a person (console/web/search.py, console/web/workstation/search_panel.py) by hand-checked cases on the
demo plant: Chinese characters, toneless pinyin (with or without spaces), pinyin initials, tag, id, company."""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from console.link import AlarmTable, Frame, LinkCounters, LinkSnapshot
from console.web.search import PeopleIndex, pinyin_keys
from console.web.tiles import TileContext
from console.web.workstation.search_panel import SearchPanel
from ingest.protocol.records import AlarmRecord, PermitBoard, PermitInfo
from tests.records import EPOCH_S, alarm_record


def test_pinyin_keys_are_toneless_and_run_together():
    assert pinyin_keys("张辉") == ("zhanghui", "zh")
    assert pinyin_keys("") == ("", "")


def test_a_person_is_found_by_characters_pinyin_initials_tag_id_and_company(demo_site):
    idx = PeopleIndex(demo_site)

    def ids(q, limit=50):
        return [idx.people[h.index].id for h in idx.search(q, limit)]

    # the demo plant names person i by surname i mod 20 and given name 7i mod 20: Zhang Hui (张辉) is every
    # i = 2 mod 20 (surname 2 Zhang, given name 14 Hui)
    zhang_hui = [f"P{i:04d}" for i in range(1, 201) if i % 20 == 2]
    assert ids("张辉") == zhang_hui
    assert ids("zhanghui") == ids("zhang hui") == ids("Zhang Hui") == zhang_hui
    assert set(ids("zh", 500)) >= set(zhang_hui)  # initials of 张辉, and every Zhang and Zhou
    assert ids("T0102")[0] == "P0102" and ids("p0002")[0] == "P0002"  # an exact tag or id comes first
    assert len(ids("contractor", 500)) == sum(1 for p in demo_site.people if p.company == "Contractor Co.")
    assert ids("") == [] and ids("nobody-of-that-name") == []


def test_the_panel_says_where_the_person_is_in_words_with_the_fix_age_and_their_alarms(demo_site):
    panel = SearchPanel(demo_site, TileContext(demo_site, "en"))
    n = len(demo_site.people)
    xyz = np.full((n, 3), np.nan)
    xyz[1] = (37.0, 30.0, 1.2)  # P0002 in the control room
    age = np.full(n, np.nan)
    age[1] = 0.4
    gdop = np.full(n, np.nan)
    gdop[1] = 2.5  # with the demo's range sigma of 0.1 m: +-0.25 m, shown as 0.2 (rounded half to even)
    positions = Frame("display.positions", MappingProxyType({"xyz_m": xyz, "age_s": age, "alarm": np.zeros(n),
                                                            "gdop": gdop}),
                      MappingProxyType({}), EPOCH_S, 0.0, 1)
    rec = AlarmRecord.from_json({**alarm_record(1, priority="critical", person="P0002"), "id": "person.sos:T0002",
                                 "message": {"en": "SOS from Zhang Hui (T0002)", "zh-CN": "张辉（T0002）求救"}})
    snap = LinkSnapshot(positions=positions, sensors=None, status=None,
                        alarms=AlarmTable(seq=1, version=1, synced=True, alarms=MappingProxyType({rec.id: rec})),
                        counters=LinkCounters(), state="ok", last_frame_age_s=0.1,
                        permits=PermitBoard((_permit("HW-9", "active", ["T0040"], "T0002"),
                                             _permit("HW-8", "closed", ["T0002"], None)), EPOCH_S, 1))
    text = panel.answers_html("张辉", snap)
    first, second = text.split('data-person="P0102"')
    assert 'data-person="P0002"' in first and "Zhang Hui 张辉" in first
    assert "Control room" in first and "fix just now" in first and "SOS from Zhang Hui (T0002)" in first
    assert "\u00b10.2 m" in first  # 0.1 m x GDOP 2.5
    assert "Permits: HW-9 Hot work (ACTIVE, watcher)" in first and "HW-8" not in first  # closed: not his now
    assert "never located" in second  # P0102 has no fix in this frame
    assert "Nobody matches" in panel.answers_html("xyzzy", snap)


def _permit(pid: str, state: str, workers: list[str], watcher: str | None) -> PermitInfo:
    return PermitInfo.from_json({"id": pid, "type": "hot_work", "type_name": {"en": "Hot work", "zh-CN": "动火作业"},
                                 "grade": "2", "zone": None, "polygon": [[0, 0], [1, 0], [1, 1]], "workers": workers,
                                 "watcher": watcher, "valid_from_s": EPOCH_S, "valid_to_s": EPOCH_S + 3600,
                                 "state": state, "board": "red"})


def test_the_index_is_built_once_per_site_and_shared_by_sessions(demo_site):
    from console.web.search import index_for

    assert index_for(demo_site) is index_for(demo_site)
    assert SearchPanel(demo_site, TileContext(demo_site, "en")).index is index_for(demo_site)


def test_the_zone_answer_lists_visits_and_says_when_someone_inside_has_not_been_located_for_long(demo_site):
    from console.web.workstation.people_panel import PeoplePanel

    panel = PeoplePanel(demo_site, None, TileContext(demo_site, "en"))
    zone = demo_site.zones[0]
    t0 = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC; the demo site's clock is Asia/Shanghai (+8 h)
    html = panel.answer_html({"ok": True, "zone": zone.id, "n": 3, "truncated": True, "complete": False,
                              "history_from_ts_s": t0 - 3600, "visits": [
                                  {"person": "P0002", "company": "Demo Chemical", "enter_ts_s": t0, "exit_ts_s": None,
                                   "fix_age_s": 2.0},
                                  {"person": "P0003", "company": "", "enter_ts_s": t0 - 60, "exit_ts_s": None,
                                   "fix_age_s": 720.0},
                                  {"person": "P0004", "company": "", "enter_ts_s": t0 - 120, "exit_ts_s": t0 - 30}]})
    rows = html.split("<tr>")[2:]
    assert f"3 in {zone.name.get('en')}" in html
    assert "Zhang Hui" in rows[0] and "16:00:00" in rows[0] and "still inside" in rows[0]
    assert "inside at the last fix, 12 min ago" in rows[1]
    assert "15:58:00" in rows[2] and "15:59:30" in rows[2]
    assert "The newest 3 entries are listed." in html and "History kept from 15:00:00 only" in html
    refused = panel.answer_html({"ok": False, "reason": "unknown zone 'X'"})
    assert "Ask refused by the engine: unknown zone &#x27;X&#x27;" in refused


def test_a_zone_question_covers_the_chosen_period_in_engine_time_or_between_two_site_times(demo_site):
    import asyncio
    import concurrent.futures
    from datetime import datetime

    from console.auth import Credential, LoggedIn
    from console.web.workstation.people_panel import BETWEEN, PeoplePanel

    asked = []

    class Link:
        def submit(self, request):
            asked.append(request)
            fut = concurrent.futures.Future()
            fut.set_result({"id": 1, "ok": True, "zone": request["zone"], "n": 0, "visits": [], "complete": True})
            return fut

    panel = PeoplePanel(demo_site, Link(), TileContext(demo_site, "en"))
    assert asyncio.run(panel.ask(now_s=EPOCH_S)) is None and asked == []  # nobody logged in: nothing asked
    panel.set_user(Credential(LoggedIn("op1", "Operator 1", "operator"), "tok", "s1", 900.0))
    panel.zone.value = demo_site.zones[2].id
    panel.period.value = 3600
    assert asyncio.run(panel.ask(now_s=EPOCH_S))["ok"]
    assert asked[-1]["from_ts_s"] == EPOCH_S - 3600 and asked[-1]["to_ts_s"] == EPOCH_S
    assert asked[-1]["zone"] == demo_site.zones[2].id and asked[-1]["token"] == "tok" and asked[-1]["user"] == "op1"
    panel.period.value = BETWEEN
    assert panel.between.visible
    panel.between.value = None
    assert asyncio.run(panel.ask(now_s=EPOCH_S)) is None and "Choose the start" in panel.answer.object
    # 08:00 to 09:30 on the site's clock (Asia/Shanghai, UTC+8) is 00:00 to 01:30 UTC
    panel.between.value = (datetime(2026, 12, 3, 8, 0), datetime(2026, 12, 3, 9, 30))
    asyncio.run(panel.ask(now_s=EPOCH_S))
    t1 = datetime.fromisoformat("2026-12-03T00:00:00+00:00").timestamp()
    assert (asked[-1]["from_ts_s"], asked[-1]["to_ts_s"]) == (t1, t1 + 5400)
