"""Load a site file (YAML) and check it; every problem names the file, the path inside it and the reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from .cameras import check_camera_references
from .geometry import inside_extent, polygon_area, self_intersection
from .rules import check_rule_references
from .schema import Site
from .vibration import check_vibration_references

__all__ = ["ConfigIssue", "ConfigError", "load_site", "parse_site", "format_path", "site_summary"]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a site file: ``path`` like ``zones[3].polygon``, ``reason`` in plain words."""

    path: str
    reason: str

    def render(self, file: str) -> str:
        return f"{file}: {self.path or '<top>'}: {self.reason}"


class ConfigError(Exception):
    """A site file that cannot be used. ``issues`` lists every problem found."""

    def __init__(self, file: str, issues: list[ConfigIssue]) -> None:
        self.file = file
        self.issues = issues
        super().__init__("\n".join(i.render(file) for i in issues))


def format_path(loc: Iterable[Any]) -> str:
    """('zones', 3, 'polygon') -> 'zones[3].polygon'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _pydantic_issues(err: ValidationError) -> list[ConfigIssue]:
    issues = []
    for e in err.errors():
        loc = [p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field (a typo?)"
        issues.append(ConfigIssue(format_path(loc), msg))
    return issues


def _duplicates(items: list[Any], key: str, path: str) -> list[ConfigIssue]:
    seen: dict[str, int] = {}
    issues = []
    for i, item in enumerate(items):
        k = getattr(item, key)
        if k in seen:
            issues.append(ConfigIssue(f"{path}[{i}].{key}", f"duplicate {key} {k!r} (first at {path}[{seen[k]}])"))
        else:
            seen[k] = i
    return issues


def _check_references(site: Site) -> list[ConfigIssue]:
    """Checks across sections that one field's validator cannot see."""
    issues: list[ConfigIssue] = []
    ext = site.floor_plan.extent_m
    for section, key in (
        ("anchors", "id"),
        ("zones", "id"),
        ("gas_detectors", "id"),
        ("gas_detectors", "node_id"),
        ("vibration_points", "id"),
        ("cameras", "id"),
        ("people", "id"),
        ("people", "tag"),
        ("users", "id"),
        ("escalation_policies", "id"),
        ("shifts", "id"),
    ):
        issues += _duplicates(getattr(site, section), key, section)
    for dup, n in Counter(site.roles).items():
        if n > 1:
            issues.append(ConfigIssue("roles", f"role {dup!r} listed {n} times"))

    span = max(ext[2] - ext[0], ext[3] - ext[1])
    for i, a in enumerate(site.anchors):
        if not inside_extent(a.position_m, ext, margin=span):
            issues.append(ConfigIssue(f"anchors[{i}].position_m", f"{list(a.position_m)} is far outside the site"))
    anchors = np.array([a.position_m for a in site.anchors])
    if np.linalg.matrix_rank(anchors[:, :2] - anchors[0, :2], tol=1.0) < 2:
        issues.append(ConfigIssue("anchors", "anchors are collinear in plan: no 2D fix is possible"))

    people_ids = {p.id for p in site.people}
    roles = set(site.roles)
    for i, z in enumerate(site.zones):
        where = f"zones[{i}].polygon"
        if abs(polygon_area(z.polygon)) < 1e-6:
            issues.append(ConfigIssue(where, "polygon has zero area"))
        cross = self_intersection(z.polygon)
        if cross is not None:
            issues.append(ConfigIssue(where, f"polygon intersects itself (edges {cross[0]} and {cross[1]})"))
        for j, pt in enumerate(z.polygon):
            if not inside_extent(pt, ext):
                issues.append(ConfigIssue(f"{where}[{j}]", f"point {list(pt)} is outside the floor plan {list(ext)}"))
                break
        if z.z_band_m is not None and not z.z_band_m[0] < z.z_band_m[1]:
            issues.append(ConfigIssue(f"zones[{i}].z_band_m", "band must be [low, high] with low < high"))
        for j, r in enumerate(z.allowed_roles):
            if r not in roles:
                issues.append(ConfigIssue(f"zones[{i}].allowed_roles[{j}]", f"unknown role {r!r}"))
        for j, p in enumerate(z.allowed_people):
            if p not in people_ids:
                issues.append(ConfigIssue(f"zones[{i}].allowed_people[{j}]", f"unknown person {p!r}"))
    for i, p in enumerate(site.people):
        if p.role not in roles:
            issues.append(ConfigIssue(f"people[{i}].role", f"unknown role {p.role!r} (roles: {sorted(roles)})"))
    for i, d in enumerate(site.gas_detectors):
        if not inside_extent(d.position_m, ext):
            issues.append(ConfigIssue(f"gas_detectors[{i}].position_m", "detector is outside the floor plan"))
    policies = {p.id for p in site.escalation_policies}
    for i, r in enumerate(site.alarm_rules):
        if r.escalation is not None and r.escalation not in policies:
            issues.append(ConfigIssue(f"alarm_rules[{i}].escalation", f"unknown escalation policy {r.escalation!r}"))
    for prio, s in site.max_shelve_s.items():
        if not 0 <= s <= 7 * 86400:
            issues.append(ConfigIssue(f"max_shelve_s.{prio}", "must be between 0 and 7 days (seconds)"))
    issues += [ConfigIssue(p, r) for p, r in check_rule_references(site)]
    issues += _check_permits(site)
    issues += [ConfigIssue(p, r) for p, r in check_camera_references(site)]
    issues += [ConfigIssue(p, r) for p, r in check_vibration_references(site)]
    for i, c in enumerate(site.cameras):
        issues += _check_homography(c.homography, c.image_size_px, ext, f"cameras[{i}].homography")
    return issues


