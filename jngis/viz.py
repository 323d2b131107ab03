"""Maps and figures for planners: folium web maps, matplotlib report figures, Excel.

Maps (folium, for Jupyter and for HTML files sent to officials):

- :func:`grid_map` — a choropleth of any polygon layer with a code column
  (grids, communities, 街道, units) with a Chinese legend, a card per polygon
  as tooltip, stations and party organisations as clustered markers, the
  outlines of the enclosing communities / 街道, and a layer control.
- :func:`plan_map` — a rebalance proposal before / after, side by side.
- :func:`coverage_map` — households far from a service centre.

Figures (matplotlib, for printed reports): :func:`size_figure`,
:func:`plan_figure`, :func:`grids_figure`. Export: :func:`plan_to_excel`.

Drawing rules
-------------
- Polygons are drawn in WGS84 (EPSG:4326, what Leaflet expects; CGCS2000
  differs from it by less than a metre). The default base map is
  OpenStreetMap, which is WGS84 too. Do not put
  these layers on Amap / Tencent / Baidu tiles: those are GCJ-02 / BD-09 and
  shifted by 500–900 m in Jinan.
- A layer with many vertices is simplified *as a coverage* before drawing
  (:func:`jngis.topology.simplify_coverage`, i.e. :func:`shapely.coverage_simplify`,
  in a metric CRS), so neighbours keep sharing their edges and no gaps open;
  the tolerance follows the layer's extent (about a screen pixel when the
  whole layer is in view). Coordinates are then rounded to 1e-6 degrees
  (~0.1 m) to halve the size of the page.
- Inline GeoJSON is for up to ``max_features`` polygons (a district's grids).
  A whole city at grid level is drawn from the map server's vector tiles
  (``server_url=...``, :class:`folium.plugins.VectorGridProtobuf`); without a
  server URL :func:`grid_map` refuses with a message that says how.

Fonts
-----
The figures use the first installed font with Chinese glyphs
(:func:`cjk_font`: Noto Sans CJK, WenQuanYi Zen Hei / Micro Hei, Source Han
Sans, SimHei, Microsoft YaHei, PingFang). On Debian/Ubuntu:
``apt-get install fonts-wqy-zenhei`` (or ``fonts-noto-cjk``). When none is
installed the figures fall back to English labels, because matplotlib would
otherwise draw empty boxes for every Chinese character; a
:class:`~jngis.errors.JngisWarning` says so once.
"""

from __future__ import annotations

import functools
import html
import json
import math
import numbers
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import branca.utilities
import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from jngis.crs import to_metric
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    JngisWarning,
    NotFoundError,
    ParameterError,
    SchemaError,
)
from jngis.topology import simplify_coverage

__all__ = [
    "LABELS",
    "LAYER_OF_KEY",
    "MAX_FEATURES",
    "grid_map",
    "plan_map",
    "coverage_map",
    "size_figure",
    "plan_figure",
    "grids_figure",
    "plan_to_excel",
    "cjk_font",
]

#: Polygons drawn inline (GeoJSON in the page) at most; beyond, vector tiles.
MAX_FEATURES = 6000
#: Vertices above which a layer is simplified as a coverage before drawing.
SIMPLIFY_ABOVE_VERTICES = 40_000
#: Points above which markers are built in the browser (FastMarkerCluster).
_FAST_CLUSTER_ABOVE = 1000
#: Key columns of the polygon layers, finest first (grids also carry community_code).
KEYS = ("grid_code", "unit_id", "community_code", "street_code", "district_code")
#: Layer name on the map server (``/tiles/{layer}/...``) of each key column.
LAYER_OF_KEY = {"grid_code": "grids", "unit_id": "units", "community_code": "communities",
                "street_code": "streets", "district_code": "districts"}
_LEVEL_ZH = {"grid_code": "网格", "unit_id": "单元", "community_code": "社区", "street_code": "街道",
             "district_code": "区县"}
_CODE_DIGITS = {"community_code": 12, "street_code": 9, "district_code": 6}

#: Chinese labels of the columns shown in legends, tooltips and Excel headings.
LABELS: dict[str, str] = {
    "grid_code": "网格编码", "community_code": "社区编码", "street_code": "街道编码",
    "district_code": "区县编码", "unit_id": "单元编号", "compound_id": "小区编号", "name": "名称",
    "households": "户数", "population": "人口", "grid_type": "网格类型", "units": "单元数",
    "area_m2": "面积 (m²)", "workers_needed": "所需网格员", "grid_leaders": "网格长",
    "full_time_workers": "专职网格员", "part_time_workers": "兼职网格员",
    "enforcement_officers": "执法人员", "orders": "工单总数", "open_orders": "未办结工单",
    "overdue_orders": "超期工单", "warning_orders": "临期工单", "closed_orders": "已办结工单",
    "stations": "服务站", "station_area_m2": "服务用房面积 (m²)", "party_orgs": "党组织",
    "party_members": "党员", "members": "党员数", "status": "状态", "within_bounds": "规模达标",
    "polsby_popper": "紧凑度", "level": "级别", "kind": "类型", "from": "原社区编码",
    "to": "新社区编码", "households_before": "调整前户数", "households_after": "调整后户数",
    "households_in": "迁入户数", "households_out": "迁出户数", "partners": "关联社区",
    "distance_m": "距服务中心 (m)", "band": "距离分档",
}
_STATION_KIND_ZH = {"community_centre": "社区党群服务中心", "grid_station": "网格服务站",
                    "office_tower": "楼宇党群服务中心", "industrial_park": "园区党群服务中心",
                    "business_district": "商圈党群服务中心"}
_LEVEL_VALUE_ZH = {"community": "社区级", "grid": "网格级"}
_ORG_KIND_ZH = {"community_committee": "社区党组织", "grid_branch": "网格党支部", "enterprise": "企业党组织"}
_GRID_TYPE_ZH = {"residential": "居民网格", "dedicated": "专属网格"}
_STATUS_ZH = {"kept": "不变", "adjusted": "边界调整", "split": "拆分", "merged": "合并", "new": "新设",
              "dissolved": "撤销"}
#: Card fields (beyond the key and the mapped column) shown in the tooltip when present.
_CARD = ("name", "community_code", "street_code", "grid_type", "households", "population",
         "workers_needed", "orders", "open_orders", "overdue_orders", "warning_orders", "stations",
         "party_orgs", "party_members")
_MISSING_COLOUR = "#bdbdbd"
_BAND_COLOURS = {"below": "#2c7bb6", "within": "#a6d96a", "above": "#d7191c"}
_MOVED_COLOUR = "#ff7f00"
_DEFAULT_TILES = "OpenStreetMap"


# ---------------------------------------------------------------------------
# checks


def _check_layer(func: str, name: str, gdf: Any, *, kind: str = "polygon",
                 optional: bool = False) -> gpd.GeoDataFrame | None:
    if gdf is None and optional:
        return None
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise InputTypeError(f"{func}: {name} is a {type(gdf).__name__}; expected a GeoDataFrame")
    if gdf.crs is None:
        raise CRSError(f"{func}: {name} has no CRS; expected one (e.g. EPSG:4548 or EPSG:4490), set it "
                       "with .set_crs")
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        rows = list(gdf.index[missing][:5])
        raise GeometryError(f"{func}: {name} has {int(missing.sum())} missing or empty geometries "
                            f"(rows {rows}); expected a geometry on every row")
    types = shapely.get_type_id(geoms)
    wanted = (3, 6) if kind == "polygon" else (0,)
    bad = ~np.isin(types, wanted)
    if bad.any():
        found = sorted(set(gdf.geometry.geom_type[bad]))
        raise GeometryError(f"{func}: {name} has {int(bad.sum())} geometries of type {found} "
                            f"(rows {list(gdf.index[bad][:5])}); expected "
                            f"{'(Multi)Polygons' if kind == 'polygon' else 'Points'}")
    return gdf


