"""OPC UA Alarms & Conditions: watchfloor alarms as Part 9 conditions, acknowledged from an OPC UA client and
journaled by the real engine."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq
from asyncua import Client, ua
from asyncua.ua import uaerrors

from config import DEMO_SITE
from config.schema import User
from config.users import Account, hash_secret, load_users_file, save_users_file
from console.link import EngineLink
from console.opcua.server import (
    SEVERITY,
    AlarmsServer,
    condition_class,
    condition_state,
    main,
    refusal_status,
)
from ingest import bus
from ingest.bus import Message
from ingest.engine import EngineProcess
from ingest.protocol.records import AlarmRecord
from tests.conftest import free_port, wait_port

ALARM = "zone.restricted:Z-SUB:T0050"  # worker T0050 is not allowed in restricted zone Z-SUB (x 133..157, y 58..82)
ACK = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
ADD_COMMENT = ua.NodeId(ua.ObjectIds.ConditionType_AddComment)
REFRESH = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)
PASSWORD = "control-room-7"


def _record(**changes: Any) -> AlarmRecord:
    d = {
        "id": ALARM,
        "condition": "zone.restricted",
        "source": "T0050",
        "zone": "Z-SUB",
        "person": "P0050",
        "priority": "high",
        "state": "active_unack",
        "active": True,
        "acked": False,
        "message": {"en": "Li Jun (T0050) in restricted zone Substation", "zh-CN": "李军进入限制区域 变电所"},
        "activated_ts_s": 1000.0,
        "changed_ts_s": 1000.0,
        "position_m": [145.0, 70.0],
    }
    d.update(changes)
    return AlarmRecord.from_json(d)


# -- the mapping, no server ------------------------------------------------------------------------------------
def test_active_unacknowledged_alarm_maps_to_active_unacked_retained_condition():
    s = condition_state(_record())
    assert (s.active, s.acked, s.retain, s.latched, s.suppressed, s.out_of_service) == (
        True,
        False,
        True,
        False,
        False,
        False,
    )
    assert s.shelving == "Unshelved" and not s.suppressed_or_shelved
    assert s.severity == 750 and s.source_name == "T0050" and s.condition_name == "zone.restricted"


def test_returned_to_normal_unacknowledged_stays_retained_until_acknowledged():
    s = condition_state(_record(state="rtn_unack", active=False, acked=False))
    assert (s.active, s.acked, s.retain) == (False, False, True)
    gone = s.returned_to_normal()
    assert (gone.active, gone.acked, gone.retain) == (False, True, False)


def test_latched_shelved_suppressed_and_out_of_service_states_map_to_their_part9_substates():
    latched = condition_state(_record(state="latched_ack", active=False, acked=True))
    assert latched.latched and not latched.active and latched.acked and latched.retain
    shelved = condition_state(
        _record(
            state="shelved",
            acked=True,
            changed_ts_s=1000.0,
            shelved={"until_ts_s": 1600.0, "by": "sup1", "reason": "sensor work"},
        )
    )
    assert shelved.shelving == "TimedShelved" and shelved.suppressed_or_shelved and shelved.active
    assert shelved.unshelve_in_s == 600.0  # 1600 - 1000 s left at the event's time
    suppressed = condition_state(_record(state="suppressed"))
    assert suppressed.suppressed and suppressed.suppressed_or_shelved
    oos = condition_state(
        _record(state="out_of_service", out_of_service={"by": "sup1", "reason": "maintenance"})
    )
    assert oos.out_of_service and oos.suppressed_or_shelved


def test_state_without_the_engine_flags_is_derived_from_the_state_name():
    d = _record(state="active_ack")
    bare = AlarmRecord(**{**d.__dict__, "condition_active": None, "acked": None})
    s = condition_state(bare)
    assert s.active and s.acked


@pytest.mark.parametrize(
    "priority, severity", [("low", 250), ("medium", 500), ("high", 750), ("critical", 1000)]
)
def test_severity_rises_with_priority_on_the_part9_scale(priority, severity):
    assert SEVERITY[priority] == severity
    assert condition_state(_record(priority=priority)).severity == severity


def test_condition_classes_follow_the_kind_of_condition():
    assert condition_class("zone.restricted") == (ua.ObjectIds.SafetyConditionClassType, "Safety")
    assert condition_class("comms.gateway_silent")[1] == "System"
    assert condition_class("vibration.high")[1] == "Maintenance"
    assert condition_class("something.new")[1] == "Process"


@pytest.mark.parametrize(
    "reason, acked, status",
    [
        ("unknown user 'dcs'", None, "BadUserAccessDenied"),
        ("role safety_manager may not acknowledge", None, "BadUserAccessDenied"),
        ("alarm is active_ack: nothing to acknowledge", None, "BadConditionBranchAlreadyAcked"),
        ("alarm is shelved: nothing to acknowledge", True, "BadInvalidState"),
        ("no such alarm", None, "BadNodeIdUnknown"),
        ("command failed: KeyError", None, "BadInternalError"),
    ],
)
def test_engine_refusals_map_to_part9_status_codes(reason, acked, status):
    assert refusal_status(reason, acked=acked).name == status


# -- the live system: real engine, real asyncua server and client ------------------------------------------------
def _positions(site, tags_xy: dict[str, tuple[float, float]], ts: float) -> Message:
    index = {p.tag: i for i, p in enumerate(site.people)}
    idx = np.array([index[t] for t in tags_xy], dtype=np.int32)
    n = len(idx)
    return Message(
        topic="uwb.positions",
        source="uwb",
        kind="positions",
        event_ts_s=ts,
        ingest_ts_s=ts,
        arrays={
            "person_index": idx,
            "xyz_m": np.array([[x, y, 1.2] for x, y in tags_xy.values()]),
            "ts_s": np.full(n, ts),
            "valid": np.ones(n, bool),
            "gdop": np.full(n, 1.5),
            "rms_m": np.full(n, 0.1),
        },
    )


class LivePlant:
    """The real engine (in a thread, on ipc:// endpoints) and a UWB stream: every placed tag sends a fix every
    0.1 s, as a gateway would (a zone entry needs a dwell). ``close`` stops everything; it is idempotent."""

    def __init__(self, site: Any, out: Path) -> None:
        self.site = site
        self.journal = out / "journal.sqlite"
        self._ctx = zmq.Context()
        self._proc = EngineProcess(site, DEMO_SITE.read_text(), out, ctx=self._ctx, notify=False)
        self._engine_stop = threading.Event()
        self._engine = threading.Thread(target=self._proc.run, args=(self._engine_stop,), name="engine")
        self._engine.start()
        self._push = bus.push_socket(self._ctx, site.bus.ingest)
        self._sender = bus.Sender(self._push, "uwb")
        self._where: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._stream_stop = threading.Event()
        self._stream = threading.Thread(target=self._send_fixes, name="uwb-stream")
        self._stream.start()
        self._closed = False

    def place(self, tag: str, xy: tuple[float, float]) -> None:
        with self._lock:
            self._where[tag] = xy

    def _send_fixes(self) -> None:  # the only user of the PUSH socket
        while not self._stream_stop.wait(0.1):
            with self._lock:
                where = dict(self._where)
            if where:
                m = _positions(self.site, where, time.time())
                self._sender.send(m.topic, m.kind, m.event_ts_s, m.arrays, timeout_s=5)

    def stop_engine(self) -> None:
        """The engine process goes away (the UWB stream with it)."""
        self._stream_stop.set()
        self._stream.join(10)
        self._engine_stop.set()
        self._engine.join(10)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop_engine()
        self._proc.close()
        self._push.close(linger=0)
        self._ctx.term()

    def journal_rows(self, event: str) -> list[dict[str, Any]]:
        with sqlite3.connect(f"file:{self.journal}?mode=ro", uri=True) as db:
            rows = db.execute(
                "SELECT actor, role, detail, alarm_id FROM journal WHERE event = ? ORDER BY row", (event,)
            ).fetchall()
        return [
            {"actor": a, "role": r, "detail": json.loads(d) if d else {}, "alarm": al} for a, r, d, al in rows
        ]


@pytest.fixture
def plant(demo_site, tmp_path):
    """The live engine, with the demo users and a DCS operator and a safety manager who log in with a password of
    their own (a users file of the test's; the engine checks the logins)."""
    digest = hash_secret(PASSWORD)
    accounts = [
        *load_users_file(demo_site.access.users_file),
        Account(id="dcs1", name="DCS operator", role="operator", password_hash=digest),
        Account(id="viewer1", name="Safety manager", role="safety_manager", password_hash=digest),
    ]
    save_users_file(tmp_path / "users.yaml", accounts)
    roster = [*demo_site.users, *(User(id=a.id, name=a.name, role=a.role) for a in accounts[-2:])]
    site = demo_site.model_copy(
        update={
            "users": roster,
            "access": demo_site.access.model_copy(update={"users_file": str(tmp_path / "users.yaml")}),
            # a quick zone entry (same hysteresis logic, shorter dwell)
            "fences": demo_site.fences.model_copy(update={"min_dwell_s": 0.3}),
            "bus": demo_site.bus.model_copy(
                update={
                    "ingest": f"ipc://{tmp_path}/in.ipc",
                    "publish": f"ipc://{tmp_path}/pub.ipc",
                    "command": f"ipc://{tmp_path}/cmd.ipc",
                }
            ),
        }
    )
    live = LivePlant(site, tmp_path / "live")
    try:
        yield live
    finally:
        live.close()


class Events:
    """Collects the event notifications of a subscription; ``wait_for`` polls them (bounded)."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def event_notification(self, event: Any) -> None:
        self.events.append(event)

    async def wait_for(self, pred: Callable[[Any], bool], timeout_s: float = 10.0, after: int = 0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            for ev in self.events[after:]:
                if pred(ev):
                    return ev
            if time.monotonic() > deadline:
                raise TimeoutError(f"no matching event within {timeout_s} s; got {len(self.events)} events")
            await asyncio.sleep(0.02)


def _f(ev: Any, name: str) -> Any:
    return getattr(ev, name, None)


def _of(cond_id: ua.NodeId, **fields: Any) -> Callable[[Any], bool]:
    return lambda ev: (
        _f(ev, "NodeId") == cond_id and all(_f(ev, k.replace("__", "/")) == v for k, v in fields.items())
    )


async def _serving(plant: LivePlant, scenario: Callable[[AlarmsServer, str], Any], **server_kw: Any) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/watchfloor/alarms/"
    with EngineLink(plant.site, lost_after_s=1.0) as link:
        async with AlarmsServer(plant.site, link, endpoint=url, poll_interval_s=0.02, **server_kw) as server:
            stop = asyncio.Event()
            runner = asyncio.create_task(server.run(stop))
            try:
                await scenario(server, url)
            finally:
                stop.set()
                await runner


@pytest.mark.slow
def test_dcs_sees_the_alarm_acknowledges_it_and_the_engine_journals_who(plant):
    async def scenario(server: AlarmsServer, url: str) -> None:
        client = Client(url, timeout=10)
        client.set_user("op1")  # the engine checks the password and hands the session its token
        client.set_password("demo")
        async with client:
            ns = await client.get_namespace_index(f"{plant.site.opcua.namespace_uri}:alarms")
            cond_id = ua.NodeId(ALARM, ns)
            events = Events()
            sub = await client.create_subscription(20, events)
            await sub.subscribe_alarms_and_conditions(
                client.get_node(ua.NodeId("Alarms", ns)), ua.ObjectIds.AlarmConditionType
            )
            plant.place("T0050", (145.0, 70.0))

            raised = await events.wait_for(_of(cond_id, ActiveState__Id=True))
            assert _f(raised, "AckedState/Id") is False and _f(raised, "Retain") is True
            assert _f(raised, "Severity") == 750 and _f(raised, "SourceName") == "T0050"
            assert (
                _f(raised, "ActiveState").Text == "Active"
                and _f(raised, "AckedState").Text == "Unacknowledged"
            )
            assert "T0050" in _f(raised, "Message").Text and _f(raised, "ConditionName") == "zone.restricted"
            assert _f(raised, "ShelvingState/CurrentState").Text == "Unshelved"
            assert _f(raised, "SuppressedState/Id") is False and _f(raised, "OutOfServiceState/Id") is False
            # the condition node holds the same state
            node = client.get_node(cond_id)
            assert await (await node.get_child("0:Severity")).read_value() == 750
            assert await (await node.get_child(["0:ActiveState", "0:Id"])).read_value() is True
            messages = await (await node.get_child(f"{ns}:Messages")).read_value()
            assert {m.Locale for m in messages} == {"en", "zh-CN"}

            with pytest.raises(uaerrors.BadEventIdUnknown):
                await node.call_method(ACK, b"not-an-event-of-this-alarm", ua.LocalizedText("stale"))
            await node.call_method(ACK, _f(raised, "EventId"), ua.LocalizedText("seen on CCTV, guard sent"))
            acked = await events.wait_for(
                _of(cond_id, AckedState__Id=True, Comment=ua.LocalizedText("seen on CCTV, guard sent"))
            )
            assert _f(acked, "ActiveState/Id") is True and _f(acked, "ClientUserId") == "op1"

            rows = [r for r in plant.journal_rows("acknowledge") if r["alarm"] == ALARM]
            assert [r["actor"] for r in rows] == ["op1"]
            assert "via OPC UA" in rows[0]["detail"]["comment"]
            assert "seen on CCTV, guard sent" in rows[0]["detail"]["comment"]

            # acknowledging again: the engine refuses (and journals the refusal), the client gets a Bad status
            with pytest.raises(uaerrors.BadConditionBranchAlreadyAcked):
                await node.call_method(ACK, _f(acked, "EventId"), ua.LocalizedText("again"))
            refused = [r for r in plant.journal_rows("refused") if r["alarm"] == ALARM]
            assert refused and refused[-1]["actor"] == "op1"
            assert refused[-1]["detail"]["reason"] == "alarm is active_ack: nothing to acknowledge"

            # ConditionRefresh: the current state again, bracketed by RefreshStart / RefreshEnd
            n = len(events.events)
            await client.get_node(ua.ObjectIds.ConditionType).call_method(
                REFRESH, ua.Variant(sub.subscription_id, ua.VariantType.UInt32)
            )
            end = await events.wait_for(
                lambda e: _f(e, "EventType") == ua.NodeId(ua.ObjectIds.RefreshEndEventType), after=n
            )
            bracket = events.events[n : events.events.index(end) + 1]
            assert _f(bracket[0], "EventType") == ua.NodeId(ua.ObjectIds.RefreshStartEventType)
            again = [e for e in bracket if _f(e, "NodeId") == cond_id]
            assert len(again) == 1 and _f(again[0], "EventId") == _f(
                acked, "EventId"
            )  # the same notification
            assert _f(again[0], "AckedState/Id") is True and _f(again[0], "Retain") is True

            # AddComment: journaled by the engine, shown in the condition's Comment
            n = len(events.events)
            await node.call_method(ADD_COMMENT, _f(acked, "EventId"), ua.LocalizedText("guard on site"))
            commented = await events.wait_for(
                _of(cond_id, Comment=ua.LocalizedText("guard on site")), after=n
            )
            assert _f(commented, "EventId") != _f(acked, "EventId")
            notes = [r for r in plant.journal_rows("comment") if r["alarm"] == ALARM]
            assert [r["actor"] for r in notes] == ["op1"] and notes[0]["detail"]["text"].endswith(
                "guard on site"
            )

            # the worker leaves: acknowledged and back to normal, the condition is no longer retained and goes
            plant.place("T0050", (120.0, 70.0))
            gone = await events.wait_for(_of(cond_id, Retain=False))
            assert _f(gone, "ActiveState/Id") is False
            deadline = time.monotonic() + 5
            while ALARM in server.conditions() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            with pytest.raises(uaerrors.BadNodeIdUnknown):
                await (client.get_node(ua.NodeId(f"{ALARM}.Severity", ns))).read_value()

    asyncio.run(_serving(plant, scenario))
    logins = plant.journal_rows("login")
    assert [(r["actor"], r["detail"]["console"]) for r in logins] == [("op1", "opcua-alarms")]
    logouts = plant.journal_rows("logout")  # the session closed: its login ended at the engine
    assert [(r["actor"], r["detail"]["reason"]) for r in logouts] == [("op1", "user")]


@pytest.mark.slow
def test_username_login_attributes_the_acknowledgement_anonymous_may_only_watch_and_a_lost_engine_shows_bad_quality(
    plant,
):
    async def scenario(server: AlarmsServer, url: str) -> None:
        async with Client(url, timeout=10) as anonymous:
            ns = await anonymous.get_namespace_index(f"{plant.site.opcua.namespace_uri}:alarms")
            cond_id = ua.NodeId(ALARM, ns)
            events = Events()
            sub = await anonymous.create_subscription(20, events)
            await sub.subscribe_alarms_and_conditions(ua.ObjectIds.Server, ua.ObjectIds.AlarmConditionType)
            plant.place("T0050", (145.0, 70.0))
            raised = await events.wait_for(_of(cond_id, ActiveState__Id=True))
            with pytest.raises(uaerrors.BadUserAccessDenied):  # no --ack-user: anonymous sessions only watch
                await anonymous.get_node(cond_id).call_method(
                    ACK, _f(raised, "EventId"), ua.LocalizedText("x")
                )

            wrong = Client(url, timeout=10)
            wrong.set_user("dcs1")
            wrong.set_password("not-the-password")
            with pytest.raises(uaerrors.BadUserAccessDenied):
                await wrong.connect()
            await wrong.disconnect()

            viewer = Client(url, timeout=10)
            viewer.set_user("viewer1")
            viewer.set_password(PASSWORD)
            async with (
                viewer
            ):  # a safety manager may log in and watch, but the engine refuses her acknowledgement
                with pytest.raises(uaerrors.BadUserAccessDenied):
                    await viewer.get_node(cond_id).call_method(
                        ACK, _f(raised, "EventId"), ua.LocalizedText("x")
                    )

            operator = Client(url, timeout=10)
            operator.set_user("dcs1")
            operator.set_password(PASSWORD)
            async with operator:
                # the condition's own Acknowledge method node this time (a client may call either)
                await operator.get_node(cond_id).call_method(
                    ua.NodeId(f"{ALARM}.Acknowledge", ns),
                    _f(raised, "EventId"),
                    ua.LocalizedText("ack from the DCS faceplate"),
                )
            await events.wait_for(_of(cond_id, AckedState__Id=True))
            rows = [r for r in plant.journal_rows("acknowledge") if r["alarm"] == ALARM]
            assert [(r["actor"], r["role"]) for r in rows] == [("dcs1", "operator")]
            assert rows[0]["detail"]["comment"].startswith("via OPC UA from ")
            refused = [r for r in plant.journal_rows("refused") if r["alarm"] == ALARM]
            assert [r["actor"] for r in refused] == ["viewer1"]
            failed = plant.journal_rows("login_failed")  # the wrong password, with where it came from
            assert [(r["actor"], r["detail"]["address"], r["detail"]["reason"]) for r in failed] == [
                ("dcs1", "127.0.0.1", "wrong password")]

            # the engine goes away: the condition stays, its Quality says the state may be stale (fail visible)
            n = len(events.events)
            await asyncio.to_thread(plant.stop_engine)
            stale = await events.wait_for(
                _of(cond_id, Quality=ua.StatusCode(ua.StatusCodes.BadNoCommunication)), after=n
            )
            assert _f(stale, "Retain") is True and _f(stale, "AckedState/Id") is True
            link_state = anonymous.get_node(ua.NodeId("Alarms.EngineLink", ns))
            assert await link_state.read_value() == "lost"

    asyncio.run(_serving(plant, scenario))


# -- the command line --------------------------------------------------------------------------------------------
def test_command_line_refuses_an_endpoint_that_is_not_opc_tcp(capsys):
    assert main(["--site", str(DEMO_SITE), "--endpoint", "http://127.0.0.1:4841/"]) == 2
    assert "opc.tcp://" in capsys.readouterr().err


@pytest.mark.slow
def test_command_line_server_serves_then_stops_cleanly_on_sigterm(tmp_path):
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "console.opcua.server",
        "--site",
        str(DEMO_SITE),
        "--endpoint",
        f"opc.tcp://127.0.0.1:{port}/watchfloor/alarms/",
        "--publish-endpoint",
        f"ipc://{tmp_path}/no-engine-pub.ipc",
        "--command-endpoint",
        f"ipc://{tmp_path}/no-engine-cmd.ipc",
    ]
    proc = subprocess.Popen(
        args,
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_port("127.0.0.1", port, timeout_s=30)  # no engine yet: it serves anyway, EngineLink "waiting"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    assert "alarms server: stopped" in out
