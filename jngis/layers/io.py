"""Reading and writing layers and cities: GeoPackage (the default store), GeoJSON, Shapefile, GeoParquet."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio

from jngis.errors import InputTypeError, NotFoundError, SchemaError
from jngis.layers.city import City
from jngis.layers.schema import KINDS, SCHEMAS, guess_kind
from jngis.layers.validation import validate

__all__ = ["read_layer", "write_layer", "read_city", "write_city"]


_SUFFIXES = {".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb"}


def _check_path(path, parameter: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{parameter} is a {type(path).__name__}; expected a file path")
    return Path(path)


def _normalise(gdf: gpd.GeoDataFrame, kind: str) -> gpd.GeoDataFrame:
    """Undo what file formats do to types: codes read back as text, counts with nulls as floats, datetimes parsed."""
    schema = SCHEMAS[kind]
    # Shapefiles cut field names to 10 characters (community_code -> community_)
    truncated = {c.name[:10]: c.name for c in schema.columns
                 if len(c.name) > 10 and c.name not in gdf.columns}
    gdf = gdf.rename(columns={k: v for k, v in truncated.items() if k in gdf.columns})
    for column in schema.columns:
        if column.name not in gdf.columns:
            continue
        if (column.dtype == "count" and column.nullable and pd.api.types.is_float_dtype(gdf[column.name])
                and (gdf[column.name].dropna() % 1 == 0).all()):
            gdf[column.name] = gdf[column.name].astype("Int64")  # files hand back an integer column with nulls as float
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
