"""incompatible_jobs: HW-3, a second hot-work permit in the zone of HW-1 for the same hours, is refused at
approval and cancelled. Needs HW-1 (the scenario brings hot_work, told first)."""

from __future__ import annotations

from ..permits import PermitCommand
from .stage import HOT_WORK_GAS, Stage


def tell(stage: Stage) -> None:
    hw1_activate_s = stage.milestones.get("hot_work.activate_s")
    if hw1_activate_s is None:  # HW-1's story was skipped
        return
    tm = stage.timing
    zid = stage.story_zone("Z-HW1", "hazardous")
    office = stage.office("incompatible_jobs")
    welder, watcher = stage.person("P0103"), stage.person("P0189")
    if zid is None or office is None or welder is None or watcher is None:
        return
    request_s = max(tm["conflict_request_s"], hw1_activate_s + 5.0)
    request = {
        "type": "hot_work",
        "grade": "1",
        "zone": zid,
        "workers": [stage.tags[welder]],
        "watcher": stage.tags[watcher],
        "description": "Cutting out a corroded bracket at PB-1",
    }
    cmds, times = stage.paperwork("HW-3", request, office, request_s=request_s, gas_values=HOT_WORK_GAS)
    cmds = [c for c in cmds if c.op not in ("permit_signin", "permit_activate")]  # it never gets that far
    approve = next(c for c in cmds if c.op == "permit_approve")
    cmds[cmds.index(approve)] = PermitCommand(
        approve.t_s, approve.op, approve.user, approve.fields, "refused"
    )
    close_s = times["approve_s"] + tm["cancel_after_s"]
    cmds.append(stage.close(close_s, office, "HW-3", "cancelled: conflicts with HW-1"))
    stage.commands += cmds
    stage.mark(
        "incompatible_jobs", {"request_s": request_s, "approve_s": times["approve_s"], "close_s": close_s}
    )
