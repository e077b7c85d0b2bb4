"""Composite alarm rules from the site config (config/rules.py), evaluated on engine time.

:class:`CompositeRules` keeps what the rules' conditions need and nothing more: per detection condition and
person, the newest ``count`` matching observations (or the current run of them, for ``consecutive``); per
sensor the latest value and its time; zone membership is read from the engine's :class:`ZoneMembership`.
Every input method re-evaluates the rules and returns the condition changes ``(definition, active,
position)`` for :meth:`AlarmBook.set_condition`, in a deterministic order.

An **observation** of a person is one camera frame in which a detection was matched to the person
(:func:`nearest_person` is a simple matcher); it is positive for a detection condition when the frame has the
condition's class with ``confidence >= min_confidence``. Frames are taken in time order; for ``consecutive`` a
frame older than one already taken for that person is ignored.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from config import Site
from config.rules import DETECTION_CLASSES, CompositeRule, Condition, NamedInput

from .definitions import AlarmCatalog
from .lifecycle import AlarmDefinition
from .zones import ZoneMembership

__all__ = ["CompositeRules", "nearest_person", "SENSOR_KINDS"]

#: the kinds of sensor value the engine feeds (:meth:`CompositeRules.on_values`)
SENSOR_KINDS = ("gas", "vibration", "input")

Change = tuple[AlarmDefinition, bool, tuple[float, float] | None]


def nearest_person(xy_m: np.ndarray, ts_s: np.ndarray, xyz_m: np.ndarray, fix_ts_s: np.ndarray, *,
                   radius_m: float = 1.5, max_age_s: float = 2.0) -> np.ndarray:
    """Match camera detections to people: for each detection (``xy_m`` float [n, 2] feet on the floor,
    ``ts_s`` float [n]) the index of the nearest person (``xyz_m`` float [P, 3], fixes at ``fix_ts_s`` float
    [P]) within ``radius_m`` metres whose fix is at most ``max_age_s`` from the detection; -1 when none.
    Returns int64 [n]; ties go to the lower index."""
    n = len(xy_m)
    out = np.full(n, -1, dtype=np.int64)
    if not n or not len(xyz_m):
        return out
    d2 = ((xy_m[:, None, :] - xyz_m[None, :, :2]) ** 2).sum(axis=2)  # [n, P]
    fresh = np.abs(ts_s[:, None] - fix_ts_s[None, :]) <= max_age_s
    d2 = np.where(fresh & np.isfinite(d2), d2, np.inf)
    best = np.argmin(d2, axis=1)
    ok = d2[np.arange(n), best] <= radius_m * radius_m
    out[ok] = best[ok]
    return out


# -- compiled conditions ------------------------------------------------------------------------------------
@dataclass
class _Detection:
    class_id: int
    count: int
    within_s: float
    consecutive: bool
    cameras: frozenset[int] | None
    min_confidence: float
    runs: dict[int, list[float]] = field(default_factory=dict)  # person -> newest `count` positive frame times
    last_ts: dict[int, float] = field(default_factory=dict)  # person -> newest frame taken (consecutive)

    def observe(self, pi: int, ts: float, camera: int, conf: np.ndarray, now_s: float) -> None:
        if self.cameras is not None and camera not in self.cameras:
            return
        if not ts > now_s - self.within_s:
            return  # already out of the window: it cannot matter
        positive = conf[self.class_id] >= self.min_confidence
        run = self.runs.get(pi)
        if self.consecutive:
            if ts < self.last_ts.get(pi, -math.inf):
                return
            self.last_ts[pi] = ts
            if not positive:
                self.runs.pop(pi, None)
                return
            run = self.runs.setdefault(pi, [])
            run.append(ts)
        elif positive:
            run = self.runs.setdefault(pi, [])
            bisect.insort(run, ts)
        if run is not None and len(run) > self.count:
            del run[:-self.count]

    def holds(self, pi: int, now_s: float) -> bool:
        run = self.runs.get(pi)
        return run is not None and len(run) >= self.count and run[-self.count] > now_s - self.within_s

    def prune(self, now_s: float) -> None:
        edge = now_s - self.within_s
        for pi in [p for p, run in self.runs.items() if not run or run[-1] <= edge]:
            del self.runs[pi]
        for pi in [p for p, t in self.last_ts.items() if t <= edge]:
            del self.last_ts[pi]

    def candidates(self) -> Iterable[int]:
        return self.runs.keys()


@dataclass
class _Sensor:
    key: tuple[str, int]
    above: float | None
    below: float | None
    max_age_s: float


@dataclass
class _InZone:
    zone: int


@dataclass
class _Node:
    op: str  # "all", "any" or "leaf"
    children: list[_Node] = field(default_factory=list)
    leaf: _Detection | _Sensor | _InZone | None = None


@dataclass
class _Rule:
    rule: CompositeRule
    root: _Node
    per_person: bool
    detections: list[_Detection]
    zones: list[int]
    position_m: tuple[float, float] | None  # site-wide rules: where the first located sensor is
    active: set[int] = field(default_factory=set)  # persons (or {-1} for a site-wide rule) now active


class CompositeRules:
    """Evaluates the site's composite rules (``rules`` default to ``site.rules``, ``inputs`` to
    ``site.inputs``; ``membership`` is the engine's zone membership, needed by ``in_zone`` conditions)."""

    def __init__(self, site: Site, catalog: AlarmCatalog | None = None, *, rules: list[CompositeRule] | None = None,
                 inputs: list[NamedInput] | None = None, membership: ZoneMembership | None = None) -> None:
        self.site = site
        self.catalog = catalog or AlarmCatalog(site)
        self.membership = membership
        self.people = site.people
        rules = list(getattr(site, "rules", []) if rules is None else rules)
        inputs = list(getattr(site, "inputs", []) if inputs is None else inputs)
        self.sensors: dict[str, tuple[str, int, float]] = {}  # id -> (kind, index, stale after s)
        self.sensor_xy: dict[tuple[str, int], tuple[float, float]] = {}
        for i, d in enumerate(site.gas_detectors):
            self.sensors[d.id] = ("gas", i, 3.0 * d.expected_interval_s)
            self.sensor_xy[("gas", i)] = (d.position_m[0], d.position_m[1])
        for i, v in enumerate(site.vibration_points):
            self.sensors[v.id] = ("vibration", i, 3.0 * v.expected_interval_s)
            self.sensor_xy[("vibration", i)] = (v.position_m[0], v.position_m[1])
        for i, n in enumerate(inputs):
            self.sensors[n.id] = ("input", i, 3.0 * n.expected_interval_s)
        self.camera_index = {c.id: i for i, c in enumerate(site.cameras)}
        self.zone_index = {z.id: k for k, z in enumerate(site.zones)}
        self.values: dict[tuple[str, int], tuple[float, float]] = {}  # (kind, index) -> (value, ts)
        self.last_xy = np.full((len(site.people), 2), np.nan)  # where each person was last seen by a camera
        self.rules = [self._compile(r) for r in rules]
        self._detections = [d for r in self.rules for d in r.detections]
        self.uwb_xyz_m: np.ndarray | None = None  # the engine's positions [P, 3], from on_tick
        self.watched = {leaf.key for r in self.rules for leaf in self._leaves(r.root) if isinstance(leaf, _Sensor)}
        self._defs: dict[tuple[int, int], AlarmDefinition] = {}

    # -- compile ------------------------------------------------------------------------------------------
    @staticmethod
    def _leaves(node: _Node) -> Iterable[Any]:
        if node.op == "leaf":
            yield node.leaf
        for c in node.children:
            yield from CompositeRules._leaves(c)

    def _node(self, c: Condition) -> _Node:
        kind = c.kind
        if kind in ("all", "any"):
            return _Node(kind, [self._node(s) for s in getattr(c, kind)])
        if kind == "detection":
            cams = frozenset(self.camera_index[x] for x in c.cameras) if c.cameras else None
            leaf: Any = _Detection(DETECTION_CLASSES.index(c.detection), c.count, c.within_s, c.consecutive, cams,
                                   c.min_confidence)
        elif kind == "sensor":
            skind, idx, stale = self.sensors[c.sensor]
            leaf = _Sensor((skind, idx), c.above, c.below, c.max_age_s if c.max_age_s is not None else stale)
        else:
            leaf = _InZone(self.zone_index[c.in_zone])
        return _Node("leaf", leaf=leaf)

    def _compile(self, rule: CompositeRule) -> _Rule:
        # references were checked at config time (config.rules.check_rule_references): a KeyError here is a bug
        root = self._node(rule.when)
        leaves = list(self._leaves(root))
        pos = next((self.sensor_xy[leaf.key] for leaf in leaves
                    if isinstance(leaf, _Sensor) and leaf.key in self.sensor_xy), None)
        return _Rule(rule, root, rule.per_person, [x for x in leaves if isinstance(x, _Detection)],
                     [x.zone for x in leaves if isinstance(x, _InZone)], pos)

    # -- definitions --------------------------------------------------------------------------------------
    def definition(self, r: int, pi: int = -1) -> AlarmDefinition:
        """``rule.<id>`` for a site-wide rule (``pi`` -1), ``rule.<id>:<tag>`` for person ``pi``."""
        key = (r, pi)
        d = self._defs.get(key)
        if d is None:
            rule = self.rules[r].rule
            en, zh = rule.message.en, rule.message.zh_CN
            if pi < 0:
                aid, source, person = f"rule.{rule.id}", rule.id, None
            else:
                p = self.people[pi]
                aid, source, person = f"rule.{rule.id}:{p.tag}", p.tag, p.id
                if any(f"{{{k}}}" in en + zh for k in ("person", "person_id", "tag")):
                    for k, v in (("person_id", p.id), ("person", p.name), ("tag", p.tag)):
                        en, zh = en.replace(f"{{{k}}}", v), zh.replace(f"{{{k}}}", v)
                else:
                    en, zh = f"{en}: {p.name} ({p.tag})", f"{zh}：{p.name}（{p.tag}）"
            d = self._defs[key] = self.catalog.define(
                id=aid, condition="rule.composite", source=source, priority=rule.priority, message_en=en,
                message_zh=zh, zone=rule.area, person=person, area=rule.area)
        return d

    # -- evaluation ---------------------------------------------------------------------------------------
    def _holds(self, node: _Node, pi: int, now_s: float) -> bool:
        if node.op == "all":
            return all(self._holds(c, pi, now_s) for c in node.children)
        if node.op == "any":
            return any(self._holds(c, pi, now_s) for c in node.children)
        leaf = node.leaf
        if isinstance(leaf, _Detection):
            return pi >= 0 and leaf.holds(pi, now_s)
        if isinstance(leaf, _InZone):
            return pi >= 0 and self.membership is not None and bool(self.membership.inside[pi, leaf.zone])
        v = self.values.get(leaf.key)
        if v is None:
            return False
        value, ts = v
        if not math.isfinite(value) or now_s - ts > leaf.max_age_s:
            return False  # a bad or stale value never satisfies a threshold
        return (leaf.above is None or value > leaf.above) and (leaf.below is None or value < leaf.below)

    def _person_xy(self, pi: int) -> tuple[float, float] | None:
        """Where a camera last saw the person, else the person's last UWB fix."""
        for xy in (self.last_xy[pi], None if self.uwb_xyz_m is None else self.uwb_xyz_m[pi, :2]):
            if xy is not None and np.isfinite(xy).all():
                return float(xy[0]), float(xy[1])
        return None

    def _evaluate(self, now_s: float) -> list[Change]:
        out: list[Change] = []
        for r, rule in enumerate(self.rules):
            if not rule.per_person:
                want = {-1} if self._holds(rule.root, -1, now_s) else set()
                cands: Iterable[int] = {-1}
            else:
                cand = set(rule.active)
                for det in rule.detections:
                    cand.update(det.candidates())
                if self.membership is not None:
                    for k in rule.zones:
                        cand.update(self.membership.people_in(k).tolist())
                cands = sorted(cand)
                want = {pi for pi in cands if self._holds(rule.root, pi, now_s)}
            for pi in sorted(cands):
                if (pi in want) != (pi in rule.active):
                    pos = rule.position_m if pi < 0 else self._person_xy(pi)
                    out.append((self.definition(r, pi), pi in want, pos))
            rule.active = want
        return out

    # -- inputs -------------------------------------------------------------------------------------------
    def on_detections(self, arrays: dict[str, np.ndarray], person_index: np.ndarray, now_s: float) -> list[Change]:
        """A ``camera_detections`` batch (arrays ``camera_index``, ``class_id``, ``confidence``, ``xy_m``,
        ``ts_s``, each [n]) with ``person_index`` int [n] (the person each detection was matched to, -1 none).
        Detections of one person, camera and frame time form one observation."""
        if self._detections and len(person_index):
            cam = np.asarray(arrays["camera_index"], dtype=np.int64)
            cls = np.asarray(arrays["class_id"], dtype=np.int64)
            conf = np.asarray(arrays["confidence"], dtype=np.float64)
            ts = np.asarray(arrays["ts_s"], dtype=np.float64)
            xy = np.asarray(arrays["xy_m"], dtype=np.float64)
            pi_all = np.asarray(person_index, dtype=np.int64)
            ok = (pi_all >= 0) & (pi_all < len(self.people)) & (cls >= 0) & (cls < len(DETECTION_CLASSES))
            ok &= np.isfinite(ts)
            rows = np.nonzero(ok)[0]
            rows = rows[np.lexsort((cam[rows], pi_all[rows], ts[rows]))]  # frames in time order
            k = 0
            while k < len(rows):
                r0 = rows[k]
                frame = (ts[r0], pi_all[r0], cam[r0])
                best = np.zeros(len(DETECTION_CLASSES))
                while k < len(rows) and (ts[rows[k]], pi_all[rows[k]], cam[rows[k]]) == frame:
                    r = rows[k]
                    best[cls[r]] = max(best[cls[r]], conf[r])
                    self.last_xy[pi_all[r]] = xy[r]
                    k += 1
                for d in self._detections:
                    d.observe(int(frame[1]), float(frame[0]), int(frame[2]), best, now_s)
        return self._evaluate(now_s)

    def on_values(self, kind: str, index: np.ndarray, value: np.ndarray, ts_s: np.ndarray,
                  now_s: float) -> list[Change]:
        """Sensor values of one kind (``gas``: detector index and value, NaN when bad; ``vibration``: point
        index and RMS velocity mm/s; ``input``: named input index and value), each [n], at times ``ts_s``. Only
        sensors a rule names are kept; a value older than the one kept is ignored."""
        if kind not in SENSOR_KINDS:
            raise ValueError(f"unknown sensor kind {kind!r}")
        if not self.watched:
            return []
        changed = False
        for i, v, t in zip(np.asarray(index).tolist(), np.asarray(value, dtype=np.float64).tolist(),
                           np.asarray(ts_s, dtype=np.float64).tolist()):
            key = (kind, int(i))
            if key in self.watched:
                old = self.values.get(key)
                if math.isfinite(t) and (old is None or t >= old[1]):
                    self.values[key] = (v, t)
                    changed = True
        return self._evaluate(now_s) if changed else []

    def on_tick(self, now_s: float, xyz_m: np.ndarray | None = None) -> list[Change]:
        """Advance to engine time ``now_s``: windows slide, values go stale, zone membership is read again.
        ``xyz_m`` float [P, 3], the engine's last positions, places per-person alarms no camera has seen."""
        if xyz_m is not None:
            self.uwb_xyz_m = xyz_m
        for rule in self.rules:
            for d in rule.detections:
                d.prune(now_s)
        return self._evaluate(now_s)
