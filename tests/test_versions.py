"""Boundary versions on both stores: adopt a redraw with its regridding, history, lineage, diff, orders."""

from __future__ import annotations

import datetime as dt

import geopandas as gpd
import pytest

import jngis
from jngis import access
from jngis import versions as jv
from jngis.errors import (
    AdoptionError,
    CodeConflictError,
    CoverageMismatchError,
    EffectiveDateError,
    ForbiddenError,
    NotFoundError,
    ParameterError,
    SchemaError,
    UnitsMismatchError,
)
from jngis.topology import check_tiling
from jngis.workorders import check_trail

TODAY = jngis.workorders.now_cst().date()


@pytest.fixture(scope="module")
def redraw(slice_city):
    """The slice's rebalance plan, its communities tiling the 街道 and its regridding."""
    before = jv.Boundaries.of(slice_city)
    plan = jngis.rebalance(slice_city.units, min_households=1000, max_households=3000)
    proposed = jv.proposal(plan, before, grids=slice_city.grids)
    grids = jngis.make_grids(proposed.communities, proposed.units, previous=slice_city.grids)
    return plan, proposed, grids


def _inside_each_grid(grids: gpd.GeoDataFrame):
    points = grids.geometry.representative_point().to_crs("EPSG:4326")
    return list(zip(points.x, points.y, grids["grid_code"]))


def _nothing_written(store, versions_before: int, changes_before: dict) -> None:
    assert len(store.versions()) == versions_before
    changes = store.change_versions()
    assert changes["layers"] == changes_before["layers"] and changes["orders"] == changes_before["orders"]


def test_adopting_a_redraw_with_its_regridding(slice_store, redraw, slice_city):
    plan, proposed, grids = redraw
    record = slice_store.adopt(plan, grids=grids, note="历下区政府2026年第8号")
    assert record["version_id"] == 2 and record["status"] == "in_force" and record["effective"] == TODAY
    assert record["adopted_by"] == "admin" and record["note"] == "历下区政府2026年第8号"
    listed = slice_store.versions()
    assert listed["status"].tolist() == ["past", "in_force"] and listed["effective"].iloc[0] is None
    # the plain tables are the new version; they tile as they must
    communities = slice_store.read_layer("communities")
    assert sorted(communities["community_code"]) == sorted(plan.communities["community_code"])
    assert check_tiling(communities, slice_store.read_layer("streets"), "street_code")["ok"].all()
    assert check_tiling(slice_store.read_layer("grids"), communities, "community_code")["ok"].all()
    units = slice_store.read_layer("units").set_index("unit_id")["community_code"]
    assert units.to_dict() == plan.assignment.to_dict()
    # ... and the old version stays answerable
    old = slice_store.read_layer("grids", at="2020-01-01")
    assert sorted(old["grid_code"]) == sorted(slice_city.grids["grid_code"])
    assert len(slice_store.read_layer("grids", at=TODAY)) == len(grids)
    # lineage: where the moved households went, consistent with the plan
    diff = slice_store.diff(1, 2)
    assert diff.summary["units_moved"] == len(plan.moves)
    assert diff.summary["households_moved"] == plan.metrics["moved_households"]
    moved = slice_store.lineage(2, kind="communities")
    crossing = moved[moved["from_code"] != moved["to_code"]]
    assert int(crossing["households"].sum()) == plan.metrics["moved_households"]
    assert set(diff.communities["change"]) <= {"adjusted", "split", "merged", "created", "dissolved"}
    some = crossing.iloc[0]["from_code"]
    assert (slice_store.lineage(code=some)[["from_code", "to_code"]] == some).any(axis=1).all()
    assert record["summary"]["units_moved"] == len(plan.moves)


def test_open_orders_move_to_the_new_grids_closed_ones_stay(slice_store, redraw, slice_city):
    plan, proposed, grids = redraw
    spots = _inside_each_grid(slice_city.grids)
    created = [slice_store.create_order(lon, lat, category="市容环境", who="测试") for lon, lat, _ in spots]
    closed = created[0]["order_id"]
    for step in ("dispatched", "in_progress", "resolved", "closed"):
        slice_store.transition(closed, step, who="测试")
    slice_store.adopt(plan, grids=grids)
    new_codes = set(grids["grid_code"])
    new_grid = {o["order_id"]: jngis.assign(
        gpd.GeoSeries.from_xy([o["lon"]], [o["lat"]], crs="EPSG:4326"), grids).iloc[0] for o in created}
    for order in created[1:]:
        now = slice_store.get_order(order["order_id"])
        assert now["grid_code"] in new_codes and now["grid_code"] == new_grid[order["order_id"]]
        rows = [r for r in slice_store.trail(order["order_id"]) if r["action"] == "replaced"]
        assert len(rows) == (order["grid_code"] != now["grid_code"])
        for row in rows:
            assert row["who"] == "system" and row["from_state"] == row["to_state"] == now["status"]
            assert row["note"] == f"grid {order['grid_code']} -> {now['grid_code']} (version 2)"
    assert slice_store.get_order(closed)["grid_code"] == created[0]["grid_code"]
    assert check_trail(slice_store.orders_frame(), slice_store.trail_frame()).empty
    diff = slice_store.diff(1, 2)
    replaced = slice_store.version(2)["summary"]["orders_replaced"]
    assert len(diff.orders) == diff.summary["orders_replaced"] == replaced > 0
    # "which grid was this point in last year": the old boundaries answer
    lon, lat, code = spots[1]
    assert slice_store.place(lon, lat, at=TODAY - dt.timedelta(days=365))["grid_code"] == code
    assert slice_store.place(lon, lat)["grid_code"] == new_grid[created[1]["order_id"]]
    # "... and how many orders did that grid have": grid_stats on the boundaries in force then
    orders = slice_store.orders_frame()
    then = jngis.grid_stats(slice_store.read_layer("grids", at=TODAY - dt.timedelta(days=365)), workorders=orders)
    now = jngis.grid_stats(slice_store.read_layer("grids"), workorders=orders)
    assert set(then.index) == set(slice_city.grids["grid_code"]) and set(now.index) == new_codes
    assert then["orders"].sum() == now["orders"].sum() == len(orders)
    assert then.at[code, "orders"] == jngis.grid_stats(slice_city.grids, workorders=orders).at[code, "orders"]
    # a new order lands in the version in force
    fresh = slice_store.create_order(lon, lat, category="市容环境", who="测试")
    assert fresh["grid_code"] == new_grid[created[1]["order_id"]]


