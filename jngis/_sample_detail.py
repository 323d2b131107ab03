"""The generated detail of the sample city (:mod:`jngis.sample`): 街道, communities, units,
households, stations, party organisations and work orders inside the real district outlines.

Every function draws from the one ``numpy.random.Generator`` it is given, in a fixed
order, so a seed always gives the same city.
"""

from __future__ import annotations

import warnings
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.adjacency import shared_edges
from jngis.codes import FINISHED_STATES, SERVICE_AREA_M2_PER_100_HOUSEHOLDS
from jngis.topology import union_coverage
from jngis.workorders import CALENDAR, RESOLVE_WORKING_DAYS

UNITS_PER_COMMUNITY = 52  # cells, of which ~10% become open land: ~40,000 units
OPEN_LAND_SHARE = 0.10
CATEGORIES = (
    "环境卫生", "市政设施", "物业管理", "治安隐患", "违章建筑", "噪音扰民",
    "道路交通", "供水供暖", "邻里纠纷", "市场监管", "其他事项",
)
_NAME_CHARS = (
    "泉舜华明湖山文东西南北新兴和平安康乐祥瑞金玉锦绣德福丰泰宁英雄燕龙凤柳"
    "杏桃梅兰竹菊清源涌泽润阳光辉荣昌盛达通远景春秋嘉恒诚信义礼智仁"
)



# --------------------------------------------------------------------------- geometry


def _density(x: np.ndarray, y: np.ndarray, centres: np.ndarray, weights: np.ndarray,
             scales: np.ndarray, floor: float) -> np.ndarray:
    d = np.hypot(x[:, None] - centres[None, :, 0], y[:, None] - centres[None, :, 1])
    return floor + (weights[None, :] * np.exp(-d / scales[None, :])).sum(axis=1)


