"""The site configuration schema (pydantic). Validated once at the edge; inner code trusts these objects.

Coordinates are *site metres*: x east, y north, z up, from the site origin given in WGS84.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .cameras import CameraInferenceSettings, CameraSnapshotSettings, DetectionFusionSettings
from .rules import CompositeRule, NamedInput, PeopleSafetySettings
from .vibration import VibrationSettings

__all__ = [
    "Text",
    "Origin",
    "BusEndpoints",
    "MqttBroker",
    "OpcUaServer",
    "ConsoleServer",
    "Structure",
    "FloorPlan",
    "Anchor",
    "Zone",
    "GasDetector",
    "VibrationPoint",
    "Camera",
    "Certificate",
    "Person",
    "User",
    "AccessSettings",
    "EscalationStep",
    "EscalationPolicy",
    "Shift",
    "AlarmRule",
    "OperatorPosition",
    "PermitSettings",
    "JsaRequirement",
    "PlannedPermit",
    "PERMIT_TYPES",
    "PERMIT_GRADES",
    "WebhookSink",
    "Notifications",
    "UwbSettings",
    "EngineSettings",
    "LogSettings",
    "RecordingSettings",
    "MIN_RETENTION_DAYS",
    "FenceSettings",
    "Site",
    "ZONE_KINDS",
    "USER_ROLES",
]

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Point2 = tuple[float, float]
Point3 = tuple[float, float, float]

ZONE_KINDS = ("restricted", "hazardous", "confined_space", "muster_point", "area")
USER_ROLES = ("operator", "supervisor", "safety_manager", "admin")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Text(_Strict):
    """Operator-facing text in both shipped languages."""

    en: str = Field(min_length=1)
    zh_CN: str = Field(min_length=1, alias="zh-CN")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def get(self, lang: str) -> str:
        return self.zh_CN if lang.lower().startswith("zh") else self.en


class Origin(_Strict):
    """Site origin (x=0, y=0, z=0) in WGS84, and the EPSG code of the national geodetic frame."""

    lat_deg: float = Field(ge=-90, le=90)
    lon_deg: float = Field(ge=-180, le=180)
    height_m: float = Field(default=0.0, ge=-500, le=9000)
    epsg: int = Field(default=4326, description="e.g. 4490 for CGCS2000")
    rotation_deg: float = Field(default=0.0, ge=-180, le=180, description="site x axis, clockwise from east")


class BusEndpoints(_Strict):
    """ZeroMQ endpoints of the engine (it binds all three)."""

    ingest: str = "tcp://127.0.0.1:5601"
    publish: str = "tcp://127.0.0.1:5602"
    command: str = "tcp://127.0.0.1:5603"

    @model_validator(mode="after")
    def _distinct(self) -> BusEndpoints:
        """Two sockets on one address: the second bind fails, or (ipc) one silently takes the other's traffic."""
        seen: dict[tuple[str, str], tuple[str, str]] = {}
        for name in ("ingest", "publish", "command"):
            ep = getattr(self, name)
            transport, _, rest = ep.partition("://")
            if transport == "tcp":
                host, _, port = rest.rpartition(":")
                if port == "*":
                    continue  # an ephemeral port never collides
                hosts = {"*", "0.0.0.0", "[::]"} if host in ("*", "0.0.0.0", "[::]") else {host, "*"}
                for h in hosts | {"*"}:
                    other = seen.get((f"tcp:{h}", port))
                    if other is not None:
                        raise ValueError(f"{name} ({ep}) and {other[0]} ({other[1]}) are one address: each bus "
                                         "socket needs its own")
                seen[(f"tcp:{host}", port)] = (name, ep)
                if host in ("*", "0.0.0.0", "[::]"):
                    seen[("tcp:*", port)] = (name, ep)
            else:
                other = seen.get((transport, rest))
                if other is not None:
                    raise ValueError(f"{name} ({ep}) and {other[0]} ({other[1]}) are one address: each bus socket "
                                     "needs its own")
                seen[(transport, rest)] = (name, ep)
        return self