def test_a_scheduled_version_waits_for_its_day(slice_store, redraw, slice_city):
    plan, proposed, grids = redraw
    day = TODAY + dt.timedelta(days=30)
    record = slice_store.adopt(plan, grids=grids, effective=day)
    assert record["status"] == "pending" and record["effective"] == day
    assert sorted(slice_store.read_layer("grids")["grid_code"]) == sorted(slice_city.grids["grid_code"])
    assert sorted(slice_store.read_layer("grids", at=day)["grid_code"]) == sorted(grids["grid_code"])
    assert slice_store.version_in_force() == 1 and slice_store.version_in_force(day) == 2
    assert slice_store.apply_due_versions(now=day - dt.timedelta(days=1)) == []
    layers = slice_store.change_versions()["layers"]
    assert slice_store.apply_due_versions(now=day) == [2]
    assert slice_store.apply_due_versions(now=day) == []
    assert slice_store.change_versions()["layers"] == layers + 1
    assert sorted(slice_store.read_layer("grids")["grid_code"]) == sorted(grids["grid_code"])
    assert slice_store.versions()["status"].tolist() == ["past", "in_force"]
    with pytest.raises(EffectiveDateError, match=f"effective={TODAY} is before version 2's effective date {day}"):
        slice_store.adopt(slice_city.grids, effective=TODAY)


def test_adopting_grids_from_a_geopackage(slice_store, slice_city, tmp_path):
    coarse = jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)
    path = tmp_path / "grids.gpkg"
    coarse.to_file(path, layer="grids", driver="GPKG")
    record = slice_store.adopt(path, note="网格调整")
    assert record["summary"]["grids_dissolved"] > 0 and record["summary"]["units_moved"] == 0
    assert sorted(slice_store.read_layer("grids")["grid_code"]) == sorted(coarse["grid_code"])
    # a retired grid code never comes back for another area
    retired = sorted(set(slice_city.grids["grid_code"]) - set(coarse["grid_code"]))[0]
    before, changes = len(slice_store.versions()), slice_store.change_versions()
    with pytest.raises(CodeConflictError, match=f"grids code '{retired}' was retired by version 2"):
        slice_store.adopt(slice_city.grids)
    _nothing_written(slice_store, before, changes)


def test_refusals_write_nothing_and_say_why(slice_store, redraw, slice_city):
    plan, proposed, grids = redraw
    slice_store.adopt(grids, communities=proposed.communities)
    before, changes = len(slice_store.versions()), slice_store.change_versions()
    with pytest.raises(AdoptionError, match="changes no community, grid or unit"):
        slice_store.adopt(grids, communities=proposed.communities)
    wrong = grids.copy()
    wrong.loc[0, "grid_code"] = "370102004001001"  # another 街道's code
    with pytest.raises(SchemaError, match="'370102004001001' does not start with '370102003001'"):
        slice_store.adopt(wrong)
    holes = grids.drop(index=3)
    with pytest.raises(CoverageMismatchError, match="the grids do not tile their community in 1 places"):
        slice_store.adopt(holes)
    partial = jngis.rebalance(slice_city.units.iloc[:-5].copy(), min_households=1000, max_households=3000)
    with pytest.raises(UnitsMismatchError, match="5 store units not in the plan"):
        slice_store.adopt(partial, grids=grids)
    with pytest.raises(EffectiveDateError, match="effective='someday'; expected a date"):
        slice_store.adopt(grids, effective="someday")
    with pytest.raises(ForbiddenError):
        slice_store.adopt(slice_city.grids, principal=access.Principal("u-9", "热线", "hotline"))
    with pytest.raises(NotFoundError, match="no GeoPackage at"):
        slice_store.adopt("/nonexistent/plan.gpkg")
    _nothing_written(slice_store, before, changes)
    with pytest.raises(ParameterError, match="keeps boundary versions"):
        slice_store.write_city(jngis.City(grids=slice_city.grids))


def test_a_plan_without_its_regridding_or_outside_a_planners_scope_is_refused(slice_store, redraw):
    plan, _, grids = redraw
    with pytest.raises(CoverageMismatchError, match="regridding: pass grids=make_grids"):
        slice_store.adopt(plan)
    with pytest.raises(ForbiddenError, match="community '370102003001' is outside the principal's scope"):
        slice_store.adopt(plan, grids=grids, principal=access.Principal("u-8", "规划", "planner", ("370103",)))
    record = slice_store.adopt(plan, grids=grids, principal=access.Principal("u-7", "规划", "planner", ("370102",)))
    assert record["adopted_by"] == "u-7"
    assert len(slice_store.versions()) == 2
