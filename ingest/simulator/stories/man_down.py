"""man_down: P0077 is on a walk of 40 m or more when he falls at ``fall_s``; he lies still, his wearable
reports the fall."""

from __future__ import annotations

from .stage import Stage, WearableEvent


def tell(stage: Stage) -> None:
    i = stage.person("P0077")
    if i is None:
        return
    it = stage.itineraries[i]
    fall = stage.timing["fall_s"]
    it.start_normally(first_pause_s=max(fall - 8.0, 0.0))
    it.next_leg(min_route_m=40.0)
    it.freeze_at(fall)
    stage.wearable_events.append(WearableEvent(fall, stage.tags[i], "fall"))
    stage.milestones["man_down.fall_s"] = fall