class MqttBroker(_Strict):
    """The plant's MQTT broker. A ``username`` logs in with the password from the environment variable
    ``password_env`` (``password`` inline still works, and ``config check`` warns about it)."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    topic_prefix: str = Field(default="watchfloor/site", pattern=r"^[^#+]+$")
    username: str | None = None
    password: str | None = None
    password_env: str | None = None

    def login_password(self) -> str | None:
        """The broker password: from ``password_env`` when named, else the inline one (None: none)."""
        import os

        if self.password_env:
            return os.environ.get(self.password_env)
        return self.password


class OpcUaServer(_Strict):
    """The plant's OPC UA server for the gas detectors, and how the gas adapter logs in to it. With
    ``security_policy`` Basic256Sha256 the adapter signs (and encrypts) with its ``certificate`` and
    ``private_key`` (files, relative to where the process runs); a ``username`` logs in with the password taken
    from the environment variable ``password_env`` (never written in the site file)."""

    endpoint: str = Field(default="opc.tcp://127.0.0.1:4840/watchfloor/", pattern=r"^opc\.tcp://")
    namespace_uri: str = "urn:watchfloor:site"
    publishing_interval_ms: int = Field(default=250, ge=10, le=60000)
    security_policy: Literal["None", "Basic256Sha256"] = "None"
    security_mode: Literal["Sign", "SignAndEncrypt"] = "SignAndEncrypt"
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = Field(default=None, description="pin the server's certificate (optional)")
    username: str | None = None
    password_env: str | None = None

    @model_validator(mode="after")
    def _security(self) -> OpcUaServer:
        if self.security_policy != "None" and not (self.certificate and self.private_key):
            raise ValueError("security_policy Basic256Sha256 needs certificate and private_key")
        if self.username and not self.password_env:
            raise ValueError("a username needs password_env (the environment variable holding the password)")
        return self


class ConsoleServer(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=5006, ge=1, le=65535)
    layout: str = "wall-default"
    language: Literal["en", "zh-CN"] = "en"


class Structure(_Strict):
    """Something drawn on the floor plan: a building, tank, pipe rack, road."""

    id: Id
    kind: Literal["building", "unit", "tank", "pipe_rack", "road", "fence"]
    label: str | Text = Field(default="", description="its name on the map: a plain string (the same in every "
                              "language, e.g. a tag like T-101) or one per language")
    polygon: list[Point2] = Field(min_length=3)


class FloorPlan(_Strict):
    extent_m: tuple[float, float, float, float] = Field(description="x0, y0, x1, y1 in site metres")
    image: str | None = Field(default=None, description="PNG drawn over extent_m, relative to the site file")
    structures: list[Structure] = []

    @field_validator("extent_m")
    @classmethod
    def _extent_ordered(cls, v: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        x0, y0, x1, y1 = v
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"extent must be x0 < x1 and y0 < y1, got {list(v)}")
        if x1 - x0 > 20000 or y1 - y0 > 20000:
            raise ValueError("extent is larger than 20 km: site metres, not millimetres?")
        return v


class Anchor(_Strict):
    id: Id
    position_m: Point3


class Zone(_Strict):
    id: Id
    name: Text
    kind: Literal["restricted", "hazardous", "confined_space", "muster_point", "area"]
    polygon: list[Point2] = Field(min_length=3)
    z_band_m: tuple[float, float] | None = None
    allowed_roles: list[str] = []
    allowed_people: list[Id] = []
    priority: Literal["critical", "high", "medium", "low"] = "high"


class GasDetector(_Strict):
    id: Id
    name: str = ""
    position_m: Point3
    node_id: str = Field(description="OPC UA node id of the measured value, e.g. ns=2;s=GD01.PV")
    gas: Literal["CH4", "C3H8", "H2", "H2S", "CO", "Cl2", "NH3", "SO2", "NO2", "O2", "VOC"]
    unit: Literal["%LEL", "ppm", "%vol"]
    low: float
    high: float
    range_max: float = Field(gt=0)
    expected_interval_s: float = Field(default=1.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _levels(self) -> GasDetector:
        if self.gas == "O2":
            if not (0 < self.low < self.high <= self.range_max):
                raise ValueError("O2 levels need 0 < low < high <= range_max (deficiency / enrichment)")
        elif not (0 < self.low < self.high <= self.range_max):
            raise ValueError(f"alarm levels need 0 < low < high <= range_max, got {self.low}, {self.high}")
        if self.unit == "%LEL" and self.range_max > 100:
            raise ValueError("%LEL range_max cannot exceed 100")
        return self


class VibrationPoint(_Strict):
    id: Id
    machine: str
    machine_group: Literal["group1", "group2"] = Field(description="ISO 20816-3 machine group")
    foundation: Literal["rigid", "flexible"] = "rigid"
    position_m: Point3
    expected_interval_s: float = Field(default=5.0, gt=0, le=3600)


class Camera(_Strict):
    id: Id
    name: str = ""
    position_m: Point3
    image_size_px: tuple[int, int] = (1920, 1080)
    homography: list[list[float]] = Field(
        description="3x3, image pixel (u, v, 1) -> site metres (x, y, 1) on the ground plane"
    )

    @field_validator("homography")
    @classmethod
    def _three_by_three(cls, v: list[list[float]]) -> list[list[float]]:
        if len(v) != 3 or any(len(r) != 3 for r in v):
            raise ValueError("homography must be 3 rows of 3 numbers")
        return v


class Certificate(_Strict):
    type: str = Field(description="work type it qualifies for, e.g. hot_work, confined_space")
    number: str = ""
    expires: date


class Person(_Strict):
    id: Id
    name: str
    name_zh: str = Field(default="", description="the name in Chinese characters (found by characters, toneless "
                         "pinyin and pinyin initials at the workstation)")
    tag: Id
    role: str
    company: str = ""
    certificates: list[Certificate] = []


class User(_Strict):
    """One person who may log in, as the site knows them: the roster of the users file (``access.users_file``)
    without its hashes. A recording keeps this roster inline (``users:``), never a secret."""

    id: Id
    name: str
    role: Literal["operator", "supervisor", "safety_manager", "admin", "field_worker"]
    team: str = ""
    enabled: bool = True
    tag: str | None = Field(default=None, description="a field worker's UWB tag")

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: object) -> object:
        if isinstance(data, dict):
            if "password_sha256" in data:
                raise ValueError("password_sha256 (unsalted SHA-256) is no longer accepted: keep users in a users "
                                 "file (access.users_file) and set a new password with `watchfloor users passwd "
                                 f"{data.get('id', 'ID')} --site SITE`")
            for key in ("password", "password_hash", "pin", "pin_hash"):
                if key in data:
                    raise ValueError(f"{key}: secrets never go in the site file; keep them in the users file "
                                     "(access.users_file), set with `watchfloor users passwd`")
        return data


class AccessSettings(_Strict):
    """Who may log in, and for how long. ``users_file`` (relative to the site file; ``$WATCHFLOOR_USERS_FILE``
    overrides it) holds the accounts and their argon2id hashes; it is never the site file. ``demo`` marks a
    demonstration site: its documented demo credentials are accepted and the login page says so."""

    users_file: str | None = None
    demo: bool = False
    idle_logout_s: float = Field(default=900.0, gt=0, le=86400,
                                 description="a workstation or OPC UA login with no action for this long ends")
    field_idle_logout_s: float = Field(default=300.0, gt=0, le=86400, description="the same for a field PIN login")
    free_login_failures: int = Field(default=5, ge=1, le=100,
                                     description="failed logins from one address (or for one id from one address) "
                                                 "before each further try must wait")
    max_login_wait_s: float = Field(default=300.0, gt=0, le=3600, description="the longest wait asked of a source")


class EscalationStep(_Strict):
    after_s: float = Field(gt=0)
    notify_role: Literal["operator", "supervisor", "safety_manager", "admin"]


class EscalationPolicy(_Strict):
    id: Id
    steps: list[EscalationStep] = Field(min_length=1)
    repeat_every_s: float | None = Field(default=None, gt=0, description="repeat the last step until acknowledged")
    raise_priority: bool = Field(default=False, description="each step raises the alarm's priority one level")

    @field_validator("steps")
    @classmethod
    def _increasing(cls, v: list[EscalationStep]) -> list[EscalationStep]:
        times = [s.after_s for s in v]
        if times != sorted(times) or len(set(times)) != len(times):
            raise ValueError(f"step times must strictly increase, got {times}")
        return v


class AlarmRule(_Strict):
    """How alarms of one condition kind behave. The first rule whose ``condition`` and ``match`` (a shell
    pattern on the alarm id, e.g. ``zone.restricted:Z-SUB:*``) fit an alarm applies to it."""

    condition: str = Field(min_length=1, description="condition kind, e.g. zone.restricted, or * for any")
    match: str = "*"
    priority: Literal["critical", "high", "medium", "low"] | None = None
    on_delay_s: float = Field(default=0.0, ge=0, le=3600)
    off_delay_s: float = Field(default=0.0, ge=0, le=3600)
    deadband: float = Field(default=0.0, ge=0, description="in the unit of the measured value")
    latching: bool = False
    re_alarm_s: float | None = Field(default=None, gt=0)
    escalation: str | None = Field(default=None, description="id of an escalation policy")


class OperatorPosition(_Strict):
    """A console position: the alarms of the areas (zone ids or shell patterns) it answers for. Flood is
    judged per position."""

    id: Id
    areas: list[str] = Field(default_factory=lambda: ["*"], min_length=1)


class WebhookSink(_Strict):
    """An HTTP endpoint that gets escalations as a JSON POST signed with HMAC-SHA256."""

    id: Id
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(default=None, description="HMAC key; or give secret_env")
    secret_env: str | None = Field(default=None, description="name of the environment variable holding the key")
    roles: list[Literal["operator", "supervisor", "safety_manager", "admin"]] = Field(
        default_factory=list, description="escalation roles it serves; empty = all")
    timeout_s: float = Field(default=5.0, gt=0, le=60)


class Notifications(_Strict):
    mqtt: bool = Field(default=True, description="publish activations and escalations on <prefix>/alarms/<priority>")
    webhooks: list[WebhookSink] = []
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_s: float = Field(default=1.0, gt=0, le=60, description="backoff doubles from this")
    queue_size: int = Field(default=10000, ge=10, le=1_000_000)


PERMIT_TYPES = ("hot_work", "confined_space", "blind_plate", "working_at_height", "lifting",
                "temporary_electricity", "excavation", "road_closure")
#: grades per GB 30871-2022 where the standard grades the work (hot work: special, 1, 2; height: I-IV by
#: height; lifting: 1-3 by mass)
PERMIT_GRADES = {
    "hot_work": ("special", "1", "2"),
    "working_at_height": ("I", "II", "III", "IV"),
    "lifting": ("1", "2", "3"),
}


class JsaRequirement(_Strict):
    """Permits that need a job safety analysis (JSA) before approval: one type, and its grades (None: every
    permit of the type)."""

    type: Literal[PERMIT_TYPES]  # type: ignore[valid-type]
    grades: list[str] | None = Field(default=None, description="the grades that need a JSA (None: all)")

    @model_validator(mode="after")
    def _known_grades(self) -> JsaRequirement:
        known = PERMIT_GRADES.get(self.type)
        if self.grades is not None and (known is None or not set(self.grades) <= set(known)):
            raise ValueError(f"{self.type} grades are {', '.join(known) if known else 'none'}, not {self.grades}")
        return self


class PermitSettings(_Strict):
    """Permit-to-work checks. Defaults are common practice; check them against the site's own procedures
    and GB 30871-2022 before use."""

    watcher_max_distance_m: float = Field(default=50.0, gt=0, le=1000)
    watcher_max_stationary_s: float = Field(default=300.0, gt=0, le=7200)
    worker_outside_grace_s: float = Field(default=120.0, ge=0, le=7200)
    certificate_warning_days: int = Field(default=7, ge=0, le=365)
    expiring_soon_s: float = Field(default=1800.0, ge=0, description="board shows amber this long before the end")
    gas_test_required: list[Literal[PERMIT_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["hot_work", "confined_space"])
    gas_test_validity_s: float = Field(default=7200.0, gt=0, le=86400)
    gas_test_max_lel_pct: float = Field(default=10.0, gt=0, le=100)
    gas_test_o2_range_pct: tuple[float, float] = (19.5, 23.5)
    watcher_required: list[Literal[PERMIT_TYPES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: ["hot_work", "confined_space"])
    incompatible: list[tuple[Literal[PERMIT_TYPES], Literal[PERMIT_TYPES]]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: [("hot_work", "confined_space"), ("hot_work", "hot_work")],
        description="pairs of permit types that may not overlap in space and time")
    jsa_required: list[JsaRequirement] = Field(
        default_factory=lambda: [JsaRequirement(type="hot_work", grades=["special", "1"]),
                                 JsaRequirement(type="working_at_height", grades=["IV"]),
                                 JsaRequirement(type="confined_space")],
        description="permits approved only with a job safety analysis: special and grade 1 hot work, grade IV "
                    "(special, over 30 m) work at height, every confined-space entry")


class PlannedPermit(_Strict):
    """A permit planned in the site file (e.g. the day's shutdown work). The engine starts with it *requested*;
    approval and activation still go through a person and every check."""

    id: Id
    type: Literal[PERMIT_TYPES]  # type: ignore[valid-type]
    grade: str | None = None
    zone: Id | None = None
    polygon: list[Point2] | None = None
    workers: list[Id] = Field(min_length=1, description="tags")
    watcher: Id | None = None
    valid_from: datetime
    valid_to: datetime
    applicant: Id
    description: str = ""

    @model_validator(mode="after")
    def _shape(self) -> PlannedPermit:
        grades = PERMIT_GRADES.get(self.type)
        if grades is not None and self.grade not in grades:
            raise ValueError(f"{self.type} needs a grade, one of {', '.join(grades)}")
        if grades is None and self.grade is not None:
            raise ValueError(f"{self.type} has no grades")
        if (self.zone is None) == (self.polygon is None):
            raise ValueError("give either zone or polygon")
        if not self.valid_to > self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        return self


class Shift(_Strict):
    id: Id
    start: time
    end: time


class UwbSettings(_Strict):
    tag_height_m: float = Field(default=1.2, ge=0, le=5)
    max_range_m: float = Field(default=120.0, gt=0, le=2000)
    slice_s: float = Field(default=0.1, gt=0, le=5, description="adapter batches ranges per time slice")
    range_sigma_m: float = Field(default=0.1, gt=0, le=10)
    publish_locations: bool = Field(default=True, description="omlox Location objects on <prefix>/uwb/locations")
    location_crs: Literal["local", "EPSG:4326", "site"] = Field(
        default="site", description="local = site metres; site = the origin's EPSG frame (e.g. CGCS2000)")


class SourceClock(_Strict):
    """A source's time window around ingest time, and the clock skew above which the source is flagged.

    Outside the window a position, vibration reading or camera detection is rejected (``bad_time``); a gas value
    is applied at ingest time instead (a PLC with a wrong clock must not blind gas monitoring); a wearable SOS or
    man-down is still raised, marked LATE."""

    future_s: float = Field(default=5.0, gt=0, le=86400, description="how far ahead of ingest time")
    past_s: float = Field(default=60.0, gt=0, le=86400, description="how far behind ingest time")
    skew_alarm_s: float = Field(default=1.0, gt=0, le=3600,
                                description="|clock skew| (the source's least-delayed item over 30 s, source "
                                            "time - receive time) above which the source is flagged")

    @model_validator(mode="after")
    def _window_wider_than_alarm(self) -> SourceClock:
        if self.skew_alarm_s >= min(self.future_s, self.past_s):
            raise ValueError("skew_alarm_s must be smaller than the window (future_s and past_s)")
        return self


class ClockSettings(_Strict):
    """Per-source time sanity (see :class:`SourceClock`)."""

    uwb: SourceClock = SourceClock(future_s=5.0, past_s=60.0)
    wearable: SourceClock = SourceClock(future_s=5.0, past_s=30.0)
    gas: SourceClock = SourceClock(future_s=5.0, past_s=60.0)
    vibration: SourceClock = SourceClock(future_s=5.0, past_s=300.0)
    camera: SourceClock = SourceClock(future_s=5.0, past_s=30.0)


class FenceSettings(_Strict):
    """Zone entry / exit hysteresis: a tag changes side only when it is more than ``border_m`` from the boundary
    on the other side, for at least ``min_dwell_s`` (so a tag standing on a boundary does not chatter)."""

    border_m: float = Field(default=0.5, ge=0, le=20)
    min_dwell_s: float = Field(default=2.0, ge=0, le=600)


class EngineSettings(_Strict):
    tick_s: float = Field(default=0.1, gt=0, le=10, description="clock tick period in engine time")
    publish_every_ticks: int = Field(default=2, ge=1, le=100, description="display frames per tick count")
    fix_stale_s: float = Field(default=10.0, gt=0)


class LogSettings(_Strict):
    """The log files ``watchfloor run`` and ``watchfloor demo`` keep of each process they start (``OUT/logs/NAME.log``):
    everything the process writes (its log, a traceback, a library's own output) goes through the supervisor, which
    rolls the file over to ``NAME.log.1`` ... ``NAME.log.<backups>`` at ``max_file_mb``, so one process never holds
    more than ``max_file_mb * (backups + 1)`` on disk (the defaults: 50 MB)."""

    max_file_mb: float = Field(default=10.0, ge=0.1, le=1024, description="a log file rolls over at this size")
    backups: int = Field(default=4, ge=1, le=100, description="rolled-over files kept per process (oldest go first)")


#: the floor of ``recording.retention_days``: no setting (a typo included) removes a recording younger than this
MIN_RETENTION_DAYS = 7.0


class RecordingSettings(_Strict):
    """How long the engine keeps this site's recordings. It looks at the folder holding its own run folder (the
    parent of ``--out``: ``watchfloor run`` makes one run folder per start there) at start and every
    ``check_every_s``, and removes the ``recording.sqlite`` of other runs of this site, oldest first: those that
    ended more than ``retention_days`` ago and, with ``max_total_gb``, the oldest while all of them together are
    larger than that. Never the running recording, never one that ended less than 7 days ago
    (:data:`MIN_RETENTION_DAYS`), whatever the settings say; each removal is journaled (``recording_removed``).
    A run's journal, summary and logs stay."""

    retention_days: float = Field(default=90.0, le=36500, description="a recording that ended longer ago is removed")
    max_total_gb: float | None = Field(default=None, description="the recordings of the site together, at most "
                                                                 "(GB = 10^9 bytes); none: no size limit")
    check_every_s: float = Field(default=3600.0, ge=60, le=86400, description="wall-clock time between passes")

    @field_validator("retention_days")
    @classmethod
    def _floor_days(cls, v: float) -> float:
        if not v >= MIN_RETENTION_DAYS:
            raise ValueError(f"{v:g} days is below the floor of {MIN_RETENTION_DAYS:g} days (a recording younger "
                             "than that is never removed, so that a typo cannot wipe the history)")
        return v

    @field_validator("max_total_gb")
    @classmethod
    def _floor_size(cls, v: float | None) -> float | None:
        if v is not None and not v >= 1.0:
            raise ValueError(f"{v:g} GB is below the floor of 1 GB (a size limit that small would remove every "
                             "recording but the running one; recordings younger than "
                             f"{MIN_RETENTION_DAYS:g} days are kept anyway)")
        return v


class SigningSettings(_Strict):
    """The engine's journal-signing key (made by ``watchfloor keys init --dir DIR``) and its pinned fingerprint.
    ``key_dir`` is relative to the site file; ``$WATCHFLOOR_KEY_DIR`` overrides it. With a key, the engine seals
    (signs) the journal's and the recording's chain heads every ``seal_interval_s`` of engine time and at close;
    ``watchfloor journal verify --site`` checks the seals against ``fingerprint`` only."""

    key_dir: str | None = Field(default=None, description="folder holding journal-signing.key (mode 0700)")
    fingerprint: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$",
                                    description="sha256:<hex> of the raw public key, as `watchfloor keys show` prints")
    seal_interval_s: float = Field(default=10.0, gt=0, le=3600, description="engine time between seals")


