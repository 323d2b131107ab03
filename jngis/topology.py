"""Coverage checks: do polygons tile a whole with no gap and no overlap?

A *coverage* is a set of polygons that do not overlap (grids of a community,
communities of a 街道, units of a community). These functions measure how far
a set of parts is from tiling a whole - the area left uncovered (gap), the
area covered twice (overlap) and the area sticking out (outside) - and check
whole layers at once, one tiling per parent code. They are built on shapely 2:
``union_all`` for the measured unions (robust when the parts do overlap),
``STRtree`` for pairwise overlaps, and ``coverage_is_valid`` /
``coverage_invalid_edges`` / ``coverage_simplify`` for edge-level checks and
simplification that keeps shared edges shared.
"""

from __future__ import annotations

from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.adjacency import measured_pairs
from jngis.adjacency import metric_geometries as _geometries
from jngis.errors import CRSError, GeometryError, SchemaError

__all__ = [
    "polsby_popper",
    "CoverageErrors",
    "coverage_errors",
    "overlaps",
    "check_tiling",
    "check_nesting",
    "invalid_edges",
    "simplify_coverage",
    "union_coverage",
    "clean_coverage",
    "CLEAN_SNAPPING",
]


def union_coverage(geometries, *, coverage: bool = True) -> shapely.Geometry:
    """The union of polygons: the fast coverage union when they tile, else a full overlay.

    The one union of jngis for dissolving parts that form (or should form) a
    coverage - units into communities, cells into grids. ``coverage=True`` tries
    ``shapely.coverage_union_all`` (exact, no slivers, linear time: the caller
    vouches that the parts do not overlap) and falls back to ``shapely.union_all``
    when GEOS refuses or the result is not polygonal or not valid (parts whose
    shared edges do not have the same vertices); ``coverage=False`` (parts
    that may overlap) goes straight to the overlay.

    Examples
    --------
    >>> a, b = shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)
    >>> union_coverage([a, b]).area
    2.0
    >>> union_coverage([a, shapely.box(0.5, 0, 2, 1)], coverage=False).area  # overlapping
    2.0
    """
    parts = np.asarray(geometries, dtype=object)
    if len(parts) == 0:
        return shapely.Polygon()
    if coverage:
        try:
            merged = shapely.coverage_union_all(parts)
        except shapely.errors.GEOSException:
            merged = None
        # parts that only nearly tile (edges not vertex-matched) give an invalid result, not an error
        if merged is not None and merged.geom_type in ("Polygon", "MultiPolygon") and merged.is_valid:
            return merged
    return shapely.union_all(parts)


#: Distance (m) under which :func:`clean_coverage` snaps vertices and edges together: far above the
#: float noise of an overlay (1e-9 m), far below any real feature.
CLEAN_SNAPPING = 1e-6


def clean_coverage(parts, whole=None, *, snapping_distance: float = CLEAN_SNAPPING) -> np.ndarray:
    """``parts`` as an exact coverage: shared edges vertex for vertex, no spike, no sliver, no overlap.

    Parts drawn by overlays (unions of units, land cut off a polygon) tile only up
    to float noise: neighbours whose shared edge has a vertex on one side only,
    overlaps of 1e-9 m² and zero-width spikes (a vertex 1e-11 m from an edge of its
    own ring), which are valid in metres but become self-intersections once
    reprojected to degrees. GEOS's coverage cleaner (:func:`shapely.coverage_clean`)
    snaps vertices and edges closer than ``snapping_distance`` together, nodes all
    edges at once, and gives each overlap and each gap narrower than
    ``snapping_distance`` to the neighbour with the longest shared border. With
    ``whole`` (the polygon the parts tile: their community, their 街道), the
    outside of ``whole`` joins the cleaning as one more polygon, so the parts'
    outer edges end on ``whole``'s own vertices.

    Parameters
    ----------
    parts : GeoSeries, GeoDataFrame or sequence of polygons
        In a projected CRS (metres), nearly a coverage.
    whole : polygon, optional
        What the parts tile.
    snapping_distance : float
        In metres.

    Returns
    -------
    ndarray of polygons
        The parts in the same order.

    Raises
    ------
    GeometryError
        A part the cleaning would leave with no area (thinner than ``snapping_distance``).

    Examples
    --------
    >>> import shapely
    >>> left = shapely.Polygon([(0, 0), (1, 0), (1 + 1e-10, 0.5), (1, 1), (0, 1)])
    >>> right = shapely.box(1, 0, 2, 1)
    >>> bool(shapely.coverage_is_valid([left, right]))
    False
    >>> cleaned = clean_coverage([left, right], shapely.box(0, 0, 2, 1))
    >>> bool(shapely.coverage_is_valid(cleaned)), [round(p.area, 9) for p in cleaned]
    (True, [1.0, 1.0])
    """
    geoms = _geometries(parts, "parts", "clean_coverage")
    _checks.non_negative("clean_coverage", "snapping_distance", snapping_distance)
    if len(geoms) == 0:
        return geoms
    if whole is not None:
        outside = shapely.difference(shapely.box(*shapely.bounds(shapely.buffer(shapely.envelope(whole), 1.0))),
                                     whole)
        geoms = np.concatenate([geoms, [outside]])
    cleaned = shapely.coverage_clean(geoms, snapping_distance=snapping_distance, gap_width=snapping_distance)
    cleaned = cleaned[:-1] if whole is not None else cleaned
    empty = np.flatnonzero(shapely.is_empty(cleaned) | (shapely.area(cleaned) <= 0))
    if len(empty):
        raise GeometryError(f"clean_coverage: part {int(empty[0])} ({len(empty)} parts) has no area left after "
                            f"snapping at {snapping_distance} m; expected parts wider than snapping_distance")
    return cleaned


