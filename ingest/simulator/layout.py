"""Where people can walk: a walkway network (roads, paths, doors) and work stations.

People walk along the walkway graph between *stations* (small rectangles where work is done: the
control room, the workshop, the platforms of a unit, the walkways between tanks). A station hangs off
one graph node by a short *via* path; any point inside a station's rectangle is reachable in a straight
line from the via path's last point, so routes never leave the surveyed walkways.

The demo plant has a hand-drawn network that follows its roads (``DEMO_NODES``, ``DEMO_EDGES``,
``DEMO_STATIONS``). Any other site, or a demo site whose zones were edited so that the drawn network
would cross a restricted, confined-space or hazardous zone, gets a generic grid network that avoids those zones.

All coordinates are site metres (x east, y north).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np

from config.schema import Site
from kernels.geofence import distance_to_edges, distance_to_polygon, points_in_polygon

__all__ = [
    "AVOID_KINDS",
    "Place",
    "Station",
    "WalkwayNetwork",
    "ZoneAccess",
    "build_network",
    "near_polygons",
]

log = logging.getLogger(__name__)

#: zone kinds that nobody enters during normal work (only the scripted scenarios do): entering a hazardous
#: or confined-space zone needs a permit, a restricted one an authorisation
AVOID_KINDS = ("restricted", "confined_space", "hazardous")
#: clearance kept from avoided zones by walkways and stations, metres
CLEARANCE_M = 1.0

Point = tuple[float, float]
Rect = tuple[float, float, float, float]


@dataclass(frozen=True)
class Station:
    """A place where work is done: ``rect`` (x0, y0, x1, y1) m, reached from graph node ``node`` via ``via``."""

    id: str
    group: str
    node: int
    via: tuple[Point, ...]
    rect: Rect


@dataclass(frozen=True)
class Place:
    """Where someone is: reached from graph node ``node`` along ``via`` to ``pos``; ``station`` index or -1."""

    node: int
    via: tuple[Point, ...]
    pos: Point
    station: int = -1


@dataclass(frozen=True)
class ZoneAccess:
    """How a script reaches a zone: from ``node`` along ``via`` to ``post`` (outside), then ``inside``."""

    node: int
    via: tuple[Point, ...]
    post: Point
    inside: Point


# --- the demo plant, drawn along its roads -----------------------------------------------------------

DEMO_NODES: dict[str, Point] = {
    # main east-west road (y 95..117)
    "R10": (10, 111),
    "R37": (37, 111),
    "R75": (75, 111),
    "R100": (100, 111),
    "R125": (125, 111),
    "R161": (161, 111),
    "R185": (185, 111),
    "R215": (215, 111),
    "R250": (250, 111),
    "R280": (280, 111),
    "R292": (292, 111),
    # north-south road (x 155..167)
    "S5": (161, 5),
    "S25": (161, 25),
    "S57": (161, 57),
    "S70": (161, 70),
    "S140": (161, 140),
    "S170": (161, 170),
    "S188": (161, 188),
    # south road (y 0..10)
    "Y10": (10, 5),
    "Y100": (100, 5),
    "Y230": (230, 5),
    "Y290": (290, 5),
    # north perimeter path
    "N10": (10, 188),
    "N75": (75, 188),
    "N125": (125, 188),
    "N215": (215, 188),
    "N280": (280, 188),
    # building doors
    "CRd": (37, 47),
    "WSd": (100, 47),
}

DEMO_EDGES: list[tuple[str, str]] = [
    *zip(
        ["R10", "R37", "R75", "R100", "R125", "R161", "R185", "R215", "R250", "R280"],
        ["R37", "R75", "R100", "R125", "R161", "R185", "R215", "R250", "R280", "R292"],
    ),
    *zip(
        ["S5", "S25", "S57", "S70", "R161", "S140", "S170"],
        ["S25", "S57", "S70", "R161", "S140", "S170", "S188"],
    ),
    *zip(["Y10", "Y100", "S5", "Y230"], ["Y100", "S5", "Y230", "Y290"]),
    *zip(["N10", "N75", "N125", "S188", "N215"], ["N75", "N125", "S188", "N215", "N280"]),
    ("Y10", "R10"),
    ("R10", "N10"),
    ("Y290", "R292"),
    ("R280", "N280"),
    ("R125", "N125"),
    ("R37", "CRd"),
    ("R100", "WSd"),
]

# id, group, node, via, rect (x0, y0, x1, y1)
DEMO_STATIONS: list[tuple[str, str, str, tuple[Point, ...], Rect]] = [
    ("CR", "control", "CRd", ((37, 42),), (20, 20, 55, 40)),
    ("WS", "workshop", "WSd", ((100, 42),), (80, 20, 120, 40)),
    ("U1-S", "u100", "R75", ((75, 121),), (32, 121, 118, 131)),
    ("U1-R102", "u100", "R100", ((100, 121),), (76, 122, 118, 138)),
    ("U1-E", "u100", "R125", ((125, 150), (118, 150)), (96, 135, 118, 178)),
    ("U1-N", "u100", "N75", ((75, 179),), (32, 162, 118, 179)),
    ("U1-W", "u100", "R37", ((37, 121), (37, 133)), (32, 133, 42, 160)),
    ("P-100", "u100", "R37", (), (36, 109, 52, 116)),
    ("U2-S", "u200", "R215", ((215, 121),), (172, 121, 268, 133)),
    ("U2-M", "u200", "R215", ((215, 121),), (203, 135, 222, 178)),
    ("U2-W", "u200", "S140", ((172, 140),), (172, 136, 188, 178)),
    ("U2-E", "u200", "R250", ((250, 121),), (238, 135, 252, 178)),
    ("U2-N", "u200", "N215", ((215, 179),), (172, 168, 268, 179)),
    ("K-201", "u200", "S140", (), (156, 136, 166, 146)),
    ("P-200", "u200", "R215", (), (200, 109, 220, 116)),
    ("TF-N", "tankfarm", "R185", ((185, 96),), (172, 88, 283, 95)),
    ("TF-M", "tankfarm", "S57", ((172, 57),), (172, 53, 283, 62)),
    ("TF-S", "tankfarm", "S25", ((172, 25),), (172, 20, 283, 27)),
    ("TF-C", "tankfarm", "S57", ((172, 57), (207, 57)), (203, 31, 211, 84)),
    ("GATE", "gate", "R292", (), (286, 100, 296, 114)),
]

# zone id -> node, via (ending at the post outside the zone), point inside the zone
DEMO_ZONE_ACCESS: dict[str, tuple[str, tuple[Point, ...], Point]] = {
    "Z-SUB": ("S70", (), (145, 70)),
    "Z-V205": ("R250", ((250, 121), (258, 146)), (260, 155)),
    # the hot-work site at pipe bridge PB-1: from the north-south road to 2 m east of the zone
    "Z-HW1": ("S170", ((161, 160), (150, 160)), (140, 160)),
}


# --- geometry ------------------------------------------------------------------------------------------
# Point in polygon and distance to edges are kernels.geofence's (re-exported here for the walking model).


def near_polygons(pts: np.ndarray, polys: list[np.ndarray], margin_m: float) -> np.ndarray:
    """bool [N]: point inside any polygon or within ``margin_m`` metres of its edges."""
    hit = np.zeros(len(pts), dtype=bool)
    for poly in polys:
        if margin_m > 0:
            hit |= distance_to_polygon(pts, poly) < margin_m  # 0 inside
        else:
            hit |= points_in_polygon(pts, poly)
    return hit


def _sample_polyline(points: list[Point] | np.ndarray, step_m: float = 0.5) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    out = [pts[:1]]
    for a, b in itertools.pairwise(pts):
        n = max(int(np.ceil(np.hypot(*(b - a)) / step_m)), 1)
        s = np.linspace(0.0, 1.0, n + 1)[1:, None]
        out.append(a + s * (b - a))
    return np.concatenate(out)


def _to_segments_m(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 [S]: distance from the point ``p`` to each segment a[k]-b[k] (a, b float64 [S, 2]), metres."""
    ab = b - a
    len2 = np.einsum("ij,ij->i", ab, ab)
    w = np.clip(np.einsum("ij,ij->i", p - a, ab) / np.where(len2 > 0, len2, 1.0), 0.0, 1.0)
    return np.hypot(*(p - (a + w[:, None] * ab)).T)


