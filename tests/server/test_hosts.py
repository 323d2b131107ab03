"""Two ``jngis serve`` hosts on one PostGIS store: any of them answers any request the same way.

Each host is a process of its own on its own port with its own tile
geometry and saved grid tables, as two machines would run it; they share
only the store (and ``JNGIS_WRITE_TOKEN``). A user token one host issues
is accepted by the other, a user disabled through one is refused by the
other on its next request, an order written through one is read through the
other, and both give a tile the same bytes' ETag and the same version.
benchmarks/pg_workers.py checks the same under load.
"""

from __future__ import annotations

import httpx
from test_server_versions import centre, fresh_database


def test_two_hosts_on_one_store_share_tokens_orders_and_tiles(postgis_dsn, city_file, live_server, token,
                                                              tmp_path):
    from jngis.crs import WGS84
    from jngis.layers import read_city
    from jngis.store import open_store

    dsn = fresh_database(postgis_dsn, "hosts_stateless")
    city = read_city(city_file)
    with open_store(dsn) as store:
        store.write_city(city)
    lon, lat = city.grids.to_crs(WGS84).geometry.iloc[0].representative_point().coords[0]
    z, x, y = centre(city.grids, 14)
    admin = {"Authorization": f"Bearer {token}"}

    def own(name: str) -> dict:  # nothing on disk shared between the hosts
        return {"JNGIS_TILE_GEOMETRY_DIR": str(tmp_path / name / "tiles"),
                "JNGIS_STATS_CACHE_DIR": str(tmp_path / name / "stats")}

    with live_server(dsn, **own("a")) as first, live_server(dsn, **own("b")) as second:
        a, b = httpx.Client(base_url=first.url, timeout=60), httpx.Client(base_url=second.url, timeout=60)
        with a, b:
            added = a.post("/users", headers=admin, json={"name": "接线员甲", "role": "hotline"})
            assert added.status_code == 201, added.text
            user = added.json()
            signed = {"Authorization": f"Bearer {user['token']}"}
            order = b.post("/workorders", headers=signed, json={"lon": lon, "lat": lat, "category": "环境卫生",
                                                                  "description": "楼道堆物"})
            assert order.status_code == 201, order.text  # host b accepts the token host a issued
            read = a.get(f"/workorders/{order.json()['order_id']}", headers=admin)
            assert read.status_code == 200 and read.json()["grid_code"] == order.json()["grid_code"]

            disabled = b.post(f"/users/{user['user_id']}/disable", headers=admin)
            assert disabled.status_code == 200, disabled.text
            for host in (a, b):  # the next request, on either host
                refused = host.post("/workorders", headers=signed, json={"lon": lon, "lat": lat,
                                                                          "category": "环境卫生"})
                assert refused.status_code == 401, refused.text

            path = f"/tiles/grids/{z}/{x}/{y}.mvt"
            tiles = [host.get(path, headers={"Accept-Encoding": "gzip"}) for host in (a, b)]
            assert all(t.status_code == 200 for t in tiles)
            assert tiles[0].headers["etag"] == tiles[1].headers["etag"]
            assert tiles[0].headers["x-jngis-version"] == tiles[1].headers["x-jngis-version"]
            assert tiles[0].content == tiles[1].content
