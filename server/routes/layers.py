"""What the viewer needs besides tiles: the layer list, label points and search."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from jngis.errors import NotFoundError
from ..deps import LABELLED, PUBLISHED, Backend, backend, key_of
from .features import GeoJSONResponse, _json

router = APIRouter(tags=["viewer"])

SEARCHED = ("districts", "streets", "communities", "grids")


@router.get("/layers", name="layers")
def layers(request: Request, store: Backend = Depends(backend)) -> dict:
    """The published layers (count, title, TileJSON address) and the viewer's settings."""
    listed = []
    for kind in store.kinds():
        count = store.store.count_orders() if kind == "workorders" else len(store.layer(kind))
        entry = {"id": kind, "title": PUBLISHED[kind], "key": key_of(kind), "features": count}
        if store.tiles is not None and kind in store.tiles.layers:
            entry["tilejson"] = str(request.url_for("tilejson", layer=kind))
        listed.append(entry)
    outline = next((store.wgs84(kind) for kind in ("districts", "streets", "communities", "grids")
                    if kind in store.layers), None)
    return {
        "layers": listed,
        "bounds": [round(float(v), 6) for v in outline.total_bounds] if outline is not None else None,
        "basemap_url": store.settings.basemap_url,
        "writes": store.settings.write_token is not None,
        "grids": "grids" in store.layers,
    }


@router.get("/layers/{kind}/labels", name="labels", response_class=GeoJSONResponse)
def labels(kind: str, store: Backend = Depends(backend)):
    """A point inside each feature, with its code and name, as GeoJSON (WGS84)."""
    if kind not in LABELLED:
        raise NotFoundError(f"layer {kind!r} has no labels; expected one of {', '.join(LABELLED)}")
    layer = store.layer(kind)
    key = key_of(kind)
    points = store.label_points(kind)
    features = [
        {"type": "Feature", "id": code,
         "geometry": {"type": "Point", "coordinates": [round(x, 6), round(y, 6)]},
         "properties": {"code": code, "name": name, "kind": kind}}
        for code, name, x, y in zip(layer[key], layer["name"], points.x, points.y)
    ]
    return _json({"type": "FeatureCollection", "features": features}, "application/geo+json")


@router.get("/search", name="search")
def search(q: str = Query(..., min_length=1, max_length=50, description="编码前缀或名称"),
           limit: int = Query(20, ge=1, le=100), store: Backend = Depends(backend)) -> dict:
    """Districts, 街道, communities and grids whose code starts with ``q`` or whose name holds it."""
    q = q.strip()
    results = []
    for kind in SEARCHED:
        if kind not in store.layers:
            continue
        layer = store.layer(kind)
        key = key_of(kind)
        hit = layer[key].astype(str).str.startswith(q)
        if "name" in layer.columns:
            hit |= layer["name"].astype(str).str.contains(q, regex=False)
        rows = hit.to_numpy().nonzero()[0][: limit - len(results)]
        bounds = store.wgs84(kind).geometry.values[rows].bounds if len(rows) else []
        for row, box in zip(rows, bounds):
            record = layer.iloc[row]
            results.append({
                "kind": kind, "title": PUBLISHED[kind], "code": str(record[key]),
                "name": str(record["name"]) if "name" in layer.columns else str(record[key]),
                "bbox": [round(float(v), 6) for v in box],
            })
        if len(results) >= limit:
            break
    return {"query": q, "results": results}
