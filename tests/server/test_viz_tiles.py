"""jngis.viz maps drawn from a live map server's vector tiles, in Chromium with the internet cut.

grid_map's vector-tile mode (a layer above ``max_features``) and the server
base (``server_url=``): the page, saved as a file, reads the tiles and labels
of a real uvicorn on 127.0.0.1 (CORS open, as the docs say to start it for
notebooks); nothing else may be asked for, and the card shows on hover.
"""

from __future__ import annotations

import shutil

import chromium
import pytest
import shapely

from jngis.layers import read_layer
from jngis.viz import grid_map


@pytest.fixture(scope="module")
def served(city_file, tmp_path_factory, live_server):
    store = tmp_path_factory.mktemp("viz-store") / "city.gpkg"
    shutil.copy(city_file, store)
    with live_server(store, JNGIS_CORS_ORIGINS="*") as live:
        yield live, read_layer(store, "grids")


@pytest.fixture(scope="module")
def browser(pytestconfig):
    with chromium.offline_browser(chromium.require_tool(pytestconfig)) as new_session:
        yield new_session


def test_vector_tile_mode_draws_and_shows_the_card(served, browser, tmp_path):
    live, grids = served
    m = grid_map(grids, column="households", server_url=live.url, max_features=10)
    m.save(tmp_path / "tiled.html")
    session = browser()
    page = session.open_file(tmp_path / "tiled.html")
    page.wait_for_function("() => document.querySelectorAll('.leaflet-tile-pane path').length > 0 && "
                           "document.querySelectorAll('.jngis-label span').length > 0", timeout=chromium.WAIT_MS)
    (shown,) = chromium.rendered(page)
    assert shown["features"] == 0  # nothing inline: every polygon came as a tile
    assert shown["tile_paths"] >= len(grids) and shown["outline_paths"] > 0 and shown["labels"] > 0
    grid = grids.iloc[len(grids) // 2]
    point = shapely.point_on_surface(grids.iloc[[len(grids) // 2]].to_crs(4326).geometry.iloc[0])
    card = chromium.tooltip_at(page, point.y, point.x)
    assert grid["grid_code"] in card and "户数" in card and f"{int(grid['households']):,}" in card
    session.clean()


def test_inline_map_on_the_servers_base(served, browser, tmp_path):
    live, grids = served
    m = grid_map(grids, column="households", server_url=live.url)
    m.save(tmp_path / "inline.html")
    session = browser()
    page = session.open_file(tmp_path / "inline.html")
    page.wait_for_function("() => document.querySelectorAll('.leaflet-jngisOutlines-pane path').length > 0",
                           timeout=chromium.WAIT_MS)
    (shown,) = chromium.rendered(page)
    assert shown["paths"] == shown["features"] > len(grids)
    assert shown["outline_paths"] > 0 and shown["labels"] > 0
    session.clean()