def _random_points(polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform random points inside ``polygon`` (rejection sampling)."""
    minx, miny, maxx, maxy = polygon.bounds
    shapely.prepare(polygon)
    out = []
    remaining = n
    while remaining > 0:
        batch = max(64, int(remaining * 1.6 * (maxx - minx) * (maxy - miny) / polygon.area))
        x = rng.uniform(minx, maxx, batch)
        y = rng.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(polygon, x, y)
        pts = np.column_stack([x[inside], y[inside]])[:remaining]
        out.append(pts)
        remaining -= len(pts)
    return np.concatenate(out)


def _seeds(polygon, k: int, density, rng: np.random.Generator) -> np.ndarray:
    """``k`` well-spread seeds following ``density``: k-means of density-weighted samples."""
    from scipy.cluster.vq import kmeans2  # the generator only: not for `import jngis`

    candidates = _random_points(polygon, max(40 * k, 400), rng)
    weight = density(candidates[:, 0], candidates[:, 1])
    chosen = rng.choice(len(candidates), size=max(8 * k, 200), p=weight / weight.sum())
    sample = candidates[chosen] + rng.normal(0, 1.0, (len(chosen), 2))  # break ties
    if k == 1:
        return sample.mean(axis=0, keepdims=True)
    # k-means++ is quadratic in k: use it for the few 街道, random starts for the many cells
    with warnings.catch_warnings():  # an empty cluster only costs a seed: duplicates are dropped below
        warnings.simplefilter("ignore", UserWarning)
        centroids, _ = kmeans2(sample, k, minit="++" if k <= 60 else "points", seed=rng, iter=10)
    # k-means may leave a centroid outside a concave polygon: move it to the nearest sample
    shapely.prepare(polygon)
    outside = ~shapely.contains_xy(polygon, centroids[:, 0], centroids[:, 1])
    for i in np.flatnonzero(outside):
        centroids[i] = sample[np.argmin(np.hypot(*(sample - centroids[i]).T))]
    # identical centroids would make Voronoi cells vanish
    _, unique = np.unique(np.round(centroids, 3), axis=0, return_index=True)
    centroids = centroids[np.sort(unique)]
    return centroids


def _partition(polygon, seeds: np.ndarray) -> np.ndarray:
    """Voronoi cells of ``seeds`` clipped to ``polygon``: an exact, gap-free tiling.

    Each cell keeps the part of its clipped cell that holds its seed; other
    parts (where the Voronoi cell crosses a concave notch) join the neighbour
    they share the longest edge with, so every cell is one polygon.
    """
    points = shapely.points(seeds)
    envelope = shapely.box(*shapely.buffer(shapely.envelope(polygon), 1000).bounds)
    diagram = shapely.voronoi_polygons(shapely.multipoints(points), extend_to=envelope, ordered=True)
    cells = np.asarray(shapely.get_parts(diagram), dtype=object)
    shapely.prepare(polygon)
    inside = shapely.contains_properly(polygon, cells)
    cells = cells.copy()
    cells[~inside] = shapely.intersection(cells[~inside], polygon)
    orphans: list[tuple[Any, shapely.Geometry]] = []  # (cell position, part)
    for i in np.flatnonzero(~inside):
        parts = shapely.get_parts(cells[i])
        parts = parts[shapely.area(parts) > 0]
        if len(parts) == 1:
            cells[i] = parts[0]
            continue
        home = np.flatnonzero(shapely.intersects(parts, points[i]))
        keep = home[0] if len(home) else int(np.argmax(shapely.area(parts)))
        cells[i] = parts[keep]
        orphans.extend((i, part) for j, part in enumerate(parts) if j != keep)
    for owner, part in orphans:
        tree = shapely.STRtree(cells)
        near = tree.query(part, predicate="intersects")
        near = near[near != owner]
        if len(near) == 0:
            cells[owner] = shapely.union(cells[owner], part)
            continue
        shared = shapely.length(shapely.intersection(shapely.boundary(cells[near]), shapely.boundary(part)))
        target = near[np.argmax(shared)] if shared.max() > 0 else owner
        cells[target] = union_coverage([cells[target], part]) if target != owner \
            else shapely.union(cells[owner], part)
    return cells


# --------------------------------------------------------------------------- names


def _names(rng: np.random.Generator, n: int, suffix: str, taken: set[str]) -> list[str]:
    chars = np.array(list(_NAME_CHARS))
    names: list[str] = []
    while len(names) < n:
        a, b = rng.choice(chars, 2, replace=False)
        name = f"{a}{b}{suffix}"
        if name not in taken:
            taken.add(name)
            names.append(name)
    return names


# --------------------------------------------------------------------------- the city


def _order_west_east(points: np.ndarray, band: float) -> np.ndarray:
    """Order points north→south in bands of ``band`` metres, west→east inside a band."""
    row = np.floor(-points[:, 1] / band)
    return np.lexsort((points[:, 0], row))


def _street_detail(street_code, street, k, density, rng, community_rows, unit_rows, open_rows):
    n_cells = max(k * 8, round(k * UNITS_PER_COMMUNITY))
    seeds = _seeds(street, n_cells, density, rng)
    cells = _partition(street, seeds)
    labels = _community_labels(seeds, cells, k, rng)
    left, right, _ = shared_edges(cells)
    # community codes: west→east in north→south bands of 1 km
    centres = np.array([seeds[labels == c].mean(axis=0) for c in range(k)])
    order = _order_west_east(centres, 1000)
    names = _names(rng, k, "社区", set())
    kinds = rng.choice(["old", "ordinary", "compound"], size=k, p=[0.16, 0.68, 0.16])
    for rank, c in enumerate(order):
        members = np.flatnonzero(labels == c)
        code = f"{street_code}{rank + 1:03d}"
        community_rows.append((code, names[rank], street_code, kinds[c], union_coverage(cells[members])))
        is_open = _open_cells(members, left, right, rng)
        for cell_index, open_cell in zip(members, is_open):
            (open_rows if open_cell else unit_rows).append((street_code, code, cells[cell_index]))


def _community_labels(seeds, cells, k, rng) -> np.ndarray:
    """Cluster cells into ``k`` contiguous communities (k-means, then contiguity repair)."""
    import networkx as nx
    from scipy.cluster.vq import kmeans2
    if k == 1:
        return np.zeros(len(seeds), dtype=int)
    _, labels = kmeans2(seeds, k, minit="++", seed=rng, iter=20)
    # empty clusters: give each the farthest cell from its community's centre
    for c in range(k):
        if not (labels == c).any():
            sizes = np.bincount(labels, minlength=k)
            donor = np.argmax(sizes)
            labels[np.flatnonzero(labels == donor)[0]] = c
    left, right, _ = shared_edges(cells)
    for _ in range(5):
        moved = False
        for c in range(k):
            members = np.flatnonzero(labels == c)
            graph = nx.Graph()
            graph.add_nodes_from(members.tolist())
            same = (labels[left] == c) & (labels[right] == c)
            graph.add_edges_from(zip(left[same].tolist(), right[same].tolist()))
            parts = sorted(nx.connected_components(graph), key=len, reverse=True)
            for part in parts[1:]:  # stray pieces join the neighbour they touch most
                for cell in part:
                    neighbours = np.concatenate([right[left == cell], left[right == cell]])
                    others = labels[neighbours]
                    others = others[others != c]
                    if len(others):
                        labels[cell] = np.bincount(others).argmax()
                        moved = True
        if not moved:
            break
    return labels


def _open_cells(members, left, right, rng) -> np.ndarray:
    """Choose ~10% of a community's cells as open land, keeping its units connected."""
    import networkx as nx
    is_open = np.zeros(len(members), dtype=bool)
    if len(members) < 5:
        return is_open
    member_set = set(members.tolist())
    graph = nx.Graph()
    graph.add_nodes_from(members.tolist())
    graph.add_edges_from((a, b) for a, b in zip(left.tolist(), right.tolist())
                         if a in member_set and b in member_set)
    if not nx.is_connected(graph):
        return is_open
    wanted = rng.binomial(len(members), OPEN_LAND_SHARE)
    for _ in range(wanted):
        cut = set(nx.articulation_points(graph))
        candidates = [m for m in graph.nodes if m not in cut]
        if len(candidates) <= 2:
            break
        chosen = candidates[rng.integers(len(candidates))]
        graph.remove_node(chosen)
        is_open[np.flatnonzero(members == chosen)[0]] = True
    return is_open


def _households(cells: gpd.GeoDataFrame, communities: gpd.GeoDataFrame, rng) -> gpd.GeoDataFrame:
    """Give units households: old neighbourhoods, ordinary communities, gated compounds."""
    units = cells.copy()
    units["households"] = 0
    units["compound_id"] = pd.Series([None] * len(units), dtype=object)
    kind = communities.set_index("community_code")["kind"]
    left, right, _ = shared_edges(units.geometry.values)
    neighbours: dict[int, list[int]] = {}
    for a, b in zip(left.tolist(), right.tolist()):
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    households = np.zeros(len(units), dtype=np.int64)
    compound = np.full(len(units), None, dtype=object)
    compound_count = 0
    for code, members in units.groupby("community_code").indices.items():
        members = np.asarray(members)
        community_kind = kind[code]
        if community_kind == "old":
            total = int(rng.integers(250, 980))
        elif community_kind == "compound":
            total = int(rng.integers(700, 1800))
        else:
            total = int(rng.triangular(1050, 1800, 2950))
        weights = rng.dirichlet(np.full(len(members), 1.6))
        households[members] = rng.multinomial(total, weights)
        if community_kind == "compound" or (community_kind == "ordinary" and rng.random() < 0.08):
            size = (int(min(8000, rng.lognormal(np.log(3200), 0.35))) if community_kind == "compound"
                    else int(rng.integers(1200, 2200)))
            start = members[rng.integers(len(members))]
            block, frontier = [start], [start]
            member_set = set(members.tolist())
            target_units = int(rng.integers(3, 9))
            while frontier and len(block) < target_units:
                current = frontier.pop(0)
                for n in neighbours.get(current, []):
                    if n in member_set and n not in block and len(block) < target_units:
                        block.append(n)
                        frontier.append(n)
            compound_count += 1
            compound_id = f"C{compound_count:05d}"
            compound[block] = compound_id
            households[block] = rng.multinomial(size, rng.dirichlet(np.full(len(block), 3.0)))
    units["households"] = households
    units["compound_id"] = compound
    units["population"] = np.round(households * rng.uniform(2.3, 2.9, len(units))).astype(np.int64)
    # unit ids: west→east, north→south within the whole city
    centroids = shapely.get_coordinates(shapely.centroid(units.geometry.values))
    units = units.iloc[_order_west_east(centroids, 500)].reset_index(drop=True)
    units.insert(0, "unit_id", [f"U{i + 1:06d}" for i in range(len(units))])
    return units[["unit_id", "households", "population", "street_code", "community_code",
                  "compound_id", "geometry"]]


def _points_in(geometries: np.ndarray, rng) -> np.ndarray:
    """One uniform random point inside each geometry (vectorised rejection sampling)."""
    bounds = shapely.bounds(geometries)
    out = np.full((len(geometries), 2), np.nan)
    todo = np.arange(len(geometries))
    shapely.prepare(geometries)
    for _ in range(200):
        if len(todo) == 0:
            break
        x = rng.uniform(bounds[todo, 0], bounds[todo, 2])
        y = rng.uniform(bounds[todo, 1], bounds[todo, 3])
        inside = shapely.contains_xy(geometries[todo], x, y)
        out[todo[inside]] = np.column_stack([x[inside], y[inside]])
        todo = todo[~inside]
    if len(todo):  # pragma: no cover - thin slivers only
        out[todo] = shapely.get_coordinates(shapely.point_on_surface(geometries[todo]))
    return out


def _stations(units, communities, open_land, rng, scale) -> gpd.GeoDataFrame:
    """One party-and-public service centre per community, grid stations, sector centres."""
    crs = units.crs
    rows: list[tuple] = []
    biggest = units.sort_values("households", ascending=False).drop_duplicates("community_code")
    biggest = biggest.set_index("community_code").loc[communities["community_code"]]
    hh = units.groupby("community_code")["households"].sum().loc[communities["community_code"]].to_numpy()
    centre_xy = _points_in(biggest.geometry.values, rng)
    # Floor area around the norm (30 m² per 100 households); a third fall short of it.
    norm = SERVICE_AREA_M2_PER_100_HOUSEHOLDS / 100
    area = np.round(np.maximum(120, hh * norm * rng.uniform(0.55, 1.7, len(hh))), -1)
    for name, (x, y), a in zip(communities["name"], centre_xy, area):
        rows.append((f"S{len(rows) + 1:05d}", f"{name}党群服务中心", "community", "community_centre",
                     float(a), x, y))
    n_grid = round(285 * scale)
    weights = units["households"].to_numpy(float)
    chosen = rng.choice(len(units), size=n_grid, replace=False, p=weights / weights.sum())
    for (x, y), (_, unit) in zip(_points_in(units.geometry.values[chosen], rng), units.iloc[chosen].iterrows()):
        rows.append((f"S{len(rows) + 1:05d}", f"{unit['unit_id']}网格服务站", "grid", "grid_station",
                     float(np.round(rng.uniform(40, 220), -1)), x, y))
    sectors = (("office_tower", "楼宇党群服务中心", 83), ("industrial_park", "园区党群服务中心", 74),
               ("business_district", "商圈党群服务中心", 21))
    open_area = shapely.area(open_land.geometry.values)
    for kind, label, count in sectors:
        n = round(count * scale)
        p = open_area / open_area.sum() if kind == "industrial_park" else np.sqrt(open_area) / np.sqrt(open_area).sum()
        picked = rng.choice(len(open_land), size=n, replace=False, p=p)
        for (x, y) in _points_in(open_land.geometry.values[picked], rng):
            rows.append((f"S{len(rows) + 1:05d}", f"{_names(rng, 1, label, set())[0]}", "grid", kind,
                         float(np.round(rng.uniform(100, 800), -1)), x, y))
    frame = pd.DataFrame(rows, columns=["station_id", "name", "level", "kind", "area_m2", "x", "y"])
    return gpd.GeoDataFrame(frame.drop(columns=["x", "y"]),
                            geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=crs)


def _party_orgs(units, communities, stations, rng, scale) -> gpd.GeoDataFrame:
    """Community party committees, grid party branches and enterprise branches (~13,000)."""
    rows = []
    centres = stations[stations["kind"] == "community_centre"]
    for (name, geom) in zip(communities["name"], centres.geometry.values):
        rows.append((f"社区党委·{name}", "community_committee", int(rng.integers(40, 320)), geom.x, geom.y))
    n_branch = round(10_500 * scale)
    weights = units["households"].to_numpy(float)
    chosen = rng.choice(len(units), size=n_branch, replace=True, p=weights / weights.sum())
    xy = _points_in(units.geometry.values[chosen], rng)
    for i, (x, y) in enumerate(xy):
        rows.append((f"网格党支部·{units['unit_id'].iat[chosen[i]]}-{i + 1}", "grid_branch",
                     int(rng.integers(3, 45)), x, y))
    sector = stations[stations["kind"].isin(["office_tower", "industrial_park", "business_district"])]
    n_enterprise = round(1_650 * scale)
    picked = rng.choice(len(sector), size=n_enterprise, replace=True)
    base = shapely.get_coordinates(sector.geometry.values[picked])
    xy = base + rng.normal(0, 60, (n_enterprise, 2))
    # an offset that leaves the city (sector centres near its edge) stays at the centre
    inside_city, _ = shapely.STRtree(communities.geometry.values).query(
        shapely.points(xy), predicate="within")
    outside = np.ones(n_enterprise, dtype=bool)
    outside[inside_city] = False
    xy[outside] = base[outside]
    for i, (x, y) in enumerate(xy):
        rows.append((f"企业党支部·{i + 1:04d}", "enterprise", int(rng.integers(3, 120)), x, y))
    frame = pd.DataFrame(rows, columns=["name", "kind", "members", "x", "y"])
    frame.insert(0, "org_id", [f"P{i + 1:05d}" for i in range(len(frame))])
    return gpd.GeoDataFrame(frame.drop(columns=["x", "y"]),
                            geometry=gpd.points_from_xy(frame["x"], frame["y"]), crs=units.crs)


def _workorders(units, open_land, rng, scale, now: pd.Timestamp) -> gpd.GeoDataFrame:
    """A year of 12345 work orders up to ``now`` (the sample's REFERENCE_TIME), where people live."""
    n = round(100_000 * scale)
    weights = units["households"].to_numpy(float)
    on_open = rng.random(n) < 0.12  # roads, squares, markets
    geoms = np.empty(n, dtype=object)
    geoms[~on_open] = units.geometry.values[rng.choice(len(units), size=(~on_open).sum(), p=weights / weights.sum())]
    geoms[on_open] = open_land.geometry.values[rng.integers(len(open_land), size=on_open.sum())]
    xy = _points_in(geoms, rng)
    # More reports in winter (heating) and summer (noise, water): a seasonal rate.
    day = rng.uniform(0, 365, n * 2)
    seasonal = 1 + 0.35 * np.cos(2 * np.pi * (day - 300) / 365) ** 2
    day = day[rng.random(n * 2) < seasonal / seasonal.max()][:n]
    while len(day) < n:  # pragma: no cover - the 2x draw always suffices
        day = np.concatenate([day, rng.uniform(0, 365, n - len(day))])
    hour = np.clip(rng.normal(13, 3.5, n), 7, 22)
    received = (now - pd.to_timedelta(365, "D")).normalize() + pd.to_timedelta(
        np.floor(day), "D") + pd.to_timedelta(hour * 3600, "s").round("s")
    received = pd.DatetimeIndex(np.minimum(np.sort(received.to_numpy()),
                                           (now - pd.Timedelta("1h")).to_datetime64()))
    dispatched = received + pd.to_timedelta(rng.uniform(0.2, 4, n), "h").round("s")
    # official working days (holidays and make-up days), same time of day as the dispatch
    due = pd.DatetimeIndex(CALENDAR.add_working_days(dispatched, RESOLVE_WORKING_DAYS))
    resolve_days = rng.gamma(2.0, 1.6, n)
    late = rng.random(n) < 0.06
    resolve_days[late] += rng.uniform(5, 12, late.sum())
    resolved = dispatched + pd.to_timedelta(resolve_days * 86400, "s").round("s")
    closed = resolved + pd.to_timedelta(rng.uniform(0.5, 3, n), "D").round("s")
    status = np.where(closed <= now, "closed",
                      np.where(resolved <= now, "resolved",
                               np.where(dispatched <= now, "in_progress", "received")))
    age = (now - received).total_seconds().to_numpy() / 86400
    young = age < 2
    status = np.where(young & (rng.random(n) < 0.25), "dispatched", status)
    status = np.where(young & (rng.random(n) < 0.03), "returned", status)
    # a few long-stuck orders: still in progress long after their due date
    stuck = (status == "closed") & (rng.random(n) < 0.004)
    status = np.where(stuck, "in_progress", status)
    done = np.isin(status, FINISHED_STATES)
    frame = pd.DataFrame({
        "order_id": [f"{r:%Y%m%d}{i + 1:06d}" for i, r in enumerate(received)],
        "category": rng.choice(CATEGORIES, size=n, p=_category_weights()),
        "status": status,
        "received_at": received,
        "dispatched_at": dispatched.where(status != "received"),
        "due_at": due.where(status != "received"),
        "resolved_at": resolved.where(done),
        "closed_at": closed.where(status == "closed"),
        "satisfied": pd.array(np.where(status == "closed", rng.random(n) < 0.9, pd.NA), dtype="boolean"),
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs=units.crs)


def _category_weights() -> np.ndarray:
    w = np.array([16, 12, 14, 6, 7, 9, 10, 9, 6, 6, 5], dtype=float)
    return w / w.sum()
