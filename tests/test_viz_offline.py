"""jngis.viz maps with no network: vendored assets inlined, no base map by default, Tianditu / XYZ / GCJ-02 options.

The browser tests open each map saved as a file in headless Chromium with every
request outside 127.0.0.1 aborted, and measure what is drawn on the page.
"""

from __future__ import annotations

import importlib.util
import json
import re
import warnings
from pathlib import Path

import chromium
import folium
import numpy as np
import pytest
import shapely

from jngis.crs import to_gcj02
from jngis.errors import BasemapCRSWarning, InputTypeError, OfflineWarning, ParameterError, SchemaError
from jngis.grids import make_grids
from jngis.rebalance import rebalance
from jngis.stats import coverage
from jngis.viz import Basemap, coverage_map, grid_map, offline, plan_map, tianditu

VENDOR = Path(__file__).resolve().parent.parent / "jngis" / "_assets" / "vendor"
KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def grids(slice_city):
    return make_grids(slice_city.communities, slice_city.units, seed=0)


@pytest.fixture(scope="module")
def names(slice_city):
    return (slice_city.streets, slice_city.communities)


@pytest.fixture(scope="module")
def pages(grids, slice_city, names):
    """The HTML of each viz function on the slice."""
    plan = rebalance(slice_city.units)
    served = coverage(slice_city.units, slice_city.stations)
    maps = {
        "grid_map": grid_map(grids, column="households", stations=slice_city.stations,
                             party_orgs=slice_city.party_orgs, names=names, title="网格户数"),
        "plan_map": plan_map(plan, slice_city.units, names=names),
        "coverage_map": coverage_map(served, slice_city.units, stations=slice_city.stations, names=names),
    }
    return {name: m.get_root().render() for name, m in maps.items()}


def _labels(page: str) -> list[dict]:
    return [level for block in re.findall(r"var levels = (\[.*?\]);\n", page) for level in json.loads(block)]


# ---------------------------------------------------------------------------
# the vendored files


def test_vendored_files_match_the_manifest():
    spec = importlib.util.spec_from_file_location("vendor_update", VENDOR / "update.py")
    update = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(update)
    manifest = update.load()
    assert {"leaflet", "leaflet.markercluster", "leaflet.vectorgrid", "leaflet.sync", "maplibre-gl"} <= \
        set(manifest["packages"])
    assert update.problems(manifest) == []  # every file present with its recorded sha256, README generated
    for entry in manifest["packages"].values():
        assert entry["version"] and entry["licence"]


# ---------------------------------------------------------------------------
# the HTML


@pytest.mark.parametrize("name", ["grid_map", "plan_map", "coverage_map"])
def test_pages_link_nothing_on_the_internet(pages, name):
    page = pages[name]
    assert not re.findall(r'<(?:script|link)[^>]+(?:src|href)="[^"]*"', page)  # everything inline
    for gone in ("jquery", "bootstrap", "font-awesome", "fontawesome", "awesome-markers", "AwesomeMarkers",
                 "openstreetmap", "cdn."):
        assert gone not in page.lower(), gone
    assert "jngis vendored leaflet/leaflet.js" in page and "L.Icon.Default.imagePath" in page
    assert "url(images/" not in page  # stylesheet images are data: URIs
    assert "L.tileLayer(" not in page  # no base map by default


def test_plan_map_inlines_the_sync_plugin(pages):
    assert "jngis vendored leaflet.sync/L.Map.Sync.js" in pages["plan_map"]


def test_names_label_the_outlines(pages, grids, slice_city):
    levels = {level["level"]: level for level in _labels(pages["grid_map"])}
    assert set(levels) == {"community", "street"}
    community_names = set(slice_city.communities["name"])
    assert {p[2] for p in levels["community"]["points"]} == community_names
    assert [p[2] for p in levels["street"]["points"]] == list(slice_city.streets["name"])
    assert levels["street"]["minZoom"] < levels["community"]["minZoom"]
    # without names, codes
    page = grid_map(grids, column="households").get_root().render()
    coded = {level["level"]: level for level in _labels(page)}
    assert {p[2] for p in coded["community"]["points"]} == set(grids["community_code"])


def test_a_layer_of_communities_is_labelled_with_its_own_names(slice_city):
    page = grid_map(slice_city.communities, slice_city.households_by("communities"),
                    column="households").get_root().render()
    own = next(level for level in _labels(page) if level["level"] == "community")
    assert sorted(p[2] for p in own["points"]) == sorted(slice_city.communities["name"])


