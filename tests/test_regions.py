"""Tests for jngis.regions: the region engine's moves keep regions contiguous, rollback undoes them,
the measures follow the moves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from jngis.regions import Graph, Regions, contiguous, steepest_descent


def lattice(columns: int, rows: int) -> Graph:
    """The rook graph of a ``columns x rows`` lattice of unit squares (edge length 1)."""
    index = np.arange(columns * rows).reshape(rows, columns)
    left = np.r_[index[:, :-1].ravel(), index[:-1, :].ravel()]
    right = np.r_[index[:, 1:].ravel(), index[1:, :].ravel()]
    return Graph.from_edges(columns * rows, left, right, np.ones(len(left)))


def connected(regions: Regions) -> bool:
    for members in regions.members:
        if members and len(regions.components(members)) != 1:
            return False
    return True


@st.composite
def banded(draw):
    columns, rows = draw(st.integers(2, 6)), draw(st.integers(1, 5))
    bands = draw(st.integers(1, columns))
    label = [min(bands - 1, (i % columns) * bands // columns) for i in range(columns * rows)]
    weight = draw(st.lists(st.integers(0, 400), min_size=columns * rows, max_size=columns * rows))
    lo = draw(st.integers(100, 600))
    hi = lo + draw(st.integers(50, 800))
    return lattice(columns, rows), weight, label, lo, hi


def snapshot(regions: Regions) -> tuple:
    return (list(regions.label), list(regions.rw), [round(v, 9) for v in regions.rp],
            [round(v, 9) for v in regions.ra], [set(m) for m in regions.members])


@settings(max_examples=60, deadline=None)
@given(banded(), st.integers(0, 3))
def test_moves_keep_regions_contiguous_and_rollback_undoes_them(case, which):
    graph, weight, label, lo, hi = case
    # steepest descent measures the plain distance to the bounds, as the uncapped violation does
    regions = Regions(graph, weight, label, lo=lo, hi=hi, area=np.ones(len(weight)),
                      perimeter=np.full(len(weight), 4.0), cap_heavy=which != 3)
    start = snapshot(regions)
    before = regions.total_violation()
    for r in range(len(regions.rw)):
        if which == 0:
            regions.shed(r)
        elif which == 1:
            regions.gain(r)
        elif which == 2 and regions.members[r]:
            regions.dissolve(r)
        assert connected(regions)
    if which == 3:
        steepest_descent(regions)
        assert connected(regions)
        assert regions.total_violation() <= before
        return
    # the incremental measures equal those computed from scratch
    fresh = Regions(graph, weight, regions.label, lo=lo, hi=hi, area=np.ones(len(weight)),
                    perimeter=np.full(len(weight), 4.0))
    np.testing.assert_allclose(regions.rp[:len(fresh.rp)], fresh.rp)
    assert regions.rw[:len(fresh.rw)] == fresh.rw
    regions.rollback(0)
    assert snapshot(regions)[:4] == start[:4]


def test_can_leave_refuses_an_articulation_point_and_leaving_block_carries_the_cut_off_piece():
    # a path 0 - 1 - 2 in one region: 1 cannot leave alone; with it goes the lighter end
    graph = Graph.from_edges(4, np.array([0, 1, 2]), np.array([1, 2, 3]))
    regions = Regions(graph, [100, 50, 300, 10], [0, 0, 0, 1], lo=0, hi=1000)
    assert regions.can_leave(0) and not regions.can_leave(1)
    assert regions.leaving_block(1) == [1, 0]
    assert regions.leaving_block(3) is None  # would empty its region


def test_violation_caps_a_region_at_its_heaviest_atom():
    graph = Graph.from_edges(2, np.array([0]), np.array([1]))
    capped = Regions(graph, [3500, 100], [0, 0], lo=1000, hi=3000)
    plain = Regions(graph, [3500, 100], [0, 0], lo=1000, hi=3000, cap_heavy=False)
    assert capped.violation(0) == 100 and plain.violation(0) == 600


def test_locked_regions_never_change():
    graph = Graph.from_edges(3, np.array([0, 1]), np.array([1, 2]))
    regions = Regions(graph, [600, 1500, 2000], [0, 1, 2], lo=1000, hi=3000, locked=[False, True, False])
    assert regions.violation(1) == 0
    assert regions.gain(0) == 0 and not regions.dissolve(0)
    assert regions.label == [0, 1, 2]


def test_region_paths_and_merge():
    graph = lattice(4, 1)
    regions = Regions(graph, [100, 100, 100, 100], [0, 1, 2, 3], lo=0, hi=1000)
    assert list(regions.region_paths(0, lambda s: s == 3)) == [[0, 1, 2, 3]]
    regions.merge(1, 2)
    assert sorted(regions.members[1] | regions.members[2]) == [1, 2]
    assert regions.rw[1] + regions.rw[2] == 200 and 0 in (regions.rw[1], regions.rw[2])


def test_contiguous():
    labels = np.array(["a", "a", "b", "a"])
    assert contiguous(labels, np.array([0, 1, 2]), np.array([1, 2, 3])).to_dict() == {"a": False, "b": True}
    pd.testing.assert_series_equal(contiguous(np.array(["x"]), np.zeros(0, dtype=int), np.zeros(0, dtype=int)),
                                   pd.Series({"x": True}))
