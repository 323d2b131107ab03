"""Folium maps for planners: :func:`grid_map`, :func:`plan_map`, :func:`coverage_map`.

The drawing rules (WGS84, coverage simplification, inline GeoJSON up to
:data:`MAX_FEATURES` polygons, vector tiles beyond) are in :mod:`jngis.viz`;
:func:`coverage_map` lives in :mod:`jngis.viz.coverage` and is re-exported here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from jngis import _checks
from jngis.codes import CODE_DIGITS, LEVEL_LABELS, LEVELS, label, value_label
from jngis.crs import to_metric
from jngis.errors import InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.viz import _context, _inputs, _style, basemaps
from jngis.viz._draw import (
    DEFAULT_TILES,
    MAP_MAX_ZOOM,
    bounds,
    centre,
    dissolve,
    fill_style,
    for_drawing,
    geojson_layer,
    json_values,
)
from jngis.viz._markers import add_points, pin
from jngis.viz._offline import offline
from jngis.viz._style import MISSING_COLOUR, classify, legend
from jngis.viz.basemaps import Basemap
from jngis.viz.coverage import coverage_map

__all__ = ["MAX_FEATURES", "LAYER_OF_KEY", "grid_map", "plan_map", "coverage_map"]

#: Polygons drawn inline (GeoJSON in the page) at most; beyond, vector tiles.
MAX_FEATURES = 6000
#: Layer name on the map server (``/tiles/{layer}/...``) of each key column.
LAYER_OF_KEY: dict[str, str] = {lv.key: lv.layer for lv in reversed(LEVELS)} | {"unit_id": "units"}
#: Card fields (beyond the key and the mapped column) shown in the tooltip when present.
_CARD = ("name", "community_code", "street_code", "grid_type", "households", "population",
         "workers_needed", "orders", "open_orders", "overdue_orders", "warning_orders", "stations",
         "party_orgs", "party_members")
_BAND_COLOURS = {"below": "#2c7bb6", "within": "#a6d96a", "above": "#d7191c"}
_MOVED_COLOUR = "#ff7f00"


# ---------------------------------------------------------------------------
# grid_map


def _joined(func: str, layer: gpd.GeoDataFrame, key: str, table: pd.DataFrame | pd.Series | None,
            column: str) -> gpd.GeoDataFrame:
    """The layer with the columns of ``table`` (keyed by ``key``) joined on its codes."""
    if table is None:
        return layer
    if isinstance(table, pd.Series):  # e.g. City.households_by("communities")
        table = table.to_frame(table.name if table.name is not None else column)
    if not isinstance(table, pd.DataFrame):
        raise InputTypeError(f"{func}: table is a {type(table).__name__}; expected a DataFrame indexed by "
                             f"{key} (as from jngis.grid_stats), a Series, or None")
    if key in table.columns:
        table = table.set_index(key)
    elif table.index.name != key:
        raise SchemaError(f"{func}: table is indexed by {table.index.name!r} and has no {key!r} column; "
                          f"expected a table keyed by {key!r}, the layer's code column")
    table = table.drop(columns=[c for c in table.columns if isinstance(table[c].dtype, gpd.array.GeometryDtype)])
    index = table.index.astype(str)
    if index.has_duplicates:
        raise SchemaError(f"{func}: table has repeated {key} values {list(index[index.duplicated()][:5])}; "
                          "expected one row per code")
    extra = [c for c in table.columns if c not in layer.columns or c == key]
    aligned = table[extra].set_axis(index).reindex(layer[key].astype(str))
    out = layer.copy()
    for name in extra:
        out[name] = aligned[name].to_numpy()
    return out


def _mapped_column(func: str, layer: gpd.GeoDataFrame, column: Any) -> str:
    if not isinstance(column, str) or column not in layer.columns:
        numeric = [c for c in _inputs.attribute_columns(layer) if pd.api.types.is_numeric_dtype(layer[c])]
        raise NotFoundError(f"{func}: column={column!r} is in neither the table nor the layer; expected "
                            f"one of {numeric}")
    return column


def _too_many(func: str, layer: gpd.GeoDataFrame, key: str, max_features: int) -> ParameterError:
    coded = [c for c in reversed(CODE_DIGITS) if c in layer.columns]  # finest first
    example = key if key in coded else (coded[0] if coded else key)
    return ParameterError(
        f"{func}: {len(layer):,} {LAYER_OF_KEY.get(key, key)} are too many to draw in the notebook "
        f"(max_features={max_features:,}); 全市{LEVEL_LABELS.get(key, key)}图层过大, 请使用地图服务器的矢量瓦片. "
        f"Pass server_url='http://localhost:8000' (start the server with `jngis serve`), or select "
        f"one district first, e.g. layer[layer['{example}'].astype(str).str.startswith('370102')]")


def _card_fields(layer: gpd.GeoDataFrame, key: str, column: str) -> list[str]:
    """The fields of a polygon's card: its code, the card fields present, the mapped column."""
    return [key] + [c for c in _CARD if c in layer.columns and c not in (key, column)] + [column]


