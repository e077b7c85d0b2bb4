"""Records shaped as the engine publishes them (``alarm.delta`` AlarmRecords, ``permit.board`` entries), for the
tests of pure console functions (tiles, row builders, banners) that need no engine. tests/test_console_link.py
checks these shapes against the real engine's records, so they cannot drift from it unnoticed."""

from __future__ import annotations

from typing import Any

__all__ = ["EPOCH_S", "alarm_record", "permit_record", "default_permits"]

EPOCH_S = 1763798400.0  # 2025-11-22 08:00:00 UTC: the records' clock starts here


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
        "jsa": None,
        "signin": None,
        "history": [],
        "last_refusal": None,
        "checks": [],  # the board adds them and the engine's verdicts below (PermitBook.record)
        "jsa_required": False,
        "certificates": [{"tag": w, "type": type_, "expires": "2027-09-30", "status": "ok"}
                         for w in (workers if workers is not None else ["T0101", "T0102"])],
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
