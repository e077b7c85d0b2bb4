"""lone_worker: P0097 goes from the tank-farm road into tank T-3 (zone Z-T3) alone, without a permit, works
there ``lone_stay_s`` and comes out."""

from __future__ import annotations

import logging

from ..walking import Point, tether_inside, tether_outside
from .stage import Stage

log = logging.getLogger(__name__)

#: where P0097 waits on the tank-farm road, and his work spot inside tank T-3 (demo plant)
_T3_ROAD: Point = (260.0, 23.5)
_T3_INSIDE: Point = (260.0, 40.0)


def tell(stage: Stage) -> None:
    tm = stage.timing
    i = stage.person("P0097")
    if i is None:
        return
    if stage.network.kind != "demo" or all(z.id != "Z-T3" for z in stage.site.zones):
        log.warning("scenario lone_worker: needs the demo plant's tank T-3; skipped")
        return
    poly = stage.zone_poly("Z-T3")
    pace = stage.pace()
    road = tether_outside(poly, centre=_T3_ROAD, radius_m=1.5, margin_m=5.0, pause_s=pace)
    inside = tether_inside(poly, margin_m=3.0, pause_s=pace)
    manhole = (_T3_INSIDE[0], poly[:, 1].min() - 2.0)
    it = stage.itineraries[i]
    it.start(stage.place_at(_T3_ROAD))
    it.pace_until(road, tm["lone_start_s"])
    it.walk([manhole, _T3_INSIDE], it.leg_speed())
    it.pace_until(inside, it.end_s + tm["lone_stay_s"])
    it.walk([manhole, _T3_ROAD], it.leg_speed())
    it.tether = road
    enter, leave = stage.crossings(i, poly, tm["lone_start_s"], it.end_s + 1.0)
    stage.mark("lone_worker", {"enter_s": enter, "leave_s": leave})
