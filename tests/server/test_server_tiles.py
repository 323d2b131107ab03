"""/tiles: MVT tiles and TileJSON over HTTP, decoded by GDAL's MVT driver (a client nobody here wrote)."""

from __future__ import annotations

import gzip
import math
import re

import numpy as np
import pyogrio
import pytest
import shapely

from jngis.crs import WEB_MERCATOR, WGS84

ZOOM = 14


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def tile_box(z: int, x: int, y: int) -> shapely.Polygon:
    """The tile's square in EPSG:3857 metres."""
    half, size = 20037508.342789244, 2 * 20037508.342789244 / 2**z
    return shapely.box(-half + x * size, half - (y + 1) * size, -half + (x + 1) * size, half - y * size)


@pytest.fixture(scope="module")
def grids(city_file):
    from jngis.layers import read_layer

    # the pristine file: GDAL's own SQLite must never open the store file the app holds open
    return read_layer(city_file, "grids")


@pytest.fixture(scope="module")
def centre_tile(grids):
    lon, lat = grids.to_crs(WGS84).union_all().representative_point().coords[0]
    return (ZOOM, *tile_of(lon, lat, ZOOM))


def test_tilejson_describes_the_layer(client, grids):
    doc = client.get("/tiles/grids.json").json()
    assert doc["tilejson"] == "3.0.0"
    # the tiles of the version in force, at addresses that never change (test_server_versions.py)
    assert re.search(r"/tiles/grids/v\d+/\{z\}/\{x\}/\{y\}\.mvt$", doc["tiles"][0])
    assert doc["vector_layers"][0]["id"] == "grids"
    assert "grid_code" in doc["vector_layers"][0]["fields"]
    west, south, east, north = grids.to_crs(WGS84).total_bounds
    assert doc["bounds"] == pytest.approx([west, south, east, north], abs=1e-6)
    assert doc["minzoom"] <= 10 and doc["maxzoom"] >= 16


def test_a_tile_decodes_in_gdal_to_the_grids_it_covers(client, grids, centre_tile, tmp_path):
    z, x, y = centre_tile
    response = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    path = tmp_path / f"{z}-{x}-{y}.mvt"
    path.write_bytes(response.content)
    decoded = pyogrio.read_dataframe(path, layer="grids", X=x, Y=y, Z=z, CLIP="NO")
    assert len(decoded) > 0
    # the MVT feature id (GDAL's mvt_id) is the grid code, and the code is also a property
    assert [int(code) for code in decoded["grid_code"]] == decoded["mvt_id"].tolist()
    square = tile_box(z, x, y)
    metric = grids.to_crs(WEB_MERCATOR)
    inside = set(metric.grid_code[metric.intersects(square.buffer(-1))])
    near = set(metric.grid_code[metric.intersects(square.buffer(square.length / 4 / 4096 * 64 + 1))])
    assert inside <= set(decoded["grid_code"]) <= near


def test_gzip_when_asked_and_the_same_bytes(client, centre_tile):
    z, x, y = centre_tile
    plain = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    zipped = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["vary"] == "Accept-Encoding"
    # httpx undoes the gzip: the payload is the same tile
    assert zipped.content == plain.content
    assert len(gzip.compress(plain.content)) < len(plain.content)