def _card_values(layer: gpd.GeoDataFrame, card: Sequence[str]) -> pd.DataFrame:
    """The card's values as shown (JSON-safe, coded values in words)."""
    props = json_values(pd.DataFrame(layer[list(card)]))
    if "grid_type" in props:
        props["grid_type"] = props["grid_type"].map(lambda v: value_label("grid_type", v))
    return props


def _card_layer(drawn: gpd.GeoDataFrame, key: str, column: str, fills: np.ndarray) -> folium.GeoJson:
    """The polygons filled by class, with a card (key, the card fields, the column) as tooltip."""
    card = _card_fields(drawn, key, column)
    props = _card_values(drawn, card)
    props["_fill"] = fills
    return geojson_layer(drawn, props, name=f"{LEVEL_LABELS.get(key, key)} {label(column)}", fields=card,
                         style=fill_style(edge="#555555", weight=0.6, opacity=0.7),
                         highlight=lambda f: {"weight": 2.5, "color": "#000000"})


def _inline_map(layer: gpd.GeoDataFrame, key: str, column: str, fills: np.ndarray, *, simplify: float | None,
                bases: Sequence[Basemap], server_url: str | None, outlines: bool,
                names: dict[str, str]) -> folium.Map:
    """A map with the polygons in the page (GeoJSON), the enclosing outlines if asked, and the names."""
    drawn = for_drawing(layer, simplify)
    m = _context.new_map(drawn, bases, server_url)
    _card_layer(drawn, key, column, fills).add_to(m)
    levels = _context.own_labels(layer, drawn, key, names)
    if outlines:
        found = _context.outlines(layer, key, simplify, names)
        for outline in found:
            outline.layer().add_to(m)
        levels = [outline.labels for outline in found] + levels
    _context.add_labels(m, levels)
    return m


class _TileCard(MacroElement):
    """The card of a polygon drawn from vector tiles, on hover or tap: the same fields as the inline card.

    The tiles carry the code; the card's values (the table joined in Python)
    are in the page, one row per code.
    """

    _template = Template("""
{% macro header(this, kwargs) %}
<style>
.jngis-card table { border-collapse: collapse; }
.jngis-card th { text-align: left; padding: 1px 8px 1px 0; font-weight: bold; }
.jngis-card td { text-align: right; padding: 1px 0; }
</style>
{% endmacro %}
{% macro script(this, kwargs) %}
(function() {
    var layer = {{ this._parent.get_name() }}, map = {{ this._parent._parent.get_name() }};
    var CARDS = {{ this.cards_js }};
    var tip = L.tooltip({direction: "top", offset: [0, -6], className: "jngis-card"});
    function text(value) {
        if (value === null || value === undefined) { return "—"; }
        var shown = typeof value === "number" ? value.toLocaleString() : String(value);
        return shown.replace(/[&<>"']/g, function (c) {
            return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
    }
    function card(code) {
        var row = CARDS.rows[code] || [code];
        return "<table>" + CARDS.aliases.map(function (alias, i) {
            return "<tr><th>" + text(alias) + "</th><td>" + text(row[i]) + "</td></tr>"; }).join("") + "</table>";
    }
    function show(e) {
        tip.setContent(card(String(e.layer.properties[CARDS.key])));
        map.openTooltip(tip, e.latlng);
    }
    layer.on("mouseover", show);
    layer.on("click", show);
    layer.on("mouseout", function () { map.closeTooltip(tip); });
})();
{% endmacro %}
""")

    def __init__(self, key: str, fields: Sequence[str], rows: dict[str, list[Any]]) -> None:
        super().__init__()
        self._name = "JngisTileCard"
        cards = {"key": key, "aliases": [label(c) for c in fields], "rows": rows}
        self.cards_js = json.dumps(cards, ensure_ascii=False).replace("</", "<\\/")


