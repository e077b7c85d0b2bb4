"""permit_expiry: WH-3 is valid until ``expiry_work_s`` after its activation; the crew (P0044, P0072) is
still in when it runs out and leaves ``exit_after_s`` later."""

from __future__ import annotations

from .stage import Stage
from .yard_crew import yard_crew

_REQUEST = {"type": "working_at_height", "grade": "II", "description": "Insulating a line at the pipe rack"}


def tell(stage: Stage) -> None:
    tm = stage.timing
    job = yard_crew(
        stage,
        "permit_expiry",
        "WH-3",
        _REQUEST,
        ("P0044", "P0072"),
        None,
        tm["expiry_request_s"],
        None,
        valid_for_s=tm["expiry_work_s"],
    )
    if job is None:
        return
    times = job.times
    out_s = times["valid_to_s"] + tm["exit_after_s"]
    for k, i in enumerate(job.crew):
        it = stage.itineraries[i]
        it.pace_until(job.work, out_s + 1.0 * k)
        it.walk([job.wait.draw(it.rng, it.xy[-1])], it.leg_speed())
        it.tether = job.wait
    times["all_out_s"] = max(stage.crossings(i, job.poly, out_s - 1.0, out_s + 30.0)[1] for i in job.crew)
    stage.mark("permit_expiry", times)
