"""Site configuration for camera inference and camera-detection fusion (pydantic).

Two sections a site file may hold (the :class:`~config.schema.Site` fields are named in brackets):

- :class:`CameraInferenceSettings` (``camera_inference``, optional): run a YOLO-format ONNX model on JPEG frames
  that cameras send over MQTT (ingest/camera_infer.py);
- :class:`DetectionFusionSettings` (``detection_fusion``): how detections meet UWB tags, when they raise alarms,
  who verifies them (alarms/detections.py);
- :class:`CameraSnapshotSettings` (``camera_snapshots``): the frame that raised a detection alarm, kept by the camera
  adapter and sent to the engine's blob store (ingest/camera.py, ingest/engine/blobs.py).

Checks that need the rest of the site (does camera ``CAM7`` exist?) are in :func:`check_camera_references`,
which returns ``(path, reason)`` pairs for the loader. docs/cameras.md describes both sections. This module
imports nothing of ours outside config.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .rules import DETECTION_CLASSES

if TYPE_CHECKING:
    from .schema import Site

__all__ = [
    "DETECTION_CLASSES",
    "PPE_CLASSES",
    "CameraInferenceSettings",
    "CameraSnapshotSettings",
    "DetectionFusionSettings",
    "check_camera_references",
]

#: the classes that say a person lacks protective equipment
PPE_CLASSES = ("no_helmet", "no_vest", "no_harness")

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
DetectionClass = Literal["person", "no_helmet", "no_vest", "no_harness"]
Priority = Literal["critical", "high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class CameraInferenceSettings(_Strict):
    """A YOLO-format ONNX detector run by the camera adapter on frames from ``<prefix>/camera/<id>/frames``."""

    enabled: bool = True
    model_path: str = Field(min_length=1, description="the .onnx file; a relative path is relative to the site file")
    class_names: list[str] = Field(
        min_length=1, max_length=1000,
        description="the model's classes in its output order (class index i = class_names[i])")
    class_map: dict[str, DetectionClass] = Field(
        default_factory=dict,
        description="model class name -> watchfloor class; empty: names that are watchfloor classes map to "
                    "themselves. Model classes that map to nothing are ignored (e.g. 'helmet').")
    input_size_px: int = Field(default=640, ge=32, le=4096, description="side of the square model input, pixels")
    layout: Literal["auto", "yolov8", "yolov5"] = Field(
        default="auto", description="output layout; auto tells [1, 4+C, N] from [1, N, 5+C] by shape")
    confidence_threshold: float = Field(default=0.25, gt=0, lt=1, description="score below which a box is dropped")
    iou_threshold: float = Field(default=0.45, gt=0, le=1, description="NMS: same-class overlap that suppresses")
    max_detections: int = Field(default=100, ge=1, le=10000, description="most boxes kept per frame")
    cameras: list[Id] | None = Field(default=None, description="cameras whose frames are taken; null: all")
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads")
    max_frame_bytes: int = Field(default=4_000_000, ge=1024, le=64_000_000, description="larger frames are refused")
    latest_frame_only: bool = Field(
        default=True, description="when a camera sent several frames in one adapter slice, infer only its newest "
                                  "(the others are counted as skipped)")

    @field_validator("input_size_px")
    @classmethod
    def _multiple_of_32(cls, v: int) -> int:
        if v % 32:
            raise ValueError(f"input_size_px must be a multiple of 32 (the YOLO stride), got {v}")
        return v

    @field_validator("class_names")
    @classmethod
    def _unique_names(cls, v: list[str]) -> list[str]:
        seen = set()
        for name in v:
            if not name or name in seen:
                raise ValueError(f"class name {name!r} is empty or repeated")
            seen.add(name)
        return v

    @model_validator(mode="after")
    def _map_known(self) -> CameraInferenceSettings:
        unknown = [k for k in self.class_map if k not in self.class_names]
        if unknown:
            raise ValueError(f"class_map names {unknown} are not in class_names")
        if not any(c is not None for c in self.model_classes()):
            raise ValueError("no model class maps to a watchfloor class (person, no_helmet, no_vest, no_harness)")
        return self

    def model_classes(self) -> list[str | None]:
        """For each model class index, the watchfloor class it reports, or None (ignored)."""
        if self.class_map:
            return [self.class_map.get(n) for n in self.class_names]
        return [n if n in DETECTION_CLASSES else None for n in self.class_names]


def _default_ppe_priority() -> dict[str, str]:
    return {"no_helmet": "medium", "no_vest": "low", "no_harness": "high"}


class DetectionFusionSettings(_Strict):
    """Camera detections against UWB tags (alarms/detections.py). Times in seconds of event / engine time."""

    gate_m: float = Field(default=2.0, gt=0, le=50,
                          description="a detection belongs to a tag whose fix is at most this far from its feet")
    max_fix_age_s: float = Field(default=2.0, gt=0, le=60,
                                 description="a fix further than this from the frame time does not count")
    untagged_grace_s: float = Field(
        default=10.0, ge=0, le=3600,
        description="no untagged-person finding until tag fixes have been reaching the engine this long (engine "
                    "time since its first fix): at start-up the cameras see people before their tags' first fixes; "
                    "0: none, cameras count from the start")
    same_person_m: float = Field(default=0.5, gt=0, le=5,
                                 description="a PPE box whose feet are this close to a person box of the same frame "
                                             "belongs to that person")
    min_confidence: float = Field(default=0.5, ge=0, le=1, description="weaker detections are ignored")
    min_frames: int = Field(default=2, ge=1, le=100, description="frames with the finding before it raises")
    frame_window_s: float = Field(default=5.0, gt=0, le=600, description="... within this long")
    hold_s: float = Field(default=10.0, gt=0, le=3600,
                          description="the condition clears this long after the last frame that showed it")
    max_pending: int = Field(default=200, ge=1, le=100000,
                             description="detections awaiting verification kept; the oldest then expires (counted)")
    max_history: int = Field(default=500, ge=0, le=100000, description="verified / expired detections kept for display")
    verifier_roles: list[Literal["operator", "supervisor", "safety_manager", "admin"]] = Field(
        default_factory=lambda: ["supervisor"], min_length=1, description="roles that may confirm or reject")
    untagged_priority: Priority = "medium"
    ppe_priority: dict[Literal["no_helmet", "no_vest", "no_harness"], Priority] = Field(
        default_factory=_default_ppe_priority)


class CameraSnapshotSettings(_Strict):
    """Snapshots of detection alarms (docs/cameras.md, "Snapshots"): the camera adapter keeps each camera's recent
    frames in a bounded ring and sends the one that raised an alarm, when the engine asks for it, to the engine's
    blob store; the store is bounded in count, bytes and age."""

    enabled: bool = Field(default=True, description="the adapter takes frames (<prefix>/camera/<id>/frames) to keep "
                                                    "for snapshots, also without camera_inference")
    ring_frames: int = Field(default=30, ge=1, le=10_000, description="frames kept per camera, newest")
    ring_mb: float = Field(default=32.0, gt=0, le=4096, description="bytes of frames kept per camera, at most (MB)")
    max_blob_bytes: int = Field(default=4_000_000, ge=1024, le=64_000_000,
                                description="a larger blob is refused by the engine (and not sent by the adapter)")
    want_for_s: float = Field(default=60.0, gt=0, le=3600,
                              description="engine time after a raise during which the engine asks for its snapshot")
    store_max_mb: float = Field(default=2048.0, gt=0, le=10_000_000, description="the blob store's bytes, at most (MB)")
    store_max_blobs: int = Field(default=50_000, ge=1, le=100_000_000, description="the blob store's blobs, at most")
    store_retention_days: float | None = Field(
        default=None, gt=0, le=36500,
        description="a blob stored longer ago is removed; null: the recording's retention_days")


def check_camera_references(site: Site) -> list[tuple[str, str]]:
    """``(path, reason)`` for each ``camera_inference.cameras`` entry that is not a camera of the site."""
    ci = getattr(site, "camera_inference", None)
    if ci is None or ci.cameras is None:
        return []
    ids = {c.id for c in site.cameras}
    return [(f"camera_inference.cameras[{i}]", f"unknown camera {c!r}") for i, c in enumerate(ci.cameras)
            if c not in ids]
