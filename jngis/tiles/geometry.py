"""Per-zoom tile geometry of one layer: world pixels, coverage simplification, snapping.

A :class:`ZoomGeometry` holds what tiles are cut from: the layer in float world
pixels of its ``maxzoom`` with an STRtree (candidate lookup), and for polygon
layers one :class:`Ragged` array per zoom, coverage-simplified and snap-rounded
to the integer grid of that zoom. Each is built once, on first use, through a
:class:`jngis.cache.Cache` (concurrent first requests wait for one build), and
the per-zoom arrays can be kept on disk between runs (:func:`jngis.cache.atomic_write`).
:meth:`ZoomGeometry.update` makes a new version's geometry from the previous one's,
recomputing only around the changed features: the result equals a cold build.
"""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import shapely
from shapely import GeometryType

from jngis import _mvt
from jngis.cache import Cache, atomic_write
from jngis.tiles import _arc_kernels
from jngis.tiles.arcs import (
    MOSTLY,
    Arcs,
    ArcZoom,
    RaggedArrays,
    mend_pinched,
    ragged,
    ragged_integers,
    snap_clean,
    unnoded,
)
from jngis.tiles.arcs import warm as warm_arcs

#: Tile extent (coordinate units across one tile) and buffer, as MVT 2.1 and MapLibre use.
EXTENT = 4096
BUFFER = 64

_HALF_WORLD = 20037508.342789244  # half the EPSG:3857 world width in metres
#: Shared edges are matched by snapping vertices to this many grid steps per metre.
_CLEAN_PER_METRE = 1000.0
_GEOGRAPHIC_METRES = 111_320.0  # about one degree on the ground, for layers in degrees
_GEOMETRY_VERSION = 2  # bump when the per-zoom geometry changes: old cache files are ignored
_RECORD = "record"  # with a zoom, the key of its _ZoomRecord
_Saved = TypeVar("_Saved")


