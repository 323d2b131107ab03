"""``validate()``: a layer against its schema, each refusal naming the kind, column and rows."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import codes
from jngis.errors import CRSError, InputTypeError, SchemaError
from jngis.layers.schema import CODE_DIGITS, KINDS, SCHEMAS, Column, LayerSchema, guess_kind

__all__ = ["validate"]

_GEOMETRY_TYPES = {
    "polygon": ("Polygon", "MultiPolygon"),
    "point": ("Point",),
}
_TYPE_NAMES = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                        "MultiLineString", "MultiPolygon", "GeometryCollection"])

_MAX_LISTED = 5


def _rows(gdf: pd.DataFrame, mask: np.ndarray, key: str | None) -> str:
    """Describe the first offending rows as 'row 3 (unit_id=U0003), ...'."""
    positions = np.flatnonzero(mask)
    shown = []
    for pos in positions[:_MAX_LISTED]:
        label = gdf.index[pos]
        if key is not None and key in gdf.columns:
            shown.append(f"row {_show(label)} ({key}={_show(gdf[key].iloc[pos])})")
        else:
            shown.append(f"row {_show(label)}")
    more = f" and {len(positions) - _MAX_LISTED} more" if len(positions) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def _show(value) -> str:
    """A value as a reader would write it: -5 not np.float64(-5.0)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return repr(value.item() if isinstance(value, np.generic) else value)


def _fail(kind: str, column: str, problem: str, rows: str = "", expected: str = "") -> None:
    message = f"{kind}: column {column!r} {problem}"
    if rows:
        message += f" in {rows}"
    if expected:
        message += f"; expected {expected}"
    raise SchemaError(message)


def _check_code(gdf: pd.DataFrame, kind: str, column: Column, key: str) -> None:
    digits = CODE_DIGITS[column.name]
    values = gdf[column.name]
    if pd.api.types.is_numeric_dtype(values.dtype):
        _fail(
            kind,
            column.name,
            f"holds numbers (dtype {values.dtype})",
            expected=f"{digits}-digit strings such as {'3' * digits!r} "
            "(codes keep leading zeros; convert with .astype(str))",
        )
    text = values.astype("string")
    bad = ~text.str.fullmatch(rf"\d{{{digits}}}").fillna(False).to_numpy(bool)
    if bad.any():
        first = values[bad].iloc[0]
        _fail(
            kind,
            column.name,
            f"has a code of the wrong form ({first!r})",
            _rows(gdf, bad, key),
            f"a string of exactly {digits} digits",
        )
    if column.parent is not None and column.parent in gdf.columns:
        _check_parent(gdf, kind, column, key, text)


def _check_parent(gdf: pd.DataFrame, kind: str, column: Column, key: str, text: pd.Series) -> None:
    """Each code begins with its parent's code."""
    parent_name = str(column.parent)
    # The parent column first: a missing or malformed parent code is named as such
    # (and every parent code is then a string of its level's digits).
    _check_column(gdf, kind, SCHEMAS[kind].column(parent_name), key)
    mother = gdf[parent_name].astype("string")
    prefix = codes.parent(text.astype(object), parent_name).astype("string")
    bad = (prefix != mother).to_numpy(bool)
    if bad.any():
        pos = np.flatnonzero(bad)[0]
        _fail(
            kind,
            column.name,
            f"does not extend its {column.parent} "
            f"({text.iloc[pos]!r} does not start with {mother.iloc[pos]!r})",
            _rows(gdf, bad, key),
            f"each {column.name} to begin with its {column.parent}",
        )


def _check_ids(gdf: pd.DataFrame, kind: str, column: Column, key: str, missing: np.ndarray) -> None:
    values = gdf[column.name]
    present = values[~missing]
    if not (
        pd.api.types.is_integer_dtype(present.dtype)
        or pd.api.types.is_string_dtype(present.dtype)
        or pd.api.types.is_object_dtype(present.dtype)
    ):
        _fail(kind, column.name, f"has dtype {values.dtype}", expected="string or integer ids")
    if pd.api.types.is_object_dtype(present.dtype):
        wrong = ~present.map(lambda v: isinstance(v, (str, int, np.integer))).to_numpy(bool)
        empty = present.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(bool)
        bad = np.zeros(len(gdf), bool)
        bad[np.flatnonzero(~missing)[wrong | empty]] = True
        if bad.any():
            _fail(kind, column.name, "has empty or non-text ids", _rows(gdf, bad, key),
                  "non-empty strings or integers")


