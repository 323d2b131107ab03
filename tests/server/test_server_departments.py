"""The department loop and the evaluation over HTTP: every step, the refusals, duplicates, calls, reports."""

from __future__ import annotations

import io

import openpyxl
import pytest
from conftest import make_settings
from fastapi.testclient import TestClient

from jngis.crs import WGS84


@pytest.fixture(scope="module")
def loop_client(module_store):
    from jngis.server.app import create_app
    from jngis.store import open_store

    with open_store(str(module_store)) as store:
        store.load_sample_departments()
    with TestClient(create_app(make_settings(module_store))) as client:
        yield client


@pytest.fixture(scope="module")
def spot(city_file):
    from jngis.layers import read_layer

    grid = read_layer(city_file, "grids").to_crs(WGS84).iloc[5]
    point = grid.geometry.representative_point()
    return point.x, point.y


def _new(client, auth, spot, category="环境卫生"):
    body = {"lon": spot[0], "lat": spot[1], "category": category, "description": "楼道堆物"}
    response = client.post("/workorders", json=body, headers=auth)
    assert response.status_code == 201, response.text
    return response.json()


def _step(client, auth, order_id, step, status=200, **body):
    response = client.post(f"/workorders/{order_id}/{step}", json=body, headers=auth)
    assert response.status_code == status, response.text
    return response.json()


def test_every_step_over_http(loop_client, auth, spot):
    order = _new(loop_client, auth, spot)
    record = _step(loop_client, auth, order["order_id"], "dispatch", department_code="catalogue")
    assert record["department_code"] == f"{order['district_code']}-CG" and record["status"] == "dispatched"
    assert record["sign_due_at"] is not None
    loop = loop_client.get(f"/workorders/{order['order_id']}/loop", headers=auth).json()
    assert [a["action"] for a in loop["actions"]][:2] == ["returned", "sign"]
    assert loop["actions"][1]["label"] == "签收"
    # without a token an order is not read at all: sign in (issue 15)
    assert loop_client.get(f"/workorders/{order['order_id']}/loop").status_code == 401
    for step, body in [("sign", {}), ("contact", {}), ("on_site", {"note": "到场"}), ("reply", {"note": "已清运"}),
                       ("callback", {"level": "basically_satisfied"}), ("verify", {}), ("close", {})]:
        record = _step(loop_client, auth, order["order_id"], step, **body)
    assert record["status"] == "closed" and record["callback"] == "basically_satisfied"
    trail = loop_client.get(f"/workorders/{order['order_id']}/loop", headers=auth).json()["trail"]
    assert [r["action"] for r in trail][-4:] == ["reply", "callback", "verify", "closed"]
    assert {r["who"] for r in trail[1:]} == {"admin"}


def test_refusals_over_http(loop_client, auth, spot):
    order = _new(loop_client, auth, spot, category="物业管理")
    refused = _step(loop_client, auth, order["order_id"], "sign", status=409)
    assert "it cannot go to 'sign'" in refused["detail"] and "allowed next: dispatched, merge" in refused["detail"]
    missing = _step(loop_client, auth, order["order_id"], "dispatch", status=404, department_code="370100-XX")
    assert "not a department of the registry" in missing["detail"]
    assert _step(loop_client, auth, order["order_id"], "dispatch", status=422, who="张三")  # no who in bodies
    assert _step(loop_client, auth, order["order_id"], "callback", status=422, level="happy")
    assert loop_client.post(f"/workorders/{order['order_id']}/sign", json={}).status_code == 401
    assert loop_client.post(f"/workorders/{order['order_id']}/fly", json={}, headers=auth).status_code == 422
    assert _step(loop_client, auth, "nope", "sign", status=404)["detail"] == "work order 'nope' does not exist"
    _step(loop_client, auth, order["order_id"], "dispatch")
    request = _step(loop_client, auth, order["order_id"], "extension_request", note="需协调", days=3)
    assert request["extension_days"] == 3
    again = _step(loop_client, auth, order["order_id"], "extension_request", status=409, note="再次")
    assert "extended at most once" in again["detail"]
    decided = _step(loop_client, auth, order["order_id"], "extension_decision", granted=True)
    assert decided["extended_days"] == 3 and decided["extension_decision"] == "granted"
    red = _step(loop_client, auth, order["order_id"], "supervise", status=409, note="请加快")
    assert "red card only" in red["detail"]


def test_duplicates_over_http(loop_client, auth, spot):
    first = _new(loop_client, auth, spot, category="违章建筑")
    second = _new(loop_client, auth, (spot[0] + 0.0001, spot[1]), category="违章建筑")
    proposed = loop_client.get("/duplicates", headers=auth).json()["duplicates"]
    pair = [p for p in proposed if p["order_id"] == second["order_id"]]
    assert pair and pair[0]["master_id"] == first["order_id"] and pair[0]["distance_m"] < 20
    assert loop_client.get("/duplicates", params={"distance_m": -1}).status_code == 422
    merged = loop_client.post("/duplicates/merge", json={"pairs": [[second["order_id"], first["order_id"]]]},
                              headers=auth)
    assert merged.status_code == 200 and merged.json()["merged"][0]["status"] == "duplicate"
    assert loop_client.post("/duplicates/merge", json={"pairs": []}, headers=auth).status_code == 422