def test_etag_and_cache_control(client, centre_tile):
    z, x, y = centre_tile
    first = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = client.get(f"/tiles/grids/{z}/{x}/{y}.mvt", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(f"/tiles/grids/{z}/{x + 1}/{y}.mvt", headers={"If-None-Match": etag})
    assert other.status_code == 200


def test_an_empty_tile_is_an_empty_200(client):
    response = client.get("/tiles/grids/10/0/0.mvt")  # the far north-west corner of the world
    assert response.status_code == 200 and response.content == b""


def test_feature_ids_are_the_same_at_every_zoom(client, grids, tmp_path):
    lon, lat = grids.to_crs(WGS84).union_all().representative_point().coords[0]
    seen = {}
    for z in (11, 13, 15):
        x, y = tile_of(lon, lat, z)
        path = tmp_path / f"{z}.mvt"
        path.write_bytes(client.get(f"/tiles/grids/{z}/{x}/{y}.mvt").content)
        decoded = pyogrio.read_dataframe(path, layer="grids", X=x, Y=y, Z=z, CLIP="NO")
        for fid, code in zip(decoded["mvt_id"], decoded["grid_code"]):
            assert seen.setdefault(code, fid) == fid
    assert len(seen) > 0


@pytest.mark.parametrize("url, status, message", [
    ("/tiles/grids/12/4096/1598.mvt", 422, "x=4096 is outside zoom 12"),
    ("/tiles/grids/12/3380/-1.mvt", 422, "greater than or equal to 0"),
    ("/tiles/grids/25/0/0.mvt", 422, "z=25"),
    ("/tiles/grids/twelve/1/1.mvt", 422, "valid integer"),
    ("/tiles/grids/1.5/1/1.mvt", 422, "valid integer"),
    ("/tiles/units/5/26/12.mvt", 404, "zooms 13 to 16"),
    ("/tiles/rivers/5/26/12.mvt", 404, "rivers"),
    ("/tiles/rivers.json", 404, "rivers"),
])
def test_bad_tile_addresses_are_4xx_with_a_message(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert message in response.json()["detail"]


def test_every_tiled_layer_serves_the_centre(client, centre_tile):
    z, x, y = centre_tile
    layers = client.get("/layers").json()["layers"]
    tiled = [layer["id"] for layer in layers if "tilejson" in layer]
    assert {"districts", "streets", "communities", "grids", "units", "stations", "party_orgs"} <= set(tiled)
    sizes = {name: len(client.get(f"/tiles/{name}/{z}/{x}/{y}.mvt").content) for name in tiled}
    assert all(size > 0 for name, size in sizes.items() if name not in ("stations", "party_orgs")), sizes
    assert np.mean(list(sizes.values())) > 0


def test_a_cached_tile_is_sent_with_its_kept_gzip_and_etag(client, centre_tile, monkeypatch):
    z, x, y = centre_tile
    kept = client.app.state.backend.tiles.served("grids", z, x, y)

    def again(*args, **kwargs):
        raise AssertionError("a cached tile was gzipped or hashed again")

    monkeypatch.setattr(gzip, "compress", again)
    monkeypatch.setattr("hashlib.blake2b", again)
    url = f"/tiles/grids/{z}/{x}/{y}.mvt"
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200 and response.headers["content-encoding"] == "gzip"
    assert raw == kept.gzip and response.headers["etag"] == kept.etag
    assert client.get(url, headers={"Accept-Encoding": "identity"}).content == kept.data


def test_the_zoom_bound_is_the_library_max_zoom(client):
    from jngis.codes import MAX_ZOOM

    spec = client.get("/openapi.json").json()
    parameters = spec["paths"]["/tiles/{layer}/{z}/{x}/{y}.mvt"]["get"]["parameters"]
    zoom = next(p for p in parameters if p["name"] == "z")
    assert (zoom["schema"]["minimum"], zoom["schema"]["maximum"]) == (0, MAX_ZOOM)
    response = client.get(f"/tiles/grids/{MAX_ZOOM + 1}/0/0.mvt")
    assert response.status_code == 422
    assert f"z={MAX_ZOOM + 1} is not a zoom level; expected 0 to {MAX_ZOOM}" in response.json()["detail"]


# -- the lean path and the shared tile file (server/tilestore.py) ---------------------------

def raw_tile(client, url: str, **headers):
    """(status, headers, bytes on the wire) of one GET: the gzip bytes as sent, not undone."""
    with client.stream("GET", url, headers={"Accept-Encoding": "gzip", **headers}) as response:
        return response.status_code, response.headers, b"".join(response.iter_raw())


SAME_HEADERS = ("etag", "cache-control", "vary", "x-jngis-version", "content-type", "content-encoding",
                "content-length", "x-content-type-options", "content-security-policy")


def test_a_warm_anonymous_tile_is_the_routes_answer_without_the_routes(app, client, anonymous, centre_tile,
                                                                       monkeypatch):
    z, x, y = centre_tile
    version = client.get("/tiles/grids.json").headers["x-jngis-version"]
    urls = [f"/tiles/grids/{z}/{x}/{y}.mvt", f"/tiles/grids/v{version}/{z}/{x}/{y}.mvt"]
    routed = [raw_tile(client, url) for url in urls]  # signed in: the routes, which keep the tile

    def cut(*args, **kwargs):
        raise AssertionError("the tile was asked of the routes")

    monkeypatch.setattr(app.state.backend.current.tiles, "served", cut)
    for url, (status, headers, body) in zip(urls, routed):
        lean = raw_tile(anonymous, url)
        assert (lean[0], lean[2]) == (status, body) == (200, body)
        assert {h: lean[1].get(h) for h in SAME_HEADERS} == {h: headers.get(h) for h in SAME_HEADERS}
        assert gzip.decompress(body)[:1] == b"\x1a"
        again = raw_tile(anonymous, url, **{"If-None-Match": headers["etag"]})
        assert again[0] == 304 and again[2] == b"" and again[1]["etag"] == headers["etag"]
        assert again[1]["x-jngis-version"] == version
    assert "immutable" in routed[1][1]["cache-control"] and "immutable" not in routed[0][1]["cache-control"]
    with pytest.raises(AssertionError, match="asked of the routes"):  # a token: the routes answer
        client.get(urls[0])
    with pytest.raises(AssertionError, match="asked of the routes"):  # no gzip: the routes answer
        anonymous.get(urls[0], headers={"Accept-Encoding": "identity"})


@pytest.mark.parametrize("url, status", [("/tiles/grids/25/0/0.mvt", 422), ("/tiles/rivers/5/26/12.mvt", 404),
                                         ("/tiles/grids/v999/12/3380/1598.mvt", 404),
                                         ("/tiles/grids/12/3380/1598.mvt?x=1", 400)])
def test_what_the_lean_path_cannot_answer_the_routes_refuse_as_before(anonymous, url, status):
    assert anonymous.get(url).status_code == status


def test_with_anonymous_reading_off_a_kept_tile_still_needs_a_sign_in(module_store, settings_for, client,
                                                                      centre_tile, token):
    from fastapi.testclient import TestClient

    from jngis.server.app import create_app

    z, x, y = centre_tile
    url = f"/tiles/grids/{z}/{x}/{y}.mvt"
    assert client.get(url).status_code == 200  # kept in the shared file by the public server
    closed = create_app(settings_for(module_store, anonymous=False))
    with TestClient(closed) as nobody:
        assert nobody.get(url).status_code == 401
        signed = nobody.get(url, headers={"Authorization": f"Bearer {token}"})
        assert signed.status_code == 200 and signed.headers["cache-control"].startswith("private")
        assert nobody.get(url).status_code == 401  # the tile is now known to this server too


def test_a_tile_cut_here_is_read_by_another_process(app, client, centre_tile):
    import subprocess
    import sys

    z, x, y = centre_tile
    status, headers, body = raw_tile(client, f"/tiles/grids/{z}/{x}/{y}.mvt")
    shared = app.state.shared_tiles
    key = shared.key(shared.fingerprint("grids", app.state.backend.layers["grids"]), z, x, y)
    script = ("import sys; from pathlib import Path; from jngis.server.tilestore import SharedTiles; "
              "kept = SharedTiles(Path(sys.argv[1])).get(sys.argv[2].encode()); "
              "sys.stdout.buffer.write(kept.etag + b' ' + kept.gzip)")
    other = subprocess.run([sys.executable, "-c", script, str(shared.folder), key.decode()],
                           capture_output=True, check=True, timeout=120)
    assert other.stdout == headers["etag"].encode() + b" " + body
