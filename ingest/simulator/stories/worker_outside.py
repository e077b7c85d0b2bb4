"""worker_outside: WH-1: the crew (P0005, P0029) works in its zone; ``stray_after_s`` after it is in, P0029
steps out ~5 m west of it and works on there."""

from __future__ import annotations

from ..walking import tether_outside
from .stage import Stage
from .yard_crew import YARD_RECTS, yard_crew

_REQUEST = {"type": "working_at_height", "grade": "II", "description": "Replacing a cable tray support"}


def tell(stage: Stage) -> None:
    tm = stage.timing
    job = yard_crew(
        stage, "worker_outside", "WH-1", _REQUEST, ("P0005", "P0029"), None, tm["outside_request_s"], None
    )
    if job is None:
        return
    stay, stray = (stage.itineraries[i] for i in job.crew)
    stay.tether = job.work
    poly, times = job.poly, job.times
    x0, y0, _, y1 = YARD_RECTS["WH-1"]
    out_s = times["crew_in_s"] + tm["stray_after_s"]
    stray.pace_until(job.work, out_s)
    there = (x0 - 5.0, (y0 + y1) / 2)
    stray.walk([there], stray.leg_speed())
    stray.tether = tether_outside(poly, centre=there, radius_m=1.5, margin_m=3.5, pause_s=stage.pace())
    _, left = stage.crossings(job.crew[1], poly, out_s - 1.0, stray.end_s + 1.0)
    stage.mark("worker_outside", times)
    stage.milestones["worker_outside.out_s"] = left
