"""Boundary versions over HTTP: versioned immutable tiles, the switch without a restart, /versions.

The switch is checked on real geometry: the slice regridded, its tiles cut
before and after, the old version's immutable addresses still answering with
the old geometry, only the changed layer's geometry rebuilt.
"""

from __future__ import annotations

import math
import re

import mapbox_vector_tile
import pytest
from fastapi.testclient import TestClient

from jngis.crs import WGS84
from jngis.server.app import create_app
from jngis.server.switch import build_served

IMMUTABLE = "public, max-age=31536000, immutable"


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def feature_codes(data: bytes, layer: str = "grids", key: str = "grid_code") -> set[str]:
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {f["properties"][key] for f in decoded.get(layer, {}).get("features", [])}


def centre(layer, z: int) -> tuple[int, int, int]:
    lon, lat = layer.to_crs(WGS84).union_all().representative_point().coords[0]
    return (z, *tile_of(lon, lat, z))


@pytest.fixture
def regridded(slice_city):
    """The slice's grids drawn again with smaller grids: other codes, other geometry."""
    from jngis.grids import make_grids

    return make_grids(slice_city.communities, slice_city.units, min_households=150, max_households=250, seed=1)


def template(client, layer: str = "grids") -> tuple[str, int]:
    response = client.get(f"/tiles/{layer}.json")
    assert response.status_code == 200
    url = response.json()["tiles"][0]
    found = re.search(r"/tiles/\w+/v(\d+)/\{z\}/\{x\}/\{y\}\.mvt$", url)
    assert found, url
    assert response.headers["x-jngis-version"] == found.group(1)
    return url.replace("http://testserver", ""), int(found.group(1))


def test_versioned_tiles_are_immutable_and_the_unversioned_short_lived(store_file, settings_for):
    with TestClient(create_app(settings_for(store_file))) as client:
        url, version = template(client)
        grids = client.app.state.backend.layers["grids"]
        z, x, y = centre(grids, 14)
        versioned = client.get(url.format(z=z, x=x, y=y))
        assert versioned.status_code == 200
        assert versioned.headers["cache-control"] == IMMUTABLE
        assert versioned.headers["x-jngis-version"] == str(version)
        etag = versioned.headers["etag"]
        assert client.get(url.format(z=z, x=x, y=y), headers={"If-None-Match": etag}).status_code == 304
        plain = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
        assert plain.headers["cache-control"] == "public, max-age=60"
        assert plain.content == versioned.content and plain.headers["etag"] == etag
        assert feature_codes(plain.content) and feature_codes(plain.content) <= set(grids["grid_code"])
        # a version never served: at once 404, naming the version served
        missing = client.get(f"/tiles/grids/v{version + 7}/{z}/{x}/{y}.mvt")
        assert missing.status_code == 404 and f"version {version}" in missing.json()["detail"]
        # TileJSON is revalidated (it names the version in force) and answers 304 while it holds
        tilejson = client.get("/tiles/grids.json")
        assert tilejson.headers["cache-control"] == "no-cache"
        again = client.get("/tiles/grids.json", headers={"If-None-Match": tilejson.headers["etag"]})
        assert again.status_code == 304


def test_a_switch_keeps_old_tiles_and_rebuilds_only_the_changed_layer(store_file, settings_for, regridded):
    with TestClient(create_app(settings_for(store_file))) as client:
        backend = client.app.state.backend
        old = backend.current
        old_url, old_version = template(client)
        communities_url, _ = template(client, "communities")
        z, x, y = centre(old.layers["grids"], 14)
        before = client.get(old_url.format(z=z, x=x, y=y)).content
        communities_before = client.get(communities_url.format(z=12, x=x >> 2, y=y >> 2)).content
        assert feature_codes(before) <= set(old.layers["grids"]["grid_code"])

        layers = {**old.layers, "grids": regridded}
        new = build_served(backend.store, backend.settings, old_version + 1, layers, previous=old)
        assert new.tiles.rebuilt == ("grids",)  # communities, streets, units ... keep their geometry
        assert new.layers["units"] is old.layers["units"]  # and their one copy in memory
        new.warm([z])
        new.table.current()
        backend.switch(new)

        new_url, new_version = template(client)
        assert new_version == old_version + 1
        after = client.get(new_url.format(z=z, x=x, y=y))
        assert after.headers["cache-control"] == IMMUTABLE
        assert after.headers["x-jngis-version"] == str(new_version)
        assert feature_codes(after.content) <= set(regridded["grid_code"])
        assert feature_codes(after.content) != feature_codes(before)
        # the old version's address still answers with the old geometry (a page not yet redrawn)
        kept = client.get(old_url.format(z=z, x=x, y=y))
        assert kept.status_code == 200 and kept.content == before
        assert kept.headers["x-jngis-version"] == str(old_version)
        assert client.get(f"/tiles/grids/{z}/{x}/{y}.mvt").content == after.content
        # an unchanged layer: the same bytes at both versions' addresses
        communities_url_new, _ = template(client, "communities")
        assert client.get(communities_url_new.format(z=12, x=x >> 2, y=y >> 2)).content == communities_before
        # the counts are of the new grids, and say so
        stats = client.get("/stats/grids")
        assert stats.headers["x-jngis-version"] == str(new_version)
        assert stats.json()["version"] == new_version
        assert set(stats.json()["grid_code"]) == set(regridded["grid_code"])