def _tile_cards(layer: gpd.GeoDataFrame, key: str, column: str) -> _TileCard:
    """The card rows of every polygon (the inline card's fields and values), keyed by code."""
    card = _card_fields(layer, key, column)
    props = _card_values(layer, card)
    rows = dict(zip(layer[key].astype(str), props.to_numpy().tolist()))
    return _TileCard(key, card, rows)


def _tiled_map(layer: gpd.GeoDataFrame, key: str, column: str, fills: np.ndarray, server_url: str | None,
               name: str, bases: Sequence[Basemap]) -> folium.Map:
    """A map whose polygons come from the server's vector tiles, coloured by code in the browser."""
    extent = gpd.GeoSeries([shapely.box(*layer.total_bounds)], crs=layer.crs).to_crs(4326)
    m = _context.new_map(gpd.GeoDataFrame(geometry=extent), bases, server_url)
    colour_of = dict(zip(layer[key].astype(str), fills.tolist()))
    style = (
        "function (properties, zoom) {"
        f" var fill = COLOURS[String(properties[{json.dumps(key)}])] || {json.dumps(MISSING_COLOUR)};"
        " return {fill: true, fillColor: fill, fillOpacity: 0.7, color: '#555555', weight: 0.5}; }"
    )
    # SVG renderer: VectorGrid's canvas renderer calls L.DomEvent.fakeStop, gone since Leaflet 1.8
    options = (
        "{\n"
        f'"vectorTileLayerStyles": {{{json.dumps(name)}: (function () {{ var COLOURS = '
        f"{json.dumps(colour_of)}; return {style}; }})()}},\n"
        '"rendererFactory": L.svg.tile, "interactive": true, "maxNativeZoom": 16, "attribution": "jngis"\n}'
    )
    url = f"{server_url}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"
    overlay = f"{LEVEL_LABELS.get(key, key)} {label(column)} (vector tiles)"
    tiles = folium.plugins.VectorGridProtobuf(url, overlay, options).add_to(m)
    _tile_cards(layer, key, column).add_to(tiles)
    return m


