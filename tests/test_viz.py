"""jngis.viz: the HTML of the maps (layers, legend, features), the figures, the Excel export."""

from __future__ import annotations

import json
import re
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from jngis.errors import CRSError, GeometryError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.grids import make_grids
from jngis.rebalance import rebalance
from jngis.viz import (
    MAX_FEATURES,
    cjk_font,
    coverage_map,
    grid_map,
    grids_figure,
    plan_figure,
    plan_map,
    plan_to_excel,
    size_figure,
)

_DECODER = json.JSONDecoder()


def collections(page: str) -> dict[str, dict]:
    """Every inline GeoJSON FeatureCollection of a folium page, by layer variable name."""
    found = {}
    for match in re.finditer(r"(geo_json_[0-9a-f]+)_add\(", page):
        data, _ = _DECODER.raw_decode(page, match.end())
        found[match.group(1)] = data
    return found


def overlays(page: str) -> list[str]:
    """Names of the overlays in the layer control(s)."""
    names = []
    for block in re.findall(r"overlays :\s*\{(.*?)\}", page, flags=re.S):
        names += [json.loads(name) for name in re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:', block, flags=re.M)]
    return names


def legends(page: str) -> list[str]:
    """The HTML of the legend / title controls (decoded)."""
    return [json.loads(text.replace("<\\/", "</")) for text in
            re.findall(r"div\.innerHTML = (\".*?\");\n", page)]


def layer_of(page: str, name_part: str) -> dict:
    """The FeatureCollection whose overlay name contains ``name_part``."""
    for block in re.findall(r"overlays :\s*\{(.*?)\}", page, flags=re.S):
        for name, variable in re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:\s*(\w+)', block, flags=re.M):
            if name_part in json.loads(name):
                return collections(page)[variable]
    raise AssertionError(f"no layer named like {name_part!r} in {overlays(page)}")


@pytest.fixture(scope="module")
def grids(slice_city):
    return make_grids(slice_city.communities, slice_city.units)


@pytest.fixture(scope="module")
def plan(slice_city):
    return rebalance(slice_city.units)


@pytest.fixture(scope="module")
def two_streets(slice_city):
    """The slice cut into two 街道 (communities 4 and 5 moved to 370102004), real geometry."""
    units = slice_city.units.copy()
    second = units["community_code"].isin(["370102003004", "370102003005"])
    units.loc[second, "street_code"] = "370102004"
    units.loc[second, "community_code"] = "370102004" + units.loc[second, "community_code"].str[-3:]
    return units


# ---------------------------------------------------------------------------
# grid_map


def test_grid_map_draws_every_grid_with_its_card(grids, slice_city):
    page = grid_map(grids, column="households", stations=slice_city.stations,
                    party_orgs=slice_city.party_orgs).get_root().render()
    layer = layer_of(page, "网格")
    assert len(layer["features"]) == len(grids)
    assert sorted(f["properties"]["grid_code"] for f in layer["features"]) == sorted(grids["grid_code"])
    households = {f["properties"]["grid_code"]: f["properties"]["households"] for f in layer["features"]}
    assert households == dict(zip(grids["grid_code"], grids["households"].astype(int)))
    tooltip = json.loads(re.search(r"let aliases = (\[.*?\]);", page).group(1))
    assert tooltip[0] == "网格编码" and tooltip[-1] == "户数" and "社区编码" in tooltip


def test_grid_map_speaks_the_viewers_words(grids):
    """Labels and coded values come from jngis.codes, the vocabulary the web viewer shows."""
    from jngis import codes, viz

    assert viz.LABELS is codes.LABELS
    page = grid_map(grids, column="households").get_root().render()
    tooltip = json.loads(re.search(r"let aliases = (\[.*?\]);", page).group(1))
    assert "应配人员" in tooltip and "所需网格员" not in tooltip
    kinds = {f["properties"]["grid_type"] for f in layer_of(page, "网格")["features"]}
    assert kinds <= {"居住网格", "专属网格"} and "居住网格" in kinds


def test_grid_map_layers_outlines_and_markers(grids, slice_city):
    page = grid_map(grids, column="households", stations=slice_city.stations,
                    party_orgs=slice_city.party_orgs).get_root().render()
    names = overlays(page)
    assert any(n.startswith("网格") for n in names)
    assert f"服务站 stations ({len(slice_city.stations)})" in names
    assert f"党组织 party organisations ({len(slice_city.party_orgs)})" in names
    communities = layer_of(page, "社区边界")
    streets = layer_of(page, "街道边界")
    assert sorted(f["properties"]["community_code"] for f in communities["features"]) == \
        sorted(grids["community_code"].unique())
    assert len(streets["features"]) == 1
    assert page.count("L.markerClusterGroup(") == 2
    assert page.count("L.marker(") == len(slice_city.stations) + len(slice_city.party_orgs)
    assert "L.control.layers(" in page


def test_grid_map_legend_counts_every_polygon(grids):
    page = grid_map(grids, column="households", classes=4).get_root().render()
    (legend,) = [text for text in legends(page) if "jngis-legend-row" in text]
    assert legend.startswith('<div class="jngis-title">户数 (households)')
    counts = [int(n.replace(",", "")) for n in re.findall(r"\(([\d,]+) 个网格\)", legend)]
    assert 2 <= len(counts) <= 4 and sum(counts) == len(grids)
    colours = re.findall(r"background:(#[0-9a-f]{6})", legend)
    assert len(set(colours)) == len(counts)
    # each polygon is filled with the colour of its class
    layer = layer_of(page, "网格")
    fills = {f["properties"]["_fill"] for f in layer["features"]}
    assert fills == set(colours)


def test_grid_map_joins_a_table_and_marks_missing(grids):
    table = pd.DataFrame({"open_orders": np.arange(len(grids) - 3)},
                         index=pd.Index(grids["grid_code"].iloc[3:], name="grid_code"))
    page = grid_map(grids, table).get_root().render()
    layer = layer_of(page, "未办结工单")
    values = {f["properties"]["grid_code"]: f["properties"]["open_orders"] for f in layer["features"]}
    assert [values[c] for c in grids["grid_code"].iloc[:3]] == [None, None, None]
    assert values[grids["grid_code"].iloc[3]] == 0
    (legend,) = [text for text in legends(page) if "jngis-legend-row" in text]
    assert "无数据 no data  (3 个网格)" in legend


def test_grid_map_any_layer_with_a_code(slice_city):
    households = slice_city.households_by("communities")
    page = grid_map(slice_city.communities, households, column="households").get_root().render()
    layer = layer_of(page, "社区")
    assert len(layer["features"]) == len(slice_city.communities)
    assert not any("社区边界" in n for n in overlays(page))  # no outline of its own level
    page = grid_map(slice_city.units, column="households").get_root().render()
    assert len(layer_of(page, "单元")["features"]) == len(slice_city.units)
    assert len(layer_of(page, "社区边界")["features"]) == slice_city.units["community_code"].nunique()


def _dense_coverage(n_side: int, points_per_edge: int) -> gpd.GeoDataFrame:
    boxes = [shapely.box(500000 + 200 * i, 4060000 + 200 * j, 500200 + 200 * i, 4060200 + 200 * j)
             for i in range(n_side) for j in range(n_side)]
    dense = shapely.segmentize(np.array(boxes, dtype=object), 200 / points_per_edge)
    codes = [f"370102001001{k:03d}" for k in range(len(boxes))]
    return gpd.GeoDataFrame({"grid_code": codes, "households": np.arange(len(boxes)) % 500},
                            geometry=dense, crs="EPSG:4548")


def test_large_layers_are_simplified_as_a_coverage():
    layer = _dense_coverage(15, 60)  # 225 squares, ~54,000 vertices
    assert shapely.get_num_coordinates(layer.geometry.values).sum() > 40_000
    page = grid_map(layer, column="households").get_root().render()
    features = layer_of(page, "网格")["features"]
    assert len(features) == len(layer)
    drawn = np.array([shapely.geometry.shape(f["geometry"]) for f in features], dtype=object)
    assert shapely.get_num_coordinates(drawn).sum() < 5 * len(layer) * 2
    assert bool(shapely.coverage_is_valid(drawn))
    # simplify=0 keeps every vertex
    page = grid_map(layer, column="households", simplify=0).get_root().render()
    drawn = [shapely.geometry.shape(f["geometry"]) for f in layer_of(page, "网格")["features"]]
    assert shapely.get_num_coordinates(drawn).sum() == shapely.get_num_coordinates(layer.geometry.values).sum()


def test_whole_city_at_grid_level_needs_a_server():
    boxes = [shapely.box(500000 + 10 * i, 4060000, 500010 + 10 * i, 4060010) for i in range(MAX_FEATURES + 1)]
    city = gpd.GeoDataFrame({"grid_code": [f"370102001001{i:03d}"[:12] + f"{i:03d}" for i in range(len(boxes))],
                             "open_orders": np.arange(len(boxes)) % 7}, geometry=boxes, crs="EPSG:4548")
    with pytest.raises(ParameterError, match=r"6,001 grids are too many.*server_url="):
        grid_map(city)
    with pytest.raises(ParameterError, match="矢量瓦片"):
        grid_map(city)
    page = grid_map(city, server_url="http://localhost:8000/").get_root().render()
    assert "L.vectorGrid.protobuf(" in page or "vectorGrid.protobuf" in page
    assert "http://localhost:8000/tiles/grids/{z}/{x}/{y}.mvt" in page
    lookup = json.loads(re.search(r"var COLOURS = (\{.*?\});", page).group(1))
    assert len(lookup) == len(city) and set(lookup) == set(city["grid_code"])
    assert not collections(page)  # nothing inline


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda g: grid_map(pd.DataFrame(g)), InputTypeError, "grids is a DataFrame; expected a GeoDataFrame"),
        (lambda g: grid_map(g.set_crs(None, allow_override=True)), CRSError, "grids has no CRS"),
        (lambda g: grid_map(g, column="nope"), NotFoundError, r"column='nope' is in neither"),
        (lambda g: grid_map(g, pd.DataFrame({"x": [1]}), column="x"), SchemaError, "table is indexed by"),
        (lambda g: grid_map(g.set_geometry(g.centroid), column="households"), GeometryError,
         "expected \\(Multi\\)Polygons"),
        (lambda g: grid_map(g, column="households", classes=0), ParameterError, "classes=0"),
        (lambda g: grid_map(g, column="households", scheme="Rainbow"), ParameterError, "scheme='Rainbow'"),
        (lambda g: grid_map(g, column="households", simplify=-1), ParameterError, "simplify=-1"),
        (lambda g: grid_map(g, column="households", server_url="localhost"), ParameterError,
         "server_url='localhost'"),
        (lambda g: grid_map(g, column="households", key="zzz"), NotFoundError, "key='zzz'"),
        (lambda g: grid_map(g.drop(columns=["grid_code", "community_code", "street_code"]), column="households"),
         SchemaError, "none of the code columns"),
    ],
)
def test_grid_map_rejects_bad_input(grids, call, error, match):
    with pytest.raises(error, match=match):
        call(grids)


