"""Feature queries over HTTP: unknown parameters on every route, property filters, CQL2, queryables, downloads."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import pandas as pd

from jngis.codes import LABELS

SAMPLE_PATH_VALUES = {"collection_id": "grids", "kind": "grids", "layer": "grids", "z": "10", "x": "843",
                      "y": "387", "feature_id": "x", "order_id": "20260101000001", "code": "370102"}


def test_every_get_route_refuses_an_unknown_parameter(client):
    paths = client.get("/openapi.json").json()["paths"]
    checked = []
    for path, operations in paths.items():
        if "get" not in operations:
            continue
        url = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES.get(m.group(1), "1"), path)
        response = client.get(url, params={"zz_unknown": "1"})
        assert response.status_code == 400, (path, response.status_code, response.text[:200])
        detail = response.json()["detail"]
        assert "'zz_unknown'" in detail and "takes" in detail, (path, detail)
        declared = [p["name"] for p in operations["get"].get("parameters", []) if p["in"] == "query"]
        assert all(name in detail for name in declared), (path, detail)
        checked.append(path)
    assert {"/workorders", "/collections/{collection_id}/items", "/healthz"} <= set(checked)
    assert any("tiles" in path for path in checked)


def test_the_viewer_page_and_static_files_are_not_checked(client):
    assert client.get("/?utm_source=x", headers={"Accept": "text/html"}).status_code == 200
    assert client.get("/static/index.html?v=3").status_code == 200


def test_workorders_take_the_layer_names(client):
    everything = client.get("/workorders", params={"limit": 1}).json()["total"]
    one = client.get("/workorders", params={"limit": 1}).json()["orders"][0]
    by_grid = client.get("/workorders", params={"grid_code": one["grid_code"], "limit": 1000}).json()
    assert 0 < by_grid["total"] < everything
    assert {o["grid_code"] for o in by_grid["orders"]} == {one["grid_code"]}
    alias = client.get("/workorders", params={"grid": one["grid_code"], "limit": 1000}).json()
    assert alias["total"] == by_grid["total"]
    misspelt = client.get("/workorders", params={"grid_cod": one["grid_code"]})
    assert misspelt.status_code == 400 and "grid_code" in misspelt.json()["detail"]
    community = client.get("/workorders", params={"community_code": one["community_code"],
                                                   "category": one["category"], "limit": 1000}).json()
    assert community["total"] and all(o["community_code"] == one["community_code"]
                                      and o["category"] == one["category"] for o in community["orders"])


def test_workorders_received_at_and_cql2(client):
    listed = client.get("/workorders", params={"limit": 1000}).json()["orders"]
    times = pd.to_datetime([o["received_at"] for o in listed])
    month = times[0].strftime("%Y-%m")
    start, end = f"{month}-01T00:00:00+08:00", (pd.Timestamp(f"{month}-01") + pd.offsets.MonthBegin(1))
    window = f"{start}/{end.strftime('%Y-%m-%d')}T00:00:00+08:00"
    got = client.get("/workorders", params={"received_at": window, "limit": 1000}).json()
    expected = sum((times >= pd.Timestamp(f"{month}-01")) & (times <= end))
    assert got["total"] == expected > 0
    cql = client.get("/workorders", params={"filter": "status IN ('closed','resolved') AND category LIKE '%'",
                                            "sortby": "+category", "limit": 1000}).json()
    assert cql["total"] == sum(o["status"] in ("closed", "resolved") for o in listed)
    assert [o["category"] for o in cql["orders"]] == sorted(o["category"] for o in cql["orders"])
    bad = client.get("/workorders", params={"filter": "caller_phone = '1'"})
    assert bad.status_code in (400, 422) and "not queryable" in bad.json()["detail"]


def test_workorders_answer_a_bad_filter_with_400(client):
    # as the collections do (OGC API Features Part 3); a bad status or limit stays a 422
    for bad, named in (({"filter": "caller_phone = '1'"}, "not queryable"), ({"filter": "status ="}, "filter"),
                       ({"filter-lang": "sql", "filter": "status = 'closed'"}, "filter-lang"),
                       ({"filter-lang": "sql"}, "filter-lang"), ({"sortby": "caller_phone"}, "sortby"),
                       ({"received_at": "yesterday"}, "datetime"), ({"card": "green"}, "card")):
        response = client.get("/workorders", params=bad)
        assert response.status_code == 400 and named in response.json()["detail"], (bad, response.text)
    assert client.get("/workorders", params={"status": "lost"}).status_code == 422
    cql_text = client.get("/workorders", params={"filter": "status = 'closed'", "filter-lang": "cql-text"})
    assert cql_text.status_code == 200  # GDAL's name for CQL2 text


def _all_orders(client, **params) -> list[dict]:
    orders, offset = [], 0
    while True:
        page = client.get("/workorders", params={**params, "limit": 1000, "offset": offset}).json()
        orders += page["orders"]
        offset += 1000
        if offset >= page["total"]:
            return orders


def test_workorders_card_filter_is_the_deadline_colour(client):
    everything = _all_orders(client)
    for card, deadline in (("red", "overdue"), ("yellow", "warning")):
        shown = _all_orders(client, card=card)
        assert {o["order_id"] for o in shown} == {o["order_id"] for o in everything if o["deadline"] == deadline}
    both = client.get("/workorders", params={"card": "yellow,red", "limit": 1}).json()["total"]
    assert both == sum(o["deadline"] in ("overdue", "warning") for o in everything) > 0


def test_workorders_department_code_filter(store_file, settings_for, auth):
    from fastapi.testclient import TestClient

    from jngis.server.app import create_app
    from jngis.store import open_store

    store = open_store(str(store_file))
    store.load_sample_departments()
    taken = store.list_orders(limit=3)
    received = [store.create_order(o["lon"], o["lat"], crs="wgs84", category=o["category"], who="test")
                for o in taken]
    sent = [store.step(o["order_id"], "dispatched", department_code="catalogue")["department_code"]
            for o in received]
    department = sent[0]
    expected = {o["order_id"] for o, code in zip(received, sent) if code == department}
    with TestClient(create_app(settings_for(store_file)), headers=auth) as client:  # orders need a sign-in
        by_name = client.get("/workorders", params={"department_code": department, "limit": 1000}).json()
        by_cql = client.get("/workorders", params={"filter": f"department_code = '{department}'"}).json()
        none = client.get("/workorders", params={"department_code": "370102-' OR 1=1 --"}).json()
    assert {o["order_id"] for o in by_name["orders"]} == expected == {o["order_id"] for o in by_cql["orders"]}
    assert none["total"] == 0


def test_items_property_filters_filter_and_links(client):
    grids = client.get("/collections/grids/items", params={"limit": 1000}).json()["features"]
    community = grids[0]["properties"]["community_code"]
    expected = [g["id"] for g in grids if g["properties"]["community_code"] == community]
    page = client.get("/collections/grids/items", params={"community_code": community, "limit": 2}).json()
    assert page["numberMatched"] == len(expected) and [f["id"] for f in page["features"]] == expected[:2]
    if len(expected) > 2:
        follow = client.get(next(link["href"] for link in page["links"] if link["rel"] == "next")).json()
        assert f"community_code={community}" in next(link["href"] for link in page["links"] if link["rel"] == "next")
        assert [f["id"] for f in follow["features"]] == expected[2:4]
    cql = client.get("/collections/grids/items", params={
        "filter": f"community_code = '{community}' AND households > 0", "filter-lang": "cql2-text",
        "sortby": "-households", "properties": "households", "limit": 1000}).json()
    households = [f["properties"]["households"] for f in cql["features"]]
    assert households == sorted(households, reverse=True) and set(cql["features"][0]["properties"]) == {
        "households"}
    for bad in ({"filter": "S_CONTAINS(geometry, POINT(117 36))"}, {"sortby": "colour"},
                {"households": "many"}, {"filter": "households >"}, {"filter-crs": "EPSG:4326", "filter": "a=1"}):
        response = client.get("/collections/grids/items", params=bad)
        assert response.status_code == 400, (bad, response.text)


def test_queryables_are_a_json_schema_qgis_reads(client):
    response = client.get("/collections/grids/queryables")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/schema+json")
    schema = response.json()
    assert schema["$schema"].startswith("https://json-schema.org/") and schema["type"] == "object"
    assert schema["$id"].endswith("/collections/grids/queryables")
    assert schema["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
    assert schema["properties"]["grid_code"]["x-ogc-role"] == "id"
    assert schema["properties"]["households"]["type"] == "integer"
    orders = client.get("/collections/workorders/queryables").json()["properties"]
    assert orders["received_at"] == {"type": "string", "format": "date-time", "x-ogc-role": "primary-instant",
                                     "title": LABELS["received_at"]}
    assert not {"caller_name", "caller_phone", "description"} & set(orders)
    links = client.get("/collections/grids").json()["links"]
    assert any(link["rel"].endswith("/queryables") for link in links)


def test_csv_and_xlsx_downloads_of_a_filtered_collection(client):
    grids = client.get("/collections/grids/items", params={"limit": 1000}).json()["features"]
    community = grids[0]["properties"]["community_code"]
    expected = [g["id"] for g in grids if g["properties"]["community_code"] == community]
    csv = client.get("/collections/grids/items", params={"community_code": community, "f": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    table = pd.read_csv(io.StringIO(csv.content.decode("utf-8-sig")), dtype=str)
    assert table[LABELS["grid_code"]].tolist() == expected
    assert "网格类型" in table.columns and "caller_phone" not in table.columns
    xlsx = client.get("/collections/stations/items", params={"f": "xlsx"})
    assert xlsx.status_code == 200 and "spreadsheetml" in xlsx.headers["content-type"]
    sheet = pd.read_excel(io.BytesIO(xlsx.content))
    assert {"名称", "经度", "纬度"} <= set(sheet.columns)
    assert len(sheet) == client.get("/collections/stations/items").json()["numberMatched"]


def _requested(log, since: int) -> list[str]:
    """The request lines uvicorn logged after ``since`` characters of its log, URL-decoded."""
    from urllib.parse import unquote

    return [unquote(line) for line in log.read_text()[since:].splitlines() if '"GET ' in line]


def test_gdal_oapif_sends_the_where_clause_to_the_server(module_store, live_server, require_tool, tmp_path):
    # GDAL finds each collection's queryables and filter-lang (cql-text) among the query
    # parameters of /collections/{id}/items in openapi.json and sends -where as filter=;
    # the server's access log shows it, and the server's answer is the right one.
    import pyogrio

    require_tool("OAPIF" in pyogrio.list_drivers(), "GDAL's OAPIF driver", "a GDAL built with curl")
    require_tool(shutil.which("ogrinfo") is not None, "GDAL's ogrinfo", "apt-get install gdal-bin")
    log = tmp_path / "access.log"
    with live_server(module_store, access_log=log) as live:
        grids = pyogrio.read_dataframe(f"OAPIF:{live.url}/collections/grids")
        community = grids["community_code"].iloc[0]
        expected = grids[(grids.community_code == community) & (grids.households > 100)]
        where = f"community_code = '{community}' AND households > 100"
        since = len(log.read_text())
        picked = pyogrio.read_dataframe(f"OAPIF:{live.url}/collections/grids", where=where)
        sent = [line for line in _requested(log, since) if "/collections/grids/items?" in line]
        assert sorted(picked["grid_code"]) == sorted(expected["grid_code"]) and 0 < len(picked) < len(grids)
        assert any(f"filter=(community_code = '{community}') AND (households > 100)" in line
                   and "filter-lang=cql-text" in line for line in sent), sent
        assert not any("filter" not in line and "limit=1000" in line for line in sent), sent  # no full read

        since = len(log.read_text())
        info = subprocess.run(["ogrinfo", "-ro", "-al", "-so", "-where", where, f"OAPIF:{live.url}/collections/grids"],
                              capture_output=True, text=True, timeout=120, check=True).stdout
        assert f"Feature Count: {len(expected)}" in info
        assert any("filter=(community_code" in line for line in _requested(log, since))
