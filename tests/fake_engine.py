"""A stand-in engine for console tests: the engine's bus side only, built on ``ingest.bus``.

It binds a PUB and a ROUTER on free loopback ports and, from one thread that owns both sockets, publishes
``display.positions`` (people moving on circles), ``display.sensors`` (with ``vib_zone``), ``display.gasfield``
(a plume over Unit 200, :func:`gas_plume`), ``engine.status`` and ``permit.board`` (on change and every 2 s;
three permits by default, :func:`default_permits`), ``muster.status`` (on declare / end and every second while
an emergency is declared), sequence-numbered ``alarm.delta`` messages on request, ``alarm.notify`` and
``alarm.flood`` on request, and ``zone.fence`` on request. It answers ``snapshot`` (with ``permits``, ``muster``
and ``floods``), the person commands (``ack``, ``reset``, ``shelve``, ``unshelve``, ``remove_from_service``,
``return_to_service``, ``comment``), ``muster_declare`` / ``muster_end`` and the permit commands
``permit_suspend`` / ``permit_resume`` / ``permit_close``. Commands are checked like the engine does: the user
must be one of ``site.users``, the role must allow the action (``alarms.lifecycle.ROLE_ACTIONS``, supervisors and
admins for the muster, ``alarms.permits.PERMIT_ROLES`` for permits) and the state must allow it; a refusal
carries the engine's reason, a success publishes what changed. Tests drive it with methods that run on that
thread (``raise_alarm``, ``notify``, ``flood``, ``pause``, ``set_permits``, ``set_gas_field``...).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import numpy as np
import zmq

from alarms.lifecycle import ROLE_ACTIONS
from alarms.permits import PERMIT_ROLES
from config import Site
from ingest import bus

REPO = Path(__file__).resolve().parents[1]
EPOCH_S = 1763798400.0  # 2025-11-22 08:00:00 UTC: engine time starts here
_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


_UNACK = frozenset({"active_unack", "latched_unack", "rtn_unack"})


def alarm_record(
    n: int,
    *,
    priority: str = "high",
    state: str = "active_unack",
    person: str | None = None,
    zone: str | None = "Z-SUB",
    ts_s: float = EPOCH_S,
    en: str | None = None,
    zh: str | None = None,
    condition: str = "zone.restricted",
    area: str | None = None,
) -> dict[str, Any]:
    """A well-formed AlarmRecord dict for the ``n``-th test alarm (``area`` defaults to the zone)."""
    source = f"T{n:04d}"
    return {
        "id": f"{condition}:{zone}:{source}",
        "condition": condition,
        "source": source,
        "zone": zone,
        "person": person,
        "area": area if area is not None else zone,
        "priority": priority,
        "state": state,
        "active": state.startswith("active_") or state in ("shelved", "out_of_service", "suppressed"),
        "acked": state not in _UNACK,
        "message": {
            "en": en or f"Person in restricted zone {zone} (alarm {n})",
            "zh-CN": zh or f"人员进入限制区域 {zone}（报警 {n}）",
        },
        "activated_ts_s": ts_s,
        "changed_ts_s": ts_s,
        "acked_by": None,
        "shelved": None,
        "out_of_service": None,
        "escalation_step": 0,
        "chattering": False,
        "position_m": [145.0, 70.0],
    }


GAS_FIELD_DX_M = 2.0
PLUME_CENTRE_M = (205.0, 150.0)  # Unit 200, near GD07
PLUME_PEAK = 1.3  # fraction of the level-2 alarm at the centre
PLUME_SIGMA_M = 12.0


def gas_plume(
    site: Site,
    *,
    peak: float = PLUME_PEAK,
    centre: tuple[float, float] = PLUME_CENTRE_M,
    sigma_m: float = PLUME_SIGMA_M,
) -> np.ndarray:
    """float32 [ny, nx] over the site's extent in 2 m cells (row 0 = south): a Gaussian plume ``peak`` x
    exp(-r^2 / (2 sigma^2)) around ``centre``; NaN in the westmost fifth of the site (no detector near)."""
    x0, y0, x1, y1 = site.floor_plan.extent_m
    nx, ny = math.ceil((x1 - x0) / GAS_FIELD_DX_M), math.ceil((y1 - y0) / GAS_FIELD_DX_M)
    xc = x0 + (np.arange(nx) + 0.5) * GAS_FIELD_DX_M
    yc = y0 + (np.arange(ny) + 0.5) * GAS_FIELD_DX_M
    gx, gy = np.meshgrid(xc, yc)
    r2 = (gx - centre[0]) ** 2 + (gy - centre[1]) ** 2
    field = (peak * np.exp(-r2 / (2.0 * sigma_m**2))).astype(np.float32)
    field[:, xc < x0 + 0.2 * (x1 - x0)] = np.nan
    return field


def permit_record(
    pid: str,
    *,
    type_: str = "hot_work",
    type_name: tuple[str, str] = ("Hot work", "动火作业"),
    grade: str | None = "2",
    zone: str | None = "Z-HW1",
    polygon: list[list[float]] | None = None,
    workers: list[str] | None = None,
    watcher: str | None = "T0187",
    valid_from_s: float = EPOCH_S - 3600.0,
    valid_to_s: float = EPOCH_S + 4 * 3600.0,
    state: str = "active",
    board: str = "red",
    reason: str = "",
) -> dict[str, Any]:
    """A well-formed ``permit.board`` entry (alarms/permits.py ``Permit.record``)."""
    return {
        "id": pid,
        "type": type_,
        "type_name": {"en": type_name[0], "zh-CN": type_name[1]},
        "grade": grade,
        "zone": zone,
        "polygon": polygon or [],
        "workers": list(workers if workers is not None else ["T0101", "T0102"]),
        "watcher": watcher,
        "valid_from_s": valid_from_s,
        "valid_to_s": valid_to_s,
        "state": state,
        "board": board,
        "applicant": "op1",
        "approver": "sup1" if state != "requested" else None,
        "reason": reason,
        "description": "",
        "gas_test": None,
    }


def default_permits() -> list[dict[str, Any]]:
    """Hot work HW-1 active on Z-HW1 (red), confined-space entry CS-1 suspended on its own area near vessel
    V-205 (amber), hot work HW-9 approved for later (green) -- in the engine's board order."""
    return [
        permit_record("HW-1"),
        permit_record(
            "CS-1",
            type_="confined_space",
            type_name=("Confined space entry", "受限空间作业"),
            grade=None,
            zone=None,
            polygon=[[226.0, 140.0], [236.0, 140.0], [236.0, 150.0], [226.0, 150.0]],
            workers=["T0185"],
            watcher="T0186",
            state="suspended",
            board="amber",
            reason="watcher away from the permit area",
        ),
        permit_record(
            "HW-9",
            zone="Z-HW1",
            valid_from_s=EPOCH_S + 6 * 3600.0,
            valid_to_s=EPOCH_S + 10 * 3600.0,
            state="approved",
            board="green",
            workers=["T0103"],
        ),
    ]


