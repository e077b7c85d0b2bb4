"""Vibration conditions: ISO 20816-3 severity zones, sustained rise, stale data.

:class:`VibrationConditions` turns RMS velocity samples (``vibration.features`` batches) and clock ticks into
condition changes ``(definition, active, position)`` for :meth:`AlarmBook.set_condition`. It is pure: every
time is an event or engine time passed in, nothing reads a clock, so replay reproduces it. Memory is bounded:
a fixed ring of trend buckets per point.

- ``vibration.zone_c:<point>`` (condition ``vibration.zone_c``, medium): RMS velocity above the B/C boundary of
  the point's machine group and foundation; clears below the boundary minus the deadband.
- ``vibration.zone_d:<point>`` (``vibration.zone_d``, high): above the C/D boundary; same deadband rule. A
  point in zone D has both alarms (a HI stays under its HIHI).
- ``vibration.trend:<point>`` (``vibration.trend``, low): the least-squares slope of the RMS velocity over the
  trend window exceeds ``rate_mm_s_per_day``, with at least ``min_samples`` samples spanning ``min_span_s``;
  clears below ``rate x clear_fraction`` or when the window no longer holds enough samples.
- ``vibration.stale:<point>`` (``vibration.stale``, low): no value for more than ``stale_factor x
  expected_interval_s`` (from the last sample's time, or from the first tick for a point never heard unless
  ``stale_from_start`` is off);
  clears on the next fresh value (DESIGN principle 4).

A value exactly on a boundary belongs to the lower zone (a boundary is the upper limit of its zone); a zone
alarm that is up stays up at exactly ``boundary - deadband`` and clears just below it. docs/vibration.md has
the table, the formulas and the configuration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from config import Site
from config.vibration import VibrationSettings

from .awake import AwakeClock
from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition

log = logging.getLogger(__name__)

__all__ = ["VibrationConditions", "PointThresholds", "TrendWindow", "Change", "ZONES", "severity_zone"]

#: a condition change for :meth:`AlarmBook.set_condition`: (definition, active, (x, y) site metres or None)
Change = tuple[AlarmDefinition, bool, tuple[float, float] | None]

#: zone letters by the index :func:`severity_zone` returns
ZONES = ("A", "B", "C", "D")

_DAY_S = 86400.0
_NO_BUCKET = np.iinfo(np.int64).min


def severity_zone(rms_mm_s: np.ndarray | float, ab_mm_s: float, bc_mm_s: float, cd_mm_s: float) -> np.ndarray:
    """ISO 20816-3 zone index (0 = A .. 3 = D, -1 for NaN) of RMS velocities in mm/s; int8 of the input's
    shape. A value on a boundary is in the lower zone."""
    v = np.asarray(rms_mm_s, dtype=np.float64)
    z = (v > ab_mm_s).astype(np.int8) + (v > bc_mm_s) + (v > cd_mm_s)
    return np.where(np.isnan(v), -1, z).astype(np.int8)


@dataclass(frozen=True)
class PointThresholds:
    """What one point is judged against: zone boundaries and the levels the zone alarms clear below (mm/s RMS
    velocity), the trend rate (mm/s per day) and the stale limit (s)."""

    ab_mm_s: float
    bc_mm_s: float
    cd_mm_s: float
    bc_clear_mm_s: float
    cd_clear_mm_s: float
    trend_rate_mm_s_per_day: float
    stale_after_s: float


class TrendWindow:
    """Least-squares slope of a value over a sliding time window, for P series, in bounded memory.

    Each series has a ring of ``buckets`` buckets of ``window_s / buckets`` seconds; bucket ``b`` holds the
    samples with ``floor(ts / width) == b`` as (count, mean t, mean y, sum (t - mean t)^2, sum (t - mean t)(y -
    mean y)), updated one sample at a time (Welford). Buckets combine exactly, so :meth:`fit` gives the
    ordinary least-squares slope of all samples in the window: the newest bucket of the series and the
    ``buckets - 1`` before it. Samples older than that are refused.
    """

    def __init__(self, n_series: int, window_s: float, buckets: int) -> None:
        if not (window_s > 0 and buckets >= 2):
            raise ValueError("window_s must be positive and buckets at least 2")
        self.width_s = window_s / buckets
        self.buckets = buckets
        shape = (n_series, buckets)
        self.bucket = np.full(shape, _NO_BUCKET, dtype=np.int64)  # bucket number held by each slot
        self.n = np.zeros(shape)
        self.t_mean = np.zeros(shape)
        self.y_mean = np.zeros(shape)
        self.s_tt = np.zeros(shape)
        self.s_ty = np.zeros(shape)
        self.t_min = np.full(shape, np.inf)
        self.t_max = np.full(shape, -np.inf)
        self.newest = np.full(n_series, _NO_BUCKET, dtype=np.int64)

    def add(self, series: int, ts_s: float, value: float) -> bool:
        """Add one sample; False (and nothing stored) when it is older than the window of its series."""
        b = math.floor(ts_s / self.width_s)
        newest = int(self.newest[series])
        if newest != _NO_BUCKET and b <= newest - self.buckets:
            return False
        if b > newest:
            self.newest[series] = b
        s = b % self.buckets
        i = (series, s)
        if self.bucket[i] != b:  # the slot held a bucket that has left the window (or none): start afresh
            self.bucket[i] = b
            self.n[i] = self.t_mean[i] = self.y_mean[i] = self.s_tt[i] = self.s_ty[i] = 0.0
            self.t_min[i], self.t_max[i] = np.inf, -np.inf
        n1 = self.n[i] + 1.0
        dt = ts_s - self.t_mean[i]
        dy = value - self.y_mean[i]
        self.t_mean[i] += dt / n1
        self.y_mean[i] += dy / n1
        self.s_tt[i] += dt * (ts_s - self.t_mean[i])
        self.s_ty[i] += dt * (value - self.y_mean[i])
        self.n[i] = n1
        self.t_min[i] = min(self.t_min[i], ts_s)
        self.t_max[i] = max(self.t_max[i], ts_s)
        return True

    def fit(self, series: int) -> tuple[int, float, float]:
        """(samples in the window, their time span in s, least-squares slope in value units per s). The slope
        is NaN with fewer than two samples at distinct times."""
        newest = int(self.newest[series])
        if newest == _NO_BUCKET:
            return 0, 0.0, math.nan
        live = self.bucket[series] > newest - self.buckets
        n = self.n[series, live]
        total = float(n.sum())
        if total < 1:
            return 0, 0.0, math.nan
        tm, ym = self.t_mean[series, live], self.y_mean[series, live]
        t_bar = float(np.dot(n, tm)) / total
        y_bar = float(np.dot(n, ym)) / total
        dt = tm - t_bar
        s_tt = float(self.s_tt[series, live].sum() + np.dot(n, dt * dt))
        s_ty = float(self.s_ty[series, live].sum() + np.dot(n, dt * (ym - y_bar)))
        span = float(self.t_max[series, live].max() - self.t_min[series, live].min())
        slope = s_ty / s_tt if s_tt > 0 else math.nan
        return int(round(total)), span, slope


class VibrationConditions:
    """Zone C / zone D / trend / stale conditions for the V vibration points of a site.

    ``settings`` default to the site's ``vibration`` section (or the defaults when the site has none).
    State per point, indexed like ``site.vibration_points``: ``last_rms_mm_s``, ``last_ts_s``, ``zone``
    (0..3 = A..D, -1 before the first value), ``slope_mm_s_per_day`` (NaN while the window holds too little),
    and the condition flags ``zone_c``, ``zone_d``, ``trend_on``, ``stale``.
    """

    def __init__(
        self, site: Site, catalog: AlarmCatalog | None = None, settings: VibrationSettings | None = None,
        awake: AwakeClock | None = None,
    ) -> None:
        self.site = site
        self.awake = awake or AwakeClock(site.engine.tick_s)
        self.catalog = catalog or AlarmCatalog(site)
        self.settings = settings or getattr(site, "vibration", None) or VibrationSettings()
        self.points = list(site.vibration_points)
        known = {p.id for p in self.points}
        unknown = [o.point for o in self.settings.overrides if o.point not in known]
        if unknown:
            raise ValueError(f"vibration overrides for unknown point(s) {unknown}")
        self.thresholds = [self._thresholds(i) for i in range(len(self.points))]
        n = len(self.points)
        tr = self.settings.trend
        self.trend = TrendWindow(n, tr.window_s, tr.buckets)
        self.last_rms_mm_s = np.full(n, np.nan)
        self.last_ts_s = np.full(n, np.nan)
        self.zone = np.full(n, -1, dtype=np.int8)
        self.slope_mm_s_per_day = np.full(n, np.nan)
        self.zone_c = np.zeros(n, dtype=bool)
        self.zone_d = np.zeros(n, dtype=bool)
        self.trend_on = np.zeros(n, dtype=bool)
        self.stale = np.zeros(n, dtype=bool)
        self.stale_after_s = np.array([t.stale_after_s for t in self.thresholds], dtype=np.float64)
        # engine time of the first tick: staleness of a point never heard runs from it
        self.started_s = math.nan
        self.counts = {"invalid": 0, "late": 0, "duplicate": 0, "too_old_for_trend": 0}
        self._defs: dict[tuple[str, int], AlarmDefinition] = {}

    # -- thresholds and definitions ------------------------------------------------------------------------
    def _deadband_mm_s(self, kind: str, pid: str, boundary: float, fraction: float) -> float:
        rule = self.catalog.rule_for(f"vibration.{kind}", f"vibration.{kind}:{pid}")
        if rule is not None and rule.deadband > 0:
            return float(rule.deadband)  # alarm_rules deadband is in the measured unit, mm/s
        return boundary * fraction

    def _thresholds(self, i: int) -> PointThresholds:
        p, s = self.points[i], self.settings
        zb = s.boundaries_for(p.id, p.machine_group, p.foundation)
        o = s.override_for(p.id)
        frac = (
            o.deadband_fraction if o is not None and o.deadband_fraction is not None else s.deadband_fraction
        )
        rate = (
            o.trend_rate_mm_s_per_day
            if o is not None and o.trend_rate_mm_s_per_day is not None
            else s.trend.rate_mm_s_per_day
        )
        bc_clear = zb.bc_mm_s - self._deadband_mm_s("zone_c", p.id, zb.bc_mm_s, frac)
        cd_clear = zb.cd_mm_s - self._deadband_mm_s("zone_d", p.id, zb.cd_mm_s, frac)
        if bc_clear <= 0 or cd_clear <= 0:
            log.warning(
                "vibration point %s: a deadband as wide as its boundary; its zone alarms never clear", p.id
            )
        return PointThresholds(
            zb.ab_mm_s,
            zb.bc_mm_s,
            zb.cd_mm_s,
            bc_clear,
            cd_clear,
            rate,
            s.stale_factor * p.expected_interval_s,
        )

    def _xy(self, i: int) -> tuple[float, float]:
        pos = self.points[i].position_m
        return float(pos[0]), float(pos[1])

    def definition(self, kind: str, i: int) -> AlarmDefinition:
        """The alarm definition of condition ``kind`` (zone_c, zone_d, trend, stale) for point ``i``."""
        d = self._defs.get((kind, i))
        if d is not None:
            return d
        p, th = self.points[i], self.thresholds[i]
        who_en, who_zh = f"{p.machine} ({p.id})", f"{p.machine}（{p.id}）"
        text: dict[str, tuple[str, str, str]] = {
            "zone_c": (
                "medium",
                f"Vibration in zone C (ISO 20816-3): {who_en} above {th.bc_mm_s:g} mm/s RMS, "
                "limited operation only",
                f"振动进入 C 区（ISO 20816-3）：{who_zh} 超过 {th.bc_mm_s:g} mm/s RMS，仅限短期运行",
            ),
            "zone_d": (
                "high",
                f"Vibration in zone D (ISO 20816-3): {who_en} above {th.cd_mm_s:g} mm/s RMS, damage possible",
                f"振动进入 D 区（ISO 20816-3）：{who_zh} 超过 {th.cd_mm_s:g} mm/s RMS，可能造成损坏",
            ),
            "trend": (
                "low",
                f"Vibration rising: {who_en} more than {th.trend_rate_mm_s_per_day:g} mm/s per day",
                f"振动持续上升：{who_zh} 每天上升超过 {th.trend_rate_mm_s_per_day:g} mm/s",
            ),
            "stale": (
                "low",
                f"No vibration data from {who_en} for {th.stale_after_s:g} s",
                f"振动测点无数据：{who_zh} 已超过 {th.stale_after_s:g} 秒",
            ),
        }
        priority, en, zh = text[kind]
        d = self.catalog.define(
            id=f"vibration.{kind}:{p.id}",
            condition=f"vibration.{kind}",
            source=p.id,
            priority=priority,
            message_en=en,
            message_zh=zh,
        )
        self._defs[(kind, i)] = d
        return d

    # -- samples --------------------------------------------------------------------------------------------
    def _zone_alarm(
        self, kind: str, flags: np.ndarray, i: int, v: float, boundary: float, clear: float, out: list[Change]
    ) -> None:
        if not flags[i] and v > boundary:
            flags[i] = True
            out.append((self.definition(kind, i), True, self._xy(i)))
        elif flags[i] and v < clear:
            flags[i] = False
            out.append((self.definition(kind, i), False, self._xy(i)))

    def on_features(
        self, point_index: np.ndarray, rms_mm_s: np.ndarray, ts_s: np.ndarray, now_s: float
    ) -> list[Change]:
        """RMS velocities of a batch, in any order (a point's are taken in time order): ``point_index`` int
        [n] (valid indices into ``site.vibration_points``), ``rms_mm_s`` float [n] (mm/s), ``ts_s`` float [n]
        (sample times, epoch s). ``now_s`` is the engine time. Returns the zone, trend and stale changes.

        A sample older than the newest already seen for its point still feeds the trend but not the zones; an
        exact repeat of the newest sample (QoS 1 redelivery) is ignored; a non-finite value or time is counted
        in ``counts["invalid"]`` and ignored."""
        out: list[Change] = []
        idx = np.asarray(point_index, dtype=np.int64)
        rms = np.asarray(rms_mm_s, dtype=np.float64)
        ts = np.asarray(ts_s, dtype=np.float64)
        if not len(idx):
            return out
        touched: list[int] = []
        for r in np.lexsort((ts, idx)).tolist():
            i, v, t = int(idx[r]), float(rms[r]), float(ts[r])
            if not (math.isfinite(v) and math.isfinite(t)):
                self.counts["invalid"] += 1
                continue
            last = self.last_ts_s[i]
            if t == last and v == self.last_rms_mm_s[i]:
                self.counts["duplicate"] += 1
                continue
            if self.trend.add(i, t, v):
                if not touched or touched[-1] != i:
                    touched.append(i)
            else:
                self.counts["too_old_for_trend"] += 1
            if t < last:
                self.counts["late"] += 1
                continue
            self.last_ts_s[i], self.last_rms_mm_s[i] = t, v
            th = self.thresholds[i]
            self.zone[i] = severity_zone(v, th.ab_mm_s, th.bc_mm_s, th.cd_mm_s)
            self._zone_alarm("zone_c", self.zone_c, i, v, th.bc_mm_s, th.bc_clear_mm_s, out)
            self._zone_alarm("zone_d", self.zone_d, i, v, th.cd_mm_s, th.cd_clear_mm_s, out)
            if self.stale[i] and now_s - t <= th.stale_after_s:
                self.stale[i] = False
                out.append((self.definition("stale", i), False, self._xy(i)))
        for i in touched:
            self._trend(i, out)
        return out

    def _trend(self, i: int, out: list[Change]) -> None:
        tr = self.settings.trend
        n, span, slope = self.trend.fit(i)
        enough = n >= tr.min_samples and span >= tr.min_span_s and math.isfinite(slope)
        per_day = slope * _DAY_S if enough else math.nan
        self.slope_mm_s_per_day[i] = per_day
        rate = self.thresholds[i].trend_rate_mm_s_per_day
        if not self.trend_on[i]:
            want = enough and per_day > rate
        else:
            want = enough and per_day >= rate * tr.clear_fraction
        if want != self.trend_on[i]:
            self.trend_on[i] = want
            out.append((self.definition("trend", i), want, self._xy(i)))

    # -- time ----------------------------------------------------------------------------------------------
    def on_tick(self, now_s: float) -> list[Change]:
        """Advance to engine time ``now_s``: a point with no value for more than ``stale_after_s`` of awake time
        (from its last sample time, or from the first tick when that is later or it was never heard, unless
        ``stale_from_start`` is off; the engine's own stalls do not count) raises its stale fault."""
        out: list[Change] = []
        if math.isnan(self.started_s):
            self.started_s = now_s
        if not len(self.points):
            return out
        since = np.fmax(self.last_ts_s, self.started_s)
        # awake time: the engine's own stalls since the point's last value do not count as its silence
        want = self.awake.silent_for(now_s, since) > self.stale_after_s
        if not self.settings.stale_from_start:
            want &= np.isfinite(self.last_ts_s)
        for i in np.nonzero(want != self.stale)[0].tolist():
            self.stale[i] = bool(want[i])
            out.append((self.definition("stale", i), bool(want[i]), self._xy(i)))
        return out

    def status(self) -> dict[str, Any]:
        """Per-point state for display (lists indexed like ``site.vibration_points``): zone letter or None,
        last RMS velocity mm/s, slope mm/s per day (None where unknown), and the active condition flags."""
        return {
            "point": [p.id for p in self.points],
            "zone": [ZONES[z] if z >= 0 else None for z in self.zone.tolist()],
            "rms_mm_s": [v if math.isfinite(v) else None for v in self.last_rms_mm_s.tolist()],
            "slope_mm_s_per_day": [v if math.isfinite(v) else None for v in self.slope_mm_s_per_day.tolist()],
            "zone_c": self.zone_c.tolist(),
            "zone_d": self.zone_d.tolist(),
            "trend": self.trend_on.tolist(),
            "stale": self.stale.tolist(),
        }
