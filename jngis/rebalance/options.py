"""The parameters of :func:`jngis.rebalance.rebalance`, checked in one place.

:class:`RebalanceOptions` holds the scalar parameters (keyword-only) and
checks them when it is built; :func:`check_units` and :func:`check_stations`
check the layers against them. Every refusal is a
:class:`jngis.errors.JngisError` naming the parameter, the value and what
was expected.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.codes import COMMUNITY_HOUSEHOLDS
from jngis.errors import GeometryError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.regions import headroom_band, preferred_band

__all__ = ["RebalanceOptions", "fixed_codes", "retired_codes", "check_units", "check_stations"]

FUNC = "rebalance"


@dataclass(frozen=True, kw_only=True)
class RebalanceOptions:
    """The checked parameters of one :func:`~jngis.rebalance.rebalance` call (see there).

    Examples
    --------
    >>> RebalanceOptions(min_households=800, fixed="370102001001").fixed
    frozenset({'370102001001'})
    >>> RebalanceOptions(seed="1")
    Traceback (most recent call last):
    ...
    jngis.errors.InputTypeError: rebalance: seed='1'; expected an int
    """

    min_households: int = COMMUNITY_HOUSEHOLDS[0]
    max_households: int = COMMUNITY_HOUSEHOLDS[1]
    community: str = "community_code"
    street: str = "street_code"
    households: str = "households"
    keep_together: str | None = "compound_id"
    fixed: frozenset[str] = field(default_factory=frozenset)
    seed: int = 0
    time_limit: float | None = None
    unit_id: str = "unit_id"
    workers: int | None = None
    progress: bool | None = None
    preferred: tuple[int, int] | None = None
    headroom: float | tuple[float, float] | None = None
    preferred_weight: float = 2.0
    priority: str = "weighted"
    retired: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: the checked, converted values replace the given ones
        set_(self, "min_households", _bound("min_households", self.min_households, 0))
        set_(self, "max_households", _bound("max_households", self.max_households, 1))
        lo, hi = self.min_households, self.max_households
        if lo >= hi:
            raise ParameterError(f"{FUNC}: min_households={lo} >= max_households={hi}; "
                                 "expected min_households < max_households")
        for name in ("community", "street", "households", "unit_id"):
            value = getattr(self, name)
            _checks.require(FUNC, name, value, isinstance(value, str), "a column name (str)", InputTypeError)
        _checks.require(FUNC, "keep_together", self.keep_together,
                        self.keep_together is None or isinstance(self.keep_together, str),
                        "a column name or None", InputTypeError)
        set_(self, "fixed", fixed_codes(self.fixed))
        _checks.require(FUNC, "seed", self.seed, _is_int(self.seed), "an int", InputTypeError)
        _checks.integer(FUNC, "seed", self.seed, minimum=0)  # np.random.SeedSequence takes no negative seed
        limit = self.time_limit
        _checks.require(FUNC, "time_limit", limit, limit is None or (
            isinstance(limit, numbers.Real) and not isinstance(limit, bool) and math.isfinite(limit) and limit > 0),
            "a positive number of seconds or None")
        _checks.require(FUNC, "workers", self.workers, self.workers is None or (
            _is_int(self.workers) and self.workers >= 1), "a positive int or None (automatic)")
        set_(self, "preferred", preferred_band(FUNC, self.preferred, lo, hi))
        set_(self, "preferred_weight", _checks.number(FUNC, "preferred_weight", self.preferred_weight,
                                                      minimum=0, exclusive_minimum=True,
                                                      hint="households moved per household outside the band"))
        _checks.choice(FUNC, "priority", self.priority, PRIORITIES)
        headroom_band(FUNC, self.headroom, lo, hi)  # refuses a headroom that leaves no band
        set_(self, "retired", retired_codes(self.retired))

    @property
    def band(self) -> tuple[int, int] | None:
        """The working band the headroom leaves inside the bounds, or None without headroom."""
        return headroom_band(FUNC, self.headroom, self.min_households, self.max_households)

    @property
    def weight(self) -> float:
        """The weight of the preferred band against households moved, as the search uses it."""
        return {"weighted": self.preferred_weight, "preferred": 1e6, "moved": 1e-6}[self.priority]

    @property
    def bounds(self) -> tuple[int, int]:
        """``(min_households, max_households)``."""
        return self.min_households, self.max_households


#: How the preferred band trades against households moved: by ``preferred_weight``, the band
#: first (lexicographic), or households moved first (the band only breaks ties).
PRIORITIES = ("weighted", "preferred", "moved")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _bound(name: str, value, minimum: int) -> int:
    count = _checks.whole(FUNC, name, value, expected="a whole number of households")
    return _checks.whole(FUNC, name, count, minimum=minimum, expected=f"at least {minimum}")


def fixed_codes(fixed: Iterable[str]) -> frozenset[str]:
    """The codes of ``fixed`` (one code or an iterable of them) as a frozenset of str."""
    if isinstance(fixed, str):
        fixed = (fixed,)
    try:
        return frozenset(str(code) for code in fixed)
    except TypeError:
        raise InputTypeError(f"{FUNC}: fixed={fixed!r}; expected an iterable of community codes") from None


def retired_codes(retired: Iterable[str]) -> frozenset[str]:
    """The codes of ``retired`` (one code, an iterable or a mapping keyed by code) as a frozenset of str."""
    return _checks.codes(FUNC, "retired", retired, digits=12, what="retired community codes")


def check_units(units, options: RebalanceOptions) -> gpd.GeoDataFrame:
    """``units`` checked against ``options``: columns, households, codes, geometry."""
    if not isinstance(units, gpd.GeoDataFrame):
        raise InputTypeError(f"{FUNC}: units is a {type(units).__name__}; expected a GeoDataFrame "
                             "of units (buildings / residential blocks)")
    for name in ("community", "street", "households", "unit_id"):
        column = getattr(options, name)
        if column not in units.columns:
            raise SchemaError(f"{FUNC}: units has no column {column!r} ({name}={column!r}); "
                              f"columns are {list(units.columns)}")
    together = options.keep_together
    if together is not None and together not in units.columns and together != "compound_id":
        raise SchemaError(f"{FUNC}: units has no column {together!r} (keep_together); "
                          f"columns are {list(units.columns)}")
    if len(units) == 0:
        raise SchemaError(f"{FUNC}: units is empty; expected at least one unit")
    _check_households(units, options.households)
    _check_codes(units, options)
    return _checks.valid_polygons(FUNC, "units", units)


def _check_households(units: gpd.GeoDataFrame, households: str) -> None:
    values = units[households]
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        raise SchemaError(f"{FUNC}: column {households!r} (households) has dtype {values.dtype}; "
                          "expected whole numbers of households")
    numeric = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric != np.round(numeric))
    if bad.any():
        rows = units.index[bad][:5].tolist()
        raise SchemaError(f"{FUNC}: column {households!r} (households) has {int(bad.sum())} values that are "
                          f"negative, missing or not whole numbers, e.g. rows {rows} "
                          f"({values[bad].head(5).tolist()}); expected non-negative integers")


def _check_codes(units: gpd.GeoDataFrame, options: RebalanceOptions) -> None:
    community, unit_id = options.community, options.unit_id
    for name in ("community", "street", "unit_id"):
        column = getattr(options, name)
        missing = units[column].isna().to_numpy()
        if missing.any():
            raise SchemaError(f"{FUNC}: column {column!r} ({name}) is missing in rows "
                              f"{units.index[missing][:5].tolist()}; expected a value for every unit")
    ids = units[unit_id].astype(str)
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        table = pd.DataFrame({"id": ids[dup], "community": units[community].astype(str)[dup]})
        spread = table.groupby("id")["community"].nunique()
        if (spread > 1).any():
            first = spread[spread > 1].index[0]
            codes = sorted(table.loc[table["id"] == first, "community"].unique())
            raise SchemaError(f"{FUNC}: unit {first!r} is in two communities {codes}; "
                              f"expected each {unit_id!r} in exactly one community")
        raise SchemaError(f"{FUNC}: {unit_id!r} values are not unique, e.g. {ids[dup].iloc[0]!r}; "
                          "expected one row per unit")
    streets_per = units.groupby(units[community].astype(str))[options.street].nunique()
    if (streets_per > 1).any():
        code = streets_per[streets_per > 1].index[0]
        raise SchemaError(f"{FUNC}: community {code!r} has units in {int(streets_per[code])} 街道 "
                          f"(column {options.street!r}); expected every community inside one 街道")
    current = set(units[community].astype(str))
    in_use = sorted(options.retired & current)
    if in_use:
        raise ParameterError(f"{FUNC}: retired has {in_use[0]!r} ({len(in_use)} codes), which units still have as "
                             f"{community!r}; expected codes no longer in use (e.g. store.retired_codes"
                             "('communities'))")
    unknown = options.fixed - current
    if unknown:
        raise NotFoundError(f"{FUNC}: fixed has codes {sorted(unknown)[:5]} that no unit's {community!r} has; "
                            "expected codes of current communities")


def check_stations(stations, options: RebalanceOptions | None = None) -> gpd.GeoDataFrame | None:
    """``stations`` (points with ``area_m2``) or None."""
    if stations is None:
        return None
    if not isinstance(stations, gpd.GeoDataFrame):
        raise InputTypeError(f"{FUNC}: stations is a {type(stations).__name__}; expected a GeoDataFrame "
                             "of points with an 'area_m2' column")
    if "area_m2" not in stations.columns:
        raise SchemaError(f"{FUNC}: stations has no column 'area_m2'; columns are {list(stations.columns)}")
    if len(stations) and not (shapely.get_type_id(stations.geometry.values) == 0).all():
        raise GeometryError(f"{FUNC}: stations has geometries that are not points; expected Points")
    return stations

