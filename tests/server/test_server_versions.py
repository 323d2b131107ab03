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