def fresh_database(postgis_dsn: str, name: str) -> str:
    """A new database with PostGIS on the session's cluster (other tests keep theirs)."""
    import psycopg

    with psycopg.connect(postgis_dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    dsn = postgis_dsn.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    return dsn


@pytest.fixture(params=["sqlite", "postgis"])
def store_url(request, store_file, city_file) -> str:
    """The slice city with grids in a private GeoPackage, or in a private PostGIS database."""
    if request.param == "sqlite":
        return str(store_file)
    from jngis.layers import read_city
    from jngis.store import open_store

    dsn = fresh_database(request.getfixturevalue("postgis_dsn"), f"versions_{request.node.name[-40:]}"
                         .replace("[", "_").replace("]", "").replace("-", "_").lower())
    with open_store(dsn) as store:
        store.write_city(read_city(city_file))
    return dsn


def test_orders_written_by_another_writer_reach_the_stats_within_2_s(store_url, settings_for):
    """No polling of a table per request: the store's change channel ("orders") refreshes the counts."""
    import time

    from jngis.store import open_store

    with TestClient(create_app(settings_for(store_url))) as client:
        first = client.get("/stats/grids").json()
        opened = sum(first["columns"]["open_orders"])
        grids = client.app.state.backend.layers["grids"]
        lon, lat = grids.to_crs(WGS84).geometry.iloc[0].representative_point().coords[0]
        with open_store(store_url) as other:  # another connection, as another process would have
            other.create_order(lon, lat, category="环境卫生", description="楼道堆物", who="test")
        written = time.monotonic()
        while True:
            body = client.get("/stats/grids").json()
            if sum(body["columns"]["open_orders"]) == opened + 1:
                break
            assert time.monotonic() - written < 2.0, "the order written elsewhere did not reach /stats/grids"
            time.sleep(0.05)


def wait_for_version(client, version: int, seconds: float = 30.0) -> float:
    """Seconds until the server serves ``version`` (fails after ``seconds``)."""
    import time

    started = time.monotonic()
    while client.get("/versions/current").json()["version"] != version:
        assert time.monotonic() - started < seconds, f"the server never switched to version {version}"
        time.sleep(0.1)
    return time.monotonic() - started


def grids_package(grids, path):
    """A GeoPackage holding a proposal's grids layer, as a planner's QGIS would save it."""
    grids.to_file(path, layer="grids", driver="GPKG")
    return path


@pytest.mark.parametrize("through", ["library", "http"])
def test_an_adoption_is_served_without_a_restart(store_url, settings_for, regridded, auth, tmp_path, through):
    from jngis.store import open_store

    with TestClient(create_app(settings_for(store_url))) as client:
        old_url, old_version = template(client)
        before = client.get("/versions/current")
        assert before.json()["version"] == old_version
        z, x, y = centre(regridded, 14)
        old_tile = client.get(old_url.format(z=z, x=x, y=y)).content
        old_codes = set(client.app.state.backend.layers["grids"]["grid_code"])
        open_before = sum(client.get("/stats/grids").json()["columns"]["open_orders"])
        if through == "library":
            with open_store(store_url) as other:  # another writer: the server hears of it on the channel
                record = other.adopt(regridded, note="济历下发〔2026〕12号")
        else:
            package = grids_package(regridded, tmp_path / "plan.gpkg")
            with package.open("rb") as upload:
                answer = client.post("/versions", data={"note": "济历下发〔2026〕12号"}, headers=auth,
                                     files={"file": ("plan.gpkg", upload, "application/geopackage+sqlite3")})
            assert answer.status_code == 201, answer.text
            record = answer.json()
            assert answer.headers["location"].endswith(f"/versions/{record['version_id']}")
        new_version = record["version_id"]
        assert new_version > old_version
        wait_for_version(client, new_version)
        current = client.get("/versions/current")
        assert current.headers["x-jngis-version"] == str(new_version)
        assert current.json()["note"] == "济历下发〔2026〕12号"
        assert client.get("/versions/current", headers={"If-None-Match": current.headers["etag"]}).status_code == 304

        new_url, version = template(client)
        assert version == new_version and new_url != old_url
        assert feature_codes(client.get(new_url.format(z=z, x=x, y=y)).content) <= set(regridded["grid_code"])
        assert client.get(old_url.format(z=z, x=x, y=y)).content == old_tile  # still held
        stats = client.get("/stats/grids")
        assert stats.headers["x-jngis-version"] == str(new_version)
        assert set(stats.json()["grid_code"]) == set(regridded["grid_code"])
        # every open order re-placed into a grid of the new version: none lost, none counted twice
        assert sum(stats.json()["columns"]["open_orders"]) == open_before

        listed = client.get("/versions").json()
        assert listed["served"] == new_version
        statuses = {v["version_id"]: v["status"] for v in listed["versions"]}
        assert statuses[new_version] == "in_force" and statuses[new_version - 1] == "past"
        detail = client.get(f"/versions/{new_version}").json()
        diff = detail["diff"]
        assert (diff["from"], diff["to"]) == (new_version - 1, new_version)
        assert diff["summary"]["grids_created"] > 0 and diff["communities"] == []
        changed = {row["code"] for row in diff["grids"]}
        assert changed and changed <= set(regridded["grid_code"]) | old_codes
        moved = sum(row["households"] for row in diff["lineage"] if row["kind"] == "grids"
                    and row["from_code"] != row["to_code"])
        assert moved > 0


def test_datetime_selects_the_boundaries_in_force_then(store_url, settings_for, regridded):
    import datetime as dt

    from jngis.store import open_store

    with TestClient(create_app(settings_for(store_url))) as client:
        old_codes = set(client.app.state.backend.layers["grids"]["grid_code"])
        assert "temporal" not in client.get("/collections/grids").json()["extent"]  # no versions yet
        effective = dt.date.today() + dt.timedelta(days=30)
        with open_store(store_url) as other:
            pending = other.adopt(regridded, effective=effective, note="下月施行")
        assert pending["status"] == "pending"
        listed = client.get("/versions").json()["versions"]
        assert [v["status"] for v in listed] == ["in_force", "pending"]
        extent = client.get("/collections/grids").json()["extent"]["temporal"]
        assert extent["interval"] == [[None, None]]  # version 1 holds from the start of records

        def codes(datetime: str) -> set[str]:
            page = client.get(f"/collections/grids/items?limit=1000&datetime={datetime}").json()
            assert page["numberMatched"] == len(page["features"])
            return {f["id"] for f in page["features"]}

        assert codes(dt.date.today().isoformat()) == old_codes
        assert codes(f"{effective.isoformat()}T09:00:00+08:00") == set(regridded["grid_code"])
        both = codes(f"{dt.date.today().isoformat()}/..")
        assert both == old_codes | set(regridded["grid_code"])
        assert client.get("/versions/current").json()["version"] < pending["version_id"]  # not yet
        # the day comes: the scheduler's call makes it the version in force, and the server follows
        with open_store(store_url) as other:
            assert other.apply_due_versions(effective) == [pending["version_id"]]
        wait_for_version(client, pending["version_id"])
        assert set(client.get("/stats/grids").json()["grid_code"]) == set(regridded["grid_code"])


def test_adoption_over_http_needs_write_rights_and_a_geopackage(store_file, settings_for, auth, regridded, tmp_path):
    package = grids_package(regridded, tmp_path / "plan.gpkg")
    with TestClient(create_app(settings_for(store_file))) as client:
        content = package.read_bytes()
        refused = client.post("/versions", files={"file": ("plan.gpkg", content)})
        assert refused.status_code == 401
        not_a_package = client.post("/versions", files={"file": ("plan.gpkg", b"grid_code,households\n")},
                                    headers=auth)
        assert not_a_package.status_code == 422 and "not a GeoPackage" in not_a_package.json()["detail"]
        bad_day = client.post("/versions", files={"file": ("plan.gpkg", content)}, data={"effective": "明天"},
                              headers=auth)
        assert bad_day.status_code == 422 and "effective" in bad_day.json()["detail"]
        assert client.get("/versions").json()["versions"] == []  # nothing written
        # a plan that does not tile its communities is refused by the store's checks, nothing written
        holed = regridded.iloc[1:]
        answer = client.post("/versions", files={"file": ("plan.gpkg", grids_package(holed, tmp_path / "holed.gpkg")
                                                          .read_bytes())}, headers=auth)
        assert 400 <= answer.status_code < 500, answer.text
        # no version adopted (the store may have recorded its boundaries as version 1 to check against)
        assert [v["adopted_by"] for v in client.get("/versions").json()["versions"]] in ([], ["system"])
        assert client.get("/versions/2").status_code == 404
