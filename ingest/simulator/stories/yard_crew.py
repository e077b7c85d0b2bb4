"""A crew at its permit's own rectangle in the demo plant's yard: the shared beginning of the permit-check
stories (worker_outside, unauthorized_entry, permit_expiry, gas_test_stale)."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..walking import Tether, tether_inside, tether_outside
from .stage import Stage

__all__ = ["YARD_RECTS", "YardJob", "yard_crew"]

log = logging.getLogger(__name__)

#: the work places of the permit-check stories: rectangles (x0, y0, x1, y1), metres, in the quiet yard
#: between the west road and the main road of the demo plant, at least 12 m from each other, the roads and
#: the stations
YARD_RECTS: dict[str, tuple[float, float, float, float]] = {
    "WH-1": (50.0, 60.0, 60.0, 68.0),
    "WH-2": (72.0, 60.0, 82.0, 68.0),
    "WH-3": (50.0, 80.0, 60.0, 88.0),
    "HW-5": (72.0, 80.0, 82.0, 88.0),
}


@dataclass
class YardJob:
    """A crew at work: ``crew`` person indices, ``poly`` the permit's rectangle (float64 [4, 2] metres),
    ``work`` a tether inside it, ``wait`` one south of it, ``times`` the paperwork's times plus ``crew_in_s``
    (and ``valid_to_s`` when the validity was shortened), simulation s."""

    crew: list[int]
    poly: np.ndarray
    work: Tether
    wait: Tether
    times: dict[str, float]


def yard_crew(
    stage: Stage,
    story: str,
    permit: str,
    request: Mapping[str, object],
    crew_ids: tuple[str, ...],
    watcher_id: str | None,
    request_s: float,
    gas_values: Mapping[str, float] | None,
    valid_for_s: float | None = None,
) -> YardJob | None:
    """A crew at permit ``permit``'s own rectangle (:data:`YARD_RECTS`): it waits 1.5-3.5 m south of it
    (the watcher, if any, 2 m east of it from the start), the office gets the permit active, the crew goes
    in ``enter_after_s`` later (a second apart) and has walked to a work spot 2 m or more inside; the
    caller goes on with each worker's itinerary. ``valid_for_s``: the validity ends that long after the
    scripted activation. Returns None (and a warning) when the story cannot be told on this site."""
    tm, net = stage.timing, stage.network
    crew = [stage.person(p) for p in crew_ids]
    w = stage.person(watcher_id) if watcher_id else None
    office = stage.office(story)
    if None in crew or (watcher_id and w is None) or office is None:
        return None
    if net.kind != "demo":
        log.warning("scenario %s: needs the demo plant's yard; skipped", story)
        return None
    x0, y0, x1, y1 = YARD_RECTS[permit]
    corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
    poly = np.asarray(corners, dtype=float)
    pace = stage.pace()
    staging = ((x0 + x1) / 2, y0 - 2.5)
    wait = tether_outside(poly, centre=staging, radius_m=1.0, margin_m=1.5, pause_s=pace)
    work = tether_inside(poly, margin_m=2.0, pause_s=pace)
    fields = dict(request)
    fields.update(polygon=[list(p) for p in corners], workers=[stage.tags[i] for i in crew])
    if w is not None:
        post = (x1 + 2.0, (y0 + y1) / 2)
        watcher = stage.itineraries[w]
        watcher.start(stage.place_at(post))
        watcher.tether = tether_outside(poly, centre=post, radius_m=2.5, margin_m=1.5, pause_s=pace)
        fields["watcher"] = stage.tags[w]
    cmds, times = stage.paperwork(
        permit, fields, office, request_s=request_s, gas_values=gas_values, activate_not_before_s=3.0
    )
    if gas_values is None:
        del times["gas_test_s"]  # no test: approval follows the request after both gaps
    if valid_for_s is not None:
        times["valid_to_s"] = times["activate_s"] + valid_for_s
        cmds[0] = dataclasses.replace(cmds[0], fields={**cmds[0].fields, "valid_to_s": times["valid_to_s"]})
    stage.commands += cmds
    enter_s = times["activate_s"] + tm["enter_after_s"]
    door = ((x0 + x1) / 2, y0 + 2.5)
    for k, i in enumerate(crew):
        it = stage.itineraries[i]
        it.start(stage.place_at(staging))
        it.pace_until(wait, enter_s + 1.0 * k)
        it.walk([work.draw(it.rng, door)], it.leg_speed())
    times["crew_in_s"] = max(stage.crossings(i, poly, enter_s, enter_s + 30.0)[0] for i in crew)
    return YardJob(crew, poly, work, wait, times)
