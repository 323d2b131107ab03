"""A history imported in bulk gets each open order's department-loop row, replayed from its trail."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest

from jngis import access
from jngis.errors import InvalidTransition, SchemaError
from jngis.workorders import LOOP_COLUMNS, actions_for

T = pd.Timestamp
RECEIVED = T("2026-10-12 09:00:00")
STEPS = (("dispatched", T("2026-10-12 09:30:00")), ("sign", T("2026-10-12 10:05:00")),
         ("contact", T("2026-10-12 15:20:00")), ("on_site", T("2026-10-13 10:40:00")))


def _history(slice_city, order_id: str, category: str = "环境卫生") -> gpd.GeoDataFrame:
    """One open order of the slice's place, signed, contacted and visited on site (the sample's columns)."""
    where = slice_city.workorders.iloc[[0]]
    times = dict(STEPS)
    return gpd.GeoDataFrame({
        "order_id": [order_id], "category": [category], "status": ["in_progress"], "received_at": [RECEIVED],
        "dispatched_at": [times["dispatched"]], "due_at": [T("2026-10-19 09:30:00")], "resolved_at": [pd.NaT],
        "closed_at": [pd.NaT], "satisfied": [None], "signed_at": [times["sign"]], "contacted_at": [times["contact"]],
        "on_site_at": [times["on_site"]], "supervised_at": [pd.NaT], "rehandled_at": [pd.NaT], "callback": [None],
        "verified_at": [pd.NaT]}, geometry=where.geometry.to_numpy(), crs=where.crs)


def _live(store, slice_city, category: str = "环境卫生") -> str:
    """The same order created and walked through ``store.step`` at the same times."""
    point = slice_city.workorders.iloc[[0]].to_crs("EPSG:4326").geometry.iloc[0]
    order = store.create_order(point.x, point.y, category=category, at=RECEIVED)
    for action, at in STEPS:
        store.step(order["order_id"], action, at=at)
    return order["order_id"]


def _loop(store, order_id: str) -> dict:
    frame = store.loop_frame().set_index("order_id")
    return frame.loc[order_id, list(LOOP_COLUMNS)].to_dict()


def test_an_open_history_order_gets_the_loop_row_a_live_walk_writes(slice_store, slice_city):
    assert slice_store.import_history(_history(slice_city, "H-LOOP-1")) == 1
    live = _live(slice_store, slice_city)
    imported = _loop(slice_store, "H-LOOP-1")
    assert imported == _loop(slice_store, live)
    assert imported["on_site_at"] == STEPS[3][1] and pd.isna(imported["replied_at"])
    # the same next steps are offered ...
    department = access.Principal("u-1", "部门", "admin", ())
    offered = [a["action"] for a in actions_for(slice_store.order_detail("H-LOOP-1"), department)]
    assert offered == [a["action"] for a in actions_for(slice_store.order_detail(live), department)]
    assert "reply" in offered
    # ... and the reply is taken without asking for the on-site visit again
    done = slice_store.step("H-LOOP-1", "reply", note="已清理", at="2026-10-14 09:00")
    assert done["status"] == "resolved" and done["on_site_at"] == STEPS[3][1]


def test_a_history_without_the_visit_is_asked_for_it_as_live(slice_store, slice_city):
    layer = _history(slice_city, "H-LOOP-2")
    layer["on_site_at"] = pd.NaT
    slice_store.import_history(layer)
    assert pd.isna(_loop(slice_store, "H-LOOP-2")["on_site_at"])
    with pytest.raises(InvalidTransition, match="needs an on-site visit"):
        slice_store.step("H-LOOP-2", "reply", note="已清理", at="2026-10-14 09:00")


def test_closed_history_orders_keep_no_loop_row_and_a_refused_trail_writes_nothing(slice_store, slice_city):
    layer = _history(slice_city, "H-LOOP-3")
    layer["contacted_at"] = layer["signed_at"] - pd.Timedelta("1min")
    with pytest.raises(SchemaError, match="contacted_at is not after its signed_at"):
        slice_store.import_history(layer)
    assert "H-LOOP-3" not in set(slice_store.loop_frame()["order_id"])
    held = set(slice_store.loop_frame()["order_id"])
    closed = slice_store.orders_frame(columns=["order_id", "status"])
    assert not held & set(closed.loc[closed["status"] == "closed", "order_id"])


RETURNED = (("dispatched", T("2026-10-12 09:30:00"), None), ("returned", T("2026-10-12 11:00:00"), "非本单位职责"),
            ("dispatched", T("2026-10-12 14:00:00"), None), ("sign", T("2026-10-12 14:30:00"), None),
            ("contact", T("2026-10-12 16:00:00"), None),
            ("extension_request", T("2026-10-13 10:00:00"), "需协调产权单位"),
            ("extension_decision", T("2026-10-13 15:00:00"), "同意延期"))


def test_a_return_and_an_extension_in_an_exported_trail_refuse_a_second_extension_as_live(slice_store, slice_city):
    from jngis.store.bulk import import_history
    from jngis.workorders import state_from_trail

    layer = _history(slice_city, "H-LOOP-4", category="物业管理")[
        ["order_id", "category", "status", "received_at", "dispatched_at", "due_at", "resolved_at", "closed_at",
         "geometry"]].assign(dispatched_at=RETURNED[2][1], extended_days=3)
    rows = [("received", RECEIVED, None), *RETURNED]
    states = [state_from_trail([{"action": a} for a, _, _ in rows[:i + 1]]) for i in range(len(rows))]
    trail = pd.DataFrame({"order_id": "H-LOOP-4", "action": [a for a, _, _ in rows],
                          "from_state": [None, *states[:-1]], "to_state": states, "who": "导出",
                          "at": [at for _, at, _ in rows], "note": [n for _, _, n in rows]})
    assert import_history(slice_store, layer, trail=trail) == 1
    assert slice_store.trail("H-LOOP-4")[-1]["action"] == "extension_decision"
    point = slice_city.workorders.iloc[[0]].to_crs("EPSG:4326").geometry.iloc[0]
    live = slice_store.create_order(point.x, point.y, category="物业管理", at=RECEIVED)["order_id"]
    for action, at, note in RETURNED:
        options = {"days": 3} if action == "extension_request" else {"granted": True} \
            if action == "extension_decision" else {}
        slice_store.step(live, action, at=at, note=note, **options)
    imported = _loop(slice_store, "H-LOOP-4")
    assert imported == _loop(slice_store, live)
    assert imported["extension_days"] == 3 and imported["extension_decision"] == "granted"
    principal = access.ADMIN
    assert [a["action"] for a in actions_for(slice_store.order_detail("H-LOOP-4"), principal)] == \
        [a["action"] for a in actions_for(slice_store.order_detail(live), principal)]
    for order_id in ("H-LOOP-4", live):
        with pytest.raises(InvalidTransition, match="extended at most once"):
            slice_store.step(order_id, "extension_request", note="再延", days=2, at="2026-10-14 09:00")


def test_an_exported_trail_that_does_not_reach_the_status_is_refused(slice_store, slice_city):
    from jngis.store.bulk import import_history

    layer = _history(slice_city, "H-LOOP-5")
    trail = pd.DataFrame({"order_id": "H-LOOP-5", "action": ["received", "dispatched"],
                          "from_state": [None, "received"], "to_state": ["received", "dispatched"], "who": "导出",
                          "at": [RECEIVED, STEPS[0][1]], "note": None})
    with pytest.raises(SchemaError, match="H-LOOP-5.*stored state differs from the trail"):
        import_history(slice_store, layer, trail=trail)
    trail = pd.concat([trail, pd.DataFrame({"order_id": ["H-LOOP-5"], "action": ["returned"],
                                            "from_state": ["dispatched"], "to_state": ["returned"], "who": "导出",
                                            "at": [T("2026-10-20 09:00")], "note": ["迟退"]})])
    layer["status"] = "returned"
    with pytest.raises(SchemaError, match="H-LOOP-5.*refused by the department loop.*within 2 working days"):
        import_history(slice_store, layer, trail=trail)
    assert "H-LOOP-5" not in set(slice_store.orders_frame(columns=["order_id"])["order_id"])