def _layer_key(func: str, layer: gpd.GeoDataFrame, key: str | None) -> str:
    if key is not None:
        if not isinstance(key, str) or key not in layer.columns:
            raise NotFoundError(f"{func}: key={key!r} is not a column of the layer; expected one of "
                                f"{[c for c in layer.columns if c != layer.geometry.name]}")
        return key
    for candidate in KEYS:
        if candidate in layer.columns:
            return candidate
    raise SchemaError(f"{func}: the layer has none of the code columns {list(KEYS)} (columns: "
                      f"{[c for c in layer.columns if c != layer.geometry.name]}); expected a layer "
                      "of grids, units, communities, 街道 or districts, or pass key=")


def _check_url(func: str, server_url: Any) -> str | None:
    if server_url is None:
        return None
    if not isinstance(server_url, str) or not server_url.startswith(("http://", "https://", "/")):
        raise ParameterError(f"{func}: server_url={server_url!r}; expected the address of a jngis map "
                             "server, e.g. 'http://localhost:8000'")
    return server_url.rstrip("/")


def _check_positive_int(func: str, name: str, value: Any, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{func}: {name}={value!r}; expected an integer >= {minimum}")
    return int(value)


# ---------------------------------------------------------------------------
# geometry for drawing


def _vertex_count(gdf: gpd.GeoDataFrame) -> int:
    return int(shapely.get_num_coordinates(np.asarray(gdf.geometry.values, dtype=object)).sum())


def _for_drawing(func: str, layer: gpd.GeoDataFrame, simplify: float | None,
                 coverage: bool = True) -> gpd.GeoDataFrame:
    """The layer in EPSG:4326, simplified as a coverage when large, coordinates rounded."""
    if simplify is not None and (isinstance(simplify, bool) or not isinstance(simplify, numbers.Real)
                                 or not math.isfinite(simplify) or simplify < 0):
        raise ParameterError(f"{func}: simplify={simplify!r}; expected None (automatic), 0 (never) or "
                             "a tolerance in metres")
    tolerance = 0.0 if simplify is None else float(simplify)
    metric = None
    if simplify is None and _vertex_count(layer) > SIMPLIFY_ABOVE_VERTICES:
        metric = to_metric(layer)
        xmin, ymin, xmax, ymax = metric.total_bounds
        # about a screen pixel when the whole layer fills ~2000 px
        tolerance = float(np.clip(math.hypot(xmax - xmin, ymax - ymin) / 2000.0, 1.0, 50.0))
    drawn = layer
    if tolerance > 0:
        metric = to_metric(layer) if metric is None else metric
        if coverage:
            drawn = simplify_coverage(metric, tolerance)
        else:
            drawn = metric.copy()
            drawn.geometry = metric.geometry.simplify(tolerance, preserve_topology=True)
    drawn = drawn.to_crs(4326)
    drawn = drawn.set_geometry(gpd.GeoSeries(
        shapely.set_precision(np.asarray(drawn.geometry.values, dtype=object), 1e-6, mode="pointwise"),
        index=drawn.index, crs=drawn.crs))
    return drawn


def _dissolve(layer: gpd.GeoDataFrame, by: pd.Series) -> gpd.GeoDataFrame:
    """Polygons of ``layer`` merged per value of ``by`` (exact coverage union when possible)."""
    frame = gpd.GeoDataFrame({"code": by.to_numpy()}, geometry=layer.geometry.values, crs=layer.crs)
    try:
        return frame.dissolve("code", method="coverage").reset_index()
    except Exception:  # not a valid coverage (overlaps): GEOS' general union  # noqa: BLE001
        return frame.dissolve("code").reset_index()


def _bounds(drawn: gpd.GeoDataFrame) -> list[list[float]]:
    xmin, ymin, xmax, ymax = drawn.total_bounds
    return [[float(ymin), float(xmin)], [float(ymax), float(xmax)]]


def _base_map(drawn: gpd.GeoDataFrame, tiles: str | None, **kwargs) -> folium.Map:
    (s, w), (n, e) = _bounds(drawn)
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], tiles=tiles, control_scale=True, **kwargs)
    m.fit_bounds([[s, w], [n, e]])
    return m


def _json_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns as JSON-safe values (text for codes and times, None for missing)."""
    out = pd.DataFrame(index=frame.index)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values):
            out[column] = values.map({True: "是", False: "否"}).astype(object)
        elif pd.api.types.is_integer_dtype(values):
            out[column] = values.astype(object).where(values.notna(), None)
        elif pd.api.types.is_float_dtype(values):
            out[column] = values.round(3).astype(object).where(values.notna(), None)
        else:
            out[column] = values.astype(object).where(values.notna(), None).map(
                lambda v: v if v is None else str(v))
    return out


# ---------------------------------------------------------------------------
# legend and titles: Leaflet controls, so each side of a DualMap gets its own


class _Control(MacroElement):
    """An HTML box placed on its parent map as a Leaflet control."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>
