"""gas_test_stale: HW-5 (welder P0105, watcher P0192) is gas-tested once, activated and never tested again;
its test is stale ``gas_test_validity_s`` after it was taken."""

from __future__ import annotations

from .stage import HOT_WORK_GAS, Stage
from .yard_crew import yard_crew

_REQUEST = {"type": "hot_work", "grade": "2", "description": "Welding a new nozzle on a drain line"}


def tell(stage: Stage) -> None:
    request_s = stage.timing["stale_request_s"]
    job = yard_crew(stage, "gas_test_stale", "HW-5", _REQUEST, ("P0105",), "P0192", request_s, HOT_WORK_GAS)
    if job is None:
        return
    stage.itineraries[job.crew[0]].tether = job.work
    times = job.times
    times["stale_s"] = times["gas_test_s"] + stage.site.permit_settings.gas_test_validity_s
    stage.mark("gas_test_stale", times)