def test_offline_warns_of_what_it_cannot_inline():
    m = folium.Map(tiles=None)
    folium.Marker([36.6, 117.0], icon=folium.Icon(icon="home"), popup="<b>x</b>").add_to(m)
    with pytest.warns(OfflineWarning, match="awesome_markers.*from the internet"):
        page = offline(m).get_root().render()
    assert "jquery" in page and "leaflet.awesome-markers" in page  # kept: the caller's elements need them
    with pytest.raises(InputTypeError, match="expected a folium.Map"):
        offline(folium.Marker([0, 0]))


def test_saved_map_is_one_file(grids, tmp_path):
    path = tmp_path / "map.html"
    grid_map(grids, column="households").save(path)
    text = path.read_text(encoding="utf-8")
    assert "jngis vendored leaflet/leaflet.js" in text and "<script src" not in text
    # rendering again (Jupyter re-displays) keeps it inline
    m = grid_map(grids, column="households")
    assert m.get_root().render().count("jngis vendored leaflet/leaflet.js") == 1
    assert m.get_root().render().count("jngis vendored leaflet/leaflet.js") == 1


# ---------------------------------------------------------------------------
# base maps


def test_tianditu_web_mercator_layers_with_the_key(grids):
    page = grid_map(grids, column="households", tiles=tianditu(KEY)).get_root().render()
    urls = [json.loads(u) for u in re.findall(r'L\.tileLayer\(\s*("[^"]+")', page)]
    assert len(urls) == 2
    assert "/vec_w/" in urls[0] and "LAYER=vec" in urls[0] and "TILEMATRIXSET=w" in urls[0]
    assert "/cva_w/" in urls[1] and all(f"tk={KEY}" in u for u in urls)
    credits = [json.loads(c) for c in re.findall(r'"attribution": ("[^"]*")', page)]
    assert any(c.startswith("天地图") for c in credits) and '"subdomains": "01234567"' in page
    img, notes = tianditu(KEY, "img")
    assert "/img_w/" in img.url and "/cia_w/" in notes.url
    assert len(tianditu(KEY, labels=False)) == 1


@pytest.mark.parametrize("call, error, match", [
    (lambda: tianditu("bad key"), ParameterError, "tk='bad key'"),
    (lambda: tianditu(KEY, "sat"), ParameterError, "kind='sat'"),
])
def test_tianditu_rejects_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_any_xyz_url(grids):
    url = "https://tiles.example.gov.cn/base/{z}/{x}/{y}.png"
    page = grid_map(grids, column="households", tiles=url).get_root().render()
    assert [json.loads(u) for u in re.findall(r'L\.tileLayer\(\s*("[^"]+")', page)] == [url]
    page = grid_map(grids, column="households", tiles=Basemap(url, "市测绘院")).get_root().render()
    assert "市测绘院" in [json.loads(c) for c in re.findall(r'"attribution": ("[^"]*")', page)]


def _first_vertex(page: str, layer_name: str) -> tuple[float, float]:
    from test_viz import layer_of

    ring = layer_of(page, layer_name)["features"][0]["geometry"]["coordinates"]
    while isinstance(ring[0], list):
        ring = ring[0]
    return ring[0], ring[1]


def test_gcj02_basemap_converts_the_layers(grids):
    amap = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
    wgs = _first_vertex(grid_map(grids, column="households", simplify=0).get_root().render(), "网格")
    with pytest.warns(BasemapCRSWarning, match="GCJ-02.*converted with jngis.crs.to_gcj02"):
        page = grid_map(grids, column="households", simplify=0, tiles=amap).get_root().render()
    shifted = _first_vertex(page, "网格")
    expected = to_gcj02(grids.iloc[:1].to_crs(4326)).geometry.iloc[0]
    assert shifted != wgs
    assert min(np.hypot(x - shifted[0], y - shifted[1]) for x, y in expected.exterior.coords) < 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # declared: converted without a warning
        page = grid_map(grids, column="households", simplify=0,
                        tiles=Basemap(amap, "高德地图", crs="gcj02", subdomains="1234")).get_root().render()
    credits = [json.loads(c) for c in re.findall(r'"attribution": ("[^"]*")', page)]
    assert _first_vertex(page, "网格") == shifted and any("数据已转换为GCJ-02" in c for c in credits)
    with pytest.warns(BasemapCRSWarning, match="declared crs='wgs84'"):
        grid_map(grids, column="households", tiles=Basemap(amap, "高德地图"))


