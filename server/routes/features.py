"""OGC API - Features, Part 1 (Core) with GeoJSON: the city layers as collections.

Declared conformance classes are only those this module passes: Core and
GeoJSON. Geometry is served in WGS84 longitude/latitude (CRS84) as the
standard requires; ``bbox`` is read in the same CRS. Feature ids are the
layer keys (``grid_code``, ``station_id`` ...). Work orders come live from the
store and never carry personal data.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import shapely
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from jngis.errors import NotFoundError, ParameterError
from ..deps import PUBLISHED, Backend, backend, key_of, parse_bbox

router = APIRouter(tags=["OGC API Features"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
DEFAULT_LIMIT = 10
MAX_LIMIT = 10_000
_ITEM_PARAMETERS = {"bbox", "limit", "offset", "datetime", "f"}
# The column a collection's ``datetime`` filter applies to (others have no time).
_TIME_COLUMN = {"workorders": "received_at"}
# Personal columns are never published, whatever a store hands back.
_PRIVATE = ("caller_name", "caller_phone", "name_of_caller", "phone", "caller")

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


class GeoJSONResponse(JSONResponse):
    """Declares ``application/geo+json`` in the OpenAPI schema for the routes that answer with it."""

    media_type = GEOJSON


def _json(payload, media_type: str = "application/json") -> Response:
    return Response(json.dumps(payload, ensure_ascii=False, default=_plain), media_type=media_type)


def _plain(value):
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _url(request: Request, name: str, **params) -> str:
    return str(request.url_for(name, **params))


def _collection(request: Request, kind: str, bounds) -> dict:
    items = _url(request, "items", collection_id=kind)
    extent = {"spatial": {"bbox": [[round(float(v), 7) for v in bounds]], "crs": CRS84}}
    return {
        "id": kind,
        "title": PUBLISHED[kind],
        "description": DESCRIPTIONS.get(kind, ""),
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            {"href": _url(request, "collection", collection_id=kind), "rel": "self",
             "type": "application/json", "title": PUBLISHED[kind]},
            {"href": items, "rel": "items", "type": GEOJSON, "title": PUBLISHED[kind]},
        ],
    }


def _bounds(gdf) -> list[float]:
    if len(gdf) == 0:
        return [-180.0, -90.0, 180.0, 90.0]
    return list(gdf.total_bounds)


@router.get("/conformance", name="conformance")
def conformance() -> Response:
    return _json({"conformsTo": CONFORMANCE})


@router.get("/collections", name="collections")
def collections(request: Request, store: Backend = Depends(backend)) -> Response:
    listed = [_collection(request, kind, _bounds(store.wgs84(kind))) for kind in store.kinds()]
    return _json({
        "links": [{"href": _url(request, "collections"), "rel": "self", "type": "application/json"}],
        "collections": listed,
    })


@router.get("/collections/{collection_id}", name="collection")
def collection(collection_id: str, request: Request, store: Backend = Depends(backend)) -> Response:
    return _json(_collection(request, collection_id, _bounds(store.wgs84(collection_id))))


def _interval(value: str | None):
    """An RFC 3339 instant or ``start/end`` interval (``..`` open) -> naive China times."""
    if value is None or value == "":
        return None

    def instant(text: str, end: bool):
        if text in ("", ".."):
            return None
        try:
            stamp = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise ParameterError(
                f"datetime={value!r}: {text!r} is not an RFC 3339 date-time; "
                "expected e.g. 2026-10-01T00:00:00Z or 2026-10-01T00:00:00Z/..") from None
        if stamp.tzinfo is not None:  # the layers hold naive China Standard Time
            stamp = stamp.tz_convert("Asia/Shanghai").tz_localize(None)
        if end and len(text) == 10:  # a whole day ends at its last instant
            stamp = stamp + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        return stamp

    if "/" in value:
        start, _, stop = value.partition("/")
        return instant(start, False), instant(stop, True)
    return instant(value, False), instant(value, True)


@router.get("/collections/{collection_id}/items", name="items", response_class=GeoJSONResponse)
def items(
    collection_id: str,
    request: Request,
    bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat (WGS84)"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, description=f"features per page (at most {MAX_LIMIT})"),
    offset: int = Query(0, ge=0),
    datetime_: str | None = Query(None, alias="datetime"),
    f: str | None = Query(None, pattern="^(json|geojson)$"),
    store: Backend = Depends(backend),
) -> Response:
    unknown = sorted(set(request.query_params) - _ITEM_PARAMETERS)
    if unknown:
        raise ParameterError(
            f"unknown query parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(_ITEM_PARAMETERS))}")
    layer = store.wgs84(collection_id)
    box = parse_bbox(bbox)
    interval = _interval(datetime_)
    rows = np.arange(len(layer))
    if box is not None:
        rows = np.sort(layer.sindex.query(shapely.box(*box), predicate="intersects"))
    if interval is not None and collection_id in _TIME_COLUMN:
        times = layer[_TIME_COLUMN[collection_id]].iloc[rows]
        keep = np.ones(len(rows), bool)
        if interval[0] is not None:
            keep &= (times >= interval[0]).to_numpy()
        if interval[1] is not None:
            keep &= (times <= interval[1]).to_numpy()
        rows = rows[keep]
    limit = min(limit, MAX_LIMIT)
    page = layer.iloc[rows[offset:offset + limit]]
    features = _features(page, key_of(collection_id))
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": _url(request, "collection", collection_id=collection_id), "rel": "collection",
         "type": "application/json"},
    ]
    if offset + limit < len(rows):
        links.append({"href": str(request.url.include_query_params(offset=offset + limit, limit=limit)),
                      "rel": "next", "type": GEOJSON})
    if offset > 0:
        links.append({"href": str(request.url.include_query_params(offset=max(0, offset - limit),
                                                                   limit=limit)),
                      "rel": "prev", "type": GEOJSON})
    return _json({
        "type": "FeatureCollection",
        "features": features,
        "links": links,
        "numberMatched": int(len(rows)),
        "numberReturned": len(features),
        "timeStamp": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }, GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", name="item", response_class=GeoJSONResponse)
def item(collection_id: str, feature_id: str, request: Request,
         store: Backend = Depends(backend)) -> Response:
    layer = store.wgs84(collection_id)
    key = key_of(collection_id)
    match = layer[layer[key].astype(str) == feature_id]
    if match.empty:
        raise NotFoundError(f"{collection_id} has no feature {key}={feature_id!r}")
    feature = _features(match.iloc[:1], key)[0]
    feature["links"] = [
        {"href": str(request.url.remove_query_params("f")), "rel": "self", "type": GEOJSON},
        {"href": _url(request, "collection", collection_id=collection_id), "rel": "collection",
         "type": "application/json"},
    ]
    return _json(feature, GEOJSON)


def _features(page, key: str) -> list[dict]:
    page = page.drop(columns=[c for c in _PRIVATE if c in page.columns])
    collection = json.loads(page.to_json(na="null", drop_id=True, default=_plain))
    features = collection["features"]
    for feature, code in zip(features, page[key].tolist()):
        feature["id"] = code
        for name, value in feature["properties"].items():
            if isinstance(value, float) and not math.isfinite(value):
                feature["properties"][name] = None
    return features


def landing_page(request: Request) -> JSONResponse:
    """The OGC API landing page (served at ``/`` to clients that ask for JSON)."""
    return _json({
        "title": "jngis 济南基层治理地图服务",
        "description": "城市社区、网格、党群服务站点、党组织与12345工单（OGC API - Features）",
        "links": [
            {"href": str(request.url_for("root")), "rel": "self", "type": "application/json"},
            {"href": str(request.url_for("openapi")), "rel": "service-desc",
             "type": "application/vnd.oai.openapi+json;version=3.0"},
            {"href": _url(request, "conformance"), "rel": "conformance", "type": "application/json"},
            {"href": _url(request, "collections"), "rel": "data", "type": "application/json"},
        ],
    })
