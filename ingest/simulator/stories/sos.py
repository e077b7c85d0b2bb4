"""sos: P0033 presses the SOS button of its wearable at ``sos_s`` and keeps walking."""

from __future__ import annotations

from .stage import Stage, WearableEvent


def tell(stage: Stage) -> None:
    i = stage.person("P0033")
    if i is None:
        return
    sos_s = stage.timing["sos_s"]
    stage.wearable_events.append(WearableEvent(sos_s, stage.tags[i], "sos"))
    stage.milestones["sos.sos_s"] = sos_s
