"""The privacy crawl: every GET route of the schema, with real parameters, scanned for callers.

Used by test_security (the administrator and anonymous) and test_roles_matrix
(every role): orders are created with a distinctive caller, then every answer
(JSON decoded, tiles decoded, headers) is searched for the caller's name or
phone in full.
"""

from __future__ import annotations

import gzip
import json
import math

#: The two 街道 of the two-street city (tests/server/conftest.py), in two districts.
HOME_STREET = "370102003"
OTHER_STREET = "370103001"

#: A caller no answer may show in full (distinctive enough not to occur by chance).
CANARY_NAME = "隐私哨兵甲乙丙"
CANARY_ASCII = "Zyxq Canary-Caller"
CANARY_PHONE = "13987654321"
CANARIES = (CANARY_NAME, CANARY_ASCII, CANARY_PHONE)


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    """The XYZ tile holding a point at zoom ``z``."""
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return min(x, n - 1), min(y, n - 1)


def strings(value):
    """Every string (keys included) inside a decoded JSON or tile value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings(item)
    elif value is not None:
        yield str(value)


def leaks(url: str, response, canaries=CANARIES) -> list[str]:
    """The canaries found in one answer: raw bytes, gunzipped, JSON-decoded or tile-decoded."""
    body = response.content  # httpx has already undone Content-Encoding: gzip
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    kind = response.headers.get("content-type", "")
    if url.startswith("/search") and response.status_code == 200:  # the search echoes the query
        body = json.dumps(json.loads(body)["results"], ensure_ascii=False).encode()
    texts = [body.decode("utf-8", "replace")]
    if "json" in kind and body:
        texts += list(strings(json.loads(body)))  # catches \\uXXXX-escaped text too
    if "vnd.mapbox-vector-tile" in kind and body:
        import mapbox_vector_tile

        texts += list(strings(mapbox_vector_tile.decode(body)))
    for header, value in response.headers.items():
        texts += [header, value]
    return [f"{canary!r} in {url}" for canary in canaries for text in texts if canary in text][:1]


def crawl_urls(client, order_ids: list[str], spots: list[tuple[float, float]],
               headers: dict | None = None, tiles: bool = True) -> dict[str, list[str]]:
    """Route template -> the URLs to visit: every layer, grid card, order, page and tile over the orders.

    What a principal cannot read (the work-order layer for anonymous) is still visited: its refusal
    is scanned too. ``tiles=False`` visits one tile per layer (tiles are the same for every principal).
    """
    headers = headers or {}
    listing = client.get("/layers", headers=headers).json()
    kinds = [entry["id"] for entry in listing["layers"]]
    stats = client.get("/stats/grids", headers=headers).json()
    urls: dict[str, list[str]] = {}

    def visit(template: str, url: str) -> None:
        urls.setdefault(template, []).append(url)

    for template in ("/healthz", "/layers", "/conformance", "/collections", "/stats/grids", "/openapi.json",
                     "/auth/oidc"):
        visit(template, template)
    visit("/", "/?f=json")
    visit("/", "/")
    for kind in sorted(set(kinds) | {"workorders"}):
        visit("/collections/{collection_id}", f"/collections/{kind}")
        visit("/collections/{collection_id}/queryables", f"/collections/{kind}/queryables")
        visit("/collections/{collection_id}/items", f"/collections/{kind}/items?limit=10000")
        # openapi.json also lists each collection's items path (with its queryables, for GDAL)
        visit(f"/collections/{kind}/items", f"/collections/{kind}/items?limit=10000&f=json")
    for order_id in order_ids:
        visit("/collections/{collection_id}/items/{feature_id}", f"/collections/workorders/items/{order_id}")
        visit("/workorders/{order_id}", f"/workorders/{order_id}")
        visit("/workorders/{order_id}/trail", f"/workorders/{order_id}/trail")
    visit("/collections/{collection_id}/items",
          "/collections/workorders/items?limit=10000&datetime=2020-01-01T00:00:00Z/..")
    for code in stats.get("grid_code", []):
        visit("/grids/{grid_code}", f"/grids/{code}")
    total = client.get("/workorders?limit=1", headers=headers).json().get("total", 0)
    for offset in range(0, max(total, 1), 1000):
        visit("/workorders", f"/workorders?limit=1000&offset={offset}")
    for query in ("status=received", "status=resolved", "overdue=true", "overdue=false"):
        visit("/workorders", f"/workorders?{query}&limit=1000")
    for kind in ("districts", "streets", "communities"):
        visit("/layers/{kind}/labels", f"/layers/{kind}/labels")
    for query in (*CANARIES, CANARY_PHONE[:7], "370102"):
        visit("/search", f"/search?q={query}&limit=100")
        visit("/geocode", f"/geocode?q={query}")
    visit("/users", "/users")
    visit("/audit", "/audit")
    for order_id in order_ids:
        visit("/workorders/{order_id}/loop", f"/workorders/{order_id}/loop")
    for template in ("/departments", "/duplicates", "/evaluation", "/evaluation/print", "/evaluation/excel"):
        visit(template, template)
    visit("/calls/{call_id}", "/calls/1")
    # boundary versions: version 1 (the store's boundaries recorded, as a first adoption does) and the list
    client.app.state.backend.store._ensure_versions()
    for template in ("/versions", "/versions/current"):
        visit(template, template)
    for version in client.get("/versions", headers=headers).json().get("versions", []):
        visit("/versions/{version_id}", f"/versions/{version['version_id']}")
    for entry in listing["layers"]:
        if "tilejson" not in entry:
            continue
        answer = client.get(f"/tiles/{entry['id']}.json", headers=headers)
        tilejson, version = answer.json(), answer.headers.get("x-jngis-version", "0")
        visit("/tiles/{layer}.json", f"/tiles/{entry['id']}.json")
        for x, y in sorted({tile_of(lon, lat, tilejson["maxzoom"]) for lon, lat in spots}):
            visit("/tiles/{layer}/v{version}/{z}/{x}/{y}.mvt",
                  f"/tiles/{entry['id']}/v{version}/{tilejson['maxzoom']}/{x}/{y}.mvt")
        zooms = range(tilejson["minzoom"], tilejson["maxzoom"] + 1) if tiles else [tilejson["maxzoom"]]
        for z in zooms:
            for x, y in sorted({tile_of(lon, lat, z) for lon, lat in spots}):
                visit("/tiles/{layer}/{z}/{x}/{y}.mvt", f"/tiles/{entry['id']}/{z}/{x}/{y}.mvt")
    return urls


def crawl(client, urls: dict[str, list[str]], headers: dict | None = None) -> tuple[int, list[str], set[int]]:
    """Visit every URL (tiles gzipped as browsers ask); ``(answers, leaks, statuses seen)``."""
    found, count, statuses = [], 0, set()
    for addresses in urls.values():
        for url in addresses:
            encoding = "gzip" if "/tiles/" in url and url.endswith(".mvt") else "identity"
            response = client.get(url, headers={**(headers or {}), "Accept-Encoding": encoding})
            assert response.status_code < 500, (url, response.status_code, response.text[:200])
            statuses.add(response.status_code)
            count += 1
            found += leaks(url, response)
    return count, found, statuses


def served_routes(app) -> dict[tuple[str, str], object]:
    """``(method, path) -> route`` of every route the application serves (HEAD and OPTIONS aside).

    Walks ``app.routes`` into included routers (FastAPI wraps them) and adds the
    OpenAPI schema's paths, so neither a hidden route nor a schema path is missed.
    """
    from fastapi.routing import APIRoute

    found: dict[tuple[str, str], object] = {}

    def walk(routes) -> None:
        for route in routes:
            if isinstance(route, APIRoute):
                found.update({(method, route.path): route for method in route.methods - {"HEAD", "OPTIONS"}})
            elif hasattr(route, "original_router"):  # an included router (no prefix in this app)
                walk(route.original_router.routes)

    walk(app.routes)
    templates = [route for route in found.values()]
    for path, item in app.openapi()["paths"].items():
        if any(route.path_regex.match(path) for route in templates):  # e.g. /collections/grids/items
            continue
        for method in item:
            found.setdefault((method.upper(), path), None)
    return found
