"""watcher_walkaway: CS-1 at vessel V-205. The entrant (P0185) waits by the manhole with his watcher (P0186),
the office gets the permit active, he goes in; the watcher (optionally stands stock-still for a while, then)
walks ~60 m away and comes back ``away_s`` later; the entrant comes out and the office closes CS-1."""

from __future__ import annotations

import logging
import math

import numpy as np

from ..layout import Place, ZoneAccess
from ..permits import PermitCommand
from ..walking import PACE_SPEED_M_S, Itinerary, Tether, tether_inside, tether_outside
from .stage import Stage, polyline_m

log = logging.getLogger(__name__)

#: CS-1's gas test: LEL %, O2 %, H2S ppm, CO ppm
_CONFINED_SPACE_GAS = {"LEL": 0.0, "O2": 20.8, "H2S": 0.0, "CO": 0.0}


def tell(stage: Stage) -> None:
    tm, net = stage.timing, stage.network
    zid = stage.story_zone("Z-V205", "confined_space")
    w = stage.person("P0186")
    if zid is None or w is None:
        return
    e = stage.person("P0185")
    office = stage.office("watcher_walkaway")
    acc = net.zone_access[zid]
    poly = stage.zone_poly(zid)
    post_place = Place(acc.node, acc.via, acc.post)
    pace = stage.pace()
    watch = tether_outside(poly, centre=acc.post, radius_m=2.5, margin_m=1.5, pause_s=pace)
    watcher = stage.itineraries[w]
    watcher.start(post_place)
    enter_s = tm["walkaway_request_s"]
    if e is not None:
        request = {
            "type": "confined_space",
            "zone": zid,
            "workers": [stage.tags[e]],
            "watcher": stage.tags[w],
            "description": "Internal inspection of vessel V-205",
        }
        cmds, times = stage.paperwork(
            "CS-1",
            request,
            office,
            request_s=tm["walkaway_request_s"],
            gas_values=_CONFINED_SPACE_GAS,
            activate_not_before_s=3.0,
        )
        if office:
            stage.commands += cmds
        stage.mark("watcher_walkaway", times)
        enter_s = times["activate_s"] + tm["enter_after_s"]
    resume_s = -math.inf
    if tm["watcher_still_s"] > 0:
        resume_s = _stand_still(stage, watcher, watch, enter_s, office if e is not None else None)
    leave_s = max(tm["walkaway_start_s"], enter_s + 5.0, resume_s + 1.0)
    if leave_s > tm["walkaway_start_s"]:
        log.info("watcher_walkaway: the watcher leaves at %.1f s (after the permit is active)", leave_s)
    watcher.pace_until(watch, leave_s)
    arrive_s, back_s = _walk_away(stage, watcher, poly, acc, leave_s)
    limit = stage.site.permit_settings.watcher_max_distance_m
    stage.mark(
        "watcher_walkaway",
        {
            "leave_s": leave_s,
            "beyond_limit_s": stage.first_beyond(w, poly, limit, leave_s, arrive_s + 0.1),
            "far_s": arrive_s,
            "back_s": back_s,
        },
    )
    exit_s = back_s + 120.0
    if e is not None:
        exit_s = _entrant(stage, e, zid, post_place, enter_s, exit_s)
        if office:
            stage.commands.append(stage.close(exit_s + 10.0, office, "CS-1", "work finished, entrant out"))
    watcher.pace_until(watch, max(exit_s + 10.0, watcher.end_s))


