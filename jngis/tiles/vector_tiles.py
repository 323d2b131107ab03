""":class:`VectorTiles`: the tiles of several layers, cut on demand and kept with their gzip and ETag."""

from __future__ import annotations

import copy
import gzip
import hashlib
import itertools
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis._numba import warm_once
from jngis.cache import Cache
from jngis.codes import MAX_ZOOM
from jngis.errors import InputTypeError, NotFoundError, ParameterError, TileError
from jngis.tiles.encoder import LayerEncoder
from jngis.tiles.geometry import BUFFER, ZoomGeometry
from jngis.tiles.source import LayerSource

_DEFAULT_ZOOMS = (0, 16)  # a layer's zoom range when a per-layer option leaves it out
_ENTRY_BYTES = 128  # the key, the ETag and the bookkeeping of one cached tile
#: Numbers each built layer: warm tiles are keyed by it, so a replaced layer never serves the
#: tiles of the one it replaced while both share one cache (:meth:`VectorTiles.replaced`).
_REVISIONS = itertools.count(1)


class Tile(NamedTuple):
    """One encoded tile as a server sends it: computed once, then kept in the warm cache.

    Examples
    --------
    >>> tile = Tile.of(b"\\x1a\\x02")
    >>> tile.data, tile.etag
    (b'\\x1a\\x02', '"0158ffd357e8ffdc04e78c64"')
    >>> Tile.of(b"").gzip  # an empty tile is sent as it is
    b''
    """

    data: bytes  #: the uncompressed MVT bytes (``b""``: no feature here)
    gzip: bytes  #: ``data`` gzip-compressed (``b""`` for an empty tile)
    etag: str  #: a strong HTTP entity tag of ``data``, quotes included

    @classmethod
    def of(cls, data: bytes) -> Tile:
        """The tile of ``data`` with its gzip bytes and ETag."""
        packed = gzip.compress(data, compresslevel=6, mtime=0) if data else b""
        return cls(data, packed, f'"{hashlib.blake2b(data, digest_size=12).hexdigest()}"')


class CacheInfo(NamedTuple):
    """State of the warm-tile cache."""

    hits: int
    misses: int
    tiles: int
    bytes: int
    max_bytes: int


class _Layer(NamedTuple):
    """One tiled layer: its input, its per-zoom geometry, its encoder and its zoom range."""

    source: LayerSource
    geometry: ZoomGeometry
    encoder: LayerEncoder
    minzoom: int
    maxzoom: int
    revision: int
    options: dict[str, Any]

    @property
    def name(self) -> str:
        return self.source.name

    def successor(self, gdf: gpd.GeoDataFrame) -> _Layer:
        """This layer with the features of ``gdf``: itself when they are the same; the same
        per-zoom geometry (only the properties re-read) when only their columns changed; else
        geometry updated from this layer's (:meth:`ZoomGeometry.update`: only what changed is
        recomputed)."""
        if gdf is self.source.gdf:
            return self
        new = _build_layer(self.name, gdf, **self.options)
        if new.geometry.cache_key() != self.geometry.cache_key():
            geometry = self.geometry.update(gdf.geometry)
            encoder = LayerEncoder(new.source, geometry, detail_zoom=self.options["detail_zoom"],
                                   min_size=self.options["min_size"])
            return new._replace(geometry=geometry, encoder=encoder)
        if _same_properties(new.source, self.source):
            return self
        encoder = LayerEncoder(new.source, self.geometry, detail_zoom=self.options["detail_zoom"],
                               min_size=self.options["min_size"])
        return new._replace(geometry=self.geometry, encoder=encoder)


