"""Growth by a horizon year: the households expected to move in, per unit, and the plan checked against them.

``growth=`` of :func:`jngis.rebalance.rebalance` is read here into one number
per unit (households added by the horizon), and :func:`growth_table` says
which of the plan's communities would leave the band by then.

A growth table may name housing that is not a unit yet (a project on open
land, given as a point or polygon): it counts for the unit its inner point
lies in, else the nearest unit of its 街道 (``street_code`` when the table has
it, else the 街道 of the nearest unit).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.errors import CRSError, GrowthError, InputTypeError, NotFoundError, SchemaError

__all__ = ["GROWTH_POLICIES", "added_households", "growth_table", "refuse_growth"]

FUNC = "rebalance"
#: What a plan does with communities that would leave the band by the horizon.
GROWTH_POLICIES = ("report", "refuse")


def added_households(growth, metric: gpd.GeoDataFrame, unit_id: str, street: str) -> np.ndarray | None:
    """Households added by the horizon per unit (row order of ``metric``), from a column or a table."""
    if growth is None:
        return None
    if isinstance(growth, str):
        if growth not in metric.columns:
            raise SchemaError(f"{FUNC}: units has no column {growth!r} (growth); columns are {list(metric.columns)}")
        return _whole_numbers(metric[growth], f"growth column {growth!r}")
    if not isinstance(growth, pd.DataFrame):
        raise InputTypeError(f"{FUNC}: growth is a {type(growth).__name__}; expected a column name of units or a "
                             "table of units / planned housing with a 'households' column")
    _checks.columns(FUNC, "growth", growth, ["households"])
    added = _whole_numbers(growth["households"], "growth 'households'")
    row_of = _growth_rows(growth, metric, unit_id, street)
    return np.bincount(row_of, weights=added, minlength=len(metric)).astype(np.int64)


def _whole_numbers(values: pd.Series, what: str) -> np.ndarray:
    numeric = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(numeric) | (numeric != np.round(numeric))
    if bad.any():
        raise SchemaError(f"{FUNC}: {what} has {int(bad.sum())} values that are missing or not whole numbers, "
                          f"e.g. {values[bad].head(3).tolist()}; expected whole numbers of households")
    return numeric.astype(np.int64)


def _growth_rows(growth: pd.DataFrame, metric: gpd.GeoDataFrame, unit_id: str, street: str) -> np.ndarray:
    """The units row each growth row counts for: by ``unit_id``, else by where its geometry lies."""
    position = pd.Series(np.arange(len(metric)), index=metric[unit_id].astype(str).to_numpy())
    named = growth[unit_id].astype("string") if unit_id in growth.columns else pd.Series(pd.NA, index=growth.index,
                                                                                        dtype="string")
    row_of = position.reindex(named.fillna("").to_numpy()).to_numpy(dtype=float, copy=True)
    unplaced = np.isnan(row_of)
    if unplaced.any():
        if not isinstance(growth, gpd.GeoDataFrame):
            missing = named[unplaced].head(3).tolist()
            raise NotFoundError(f"{FUNC}: growth names units {missing} that are not in units and has no geometry; "
                                f"expected existing {unit_id!r} values, or a GeoDataFrame placing new housing")
        row_of[unplaced] = _place(growth[unplaced], metric, street)
    return row_of.astype(np.int64)


def _place(projects: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, street: str) -> np.ndarray:
    """The unit each planned project's inner point lies in, else the nearest unit of its 街道."""
    if projects.crs is None:
        raise CRSError(f"{FUNC}: growth has no CRS; expected the CRS of units (or any, it is converted)")
    geoms = projects.to_crs(metric.crs).geometry.values
    empty = shapely.is_empty(geoms) | pd.isna(geoms)
    if empty.any():
        raise SchemaError(f"{FUNC}: growth has {int(empty.sum())} rows with neither a known unit_id nor a geometry; "
                          "expected a point or polygon for each planned project")
    points = shapely.point_on_surface(geoms)
    units_geoms = metric.geometry.values
    tree = shapely.STRtree(units_geoms)
    hit_point, hit_unit = tree.query(points, predicate="within")
    found = np.full(len(points), -1, dtype=np.int64)
    found[hit_point[::-1]] = hit_unit[::-1]
    streets = metric[street].astype(str).to_numpy()
    for i in np.flatnonzero(found < 0):
        if street in projects.columns and pd.notna(projects[street].iloc[i]):
            rows = np.flatnonzero(streets == str(projects[street].iloc[i]))
            if not len(rows):
                raise NotFoundError(f"{FUNC}: growth row {i} names {street}={projects[street].iloc[i]!r}, which no "
                                    "unit has; expected a 街道 of units")
            found[i] = rows[int(np.argmin(shapely.distance(units_geoms[rows], points[i])))]
        else:
            found[i] = int(tree.query_nearest(points[i], all_matches=False)[0])
    return found


def growth_table(communities: pd.DataFrame, added: np.ndarray, codes: np.ndarray, lo: int, hi: int,
                 horizon: int | None) -> pd.DataFrame:
    """Per community of the plan: households today and by the horizon, and whether it leaves the band."""
    by_code = pd.Series(added).groupby(codes).sum()
    table = communities[["community_code", "street_code", "households"]].copy()
    table["added"] = by_code.reindex(table["community_code"]).fillna(0).astype(np.int64).to_numpy()
    table["households_horizon"] = table["households"] + table["added"]
    today = table["households"].between(lo, hi)
    later = table["households_horizon"].between(lo, hi)
    table["within_bounds"] = today.to_numpy()
    table["within_bounds_horizon"] = later.to_numpy()
    table["leaves_band"] = (today & ~later).to_numpy()
    table["horizon"] = horizon
    return table.reset_index(drop=True)


def refuse_growth(table: pd.DataFrame, hi: int, horizon: int | None) -> None:
    """Raise :class:`GrowthError` when a community of the plan would leave the band by the horizon."""
    leaving = table[table["leaves_band"]]
    if not len(leaving):
        return
    when = f"by {horizon}" if horizon is not None else "by the horizon"
    first = leaving.sort_values("households_horizon", ascending=False).head(5)
    listed = ", ".join(f"{r.community_code} ({r.households:,} -> {r.households_horizon:,})" for r in first.itertuples())
    raise GrowthError(f"{FUNC}: growth_policy='refuse' and {len(leaving)} communities of the plan would leave the "
                      f"band {when}: {listed}; expected none (give headroom= or a preferred band, or "
                      "growth_policy='report')")