class CoverageErrors(NamedTuple):
    """Areas (in squared CRS units) by which parts fail to tile a whole."""

    gap: float
    """Area of the whole covered by no part."""
    overlap: float
    """Area covered by more than one part (counted once per extra cover)."""
    outside: float
    """Area of the parts lying outside the whole."""

    @property
    def worst(self) -> float:
        """The largest of the three errors."""
        return max(self.gap, self.overlap, self.outside)


def _whole(value, function: str):
    if isinstance(value, (gpd.GeoSeries, gpd.GeoDataFrame)) or not isinstance(value, shapely.Geometry):
        geoms = _geometries(value, "whole", function)
        return shapely.union_all(geoms)
    return value


def coverage_errors(parts, whole) -> CoverageErrors:
    """How far ``parts`` are from tiling ``whole`` exactly.

    Parameters
    ----------
    parts : GeoSeries, GeoDataFrame or sequence of polygons
        The pieces (e.g. the grids of one community).
    whole : polygon, GeoSeries or GeoDataFrame
        What they should tile (a sequence is unioned first).

    Returns
    -------
    CoverageErrors
        ``gap``, ``overlap`` and ``outside`` areas; all zero for an exact tiling.

    Examples
    --------
    >>> import shapely
    >>> square = shapely.box(0, 0, 10, 10)
    >>> coverage_errors([shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)], square)
    CoverageErrors(gap=0.0, overlap=0.0, outside=0.0)
    >>> coverage_errors([shapely.box(0, 0, 6, 10), shapely.box(5, 0, 9, 10)], square)
    CoverageErrors(gap=10.0, overlap=10.0, outside=0.0)
    """
    geoms = _geometries(parts, "parts", "coverage_errors")
    whole = _whole(whole, "coverage_errors")
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0:
        return CoverageErrors(float(shapely.area(whole)), 0.0, 0.0)
    union = shapely.union_all(geoms)
    overlap = float(shapely.area(geoms).sum() - shapely.area(union))
    gap = float(shapely.area(shapely.difference(whole, union)))
    outside = float(shapely.area(shapely.difference(union, whole)))
    # Float noise of the overlay is ~1e-9 of the area: report it as zero.
    noise = 1e-9 * max(float(shapely.area(whole)), 1.0)
    return CoverageErrors(*(0.0 if v < noise else v for v in (gap, overlap, outside)))


