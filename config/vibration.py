"""Site configuration of the vibration conditions: ISO 20816-3 zone boundaries, deadband, trend, staleness.

The section is :class:`VibrationSettings` (``Site.vibration``). The default zone table is ISO 20816-3:2022,
Annex A, Table A.1 (group 1) and Table A.2 (group 2), velocity columns: the same values as ISO 10816-3:2009
Tables A.1 / A.2, which the 2022 edition replaced. They were checked against the widely reproduced 2009 table,
not against a copy of the 2022 text; every value is configurable (``zone_table`` for a machine class,
``overrides`` for one point). docs/vibration.md has the table and the caveats.

Cross-checks that need the rest of the site (does point ``VP04`` exist? are the merged boundaries ordered?) are
in :func:`check_vibration_references`, which returns ``(path, reason)`` pairs for the loader. This module
imports nothing of ours (config/schema.py imports it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    from .schema import Site

__all__ = [
    "MachineGroup",
    "Foundation",
    "ZoneBoundaries",
    "ZoneTableRow",
    "ISO_20816_3_ZONES",
    "ZoneOverride",
    "TrendSettings",
    "VibrationSettings",
    "check_vibration_references",
]

MachineGroup = Literal["group1", "group2"]
Foundation = Literal["rigid", "flexible"]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
_MM_S = Field(gt=0, le=200, description="RMS velocity, mm/s, 10-1000 Hz")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ZoneBoundaries(_Strict):
    """The three ISO 20816-3 zone boundaries of a machine, RMS velocity in mm/s (10-1000 Hz).

    A value up to and including ``ab_mm_s`` is zone A (newly commissioned), up to ``bc_mm_s`` zone B
    (unrestricted long-term operation), up to ``cd_mm_s`` zone C (limited operation), above it zone D
    (vibration severe enough to cause damage).
    """

    ab_mm_s: float = _MM_S
    bc_mm_s: float = _MM_S
    cd_mm_s: float = _MM_S

    @model_validator(mode="after")
    def _ordered(self) -> ZoneBoundaries:
        if not self.ab_mm_s < self.bc_mm_s < self.cd_mm_s:
            raise ValueError(
                f"zone boundaries must rise: A/B {self.ab_mm_s} < B/C {self.bc_mm_s} "
                f"< C/D {self.cd_mm_s} mm/s"
            )
        return self


class ZoneTableRow(ZoneBoundaries):
    """The boundaries for one machine group on one kind of foundation."""

    group: MachineGroup
    foundation: Foundation


#: ISO 20816-3:2022 Annex A, Table A.1 (group 1: large machines, rated power above 300 kW, or electrical
#: machines of shaft height H >= 315 mm) and Table A.2 (group 2: medium machines, 15 kW to 300 kW, or electrical
#: machines of shaft height 160 mm <= H < 315 mm); RMS velocity, mm/s. Same values as ISO 10816-3:2009.
ISO_20816_3_ZONES: tuple[ZoneTableRow, ...] = (
    ZoneTableRow(group="group1", foundation="rigid", ab_mm_s=2.3, bc_mm_s=4.5, cd_mm_s=7.1),
    ZoneTableRow(group="group1", foundation="flexible", ab_mm_s=3.5, bc_mm_s=7.1, cd_mm_s=11.0),
    ZoneTableRow(group="group2", foundation="rigid", ab_mm_s=1.4, bc_mm_s=2.8, cd_mm_s=4.5),
    ZoneTableRow(group="group2", foundation="flexible", ab_mm_s=2.3, bc_mm_s=4.5, cd_mm_s=7.1),
)


class ZoneOverride(_Strict):
    """Settings of one vibration point that differ from its machine class (e.g. the baseline of a machine the
    manufacturer rates differently). Boundaries left out come from ``zone_table``."""

    point: Id = Field(description="vibration point id (vibration_points[].id)")
    ab_mm_s: float | None = Field(default=None, gt=0, le=200)
    bc_mm_s: float | None = Field(default=None, gt=0, le=200)
    cd_mm_s: float | None = Field(default=None, gt=0, le=200)
    deadband_fraction: float | None = Field(default=None, ge=0, lt=0.5)
    trend_rate_mm_s_per_day: float | None = Field(default=None, gt=0)


class TrendSettings(_Strict):
    """The sustained-rise warning: least-squares slope of the RMS velocity over a sliding window.

    The window is ``buckets`` buckets of ``window_s / buckets`` seconds each (a bounded ring per point); each
    bucket keeps the exact regression sums of its samples, so the slope is that of every sample in the window.
    """

    window_s: float = Field(default=86400.0, gt=0, le=30 * 86400.0, description="window length, seconds")
    buckets: int = Field(default=1440, ge=2, le=100_000, description="ring size per point (memory bound)")
    min_samples: int = Field(default=60, ge=3, description="fewest samples in the window for a slope")
    min_span_s: float = Field(
        default=21600.0, ge=0, description="shortest time from the oldest to the newest sample in the window"
    )
    rate_mm_s_per_day: float = Field(default=1.0, gt=0, description="raise when the slope exceeds this")
    clear_fraction: float = Field(
        default=0.8, gt=0, le=1, description="clear when the slope falls below rate x clear_fraction"
    )

    @model_validator(mode="after")
    def _span_fits(self) -> TrendSettings:
        if self.min_span_s > self.window_s:
            raise ValueError(f"min_span_s {self.min_span_s} is longer than window_s {self.window_s}")
        return self


class VibrationSettings(_Strict):
    """The ``vibration`` section of a site file (alarms/vibration.py reads it)."""

    zone_table: list[ZoneTableRow] = Field(
        default_factory=list,
        description="rows replacing the ISO 20816-3 defaults for a (group, foundation); the others keep them",
    )
    deadband_fraction: float = Field(
        default=0.05,
        ge=0,
        lt=0.5,
        description="a zone alarm clears below boundary x (1 - deadband_fraction); an alarm_rules deadband > 0 "
        "(mm/s) takes precedence",
    )
    stale_factor: float = Field(
        default=3.0,
        gt=1,
        le=100,
        description="stale fault after stale_factor x expected_interval_s without a value",
    )
    stale_from_start: bool = Field(
        default=False,
        description="a point never heard raises its stale fault stale_factor x expected_interval_s after the "
        "engine's first tick (False: only a point that has reported and then went quiet)",
    )
    trend: TrendSettings = TrendSettings()
    overrides: list[ZoneOverride] = []

    @model_validator(mode="after")
    def _unique(self) -> VibrationSettings:
        keys = [(r.group, r.foundation) for r in self.zone_table]
        dup = {k for k in keys if keys.count(k) > 1}
        if dup:
            raise ValueError(f"zone_table has more than one row for {sorted(dup)}")
        points = [o.point for o in self.overrides]
        dup_p = {p for p in points if points.count(p) > 1}
        if dup_p:
            raise ValueError(f"overrides has more than one entry for point(s) {sorted(dup_p)}")
        return self

    def table_row(self, group: MachineGroup, foundation: Foundation) -> ZoneBoundaries:
        """The boundaries of a machine class: the site's ``zone_table`` row, else the ISO default."""
        for r in self.zone_table:
            if r.group == group and r.foundation == foundation:
                return r
        for r in ISO_20816_3_ZONES:
            if r.group == group and r.foundation == foundation:
                return r
        raise KeyError((group, foundation))

    def override_for(self, point_id: str) -> ZoneOverride | None:
        for o in self.overrides:
            if o.point == point_id:
                return o
        return None

    def boundaries_for(self, point_id: str, group: MachineGroup, foundation: Foundation) -> ZoneBoundaries:
        """The boundaries of one point: its class row with the point's overrides applied (ValueError when the
        merge leaves them out of order)."""
        row = self.table_row(group, foundation)
        o = self.override_for(point_id)
        if o is None:
            return ZoneBoundaries(ab_mm_s=row.ab_mm_s, bc_mm_s=row.bc_mm_s, cd_mm_s=row.cd_mm_s)
        return ZoneBoundaries(
            ab_mm_s=o.ab_mm_s if o.ab_mm_s is not None else row.ab_mm_s,
            bc_mm_s=o.bc_mm_s if o.bc_mm_s is not None else row.bc_mm_s,
            cd_mm_s=o.cd_mm_s if o.cd_mm_s is not None else row.cd_mm_s,
        )


def check_vibration_references(
    site: Site, settings: VibrationSettings | None = None
) -> list[tuple[str, str]]:
    """``(path, reason)`` for every override that names an unknown point or leaves that point's merged
    boundaries out of order. ``settings`` default to ``site.vibration``. Empty when the section is consistent
    with the site."""
    settings = settings or getattr(site, "vibration", None) or VibrationSettings()
    points = {p.id: p for p in site.vibration_points}
    out: list[tuple[str, str]] = []
    for i, o in enumerate(settings.overrides):
        path = f"vibration.overrides[{i}]"
        p = points.get(o.point)
        if p is None:
            out.append((f"{path}.point", f"unknown vibration point {o.point!r}"))
            continue
        try:
            settings.boundaries_for(p.id, p.machine_group, p.foundation)
        except ValueError as e:
            reason = e.errors()[0]["msg"] if hasattr(e, "errors") else str(e)
            out.append((path, f"{reason} (after merging with {p.machine_group} {p.foundation})"))
    return out
