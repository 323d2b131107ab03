"""make_grids gives each community grids that tile it exactly: a valid coverage (shared edges vertex for
vertex) whose GEOS coverage union is the community, also after a redraw regridded with ``previous=``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import jngis
from jngis.grids.exact import exact_tiling, same_rings, tiles_exactly
from jngis.sample import build_city_in
from jngis.versions import Boundaries, plan_communities

NINGBO = Path(__file__).resolve().parent / "data" / "ningbo_districts.geojson"


def _regridded(city, low: int, high: int) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """A rebalance of the city's units, its communities, and make_grids with previous= the city's grids."""
    plan = jngis.rebalance(city.units, min_households=low, max_households=high, progress=False, workers=1)
    communities = plan_communities(plan, Boundaries.of(city))
    units = city.units.assign(community_code=city.units["unit_id"].map(plan.assignment).to_numpy())
    return communities, jngis.make_grids(communities, units, previous=city.grids)


def _assert_exact(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> None:
    polygons = dict(zip(communities["community_code"], communities.geometry.values))
    assert set(grids["community_code"]) == set(polygons)
    invalid = []
    for code, rows in grids.groupby("community_code").indices.items():
        geoms = np.asarray(grids.geometry.values, dtype=object)[rows]
        assert shapely.is_valid(geoms).all(), code
        if not shapely.coverage_is_valid(geoms):
            invalid.append(code)
            continue
        union = shapely.coverage_union_all(geoms)  # GEOS's coverage union accepts them
        assert union.is_valid, code
        # the community itself, up to the float noise of nodes on its boundary
        assert shapely.symmetric_difference(union, polygons[code]).area < 1e-5, code
        # no gap between grids (a valid coverage may leave one of no area: a hole the community lacks)
        assert same_rings(union, polygons[code], 1e-6), code
    assert not invalid, f"{len(invalid)} of {len(polygons)} communities' grids are no valid coverage: {invalid[:5]}"


def test_regridding_a_redraw_gives_exact_coverages_on_the_slice(slice_city):
    communities, grids = _regridded(slice_city, 1500, 4000)
    # the slice's grids were drawn before grids were made exact: check the communities regridded
    old = slice_city.grids.set_index("grid_code").geometry
    kept = [code for code, rows in grids.groupby("community_code").indices.items()
            if all(c in old.index and old[c].equals_exact(g, 0)
                   for c, g in zip(grids["grid_code"].iloc[rows], grids.geometry.iloc[rows]))]
    regridded = ~grids["community_code"].isin(kept)
    assert regridded.any()
    _assert_exact(grids[regridded], communities[~communities["community_code"].isin(kept)])


def test_regridding_a_redraw_gives_exact_coverages_on_the_second_city():
    city = build_city_in(gpd.read_file(NINGBO), seed=3, streets=6, communities=48)
    city = dataclasses.replace(city, grids=jngis.make_grids(city.communities, city.units))
    _assert_exact(city.grids, city.communities)
    communities, grids = _regridded(city, 1500, 5000)
    _assert_exact(grids, communities)


def test_kept_grids_stay_as_they_are(slice_city):
    """A community whose previous grids still tile it and hold its households keeps those rows unchanged."""
    grids = jngis.make_grids(slice_city.communities, slice_city.units, previous=slice_city.grids)
    before = slice_city.grids.sort_values("grid_code").reset_index(drop=True)
    assert grids["grid_code"].tolist() == before["grid_code"].tolist()
    assert shapely.equals_exact(np.asarray(grids.geometry.values, dtype=object),
                                np.asarray(before.geometry.values, dtype=object), 0).all()


def test_grids_of_the_slice_drawn_afresh_are_exact(slice_city):
    _assert_exact(jngis.make_grids(slice_city.communities, slice_city.units), slice_city.communities)


def test_exact_tiling_nodes_near_miss_edges():
    """Two halves whose shared edge has a vertex on one side only, a hair off: made a coverage."""
    whole = shapely.box(0, 0, 2, 1)
    left = shapely.Polygon([(0, 0), (1, 0), (1 + 1e-10, 0.5), (1, 1), (0, 1)])
    right = shapely.box(1, 0, 2, 1)
    assert not tiles_exactly([left, right], whole)
    fixed = exact_tiling(whole, [left, right])
    assert tiles_exactly(fixed, whole)
    assert shapely.coverage_union_all(np.asarray(fixed, dtype=object)).area == pytest.approx(2.0)
    assert [round(g.area, 6) for g in fixed] == [1.0, 1.0]
