"""The plant model: where everyone is, what the wearables say, what the gas field and machines do.

A pure, deterministic function of (site, seed, scenario, timing, t_s): ``t_s`` is seconds of simulation
time since the start. People follow the walking model (walking.py): each person's day is drawn from that
person's own random stream and extended lazily in time order, so the answer for a given ``t_s`` never
depends on which times were asked before. The scenarios' stories (stories/, one module per scenario) script
some of them, once, when the model is built; everyone else starts a normal day.

The permit stories (``hot_work``, ``expired_certificate``, ``incompatible_jobs``, ``watcher_walkaway``, and the
permit checks ``worker_outside``, ``unauthorized_entry``, ``permit_expiry``, ``gas_test_stale``) also
script the plant's permit office: :attr:`PlantModel.permit_commands`, sent by the simulator's
:class:`~ingest.simulator.permits.PermitDesk`. Their people keep to the same clock: a crew goes into its zone
``enter_after_s`` after the scripted activation, never on the reply.

The ``muster_drill`` story scripts the control room instead: :attr:`PlantModel.console_commands` (a supervisor
declaring the emergency and sounding the all clear), sent by the simulator's
:class:`~ingest.simulator.control_room.ControlRoom` to the engine's command socket like a console's;
:attr:`PlantModel.drill` says who stays missing and when everyone else is at a muster point.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from config.schema import Site

from . import stories
from .camera import CameraView
from .gas import GasField
from .layout import build_network
from .permits import PermitCommand
from .scenarios import parse_scenario, resolve_timing
from .stories import MusterDrill, Stage, WearableEvent
from .vibration import VibrationBank
from .walking import WALK_SPEED_M_S, Crowd, new_itinerary

__all__ = ["WALK_SPEED_M_S", "PlantModel", "WearableEvent"]

#: battery_low events across the whole site, per second
_BATTERY_LOW_RATE_HZ = 1.0 / 1200.0
_BATTERY_CHUNK_S = 600.0


def _numbered(commands: list[PermitCommand], prefix: str = "sim") -> list[PermitCommand]:
    """The commands in time order, each with its id ``<prefix>-<n>-<permit>-<op>`` (``<prefix>-<n>-<op>`` for
    a command on no permit)."""
    cmds = sorted(commands, key=lambda c: c.t_s)  # stable: same time keeps the script's order
    return [
        dataclasses.replace(
            c, id=f"{prefix}-{n:03d}-" + (f"{c.permit}-{c.op.removeprefix('permit_')}" if c.permit else c.op)
        )
        for n, c in enumerate(cmds, 1)
    ]


class PlantModel:
    """Everything the field devices observe, as pure functions of simulation time ``t_s`` (seconds).

    ``truth(t_s)`` -> float64 [P, 3] positions in site metres of ``site.people`` in order, z = tag height;
    ``wearable_events(t0_s, t1_s)`` -> events in (t0_s, t1_s]; ``ppe_classes(t_s)``; ``gas`` (GasField) and
    ``vibration`` (VibrationBank) for the sensors; ``milestones`` holds the scripted times of the scenario
    (e.g. ``restricted_entry.enter_s``) so tests and demos know when things happen; ``permit_commands`` the
    permit office's commands (:class:`PermitCommand`, in time order) that the stories need, ``console_commands``
    the control room's, ``drill`` the muster drill's plan (:class:`MusterDrill`, None without one).
    """

    def __init__(
        self,
        site: Site,
        seed: int = 1,
        scenario: str = "normal",
        *,
        timing: Mapping[str, float] | None = None,
    ) -> None:
        self.site = site
        self.seed = int(seed)
        self.scenario = scenario
        self.scenarios = parse_scenario(scenario)
        self.timing = resolve_timing(self.scenarios, timing)
        self.network = build_network(site)
        self.people_ids = [p.id for p in site.people]
        self.tags = [p.tag for p in site.people]
        self.tag_height_m = site.uwb.tag_height_m
        self.cameras = [CameraView(c) for c in site.cameras]
        itineraries = [new_itinerary(site, self.network, self.seed, i) for i in range(len(site.people))]
        stage = Stage(site, scenario, self.timing, self.network, itineraries, self.cameras, self.seed)
        stories.tell(stage, self.scenarios)
        self.milestones: dict[str, float] = stage.milestones
        self.permit_commands: list[PermitCommand] = _numbered(stage.commands)
        self.console_commands: list[PermitCommand] = _numbered(stage.console_commands, "sim-cr")
        self.drill: MusterDrill | None = stage.drill
        self._scripted_events: list[WearableEvent] = stage.wearable_events
        self._ppe = stage.ppe  # person index, class, from_s, until_s
        for it in itineraries:
            if it.place is None:
                it.start_normally()
        self._crowd = Crowd(itineraries)
        self.gas = GasField(site, self.seed, self.scenarios, self.timing)
        self.vibration = VibrationBank(site, self.seed, self.scenarios, self.timing)

    def truth(self, t_s: float) -> np.ndarray:
        """True tag positions at ``t_s``: float64 [P, 3] site metres, people in ``site.people`` order."""
        out = np.empty((len(self.tags), 3))
        out[:, 2] = self.tag_height_m
        if len(self.tags):
            out[:, :2] = self._crowd.positions(max(float(t_s), 0.0))
        return out

    # -- wearables, PPE -----------------------------------------------------------------------------------
    def wearable_events(self, t0_s: float, t1_s: float) -> list[WearableEvent]:
        """Wearable reports with t0_s < t_s <= t1_s, in time order."""
        out = [e for e in self._scripted_events if t0_s < e.t_s <= t1_s]
        if self.tags:
            c0 = max(math.floor(max(t0_s, 0.0) / _BATTERY_CHUNK_S), 0)
            c1 = math.floor(max(t1_s, 0.0) / _BATTERY_CHUNK_S)
            for c in range(c0, c1 + 1):
                rng = np.random.default_rng([self.seed, 11, c])
                n = int(rng.poisson(_BATTERY_LOW_RATE_HZ * _BATTERY_CHUNK_S))
                ts = (c + rng.random(n)) * _BATTERY_CHUNK_S
                who = rng.integers(len(self.tags), size=n)
                out += [
                    WearableEvent(float(t), self.tags[int(k)], "battery_low")
                    for t, k in zip(ts, who)
                    if t0_s < t <= t1_s
                ]
        return sorted(out, key=lambda e: (e.t_s, e.tag))

    def ppe_classes(self, t_s: float) -> dict[int, tuple[str, ...]]:
        """Person index -> PPE violation classes seen on camera at ``t_s`` (empty for almost everyone)."""
        out: dict[int, tuple[str, ...]] = {}
        for i, cls, t0, t1 in self._ppe:
            if t0 <= t_s < t1:
                out[i] = out.get(i, ()) + (cls,)
        return out