def _build_layer(name: str, gdf: gpd.GeoDataFrame, *, minzoom: int, maxzoom: int,
                 id_column: str | None = None, columns: Sequence[str] | None = None,
                 coverage: bool = True, tolerance: float = 4.0, min_size: int = 8,
                 cache_dir: Path | None = None, detail_zoom: int = 0) -> _Layer:
    source = LayerSource(name, gdf, id_column=id_column, columns=columns)
    geometry = ZoomGeometry(name, gdf.geometry, point=source.kind == "point", maxzoom=maxzoom,
                            coverage=coverage, tolerance=tolerance, min_size=min_size,
                            cache_dir=cache_dir)
    encoder = LayerEncoder(source, geometry, detail_zoom=detail_zoom, min_size=min_size)
    options = dict(minzoom=minzoom, maxzoom=maxzoom, id_column=id_column, columns=columns,
                   coverage=coverage, tolerance=tolerance, min_size=min_size, cache_dir=cache_dir,
                   detail_zoom=detail_zoom)
    return _Layer(source, geometry, encoder, minzoom, maxzoom, next(_REVISIONS), options)


def _same_properties(new: LayerSource, old: LayerSource) -> bool:
    """Whether two layers publish the same ids and property values in the same rows."""
    if new.columns != old.columns or not np.array_equal(new.ids, old.ids):
        return False
    return all(new.values(c).reset_index(drop=True).equals(old.values(c).reset_index(drop=True))
               for c in new.columns)


