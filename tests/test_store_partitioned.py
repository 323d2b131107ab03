"""The PostGIS store with its orders partitioned by month: the store's own tests on it, and the partitions.

A store created with ``orders_partitions="month"`` keeps ``orders`` as a table
``PARTITION BY RANGE (received_at)``, one ``orders_mYYYYMM`` partition per month the
store attaches as the first order of that month is written, the ids unique through
``order_ids``. The tests of tests/test_store.py, test_scope_store.py and
test_import_loop.py that do not pick their backend themselves run here again on such
a store (the fixtures they use are replaced below), so inserts, status changes, the
trail, scopes, the order list and the history import are proven on it; the tests
after them check the partitions themselves.
"""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest
from pgcluster import schema_dsn

# the store's tests, collected again here with the fixtures of this module
from test_grid_tally import (  # noqa: F401
    layers,
    test_a_failed_read_makes_the_next_one_read_every_order,
    test_a_write_that_commits_after_a_later_one_is_not_missed,
    test_the_feed_gives_every_order_then_only_those_written,
    test_the_feed_looks_back_at_recent_numbers,
    test_the_feed_turns_a_bulk_change_into_a_full_read,
    test_the_served_table_follows_writes_reading_only_them,
    test_writes_from_many_threads_are_all_counted,
)
from test_import_loop import (  # noqa: F401
    test_a_history_without_the_visit_is_asked_for_it_as_live,
    test_a_return_and_an_extension_in_an_exported_trail_refuse_a_second_extension_as_live,
    test_an_open_history_order_gets_the_loop_row_a_live_walk_writes,
    test_closed_history_orders_keep_no_loop_row_and_a_refused_trail_writes_nothing,
)
from test_scope_store import (  # noqa: F401
    places,
    test_a_reveal_needs_a_reason_the_right_and_the_scope_and_is_logged,
    test_callers_of_orders_closed_long_ago_are_forgotten_and_that_is_logged,
    test_creation_only_inside_the_scope,
    test_imports_refuse_rows_outside_the_scope,
    test_personal_data_is_masked_by_role_and_never_shown_to_leaders,
    test_reads_are_filtered_to_the_scope,
    test_transitions_need_the_scope_and_the_step,
    world,
)
from test_store import (  # noqa: F401
    fresh_store,
    inside,
    store,
    test_a_failed_transition_writes_nothing,
    test_bad_locations_and_parameters,
    test_concurrent_processes_lose_no_update,
    test_concurrent_threads_lose_no_update,
    test_create_places_the_order_and_sets_its_due_time,
    test_create_with_grids_fills_grid_code,
    test_due_warning_and_overdue_in_working_days,
    test_history_is_imported_with_a_consistent_trail,
    test_layers_and_imports_never_take_personal_data,
    test_listing_and_paging,
    test_orders_frame_columns_and_version,
    test_personal_data_never_leaves_through_a_public_function,
    test_the_whole_loop_and_its_trail,
    test_write_city_replaces_layers_and_keeps_orders,
)

from jngis.errors import ParameterError
from jngis.store import PostGISStore, open_store

D = dt.datetime


def partitioned_store(dsn: str, city) -> str:
    """The URL of a new partitioned store (a schema of its own) holding ``city`` and its orders."""
    url = schema_dsn(dsn)
    with PostGISStore(url, orders_partitions="month") as created:
        created.write_city(city)
    return url


@pytest.fixture(scope="module")
def store_url(postgis_dsn, slice_city):
    return partitioned_store(postgis_dsn, slice_city)


@pytest.fixture
def fresh_url(postgis_dsn, slice_city):
    return partitioned_store(postgis_dsn, slice_city)


@pytest.fixture
def slice_store_url(postgis_dsn, slice_city):
    return partitioned_store(postgis_dsn, slice_city)


@pytest.fixture
def pg_store(fresh_store):  # noqa: F811
    return fresh_store


def _months(orders) -> list[str]:
    return sorted({f"orders_m{t:%Y%m}" for t in orders["received_at"]})


def test_the_history_lands_in_one_partition_a_month(fresh_store, slice_city):  # noqa: F811
    assert fresh_store.orders_partitions == "month"
    assert fresh_store.order_partitions() == _months(slice_city.workorders)
    conn = fresh_store._conn()
    counts = dict(conn.execute("SELECT tableoid::regclass::text, count(*) FROM orders GROUP BY 1").fetchall())
    assert sum(counts.values()) == len(slice_city.workorders)
    for name, count in counts.items():  # each row in the partition of its month
        month = name.removeprefix("orders_m")
        assert count == (slice_city.workorders["received_at"].dt.strftime("%Y%m") == month).sum()
    # a query on a month reads only that month's partition
    plan = "\n".join(r[0] for r in conn.execute(
        "EXPLAIN SELECT count(*) FROM orders WHERE received_at >= '2026-03-01' AND received_at < '2026-04-01'"))
    assert "orders_m202603" in plan and "orders_m202604" not in plan and "orders_m202602" not in plan


