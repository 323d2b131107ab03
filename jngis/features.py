"""A feature query on a GeoDataFrame: bounding box, time interval, paging, property selection.

What an OGC API - Features ``items`` request asks of a layer, answered as
GeoJSON feature dictionaries (RFC 7946: WGS84 longitude/latitude) ready to be
serialised once. Feature ids are the layer's key (``grid_code``,
``station_id`` ...). Personal data (:func:`jngis.codes.personal_columns`)
never leaves: those columns are dropped whatever the layer holds.

- :func:`parse_bbox` and :func:`parse_datetime` read the text forms of a query;
- :func:`queryable_fields` names what a layer may be filtered and sorted on;
- :func:`query_features` filters (bbox, datetime, a :class:`jngis.query.Query`),
  sorts and pages a layer -> :class:`FeaturePage`;
- :func:`get_feature` finds one feature by its id;
- :func:`download_table`, :func:`csv_chunks` and :func:`xlsx_bytes` write a
  selection (:func:`select_features`) as a table for officials (Chinese titles).

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import Point
>>> stations = gpd.GeoDataFrame(
...     {"station_id": ["S1", "S2", "S3"], "name": ["甲", "乙", "丙"], "caller_phone": ["x", "y", "z"]},
...     geometry=[Point(117.0, 36.6), Point(117.1, 36.7), Point(117.2, 36.8)], crs="EPSG:4326")
>>> page = query_features(stations, "stations", bbox="117.05,36.65,117.3,36.9", limit=1)
>>> page.number_matched, page.next_offset, [f["id"] for f in page.features]
(2, 1, ['S2'])
>>> page.features[0]["properties"]
{'station_id': 'S2', 'name': '乙'}
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis.codes import VALUE_LABELS, label, personal_columns, to_cst_naive, value_label
from jngis.crs import WGS84
from jngis.errors import CRSError, InputTypeError, NotFoundError, QueryError
from jngis.layers import SCHEMAS
from jngis.query import Query, fields_of, mask, order

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "TIME_COLUMNS",
    "VERSIONED_KINDS",
    "Interval",
    "FeaturePage",
    "parse_bbox",
    "parse_datetime",
    "days_in_force",
    "in_force",
    "queryable_fields",
    "query_features",
    "select_features",
    "get_feature",
    "download_table",
    "csv_chunks",
    "xlsx_bytes",
]

#: Features per page when the caller names no limit, and the most a page holds.
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
#: The column a layer's time filter applies to (layers not listed have no time).
TIME_COLUMNS: dict[str, str] = {"workorders": "received_at"}
#: Layers whose features hold from one boundary version to another (:mod:`jngis.store.versions`):
#: ``datetime`` selects those in force then, which the caller reads with ``store.read_layer(kind, at=day)``
#: for each of :func:`days_in_force` and joins with :func:`in_force`.
VERSIONED_KINDS: tuple[str, ...] = ("streets", "communities", "units", "grids")

BBox = tuple[float, float, float, float]


class Interval(NamedTuple):
    """A closed time interval in naive China Standard Time; None is an open end."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None