def _check_text(gdf: pd.DataFrame, kind: str, column: Column, key: str, missing: np.ndarray) -> None:
    values = gdf[column.name]
    present = values[~missing]
    if not (pd.api.types.is_string_dtype(present.dtype) or pd.api.types.is_object_dtype(present.dtype)):
        _fail(kind, column.name, f"has dtype {values.dtype}", expected="text")
    if column.choices is not None:
        bad = ~values.isin(column.choices).to_numpy() & ~missing
        if bad.any():
            _fail(
                kind,
                column.name,
                f"has the value {_show(values[bad].iloc[0])}",
                _rows(gdf, bad, key),
                f"one of {', '.join(map(repr, column.choices))}",
            )


def _check_numbers(gdf: pd.DataFrame, kind: str, column: Column, key: str, missing: np.ndarray) -> None:
    values = gdf[column.name]
    present = values[~missing]
    if not pd.api.types.is_numeric_dtype(present.dtype) or pd.api.types.is_bool_dtype(present.dtype):
        _fail(kind, column.name, f"has dtype {values.dtype}", expected="numbers")
    numbers = values.to_numpy(dtype="float64", na_value=np.nan)
    if column.dtype == "count":
        bad = ~missing & (~np.isfinite(numbers) | (numbers != np.round(numbers)))
        if bad.any():
            _fail(kind, column.name, f"has the non-integer value {_show(values[bad].iloc[0])}",
                  _rows(gdf, bad, key), "whole numbers")
    bad = ~missing & ~(numbers >= 0)
    if bad.any():
        _fail(kind, column.name, f"has the negative value {_show(values[bad].iloc[0])}",
              _rows(gdf, bad, key), "non-negative numbers")


def _check_datetimes(gdf: pd.DataFrame, kind: str, column: Column, key: str, missing: np.ndarray) -> None:
    values = gdf[column.name]
    if not pd.api.types.is_datetime64_any_dtype(values.dtype):
        _fail(kind, column.name, f"has dtype {values.dtype}",
              expected="datetimes (parse with pandas.to_datetime)")


_CHECKS = {"id": _check_ids, "str": _check_text, "count": _check_numbers, "number": _check_numbers,
           "datetime": _check_datetimes}


def _check_column(gdf: pd.DataFrame, kind: str, column: Column, key: str) -> None:
    missing = gdf[column.name].isna().to_numpy()
    if missing.any() and not column.nullable:
        _fail(kind, column.name, "has missing values", _rows(gdf, missing, key), "a value in every row")
    if column.dtype == "code":
        _check_code(gdf, kind, column, key)
    else:
        _CHECKS[column.dtype](gdf, kind, column, key, missing)


def _check_geometry(gdf: gpd.GeoDataFrame, kind: str, schema: LayerSchema) -> None:
    geoms = gdf.geometry.values
    key = schema.key
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        _fail(kind, "geometry", "has missing or empty geometries", _rows(gdf, missing, key),
              "a non-empty geometry in every row")
    allowed = _GEOMETRY_TYPES[schema.geometry]
    type_names = _TYPE_NAMES[np.clip(np.asarray(shapely.get_type_id(geoms)), 0, 7)]
    bad = ~np.isin(type_names, allowed)
    if bad.any():
        _fail(kind, "geometry", f"has a {type_names[bad][0]}", _rows(gdf, bad, key),
              " or ".join(allowed))
    if shapely.has_z(geoms).any():
        bad = shapely.has_z(geoms)
        _fail(kind, "geometry", "has 3-D coordinates", _rows(gdf, bad, key),
              "2-D geometries (drop Z with shapely.force_2d)")
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    finite = np.isfinite(coords).all(axis=1)
    if not finite.all():
        bad = np.zeros(len(gdf), bool)
        bad[np.unique(owner[~finite])] = True
        _fail(kind, "geometry", "has NaN or infinite coordinates", _rows(gdf, bad, key),
              "finite coordinates")
    invalid = ~shapely.is_valid(geoms)
    if invalid.any():
        first = int(np.flatnonzero(invalid)[0])
        reason = shapely.is_valid_reason(geoms[first])
        _fail(kind, "geometry", f"has invalid geometries ({reason})", _rows(gdf, invalid, key),
              "valid geometries (repair with shapely.make_valid)")


def _check_crs(gdf: gpd.GeoDataFrame, kind: str) -> None:
    if gdf.crs is None:
        raise CRSError(
            f"{kind}: the layer has no CRS; expected one such as EPSG:4490 (CGCS2000) "
            "or EPSG:4548 (CGCS2000 / 3-degree Gauss-Kruger CM 117E): use gdf.set_crs(...)"
        )
    if len(gdf) == 0:
        return
    minx, miny, maxx, maxy = gdf.total_bounds
    if gdf.crs.is_geographic and not (-180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90):
        raise CRSError(
            f"{kind}: coordinates ({minx:.0f}, {miny:.0f}) - ({maxx:.0f}, {maxy:.0f}) are not "
            f"degrees, but the CRS is geographic ({gdf.crs.to_string()}); "
            "expected the layer's real CRS (metres need a projected CRS such as EPSG:4548)"
        )
    # No place on Earth lies farther than ~2e7 m from a projected CRS's origin.
    if gdf.crs.is_projected and max(abs(minx), abs(miny), abs(maxx), abs(maxy)) > 1e8:
        raise CRSError(
            f"{kind}: coordinates ({minx:.3g}, {miny:.3g}) - ({maxx:.3g}, {maxy:.3g}) lie farther than "
            f"100,000 km from the origin of the layer's CRS ({gdf.crs.to_string()}); "
            "expected metres of a place on Earth, or the layer's real CRS"
        )