# long: the numpydoc docstring of 15 parameters; the body is 20 lines of named steps
def grid_map(
    grids: gpd.GeoDataFrame,
    table: pd.DataFrame | pd.Series | None = None,
    column: str = "open_orders",
    *,
    stations: gpd.GeoDataFrame | None = None,
    party_orgs: gpd.GeoDataFrame | None = None,
    key: str | None = None,
    classes: int = 5,
    scheme: str = "YlOrRd",
    outlines: bool = True,
    simplify: float | None = None,
    max_features: int = MAX_FEATURES,
    server_url: str | None = None,
    layer_name: str | None = None,
    tiles: str | Basemap | Sequence[Basemap] | None = DEFAULT_TILES,
    names: Any = None,
    title: str | None = None,
) -> folium.Map:
    """A folium map of a polygon layer coloured by one column, for planners.

    Parameters
    ----------
    grids : geopandas.GeoDataFrame
        Any polygon layer with a code column: grids (``grid_code``), units,
        communities, 街道 or districts; any CRS.
    table : pandas.DataFrame or pandas.Series, optional
        Indicators keyed by the layer's code (index or column), e.g. the
        output of ``jngis.grid_stats`` or ``City.households_by("communities")``;
        its columns join the layer's (a Series joins under its name).
    column : str
        Column (of ``table`` or the layer) to colour by, e.g. ``"open_orders"``
        or ``"households"``. Missing values are drawn grey ("无数据").
    stations, party_orgs : geopandas.GeoDataFrame, optional
        Points drawn as clustered markers with a popup card each.
    key : str, optional
        The code column (default: the first of grid_code, unit_id,
        community_code, street_code, district_code present).
    classes : int
        Number of quantile classes (fewer when values repeat).
    scheme : str
        ColorBrewer sequential scheme.
    outlines : bool
        Draw the outlines of the enclosing communities and 街道 (dissolved from
        the layer's codes).
    simplify : float, optional
        Coverage simplification tolerance in metres; None: automatic for
        layers over 40,000 vertices; 0: never.
    max_features : int
        Most polygons drawn inline. Larger layers need ``server_url``.
    server_url : str, optional
        Address of a running jngis map server. Its districts, 街道 and
        communities (vector tiles) and their names are drawn as the base, and
        layers larger than ``max_features`` are drawn from its tiles
        ``{server_url}/tiles/{layer_name}/{z}/{x}/{y}.mvt`` (the card shows
        on hover as inline). The page reads the server from another origin:
        start it with ``JNGIS_CORS_ORIGINS=*`` (or the Jupyter address).
    layer_name : str, optional
        The server's layer name (default from the key: "grids", "communities"...).
    tiles : str, Basemap, tuple of Basemap or None
        Base map under the layers. None (the default): none, the map works
        with no network. ``jngis.viz.tianditu(tk=...)`` for Tianditu, an XYZ
        URL or a :class:`~jngis.viz.basemaps.Basemap` for any tile set; a GCJ-02
        one (Amap, Tencent) has the layers converted to GCJ-02 to fit it
        (see :mod:`jngis.viz.basemaps`).
    names : dict, Series, layer or tuple of them, optional
        Names of the districts, 街道 and communities by code, written on the
        outlines (e.g. ``names=(city.streets, city.communities)``); codes
        are written where no name is given.
    title : str, optional
        Title shown on the map.

    Returns
    -------
    folium.Map

    Raises
    ------
    InputTypeError, CRSError, GeometryError
        A layer that is not a GeoDataFrame, has no CRS or wrong geometries.
    NotFoundError
        ``column`` (or ``key``) is in neither the table nor the layer.
    SchemaError
        The layer has no code column, or ``table`` is not keyed by it.
    ParameterError
        More than ``max_features`` polygons and no ``server_url``; bad options.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> city = load_slice()
    >>> m = grid_map(city.communities, city.households_by("communities"), column="households",
    ...              stations=city.stations,
    ...              party_orgs=city.party_orgs, title="历下区 370102003")
    >>> "户数" in m.get_root().render()
    True
    """
    func = "grid_map"
    _check_grid_map(func, grids, stations, party_orgs, scheme)
    classes = _checks.integer(func, "classes", classes, minimum=1)
    max_features = _checks.integer(func, "max_features", max_features, minimum=1)
    server_url = _inputs.server_url(func, "server_url", server_url)
    simplify = _inputs.simplify(func, "simplify", simplify)
    key = _inputs.layer_key(func, grids, key)
    bases = basemaps.for_map(func, "tiles", tiles, server_url)
    label_names = _inputs.names(func, "names", names)
    grids, stations, party_orgs = (basemaps.fit(bases, part) for part in (grids, stations, party_orgs))
    layer = _joined(func, grids, key, table, column)
    column = _mapped_column(func, layer, column)
    big = len(layer) > max_features
    if big and server_url is None:
        raise _too_many(func, layer, key, max_features)
    classed = classify(layer[column], classes, scheme, LEVEL_LABELS.get(key, ""))
    if big:
        m = _tiled_map(layer, key, column, classed.fills, server_url, layer_name or LAYER_OF_KEY.get(key, key),
                       bases)
    else:
        m = _inline_map(layer, key, column, classed.fills, simplify=simplify, bases=bases, server_url=server_url,
                        outlines=outlines, names=label_names)
    add_points(m, stations, party_orgs)
    return _style.finish(m, legend(f"{label(column)} ({column})", classed.entries), title)


def _check_grid_map(func: str, grids: Any, stations: Any, party_orgs: Any, scheme_name: Any) -> None:
    _inputs.layer(func, "grids", grids)
    _inputs.layer(func, "stations", stations, geometry="point", optional=True)
    _inputs.layer(func, "party_orgs", party_orgs, geometry="point", optional=True)
    if len(grids) == 0:
        raise ParameterError(f"{func}: grids is empty; expected at least one polygon")
    _style.scheme(func, "scheme", scheme_name)


# ---------------------------------------------------------------------------
# plan_map


def _band(households: pd.Series, low: int, high: int) -> np.ndarray:
    values = households.to_numpy()
    return np.where(values < low, "below", np.where(values > high, "above", "within"))


def _band_text(low: int, high: int) -> dict[str, str]:
    return {"below": f"低于下限 (< {low:,} 户)", "within": f"规模达标 ({low:,}–{high:,} 户)",
            "above": f"超过上限 (> {high:,} 户)"}


