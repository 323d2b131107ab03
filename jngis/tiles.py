"""Mapbox Vector Tiles (MVT 2.1) of city layers, and PMTiles pyramids.

:class:`VectorTiles` serves the tiles of a set of layers (GeoDataFrames in any
CRS) in EPSG:3857 with XYZ addressing, extent 4096 and a 64-unit buffer, the
way the map server and MapLibre need them:

* every feature has an integer id that is the same at every zoom (the code
  itself when the key column holds digit codes such as ``grid_code``), and the
  key column is also a property, so MapLibre can use ``promoteId`` or
  feature-state;
* polygon layers are simplified per zoom as a *coverage*
  (:func:`shapely.coverage_simplify`), so neighbouring polygons keep one shared
  edge at every zoom: no slivers, no gaps; a polygon that would vanish at a
  low zoom is drawn as a small square (``min_size`` tile units) instead of
  being dropped;
* cold tiles are cut from geometry precomputed once per zoom in integer
  world-pixel coordinates (coverage-simplified, then snap-rounded as a whole
  so it stays a valid coverage), found with an STRtree, clipped and encoded
  by numba-compiled loops over the whole tile (``jngis._mvt``);
  warm tiles come from an in-memory LRU cache bounded in bytes.

:func:`write_pmtiles` writes the pyramid of several layers into one PMTiles
archive (the ``jngis tiles build`` command).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely import GeometryType

from jngis import _mvt
from jngis._numba import warm_once
from jngis import crs as jcrs
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    NotFoundError,
    ParameterError,
    SchemaError,
    TileError,
)

__all__ = ["VectorTiles", "CacheInfo", "PMTilesSummary", "write_pmtiles", "EXTENT", "BUFFER"]

#: Tile extent (coordinate units across one tile) and buffer, as MVT 2.1 and MapLibre use.
EXTENT = 4096
BUFFER = 64
#: Highest zoom accepted (world-pixel coordinates stay exact in float64).
MAX_ZOOM = 24

_HALF_WORLD = 20037508.342789244  # half the EPSG:3857 world width in metres
_MAX_LATITUDE = 85.0511287798066
_PERSONAL = re.compile(r"caller|phone|mobile|id_?card|identity|身份证|电话|手机|姓名", re.IGNORECASE)
_MAX_JS_INTEGER = 2**53 - 1  # MapLibre ids are JavaScript numbers
_GEOMETRY_VERSION = 1  # bump when the per-zoom geometry changes: old cache files are ignored


class CacheInfo(NamedTuple):
    """State of the warm-tile cache."""

    hits: int
    misses: int
    tiles: int
    bytes: int
    max_bytes: int


class PMTilesSummary(NamedTuple):
    """What :func:`write_pmtiles` wrote."""

    path: Path
    tiles: int
    bytes: int
    minzoom: int
    maxzoom: int
    layers: tuple[str, ...]


@dataclass
class _Ragged:
    """(Multi)polygons as integer coordinates with ring / polygon / feature offsets."""

    coords: np.ndarray
    rings: np.ndarray
    polygons: np.ndarray
    features: np.ndarray
    bounds: np.ndarray | None = None
    markers: int = 0

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _mvt.take(self.coords, self.rings, self.polygons, self.features,
                         np.ascontiguousarray(index, dtype=np.int64))

    def geometries(self, index: np.ndarray) -> np.ndarray:
        coords, rings, polygons, features = self.take(index)
        return shapely.from_ragged_array(GeometryType.MULTIPOLYGON, coords.astype(np.float64),
                                         (rings, polygons, features))


def _counts_to_offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _ragged(geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coordinates and offsets of polygons / multipolygons as one multipolygon structure."""
    if len(geoms) == 0:
        zero = np.zeros(1, np.int64)
        return np.zeros((0, 2)), zero, zero, zero
    geom_type, coords, offsets = shapely.to_ragged_array(geoms)
    if geom_type == GeometryType.POLYGON:
        rings, polygons = offsets
        return coords, rings.astype(np.int64), polygons.astype(np.int64), np.arange(len(geoms) + 1)
    rings, polygons, features = offsets
    return coords, rings.astype(np.int64), polygons.astype(np.int64), features.astype(np.int64)


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of clipping results (a clip can leave lines)."""
    types = shapely.get_type_id(geoms)
    odd = np.flatnonzero((types != 3) & (types != 6))
    if len(odd):
        geoms = geoms.copy()
        for i in odd:
            parts = [p for p in shapely.get_parts(geoms[i]) if shapely.get_type_id(p) in (3, 6)]
            geoms[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return geoms


def _snap_round_coverage(polygons: np.ndarray) -> np.ndarray:
    """A polygonal coverage moved onto the integer grid, still a valid coverage.

    Rounding each vertex on its own keeps shared edges shared but can push a
    vertex across a nearly collinear neighbouring edge (sub-unit overlaps).
    Instead the whole linework is snap-rounded and noded at once (GEOS
    overlay with ``grid_size=1``), polygonised, and each face goes back to the
    polygon its interior point lies in. Polygons left with no face (smaller
    than the grid) come back empty.
    """
    out = np.empty(len(polygons), dtype=object)
    out[:] = shapely.Polygon()
    lines = shapely.union_all(shapely.boundary(polygons), grid_size=1.0)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
    if len(faces) == 0:
        return out
    face, owner = shapely.STRtree(polygons).query(shapely.point_on_surface(faces),
                                                  predicate="within")
    face, first = np.unique(face, return_index=True)  # a face belongs to one polygon
    owner = owner[first]
    order = np.argsort(owner, kind="stable")
    face, owner = face[order], owner[order]
    starts = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    ends = np.r_[starts[1:], len(owner)]
    single = ends - starts == 1
    out[owner[starts[single]]] = faces[face[starts[single]]]
    for start, end in zip(starts[~single], ends[~single]):
        out[owner[start]] = shapely.coverage_union_all(faces[face[start:end]])
    return out


def _world_pixels(coords: np.ndarray, zoom: int) -> np.ndarray:
    """EPSG:3857 metres to world-pixel coordinates of ``zoom`` (Y down, EXTENT per tile)."""
    size = EXTENT * 2.0**zoom
    out = np.empty_like(coords, dtype=np.float64)
    out[:, 0] = (coords[:, 0] + _HALF_WORLD) / (2 * _HALF_WORLD) * size
    out[:, 1] = (_HALF_WORLD - coords[:, 1]) / (2 * _HALF_WORLD) * size
    return out


def _lonlat(px: np.ndarray, zoom: int) -> np.ndarray:
    size = EXTENT * 2.0**zoom
    lon = px[..., 0] / size * 360.0 - 180.0
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * px[..., 1] / size))))
    return np.stack([lon, lat], axis=-1)


def _check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TileError(f"{name}={value!r} is not a tile coordinate; expected an integer")
    return int(value)


class _Layer:
    """One layer's input and its lazily built per-zoom tile geometry."""

    def __init__(self, name: str, gdf: gpd.GeoDataFrame, *, minzoom: int, maxzoom: int,
                 id_column: str | None, columns: Sequence[str] | None, coverage: bool,
                 tolerance: float, min_size: int, cache_dir: Path | None = None,
                 detail_zoom: int = 0) -> None:
        self.name = name
        self.encoded_name = name.encode("utf-8")
        self.minzoom, self.maxzoom = minzoom, maxzoom
        self.coverage, self.tolerance, self.min_size = coverage, tolerance, min_size
        self.lock = threading.Lock()
        self._check_geometry(gdf)
        self.kind = "point" if (shapely.get_type_id(gdf.geometry.values) == 0).all() else "polygon"
        self.key = _key_column(name, gdf)
        self.columns = self._public_columns(gdf, columns)
        self.ids = self._ids(gdf, id_column)
        self.n = len(gdf)
        self.fields = {c: _field_type(gdf[c]) for c in self.columns}
        self._source = gdf  # never modified: converted lazily
        self._base: np.ndarray | None = None
        self._clean: np.ndarray | None = None
        self._key: str | None = None
        self.cache_dir = cache_dir
        self._tree: shapely.STRtree | None = None
        self._zooms: dict[int, _Ragged] = {}
        self._zoom_locks: dict[int, threading.Lock] = {}
        self._tags: tuple[np.ndarray, np.ndarray, bytes] | None = None
        self._overview: tuple[np.ndarray, np.ndarray, bytes] | None = None
        self.detail_zoom = detail_zoom
        self.bounds = self._lonlat_bounds(gdf)

    # -- checks -----------------------------------------------------------
    def _check_geometry(self, gdf: gpd.GeoDataFrame) -> None:
        name = self.name
        if gdf.crs is None:
            raise CRSError(f"layers[{name!r}] has no CRS; expected one such as EPSG:4548 or "
                           "EPSG:4490: use gdf.set_crs(...)")
        geoms = gdf.geometry.values
        bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        if bad.any():
            raise GeometryError(f"layers[{name!r}] has missing or empty geometries in rows "
                                f"{list(gdf.index[bad][:5])}; expected a geometry in every row")
        types = shapely.get_type_id(geoms)
        points = types == 0
        polygons = (types == 3) | (types == 6)
        if not (points.all() or polygons.all()):
            kinds = sorted(set(gdf.geom_type))
            raise GeometryError(f"layers[{name!r}] has geometry types {kinds}; expected only "
                                "Point or only Polygon/MultiPolygon in one layer")
        if polygons.all():
            invalid = ~shapely.is_valid(geoms)
            if invalid.any():
                raise GeometryError(
                    f"layers[{name!r}] has invalid polygons in rows {list(gdf.index[invalid][:5])} "
                    f"({shapely.is_valid_reason(geoms[np.flatnonzero(invalid)[0]])}); expected valid "
                    "polygons (repair with shapely.make_valid)")

    def _public_columns(self, gdf: gpd.GeoDataFrame, columns: Sequence[str] | None) -> list[str]:
        available = [c for c in gdf.columns if c != gdf.geometry.name]
        if columns is None:
            chosen = [c for c in available if not _PERSONAL.search(str(c))]
        else:
            if isinstance(columns, str) or not isinstance(columns, Sequence):
                raise InputTypeError(f"columns[{self.name!r}]={columns!r}; expected a list of "
                                     "column names")
            missing = [c for c in columns if c not in available]
            if missing:
                raise SchemaError(f"columns[{self.name!r}] names {missing}, not columns of the "
                                  f"layer; expected some of {available}")
            personal = [c for c in columns if _PERSONAL.search(str(c))]
            if personal:
                raise SchemaError(f"columns[{self.name!r}] names personal data {personal}; "
                                  "tiles are public and never carry names or phone numbers")
            chosen = list(columns)
        if self.key is not None and self.key not in chosen:
            chosen.insert(0, self.key)
        return [str(c) for c in chosen]

    def _ids(self, gdf: gpd.GeoDataFrame, id_column: str | None) -> np.ndarray:
        if id_column is not None:
            if id_column not in gdf.columns:
                raise SchemaError(f"id_column={id_column!r} is not a column of layer "
                                  f"{self.name!r}; expected one of {list(gdf.columns)}")
            ids = _integer_ids(gdf[id_column])
            if ids is None:
                raise SchemaError(f"id_column={id_column!r} of layer {self.name!r} does not hold "
                                  f"unique non-negative integers below 2**53 (or digit codes); "
                                  "expected one integer id per feature")
            return ids
        if self.key is not None:
            ids = _integer_ids(gdf[self.key])
            if ids is not None:
                return ids
        # Row order is the id: stable across zooms and restarts for the same layer file.
        return np.arange(1, len(gdf) + 1, dtype=np.uint64)

    def _lonlat_bounds(self, gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
        # the extremes of the vertices in lon/lat (reprojecting the layer's geometries
        # to read their bounds cost 0.5 s of a server's start)
        x, y = shapely.get_coordinates(gdf.geometry.values).T
        if x.size == 0:  # an empty layer has no bounds (as GeoSeries.total_bounds says)
            return (float("nan"),) * 4
        lon, lat = jcrs.transformer(gdf.crs, 4326).transform(x, y)
        west, south, east, north = np.min(lon), np.min(lat), np.max(lon), np.max(lat)
        if south < -_MAX_LATITUDE or north > _MAX_LATITUDE:
            raise CRSError(f"layers[{self.name!r}] reaches latitude {max(-south, north):.2f}; "
                           f"web-mercator tiles cover only |latitude| <= {_MAX_LATITUDE:.4f}")
        return float(west), float(south), float(east), float(north)

    # -- lazily built geometry --------------------------------------------
    def base(self) -> tuple[np.ndarray, shapely.STRtree]:
        """Geometry in float world pixels of ``maxzoom`` and its STRtree (candidate lookup)."""
        if self._tree is None:
            with self.lock:
                if self._tree is None:
                    mercator = self._source.geometry.to_crs(3857).values
                    if self.kind == "point":
                        base = _world_pixels(shapely.get_coordinates(mercator), self.maxzoom)
                        tree = shapely.STRtree(shapely.points(base))
                    else:
                        base = shapely.transform(mercator, lambda c: _world_pixels(c, self.maxzoom))
                        # Cleaning moves vertices by far less than the query's slack, so the
                        # tree of the raw polygons finds every candidate of every zoom.
                        tree = shapely.STRtree(base)
                    self._base = base
                    self._tree = tree
        return self._base, self._tree

    def coverage_base(self) -> np.ndarray:
        """The polygons edge-matched into a valid coverage (built once, only to simplify)."""
        if self._clean is None:
            base, _ = self.base()
            with self.lock:
                if self._clean is None:
                    if self.coverage and not shapely.coverage_is_valid(base):
                        # Edge-match neighbours (shared vertices) so the simplification keeps
                        # one shared edge per pair.
                        cleaned = shapely.coverage_clean(base)
                        lost = shapely.is_empty(cleaned)
                        cleaned[lost] = base[lost]
                        base = cleaned
                    self._clean = base
        return self._clean

    def cache_key(self) -> str:
        """Hash of everything the per-zoom geometry depends on."""
        if self._key is None:
            digest = hashlib.sha256()
            digest.update(repr((_GEOMETRY_VERSION, self.name, self.maxzoom, self.coverage,
                                self.tolerance, self.min_size, self._source.crs.to_wkt())).encode())
            digest.update(b"".join(shapely.to_wkb(self._source.geometry.values).tolist()))
            self._key = digest.hexdigest()[:24]
        return self._key

    def zoom(self, z: int) -> _Ragged:
        """Polygons simplified and snapped to the integer grid of zoom ``z`` (built once)."""
        found = self._zooms.get(z)
        if found is not None:
            return found
        with self.lock:
            zoom_lock = self._zoom_locks.setdefault(z, threading.Lock())
        with zoom_lock:
            found = self._zooms.get(z)
            if found is None:
                found = self._read_zoom(z)
                if found is None:
                    found = self._build_zoom(z)
                    self._write_zoom(z, found)
                self._zooms[z] = found
        return found

    def _zoom_file(self, z: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.name}-{self.cache_key()}-z{z}.npz"

    def _read_zoom(self, z: int) -> _Ragged | None:
        path = self._zoom_file(z)
        if path is None or not path.exists():
            return None
        try:
            with np.load(path) as saved:
                return _Ragged(saved["coords"], saved["rings"], saved["polygons"],
                               saved["features"], bounds=saved["bounds"],
                               markers=int(saved["markers"]))
        except (OSError, ValueError, KeyError):  # a damaged file is rebuilt, never trusted
            return None

    def _write_zoom(self, z: int, zoom: _Ragged) -> None:
        path = self._zoom_file(z)
        if path is None:
            return
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.npz")
        try:
            np.savez(temporary, coords=zoom.coords, rings=zoom.rings, polygons=zoom.polygons,
                     features=zoom.features, bounds=zoom.bounds, markers=zoom.markers)
            os.replace(temporary, path)
        except OSError:  # a read-only cache folder only costs speed
            temporary.unlink(missing_ok=True)

    def _build_zoom(self, z: int) -> _Ragged:
        base = self.coverage_base()
        scale = 2.0 ** (z - self.maxzoom)
        tolerance = self.tolerance / scale
        if self.coverage:
            simple = shapely.coverage_simplify(base, tolerance)
            geoms = _snap_round_coverage(shapely.transform(simple, lambda c: c * scale))
        else:
            simple = shapely.simplify(base, tolerance, preserve_topology=True)
            coords, rings, polygons, features = _ragged(simple)
            geoms = shapely.from_ragged_array(GeometryType.MULTIPOLYGON, np.rint(coords * scale),
                                              (rings, polygons, features))
            invalid = ~shapely.is_valid(geoms)
            if invalid.any():
                geoms[invalid] = _polygonal(shapely.make_valid(
                    geoms[invalid], method="structure", keep_collapsed=False))
        collapsed = shapely.is_empty(geoms) | (shapely.area(geoms) == 0)
        if collapsed.any():
            # Too small for the integer grid of this zoom: a small square keeps it visible.
            centre = np.rint(shapely.get_coordinates(shapely.point_on_surface(simple[collapsed]))
                             * scale)
            half = self.min_size / 2
            geoms[collapsed] = shapely.box(centre[:, 0] - half, centre[:, 1] - half,
                                           centre[:, 0] + half, centre[:, 1] + half)
        coords, rings, polygons, features = _ragged(geoms)
        dtype = np.int32 if EXTENT * 2.0**z + 2 * self.min_size < 2**31 else np.int64
        return _Ragged(np.rint(coords).astype(dtype), rings, polygons, features,
                       bounds=np.rint(shapely.bounds(geoms)).astype(np.int64),
                       markers=int(collapsed.sum()))

    def tags(self) -> tuple[np.ndarray, np.ndarray, bytes]:
        """Per-feature global value ids (-1: missing), encoded values, encoded keys."""
        if self._tags is None:
            with self.lock:
                if self._tags is None:
                    table = np.full((self.n, len(self.columns)), -1, dtype=np.int64)
                    encoded: list[bytes] = []
                    for j, column in enumerate(self.columns):
                        codes, uniques = pd.factorize(_public_values(self._source[column]))
                        table[:, j] = np.where(codes >= 0, codes + len(encoded), -1)
                        encoded.extend(_mvt.value_messages(np.asarray(uniques, dtype=object)))
                    values = np.empty(len(encoded), dtype=object)
                    values[:] = encoded
                    keys = b"".join(_mvt.key_message(c) for c in self.columns)
                    self._tags = (table, values, keys)
        return self._tags

    def overview_tags(self) -> tuple[np.ndarray, np.ndarray, bytes]:
        """:meth:`tags` of the overview columns only (the key and the name), below ``detail_zoom``."""
        if self._overview is None:
            table, values, _ = self.tags()
            keep = [j for j, c in enumerate(self.columns) if c in (self.key, "name")]
            self._overview = (np.ascontiguousarray(table[:, keep]), values,
                              b"".join(_mvt.key_message(self.columns[j]) for j in keep))
        return self._overview

    # -- one tile ---------------------------------------------------------
    def render(self, z: int, x: int, y: int) -> bytes:
        base, tree = self.base()
        to_max = 2.0 ** (self.maxzoom - z)
        x0, y0 = x * EXTENT - BUFFER, y * EXTENT - BUFFER
        x1, y1 = (x + 1) * EXTENT + BUFFER, (y + 1) * EXTENT + BUFFER
        slack = self.min_size + 1
        candidates = np.sort(tree.query(shapely.box((x0 - slack) * to_max, (y0 - slack) * to_max,
                                                    (x1 + slack) * to_max, (y1 + slack) * to_max)))
        if len(candidates) == 0:
            return b""
        if self.kind == "point":
            local = np.rint(base[candidates] / to_max) - (x * EXTENT, y * EXTENT)
            inside = ((local >= -BUFFER) & (local <= EXTENT + BUFFER)).all(axis=1)
            features = candidates[inside]
            ints, counts = _mvt.point_commands(local[inside])
            return self._encode(z, features, _mvt.POINT, ints, counts)
        zoom = self.zoom(z)
        ints, counts = _mvt.polygon_tile(zoom.coords, zoom.rings, zoom.polygons, zoom.features,
                                         zoom.bounds, candidates, x0, y0, x1, y1,
                                         x * EXTENT, y * EXTENT)
        drawn = counts > 0
        return self._encode(z, candidates[drawn], _mvt.POLYGON, ints, counts[drawn])

    def _encode(self, z: int, features: np.ndarray, geom_type: int, ints: np.ndarray,
                counts: np.ndarray) -> bytes:
        if len(features) == 0:
            return b""
        table, values, keys = self.tags() if z >= self.detail_zoom else self.overview_tags()
        pairs, tag_counts, used = _mvt.tag_pairs(table, np.ascontiguousarray(features, np.int64))
        return _mvt.encode_layer(self.encoded_name, self.ids[features], geom_type, ints, counts,
                                 pairs, tag_counts, keys, b"".join(values[used].tolist()), EXTENT)

    def tiles_at(self, z: int) -> np.ndarray:
        """(x, y) of every tile at zoom ``z`` that may hold a feature of this layer."""
        if self.kind == "point":
            base, _ = self.base()
            px = base / 2.0 ** (self.maxzoom - z)
            bounds = np.hstack([px, px])
        else:
            bounds = self.zoom(z).bounds.astype(np.float64)
        last = 2**z - 1
        tx0 = np.clip(np.floor((bounds[:, 0] - BUFFER) / EXTENT), 0, last).astype(np.int64)
        ty0 = np.clip(np.floor((bounds[:, 1] - BUFFER) / EXTENT), 0, last).astype(np.int64)
        tx1 = np.clip(np.floor((bounds[:, 2] + BUFFER) / EXTENT), 0, last).astype(np.int64)
        ty1 = np.clip(np.floor((bounds[:, 3] + BUFFER) / EXTENT), 0, last).astype(np.int64)
        width, height = tx1 - tx0 + 1, ty1 - ty0 + 1
        feature = np.repeat(np.arange(len(bounds)), width * height)
        k = _mvt.ranges(np.zeros(len(bounds), np.int64), width * height)
        xs = tx0[feature] + k % width[feature]
        ys = ty0[feature] + k // width[feature]
        return np.unique(np.stack([xs, ys], axis=1), axis=0)


def _key_column(name: str, gdf: gpd.GeoDataFrame) -> str | None:
    from jngis.layers import SCHEMAS

    if name in SCHEMAS and SCHEMAS[name].key in gdf.columns:
        return SCHEMAS[name].key
    for schema in SCHEMAS.values():
        if schema.key in gdf.columns:
            return schema.key
    return None


def _integer_ids(values: pd.Series) -> np.ndarray | None:
    """Unique non-negative integers below 2**53 from ints or digit strings, else None."""
    if values.isna().any():
        return None
    if pd.api.types.is_integer_dtype(values.dtype):
        ids = values.to_numpy(dtype=np.int64)
    else:
        text = values.astype(str)
        if not text.str.fullmatch(r"\d{1,16}").all():
            return None
        ids = text.astype(np.int64).to_numpy()
    if (ids < 0).any() or (ids > _MAX_JS_INTEGER).any() or len(np.unique(ids)) != len(ids):
        return None
    return ids.astype(np.uint64)


def _public_values(values: pd.Series) -> pd.Series:
    """Property values as MVT can hold them: text, numbers, booleans; datetimes as ISO text."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
        return text.where(values.notna())
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.astype(object)
    return values


def _field_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "Boolean"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "Number"
    if isinstance(values.dtype, pd.StringDtype):
        return "String"
    present = values.dropna()
    if len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return "Boolean"
    return "String"


def _per_layer(name: str, value: Any, layers: Iterable[str], check: Callable[[Any], Any]) -> dict:
    """Expand a scalar-or-mapping option to one value per layer."""
    layers = list(layers)
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in layers]
        if unknown:
            raise NotFoundError(f"{name} names unknown layers {unknown}; expected some of {layers}")
        return {layer: check(value[layer]) if layer in value else None for layer in layers}
    return {layer: check(value) for layer in layers}


def _zoom_value(name: str) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) \
                or not 0 <= value <= MAX_ZOOM:
            raise ParameterError(f"{name}={value!r}; expected an integer zoom from 0 to {MAX_ZOOM}")
        return int(value)
    return check


def _warm_encoder() -> None:
    """Compile the numba encoder once per process, in the thread that builds the first VectorTiles.

    First tiles requested from several server threads at once would otherwise
    compile concurrently, and CPython 3.11.7's ``ast`` (which numba parses
    source with) is not thread-safe: see :mod:`jngis._numba`.
    """
    warm_once("mvt", _compile_encoder)


def _compile_encoder() -> None:
    # the VectorTiles built here reach _warm_encoder again: warm_once returns at once
    polygons = gpd.GeoDataFrame({"code": ["1"]}, geometry=[shapely.box(0, 0, 1000, 1000)], crs=3857)
    points = gpd.GeoDataFrame({"code": ["2"]}, geometry=[shapely.Point(500, 500)], crs=3857)
    tiles = VectorTiles({"polygons": polygons, "points": points}, cache_mb=0)
    for layer in tiles.layers:  # the z14 tile north-east of the origin holds both
        tiles.tile(layer, 14, 8192, 8191)


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
        Bound of the warm-tile cache in MiB of tile bytes (0 disables it).
    id_column : str or dict of str to str, optional
        Column of unique non-negative integers (or digit codes) to use as the
        feature id. By default the layer's key column (``grid_code``,
        ``community_code``, ``order_id``...) when it holds digit codes, else the
        row number + 1. Either way the id of a feature is the same at every zoom.
    columns : dict of str to list of str, optional
        Properties per layer. By default every column except the geometry and
        personal data (caller, phone...); the key column is always included.
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
    Thread-safe: geometry per (layer, zoom) is built once under a lock, tiles
    are cut from immutable arrays and the cache is guarded by a lock.

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
        if not isinstance(layers, Mapping):
            raise InputTypeError(f"layers is a {type(layers).__name__}; expected a dict of layer "
                                 "name -> GeoDataFrame")
        if not layers:
            raise ParameterError("layers={}; expected at least one layer")
        for name, gdf in layers.items():
            if not isinstance(name, str) or not name:
                raise InputTypeError(f"layer name {name!r}; expected a non-empty string")
            if not isinstance(gdf, gpd.GeoDataFrame):
                raise InputTypeError(f"layers[{name!r}] is a {type(gdf).__name__}; expected a "
                                     "GeoDataFrame")
        if isinstance(cache_mb, bool) or not isinstance(cache_mb, (int, float)) \
                or not math.isfinite(cache_mb) or cache_mb < 0:
            raise ParameterError(f"cache_mb={cache_mb!r}; expected a number of MiB >= 0")
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) \
                or not math.isfinite(tolerance) or tolerance < 0:
            raise ParameterError(f"tolerance={tolerance!r}; expected tile units >= 0")
        if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) \
                or not 1 <= min_size <= BUFFER:
            raise ParameterError(f"min_size={min_size!r}; expected an integer from 1 to {BUFFER} "
                                 "tile units")
        if cache_dir is not None:
            cache_dir = Path(cache_dir)
            if not cache_dir.is_dir():
                raise NotFoundError(f"cache_dir={str(cache_dir)!r} is not a folder; expected an "
                                    "existing folder for the per-zoom geometry")
        names = list(layers)
        lows = _per_layer("minzoom", minzoom, names, _zoom_value("minzoom"))
        highs = _per_layer("maxzoom", maxzoom, names, _zoom_value("maxzoom"))
        ids = _per_layer("id_column", id_column, names, lambda v: v)
        covers = _per_layer("coverage", coverage, names, bool)
        details = (dict.fromkeys(names) if detail_zoom is None
                   else _per_layer("detail_zoom", detail_zoom, names, _zoom_value("detail_zoom")))
        if columns is not None and not isinstance(columns, Mapping):
            raise InputTypeError(f"columns is a {type(columns).__name__}; expected a dict of "
                                 "layer name -> list of column names")
        chosen = _per_layer("columns", columns or {}, names, lambda v: v)
        self._layers: dict[str, _Layer] = {}
        for name, gdf in layers.items():
            low = 0 if lows[name] is None else lows[name]
            high = 16 if highs[name] is None else highs[name]
            if low > high:
                raise ParameterError(f"minzoom={low} > maxzoom={high} for layer {name!r}; expected "
                                     "minzoom <= maxzoom")
            self._layers[name] = _Layer(
                name, gdf, minzoom=low, maxzoom=high, id_column=ids[name], columns=chosen[name],
                coverage=covers[name] is not False, tolerance=float(tolerance),
                min_size=int(min_size), cache_dir=cache_dir,
                detail_zoom=0 if details[name] is None else details[name])
        self._max_bytes = int(cache_mb * 2**20)
        self._cache: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._cache_bytes = 0
        self._hits = self._misses = 0
        self._cache_lock = threading.Lock()
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
        found = self._layer(layer)
        return pd.Series(found.ids, index=found._source.index, name="feature_id")

    def tile(self, layer: str, z: int, x: int, y: int) -> bytes:
        """The uncompressed MVT tile ``z/x/y`` of one layer (``b""`` when it holds no feature).

        Raises :class:`~jngis.errors.NotFoundError` for an unknown layer or a
        zoom outside the layer's range, and :class:`~jngis.errors.TileError`
        for a z/x/y that is not a tile address (x or y outside 0..2**z-1).
        """
        found = self._layer(layer)
        z, x, y = self._address(found, z, x, y)
        key = (layer, z, x, y)
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                self._hits += 1
                return cached
            self._misses += 1
        data = found.render(z, x, y)
        self._remember(key, data)
        return data

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
        west, south, east, north = found.bounds
        centre_zoom = min(max(found.minzoom, 12), found.maxzoom)
        key = f"; key property {found.key!r}" if found.key else ""
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
                "description": f"{found.n} {found.kind} features; integer feature id stable "
                               f"across zooms{key}",
                "minzoom": found.minzoom,
                "maxzoom": found.maxzoom,
                "fields": dict(found.fields),
            }],
        }

    def prepare(self, layers: Sequence[str] | None = None, zooms: Iterable[int] | None = None,
                progress: Callable[[str], None] | None = None) -> None:
        """Build the per-zoom geometry now instead of on the first tile (e.g. at server start)."""
        for name in (self.layers if layers is None else layers):
            found = self._layer(name)
            found.base()
            found.tags()
            if found.kind == "polygon":
                for z in range(found.minzoom, found.maxzoom + 1):
                    if zooms is None or z in zooms:
                        found.zoom(z)
                        if progress:
                            progress(f"{name} z{z}")

    def tiles_at(self, layer: str, z: int) -> np.ndarray:
        """(x, y) of every tile of zoom ``z`` that may hold features of ``layer`` (a superset)."""
        found = self._layer(layer)
        z = self._address(found, z, 0, 0)[0]
        return found.tiles_at(z)

    def cache_info(self) -> CacheInfo:
        """Hits, misses, tiles and bytes held by the warm-tile cache."""
        with self._cache_lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), self._cache_bytes,
                             self._max_bytes)

    def clear_cache(self) -> None:
        """Forget every cached tile (the per-zoom geometry stays)."""
        with self._cache_lock:
            self._cache.clear()
            self._cache_bytes = 0

    def markers(self, layer: str, z: int) -> int:
        """How many polygons of ``layer`` are drawn as ``min_size`` squares at zoom ``z``."""
        found = self._layer(layer)
        z = self._address(found, z, 0, 0)[0]
        return 0 if found.kind == "point" else found.zoom(z).markers

    # -- internals --------------------------------------------------------
    def _layer(self, layer: str) -> _Layer:
        found = self._layers.get(layer) if isinstance(layer, str) else None
        if found is None:
            raise NotFoundError(f"layer={layer!r} does not exist; expected one of "
                                f"{', '.join(self._layers)}")
        return found

    @staticmethod
    def _address(found: _Layer, z: object, x: object, y: object) -> tuple[int, int, int]:
        z, x, y = _check_int("z", z), _check_int("x", x), _check_int("y", y)
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
        return z, x, y

    def _remember(self, key: tuple[str, int, int, int], data: bytes) -> None:
        size = len(data) + 64  # the key and bookkeeping count too
        if size > self._max_bytes:
            return
        with self._cache_lock:
            if key in self._cache:
                return
            self._cache[key] = data
            self._cache_bytes += size
            while self._cache_bytes > self._max_bytes:
                _, old = self._cache.popitem(last=False)
                self._cache_bytes -= len(old) + 64


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
    from pmtiles.tile import Compression, TileType, zxy_to_tileid
    from pmtiles.writer import Writer

    if not isinstance(tiles, VectorTiles):
        raise InputTypeError(f"tiles is a {type(tiles).__name__}; expected a VectorTiles")
    names = tuple(tiles.layers if layers is None else layers)
    if not names:
        raise ParameterError("layers=[]; expected at least one layer name")
    found = [tiles._layer(n) for n in names]
    low = min(f.minzoom for f in found) if minzoom is None else _zoom_value("minzoom")(minzoom)
    high = max(f.maxzoom for f in found) if maxzoom is None else _zoom_value("maxzoom")(maxzoom)
    if low > high:
        raise ParameterError(f"minzoom={low} > maxzoom={high}; expected minzoom <= maxzoom")
    path = Path(path)
    if not path.parent.exists():
        raise NotFoundError(f"path={str(path)!r}: folder {str(path.parent)!r} does not exist")

    plan: list[tuple[int, int, int, int]] = []  # tile id, z, x, y
    for z in range(low, high + 1):
        addresses = [f.tiles_at(z) for f in found if f.minzoom <= z <= f.maxzoom]
        if not addresses:
            continue
        for x, y in np.unique(np.concatenate(addresses), axis=0).tolist():
            plan.append((zxy_to_tileid(z, x, y), z, x, y))
    plan.sort()
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    written = 0
    try:
        with open(temporary, "wb") as handle:
            writer = Writer(handle)
            for done, (tile_id, z, x, y) in enumerate(plan, 1):
                data = b"".join(_render(tiles, f, z, x, y) for f in found
                                if f.minzoom <= z <= f.maxzoom)
                if data:
                    writer.write_tile(tile_id, gzip.compress(data, compresslevel=6, mtime=0))
                    written += 1
                if progress is not None and (done % 256 == 0 or done == len(plan)):
                    progress(done, len(plan))
            if written == 0:
                raise ParameterError(f"layers {list(names)} have no features at zooms {low} to "
                                     f"{high}; expected at least one tile to write")
            west = min(f.bounds[0] for f in found)
            south = min(f.bounds[1] for f in found)
            east = max(f.bounds[2] for f in found)
            north = max(f.bounds[3] for f in found)
            centre_zoom = min(max(low, 12), high)
            header = {
                "tile_type": TileType.MVT,
                "tile_compression": Compression.GZIP,
                "min_lon_e7": int(west * 1e7), "min_lat_e7": int(south * 1e7),
                "max_lon_e7": int(east * 1e7), "max_lat_e7": int(north * 1e7),
                "center_zoom": centre_zoom,
                "center_lon_e7": int((west + east) / 2 * 1e7),
                "center_lat_e7": int((south + north) / 2 * 1e7),
            }
            metadata = {
                "name": path.stem,
                "format": "pbf",
                "type": "overlay",
                "generator": "jngis.tiles",
                "minzoom": str(low), "maxzoom": str(high),
                "bounds": f"{west},{south},{east},{north}",
                "vector_layers": [
                    tiles.tilejson(f.name, "{z}/{x}/{y}")["vector_layers"][0] for f in found],
            }
            writer.finalize(header, metadata)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return PMTilesSummary(path, written, path.stat().st_size, low, high, names)


def _render(tiles: VectorTiles, found: _Layer, z: int, x: int, y: int) -> bytes:
    # Straight to the renderer: a pyramid build would only flush the warm cache.
    return found.render(z, x, y)

