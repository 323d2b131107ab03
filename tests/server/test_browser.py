"""The viewer in a real browser: headless Debian Chromium driven by Playwright against a live uvicorn.

Checks what a person at the command centre would see: the page loads with no
console error and no request leaving the server, grids are drawn at the city
view and at zoom 15, a click shows the grid's card with the server's numbers,
and a work order created through the API recolours its grid (feature-state,
no tile reloaded). A screenshot is saved in the test's tmp folder.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from shapely.geometry import shape

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 60_000


def playwright_for(require_tool):
    """Playwright's ``sync_playwright`` once Chromium and the package are there (require_tool otherwise)."""
    require_tool(Path(CHROMIUM).exists(), "Chromium", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_tool(False, "the playwright Python package", "pip install playwright")
    return sync_playwright


def test_viewer_in_chromium(city_file, tmp_path, live_server, token, require_tool):
    sync_playwright = playwright_for(require_tool)
    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    with live_server(store) as live, sync_playwright() as playwright:
        api = httpx.Client(base_url=live.url, timeout=30)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page, elsewhere, console_errors = gated_page(browser, live)

            # -- the city view
            page.goto(live.url + "/")
            page.wait_for_function("() => window.jngis && window.jngis.ready === true", timeout=WAIT_MS)
            idle(page)
            body = api.get("/stats/grids").json()
            grids = [{"grid_code": code, "open_orders": body["columns"]["open_orders"][i]}
                     for i, code in enumerate(body["grid_code"])]
            drawn = page.evaluate("() => window.jngis.map.queryRenderedFeatures({layers: ['fill-orders']})"
                                  ".map(f => f.properties.grid_code)")
            assert set(drawn) == {row["grid_code"] for row in grids}
            assert page.locator("#legend li").count() == 6
            # labels are drawn with the browser's own fonts (no glyph files, digits included)
            assert page.evaluate("() => window.jngis.map.getStyle().glyphs") is None
            labelled = page.evaluate("() => window.jngis.map.queryRenderedFeatures({layers: "
                                     "['label-districts', 'label-streets', 'label-communities']})"
                                     ".map(f => f.properties.name)")
            names = {f["properties"]["name"] for kind in ("districts", "streets", "communities")
                     for f in api.get(f"/layers/{kind}/labels").json()["features"]}
            assert labelled and set(labelled) <= names
            assert "未办结" in page.locator("#stats-status").inner_text()

            # -- the busiest grid at zoom 15, clicked: its card shows the server's numbers
            busiest = max(grids, key=lambda row: row["open_orders"])
            lon, lat = label_point(api, busiest["grid_code"])
            page.evaluate("([lon, lat]) => window.jngis.map.jumpTo({center: [lon, lat], zoom: 15})", [lon, lat])
            idle(page)
            assert page.evaluate("() => window.jngis.map.getZoom()") == pytest.approx(15)
            at_15 = page.evaluate("() => window.jngis.map.queryRenderedFeatures({layers: ['fill-orders']}).length")
            assert at_15 > 0
            click_at(page, lon, lat)
            page.wait_for_selector("#card:not([hidden]) #card-table", timeout=WAIT_MS)
            card = api.get(f"/grids/{busiest['grid_code']}").json()
            assert busiest["grid_code"] in page.locator("#card h2").inner_text()
            assert cell(page, "open_orders") == f"{card['open_orders']:,} 件"
            assert cell(page, "overdue_orders") == f"{card['overdue_orders']:,} 件"
            assert cell(page, "households") == f"{card['households']:,} 户"
            assert cell(page, "full_time_workers") == f"{card['full_time_workers']} 人"
            assert card["community_name"] in page.locator("#card .where").first.inner_text()

            # -- a quiet grid gets a new order through the API; its colour changes without new tiles
            quiet = min(grids, key=lambda row: row["open_orders"])
            lon, lat = label_point(api, quiet["grid_code"])
            for switch in ("line-communities", "line-streets", "line-districts", "point-stations"):
                page.locator(f".switches input[data-layers^='{switch}']").uncheck()
            page.evaluate("([lon, lat]) => window.jngis.map.jumpTo({center: [lon, lat], zoom: 15})", [lon, lat])
            idle(page)
            before_colour = fill_colour(page, lon, lat)
            before_pixels = pixels(page)
            tiles_before = tile_requests(page)
            created = api.post("/workorders", headers={"Authorization": f"Bearer {token}"}, json={
                "lon": lon, "lat": lat, "category": "环境卫生", "description": "垃圾未清运"})
            assert created.status_code == 201 and created.json()["grid_code"] == quiet["grid_code"]
            # the server recomputes the counts in the background; press 刷新 until they arrive
            deadline = time.time() + WAIT_MS / 1000
            while feature_state(page, quiet["grid_code"]) != quiet["open_orders"] + 1:
                assert time.time() < deadline, "the new order never reached the map"
                page.locator("#refresh").click()
                page.wait_for_timeout(250)
            idle(page)
            after_colour = fill_colour(page, lon, lat)
            assert after_colour != before_colour
            assert pixels(page) != before_pixels
            assert tile_requests(page) == tiles_before  # counts came by feature-state, not by new tiles

            # -- search finds a community and opens nothing outside the server
            page.locator("#search-input").fill(card["community_name"])
            page.locator("#search button").click()
            page.wait_for_selector("#search-results li", timeout=WAIT_MS)
            assert card["community_name"] in page.locator("#search-results").inner_text()

            page.evaluate("() => window.jngis.map.jumpTo({zoom: 13})")
            for switch in ("line-communities", "line-streets", "line-districts", "point-stations"):
                page.locator(f".switches input[data-layers^='{switch}']").check()
            idle(page)
            page.screenshot(path=str(tmp_path / "viewer.png"))
            assert elsewhere == [], f"requests left the server: {elsewhere}"
            assert console_errors == [], console_errors
        finally:
            browser.close()


def gated_page(browser, live):
    """A page whose requests may reach only the live server: ``(page, elsewhere, console_errors)``,
    the URLs it tried to fetch elsewhere (refused) and the errors its console showed."""
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="zh-CN")
    elsewhere: list[str] = []
    console_errors: list[str] = []

    def gate(route):
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == f"127.0.0.1:{live.port}":
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    context.route("**/*", gate)
    page = context.new_page()
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    return page, elsewhere, console_errors


