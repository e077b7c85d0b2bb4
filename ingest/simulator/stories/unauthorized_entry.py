"""unauthorized_entry: WH-2: the crew (P0034) works in its zone; ``intrude_after_s`` after the activation
P0143, not on the permit, walks in, stays ``intrude_stay_s`` and walks out."""

from __future__ import annotations

from ..walking import tether_outside
from .stage import Stage
from .yard_crew import YARD_RECTS, yard_crew

_REQUEST = {"type": "working_at_height", "grade": "I", "description": "Painting the rack's upper beams"}


def tell(stage: Stage) -> None:
    tm = stage.timing
    job = yard_crew(
        stage, "unauthorized_entry", "WH-2", _REQUEST, ("P0034",), None, tm["intrude_request_s"], None
    )
    i = stage.person("P0143")
    if job is None or i is None:
        return
    stage.itineraries[job.crew[0]].tether = job.work
    poly, times = job.poly, job.times
    _, y0, x1, y1 = YARD_RECTS["WH-2"]
    away = (x1 + 10.0, (y0 + y1) / 2)
    loiter = tether_outside(poly, centre=away, radius_m=2.0, margin_m=7.0, pause_s=stage.pace())
    it = stage.itineraries[i]
    it.start(stage.place_at(away))
    go_s = times["activate_s"] + tm["intrude_after_s"]
    it.pace_until(loiter, go_s)
    it.walk([(x1 - 3.0, (y0 + y1) / 2)], it.leg_speed())
    it.pace_until(job.work, it.end_s + tm["intrude_stay_s"])
    it.walk([away], it.leg_speed())
    it.tether = loiter
    enter, leave = stage.crossings(i, poly, go_s, it.end_s + 1.0)
    stage.mark("unauthorized_entry", times)
    stage.mark("unauthorized_entry", {"enter_s": enter, "leave_s": leave})
