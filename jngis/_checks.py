"""The one set of input checks of jngis, all with one argument order: ``(func, name, value, ...)``.

``func`` is the public function the user called, ``name`` the parameter, ``value``
what was given; every refusal is a :class:`jngis.errors.JngisError` subclass whose
message names all three and what was expected, in the style of geopandas'
``_basic_checks``. Each check returns the value in the form the caller works with.

Examples
--------
>>> integer("make_grids", "min_households", 300, minimum=0)
300
>>> integer("make_grids", "min_households", -1, minimum=0)
Traceback (most recent call last):
...
jngis.errors.ParameterError: make_grids: min_households=-1; expected an integer >= 0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, Literal, overload

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError, SchemaError

__all__ = ["integer", "number", "choice", "subset", "geodataframe", "dataframe", "columns", "metric_crs",
           "instance", "counts", "whole", "require", "valid_polygons", "text", "has_crs", "not_geographic",
           "non_negative", "codes"]

_FAMILIES = {"polygon": (3, 6), "point": (0,), "line": (1, 5)}


def _bounds_text(minimum: float | None, maximum: float | None, exclusive_minimum: bool = False) -> str:
    low = f"> {minimum}" if exclusive_minimum else f">= {minimum}"
    if minimum is not None and maximum is not None:
        return f"from {minimum} to {maximum}" if not exclusive_minimum else f"{low} and <= {maximum}"
    if minimum is not None:
        return low
    if maximum is not None:
        return f"<= {maximum}"
    return ""


def integer(func: str, name: str, value: Any, *, minimum: int | None = None,
            maximum: int | None = None) -> int:
    """An integer (not a bool) within ``[minimum, maximum]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ParameterError(f"{func}: {name}={value!r}; expected an integer "
                             f"{_bounds_text(minimum, maximum)}".rstrip())
    whole = int(value)
    if (minimum is not None and whole < minimum) or (maximum is not None and whole > maximum):
        raise ParameterError(f"{func}: {name}={value!r}; expected an integer {_bounds_text(minimum, maximum)}")
    return whole


def number(func: str, name: str, value: Any, *, minimum: float | None = None,
           maximum: float | None = None, exclusive_minimum: bool = False, hint: str = "") -> float:
    """A finite real number (not a bool) within the bounds; ``hint`` (e.g. its unit) ends the message."""
    expected = f"expected a finite number {_bounds_text(minimum, maximum, exclusive_minimum)}".rstrip()
    expected += f" ({hint})" if hint else ""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ParameterError(f"{func}: {name}={value!r}; {expected}")
    real = float(value)
    if minimum is not None and (real <= minimum if exclusive_minimum else real < minimum):
        raise ParameterError(f"{func}: {name}={value!r}; {expected}")
    if maximum is not None and real > maximum:
        raise ParameterError(f"{func}: {name}={value!r}; {expected}")
    return real