def test_calls_and_ratings_over_http(loop_client, auth, spot):
    order = _new(loop_client, auth, spot, category="市场监管")
    district = order["district_code"]
    _step(loop_client, auth, order["order_id"], "dispatch")
    body = {"department_codes": [f"{district}-SJ", f"{district}-GA"], "problem": "夜市占道经营",
            "order_id": order["order_id"]}
    created = loop_client.post("/calls", json=body, headers=auth)
    assert created.status_code == 201, created.text
    call_id = created.json()["call_id"]
    early = loop_client.post(f"/calls/{call_id}/departments/{district}-SJ/contact", headers=auth)
    assert early.status_code == 409 and "has not signed yet" in early.json()["detail"]
    for step in ("sign", "contact", "on_site", "done"):
        answer = loop_client.post(f"/calls/{call_id}/departments/{district}-SJ/{step}", headers=auth)
        assert answer.status_code == 200, answer.text
    wrong = loop_client.post(f"/calls/{call_id}/departments/{district}-CG/rating", json={"rating": 5}, headers=auth)
    assert wrong.status_code == 422 and "did not call department" in wrong.json()["detail"]
    rated = loop_client.post(f"/calls/{call_id}/departments/{district}-SJ/rating", json={"rating": 4}, headers=auth)
    assert rated.status_code == 200
    assert {d["department_code"]: d["rating"] for d in rated.json()["departments"]}[f"{district}-SJ"] == 4
    assert loop_client.get(f"/calls/{call_id}", headers=auth).json()["problem"] == "夜市占道经营"
    assert loop_client.get("/calls/999999", headers=auth).status_code == 404
    bad = loop_client.post("/calls", json={**body, "department_codes": ["X"]}, headers=auth)
    assert bad.status_code == 404


def _rated_call(client, auth, spot, rating):
    """An order dispatched, its 街道's call to the market department done and rated: the order."""
    order = _new(client, auth, spot, category="市场监管")
    department = f"{order['district_code']}-SJ"
    _step(client, auth, order["order_id"], "dispatch")
    created = client.post("/calls", json={"department_codes": [department], "problem": "占道经营",
                                          "order_id": order["order_id"]}, headers=auth)
    assert created.status_code == 201, created.text
    call = created.json()["call_id"]
    for step in ("sign", "contact", "on_site", "done"):
        assert client.post(f"/calls/{call}/departments/{department}/{step}", headers=auth).status_code == 200
    rated = client.post(f"/calls/{call}/departments/{department}/rating", json={"rating": rating}, headers=auth)
    assert rated.status_code == 200, rated.text
    return order


def test_evaluation_over_http(loop_client, auth, spot):
    # its own rated call: the tests of a module may run on different workers (xdist), in any order
    order = _rated_call(loop_client, auth, spot, rating=4)
    period = order["received_at"][:7]
    answer = loop_client.get("/evaluation", params={"period": period, "level": "department", "minimum": 1},
                             headers=auth)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["totals"]["received"] >= 1 and report["level_label"] == "部门"
    assert "sign_rate" in report["rankings"] and "mean_rating" in report["rankings"]
    assert len(report["trend"]) == 6 and report["trend"][-1]["period"] == period
    rated = [f for f in report["figures"] if f["unit"] == f"{order['district_code']}-SJ"]
    assert rated and rated[0]["ratings"] >= 1 and rated[0]["mean_rating"] == 4.0  # every rating of this module is 4
    street = loop_client.get("/evaluation", headers=auth,
                             params={"period": period, "level": "street", "months": 0}).json()
    assert street["trend"] == [] and street["figures"][0]["name"]
    page = loop_client.get("/evaluation/print", params={"period": period}, headers=auth)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"{period} 部门考核评价" in page.text
    book = loop_client.get("/evaluation/excel", params={"period": period, "months": 2}, headers=auth)
    assert book.status_code == 200
    assert "月度趋势" in openpyxl.load_workbook(io.BytesIO(book.content)).sheetnames
    for query in ({"period": "2026-13"}, {"level": "province"}, {"months": 13}, {"perod": "2026-10"}):
        assert loop_client.get("/evaluation", params=query, headers=auth).status_code in (400, 422), query
    assert loop_client.get("/departments").json()["departments"][0]["districts"]


def test_a_step_outside_the_role_or_scope_answers_403():
    """The store refuses a principal's step outside its role or scope with ForbiddenError: 403 over HTTP."""
    from jngis.errors import ForbiddenError
    from jngis.server.errors import status_for

    assert status_for(ForbiddenError("may not take the step 'supervise'", action="orders.transition")) == 403
