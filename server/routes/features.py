"""OGC API - Features, Part 1 (Core) with GeoJSON: the city layers as collections.

Declared conformance classes are only those this module passes: Core and
GeoJSON. Geometry is served in WGS84 longitude/latitude (CRS84) as the
standard requires; ``bbox`` is read in the same CRS. Feature ids are the
layer keys (``grid_code``, ``station_id`` ...). Work orders come live from the
store and never carry personal data. The query itself is
:func:`jngis.features.query_features`; this module adds the links.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from jngis.errors import ParameterError
from jngis.features import DEFAULT_LIMIT, MAX_LIMIT, get_feature, query_features
from ..deps import GEOJSON, PUBLISHED, Backend, GeoJSONResponse, backend, json_response

router = APIRouter(tags=["OGC API Features"])

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
_ITEM_PARAMETERS = {"bbox", "limit", "offset", "datetime", "properties", "f"}

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
    return json_response({"conformsTo": CONFORMANCE})


@router.get("/collections", name="collections")
def collections(request: Request, store: Backend = Depends(backend)) -> Response:
    listed = [_collection(request, kind, _bounds(store.wgs84(kind))) for kind in store.kinds()]
    return json_response({
        "links": [{"href": _url(request, "collections"), "rel": "self", "type": "application/json"}],
        "collections": listed,
    })


@router.get("/collections/{collection_id}", name="collection")
def collection(collection_id: str, request: Request, store: Backend = Depends(backend)) -> Response:
    return json_response(_collection(request, collection_id, _bounds(store.wgs84(collection_id))))


@router.get("/collections/{collection_id}/items", name="items", response_class=GeoJSONResponse)
def items(
    collection_id: str,
    request: Request,
    bbox: str | None = Query(None, description="minlon,minlat,maxlon,maxlat (WGS84)"),
    limit: int = Query(DEFAULT_LIMIT, ge=1, description=f"features per page (at most {MAX_LIMIT})"),
    offset: int = Query(0, ge=0),
    datetime_: str | None = Query(None, alias="datetime"),
    properties: str | None = Query(None, description="the properties to return, comma separated"),
    f: str | None = Query(None, pattern="^(json|geojson)$"),
    store: Backend = Depends(backend),
) -> Response:
    unknown = sorted(set(request.query_params) - _ITEM_PARAMETERS)
    if unknown:
        raise ParameterError(
            f"unknown query parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(_ITEM_PARAMETERS))}")
    selected = None if properties is None else [name for name in properties.split(",") if name]
    page = query_features(store.wgs84(collection_id), collection_id, bbox=bbox, datetime=datetime_,
                          limit=limit, offset=offset, properties=selected)
    links = [
        {"href": str(request.url), "rel": "self", "type": GEOJSON},
        {"href": _url(request, "collection", collection_id=collection_id), "rel": "collection",
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


@router.get("/collections/{collection_id}/items/{feature_id}", name="item", response_class=GeoJSONResponse)
def item(collection_id: str, feature_id: str, request: Request,
         store: Backend = Depends(backend)) -> Response:
    feature = get_feature(store.wgs84(collection_id), collection_id, feature_id)
    feature["links"] = [
        {"href": str(request.url.remove_query_params("f")), "rel": "self", "type": GEOJSON},
        {"href": _url(request, "collection", collection_id=collection_id), "rel": "collection",
         "type": "application/json"},
    ]
    return json_response(feature, GEOJSON)


def landing_page(request: Request) -> Response:
    """The OGC API landing page (served at ``/`` to clients that ask for JSON)."""
    return json_response({
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
