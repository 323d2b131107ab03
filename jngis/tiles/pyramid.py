""":func:`write_pmtiles`: the tile pyramid of several layers in one PMTiles v3 archive."""

from __future__ import annotations

import gzip
import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from jngis.cache import atomic_write
from jngis.errors import InputTypeError, NotFoundError, ParameterError
from jngis.tiles.arcs import warm as warm_arcs
from jngis.tiles.vector_tiles import VectorTiles, _Layer, zoom_value

#: The temporary file is private (mkstemp); the archive is meant to be served and shared.
_ARCHIVE_MODE = 0o644


class PMTilesSummary(NamedTuple):
    """What :func:`write_pmtiles` wrote."""

    path: Path
    tiles: int
    bytes: int
    minzoom: int
    maxzoom: int
    layers: tuple[str, ...]


def write_pmtiles(tiles: VectorTiles, path: str | os.PathLike, *, layers: Sequence[str] | None = None,
                  minzoom: int | None = None, maxzoom: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> PMTilesSummary:
    """Write the tile pyramid of several layers into one PMTiles v3 archive.

    Each tile holds every requested layer that has features there (gzip
    compressed, as web clients expect). The archive is written to a
    temporary file next to ``path`` and moved into place at the end, so an
    error or Ctrl-C never leaves a half-written archive.

    Parameters
    ----------
    tiles : VectorTiles
    path : path of the ``.pmtiles`` file to write
    layers : names of the layers to include (default: all)
    minzoom, maxzoom : zoom range (default: the widest range of the layers)
    progress : called as ``progress(done, total)`` after each zoom's tiles

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from jngis.sample import load_slice
    >>> tiles = VectorTiles({"communities": load_slice().communities}, minzoom=10, maxzoom=12)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "slice.pmtiles"
    >>> summary = write_pmtiles(tiles, out)
    >>> summary.tiles > 0, out.exists()
    (True, True)
    """
    if not isinstance(tiles, VectorTiles):
        raise InputTypeError(f"tiles is a {type(tiles).__name__}; expected a VectorTiles")
    names = tuple(tiles.layers if layers is None else layers)
    if not names:
        raise ParameterError("layers=[]; expected at least one layer name")
    found = [tiles._layer(n) for n in names]
    low = min(f.minzoom for f in found) if minzoom is None else zoom_value("minzoom")(minzoom)
    high = max(f.maxzoom for f in found) if maxzoom is None else zoom_value("maxzoom")(maxzoom)
    if low > high:
        raise ParameterError(f"minzoom={low} > maxzoom={high}; expected minzoom <= maxzoom")
    path = Path(path)
    if not path.parent.exists():
        raise NotFoundError(f"path={str(path)!r}: folder {str(path.parent)!r} does not exist")
    written = [0]

    def write(temporary: Path) -> None:
        written[0] = _write_archive(tiles, found, temporary, low, high, path.stem, progress)
        os.chmod(temporary, _ARCHIVE_MODE)

    if not atomic_write(path, write):
        raise ParameterError(f"path={str(path)!r} cannot be written; expected a writable folder "
                             "with room for the archive")
    return PMTilesSummary(path, written[0], path.stat().st_size, low, high, names)


def _plan(found: list[_Layer], low: int, high: int) -> list[tuple[int, int, int, int]]:
    """(tile id, z, x, y) of every tile that may hold a feature, in tile-id order."""
    from pmtiles.tile import zxy_to_tileid

    plan = []
    for z in range(low, high + 1):
        addresses = [f.geometry.tiles_at(z) for f in found if f.minzoom <= z <= f.maxzoom]
        if addresses:
            for x, y in np.unique(np.concatenate(addresses), axis=0).tolist():
                plan.append((zxy_to_tileid(z, x, y), z, x, y))
    plan.sort()
    return plan


def _workers() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _prepare(found: list[_Layer], low: int, high: int, pool: ThreadPoolExecutor) -> None:
    """Build every polygon layer's per-zoom geometry, zooms side by side in ``pool``'s threads.

    The numba loops release the GIL; the layers' first zooms alternate, so two
    layers' coverage cleaning runs at once (each is built once, whoever asks).
    """
    layers = [f for f in found if f.source.kind == "polygon"]
    warm_arcs()
    zooms = [[(f, z) for z in range(min(high, f.maxzoom), max(low, f.minzoom) - 1, -1)]
             for f in layers]
    tasks = [task for rank in itertools.zip_longest(*zooms) for task in rank if task is not None]
    list(pool.map(lambda task: task[0].geometry.zoom(task[1]), tasks))


def _write_archive(tiles: VectorTiles, found: list[_Layer], target: Path, low: int, high: int,
                   name: str, progress: Callable[[int, int], None] | None) -> int:
    """Write the archive to ``target``; returns how many tiles it holds."""

    def render(address: tuple[int, int, int, int]) -> bytes:
        _, z, x, y = address
        # Straight to the encoders: a pyramid build would only flush the warm cache.
        data = b"".join(f.encoder.render(z, x, y) for f in found if f.minzoom <= z <= f.maxzoom)
        return gzip.compress(data, compresslevel=6, mtime=0) if data else b""

    with ThreadPoolExecutor(_workers()) as pool:
        _prepare(found, low, high, pool)
        plan = _plan(found, low, high)
        return _write_tiles(tiles, found, target, low, high, name, progress, plan,
                            pool.map(render, plan))


def _write_tiles(tiles: VectorTiles, found: list[_Layer], target: Path, low: int, high: int,
                 name: str, progress: Callable[[int, int], None] | None,
                 plan: list[tuple[int, int, int, int]], rendered: Iterable[bytes]) -> int:
    """Write the rendered tiles of ``plan`` (in its order) and the directory to ``target``."""
    from pmtiles.writer import Writer

    written = 0
    with open(target, "wb") as handle:
        writer = Writer(handle)
        for done, ((tile_id, _, _, _), data) in enumerate(zip(plan, rendered), 1):
            if data:
                writer.write_tile(tile_id, data)
                written += 1
            if progress is not None and (done % 256 == 0 or done == len(plan)):
                progress(done, len(plan))
        if written == 0:
            raise ParameterError(f"layers {[f.name for f in found]} have no features at zooms "
                                 f"{low} to {high}; expected at least one tile to write")
        header, metadata = _header(tiles, found, low, high, name)
        writer.finalize(header, metadata)
    return written


def _header(tiles: VectorTiles, found: list[_Layer], low: int, high: int,
            name: str) -> tuple[dict, dict]:
    """The PMTiles header and metadata of an archive of ``found`` at zooms ``low`` to ``high``."""
    from pmtiles.tile import Compression, TileType

    west = min(f.source.bounds[0] for f in found)
    south = min(f.source.bounds[1] for f in found)
    east = max(f.source.bounds[2] for f in found)
    north = max(f.source.bounds[3] for f in found)
    header = {
        "tile_type": TileType.MVT,
        "tile_compression": Compression.GZIP,
        "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
        "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
        "center_zoom": min(max(low, 12), high),
        "center_lon_e7": int((west + east) / 2 * 1e7),
        "center_lat_e7": int((south + north) / 2 * 1e7),
    }
    metadata = {
        "name": name,
        "format": "pbf",
        "type": "overlay",
        "generator": "jngis.tiles",
        "minzoom": str(low), "maxzoom": str(high),
        "bounds": f"{west},{south},{east},{north}",
        "vector_layers": [tiles.tilejson(f.name, "{z}/{x}/{y}")["vector_layers"][0] for f in found],
    }
    return header, metadata
