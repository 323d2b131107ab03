"""The sample's department-loop history (jngis.workorders.synthetic): steps the state table accepts; calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jngis.errors import SchemaError
from jngis.workorders import CALENDAR, DEFAULT_RULES, check_trail, plan_step, sample_departments, synthetic_trail
from jngis.workorders.synthetic import CALL_HISTORY_COLUMNS, LOOP_HISTORY_COLUMNS, synthetic_calls, synthetic_loop

NOW = pd.Timestamp("2026-10-31 18:00")


@pytest.fixture(scope="module")
def history(slice_city):
    orders = pd.DataFrame(slice_city.workorders.drop(columns="geometry"))
    # the slice's ~600 orders and their loop times, with more red cards supervised so every path is seen
    return orders.join(synthetic_loop(orders, seed=2026, now=NOW, supervised_share=1.0))


def _replay(order_row, rows):
    """Take each trail row through plan_step as a store would; return the state reached."""
    order = {"order_id": order_row.order_id, "status": "received", "category": order_row.category,
             "dispatched_at": None, "due_at": None, "warn_at": None, "extended_days": None,
             "updated_at": order_row.received_at}
    loop: dict = {}
    pending = list(rows.itertuples(index=False))[1:]  # the first row is the creation
    while pending:
        row = pending.pop(0)
        options = {"level": row.note} if row.action == "callback" else {}
        note = None if row.action == "callback" else row.note
        changes, loop_changes, written = plan_step(order, loop, row.action, who=row.who, at=row.at, note=note,
                                                   **options)
        assert [w["action"] for w in written][0] == row.action and written[0]["to_state"] == row.to_state
        for extra in written[1:]:  # a not-satisfied callback plans its re-handling in the same step
            following = pending.pop(0)
            assert (following.action, following.at) == (extra["action"], extra["at"])
        order.update(changes)
        loop.update(loop_changes)
    return order["status"], loop


def test_every_step_is_one_the_state_table_and_its_rules_accept(history):
    trail = synthetic_trail(history)
    actions = set(trail["action"])
    assert {"sign", "contact", "on_site", "supervise", "reply", "callback", "rehandle", "verify"} <= actions
    assert "in_progress" not in actions and "resolved" not in actions  # the loop's steps replace them
    assert check_trail(history, trail).empty
    assert trail.groupby("order_id")["at"].apply(lambda s: s.is_monotonic_increasing).all()
    for order in history.itertuples(index=False):
        rows = trail[trail["order_id"] == order.order_id]
        state, loop = _replay(order, rows)
        assert state == order.status
        if order.status in ("resolved", "closed"):
            assert loop["replied_at"] == order.resolved_at


def test_the_figures_are_realistic_and_follow_the_rules(history):
    handled = history[history["status"].isin(["in_progress", "resolved", "closed"])]
    assert handled["signed_at"].notna().all() and history["signed_at"].notna().sum() == len(handled)
    limit = CALENDAR.add_working_hours(pd.DatetimeIndex(handled["dispatched_at"]), DEFAULT_RULES.sign_working_hours)
    emergency = handled["category"].isin(list(DEFAULT_RULES.emergency_categories)).to_numpy()
    clock = handled["dispatched_at"] + pd.Timedelta(hours=DEFAULT_RULES.sign_working_hours)
    on_time = np.where(emergency, handled["signed_at"] <= clock, handled["signed_at"].to_numpy() <= limit)
    assert 0.75 < on_time.mean() < 0.98  # most within the hour, some late
    supervised = history[history["supervised_at"].notna()]
    assert len(supervised) and (supervised["supervised_at"] > supervised["due_at"]).all()  # red cards only
    # the first answer is the sample's own: 不满意 exactly where satisfied is False, re-handled
    closed = history[history["status"] == "closed"]
    assert (closed["callback"].eq("not_satisfied") == closed["satisfied"].eq(False)).all()
    assert (closed["rehandled_at"].notna() == closed["satisfied"].eq(False)).all()
    assert set(closed["callback"]) == {"satisfied", "basically_satisfied", "not_satisfied"}
    verified = closed["category"].isin(list(DEFAULT_RULES.verify_categories))
    assert closed["verified_at"].notna().equals(verified)


def test_the_history_is_deterministic_with_the_seed(history):
    orders = history.drop(columns=list(LOOP_HISTORY_COLUMNS))
    again = synthetic_loop(orders, seed=2026, now=NOW, supervised_share=1.0)
    pd.testing.assert_frame_equal(again, history[list(LOOP_HISTORY_COLUMNS)])
    other = synthetic_loop(orders, seed=7, now=NOW, supervised_share=1.0)
    assert not other["signed_at"].equals(again["signed_at"])
    # without the loop's columns the trail is the hotline's own, as before
    assert "sign" not in set(synthetic_trail(orders)["action"])


def test_loop_times_out_of_order_are_refused(history):
    broken = history.copy()
    first = broken.index[broken["status"] == "closed"][0]
    broken.loc[first, "contacted_at"] = broken.loc[first, "signed_at"] - pd.Timedelta("1min")
    with pytest.raises(SchemaError, match="contacted_at is not after its signed_at"):
        synthetic_trail(broken)
    unanswered = history.copy()
    unanswered.loc[first, "callback"] = None
    with pytest.raises(SchemaError, match="no callback answer"):
        synthetic_trail(unanswered)


def test_calls_of_the_streets_with_ratings():
    streets = pd.DataFrame({"street_code": ["370102001", "370102002", "370113001"],
                            "district_code": ["370102", "370102", "370113"]})
    departments = sample_departments(pd.DataFrame({"district_code": ["370102", "370113"],
                                                   "name": ["历下区", "长清区"]}))
    calls = synthetic_calls(streets, departments, start="2025-11-01", end=NOW, seed=2026)
    assert list(calls.columns) == list(CALL_HISTORY_COLUMNS)
    assert 40 < calls["call_id"].nunique() < 120 and calls["order_id"].isna().all()  # about 2 a month each
    serving = dict(zip(departments["code"], departments["districts"]))
    district = calls["street_code"].str[:6]
    assert all(d in serving[code] for d, code in zip(district, calls["department_code"]))
    assert not calls.duplicated(["call_id", "department_code"]).any()
    reached = calls.dropna(subset=["done_at"])
    for before, after in (("called_at", "signed_at"), ("signed_at", "contacted_at"), ("contacted_at", "done_at")):
        assert (reached[after] > reached[before]).all()
    rated = calls[calls["rating"].notna()]
    assert rated["rating"].between(1, 5).all() and (rated["rated_at"] > rated["done_at"]).all()
    assert rated["rating"].nunique() >= 3 and (rated["rated_at"] < NOW).all()
    assert calls["rating"].isna().any()  # the last calls are not done (or rated) yet
    pd.testing.assert_frame_equal(calls, synthetic_calls(streets, departments, start="2025-11-01", end=NOW,
                                                         seed=2026))
    with pytest.raises(SchemaError, match="is not before end"):
        synthetic_calls(streets, departments, start=NOW, end="2025-11-01")


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_a_store_imports_the_loop_history_and_the_sample_calls(kind, history, slice_city, tmp_path, request):
    import dataclasses

    from pgcluster import schema_dsn

    from jngis.evaluation import evaluate_store
    from jngis.layers import write_city
    from jngis.store import open_store

    layer = slice_city.workorders.join(history[list(LOOP_HISTORY_COLUMNS)])
    city = dataclasses.replace(slice_city, workorders=layer)
    if kind == "sqlite":
        url = str(tmp_path / "city.gpkg")
        write_city(city, url)  # the history is imported when the store first opens
    else:
        url = schema_dsn(request.getfixturevalue("postgis_dsn"))
        with open_store(url) as store:
            store.write_city(city)
    with open_store(url) as store:
        assert store.load_sample_departments() > 0
        written = store.load_sample_calls()
        assert written > 10 and store.load_sample_calls() == 0  # once
        trail = store.trail_frame()
        pd.testing.assert_frame_equal(
            trail[["order_id", "action", "to_state"]].reset_index(drop=True),
            synthetic_trail(history)[["order_id", "action", "to_state"]].reset_index(drop=True),
            check_dtype=False)
        calls = store.calls_frame()
        assert calls["call_id"].nunique() == written and calls["rating"].notna().sum() > 0
        report, _ = evaluate_store(store, period="2026-10", level="department", minimum=1)
    totals = report.totals
    assert totals["signed"] > 0 and 0 < totals["signed_on_time"] <= totals["signed"]
    assert totals["rehandled"] > 0
