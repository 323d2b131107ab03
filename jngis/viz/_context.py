"""What a map is read against when it has no base map: outlines and names from the data, or the server's.

The enclosing communities, 街道 and (when the layer spans several) districts
are dissolved from the layer's own codes and drawn as outlines; their names
(from ``names=``, else their codes) are written on them, each level from the
zoom where it fits (:mod:`jngis.viz._labels`). With ``server_url=`` the map
server's vector tiles of the districts, 街道 and communities and its labels
are drawn as well, which shows the surroundings of the data too.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import folium
import folium.plugins
import geopandas as gpd
import pandas as pd
from branca.element import MacroElement
from folium.template import Template

from jngis.codes import CODE_DIGITS, LEVEL_LABELS, LEVEL_OF_KEY, LEVELS, parent
from jngis.crs import to_metric
from jngis.viz import _inputs
from jngis.viz._draw import base_map, dissolve, for_drawing, geojson_layer
from jngis.viz._labels import Labels, min_zoom, points, server_levels
from jngis.viz._offline import offline
from jngis.viz.basemaps import Basemap, add_tiles

#: Outline weight of each enclosing level, and its colour.
_OUTLINE_WEIGHTS = {"community_code": 1.6, "street_code": 2.8, "district_code": 4.0}
_OUTLINE_COLOUR = "#222222"
#: The level name ("community") of each key column ("community_code").
_LEVEL_NAME = {lv.key: lv.name for lv in LEVELS}
#: The map server's layers drawn as the base, with their outline weights.
_SERVER_LAYERS = {"communities": 1.0, "streets": 2.2, "districts": 3.2}
#: Leaflet pane of the server's outlines: above the layers' fills (overlayPane is 400), below markers.
OUTLINE_PANE = "jngisOutlines"


def outline_levels(key: str) -> list[str]:
    """Enclosing levels to outline: community, 街道 and district, when coarser than the layer itself."""
    keys = _inputs.KEYS
    mine = keys.index(key) if key in keys else 0
    return [outer for outer in ("community_code", "street_code", "district_code") if keys.index(outer) > mine]


def outer_codes(layer: gpd.GeoDataFrame, key: str, outer: str) -> pd.Series | None:
    """Each polygon's code at the enclosing level ``outer`` (from its column or its own code), or None."""
    if outer in layer.columns:
        return layer[outer].astype(str)
    if key in CODE_DIGITS:
        return parent(layer[key].astype(str), outer)
    finer = next((c for c in ("community_code", "street_code") if c in layer.columns), None)
    return parent(layer[finer].astype(str), outer) if finer else None


class Outline(NamedTuple):
    """One enclosing level dissolved from a layer's codes: its shapes (EPSG:4326) and its names."""

    key: str
    shapes: gpd.GeoDataFrame
    labels: dict[str, Any]

    def layer(self) -> folium.GeoJson:
        """The outlines as a GeoJSON overlay (a new one each call: a side of a DualMap needs its own)."""
        weight = _OUTLINE_WEIGHTS[self.key]
        return geojson_layer(
            self.shapes, self.shapes[["code"]].rename(columns={"code": self.key}), fields=[self.key],
            name=f"{LEVEL_LABELS[self.key]}边界 {LEVEL_OF_KEY[self.key]} outlines ({len(self.shapes):,})",
            style=lambda f: {"fill": False, "color": _OUTLINE_COLOUR, "weight": weight, "opacity": 0.9})


def outlines(layer: gpd.GeoDataFrame, key: str, simplify: float | None, names: Mapping[str, str],
             levels: Sequence[str] | None = None) -> list[Outline]:
    """The enclosing levels (default :func:`outline_levels`), dissolved from the layer's codes, with names.

    A district outline is drawn only when the layer spans several districts
    (around one 街道 it would repeat the 街道's outline).
    """
    found = [(outer, codes) for outer in (outline_levels(key) if levels is None else levels)
             if (codes := outer_codes(layer, key, outer)) is not None
             and (outer != "district_code" or codes.nunique() > 1)]
    metric = to_metric(layer) if found else None
    drawn = []
    for outer, codes in found:
        merged = dissolve(metric, codes)
        shapes = for_drawing(merged, simplify)
        drawn.append(Outline(outer, shapes, label_level(outer, shapes, merged, shapes["code"], names)))
    return drawn


def label_level(key: str, drawn: gpd.GeoDataFrame, metric: gpd.GeoDataFrame, codes: pd.Series,
                names: Mapping[str, str]) -> dict[str, Any]:
    """One level of names: a point in each polygon of ``drawn``, shown from the zoom the polygons fit."""
    return {"level": _LEVEL_NAME.get(key, key), "minZoom": min_zoom(metric),
            "points": points(drawn, codes.astype(str).tolist(), names)}


def own_labels(layer: gpd.GeoDataFrame, drawn: gpd.GeoDataFrame, key: str,
               names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Names on the layer's own polygons when they are communities, 街道 or districts (not grids, units)."""
    if key not in _LEVEL_NAME or key == "grid_code":
        return []
    own = dict(zip(layer[key].astype(str), layer["name"].astype(str))) if "name" in layer.columns else {}
    return [label_level(key, drawn, to_metric(layer), layer[key], {**names, **own})]


def add_labels(m: folium.Map, levels: list[dict[str, Any]]) -> None:
    """Write the label levels (coarsest last, so drawn on top) on ``m``."""
    if levels:
        Labels(levels).add_to(m)


def server_base(m: folium.Map, server_url: str) -> None:
    """The map server's districts, 街道 and communities as outlines (its vector tiles) and its labels."""
    folium.map.CustomPane(OUTLINE_PANE, z_index=450, pointer_events=False).add_to(m)
    for layer, weight in _SERVER_LAYERS.items():
        style = {"fill": False, "color": _OUTLINE_COLOUR, "weight": weight, "opacity": 0.75}
        options = json.dumps({"vectorTileLayerStyles": {layer: style}, "interactive": False,
                              "maxNativeZoom": 16, "pane": OUTLINE_PANE, "attribution": "jngis"})
        title = LEVEL_LABELS[next(lv.key for lv in LEVELS if lv.layer == layer)]
        folium.plugins.VectorGridProtobuf(f"{server_url}/tiles/{layer}/{{z}}/{{x}}/{{y}}.mvt",
                                          f"{title}边界 (地图服务器 map server)", options).add_to(m)
    Labels(server_levels(server_url)).add_to(m)


class Blank(MacroElement):
    """A light page colour where there are no base-map tiles (Leaflet's default grey reads as 'not loaded')."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>.leaflet-container { background: #f7f7f4; }</style>
{% endmacro %}
""")

    def __init__(self) -> None:
        super().__init__()
        self._name = "JngisBlank"


def dress(m: folium.Map, bases: Sequence[Basemap], server_url: str | None) -> None:
    """Add the base of ``m``: the raster base maps asked for (else a blank page), the server's outlines."""
    add_tiles(m, bases)
    if not bases:
        Blank().add_to(m)
    if server_url is not None:
        server_base(m, server_url)


def new_map(drawn: gpd.GeoDataFrame, bases: Sequence[Basemap], server_url: str | None) -> folium.Map:
    """A map fitted to ``drawn`` (EPSG:4326) with its base, that works offline."""
    m = base_map(drawn)
    dress(m, bases, server_url)
    return offline(m)
