"""The scenarios' stories: one module per scenario that scripts people or the permit office.

Each module ``<scenario>.py`` has ``tell(stage)`` (a :data:`Story`): it scripts its people's itineraries on
the :class:`Stage` and leaves its milestones, permit commands, wearable events and PPE sightings there. The
scenarios that change only sensors (gas_leak, detector_fault, bearing_degradation) have no story: the gas
field and the vibration bank read the scenario names themselves.

To add a scenario: describe it and its timing in scenarios.py, write ``stories/<name>.py`` and add it to
:data:`STORIES`.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import (
    expired_certificate,
    gas_test_stale,
    hot_work,
    incompatible_jobs,
    lone_worker,
    man_down,
    muster_drill,
    permit_expiry,
    ppe_violation,
    restricted_entry,
    sos,
    unauthorized_entry,
    watcher_walkaway,
    worker_outside,
)
from .stage import MusterDrill, Stage, Story, WearableEvent

__all__ = ["STORIES", "MusterDrill", "Stage", "Story", "WearableEvent", "tell"]

#: scenario name -> its story, in the order they are told: permit commands sent at the same time keep this
#: order, milestones are listed in it, and incompatible_jobs needs hot_work's HW-1 first
STORIES: dict[str, Story] = {
    "restricted_entry": restricted_entry.tell,
    "watcher_walkaway": watcher_walkaway.tell,
    "hot_work": hot_work.tell,
    "incompatible_jobs": incompatible_jobs.tell,
    "expired_certificate": expired_certificate.tell,
    "worker_outside": worker_outside.tell,
    "unauthorized_entry": unauthorized_entry.tell,
    "permit_expiry": permit_expiry.tell,
    "gas_test_stale": gas_test_stale.tell,
    "lone_worker": lone_worker.tell,
    "man_down": man_down.tell,
    "sos": sos.tell,
    "ppe_violation": ppe_violation.tell,
    # last: the drill takes everyone as the other stories left them
    "muster_drill": muster_drill.tell,
}


def tell(stage: Stage, names: Iterable[str]) -> None:
    """Tell the stories of the scenarios ``names`` (those that have one), in :data:`STORIES` order."""
    wanted = set(names)
    for name, story in STORIES.items():
        if name in wanted:
            story(stage)
