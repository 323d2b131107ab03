"""A grid table summed to communities, 街道 or districts (:func:`rollup`)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from jngis import _checks
from jngis.codes import KEY_OF_LEVEL, STAFF_COLUMNS
from jngis.codes import level as code_level
from jngis.errors import JngisWarning, ParameterError, SchemaError
from jngis.stats.grid import (
    DAYS_ATTR,
    ORDER_COUNT_COLUMNS,
    grid_stats,  # noqa: F401 - the Examples use it
    group_median,
    parent_codes,
)

__all__ = ["rollup", "LEVELS"]

#: Levels :func:`rollup` sums to, and the code column each uses.
LEVELS: dict[str, str] = {name: KEY_OF_LEVEL[name] for name in ("community", "street", "district")}
#: Columns of a grid table that are sums (rollup adds them up).
SUM_COLUMNS = ("grids", "households", "population", "stations", "station_area_m2", "party_orgs",
               "party_members", *ORDER_COUNT_COLUMNS, *STAFF_COLUMNS)


def rollup(table: pd.DataFrame, level: str = "community") -> pd.DataFrame:
    """Sum a :func:`grid_stats` table to communities, 街道 or districts.

    Count and area columns are summed, so each sum equals the sum of its
    grids exactly. ``satisfaction_rate`` is recomputed as
    ``satisfied_orders / rated_orders``; ``median_days_to_resolve`` is the
    median over the level's resolved orders, recomputed from the per-order
    durations that :func:`grid_stats` keeps in ``table.attrs`` (if a table
    has lost them, e.g. after a round trip through a file, it is the
    median of the grid medians weighted by resolved orders, and a
    :class:`~jngis.errors.JngisWarning` says so).

    Parameters
    ----------
    table : pandas.DataFrame
        A grid table from :func:`grid_stats` (it needs ``community_code``).
    level : {"community", "street", "district"}
        The level to sum to.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``community_code`` / ``street_code`` / ``district_code``
        (sorted), with the parent codes, ``grids`` (number of grids) and the
        summed and recomputed columns.

    Raises
    ------
    InputTypeError
        If `table` is not a DataFrame.
    ParameterError
        If `level` is not one of the levels.
    SchemaError
        If `table` lacks ``community_code`` or a community code is too short.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> grids = gpd.GeoDataFrame(
    ...     {"grid_code": ["370102001001001", "370102001001002", "370102001002001"],
    ...      "community_code": ["370102001001", "370102001001", "370102001002"],
    ...      "households": [400, 350, 500]},
    ...     geometry=[shapely.box(i * 100, 0, i * 100 + 100, 100) for i in range(3)],
    ...     crs="EPSG:4548")
    >>> rollup(grid_stats(grids), "street")[["grids", "households"]].to_dict("index")
    {'370102001': {'grids': 3, 'households': 1250}}
    """
    func = "rollup"
    _checks.instance(func, "table", table, pd.DataFrame, "the pandas.DataFrame returned by grid_stats",
                     show_value=False)
    if not isinstance(level, str) or level not in LEVELS:
        raise ParameterError(f"{func}: level={level!r}; expected one of {list(LEVELS)}")
    if "community_code" not in table.columns:
        raise SchemaError(
            f"{func}: table has no 'community_code' column (columns: {list(table.columns)}); "
            "expected a grid table from jngis.grid_stats"
        )
    groups = parent_codes(func, "table['community_code']", table["community_code"].astype(str).to_numpy(object),
                          level)
    out = _sums(table, groups)
    out.index.name = LEVELS[level]
    for parent in ("street", "district"):
        if code_level(parent).digits < code_level(level).digits:
            out.insert(0, KEY_OF_LEVEL[parent], parent_codes(func, "table", out.index.to_numpy(object), parent))
    if {"satisfied_orders", "rated_orders"} <= set(out.columns):
        with np.errstate(invalid="ignore", divide="ignore"):
            out["satisfaction_rate"] = (out["satisfied_orders"] / out["rated_orders"]
                                        ).where(out["rated_orders"] > 0)
    if "median_days_to_resolve" in table.columns:
        out["median_days_to_resolve"] = _median_days(func, table, groups, out.index)
    return out


def _sums(table: pd.DataFrame, groups: np.ndarray) -> pd.DataFrame:
    """The sum columns per group; a group with any grid of unknown population has unknown population."""
    sums = [c for c in SUM_COLUMNS if c in table.columns]
    out = table[sums].groupby(groups, sort=True).sum(min_count=0)
    if "population" in out.columns:
        unknown = table["population"].isna().groupby(groups, sort=True).any()
        out["population"] = out["population"].astype("Int64").mask(unknown)
    return out


def _median_days(func: str, table: pd.DataFrame, groups: np.ndarray, index: pd.Index) -> np.ndarray:
    """The median days to resolve per group: exact from the per-order durations, else approximate."""
    durations = table.attrs.get(DAYS_ATTR)
    if durations is not None:
        codes, days = durations
        code_map = pd.Series(groups, index=table.index.astype(str))
        level_codes = code_map.reindex(pd.Index(codes, dtype=object)).to_numpy()
        return group_median(level_codes, days, index)
    warnings.warn(
        f"{func}: table.attrs has no per-order durations (was it read back from a "
        "file?); median_days_to_resolve is the median of the grid medians weighted "
        "by resolved orders, not the exact median",
        JngisWarning, stacklevel=3,
    )
    resolved = table.get("resolved_orders", pd.Series(1, index=table.index))
    return _weighted_median_by(groups, table["median_days_to_resolve"].to_numpy(float),
                               resolved.to_numpy(float), index)


def _weighted_median_by(groups: np.ndarray, values: np.ndarray, weights: np.ndarray,
                        index: pd.Index) -> np.ndarray:
    out = pd.Series(np.nan, index=index)
    frame = pd.DataFrame({"g": groups, "v": values, "w": weights}).dropna()
    frame = frame[frame["w"] > 0]
    for code, part in frame.groupby("g"):
        part = part.sort_values("v")
        cumulative = part["w"].cumsum().to_numpy()
        out[code] = part["v"].to_numpy()[np.searchsorted(cumulative, cumulative[-1] / 2.0)]
    return out.to_numpy(dtype=float)
