"""OGC API - Features, Part 1 (Core) with GeoJSON: the city layers as collections.

Declared conformance classes are only those this module passes: Part 1
Core, GeoJSON and OpenAPI 3.0; Part 3 Filter, Features Filter and
Queryables (with queryables as query parameters); CQL2 basic, advanced
comparison operators, basic spatial functions (S_INTERSECTS), text and JSON
(the temporal predicates served are a subset, so that class is not
declared). The query is parsed by :mod:`jngis.query`. Geometry is served in WGS84 longitude/latitude (CRS84) as the
standard requires; ``bbox`` is read in the same CRS. Feature ids are the
layer keys (``grid_code``, ``station_id`` ...). Work orders come live from the
store: those the principal may see (the store filters them), never with
personal data. The query itself is
:func:`jngis.features.query_features`; this module adds the links.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse

from jngis.access import ADMIN, Principal
from jngis.codes import LABELS
from jngis.errors import ParameterError
from jngis.features import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    TIME_COLUMNS,
    VERSIONED_KINDS,
    csv_chunks,
    download_table,
    get_feature,
    query_features,
    queryable_fields,
    select_features,
    xlsx_bytes,
)
from jngis.query import (
    FILTER_LANG_ALIASES,
    FILTER_LANGS,
    MAX_FILTER_CHARS,
    build_query,
    parse_sortby,
    queryables_schema,
)
from ..auth import layer_reader, principal_of
from ..deps import GEOJSON, PUBLISHED, Backend, GeoJSONResponse, backend, json_response, key_of
from ..urls import url_for

router = APIRouter(tags=["OGC API Features"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
QUERYABLES = "application/schema+json"
CSV = "text/csv; charset=utf-8"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

DESCRIPTIONS = {
    "districts": "济南市区县边界",
    "streets": "街道（乡镇）边界",
    "communities": "城市社区边界",
    "grids": "网格边界（户数、类型）",
    "units": "楼栋与居住地块（户数）",
    "stations": "党群服务中心与网格服务站",
    "party_orgs": "网格党组织",
    "workorders": "12345热线工单（不含来电人信息）",
}


def _collection(request: Request, kind: str, bounds, temporal: dict | None = None) -> dict:
    items = url_for(request, "items", collection_id=kind)
    extent: dict = {"spatial": {"bbox": [[round(float(v), 7) for v in bounds]], "crs": CRS84}}
    if kind in VERSIONED_KINDS and temporal is not None:
        extent["temporal"] = temporal
    return {
        "id": kind,
        "title": PUBLISHED[kind],
        "description": DESCRIPTIONS.get(kind, ""),
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            {"href": url_for(request, "collection", collection_id=kind), "rel": "self",
             "type": "application/json", "title": PUBLISHED[kind]},
            {"href": items, "rel": "items", "type": GEOJSON, "title": PUBLISHED[kind]},
            {"href": url_for(request, "queryables", collection_id=kind),
             "rel": "http://www.opengis.net/def/rel/ogc/1.0/queryables", "type": QUERYABLES,
             "title": "可查询字段"},
            {"href": f"{items}?f=csv", "rel": "alternate", "type": CSV, "title": "CSV 下载"},
            {"href": f"{items}?f=xlsx", "rel": "alternate", "type": XLSX, "title": "Excel 下载"},
        ],
    }


def _bounds(gdf) -> list[float]:
    if len(gdf) == 0:
        return [-180.0, -90.0, 180.0, 90.0]
    return list(gdf.total_bounds)


@router.get("/conformance", name="conformance")
def conformance(who: Principal = Depends(layer_reader)) -> Response:
    return json_response({"conformsTo": CONFORMANCE})


@router.get("/collections", name="collections")
def collections(request: Request, store: Backend = Depends(backend),
                who: Principal = Depends(layer_reader)) -> Response:
    temporal = _temporal(store)
    listed = [_collection(request, kind, _bounds(store.wgs84(kind, who)), temporal) for kind in store.kinds(who)]
    return json_response({
        "links": [{"href": url_for(request, "collections"), "rel": "self", "type": "application/json"}],
        "collections": listed,
    })


@router.get("/collections/{collection_id}", name="collection")
def collection(collection_id: str, request: Request, store: Backend = Depends(backend),
               who: Principal = Depends(layer_reader)) -> Response:
    return json_response(_collection(request, collection_id, _bounds(store.wgs84(collection_id, who)),
                                     _temporal(store)))


def _temporal(store: Backend) -> dict | None:
    """The temporal extent of versioned boundaries: from the first version's effective day (open
    when it holds from the start of records) on; None for a store that keeps no versions yet."""
    listed = store.store.versions()
    if listed.empty:
        return None
    first = listed.iloc[0]["effective"]
    start = None if pd.isna(first) else pd.Timestamp(first).strftime("%Y-%m-%dT00:00:00+08:00")
    return {"interval": [[start, None]], "trs": GREGORIAN}


@router.get("/collections/{collection_id}/queryables", name="queryables",
            responses={200: {"content": {QUERYABLES: {}}}})
def queryables(collection_id: str, request: Request, store: Backend = Depends(backend),
               who: Principal = Depends(layer_reader)) -> Response:
    """What ``filter=``, ``sortby`` and property filters may name: a JSON Schema (QGIS reads it)."""
    fields = queryable_fields(store.wgs84(collection_id, who), collection_id)
    schema = queryables_schema(fields, url=str(request.url.remove_query_params("f")),
                               title=PUBLISHED[collection_id], key=key_of(collection_id),
                               time=TIME_COLUMNS.get(collection_id), labels=LABELS)
    return json_response(schema, QUERYABLES)


def _property_filters(request: Request) -> set[str]:
    """The names a collection's items take besides the declared ones: its queryables."""
    kind = request.path_params.get("collection_id", "")
    return set(queryable_fields(request.app.state.backend.wgs84(kind, principal_of(request)), kind)) - {"geometry"}


