"""ppe_violation: P0120 (no helmet) and P0121 (no vest) work at the station best seen by the first camera,
from ``ppe_start_s`` for ``ppe_s``."""

from __future__ import annotations

import logging

import numpy as np

from .stage import Stage

log = logging.getLogger(__name__)


def _best_seen_station(stage: Stage) -> int:
    """The station with the most of a 5 x 5 grid of its points in view of the first camera; -1 if none."""
    cam = stage.cameras[0]
    best, best_n = -1, 0
    for k, s in enumerate(stage.network.stations):
        x0, y0, x1, y1 = s.rect
        g = np.array([(x, y) for x in np.linspace(x0, x1, 5) for y in np.linspace(y0, y1, 5)])
        n = int(np.count_nonzero(cam.in_view(g)))
        if n > best_n:
            best, best_n = k, n
    return best


def tell(stage: Stage) -> None:
    if not stage.cameras:
        return
    tm, net = stage.timing, stage.network
    cam = stage.cameras[0]
    best = _best_seen_station(stage)
    if best < 0:
        log.warning("ppe_violation: no station is in view of camera %s", cam.id)
        return
    until = tm["ppe_start_s"] + tm["ppe_s"]

    def seen(p: tuple[float, float]) -> bool:
        return bool(cam.in_view(np.array([p]))[0])

    for pid, cls in (("P0120", "no_helmet"), ("P0121", "no_vest")):
        i = stage.person(pid)
        if i is None:
            continue
        it = stage.itineraries[i]
        it.start(net.station_place(best, it.random_spot(best, seen)))
        while it.end_s < until:
            it.pause(it.rng.uniform(15.0, 45.0))  # under the 60 s of man-down
            it.walk_to(net.station_place(best, it.random_spot(best, seen)))
        stage.ppe.append((i, cls, tm["ppe_start_s"], until))
    stage.mark("ppe_violation", {"from_s": tm["ppe_start_s"], "until_s": until})