class Site(_Strict):
    """A whole site: where things are, who is there, and how the processes find each other."""

    id: Id
    name: Text
    origin: Origin
    timezone: str = "UTC"
    bus: BusEndpoints = BusEndpoints()
    mqtt: MqttBroker = MqttBroker()
    opcua: OpcUaServer = OpcUaServer()
    console: ConsoleServer = ConsoleServer()
    uwb: UwbSettings = UwbSettings()
    clock: ClockSettings = ClockSettings()
    engine: EngineSettings = EngineSettings()
    signing: SigningSettings = SigningSettings()
    recording: RecordingSettings = RecordingSettings()
    logs: LogSettings = LogSettings()
    access: AccessSettings = AccessSettings()
    fences: FenceSettings = FenceSettings()
    floor_plan: FloorPlan
    anchors: list[Anchor] = Field(min_length=3)
    zones: list[Zone] = []
    gas_detectors: list[GasDetector] = []
    vibration_points: list[VibrationPoint] = []
    cameras: list[Camera] = []
    roles: list[str] = Field(default_factory=lambda: ["worker", "contractor", "watcher", "visitor"])
    people: list[Person] = []
    users: list[User] = []
    escalation_policies: list[EscalationPolicy] = []
    default_escalation: dict[Literal["critical", "high", "medium", "low"], Id] = Field(
        default_factory=dict,
        description="escalation policy id per priority, for every alarm of that priority whose alarm_rules entry "
                    "names none (or that no rule matches)")
    alarm_rules: list[AlarmRule] = []
    permit_settings: PermitSettings = PermitSettings()
    permits: list[PlannedPermit] = []
    people_safety: PeopleSafetySettings = PeopleSafetySettings()
    vibration: VibrationSettings = VibrationSettings()
    camera_inference: CameraInferenceSettings | None = None
    detection_fusion: DetectionFusionSettings = DetectionFusionSettings()
    camera_snapshots: CameraSnapshotSettings = CameraSnapshotSettings()
    inputs: list[NamedInput] = []
    rules: list[CompositeRule] = []
    operator_positions: list[OperatorPosition] = Field(default_factory=lambda: [OperatorPosition(id="main")])
    notifications: Notifications = Notifications()
    max_shelve_s: dict[Literal["critical", "high", "medium", "low"], float] = Field(
        default_factory=lambda: {"critical": 3600.0, "high": 14400.0, "medium": 28800.0, "low": 43200.0},
        description="longest a person may shelve an alarm of each priority")
    shifts: list[Shift] = []