# ---------------------------------------------------------------------------
# plan_map


def test_plan_map_before_after(plan, slice_city):
    page = plan_map(plan, slice_city.units).get_root().render()
    assert "L.Map.Sync" in page or "sync(" in page  # DualMap keeps both sides together
    names = overlays(page)
    before = layer_of(page, "调整前社区")
    after = layer_of(page, "调整后社区")
    assert len(before["features"]) == slice_city.units["community_code"].nunique()
    assert len(after["features"]) == len(plan.communities)
    moved = [c for name, c in collections(page).items() if c["features"]
             and "from" in c["features"][0]["properties"]]
    assert len(moved) == 2  # highlighted on both sides
    for layer in moved:
        assert sorted(f["properties"]["unit_id"] for f in layer["features"]) == sorted(plan.moves["unit_id"])
    assert sum("moved units" in n for n in names) == 2
    # out-of-bounds markers: the communities outside 1,000-3,000 before, none after
    sizes = slice_city.units.groupby("community_code")["households"].sum()
    outside_before = int((~sizes.between(plan.min_households, plan.max_households)).sum())
    outside_after = int((~plan.communities["households"].between(plan.min_households, plan.max_households)).sum())
    assert outside_before == 2
    assert page.count("L.marker(") == outside_before + outside_after
    titles = " ".join(legends(page))
    assert "调整前 before" in titles and "调整后 after" in titles and "超过上限 (&gt; 3,000 户)" in titles