@dataclass
class Ragged:
    """(Multi)polygons as integer coordinates with ring / polygon / feature offsets and boxes."""

    coords: np.ndarray
    rings: np.ndarray
    polygons: np.ndarray
    features: np.ndarray
    bounds: np.ndarray  # per feature: xmin, ymin, xmax, ymax
    markers: int = 0

    def take(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _mvt.take(self.coords, self.rings, self.polygons, self.features,
                         np.ascontiguousarray(index, dtype=np.int64))

    def geometries(self, index: np.ndarray) -> np.ndarray:
        coords, rings, polygons, features = self.take(index)
        return shapely.from_ragged_array(GeometryType.MULTIPOLYGON, coords.astype(np.float64),
                                         (rings, polygons, features))

    def save(self, path: Path) -> None:
        np.savez(path, coords=self.coords, rings=self.rings, polygons=self.polygons,
                 features=self.features, bounds=self.bounds, markers=self.markers)

    @classmethod
    def load(cls, path: Path) -> Ragged | None:
        """The arrays saved at ``path``; None when the file is missing or damaged (rebuilt, never trusted)."""
        return _read(path, lambda saved: cls(saved["coords"], saved["rings"], saved["polygons"],
                                             saved["features"], bounds=saved["bounds"],
                                             markers=int(saved["markers"])))


def _read(path: Path, read: Callable[[Any], _Saved]) -> _Saved | None:
    """``read`` of the arrays saved at ``path``; None when the file is missing or damaged."""
    if not path.exists():
        return None
    try:
        with np.load(path) as saved:
            return read(saved)
    except (OSError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class _ZoomRecord:
    """What a later version's :meth:`ZoomGeometry.update` reuses of one zoom."""

    arcs: ArcZoom | None  #: the zoom's arcs (None: the zoom went through GEOS, nothing to reuse)
    squares: np.ndarray  #: per feature, whether it is drawn as a ``min_size`` square

    def save(self, path: Path) -> None:
        empty = np.zeros(0, np.int64)
        arcs = self.arcs
        with open(path, "wb") as handle:  # a handle: np.savez would add ".npz" to the name
            np.savez(handle, squares=self.squares, has_arcs=arcs is not None,
                     flags=empty if arcs is None else arcs.flags,
                     ints=empty.reshape(0, 2) if arcs is None else arcs.ints,
                     offsets=empty if arcs is None else arcs.offsets)

    @classmethod
    def load(cls, path: Path) -> _ZoomRecord | None:
        """The record saved at ``path``; None when missing or damaged (the zoom is then built cold)."""
        return _read(path, lambda saved: cls(
            ArcZoom(saved["flags"], saved["ints"], saved["offsets"]) if bool(saved["has_arcs"])
            else None, saved["squares"]))


def polygonal(geoms: np.ndarray) -> np.ndarray:
    """Keep only the polygonal parts of clipping results (a clip can leave lines)."""
    types = shapely.get_type_id(geoms)
    odd = np.flatnonzero((types != 3) & (types != 6))
    if len(odd):
        geoms = geoms.copy()
        for i in odd:
            parts = [p for p in shapely.get_parts(geoms[i]) if shapely.get_type_id(p) in (3, 6)]
            geoms[i] = shapely.union_all(parts) if parts else shapely.Polygon()
    return geoms


def world_pixels(coords: np.ndarray, zoom: int) -> np.ndarray:
    """EPSG:3857 metres to world-pixel coordinates of ``zoom`` (Y down, EXTENT per tile)."""
    size = EXTENT * 2.0**zoom
    out = np.empty_like(coords, dtype=np.float64)
    out[:, 0] = (coords[:, 0] + _HALF_WORLD) / (2 * _HALF_WORLD) * size
    out[:, 1] = (_HALF_WORLD - coords[:, 1]) / (2 * _HALF_WORLD) * size
    return out


def tile_range(bounds: np.ndarray, z: int) -> np.ndarray:
    """(x, y) of every tile of zoom ``z`` that a box of ``bounds`` (world pixels) reaches, buffer included."""
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


class ZoomGeometry:
    """What one layer's tiles are cut from, built once per zoom and kept.

    Parameters
    ----------
    name : the layer's name (names its cache files)
    geometry : the layer's geometries (a GeoSeries in any CRS; never modified)
    point : whether the layer holds points (else polygons)
    maxzoom : the layer's deepest zoom (the float world pixels are of it)
    coverage, tolerance, min_size : see :class:`jngis.tiles.VectorTiles`
    cache_dir : existing folder keeping the per-zoom arrays between runs, or None
    """

    def __init__(self, name: str, geometry, *, point: bool, maxzoom: int, coverage: bool,
                 tolerance: float, min_size: int, cache_dir: Path | None) -> None:
        self.name, self.point, self.maxzoom = name, point, maxzoom
        self.coverage, self.tolerance, self.min_size = coverage, tolerance, min_size
        self.cache_dir = cache_dir
        self._geometry = geometry
        self._built: Cache = Cache()  # "base", "clean", "arcs", "key" and each zoom, built once
        #: The version this one updates (held weakly: a version dropped by its server is not
        #: kept alive by its successor) and, per feature, the same feature there (-1: none).
        self._previous: tuple[weakref.ref[ZoomGeometry], np.ndarray] | None = None
        #: How many features :meth:`update` took unchanged from the previous geometry.
        self.reused = 0
        #: Per zoom updated from the previous version's, how many features were assembled again.
        self.reassembled: dict[int, int] = {}

    def update(self, geometry) -> ZoomGeometry:
        """The geometry of the layer's new version, reusing what its unchanged features allow.

        ``geometry`` is the new layer's GeoSeries (any CRS, rows in the order
        the new layer is tiled). A feature is unchanged when its WKB is the
        same as one of this geometry's. When every feature is unchanged, in
        the same order and CRS, everything built so far (world pixels, cleaned
        coverage, arcs, every zoom) is shared. Otherwise each zoom that this
        geometry has built is updated rather than rebuilt: only the arcs
        near the new or vanished ones are simplified and snapped again
        (:meth:`jngis.tiles.arcs.Arcs.zoom_since`), only the features with
        such an arc (or a new cleaned geometry) are assembled again, and the
        others are copied, so the zoom is exactly what a cold build of the new
        layer gives. ``self`` is never modified; it is held weakly (once it
        is gone, zooms not yet built are built cold).

        Examples
        --------
        >>> from jngis.sample import load_slice
        >>> communities = load_slice().communities
        >>> old = ZoomGeometry("communities", communities.geometry, point=False, maxzoom=14,
        ...                    coverage=True, tolerance=4.0, min_size=8, cache_dir=None)
        >>> built = old.zoom(12)
        >>> same = old.update(communities.geometry.copy())
        >>> same.reused == len(communities), same.zoom(12) is built
        (True, True)
        """
        new = ZoomGeometry(self.name, geometry, point=self.point, maxzoom=self.maxzoom,
                           coverage=self.coverage, tolerance=self.tolerance,
                           min_size=self.min_size, cache_dir=self.cache_dir)
        if geometry.crs != self._geometry.crs:
            return new
        position = {wkb: i for i, wkb in enumerate(self._wkb())}
        match = np.array([position.get(wkb, -1) for wkb in new._wkb()], dtype=np.int64)
        new.reused = int((match >= 0).sum())
        if len(match) == len(position) and (match == np.arange(len(match))).all():
            for key in ("base", "clean", "snapped", "arcs", "key", *range(self.maxzoom + 1),
                        *((_RECORD, z) for z in range(self.maxzoom + 1))):
                if key in self._built:
                    new._built.insert(key, self._built.get(key))
        elif new.reused and not self.point and self.coverage:
            new._previous = (weakref.ref(self), match)
        return new

    def base(self) -> tuple[np.ndarray, shapely.STRtree]:
        """Geometry in float world pixels of ``maxzoom`` and its STRtree (candidate lookup)."""
        return self._built.get_or_insert("base", self._build_base)

    def arcs(self) -> Arcs:
        """The cleaned coverage's shared arcs (built once, only to simplify)."""
        return self._built.get_or_insert("arcs", self._build_arcs)

    def cleaned(self) -> np.ndarray:
        """The polygons edge-matched into a valid coverage (built once, only to simplify)."""
        return self._built.get_or_insert("clean", self._build_clean)

    def is_cleaned(self) -> bool:
        """Whether :meth:`cleaned` ran (it does not when every zoom came from the cache folder)."""
        return "clean" in self._built

    def cache_key(self) -> str:
        """Hash of everything the per-zoom geometry depends on."""
        return self._built.get_or_insert("key", self._hash)

    def zoom(self, z: int) -> Ragged:
        """Polygons simplified and snapped to the integer grid of zoom ``z`` (built once)."""
        return self._built.get_or_insert(z, lambda: self._load_or_build(z))

    def tiles_at(self, z: int) -> np.ndarray:
        """(x, y) of every tile at zoom ``z`` that may hold a feature of this layer."""
        if self.point:
            base, _ = self.base()
            px = base / 2.0 ** (self.maxzoom - z)
            return tile_range(np.hstack([px, px]), z)
        return tile_range(self.zoom(z).bounds.astype(np.float64), z)

    # -- builds -------------------------------------------------------------
    def _build_base(self) -> tuple[np.ndarray, shapely.STRtree]:
        if self.point:
            mercator = self._geometry.to_crs(3857).values
            base = world_pixels(shapely.get_coordinates(mercator), self.maxzoom)
            return base, shapely.STRtree(shapely.points(base))
        previous, match = self._previous_version()
        if previous is None:
            base = self._world_pixels(self._geometry.values)
        else:  # projecting is per vertex: the unchanged features' are the previous version's
            base = previous.base()[0][np.maximum(match, 0)]
            base[match < 0] = self._world_pixels(self._geometry.values[match < 0])
        # Cleaning moves vertices by far less than the query's slack, so the tree of the raw
        # polygons finds every candidate of every zoom.
        return base, shapely.STRtree(base)

    def _wkb(self) -> list[bytes]:
        return self._built.get_or_insert("wkb", lambda: shapely.to_wkb(self._geometry.values).tolist())

    def _build_clean(self) -> np.ndarray:
        if self.coverage:
            snapped = self._snap_cleaned()
            if snapped is not None:
                return snapped
        base, _ = self.base()
        if self.coverage and not shapely.coverage_is_valid(base):
            # Edge-match neighbours (shared vertices) so the simplification keeps one shared
            # edge per pair.
            try:
                cleaned = shapely.coverage_clean(base)
            except shapely.errors.GEOSException:
                # GEOS refuses some overlapping inputs: each zoom's check then finds the
                # unmatched edges and snap-rounds the whole layer with GEOS instead.
                return base
            lost = shapely.is_empty(cleaned)
            cleaned[lost] = base[lost]
            return cleaned
        return base

    def _build_arcs(self) -> Arcs:
        warm_arcs()
        return Arcs.of(*ragged(self.cleaned()))

    def _snap_cleaned(self) -> np.ndarray | None:
        """The polygons snap-rounded to a millimetre in their own CRS, then in world pixels."""
        warm_arcs()
        crs = self._geometry.crs
        metres = _GEOGRAPHIC_METRES if crs.is_geographic else crs.axis_info[0].unit_conversion_factor
        grid = _CLEAN_PER_METRE * metres
        cleaned = self._snap_cleaned_since(grid)
        if cleaned is None:
            snapped = snap_clean(self._geometry.values, grid)
            if snapped is None:
                return None
            cleaned = self._world_pixels(snapped)
        self._built.insert("snapped", True)
        return cleaned

    def _snap_cleaned_since(self, grid: float) -> np.ndarray | None:
        """:meth:`_snap_cleaned` from the previous version's: only the polygons near changed ones
        are snapped again (a hot pixel acts within a grid step). None: snap them all."""
        previous, match = self._previous_version()
        if previous is None or "snapped" not in previous._built:
            return None
        geoms, before = self._geometry.values, previous._geometry.values
        kept = np.zeros(len(before), np.bool_)
        kept[match[match >= 0]] = True
        boxes = shapely.bounds(geoms)
        tree = shapely.STRtree(geoms)
        margin = 4.0 / grid

        def near(found: np.ndarray) -> np.ndarray:
            grown = shapely.box(found[:, 0] - margin, found[:, 1] - margin, found[:, 2] + margin,
                                found[:, 3] + margin)
            return np.unique(tree.query(grown)[1]) if len(found) else np.zeros(0, np.int64)

        changed = np.union1d(np.flatnonzero(match < 0),
                             near(np.concatenate([boxes[match < 0], shapely.bounds(before[~kept])])))
        if len(changed) > len(geoms) * MOSTLY:
            return None
        checked = near(boxes[changed])  # their neighbours: every contact of theirs is checked
        snapped = snap_clean(geoms[checked], grid, around=geoms[near(boxes[checked])])
        if snapped is None:
            return None
        cleaned = previous.cleaned()[np.maximum(match, 0)]
        cleaned[changed] = self._world_pixels(snapped[np.searchsorted(checked, changed)])
        return cleaned

    def _world_pixels(self, geoms: np.ndarray) -> np.ndarray:
        """Polygons in the layer's CRS to float world pixels of ``maxzoom`` (vertex by vertex)."""
        mercator = gpd.GeoSeries(geoms, crs=self._geometry.crs).to_crs(3857).values
        return shapely.transform(mercator, lambda c: world_pixels(c, self.maxzoom))

    def _hash(self) -> str:
        digest = hashlib.sha256()
        digest.update(repr((_GEOMETRY_VERSION, self.name, self.maxzoom, self.coverage,
                            self.tolerance, self.min_size, self._geometry.crs.to_wkt())).encode())
        digest.update(b"".join(self._wkb()))
        return digest.hexdigest()[:24]

    def _zoom_file(self, z: int) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.name}-{self.cache_key()}-z{z}.npz"

    def _load_or_build(self, z: int) -> Ragged:
        path = self._zoom_file(z)
        found = None if path is None else Ragged.load(path)
        if found is None:
            found = self._build_zoom(z)
            if path is not None:
                atomic_write(path, found.save)  # a read-only cache folder only costs speed
                record = self._record_file(z)
                if record is not None:
                    atomic_write(record, self._built.get((_RECORD, z)).save)
        return found

    def _record(self, z: int) -> _ZoomRecord | None:
        """What an update reuses of zoom ``z``: kept since it was built, or from the cache folder."""
        if (_RECORD, z) in self._built:
            return self._built.get((_RECORD, z))
        path = self._record_file(z)
        found = None if path is None else _ZoomRecord.load(path)
        if found is not None:
            self._built.insert((_RECORD, z), found)
        return found

    def _record_file(self, z: int) -> Path | None:
        if self.cache_dir is None or not self.coverage or self.point:
            return None
        return self.cache_dir / f"{self.name}-{self.cache_key()}-z{z}.arcs"

    def _build_zoom(self, z: int) -> Ragged:
        scale = 2.0 ** (z - self.maxzoom)
        if self.coverage:
            coords, rings, polygons, features = self._coverage_zoom(z, scale)
            squares = int(self._built.get((_RECORD, z)).squares.sum())
        else:
            chosen = np.arange(len(self._geometry))
            (coords, rings, polygons, features), drawn = self._squared(
                self._simplified(self.cleaned(), scale), chosen, scale)
            squares = int(drawn.sum())
        dtype = np.int32 if EXTENT * 2.0**z + 2 * self.min_size < 2**31 else np.int64
        return Ragged(coords.astype(dtype), rings, polygons, features,
                      bounds=_arc_kernels.feature_bounds(coords, rings, polygons, features),
                      markers=squares)

    def _coverage_zoom(self, z: int, scale: float) -> RaggedArrays:
        """The coverage at zoom ``z`` from its arcs, updated from the previous version's if it can be."""
        # Douglas-Peucker's tolerance bounds the distance moved; half the tile-unit
        # tolerance keeps edges about as close as the area-based GEOS simplifier did.
        tolerance = self.tolerance / 2
        updated = self._updated_zoom(z, scale, tolerance)
        if updated is not None:
            return updated
        arrays, repaired, zoom = self.arcs().simplified(scale, tolerance)
        arrays, squares = self._squared(arrays, np.arange(self.arcs().n_features), scale)
        self._built.insert((_RECORD, z), _ZoomRecord(None if repaired else zoom, squares))
        return arrays

    def _updated_zoom(self, z: int, scale: float, tolerance: float) -> RaggedArrays | None:
        """Zoom ``z`` from the previous version's, recomputed where it changed; None: build it cold."""
        previous, _ = self._previous_version()
        record = None if previous is None else previous._record(z)
        if previous is None or record is None or record.arcs is None:
            return None
        before = previous.zoom(z)
        arcs = self.arcs()
        match = self._arc_match()
        if (match < 0).sum() > len(match) * MOSTLY:
            return None
        zoom, changed, seen = arcs.zoom_since(previous.arcs(), record.arcs, match, scale, tolerance)
        same = self._clean_match()
        rebuilt = np.union1d(arcs.owners[changed].ravel(), np.flatnonzero(same < 0))
        rebuilt = rebuilt[rebuilt >= 0]
        checked = np.union1d(arcs.owners[seen].ravel(), rebuilt)
        if unnoded(arcs.assemble(zoom, checked[checked >= 0])):
            return None  # a cold build goes through GEOS here
        arrays, squares = self._squared(mend_pinched(arcs.assemble(zoom, rebuilt)), rebuilt, scale)
        kept = np.where(same >= 0, same, 0)
        coords, rings, polygons, features = before.take(kept)
        whole = _arc_kernels.splice(coords, rings, polygons, features, rebuilt, *arrays)
        drawn = record.squares[kept]
        drawn[rebuilt] = squares
        self._built.insert((_RECORD, z), _ZoomRecord(zoom, drawn))
        self.reassembled[z] = len(rebuilt)
        return whole

    def _squared(self, arrays: RaggedArrays, chosen: np.ndarray,
                 scale: float) -> tuple[RaggedArrays, np.ndarray]:
        """The features ``chosen`` with a square for each one that collapsed, and which those are."""
        coords, rings, polygons, features = arrays
        collapsed = np.flatnonzero(np.diff(features) == 0)
        squares = np.zeros(len(chosen), np.bool_)
        if len(collapsed):
            # Too small for the integer grid of this zoom: a small square keeps it visible.
            squares[collapsed] = True
            centre = np.rint(shapely.get_coordinates(
                shapely.point_on_surface(self.cleaned()[chosen[collapsed]])) * scale)
            half = self.min_size / 2
            boxes = shapely.box(centre[:, 0] - half, centre[:, 1] - half,
                                centre[:, 0] + half, centre[:, 1] + half)
            arrays = _arc_kernels.splice(coords, rings, polygons, features, collapsed,
                                         *ragged_integers(boxes))
        return arrays, squares

    def _previous_version(self) -> tuple[ZoomGeometry | None, np.ndarray]:
        if self._previous is None:
            return None, np.zeros(0, np.int64)
        reference, match = self._previous
        return reference(), match

    def _arc_match(self) -> np.ndarray:
        """Per arc, the previous version's arc with the same coordinates (-1: none)."""
        def build() -> np.ndarray:
            previous, _ = self._previous_version()
            assert previous is not None
            position = {key: i for i, key in enumerate(previous.arcs().keys())}
            return np.array([position.get(key, -1) for key in self.arcs().keys()], np.int64)
        return self._built.get_or_insert("arc_match", build)

    def _clean_match(self) -> np.ndarray:
        """Per feature, the previous version's feature with the same cleaned geometry (-1: none)."""
        def build() -> np.ndarray:
            previous, match = self._previous_version()
            assert previous is not None
            same = match.copy()
            found = np.flatnonzero(match >= 0)
            equal = shapely.to_wkb(self.cleaned()[found]) == \
                shapely.to_wkb(previous.cleaned()[match[found]])
            same[found[~equal]] = -1
            return same
        return self._built.get_or_insert("clean_match", build)

    def _simplified(self, base: np.ndarray, scale: float) -> RaggedArrays:
        """Each polygon simplified on its own and moved onto the integer grid of the zoom."""
        simple = shapely.simplify(base, self.tolerance / scale, preserve_topology=True)
        coords, rings, polygons, features = ragged(simple)
        geoms = shapely.from_ragged_array(GeometryType.MULTIPOLYGON, np.rint(coords * scale),
                                          (rings, polygons, features))
        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            geoms[invalid] = polygonal(shapely.make_valid(geoms[invalid], method="structure",
                                                          keep_collapsed=False))
        geoms[shapely.area(geoms) == 0] = shapely.MultiPolygon()
        return ragged_integers(geoms)
