"""Scopes enforced in the store (both stores): who sees, creates, moves and reveals which orders."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from jngis.access import ADMIN, ANONYMOUS, Principal
from jngis.errors import ForbiddenError, NotFoundError, ParameterError
from jngis.store._scope import missing_order

D = dt.datetime
NAME, PHONE = "王秘密", "13912345678"


@pytest.fixture(scope="module")
def places(slice_city):
    """Two grids of two communities: WGS84 points inside them and their codes."""
    grids = slice_city.grids.sort_values("grid_code")
    first = grids.iloc[0]
    second = grids[grids["community_code"] != first["community_code"]].iloc[0]
    out = {}
    for key, grid in (("a", first), ("b", second)):
        point = grids[grids["grid_code"] == grid["grid_code"]].geometry.representative_point().to_crs("EPSG:4326")
        out[key] = {"lonlat": (float(point.x.iloc[0]), float(point.y.iloc[0])), "grid_code": grid["grid_code"],
                    "community_code": grid["community_code"]}
    return out


@pytest.fixture
def world(slice_store, places):
    """The store with one new order in each grid, and principals scoped to them."""
    orders = {}
    for key, place in places.items():
        orders[key] = slice_store.create_order(*place["lonlat"], category="环境卫生",
                                               description=f"楼道堆物, 回电{PHONE}", caller_name=NAME,
                                               caller_phone=PHONE, at=D(2026, 10, 9, 9))["order_id"]
    who = {
        "grid_a": Principal("u-grid", "网格员", "grid", (places["a"]["grid_code"],)),
        "community_a": Principal("u-lead-a", "社区领导", "leader", (places["a"]["community_code"],)),
        "street": Principal("u-street", "街道员", "street", ("370102003",)),
        "other_street": Principal("u-other", "外街道", "street", ("370102004",)),
        "hotline": Principal("u-hot", "话务员", "hotline"),
        "leader": Principal("u-leader", "市领导", "leader"),
        "department": Principal("u-dept", "部门员", "department", ("370102-CG",)),
        "planner": Principal("u-plan", "规划员", "planner", ("370102",)),
    }
    return slice_store, orders, who, places


@pytest.mark.parametrize("name, sees_a, sees_b", [
    ("grid_a", True, False), ("community_a", True, False), ("street", True, True),
    ("other_street", False, False), ("hotline", True, True), ("leader", True, True),
    ("department", False, False),
])
def test_reads_are_filtered_to_the_scope(world, name, sees_a, sees_b):
    store, orders, who, places = world
    principal = who[name]
    for key, sees in (("a", sees_a), ("b", sees_b)):
        if sees:
            assert store.get_order(orders[key], principal=principal)["order_id"] == orders[key]
            assert store.trail(orders[key], principal=principal)[0]["action"] == "received"
        else:
            for read in (store.get_order, store.trail):
                with pytest.raises(NotFoundError) as caught:
                    read(orders[key], principal=principal)
                assert str(caught.value) == str(missing_order(orders[key]))  # exactly a missing id's answer
    listed = {o["order_id"] for o in store.list_orders(principal=principal, limit=10_000)}
    assert (orders["a"] in listed, orders["b"] in listed) == (sees_a, sees_b)
    everything = store.orders_frame(columns=["order_id", "grid_code", "community_code", "street_code"])
    scope_of = {"grid_a": everything["grid_code"] == places["a"]["grid_code"],
                "community_a": everything["community_code"] == places["a"]["community_code"],
                "street": everything["street_code"] == "370102003"}
    expected = set(everything["order_id"][scope_of[name]]) if name in scope_of else \
        set(everything["order_id"]) if name in ("hotline", "leader") else set()
    assert listed == expected
    assert store.count_orders(principal=principal) == len(expected)
    frame = store.orders_frame(principal=principal, columns=["order_id"])
    assert set(frame["order_id"]) == expected


def test_roles_without_order_reads_are_refused(world):
    store, orders, who, _ = world
    for principal in (who["planner"], ANONYMOUS):
        for read, args in ((store.get_order, (orders["a"],)), (store.list_orders, ()),
                           (store.trail, (orders["a"],)), (store.count_orders, ())):
            with pytest.raises(ForbiddenError, match="may not orders.read"):
                read(*args, principal=principal)


def test_transitions_need_the_scope_and_the_step(world):
    store, orders, who, _ = world
    done = store.transition(orders["a"], "dispatched", principal=who["hotline"], at=D(2026, 10, 9, 10))
    assert done["status"] == "dispatched"
    with pytest.raises(NotFoundError) as caught:  # out of scope: as if it did not exist
        store.transition(orders["a"], "in_progress", principal=who["other_street"], at=D(2026, 10, 9, 11))
    assert str(caught.value) == str(missing_order(orders["a"]))
    with pytest.raises(ForbiddenError, match="may not move work order"):  # can read, may not write
        store.transition(orders["a"], "in_progress", principal=who["leader"], at=D(2026, 10, 9, 11))
    with pytest.raises(ForbiddenError, match="to 'resolved'"):  # a grid worker only reports progress
        store.transition(orders["a"], "in_progress", principal=who["grid_a"], at=D(2026, 10, 9, 11))
        store.transition(orders["a"], "resolved", principal=who["grid_a"], at=D(2026, 10, 9, 12))
    store.transition(orders["a"], "resolved", principal=who["street"], at=D(2026, 10, 9, 13))
    trail = store.trail(orders["a"])
    assert [(row["to_state"], row["who"]) for row in trail] == [
        ("received", "admin"), ("dispatched", "u-hot"), ("in_progress", "u-grid"), ("resolved", "u-street")]
    with pytest.raises(ParameterError, match="the trail's who is the principal"):
        store.transition(orders["b"], "dispatched", principal=who["hotline"], who="someone else")
    assert store.get_order(orders["b"])["status"] == "received"


def test_creation_only_inside_the_scope(world):
    store, _, who, places = world
    created = store.create_order(*places["a"]["lonlat"], category="c", principal=who["grid_a"])
    assert created["grid_code"] == places["a"]["grid_code"]
    assert store.trail(created["order_id"])[0]["who"] == "u-grid"
    before = store.count_orders()
    with pytest.raises(ForbiddenError, match="outside the scope"):
        store.create_order(*places["b"]["lonlat"], category="c", principal=who["grid_a"])
    for principal in (who["leader"], who["department"], who["street"]):
        with pytest.raises(ForbiddenError, match="may not orders.create"):
            store.create_order(*places["a"]["lonlat"], category="c", principal=principal)
    assert store.count_orders() == before


def test_imports_refuse_rows_outside_the_scope(world):
    store, _, who, places = world
    rows = pd.DataFrame({"lon": [places["a"]["lonlat"][0], places["b"]["lonlat"][0]],
                         "lat": [places["a"]["lonlat"][1], places["b"]["lonlat"][1]], "category": ["c", "c"]})
    result = store.import_orders(rows, principal=who["grid_a"])
    assert result.imported == 1 and result.bad.to_dict("records") == [
        {"row": 1, "reason": "the place is outside the importer's scope"}]
    assert store.trail(result.order_ids[0])[0]["who"] == "u-grid"
    with pytest.raises(ForbiddenError):
        store.import_orders(rows, principal=who["leader"])


def test_personal_data_is_masked_by_role_and_never_shown_to_leaders(world):
    store, orders, who, _ = world
    for name in ("hotline", "street", "grid_a"):
        record = store.get_order(orders["a"], principal=who[name], personal=True)
        assert (record["caller_name"], record["caller_phone"]) == ("王**", "139****5678")
        assert PHONE not in record["description"] and "139****5678" in record["description"]
        listed = store.list_orders(principal=who[name], personal=True, grid_code=record["grid_code"])
        assert orders["a"] in {o["order_id"] for o in listed}
        assert NAME not in str(listed) and PHONE not in str(listed)
    for principal in (who["leader"], who["community_a"]):
        record = store.get_order(orders["a"], principal=principal, personal=True)
        assert "caller_name" not in record and "caller_phone" not in record and PHONE not in str(record)
    plain = store.get_order(orders["a"], principal=who["hotline"])
    assert "caller_phone" not in plain and PHONE not in str(plain)
    assert PHONE not in store.orders_frame(public=False, principal=who["leader"]).to_json(default=str)


def test_a_reveal_needs_a_reason_the_right_and_the_scope_and_is_logged(world):
    store, orders, who, _ = world
    before = len(store.access_log())
    record = store.reveal(orders["a"], principal=who["street"], reason="回访核实诉求", client="10.0.0.7")
    assert (record["caller_name"], record["caller_phone"]) == (NAME, PHONE) and PHONE in record["description"]
    log = store.access_log().iloc[-1]
    assert (log["principal_id"], log["role"], log["action"], log["target"], log["reason"], log["client"]) == (
        "u-street", "street", "personal.reveal", orders["a"], "回访核实诉求", "10.0.0.7")
    with pytest.raises(ParameterError, match="reason is missing"):
        store.reveal(orders["a"], principal=who["street"], reason="  ")
    for name in ("leader", "grid_a", "community_a"):  # leaders never; grid workers see masked only
        with pytest.raises(ForbiddenError, match="may not personal.reveal"):
            store.reveal(orders["a"], principal=who[name], reason="想看")
    with pytest.raises(NotFoundError):
        store.reveal(orders["a"], principal=who["other_street"], reason="想看")
    assert len(store.access_log()) == before + 1


def test_the_administrator_default_keeps_library_callers_working(world):
    store, orders, _, places = world
    order = store.create_order(*places["b"]["lonlat"], category="c", who="话务员01")
    assert store.trail(order["order_id"])[0]["who"] == "话务员01"
    assert store.get_order(orders["b"]) == store.get_order(orders["b"], principal=ADMIN)
    private = store.private_record(orders["b"])  # the deprecated alias: a logged reveal
    assert private["caller_phone"] == PHONE
    assert store.access_log().iloc[-1]["action"] == "personal.reveal"


def test_callers_of_orders_closed_long_ago_are_forgotten_and_that_is_logged(world):
    store, orders, who, _ = world
    for step, hour in (("dispatched", 10), ("in_progress", 11), ("resolved", 12), ("closed", 13)):
        store.transition(orders["a"], step, at=D(2026, 10, 9, hour))
    with pytest.raises(ForbiddenError):
        store.forget_callers("2026-11-01", principal=who["hotline"])
    assert store.forget_callers("2026-10-01") == 0  # closed after that: kept
    assert store.forget_callers("2026-11-01") == 1
    closed = store.reveal(orders["a"], principal=who["hotline"], reason="核实")
    assert closed["caller_name"] is None and closed["caller_phone"] is None
    assert PHONE not in closed["description"] and "139****5678" in closed["description"]
    still_open = store.reveal(orders["b"], principal=who["hotline"], reason="核实")
    assert (still_open["caller_name"], still_open["caller_phone"]) == (NAME, PHONE)
    erased = store.access_log()
    assert "personal.erase" in erased["action"].tolist()
    assert "1 callers deleted" in erased[erased["action"] == "personal.erase"]["detail"].iloc[-1]