def overlaps(geometries, *, min_area: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of polygons whose interiors overlap by more than ``min_area``.

    Parameters
    ----------
    geometries : GeoSeries, GeoDataFrame or sequence of polygons
    min_area : float
        Smallest overlap area that counts (squared CRS units).

    Returns
    -------
    left, right, area : ndarray
        Integer positions with ``left < right``, sorted, and the overlap areas.

    Examples
    --------
    >>> import shapely
    >>> left, right, area = overlaps([shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2), shapely.box(3, 0, 4, 2)])
    >>> left.tolist(), right.tolist(), area.tolist()
    ([0], [1], [2.0])
    """
    geoms = _geometries(geometries, "geometries", "overlaps")
    _checks.non_negative("overlaps", "min_area", min_area)
    return measured_pairs(geoms, lambda a, b: shapely.area(shapely.intersection(a, b)), above=min_area)


def _check_layers(parts, wholes, key: str, function: str) -> None:
    for name, layer in (("parts", parts), ("wholes", wholes)):
        _checks.geodataframe(function, name, layer)
        if key not in layer.columns:
            raise SchemaError(f"{function}: {name} has no column {key!r}; it has {list(layer.columns)}")
        _checks.not_geographic(function, name, layer)
    if parts.crs != wholes.crs:
        raise CRSError(
            f"{function}: parts are in {parts.crs} but wholes in {wholes.crs}; expected one CRS "
            "(reproject with .to_crs)"
        )
    if wholes[key].duplicated().any():
        dup = wholes.loc[wholes[key].duplicated(), key].iloc[0]
        raise SchemaError(f"{function}: wholes has {key}={dup!r} more than once; expected each once")


def check_tiling(parts: gpd.GeoDataFrame, wholes: gpd.GeoDataFrame, key: str, *,
                 tolerance: float = 1.0, raise_on_error: bool = False) -> pd.DataFrame:
    """Check that the parts of each whole tile it exactly.

    Parameters
    ----------
    parts : GeoDataFrame
        E.g. grids, with a ``key`` column naming their whole.
    wholes : GeoDataFrame
        E.g. communities, one row per ``key``.
    key : str
        The column linking parts to wholes (e.g. ``"community_code"``).
    tolerance : float
        Largest acceptable gap, overlap or outside area per whole.
    raise_on_error : bool
        Raise :class:`~jngis.errors.GeometryError` naming the worst whole
        instead of returning a failing table.

    Returns
    -------
    DataFrame
        One row per whole: ``key``, ``parts``, ``gap``, ``overlap``,
        ``outside``, ``ok``. Parts whose key matches no whole get a row of
        their own with their whole area as ``outside``, never ``ok``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> wholes = gpd.GeoDataFrame({"code": ["a"]}, geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:4548")
    >>> parts = gpd.GeoDataFrame({"code": ["a", "a"]},
    ...     geometry=[shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 9)], crs="EPSG:4548")
    >>> check_tiling(parts, wholes, "code")[["code", "parts", "gap", "ok"]].to_dict("records")
    [{'code': 'a', 'parts': 2, 'gap': 5.0, 'ok': False}]
    """
    _check_layers(parts, wholes, key, "check_tiling")
    _checks.non_negative("check_tiling", "tolerance", tolerance)
    part_geoms = np.asarray(parts.geometry.values, dtype=object)
    groups = pd.Series(np.arange(len(parts))).groupby(parts[key].to_numpy()).indices
    codes = wholes[key].to_numpy()
    whole_geoms = np.asarray(wholes.geometry.values, dtype=object)
    members = [groups.get(code, np.zeros(0, dtype=np.int64)) for code in codes]
    # the union of each whole's parts (per whole), then one vectorised overlay of every whole with its
    # union: gap = |whole| - |whole ∩ union|, outside = |union| - |whole ∩ union| (what the two
    # differences of coverage_errors give, in half the overlay work)
    unions = np.array([shapely.union_all(part_geoms[m]) for m in members], dtype=object)
    summed = np.array([float(np.nansum(shapely.area(part_geoms[m]))) for m in members])
    union_area, whole_area = shapely.area(unions), shapely.area(whole_geoms)
    inside = shapely.area(shapely.intersection(whole_geoms, unions))
    noise = 1e-9 * np.maximum(whole_area, 1.0)  # float noise of the overlay: reported as zero
    errors = np.column_stack([whole_area - inside, summed - union_area, union_area - inside])
    errors = np.where(errors < noise[:, None], 0.0, errors)
    rows = [(code, len(m), *map(float, e)) for code, m, e in zip(codes, members, errors)]
    known = set(codes.tolist())
    for code, members in groups.items():
        if code not in known:
            rows.append((code, len(members), 0.0, 0.0, float(shapely.area(part_geoms[members]).sum())))
    table = pd.DataFrame(rows, columns=[key, "parts", "gap", "overlap", "outside"])
    table["ok"] = (table[["gap", "overlap", "outside"]].max(axis=1) <= tolerance) & table[key].isin(known)
    if raise_on_error and not table["ok"].all():
        bad = table[~table["ok"]]
        worst = bad.loc[bad[["gap", "overlap", "outside"]].max(axis=1).idxmax()]
        raise GeometryError(
            f"check_tiling: {len(bad)} of {len(table)} wholes are not tiled by their parts; worst "
            f"{key}={worst[key]!r}: gap {worst['gap']:.3f}, overlap {worst['overlap']:.3f}, "
            f"outside {worst['outside']:.3f}; expected each at most tolerance={tolerance}"
        )
    return table


def check_nesting(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, key: str, *,
                  tolerance: float = 1.0, raise_on_error: bool = False) -> pd.DataFrame:
    """Check that each child lies inside the parent its ``key`` names.

    Returns one row per child with the ``outside`` area (the part of the
    child not inside its parent, the whole child when the parent is missing)
    and ``ok`` (``outside <= tolerance``).

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> parents = gpd.GeoDataFrame({"code": ["a"]}, geometry=[shapely.box(0, 0, 10, 10)], crs="EPSG:4548")
    >>> children = gpd.GeoDataFrame({"code": ["a", "a"]},
    ...     geometry=[shapely.box(1, 1, 2, 2), shapely.box(9, 0, 11, 1)], crs="EPSG:4548")
    >>> check_nesting(children, parents, "code")["outside"].tolist()
    [0.0, 1.0]
    """
    _check_layers(children, parents, key, "check_nesting")
    lookup = pd.Series(np.asarray(parents.geometry.values, dtype=object), index=parents[key].to_numpy())
    parent = lookup.reindex(children[key].to_numpy()).to_numpy()
    child = np.asarray(children.geometry.values, dtype=object)
    missing = pd.isna(parent)
    outside = shapely.area(child).astype(float)
    present = ~missing
    outside[present] = shapely.area(shapely.difference(child[present], parent[present].astype(object)))
    table = pd.DataFrame({key: children[key].to_numpy(), "parent_found": present, "outside": outside},
                         index=children.index)
    table["ok"] = present & (table["outside"] <= tolerance)
    if raise_on_error and not table["ok"].all():
        first = table[~table["ok"]].iloc[0]
        raise GeometryError(
            f"check_nesting: {int((~table['ok']).sum())} children are not inside their parent; first "
            f"{key}={first[key]!r} has {first['outside']:.3f} outside"
            + ("" if first["parent_found"] else " (no parent with that code)")
            + f"; expected at most tolerance={tolerance}"
        )
    return table


def invalid_edges(geometries, *, gap_width: float = 0.0) -> gpd.GeoSeries | np.ndarray:
    """Edges that break a coverage: for each polygon, the lines that do not match a neighbour.

    Wraps :func:`shapely.coverage_invalid_edges`; empty lines mean the polygon
    is fine. With ``gap_width > 0`` edges bordering narrow gaps are reported too.

    Examples
    --------
    >>> import shapely
    >>> edges = invalid_edges([shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)])
    >>> [round(e.length, 1) for e in edges]
    [6.0, 6.0]
    """
    geoms = _geometries(geometries, "geometries", "invalid_edges")
    _checks.non_negative("invalid_edges", "gap_width", gap_width)
    edges = shapely.coverage_invalid_edges(geoms, gap_width=gap_width)
    if isinstance(geometries, (gpd.GeoSeries, gpd.GeoDataFrame)):
        return gpd.GeoSeries(edges, index=geometries.index, crs=geometries.crs)
    return edges


def simplify_coverage(gdf: gpd.GeoDataFrame, tolerance: float) -> gpd.GeoDataFrame:
    """A copy of ``gdf`` simplified as a coverage: shared edges stay shared, no gaps open.

    ``tolerance`` is the Visvalingam-Whyatt area tolerance's square root, in
    CRS units (metres), as in :func:`shapely.coverage_simplify`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> gdf = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)], crs="EPSG:4548")
    >>> simplify_coverage(gdf, 1.0).area.tolist()
    [50.0, 50.0]
    """
    _checks.geodataframe("simplify_coverage", "gdf", gdf)
    _checks.not_geographic("simplify_coverage", "gdf", gdf)
    _checks.non_negative("simplify_coverage", "tolerance", tolerance)
    out = gdf.copy()
    out.geometry = gpd.GeoSeries(shapely.coverage_simplify(np.asarray(gdf.geometry.values, dtype=object),
                                                           tolerance), index=gdf.index, crs=gdf.crs)
    return out


def polsby_popper(geometries) -> np.ndarray:
    """Polsby-Popper compactness ``4πA / P²`` (1 for a circle, ~0.785 for a square).

    Examples
    --------
    >>> import shapely
    >>> polsby_popper([shapely.box(0, 0, 10, 10)]).round(3).tolist()
    [0.785]
    """
    if isinstance(geometries, (gpd.GeoSeries, gpd.GeoDataFrame)):
        geometries = geometries.geometry.values if isinstance(geometries, gpd.GeoDataFrame) else geometries.values
    geoms = np.asarray(geometries, dtype=object)
    perimeter = shapely.length(geoms)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(perimeter > 0, 4 * np.pi * shapely.area(geoms) / perimeter ** 2, 0.0)