class VectorTiles:
    """Mapbox Vector Tiles of several layers, cut on demand and cached.

    Parameters
    ----------
    layers : dict of str to GeoDataFrame
        Layer name -> features (Points, or Polygons / MultiPolygons), in any
        CRS; each becomes one MVT layer of that name. The inputs are never
        modified.
    minzoom, maxzoom : int or dict of str to int
        Zoom range served (per layer when a dict; layers it leaves out get
        0 and 16). Tiles outside it raise :class:`~jngis.errors.NotFoundError`.
    cache_mb : float
        Bound of the warm-tile cache in MiB (a tile counts its bytes, its gzip
        bytes and its ETag; 0 disables the cache).
    id_column : str or dict of str to str, optional
        Column of unique non-negative integers (or digit codes) to use as the
        feature id. By default the layer's key column (``grid_code``,
        ``community_code``, ``order_id``...) when it holds digit codes, else the
        row number + 1. Either way the id of a feature is the same at every zoom.
    columns : dict of str to list of str, optional
        Properties per layer. By default every column except the geometry and
        personal data (:func:`jngis.codes.personal_columns`: caller, phone...);
        the key column is always included.
    coverage : bool or dict of str to bool
        Treat polygon layers as coverages (cleaned with
        :func:`shapely.coverage_clean` when their edges do not match, then
        simplified with :func:`shapely.coverage_simplify`). False simplifies
        each polygon on its own (for overlapping polygons).
    tolerance : float
        Simplification tolerance in tile units (EXTENT=4096 per tile side),
        about half a screen pixel of a 512-pixel tile.
    min_size : int
        Side, in tile units, of the square drawn for a polygon too small for
        the integer grid of a zoom (so it stays visible instead of vanishing).
    detail_zoom : int or dict of str to int, optional
        Zoom from which a layer's tiles carry every column; below it they
        carry only the key column and ``name`` (what a map joins and labels
        with), as tippecanoe-built overviews do: the city view of 4,622 grids
        shrinks from 400 to 220 KB a tile. Default: every column at every zoom.
    cache_dir : path, optional
        Existing folder where the per-zoom geometry is kept between runs
        (``.npz`` files named by a hash of the layer's geometry and these
        parameters). Building it for ~40,000 polygons costs several seconds
        per zoom; reading it back, milliseconds.

    Notes
    -----
    Thread-safe without a lock of its own: every lazily built thing (geometry
    per layer and zoom, property tables, warm tiles) goes through a
    :class:`jngis.cache.Cache`, which builds a missing entry once however many
    threads ask for it; tiles are cut from immutable arrays.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> tiles = VectorTiles({"communities": city.communities, "stations": city.stations},
    ...                     minzoom=10, maxzoom=16)
    >>> tiles.layers
    ('communities', 'stations')
    >>> data = tiles.tile("communities", 12, 3380, 1598)
    >>> data[:1], len(data) > 100
    (b'\\x1a', True)
    >>> served = tiles.served("communities", 12, 3380, 1598)
    >>> served.data == data, gzip.decompress(served.gzip) == data
    (True, True)
    >>> tiles.tilejson("stations", "http://localhost/tiles/stations/{z}/{x}/{y}.mvt")["minzoom"]
    10
    """

    def __init__(self, layers: Mapping[str, gpd.GeoDataFrame], *, minzoom: int | Mapping[str, int] = 0,
                 maxzoom: int | Mapping[str, int] = 16, cache_mb: float = 64,
                 id_column: str | Mapping[str, str] | None = None,
                 columns: Mapping[str, Sequence[str]] | None = None,
                 coverage: bool | Mapping[str, bool] = True, tolerance: float = 4.0,
                 min_size: int = 8, cache_dir: str | os.PathLike | None = None,
                 detail_zoom: int | Mapping[str, int] | None = None) -> None:
        _check_layers(layers)
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) \
                or not math.isfinite(cache_mb) or cache_mb < 0:
            raise ParameterError(f"cache_mb={cache_mb!r}; expected a number of MiB >= 0")
        tolerance = _checks.number("VectorTiles", "tolerance", tolerance, minimum=0)
        min_size = _checks.integer("VectorTiles", "min_size", min_size, minimum=1, maximum=BUFFER)
        options = _layer_options(list(layers), minzoom=minzoom, maxzoom=maxzoom,
                                 id_column=id_column, columns=columns, coverage=coverage,
                                 detail_zoom=detail_zoom)
        folder = _check_cache_dir(cache_dir)
        self._layers: dict[str, _Layer] = {
            name: _build_layer(name, gdf, tolerance=tolerance, min_size=min_size,
                               cache_dir=folder, **options[name])
            for name, gdf in layers.items()}
        self._tiles: Cache[Tile] = Cache(max_bytes=int(cache_mb * 2**20), weigher=_tile_bytes)
        #: The layers whose per-zoom geometry is not shared with the tiles this one replaced.
        self.rebuilt: tuple[str, ...] = tuple(self._layers)
        _warm_encoder()

    # -- public API -------------------------------------------------------
    @property
    def layers(self) -> tuple[str, ...]:
        """Names of the layers, in the order given."""
        return tuple(self._layers)

    def zoom_range(self, layer: str) -> tuple[int, int]:
        """``(minzoom, maxzoom)`` of a layer."""
        found = self._layer(layer)
        return found.minzoom, found.maxzoom

    def feature_ids(self, layer: str) -> pd.Series:
        """The MVT feature id of every feature, indexed like the input layer."""
        source = self._layer(layer).source
        return pd.Series(source.ids, index=source.gdf.index, name="feature_id")

    def tile(self, layer: str, z: int, x: int, y: int) -> bytes:
        """The uncompressed MVT tile ``z/x/y`` of one layer (``b""`` when it holds no feature).

        Raises :class:`~jngis.errors.NotFoundError` for an unknown layer or a
        zoom outside the layer's range, and :class:`~jngis.errors.TileError`
        for a z/x/y that is not a tile address (x or y outside 0..2**z-1).
        """
        found, z, x, y = self._address(layer, z, x, y)
        if self._tiles.max_bytes == 0:  # no cache: no gzip and ETag nobody keeps
            return found.encoder.render(z, x, y)
        return self._served(found, z, x, y).data

    def served(self, layer: str, z: int, x: int, y: int) -> Tile:
        """The tile ``z/x/y`` of one layer with its gzip bytes and ETag, from the warm cache.

        A missing tile is cut once however many threads ask for it at the
        same time. Raises as :meth:`tile` does.
        """
        return self._served(*self._address(layer, z, x, y))

    def tilejson(self, layer: str, url: str) -> dict:
        """TileJSON 3.0.0 of one layer whose tiles are at ``url`` (with ``{z}``, ``{x}``, ``{y}``).

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> points = gpd.GeoDataFrame({"station_id": ["S1"], "name": ["中心"]},
        ...                           geometry=[shapely.Point(117.0, 36.65)], crs="EPSG:4326")
        >>> doc = VectorTiles({"stations": points}).tilejson("stations", "/t/{z}/{x}/{y}.mvt")
        >>> doc["tilejson"], doc["vector_layers"][0]["fields"]
        ('3.0.0', {'station_id': 'String', 'name': 'String'})
        """
        found = self._layer(layer)
        if not isinstance(url, str) or not all(p in url for p in ("{z}", "{x}", "{y}")):
            raise ParameterError(f"url={url!r}; expected a tile URL template with {{z}}, {{x}} and "
                                 "{y}, such as 'http://host/tiles/grids/{z}/{x}/{y}.mvt'")
        source = found.source
        west, south, east, north = source.bounds
        centre_zoom = min(max(found.minzoom, 12), found.maxzoom)
        key = f"; key property {source.key!r}" if source.key else ""
        return {
            "tilejson": "3.0.0",
            "name": layer,
            "scheme": "xyz",
            "tiles": [url],
            "minzoom": found.minzoom,
            "maxzoom": found.maxzoom,
            "bounds": [west, south, east, north],
            "center": [(west + east) / 2, (south + north) / 2, centre_zoom],
            "vector_layers": [{
                "id": layer,
                "description": f"{len(source)} {source.kind} features; integer feature id stable "
                               f"across zooms{key}",
                "minzoom": found.minzoom,
                "maxzoom": found.maxzoom,
                "fields": dict(source.fields),
            }],
        }

    def prepare(self, layers: Sequence[str] | None = None, zooms: Iterable[int] | None = None,
                progress: Callable[[str], None] | None = None) -> None:
        """Build the per-zoom geometry now instead of on the first tile (e.g. at server start)."""
        for name in (self.layers if layers is None else layers):
            found = self._layer(name)
            found.geometry.base()
            found.encoder.tags()
            if found.source.kind == "polygon":
                for z in range(found.minzoom, found.maxzoom + 1):
                    if zooms is None or z in zooms:
                        found.geometry.zoom(z)
                        if progress:
                            progress(f"{name} z{z}")

    def replaced(self, layers: Mapping[str, gpd.GeoDataFrame]) -> VectorTiles:
        """These tiles with the features of some layers replaced (a new boundary version).

        The result is a new :class:`VectorTiles` (this one keeps serving what it
        served): a layer left out of ``layers``, or given with the same
        geometry and properties, is shared whole, its warm tiles included; one
        whose geometry is the same but whose properties changed keeps its
        per-zoom geometry and re-reads only the properties; the others are
        built anew, and :attr:`rebuilt` names them (what to :meth:`prepare`
        before serving the result). Both share one warm-tile cache, bounded
        as one; a replaced layer's tiles are never served for its successor.

        Examples
        --------
        >>> import geopandas as gpd, shapely
        >>> def cells(households):
        ...     return gpd.GeoDataFrame({"grid_code": ["370102001001001", "370102001001002"],
        ...                              "households": households},
        ...                             geometry=[shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)],
        ...                             crs=3857)
        >>> points = gpd.GeoDataFrame({"station_id": ["S1"]}, geometry=[shapely.Point(0.5, 0.5)], crs=3857)
        >>> old = VectorTiles({"grids": cells([300, 400]), "stations": points})
        >>> new = old.replaced({"grids": cells([350, 400])})
        >>> new.rebuilt, new.tile("grids", 0, 0, 0) != old.tile("grids", 0, 0, 0)
        ((), True)
        >>> moved = cells([350, 400]).set_geometry(gpd.GeoSeries([shapely.box(0, 0, 2, 1),
        ...                                                       shapely.box(2, 0, 3, 1)], crs=3857))
        >>> new.replaced({"grids": moved}).rebuilt
        ('grids',)
        """
        _check_layers(layers)
        unknown = [name for name in layers if name not in self._layers]
        if unknown:
            raise NotFoundError(f"layers names {unknown}, not layers of these tiles; expected some of "
                                f"{', '.join(self._layers)}")
        new = copy.copy(self)  # the options and the warm-tile cache are shared
        new._layers = {name: found.successor(layers[name]) if name in layers else found
                       for name, found in self._layers.items()}
        new.rebuilt = tuple(name for name, found in new._layers.items()
                            if found.geometry is not self._layers[name].geometry)
        return new

    def tiles_at(self, layer: str, z: int) -> np.ndarray:
        """(x, y) of every tile of zoom ``z`` that may hold features of ``layer`` (a superset)."""
        found, z, _, _ = self._address(layer, z, 0, 0)
        return found.geometry.tiles_at(z)

    def cache_info(self) -> CacheInfo:
        """Hits, misses, tiles and bytes held by the warm-tile cache."""
        cache = self._tiles
        return CacheInfo(cache.hits, cache.misses, len(cache), cache.weight, cache.max_bytes or 0)

    def clear_cache(self) -> None:
        """Forget every cached tile (the per-zoom geometry stays)."""
        self._tiles.clear()

    def markers(self, layer: str, z: int) -> int:
        """How many polygons of ``layer`` are drawn as ``min_size`` squares at zoom ``z``."""
        found, z, _, _ = self._address(layer, z, 0, 0)
        return 0 if found.source.kind == "point" else found.geometry.zoom(z).markers

    # -- internals --------------------------------------------------------
    def _served(self, found: _Layer, z: int, x: int, y: int) -> Tile:
        return self._tiles.get_or_insert((found.revision, z, x, y),
                                         lambda: Tile.of(found.encoder.render(z, x, y)))

    def _layer(self, layer: str) -> _Layer:
        found = self._layers.get(layer) if isinstance(layer, str) else None
        if found is None:
            raise NotFoundError(f"layer={layer!r} does not exist; expected one of "
                                f"{', '.join(self._layers)}")
        return found

    def _address(self, layer: str, z: object, x: object, y: object) -> tuple[_Layer, int, int, int]:
        found = self._layer(layer)
        if not (type(z) is int and type(x) is int and type(y) is int):  # the usual case, quickly
            z, x, y = _tile_coordinate("z", z), _tile_coordinate("x", x), _tile_coordinate("y", y)
        if not 0 <= z <= MAX_ZOOM:
            raise TileError(f"z={z} is not a zoom level; expected 0 to {MAX_ZOOM}")
        last = 2**z - 1
        if not 0 <= x <= last:
            raise TileError(f"x={x} is outside zoom {z}; expected 0 to {last}")
        if not 0 <= y <= last:
            raise TileError(f"y={y} is outside zoom {z}; expected 0 to {last}")
        if not found.minzoom <= z <= found.maxzoom:
            raise NotFoundError(f"layer {found.name!r} has tiles at zooms {found.minzoom} to "
                                f"{found.maxzoom}; z={z} is outside that range")
        return found, z, x, y


