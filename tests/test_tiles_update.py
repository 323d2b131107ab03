"""jngis.tiles: a layer's new version updated from the old one's tile geometry equals a cold build."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import jngis
import jngis.versions as jv
from jngis.tiles import VectorTiles

ZOOMS = (10, 12, 14, 16)


def assert_same_as_cold(updated: VectorTiles, layer: str, gdf: gpd.GeoDataFrame, zooms) -> None:
    """Every tile of ``zooms`` and the per-zoom geometry equal those of a cold build of ``gdf``."""
    low, high = updated.zoom_range(layer)
    cold = VectorTiles({layer: gdf}, minzoom=low, maxzoom=high, cache_mb=0)
    ours, theirs = updated._layer(layer).geometry, cold._layer(layer).geometry
    assert updated.feature_ids(layer).equals(cold.feature_ids(layer))
    for z in zooms:
        a, b = ours.zoom(z), theirs.zoom(z)
        for name in ("coords", "rings", "polygons", "features", "bounds"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), f"z{z} {name}"
        assert a.markers == b.markers and a.coords.dtype == b.coords.dtype
        geoms = a.geometries(np.arange(len(gdf)))
        assert not shapely.is_empty(geoms).any(), f"z{z}: a feature vanished"
        if a.markers == 0:
            assert shapely.coverage_is_valid(geoms), f"z{z}"
        addresses = np.unique(np.concatenate([updated.tiles_at(layer, z), cold.tiles_at(layer, z)]),
                              axis=0)
        for x, y in addresses.tolist():
            assert updated.tile(layer, z, x, y) == cold.tile(layer, z, x, y), f"{z}/{x}/{y}"


def one_street_plan(city) -> tuple[gpd.GeoDataFrame, str]:
    """The communities after jngis.rebalance redrew the 街道 with the most communities out of bounds."""
    counts = city.units.groupby("community_code")["households"].sum()
    outside = counts.index[(counts < 1000) | (counts > 3000)]
    street = city.units.loc[city.units.community_code.isin(outside), "street_code"].value_counts().index[0]
    plan = jngis.rebalance(city.units[city.units.street_code == street], min_households=1000,
                           max_households=3000, workers=1)
    drawn = jv.plan_communities(plan, jv.Boundaries.of(city))
    old = city.communities
    kept = old[old.street_code != street]
    new = pd.concat([kept, drawn[drawn.street_code == street].to_crs(old.crs)], ignore_index=True)
    return gpd.GeoDataFrame(new, geometry="geometry", crs=old.crs), street


def test_one_street_change_recomputes_only_that_street(sample_city):
    old_layer = sample_city.communities
    old = VectorTiles({"communities": old_layer}, minzoom=min(ZOOMS), maxzoom=max(ZOOMS), cache_mb=0)
    old.prepare(zooms=ZOOMS)
    new_layer, street = one_street_plan(sample_city)
    new = old.replaced({"communities": new_layer})
    assert new.rebuilt == ("communities",)
    geometry = new._layer("communities").geometry
    # every community outside the 街道 (and those the plan left alone in it) is reused
    assert (old_layer.street_code != street).sum() <= geometry.reused < len(new_layer)
    assert_same_as_cold(new, "communities", new_layer, ZOOMS)
    # only that 街道 and its neighbours were assembled again, at every zoom built before
    assert sorted(geometry.reassembled) == list(ZOOMS)
    assert max(geometry.reassembled.values()) < len(new_layer) / 4
    assert old._layer("communities").geometry.zoom(12).features[-1] > 0  # the old version intact


def test_whole_city_regridding_equals_a_cold_build(slice_city):
    plan = jngis.rebalance(slice_city.units, min_households=1000, max_households=3000, workers=1)
    proposed = jv.proposal(plan, jv.Boundaries.of(slice_city), grids=slice_city.grids)
    grids = jngis.make_grids(proposed.communities, proposed.units, previous=slice_city.grids,
                             workers=1)
    layers = {"communities": slice_city.communities, "grids": slice_city.grids}
    old = VectorTiles(layers, minzoom=min(ZOOMS), maxzoom=max(ZOOMS), cache_mb=0)
    old.prepare()
    new = old.replaced({"communities": proposed.communities, "grids": grids})
    assert set(new.rebuilt) == {"communities", "grids"}
    assert 0 < new._layer("grids").geometry.reused < len(grids)
    assert_same_as_cold(new, "grids", grids, range(min(ZOOMS), max(ZOOMS) + 1))
    assert_same_as_cold(new, "communities", proposed.communities, ZOOMS)


def test_zooms_not_built_before_are_built_cold(slice_city):
    grids = slice_city.grids
    old = VectorTiles({"grids": grids}, minzoom=10, maxzoom=14, cache_mb=0)
    old.prepare(zooms=[12])
    a, b = grids.index[:2]
    changed = grids.drop(index=b)
    changed.loc[a, "geometry"] = shapely.union(grids.geometry[a], grids.geometry[b])
    new = old.replaced({"grids": changed})
    assert_same_as_cold(new, "grids", changed, (10, 12, 14))
    assert sorted(new._layer("grids").geometry.reassembled) == [12]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_moved_cell_in_a_thin_coverage_updates_like_a_cold_build(seed):
    from tests.test_tiles import voronoi_layer

    layer = voronoi_layer(seed)
    old = VectorTiles({"communities": layer}, minzoom=8, maxzoom=16, cache_mb=0)
    old.prepare()
    geoms = layer.geometry.values
    first = int(np.argmax(shapely.area(geoms)))  # a large cell gains a strip of its largest neighbour
    neighbours = np.flatnonzero(shapely.intersects(geoms, shapely.buffer(geoms[first], 0.01)))
    neighbours = neighbours[neighbours != first]
    second = int(neighbours[np.argmax(shapely.area(geoms[neighbours]))])
    moved = layer.copy()
    strip = shapely.intersection(layer.geometry.iloc[second],
                                 shapely.buffer(layer.geometry.iloc[first], 30.0))
    moved.loc[moved.index[first], "geometry"] = shapely.union(layer.geometry.iloc[first], strip)
    moved.loc[moved.index[second], "geometry"] = shapely.difference(layer.geometry.iloc[second],
                                                                    strip)
    new = old.replaced({"communities": moved})
    assert_same_as_cold(new, "communities", moved, range(8, 17))


def test_an_update_reuses_zooms_read_from_the_cache_folder(slice_city, tmp_path):
    grids = slice_city.grids
    VectorTiles({"grids": grids}, minzoom=10, maxzoom=14, cache_dir=tmp_path).prepare()
    restarted = VectorTiles({"grids": grids}, minzoom=10, maxzoom=14, cache_mb=0, cache_dir=tmp_path)
    a, b = grids.index[:2]
    changed = grids.drop(index=b)
    changed.loc[a, "geometry"] = shapely.union(grids.geometry[a], grids.geometry[b])
    new = restarted.replaced({"grids": changed})
    assert_same_as_cold(new, "grids", changed, range(10, 15))
    assert sorted(new._layer("grids").geometry.reassembled) == list(range(10, 15))
