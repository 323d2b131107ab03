"""GET /geocode and POST /workorders with an address, on the slice with generated addresses."""

from __future__ import annotations

import dataclasses

import pytest

from jngis.address import sample_addresses


@pytest.fixture(scope="module")
def addressed_units(slice_city):
    # the slice carries the sample's addresses (jngis.sample.with_addresses), the same each time
    regenerated = sample_addresses(slice_city.units, districts=slice_city.districts)
    assert regenerated["address"].equals(slice_city.units["address"])
    return slice_city.units


@pytest.fixture(scope="module")
def geo_path(addressed_units, slice_city, tmp_path_factory):
    """A GeoPackage of the slice with its addresses and grids."""
    from jngis.grids import make_grids
    from jngis.layers import write_city

    grids = make_grids(slice_city.communities, slice_city.units, seed=0)
    city = dataclasses.replace(slice_city, units=addressed_units, grids=grids)
    return write_city(city, tmp_path_factory.mktemp("geocode") / "city.gpkg")


@pytest.fixture(scope="module", params=["memory", "store"])
def geo_client(request, geo_path, settings_for):
    """The server on the slice, looking addresses up in memory or in the store (JNGIS_ADDRESS_LOOKUP)."""
    from fastapi.testclient import TestClient

    from jngis.server.app import create_app

    with TestClient(create_app(settings_for(geo_path, address_lookup=request.param))) as client:
        yield client


def test_geocode_finds_the_unit_and_its_grid(geo_client, addressed_units):
    row = addressed_units.dropna(subset=["building"]).iloc[3]
    answer = geo_client.get("/geocode", params={"q": row["address"]})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "matched" and body["unit_id"] == row["unit_id"]
    assert len(body["grid_code"]) == 15 and body["street_code"] == row["street_code"]
    assert 116 < body["lon"] < 118 and 36 < body["lat"] < 37.5
    spoken = f"{row['road']}{row['door_number']}号院{int(row['building'])}栋"
    assert geo_client.get("/geocode", params={"q": spoken}).json()["unit_id"] == row["unit_id"]


@pytest.mark.parametrize("q", ["'; DROP TABLE units; --", "<script>alert(1)</script>", "%00", "北京市朝阳区建国路1号",
                               "{{7*7}}", "文化东路 OR 1=1"])
def test_geocode_injection_and_outside_answer_not_found(geo_client, q):
    answer = geo_client.get("/geocode", params={"q": q})
    assert answer.status_code == 200
    assert answer.json()["status"] in ("not_found", "ambiguous")
    assert answer.json()["unit_id"] is None


def test_geocode_refuses_empty_and_long_q(geo_client):
    assert geo_client.get("/geocode").status_code in (400, 422)
    assert geo_client.get("/geocode", params={"q": ""}).status_code in (400, 422)
    assert geo_client.get("/geocode", params={"q": "路" * 201}).status_code in (400, 422)


def test_geocode_principal_without_anonymous_reading(geo_path, addressed_units, settings_for, auth):
    # the lookup decides "no header" in the event loop and checks a token in the thread pool:
    # both must answer as every other map route does (JNGIS_ANONYMOUS=off: sign in first)
    from fastapi.testclient import TestClient

    from jngis.server.app import create_app

    row = addressed_units.dropna(subset=["building"]).iloc[3]
    with TestClient(create_app(settings_for(geo_path, anonymous=False))) as client:
        nobody = client.get("/geocode", params={"q": row["address"]})
        assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"
        assert nobody.json() == client.get("/layers").json()
        wrong = client.get("/geocode", params={"q": row["address"]}, headers={"Authorization": "Bearer jngis_1_x"})
        assert wrong.status_code == 401 and "unit_id" not in wrong.text
        signed = client.get("/geocode", params={"q": row["address"]}, headers=auth)
        assert signed.status_code == 200 and signed.json()["unit_id"] == row["unit_id"]
        assert "input" not in signed.json()


def test_workorder_from_an_address(geo_client, addressed_units, auth):
    row = addressed_units.dropna(subset=["building"]).iloc[5]
    made = geo_client.post("/workorders", headers=auth, json={"address": row["address"], "category": "市容环境"})
    assert made.status_code == 201, made.text
    order = made.json()
    assert order["geocode"]["unit_id"] == row["unit_id"]
    assert order["street_code"] == row["street_code"]
    assert order["community_code"] == row["community_code"]


def test_workorder_address_not_sure_is_refused_with_candidates(geo_client, addressed_units, auth):
    row = addressed_units.dropna(subset=["building"]).iloc[5]
    answer = geo_client.post("/workorders", headers=auth,
                             json={"address": f"{row['road']}{row['door_number']}号99号楼", "category": "市容环境"})
    assert answer.status_code == 422
    assert answer.json()["status"] == "ambiguous" and answer.json()["candidates"]
    nowhere = geo_client.post("/workorders", headers=auth, json={"address": "北京市朝阳区1号", "category": "市容环境"})
    assert nowhere.status_code == 422 and nowhere.json()["status"] == "not_found"


def test_workorder_needs_one_location(geo_client, auth):
    both = geo_client.post("/workorders", headers=auth,
                           json={"address": "x路1号", "lon": 117.0, "lat": 36.6, "category": "市容环境"})
    assert both.status_code == 422
    neither = geo_client.post("/workorders", headers=auth, json={"category": "市容环境"})
    assert neither.status_code == 422


def test_geocode_without_addresses_is_404(slice_city, tmp_path, settings_for):
    from fastapi.testclient import TestClient

    from jngis.layers import ADDRESS_COLUMNS, write_city
    from jngis.server.app import create_app

    units = slice_city.units.drop(columns=[c.name for c in ADDRESS_COLUMNS])
    path = write_city(dataclasses.replace(slice_city, units=units), tmp_path / "no-addresses.gpkg")
    with TestClient(create_app(settings_for(path))) as client:
        answer = client.get("/geocode", params={"q": "文化东路1号"})
    assert answer.status_code == 404
    assert "road" in answer.json()["detail"]
