"""Grids and a plan's communities are exact coverages of their parent that survive reprojection to degrees.

make_grids' grids, per community, and plan_communities' communities, per 街道: a valid coverage (neighbours
share every edge vertex for vertex, :func:`shapely.coverage_is_valid`), whose union is the parent with
every vertex of the parent's boundary, each polygon valid in the metric CRS and in WGS84 / CGCS2000.
adopt refuses parts that tile only by area (an unmatched edge, a spike that breaks in degrees).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import jngis
from jngis import versions as jv
from jngis.errors import CoverageMismatchError, GeometryError, ParameterError
from jngis.sample import build_city_in
from jngis.topology import CLEAN_SNAPPING, clean_coverage

NINGBO = Path(__file__).resolve().parent / "data" / "ningbo_districts.geojson"


def _assert_exact(parts: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, key: str, *, vertices: bool = True) -> None:
    """Per parent: a valid coverage whose union is the parent (``vertices``: with its every vertex); valid in degrees.

    A regridding keeps the grids of a community whose units did not change; when plan_communities gave that
    community a new neighbour's corner on its edge, the kept grids lack that vertex (they still run through it).
    Without ``vertices``, a part of the parent thinner than the cleaning's snapping distance (a sliver of float
    noise plan_communities can leave, 4e-9 m² on the second city) is left out: the grids' cleaning drops it.
    """
    outlines = dict(zip(parents[key], parents.geometry.values))
    assert set(parts[key]) == set(outlines)
    geoms = np.asarray(parts.geometry.values, dtype=object)
    failing = []
    for code, rows in parts.groupby(key).indices.items():
        mine, whole = geoms[rows], outlines[code]
        if not vertices:
            pieces = shapely.get_parts(whole)
            whole = shapely.union_all(pieces[2 * shapely.area(pieces) > CLEAN_SNAPPING * shapely.length(pieces)])
        if not shapely.coverage_is_valid(mine):
            failing.append(code)
            continue
        union = shapely.coverage_union_all(mine)
        assert union.is_valid, code
        # the parent itself: every vertex of its boundary is a part's, their outline within float noise of its
        ours = {tuple(c) for c in shapely.get_coordinates(mine).tolist()}
        assert not vertices or all(tuple(c) in ours for c in shapely.get_coordinates(whole).tolist()), code
        assert shapely.hausdorff_distance(union.boundary, whole.boundary) < 1e-6, code
        assert shapely.area(shapely.symmetric_difference(union, whole)) < 1e-6 + 1e-12 * whole.area, code
        # no hole the parent lacks (a valid coverage may leave a gap of no area between neighbours)
        assert sum(len(p.interiors) for p in shapely.get_parts(union)) == \
            sum(len(p.interiors) for p in shapely.get_parts(whole)), code
    assert not failing, f"{len(failing)} of {len(outlines)} {key} are no valid coverage: {failing[:5]}"
    assert shapely.is_valid(geoms).all()
    for crs in ("EPSG:4326", "EPSG:4490"):
        degrees = parts.to_crs(crs)
        broken = ~shapely.is_valid(degrees.geometry.values)
        assert not broken.any(), (crs, parts.loc[broken].iloc[:, 0].tolist()[:5])
        assert shapely.union_all(degrees.geometry.values).is_valid


@pytest.fixture(scope="module")
def ningbo():
    """A second city (Ningbo's outlines) with its grids."""
    city = build_city_in(gpd.read_file(NINGBO), seed=3, streets=6, communities=48)
    return dataclasses.replace(city, grids=jngis.make_grids(city.communities, city.units))


def test_the_committed_slice_grids_are_exact_and_valid_in_degrees(slice_city):
    _assert_exact(slice_city.grids, slice_city.communities, "community_code")


def test_grids_of_the_slice_drawn_afresh_are_exact(slice_city):
    grids = jngis.make_grids(slice_city.communities, slice_city.units)
    _assert_exact(grids, slice_city.communities, "community_code")
    # the committed slice holds exactly what make_grids draws for it
    dedicated = jngis.make_grids(slice_city.communities, slice_city.units, seed=jngis.sample.SAMPLE_SEED,
                                 dedicated_min_area=jngis.sample.SAMPLE_DEDICATED_MIN_AREA)
    assert shapely.equals_identical(np.asarray(dedicated.geometry.values, dtype=object),
                                    np.asarray(slice_city.grids.geometry.values, dtype=object)).all()


def test_grids_of_a_second_city_are_exact(ningbo):
    _assert_exact(ningbo.grids, ningbo.communities, "community_code")
    _assert_exact(ningbo.communities, ningbo.streets, "street_code")


def _redraw(city, low: int, high: int):
    plan = jngis.rebalance(city.units, min_households=low, max_households=high, progress=False, workers=1)
    before = jv.Boundaries.of(city)
    proposed = jv.proposal(plan, before, grids=city.grids)
    grids = jngis.make_grids(proposed.communities, proposed.units, previous=city.grids)
    return plan, before, proposed, grids


@pytest.mark.parametrize("bounds", [(1000, 3000), (1500, 4000)])
def test_a_redraw_of_the_slice_is_exact_and_adopts(slice_city, bounds):
    plan, before, proposed, grids = _redraw(slice_city, *bounds)
    _assert_exact(proposed.communities, slice_city.streets, "street_code")
    _assert_exact(grids, proposed.communities, "community_code", vertices=False)
    jv.check_adoption(before, dataclasses.replace(proposed, grids=grids))


def test_a_redraw_of_a_second_city_is_exact_and_adopts(ningbo):
    plan, before, proposed, grids = _redraw(ningbo, 1500, 5000)
    _assert_exact(proposed.communities, ningbo.streets, "street_code")
    _assert_exact(grids, proposed.communities, "community_code", vertices=False)
    # kept communities stay as they were unless a new neighbour's corner lies on their edge
    untouched = jv._untouched(ningbo.units, plan.assignment)
    old = ningbo.communities.set_index("community_code").geometry
    new = proposed.communities.set_index("community_code").geometry
    kept = sorted(untouched & set(new.index))
    assert kept
    assert all(shapely.area(shapely.symmetric_difference(old[c], new[c])) < 1e-6 for c in kept)
    jv.check_adoption(before, dataclasses.replace(proposed, grids=grids))


def _segmentized(grids: gpd.GeoDataFrame, position: int) -> gpd.GeoDataFrame:
    """``grids`` with vertices added along every edge of one grid: the same area, its neighbours lack them."""
    out = grids.copy()
    geometry = out.geometry.values[position]
    out.loc[out.index[position], out.geometry.name] = shapely.segmentize(geometry, 5.0)
    return out


def test_adopt_refuses_grids_with_unmatched_edges(slice_city):
    _, before, proposed, grids = _redraw(slice_city, 1000, 3000)
    community = grids["community_code"].iloc[0]
    broken = _segmentized(grids, 0)
    # the area check alone passes them: no gap, no overlap
    assert jngis.topology.check_tiling(broken, proposed.communities, "community_code")["ok"].all()
    with pytest.raises(CoverageMismatchError, match=rf"the grids of community_code='{community}' are no exact "
                       rf"coverage of their community: grid_code='{grids['grid_code'].iloc[0]}' has edges"):
        jv.check_adoption(before, dataclasses.replace(proposed, grids=broken))


def test_adopt_refuses_communities_with_unmatched_edges(slice_city):
    _, before, proposed, grids = _redraw(slice_city, 1000, 3000)
    broken = dataclasses.replace(proposed, communities=_segmentized(proposed.communities, 0))
    with pytest.raises(CoverageMismatchError, match="the communities of street_code='370102003' are no exact "
                       "coverage of their 街道"):
        jv.check_adoption(before, dataclasses.replace(broken, grids=grids))


def _notched(polygon: shapely.Polygon, corner: tuple[float, float], width: float) -> shapely.Polygon:
    """``polygon`` (counter-clockwise) with a notch of ``width`` and 50 m deep at ``corner``, along the next edge.

    Two vertices: one ``width`` from ``corner`` on the edge before it, one 50 m along the edge after it and
    ``width / 2`` inside. Valid in metres; at 1e-4 m, a self-intersection once reprojected to degrees (the
    straight edge bends by more than that), as the spikes make_grids used to leave.
    """
    ring = [np.array(c) for c in np.asarray(shapely.orient_polygons(polygon).exterior.coords)[:-1]]
    at = next(i for i, c in enumerate(ring) if tuple(c) == corner)
    here, before, after = ring[at], ring[at - 1], ring[(at + 1) % len(ring)]
    back = (before - here) / np.linalg.norm(before - here)
    ahead = (after - here) / np.linalg.norm(after - here)
    notch = [here + width * back, here + 50 * ahead + width / 2 * back]
    return shapely.Polygon(ring[:at] + notch + ring[at:])


def _square_boundaries(square_city) -> jv.Boundaries:
    streets = gpd.GeoDataFrame({"street_code": ["370102001"], "name": ["街道"]},
                               geometry=[shapely.box(500000, 4060000, 500300, 4060200)], crs=square_city.crs)
    communities = gpd.GeoDataFrame({"community_code": ["370102001001", "370102001002"], "name": ["一", "二"],
                                    "street_code": ["370102001"] * 2},
                                   geometry=[shapely.box(500000, 4060000, 500300, 4060100),
                                             shapely.box(500000, 4060100, 500300, 4060200)], crs=square_city.crs)
    return jv.Boundaries(streets, communities, square_city, jngis.make_grids(communities, square_city))


def test_adopt_refuses_a_grid_that_breaks_in_degrees(square_city):
    before = _square_boundaries(square_city)
    grids = before.grids
    corner = (500300.0, 4060100.0)  # the north-east corner of the southern community
    position = int(np.flatnonzero(grids.contains(shapely.Point(500299, 4060099)))[0])
    notched = _notched(grids.geometry.values[position], corner, 1e-4)
    assert notched.is_valid and abs(notched.area - grids.geometry.values[position].area) < 0.01
    assert not gpd.GeoSeries([notched], crs=grids.crs).to_crs("EPSG:4490").is_valid.any()
    after = grids.copy()
    after.loc[after.index[position], "geometry"] = notched
    # by area and as a coverage of their community the grids pass: only degrees show the defect
    assert jngis.topology.check_tiling(after, before.communities, "community_code")["ok"].all()
    assert shapely.coverage_is_valid(after.geometry.values[after["community_code"] == "370102001001"])
    with pytest.raises(CoverageMismatchError, match=rf"grid_code='{grids['grid_code'].iloc[position]}' is "
                       r"valid in EPSG:4548 but not in EPSG:4490 \(Self-intersection"):
        jv.check_adoption(before, dataclasses.replace(before, grids=after))


def test_clean_coverage_matches_near_miss_edges_and_removes_spikes():
    whole = shapely.box(0, 0, 2, 1)
    left = shapely.Polygon([(0, 0), (1, 0), (1 + 1e-10, 0.5), (1, 1), (0, 1)])
    right = shapely.box(1, 0, 2, 1)
    assert not shapely.coverage_is_valid([left, right])
    cleaned = clean_coverage([left, right], whole)
    assert shapely.coverage_is_valid(cleaned)
    assert shapely.coverage_union_all(cleaned).equals(whole)
    assert [round(p.area, 9) for p in cleaned] == [1.0, 1.0]
    square = shapely.box(500000, 4060000, 500100, 4060100)
    notched = _notched(square, (500100.0, 4060100.0), 1e-8)  # a notch of float noise
    assert notched.is_valid and shapely.get_num_coordinates(notched) == 7
    cleaned = clean_coverage([notched], square)
    # the notch closed: the square up to float noise (the snapped vertex left on its edge), valid in degrees
    assert shapely.get_num_coordinates(cleaned[0]) == 6
    assert shapely.area(shapely.symmetric_difference(cleaned[0], square)) < 1e-6
    assert shapely.hausdorff_distance(cleaned[0], square) < 1e-6
    assert gpd.GeoSeries(cleaned, crs="EPSG:4548").to_crs("EPSG:4490").is_valid.all()


def test_clean_coverage_refuses_bad_input():
    with pytest.raises(ParameterError, match="snapping_distance"):
        clean_coverage([shapely.box(0, 0, 1, 1)], snapping_distance=-1)
    with pytest.raises(GeometryError, match="part 1 .* has no area left after snapping at 0.01 m"):
        clean_coverage([shapely.box(0, 0, 1, 1), shapely.box(1, 0, 1.001, 1)], snapping_distance=0.01)
