"""/stats/grids and the grid card, checked against jngis.stats.grid_stats on the same store."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape

from jngis.server.app import create_app


@pytest.fixture
def writable(store_file, settings_for):
    """A client on a private copy of the city (these tests write)."""
    with TestClient(create_app(settings_for(store_file))) as client:
        yield client


def rows(body: dict) -> dict[str, dict]:
    """The column-wise /stats/grids body as grid_code -> {column: value}."""
    return {code: {name: values[i] for name, values in body["columns"].items()}
            for i, code in enumerate(body["grid_code"])}


def expected_table(store_file, at):
    from jngis.stats import grid_stats
    from jngis.store import open_store

    with open_store(store_file) as store:
        return grid_stats(store.read_layer("grids"), stations=store.read_layer("stations"),
                          party_orgs=store.read_layer("party_orgs"),
                          workorders=store.orders_frame(now=at), at=at)


def test_counts_match_grid_stats(writable, store_file):
    body = writable.get("/stats/grids").json()
    table = expected_table(store_file, body["at"])
    served = rows(body)
    assert body["count"] == len(served)
    assert list(served) == list(table.index)
    for column in ("households", "stations", "party_orgs", "party_members", "orders", "open_orders",
                   "overdue_orders", "full_time_workers"):
        assert [served[code][column] for code in table.index] == table[column].tolist(), column
    assert table["open_orders"].sum() > 0


def test_stats_have_an_etag(writable):
    first = writable.get("/stats/grids")
    etag = first.headers["etag"]
    again = writable.get("/stats/grids", headers={"If-None-Match": etag})
    assert again.status_code == 304


def test_a_new_order_changes_its_grid_count_and_the_etag(writable, auth):
    before = writable.get("/stats/grids")
    counts = rows(before.json())
    code = next(iter(counts))
    card = writable.get(f"/grids/{code}").json()
    inner = shape(writable.get(f"/collections/grids/items/{code}").json()["geometry"]).representative_point()
    created = writable.post("/workorders", headers=auth, json={
        "lon": inner.x, "lat": inner.y, "category": "市容环境", "description": "占道经营"}).json()
    assert created["grid_code"] == code
    # the table is recomputed in the background: poll as the viewer does, with the ETag
    deadline = time.time() + 60
    while True:
        after = writable.get("/stats/grids", headers={"If-None-Match": before.headers["etag"]})
        if after.status_code == 200:
            break
        assert after.status_code == 304 and time.time() < deadline, "the counts never changed"
        time.sleep(0.05)
    assert after.headers["etag"] != before.headers["etag"]
    assert rows(after.json())[code]["open_orders"] == counts[code]["open_orders"] + 1
    assert writable.get(f"/grids/{code}").json()["open_orders"] == card["open_orders"] + 1


def test_the_card_shows_place_households_staffing_and_orders(writable, store_file, slice_city):
    body = writable.get("/stats/grids").json()
    table = expected_table(store_file, body["at"])
    code = table["open_orders"].idxmax()
    card = writable.get(f"/grids/{code}").json()
    assert card["grid_code"] == code
    names = slice_city.communities.set_index("community_code")["name"]
    assert card["community_name"] == names[code[:12]]
    assert card["street_name"] == slice_city.streets.name.iloc[0]
    assert card["district_name"] == slice_city.districts.name.iloc[0]
    for column in ("households", "full_time_workers", "grid_leaders", "stations", "party_orgs",
                   "open_orders", "overdue_orders"):
        assert card[column] == table.loc[code, column], column


def test_an_unknown_grid_is_404(writable):
    response = writable.get("/grids/370102003999999")
    assert response.status_code == 404 and "370102003999999" in response.json()["detail"]


def test_a_city_without_grids_says_so(tmp_path, settings_for, slice_city):
    import dataclasses

    from jngis.layers import write_city

    path = write_city(dataclasses.replace(slice_city, grids=None), tmp_path / "no-grids.gpkg")
    with TestClient(create_app(settings_for(path))) as client:
        response = client.get("/stats/grids")
        assert response.status_code == 404 and "no grids layer" in response.json()["detail"]
        assert client.get("/layers").json()["grids"] is False


def test_an_old_table_is_served_while_a_fresh_one_is_computed(store_file, settings_for, monkeypatch):
    app = create_app(settings_for(store_file))
    backend = app.state.backend
    first = backend.grid_table()
    monkeypatch.setattr(backend.table, "max_age", 0.0)
    assert backend.grid_table().version == first.version  # stale, but nobody waits
    deadline = time.time() + 60
    while backend.grid_table().version == first.version:
        assert time.time() < deadline, "the background refresh never landed"
        time.sleep(0.05)
    assert backend.grid_table().table["open_orders"].sum() == first.table["open_orders"].sum()


def test_a_postgis_store_serves_the_same_city(postgis_dsn, city_file, settings_for):
    from jngis.layers import read_city
    from jngis.store import open_store

    with open_store(postgis_dsn) as store:
        store.write_city(read_city(city_file))
    with TestClient(create_app(settings_for(postgis_dsn))) as client:
        assert client.get("/healthz").json()["layers"]["grids"] > 0
        body = client.get("/stats/grids").json()
        assert body["count"] == len(read_city(city_file).grids)
        assert client.get("/collections/communities/items").json()["numberMatched"] == 5
        assert client.get("/tiles/grids/14/13340/6389.mvt").status_code == 200


def test_a_restart_colours_the_first_page_with_the_saved_table(store_file, settings_for, auth, tmp_path):
    """The table a server computed is saved; a restart on the same data serves it at once."""
    settings = settings_for(store_file, stats_cache_dir=str(tmp_path / "stats"))
    with TestClient(create_app(settings)) as client:
        first = client.get("/stats/grids")
        saved = sorted((tmp_path / "stats").glob("grid-table-*.parquet"))
        assert len(saved) == 1
    app = create_app(settings)
    restored = app.state.backend.table.saved
    assert restored is not None and restored.at == first.json()["at"]  # loaded before any computation
    served = rows(first.json())
    assert list(restored.table.index) == list(served)
    for column in ("households", "open_orders", "overdue_orders", "party_members"):
        assert restored.table[column].tolist() == [served[code][column] for code in served], column
    with TestClient(app) as client:
        # a fresh table is computed in the background at once (the saved one is as of its time)
        code = first.json()["grid_code"][0]
        inner = shape(client.get(f"/collections/grids/items/{code}").json()["geometry"]).representative_point()
        assert client.post("/workorders", headers=auth, json={
            "lon": inner.x, "lat": inner.y, "category": "市容环境"}).status_code == 201
        deadline = time.time() + 60
        while rows(client.get("/stats/grids").json())[code]["open_orders"] != served[code]["open_orders"] + 1:
            assert time.time() < deadline, "the saved table was never replaced"
            time.sleep(0.05)
    # the store changed: the old table no longer fits it; a restart serves only a table saved
    # after the write (it counts the new order), never the first one (`at` has whole seconds,
    # so the two may carry the same time: compare what they count)
    changed = create_app(settings).state.backend
    assert changed.table.saved is None or \
        changed.table.saved.table.loc[code, "open_orders"] == served[code]["open_orders"] + 1


def test_a_damaged_saved_table_is_ignored(store_file, settings_for, tmp_path):
    settings = settings_for(store_file, stats_cache_dir=str(tmp_path / "stats"))
    with TestClient(create_app(settings)) as client:
        client.get("/stats/grids")
    for path in (tmp_path / "stats").glob("grid-table-*.parquet"):
        path.write_bytes(b"not parquet")
    app = create_app(settings)
    assert app.state.backend.table.saved is None
    with TestClient(app) as client:
        assert client.get("/stats/grids").status_code == 200
