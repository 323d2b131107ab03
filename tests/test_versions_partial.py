"""A plan of some 街道 (one 街道, one district) adopted into the store of the whole city, on both stores.

The second city (built inside Ningbo's outlines, tests/data) has 7 街道 in 6 districts; 330225 holds two.
The 街道 outside the plan keep their communities, grids and units exactly; the lineage, the diff and the
re-placed orders are the plan's part only; a plan covering part of a 街道, or a district outside a
planner's scope, is refused with nothing written.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

import jngis
from jngis import access
from jngis.errors import CoverageMismatchError, ForbiddenError, UnitsMismatchError
from jngis.sample import build_city_in
from jngis.store import open_store
from jngis.versions import Boundaries, proposal

NINGBO = Path(__file__).resolve().parent / "data" / "ningbo_districts.geojson"
DISTRICT = "330225"  # two 街道
STREET = "330205001"  # one 街道, its district's only one


@pytest.fixture(scope="module")
def city():
    built = build_city_in(gpd.read_file(NINGBO), seed=3, streets=6, communities=48)
    return dataclasses.replace(built, grids=jngis.make_grids(built.communities, built.units))


@pytest.fixture(params=["sqlite", "postgis"])
def store(request, tmp_path, city):
    if request.param == "sqlite":
        url = str(tmp_path / "city.gpkg")
    else:
        from pgcluster import schema_dsn

        url = schema_dsn(request.getfixturevalue("postgis_dsn"))
    with open_store(url) as opened:
        opened.write_city(city)
        yield opened


def _redraw(store, prefix: str):
    """A rebalance of the units of the 街道 starting with ``prefix``, and its regridding (those 街道 only)."""
    now = store.read_city()
    units = now.units[now.units["street_code"].str.startswith(prefix)].copy()
    plan = jngis.rebalance(units, min_households=400, max_households=1200, progress=False, workers=1,
                           retired=store.retired_codes("communities"))
    proposed = proposal(plan, Boundaries.of(now), grids=now.grids)
    mine = proposed.communities["street_code"].str.startswith(prefix)
    grids = jngis.make_grids(proposed.communities[mine], proposed.units[proposed.units["street_code"]
                                                                        .str.startswith(prefix)],
                             previous=now.grids, retired=store.retired_codes("grids"))
    return now, plan, proposed, grids


def _rows(layer, key: str, outside: str):
    part = layer[~layer[key].str.startswith(outside)].sort_values(key, ignore_index=True)
    return part[key].tolist(), part.geometry.values


def _orders_everywhere(store, grids):
    points = grids.geometry.representative_point().to_crs("EPSG:4326")
    return [store.create_order(x, y, category="市容环境", who="测试") for x, y in zip(points.x, points.y)]


@pytest.mark.parametrize("prefix", [STREET, DISTRICT])
def test_a_plan_of_part_of_the_city_changes_only_that_part(store, prefix):
    now, plan, proposed, grids = _redraw(store, prefix)
    assert set(plan.communities["street_code"]) == set(now.streets["street_code"][
        now.streets["street_code"].str.startswith(prefix)])
    # the proposal over the whole city: the other 街道 exactly as they are
    for kind, key in (("communities", "community_code"), ("units", "unit_id")):
        codes, geometry = _rows(getattr(proposed, kind), key, prefix)
        held_codes, held_geometry = _rows(getattr(now, kind), key, prefix)
        assert codes == held_codes and shapely.equals_identical(geometry, held_geometry).all()
    orders = _orders_everywhere(store, now.grids)
    planner = access.Principal("u-5", "规划", "planner", (prefix[:6],))
    record = store.adopt(plan, communities=proposed.communities, grids=grids, principal=planner)
    assert record["version_id"] == 2 and record["adopted_by"] == "u-5"
    after = store.read_city()
    for kind, key in (("communities", "community_code"), ("grids", "grid_code"), ("units", "unit_id")):
        codes, geometry = _rows(getattr(after, kind), key, prefix)
        held_codes, held_geometry = _rows(getattr(now, kind), key, prefix)
        assert codes == held_codes, kind
        assert shapely.equals_identical(geometry, held_geometry).all(), kind
    # inside the plan: its communities, units and grids
    inside = after.units[after.units["street_code"].str.startswith(prefix)].set_index("unit_id")
    assert inside["community_code"].to_dict() == plan.assignment.to_dict()
    assert sorted(after.grids.loc[after.grids["grid_code"].str.startswith(prefix), "grid_code"]) == \
        sorted(grids["grid_code"])
    assert jngis.topology.check_tiling(after.communities, after.streets, "street_code")["ok"].all()
    assert jngis.topology.check_tiling(after.grids, after.communities, "community_code")["ok"].all()
    # the lineage, the diff and the re-placed orders: the plan's part only
    diff = store.diff(1, 2)
    assert diff.summary["households_moved"] == plan.metrics["moved_households"]
    assert len(diff.communities) and diff.communities["code"].str.startswith(prefix).all()
    assert len(diff.grids) and diff.grids["code"].str.startswith(prefix).all()
    lineage = store.lineage(2)
    assert lineage["from_code"].dropna().str.startswith(prefix).all()
    assert lineage["to_code"].dropna().str.startswith(prefix).all()
    assert len(diff.orders) == record["summary"]["orders_replaced"] > 0
    assert diff.orders["from_grid"].str.startswith(prefix).all()
    for order in orders:
        now_order = store.get_order(order["order_id"])
        if not order["grid_code"].startswith(prefix):
            assert now_order["grid_code"] == order["grid_code"]
            assert not [r for r in store.trail(order["order_id"]) if r["action"] == "replaced"]
    # outside the plan the history was not written again: one row per feature, from version 1, still open
    for kind, key in (("communities", "community_code"), ("grids", "grid_code")):
        rows = store._execute(store._conn(), f"SELECT code, version_from, version_to FROM {kind}_history "
                                             "WHERE code NOT LIKE ?", (f"{prefix}%",)).fetchall()
        assert len(rows) == (~getattr(now, kind)[key].str.startswith(prefix)).sum() > 0
        assert {(int(a), b) for _, a, b in rows} == {(1, None)}
    # and a second plan elsewhere is adopted over it
    other = "330203"
    _, plan2, proposed2, grids2 = _redraw(store, other)
    record2 = store.adopt(plan2, communities=proposed2.communities, grids=grids2)
    diff2 = store.diff(2, 3)
    assert record2["version_id"] == 3 and diff2.communities["code"].str.startswith(other).all()
    assert set(store.diff(1, 3).communities["code"].str[:6]) == {prefix[:6], other}


def test_a_partial_street_or_another_district_is_refused(store):
    now, plan, proposed, grids = _redraw(store, DISTRICT)
    versions, changes = len(store.versions()), store.change_versions()
    street = "330225002"
    cut = now.units[now.units["street_code"].str.startswith(DISTRICT)].iloc[:-3].copy()
    partial = jngis.rebalance(cut, min_households=400, max_households=1200, progress=False, workers=1)
    with pytest.raises(UnitsMismatchError, match=f"plan covers part of 街道 street_code='{street}': 3 store units "
                                                 "not in the plan"):
        store.adopt(partial, grids=grids)
    with pytest.raises(UnitsMismatchError, match=f"part of 街道 street_code='{street}'"):
        proposal(partial, Boundaries.of(now))
    planner = access.Principal("u-6", "规划", "planner", ("330203",))
    with pytest.raises(ForbiddenError, match=f"community '{DISTRICT}\\d+' is outside the principal's scope"):
        store.adopt(plan, communities=proposed.communities, grids=grids, principal=planner)
    # nothing written: only version 1 (the boundaries held when versions were first used), layers as they were
    assert store.versions()["version_id"].tolist() == [1] and versions in (0, 1)
    assert store.change_versions()["layers"] == changes["layers"]
    held = store.read_city()
    for kind, key in (("communities", "community_code"), ("grids", "grid_code"), ("units", "unit_id")):
        assert getattr(held, kind)[key].tolist() == getattr(now, kind)[key].tolist()
    assert held.units["community_code"].tolist() == now.units["community_code"].tolist()


def test_rows_given_outside_the_plan_must_be_the_ones_in_force(store):
    now = store.read_city()
    units = now.units[now.units["street_code"].str.startswith(STREET)].copy()
    plan = jngis.rebalance(units, min_households=400, max_households=1200, progress=False, workers=1)
    outside = now.grids[~now.grids["grid_code"].str.startswith(STREET)]
    assert len(outside) >= 2
    kept = proposal(plan, Boundaries.of(now), grids=now.grids)  # the rows in force, as make_grids keeps them
    assert set(outside["grid_code"]) <= set(kept.grids["grid_code"])
    redrawn = now.grids.copy()
    first = outside.index[0]
    redrawn.loc[first, "geometry"] = shapely.affinity.translate(redrawn.loc[first, "geometry"], xoff=5.0)
    with pytest.raises(CoverageMismatchError, match=rf"grid_code='{outside.loc[first, 'grid_code']}'.*"
                                                    r"drawn otherwise than in force"):
        proposal(plan, Boundaries.of(now), grids=redrawn)
    unknown = now.grids.copy()
    unknown.loc[first, "grid_code"] = outside.loc[first, "grid_code"][:-3] + "999"
    with pytest.raises(CoverageMismatchError, match="not in force"):
        proposal(plan, Boundaries.of(now), grids=unknown)