def test_plan_map_rejects_bad_input(plan, slice_city, square_city):
    with pytest.raises(InputTypeError, match="expected a RebalancePlan"):
        plan_map(slice_city.units, slice_city.units)
    with pytest.raises(SchemaError, match="units of the plan are not in units"):
        plan_map(plan, square_city)
    with pytest.raises(NotFoundError, match="community='cc'"):
        plan_map(plan, slice_city.units, community="cc")


# ---------------------------------------------------------------------------
# figures


def test_size_figure_counts_and_fonts(tmp_path):
    fig = size_figure([800, 1500, 2500, 3600, 3700], [1200, 1500, 2500, 2900, 1100, 1900])
    assert len(fig.axes) == 2
    titles = [ax.get_title() for ax in fig.axes]
    if cjk_font():
        assert "低于下限 1, 超过上限 2" in titles[0] and "低于下限 0, 超过上限 0" in titles[1]
    else:
        assert "1 below, 2 above" in titles[0]
    heights = [sum(p.get_height() for p in ax.patches if p.get_width() < 1000) for ax in fig.axes]
    assert heights == [5, 6]
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*missing from font.*")
        fig.savefig(tmp_path / "sizes.png")
    assert (tmp_path / "sizes.png").stat().st_size > 10_000


def test_plan_and_grids_figures(plan, grids):
    fig = plan_figure(plan)
    before = sum(p.get_height() for p in fig.axes[0].patches if p.get_width() < 1000)
    after = sum(p.get_height() for p in fig.axes[1].patches if p.get_width() < 1000)
    assert (before, after) == (len(plan.changes[plan.changes["status"] != "new"]), len(plan.communities))
    fig = grids_figure(grids)
    bars = fig.axes[0].patches
    assert sum(b.get_height() for b in bars) == grids["community_code"].nunique()
    assert sum(b.get_x() + b.get_width() / 2 for b in bars for _ in range(int(b.get_height()))) == \
        pytest.approx(len(grids))


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (("abc",), {}, InputTypeError, "households is a str"),
        (([1, -2],), {}, ParameterError, "1 negative"),
        (([],), {}, ParameterError, "has 0 values"),
        (([1, 2],), {"min_households": 3000, "max_households": 1000}, ParameterError, "min_households=3000 >="),
        (([1, 2],), {"bins": 0}, ParameterError, "bins=0"),
    ],
)
def test_size_figure_rejects_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        size_figure(*args, **kwargs)


