"""jngis.assign / PolygonIndex: exactness, the boundary rule, CRS handling, errors."""

from __future__ import annotations

import importlib
import multiprocessing
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jngis.assign import PolygonIndex, assign
from jngis.crs import wgs84_to_bd09, wgs84_to_gcj02
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    ParameterError,
    SchemaError,
    UnassignedPointsWarning,
)

# The module itself (jngis.assign is also re-exported as a function), for its
# size thresholds.
ASSIGN_MODULE = importlib.import_module("jngis.assign")

CRS = "EPSG:4548"
X0, Y0 = 500_000.0, 4_060_000.0


def _brute_force(polygons: gpd.GeoDataFrame, key: str, x: np.ndarray, y: np.ndarray) -> list:
    """The documented rule, evaluated pair by pair with unprepared GEOS predicates."""
    geoms = list(polygons.geometry)
    keys = list(polygons[key])
    answers = []
    for px, py in zip(x, y):
        point = shapely.Point(px, py)
        interior = [i for i, g in enumerate(geoms) if g.contains(point)]
        covering = [i for i, g in enumerate(geoms) if g.intersects(point)]
        pool = interior or covering
        if not pool:
            answers.append(None)
            continue
        answers.append(keys[min(pool, key=lambda i: (keys[i], i))])
    return answers


def _voronoi_cells(seed: int, n: int, size: float = 1000.0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    sites = shapely.multipoints(rng.uniform(0, size, (n, 2)) + [X0, Y0])
    frame = shapely.box(X0, Y0, X0 + size, Y0 + size)
    cells = shapely.get_parts(shapely.voronoi_polygons(sites, extend_to=frame))
    cells = shapely.intersection(cells, frame)
    # Snap to a 1 cm grid so neighbours share exactly the same vertices.
    cells = shapely.set_precision(cells, 0.01)
    codes = [f"370102001001{i:03d}" for i in rng.permutation(len(cells)) + 1]
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=cells, crs=CRS)


