"""What the viewer needs besides tiles: the layer list with the vocabulary, label points and search.

Names, label points and the search are :class:`jngis.places.Places`; the
labels and units the viewer shows are :func:`jngis.codes.viewer_vocabulary`.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from jngis import access
from jngis.access import Principal
from jngis.codes import viewer_vocabulary
from jngis.places import SEARCH_LIMIT
from ..auth import describe, layer_reader
from ..deps import GEOJSON, PUBLISHED, Backend, GeoJSONResponse, backend, json_response, key_of
from ..urls import url_for

router = APIRouter(tags=["viewer"])

#: Layers whose extent frames the map at start, the first one the city has.
_OUTLINES = ("districts", "streets", "communities", "grids")


@router.get("/layers", name="layers")
def layers(request: Request, store: Backend = Depends(backend), who: Principal = Depends(layer_reader)) -> dict:
    """The published layers (count, title, TileJSON address), the viewer's settings and vocabulary.

    What depends on the principal: the work-order layer and its count (the orders it may see),
    ``writes`` (whether it may report orders) and ``principal`` (:func:`describe`).
    """
    listed = []
    for kind in store.kinds(who):
        count = store.store.count_orders(principal=who) if kind == "workorders" else len(store.layer(kind))
        entry = {"id": kind, "title": PUBLISHED[kind], "key": key_of(kind), "features": count}
        if store.tiles is not None and kind in store.tiles.layers:
            entry["tilejson"] = url_for(request, "tilejson", layer=kind)
        listed.append(entry)
    outline = next((store.wgs84(kind) for kind in _OUTLINES if kind in store.layers), None)
    return {
        "layers": listed,
        "bounds": [round(float(v), 6) for v in outline.total_bounds] if outline is not None else None,
        "basemap_url": store.settings.basemap_url,
        "writes": access.can(who, "orders.create"),
        "anonymous": store.settings.anonymous,
        "principal": describe(who),
        "grids": "grids" in store.layers,
        "vocabulary": viewer_vocabulary(),
    }


@router.get("/layers/{kind}/labels", name="labels", response_class=GeoJSONResponse)
def labels(kind: str, store: Backend = Depends(backend), who: Principal = Depends(layer_reader)):
    """A point inside each feature, with its code and name, as GeoJSON (WGS84)."""
    return json_response(store.places.labels(kind), GEOJSON)


@router.get("/search", name="search")
def search(q: str = Query(..., min_length=1, max_length=50, description="编码前缀或名称"),
           limit: int = Query(SEARCH_LIMIT, ge=1, le=100), store: Backend = Depends(backend),
           who: Principal = Depends(layer_reader)) -> dict:
    """Districts, 街道, communities and grids whose code starts with ``q`` or whose name holds it."""
    return {"query": q.strip(), "results": store.places.search(q, limit)}
