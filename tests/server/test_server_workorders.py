"""/workorders: reports placed at once, the closed loop over HTTP, tokens, and privacy."""

from __future__ import annotations

import pytest
import shapely
from fastapi.testclient import TestClient

from jngis.crs import WGS84, wgs84_to_bd09, wgs84_to_gcj02
from jngis.server.app import create_app

CALLER = {"name": "李隐私", "phone": "13712345678"}


@pytest.fixture(scope="module")
def grids_wgs84(city_file):
    from jngis.layers import read_layer

    # the pristine file: GDAL's own SQLite must never open the store file the app holds open
    return read_layer(city_file, "grids").to_crs(WGS84)


@pytest.fixture(scope="module")
def spot(grids_wgs84):
    """A point well inside one grid (lon, lat, grid_code)."""
    grid = grids_wgs84.iloc[3]
    point = grid.geometry.representative_point()
    return point.x, point.y, grid.grid_code


def report(lon, lat, **extra):
    return {"lon": lon, "lat": lat, "category": "环境卫生", "description": "楼道堆物", **extra}


def test_a_report_is_placed_in_its_grid_at_once(client, auth, spot):
    lon, lat, grid_code = spot
    response = client.post("/workorders", json=report(lon, lat, caller=CALLER), headers=auth)
    assert response.status_code == 201
    order = response.json()
    assert order["grid_code"] == grid_code
    assert order["community_code"] == grid_code[:12]
    assert order["street_code"] == grid_code[:9]
    assert order["district_code"] == grid_code[:6]
    assert order["status"] == "received" and order["due_at"] > order["received_at"]
    assert response.headers["location"].endswith(f"/workorders/{order['order_id']}")
    assert "13712345678" not in response.text and "李隐私" not in response.text


@pytest.mark.parametrize("crs, convert", [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)])
def test_consumer_map_coordinates_are_converted_before_placing(client, auth, spot, crs, convert):
    lon, lat, grid_code = spot
    shifted = convert(lon, lat)
    order = client.post("/workorders", json=report(float(shifted[0]), float(shifted[1]), crs=crs),
                        headers=auth).json()
    assert order["grid_code"] == grid_code
    assert order["lon"] == pytest.approx(lon, abs=2e-5) and order["lat"] == pytest.approx(lat, abs=2e-5)


def test_a_report_may_be_given_in_cgcs2000(client, auth, spot):
    """Official data is in CGCS2000 (jngis.codes.INPUT_CRS_NAMES); the server used to refuse it."""
    from jngis.codes import INPUT_CRS_NAMES

    lon, lat, grid_code = spot
    response = client.post("/workorders", json=report(lon, lat, crs="cgcs2000"), headers=auth)
    assert response.status_code == 201, response.text
    assert response.json()["grid_code"] == grid_code
    schema = client.get("/openapi.json").json()["components"]["schemas"]["Report"]["properties"]["crs"]
    assert schema["enum"] == list(INPUT_CRS_NAMES)


