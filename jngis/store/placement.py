"""Placing a location in its district, 街道, community and grid; the location's own checks.

One :class:`jngis.assign.PolygonIndex` per administrative level, built once per
store (through the store's :class:`jngis.cache.Cache`) and reused by every
creation and import.

Examples
--------
>>> check_location("create_order", 117.1543, 36.6980, "wgs84")
(117.1543, 36.698)
>>> check_location("create_order", 117.0, 95, "wgs84")
Traceback (most recent call last):
...
jngis.errors.GeometryError: create_order: lat=95 is not a lat in degrees; expected -90..90
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import crs as jcrs
from jngis.codes import INPUT_CRS_NAMES, LEVELS, parent
from jngis.errors import CRSError, GeometryError, InputTypeError, NotFoundError
from jngis.workorders import INPUT_CRS

__all__ = ["Placer", "PLACEMENT_LAYERS", "check_location"]

#: The levels an order is placed in, finest first: a finer code fixes the coarser ones.
_FINEST_FIRST = tuple(reversed(LEVELS))
#: The layers placement reads.
PLACEMENT_LAYERS: tuple[str, ...] = tuple(lv.layer for lv in _FINEST_FIRST)


class Placer:
    """One :class:`jngis.assign.PolygonIndex` per administrative level of a city's layers."""

    def __init__(self, layers: dict[str, gpd.GeoDataFrame]) -> None:
        from jngis.assign import PolygonIndex

        if layers.get("districts") is None or len(layers["districts"]) == 0:
            raise NotFoundError(
                "the store holds no districts layer, so a location cannot be placed; "
                "expected a city written with store.write_city(city)"
            )
        self.crs = layers["districts"].crs
        self.indexes = {}
        for lv in _FINEST_FIRST:
            layer = layers.get(lv.layer)
            if layer is not None and len(layer):
                self.indexes[lv.name] = PolygonIndex(layer.to_crs(self.crs), key=lv.key)
        self.to_store = jcrs.transformer("EPSG:4326", self.crs)

    def place(self, lon: np.ndarray, lat: np.ndarray) -> pd.DataFrame:
        """x, y in the store CRS and the four codes (None where a level has no polygon there)."""
        x, y, codes = self._placed(lon, lat)
        return pd.DataFrame({"x": x, "y": y, **codes})

    def place_one(self, lon: float, lat: float) -> dict[str, Any]:
        """:meth:`place` of one point as a dict of plain values (a new order: no DataFrame to build)."""
        x, y, codes = self._placed(np.array([lon], float), np.array([lat], float))
        return {"x": float(x[0]), "y": float(y[0]), **{key: values[0] for key, values in codes.items()}}

    def _placed(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        x, y = self.to_store.transform(np.asarray(lon, float), np.asarray(lat, float))
        x, y = np.atleast_1d(x), np.atleast_1d(y)
        codes = {lv.key: np.full(len(x), None, dtype=object) for lv in LEVELS}
        for depth, lv in enumerate(_FINEST_FIRST):
            index = self.indexes.get(lv.name)
            todo = np.flatnonzero(pd.isna(codes[lv.key]))
            if index is None or len(todo) == 0:
                continue
            found = _as_objects(index.locate_xy(x[todo], y[todo]))
            codes[lv.key][todo] = found
            # codes extend their parents: a point in a grid is in that grid's community
            have = np.array([isinstance(c, str) for c in found], dtype=bool)
            for coarser in _FINEST_FIRST[depth + 1:]:
                codes[coarser.key][todo[have]] = parent(found[have], coarser.name)
        return x, y, codes


def _as_objects(values: Any) -> np.ndarray:
    """Located keys as an object array of strings, None where nothing was found."""
    listed = values.tolist() if hasattr(values, "tolist") else list(values)  # no Series for one point
    out = np.empty(len(listed), dtype=object)
    out[:] = [None if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v) for v in listed]
    return out


def check_location(func: str, lon: Any, lat: Any, crs: Any) -> tuple[float, float]:
    """``(lon, lat)`` in WGS84 degrees from a location given in ``crs`` (one of INPUT_CRS_NAMES)."""
    if not isinstance(crs, str) or crs not in INPUT_CRS_NAMES:
        raise CRSError(f"{func}: crs={crs!r} is not a supported input coordinate system; expected one of "
                       f"{', '.join(map(repr, INPUT_CRS_NAMES))} (GCJ-02 is Amap/Tencent, BD-09 Baidu)")
    for name, value, low, high in (("lon", lon, -180, 180), ("lat", lat, -90, 90)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise InputTypeError(f"{func}: {name} is a {type(value).__name__} ({value!r}); "
                                 "expected a number in degrees")
        if not (np.isfinite(value) and low <= value <= high):
            raise GeometryError(f"{func}: {name}={value!r} is not a {name} in degrees; expected {low}..{high}")
    convert = INPUT_CRS[crs]
    if convert is not None:
        lon, lat = convert(float(lon), float(lat))
    return float(lon), float(lat)
