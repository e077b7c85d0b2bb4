"""Regenerate demo-plant.yaml and its floor plan PNG (deterministic). Run: python -m config.sites.generate_demo_plant

The demo plant is a 300 m x 200 m chemical plant: a reactor unit, a distillation unit, a tank farm,
a substation, a control room and workshop, two muster points; 200 tagged people.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).parent
EXTENT = (0.0, 0.0, 300.0, 200.0)


def rect(x0, y0, x1, y1):
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def homography(img_pts, ground_pts):
    """DLT: 4 image points (u, v) -> 4 ground points (x, y)."""
    rows = []
    for (u, v), (x, y) in zip(img_pts, ground_pts):
        rows.append([u, v, 1, 0, 0, 0, -x * u, -x * v, -x])
        rows.append([0, 0, 0, u, v, 1, -y * u, -y * v, -y])
    _, _, vt = np.linalg.svd(np.array(rows, dtype=float))
    H = vt[-1].reshape(3, 3)
    H = H / H[2, 2]
    return [[round(float(c), 9) for c in r] for r in H]


STRUCTURES = [
    ("B-CR", "building", {"en": "Control room", "zh-CN": "中控室"}, rect(15, 15, 60, 45)),
    ("B-WS", "building", {"en": "Workshop", "zh-CN": "维修车间"}, rect(75, 15, 125, 45)),
    ("U-100", "unit", {"en": "Unit 100 reactors", "zh-CN": "反应单元"}, rect(30, 120, 120, 180)),
    ("U-200", "unit", {"en": "Unit 200 distillation", "zh-CN": "精馏单元"}, rect(170, 120, 270, 180)),
    ("TF-1", "unit", {"en": "Tank farm", "zh-CN": "罐区"}, rect(170, 20, 285, 95)),
    ("SS-1", "building", {"en": "Substation", "zh-CN": "变电所"}, rect(135, 60, 155, 80)),
    ("PR-1", "pipe_rack", {"en": "Pipe rack", "zh-CN": "管廊"}, rect(30, 102, 270, 108)),
    ("R-101", "tank", "R-101", rect(50, 140, 62, 152)),
    ("R-102", "tank", "R-102", rect(80, 140, 92, 152)),
    ("C-201", "tank", "C-201", rect(190, 135, 200, 165)),
    ("C-202", "tank", "C-202", rect(225, 135, 235, 165)),
    ("T-1", "tank", "T-1", rect(180, 30, 200, 50)),
    ("T-2", "tank", "T-2", rect(215, 30, 235, 50)),
    ("T-3", "tank", "T-3", rect(250, 30, 270, 50)),
    ("T-4", "tank", "T-4", rect(180, 65, 200, 85)),
    ("T-5", "tank", "T-5", rect(215, 65, 235, 85)),
]

ZONES = [
    ("Z-SUB", "restricted", ("Substation", "变电所"), rect(133, 58, 157, 82), {"allowed_people": ["P0001", "P0002", "P0003"]}),
    ("Z-R101", "restricted", ("Reactor R-101 enclosure", "R-101 反应器围栏"), rect(45, 135, 67, 157), {"allowed_roles": []}),
    ("Z-TF", "area", ("Tank farm", "罐区"), rect(168, 18, 287, 97), {}),
    ("Z-U200", "area", ("Unit 200", "精馏单元"), rect(180, 125, 245, 175), {}),
    ("Z-HW1", "hazardous", ("Hot work at pipe bridge PB-1", "PB-1 管桥动火作业区"), rect(132, 150, 148, 170), {}),
    ("Z-V205", "confined_space", ("Vessel V-205", "V-205 容器"), rect(255, 150, 265, 160), {}),
    ("Z-T3", "confined_space", ("Tank T-3 interior", "T-3 罐内"), rect(250, 30, 270, 50), {}),
    ("Z-MP1", "muster_point", ("Muster point 1 (control room)", "集合点 1（中控室）"), rect(15, 50, 45, 70), {}),
    ("Z-MP2", "muster_point", ("Muster point 2 (east gate)", "集合点 2（东门）"), rect(275, 105, 295, 125), {}),
    ("Z-U100", "area", ("Unit 100", "反应单元"), rect(28, 118, 122, 182), {}),
]

ANCHORS = [
    ("A01", [5, 5, 8.0]), ("A02", [100, 8, 10.0]), ("A03", [200, 5, 6.0]), ("A04", [295, 8, 9.0]),
    ("A05", [5, 195, 9.0]), ("A06", [100, 192, 6.0]), ("A07", [200, 195, 10.0]), ("A08", [295, 192, 7.0]),
    ("A09", [100, 100, 12.0]), ("A10", [200, 100, 4.0]),
]

GAS = [
    # id, gas, unit, low, high, range, position
    ("GD01", "CH4", "%LEL", 20, 40, 100, [40, 130, 1.0]), ("GD02", "CH4", "%LEL", 20, 40, 100, [70, 160, 1.0]),
    ("GD03", "CH4", "%LEL", 20, 40, 100, [100, 130, 1.0]), ("GD04", "H2S", "ppm", 10, 20, 100, [56, 160, 1.5]),
    ("GD05", "CO", "ppm", 20, 100, 500, [86, 130, 1.5]), ("GD06", "CH4", "%LEL", 20, 40, 100, [185, 130, 1.0]),
    ("GD07", "CH4", "%LEL", 20, 40, 100, [215, 150, 1.0]), ("GD08", "CH4", "%LEL", 20, 40, 100, [250, 130, 1.0]),
    ("GD09", "H2S", "ppm", 10, 20, 100, [210, 170, 1.5]), ("GD10", "NH3", "ppm", 20, 30, 100, [260, 170, 1.5]),
    ("GD11", "CH4", "%LEL", 20, 40, 100, [190, 25, 0.5]), ("GD12", "CH4", "%LEL", 20, 40, 100, [225, 25, 0.5]),
    ("GD13", "CH4", "%LEL", 20, 40, 100, [260, 25, 0.5]), ("GD14", "CH4", "%LEL", 20, 40, 100, [190, 58, 0.5]),
    ("GD15", "CH4", "%LEL", 20, 40, 100, [225, 58, 0.5]), ("GD16", "CH4", "%LEL", 20, 40, 100, [260, 58, 0.5]),
    ("GD17", "O2", "%vol", 19.5, 23.5, 25, [260, 155, 1.0]), ("GD18", "O2", "%vol", 19.5, 23.5, 25, [260, 40, 1.0]),
    ("GD19", "Cl2", "ppm", 0.5, 1.0, 10, [145, 90, 1.5]), ("GD20", "CO", "ppm", 20, 100, 500, [100, 40, 1.5]),
]

VIB = [
    ("VP01", "P-101A feed pump", "group2", [40, 112, 0.5]), ("VP02", "P-101B feed pump", "group2", [48, 112, 0.5]),
    ("VP03", "K-201 compressor", "group1", [160, 140, 1.0]), ("VP04", "P-201A reflux pump", "group2", [205, 112, 0.5]),
    ("VP05", "P-201B reflux pump", "group2", [213, 112, 0.5]), ("VP06", "P-301 transfer pump", "group2", [205, 60, 0.5]),
    ("VP07", "P-302 transfer pump", "group2", [240, 60, 0.5]), ("VP08", "F-101 fan", "group2", [110, 170, 3.0]),
    ("VP09", "M-102 agitator", "group2", [86, 146, 4.0]), ("VP10", "K-202 blower", "group1", [240, 112, 1.0]),
]

CAMERAS = [
    # id, name, position, ground quad seen (near-left, near-right, far-right, far-left)
    ("CAM1", "Unit 100 east", [125, 150, 8.0], [[110, 125], [110, 175], [40, 185], [40, 115]]),
    ("CAM2", "Tank farm north", [230, 100, 10.0], [[210, 92], [250, 92], [280, 25], [175, 25]]),
    ("CAM3", "Unit 200 west", [165, 150, 8.0], [[175, 170], [175, 130], [260, 120], [260, 180]]),
    ("CAM4", "Main gate", [290, 100, 6.0], [[280, 110], [280, 90], [230, 80], [230, 120]]),
]

CERT_TYPES = ["hot_work", "confined_space", "working_at_height", "lifting", "temporary_electricity",
              "excavation", "blind_plate", "road_closure"]
SURNAMES = "Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu Xu Sun Hu Zhu Gao Lin He Guo Ma Luo".split()
GIVEN = "Wei Fang Min Jing Lei Jun Yong Jie Tao Ming Chao Xia Ping Gang Hui Bo Lin Hong Qiang Yan".split()
# the same names in characters, in the same order
SURNAMES_ZH = "王 李 张 刘 陈 杨 赵 黄 周 吴 徐 孙 胡 朱 高 林 何 郭 马 罗".split()
GIVEN_ZH = "伟 芳 敏 静 磊 军 勇 杰 涛 明 超 霞 平 刚 辉 波 林 红 强 艳".split()


def build() -> dict:
    rng = np.random.default_rng(20261122)
    people = []
    for i in range(1, 201):
        pid = f"P{i:04d}"
        if i <= 150:
            role = "worker"
        elif i <= 185:
            role = "contractor"
        elif i <= 195:
            role = "watcher"
        else:
            role = "visitor"
        certs = []
        if role in ("worker", "contractor", "watcher"):
            for t in rng.choice(CERT_TYPES, size=int(rng.integers(1, 4)), replace=False):
                expires = f"2027-{int(rng.integers(1, 13)):02d}-{int(rng.integers(1, 29)):02d}"
                certs.append({"type": str(t), "number": f"GB-{int(rng.integers(100000, 999999))}", "expires": expires})
        if pid == "P0042":  # the welder of the expired-certificate story
            certs = [{"type": "hot_work", "number": "GB-424242", "expires": "2026-10-31"}]
        if pid in ("P0101", "P0102"):  # the hot-work crew at PB-1
            certs = [{"type": "hot_work", "number": f"GB-7{i:05d}", "expires": "2027-09-30"}]
        if pid == "P0185":  # the confined-space entrant of the watcher story
            certs = [{"type": "confined_space", "number": "GB-185185", "expires": "2027-06-30"}]
        name = f"{SURNAMES[i % len(SURNAMES)]} {GIVEN[(i * 7) % len(GIVEN)]}"
        name_zh = f"{SURNAMES_ZH[i % len(SURNAMES_ZH)]}{GIVEN_ZH[(i * 7) % len(GIVEN_ZH)]}"
        people.append({"id": pid, "name": name, "name_zh": name_zh, "tag": f"T{i:04d}", "role": role,
                       "company": "Contractor Co." if role == "contractor" else "Demo Chemical",
                       "certificates": certs})

    zones = []
    for zid, kind, (en, zh), poly, extra in ZONES:
        z = {"id": zid, "name": {"en": en, "zh-CN": zh}, "kind": kind, "polygon": poly}
        if kind in ("restricted", "hazardous", "confined_space"):
            z["priority"] = "high"
        z.update(extra)
        zones.append(z)

    return {
        "id": "demo-plant",
        "name": {"en": "Demo chemical plant", "zh-CN": "演示化工厂"},
        "origin": {"lat_deg": 30.7420, "lon_deg": 121.3480, "height_m": 4.0, "epsg": 4490},
        "timezone": "Asia/Shanghai",
        "bus": {"ingest": "tcp://127.0.0.1:5601", "publish": "tcp://127.0.0.1:5602",
                "command": "tcp://127.0.0.1:5603"},
        "mqtt": {"host": "127.0.0.1", "port": 1883, "topic_prefix": "watchfloor/demo-plant"},
        "opcua": {"endpoint": "opc.tcp://127.0.0.1:4840/watchfloor/", "namespace_uri": "urn:watchfloor:demo-plant",
                  "publishing_interval_ms": 250},
        "console": {"host": "127.0.0.1", "port": 5006, "layout": "wall-default", "language": "en"},
        "uwb": {"tag_height_m": 1.2, "max_range_m": 160.0, "slice_s": 0.25, "range_sigma_m": 0.1},
        "engine": {"tick_s": 0.1, "publish_every_ticks": 2, "fix_stale_s": 10.0},
        # a demonstration site: the documented demo credentials below are accepted, and the login page says so
        "access": {"demo": True, "users_file": USERS_FILE},
        "floor_plan": {
            "extent_m": list(EXTENT),
            "image": "demo-plant-floor.png",
            "structures": [{"id": s, "kind": k, "label": lbl, "polygon": p} for s, k, lbl, p in STRUCTURES],
        },
        "anchors": [{"id": a, "position_m": p} for a, p in ANCHORS],
        "zones": zones,
        "gas_detectors": [
            {"id": g, "name": f"{g} {gas}", "position_m": pos, "node_id": f"ns=2;s={g}.PV", "gas": gas,
             "unit": unit, "low": lo, "high": hi, "range_max": rmax, "expected_interval_s": 1.0}
            for g, gas, unit, lo, hi, rmax, pos in GAS
        ],
        "vibration_points": [
            {"id": v, "machine": m, "machine_group": grp, "foundation": "rigid", "position_m": pos,
             "expected_interval_s": 5.0}
            for v, m, grp, pos in VIB
        ],
        "cameras": [
            {"id": c, "name": n, "position_m": pos, "image_size_px": [1920, 1080],
             "homography": homography([(0, 1080), (1920, 1080), (1920, 0), (0, 0)], quad)}
            for c, n, pos, quad in CAMERAS
        ],
        "roles": ["worker", "contractor", "watcher", "visitor"],
        "people": people,
        "escalation_policies": [
            {"id": "default", "steps": [{"after_s": 120, "notify_role": "supervisor"},
                                        {"after_s": 7200, "notify_role": "safety_manager"}]},
            {"id": "urgent", "steps": [{"after_s": 60, "notify_role": "supervisor"},
                                       {"after_s": 600, "notify_role": "safety_manager"}]},
        ],
        # every high and critical alarm escalates (a supervisor within minutes), whatever raised it
        "default_escalation": {"critical": "urgent", "high": "default"},
        "shifts": [{"id": "day", "start": "08:00", "end": "20:00"}, {"id": "night", "start": "20:00", "end": "08:00"}],
    }


def draw_floor_png(site: dict, path: Path, px_per_m: float = 4.0) -> None:
    """A quiet base map: ground, roads and fences in greys (ISA-101: no colour for normal things)."""
    from PIL import Image, ImageDraw

    x0, y0, x1, y1 = EXTENT
    w, h = int((x1 - x0) * px_per_m), int((y1 - y0) * px_per_m)
    img = Image.new("RGB", (w, h), (52, 55, 58))
    d = ImageDraw.Draw(img)

    def to_px(pt):
        return ((pt[0] - x0) * px_per_m, (y1 - pt[1]) * px_per_m)

    for gx in range(0, int(x1 - x0) + 1, 10):  # 10 m grid, faint
        d.line([to_px((gx, y0)), to_px((gx, y1))], fill=(58, 61, 64), width=1)
    for gy in range(0, int(y1 - y0) + 1, 10):
        d.line([to_px((x0, gy)), to_px((x1, gy))], fill=(58, 61, 64), width=1)
    roads = [rect(0, 95, 300, 117), rect(155, 0, 167, 200), rect(0, 0, 300, 10)]
    for r in roads:
        d.polygon([to_px(p) for p in r], fill=(66, 69, 72))
    d.rectangle([to_px((1, 199)), to_px((299, 1))], outline=(90, 93, 96), width=3)
    img.save(path, optimize=True)


#: the demo's accounts: every password is "demo", every field worker's PIN is DEMO_PIN (docs/operator-guide.md)
USERS_FILE = "demo-plant-users.yaml"
DEMO_PASSWORD = "demo"
DEMO_PIN = "1234"
DEMO_ACCOUNTS = [
    {"id": "op1", "name": "Operator 1", "role": "operator", "team": "A"},
    {"id": "op2", "name": "Operator 2", "role": "operator", "team": "B"},
    {"id": "sup1", "name": "Shift supervisor", "role": "supervisor", "team": "A"},
    {"id": "sup2", "name": "Second supervisor", "role": "supervisor", "team": "B"},
    {"id": "safety1", "name": "Safety manager", "role": "safety_manager"},
    # field workers (the phone pages): the watcher of CS-1 and a fitter, by their person ids and tags
    {"id": "P0186", "name": "Field worker P0186", "role": "field_worker", "tag": "T0186"},
    {"id": "P0101", "name": "Field worker P0101", "role": "field_worker", "tag": "T0101"},
    # the watchers of the scenarios' permits (HW-1, HW-2, HW-3, HW-5) sign in at the work on their phones
    *({"id": f"P0{n}", "name": f"Field worker P0{n}", "role": "field_worker", "tag": f"T0{n}"}
      for n in (187, 188, 189, 192)),
]


def write_demo_users(path: Path) -> None:
    """The demo users file: argon2id hashes (each with its own salt) of the documented demo credentials."""
    from config.users import Account, hash_secret, save_users_file

    accounts = []
    for a in DEMO_ACCOUNTS:
        secret = {"pin_hash": hash_secret(DEMO_PIN)} if a["role"] == "field_worker" else \
            {"password_hash": hash_secret(DEMO_PASSWORD)}
        accounts.append(Account(**a, **secret))
    save_users_file(path, accounts)
    path.chmod(0o644)  # shipped with the code: the demo's credentials are documented, not secret


def main() -> None:
    site = build()
    write_demo_users(HERE / USERS_FILE)
    out = HERE / "demo-plant.yaml"
    header = "# Demo chemical plant. Generated by config/sites/generate_demo_plant.py; edit that, not this.\n"
    out.write_text(header + yaml.safe_dump(site, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
    draw_floor_png(site, HERE / "demo-plant-floor.png")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