def _community_layer(name: str, shapes: gpd.GeoDataFrame, low: int, high: int,
                     fields: Sequence[str]) -> folium.GeoJson:
    """Communities filled by size band, with their status in Chinese and English."""
    props = json_values(pd.DataFrame(shapes[list(fields)]))
    if "status" in props:
        props["status"] = props["status"].map(lambda v: f"{value_label('status', v)} {v}" if v else v)
    props["_fill"] = [_BAND_COLOURS[b] for b in _band(shapes["households"], low, high)]
    return geojson_layer(shapes, props, name=name, fields=fields,
                         style=fill_style(edge="#333333", weight=1.0, opacity=0.45),
                         highlight=lambda f: {"weight": 3, "color": "#000000"})


def _out_of_bounds_markers(name: str, shapes: gpd.GeoDataFrame, low: int, high: int) -> folium.FeatureGroup:
    """A warning marker on every community outside the bounds."""
    group = folium.FeatureGroup(name=name)
    bands = _band(shapes["households"], low, high)
    points = shapely.point_on_surface(np.asarray(shapes.geometry.values, dtype=object))
    for point, band, code, households in zip(points, bands, shapes["community_code"], shapes["households"]):
        if band == "within":
            continue
        text = f"社区 {code}: {int(households):,} 户, {_band_text(low, high)[band]}"
        folium.Marker([point.y, point.x], tooltip=text,
                      icon=pin("red" if band == "above" else "blue", "!")).add_to(group)
    return group


def _check_plan_units(func: str, plan: Any, units: Any, community: Any, unit_id: Any) -> None:
    _inputs.plan(func, "plan", plan)
    _inputs.layer(func, "units", units)
    _inputs.column_of(func, "community", units, community, "units")
    _inputs.column_of(func, "unit_id", units, unit_id, "units")
    missing = ~plan.assignment.index.isin(units[unit_id])
    if missing.any():
        raise SchemaError(f"{func}: {int(missing.sum())} units of the plan are not in units (e.g. "
                          f"{list(plan.assignment.index[missing][:5])}); expected the units the plan was "
                          "made from")


def _plan_layers(plan: Any, units: gpd.GeoDataFrame, community: str, unit_id: str,
                 bases: Sequence[Basemap]) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Today's communities, the proposed ones and the moved units (from, to, households), in metres."""
    metric = to_metric(units)
    codes = metric[community].astype(str)
    before = dissolve(metric, codes).rename(columns={"code": "community_code"})
    before["households"] = before["community_code"].map(metric.groupby(codes)["households"].sum()) \
        .astype(int).to_numpy()
    after = to_metric(basemaps.fit(bases, plan.communities.copy()))
    moves = plan.moves.set_index("unit_id")
    moved = metric[units[unit_id].isin(moves.index).to_numpy()][[unit_id, "geometry"]]
    moved = moved.assign(**{"from": moved[unit_id].map(moves["from"]).astype(str).to_numpy(),
                            "to": moved[unit_id].map(moves["to"]).astype(str).to_numpy(),
                            "households": moved[unit_id].map(moves["households"]).to_numpy()})
    return before, after, moved


def _moved_layer(moved: gpd.GeoDataFrame, unit_id: str) -> folium.GeoJson:
    """The units that change community, outlined in orange, their old and new code in the tooltip."""
    fields = [unit_id, "from", "to", "households"]
    return geojson_layer(moved, json_values(pd.DataFrame(moved[fields])), fields=fields,
                         name=f"调整的单元 moved units ({len(moved):,})",
                         style=lambda f: {"fillColor": _MOVED_COLOUR, "color": _MOVED_COLOUR, "weight": 2.2,
                                          "fillOpacity": 0.25})


def _plan_legend(plan: Any, low: int, high: int, moved: int) -> Any:
    text = _band_text(low, high)
    entries = [(_BAND_COLOURS[b], "#333", text[b]) for b in ("below", "within", "above")]
    entries.append(("transparent", _MOVED_COLOUR, f"调整的单元 moved units ({moved:,})"))
    met = plan.metrics
    note = (f"调整户数 {int(met.get('moved_households', 0)):,} 户 "
            f"({met.get('moved_share', 0):.1%}); 达标社区 {met.get('within_bounds_before', '?')} → "
            f"{met.get('within_bounds_after', '?')}")
    return legend("社区规模 community size", entries, note)