def _check_permits(site: Site) -> list[ConfigIssue]:
    issues = []
    tags = {p.tag for p in site.people}
    zones = {z.id for z in site.zones}
    users = {u.id for u in site.users}
    ext = site.floor_plan.extent_m
    issues += _duplicates(site.permits, "id", "permits")
    for i, p in enumerate(site.permits):
        where = f"permits[{i}]"
        if p.zone is not None and p.zone not in zones:
            issues.append(ConfigIssue(f"{where}.zone", f"unknown zone {p.zone!r}"))
        if p.polygon is not None:
            cross = self_intersection(p.polygon)
            if cross is not None:
                issues.append(ConfigIssue(f"{where}.polygon", f"polygon intersects itself (edges {cross[0]} and "
                                                              f"{cross[1]})"))
            for j, pt in enumerate(p.polygon):
                if not inside_extent(pt, ext):
                    issues.append(ConfigIssue(f"{where}.polygon[{j}]",
                                              f"permit zone point {list(pt)} is outside the site {list(ext)}"))
                    break
        for j, w in enumerate(p.workers):
            if w not in tags:
                issues.append(ConfigIssue(f"{where}.workers[{j}]", f"unknown tag {w!r}"))
        if p.watcher is not None and p.watcher not in tags:
            issues.append(ConfigIssue(f"{where}.watcher", f"unknown tag {p.watcher!r}"))
        if p.applicant not in users:
            issues.append(ConfigIssue(f"{where}.applicant", f"unknown user {p.applicant!r}"))
    return issues


def _check_homography(h: list[list[float]], size: tuple[int, int], ext, path: str) -> list[ConfigIssue]:
    H = np.array(h, dtype=float)
    if not np.all(np.isfinite(H)):
        return [ConfigIssue(path, "homography has non-finite entries")]
    if abs(np.linalg.det(H)) < 1e-12 or np.linalg.cond(H) > 1e12:
        return [ConfigIssue(path, "homography is singular (not invertible)")]
    w, hgt = size
    span = max(ext[2] - ext[0], ext[3] - ext[1])
    issues = []
    # the bottom corners of the image look at the ground nearest the camera: they must land on the site
    for u, v in ((0, hgt), (w, hgt), (w / 2, hgt / 2)):
        x, y, s = H @ np.array([u, v, 1.0])
        if abs(s) < 1e-12 or s < 0:
            issues.append(ConfigIssue(path, f"image point ({u}, {v}) maps to the horizon or behind the camera"))
            break
        if not inside_extent((x / s, y / s), ext, margin=span * 0.5):
            issues.append(ConfigIssue(path, f"image point ({u}, {v}) maps to ({x / s:.1f}, {y / s:.1f}) m, "
                                            "far outside the site"))
            break
    return issues


def parse_site(data: Any, file: str = "<memory>") -> Site:
    """Validate already-parsed YAML/JSON data; raise :class:`ConfigError` listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(file, [ConfigIssue("", "the file must hold a mapping (key: value) at the top")])
    try:
        site = Site.model_validate(data)
    except ValidationError as e:
        raise ConfigError(file, _pydantic_issues(e)) from None
    issues = _check_references(site)
    if issues:
        raise ConfigError(file, issues)
    return site


def load_site(path: str | Path) -> Site:
    """Read and validate a site file. The floor plan image, the camera model and the signing key directory are
    resolved against the file's folder."""
    p = Path(path)
    file = str(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(file, [ConfigIssue("", f"cannot read: {e.strerror}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(file, [ConfigIssue(where, f"not valid YAML: {getattr(e, 'problem', e)}")]) from None
    site = parse_site(data, file)
    img = site.floor_plan.image
    if img is not None:
        resolved = (p.parent / img).resolve()
        if not resolved.is_file():
            raise ConfigError(file, [ConfigIssue("floor_plan.image", f"file not found: {resolved}")])
        fp = site.floor_plan.model_copy(update={"image": str(resolved)})
        site = site.model_copy(update={"floor_plan": fp})
    ci = site.camera_inference
    if ci is not None and ci.model_path and not Path(ci.model_path).is_absolute():
        # a model path is relative to the site file; a missing model is reported by the camera adapter
        ci = ci.model_copy(update={"model_path": str((p.parent / ci.model_path).resolve())})
        site = site.model_copy(update={"camera_inference": ci})
    sg = site.signing
    if sg.key_dir and not Path(sg.key_dir).is_absolute():  # the engine checks that the key is there
        sg = sg.model_copy(update={"key_dir": str((p.parent / sg.key_dir).resolve())})
        site = site.model_copy(update={"signing": sg})
    return site


def site_summary(site: Site) -> str:
    """One line: what the site holds."""
    kinds = Counter(z.kind for z in site.zones)
    zs = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return (
        f"site {site.id}: {len(site.people)} people, {len(site.anchors)} anchors, {len(site.zones)} zones ({zs}), "
        f"{len(site.gas_detectors)} gas detectors, {len(site.vibration_points)} vibration points, "
        f"{len(site.cameras)} cameras, {len(site.users)} users"
    )
