"""Emergency muster: who has to be accounted for, who has reached a muster point, who is still missing.

A supervisor declares an emergency for the whole site (``"all"``) or for some zones at engine time ``t``. The
**roster** (the people to account for) is fixed then: everyone located so far for ``"all"``, the people inside
the declared zones otherwise; anyone who enters the declared area afterwards (a fence event) or, for
``"all"``, is located for the first time, joins it. A person is **mustered** while inside a ``muster_point`` zone (with the fences'
hysteresis); someone who leaves the muster point is missing again. :meth:`Muster.status` gives the live
headcount per muster point, the roster people not mustered with their last known position and the age of that
fix, and the time since the declaration.

Pure and deterministic: every time is engine time passed in; the returned dicts are ready to publish as JSON
(no NaN: unknown values are ``None``). The engine journals the declaration and the end and publishes the
status on the bus (``muster.status``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from config import Site

from .zones import FenceEvent, ZoneMembership

log = logging.getLogger(__name__)

__all__ = ["Muster", "MusterRefused"]


class MusterRefused(Exception):
    """A muster action that is not possible now; the text says why. State is unchanged."""


def _r(v: float, nd: int = 3) -> float | None:
    return round(float(v), nd) if math.isfinite(v) else None


class Muster:
    """At most one emergency at a time for a site's people and zones."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.people = site.people
        self.zone_ids = [z.id for z in site.zones]
        self.points = [k for k, z in enumerate(site.zones) if z.kind == "muster_point"]
        self.active = False
        self.declared_ts_s = math.nan
        self.declared_by = ""
        self.area: str | list[str] = "all"
        self.area_zones: list[int] = []
        self.roster = np.zeros(len(site.people), dtype=bool)
        self.count = 0  # emergencies declared so far

    def declare(self, t_s: float, user: str, area: str | list[str], membership: ZoneMembership,
                fix_ts_s: np.ndarray) -> dict[str, Any]:
        """Declare an emergency at engine time ``t_s`` for ``area`` (``"all"`` or a list of zone ids).
        ``fix_ts_s`` float [P]: time of each person's last fix (NaN: never located). Returns the declaration
        record (for the journal). Raises :class:`MusterRefused` when one is already declared, ``area`` names
        an unknown zone, ``user`` is empty or the site has no muster point."""
        if self.active:
            raise MusterRefused(f"an emergency is already declared (since {self.declared_ts_s:.3f} by "
                                f"{self.declared_by})")
        if not str(user).strip():
            raise MusterRefused("declaring an emergency needs a user")
        if not self.points:
            raise MusterRefused("the site has no muster_point zone")
        if area == "all":
            zones: list[int] = []
            roster = np.isfinite(fix_ts_s)
        else:
            if isinstance(area, str) or not isinstance(area, (list, tuple)) or not area:
                raise MusterRefused('area must be "all" or a non-empty list of zone ids')
            zones = []
            for zid in area:
                if zid not in self.zone_ids:
                    raise MusterRefused(f"unknown zone {zid!r}")
                k = self.zone_ids.index(zid)
                if k not in zones:
                    zones.append(k)
            roster = membership.inside[:, zones].any(axis=1)
        self.active = True
        self.count += 1
        self.declared_ts_s = float(t_s)
        self.declared_by = str(user)
        self.area = "all" if area == "all" else [self.zone_ids[k] for k in zones]
        self.area_zones = zones
        self.roster = roster.copy()
        log.info("emergency declared by %s at %.3f for %s: %d people to account for", user, t_s, self.area,
                 int(roster.sum()))
        return {"event": "muster_declare", "number": self.count, "declared_ts_s": self.declared_ts_s,
                "declared_by": self.declared_by, "area": self.area,
                "roster": [self.people[i].id for i in np.nonzero(roster)[0].tolist()]}

    def on_fence_events(self, events: Iterable[FenceEvent]) -> None:
        """Fence events from :meth:`ZoneMembership.update`: someone entering the declared area during the
        emergency joins the roster (even if they left again before the next status)."""
        if not self.active:
            return
        for e in events:
            if e.kind == "region_entry" and e.zone in self.area_zones and not self.roster[e.person]:
                self.roster[e.person] = True

    def status(self, now_s: float, xyz_m: np.ndarray, fix_ts_s: np.ndarray,
               membership: ZoneMembership) -> dict[str, Any]:
        """The muster picture at engine time ``now_s``. ``xyz_m`` float [P, 3] last positions (NaN: never
        located), ``fix_ts_s`` float [P] their times. Returns ``{"active": False, "engine_ts_s"}`` when no
        emergency is declared, else a dict with ``declared_ts_s``, ``declared_by``, ``area``, ``elapsed_s``,
        ``counts`` (``roster``, ``mustered``, ``missing``), ``muster_points`` (per point: ``zone``, ``name``,
        ``count`` = everyone inside, ``people``) and ``missing`` (per person not mustered: ``person``, ``tag``,
        ``name``, ``position_m`` [x, y, z] or None, ``fix_age_s`` or None, ``zones`` the person is in)."""
        if not self.active:
            return {"active": False, "engine_ts_s": _r(now_s)}
        # status is a view: it never changes the roster, so how often the engine looks cannot change a journal
        roster = self.roster if self.area_zones else self.roster | np.isfinite(fix_ts_s)
        at_point = membership.inside[:, self.points] if self.points else np.zeros((len(self.people), 0), bool)
        mustered = at_point.any(axis=1)
        points = []
        for j, k in enumerate(self.points):
            z = self.site.zones[k]
            who = np.nonzero(at_point[:, j])[0].tolist()
            points.append({"zone": z.id, "name": {"en": z.name.en, "zh-CN": z.name.zh_CN}, "count": len(who),
                           "people": [self.people[i].id for i in who]})
        missing = []
        for i in np.nonzero(roster & ~mustered)[0].tolist():
            p = self.people[i]
            pos = xyz_m[i]
            located = bool(np.isfinite(pos).all())
            missing.append({
                "person": p.id, "tag": p.tag, "name": p.name,
                "position_m": [round(float(v), 2) for v in pos] if located else None,
                "fix_age_s": _r(now_s - fix_ts_s[i]),
                "zones": [self.zone_ids[k] for k in np.nonzero(membership.inside[i])[0].tolist()],
            })
        roster_n = int(roster.sum())
        return {
            "active": True,
            "number": self.count,
            "engine_ts_s": _r(now_s),
            "declared_ts_s": _r(self.declared_ts_s),
            "declared_by": self.declared_by,
            "area": self.area,
            "elapsed_s": _r(now_s - self.declared_ts_s),
            "counts": {"roster": roster_n, "mustered": int((roster & mustered).sum()),
                       "missing": len(missing)},
            "muster_points": points,
            "missing": missing,
        }

    def end(self, t_s: float, user: str) -> dict[str, Any]:
        """End the emergency at engine time ``t_s``. Returns the end record (for the journal). Raises
        :class:`MusterRefused` when none is declared or ``user`` is empty."""
        if not self.active:
            raise MusterRefused("no emergency is declared")
        if not str(user).strip():
            raise MusterRefused("ending an emergency needs a user")
        self.active = False
        log.info("emergency ended by %s at %.3f after %.1f s", user, t_s, t_s - self.declared_ts_s)
        return {"event": "muster_end", "number": self.count, "declared_ts_s": self.declared_ts_s,
                "declared_by": self.declared_by, "area": self.area, "ended_ts_s": float(t_s), "ended_by": str(user),
                "duration_s": _r(t_s - self.declared_ts_s)}