def _rect_grid(rect: Rect, step_m: float) -> np.ndarray:
    x0, y0, x1, y1 = rect
    xs = np.linspace(x0, x1, max(int((x1 - x0) / step_m), 1) + 1)
    ys = np.linspace(y0, y1, max(int((y1 - y0) / step_m), 1) + 1)
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()])


# --- the network -----------------------------------------------------------------------------------------


class WalkwayNetwork:
    """A walkway graph (nodes [N, 2] m, undirected edges) with stations and shortest routes between places."""

    def __init__(
        self,
        nodes: np.ndarray,
        names: list[str],
        edges: list[tuple[int, int]],
        stations: list[Station],
        zone_access: dict[str, ZoneAccess],
        kind: str,
    ) -> None:
        self.nodes = np.asarray(nodes, dtype=float)
        self.names = names
        self.edges = edges
        self.stations = stations
        self.zone_access = zone_access
        self.kind = kind
        n = len(self.nodes)
        dist = np.full((n, n), np.inf)
        np.fill_diagonal(dist, 0.0)
        nxt = np.full((n, n), -1, dtype=np.int64)
        np.fill_diagonal(nxt, np.arange(n))
        for a, b in edges:
            d = float(np.hypot(*(self.nodes[a] - self.nodes[b])))
            dist[a, b] = dist[b, a] = d
            nxt[a, b], nxt[b, a] = b, a
        for k in range(n):  # Floyd-Warshall: a few dozen nodes
            via_k = dist[:, k : k + 1] + dist[k : k + 1, :]
            better = via_k < dist
            dist = np.where(better, via_k, dist)
            nxt = np.where(better, nxt[:, k : k + 1], nxt)
        self.dist = dist
        self._next = nxt

    def node_path(self, a: int, b: int) -> list[int]:
        """Node indices of the shortest path from node ``a`` to node ``b`` (both included)."""
        if self._next[a, b] < 0:
            raise ValueError(f"no walkway from {self.names[a]} to {self.names[b]}")
        path = [a]
        while a != b:
            a = int(self._next[a, b])
            path.append(a)
        return path

    def station_place(self, station: int, pos: Point) -> Place:
        s = self.stations[station]
        return Place(s.node, s.via, (float(pos[0]), float(pos[1])), station)

    def node_place(self, node: int) -> Place:
        x, y = self.nodes[node]
        return Place(node, (), (float(x), float(y)), -1)

    def route(self, a: Place, b: Place) -> list[Point]:
        """Polyline (metres) from place ``a`` to place ``b`` along via paths and walkways."""
        if a.station >= 0 and a.station == b.station:
            pts = [a.pos, b.pos]
        else:
            pts = [a.pos, *reversed(a.via)]
            pts += [tuple(self.nodes[i]) for i in self.node_path(a.node, b.node)]
            pts += [*b.via, b.pos]
        out: list[Point] = []
        for p in pts:
            p = (float(p[0]), float(p[1]))
            if not out or np.hypot(p[0] - out[-1][0], p[1] - out[-1][1]) > 1e-9:
                out.append(p)
        return out

    def nearest_node(self, pt: Point) -> int:
        return int(np.argmin(np.hypot(*(self.nodes - np.asarray(pt)).T)))

    def ways_from(self, pt: Point, tol_m: float = 0.25) -> list[Place]:
        """The places to route from for someone standing at ``pt`` on the walkways: on an edge (towards either
        end), or in a station's rectangle, on the straight lines into it or on its via path (back along the via
        to its node). Empty when ``pt`` is on none of them (someone a story put elsewhere)."""
        p = np.asarray(pt, dtype=float)
        pos = (float(p[0]), float(p[1]))
        if self.edges:
            ab = np.asarray(self.edges)
            near = _to_segments_m(p, self.nodes[ab[:, 0]], self.nodes[ab[:, 1]]) <= tol_m
            if near.any():
                return [Place(int(end), (), pos) for a, b in ab[near] for end in (a, b)]
        for k, s in enumerate(self.stations):
            x0, y0, x1, y1 = s.rect
            chain = [tuple(self.nodes[s.node]), *s.via]
            if len(chain) > 1:
                c = np.asarray(chain, dtype=float)
                on = np.nonzero(_to_segments_m(p, c[:-1], c[1:]) <= tol_m)[0]
                if len(on):
                    return [Place(s.node, tuple(chain[1 : int(on[0]) + 1]), pos)]
            # the rectangle, and the straight lines into it from the via's end
            if x0 - tol_m <= pos[0] <= x1 + tol_m and y0 - tol_m <= pos[1] <= y1 + tol_m:
                return [Place(s.node, s.via, pos, k)]
            ex, ey = chain[-1]
            if not (min(x0, ex) <= pos[0] <= max(x1, ex) and min(y0, ey) <= pos[1] <= max(y1, ey)):
                continue
            corners = ((x0, y0), (x1, y0), (x1, y1), (x0, y1))
            fan = (np.asarray((chain[-1], c, d), dtype=float) for c, d in zip(corners, corners[1:] + corners[:1]))
            if any(points_in_polygon(p[None], tri)[0] for tri in fan):
                return [Place(s.node, s.via, pos, k)]
        return []

    def entries(self, poly: np.ndarray, margin_m: float = 2.0, step_m: float = 0.5) -> list[Place]:
        """Where the walkways lead into the polygon ``poly`` (float64 [V, 2] m): for each edge that passes
        through it, the first point ``margin_m`` or more inside, coming from either end (a place reached from
        that end's node). Empty when no walkway passes through it."""
        out: list[Place] = []
        for a, b in self.edges:
            for start, end in ((a, b), (b, a)):
                pts = _sample_polyline([self.nodes[start], self.nodes[end]], step_m)
                ok = points_in_polygon(pts, poly) & (distance_to_edges(pts, poly) >= margin_m)
                if ok.any():
                    q = pts[int(np.argmax(ok))]
                    out.append(Place(start, (), (float(q[0]), float(q[1]))))
        return out

    def sample_walkable(self, step_m: float = 0.5, rect_step_m: float = 2.0) -> np.ndarray:
        """Points [M, 2] densely covering every edge, via path and station (used to check clearance)."""
        chunks = [_sample_polyline([self.nodes[a], self.nodes[b]], step_m) for a, b in self.edges]
        for s in self.stations:
            chain = [tuple(self.nodes[s.node]), *s.via]
            chunks.append(_sample_polyline(chain, step_m))
            grid = _rect_grid(s.rect, rect_step_m)
            chunks.append(grid)
            last = np.asarray(chain[-1], dtype=float)
            # the straight lines from the via's end to the station's edge points
            x0, y0, x1, y1 = s.rect
            edge = grid[
                (
                    np.isclose(grid[:, 0], x0)
                    | np.isclose(grid[:, 0], x1)
                    | np.isclose(grid[:, 1], y0)
                    | np.isclose(grid[:, 1], y1)
                )
            ]
            for q in edge:
                chunks.append(_sample_polyline([last, q], step_m))
        return np.concatenate(chunks)


