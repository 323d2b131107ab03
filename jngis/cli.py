"""The ``jngis`` command: build the sample city, validate and summarise layer files.

User errors (a missing file, a layer that breaks its schema) print one line
to stderr and exit with status 1; Ctrl-C stops cleanly with status 130 and
never leaves a half-written file. A command handed a store (``--store``,
``$JNGIS_STORE``) never creates one: a mistyped path or URL is refused.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from jngis._cli_access import audit, users
from jngis._cli_errors import user_errors
from jngis._cli_versions import adopt, versions
from jngis.codes import INPUT_CRS_NAMES


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jngis")
def main() -> None:
    """jngis: GIS for urban grassroots governance in Jinan."""


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the city to this GeoPackage (default: only the cache).")
@click.option("--rebuild", is_flag=True, help="Rebuild even if a cached copy exists.")
@click.option("--seed", type=int, default=None, help="Generator seed (default: the published sample).")
@user_errors
def sample(out: Path | None, rebuild: bool, seed: int | None) -> None:
    """Build (or reuse) the Jinan sample city and print its summary."""
    from jngis.layers import write_city
    from jngis.sample import SAMPLE_SEED, load_sample, sample_path

    seed = SAMPLE_SEED if seed is None else seed
    started = time.perf_counter()

    def progress(message: str) -> None:
        click.echo(f"[{time.perf_counter() - started:5.1f} s] {message}", err=True)

    cached = sample_path(seed).exists() and not rebuild
    city = load_sample(seed=seed, rebuild=rebuild, progress=progress)
    click.echo(f"sample city {'read from' if cached else 'built into'} {sample_path(seed)} "
               f"in {time.perf_counter() - started:.1f} s", err=True)
    if out is not None:
        write_city(city, out)
        click.echo(f"wrote {out}", err=True)
    _print_summary(city)


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", default=None, help="Layer kind for single-layer files (default: guessed).")
@click.option("--layer", default=None, help="Layer name inside a multi-layer file.")
@user_errors
def validate(file: Path, kind: str | None, layer: str | None) -> None:
    """Check a city GeoPackage, or one layer file, against the jngis schemas."""
    from jngis.layers import read_city, read_layer

    city = _read(file, kind, layer, read_city, read_layer)
    for name, gdf in city.layers():
        click.echo(f"ok  {name:<12} {len(gdf):>8,} features  {gdf.crs.to_string()}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", default=None, help="Layer kind for single-layer files (default: guessed).")
@user_errors
def info(file: Path, kind: str | None) -> None:
    """Counts per layer and the size bands of communities and grids."""
    from jngis.layers import read_city, read_layer

    _print_summary(_read(file, kind, None, read_city, read_layer))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True, help="Port to listen on.")
@click.option("--store", default=None,
              help="A city GeoPackage or a postgresql:// DSN (default: $JNGIS_STORE, else the sample city).")
@click.option("--workers", default=1, type=click.IntRange(1, 64), show_default=True,
              help="Server processes sharing the port; each opens the store and hears its change channel.")
@click.option("--access-log/--no-access-log", default=False, show_default=True,
              help="Log every request (a line per tile costs as much as serving a warm one).")
@click.option("--timeout-keep-alive", default=5, type=click.IntRange(1, 3600), show_default=True,
              help="Seconds an idle connection is kept open (more than the clients' own expiry avoids a race).")
@user_errors
def serve(host: str, port: int, store: str | None, workers: int, access_log: bool, timeout_keep_alive: int) -> None:
    """Start the map server: the viewer at http://HOST:PORT/, the API beside it."""
    import os

    import uvicorn

    from jngis.server.settings import Settings
    from jngis.store import require_store

    started = time.perf_counter()
    if store or os.environ.get("JNGIS_STORE"):
        require_store(store or os.environ["JNGIS_STORE"])  # the server would start an empty city on a typo
    settings = Settings() if store is None else Settings(store=store)
    if settings.write_token is None:
        click.echo("jngis: writes are off (set JNGIS_WRITE_TOKEN to accept work orders)", err=True)
    if workers > 1:  # each worker process builds its own app from the same JNGIS_* environment
        from jngis.server.deps import default_store
        from jngis.store import open_store

        url = settings.store or default_store()
        open_store(url, create=False).close()  # schema and history import once, before the workers race for them
        os.environ["JNGIS_STORE"] = url
        click.echo(f"jngis: {workers} worker processes; open http://{host}:{port}/", err=True)
        uvicorn.run("jngis.server.app:create_app", factory=True, workers=workers,
                    host=host, port=port, log_level="info", access_log=access_log,
                    timeout_keep_alive=timeout_keep_alive)
        return
    from jngis.server.app import create_app

    app = create_app(settings)
    click.echo(f"jngis: city loaded in {time.perf_counter() - started:.1f} s; "
               f"open http://{host}:{port}/", err=True)
    uvicorn.run(app, host=host, port=port, log_level="info", access_log=access_log,
                    timeout_keep_alive=timeout_keep_alive)


@main.command("import-orders")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", "input_crs", type=click.Choice(INPUT_CRS_NAMES), default="wgs84",
              show_default=True, help="Coordinate system of the lon/lat columns (gcj02: Amap/Tencent, bd09: Baidu).")
@click.option("--store", default=None,
              help="A city GeoPackage or a postgresql:// DSN (default: $JNGIS_STORE, else the sample city).")