class _Refused(Exception):
    pass


def _state_of(f: dict[str, Any]) -> str:
    """The state an operator sees, from the sub-states (the order of alarms/lifecycle.py)."""
    if f["out_of_service"] is not None:
        return "out_of_service"
    if f["shelved"] is not None:
        return "shelved"
    if f["active"]:
        return "active_ack" if f["acked"] else "active_unack"
    if f["latched"]:
        return "latched_ack" if f["acked"] else "latched_unack"
    return "normal" if f["acked"] else "rtn_unack"


class FakeEngine:
    """The engine's bus side for tests. Use as a context manager; endpoints are ready after ``start()``."""

    def __init__(
        self,
        site: Site,
        *,
        positions_hz: float = 10.0,
        sensors_hz: float = 2.0,
        status_hz: float = 2.0,
        answer_snapshots: bool = True,
        answer_commands: bool = True,
    ) -> None:
        self.site = site
        self.periods_s = {
            "positions": 1.0 / positions_hz,
            "sensors": 1.0 / sensors_hz,
            "status": 1.0 / status_hz,
            "board": 2.0,
            "muster": 1.0,
        }
        self.answer_snapshots = answer_snapshots
        self.answer_commands = answer_commands
        self.people = len(site.people)
        self.seq = 0  # last alarm.delta seq used
        self.alarms: dict[str, dict[str, Any]] = {}
        self.comments: list[tuple[str, str, str]] = []  # (alarm, user, text) of accepted comments
        self.flood_state: dict[str, Any] | None = (
            None  # the last alarm.flood meta, handed over with snapshots
        )
        self._users = {u.id: u.role for u in site.users}
        self.permits: list[dict[str, Any]] = default_permits()
        self.gas_field: np.ndarray | None = gas_plume(site)
        self.muster: dict[str, Any] | None = None  # the declaration while an emergency is declared
        self.muster_rate_per_s = 2.0  # people reaching a muster point per second after a declaration
        self.snapshot_requests = 0
        self.commands: list[dict[str, Any]] = []
        self.paused = False
        self.frames_published = 0
        self.publish_endpoint = ""
        self.command_endpoint = ""
        self._ctx = zmq.Context()
        self._actions: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future]] = queue.Queue()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-engine")
        self._t0 = time.monotonic()
        rng = np.random.default_rng(7)
        x0, y0, x1, y1 = site.floor_plan.extent_m
        self._centre = np.column_stack(
            [rng.uniform(x0 + 20, x1 - 20, self.people), rng.uniform(y0 + 20, y1 - 20, self.people)]
        )
        self._radius = rng.uniform(3.0, 12.0, self.people)
        self._omega = rng.uniform(0.2, 0.6, self.people) * rng.choice([-1, 1], self.people)
        self._phase = rng.uniform(0, 2 * math.pi, self.people)

    # -- lifetime -------------------------------------------------------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake engine did not start")
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._ctx.term()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls (run on the engine thread) ----------------------------------------------------------
    def _call(self, fn: Callable[[], Any]) -> Any:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._actions.put((fn, fut))
        return fut.result(10)

    def publish_delta(self, records: list[dict[str, Any]], *, lose: bool = False) -> int:
        """Apply ``records`` to the engine's table under the next seq and publish them (``lose``: don't)."""

        def act() -> int:
            self.seq += 1
            for r in records:
                if r["state"] == "normal":
                    self.alarms.pop(r["id"], None)
                else:
                    self.alarms[r["id"]] = dict(r)
            if not lose:
                self._send("alarm.delta", "alarm_delta", {}, {"seq": self.seq, "alarms": records})
            return self.seq

        return self._call(act)

    def raise_alarm(self, record: dict[str, Any], *, lose: bool = False) -> int:
        """Publish one new or changed alarm; returns its seq."""
        return self.publish_delta([record], lose=lose)

    def notify(self, alarm_id: str, role: str, *, step: int = 1, priority: str | None = None) -> None:
        """Publish an escalation of a held alarm on ``alarm.notify`` (as the engine's escalation step does)."""

        def act() -> None:
            rec = self.alarms[alarm_id]
            meta = {
                "alarm": alarm_id,
                "notify_role": role,
                "step": step,
                "priority": priority or rec["priority"],
                "ts_s": self.engine_ts_s(),
                "message": dict(rec["message"]),
            }
            self._send("alarm.notify", "notify", {}, meta)

        self._call(act)

    def flood(
        self, flood: bool, *, first_out: str | None = None, count_10min: int = 0, position: str = "main"
    ) -> None:
        """Publish an ``alarm.flood`` state (and, like the engine, its flag in every later ``engine.status``)."""

        def act() -> None:
            meta = {
                "position": position,
                "flood": flood,
                "since_ts_s": self.engine_ts_s(),
                "first_out": first_out,
                "count_10min": count_10min,
            }
            self.flood_state = meta
            self._send("alarm.flood", "flood", {}, meta)

        self._call(act)

    def restart(self) -> None:
        """Forget every alarm and start the seq again from 0, as a freshly started engine would."""

        def act() -> None:
            self.seq = 0
            self.alarms.clear()

        self._call(act)

    def pause(self, paused: bool = True) -> None:
        """Stop (or resume) publishing display frames: the console should see its link lost."""
        self._call(lambda: setattr(self, "paused", paused))

    def set_answers(self, *, snapshots: bool | None = None, commands: bool | None = None) -> None:
        """Make the engine answer (or ignore) snapshot requests and other commands from now on."""

        def act() -> None:
            if snapshots is not None:
                self.answer_snapshots = snapshots
            if commands is not None:
                self.answer_commands = commands

        self._call(act)

    def set_permits(self, permits: list[dict[str, Any]]) -> None:
        """Replace the permit board and publish it (as the engine does on every change)."""

        def act() -> None:
            self.permits = [dict(p) for p in permits]
            self._board()

        self._call(act)

    def end_muster(self) -> None:
        """Forget a declared emergency without a command (test clean-up)."""
        self._call(lambda: setattr(self, "muster", None))

    def set_gas_field(self, field: np.ndarray | None) -> None:
        """Publish this gas field from now on (None: publish none)."""
        self._call(lambda: setattr(self, "gas_field", field))

    def fence_events(self, events: list[dict[str, Any]]) -> None:
        """Publish omlox-style fence events on ``zone.fence``."""
        self._call(lambda: self._send("zone.fence", "fence_events", {}, {"events": events}))

    def publish_raw(self, topic: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Publish any message on the PUB socket (e.g. a frame that does not match the site)."""
        self._call(lambda: self._send(topic, "test", arrays, meta))

    def engine_ts_s(self) -> float:
        return EPOCH_S + (time.monotonic() - self._t0)

    def positions_at(self, t_s: float) -> np.ndarray:
        """float64 [P, 3]: where everyone is ``t_s`` seconds after start (the first two never have a fix)."""
        a = self._omega * t_s + self._phase
        xyz = np.column_stack(
            [
                self._centre[:, 0] + self._radius * np.cos(a),
                self._centre[:, 1] + self._radius * np.sin(a),
                np.full(self.people, 1.2),
            ]
        )
        xyz[:2] = np.nan
        return xyz

    # -- the thread -----------------------------------------------------------------------------------------
    def _send(self, topic: str, kind: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        ts = self.engine_ts_s()
        msg = bus.Message(
            topic=topic,
            source="engine",
            kind=kind,
            event_ts_s=ts,
            ingest_ts_s=ts,
            seq=self.frames_published,
            arrays=arrays,
            meta=meta,
        )
        self._pub.send_multipart(bus.encode(msg))
        self.frames_published += 1

    def _positions(self) -> None:
        t = time.monotonic() - self._t0
        xyz = self.positions_at(t)
        age = np.full(self.people, 0.1)
        age[:2] = np.nan
        age[2:4] = 30.0  # stale fixes
        gdop = np.full(self.people, 1.4)
        alarm = np.zeros(self.people, dtype=np.uint8)
        index = {p.id: i for i, p in enumerate(self.site.people)}
        for r in self.alarms.values():
            i = index.get(r.get("person") or "")
            if i is not None and r["state"] in ("active_unack", "active_ack"):
                alarm[i] = max(alarm[i], _RANK[r["priority"]])
        self._send(
            "display.positions",
            "positions",
            {"xyz_m": xyz, "age_s": age, "gdop": gdop, "alarm": alarm},
            {"engine_ts_s": self.engine_ts_s(), "frame": self.frames_published},
        )

    def _sensors(self) -> None:
        g = len(self.site.gas_detectors)
        value = np.array(
            [
                0.1 * d.range_max * (1 + 0.1 * math.sin(time.monotonic() + i))
                for i, d in enumerate(self.site.gas_detectors)
            ]
        )
        quality = np.zeros(g, dtype=np.uint8)
        level = np.zeros(g, dtype=np.uint8)
        if g >= 3:
            value[1] = self.site.gas_detectors[1].high * 1.1
            level[1] = 2
            quality[2] = 2
            value[2] = np.nan
        v = len(self.site.vibration_points)
        rms = np.full(v, 1.1)
        zone = np.full(v, 1, dtype=np.uint8)  # A
        if v >= 5:
            rms[3], zone[3] = 3.6, 3  # VP04 in zone C (group 2 rigid: B/C 2.8, C/D 4.5 mm/s)
            rms[4], zone[4] = 2.0, 2  # VP05 in zone B
        self._send(
            "display.sensors",
            "sensors",
            {
                "gas_value": value,
                "gas_quality": quality,
                "gas_level": level,
                "vib_rms_mm_s": rms,
                "vib_quality": np.zeros(v, dtype=np.uint8),
                "vib_zone": zone,
            },
            {"engine_ts_s": self.engine_ts_s()},
        )
        if self.gas_field is not None:
            self._send(
                "display.gasfield",
                "gas_field",
                {"field": self.gas_field},
                {
                    "extent_m": list(self.site.floor_plan.extent_m),
                    "dx_m": GAS_FIELD_DX_M,
                    "unit": "fraction of level 2",
                    "engine_ts_s": self.engine_ts_s(),
                },
            )

    def _board(self) -> None:
        self._send("permit.board", "permit_board", {}, {"permits": self.permits})

    def muster_status(self) -> dict[str, Any]:
        """The muster picture now, shaped like alarms/muster.py ``Muster.status``: everyone located is on the
        roster; ``muster_rate_per_s`` people a second reach muster point 1 (site order from P0003); the others
        are missing at their positions (P0003 and P0004 with a 30 s old fix)."""
        now = self.engine_ts_s()
        if self.muster is None:
            return {"active": False, "engine_ts_s": now}
        elapsed = now - self.muster["declared_ts_s"]
        located = list(range(2, self.people))  # P0001 and P0002 never have a fix
        arrived = min(len(located) - 3, int(self.muster_rate_per_s * elapsed))
        mustered = located[len(located) - arrived :] if arrived > 0 else []
        xyz = self.positions_at(time.monotonic() - self._t0)
        points = [z for z in self.site.zones if z.kind == "muster_point"]
        missing = []
        for i in located[: len(located) - arrived]:
            p = self.site.people[i]
            missing.append(
                {
                    "person": p.id,
                    "tag": p.tag,
                    "name": p.name,
                    "position_m": [round(float(v), 2) for v in xyz[i]],
                    "fix_age_s": 30.0 if i in (2, 3) else 0.1,
                    "zones": [],
                }
            )
        return {
            "active": True,
            "number": 1,
            "engine_ts_s": now,
            "declared_ts_s": self.muster["declared_ts_s"],
            "declared_by": self.muster["declared_by"],
            "area": self.muster["area"],
            "elapsed_s": elapsed,
            "counts": {"roster": len(located), "mustered": len(mustered), "missing": len(missing)},
            "muster_points": [
                {
                    "zone": z.id,
                    "name": {"en": z.name.en, "zh-CN": z.name.zh_CN},
                    "count": len(mustered) if k == 0 else 0,
                    "people": [self.site.people[i].id for i in mustered] if k == 0 else [],
                }
                for k, z in enumerate(points)
            ],
            "missing": missing,
        }

    def _muster(self) -> None:
        if self.muster is not None:
            self._send("muster.status", "muster_status", {}, self.muster_status())

    def _status(self) -> None:
        t = time.monotonic() - self._t0
        self._send(
            "engine.status",
            "status",
            {},
            {
                "engine_ts_s": self.engine_ts_s(),
                "inputs": {"uwb": int(40 * t), "gas": int(20 * t)},
                "rejected": {"uwb: unknown anchor": 3},
                "positions": self.people - 2,
                "alarms_active": sum(1 for r in self.alarms.values() if r["state"].startswith("active")),
                "flood": {"main": bool(self.flood_state and self.flood_state["flood"])},
                "recording_seq": int(60 * t),
            },
        )

    def _answer(self, identity: bytes, payload: bytes) -> None:
        req = json.loads(payload)
        self.commands.append(req)
        changed: dict[str, Any] | None = None
        if req.get("op") == "snapshot":
            self.snapshot_requests += 1
            if not self.answer_snapshots:
                return
            reply = {
                "id": req.get("id"),
                "ok": True,
                "seq": self.seq,
                "alarms": list(self.alarms.values()),
                "permits": list(self.permits),
                "muster": self.muster_status() if self.muster is not None else None,
                "floods": [self.flood_state] if self.flood_state else [],
                "engine_ts_s": self.engine_ts_s(),
            }
        elif not self.answer_commands:
            return
        elif req.get("op") in ("muster_declare", "muster_end") or str(req.get("op")).startswith("permit_"):
            try:
                extra = self._safety_action(req)
                reply = {"id": req.get("id"), "ok": True, **extra}
            except _Refused as e:
                reply = {"id": req.get("id"), "ok": False, "reason": str(e)}
        else:
            try:
                changed = self._person_action(req)
                reply = {"id": req.get("id"), "ok": True}
            except _Refused as e:
                reply = {"id": req.get("id"), "ok": False, "reason": str(e)}
        self._router.send_multipart([identity, json.dumps(reply).encode()])
        if changed is not None:
            self.seq += 1
            if changed["state"] == "normal":
                self.alarms.pop(changed["id"], None)
            else:
                self.alarms[changed["id"]] = changed
            self._send("alarm.delta", "alarm_delta", {}, {"seq": self.seq, "alarms": [changed]})

    _ACTION = {
        "ack": "acknowledge",
        "reset": "reset",
        "shelve": "shelve",
        "unshelve": "unshelve",
        "remove_from_service": "remove_from_service",
        "return_to_service": "return_to_service",
        "comment": "comment",
    }

    def _safety_action(self, req: dict[str, Any]) -> dict[str, Any]:
        """A muster or permit command, checked like the engine; publishes the new muster status or board."""
        op, user = str(req.get("op")), str(req.get("user"))
        role = self._users.get(user)
        if role is None:
            raise _Refused(f"unknown user {req.get('user')!r}")
        if op in ("muster_declare", "muster_end"):
            if role not in ("supervisor", "admin"):
                raise _Refused(
                    f"role {role} may not {'declare' if op == 'muster_declare' else 'end'} a muster"
                )
            if op == "muster_declare":
                if self.muster is not None:
                    raise _Refused(
                        f"an emergency is already declared (since {self.muster['declared_ts_s']:.3f} by "
                        f"{self.muster['declared_by']})"
                    )
                area = req.get("area", "all")
                self.muster = {"declared_ts_s": self.engine_ts_s(), "declared_by": user, "area": area}
                self._send("muster.status", "muster_status", {}, self.muster_status())
            else:
                if self.muster is None:
                    raise _Refused("no emergency is declared")
                self.muster = None
                self._send("muster.status", "muster_status", {}, self.muster_status())
            return {}
        if op not in ("permit_suspend", "permit_resume", "permit_close"):
            raise _Refused(f"unknown command {op!r}")
        if role not in PERMIT_ROLES[op]:
            raise _Refused(f"role {role} may not {op.removeprefix('permit_')} permits")
        pid = str(req.get("permit", ""))
        permit = next((p for p in self.permits if p["id"] == pid), None)
        if permit is None:
            raise _Refused(f"no permit {pid!r}")
        want = {
            "permit_suspend": ("active",),
            "permit_resume": ("suspended",),
            "permit_close": ("active", "suspended", "approved", "requested"),
        }[op]
        if permit["state"] not in want:
            raise _Refused(f"permit {pid} is {permit['state']}")
        new = {
            "permit_suspend": ("suspended", "amber"),
            "permit_resume": ("active", "red"),
            "permit_close": ("closed", "grey"),
        }[op]
        permit.update(state=new[0], board=new[1], reason=str(req.get("reason", "")))
        self._board()
        return {"permit": pid, "state": new[0]}

    def _person_action(self, req: dict[str, Any]) -> dict[str, Any] | None:
        """Check and apply one person command like the engine; the changed record, or None (a comment)."""
        op, user, aid = req.get("op"), str(req.get("user")), str(req.get("alarm", ""))
        role = self._users.get(user)
        if role is None:
            raise _Refused(f"unknown user {req.get('user')!r}")
        action = self._ACTION.get(op) if isinstance(op, str) else None
        if action is None:
            raise _Refused(f"unknown command {op!r}")
        if action not in ROLE_ACTIONS.get(role, ()):
            raise _Refused(f"role {role} may not {action.replace('_', ' ')}")
        rec = self.alarms.get(aid)
        if rec is None:
            raise _Refused("no such alarm")
        f = {
            "active": rec.get("active", rec["state"].startswith("active_")),
            "acked": rec.get("acked", rec["state"] not in _UNACK),
            "latched": rec["state"].startswith("latched_"),
            "shelved": rec.get("shelved"),
            "out_of_service": rec.get("out_of_service"),
        }
        state = rec["state"]
        now = self.engine_ts_s()
        text = str(req.get("comment", req.get("reason", "")))
        new = dict(rec)
        if action == "acknowledge":
            if f["acked"] or state in ("shelved", "out_of_service", "suppressed"):
                raise _Refused(f"alarm is {state}: nothing to acknowledge")
            f["acked"] = True
            new["acked_by"] = user
        elif action == "reset":
            if not f["latched"]:
                raise _Refused(f"alarm is {state}: only a latched alarm is reset")
            if not f["acked"]:
                raise _Refused("acknowledge the latched alarm before resetting it")
            f["latched"] = False
        elif action == "shelve":
            limit = self.site.max_shelve_s.get(rec["priority"], 0.0)
            duration = req.get("duration_s")
            if not text.strip():
                raise _Refused("a shelve needs a reason")
            if isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0:
                raise _Refused("a shelve needs a positive duration")
            if duration > limit:
                raise _Refused(f"a {rec['priority']} alarm may be shelved for at most {limit:.0f} s")
            if state in ("shelved", "out_of_service"):
                raise _Refused(f"alarm is {state}")
            f["shelved"] = {"until_ts_s": now + float(duration), "by": user, "reason": text}
            f["acked"] = True
        elif action == "unshelve":
            if f["shelved"] is None:
                raise _Refused(f"alarm is {state}, not shelved")
            f["shelved"] = None
        elif action == "remove_from_service":
            if not text.strip():
                raise _Refused("taking an alarm out of service needs a reason")
            if f["out_of_service"] is not None:
                raise _Refused("alarm is already out of service")
            f["out_of_service"] = {"by": user, "reason": text}
        elif action == "return_to_service":
            if f["out_of_service"] is None:
                raise _Refused(f"alarm is {state}, not out of service")
            f["out_of_service"] = None
            if f["active"]:
                f["acked"] = False
                new["activated_ts_s"] = now
        else:  # comment
            if not text.strip():
                raise _Refused("empty comment")
            self.comments.append((aid, user, text))
            return None
        new.update(
            state=_state_of(f),
            active=f["active"],
            acked=f["acked"],
            shelved=f["shelved"],
            out_of_service=f["out_of_service"],
            changed_ts_s=now,
        )
        return new

    def _run(self) -> None:
        self._pub = bus.pub_socket(self._ctx, "tcp://127.0.0.1:*")
        self._router = bus.router_socket(self._ctx, "tcp://127.0.0.1:*")
        self.publish_endpoint = bus.bound_endpoint(self._pub)
        self.command_endpoint = bus.bound_endpoint(self._router)
        self._ready.set()
        due = {name: 0.0 for name in self.periods_s}
        work = {
            "positions": self._positions,
            "sensors": self._sensors,
            "status": self._status,
            "board": self._board,
            "muster": self._muster,
        }
        try:
            while not self._stop.is_set():
                while True:
                    try:
                        fn, fut = self._actions.get_nowait()
                    except queue.Empty:
                        break
                    try:
                        fut.set_result(fn())
                    except Exception as e:  # noqa: BLE001 - hand any failing test action back to the test
                        fut.set_exception(e)
                while self._router.poll(0):
                    identity, *frames = self._router.recv_multipart()
                    self._answer(identity, frames[-1])
                now = time.monotonic()
                for name, period in self.periods_s.items():
                    if now >= due[name]:
                        due[name] = now + period
                        if not self.paused:
                            work[name]()
                self._router.poll(5)
        finally:
            self._pub.close(linger=0)
            self._router.close(linger=0)


@contextlib.contextmanager
def console_process(engine: FakeEngine, log_path: Path, *, stop_timeout_s: float = 30.0) -> Iterator[str]:
    """Run ``python -m console.web.app`` for the demo site against ``engine`` on a free port; yields the base URL
    (``http://127.0.0.1:PORT``). On exit it sends SIGTERM and checks that the console stopped cleanly (exit 0)."""
    from config import DEMO_SITE
    from tests.conftest import free_port, wait_port

    port = free_port()
    with open(log_path, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "console.web.app",
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
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(stop_timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
    assert rc == 0, f"console did not stop cleanly on SIGTERM (rc {rc}):\n{log_path.read_text()[-3000:]}"
