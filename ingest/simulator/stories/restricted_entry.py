"""restricted_entry: P0050 walks from the road into restricted zone Z-SUB, works there ``dwell_s`` and walks out."""

from __future__ import annotations

import numpy as np

from kernels.geofence import points_in_polygon

from .stage import Stage


def tell(stage: Stage) -> None:
    tm, net = stage.timing, stage.network
    i = stage.person("P0050")
    if i is None:
        return
    zid = (
        "Z-SUB"
        if "Z-SUB" in net.zone_access
        else next((z.id for z in stage.site.zones if z.kind == "restricted"), None)
    )
    if zid is None:
        return
    acc = net.zone_access[zid]
    it = stage.itineraries[i]
    it.start(net.node_place(acc.node))
    it.pause(tm["entry_start_s"])
    v = it.leg_speed()
    t_start = it.end_s
    arrive = it.walk([*acc.via, acc.inside], v)[-1]
    dwell = tm["dwell_s"]
    poly = stage.zone_poly(zid)
    step = (acc.inside[0], acc.inside[1] - 2.0)
    if points_in_polygon(np.array([step]), poly)[0]:  # a couple of steps while working
        it.pause(dwell / 2)
        it.walk([step, acc.inside], v)
    it.pause(max(arrive + dwell - it.end_s, 0.0))
    it.walk([*reversed(acc.via), tuple(net.nodes[acc.node])], v)
    it.place = net.node_place(acc.node)
    enter, leave = stage.crossings(i, poly, t_start, it.end_s + 1.0)
    stage.mark("restricted_entry", {"walk_s": t_start, "enter_s": enter, "leave_s": leave})