def idle(page) -> None:
    """Wait until MapLibre has drawn every tile of the current view."""
    page.wait_for_function(
        "() => new Promise(done => { const map = window.jngis.map;"
        " if (map.loaded() && map.areTilesLoaded()) { map.once('idle', () => done(true)); map.triggerRepaint(); }"
        " else { map.once('idle', () => done(true)); } })", timeout=WAIT_MS)


def label_point(api: httpx.Client, grid_code: str) -> tuple[float, float]:
    geometry = api.get(f"/collections/grids/items/{grid_code}").json()["geometry"]
    point = shape(geometry).representative_point()
    return point.x, point.y


def screen_point(page, lon: float, lat: float) -> tuple[float, float]:
    x, y = page.evaluate("([lon, lat]) => { const p = window.jngis.map.project([lon, lat]); return [p.x, p.y]; }",
                         [lon, lat])
    box = page.locator("#map canvas").bounding_box()
    return box["x"] + x, box["y"] + y


def click_at(page, lon: float, lat: float) -> None:
    x, y = screen_point(page, lon, lat)
    page.mouse.click(x, y)


def cell(page, field: str) -> str:
    return page.locator(f"#card-table tr[data-field='{field}'] td").inner_text().strip()


def fill_colour(page, lon: float, lat: float):
    """The fill colour MapLibre evaluated for the grid under a point (feature-state included)."""
    return page.evaluate(
        "([lon, lat]) => { const map = window.jngis.map; const p = map.project([lon, lat]);"
        " const f = map.queryRenderedFeatures(p, {layers: ['fill-orders']})[0];"
        " return JSON.stringify(f.layer.paint['fill-color']); }",
        [lon, lat])


def feature_state(page, grid_code: str):
    return page.evaluate("(code) => window.jngis.map.getFeatureState("
                         "{source: 'grids', sourceLayer: 'grids', id: code}).open", grid_code)


def pixels(page) -> bytes:
    """A small screenshot around the view's centre (the grid under test)."""
    box = page.locator("#map canvas").bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    return page.screenshot(clip={"x": centre_x - 6, "y": centre_y - 6, "width": 12, "height": 12})


def tile_requests(page) -> int:
    return page.evaluate("() => performance.getEntriesByType('resource')"
                         ".filter(e => e.name.includes('/tiles/grids/')).length")
