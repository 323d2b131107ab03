"""Layer kinds, their schemas, ``validate()``, the :class:`City` bundle and file I/O.

The schema is the contract between every part of jngis: a layer that passes
:func:`validate` can be handed to any library function. Codes follow the
Chinese administrative division code (GB/T 2260 + the civil-affairs
extension): district 6 digits, 街道 9, community 12, grid 15, each extending
its parent's code.

Files: one GeoPackage (a real SQLite file) holds one layer per kind and is the
default store; single layers may also come from GeoJSON, Shapefile or
GeoParquet files.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from jngis.errors import CRSError, InputTypeError, NotFoundError, SchemaError

__all__ = [
    "Column",
    "LayerSchema",
    "SCHEMAS",
    "KINDS",
    "CODE_DIGITS",
    "WORKORDER_STATES",
    "City",
    "validate",
    "read_layer",
    "write_layer",
    "read_city",
    "write_city",
    "guess_kind",
]

#: Digits of each administrative code column.
CODE_DIGITS = {
    "district_code": 6,
    "street_code": 9,
    "community_code": 12,
    "grid_code": 15,
}

#: States of a 12345 work order (the closed loop, plus the side states).
WORKORDER_STATES = (
    "received",
    "dispatched",
    "in_progress",
    "resolved",
    "closed",
    "returned",
)


@dataclass(frozen=True)
class Column:
    """One column of a layer schema.

    ``dtype`` is one of ``"code"`` (a string of ``CODE_DIGITS[name]`` digits),
    ``"id"`` (a non-empty string or integer key), ``"str"``, ``"count"`` (a
    non-negative integer), ``"number"`` (a non-negative finite number) or
    ``"datetime"``. ``choices`` restricts the values; ``parent`` names the code
    column this code must extend.
    """

    name: str
    dtype: str
    required: bool = True
    choices: tuple[str, ...] | None = None
    parent: str | None = None
    nullable: bool = False


@dataclass(frozen=True)
class LayerSchema:
    """The schema of one layer kind: geometry family, key column and columns."""

    kind: str
    geometry: str  # "polygon" or "point"
    key: str
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)


SCHEMAS: dict[str, LayerSchema] = {
    s.kind: s
    for s in (
        LayerSchema(
            "districts",
            "polygon",
            "district_code",
            (Column("district_code", "code"), Column("name", "str")),
        ),
        LayerSchema(
            "streets",
            "polygon",
            "street_code",
            (
                Column("street_code", "code", parent="district_code"),
                Column("name", "str"),
                Column("district_code", "code"),
            ),
        ),
        LayerSchema(
            "communities",
            "polygon",
            "community_code",
            (
                Column("community_code", "code", parent="street_code"),
                Column("name", "str"),
                Column("street_code", "code"),
            ),
        ),
        LayerSchema(
            "units",
            "polygon",
            "unit_id",
            (
                Column("unit_id", "id"),
                Column("households", "count"),
                Column("street_code", "code"),
                Column("community_code", "code", parent="street_code"),
                Column("compound_id", "id", required=False, nullable=True),
                Column("population", "count", required=False),
            ),
        ),
        LayerSchema(
            "grids",
            "polygon",
            "grid_code",
            (
                Column("grid_code", "code", parent="community_code"),
                Column("community_code", "code"),
                Column("households", "count"),
                Column("grid_type", "str", choices=("residential", "dedicated")),
            ),
        ),
        LayerSchema(
            "stations",
            "point",
            "station_id",
            (
                Column("station_id", "id"),
                Column("name", "str"),
                Column("level", "str", choices=("community", "grid")),
                Column("area_m2", "number"),
            ),
        ),
        LayerSchema(
            "party_orgs",
            "point",
            "org_id",
            (
                Column("org_id", "id"),
                Column("name", "str"),
                Column("kind", "str"),
                Column("members", "count"),
            ),
        ),
        LayerSchema(
            "workorders",
            "point",
            "order_id",
            (
                Column("order_id", "id"),
                Column("category", "str"),
                Column("status", "str", choices=WORKORDER_STATES),
                Column("received_at", "datetime"),
                Column("due_at", "datetime", nullable=True),
            ),
        ),
    )
}

#: Layer kinds in hierarchy order (also the order of layers in a City file).
KINDS: tuple[str, ...] = tuple(SCHEMAS)

# Columns that identify a person: never part of a public layer.
_PERSONAL_COLUMNS = ("caller_name", "caller_phone", "name_of_caller", "phone")

_GEOMETRY_TYPES = {
    "polygon": ("Polygon", "MultiPolygon"),
    "point": ("Point",),
}

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
        parent = gdf[column.parent].astype("string")
        bad = ~np.array(
            [c.startswith(p) for c, p in zip(text.to_numpy(), parent.to_numpy())], dtype=bool
        )
        if bad.any():
            pos = np.flatnonzero(bad)[0]
            _fail(
                kind,
                column.name,
                f"does not extend its {column.parent} "
                f"({text.iloc[pos]!r} does not start with {parent.iloc[pos]!r})",
                _rows(gdf, bad, key),
                f"each {column.name} to begin with its {column.parent}",
            )


def _check_column(gdf: pd.DataFrame, kind: str, column: Column, key: str) -> None:
    values = gdf[column.name]
    missing = values.isna().to_numpy()
    if missing.any() and not column.nullable:
        _fail(kind, column.name, "has missing values", _rows(gdf, missing, key), "a value in every row")
    present = values[~missing]
    if column.dtype == "code":
        _check_code(gdf, kind, column, key)
    elif column.dtype == "id":
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
    elif column.dtype == "str":
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
    elif column.dtype in ("count", "number"):
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
    elif column.dtype == "datetime":
        if not pd.api.types.is_datetime64_any_dtype(values.dtype):
            _fail(kind, column.name, f"has dtype {values.dtype}",
                  expected="datetimes (parse with pandas.to_datetime)")


def _check_geometry(gdf: gpd.GeoDataFrame, kind: str, schema: LayerSchema) -> None:
    geoms = gdf.geometry.values
    key = schema.key
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        _fail(kind, "geometry", "has missing or empty geometries", _rows(gdf, missing, key),
              "a non-empty geometry in every row")
    allowed = _GEOMETRY_TYPES[schema.geometry]
    types = np.asarray(shapely.get_type_id(geoms))
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"])
    type_names = names[np.clip(types, 0, 7)]
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


def guess_kind(gdf: pd.DataFrame) -> str:
    """Name the layer kind whose key column the table has.

    Examples
    --------
    >>> import geopandas as gpd
    >>> guess_kind(gpd.GeoDataFrame({"unit_id": []}, geometry=[]))
    'units'
    """
    # most specific first: a communities layer also has street_code, the streets key
    for kind, schema in reversed(SCHEMAS.items()):
        if schema.key in gdf.columns:
            return kind
    raise SchemaError(
        f"cannot tell the layer kind from its columns {list(gdf.columns)}; "
        f"expected one of the key columns {', '.join(s.key for s in SCHEMAS.values())} "
        "or an explicit kind"
    )


def validate(gdf: gpd.GeoDataFrame, kind: str | None = None) -> gpd.GeoDataFrame:
    """Check a layer against its schema and return it unchanged.

    Checks columns and dtypes, code formats (6/9/12/15 digits, each extending
    its parent's code), allowed values, geometry type, emptiness, validity,
    finite 2-D coordinates, the CRS, duplicate keys, and that counts are
    non-negative integers.

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
    >>> validate(districts.assign(district_code="3701"), "districts")
    Traceback (most recent call last):
    ...
    jngis.errors.SchemaError: districts: column 'district_code' has a code of the wrong form ('3701') in row 0 (district_code='3701'); expected a string of exactly 6 digits
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputTypeError(
            f"validate: gdf is a {type(gdf).__name__}; expected a geopandas.GeoDataFrame"
        )
    if kind is None:
        kind = guess_kind(gdf)
    if kind not in SCHEMAS:
        raise SchemaError(f"validate: kind={kind!r} is not a layer kind; expected one of {', '.join(KINDS)}")
    schema = SCHEMAS[kind]
    missing = [c for c in schema.required if c not in gdf.columns]
    if missing:
        raise SchemaError(
            f"{kind}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}; the layer has {list(gdf.columns)}, "
            f"expected {list(schema.required)}"
        )
    if schema.geometry == "point" or kind == "workorders":
        leaked = [c for c in _PERSONAL_COLUMNS if c in gdf.columns]
        if leaked:
            raise SchemaError(
                f"{kind}: column {leaked[0]!r} holds personal data, which never belongs in a "
                "layer; expected it only in the store"
            )
    _check_crs(gdf, kind)
    for column in schema.columns:
        if column.name in gdf.columns:
            _check_column(gdf, kind, column, schema.key)
    duplicated = gdf[schema.key].duplicated(keep=False).to_numpy()
    if duplicated.any():
        _fail(kind, schema.key, f"has duplicate keys ({_show(gdf[schema.key][duplicated].iloc[0])})",
              _rows(gdf, duplicated, schema.key), "each key once")
    _check_geometry(gdf, kind, schema)
    return gdf


@dataclass
class City:
    """The layers of one city, each a GeoDataFrame or ``None`` when absent.

    Examples
    --------
    >>> City().kinds()
    []
    """

    districts: gpd.GeoDataFrame | None = None
    streets: gpd.GeoDataFrame | None = None
    communities: gpd.GeoDataFrame | None = None
    units: gpd.GeoDataFrame | None = None
    grids: gpd.GeoDataFrame | None = None
    stations: gpd.GeoDataFrame | None = None
    party_orgs: gpd.GeoDataFrame | None = None
    workorders: gpd.GeoDataFrame | None = None
    meta: dict = field(default_factory=dict, repr=False)

    def kinds(self) -> list[str]:
        """The kinds of the layers present, in hierarchy order."""
        return [k for k in KINDS if getattr(self, k) is not None]

    def layers(self) -> Iterator[tuple[str, gpd.GeoDataFrame]]:
        """Yield ``(kind, layer)`` for every layer present."""
        for kind in self.kinds():
            yield kind, getattr(self, kind)

    def validate(self) -> "City":
        """Validate every layer present; return the city."""
        for kind, layer in self.layers():
            validate(layer, kind)
        return self

    def to_crs(self, crs) -> "City":
        """A new City with every layer in ``crs``."""
        return dataclasses.replace(
            self, **{kind: layer.to_crs(crs) for kind, layer in self.layers()}
        )

    def households_by(self, kind: str) -> pd.Series | None:
        """Households per community or residential grid: the layer's own column, else summed from units."""
        if kind not in ("communities", "grids"):
            raise SchemaError(f"households_by: kind={kind!r}; expected 'communities' or 'grids'")
        layer = getattr(self, kind)
        key = SCHEMAS[kind].key
        if layer is None:
            return None
        if kind == "grids" and "grid_type" in layer.columns:
            layer = layer[layer["grid_type"] == "residential"]  # dedicated grids hold no households
        if "households" in layer.columns:
            return layer.set_index(key)["households"]
        if self.units is not None and key in self.units.columns:
            sums = self.units.groupby(key)["households"].sum()
            return sums.reindex(layer[key], fill_value=0)
        return None

    def summary(self, bands: dict[str, tuple[int, int]] | None = None) -> list[str]:
        """Lines describing the city: features per layer, households, size bands.

        ``bands`` maps "communities" / "grids" to (min, max) households; the
        defaults are 1,000-3,000 per community and 300-500 per grid.
        """
        bands = {"communities": (1000, 3000), "grids": (300, 500), **(bands or {})}
        lines = []
        for kind, layer in self.layers():
            line = f"{kind:<12} {len(layer):>9,}"
            if kind == "units":
                line += f"   households {int(layer['households'].sum()):,}"
            if kind == "workorders" and "status" in layer.columns:
                open_orders = (~layer["status"].isin(["resolved", "closed"])).sum()
                line += f"   open {open_orders:,}"
            lines.append(line)
        for kind, (low, high) in bands.items():
            households = self.households_by(kind)
            if households is None or len(households) == 0:
                continue
            below, above = int((households < low).sum()), int((households > high).sum())
            within = len(households) - below - above
            q = households.quantile([0, 0.25, 0.5, 0.75, 1]).round().astype(int).tolist()
            lines.append(
                f"{kind} by households: {within:,} within {low:,}-{high:,} "
                f"({within / len(households):.0%}), {below:,} below, {above:,} above; "
                f"min/q1/median/q3/max {'/'.join(f'{v:,}' for v in q)}"
            )
        return lines

    def __repr__(self) -> str:
        counts = ", ".join(f"{kind}={len(layer):,}" for kind, layer in self.layers())
        return f"City({counts})"


_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb"}


def _check_path(path, parameter: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{parameter} is a {type(path).__name__}; expected a file path")
    return Path(path)


def _normalise(gdf: gpd.GeoDataFrame, kind: str) -> gpd.GeoDataFrame:
    """Undo what file formats do to types: codes read back as text, datetimes parsed."""
    schema = SCHEMAS[kind]
    # Shapefiles cut field names to 10 characters (community_code -> community_)
    truncated = {c.name[:10]: c.name for c in schema.columns
                 if len(c.name) > 10 and c.name not in gdf.columns}
    gdf = gdf.rename(columns={k: v for k, v in truncated.items() if k in gdf.columns})
    for column in schema.columns:
        if column.name not in gdf.columns:
            continue
        if column.dtype == "datetime" and not pd.api.types.is_datetime64_any_dtype(gdf[column.name]):
            gdf[column.name] = pd.to_datetime(gdf[column.name], errors="raise", format="ISO8601")
    for name in gdf.columns:  # optional timestamps (resolved_at, closed_at ...) too
        if str(name).endswith("_at") and not pd.api.types.is_datetime64_any_dtype(gdf[name]):
            gdf[name] = pd.to_datetime(gdf[name], errors="raise", format="ISO8601")
    return gdf


def read_layer(path: str | os.PathLike, kind: str | None = None, *, layer: str | None = None,
               check: bool = True) -> gpd.GeoDataFrame:
    """Read one layer from a GeoPackage, GeoJSON, Shapefile or GeoParquet file.

    Parameters
    ----------
    path : path
        The file.
    kind : str, optional
        The layer kind; guessed from the columns when omitted.
    layer : str, optional
        The layer inside a multi-layer file (defaults to ``kind``, or the
        only layer).
    check : bool
        Validate against the schema (default). ``False`` only reads.
    """
    path = _check_path(path, "read_layer: path")
    if not path.exists():
        raise NotFoundError(f"read_layer: path {str(path)!r} does not exist")
    if kind is not None and kind not in SCHEMAS:
        raise SchemaError(f"read_layer: kind={kind!r} is not a layer kind; expected one of {', '.join(KINDS)}")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".geoparquet"):
        gdf = gpd.read_parquet(path)
    else:
        if layer is None:
            names = [name for name, _ in pyogrio.list_layers(path)]
            if kind in names:
                layer = kind
            elif len(names) == 1:
                layer = names[0]
            else:
                raise SchemaError(
                    f"read_layer: {str(path)!r} holds layers {names}; pass layer= or kind= to choose one"
                )
        try:
            gdf = pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
        except pyogrio.errors.DataLayerError as exc:
            raise NotFoundError(f"read_layer: {str(path)!r} has no layer {layer!r} ({exc})") from None
    if kind is None:
        kind = guess_kind(gdf)
    gdf = _normalise(gdf, kind)
    if check:
        validate(gdf, kind)
    return gdf


def write_layer(gdf: gpd.GeoDataFrame, path: str | os.PathLike, kind: str | None = None) -> Path:
    """Validate a layer and write it to ``path`` (format from the suffix)."""
    path = _check_path(path, "write_layer: path")
    kind = kind or guess_kind(gdf)
    validate(gdf, kind)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise SchemaError(
            f"write_layer: path suffix {suffix!r} is not supported; expected one of {sorted(_SUFFIXES)}"
        )
    if suffix in (".parquet", ".geoparquet"):
        gdf.to_parquet(path)
    else:
        with warnings.catch_warnings():  # read_layer restores names a shapefile cuts to 10 characters
            warnings.filterwarnings("ignore", message="Normalized/laundered field name")
            pyogrio.write_dataframe(gdf, path, layer=kind if suffix == ".gpkg" else None)
    return path


def read_city(path: str | os.PathLike, *, check: bool = True) -> City:
    """Read a City from a GeoPackage (one layer per kind) or a folder of layer files.

    A folder holds files named after the kinds (``units.geojson``,
    ``streets.shp``, ``grids.parquet`` ...). Unknown layers are ignored;
    every known layer is validated.
    """
    path = _check_path(path, "read_city: path")
    if not path.exists():
        raise NotFoundError(f"read_city: path {str(path)!r} does not exist")
    city = City()
    if path.is_dir():
        for kind in KINDS:
            for candidate in sorted(path.glob(f"{kind}.*")):
                if candidate.suffix.lower() in _SUFFIXES:
                    setattr(city, kind, read_layer(candidate, kind, check=check))
                    break
    else:
        try:
            names = {name for name, _ in pyogrio.list_layers(path)}
        except pyogrio.errors.DataSourceError as exc:
            raise SchemaError(f"read_city: {str(path)!r} is not a readable GIS file ({exc})") from None
        for kind in KINDS:
            if kind in names:
                setattr(city, kind, read_layer(path, kind, layer=kind, check=check))
    if not city.kinds():
        raise SchemaError(
            f"read_city: {str(path)!r} holds no layer named after a kind; expected some of {', '.join(KINDS)}"
        )
    return city


def write_city(city: City, path: str | os.PathLike) -> Path:
    """Write every layer of ``city`` to one GeoPackage, atomically.

    Every layer is validated first; the file is written beside ``path`` and
    renamed into place, so an error or Ctrl-C never leaves half a city.
    """
    if not isinstance(city, City):
        raise InputTypeError(f"write_city: city is a {type(city).__name__}; expected a jngis.City")
    path = _check_path(path, "write_city: path")
    if path.suffix.lower() != ".gpkg":
        raise SchemaError(f"write_city: path {str(path)!r} must end in .gpkg (one GeoPackage per city)")
    city.validate()
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(suffix=".gpkg", dir=path.parent, prefix=".jngis-")
    os.close(handle)
    os.unlink(temporary)
    try:
        for kind, layer in city.layers():
            pyogrio.write_dataframe(layer, temporary, layer=kind, driver="GPKG",
                                    append=Path(temporary).exists(), use_arrow=True)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path
