"""Tests for jngis.topology: coverage errors, overlaps, tiling and nesting checks, coverage tools."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError, SchemaError
from jngis.topology import (
    CoverageErrors,
    check_nesting,
    check_tiling,
    coverage_errors,
    invalid_edges,
    overlaps,
    simplify_coverage,
)

CRS = "EPSG:4548"


def layer(codes, geoms, key="code"):
    return gpd.GeoDataFrame({key: codes}, geometry=list(geoms), crs=CRS)


def test_coverage_errors_measures_gap_overlap_and_outside():
    whole = shapely.box(0, 0, 10, 10)
    assert coverage_errors([shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)], whole) == (0, 0, 0)
    errors = coverage_errors([shapely.box(0, 0, 6, 10), shapely.box(5, 0, 9, 10), shapely.box(9, 0, 12, 10)],
                             whole)
    assert errors == CoverageErrors(gap=0.0, overlap=10.0, outside=20.0)
    assert errors.worst == 20.0
    assert coverage_errors([], whole) == CoverageErrors(100.0, 0.0, 0.0)
    # a GeoSeries whole is unioned
    halves = gpd.GeoSeries([shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)], crs=CRS)
    assert coverage_errors(halves, halves).worst == 0


@settings(max_examples=30, deadline=None)
@given(cuts=st.lists(st.floats(0.5, 9.5), min_size=1, max_size=8, unique=True),
       shift=st.floats(-2, 2))
def test_coverage_errors_of_strips(cuts, shift):
    """Strips cut at sorted x positions tile the square; shifting one strip opens a gap of the shift."""
    xs = [0.0, *sorted(cuts), 10.0]
    strips = [shapely.box(a, 0, b, 10) for a, b in zip(xs[:-1], xs[1:])]
    whole = shapely.box(0, 0, 10, 10)
    assert coverage_errors(strips, whole).worst == 0
    first = strips[0]
    moved = [shapely.box(first.bounds[0], 0, first.bounds[2] + shift, 10)] + strips[1:]
    errors = coverage_errors(moved, whole)
    width = first.bounds[2]
    expected_gap = 10 * min(-shift, width) if shift < 0 else 0.0
    expected_overlap = 10 * min(shift, 10 - width) if shift > 0 else 0.0
    assert errors.gap == pytest.approx(expected_gap, abs=1e-6)
    assert errors.overlap == pytest.approx(expected_overlap, abs=1e-6)


def test_overlaps_pairs():
    boxes = [shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2), shapely.box(2, 0, 4, 2), shapely.box(10, 0, 11, 1)]
    left, right, area = overlaps(boxes)
    assert list(zip(left.tolist(), right.tolist(), area.tolist())) == [(0, 1, 2.0), (1, 2, 2.0)]
    left, _, _ = overlaps(boxes, min_area=5)
    assert len(left) == 0
    assert len(overlaps([])[0]) == 0
    with pytest.raises(ParameterError, match=r"overlaps: min_area=-1; expected a non-negative number"):
        overlaps(boxes, min_area=-1)
    with pytest.raises(InputTypeError, match=r"overlaps: geometries is a str; expected a GeoSeries"):
        overlaps("boxes")


def test_check_tiling_table_and_raise():
    wholes = layer(["a", "b"], [shapely.box(0, 0, 10, 10), shapely.box(10, 0, 20, 10)])
    parts = layer(["a", "a", "b", "z"], [shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10),
                                         shapely.box(10, 0, 19, 10), shapely.box(50, 50, 51, 51)])
    table = check_tiling(parts, wholes, "code")
    assert table.set_index("code")["ok"].to_dict() == {"a": True, "b": False, "z": False}
    assert table.set_index("code").loc["b", "gap"] == pytest.approx(10)
    assert table.set_index("code").loc["z", "outside"] == pytest.approx(1)
    assert check_tiling(parts, wholes, "code", tolerance=11)["ok"].tolist() == [True, True, False]
    with pytest.raises(GeometryError, match=r"check_tiling: 2 of 3 wholes are not tiled by their parts; worst "
                                            r"code='b': gap 10.000"):
        check_tiling(parts, wholes, "code", raise_on_error=True)


def test_check_tiling_errors():
    wholes = layer(["a"], [shapely.box(0, 0, 1, 1)])
    with pytest.raises(SchemaError, match=r"check_tiling: parts has no column 'community_code'"):
        check_tiling(wholes, wholes, "community_code")
    with pytest.raises(InputTypeError, match=r"check_tiling: parts is a list; expected a GeoDataFrame"):
        check_tiling([], wholes, "code")
    with pytest.raises(CRSError, match=r"check_tiling: wholes is in EPSG:4490 \(degrees\)"):
        check_tiling(wholes, wholes.set_crs("EPSG:4490", allow_override=True), "code")
    with pytest.raises(CRSError, match=r"parts are in .* but wholes in"):
        check_tiling(wholes, wholes.set_crs("EPSG:3857", allow_override=True), "code")
    with pytest.raises(SchemaError, match=r"wholes has code='a' more than once"):
        check_tiling(wholes, layer(["a", "a"], [shapely.box(0, 0, 1, 1)] * 2), "code")
    with pytest.raises(ParameterError, match=r"tolerance=-1; expected a non-negative number"):
        check_tiling(wholes, wholes, "code", tolerance=-1)


def test_check_nesting():
    parents = layer(["a"], [shapely.box(0, 0, 10, 10)])
    children = layer(["a", "a", "q"], [shapely.box(1, 1, 2, 2), shapely.box(9, 0, 11, 1), shapely.box(0, 0, 1, 1)])
    table = check_nesting(children, parents, "code")
    assert table["outside"].tolist() == [0.0, 1.0, 1.0]
    assert table["ok"].tolist() == [True, True, False]
    assert table["parent_found"].tolist() == [True, True, False]
    with pytest.raises(GeometryError, match=r"check_nesting: 1 children are not inside their parent; first "
                                            r"code='q' has 1.000 outside \(no parent with that code\)"):
        check_nesting(children, parents, "code", raise_on_error=True)


def test_sample_slice_layers_nest_and_tile(slice_city):
    tiling = check_tiling(slice_city.communities, slice_city.streets, "street_code")
    assert tiling["ok"].all()
    nesting = check_nesting(slice_city.units, slice_city.communities, "community_code")
    assert nesting["ok"].all()


def test_invalid_edges_and_simplify_coverage():
    tiles = gpd.GeoSeries([shapely.box(0, 0, 5, 10), shapely.box(5, 0, 10, 10)], crs=CRS)
    edges = invalid_edges(tiles)
    assert edges.crs == CRS and edges.is_empty.all()
    edges = invalid_edges([shapely.box(0, 0, 2, 2), shapely.box(1, 0, 3, 2)])
    assert all(e.length > 0 for e in edges)
    with pytest.raises(ParameterError, match=r"gap_width=-1"):
        invalid_edges(tiles, gap_width=-1)
    # a wiggly shared edge is simplified on both sides at once: still no gap, no overlap
    wiggle = [(5 + 0.01 * ((i % 2) * 2 - 1), y) for i, y in enumerate(np.linspace(0, 10, 41))]
    west = shapely.Polygon([(0, 0), *wiggle, (0, 10)])
    east = shapely.Polygon([*wiggle, (10, 10), (10, 0)][::-1])
    gdf = gpd.GeoDataFrame({"code": ["w", "e"]}, geometry=[west, east], crs=CRS)
    simple = simplify_coverage(gdf, 1.0)
    assert simple.geometry.apply(lambda g: len(g.exterior.coords)).max() < 10
    assert coverage_errors(simple.geometry.values, shapely.box(0, 0, 10, 10)).worst < 1e-6
    assert gdf.geometry.iloc[0].equals(west)  # input untouched
    with pytest.raises(ParameterError, match=r"simplify_coverage: tolerance=-2"):
        simplify_coverage(gdf, -2)
    with pytest.raises(CRSError, match=r"simplify_coverage: gdf is in EPSG:4326"):
        simplify_coverage(gdf.set_crs("EPSG:4326", allow_override=True), 1.0)
    with pytest.raises(InputTypeError, match=r"simplify_coverage: gdf is a list"):
        simplify_coverage([west], 1.0)