class FeaturePage(NamedTuple):
    """One page of a query: its GeoJSON features and where it lies among the matches."""

    features: list[dict]
    number_matched: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        """The offset of the next page, or None on the last page."""
        return self.offset + self.limit if self.offset + self.limit < self.number_matched else None

    @property
    def prev_offset(self) -> int | None:
        """The offset of the previous page, or None on the first page."""
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def parse_bbox(bbox: str | Sequence[float] | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` (or the 6-number 3D form) as a tuple; None for none.

    Examples
    --------
    >>> parse_bbox("117,36.5,117.5,37")
    (117.0, 36.5, 117.5, 37.0)
    >>> parse_bbox("117,36.5,0,117.5,37,100")
    (117.0, 36.5, 117.5, 37.0)
    """
    if bbox is None or (isinstance(bbox, str) and bbox == ""):
        return None
    parts = bbox.split(",") if isinstance(bbox, str) else list(bbox)
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError):
        raise QueryError(
            f"bbox={bbox!r} is not a list of numbers; expected minlon,minlat,maxlon,maxlat") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4:
        raise QueryError(f"bbox={bbox!r} has {len(parts)} numbers; expected 4 (or 6)")
    west, south, east, north = numbers
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise QueryError(
            f"bbox={bbox!r} is not minlon,minlat,maxlon,maxlat within -180..180 / -90..90 "
            "with min <= max (boxes across the antimeridian are not supported)")
    return west, south, east, north


def parse_datetime(value: str | None) -> Interval | None:
    """An RFC 3339 instant or ``start/end`` interval (``..`` or empty: open) as an :class:`Interval`.

    Times with a zone are converted to China Standard Time; a bare date as the
    end (or as an instant) lasts the whole day.

    Examples
    --------
    >>> parse_datetime("2026-10-01T00:00:00Z/..")
    Interval(start=Timestamp('2026-10-01 08:00:00'), end=None)
    >>> parse_datetime("2026-10-01").end
    Timestamp('2026-10-01 23:59:59.999999')
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InputTypeError(f"datetime is a {type(value).__name__}; expected an RFC 3339 string")

    def instant(text: str, end: bool) -> pd.Timestamp | None:
        if text in ("", ".."):
            return None
        try:
            stamp = to_cst_naive(pd.Timestamp(text))  # the layers hold naive China Standard Time
        except (ValueError, TypeError):
            raise QueryError(
                f"datetime={value!r}: {text!r} is not an RFC 3339 date-time; "
                "expected e.g. 2026-10-01T00:00:00Z or 2026-10-01T00:00:00Z/..") from None
        if end and len(text) == 10:  # a whole day ends at its last instant
            stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        return stamp

    if "/" in value:
        start, _, stop = value.partition("/")
        return Interval(instant(start, False), instant(stop, True))
    return Interval(instant(value, False), instant(value, True))


def days_in_force(interval: Interval | str, effective: Sequence[dt.date | None]) -> list[dt.date]:
    """The days whose boundaries hold, together, every feature valid at some instant of ``interval``.

    Boundaries change only on the versions' ``effective`` days, so those
    features are the ones in force on the interval's first day and on every
    effective day inside it. An open start begins with the first version
    (``None``: a version in force from the start of records); an open end
    takes every later version, pending ones too.

    Examples
    --------
    >>> versions = [None, dt.date(2027, 1, 1), dt.date(2028, 1, 1)]
    >>> days_in_force("2026-06-01/2027-06-01", versions)
    [datetime.date(2026, 6, 1), datetime.date(2027, 1, 1)]
    >>> days_in_force("2027-03-01T10:00:00+08:00", versions)
    [datetime.date(2027, 3, 1)]
    >>> days_in_force("../2027-01-01", versions)
    [datetime.date(1, 1, 1), datetime.date(2027, 1, 1)]
    """
    found = interval if isinstance(interval, Interval) else parse_datetime(interval)
    if found is None:
        raise QueryError("days_in_force: interval is empty; expected an RFC 3339 instant or interval")
    if not isinstance(effective, Sequence) or isinstance(effective, str):
        raise InputTypeError(f"days_in_force: effective is a {type(effective).__name__}; expected a list of dates")
    days = sorted(dt.date.min if day is None
                  else _checks.instance("days_in_force", "effective", day, dt.date, "a date or None")
                  for day in effective)
    first = found.start.date() if found.start is not None else (days[0] if days else dt.date.min)
    last = found.end.date() if found.end is not None else dt.date.max
    return [first] + [day for day in days if first < day <= last]


def in_force(layers: Sequence[gpd.GeoDataFrame], kind: str) -> gpd.GeoDataFrame:
    """The features of the layers in force on several days (:func:`days_in_force`), each once.

    A feature in force on several of those days (same key, same geometry) is
    kept once, as first given.
    """
    _checks.choice("in_force", "kind", kind, VERSIONED_KINDS)
    if isinstance(layers, gpd.GeoDataFrame) or not isinstance(layers, Sequence) or not layers:
        raise InputTypeError("in_force: layers must be a non-empty list of GeoDataFrames (one per day)")
    key = SCHEMAS[kind].key
    crs = _checks.geodataframe("in_force", "layers[0]", layers[0], required=[key]).crs
    joined = pd.concat([layers[0]] + [layer.to_crs(crs) for layer in layers[1:]], ignore_index=True)
    same = pd.DataFrame({"key": joined[key].astype(str).to_numpy(),
                         "geometry": shapely.to_wkb(joined.geometry.values)}).duplicated()
    return gpd.GeoDataFrame(joined.loc[~same.to_numpy()].reset_index(drop=True), crs=crs)


def queryable_fields(layer: gpd.GeoDataFrame, kind: str) -> dict[str, str]:
    """The fields of ``layer`` a query may filter and sort on: its public columns and ``geometry``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> orgs = gpd.GeoDataFrame({"org_id": ["P1"], "members": [12]}, geometry=[Point(117, 36.6)], crs=4326)
    >>> queryable_fields(orgs, "party_orgs")
    {'org_id': 'string', 'members': 'integer', 'geometry': 'geometry'}
    """
    layer = _checks.geodataframe("queryable_fields", "layer", layer)
    _checks.choice("queryable_fields", "kind", kind, SCHEMAS)
    return fields_of(layer, exclude=personal_columns(layer.columns, kind))


def query_features(layer: gpd.GeoDataFrame, kind: str, *, bbox: str | Sequence[float] | None = None,
                   datetime: str | Interval | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0,
                   properties: Sequence[str] | None = None, query: Query | None = None,
                   sortby: Sequence[tuple[str, bool]] = ()) -> FeaturePage:
    """The features of ``layer`` in ``bbox`` and ``datetime``, one page of them, as GeoJSON.

    Parameters
    ----------
    layer : geopandas.GeoDataFrame
        A layer of ``kind``. In WGS84 longitude/latitude it is used as it is (its
        spatial index is kept between queries); any other CRS is converted for
        each query.
    kind : str
        The layer kind (:data:`jngis.layers.SCHEMAS`): names the key column,
        the time column (:data:`TIME_COLUMNS`) and what counts as personal data.
    bbox : str or sequence of 4 (or 6) numbers, optional
        WGS84 ``minlon,minlat,maxlon,maxlat``: features that intersect it.
    datetime : str or Interval, optional
        An RFC 3339 instant or interval (:func:`parse_datetime`); applies to
        layers with a time column, is checked and ignored for the others.
    limit, offset : int
        The page: at most ``limit`` features (capped at :data:`MAX_LIMIT`)
        after the first ``offset`` matches, in the layer's order.
    properties : sequence of str, optional
        The properties each feature carries (default: every public column).
    query : jngis.query.Query, optional
        Property filters and a CQL2 filter (:func:`jngis.query.build_query` on
        :func:`queryable_fields`), AND-ed with ``bbox`` and ``datetime``.
    sortby : sequence of (field, ascending)
        The order of the matches (:func:`jngis.query.parse_sortby`); the
        layer's order by default and between equal keys.

    Returns
    -------
    FeaturePage
    """
    func = "query_features"
    layer, key = _layer_and_key(func, layer, kind)
    limit = min(_checks.integer(func, "limit", limit, minimum=1), MAX_LIMIT)
    offset = _checks.integer(func, "offset", offset, minimum=0)
    columns = _selected(func, layer, kind, key, properties)
    rows = _matching(func, layer, kind, bbox, datetime, query, sortby)
    page = layer.iloc[rows[offset:offset + limit]]
    return FeaturePage(_geojson(page, key, columns), int(len(rows)), offset, limit)


def select_features(layer: gpd.GeoDataFrame, kind: str, *, bbox: str | Sequence[float] | None = None,
                    datetime: str | Interval | None = None, properties: Sequence[str] | None = None,
                    query: Query | None = None, sortby: Sequence[tuple[str, bool]] = ()) -> gpd.GeoDataFrame:
    """Every match of the query of :func:`query_features` as a GeoDataFrame in WGS84 (no paging).

    What a download of a filtered collection holds: the public columns (or
    ``properties``) and the geometry.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> from jngis.query import build_query
    >>> orgs = gpd.GeoDataFrame({"org_id": ["P1", "P2"], "members": [12, 30]},
    ...                         geometry=[Point(117, 36.6), Point(117.1, 36.6)], crs=4326)
    >>> q = build_query({}, queryable_fields(orgs, "party_orgs"), filter="members > 20")
    >>> select_features(orgs, "party_orgs", query=q).org_id.tolist()
    ['P2']
    """
    func = "select_features"
    layer, key = _layer_and_key(func, layer, kind)
    columns = _selected(func, layer, kind, key, properties)
    rows = _matching(func, layer, kind, bbox, datetime, query, sortby)
    return layer.iloc[rows][[*columns, layer.geometry.name]]


def _matching(func: str, layer: gpd.GeoDataFrame, kind: str, bbox, datetime, query, sortby) -> np.ndarray:
    """Positions of the rows in ``bbox``, ``datetime`` and ``query``, in ``sortby`` order."""
    box = parse_bbox(bbox)
    interval = datetime if isinstance(datetime, Interval) else parse_datetime(datetime)
    if query is not None and not isinstance(query, Query):
        raise InputTypeError(f"{func}: query is a {type(query).__name__}; expected a jngis.query.Query")
    rows = np.arange(len(layer))
    if box is not None:
        rows = np.sort(layer.sindex.query(shapely.box(*box), predicate="intersects"))
    if interval is not None and kind in TIME_COLUMNS:
        rows = rows[_within(to_cst_naive(layer[TIME_COLUMNS[kind]].iloc[rows]), interval)]
    if query is not None and query.node is not None:
        rows = rows[mask(query, layer)[rows]]
    if sortby:
        rows = rows[order(sortby, layer.iloc[rows])]
    return rows


def get_feature(layer: gpd.GeoDataFrame, kind: str, feature_id: Any) -> dict:
    """The feature of ``layer`` whose key is ``feature_id`` (compared as text), as GeoJSON.

    Raises :class:`~jngis.errors.NotFoundError` naming the key when there is none.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> orgs = gpd.GeoDataFrame({"org_id": ["P1"], "name": ["党支部"], "kind": ["grid_branch"],
    ...                          "members": [12]}, geometry=[Point(117, 36.6)], crs="EPSG:4326")
    >>> get_feature(orgs, "party_orgs", "P1")["geometry"]
    {'type': 'Point', 'coordinates': (117.0, 36.6)}
    """
    layer, key = _layer_and_key("get_feature", layer, kind)
    match = layer[layer[key].astype(str) == str(feature_id)]
    if match.empty:
        raise NotFoundError(f"{kind} has no feature {key}={feature_id!r}")
    return _geojson(match.iloc[:1], key, _selected("get_feature", layer, kind, key, None))[0]


def _layer_and_key(func: str, layer: Any, kind: str) -> tuple[gpd.GeoDataFrame, str]:
    _checks.choice(func, "kind", kind, SCHEMAS)
    key = SCHEMAS[kind].key
    layer = _checks.geodataframe(func, "layer", layer, required=[key])
    if layer.crs is None:
        raise CRSError(f"{func}: layer has no CRS; expected one (GeoJSON is written in WGS84)")
    if not layer.crs.equals(WGS84, ignore_axis_order=True):
        layer = layer.to_crs(WGS84)
    return layer, key


def _selected(func: str, layer: gpd.GeoDataFrame, kind: str, key: str,
              properties: Sequence[str] | None) -> list[str]:
    """The columns the features carry: the public ones, or those asked for."""
    private = set(personal_columns(layer.columns, kind))
    public = [c for c in layer.columns if c != layer.geometry.name and c not in private]
    return public if properties is None else _checks.subset(func, "properties", properties, public)


def _within(times: pd.Series, interval: Interval) -> np.ndarray:
    keep = np.ones(len(times), bool)
    if interval.start is not None:
        keep &= (times >= interval.start).to_numpy()
    if interval.end is not None:
        keep &= (times <= interval.end).to_numpy()
    return keep


def _geojson(page: gpd.GeoDataFrame, key: str, columns: list[str]) -> list[dict]:
    """GeoJSON feature dictionaries of JSON values (not text: the caller serialises the answer once).

    What ``page.to_geo_dict(na="null", drop_id=True)`` gives, column by column
    instead of row by row (geopandas' per-call frame copies were most of a
    50-feature page's time), then JSON's own values: missing, NaN and infinity
    as None, times as ISO 8601 text, the layer's key as the feature id.
    """
    values = [_json_values(page[column]) for column in columns]
    rows = zip(*values) if values else [()] * len(page)
    features = []
    for code, geometry, row in zip(page[key].tolist(), page.geometry.array, rows):
        features.append({"type": "Feature", "properties": dict(zip(columns, row)),
                         "geometry": _geometry(geometry) if geometry else None, "id": code})
    return features


def _geometry(geometry: Any) -> dict:
    """``geometry.__geo_interface__``, the rings' coordinates read as arrays (shapely reads them point by point)."""
    kind = geometry.geom_type
    if kind == "Polygon":
        return {"type": kind, "coordinates": _rings(geometry)}
    if kind == "MultiPolygon":
        return {"type": kind, "coordinates": [_rings(part) for part in geometry.geoms]}
    return geometry.__geo_interface__


def _rings(polygon: Any) -> tuple:
    return tuple(tuple(map(tuple, shapely.get_coordinates(ring, include_z=ring.has_z).tolist()))
                 for ring in (polygon.exterior, *polygon.interiors))


def _json_values(column: pd.Series) -> list:
    """A column's values as Python scalars JSON can hold (see :func:`_geojson`)."""
    values = column.tolist()  # Python scalars (Timestamps for times); half the time of astype(object)
    for missing in np.flatnonzero(pd.isna(column).to_numpy()):
        values[missing] = None
    dtype = column.dtype
    if dtype.kind in "iub" or isinstance(dtype, pd.StringDtype):  # nothing else to convert
        return values
    if dtype.kind == "f":  # JSON has no infinity either
        return [value if value is None or math.isfinite(value) else None for value in values]
    for position, value in enumerate(values):  # times, and whatever an object column holds
        if isinstance(value, float) and not math.isfinite(value):
            values[position] = None
        elif isinstance(value, dt.datetime):  # pandas Timestamps too
            values[position] = value.isoformat()
    return values


def download_table(features: gpd.GeoDataFrame) -> pd.DataFrame:
    """A selection as the table officials open: Chinese titles and values, points as 经度/纬度.

    Outlines are left out (a spreadsheet cannot draw them; GeoJSON carries them).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import Point
    >>> grids = gpd.GeoDataFrame({"grid_code": ["G1"], "grid_type": ["residential"]},
    ...                          geometry=[Point(117, 36.6)], crs=4326)
    >>> download_table(grids).to_dict("records")
    [{'网格编码': 'G1', '网格类型': '居住网格', '经度': 117.0, '纬度': 36.6}]
    """
    features = _checks.geodataframe("download_table", "features", features)
    geometry = features.geometry
    table = pd.DataFrame(features.drop(columns=geometry.name))
    for column in table.columns:
        if column in VALUE_LABELS:
            table[column] = table[column].map(lambda value, c=column: value_label(c, value))
    table.columns = [label(column) for column in table.columns]
    if len(features) and bool(geometry.geom_type.isin(["Point"]).all()):
        table["经度"] = geometry.x.round(7).to_numpy()
        table["纬度"] = geometry.y.round(7).to_numpy()
    return table


def csv_chunks(table: pd.DataFrame, rows: int = 5000):
    """The table as UTF-8 CSV (with a BOM, so Excel reads the Chinese), ``rows`` rows a piece."""
    rows = _checks.integer("csv_chunks", "rows", rows, minimum=1)
    yield "\ufeff".encode() + table.iloc[:0].to_csv(index=False).encode()
    for start in range(0, len(table), rows):
        yield table.iloc[start:start + rows].to_csv(index=False, header=False).encode()


def xlsx_bytes(table: pd.DataFrame, sheet: str = "数据") -> bytes:
    """The table as an .xlsx workbook (openpyxl's write-only mode: rows are not kept as cells)."""
    import io

    from openpyxl import Workbook

    table = _checks.dataframe("xlsx_bytes", "table", table)
    book = Workbook(write_only=True)
    page = book.create_sheet(sheet)
    page.append([str(c) for c in table.columns])
    for row in table.itertuples(index=False):
        page.append([None if _missing(v) else v.to_pydatetime() if isinstance(v, pd.Timestamp) else v
                     for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _missing(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) \
        or value is pd.NA