@pytest.mark.parametrize("tiles, server_url, error, match", [
    ("tianditu", None, ParameterError, "Tianditu needs your key"),
    ("https://maponline0.bdimg.com/tile/?x={x}&y={y}&z={z}", None, ParameterError, "Baidu tile set"),
    ("https://tiles.example/{z}/{x}.png", None, ParameterError, "expected None \\(no base map\\)"),
    (3, None, InputTypeError, "tiles is a int"),
    (Basemap("https://x/{z}/{x}/{y}.png", "x", crs="bd09"), None, ParameterError, "crs='bd09'"),
    ((Basemap("https://x/{z}/{x}/{y}.png", "x"), Basemap("https://y/{z}/{x}/{y}.png", "y", crs="gcj02")), None,
     ParameterError, "mixes base maps"),
    (Basemap("https://x/{z}/{x}/{y}.png", "x", crs="gcj02"), "http://127.0.0.1:8000", ParameterError,
     "cannot be shifted"),
])
def test_basemaps_reject_bad_input(grids, tiles, server_url, error, match):
    with pytest.raises(error, match=match):
        grid_map(grids, column="households", tiles=tiles, server_url=server_url)


def test_names_reject_bad_input(grids, slice_city):
    with pytest.raises(InputTypeError, match="names is a int"):
        grid_map(grids, column="households", names=3)
    with pytest.raises(SchemaError, match="expected a code column"):
        grid_map(grids, column="households", names=slice_city.stations)


def test_server_url_draws_the_servers_outlines_and_labels(grids):
    page = grid_map(grids, column="households", server_url="http://127.0.0.1:8000").get_root().render()
    for layer in ("districts", "streets", "communities"):
        assert f"http://127.0.0.1:8000/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt" in page
        assert f"http://127.0.0.1:8000/layers/{layer}/labels" in page
    assert "jngis vendored leaflet.vectorgrid/" in page


# ---------------------------------------------------------------------------
# in Chromium with the network cut


@pytest.fixture(scope="module")
def browser(pytestconfig):
    with chromium.offline_browser(chromium.require_tool(pytestconfig)) as new_session:
        yield new_session


def _open(browser, m, tmp_path, name="map.html"):
    session = browser()
    m.save(tmp_path / name)
    page = session.open_file(tmp_path / name)
    return session, page


def test_grid_map_in_chromium_offline(browser, grids, slice_city, names, tmp_path):
    m = grid_map(grids, column="households", stations=slice_city.stations, party_orgs=slice_city.party_orgs,
                 names=names, title="网格户数")
    session, page = _open(browser, m, tmp_path)
    (shown,) = chromium.rendered(page)
    outlines = grids["community_code"].nunique() + grids["street_code"].nunique()
    assert shown["features"] == len(grids) + outlines
    assert shown["paths"] == shown["features"]  # every polygon drawn, in view
    assert shown["markers"] >= 1 and shown["raster_tiles"] == 0
    assert shown["labels"] >= grids["street_code"].nunique()
    texts = page.locator(".jngis-label span").all_inner_texts()
    assert set(texts) <= set(slice_city.communities["name"]) | set(slice_city.streets["name"])
    assert "户数" in page.locator(".jngis-legend").inner_text()
    session.clean()


def test_grid_card_tooltip_inline(browser, grids, tmp_path):
    session, page = _open(browser, grid_map(grids, column="households"), tmp_path)
    grid = grids.iloc[len(grids) // 2]
    point = shapely.point_on_surface(grids.iloc[[len(grids) // 2]].to_crs(4326).geometry.iloc[0])
    card = chromium.tooltip_at(page, point.y, point.x)
    assert grid["grid_code"] in card and "户数" in card and f"{int(grid['households']):,}" in card
    session.clean()


def test_plan_map_in_chromium_offline(browser, slice_city, names, tmp_path):
    plan = rebalance(slice_city.units)
    session, page = _open(browser, plan_map(plan, slice_city.units, names=names), tmp_path)
    before, after = sorted(chromium.rendered(page), key=lambda shown: shown["features"])[:2]
    for shown in (before, after):
        assert shown["paths"] == shown["features"] > 0
        assert shown["labels"] >= 1
    assert page.evaluate("() => typeof L.Map.prototype.sync") == "function"
    session.clean()


def test_coverage_map_in_chromium_offline(browser, slice_city, names, tmp_path):
    served = coverage(slice_city.units, slice_city.stations)
    m = coverage_map(served, slice_city.units, stations=slice_city.stations, names=names)
    session, page = _open(browser, m, tmp_path)
    (shown,) = chromium.rendered(page)
    assert shown["paths"] == shown["features"] > slice_city.units["community_code"].nunique()
    assert shown["markers"] >= 1 and shown["labels"] >= 1
    session.clean()
