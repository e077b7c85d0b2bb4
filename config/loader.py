"""Load a site file (YAML) and check it; every problem names the file, the path inside it and the reason."""

from __future__ import annotations

import os
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
from .schema import Site, User
from .users import USERS_FILE_ENV, UsersFileError, load_users_file, verify_secret
from .vibration import check_vibration_references

__all__ = ["ConfigIssue", "ConfigError", "load_site", "parse_site", "format_path", "site_summary", "users_file_of",
           "inline_secrets", "weak_accounts", "dump_site"]


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
    for prio, pid in site.default_escalation.items():
        if pid not in policies:
            issues.append(ConfigIssue(f"default_escalation.{prio}", f"unknown escalation policy {pid!r} "
                                      f"(policies: {', '.join(sorted(policies)) or 'none'})"))
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
    # with a users file, applicants are checked once its roster is read (load_site)
    users_later = not users and bool(site.access.users_file or os.environ.get(USERS_FILE_ENV))
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
        if p.applicant not in users and not users_later:
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


def load_site(path: str | Path, *, users: bool = True) -> Site:
    """Read and validate a site file. The floor plan image, the camera model, the signing key directory and the
    users file are resolved against the file's folder; the users file's roster becomes ``users`` (``users=False``:
    not read, for ``watchfloor users`` making its first account)."""
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
    site = _attach_users(site, p, file) if users else _resolve_users_file(site, p)
    sg = site.signing
    if sg.key_dir and not Path(sg.key_dir).is_absolute():  # the engine checks that the key is there
        sg = sg.model_copy(update={"key_dir": str((p.parent / sg.key_dir).resolve())})
        site = site.model_copy(update={"signing": sg})
    return site


def users_file_of(site: Site) -> Path | None:
    """The users file this site's processes read: ``access.users_file`` as load_site resolved it (with
    ``$WATCHFLOOR_USERS_FILE`` over the site's own value), else the environment's."""
    path = site.access.users_file or os.environ.get(USERS_FILE_ENV)  # load_site resolved the override into it
    return Path(path) if path else None


def _resolve_users_file(site: Site, site_path: Path) -> Site:
    given = os.environ.get(USERS_FILE_ENV) or site.access.users_file
    if not given:
        return site
    path = Path(given) if Path(given).is_absolute() else (site_path.parent / given).resolve()
    return site.model_copy(update={"access": site.access.model_copy(update={"users_file": str(path)})})


def _attach_users(site: Site, site_path: Path, file: str) -> Site:
    """The roster comes from the users file named by the site (resolved against the site file's folder)."""
    site = _resolve_users_file(site, site_path)
    if not site.access.users_file:
        return site
    path = Path(site.access.users_file)
    if site.users:
        raise ConfigError(file, [ConfigIssue("users", "users are listed inline and in the users file "
                                                      f"{path}: keep them in the users file only")])
    try:
        accounts = load_users_file(path)
    except UsersFileError as e:
        raise ConfigError(file, [ConfigIssue("access.users_file", str(e))]) from None
    roster = [User(id=a.id, name=a.name, role=a.role, team=a.team, enabled=a.enabled, tag=a.tag) for a in accounts]
    site = site.model_copy(update={"users": roster})
    issues = [ConfigIssue(f"users file {path}: users[{i}].tag", f"unknown tag {u.tag!r}")
              for i, u in enumerate(roster) if u.tag is not None and u.tag not in {p.tag for p in site.people}]
    issues += _check_permits(site)  # applicants are users
    if issues:
        raise ConfigError(file, issues)
    return site


_SECRET_WORDS = ("password", "passwd", "secret", "token", "api_key", "apikey", "private_key_pem", "pin")


def inline_secrets(path: str | Path) -> list[ConfigIssue]:
    """Secret-looking values written in the site file itself (they travel with it, into every recording): each
    should come from a file or an environment variable named in the config (``*_env``, ``*_file``)."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    found: list[ConfigIssue] = []

    def walk(o: Any, where: list[Any]) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                key = str(k).lower()
                secretish = any(w in key for w in _SECRET_WORDS) and not key.endswith(("_env", "_file", "_dir"))
                if secretish and isinstance(v, (str, int)) and not isinstance(v, bool) and str(v).strip():
                    found.append(ConfigIssue(format_path([*where, k]), "a secret written in the site file: give it "
                                             "from a file or an environment variable (e.g. "
                                             f"{k}_env: NAME) instead"))
                else:
                    walk(v, [*where, k])
        elif isinstance(o, list):
            for i, v in enumerate(o):
                walk(v, [*where, i])

    walk(data, [])
    return found


#: what a careless administrator would set; checked against every hash of a non-demo site (~25 ms each)
_GUESSES = ("demo", "password", "changeme", "123456", "12345678", "admin", "watchfloor", "qwerty", "welcome")
_PIN_GUESSES = ("1234", "0000", "123456", "000000", "111111", "654321")


def weak_accounts(site: Site) -> list[ConfigIssue]:
    """Accounts of a non-demo site whose password (or PIN) is a default, demo or guessable one."""
    path = users_file_of(site)
    if site.access.demo or path is None or not path.exists():
        return []
    try:
        accounts = load_users_file(path)
    except UsersFileError:
        return []
    issues = []
    for i, a in enumerate(accounts):
        if a.enabled and a.password_hash and any(verify_secret(a.password_hash, g) for g in (*_GUESSES, a.id)):
            issues.append(ConfigIssue(f"users file {path}: users[{i}] ({a.id})", "a default or guessable password "
                                      f"on a site that is not a demo: set a new one with `watchfloor users passwd "
                                      f"{a.id} --site SITE`"))
        if a.enabled and a.pin_hash and any(verify_secret(a.pin_hash, g) for g in _PIN_GUESSES):
            issues.append(ConfigIssue(f"users file {path}: users[{i}] ({a.id})", "a default or guessable PIN on a "
                                      "site that is not a demo: set a new one with `watchfloor users passwd`"))
    return issues


def dump_site(site: Site) -> str:
    """``site`` as the text of a site file (YAML). With a users file the roster stays there: the file is named
    (absolute, as load_site resolved it), its users are not written in."""
    data = site.model_dump(mode="json", by_alias=True, exclude_none=True)
    if site.access.users_file:
        data.pop("users", None)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)


def site_summary(site: Site) -> str:
    """One line: what the site holds."""
    kinds = Counter(z.kind for z in site.zones)
    zs = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return (
        f"site {site.id}: {len(site.people)} people, {len(site.anchors)} anchors, {len(site.zones)} zones ({zs}), "
        f"{len(site.gas_detectors)} gas detectors, {len(site.vibration_points)} vibration points, "
        f"{len(site.cameras)} cameras, {len(site.users)} users"
    )
