"""Figures of a grids layer: quality against the bounds, and sums per community, 街道 or district."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.codes import GRID_HOUSEHOLDS, parent
from jngis.grids.staffing import STAFF_COLUMNS, Staffing
from jngis.layers import validate
from jngis.topology import check_tiling, polsby_popper

__all__ = ["grid_quality", "grid_summary"]


def grid_quality(grids: gpd.GeoDataFrame, communities: gpd.GeoDataFrame | None = None, *,
                 units: gpd.GeoDataFrame | None = None,
                 min_households: int = GRID_HOUSEHOLDS[0], max_households: int = GRID_HOUSEHOLDS[1]) -> dict:
    """Quality figures of a grids layer: share within bounds, compactness, contiguity, tiling error.

    Returns a dict with ``grids``, ``residential``, ``dedicated``,
    ``within_bounds`` (share of residential grids within the bounds),
    ``below``, ``above``, ``mean_polsby_popper`` (residential grids),
    ``contiguous`` (share of single-polygon grids) and, when ``communities``
    is given, ``worst_coverage_error`` (m²). With ``units``, also
    ``unsplittable`` (grids above the bounds because one of their units alone
    exceeds them), ``unsplittable_community`` (the other grids of
    communities whose households no number of grids within the bounds can
    hold, e.g. 550 at 300–500, or fewer than the minimum) and
    ``within_bounds_feasible`` (the share within bounds among the remaining
    residential grids).

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> from jngis.grids import make_grids
    >>> q = grid_quality(make_grids(city.communities, city.units), city.communities)
    >>> q["worst_coverage_error"] < 1, q["contiguous"]
    (True, 1.0)
    """
    validate(grids, "grids")
    low = _checks.whole("grid_quality", "min_households", min_households, minimum=1)
    high = _checks.whole("grid_quality", "max_households", max_households, minimum=1)
    residential = grids[grids["grid_type"] == "residential"]
    households = residential["households"].to_numpy()
    geoms = np.asarray(grids.geometry.values, dtype=object)
    quality = {
        "grids": len(grids),
        "residential": len(residential),
        "dedicated": int((grids["grid_type"] == "dedicated").sum()),
        "within_bounds": float(((households >= low) & (households <= high)).mean()) if len(households) else 1.0,
        "below": int((households < low).sum()),
        "above": int((households > high).sum()),
        "mean_polsby_popper": float(polsby_popper(residential).mean()) if len(residential) else float("nan"),
        "contiguous": float((shapely.get_num_geometries(geoms) == 1).mean()) if len(geoms) else 1.0,
    }
    if units is not None:
        validate(units, "units")
        tree = shapely.STRtree(residential.geometry.values)
        unit_index, grid_index = tree.query(shapely.point_on_surface(units.geometry.values), predicate="within")
        largest = np.zeros(len(residential))
        np.maximum.at(largest, grid_index, units["households"].to_numpy(dtype=float)[unit_index])
        unsplittable = largest > high
        # a community whose households no number of grids within the bounds can hold (550 at 300-500)
        totals = residential.groupby("community_code")["households"].transform("sum").to_numpy()
        cannot = np.ceil(totals / high) > np.floor(totals / low)
        others = households[~unsplittable & ~cannot]
        quality["unsplittable"] = int(unsplittable.sum())
        quality["unsplittable_community"] = int((cannot & ~unsplittable).sum())
        quality["within_bounds_feasible"] = float(((others >= low) & (others <= high)).mean()) \
            if len(others) else 1.0
    if communities is not None:
        table = check_tiling(grids, communities, "community_code")
        quality["worst_coverage_error"] = float(table[["gap", "overlap", "outside"]].to_numpy().max())
    return quality


def grid_summary(grids: gpd.GeoDataFrame, by: str = "community") -> pd.DataFrame:
    """Grids, households and staff needed per community, 街道 or district.

    Parameters
    ----------
    grids : GeoDataFrame
        Kind "grids" (as from :func:`make_grids`).
    by : {"community", "street", "district"}
        The level to sum to; the code is taken from ``grid_code``'s prefix.

    Returns
    -------
    DataFrame
        Indexed by ``community_code`` / ``street_code`` / ``district_code``:
        ``grids``, ``residential_grids``, ``dedicated_grids``, ``households``,
        ``population`` (when present), the staff columns and ``workers_needed``.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> from jngis.grids import make_grids
    >>> table = grid_summary(make_grids(city.communities, city.units), by="street")
    >>> table[["grids", "workers_needed"]].to_dict("index")
    {'370102003': {'grids': 25, 'workers_needed': 50}}
    """
    validate(grids, "grids")
    _checks.choice("grid_summary", "by", by, ("community", "street", "district"))
    key = f"{by}_code"
    frame = pd.DataFrame({
        key: parent(grids["grid_code"], by).to_numpy(),
        "grids": 1,
        "residential_grids": (grids["grid_type"] == "residential").to_numpy().astype(int),
        "dedicated_grids": (grids["grid_type"] == "dedicated").to_numpy().astype(int),
        "households": grids["households"].to_numpy(),
    })
    extra = [c for c in ("population", *STAFF_COLUMNS) if c in grids.columns]
    for column in extra:
        frame[column] = grids[column].to_numpy()
    if "workers_needed" in grids.columns:
        frame["workers_needed"] = grids["workers_needed"].to_numpy()
    else:  # grids from elsewhere: the default 1+1 per grid
        frame["workers_needed"] = sum(Staffing()[:2])
    return frame.groupby(key).sum().astype(np.int64)