def _boundary_points(polygons: gpd.GeoDataFrame, rng: np.random.Generator, n: int):
    """Vertices and points on edges: the hard cases of point-in-polygon."""
    rings = shapely.get_exterior_ring(np.asarray(polygons.geometry.values))
    picks = rng.integers(0, len(rings), n)
    fractions = rng.uniform(0, 1, n)
    fractions[: n // 3] = 0.0  # vertices
    on_edge = shapely.line_interpolate_point(rings[picks], fractions, normalized=True)
    return shapely.get_x(on_edge), shapely.get_y(on_edge)


def _points(x, y, crs=CRS, index=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=crs, index=index)


def _quiet_assign(*args, **kwargs) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        return assign(*args, **kwargs)


# ---------------------------------------------------------------------------
# exactness
# ---------------------------------------------------------------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n_cells=st.integers(2, 25),
    cell_size=st.sampled_from([None, 3.0, 17.0, 120.0]),
    overlap=st.booleans(),
)
def test_assign_matches_brute_force(seed, n_cells, cell_size, overlap):
    polygons = _voronoi_cells(seed, n_cells)
    rng = np.random.default_rng(seed)
    if overlap:  # overlapping polygons: interior beats boundary, then lowest key
        extra = shapely.buffer(shapely.points(rng.uniform(0, 1000, (3, 2)) + [X0, Y0]), 150)
        polygons = pd.concat([polygons, gpd.GeoDataFrame(
            {"grid_code": ["370102001001900", "370102001001000", "370102001001500"]},
            geometry=extra, crs=CRS)], ignore_index=True)
    bx, by = _boundary_points(polygons, rng, 60)
    x = np.r_[rng.uniform(-100, 1100, 200) + X0, bx]
    y = np.r_[rng.uniform(-100, 1100, 200) + Y0, by]
    index = PolygonIndex(polygons, cell_size=cell_size)
    # the grid's own cell centres and cell corners: where its walks start and turn
    g = index._grid
    ci = rng.integers(0, g.nx, 40)
    cj = rng.integers(0, g.ny, 40)
    x = np.r_[x, g.x0 + (ci + 0.5) * g.cell, g.x0 + ci * g.cell]
    y = np.r_[y, g.y0 + (cj + 0.5) * g.cell, g.y0 + cj * g.cell]
    got = index.locate_xy(x, y).tolist()
    assert got == _brute_force(polygons, "grid_code", x, y)
    # the STRtree-only path (used by one-off assign() calls with few points) agrees
    plain = PolygonIndex(polygons, raster=False)
    assert plain.locate_xy(x, y).tolist() == got
    one_off = _quiet_assign(_points(x, y), polygons)
    assert [None if pd.isna(v) else v for v in one_off] == got
    # enough points for the one-off call to build its grid
    edges = int(shapely.get_num_coordinates(np.asarray(polygons.geometry.values)).sum())
    repeat = -(-int(ASSIGN_MODULE._GRID_POINTS_PER_EDGE * edges) // x.size) + 1
    many = _quiet_assign(_points(np.tile(x, repeat), np.tile(y, repeat)), polygons)
    assert [None if pd.isna(v) else v for v in many] == got * repeat


@pytest.mark.parametrize("seed", [3, 11, 2026])
def test_walks_through_vertices_match_brute_force(seed):
    """Points whose walk from their cell's centre passes through (or next to) a vertex.

    The grid walks each point from its cell's centre: a walk through a
    polygon vertex, or one that grazes it by rounding, must still get the
    exact answer (the orientation filter sends such points to GEOS).
    """
    polygons = _voronoi_cells(seed, 30)
    index = PolygonIndex(polygons, cell_size=40.0)
    g = index._grid
    vx, vy = shapely.get_coordinates(np.asarray(polygons.geometry.values)).T
    ci = np.floor((vx - g.x0) / g.cell)
    cj = np.floor((vy - g.y0) / g.cell)
    rx, ry = g.x0 + (ci + 0.5) * g.cell, g.y0 + (cj + 0.5) * g.cell
    steps = np.array([0.0, 1e-12, 1e-9, 1e-6, 1e-3, 0.05, -1e-9, -0.05, -0.5])
    x = (vx[:, None] + steps[None, :] * (vx - rx)[:, None]).ravel()
    y = (vy[:, None] + steps[None, :] * (vy - ry)[:, None]).ravel()
    got = index.locate_xy(x, y).tolist()
    assert got == _brute_force(polygons, "grid_code", x, y)
    assert any(v is not None for v in got)


def test_large_batches_match_small_ones():
    """Batches large enough to be sorted by block and located in threads give the same answers.

    The hard points (vertices, edges, cell centres and corners, overlaps,
    outside the grid, NaN) are mixed into 150,000 points: the sorted,
    threaded batch must equal small unsorted batches and the STRtree path.
    """
    rng = np.random.default_rng(17)
    polygons = _voronoi_cells(17, 300)
    extra = shapely.buffer(shapely.points(rng.uniform(0, 1000, (4, 2)) + [X0, Y0]), 120)
    polygons = pd.concat([polygons, gpd.GeoDataFrame(
        {"grid_code": [f"370102001001{900 + i}" for i in range(4)]}, geometry=extra, crs=CRS)],
        ignore_index=True)
    index = PolygonIndex(polygons)
    g = index._grid
    n = 150_000
    x = rng.uniform(-100, 1100, n) + X0
    y = rng.uniform(-100, 1100, n) + Y0
    bx, by = _boundary_points(polygons, rng, 20_000)
    ci, cj = rng.integers(0, g.nx, 5000), rng.integers(0, g.ny, 5000)
    hard_x = np.r_[bx, g.x0 + (ci + 0.5) * g.cell, g.x0 + ci * g.cell, np.nan, X0, np.inf]
    hard_y = np.r_[by, g.y0 + (cj + 0.5) * g.cell, g.y0 + cj * g.cell, Y0, np.nan, Y0]
    spots = rng.choice(n, hard_x.size, replace=False)
    x[spots], y[spots] = hard_x, hard_y
    whole = index.locate_positions(x, y)
    parts = np.concatenate([index.locate_positions(x[k:k + 10_000], y[k:k + 10_000])
                            for k in range(0, n, 10_000)])
    np.testing.assert_array_equal(whole, parts)
    np.testing.assert_array_equal(whole, PolygonIndex(polygons, raster=False).locate_positions(x, y))
    assert (whole >= 0).sum() > 0.7 * n and (whole == -1).any()
    # the one-off call on as many points: the same, missing and empty points NA
    geoms = shapely.points(x, y)
    geoms[:3] = [None, shapely.Point(), shapely.Point(np.nan, Y0)]
    one_off = _quiet_assign(gpd.GeoDataFrame(geometry=geoms, crs=CRS), polygons)
    expected = np.where(whole >= 0, polygons["grid_code"].to_numpy()[whole], None)
    expected[:3] = None
    assert [None if pd.isna(v) else v for v in one_off] == expected.tolist()


def test_every_assigned_point_lies_in_its_polygon(slice_city):
    units = slice_city.units
    rng = np.random.default_rng(1)
    minx, miny, maxx, maxy = units.total_bounds
    x, y = rng.uniform(minx, maxx, 5000), rng.uniform(miny, maxy, 5000)
    codes = _quiet_assign(_points(x, y), units, key="unit_id")
    geoms = units.set_index("unit_id").geometry
    inside = codes.notna().to_numpy()
    assert shapely.intersects_xy(np.asarray(geoms.loc[codes[inside]].values),
                                 x[inside], y[inside]).all()
    # and the unassigned really are in no unit
    assert not shapely.intersects_xy(shapely.union_all(units.geometry.values),
                                     x[~inside], y[~inside]).any()


def test_identical_to_sjoin_where_sjoin_finds_one(slice_city):
    polygons = slice_city.units
    rng = np.random.default_rng(2)
    minx, miny, maxx, maxy = polygons.total_bounds
    points = _points(rng.uniform(minx, maxx, 20_000), rng.uniform(miny, maxy, 20_000))
    ours = _quiet_assign(points, polygons, key="unit_id")
    joined = gpd.sjoin(points, polygons[["unit_id", "geometry"]], predicate="within")
    single = joined[~joined.index.duplicated(keep=False)]
    assert len(single) > 5_000
    assert (ours.loc[single.index] == single["unit_id"]).all()
    # sjoin drops points in no polygon; we keep them as NA
    outside = ours.index.difference(joined.index)
    assert ours.loc[outside].isna().all()


# ---------------------------------------------------------------------------
# the boundary rule
# ---------------------------------------------------------------------------


@pytest.fixture
def four_squares() -> gpd.GeoDataFrame:
    codes = ["370102001001004", "370102001001002", "370102001001003", "370102001001001"]
    boxes = [shapely.box(X0 + 100 * (i % 2), Y0 + 100 * (i // 2),
                         X0 + 100 * (i % 2) + 100, Y0 + 100 * (i // 2) + 100) for i in range(4)]
    # layout: 004 | 002 (bottom), 003 | 001 (top)
    return gpd.GeoDataFrame({"grid_code": codes}, geometry=boxes, crs=CRS)


@pytest.mark.parametrize(
    "dx, dy, expected",
    [
        (100, 50, "370102001001002"),   # edge 004|002 -> lower key 002
        (50, 100, "370102001001003"),   # edge 004/003 -> 003
        (150, 100, "370102001001001"),  # edge 002/001 -> 001
        (100, 100, "370102001001001"),  # corner of all four -> 001
        (0, 50, "370102001001004"),     # outer edge: its only polygon
        (200, 200, "370102001001001"),  # outer corner
        (50, 50, "370102001001004"),    # interior
        (200.000001, 50, None),         # just outside
    ],
)
def test_boundary_rule(four_squares, dx, dy, expected):
    for order in ([0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]):  # row order never matters
        polygons = four_squares.iloc[order]
        for cell_size in (None, 7.0, 100.0):  # 100: the shared edges lie on cell edges
            got = PolygonIndex(polygons, cell_size=cell_size).locate_xy(X0 + dx, Y0 + dy)
            assert got.item() == expected


def test_duplicate_keys_and_integer_keys(four_squares):
    polygons = four_squares.assign(community=[7, 7, 3, 3])
    codes = assign(_points([X0 + 50, X0 + 150, X0 + 100], [Y0 + 150, Y0 + 50, Y0 + 100]),
                   polygons, key="community")
    assert str(codes.dtype) == "Int64"
    assert codes.tolist() == [3, 7, 3]


# ---------------------------------------------------------------------------
# points outside, missing
# ---------------------------------------------------------------------------


def test_outside_points_are_na_and_counted(four_squares):
    points = _points([X0 + 50, X0 + 500, X0 - 1, np.nan], [Y0 + 50, Y0, Y0, Y0],
                     index=pd.Index([10, 20, 30, 40], name="order"))
    points.loc[50] = None  # a work order without a location
    with pytest.warns(UnassignedPointsWarning, match=r"4 of 5 point\(s\) lie in no polygon"):
        codes = assign(points, four_squares)
    assert codes.index.equals(points.index)
    assert codes.name == "grid_code"
    assert codes.tolist()[0] == "370102001001004"
    assert codes.iloc[1:].isna().all()


def test_no_warning_when_all_inside(four_squares):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assign(_points([X0 + 10], [Y0 + 10]), four_squares)


def test_input_not_changed(four_squares):
    points = _points([X0 + 10, X0 + 150], [Y0 + 10, Y0 + 150])
    before_points, before_polygons = points.copy(), four_squares.copy()
    assign(points, four_squares)
    pd.testing.assert_frame_equal(points, before_points)
    pd.testing.assert_frame_equal(four_squares, before_polygons)


# ---------------------------------------------------------------------------
# CRS
# ---------------------------------------------------------------------------


def test_points_in_cgcs2000_against_gauss_kruger(slice_city):
    units = slice_city.units  # EPSG:4548
    rng = np.random.default_rng(3)
    minx, miny, maxx, maxy = units.total_bounds
    metric = _points(rng.uniform(minx, maxx, 2000), rng.uniform(miny, maxy, 2000))
    lonlat = metric.to_crs("EPSG:4490")
    assert lonlat.crs.to_epsg() == 4490
    expected = _quiet_assign(metric, units, key="unit_id")
    got = _quiet_assign(lonlat, units, key="unit_id")
    # Round trip through degrees moves points by nanometres: compare away from edges.
    away = shapely.distance(shapely.boundary(shapely.union_all(units.geometry.values)),
                            metric.geometry.values) > 1e-3
    interior_edges = np.asarray(
        [units.geometry.boundary.distance(p).min() > 1e-3 for p in metric.geometry]) & away
    assert (got[interior_edges].fillna("NA") == expected[interior_edges].fillna("NA")).all()
    index = PolygonIndex(units, key="unit_id")
    located = index.locate_xy(shapely.get_x(lonlat.geometry.values),
                              shapely.get_y(lonlat.geometry.values), crs="EPSG:4490")
    assert [v for v, keep in zip(located, interior_edges) if keep] == \
        [v if isinstance(v, str) else None for v in expected[interior_edges]]


@pytest.mark.parametrize("coords, shift", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_consumer_map_coordinates_are_converted(slice_city, coords, shift):
    communities = slice_city.communities
    rng = np.random.default_rng(4)
    inner = shapely.get_coordinates(shapely.point_on_surface(communities.geometry.values))
    metric = _points(inner[:, 0] + rng.normal(0, 30, len(inner)),
                     inner[:, 1] + rng.normal(0, 30, len(inner)))
    wgs = metric.to_crs("EPSG:4326")
    lon, lat = shift(shapely.get_x(wgs.geometry.values), shapely.get_y(wgs.geometry.values))
    shifted = _points(lon, lat, crs=None)
    expected = _quiet_assign(metric, communities, key="community_code")
    assert expected.notna().all()
    got = _quiet_assign(shifted, communities, key="community_code", coords=coords)
    assert got.tolist() == expected.tolist()
    # read as plain WGS84 the same coordinates land 0.5-1.4 km away
    raw = _quiet_assign(shifted.set_crs("EPSG:4326"), communities, key="community_code")
    assert (raw.fillna("NA") != expected).any()


def test_wgs84_flag_accepts_unlabelled_lonlat(four_squares):
    lonlat = _points([X0 + 50], [Y0 + 50]).to_crs("EPSG:4326")
    unlabelled = lonlat.set_crs(None, allow_override=True)
    assert assign(unlabelled, four_squares, coords="wgs84").item() == "370102001001004"


# ---------------------------------------------------------------------------
# PolygonIndex as a service
# ---------------------------------------------------------------------------


def test_single_point_lookup_well_under_a_millisecond(slice_city):
    index = PolygonIndex(slice_city.units, key="unit_id")
    rng = np.random.default_rng(5)
    minx, miny, maxx, maxy = slice_city.units.total_bounds
    xs, ys = rng.uniform(minx, maxx, 300), rng.uniform(miny, maxy, 300)
    timings = []
    for x, y in zip(xs, ys):
        start = time.perf_counter()
        index.locate_xy(x, y)
        timings.append(time.perf_counter() - start)
    assert np.median(timings) < 0.0005


def test_index_is_thread_safe(slice_city):
    index = PolygonIndex(slice_city.units, key="unit_id")
    rng = np.random.default_rng(6)
    minx, miny, maxx, maxy = slice_city.units.total_bounds
    batches = [(rng.uniform(minx, maxx, 3000), rng.uniform(miny, maxy, 3000)) for _ in range(8)]
    serial = [index.locate_xy(x, y).tolist() for x, y in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda b: index.locate_xy(*b).tolist(), batches))
    assert parallel == serial


def test_locate_xy_keeps_shape(four_squares):
    index = PolygonIndex(four_squares)
    got = index.locate_xy(np.full((2, 3), X0 + 50), np.full((2, 3), Y0 + 50))
    assert got.shape == (2, 3) and got.dtype == object
    assert index.locate_xy(X0 - 5, Y0).item() is None
    assert "4 polygons" in repr(index)


def test_multipolygons(four_squares):
    merged = gpd.GeoDataFrame(
        {"community_code": ["370102001001", "370102001002"]},
        geometry=[shapely.union_all(four_squares.geometry.iloc[[0, 3]].values),
                  shapely.union_all(four_squares.geometry.iloc[[1, 2]].values)], crs=CRS)
    assert merged.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]
    got = assign(_points([X0 + 50, X0 + 150, X0 + 150, X0 + 100],
                         [Y0 + 50, Y0 + 150, Y0 + 50, Y0 + 100]), merged, key="community_code")
    assert got.tolist() == ["370102001001", "370102001001", "370102001002", "370102001001"]


def test_polygon_with_hole():
    outer = shapely.Polygon([(X0, Y0), (X0 + 300, Y0), (X0 + 300, Y0 + 300), (X0, Y0 + 300)],
                            holes=[[(X0 + 100, Y0 + 100), (X0 + 200, Y0 + 100),
                                    (X0 + 200, Y0 + 200), (X0 + 100, Y0 + 200)]])
    polygons = gpd.GeoDataFrame({"grid_code": ["370102001001002", "370102001001001"]},
                                geometry=[outer, shapely.box(X0 + 100, Y0 + 100, X0 + 200,
                                                             Y0 + 200)], crs=CRS)
    index = PolygonIndex(polygons, cell_size=9.0)
    got = index.locate_xy([X0 + 150, X0 + 50, X0 + 100], [Y0 + 150, Y0 + 50, Y0 + 150])
    assert got.tolist() == ["370102001001001", "370102001001002", "370102001001001"]


@pytest.mark.slow
def test_sample_city_units_against_sjoin(sample_city):
    units = sample_city.units
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = units.total_bounds
    points = _points(rng.uniform(minx, maxx, 100_000), rng.uniform(miny, maxy, 100_000))
    ours = _quiet_assign(points, units, key="unit_id")
    joined = gpd.sjoin(points, units[["unit_id", "geometry"]], predicate="within")
    single = joined[~joined.index.duplicated(keep=False)]
    assert (ours.loc[single.index] == single["unit_id"]).all()


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_errors(four_squares):
    points = _points([X0 + 10], [Y0 + 10])
    with pytest.raises(InputTypeError, match="points has type DataFrame"):
        assign(pd.DataFrame({"x": [1]}), four_squares)
    with pytest.raises(InputTypeError, match="polygons has type list"):
        assign(points, [shapely.box(0, 0, 1, 1)])
    with pytest.raises(SchemaError, match="key='community_code' is not a column of polygons"):
        assign(points, four_squares, key="community_code")
    with pytest.raises(InputTypeError, match="key=3 has type int"):
        assign(points, four_squares, key=3)
    with pytest.raises(SchemaError, match=r"polygons\['grid_code'\] has 1 missing"):
        assign(points, four_squares.assign(grid_code=[None, "a", "b", "c"]))
    with pytest.raises(ParameterError, match="polygons has 0 rows"):
        assign(points, four_squares.iloc[:0])
    with pytest.raises(CRSError, match="polygons.crs is None"):
        assign(points, four_squares.set_crs(None, allow_override=True))
    with pytest.raises(CRSError, match="points.crs is None"):
        assign(points.set_crs(None, allow_override=True), four_squares)
    with pytest.raises(ParameterError, match="coords='wgs-84'; expected one of"):
        assign(points, four_squares, coords="wgs-84")
    with pytest.raises(CRSError, match="coords='gcj02' says the points are longitude/latitude"):
        assign(points, four_squares, coords="gcj02")
    with pytest.raises(GeometryError, match="not Points"):
        assign(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs=CRS), four_squares)
    with pytest.raises(GeometryError, match="not Polygon/MultiPolygon"):
        assign(points, gpd.GeoDataFrame({"grid_code": ["a"]}, geometry=[shapely.Point(0, 0)],
                                        crs=CRS))
    with pytest.raises(GeometryError, match="not Polygon/MultiPolygon"):
        assign(points, four_squares.assign(geometry=[None] + list(four_squares.geometry[1:])))
    with pytest.raises(GeometryError, match="empty geometry"):
        assign(points, four_squares.assign(geometry=[shapely.Polygon()] +
                                           list(four_squares.geometry[1:])))
    bowtie = shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])
    with pytest.raises(GeometryError, match="invalid geometry.*Self-intersection"):
        assign(points, gpd.GeoDataFrame({"grid_code": ["a"]}, geometry=[bowtie], crs=CRS))
    with pytest.raises(SchemaError, match="cannot be ordered"):
        assign(points, four_squares.assign(grid_code=["a", 1, "b", 2]))
    # the points' errors come first, though their coordinates are read while the index builds
    line = gpd.GeoDataFrame(geometry=[shapely.LineString([(0, 0), (1, 1)])] * 200_000, crs=CRS)
    with pytest.raises(GeometryError, match="200000 geometry.*not Points"):
        assign(line, gpd.GeoDataFrame({"grid_code": ["a"]}, geometry=[bowtie], crs=CRS))
    # and an invalid polygon before a grid too large to build
    with pytest.raises(GeometryError, match="invalid geometry"):
        PolygonIndex(gpd.GeoDataFrame({"grid_code": ["a"]}, geometry=[bowtie], crs=CRS),
                     cell_size=1e-6)


def test_index_errors(four_squares):
    with pytest.raises(ParameterError, match="cell_size=-1.0; expected a finite number > 0"):
        PolygonIndex(four_squares, cell_size=-1.0)
    with pytest.raises(InputTypeError, match="cell_size='5' has type str"):
        PolygonIndex(four_squares, cell_size="5")
    with pytest.raises(ParameterError, match=r"cell_size=1e-06 cuts .* into [\d,]+ cells; "
                       r"expected at most 50,000,000"):
        PolygonIndex(four_squares, cell_size=1e-6)
    with pytest.raises(InputTypeError, match="raster=1 has type int"):
        PolygonIndex(four_squares, raster=1)
    index = PolygonIndex(four_squares)
    with pytest.raises(ParameterError, match=r"x has shape \(2,\) and y has shape \(3,\)"):
        index.locate_xy([1, 2], [1, 2, 3])
    with pytest.raises(InputTypeError, match="x='a' has type str"):
        index.locate_xy("a", 1.0)
    with pytest.raises(CRSError, match="crs='EPSG:99999' is not a CRS pyproj understands"):
        index.locate_xy(1.0, 1.0, crs="EPSG:99999")


def _locate_in_child(queue):
    from jngis import _threads as parallel

    done: list[slice] = []
    parallel.run_sliced(done.append, 10, 2)
    queue.put(len(done))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="the platform does not fork")
def test_a_forked_child_gets_its_own_pool():
    # the parent's pool threads do not exist in a forked child: work it queued there would never run
    from jngis import _threads as parallel

    parallel.run_sliced(lambda _: None, 10, 2)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_locate_in_child, args=(queue,))
    child.start()
    child.join(60)
    alive = child.is_alive()
    child.kill()
    assert not alive, "the forked child waited for the parent's pool threads"
    assert queue.get(timeout=5) == 2
