"""Input checks of the maps, figures and Excel export that :mod:`jngis._checks` does not cover.

Argument order as in :mod:`jngis._checks`: ``(func, name, value, ...)``.
"""

from __future__ import annotations

from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.codes import LEVELS
from jngis.errors import CRSError, GeometryError, InputTypeError, NotFoundError, ParameterError, SchemaError

#: Key columns of the polygon layers, finest first (grids also carry community_code).
KEYS: tuple[str, ...] = (LEVELS[-1].key, "unit_id", *(lv.key for lv in reversed(LEVELS[:-1])))

_GEOMETRY = {"polygon": ((3, 6), "(Multi)Polygons"), "point": ((0,), "Points")}


def layer(func: str, name: str, value: Any, *, geometry: str = "polygon",
          optional: bool = False) -> gpd.GeoDataFrame | None:
    """A GeoDataFrame with a CRS (any) and a ``geometry`` ("polygon" or "point") on every row.

    The geometry check counts every bad row (a planner fixes them all at once),
    which is why it is not :func:`jngis._checks.geodataframe`'s first-row check.
    """
    if value is None and optional:
        return None
    _checks.geodataframe(func, name, value)
    if value.crs is None:
        raise CRSError(f"{func}: {name} has no CRS; expected one (e.g. EPSG:4548 or EPSG:4490), set it "
                       "with .set_crs")
    geoms = np.asarray(value.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        raise GeometryError(f"{func}: {name} has {int(missing.sum())} missing or empty geometries "
                            f"(rows {list(value.index[missing][:5])}); expected a geometry on every row")
    type_ids, wanted = _GEOMETRY[geometry]
    bad = ~np.isin(shapely.get_type_id(geoms), type_ids)
    if bad.any():
        found = sorted(set(value.geometry.geom_type[bad]))
        raise GeometryError(f"{func}: {name} has {int(bad.sum())} geometries of type {found} "
                            f"(rows {list(value.index[bad][:5])}); expected {wanted}")
    return value


def attribute_columns(frame: gpd.GeoDataFrame) -> list[str]:
    """The columns of a layer other than its geometry (named in error messages)."""
    return [c for c in frame.columns if c != frame.geometry.name]


def layer_key(func: str, frame: gpd.GeoDataFrame, key: str | None) -> str:
    """The code column of a polygon layer: ``key`` if given, else the finest of :data:`KEYS` present."""
    if key is not None:
        if not isinstance(key, str) or key not in frame.columns:
            raise NotFoundError(f"{func}: key={key!r} is not a column of the layer; expected one of "
                                f"{attribute_columns(frame)}")
        return key
    for candidate in KEYS:
        if candidate in frame.columns:
            return candidate
    raise SchemaError(f"{func}: the layer has none of the code columns {list(KEYS)} (columns: "
                      f"{attribute_columns(frame)}); expected a layer of grids, units, communities, 街道 "
                      "or districts, or pass key=")


def column_of(func: str, name: str, frame: gpd.GeoDataFrame, column: Any, where: str) -> str:
    """``column``, a column of the layer ``frame`` (NotFoundError listing its columns otherwise)."""
    if not isinstance(column, str) or column not in frame.columns:
        raise NotFoundError(f"{func}: {name}={column!r} is not a column of {where}; expected one of "
                            f"{attribute_columns(frame)}")
    return column


def server_url(func: str, name: str, value: Any) -> str | None:
    """The address of a jngis map server without its trailing slash, or None."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://", "/")):
        raise ParameterError(f"{func}: {name}={value!r}; expected the address of a jngis map server, e.g. "
                             "'http://localhost:8000'")
    return value.rstrip("/")


def simplify(func: str, name: str, value: Any) -> float | None:
    """A simplification tolerance in metres (0: never), or None (automatic)."""
    return None if value is None else _checks.number(func, name, value, minimum=0)


_PLAN_FIELDS = ("assignment", "communities", "moves", "changes", "metrics", "min_households", "max_households")


def plan(func: str, name: str, value: Any) -> Any:
    """A :class:`jngis.rebalance.RebalancePlan` (anything with its fields)."""
    if not all(hasattr(value, field) for field in _PLAN_FIELDS):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a RebalancePlan "
                             "(from jngis.rebalance)")
    return value


def households(func: str, name: str, value: Any) -> np.ndarray:
    """Household counts: at least one, none missing or negative, as floats."""
    if not isinstance(value, (pd.Series, np.ndarray, list, tuple)):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a Series or array of "
                             "household counts")
    array = pd.to_numeric(pd.Series(np.asarray(value, dtype=object)), errors="coerce").to_numpy(float)
    if len(array) == 0 or np.isnan(array).any() or (array < 0).any():
        raise ParameterError(f"{func}: {name} has {len(array)} values, {int(np.isnan(array).sum())} missing, "
                             f"{int((array < 0).sum())} negative; expected at least one count >= 0 and none "
                             "missing")
    return array


def names(func: str, name: str, value: Any) -> dict[str, str]:
    """Names by code for the labels: a mapping, a Series, a table with a code column and ``name``, or several.

    E.g. ``names=(city.streets, city.communities)``; None gives no names (labels show codes).
    """
    if value is None:
        return {}
    if isinstance(value, pd.DataFrame):
        key = next((c for c in KEYS if c in value.columns), None)
        if key is None or "name" not in value.columns:
            columns = [c for c in value.columns if c != getattr(value, "_geometry_column_name", None)]
            raise SchemaError(f"{func}: {name} has columns {columns}; expected a code column (one of "
                              f"{list(KEYS)}) and 'name'")
        return dict(zip(value[key].astype(str), value["name"].astype(str)))
    if isinstance(value, pd.Series):
        return dict(zip(value.index.astype(str), value.astype(str)))
    if isinstance(value, dict):
        return {str(code): str(text) for code, text in value.items()}
    if isinstance(value, (list, tuple)):
        merged: dict[str, str] = {}
        for part in value:
            merged.update(names(func, name, part))
        return merged
    raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a dict or Series of names by "
                         "code, a layer with a code column and 'name' (e.g. city.streets), or a tuple of them")
