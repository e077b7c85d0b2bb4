"""Gas conditions: alarm levels with deadband, toxic exposure (15-minute STEL, 8-hour TWA over sliding windows),
oxygen deficiency and enrichment, over-range, and faults (bad status, stale detector) that never hide behind a
last good value (DESIGN principle 4).

Alarm ids (``<det>`` is the detector id):

| id | when | priority |
| --- | --- | --- |
| ``gas.low:<det>`` | combustible or toxic value >= the detector's ``low`` level | high |
| ``gas.high:<det>`` | value >= ``high`` (for toxic gases: the instantaneous limit) | critical |
| ``gas.o2_low:<det>`` / ``gas.o2_high:<det>`` | oxygen below ``low`` (deficiency) / above ``high`` (enrichment) | critical / high |
| ``gas.stel:<det>`` | toxic 15-minute average above the gas's STEL | high |
| ``gas.twa:<det>`` | toxic 8-hour average above the gas's TWA | high |
| ``gas.over_range:<det>`` | value at or beyond ``range_max`` | critical |
| ``gas.fault:<det>`` | OPC UA status Bad (a value that cannot be trusted) | medium |
| ``gas.stale:<det>`` | no update within 3 x ``expected_interval_s`` | medium |

A level alarm clears when the value falls below the level minus the deadband (``alarm_rules`` ``deadband`` for
the condition, else 2 % of the detector's range). Exposure limits default to GBZ 2.1-2019 (see
:data:`EXPOSURE_LIMITS_PPM`) and can be given per detector in the site file.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from config import Site

from .awake import AwakeClock
from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition

__all__ = ["GasConditions", "SlidingMean", "EXPOSURE_LIMITS_PPM", "STEL_WINDOW_S", "TWA_WINDOW_S",
           "mg_m3_to_ppm"]

STEL_WINDOW_S = 15 * 60.0
TWA_WINDOW_S = 8 * 3600.0
GOOD, UNCERTAIN, BAD = 0, 1, 2


def mg_m3_to_ppm(mg_m3: float, molar_mass_g_mol: float) -> float:
    """At 20 degC and 101.325 kPa (molar volume 24.04 L/mol), the reference conditions of GBZ 2.1."""
    return mg_m3 * 24.04 / molar_mass_g_mol


#: (STEL or MAC, TWA) in ppm, converted from GBZ 2.1-2019 Table 1 (mg/m3; MAC where the standard sets a ceiling
#: instead of a STEL). Check against the current edition before relying on them; a site file can override.
EXPOSURE_LIMITS_PPM: dict[str, tuple[float | None, float | None]] = {
    "H2S": (mg_m3_to_ppm(10.0, 34.08), None),  # MAC 10 mg/m3 (a ceiling: applied as the 15-min limit too)
    "CO": (mg_m3_to_ppm(30.0, 28.01), mg_m3_to_ppm(20.0, 28.01)),  # PC-STEL 30, PC-TWA 20 mg/m3
    "Cl2": (mg_m3_to_ppm(1.0, 70.90), None),  # MAC 1 mg/m3
    "NH3": (mg_m3_to_ppm(30.0, 17.03), mg_m3_to_ppm(20.0, 17.03)),  # PC-STEL 30, PC-TWA 20 mg/m3
    "SO2": (mg_m3_to_ppm(10.0, 64.07), mg_m3_to_ppm(5.0, 64.07)),  # PC-STEL 10, PC-TWA 5 mg/m3
    "NO2": (mg_m3_to_ppm(10.0, 46.01), mg_m3_to_ppm(5.0, 46.01)),  # PC-STEL 10, PC-TWA 5 mg/m3
}
COMBUSTIBLE = {"CH4", "C3H8", "H2", "VOC"}


class SlidingMean:
    """Time-weighted mean of a sampled signal over the last ``window_s`` seconds (each sample holds until the
    next; a gap longer than ``max_hold_s`` counts as no data). Bounded: samples older than the window go.

    O(1) per call: each sample's held segment (value x duration, and the duration) is added to running sums when
    the next sample closes it and taken out when it leaves the window; a mean then only trims the first segment at
    the window's start and adds the last, still open one. (Summing every sample at every tick cost 21 ms per
    8-hour TWA window at 1 Hz: most of a core late in a shift.) The sums are compensated (Neumaier), so 28,800
    additions and removals stay within a few ulps of a fresh sum, and they are a pure function of the samples:
    replay gives the same values to the bit."""

    def __init__(self, window_s: float, max_hold_s: float) -> None:
        self.window_s, self.max_hold_s = window_s, max_hold_s
        self.samples: deque[tuple[float, float]] = deque()
        # the closed segments of every sample but the last: value x held time, held time (compensated sums)
        self._total = _Sum()
        self._covered = _Sum()

    def _held(self, k: int) -> tuple[float, float]:
        """Sample ``k``'s closed segment (its value x held time, held time), up to the next sample."""
        t, v = self.samples[k]
        end = min(self.samples[k + 1][0], t + self.max_hold_s)
        d = end - t if end > t else 0.0
        return v * d, d

    def _drop_first(self) -> None:
        vd, d = self._held(0)
        self._total.add(-vd)
        self._covered.add(-d)
        self.samples.popleft()

    def add(self, t: float, v: float) -> None:
        if self.samples and t <= self.samples[-1][0]:
            return  # out of order or duplicate: the engine keeps the newest
        self.samples.append((t, v))
        if len(self.samples) > 1:
            vd, d = self._held(len(self.samples) - 2)
            self._total.add(vd)
            self._covered.add(d)
        while len(self.samples) > 1 and self.samples[1][0] <= t - self.window_s:
            self._drop_first()

    def mean(self, now: float) -> float:
        """NaN without data. Divides by the time covered by data in the window (so a short record is not
        diluted by the hours before it: conservative for exposure)."""
        if not self.samples:
            return math.nan
        t0 = now - self.window_s
        while len(self.samples) > 1 and self.samples[1][0] <= t0:  # wholly before the window
            self._drop_first()
        total, covered = self._total.value(), self._covered.value()
        t, v = self.samples[0]
        if len(self.samples) > 1 and t < t0:  # the first segment straddles the window's start: cut it there
            end = min(self.samples[1][0], t + self.max_hold_s)
            cut = min(end, t0) - t
            if cut > 0:
                total -= v * cut
                covered -= cut
        t, v = self.samples[-1]  # the last sample holds until now, at most max_hold_s
        a, b = max(t, t0), min(now, t + self.max_hold_s)
        if b > a:
            total += v * (b - a)
            covered += b - a
        return total / covered if covered > 1e-9 else math.nan