def _avoid_polygons(site: Site) -> list[np.ndarray]:
    return [np.asarray(z.polygon, dtype=float) for z in site.zones if z.kind in AVOID_KINDS]


def _demo_network(site: Site) -> WalkwayNetwork:
    names = list(DEMO_NODES)
    index = {n: i for i, n in enumerate(names)}
    nodes = np.array([DEMO_NODES[n] for n in names], dtype=float)
    edges = [(index[a], index[b]) for a, b in DEMO_EDGES]
    stations = [
        Station(sid, grp, index[node], tuple(via), rect) for sid, grp, node, via, rect in DEMO_STATIONS
    ]
    access = {}
    for zid, (node, via, inside) in DEMO_ZONE_ACCESS.items():
        post = via[-1] if via else DEMO_NODES[node]
        access[zid] = ZoneAccess(index[node], tuple(via), post, inside)
    return WalkwayNetwork(nodes, names, edges, stations, access, kind="demo")


def _network_fits(net: WalkwayNetwork, site: Site) -> str | None:
    """None when the network is usable on ``site``, else the reason it is not."""
    x0, y0, x1, y1 = site.floor_plan.extent_m
    pts = net.sample_walkable()
    if np.any((pts[:, 0] < x0) | (pts[:, 0] > x1) | (pts[:, 1] < y0) | (pts[:, 1] > y1)):
        return "walkways leave the floor plan extent"
    if np.any(near_polygons(pts, _avoid_polygons(site), CLEARANCE_M)):
        return "walkways cross a restricted, confined-space or hazardous zone"
    zone_ids = {z.id for z in site.zones}
    if not set(net.zone_access) <= zone_ids:
        return "scripted zones missing"
    return None


