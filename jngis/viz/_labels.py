"""Names of districts, 街道 and communities written on the map, each level from the zoom where it fits.

With no base map the outlines and these names are what a planner finds their
way by (as in the map server's viewer). A level's names show from the zoom at
which its typical polygon is about :data:`LABEL_PIXELS` wide, so a district
view is not buried under community names. The names come from the data (a
label point inside each polygon) or, for the map server's base, from its
``/layers/{kind}/labels`` GeoJSON, read by the browser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from branca.element import MacroElement
from folium.template import Template

#: A level's names show once its typical polygon is this many pixels wide.
LABEL_PIXELS = 70
#: Metres per pixel at zoom 0 on the equator (256-pixel Web Mercator tiles).
_METRES_PER_PIXEL_Z0 = 156543.03392
#: Label zooms of the map server's levels (its layers are a whole city's).
SERVER_MIN_ZOOM = {"districts": 8, "streets": 11, "communities": 13}
_LEVEL_OF_LAYER = {"districts": "district", "streets": "street", "communities": "community"}


def min_zoom(metric: gpd.GeoDataFrame) -> int:
    """The zoom from which the polygons of ``metric`` (a metric CRS) are about :data:`LABEL_PIXELS` wide."""
    areas = shapely.area(np.asarray(metric.geometry.values, dtype=object))
    size = float(np.sqrt(np.median(areas))) if len(areas) else 0.0
    if size <= 0:
        return 0
    lat = float(gpd.GeoSeries([shapely.box(*metric.total_bounds).centroid], crs=metric.crs).to_crs(4326).y[0])
    zoom = math.log2(_METRES_PER_PIXEL_Z0 * math.cos(math.radians(lat)) * LABEL_PIXELS / size)
    return int(np.clip(math.ceil(zoom), 0, 18))


def points(drawn: gpd.GeoDataFrame, codes: Sequence[str], names: Mapping[str, str]) -> list[list[Any]]:
    """``[lat, lon, text]`` of a point inside each polygon of ``drawn`` (EPSG:4326), named or coded."""
    inside = shapely.point_on_surface(np.asarray(drawn.geometry.values, dtype=object))
    return [[round(float(p.y), 6), round(float(p.x), 6), names.get(str(code)) or str(code)]
            for p, code in zip(inside, codes)]


class Labels(MacroElement):
    """Levels of names on the parent map: ``[{"level", "minZoom", "points"}]`` or ``"url"`` (GeoJSON points)."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>
.jngis-label { background: none; border: none; }
.jngis-label span { position: absolute; transform: translate(-50%, -50%); white-space: nowrap;
  pointer-events: none; color: #333; font: 11px/1.2 "Microsoft YaHei","PingFang SC","Noto Sans CJK SC",
  "WenQuanYi Zen Hei",sans-serif; text-shadow: 0 0 2px #fff, 0 0 2px #fff, 0 0 3px #fff, 0 0 4px #fff; }
.jngis-label-district span { font-size: 15px; font-weight: bold; color: #1a1a1a; }
.jngis-label-street span { font-size: 13px; font-weight: bold; color: #333; }
</style>
{% endmacro %}
{% macro script(this, kwargs) %}
(function() {
    var map = {{ this._parent.get_name() }};
    var levels = {{ this.levels_js }};
    function escape(text) {
        return String(text).replace(/[&<>"']/g, function (c) {
            return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]; });
    }
    function group(level) {
        return L.layerGroup(level.points.map(function (p) {
            return new L.Marker([p[0], p[1]], {interactive: false, keyboard: false, icon: L.divIcon({
                className: "jngis-label jngis-label-" + level.level, iconSize: [0, 0],
                html: "<span>" + escape(p[2]) + "</span>"})});
        }));
    }
    function update() {
        var zoom = map.getZoom();
        levels.forEach(function (level) {
            if (!level.group) { return; }
            if (zoom >= level.minZoom) { level.group.addTo(map); } else { level.group.remove(); }
        });
    }
    levels.forEach(function (level) {
        if (!level.url) { level.group = group(level); return; }
        fetch(level.url).then(function (response) { return response.json(); }).then(function (found) {
            level.points = found.features.map(function (f) {
                var xy = f.geometry.coordinates;
                return [xy[1], xy[0], f.properties.name || f.properties.code];
            });
            level.group = group(level);
            update();
        });
    });
    map.on("zoomend", update);
    map.whenReady(update);
})();
{% endmacro %}
""")

    def __init__(self, levels: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self._name = "JngisLabels"
        self.levels = [dict(level) for level in levels]
        # "</" cannot close the script: names are data
        self.levels_js = json.dumps(self.levels, ensure_ascii=False).replace("</", "<\\/")


def server_levels(server_url: str) -> list[dict[str, Any]]:
    """The label levels of the map server's base: each layer's label points, fetched by the browser."""
    return [{"level": _LEVEL_OF_LAYER[layer], "minZoom": zoom, "url": f"{server_url}/layers/{layer}/labels"}
            for layer, zoom in SERVER_MIN_ZOOM.items()]