def _check_columns_present(gdf: gpd.GeoDataFrame, kind: str, schema: LayerSchema) -> None:
    missing = [c for c in schema.required if c not in gdf.columns]
    if missing:
        raise SchemaError(
            f"{kind}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; the layer has {list(gdf.columns)}, "
            f"expected {list(schema.required)}"
        )
    # Point layers are where callers and residents appear (work orders above all);
    # jngis.codes holds the one definition, which knows a station's phone is public.
    leaked = codes.personal_columns(gdf.columns, kind) if schema.geometry == "point" else []
    if leaked:
        raise SchemaError(
            f"{kind}: column {leaked[0]!r} holds personal data, which never belongs in a "
            "layer; expected it only in the store"
        )


def _check_together(gdf: gpd.GeoDataFrame, kind: str, schema: LayerSchema) -> None:
    """Columns of a ``together`` group: all present or none, and filled in the same rows."""
    for group in schema.together:
        present = [c for c in group if c in gdf.columns]
        if present and len(present) < len(group):
            missing = [c for c in group if c not in present]
            raise SchemaError(f"{kind}: has {present} without {missing}; expected the columns "
                              f"{list(group)} together or none of them")
        if present:
            filled = np.column_stack([gdf[c].notna().to_numpy() for c in group])
            bad = np.asarray(filled.any(axis=1) & ~filled.all(axis=1))
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                empty = next(c for c, f in zip(group, filled[row]) if not f)
                _fail(kind, empty, "is missing where the other columns of its group have a value",
                      _rows(gdf, bad, schema.key), f"{' and '.join(group)} filled together")


def _schema_of(gdf: gpd.GeoDataFrame, kind: str | None) -> LayerSchema:
    """The schema ``validate`` checks ``gdf`` against: of ``kind``, else of the key column it has."""
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputTypeError(
            f"validate: gdf is a {type(gdf).__name__}; expected a geopandas.GeoDataFrame"
        )
    if kind is None:
        kind = guess_kind(gdf)
    if not isinstance(kind, str) or kind not in SCHEMAS:
        raise SchemaError(f"validate: kind={kind!r} is not a layer kind; expected one of {', '.join(KINDS)}")
    return SCHEMAS[kind]


def validate(gdf: gpd.GeoDataFrame, kind: str | None = None) -> gpd.GeoDataFrame:
    """Check a layer against its schema and return it unchanged.

    Checks columns and dtypes, code formats (6/9/12/15 digits, each extending
    its parent's code), allowed values, geometry type, emptiness, validity,
    finite 2-D coordinates, the CRS, duplicate keys, that counts are
    non-negative integers, and that no column holds personal data
    (:func:`jngis.codes.personal_columns`).

    Parameters
    ----------
    gdf : GeoDataFrame
        The layer.
    kind : str, optional
        One of :data:`KINDS`; guessed from the key column when omitted.

    Returns
    -------
    GeoDataFrame
        ``gdf`` itself, so ``validate`` can be chained.

    Raises
    ------
    SchemaError
        Naming the kind, the column and the first offending rows.
    CRSError
        When the layer has no CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> districts = gpd.GeoDataFrame(
    ...     {"district_code": ["370102"], "name": ["历下区"]},
    ...     geometry=[shapely.box(0, 0, 1000, 1000)], crs="EPSG:4548")
    >>> validate(districts, "districts") is districts
    True
    >>> validate(districts.assign(district_code="3701"), "districts")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    jngis.errors.SchemaError: districts: column 'district_code' has a code of the wrong form ('3701') in row 0 ...
    """
    schema = _schema_of(gdf, kind)
    kind = schema.kind
    _check_columns_present(gdf, kind, schema)
    _check_crs(gdf, kind)
    for column in schema.columns:
        if column.name in gdf.columns:
            _check_column(gdf, kind, column, schema.key)
    _check_together(gdf, kind, schema)
    duplicated = gdf[schema.key].duplicated(keep=False).to_numpy()
    if duplicated.any():
        _fail(kind, schema.key, f"has duplicate keys ({_show(gdf[schema.key][duplicated].iloc[0])})",
              _rows(gdf, duplicated, schema.key), "each key once")
    _check_geometry(gdf, kind, schema)
    return gdf
