"""Two uvicorn processes on one PostGIS: an adoption through one is served by both within 5 s.

Each process hears of the new version on the store's change channel
(PostgreSQL LISTEN/NOTIFY), builds it while it keeps serving the old one and
switches in one assignment. While that happens, clients keep asking both
processes for a grid tile and for the per-grid counts; every answer names
its version (``X-Jngis-Version``) and must hold exactly that version's grids:
no tile of one version with the counts of another.
"""

from __future__ import annotations

import threading
import time

import httpx
import mapbox_vector_tile

from jngis.crs import WGS84


def codes_in(tile: bytes) -> set[str]:
    decoded = mapbox_vector_tile.decode(tile, default_options={"y_coord_down": True})
    return {f["properties"]["grid_code"] for f in decoded.get("grids", {}).get("features", [])}


class Watcher(threading.Thread):
    """Asks one server for a tile and the counts until stopped; keeps (version, what it held) per answer."""

    def __init__(self, url: str, tile: str) -> None:
        super().__init__(daemon=True)
        self.url, self.tile = url, tile
        self.stop = threading.Event()
        self.tiles: list[tuple[int, frozenset]] = []
        self.stats: list[tuple[int, int, frozenset]] = []
        self.first_seen: dict[int, float] = {}

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                current = client.get("/versions/current").json()["version"]
                self.first_seen.setdefault(current, time.monotonic())
                tile = client.get(self.tile)
                self.tiles.append((int(tile.headers["x-jngis-version"]), frozenset(codes_in(tile.content))))
                stats = client.get("/stats/grids")
                body = stats.json()
                self.stats.append((int(stats.headers["x-jngis-version"]), body["version"],
                                   frozenset(body["grid_code"])))
                time.sleep(0.05)


def test_all_processes_switch_within_5_s_and_never_mix_versions(postgis_dsn, city_file, slice_city, live_server,
                                                                 token, tmp_path):
    from test_server_versions import centre, fresh_database, grids_package

    from jngis.grids import make_grids
    from jngis.layers import read_city
    from jngis.store import open_store

    dsn = fresh_database(postgis_dsn, "versions_multiprocess")
    city = read_city(city_file)
    with open_store(dsn) as store:
        store.write_city(city)
    regridded = make_grids(slice_city.communities, slice_city.units, min_households=150, max_households=250, seed=1)
    old_codes, new_codes = frozenset(city.grids["grid_code"]), frozenset(regridded["grid_code"])
    z, x, y = centre(regridded, 14)
    lon, lat = city.grids.to_crs(WGS84).union_all().representative_point().coords[0]
    environment = {"JNGIS_TILE_GEOMETRY_DIR": str(tmp_path), "JNGIS_STATS_CACHE_DIR": str(tmp_path)}
    with live_server(dsn, **environment) as first, live_server(dsn, **environment) as second:
        watchers = [Watcher(server.url, f"/tiles/grids/{z}/{x}/{y}.mvt") for server in (first, second)]
        for watcher in watchers:
            watcher.start()
        time.sleep(1.0)
        with grids_package(regridded, tmp_path / "plan.gpkg").open("rb") as upload:
            answer = httpx.post(first.url + "/versions", headers={"Authorization": f"Bearer {token}"},
                                files={"file": ("plan.gpkg", upload)}, data={"note": "两进程切换"}, timeout=120)
        assert answer.status_code == 201, answer.text
        adopted = time.monotonic()
        version = answer.json()["version_id"]
        deadline = adopted + 60
        while not all(version in w.first_seen for w in watchers):
            assert time.monotonic() < deadline, "a process never switched to the adopted version"
            time.sleep(0.1)
        time.sleep(1.0)  # answers after the switch, too
        for watcher in watchers:
            watcher.stop.set()
            watcher.join(timeout=30)

    seen = [w.first_seen[version] for w in watchers]
    print(f"switched {min(seen) - adopted:.1f} s and {max(seen) - adopted:.1f} s after the adoption")
    assert max(seen) - min(seen) < 5.0, f"processes switched {max(seen) - min(seen):.1f} s apart"
    assert max(seen) - adopted < 30.0  # adopt -> served with its tiles, on the slice
    # versions before the adopted one (0: none kept yet; 1: the store's boundaries recorded) hold the old grids
    def codes_of(served: int) -> frozenset:
        return new_codes if served == version else old_codes

    for watcher in watchers:
        versions = {v for v, _ in watcher.tiles} | {v for v, _, _ in watcher.stats}
        assert version in versions and min(versions) < version and max(versions) == version, versions
        for served, codes in watcher.tiles:
            assert codes and codes <= codes_of(served), f"a tile of version {served} holds other grids"
        for served, named, codes in watcher.stats:
            assert named == served and codes == codes_of(served), f"counts of version {served} are another's"
    with open_store(dsn) as store:  # and a new order is placed in a grid of the new version
        assert store.create_order(lon, lat, category="环境卫生", who="test")["grid_code"] in new_codes
