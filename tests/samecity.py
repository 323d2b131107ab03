"""Whether two builds of a city are the same, layer by layer (geometry exact, every column equal)."""

from __future__ import annotations

import pandas as pd
import shapely


def assert_same_city(first, second) -> None:
    """Every layer of ``first`` is in ``second`` with the same rows, columns, values and exact geometry."""
    assert first.kinds() == second.kinds()
    for kind, layer in first.layers():
        other = getattr(second, kind)
        assert len(layer) == len(other), kind
        assert list(layer.columns) == list(other.columns), kind
        assert layer.crs == other.crs, kind
        assert shapely.equals_exact(layer.geometry.values, other.geometry.values, tolerance=0).all(), kind
        columns = [name for name in layer.columns if name != layer.geometry.name]
        pd.testing.assert_frame_equal(pd.DataFrame(layer[columns]).reset_index(drop=True),
                                      pd.DataFrame(other[columns]).reset_index(drop=True),
                                      check_dtype=False, obj=kind)