def _grid_network(site: Site, spacing_m: float = 10.0) -> WalkwayNetwork:
    """A square grid of walkways over the extent with the avoided zones cut out; stations at some nodes."""
    x0, y0, x1, y1 = site.floor_plan.extent_m
    margin = min(5.0, (x1 - x0) / 4, (y1 - y0) / 4)
    xs = np.arange(x0 + margin, x1 - margin + 1e-9, spacing_m)
    ys = np.arange(y0 + margin, y1 - margin + 1e-9, spacing_m)
    avoid = _avoid_polygons(site)
    gx, gy = np.meshgrid(xs, ys)
    cand = np.column_stack([gx.ravel(), gy.ravel()])
    ok = ~near_polygons(cand, avoid, CLEARANCE_M + 1.0)
    ij = {}
    nodes = []
    for k, (x, y) in enumerate(cand):
        if ok[k]:
            ij[(k % len(xs), k // len(xs))] = len(nodes)
            nodes.append((float(x), float(y)))
    edges = []
    for (i, j), a in ij.items():
        for di, dj in ((1, 0), (0, 1)):
            b = ij.get((i + di, j + dj))
            if b is None:
                continue
            seg = _sample_polyline([nodes[a], nodes[b]], 0.5)
            if not np.any(near_polygons(seg, avoid, CLEARANCE_M)):
                edges.append((a, b))
    # keep the largest connected component
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in edges:
        parent[find(a)] = find(b)
    roots = [find(i) for i in range(len(nodes))]
    if not nodes:
        raise ValueError("no walkable ground on this site")
    main = max(set(roots), key=roots.count)
    keep = [i for i in range(len(nodes)) if roots[i] == main]
    renum = {old: new for new, old in enumerate(keep)}
    nodes_arr = np.array([nodes[i] for i in keep])
    edges = [(renum[a], renum[b]) for a, b in edges if a in renum and b in renum]
    rng = np.random.default_rng(0)  # the layout depends on the site only
    half = min(3.0, spacing_m / 3)
    stations = []
    for k in rng.permutation(len(nodes_arr))[:30]:
        x, y = nodes_arr[k]
        rect = (x - half, y - half, x + half, y + half)
        if not np.any(near_polygons(_rect_grid(rect, 1.0), avoid, CLEARANCE_M)):
            stations.append(Station(f"G{len(stations) + 1:02d}", "any", int(k), (), rect))
    names = [f"G{i}" for i in range(len(nodes_arr))]
    net = WalkwayNetwork(nodes_arr, names, edges, stations, {}, kind="grid")
    access = {}
    for z in site.zones:
        poly = np.asarray(z.polygon, dtype=float)
        centre = tuple(np.mean(poly, axis=0))
        node = net.nearest_node(centre)
        start = net.nodes[node]
        line = _sample_polyline([tuple(start), centre], 0.25)
        outside = ~points_in_polygon(line, poly)
        # the post: the last point of the straight line still 3 m or more outside the zone
        far = outside & (distance_to_edges(line, poly) >= 3.0)
        p = line[np.nonzero(far)[0][-1]] if far.any() else start
        post = (float(p[0]), float(p[1]))
        c = centre if points_in_polygon(np.array([centre]), poly)[0] else poly[0]
        access[z.id] = ZoneAccess(node, (post,), post, (float(c[0]), float(c[1])))
    net.zone_access = access
    return net


def build_network(site: Site) -> WalkwayNetwork:
    """The demo plant's drawn walkways when they fit ``site``, else a grid that avoids its closed zones."""
    demo = _demo_network(site)
    reason = _network_fits(demo, site)
    if reason is None:
        return demo
    log.info("site %s: drawn demo walkways not used (%s); using a grid network", site.id, reason)
    return _grid_network(site)