def _tile_bytes(tile: Tile) -> int:
    return len(tile.data) + len(tile.gzip) + _ENTRY_BYTES


def _tile_coordinate(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TileError(f"{name}={value!r} is not a tile coordinate; expected an integer")
    return int(value)


# -- options ------------------------------------------------------------------


def _check_layers(layers: Any) -> None:
    if not isinstance(layers, Mapping):
        raise InputTypeError(f"layers is a {type(layers).__name__}; expected a dict of layer "
                             "name -> GeoDataFrame")
    if not layers:
        raise ParameterError("layers={}; expected at least one layer")
    for name, gdf in layers.items():
        if not isinstance(name, str) or not name:
            raise InputTypeError(f"layer name {name!r}; expected a non-empty string")
        _checks.geodataframe("VectorTiles", f"layers[{name!r}]", gdf)


def _check_cache_dir(cache_dir: str | os.PathLike | None) -> Path | None:
    if cache_dir is None:
        return None
    folder = Path(cache_dir)
    if not folder.is_dir():
        raise NotFoundError(f"cache_dir={str(folder)!r} is not a folder; expected an existing "
                            "folder for the per-zoom geometry")
    return folder


def _layer_options(names: list[str], *, minzoom: Any, maxzoom: Any, id_column: Any, columns: Any,
                   coverage: Any, detail_zoom: Any) -> dict[str, dict[str, Any]]:
    """The per-layer keyword arguments of :func:`_build_layer`, each option checked once."""
    lows = _per_layer("minzoom", minzoom, names, zoom_value("minzoom"))
    highs = _per_layer("maxzoom", maxzoom, names, zoom_value("maxzoom"))
    ids = _per_layer("id_column", id_column, names, lambda v: v)
    covers = _per_layer("coverage", coverage, names, bool)
    details = (dict.fromkeys(names) if detail_zoom is None
               else _per_layer("detail_zoom", detail_zoom, names, zoom_value("detail_zoom")))
    if columns is not None and not isinstance(columns, Mapping):
        raise InputTypeError(f"columns is a {type(columns).__name__}; expected a dict of "
                             "layer name -> list of column names")
    chosen = _per_layer("columns", columns or {}, names, lambda v: v)
    options = {}
    for name in names:
        low = _DEFAULT_ZOOMS[0] if lows[name] is None else lows[name]
        high = _DEFAULT_ZOOMS[1] if highs[name] is None else highs[name]
        if low > high:
            raise ParameterError(f"minzoom={low} > maxzoom={high} for layer {name!r}; expected "
                                 "minzoom <= maxzoom")
        options[name] = dict(minzoom=low, maxzoom=high, id_column=ids[name], columns=chosen[name],
                             coverage=covers[name] is not False,
                             detail_zoom=0 if details[name] is None else details[name])
    return options


def _per_layer(name: str, value: Any, layers: Iterable[str], check: Callable[[Any], Any]) -> dict:
    """Expand a scalar-or-mapping option to one value per layer."""
    layers = list(layers)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in layers]
        if unknown:
            raise NotFoundError(f"{name} names unknown layers {unknown}; expected some of {layers}")
        return {layer: check(value[layer]) if layer in value else None for layer in layers}
    return {layer: check(value) for layer in layers}


