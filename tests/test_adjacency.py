"""Shared-edge contiguity."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely

from jngis.adjacency import shared_edges
from jngis.errors import CRSError, InputTypeError, ParameterError


def test_box_grid_rook_contiguity():
    boxes = [shapely.box(x, y, x + 10, y + 10) for y in range(0, 30, 10) for x in range(0, 30, 10)]
    left, right, length = shared_edges(boxes)
    # a 3x3 grid has 12 rook pairs; corners (diagonals) do not count
    assert len(left) == 12
    assert (left < right).all() and np.allclose(length, 10)
    assert (0, 4) not in set(zip(left.tolist(), right.tolist()))


def test_min_length_filters_short_contacts():
    a = shapely.box(0, 0, 10, 10)
    b = shapely.box(10, 9.5, 20, 19.5)  # shares 0.5 m
    assert len(shared_edges([a, b])[0]) == 0
    assert len(shared_edges([a, b], min_length=0.1)[0]) == 1


def test_units_of_the_slice_share_exact_edges(slice_city):
    left, right, length = shared_edges(slice_city.units)
    assert len(left) > len(slice_city.units)  # a connected tiling has more edges than nodes
    assert length.min() > 1.0


def test_errors(slice_city):
    with pytest.raises(CRSError, match=r"shared_edges: geometries is in EPSG:4490 \(degrees\)"):
        shared_edges(slice_city.units.to_crs(4490))
    with pytest.raises(ParameterError, match=r"min_length=-1; expected a non-negative number"):
        shared_edges(slice_city.units, min_length=-1)
    with pytest.raises(InputTypeError, match=r"geometries is a int"):
        shared_edges(5)
    empty = shared_edges(gpd.GeoSeries([], crs=4548))
    assert all(len(a) == 0 for a in empty)