# ---------------------------------------------------------------------------
# Excel


def test_plan_to_excel_one_sheet_per_street_every_move(two_streets, tmp_path):
    plan = rebalance(two_streets, min_households=1000, max_households=3000)
    assert plan.moves["street_code"].nunique() == 2
    path = plan_to_excel(plan, tmp_path / "plan.xlsx", street_names={"370102003": "嘉礼街道"})
    sheets = pd.read_excel(path, sheet_name=None, dtype=str)
    assert list(sheets)[:3] == ["汇总", "各街道", "社区变更"]
    street_sheets = {name: table for name, table in sheets.items() if name.startswith("3701020")}
    assert sorted(street_sheets) == ["370102003 嘉礼街道", "370102004"]
    moves = pd.concat(street_sheets.values(), ignore_index=True)
    assert list(moves.columns) == ["单元编号", "户数", "原社区编码", "新社区编码", "街道编码"]
    expected = plan.moves.astype({"households": int})
    got = moves.astype({"户数": int}).set_index("单元编号").sort_index()
    want = expected.set_index("unit_id").sort_index()
    assert got.index.tolist() == want.index.tolist()
    assert got["户数"].tolist() == want["households"].tolist()
    assert got["原社区编码"].tolist() == want["from"].tolist()
    assert got["新社区编码"].tolist() == want["to"].tolist()
    for name, table in street_sheets.items():
        assert (table["街道编码"] == name[:9]).all()
    summary = sheets["汇总"].set_index("metric")
    assert int(summary.loc["moved_households", "数值"]) == int(plan.moves["households"].sum())
    assert len(sheets["社区变更"]) == len(plan.changes)


def test_plan_to_excel_rejects_bad_input(plan, tmp_path):
    with pytest.raises(ParameterError, match="expected a file name ending in .xlsx"):
        plan_to_excel(plan, tmp_path / "plan.csv")
    with pytest.raises(NotFoundError, match="does not exist"):
        plan_to_excel(plan, tmp_path / "missing" / "plan.xlsx")
    with pytest.raises(InputTypeError, match="expected a RebalancePlan"):
        plan_to_excel({"moves": []}, tmp_path / "plan.xlsx")


# ---------------------------------------------------------------------------
# coverage_map


def test_coverage_map_bands_hold_every_household(slice_city):
    from jngis.stats import coverage, suggest_sites

    result = coverage(slice_city.units, slice_city.stations)
    candidates = slice_city.units.set_geometry(slice_city.units.representative_point())[["unit_id", "geometry"]]
    sites = suggest_sites(slice_city.units, slice_city.stations, candidates, 3)
    page = coverage_map(result, slice_city.units, stations=slice_city.stations,
                        suggested=sites).get_root().render()
    layer = layer_of(page, "距服务中心距离")
    total = sum(f["properties"]["households"] for f in layer["features"])
    assert total == int(slice_city.units["households"].sum())
    distance = result.units["to_station_m"]
    far = int(result.units.loc[distance > 1000, "households"].sum())
    far_drawn = sum(f["properties"]["households"] for f in layer["features"] if f["properties"]["band"] == "> 1,000 m")
    assert far_drawn == far
    (legend,) = [text for text in legends(page) if "jngis-legend-row" in text]
    assert f"&gt; 1,000 m: {far:,} 户" in legend
    assert page.count("L.circle(") == len(sites)
    assert any(n.startswith("建议新址") for n in overlays(page))


def test_coverage_map_rejects_bad_input(slice_city, square_city):
    from jngis.stats import coverage

    result = coverage(slice_city.units, slice_city.stations)
    with pytest.raises(InputTypeError, match="expected the result of jngis.stats.coverage"):
        coverage_map(slice_city.units, slice_city.units)
    with pytest.raises(SchemaError, match="units of the coverage are not in units"):
        coverage_map(result, square_city)
    with pytest.raises(ParameterError, match="radii=\\[500, 300\\]"):
        coverage_map(result, slice_city.units, radii=[500, 300])
