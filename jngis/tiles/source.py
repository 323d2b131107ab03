"""One tiled layer's input, checked once: its kind, key column, public columns, feature ids.

:class:`LayerSource` never modifies the GeoDataFrame it is given; everything
derived from the geometry lives in :class:`jngis.tiles.geometry.ZoomGeometry`.
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import codes
from jngis import crs as jcrs
from jngis.errors import CRSError, GeometryError, InputTypeError, SchemaError

_MAX_LATITUDE = 85.0511287798066
_MAX_JS_INTEGER = 2**53 - 1  # MapLibre ids are JavaScript numbers


class LayerSource:
    """A layer's features as the tiles publish them.

    Attributes
    ----------
    name, encoded_name : the MVT layer name (text, UTF-8 bytes)
    gdf : the input GeoDataFrame (never modified)
    kind : ``"point"`` or ``"polygon"``
    key : the key column (``grid_code``...) or None
    columns : the published property columns, the key first when it was not chosen
    ids : uint64 feature ids, the same at every zoom
    fields : TileJSON field types of the columns
    bounds : (west, south, east, north) in degrees
    """

    def __init__(self, name: str, gdf: gpd.GeoDataFrame, *, id_column: str | None,
                 columns: Sequence[str] | None) -> None:
        self.name = name
        self.encoded_name = name.encode("utf-8")
        _check_geometry(name, gdf)
        self.gdf = gdf
        self.kind = "point" if (shapely.get_type_id(gdf.geometry.values) == 0).all() else "polygon"
        self.key = _key_column(name, gdf)
        self.columns = _public_columns(name, gdf, columns, self.key)
        self.ids = _ids(name, gdf, id_column, self.key)
        self.fields = {c: _field_type(gdf[c]) for c in self.columns}
        self.bounds = _lonlat_bounds(name, gdf)

    def __len__(self) -> int:
        return len(self.gdf)

    def values(self, column: str) -> pd.Series:
        """A column's values as MVT can hold them: text, numbers, booleans; datetimes as ISO text."""
        values = self.gdf[column]
        if pd.api.types.is_datetime64_any_dtype(values.dtype):
            text = values.dt.strftime("%Y-%m-%dT%H:%M:%S")
            return text.where(values.notna())
        if isinstance(values.dtype, pd.CategoricalDtype):
            return values.astype(object)
        return values


def _check_geometry(name: str, gdf: gpd.GeoDataFrame) -> None:
    if gdf.crs is None:
        raise CRSError(f"layers[{name!r}] has no CRS; expected one such as EPSG:4548 or "
                       "EPSG:4490: use gdf.set_crs(...)")
    geoms = gdf.geometry.values
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        raise GeometryError(f"layers[{name!r}] has missing or empty geometries in rows "
                            f"{list(gdf.index[bad][:5])}; expected a geometry in every row")
    types = shapely.get_type_id(geoms)
    points = types == 0
    polygons = (types == 3) | (types == 6)
    if not (points.all() or polygons.all()):
        kinds = sorted(set(gdf.geom_type))
        raise GeometryError(f"layers[{name!r}] has geometry types {kinds}; expected only "
                            "Point or only Polygon/MultiPolygon in one layer")
    if polygons.all():
        invalid = ~shapely.is_valid(geoms)
        if invalid.any():
            raise GeometryError(
                f"layers[{name!r}] has invalid polygons in rows {list(gdf.index[invalid][:5])} "
                f"({shapely.is_valid_reason(geoms[np.flatnonzero(invalid)[0]])}); expected valid "
                "polygons (repair with shapely.make_valid)")


def _key_column(name: str, gdf: gpd.GeoDataFrame) -> str | None:
    from jngis.layers import SCHEMAS

    if name in SCHEMAS and SCHEMAS[name].key in gdf.columns:
        return SCHEMAS[name].key
    for schema in SCHEMAS.values():
        if schema.key in gdf.columns:
            return schema.key
    return None