# long: the numpydoc docstring; the body is 35 lines of named steps, per side of the DualMap
def plan_map(
    plan: Any,
    units: gpd.GeoDataFrame,
    *,
    community: str = "community_code",
    unit_id: str = "unit_id",
    simplify: float | None = None,
    tiles: str | Basemap | Sequence[Basemap] | None = DEFAULT_TILES,
    server_url: str | None = None,
    names: Any = None,
) -> folium.plugins.DualMap:
    """Before / after of a rebalance, side by side (synchronised), for the officials who approve it.

    Left: today's communities (the units dissolved by their current code);
    right: the proposal. Both are coloured by size band (below / within /
    above the plan's bounds); communities outside the bounds carry a warning
    marker; the units that change community are outlined in orange on both
    sides, with their old and new code in the tooltip.

    Parameters
    ----------
    plan : RebalancePlan
        From :func:`jngis.rebalance.rebalance`.
    units : geopandas.GeoDataFrame
        The units layer the plan was made from (the plan does not keep the
        unit geometries).
    community, unit_id : str
        Column names of the current community code and unit id in ``units``.
    simplify : float, optional
        Coverage simplification tolerance in metres (None: automatic).
    tiles : str, Basemap, tuple of Basemap or None
        Base map of both sides (None: none; see :func:`grid_map`).
    server_url : str, optional
        A jngis map server whose districts, 街道 and communities are drawn as
        the base of both sides (see :func:`grid_map`).
    names : dict, Series, layer or tuple of them, optional
        Names of the 街道 and communities by code, written on the map (new
        communities show their code).

    Returns
    -------
    folium.plugins.DualMap

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.rebalance import rebalance
    >>> units = load_slice().units
    >>> m = plan_map(rebalance(units), units)
    >>> "调整后" in m.get_root().render()
    True
    """
    func = "plan_map"
    _check_plan_units(func, plan, units, community, unit_id)
    simplify = _inputs.simplify(func, "simplify", simplify)
    server_url = _inputs.server_url(func, "server_url", server_url)
    bases = basemaps.for_map(func, "tiles", tiles, server_url)
    label_names = _inputs.names(func, "names", names)
    units = basemaps.fit(bases, units)
    low, high = int(plan.min_households), int(plan.max_households)
    before_m, after_m, moved = _plan_layers(plan, units, community, unit_id, bases)
    before, after = for_drawing(before_m, simplify), for_drawing(after_m, simplify)
    labels = [_context.label_level("community_code", drawn, metric, drawn["community_code"], label_names)
              for drawn, metric in ((before, before_m), (after, after_m))]
    streets = _context.outlines(units, "unit_id", simplify, label_names, levels=("street_code", "district_code"))
    moved = for_drawing(moved, simplify, coverage=False) if len(moved) else moved.to_crs(4326)
    box = bounds(pd.concat([before[["geometry"]], after[["geometry"]]]))
    m = folium.plugins.DualMap(location=centre(box), tiles=None, layout="horizontal", control_scale=True,
                               maxZoom=MAP_MAX_ZOOM)
    m.fit_bounds(box)
    after_fields = [c for c in ("community_code", "street_code", "households", "status", "units")
                    if c in after.columns]
    sides = ((m.m1, "调整前", "before", before, ["community_code", "households"], labels[0]),
             (m.m2, "调整后", "after", after, after_fields, labels[1]))
    for side, zh, en, shapes, fields, names_here in sides:
        _context.dress(side, bases, server_url)
        _community_layer(f"{zh}社区 {en} ({len(shapes):,})", shapes, low, high, fields).add_to(side)
        if len(moved):
            _moved_layer(moved, unit_id).add_to(side)
        for outline in streets:
            outline.layer().add_to(side)
        _context.add_labels(side, [names_here] + [outline.labels for outline in streets])
        _out_of_bounds_markers(f"未达标社区 out of bounds ({en})", shapes, low, high).add_to(side)
        _style.title(f"{zh} {en}: {len(shapes):,} 个社区").add_to(side)
    _plan_legend(plan, low, high, len(moved)).add_to(m.m2)
    folium.LayerControl(collapsed=True).add_to(m)
    return offline(m)
