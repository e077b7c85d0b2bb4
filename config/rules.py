"""Site configuration for the people-safety rules and the composite alarm rules (pydantic).

Three sections the site file may hold (the :class:`~config.schema.Site` fields are named in brackets):

- :class:`PeopleSafetySettings` (``people_safety``): man-down, SOS, lone-worker and battery timings;
- :class:`NamedInput` (``inputs``): named numeric inputs that arrive like sensors (wind speed, ...);
- :class:`CompositeRule` (``rules``): declarative alarm rules over detections, sensor values and zones,
  combined with ``all`` / ``any``. Data only: nothing in a rule is ever evaluated as code.

Field checks live on the models; checks that need the rest of the site (does sensor ``WS01`` exist?) are in
:func:`check_rule_references`, which returns ``(path, reason)`` pairs for the loader. docs/safety-rules.md has
the language and every error. This module imports nothing of ours (config/schema.py imports it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from .schema import Site

__all__ = [
    "DETECTION_CLASSES",
    "CONDITION_KINDS",
    "MAX_DEPTH",
    "MAX_CONDITIONS",
    "RuleText",
    "PeopleSafetySettings",
    "NamedInput",
    "Condition",
    "CompositeRule",
    "walk_conditions",
    "person_bound",
    "check_rule_references",
]

#: camera detection classes, in the order of ``class_id`` on the bus (docs/protocol.md)
DETECTION_CLASSES = ("person", "no_helmet", "no_vest", "no_harness")
#: what a condition can be; exactly one per condition
CONDITION_KINDS = ("all", "any", "detection", "sensor", "in_zone")
#: deepest nesting of all / any (a rule's ``when`` that is an all / any is level 1)
MAX_DEPTH = 4
#: most conditions (all / any and leaves together) in one rule
MAX_CONDITIONS = 32

# the fields each kind of condition may set (besides its own key)
_KIND_FIELDS = {
    "all": frozenset({"all"}),
    "any": frozenset({"any"}),
    "detection": frozenset({"detection", "count", "within_s", "consecutive", "cameras", "min_confidence"}),
    "sensor": frozenset({"sensor", "above", "below", "max_age_s"}),
    "in_zone": frozenset({"in_zone"}),
}

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Priority = Literal["critical", "high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RuleText(_Strict):
    """Operator-facing text of a rule in both shipped languages (same shape as ``schema.Text``)."""

    en: str = Field(min_length=1, max_length=200)
    zh_CN: str = Field(min_length=1, max_length=200, alias="zh-CN")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False)


class PeopleSafetySettings(_Strict):
    """Timings of the people-safety rules (alarms/people.py), seconds of event / engine time."""

    man_down_s: float = Field(default=60.0, gt=0, le=3600,
                              description="man-down when a tag has stood within 1 m this long (stationary_s)")
    fall_clear_s: float = Field(
        default=10.0, ge=0, le=600,
        description="a fall holds man-down until the person is seen moving at least this long after the fall "
                    "(the tracker's velocity needs a moment to settle after the fall itself)")
    sos_hold_s: float = Field(default=300.0, gt=0, le=86400,
                              description="an SOS keeps its condition active this long after the last press")
    lone_worker_s: float = Field(default=120.0, gt=0, le=86400,
                                 description="lone worker when one person is alone in a zone this long")
    lone_worker_zone_kinds: list[Literal["restricted", "hazardous", "confined_space", "muster_point", "area"]] = (
        Field(default_factory=lambda: ["hazardous", "confined_space"], min_length=1))
    battery_low_hold_s: float = Field(default=8 * 3600.0, gt=0, le=7 * 86400,
                                      description="battery_low keeps its condition active this long")


class NamedInput(_Strict):
    """A named numeric input that reaches the engine like a sensor value (e.g. ``wind_speed`` from a weather
    station). A rule names it by ``id`` in a ``sensor`` condition."""

    id: Id
    name: str = ""
    unit: str = ""
    expected_interval_s: float = Field(default=10.0, gt=0, le=3600,
                                       description="a value older than 3x this is stale (the condition is false)")


class Condition(_Strict):
    """One condition of a rule: exactly one of

    - ``all: [conditions]`` / ``any: [conditions]``: every / at least one of them holds;
    - ``detection: <class>`` (``person``, ``no_helmet``, ``no_vest``, ``no_harness``), per person: at least
      ``count`` camera observations of the person with that class within the last ``within_s`` seconds
      (``consecutive``: the person's last ``count`` observations in the window all had the class), from
      ``cameras`` (all when empty), with ``confidence >= min_confidence``;
    - ``sensor: <id>`` (a gas detector, vibration point or named input) with ``above`` and / or ``below``
      (strict; both: between); false while the value is bad or older than ``max_age_s`` (default 3x the
      sensor's expected interval);
    - ``in_zone: <zone id>``, per person: the person is inside that zone (with the fences' hysteresis).
    """

    all: Annotated[list[Condition], Field(min_length=1, max_length=16)] | None = None
    any: Annotated[list[Condition], Field(min_length=1, max_length=16)] | None = None
    detection: Literal["person", "no_helmet", "no_vest", "no_harness"] | None = None
    count: int = Field(default=1, ge=1, le=100)
    within_s: float = Field(default=10.0, gt=0, le=3600)
    consecutive: bool = False
    cameras: list[Id] = []
    min_confidence: float = Field(default=0.5, ge=0, le=1)
    sensor: Id | None = None
    above: float | None = None
    below: float | None = None
    max_age_s: float | None = Field(default=None, gt=0, le=86400)
    in_zone: Id | None = None

    @property
    def kind(self) -> str:
        """Which of :data:`CONDITION_KINDS` this condition is."""
        return next(k for k in CONDITION_KINDS if getattr(self, k) is not None)

    @model_validator(mode="after")
    def _one_kind(self) -> Condition:
        kinds = [k for k in CONDITION_KINDS if getattr(self, k) is not None]
        if not kinds:
            raise ValueError(f"a condition needs one of {', '.join(CONDITION_KINDS)}")
        if len(kinds) > 1:
            raise ValueError(f"a condition is one of {', '.join(CONDITION_KINDS)}, this one has "
                             f"{' and '.join(kinds)} (put them under all or any)")
        kind = kinds[0]
        stray = sorted(self.model_fields_set - _KIND_FIELDS[kind])
        if stray:
            raise ValueError(f"{', '.join(repr(s) for s in stray)} does not apply to a{'n' if kind[0] in 'ai' else ''} "
                             f"{kind} condition")
        if kind == "sensor":
            if self.above is None and self.below is None:
                raise ValueError("a sensor condition needs above and / or below")
            if self.above is not None and self.below is not None and not self.above < self.below:
                raise ValueError(f"above {self.above} and below {self.below} leave no value between them")
        if kind == "detection" and self.consecutive and self.count < 2:
            raise ValueError("consecutive needs count of at least 2")
        return self


def walk_conditions(c: Condition, path: str = "when", depth: int = 0) -> Iterator[tuple[str, Condition, int]]:
    """Every condition under ``c`` (``c`` first), depth first, as ``(path, condition, depth)``; ``depth`` counts
    the all / any levels above and including the condition (a leaf at the top is depth 0)."""
    kind = c.kind
    if kind in ("all", "any"):
        yield path, c, depth + 1
        for i, sub in enumerate(getattr(c, kind)):
            yield from walk_conditions(sub, f"{path}.{kind}[{i}]", depth + 1)
    else:
        yield path, c, depth


def person_bound(c: Condition) -> bool:
    """True when ``c`` can only hold for a person who meets a per-person condition (detection, in_zone): then a
    rule is evaluated per person and needs nothing when nobody is seen. Site-wide conditions (sensor) alone are
    not bound; ``all`` is bound if one member is, ``any`` if every member is."""
    kind = c.kind
    if kind in ("detection", "in_zone"):
        return True
    if kind == "sensor":
        return False
    members = [person_bound(s) for s in getattr(c, kind)]
    return any(members) if kind == "all" else all(members)


class CompositeRule(_Strict):
    """A site rule: when ``when`` holds, the alarm ``rule.<id>`` (site-wide) or ``rule.<id>:<tag>`` (a rule with
    detection or in_zone conditions holds per person) is active with ``priority`` and ``message``. In a
    per-person rule the message may name the person with ``{person}`` (name), ``{person_id}`` and ``{tag}``."""

    id: Id
    priority: Priority
    message: RuleText
    when: Condition
    area: Id | None = Field(default=None, description="zone id the alarm belongs to (operator position routing)")

    @field_validator("when")
    @classmethod
    def _size(cls, v: Condition) -> Condition:
        walked = list(walk_conditions(v))
        if len(walked) > MAX_CONDITIONS:
            raise ValueError(f"{len(walked)} conditions; a rule holds at most {MAX_CONDITIONS}")
        for path, _, depth in walked:
            if depth > MAX_DEPTH:
                where = path.removeprefix("when").lstrip(".") or "the top"
                raise ValueError(f"all / any nested deeper than {MAX_DEPTH} levels (at {where})")
        per_person = any(c.kind in ("detection", "in_zone") for _, c, _ in walked)
        if per_person and not person_bound(v):
            raise ValueError("mixes per-person conditions (detection, in_zone) with site-wide ones (sensor) so that "
                             "it could hold for every person at once: put the per-person condition under all")
        return v

    @property
    def per_person(self) -> bool:
        """True when the rule is evaluated per person (it has a detection or in_zone condition)."""
        return any(c.kind in ("detection", "in_zone") for _, c, _ in walk_conditions(self.when))


def _dupes(items: list[Any], key: str, path: str) -> list[tuple[str, str]]:
    seen: dict[str, int] = {}
    out = []
    for i, item in enumerate(items):
        k = getattr(item, key)
        if k in seen:
            out.append((f"{path}[{i}].{key}", f"duplicate {key} {k!r} (first at {path}[{seen[k]}])"))
        else:
            seen.setdefault(k, i)
    return out


def check_rule_references(site: Site, rules: list[CompositeRule] | None = None,
                          inputs: list[NamedInput] | None = None) -> list[tuple[str, str]]:
    """Checks of ``rules`` and ``inputs`` against the rest of the site, as ``(path, reason)`` pairs (empty when
    all is well): unknown sensors, cameras and zones, duplicate ids, input ids that clash with detector or point
    ids, thresholds a gas detector can never reach. ``rules`` / ``inputs`` default to the site's fields."""
    rules = list(getattr(site, "rules", []) if rules is None else rules)
    inputs = list(getattr(site, "inputs", []) if inputs is None else inputs)
    issues = _dupes(rules, "id", "rules") + _dupes(inputs, "id", "inputs")
    gas = {d.id: d for d in site.gas_detectors}
    vib = {v.id for v in site.vibration_points}
    for i, n in enumerate(inputs):
        if n.id in gas:
            issues.append((f"inputs[{i}].id", f"{n.id!r} is already a gas detector id"))
        elif n.id in vib:
            issues.append((f"inputs[{i}].id", f"{n.id!r} is already a vibration point id"))
    named = {n.id for n in inputs} - gas.keys() - vib  # a clashing input is reported once, above
    cameras = {c.id for c in site.cameras}
    zones = {z.id for z in site.zones}
    for r, rule in enumerate(rules):
        base = f"rules[{r}]"
        if rule.area is not None and rule.area not in zones:
            issues.append((f"{base}.area", f"unknown zone {rule.area!r}"))
        for path, c, _ in walk_conditions(rule.when, f"{base}.when"):
            kind = c.kind
            if kind == "sensor":
                sid = c.sensor
                if sid not in gas and sid not in vib and sid not in named:
                    issues.append((f"{path}.sensor", f"unknown sensor {sid!r} (not a gas detector, vibration point "
                                                     "or input id)"))
                elif sid in gas and sid in vib:
                    issues.append((f"{path}.sensor", f"sensor {sid!r} is ambiguous: both a gas detector and a "
                                                     "vibration point"))
                elif sid in gas:
                    d = gas[sid]
                    if c.above is not None and c.above >= d.range_max:
                        issues.append((f"{path}.above", f"{c.above} is at or above {sid}'s range_max {d.range_max} "
                                                        f"{d.unit}: the condition can never hold"))
                    if c.below is not None and c.below <= 0:
                        issues.append((f"{path}.below", f"{c.below} is at or below zero: {sid} can never read "
                                                        "below it"))
            elif kind == "detection":
                for j, cam in enumerate(c.cameras):
                    if cam not in cameras:
                        issues.append((f"{path}.cameras[{j}]", f"unknown camera {cam!r}"))
            elif kind == "in_zone" and c.in_zone not in zones:
                issues.append((f"{path}.in_zone", f"unknown zone {c.in_zone!r}"))
    return issues