class _Sum:
    """A running float sum with Neumaier compensation (additions and removals of many terms stay exact to a few
    ulps; the same sequence of terms gives the same value to the bit)."""

    __slots__ = ("s", "c")

    def __init__(self) -> None:
        self.s = 0.0
        self.c = 0.0

    def add(self, x: float) -> None:
        t = self.s + x
        self.c += (self.s - t) + x if abs(self.s) >= abs(x) else (x - t) + self.s
        self.s = t

    def value(self) -> float:
        return self.s + self.c


class GasConditions:
    """Evaluates every detector's conditions from its values (``on_values``) and the clock (``on_tick``)."""

    def __init__(self, site: Site, catalog: AlarmCatalog, awake: AwakeClock | None = None) -> None:
        self.site, self.catalog = site, catalog
        self.awake = awake or AwakeClock(site.engine.tick_s)
        self.dets = site.gas_detectors
        n = len(self.dets)
        self.value = np.full(n, np.nan)
        self.quality = np.full(n, 3, dtype=np.uint8)
        self.ts = np.full(n, np.nan)
        self.active: dict[str, bool] = {}
        self.stel = [SlidingMean(STEL_WINDOW_S, 3 * d.expected_interval_s) for d in self.dets]
        self.twa = [SlidingMean(TWA_WINDOW_S, 3 * d.expected_interval_s) for d in self.dets]
        self._defs: dict[str, AlarmDefinition] = {}

    def limits(self, k: int) -> tuple[float | None, float | None]:
        """(STEL, TWA) in ppm for toxic detector k, or (None, None)."""
        return EXPOSURE_LIMITS_PPM.get(self.dets[k].gas, (None, None))

    def _def(self, kind: str, k: int, priority: str, en: str, zh: str) -> AlarmDefinition:
        d = self.dets[k]
        aid = f"gas.{kind}:{d.id}"
        if aid not in self._defs:
            self._defs[aid] = self.catalog.define(id=aid, condition=f"gas.{kind}", source=d.id, priority=priority,
                                                  message_en=en, message_zh=zh, area=self._area(k))
        return self._defs[aid]

    def _area(self, k: int) -> str | None:
        from config.geometry import point_in_polygon

        x, y = self.dets[k].position_m[:2]
        for z in self.site.zones:
            if z.kind != "muster_point" and point_in_polygon((x, y), list(z.polygon)):
                return z.id
        return None

    def _deadband(self, kind: str, k: int) -> float:
        d = self.dets[k]
        r = self.catalog.rule_for(f"gas.{kind}", f"gas.{kind}:{d.id}")
        return r.deadband if r is not None and r.deadband > 0 else 0.02 * d.range_max

    def _level(self, kind: str, k: int, value: float, level: float, above: bool, out: list, d: AlarmDefinition
               ) -> None:
        """Deadband hysteresis around ``level`` (``above``: abnormal when value >= level)."""
        was = self.active.get(d.id, False)
        band = self._deadband(kind, k)
        if above:
            now = value >= level if not was else value > level - band
        else:
            now = value <= level if not was else value < level + band
        self._set(d, now, out)

    def _set(self, d: AlarmDefinition, active: bool, out: list) -> None:
        if self.active.get(d.id, False) != active:
            self.active[d.id] = active
            k = next(i for i, x in enumerate(self.dets) if x.id == d.source)
            out.append((d, active, tuple(map(float, self.dets[k].position_m[:2]))))

    def on_values(self, index: np.ndarray, value: np.ndarray, quality: np.ndarray, ts_s: np.ndarray, now: float
                  ) -> list[tuple[AlarmDefinition, bool, tuple[float, float] | None]]:
        out: list = []
        for k, v, q, t in zip(index.tolist(), value.tolist(), quality.tolist(), ts_s.tolist()):
            if not t > (self.ts[k] if np.isfinite(self.ts[k]) else -math.inf):
                continue  # an older value than the one held
            det = self.dets[k]
            self.value[k], self.quality[k], self.ts[k] = v, q, t
            self._set(self._def("stale", k, "medium", f"Gas detector {det.id} silent",
                                f"气体探测器 {det.id} 无数据"), False, out)
            self._set(self._def("fault", k, "medium", f"Gas detector {det.id} fault (bad status)",
                                f"气体探测器 {det.id} 故障"), q == BAD, out)
            if q == BAD or not math.isfinite(v):
                continue  # levels keep their state: a bad value neither raises nor clears them
            self._set(self._def("over_range", k, "critical", f"Gas detector {det.id} over range",
                                f"气体探测器 {det.id} 超量程"), v >= det.range_max, out)
            name = f"{det.id} {det.gas}"
            if det.gas == "O2":
                self._level("o2_low", k, v, det.low, False, out,
                            self._def("o2_low", k, "critical", f"{name} oxygen deficiency below {det.low} %vol",
                                      f"{name} 缺氧，低于 {det.low} %vol"))
                self._level("o2_high", k, v, det.high, True, out,
                            self._def("o2_high", k, "high", f"{name} oxygen enrichment above {det.high} %vol",
                                      f"{name} 富氧，高于 {det.high} %vol"))
                continue
            unit = det.unit
            self._level("low", k, v, det.low, True, out,
                        self._def("low", k, "high", f"{name} at alarm level 1 ({det.low} {unit})",
                                  f"{name} 一级报警（{det.low} {unit}）"))
            self._level("high", k, v, det.high, True, out,
                        self._def("high", k, "critical", f"{name} at alarm level 2 ({det.high} {unit})",
                                  f"{name} 二级报警（{det.high} {unit}）"))
            if det.unit == "ppm":
                self.stel[k].add(t, v)
                self.twa[k].add(t, v)
                self._exposure(k, now, out)
        return out

    def _exposure(self, k: int, now: float, out: list) -> None:
        det = self.dets[k]
        stel, twa = self.limits(k)
        if stel is not None:
            m = self.stel[k].mean(now)
            self._set(self._def("stel", k, "high", f"{det.id} {det.gas} 15-min average above STEL {stel:.1f} ppm",
                                f"{det.id} {det.gas} 15 分钟平均浓度超过短时间接触容许浓度 {stel:.1f} ppm"),
                      bool(m > stel), out)
        if twa is not None:
            m = self.twa[k].mean(now)
            self._set(self._def("twa", k, "high", f"{det.id} {det.gas} 8-h average above TWA {twa:.1f} ppm",
                                f"{det.id} {det.gas} 8 小时时间加权平均浓度超过 {twa:.1f} ppm"), bool(m > twa), out)

    def on_tick(self, now: float) -> list[tuple[AlarmDefinition, bool, tuple[float, float] | None]]:
        """Stale detectors (fail visible; judged on awake time, so an engine stall is not a detector fault) and
        exposure averages that move with the clock."""
        out: list = []
        for k, det in enumerate(self.dets):
            silent = not (self.awake.silent_for(now, self.ts[k]) <= 3 * det.expected_interval_s)
            if silent and np.isfinite(self.ts[k]):  # a detector never heard is reported by comms, not here
                self._set(self._def("stale", k, "medium", f"Gas detector {det.id} silent",
                                    f"气体探测器 {det.id} 无数据"), True, out)
            if det.unit == "ppm" and self.stel[k].samples:
                self._exposure(k, now, out)
        return out

    def levels(self) -> np.ndarray:
        """uint8 [G] for the map: 0 normal, 1 level 1 (or O2 enrichment), 2 level 2 (or O2 deficiency)."""
        lvl = np.zeros(len(self.dets), dtype=np.uint8)
        for k, det in enumerate(self.dets):
            a = self.active
            if a.get(f"gas.high:{det.id}") or a.get(f"gas.o2_low:{det.id}") or a.get(f"gas.over_range:{det.id}"):
                lvl[k] = 2
            elif a.get(f"gas.low:{det.id}") or a.get(f"gas.o2_high:{det.id}"):
                lvl[k] = 1
        return lvl

    def state(self) -> dict[str, Any]:
        return {"active": sorted(k for k, v in self.active.items() if v)}
