"""OGC API - Features: the routes, paging, filters, bad requests, and GDAL's OAPIF driver as a client."""

from __future__ import annotations

import numpy as np
import pyogrio
import pytest
import shapely

from jngis.crs import WGS84

CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"


def test_landing_page_links_the_api_parts(client):
    page = client.get("/", headers={"Accept": "application/json"})
    assert page.status_code == 200
    rels = {link["rel"]: link["href"] for link in page.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    for rel in ("service-desc", "conformance", "data"):
        assert client.get(rels[rel]).status_code == 200
    assert client.get("/?f=json").json()["links"] == page.json()["links"]


def test_conformance_declares_exactly_what_passes(client):
    # Part 1 core and GeoJSON as before; Part 3 and CQL2 since the query of issue 20
    # (the temporal functions class is not declared: only a subset of T_* is served).
    declared = set(client.get("/conformance").json()["conformsTo"])
    assert {CORE, GEOJSON} <= declared
    assert "http://www.opengis.net/spec/cql2/1.0/conf/temporal-functions" not in declared
    assert "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions" not in declared
    assert {"http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
            "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
            "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions"} <= declared


def test_collections_list_every_published_layer_with_extent(client, slice_city):
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    assert {"districts", "streets", "communities", "grids", "units", "stations", "party_orgs",
            "workorders"} <= set(listed)
    bounds = slice_city.communities.to_crs(WGS84).total_bounds
    west, south, east, north = listed["communities"]["extent"]["spatial"]["bbox"][0]
    assert west == pytest.approx(bounds[0], abs=1e-6) and north == pytest.approx(bounds[3], abs=1e-6)
    items = [link for link in listed["grids"]["links"] if link["rel"] == "items"][0]
    assert items["type"] == "application/geo+json"
    assert client.get("/collections/grids").json()["id"] == "grids"


def test_items_are_geojson_in_wgs84_with_counts(client, slice_city):
    response = client.get("/collections/communities/items", params={"limit": 100})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert body["numberMatched"] == body["numberReturned"] == len(slice_city.communities)
    feature = body["features"][0]
    assert feature["id"] == feature["properties"]["community_code"]
    expected = slice_city.communities.set_index("community_code").to_crs(WGS84).geometry[feature["id"]]
    served = shapely.geometry.shape(feature["geometry"])
    assert served.symmetric_difference(expected).area < 1e-12


def test_paging_follows_next_links_to_every_feature_once(client, slice_city):
    url, seen, pages = "/collections/stations/items?limit=3", [], 0
    while url:
        body = client.get(url).json()
        assert body["numberReturned"] == len(body["features"]) <= 3
        assert body["numberMatched"] == len(slice_city.stations)
        seen += [f["id"] for f in body["features"]]
        nxt = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = nxt[0] if nxt else None
        pages += 1
    assert sorted(seen) == sorted(slice_city.stations["station_id"])
    assert pages == -(-len(slice_city.stations) // 3)


def test_limit_above_the_maximum_is_clamped(client):
    body = client.get("/collections/units/items", params={"limit": 50_000}).json()
    assert body["numberReturned"] == body["numberMatched"]  # the slice has fewer than 10,000


def test_bbox_returns_exactly_the_intersecting_features(client, slice_city):
    units = slice_city.units.to_crs(WGS84)
    west, south, east, north = units.total_bounds
    box = (west, south, (west + east) / 2, (south + north) / 2)
    body = client.get("/collections/units/items",
                      params={"bbox": ",".join(map(str, box)), "limit": 10_000}).json()
    expected = set(units.unit_id[units.intersects(shapely.box(*box))])
    assert {f["id"] for f in body["features"]} == expected
    assert body["numberMatched"] == len(expected) > 0


def test_datetime_filters_work_orders_by_receipt(client):
    everything = client.get("/collections/workorders/items", params={"limit": 1}).json()["numberMatched"]
    october = client.get("/collections/workorders/items",
                         params={"datetime": "2026-10-01T00:00:00+08:00/2026-10-31T23:59:59+08:00",
                                 "limit": 10_000}).json()
    assert 0 < october["numberMatched"] < everything
    assert all("2026-10-01" <= f["properties"]["received_at"][:10] <= "2026-10-31"
               for f in october["features"])
    open_end = client.get("/collections/workorders/items",
                          params={"datetime": "2026-10-01T00:00:00+08:00/..", "limit": 1}).json()
    assert open_end["numberMatched"] >= october["numberMatched"]


def test_one_feature_by_id(client, slice_city):
    code = slice_city.communities.community_code.iloc[2]
    feature = client.get(f"/collections/communities/items/{code}").json()
    assert feature["type"] == "Feature" and feature["id"] == code
    assert feature["properties"]["name"] == slice_city.communities.name.iloc[2]
    assert {link["rel"] for link in feature["links"]} == {"self", "collection"}


def test_work_orders_never_show_personal_data(client, auth):
    client.post("/workorders", headers=auth, json={
        "lon": 117.1543, "lat": 36.6980, "category": "环境卫生", "description": "楼道堆物",
        "caller": {"name": "王秘密", "phone": "13912345678"}})
    text = client.get("/collections/workorders/items", params={"limit": 10_000}).text
    assert "13912345678" not in text and "王秘密" not in text
    assert "caller" not in text and "phone" not in text


def test_a_page_is_serialised_once(client, monkeypatch):
    """The page goes to JSON text once: never serialised, parsed back and serialised again."""
    import inspect
    import json

    code = client.get("/collections/units/items", params={"limit": 1}).json()["features"][0]["id"]
    calls = []

    def spy(name, real):
        def counted(*args, **kwargs):
            if any(frame.filename.endswith(("routes/features.py", "jngis/features.py"))
                   for frame in inspect.stack(0)):
                calls.append(name)
            return real(*args, **kwargs)
        return counted

    for name in ("dumps", "loads"):
        monkeypatch.setattr(json, name, spy(name, getattr(json, name)))
    for url in ("/collections/units/items?limit=50", f"/collections/units/items/{code}"):
        calls.clear()
        assert client.get(url).status_code == 200
        assert calls == ["dumps"], url


def test_properties_select_what_each_feature_carries(client):
    body = client.get("/collections/units/items", params={"limit": 3, "properties": "households"}).json()
    assert [set(f["properties"]) for f in body["features"]] == [{"households"}] * 3
    refused = client.get("/collections/units/items", params={"properties": "caller_phone"})
    assert refused.status_code == 400 and "expected some of" in refused.json()["detail"]


@pytest.mark.parametrize("query, message", [
    ("bbox=1,2,3", "expected 4"),
    ("bbox=a,b,c,d", "not a list of numbers"),
    ("bbox=118,36,117,37", "min <= max"),
    ("limit=0", "greater than or equal to 1"),
    ("limit=ten", "valid integer"),
    ("offset=-1", "greater than or equal to 0"),
    ("datetime=yesterday", "not an RFC 3339"),
    ("colour=red", "unknown query parameter"),
])
def test_bad_queries_are_400_with_a_message(client, query, message):
    response = client.get(f"/collections/units/items?{query}")
    assert response.status_code == 400
    assert message in response.json()["detail"]


@pytest.mark.parametrize("url", ["/collections/rivers", "/collections/rivers/items",
                                 "/collections/communities/items/999999999999"])
def test_missing_collections_and_features_are_404(client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response.json()["detail"]


def test_gdal_oapif_driver_reads_the_collections(live, slice_city):
    url = f"OAPIF:{live.url}"
    names = set(pyogrio.list_layers(url)[:, 0])
    assert {"communities", "grids", "stations"} <= names
    communities = pyogrio.read_dataframe(url, layer="communities")
    assert communities.crs.to_epsg() == 4326
    assert sorted(communities["community_code"]) == sorted(slice_city.communities.community_code)
    ours = slice_city.communities.set_index("community_code")
    theirs = communities.set_index("community_code").to_crs(ours.crs)
    assert np.allclose(theirs.geometry.area, ours.geometry.area[theirs.index], rtol=1e-6)


def test_gdal_oapif_driver_pages_and_filters_by_bbox(live, slice_city):
    west, south, east, north = slice_city.units.to_crs(WGS84).total_bounds
    box = (west, south, (west + east) / 2, (south + north) / 2)
    url = f"OAPIF:{live.url}"
    units = pyogrio.read_dataframe(url, layer="units", bbox=box)
    expected = slice_city.units.to_crs(WGS84)
    expected = set(expected.unit_id[expected.intersects(shapely.box(*box))])
    assert set(units["unit_id"]) == expected
    everything = pyogrio.read_dataframe(url, layer="units")  # more than GDAL's page: next links
    assert len(everything) == len(slice_city.units)
    assert everything["unit_id"].is_unique