def test_an_order_of_a_new_month_gets_its_partition(fresh_store, inside):  # noqa: F811
    before = fresh_store.order_partitions()
    lon, lat, _ = inside[0]
    assert before[-1] == "orders_m202610"  # the history ends in October 2026
    order = fresh_store.create_order(lon, lat, category="环境卫生", who="t", at=D(2026, 12, 2, 9))
    assert fresh_store.order_partitions() == [*before, "orders_m202612"]
    moved = fresh_store.transition(order["order_id"], "dispatched", who="t", at=D(2026, 12, 2, 10))
    assert moved["status"] == "dispatched"
    assert [r["to_state"] for r in fresh_store.trail(order["order_id"])] == ["received", "dispatched"]
    assert fresh_store.list_orders(limit=1)[0]["order_id"] == order["order_id"]  # newest first
    # reopened, the store finds its layout and writes into the same partitions
    with open_store(fresh_store._dsn) as again:
        assert again.orders_partitions == "month"
        again.create_order(lon, lat, category="环境卫生", who="t", at=D(2026, 12, 3, 9))
        assert again.order_partitions() == fresh_store.order_partitions()


def test_an_id_stays_unique_across_partitions(fresh_store, inside, slice_city):  # noqa: F811
    lon, lat, _ = inside[0]
    taken = slice_city.workorders["order_id"].iloc[0]
    with pytest.raises(ParameterError, match=rf"order_id={taken!r} already exists"):
        fresh_store.create_order(lon, lat, category="c", who="t", at=D(2026, 12, 2, 9), order_id=taken)
    assert fresh_store.order_partitions()[-1] == "orders_m202610"  # nothing of it was kept
    # below the store's own check, the database refuses the same id in another month's partition
    other = "2026-06-01 09:00" if not taken.startswith("202606") else "2026-07-01 09:00"
    conn = fresh_store._conn()
    with pytest.raises(psycopg.errors.UniqueViolation, match="order_ids_pkey"):
        conn.execute("INSERT INTO orders (order_id, category, status, received_at) "
                     "VALUES (%s, 'c', 'received', %s)", (taken, other))
    assert conn.execute("SELECT count(*) FROM order_ids").fetchone()[0] == len(slice_city.workorders)


def test_partitions_are_asked_for_when_the_store_is_created(postgis_dsn, slice_city):
    with pytest.raises(ParameterError, match=r"orders_partitions='week'; expected one of \(None, 'month'\)"):
        PostGISStore(schema_dsn(postgis_dsn), orders_partitions="week")
    url = schema_dsn(postgis_dsn)
    with open_store(url) as plain:
        plain.write_city(slice_city)
        assert plain.orders_partitions is None and plain.order_partitions() == []
    with pytest.raises(ParameterError, match=r"holds its orders in one table; expected a new store"):
        PostGISStore(url, orders_partitions="month")


def test_another_stores_orders_further_along_the_search_path_are_not_this_stores(postgis_dsn, slice_city):
    """A new schema first in the search path is a new store, even when a schema after it (another store, or
    public) holds an orders table: the suite's stores in public made every partitioned store here refused."""
    from urllib.parse import parse_qs, quote, urlsplit

    plain = schema_dsn(postgis_dsn)
    with PostGISStore(plain) as other:
        other.write_city(slice_city)
    other_schema = parse_qs(urlsplit(plain).query)["options"][0].split("=")[1].split(",")[0]
    first = schema_dsn(postgis_dsn)
    schema = parse_qs(urlsplit(first).query)["options"][0].split("=")[1].split(",")[0]
    url = f"{postgis_dsn}?options={quote(f'-csearch_path={schema},{other_schema},public')}"
    with PostGISStore(url, orders_partitions="month") as created:
        assert created.orders_partitions == "month"
        created.write_city(slice_city)
    with psycopg.connect(postgis_dsn) as conn:
        kinds = dict(conn.execute("SELECT n.nspname, c.relkind FROM pg_class c JOIN pg_namespace n "
                                  "ON n.oid = c.relnamespace WHERE c.relname = 'orders' AND n.nspname IN (%s, %s)",
                                  (schema, other_schema)).fetchall())
    assert kinds == {schema: "p", other_schema: "r"}