def test_writes_need_the_token(anonymous, spot):
    lon, lat, _ = spot
    missing = anonymous.post("/workorders", json=report(lon, lat))
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    wrong = anonymous.post("/workorders", json=report(lon, lat), headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    basic = anonymous.post("/workorders", json=report(lon, lat), headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401
    step = anonymous.post("/workorders/20260101000001/transitions", json={"to": "dispatched"})
    assert step.status_code == 401


def test_without_a_configured_token_there_is_no_bootstrap_administrator(module_store, settings_for, spot):
    app = create_app(settings_for(module_store, write_token=None))
    with TestClient(app) as client:
        response = client.post("/workorders", json=report(*spot[:2]),
                               headers={"Authorization": "Bearer anything"})
        assert response.status_code == 401 and "not valid" in response.json()["detail"]
        assert client.get("/layers").json()["writes"] is False


@pytest.mark.parametrize("body, status, message", [
    (report(117.15, 36.69, crs="epsg4326"), 422, "crs"),
    (report(100.0, 20.0), 422, "outside every district"),
    (report(117.15, 95.0), 422, "lat=95.0"),
    (report("east", 36.69), 422, "lon"),
    ({"lon": 117.15, "lat": 36.69}, 422, "category"),
    (report(117.15, 36.69, category=""), 422, "category"),
    (report(117.15, 36.69, caller={"name": "x", "id_card": "1"}), 422, "id_card"),
    (report(117.15, 36.69, priority="high"), 422, "priority"),
])
def test_bad_reports_are_refused_with_a_message(client, auth, body, status, message):
    response = client.post("/workorders", json=body, headers=auth)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_the_closed_loop_over_http(client, auth, spot):
    order = client.post("/workorders", json=report(*spot[:2]), headers=auth).json()
    url = f"/workorders/{order['order_id']}/transitions"
    for step in ("dispatched", "in_progress", "resolved"):
        moved = client.post(url, json={"to": step}, headers=auth)
        assert moved.status_code == 200, moved.text
        assert client.get(f"{url[:-len('/transitions')]}/trail").json()["trail"][-1]["who"] == "admin"
    assert moved.json()["status"] == "resolved" and moved.json()["resolved_at"]
    refused = client.post(url, json={"to": "dispatched"}, headers=auth)
    assert refused.status_code == 409
    assert "allowed next: closed, reopened" in refused.json()["detail"]
    no_reason = client.post(url, json={"to": "reopened"}, headers=auth)
    assert no_reason.status_code == 422 and "note" in no_reason.json()["detail"]
    reopened = client.post(url, json={"to": "reopened", "note": "居民反映仍未解决"}, headers=auth)
    assert reopened.json()["status"] == "in_progress"
    assert client.get(f"/workorders/{order['order_id']}").json()["status"] == "in_progress"
    named = client.post(url, json={"to": "resolved", "who": "派单员"}, headers=auth)
    assert named.status_code == 422 and "who" in named.json()["detail"]  # the actor is the principal


def test_unknown_orders_are_404(client, auth):
    assert client.get("/workorders/19990101000001").status_code == 404
    missing = client.post("/workorders/19990101000001/transitions", json={"to": "dispatched"}, headers=auth)
    assert missing.status_code == 404 and "19990101000001" in missing.json()["detail"]
    assert client.post("/workorders/x/transitions", json={"to": "flying"}, headers=auth).status_code in (404, 422)


def test_listing_filters_by_grid_status_and_overdue(client, auth, spot):
    lon, lat, grid_code = spot
    created = client.post("/workorders", json=report(lon, lat), headers=auth).json()
    listed = client.get("/workorders", params={"grid": grid_code, "status": "received"}).json()
    assert created["order_id"] in [o["order_id"] for o in listed["orders"]]
    assert all(o["grid_code"] == grid_code and o["status"] == "received" for o in listed["orders"])
    assert listed["total"] >= len(listed["orders"])
    overdue = client.get("/workorders", params={"overdue": "true", "limit": 50}).json()
    assert overdue["total"] > 0
    assert all(o["deadline"] == "overdue" for o in overdue["orders"])
    page = client.get("/workorders", params={"limit": 2, "offset": 1}).json()
    assert len(page["orders"]) == 2 and page["offset"] == 1


@pytest.mark.parametrize("query", ["status=lost", "limit=0", "limit=5000", "overdue=maybe", "offset=-3",
                                   "offset=9223372036854775808", "offset=1000000001"])
def test_bad_list_queries_are_422(client, query):
    response = client.get(f"/workorders?{query}")
    assert response.status_code == 422 and response.json()["detail"]


def test_reads_never_show_personal_data(client, anonymous, auth, spot):
    lon, lat, grid_code = spot
    created = client.post("/workorders", json=report(lon, lat, caller=CALLER), headers=auth).json()
    for url in (f"/workorders?grid={grid_code}", "/stats/grids", f"/grids/{grid_code}",
                f"/collections/workorders/items/{created['order_id']}"):
        text = client.get(url).text
        assert "13712345678" not in text and "李隐私" not in text, url
        assert "caller" not in text, url
    # an order's details show the caller masked (the full values only by a logged reveal)
    detail = client.get(f"/workorders/{created['order_id']}").json()
    assert (detail["caller_name"], detail["caller_phone"]) == ("李**", "137****5678")
    for url in ("/stats/grids", f"/grids/{grid_code}"):
        text = anonymous.get(url).text
        assert "13712345678" not in text and "李隐私" not in text and "caller" not in text, url


def test_a_placed_order_lies_in_its_grid(client, auth, grids_wgs84):
    grid = grids_wgs84.iloc[-1]
    point = grid.geometry.representative_point()
    order = client.post("/workorders", json=report(point.x, point.y), headers=auth).json()
    placed = grids_wgs84.set_index("grid_code").geometry[order["grid_code"]]
    assert placed.covers(shapely.Point(order["lon"], order["lat"]))
