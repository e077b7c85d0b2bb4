"""expired_certificate: HW-2 on pipe rack PR-1: welder P0042's hot-work certificate has expired, so the
activation is refused; the office cancels HW-2 and the welder and his watcher (P0188) go back to other work."""

from __future__ import annotations

import logging

import numpy as np

from ..walking import Point, tether_outside
from .stage import HOT_WORK_GAS, Stage

log = logging.getLogger(__name__)

#: permit HW-2's work: a bay of pipe rack PR-1 over the main road, and where its crew waits (demo plant)
_HW2_POLYGON: tuple[Point, ...] = ((62.0, 102.0), (70.0, 102.0), (70.0, 108.0), (62.0, 108.0))
_HW2_STAGING: Point = (66.0, 113.5)


def tell(stage: Stage) -> None:
    tm, net = stage.timing, stage.network
    welder, w = stage.person("P0042"), stage.person("P0188")
    office = stage.office("expired_certificate")
    if welder is None or w is None:
        return
    if net.kind != "demo" or "R75" not in net.names:
        log.warning("scenario expired_certificate: needs the demo plant's pipe rack; skipped")
        return
    poly = np.asarray(_HW2_POLYGON, dtype=float)
    home = net.node_place(net.names.index("R75"))
    wait = tether_outside(poly, centre=_HW2_STAGING, radius_m=2.0, margin_m=3.0, pause_s=stage.pace())
    arrive = []
    for i in (welder, w):
        it = stage.itineraries[i]
        it.start(home)
        arrive.append(it.walk([_HW2_STAGING], it.leg_speed())[-1])
    request = {
        "type": "hot_work",
        "grade": "2",
        "polygon": [list(p) for p in _HW2_POLYGON],
        "workers": [stage.tags[welder]],
        "watcher": stage.tags[w],
        "description": "Welding a pipe shoe on pipe rack PR-1, bay 7",
    }
    cmds, times = stage.paperwork(
        "HW-2",
        request,
        office,
        request_s=tm["expired_request_s"],
        gas_values=HOT_WORK_GAS,
        activate_not_before_s=max(arrive) + 3.0,
        expect_activate="refused",
    )
    close_s = times["activate_s"] + tm["cancel_after_s"]
    if office:
        reason = "cancelled: the welder's hot-work certificate has expired"
        stage.commands += [*cmds, stage.close(close_s, office, "HW-2", reason)]
    for i in (welder, w):  # they wait for the permit, then go back to other work
        it = stage.itineraries[i]
        it.pace_until(wait, close_s + 10.0)
        it.walk_to(home)
    stage.mark("expired_certificate", times)
    stage.milestones["expired_certificate.close_s"] = close_s