@click.option("--who", default="import", show_default=True, help="Name recorded in the trail.")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write every refused row (row, reason, status, candidates) to this CSV.")
@click.option("--prefix", "prefixes", multiple=True,
              help="A province or city an address may start with (default for the sample city: 山东省, 济南市).")
@user_errors
def import_orders(file: Path, input_crs: str, store: str | None, who: str, errors_file: Path | None,
                  prefixes: tuple[str, ...]) -> None:
    """Load 12345 work orders from a CSV or Excel export with lon/lat columns, or an address column.

    A row with an address (地址, 事发地址 ...) and no lon/lat is placed at the unit the
    address names when the match is sure; an ambiguous or unknown address is refused with
    its candidates.

    Good rows land in one transaction (all or none: Ctrl-C leaves the store
    as it was); refused rows are listed with their spreadsheet row number and
    reason. Exit status 0 when every row landed, 3 when some were refused.
    The store must exist: a mistyped --store is refused, never created.
    """
    import os

    import pandas as pd

    from jngis.address import JINAN_PREFIXES
    from jngis.sample import sample_path
    from jngis.store import open_store
    from jngis.store.bulk import clean_export
    from jngis.workorders import read_order_table

    target = store or os.environ.get("JNGIS_STORE") or str(sample_path())
    if not prefixes and Path(target) == sample_path():
        prefixes = JINAN_PREFIXES
    with open_store(target, create=False) as opened:
        table = read_order_table(file)
        good, bad = clean_export(opened, table, crs=input_crs, prefixes=prefixes)
        result = opened.import_orders(good, who=who, progress=len(good) >= 1000)
    refused = pd.concat([bad, result.bad], ignore_index=True).sort_values("row", kind="stable")
    rate = result.imported / result.seconds if result.seconds > 0 else float("inf")
    click.echo(f"imported {result.imported:,} of {len(table):,} orders into {opened.url} "
               f"in {result.seconds:.1f} s ({rate:,.0f} orders/s)", err=True)
    if len(refused):
        click.secho(f"refused {len(refused):,} rows:", fg="yellow", err=True)
        candidates = refused["candidates"] if "candidates" in refused.columns else [""] * len(refused)
        for row, reason, maybe in list(zip(refused["row"], refused["reason"], candidates))[:50]:
            click.echo(f"  row {row}: {reason}" + (f" (candidates: {maybe})" if isinstance(maybe, str) and maybe
                                                   else ""), err=True)
        if len(refused) > 50:
            click.echo(f"  ... and {len(refused) - 50:,} more" + ("" if errors_file else " (see --errors)"), err=True)
        if errors_file is not None:
            refused.to_csv(errors_file, index=False)
            click.echo(f"wrote every refused row to {errors_file}", err=True)
        sys.exit(3)


def _read(file, kind, layer, read_city, read_layer):
    from jngis.errors import NotFoundError
    from jngis.layers import City

    if not file.exists():
        raise NotFoundError(f"{file}: no such file or folder")
    if kind is not None or layer is not None:
        gdf = read_layer(file, kind, layer=layer)
        from jngis.layers import guess_kind

        city = City()
        setattr(city, kind or guess_kind(gdf), gdf)
        return city
    return read_city(file)


def _print_summary(city) -> None:
    for line in city.summary():
        click.echo(line)


@main.group()
def tiles() -> None:
    """Vector tiles (MVT) of a city: PMTiles archives of the tile pyramid."""


@tiles.command("build")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The .pmtiles archive to write (replaced atomically).")
@click.option("--city", "city_file", type=click.Path(path_type=Path), default=None,
              help="City GeoPackage or folder (default: the sample city).")
@click.option("--minzoom", type=int, default=10, show_default=True)
@click.option("--maxzoom", type=int, default=14, show_default=True)
@click.option("--layers", default=None,
              help="Comma-separated layer names (default: every layer of the city).")
@user_errors
def tiles_build(out: Path, city_file: Path | None, minzoom: int, maxzoom: int,
                layers: str | None) -> None:
    """Write the tiles of a city's layers, z MINZOOM to MAXZOOM, into one PMTiles archive."""
    from tqdm import tqdm

    from jngis.errors import NotFoundError
    from jngis.layers import read_city, read_layer
    from jngis.sample import load_sample
    from jngis.tiles import VectorTiles, write_pmtiles

    started = time.perf_counter()
    city = load_sample() if city_file is None else _read(city_file, None, None, read_city, read_layer)
    available = dict(city.layers())
    names = list(available) if layers is None else [n.strip() for n in layers.split(",") if n.strip()]
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise NotFoundError(f"--layers {layers!r}: no layer {', '.join(unknown) or '(none given)'} in "
                            f"the city; expected some of {', '.join(available)}")
    vector_tiles = VectorTiles({n: available[n] for n in names}, minzoom=minzoom, maxzoom=maxzoom,
                               cache_mb=0)
    click.echo(f"simplifying {', '.join(names)} per zoom (z{minzoom}-z{maxzoom}) ...", err=True)
    with tqdm(total=0, unit="tile", desc="tiles", disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = write_pmtiles(vector_tiles, out, progress=progress)
    click.echo(f"wrote {summary.path}: {summary.tiles:,} tiles z{summary.minzoom}-z{summary.maxzoom} "
               f"of {', '.join(summary.layers)}, {summary.bytes / 2**20:.1f} MiB "
               f"in {time.perf_counter() - started:.1f} s")


for command in (adopt, versions, users, audit):  # the commands of their own modules
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()