def zoom_value(name: str) -> Callable[[Any], int]:
    """A check of a zoom option ``name``: an integer from 0 to :data:`jngis.codes.MAX_ZOOM`."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value <= MAX_ZOOM:
            raise ParameterError(f"{name}={value!r}; expected an integer zoom from 0 to {MAX_ZOOM}")
        return int(value)
    return check


# -- numba warm-up ------------------------------------------------------------


def _warm_encoder() -> None:
    """Compile the numba encoder once per process, in the thread that builds the first VectorTiles.

    First tiles requested from several server threads at once would otherwise
    compile concurrently, and CPython 3.11.7's ``ast`` (which numba parses
    source with) is not thread-safe: see :mod:`jngis._numba`.
    """
    warm_once("mvt", _compile_encoder)


def _compile_encoder() -> None:
    # Layers built directly, not through VectorTiles, whose constructor would reach this
    # warm-up again.
    polygons = gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.box(0, 0, 1000, 1000)], crs=3857)
    points = gpd.GeoDataFrame({"code": ["2"]}, geometry=[shapely.Point(500, 500)], crs=3857)
    for name, gdf in (("polygons", polygons), ("points", points)):
        layer = _build_layer(name, gdf, minzoom=0, maxzoom=_DEFAULT_ZOOMS[1])
        layer.encoder.render(14, 8192, 8191)  # the z14 tile north-east of the origin holds both
