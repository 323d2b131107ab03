"""The ``jngis`` command: build the sample city, validate and summarise layer files.

User errors (a missing file, a layer that breaks its schema) print one line
to stderr and exit with status 1; Ctrl-C stops cleanly with status 130 and
never leaves a half-written file.
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path

import click

from jngis.errors import JngisError

def _user_errors(func):
    """Turn JngisError and Ctrl-C into one clear line and an exit status."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except JngisError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.secho("interrupted: nothing was written", fg="yellow", err=True)
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="jngis")
def main() -> None:
    """jngis: GIS for urban grassroots governance in Jinan."""


@main.command()
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the city to this GeoPackage (default: only the cache).")
@click.option("--rebuild", is_flag=True, help="Rebuild even if a cached copy exists.")
@click.option("--seed", type=int, default=None, help="Generator seed (default: the published sample).")
@_user_errors
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
@_user_errors
def validate(file: Path, kind: str | None, layer: str | None) -> None:
    """Check a city GeoPackage, or one layer file, against the jngis schemas."""
    from jngis.layers import read_city, read_layer

    city = _read(file, kind, layer, read_city, read_layer)
    for name, gdf in city.layers():
        click.echo(f"ok  {name:<12} {len(gdf):>8,} features  {gdf.crs.to_string()}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--kind", default=None, help="Layer kind for single-layer files (default: guessed).")
@_user_errors
def info(file: Path, kind: str | None) -> None:
    """Counts per layer and the size bands of communities and grids."""
    from jngis.layers import read_city, read_layer

    _print_summary(_read(file, kind, None, read_city, read_layer))


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


if __name__ == "__main__":  # pragma: no cover
    main()