def choice(func: str, name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``."""
    allowed = tuple(choices)
    try:
        ok = value in allowed
    except TypeError:
        ok = False
    if not ok:
        raise ParameterError(f"{func}: {name}={value!r}; expected one of {list(allowed)}")
    return value


def dataframe(func: str, name: str, value: Any) -> pd.DataFrame:
    """A pandas DataFrame (a GeoDataFrame is one too)."""
    if not isinstance(value, pd.DataFrame):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a DataFrame")
    return value


def columns(func: str, name: str, frame: pd.DataFrame, required: Sequence[str]) -> pd.DataFrame:
    """``frame`` holding every column of ``required``."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise SchemaError(f"{func}: {name} lacks column(s) {missing}; it has {list(frame.columns)}")
    return frame


def metric_crs(func: str, name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A GeoDataFrame in a projected CRS measured in metres."""
    crs = gdf.crs
    if crs is None:
        raise CRSError(f"{func}: {name} has no CRS; expected a projected CRS in metres such as EPSG:4548 "
                       "(use jngis.crs.to_metric)")
    not_geographic(func, name, gdf)
    if not crs.is_projected or (crs.axis_info and crs.axis_info[0].unit_name not in ("metre", "meter")):
        raise CRSError(f"{func}: {name} is in {crs.name}, not a projected CRS in metres; expected one such "
                       "as EPSG:4548 (use jngis.crs.to_metric)")
    return gdf


def geodataframe(func: str, name: str, value: Any, *, geometry: str | None = None,
                 required: Sequence[str] = (), metric: bool = False, empty_ok: bool = True) -> gpd.GeoDataFrame:
    """A GeoDataFrame, optionally of one geometry family, with columns, in metres, non-empty."""
    if not isinstance(value, gpd.GeoDataFrame):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a GeoDataFrame")
    if not empty_ok and len(value) == 0:
        raise ParameterError(f"{func}: {name} is empty; expected at least one feature")
    columns(func, name, value, required)
    if metric:
        metric_crs(func, name, value)
    if geometry is not None and len(value):
        geoms = value.geometry.values
        missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
        if missing.any():
            raise GeometryError(f"{func}: {name} row {value.index[missing.argmax()]!r} has an empty or "
                                f"missing geometry; expected {geometry} geometries")
        wrong = ~pd.Series(shapely.get_type_id(geoms)).isin(_FAMILIES[geometry]).to_numpy()
        if wrong.any():
            first = int(wrong.argmax())
            raise GeometryError(f"{func}: {name} row {value.index[first]!r} is a "
                                f"{geoms[first].geom_type}; expected {geometry} geometries")
    return value


def subset(func: str, name: str, value: Any, allowed: Iterable[str]) -> list[str]:
    """A list of names, each one of ``allowed``; returned in the order of ``allowed``.

    Examples
    --------
    >>> subset("query_features", "properties", ["name", "households"], ["households", "name", "units"])
    ['households', 'name']
    >>> subset("query_features", "properties", ["colour"], ["households"])
    Traceback (most recent call last):
    ...
    jngis.errors.ParameterError: query_features: properties=['colour'] names ['colour']; expected some of ['households']
    """
    choices = list(allowed)
    if isinstance(value, str) or not isinstance(value, Iterable) or not all(isinstance(v, str) for v in value):
        raise InputTypeError(f"{func}: {name}={value!r}; expected a list of names")
    asked = list(value)
    unknown = [v for v in asked if v not in choices]
    if unknown:
        raise ParameterError(f"{func}: {name}={asked!r} names {unknown}; expected some of {choices}")
    return [c for c in choices if c in asked]


def instance(func: str, name: str, value: Any, types: type | tuple[type, ...], expected: str, *,
             show_value: bool = True) -> Any:
    """``value`` if it is an instance of ``types`` (a bool only when ``bool`` is among them).

    The refusal names the value (``show_value``; leave it out for tables) and its type:
    ``"suggest_sites: k=2.0 has type float; expected an int"``.
    """
    allowed = types if isinstance(types, tuple) else (types,)
    if (isinstance(value, (bool, np.bool_)) and bool not in allowed) or not isinstance(value, allowed):
        shown = f"{name}={_short_repr(value)}" if show_value else name
        raise InputTypeError(f"{func}: {shown} has type {type(value).__name__}; expected {expected}")
    return value


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def counts(func: str, name: str, frame: pd.DataFrame, column: str, *, missing_ok: bool = False,
           whole: bool = True) -> pd.DataFrame:
    """``frame`` whose ``column`` holds finite numbers >= 0 (whole ones when ``whole``; blanks when
    ``missing_ok``): what is summed per area must not be a string, a NaN or a negative."""
    raw = frame[column]
    present = raw.notna().to_numpy()
    values = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        bad = present & (~np.isfinite(values) | (values < 0))
        if whole:
            bad |= present & np.isfinite(values) & (values != np.floor(values))
    if not missing_ok:
        bad |= ~present
    if bad.any():
        raise SchemaError(
            f"{func}: {name}['{column}'] has {int(bad.sum())} value(s) that are not "
            f"{'whole ' if whole else ''}numbers >= 0 (e.g. {raw[bad].head(3).tolist()}); expected "
            f"{'counts' if whole else 'areas'} >= 0{'' if missing_ok else ' in every row'}"
        )
    return frame


def whole(func: str, name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None,
          expected: str | None = None) -> int:
    """A whole number: an int, or a float without a fraction (not a bool), within the bounds, as an int.

    ``expected`` words what is expected in the caller's terms (default "a whole number >= 1").

    Examples
    --------
    >>> whole("make_grids", "max_households", 500.0, minimum=1)
    500
    >>> whole("make_grids", "max_households", 2.5, minimum=1)
    Traceback (most recent call last):
    ...
    jngis.errors.ParameterError: make_grids: max_households=2.5; expected a whole number >= 1
    """
    wanted = expected or f"a whole number {_bounds_text(minimum, maximum)}".rstrip()
    real = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    if not math.isfinite(real) or real != int(real):
        raise ParameterError(f"{func}: {name}={value!r}; expected {wanted}")
    count = int(real)
    if (minimum is not None and count < minimum) or (maximum is not None and count > maximum):
        raise ParameterError(f"{func}: {name}={value!r}; expected {wanted}")
    return count


def require(func: str, name: str, value: Any, ok: bool, expected: str,
            error: type[Exception] = ParameterError) -> Any:
    """``value`` if ``ok``, else ``error`` (a JngisError subclass) saying ``func: name=value; expected ...``.

    For the checks no other function here words: a condition the caller computes.

    Examples
    --------
    >>> require("rebalance", "seed", "1", False, "an int", InputTypeError)
    Traceback (most recent call last):
    ...
    jngis.errors.InputTypeError: rebalance: seed='1'; expected an int
    """
    if not ok:
        raise error(f"{func}: {name}={value!r}; expected {expected}")
    return value


def valid_polygons(func: str, name: str, gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """A GeoDataFrame whose every geometry is a present, non-empty, valid (Multi)Polygon.

    Each refusal names how many rows fail and the first five of them.
    """
    geoms = gdf.geometry.values
    empty = shapely.is_empty(geoms) | shapely.is_missing(geoms)
    if empty.any():
        raise GeometryError(f"{func}: {name} has empty or missing geometry in rows "
                            f"{gdf.index[empty][:5].tolist()}; expected a polygon for every row")
    not_polygon = ~pd.Series(shapely.get_type_id(geoms)).isin(_FAMILIES["polygon"]).to_numpy()
    if not_polygon.any():
        raise GeometryError(f"{func}: {name} has {int(not_polygon.sum())} geometries that are not polygons, "
                            f"e.g. rows {gdf.index[not_polygon][:5].tolist()}; expected (Multi)Polygons")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        why = shapely.is_valid_reason(geoms[invalid][0])
        raise GeometryError(f"{func}: {name} has {int(invalid.sum())} invalid geometries, e.g. rows "
                            f"{gdf.index[invalid][:5].tolist()} ({why}); expected valid polygons (repair them "
                            "first, e.g. shapely.make_valid)")
    return gdf


@overload
def text(func: str, name: str, value: Any, *, max_length: int, required: Literal[True]) -> str: ...


@overload
def text(func: str, name: str, value: Any, *, max_length: int, required: bool = False) -> str | None: ...


def text(func: str, name: str, value: Any, *, max_length: int, required: bool = False) -> str | None:
    """A text of at most ``max_length`` characters, stripped; None when missing or blank (unless ``required``).

    Examples
    --------
    >>> text("create_order", "caller_name", "  李四 ", max_length=100)
    '李四'
    """
    if value is not None and not isinstance(value, str):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__} ({value!r}); expected a text")
    value = None if value is None else value.strip()
    if not value:
        if required:
            raise ParameterError(f"{func}: {name} is missing; expected a text of 1 to {max_length} characters")
        return None
    if len(value) > max_length:
        raise ParameterError(f"{func}: {name} has {len(value)} characters; expected at most {max_length}")
    return value


def has_crs(func: str, name: str, gdf: Any, expected: str) -> pyproj.CRS:
    """The CRS of ``gdf`` (a GeoDataFrame or GeoSeries), which must have one.

    Examples
    --------
    >>> has_crs("to_metric", "gdf", gpd.GeoDataFrame(geometry=[]), "a GeoDataFrame with a CRS")
    Traceback (most recent call last):
    ...
    jngis.errors.CRSError: to_metric: gdf.crs is None; expected a GeoDataFrame with a CRS
    """
    if gdf.crs is None:
        raise CRSError(f"{func}: {name}.crs is None; expected {expected}")
    return pyproj.CRS.from_user_input(gdf.crs)


def not_geographic(func: str, name: str, value: Any) -> Any:
    """``value`` (anything with a ``crs``) unless that CRS is geographic (degrees); no CRS passes.

    Examples
    --------
    >>> not_geographic("shared_edges", "geometries", gpd.GeoSeries([], crs="EPSG:4490"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jngis.errors.CRSError: shared_edges: geometries is in EPSG:4490 (degrees); expected a projected CRS in metres...
    """
    crs = getattr(value, "crs", None)
    if crs is not None and crs.is_geographic:
        raise CRSError(f"{func}: {name} is in {crs.to_string()} (degrees); expected a projected CRS in metres "
                       "such as EPSG:4548 (use jngis.crs.to_metric)")
    return value


def non_negative(func: str, name: str, value: Any) -> float:
    """A finite real number >= 0 (not a bool), as a float.

    Examples
    --------
    >>> non_negative("overlaps", "min_area", -1)
    Traceback (most recent call last):
    ...
    jngis.errors.ParameterError: overlaps: min_area=-1; expected a non-negative number
    """
    real = float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else math.nan
    require(func, name, value, math.isfinite(real) and real >= 0, "a non-negative number")
    return real


def codes(func: str, name: str, value: Any, *, digits: int, what: str) -> frozenset[str]:
    """Administrative codes of ``digits`` digits (one code, an iterable or a mapping keyed by code; None: none).

    ``what`` words the codes in the caller's terms (e.g. "retired grid codes").

    Examples
    --------
    >>> sorted(codes("make_grids", "retired", {"370102003001009": 2}, digits=15, what="retired grid codes"))
    ['370102003001009']
    >>> codes("make_grids", "retired", ["370102003001"], digits=15, what="grid codes")
    Traceback (most recent call last):
    ...
    jngis.errors.ParameterError: make_grids: retired has '370102003001'; expected grid codes (strings of 15 digits)
    """
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, Iterable):
        raise InputTypeError(f"{func}: {name}={_short_repr(value)}; expected an iterable of {what}")
    try:
        found = frozenset(value)
    except TypeError:
        raise InputTypeError(f"{func}: {name}={_short_repr(value)}; expected an iterable of {what}") from None
    bad = sorted((c for c in found if not (isinstance(c, str) and len(c) == digits and c.isdigit())), key=repr)
    if bad:
        raise ParameterError(f"{func}: {name} has {bad[0]!r}; expected {what} (strings of {digits} digits)")
    return found
