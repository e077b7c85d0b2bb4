"""hot_work: HW-1 at pipe bridge PB-1. The crew (P0101, P0102) waits on the road side, the watcher (P0187)
stands 2 m east of the zone, the office gets the permit active, the crew goes in and works there from then on.

Leaves HW-1's paperwork times in the milestones (``hot_work.activate_s``, ...): incompatible_jobs reads them.
"""

from __future__ import annotations

from ..layout import Place
from ..walking import tether_inside, tether_outside
from .stage import HOT_WORK_GAS, Stage


def tell(stage: Stage) -> None:
    tm, net = stage.timing, stage.network
    zid = stage.story_zone("Z-HW1", "hazardous")
    crew = [stage.person(p) for p in ("P0101", "P0102")]
    w = stage.person("P0187")
    office = stage.office("hot_work")
    if zid is None or w is None or None in crew:
        return
    acc = net.zone_access[zid]
    poly = stage.zone_poly(zid)
    chain, staging = stage.road_side(zid, 5.0)
    start = Place(acc.node, (), chain[1] if len(chain) > 2 else chain[0])
    pace = stage.pace()
    watch = tether_outside(poly, centre=acc.post, radius_m=2.5, margin_m=1.5, pause_s=pace)
    wait = tether_outside(poly, centre=staging, radius_m=2.0, margin_m=3.0, pause_s=pace)
    work = tether_inside(poly, margin_m=2.5, pause_s=pace)
    watcher = stage.itineraries[w]
    watcher.start(start)
    at_post = watcher.walk([acc.post], watcher.leg_speed())[-1]
    watcher.place = Place(acc.node, acc.via, acc.post)
    watcher.tether = watch
    request = {
        "type": "hot_work",
        "grade": "2",
        "zone": zid,
        "workers": [stage.tags[i] for i in crew],
        "watcher": stage.tags[w],
        "description": "Welding a pipe support at pipe bridge PB-1",
    }
    cmds, times = stage.paperwork(
        "HW-1",
        request,
        office,
        request_s=tm["hot_work_request_s"],
        gas_values=HOT_WORK_GAS,
        activate_not_before_s=at_post + 3.0,
    )
    if office:
        stage.commands += cmds
    enter_s = times["activate_s"] + tm["enter_after_s"]
    for k, i in enumerate(crew):
        it = stage.itineraries[i]
        it.start(start)
        it.walk([staging], it.leg_speed())
        it.pace_until(wait, enter_s + 1.5 * k)
        spot = work.draw(it.rng, acc.inside)
        it.walk([acc.inside, spot], it.leg_speed())
        it.place = Place(acc.node, (*acc.via, acc.inside), spot)
        it.tether = work
    enter, _ = stage.crossings(crew[0], poly, enter_s, enter_s + 60.0)
    stage.mark("hot_work", times)
    stage.mark("hot_work", {"watcher_at_post_s": at_post, "enter_s": enter})