def _public_columns(name: str, gdf: gpd.GeoDataFrame, columns: Sequence[str] | None,
                    key: str | None) -> list[str]:
    available = [c for c in gdf.columns if c != gdf.geometry.name]
    if columns is None:
        personal = set(codes.personal_columns(available, name))
        chosen = [c for c in available if c not in personal]
    else:
        if isinstance(columns, str) or not isinstance(columns, Sequence):
            raise InputTypeError(f"columns[{name!r}]={columns!r}; expected a list of column names")
        missing = [c for c in columns if c not in available]
        if missing:
            raise SchemaError(f"columns[{name!r}] names {missing}, not columns of the layer; "
                              f"expected some of {available}")
        personal_chosen = codes.personal_columns(columns, name)
        if personal_chosen:
            raise SchemaError(f"columns[{name!r}] names personal data {personal_chosen}; "
                              "tiles are public and never carry names or phone numbers")
        chosen = list(columns)
    if key is not None and key not in chosen:
        chosen.insert(0, key)
    return [str(c) for c in chosen]


def _ids(name: str, gdf: gpd.GeoDataFrame, id_column: str | None, key: str | None) -> np.ndarray:
    if id_column is not None:
        if id_column not in gdf.columns:
            raise SchemaError(f"id_column={id_column!r} is not a column of layer {name!r}; "
                              f"expected one of {list(gdf.columns)}")
        ids = _integer_ids(gdf[id_column])
        if ids is None:
            raise SchemaError(f"id_column={id_column!r} of layer {name!r} does not hold unique "
                              "non-negative integers below 2**53 (or digit codes); expected one "
                              "integer id per feature")
        return ids
    if key is not None:
        ids = _integer_ids(gdf[key])
        if ids is not None:
            return ids
    # Row order is the id: stable across zooms and restarts for the same layer file.
    return np.arange(1, len(gdf) + 1, dtype=np.uint64)


def _integer_ids(values: pd.Series) -> np.ndarray | None:
    """Unique non-negative integers below 2**53 from ints or digit strings, else None."""
    if values.isna().any():
        return None
    if pd.api.types.is_integer_dtype(values.dtype):
        ids = values.to_numpy(dtype=np.int64)
    else:
        text = values.astype(str)
        if not text.str.fullmatch(r"\d{1,16}").all():
            return None
        ids = text.astype(np.int64).to_numpy()
    if (ids < 0).any() or (ids > _MAX_JS_INTEGER).any() or len(np.unique(ids)) != len(ids):
        return None
    return ids.astype(np.uint64)


def _field_type(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values.dtype):
        return "Boolean"
    if pd.api.types.is_numeric_dtype(values.dtype):
        return "Number"
    if isinstance(values.dtype, pd.StringDtype):
        return "String"
    present = values.dropna()
    if len(present) and present.map(lambda v: isinstance(v, (bool, np.bool_))).all():
        return "Boolean"
    return "String"


def _lonlat_bounds(name: str, gdf: gpd.GeoDataFrame) -> tuple[float, float, float, float]:
    # the extremes of the vertices in lon/lat (reprojecting the layer's geometries
    # to read their bounds cost 0.5 s of a server's start)
    x, y = shapely.get_coordinates(gdf.geometry.values).T
    if x.size == 0:  # an empty layer has no bounds (as GeoSeries.total_bounds says)
        return (float("nan"),) * 4
    lon, lat = jcrs.transformer(gdf.crs, 4326).transform(x, y)
    west, south, east, north = np.min(lon), np.min(lat), np.max(lon), np.max(lat)
    if south < -_MAX_LATITUDE or north > _MAX_LATITUDE:
        raise CRSError(f"layers[{name!r}] reaches latitude {max(-south, north):.2f}; "
                       f"web-mercator tiles cover only |latitude| <= {_MAX_LATITUDE:.4f}")
    return float(west), float(south), float(east), float(north)