@router.get("/collections/{collection_id}/items", name="items", response_class=GeoJSONResponse,
            responses={200: {"content": {CSV.split(";")[0]: {}, XLSX: {}}}})
def items(
    collection_id: str,
    request: Request,
    bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat (WGS84)"),
    limit: int | None = Query(None, ge=1, description=f"features per page (default {DEFAULT_LIMIT}, "
                              f"at most {MAX_LIMIT}; a csv/xlsx download holds every match unless given)"),
    offset: int = Query(0, ge=0),
    datetime_: str | None = Query(None, alias="datetime"),
    properties: str | None = Query(None, description="the properties to return, comma separated"),
    filter_: str | None = Query(None, alias="filter", max_length=MAX_FILTER_CHARS,
                                description="a CQL2 filter on the queryables"),
    filter_lang: str | None = Query(None, alias="filter-lang", description=" or ".join(FILTER_LANGS)),
    filter_crs: str | None = Query(None, alias="filter-crs", description=f"only {CRS84}"),
    sortby: str | None = Query(None, description="[+|-]name,... among the queryables"),
    f: str | None = Query(None, pattern="^(json|geojson|csv|xlsx)$"),
    store: Backend = Depends(backend),
    who: Principal = Depends(layer_reader),
) -> Response:
    """Features matching bbox, datetime, property filters (``name=value``) and ``filter``; one page."""
    if filter_crs not in (None, CRS84):
        raise ParameterError(f"filter-crs={filter_crs!r}; expected {CRS84}")
    layer = store.wgs84_at(collection_id, datetime_, who)  # boundaries: the versions in force then
    fields = queryable_fields(layer, collection_id)
    named = {name: values if len(values) > 1 else values[0] for name in fields
             if (values := request.query_params.getlist(name))}
    query = build_query(named, fields, filter=filter_, filter_lang=filter_lang)
    selected = [p.strip() for p in properties.split(",") if p.strip()] if properties is not None else None
    order = parse_sortby(sortby, fields)
    if f in ("csv", "xlsx"):
        return _download(collection_id, layer, f, limit, offset, bbox=bbox, datetime=datetime_,
                         properties=selected, query=query, sortby=order)
    page = query_features(layer, collection_id, bbox=bbox, datetime=datetime_, limit=limit or DEFAULT_LIMIT,
                          offset=offset, properties=selected, query=query, sortby=order)
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": url_for(request, "collection", collection_id=collection_id), "rel": "collection",
         "type": "application/json"},
    ]
    for rel, start in (("next", page.next_offset), ("prev", page.prev_offset)):
        if start is not None:
            links.append({"href": str(request.url.include_query_params(offset=start, limit=page.limit)),
                          "rel": rel, "type": GEOJSON})
    return json_response({
        "type": "FeatureCollection",
        "features": page.features,
        "links": links,
        "numberMatched": page.number_matched,
        "numberReturned": len(page.features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }, GEOJSON)


items.extra_parameters = _property_filters  # type: ignore[attr-defined]


_PARAMETER_TYPES = {"datetime": {"type": "string", "format": "date-time"}}


def collection_paths(schema: dict, store: Backend) -> dict:
    """``schema`` (the OpenAPI document) with one items path per collection, naming its queryables.

    OGC API Features Part 3 ("queryables as query parameters") lets a server list
    each collection's property filters in its API definition, as pygeoapi does; GDAL's
    OAPIF driver reads them there (and ``filter-lang``'s values, ``cql-text`` among them)
    to send a ``-where`` clause to the server instead of filtering every feature itself.
    """
    paths = schema.setdefault("paths", {})
    generic = paths.get("/collections/{collection_id}/items", {}).get("get")
    if generic is None:
        return schema
    for kind in store.kinds(ADMIN):  # the definition lists every collection; access is decided per request
        path = f"/collections/{kind}/items"
        if path in paths:
            continue
        operation = copy.deepcopy(generic)
        operation["operationId"] = f"items_{kind}"
        operation["summary"] = f"{PUBLISHED[kind]}: features"
        parameters = [p for p in operation.get("parameters", []) if p.get("in") != "path"]
        for parameter in parameters:
            if parameter.get("name") == "filter-lang":
                parameter["schema"] = {"type": "string", "enum": [*FILTER_LANGS, *FILTER_LANG_ALIASES]}
        declared = {p.get("name") for p in parameters}
        for name, field in queryable_fields(store.wgs84(kind, ADMIN), kind).items():
            if field != "geometry" and name not in declared:
                parameters.append({"name": name, "in": "query", "required": False,
                                   "description": f"{LABELS.get(name, name)} equals (property filter)",
                                   "schema": _PARAMETER_TYPES.get(field, {"type": field})})
        operation["parameters"] = parameters
        paths[path] = {"get": operation}
    return schema


def _download(kind: str, layer, f: str, limit: int | None, offset: int, **query) -> Response:
    """A filtered collection as a CSV (streamed) or .xlsx file with Chinese titles."""
    chosen = select_features(layer, kind, **query)
    end = None if limit is None else offset + limit
    table = download_table(chosen.iloc[offset:end])
    name = quote(f"{PUBLISHED[kind]}.{f}")
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{name}"}
    if f == "csv":
        return StreamingResponse(csv_chunks(table), media_type=CSV, headers=headers)
    return Response(xlsx_bytes(table), media_type=XLSX, headers=headers)


@router.get("/collections/{collection_id}/items/{feature_id}", name="item", response_class=GeoJSONResponse)
def item(collection_id: str, feature_id: str, request: Request,
         store: Backend = Depends(backend), who: Principal = Depends(layer_reader)) -> Response:
    feature = get_feature(store.wgs84(collection_id, who), collection_id, feature_id)
    feature["links"] = [
        {"href": str(request.url.remove_query_params("f")), "rel": "self", "type": GEOJSON},
        {"href": url_for(request, "collection", collection_id=collection_id), "rel": "collection",
         "type": "application/json"},
    ]
    return json_response(feature, GEOJSON)


def landing_page(request: Request) -> Response:
    """The OGC API landing page (served at ``/`` to clients that ask for JSON)."""
    return json_response({
        "title": "jngis 济南基层治理地图服务",
        "description": "城市社区、网格、党群服务站点、党组织与12345工单（OGC API - Features）",
        "links": [
            {"href": url_for(request, "root"), "rel": "self", "type": "application/json"},
            {"href": url_for(request, "openapi"), "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0"},
            {"href": url_for(request, "conformance"), "rel": "conformance", "type": "application/json"},
            {"href": url_for(request, "collections"), "rel": "data", "type": "application/json"},
        ],
    })