.jngis-control { background: rgba(255,255,255,0.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.45 "Microsoft YaHei","PingFang SC","Noto Sans CJK SC",
  "WenQuanYi Zen Hei",sans-serif; color: #222; max-width: 260px; }
.jngis-control .jngis-title { font-weight: bold; margin-bottom: 3px; }
.jngis-control i { display: inline-block; width: 14px; height: 11px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid #777; }
</style>
{% endmacro %}
{% macro script(this, kwargs) %}
(function() {
    var control = L.control({position: {{ this.position_js }}});
    control.onAdd = function(map) {
        var div = L.DomUtil.create("div", {{ this.css_js }});
        div.innerHTML = {{ this.html_js }};
        L.DomEvent.disableClickPropagation(div);
        return div;
    };
    control.addTo({{ this._parent.get_name() }});
})();
{% endmacro %}
""")

    def __init__(self, body: str, *, position: str = "bottomright", css_class: str = "jngis-legend") -> None:
        super().__init__()
        self._name = "JngisControl"
        # ensure_ascii=False keeps the Chinese readable in the page; "</" cannot close the script
        self.html_js = json.dumps(body, ensure_ascii=False).replace("</", "<\\/")
        self.position_js = json.dumps(position)
        self.css_js = json.dumps(f"jngis-control {css_class}")


def _legend(title: str, entries: Sequence[tuple[str, str, str]], note: str = "") -> _Control:
    """A legend: ``entries`` are (fill colour, outline colour, text)."""
    rows = "".join(
        f'<div class="jngis-legend-row"><i style="background:{fill};border-color:{edge}"></i>'
        f"{html.escape(text)}</div>" for fill, edge, text in entries)
    foot = f'<div class="jngis-note">{html.escape(note)}</div>' if note else ""
    return _Control(f'<div class="jngis-title">{html.escape(title)}</div>{rows}{foot}')


def _title(text: str) -> _Control:
    return _Control(f'<div class="jngis-title">{html.escape(text)}</div>', position="topright",
                    css_class="jngis-map-title")


def _label(column: str) -> str:
    return LABELS.get(column, column)


# ---------------------------------------------------------------------------
# classes


def _classes(values: pd.Series, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Quantile class breaks (unique, rounded to integers for count data) and each value's class.

    Returns ``(breaks, klass, integer)``: class i holds values in
    ``(breaks[i], breaks[i+1]]`` (the first class also holds ``breaks[0]``);
    missing values get class -1.
    """
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    known = numeric.dropna().to_numpy()
    klass = np.full(len(numeric), -1, dtype=np.int64)
    if len(known) == 0:
        return np.array([]), klass, True
    integer = bool(np.all(np.equal(np.mod(known, 1), 0)))
    breaks = np.quantile(known, np.linspace(0, 1, k + 1))
    if integer:
        breaks = np.round(breaks)
    breaks = np.unique(breaks)
    if len(breaks) == 1:  # every value equal: one class
        breaks = np.array([breaks[0], breaks[0]])
    mask = numeric.notna().to_numpy()
    klass[mask] = np.clip(np.searchsorted(breaks[1:-1], numeric.to_numpy()[mask], side="left"),
                          0, len(breaks) - 2)
    return breaks, klass, integer


def _colours(n: int, scheme: str = "YlOrRd") -> list[str]:
    if n <= 0:
        return []
    palette = branca.utilities.color_brewer(scheme, max(n, 3))
    if n < 3:  # ColorBrewer has no 1- or 2-class series: take the ends of the 3-class one
        palette = [palette[-1]] if n == 1 else [palette[0], palette[-1]]
    return list(palette)


def _class_labels(breaks: np.ndarray, integer: bool) -> list[str]:
    labels = []
    for i in range(len(breaks) - 1):
        low, high = breaks[i], breaks[i + 1]
        if integer:
            start = int(low) if i == 0 else int(low) + 1
            labels.append(f"{start:,}" if start >= int(high) else f"{start:,} – {int(high):,}")
        else:
            labels.append(f"{low:,.4g} – {high:,.4g}")
    return labels


# ---------------------------------------------------------------------------
# markers


def _point_popup(row: Mapping[str, Any], fields: Sequence[str]) -> str:
    parts = []
    for field in fields:
        value = row.get(field)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if field == "kind":
            value = {**_STATION_KIND_ZH, **_ORG_KIND_ZH}.get(value, value)
        elif field == "level":
            value = _LEVEL_VALUE_ZH.get(value, value)
        elif isinstance(value, float):
            value = f"{value:,.0f}"
        parts.append(f"<b>{html.escape(_label(field))}</b>: {html.escape(str(value))}")
    return "<br>".join(parts)


def _cluster(func: str, name: str, points: gpd.GeoDataFrame, *, fields: Sequence[str], colour: str,
             icon: str, show: bool = True) -> folium.plugins.MarkerCluster:
    """Clustered markers; beyond ~1,000 points the markers are built in the browser."""
    wgs = points.to_crs(4326)
    xy = shapely.get_coordinates(np.asarray(wgs.geometry.values, dtype=object))
    records = pd.DataFrame(wgs.drop(columns=wgs.geometry.name)).to_dict("records")
    popups = [_point_popup(row, fields) for row in records]
    if len(wgs) <= _FAST_CLUSTER_ABOVE:
        cluster = folium.plugins.MarkerCluster(name=name, show=show)
        for (lon, lat), popup, row in zip(xy, popups, records):
            folium.Marker([float(lat), float(lon)], popup=folium.Popup(popup, max_width=300),
                          tooltip=str(row.get("name", "")) or None,
                          icon=folium.Icon(color=colour, icon=icon)).add_to(cluster)
        return cluster
    callback = (
        "function (row) {"
        f" var icon = L.AwesomeMarkers.icon({{icon: {json.dumps(icon)}, markerColor: {json.dumps(colour)},"
        " prefix: 'glyphicon'});"
        " var marker = L.marker(new L.LatLng(row[0], row[1]), {icon: icon});"
        " marker.bindPopup(row[2]); return marker; }"
    )
    data = [[round(float(lat), 6), round(float(lon), 6), popup] for (lon, lat), popup in zip(xy, popups)]
    return folium.plugins.FastMarkerCluster(data, callback=callback, name=name, show=show)


_STATION_FIELDS = ("name", "station_id", "level", "kind", "area_m2")
_ORG_FIELDS = ("name", "org_id", "kind", "members")


def _add_points(func: str, m: folium.Map, stations, party_orgs) -> None:
    if stations is not None:
        _cluster(func, f"服务站 stations ({len(stations):,})", stations, fields=_STATION_FIELDS,
                 colour="blue", icon="home").add_to(m)
    if party_orgs is not None:
        _cluster(func, f"党组织 party organisations ({len(party_orgs):,})", party_orgs,
                 fields=_ORG_FIELDS, colour="red", icon="flag").add_to(m)


# ---------------------------------------------------------------------------
# grid_map


def _joined(func: str, layer: gpd.GeoDataFrame, key: str, table: pd.DataFrame | pd.Series | None,
            column: str) -> gpd.GeoDataFrame:
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
    extra = [c for c in table.columns if c not in layer.columns or c == key]
    out = layer.copy()
    codes = out[key].astype(str)
    index = table.index.astype(str)
    if index.has_duplicates:
        raise SchemaError(f"{func}: table has repeated {key} values {list(index[index.duplicated()][:5])}; "
                          "expected one row per code")
    aligned = table[extra].set_axis(index).reindex(codes)
    for column in extra:
        out[column] = aligned[column].to_numpy()
    return out


def _outline_levels(key: str) -> list[str]:
    """Enclosing levels to outline: community and 街道, when coarser than the layer itself."""
    mine = KEYS.index(key) if key in KEYS else 0
    return [parent for parent in ("community_code", "street_code") if KEYS.index(parent) > mine]


def _parent_codes(layer: gpd.GeoDataFrame, key: str, parent: str) -> pd.Series | None:
    if parent in layer.columns:
        return layer[parent].astype(str)
    source = layer[key].astype(str) if key in ("grid_code", *_CODE_DIGITS) else None
    if source is None and "community_code" in layer.columns:
        source = layer["community_code"].astype(str)
    if source is None:
        return None
    return source.str[: _CODE_DIGITS[parent]]


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
    tiles: str | None = _DEFAULT_TILES,
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
        Address of a running jngis map server. Layers larger than
        ``max_features`` are then drawn from its vector tiles
        ``{server_url}/tiles/{layer_name}/{z}/{x}/{y}.mvt``.
    layer_name : str, optional
        The server's layer name (default from the key: "grids", "communities"...).
    tiles : str or None
        Base map (a WGS84 tile set; never GCJ-02 consumer-map tiles).
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
    _check_layer(func, "grids", grids)
    _check_layer(func, "stations", stations, kind="point", optional=True)
    _check_layer(func, "party_orgs", party_orgs, kind="point", optional=True)
    classes = _check_positive_int(func, "classes", classes)
    max_features = _check_positive_int(func, "max_features", max_features)
    server_url = _check_url(func, server_url)
    if len(grids) == 0:
        raise ParameterError(f"{func}: grids is empty; expected at least one polygon")
    try:
        _colours(3, scheme)
    except Exception:  # noqa: BLE001 - branca raises a bare ValueError/KeyError for unknown names
        raise ParameterError(f"{func}: scheme={scheme!r}; expected a ColorBrewer sequential scheme such "
                             "as 'YlOrRd', 'Blues', 'Greens', 'PuRd'") from None
    key = _layer_key(func, grids, key)
    layer = _joined(func, grids, key, table, column)
    if not isinstance(column, str) or column not in layer.columns:
        numeric = [c for c in layer.columns if c != layer.geometry.name
                   and pd.api.types.is_numeric_dtype(layer[c])]
        raise NotFoundError(f"{func}: column={column!r} is in neither the table nor the layer; expected "
                            f"one of {numeric}")
    level = _LEVEL_ZH.get(key, key)
    big = len(layer) > max_features
    if big and server_url is None:
        coded = [c for c in ("grid_code", "community_code", "street_code", "district_code") if c in layer.columns]
        example = key if key in coded else (coded[0] if coded else key)
        raise ParameterError(
            f"{func}: {len(layer):,} {LAYER_OF_KEY.get(key, key)} are too many to draw in the notebook "
            f"(max_features={max_features:,}); 全市{level}图层过大, 请使用地图服务器的矢量瓦片. "
            f"Pass server_url='http://localhost:8000' (start the server with `jngis serve`), or select "
            f"one district first, e.g. layer[layer['{example}'].astype(str).str.startswith('370102')]")

    breaks, klass, integer = _classes(layer[column], classes)
    colours = _colours(len(breaks) - 1, scheme)
    fills = np.array([colours[c] if c >= 0 else _MISSING_COLOUR for c in klass], dtype=object)
    counts = np.bincount(klass[klass >= 0], minlength=len(colours)) if len(colours) else np.array([])
    unit = _LEVEL_ZH.get(key, "")
    entries = [(colour, "#777", f"{label}  ({count:,} 个{unit})")
               for colour, label, count in zip(colours, _class_labels(breaks, integer), counts)]
    if (klass < 0).any():
        entries.append((_MISSING_COLOUR, "#777", f"无数据 no data  ({int((klass < 0).sum()):,} 个{unit})"))

    if big:
        m = _tiled_layer(layer, key, column, fills, server_url, layer_name or LAYER_OF_KEY.get(key, key),
                         tiles, level)
    else:
        drawn = _for_drawing(func, layer, simplify)
        m = _base_map(drawn, tiles)
        card = [key] + [c for c in _CARD if c in drawn.columns and c not in (key, column)] + [column]
        props = _json_values(pd.DataFrame(drawn[card]))
        if "grid_type" in props:
            props["grid_type"] = props["grid_type"].map(lambda v: _GRID_TYPE_ZH.get(v, v))
        props["_fill"] = fills
        feature_layer = gpd.GeoDataFrame(props, geometry=drawn.geometry.values, crs=drawn.crs)
        folium.GeoJson(
            feature_layer,
            name=f"{level} {_label(column)}",
            style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": "#555555",
                                      "weight": 0.6, "fillOpacity": 0.7},
            highlight_function=lambda f: {"weight": 2.5, "color": "#000000"},
            tooltip=folium.GeoJsonTooltip(fields=card, aliases=[_label(c) for c in card], localize=True,
                                          sticky=True),
            zoom_on_click=False,
        ).add_to(m)
        if outlines:
            for parent in _outline_levels(key):
                codes = _parent_codes(layer, key, parent)
                if codes is None:
                    continue
                shapes = _dissolve(to_metric(layer), codes)
                shapes = _for_drawing(func, shapes, simplify)
                weight = 1.6 if parent == "community_code" else 2.8
                folium.GeoJson(
                    shapes[["code", "geometry"]].rename(columns={"code": parent}),
                    name=f"{_LEVEL_ZH[parent]}边界 {parent[:-5]} outlines ({len(shapes):,})",
                    style_function=lambda f, w=weight: {"fill": False, "color": "#222222", "weight": w,
                                                        "opacity": 0.9},
                    tooltip=folium.GeoJsonTooltip(fields=[parent], aliases=[_label(parent)]),
                    zoom_on_click=False,
                ).add_to(m)
    _add_points(func, m, stations, party_orgs)
    _legend(f"{_label(column)} ({column})", entries).add_to(m)
    if title:
        _title(title).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _tiled_layer(layer: gpd.GeoDataFrame, key: str, column: str, fills: np.ndarray, server_url: str,
                 name: str, tiles: str | None, level: str) -> folium.Map:
    """A map whose polygons come from the server's vector tiles, coloured by code in the browser."""
    centre = gpd.GeoSeries([shapely.box(*layer.total_bounds)], crs=layer.crs).to_crs(4326)
    m = _base_map(gpd.GeoDataFrame(geometry=centre), tiles)
    colour_of = dict(zip(layer[key].astype(str), fills.tolist()))
    style = (
        "function (properties, zoom) {"
        f" var fill = COLOURS[String(properties[{json.dumps(key)}])] || {json.dumps(_MISSING_COLOUR)};"
        " return {fill: true, fillColor: fill, fillOpacity: 0.7, color: '#555555', weight: 0.5}; }"
    )
    options = (
        "{\n"
        f'"vectorTileLayerStyles": {{{json.dumps(name)}: (function () {{ var COLOURS = '
        f"{json.dumps(colour_of)}; return {style}; }})()}},\n"
        '"interactive": true, "maxNativeZoom": 16, "attribution": "jngis"\n}'
    )
    url = f"{server_url}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt"
    folium.plugins.VectorGridProtobuf(url, f"{level} {_label(column)} (vector tiles)", options).add_to(m)
    return m


# ---------------------------------------------------------------------------
# plan_map


def _band(households: pd.Series, low: int, high: int) -> np.ndarray:
    values = households.to_numpy()
    return np.where(values < low, "below", np.where(values > high, "above", "within"))


def _band_text(low: int, high: int) -> dict[str, str]:
    return {"below": f"低于下限 (< {low:,} 户)", "within": f"规模达标 ({low:,}–{high:,} 户)",
            "above": f"超过上限 (> {high:,} 户)"}


def _community_layer(name: str, shapes: gpd.GeoDataFrame, low: int, high: int, fields: Sequence[str],
                     show: bool = True) -> folium.GeoJson:
    props = _json_values(pd.DataFrame(shapes[list(fields)]))
    if "status" in props:
        props["status"] = props["status"].map(lambda v: f"{_STATUS_ZH.get(v, v)} {v}" if v else v)
    props["_fill"] = [_BAND_COLOURS[b] for b in _band(shapes["households"], low, high)]
    return folium.GeoJson(
        gpd.GeoDataFrame(props, geometry=shapes.geometry.values, crs=shapes.crs),
        name=name, show=show,
        style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": "#333333", "weight": 1.0,
                                  "fillOpacity": 0.45},
        highlight_function=lambda f: {"weight": 3, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(fields=list(fields), aliases=[_label(c) for c in fields], localize=True),
        zoom_on_click=False,
    )


def _out_of_bounds_markers(name: str, shapes: gpd.GeoDataFrame, low: int, high: int) -> folium.FeatureGroup:
    group = folium.FeatureGroup(name=name)
    bands = _band(shapes["households"], low, high)
    points = shapely.point_on_surface(np.asarray(shapes.geometry.values, dtype=object))
    for point, band, code, households in zip(points, bands, shapes["community_code"], shapes["households"]):
        if band == "within":
            continue
        text = f"社区 {code}: {int(households):,} 户, {_band_text(low, high)[band]}"
        folium.Marker([point.y, point.x], tooltip=text,
                      icon=folium.Icon(color="red" if band == "above" else "blue",
                                       icon="exclamation-sign")).add_to(group)
    return group


def _check_plan(func: str, plan: Any) -> None:
    needed = ("assignment", "communities", "moves", "changes", "metrics", "min_households", "max_households")
    if not all(hasattr(plan, name) for name in needed):
        raise InputTypeError(f"{func}: plan is a {type(plan).__name__}; expected a RebalancePlan "
                             "(from jngis.rebalance)")


def plan_map(
    plan: Any,
    units: gpd.GeoDataFrame,
    *,
    community: str = "community_code",
    unit_id: str = "unit_id",
    simplify: float | None = None,
    tiles: str | None = _DEFAULT_TILES,
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
    tiles : str or None
        Base map of both sides.

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
    _check_plan(func, plan)
    _check_layer(func, "units", units)
    for name, column in (("community", community), ("unit_id", unit_id)):
        if column not in units.columns:
            raise NotFoundError(f"{func}: {name}={column!r} is not a column of units; expected one of "
                                f"{[c for c in units.columns if c != units.geometry.name]}")
    ids = units[unit_id]
    missing = ~plan.assignment.index.isin(ids)
    if missing.any():
        raise SchemaError(f"{func}: {int(missing.sum())} units of the plan are not in units (e.g. "
                          f"{list(plan.assignment.index[missing][:5])}); expected the units the plan was "
                          "made from")
    low, high = int(plan.min_households), int(plan.max_households)
    metric = to_metric(units)
    before = _dissolve(metric, metric[community].astype(str)).rename(columns={"code": "community_code"})
    households = metric.groupby(metric[community].astype(str))["households"].sum()
    before["households"] = before["community_code"].map(households).astype(int).to_numpy()
    after = plan.communities.copy()
    after = to_metric(after)
    moved_ids = pd.Index(plan.moves["unit_id"])
    moved = metric[ids.isin(moved_ids).to_numpy()][[unit_id, "geometry"]]
    moves = plan.moves.set_index("unit_id")
    moved = moved.assign(**{"from": moved[unit_id].map(moves["from"]).astype(str).to_numpy(),
                            "to": moved[unit_id].map(moves["to"]).astype(str).to_numpy(),
                            "households": moved[unit_id].map(moves["households"]).to_numpy()})

    before_drawn = _for_drawing(func, before, simplify)
    after_drawn = _for_drawing(func, after, simplify)
    moved_drawn = _for_drawing(func, moved, simplify, coverage=False) if len(moved) else moved.to_crs(4326)

    (s, w), (n, e) = _bounds(pd.concat([before_drawn[["geometry"]], after_drawn[["geometry"]]]))
    m = folium.plugins.DualMap(location=[(s + n) / 2, (w + e) / 2], tiles=tiles, layout="horizontal",
                               control_scale=True)
    m.fit_bounds([[s, w], [n, e]])
    after_fields = [c for c in ("community_code", "street_code", "households", "status", "units")
                    if c in after_drawn.columns]
    _community_layer(f"调整前社区 before ({len(before_drawn):,})", before_drawn, low, high,
                     ["community_code", "households"]).add_to(m.m1)
    _community_layer(f"调整后社区 after ({len(after_drawn):,})", after_drawn, low, high,
                     after_fields).add_to(m.m2)
    if len(moved_drawn):
        props = _json_values(pd.DataFrame(moved_drawn[[unit_id, "from", "to", "households"]]))
        moved_layer = gpd.GeoDataFrame(props, geometry=moved_drawn.geometry.values, crs=moved_drawn.crs)
        fields = [unit_id, "from", "to", "households"]
        for side in (m.m1, m.m2):
            folium.GeoJson(
                moved_layer, name=f"调整的单元 moved units ({len(moved_layer):,})",
                style_function=lambda f: {"fillColor": _MOVED_COLOUR, "color": _MOVED_COLOUR, "weight": 2.2,
                                          "fillOpacity": 0.25},
                tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[_label(c) for c in fields],
                                              localize=True),
                zoom_on_click=False,
            ).add_to(side)
    _out_of_bounds_markers("未达标社区 out of bounds (before)", before_drawn, low, high).add_to(m.m1)
    _out_of_bounds_markers("未达标社区 out of bounds (after)", after_drawn, low, high).add_to(m.m2)
    text = _band_text(low, high)
    met = plan.metrics
    entries = [(_BAND_COLOURS[b], "#333", text[b]) for b in ("below", "within", "above")]
    entries.append(("transparent", _MOVED_COLOUR, f"调整的单元 moved units ({len(moved):,})"))
    note = (f"调整户数 {int(met.get('moved_households', 0)):,} 户 "
            f"({met.get('moved_share', 0):.1%}); 达标社区 {met.get('within_bounds_before', '?')} → "
            f"{met.get('within_bounds_after', '?')}")
    _title(f"调整前 before: {len(before_drawn):,} 个社区").add_to(m.m1)
    _title(f"调整后 after: {len(after_drawn):,} 个社区").add_to(m.m2)
    _legend("社区规模 community size", entries, note).add_to(m.m2)
    folium.LayerControl(collapsed=True).add_to(m)
    return m


# ---------------------------------------------------------------------------
# static figures (matplotlib)

#: Font families with Chinese glyphs, in order of preference.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC",
             "Arial Unicode MS")


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font family with Chinese glyphs, or None.

    Examples
    --------
    >>> cjk_font() is None or isinstance(cjk_font(), str)
    True
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    for attempt in range(2):
        installed = {font.name for font in manager.ttflist}
        for family in CJK_FONTS:
            if family in installed:
                return family
        if attempt == 0:
            # matplotlib's font cache predates fonts installed later (e.g. by apt): add those files
            known = {font.fname for font in manager.ttflist}
            for path in font_manager.findSystemFonts():
                if path not in known:
                    try:
                        manager.addfont(path)
                    except (OSError, RuntimeError, ValueError):  # unreadable font file: skip it
                        continue
    return None


def _text(zh: str, en: str) -> str:
    """Chinese when a CJK font is installed, else the English text (see the module docstring)."""
    return zh if cjk_font() else en


@functools.lru_cache(maxsize=1)
def _warn_no_font() -> None:
    warnings.warn("no font with Chinese glyphs is installed (e.g. apt-get install fonts-wqy-zenhei); "
                  "figures use English labels", JngisWarning, stacklevel=3)


def _new_figure(ncols: int, width: float = 11.0, height: float = 4.2):
    """A figure (not registered with pyplot, so nothing leaks between calls) with a CJK font."""
    from matplotlib.figure import Figure

    family = cjk_font()
    if family is None:
        _warn_no_font()
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes, family


def _households_values(func: str, name: str, values: Any) -> np.ndarray:
    if isinstance(values, (pd.Series, np.ndarray, list, tuple)):
        array = pd.to_numeric(pd.Series(np.asarray(values, dtype=object)), errors="coerce").to_numpy(float)
    else:
        raise InputTypeError(f"{func}: {name} is a {type(values).__name__}; expected a Series or array of "
                             "household counts")
    if len(array) == 0 or np.isnan(array).any() or (array < 0).any():
        raise ParameterError(f"{func}: {name} has {len(array)} values, {int(np.isnan(array).sum())} missing, "
                             f"{int((array < 0).sum())} negative; expected at least one count >= 0 and none "
                             "missing")
    return array


def _set_font(fig, family: str | None) -> None:
    for ax in fig.axes:  # counts of communities / grids are whole numbers
        ax.yaxis.get_major_locator().set_params(integer=True)
    if family is None:
        return
    for text in fig.findobj(lambda artist: hasattr(artist, "set_fontfamily")):
        text.set_fontfamily(family)  # CJK fonts carry Latin glyphs too
        if text.get_fontweight() in ("normal", 400):
            text.set_fontweight(500)  # CJK fonts such as WenQuanYi Zen Hei have only a medium face


def size_figure(
    households: Any,
    after: Any = None,
    *,
    min_households: int = 1000,
    max_households: int = 3000,
    bins: int = 30,
    what: str = "社区",
):
    """Histogram of community (or grid) sizes, before and after a redraw, with the legal band shaded.

    Parameters
    ----------
    households : array-like
        Households per community (today's, or the only one).
    after : array-like, optional
        Households per community after a redraw: a second panel on the same
        bins and scale.
    min_households, max_households : int
        The band to shade; the panel titles count the communities outside it.
    bins : int
        Number of bins.
    what : str
        What is counted, in Chinese (``"社区"``, ``"网格"``), for the labels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = size_figure([800, 1500, 2500, 3600], [1200, 1500, 2500, 2900, 1100])
    >>> len(fig.axes)
    2
    """
    func = "size_figure"
    before = _households_values(func, "households", households)
    later = None if after is None else _households_values(func, "after", after)
    low = _check_positive_int(func, "min_households", min_households, minimum=0)
    high = _check_positive_int(func, "max_households", max_households, minimum=1)
    if low >= high:
        raise ParameterError(f"{func}: min_households={low} >= max_households={high}; expected min < max")
    bins = _check_positive_int(func, "bins", bins)
    what_en = {"社区": "communities", "网格": "grids"}.get(what, "areas")
    panels = [(before, _text(f"调整前 ({len(before):,} 个{what})", f"before ({len(before):,} {what_en})"))]
    if later is not None:
        panels.append((later, _text(f"调整后 ({len(later):,} 个{what})", f"after ({len(later):,} {what_en})")))
    elif after is None:
        panels[0] = (before, _text(f"{what}规模 ({len(before):,} 个)", f"{what_en} ({len(before):,})"))
    everything = np.concatenate([values for values, _ in panels])
    edges = np.histogram_bin_edges(everything, bins=bins, range=(0, max(everything.max(), high) * 1.02))
    fig, axes, family = _new_figure(len(panels))
    top = 0
    for ax, (values, heading) in zip(axes, panels):
        below, above = int((values < low).sum()), int((values > high).sum())
        ax.axvspan(low, high, color="#a6d96a", alpha=0.35,
                   label=_text(f"法定范围 {low:,}–{high:,} 户", f"band {low:,}-{high:,} households"))
        counts, _, _ = ax.hist(values, bins=edges, color="#3182bd", edgecolor="white")
        top = max(top, counts.max())
        ax.set_title(f"{heading}\n" + _text(f"低于下限 {below:,}, 超过上限 {above:,}",
                                            f"{below:,} below, {above:,} above"))
        ax.set_xlabel(_text("户数", "households"))
        ax.set_ylabel(_text(f"{what}数", f"number of {what_en}"))
        ax.legend(loc="upper right")
    for ax in axes:
        ax.set_ylim(0, top * 1.1 + 0.5)
    _set_font(fig, family)
    return fig


def plan_figure(plan: Any, *, bins: int = 30):
    """:func:`size_figure` of a rebalance plan: community sizes before and after.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.rebalance import rebalance
    >>> fig = plan_figure(rebalance(load_slice().units))
    >>> len(fig.axes)
    2
    """
    _check_plan("plan_figure", plan)
    changes = plan.changes
    existed = changes[changes["status"] != "new"]
    return size_figure(existed["households_before"].to_numpy(), plan.communities["households"].to_numpy(),
                       min_households=int(plan.min_households), max_households=int(plan.max_households),
                       bins=bins)


def grids_figure(grids: gpd.GeoDataFrame, *, min_households: int = 300, max_households: int = 500):
    """Grids per community and households per residential grid (with the target band shaded).

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.grids import make_grids
    >>> city = load_slice()
    >>> fig = grids_figure(make_grids(city.communities, city.units))
    >>> len(fig.axes)
    2
    """
    func = "grids_figure"
    _check_layer(func, "grids", grids)
    for column in ("grid_code", "households"):
        if column not in grids.columns:
            raise SchemaError(f"{func}: grids has no {column!r} column; expected a grids layer "
                              "(jngis.make_grids)")
    low = _check_positive_int(func, "min_households", min_households, minimum=0)
    high = _check_positive_int(func, "max_households", max_households, minimum=1)
    community = (grids["community_code"] if "community_code" in grids.columns
                 else grids["grid_code"].astype(str).str[:12])
    per_community = community.value_counts()
    residential = grids[grids["grid_type"] == "residential"] if "grid_type" in grids.columns else grids
    households = residential["households"].to_numpy(float)
    fig, axes, family = _new_figure(2)
    counts = per_community.value_counts().sort_index()
    axes[0].bar(counts.index, counts.to_numpy(), color="#3182bd", width=0.8)
    axes[0].set_title(_text(f"每个社区的网格数 ({len(per_community):,} 个社区, {len(grids):,} 个网格)",
                            f"grids per community ({len(per_community):,} communities, {len(grids):,} grids)"))
    axes[0].set_xlabel(_text("网格数", "grids"))
    axes[0].set_ylabel(_text("社区数", "communities"))
    axes[0].xaxis.get_major_locator().set_params(integer=True)
    within = float(((households >= low) & (households <= high)).mean()) if len(households) else float("nan")
    axes[1].axvspan(low, high, color="#a6d96a", alpha=0.35,
                    label=_text(f"目标 {low:,}–{high:,} 户", f"target {low:,}-{high:,} households"))
    if len(households):
        axes[1].hist(households, bins=30, color="#3182bd", edgecolor="white")
    axes[1].set_title(_text(f"居民网格户数 (达标 {within:.0%})", f"households per residential grid "
                                                              f"({within:.0%} within)"))
    axes[1].set_xlabel(_text("户数", "households"))
    axes[1].set_ylabel(_text("网格数", "grids"))
    axes[1].legend(loc="upper right")
    _set_font(fig, family)
    return fig


# ---------------------------------------------------------------------------
# Excel export of a plan

_MOVE_HEADINGS = {"unit_id": "单元编号", "households": "户数", "from": "原社区编码", "to": "新社区编码",
                  "street_code": "街道编码"}
_CHANGE_HEADINGS = {"community_code": "社区编码", "street_code": "街道编码", "status": "调整类型",
                    "households_before": "调整前户数", "households_after": "调整后户数",
                    "households_in": "迁入户数", "households_out": "迁出户数", "partners": "关联社区"}
_METRIC_ZH = {
    "communities_before": "调整前社区数", "communities_after": "调整后社区数",
    "within_bounds_before": "调整前达标社区数", "within_bounds_after": "调整后达标社区数",
    "within_bounds_share_before": "调整前达标比例", "within_bounds_share_after": "调整后达标比例",
    "above_max_before": "调整前超过上限", "above_max_after": "调整后超过上限",
    "below_min_before": "调整前低于下限", "below_min_after": "调整后低于下限",
    "moved_households": "调整户数", "moved_share": "调整户数占比", "lower_bound": "调整户数下界",
    "moved_over_lower_bound": "调整户数/下界", "mean_polsby_popper_before": "调整前平均紧凑度",
    "mean_polsby_popper_after": "调整后平均紧凑度", "contiguous_share_after": "调整后连通比例",
    "infeasible_streets": "无法达标街道数", "contiguous_share_before": "调整前连通比例",
    "min_households_before": "调整前最小户数", "min_households_after": "调整后最小户数",
    "median_households_before": "调整前户数中位数", "median_households_after": "调整后户数中位数",
    "max_households_before": "调整前最大户数", "max_households_after": "调整后最大户数",
    "stations_norm_met_before": "调整前服务用房达标社区数", "stations_norm_met_after": "调整后服务用房达标社区数", "islands": "孤岛单元数", "seconds": "计算用时 (秒)",
}
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _sheet_name(text: str, taken: set[str]) -> str:
    name = str(text).translate(_SHEET_FORBIDDEN)[:31] or "sheet"
    base, i = name, 2
    while name in taken:
        name = f"{base[:27]}_{i}"
        i += 1
    taken.add(name)
    return name


def plan_to_excel(plan: Any, path: str | os.PathLike, *, street_names: Mapping[str, str] | None = None) -> Path:
    """Write a rebalance plan's change list as an Excel workbook for the officials who approve it.

    Sheets (Chinese headings): ``汇总`` (the bounds and the plan's measures),
    ``各街道`` (per 街道: units and households moved), ``社区变更`` (every old or new
    community: status, households before / after, in / out), then one sheet
    per 街道 with a move, listing every unit that changes community
    (单元编号, 户数, 原社区编码, 新社区编码, 街道编码); ``无法达标街道`` when some
    街道 cannot be brought within the bounds. The 街道 sheets together
    hold every row of ``plan.moves``.

    Parameters
    ----------
    plan : RebalancePlan
        From :func:`jngis.rebalance.rebalance`.
    path : str or os.PathLike
        The ``.xlsx`` file to write (overwritten).
    street_names : mapping, optional
        街道 code -> name, used in the sheet names (e.g. from ``city.streets``).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from jngis.sample import load_slice
    >>> from jngis.rebalance import rebalance
    >>> plan = rebalance(load_slice().units)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plan_to_excel(plan, f"{folder}/plan.xlsx")
    ...     sheets = pd.read_excel(path, sheet_name=None)
    >>> list(sheets)[:3], sum(len(s) for n, s in sheets.items() if n.startswith("370")) == len(plan.moves)
    (['汇总', '各街道', '社区变更'], True)
    """
    func = "plan_to_excel"
    _check_plan(func, plan)
    if not isinstance(path, (str, os.PathLike)):
        raise InputTypeError(f"{func}: path is a {type(path).__name__}; expected a file path")
    path = Path(path)
    if path.suffix.lower() != ".xlsx":
        raise ParameterError(f"{func}: path={str(path)!r}; expected a file name ending in .xlsx")
    if not path.parent.is_dir():
        raise NotFoundError(f"{func}: the folder {str(path.parent)!r} does not exist; expected an existing "
                            "folder")
    if street_names is not None and not isinstance(street_names, Mapping):
        raise InputTypeError(f"{func}: street_names is a {type(street_names).__name__}; expected a mapping "
                             "of 街道 code -> name or None")
    names = {str(k): str(v) for k, v in (street_names or {}).items()}
    moves = plan.moves.copy()
    if "street_code" not in moves.columns:
        moves["street_code"] = moves["from"].astype(str).str[:9]
    moves = moves.sort_values(["street_code", "from", "to", "unit_id"], kind="stable")
    metrics = [(_METRIC_ZH.get(k, k), k, v) for k, v in plan.metrics.items()
               if isinstance(v, (numbers.Number, str, bool, np.bool_))]
    summary = pd.DataFrame(metrics, columns=["指标", "metric", "数值"])
    bounds = pd.DataFrame([("户数下限", "min_households", int(plan.min_households)),
                           ("户数上限", "max_households", int(plan.max_households))],
                          columns=["指标", "metric", "数值"])
    summary = pd.concat([bounds, summary], ignore_index=True)
    per_street = (moves.groupby("street_code").agg(units=("unit_id", "size"), households=("households", "sum"))
                  .reset_index())
    per_street.insert(1, "name", [names.get(str(code), "") for code in per_street["street_code"]])
    per_street.columns = ["街道编码", "街道名称", "调整单元数", "调整户数"]
    changes = plan.changes.copy()
    changes["status"] = changes["status"].map(lambda v: f"{_STATUS_ZH.get(v, v)} ({v})")
    changes = changes[[c for c in _CHANGE_HEADINGS if c in changes.columns]].rename(columns=_CHANGE_HEADINGS)
    infeasible = getattr(plan, "infeasible", None)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        taken: set[str] = set()
        summary_sheet = _sheet_name("汇总", taken)
        summary.to_excel(writer, sheet_name=summary_sheet, index=False)
        per_street.to_excel(writer, sheet_name=_sheet_name("各街道", taken), index=False)
        changes.to_excel(writer, sheet_name=_sheet_name("社区变更", taken), index=False)
        if infeasible is not None and len(infeasible):
            table = infeasible.rename(columns={"street_code": "街道编码", "reason_zh": "原因",
                                               "reason": "reason", "communities": "未达标社区"})
            table.to_excel(writer, sheet_name=_sheet_name("无法达标街道", taken), index=False)
        for street, rows in moves.groupby("street_code", sort=True):
            title = f"{street} {names[street]}" if street in names else str(street)
            table = rows[[c for c in _MOVE_HEADINGS if c in rows.columns]].rename(columns=_MOVE_HEADINGS)
            table.to_excel(writer, sheet_name=_sheet_name(title, taken), index=False)
        for sheet in writer.book.worksheets:
            sheet.freeze_panes = "A2"
            for column in sheet.columns:
                width = max(len(str(cell.value or "")) for cell in column)
                sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width * 1.6))
    return path


