"""jngis.query: property filters and CQL2 against brute-force pandas, in memory and in the store's SQL."""

from __future__ import annotations

import shutil
import uuid
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import shapely

from jngis.errors import ParameterError
from jngis.features import query_features, queryable_fields, select_features
from jngis.query import ORDER_FIELDS, build_query, mask, parse_filter, parse_sortby, to_sql
from jngis.sample import SLICE_FILE
from jngis.store import open_store

SHAPES = __import__("jngis.sample", fromlist=["SHAPES_DIR"]).SHAPES_DIR


@pytest.fixture(scope="module")
def grids(sample_city):
    return sample_city.grids.to_crs("EPSG:4326")


@pytest.fixture(scope="module")
def fields(grids):
    return queryable_fields(grids, "grids")


def selected(grids, fields, properties=None, text=None, lang=None):
    return grids[mask(build_query(properties or {}, fields, filter=text, filter_lang=lang), grids)]


def test_one_communitys_grids_by_property_filter(grids, fields):
    community = grids["community_code"].iloc[len(grids) // 2]
    got = selected(grids, fields, {"community_code": community})
    assert len(got) and got["grid_code"].tolist() == grids[grids.community_code == community].grid_code.tolist()
    both = selected(grids, fields, {"community_code": community, "grid_type": "residential"})
    expected = grids[(grids.community_code == community) & (grids.grid_type == "residential")]
    assert both.grid_code.tolist() == expected.grid_code.tolist()
    typed = selected(grids, fields, {"households": str(int(grids.households.iloc[0]))})
    assert typed.grid_code.tolist() == grids[grids.households == grids.households.iloc[0]].grid_code.tolist()


# CQL2 text cases in the shape of the OGC CQL2 specification's examples, on our columns.
CASES = [
    ("households > 400", lambda g: g.households > 400),
    ("households >= 300 AND households <= 500", lambda g: g.households.between(300, 500)),
    ("households BETWEEN 300 AND 500", lambda g: g.households.between(300, 500)),
    ("households NOT BETWEEN 300 AND 500", lambda g: ~g.households.between(300, 500)),
    ("grid_type = 'dedicated' OR households < 200", lambda g: (g.grid_type == "dedicated") | (g.households < 200)),
    ("NOT (grid_type = 'residential')", lambda g: g.grid_type != "residential"),
    ("grid_type <> 'residential'", lambda g: g.grid_type != "residential"),
    ("grid_code LIKE '37010200%'", lambda g: g.grid_code.str.startswith("37010200")),
    ("grid_code LIKE '%01'", lambda g: g.grid_code.str.endswith("01")),
    ("grid_code NOT LIKE '%01'", lambda g: ~g.grid_code.str.endswith("01")),
    ("grid_type IN ('dedicated')", lambda g: g.grid_type == "dedicated"),
    ("households IN (300, 301, 302)", lambda g: g.households.isin([300, 301, 302])),
    ("grid_type NOT IN ('dedicated')", lambda g: g.grid_type != "dedicated"),
    ("area_m2 IS NULL", lambda g: g.area_m2.isna()),
    ("area_m2 IS NOT NULL", lambda g: g.area_m2.notna()),
    ("households > 300 AND (grid_type = 'dedicated' OR workers_needed >= 2)",
     lambda g: (g.households > 300) & ((g.grid_type == "dedicated") | (g.workers_needed >= 2))),
]


@pytest.mark.parametrize("text, expected", CASES, ids=[c[0] for c in CASES])
def test_cql2_text_against_pandas(grids, fields, text, expected):
    got = selected(grids, fields, text=text)
    assert got.grid_code.tolist() == grids[expected(grids).to_numpy()].grid_code.tolist()


def test_cql2_json_is_the_same_query(grids, fields):
    text = "households > 300 AND grid_type = 'residential'"
    json = {"op": "and", "args": [{"op": ">", "args": [{"property": "households"}, 300]},
                                  {"op": "=", "args": [{"property": "grid_type"}, "residential"]}]}
    assert selected(grids, fields, text=json, lang="cql2-json").equals(selected(grids, fields, text=text))


def test_s_intersects_with_wkt_and_bbox(grids, fields):
    west, south, east, north = grids.total_bounds
    box = shapely.box(west, south, (west + east) / 2, (south + north) / 2)
    expected = grids[grids.intersects(box)].grid_code.tolist()
    assert 0 < len(expected) < len(grids)
    assert selected(grids, fields, text=f"S_INTERSECTS(geometry, {box.wkt})").grid_code.tolist() == expected
    bbox = f"S_INTERSECTS(geometry, BBOX({west}, {south}, {(west + east) / 2}, {(south + north) / 2}))"
    assert selected(grids, fields, text=bbox).grid_code.tolist() == expected
    point = grids.geometry.iloc[3].representative_point()
    hit = selected(grids, fields, text=f"S_INTERSECTS(geometry, POINT({point.x} {point.y}))")
    assert grids.grid_code.iloc[3] in hit.grid_code.tolist()


@pytest.fixture(scope="module")
def orders(sample_city):
    return sample_city.workorders.to_crs("EPSG:4326")


@pytest.mark.parametrize("text, expected", [
    ("T_AFTER(received_at, TIMESTAMP('2026-06-01T00:00:00Z'))", lambda t: t > pd.Timestamp("2026-06-01 08:00")),
    ("received_at T_BEFORE TIMESTAMP('2026-03-01T00:00:00+08:00')", lambda t: t < pd.Timestamp("2026-03-01")),
    ("T_INTERSECTS(received_at, INTERVAL('2026-05-01T00:00:00+08:00', '2026-05-31T23:59:59+08:00'))",
     lambda t: (t >= pd.Timestamp("2026-05-01")) & (t <= pd.Timestamp("2026-05-31 23:59:59"))),
    ("T_DURING(received_at, INTERVAL('2026-05-01T00:00:00+08:00', '2026-06-01T00:00:00+08:00'))",
     lambda t: (t > pd.Timestamp("2026-05-01")) & (t < pd.Timestamp("2026-06-01"))),
    ("received_at >= TIMESTAMP('2026-05-01T00:00:00+08:00') AND received_at < DATE('2026-06-01')",
     lambda t: (t >= pd.Timestamp("2026-05-01")) & (t < pd.Timestamp("2026-06-01"))),
])
def test_temporal_predicates_against_pandas(orders, text, expected):
    fields = queryable_fields(orders, "workorders")
    got = orders[mask(build_query({}, fields, filter=text), orders)]
    want = orders[expected(orders.received_at).to_numpy()]
    assert len(want) and got.order_id.tolist() == want.order_id.tolist()


def test_sortby_and_paging_keep_the_filter(grids, fields):
    query = build_query({"grid_type": "residential"}, fields)
    order = parse_sortby("-households,+grid_code", fields)
    page = query_features(grids, "grids", query=query, sortby=order, limit=5, offset=5)
    expected = grids[grids.grid_type == "residential"].sort_values(["households", "grid_code"],
                                                                    ascending=[False, True], kind="mergesort")
    assert [f["id"] for f in page.features] == expected.grid_code.iloc[5:10].tolist()
    assert page.number_matched == len(expected)
    assert len(select_features(grids, "grids", query=query)) == len(expected)


@pytest.mark.parametrize("text, message", [
    ("caller_phone = '13800000000'", "not queryable"),
    ("households = 'many'", "not a integer"),
    ("S_CONTAINS(geometry, POINT(117 36))", "not supported"),
    ("upper(grid_type) = 'X'", "not supported"),
    ("grid_code LIKE 5", "text properties"),
    ("households >", "not valid cql2-text"),
    ("T_AFTER(households, TIMESTAMP('2026-01-01T00:00:00Z'))", "date-time properties"),
    ("S_INTERSECTS(geometry, POINT(500 36))", "CRS84"),
    ("NOT (" * 3000 + "households > 1" + ")" * 3000, "filter"),
    ("households > 1 OR " * 2000 + "households > 1", "characters long"),
])
def test_unsupported_or_wrong_filters_name_the_problem(fields, text, message):
    with pytest.raises(ParameterError, match=message):
        build_query({}, fields, filter=text)


INJECTIONS = ["x' OR '1'='1", "'; DROP TABLE orders; --", "x\\' OR 1=1 --", "370102%' OR grid_code LIKE '%"]


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_in_values_stays_a_value(value):
    query = build_query({"grid_code": value}, ORDER_FIELDS, filter="status = 'closed' OR category = 'x'")
    sql, params = to_sql(query)
    assert value in params and value not in sql and "DROP" not in sql


@pytest.mark.parametrize("text", [
    "grid_code = 'x'; DROP TABLE orders",
    "\"grid_code; DROP TABLE orders\" = 'x'",
    "grid_code = 'x' OR 1=1",
    "1 = 1",
])
def test_injection_in_cql2_text_is_refused(text):
    with pytest.raises(ParameterError):
        to_sql(build_query({}, ORDER_FIELDS, filter=text))


def test_string_literals_are_parameters(store_slice):
    quoted = "status = 'closed'' OR ''1''=''1'"  # a doubled quote inside a literal
    try:
        query = build_query({}, ORDER_FIELDS, filter=quoted)
    except ParameterError:
        return  # refused is as good as bound
    assert store_slice.count_orders(query=query) == 0


def _pg_url(dsn: str) -> str:
    import psycopg

    schema = f"q_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{dsn}{'&' if '?' in dsn else '?'}options={quote(f'-csearch_path={schema},public')}"


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def store_slice(request, tmp_path_factory, slice_city):
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("q") / "city.gpkg"
        shutil.copy(SHAPES / SLICE_FILE, path)
        url = str(path)
    else:
        url = _pg_url(request.getfixturevalue("postgis_dsn"))
        with open_store(url) as store:
            store.write_city(slice_city)
    with open_store(url) as store:
        yield store


SQL_CASES = [
    "status = 'closed'",
    "status IN ('received', 'dispatched') AND category LIKE '%'",
    "T_AFTER(received_at, TIMESTAMP('2026-06-01T00:00:00+08:00'))",
    "received_at BETWEEN TIMESTAMP('2026-05-01T00:00:00+08:00') AND TIMESTAMP('2026-05-31T23:59:59+08:00')",
    "NOT (status = 'closed') AND resolved_at IS NULL",
    "satisfied = TRUE OR extended_days > 0",
    "grid_code IS NULL OR grid_code LIKE '3701%'",
]


@pytest.mark.parametrize("text", SQL_CASES)
def test_store_sql_matches_pandas(store_slice, text):
    frame = store_slice.orders_frame().to_crs("EPSG:4326")
    query = build_query({}, ORDER_FIELDS, filter=text)
    want = sorted(frame[mask(query, frame)].order_id)
    got = sorted(o["order_id"] for o in store_slice.list_orders(query=query, limit=10_000))
    assert got == want and store_slice.count_orders(query=query) == len(want)


def test_store_s_intersects_and_sortby(store_slice):
    frame = store_slice.orders_frame().to_crs("EPSG:4326")
    west, south, east, north = frame.total_bounds
    box = shapely.box(west, south, (west + east) / 2, north)
    query = build_query({}, ORDER_FIELDS, filter=f"S_INTERSECTS(geometry, {box.wkt})")
    want = frame[frame.intersects(box)]
    assert 0 < len(want) < len(frame)
    listed = store_slice.list_orders(query=query, limit=10_000, sortby=[("category", True)])
    assert sorted(o["order_id"] for o in listed) == sorted(want.order_id)
    categories = [o["category"] for o in listed]
    assert categories == sorted(categories)


def test_parse_filter_refuses_other_languages():
    with pytest.raises(ParameterError, match="filter-lang"):
        parse_filter("a = 1", "ecql")
    assert np.all(mask(None, pd.DataFrame({"a": [1, 2]})))