def _stand_still(
    stage: Stage, watcher: Itinerary, watch: Tether, enter_s: float, office: tuple[str, str] | None
) -> float:
    """The watcher stands stock-still ``watcher_still_s`` from ``still_start_s`` (not before the entrant is in);
    returns when the supervisor resumes CS-1 (-inf if the stillness was too short to suspend it)."""
    tm, ms = stage.timing, stage.milestones
    limit_s = stage.site.permit_settings.watcher_max_stationary_s
    watcher.pace_until(watch, max(tm["still_start_s"], enter_s + 5.0))
    # a last whole move (a clear stop for the tracker), then he stands stock-still
    watcher.walk([watch.draw(watcher.rng, watcher.xy[-1])], float(watcher.rng.uniform(*PACE_SPEED_M_S)))
    ms["watcher_walkaway.still_from_s"] = watcher.end_s
    watcher.pause(tm["watcher_still_s"])
    ms["watcher_walkaway.still_until_s"] = watcher.end_s
    # once he moves again the supervisor resumes CS-1, if the stillness was long enough to suspend it
    if watcher.end_s - ms["watcher_walkaway.still_from_s"] <= limit_s:
        return -math.inf
    resume_s = watcher.end_s + tm["resume_after_s"]
    ms["watcher_walkaway.resume_s"] = resume_s
    if office:
        stage.commands.append(PermitCommand(resume_s, "permit_resume", office[1], {"permit": "CS-1"}))
    return resume_s


def _walk_away(
    stage: Stage, watcher: Itinerary, poly: np.ndarray, acc: ZoneAccess, leave_s: float
) -> tuple[float, float]:
    """At ``leave_s`` the watcher walks from his post to a walkway node ~60 m away, spends the time there and
    walks back to be at his post ``away_s`` after he left. Returns (arrival there, arrival back), simulation s."""
    net = stage.network
    post_place = Place(acc.node, acc.via, acc.post)
    # the walkway node about 60 m away (straight line) with the shortest way there
    straight = np.hypot(*(net.nodes - np.asarray(acc.post)).T)
    way = net.dist[acc.node] + polyline_m([acc.post, *reversed(acc.via), tuple(net.nodes[acc.node])])
    ok = (straight >= 50.0) & (straight <= 75.0)
    far = int(np.argmin(np.where(ok, way, np.inf))) if ok.any() else int(np.argmin(np.abs(straight - 60.0)))
    v = watcher.leg_speed()
    arrive_s = watcher.walk_to(net.node_place(far), v)[-1]
    back_walk_s = polyline_m(net.route(net.node_place(far), post_place)) / v
    elsewhere = tether_outside(poly, centre=watcher.xy[-1], radius_m=2.5, margin_m=0.0, pause_s=stage.pace())
    # he sets off back from the node so that he is at his post again at leave + away
    set_off = leave_s + stage.timing["away_s"] - back_walk_s
    watcher.pace_until(elsewhere, max(set_off - 5.0, watcher.end_s))
    watcher.walk([tuple(net.nodes[far])], v)
    watcher.pause(max(set_off - watcher.end_s, 0.0))
    back_s = watcher.walk_to(post_place, v)[-1]
    return arrive_s, back_s


def _entrant(stage: Stage, e: int, zid: str, post_place: Place, enter_s: float, exit_s: float) -> float:
    """The entrant waits on the road side, goes in at ``enter_s``, works inside until ``exit_s`` and comes out
    to the post; returns when he is out, simulation s."""
    acc = stage.network.zone_access[zid]
    poly = stage.zone_poly(zid)
    pace = stage.pace()
    _, staging = stage.road_side(zid, 4.0)
    wait = tether_outside(poly, centre=staging, radius_m=2.0, margin_m=3.0, pause_s=pace)
    work = tether_inside(poly, margin_m=2.5, pause_s=pace)
    entrant = stage.itineraries[e]
    entrant.start(Place(acc.node, acc.via, staging))
    entrant.pace_until(wait, enter_s)
    entrant.walk([acc.post, acc.inside], entrant.leg_speed())
    stage.milestones["watcher_walkaway.enter_s"] = stage.crossings(e, poly, enter_s, entrant.end_s + 1.0)[0]
    entrant.pace_until(work, exit_s)
    entrant.walk([acc.inside, acc.post], entrant.leg_speed())
    entrant.place = post_place
    stage.milestones["watcher_walkaway.entrant_out_s"] = entrant.end_s
    return entrant.end_s