# ---------------------------------------------------------------------------
# coverage_map

_DISTANCE_COLOURS = ("#1a9641", "#a6d96a", "#fdae61", "#d7191c")


def coverage_map(
    coverage: Any,
    units: gpd.GeoDataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    suggested: gpd.GeoDataFrame | None = None,
    radii: Sequence[float] | None = None,
    simplify: float | None = None,
    tiles: str | None = _DEFAULT_TILES,
    title: str | None = None,
) -> folium.Map:
    """Households by distance to the nearest service centre (5/10/15-minute life circles).

    The blocks are coloured by distance band (≤300 m, 300–500 m, 500–1000 m,
    >1000 m by default; the radii of the coverage), merged per community and
    band so a whole district stays light; the legend gives the households
    in each band. Stations and suggested new sites (with their radius) are
    drawn on top.

    Parameters
    ----------
    coverage : jngis.stats.Coverage
        From :func:`jngis.stats.coverage` (its ``units`` table: ``to_station_m``
        and ``households`` per ``unit_id``).
    units : geopandas.GeoDataFrame
        The units the coverage was computed for (``unit_id``, geometry).
    stations : geopandas.GeoDataFrame, optional
        Existing stations, as clustered markers.
    suggested : geopandas.GeoDataFrame, optional
        Sites from :func:`jngis.stats.suggest_sites` (``rank``,
        ``new_households``): numbered markers and a circle of ``radii[1]``
        (500 m by default) each.
    radii : sequence of float, optional
        Band limits in metres (default: the ``within_<r>m`` columns of the
        coverage, else 300 / 500 / 1000).
    simplify : float, optional
        Coverage simplification tolerance in metres (None: automatic).
    tiles : str or None
        Base map.
    title : str, optional
        Title shown on the map.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.stats import coverage
    >>> city = load_slice()
    >>> m = coverage_map(coverage(city.units, city.stations), city.units, stations=city.stations)
    >>> "距服务中心" in m.get_root().render()
    True
    """
    func = "coverage_map"
    table = getattr(coverage, "units", None)
    if not isinstance(table, pd.DataFrame) or not {"to_station_m", "households"} <= set(table.columns):
        raise InputTypeError(f"{func}: coverage is a {type(coverage).__name__}; expected the result of "
                             "jngis.stats.coverage (with a units table holding to_station_m and households)")
    _check_layer(func, "units", units)
    _check_layer(func, "stations", stations, kind="point", optional=True)
    _check_layer(func, "suggested", suggested, kind="point", optional=True)
    if "unit_id" not in units.columns:
        raise SchemaError(f"{func}: units has no 'unit_id' column; expected the units the coverage was "
                          "computed for")
    if radii is None:
        found = sorted(float(c[len("within_"):-1]) for c in table.columns
                       if c.startswith("within_") and c.endswith("m"))
        radii = found or [300.0, 500.0, 1000.0]
    if isinstance(radii, (str, bytes)) or not isinstance(radii, Iterable):
        raise ParameterError(f"{func}: radii={radii!r}; expected a sequence of distances in metres")
    limits = [float(r) for r in radii]
    if not limits or len(limits) > 3 or any(not math.isfinite(r) or r <= 0 for r in limits) \
            or sorted(set(limits)) != limits:
        raise ParameterError(f"{func}: radii={radii!r}; expected 1 to 3 increasing positive distances in metres")
    distance = table["to_station_m"].reindex(units["unit_id"].to_numpy())
    if distance.index.isna().any() or table.index.difference(units["unit_id"]).size:
        missing = table.index.difference(units["unit_id"])
        raise SchemaError(f"{func}: {len(missing)} units of the coverage are not in units (e.g. "
                          f"{list(missing[:5])}); expected the units the coverage was computed for")
    households = table["households"].reindex(units["unit_id"].to_numpy()).fillna(0).to_numpy()
    values = distance.to_numpy(float)
    band = np.full(len(values), len(limits) + 1, dtype=np.int64)  # no station at all
    known = np.isfinite(values)
    band[known] = np.searchsorted(np.array(limits), values[known], side="left")
    labels = []
    for i in range(len(limits) + 1):
        if i == 0:
            labels.append(f"≤ {limits[0]:,.0f} m")
        elif i < len(limits):
            labels.append(f"{limits[i - 1]:,.0f}–{limits[i]:,.0f} m")
        else:
            labels.append(f"> {limits[-1]:,.0f} m")
    labels.append("无服务中心 no station")
    colours = list(_DISTANCE_COLOURS[: len(limits)]) + [_DISTANCE_COLOURS[-1], _MISSING_COLOUR]

    metric = to_metric(units)
    community = (units["community_code"].astype(str).to_numpy() if "community_code" in units.columns
                 else np.full(len(units), ""))
    group = pd.Series([f"{c}|{b}" for c, b in zip(community, band)], index=units.index)
    shapes = _dissolve(metric, group)
    parts = shapes["code"].str.split("|", expand=True)
    by_group = pd.Series(households, index=group.to_numpy()).groupby(level=0).sum()
    shapes["community_code"] = parts[0].to_numpy()
    shapes["band"] = [labels[int(b)] for b in parts[1]]
    shapes["households"] = shapes["code"].map(by_group).astype(int).to_numpy()
    shapes["_fill"] = [colours[int(b)] for b in parts[1]]
    drawn = _for_drawing(func, shapes, simplify, coverage=False)
    m = _base_map(drawn, tiles)
    fields = ["community_code", "band", "households"]
    props = _json_values(pd.DataFrame(drawn[fields]))
    props["_fill"] = drawn["_fill"].to_numpy()
    folium.GeoJson(
        gpd.GeoDataFrame(props, geometry=drawn.geometry.values, crs=drawn.crs),
        name=f"距服务中心距离 distance to a service centre ({len(units):,} 单元)",
        style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": f["properties"]["_fill"],
                                  "weight": 0.4, "fillOpacity": 0.65},
        tooltip=folium.GeoJsonTooltip(fields=fields, aliases=[_label(c) for c in fields], localize=True),
        zoom_on_click=False,
    ).add_to(m)
    totals = np.bincount(band, weights=households, minlength=len(labels))
    everyone = max(float(totals.sum()), 1.0)
    entries = [(colour, "#777", f"{label}: {int(total):,} 户 ({total / everyone:.0%})")
               for colour, label, total in zip(colours, labels, totals) if total > 0 or label != labels[-1]]
    if stations is not None:
        _cluster(func, f"服务站 stations ({len(stations):,})", stations, fields=_STATION_FIELDS,
                 colour="blue", icon="home").add_to(m)
    if suggested is not None:
        radius = limits[1] if len(limits) > 1 else limits[0]
        group_layer = folium.FeatureGroup(name=f"建议新址 suggested sites ({len(suggested):,})")
        wgs = suggested.to_crs(4326)
        xy = shapely.get_coordinates(np.asarray(wgs.geometry.values, dtype=object))
        ranks = wgs["rank"].to_numpy() if "rank" in wgs.columns else np.arange(1, len(wgs) + 1)
        gains = wgs["new_households"].to_numpy() if "new_households" in wgs.columns else [None] * len(wgs)
        for (lon, lat), rank, gain in zip(xy, ranks, gains):
            text = f"建议新址 #{int(rank)}" + (f": 新覆盖 {int(gain):,} 户" if gain is not None else "")
            folium.Circle([float(lat), float(lon)], radius=radius, color="#6a3d9a", weight=1.5,
                          fill=False, dash_array="6 4").add_to(group_layer)
            folium.Marker([float(lat), float(lon)], tooltip=text,
                          icon=folium.Icon(color="purple", icon="star")).add_to(group_layer)
        group_layer.add_to(m)
        entries.append(("transparent", "#6a3d9a", f"建议新址及 {radius:,.0f} m 范围 suggested sites"))
    _legend("距服务中心 distance to a service centre", entries).add_to(m)
    if title:
        _title(title).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
