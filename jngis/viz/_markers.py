"""Stations, party organisations and other points as clustered markers with a Chinese card.

Markers are inline SVG pins with a one-character glyph (站, 党, !, ★) and their
cards plain Leaflet popups, so a map needs neither Font Awesome, Bootstrap's
glyphicons nor jQuery (folium's ``Icon`` and ``Popup`` do): it works offline.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import MacroElement
from folium.template import Template

from jngis.codes import label, value_label

#: Points above which markers are built in the browser (FastMarkerCluster).
FAST_CLUSTER_ABOVE = 1000
STATION_FIELDS = ("name", "station_id", "level", "kind", "area_m2")
ORG_FIELDS = ("name", "org_id", "kind", "members")
#: Pin colours (the awesome-markers palette the maps used before).
COLOURS = {"blue": "#2a81cb", "red": "#cb2b3e", "purple": "#9c2bcb", "green": "#2aad27", "orange": "#cb8427"}
_PIN_SIZE, _PIN_ANCHOR = (26, 34), (13, 33)


def pin_options(colour: str, glyph: str) -> dict[str, Any]:
    """Options of a Leaflet ``divIcon``: an SVG pin of ``colour`` (a name of :data:`COLOURS`) with ``glyph``."""
    fill = COLOURS.get(colour, colour)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_PIN_SIZE[0]}" height="{_PIN_SIZE[1]}" '
           'viewBox="0 0 26 34"><path d="M13 33C13 33 2 20 2 12.5a11 11 0 1 1 22 0C24 20 13 33 13 33z" '
           f'fill="{fill}" stroke="#ffffff" stroke-width="1.5"/><text x="13" y="17" text-anchor="middle" '
           'font-size="12" font-weight="bold" fill="#ffffff" font-family="Microsoft YaHei,PingFang SC,'
           f'Noto Sans CJK SC,WenQuanYi Zen Hei,sans-serif">{html.escape(glyph)}</text></svg>')
    return {"html": svg, "className": "jngis-pin", "iconSize": list(_PIN_SIZE), "iconAnchor": list(_PIN_ANCHOR),
            "popupAnchor": [0, -_PIN_ANCHOR[1] + 4]}


def pin(colour: str, glyph: str) -> folium.DivIcon:
    """A folium icon: the SVG pin of :func:`pin_options`."""
    options = pin_options(colour, glyph)
    return folium.DivIcon(html=options["html"], icon_size=_PIN_SIZE, icon_anchor=_PIN_ANCHOR,
                          popup_anchor=tuple(options["popupAnchor"]), class_name=options["className"])


class Popup(MacroElement):
    """A Leaflet popup holding ``body`` (HTML) on its parent marker, without folium.Popup's jQuery."""

    _template = Template("""
{% macro script(this, kwargs) %}
{{ this._parent.get_name() }}.bindPopup({{ this.body_js }}, {maxWidth: {{ this.max_width }}});
{% endmacro %}
""")

    def __init__(self, body: str, max_width: int = 300) -> None:
        super().__init__()
        self._name = "JngisPopup"
        self.body_js = json.dumps(body, ensure_ascii=False).replace("</", "<\\/")
        self.max_width = int(max_width)


def lon_lat(points: gpd.GeoDataFrame) -> np.ndarray:
    """``(n, 2)`` longitude and latitude of point layer ``points``."""
    return shapely.get_coordinates(np.asarray(points.to_crs(4326).geometry.values, dtype=object))


def _popup(row: Mapping[str, Any], fields: Sequence[str]) -> str:
    parts = []
    for field in fields:
        value = row.get(field)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        value = f"{value:,.0f}" if isinstance(value, float) else value_label(field, value)
        parts.append(f"<b>{html.escape(label(field))}</b>: {html.escape(str(value))}")
    return "<br>".join(parts)


def _fast_cluster(name: str, xy: np.ndarray, popups: list[str], colour: str, glyph: str,
                  show: bool) -> folium.plugins.FastMarkerCluster:
    callback = (
        "function (row) {"
        f" var icon = L.divIcon({json.dumps(pin_options(colour, glyph), ensure_ascii=False)});"
        " var marker = L.marker(new L.LatLng(row[0], row[1]), {icon: icon});"
        " marker.bindPopup(row[2], {maxWidth: 300}); return marker; }"
    )
    data = [[round(float(lat), 6), round(float(lon), 6), popup] for (lon, lat), popup in zip(xy, popups)]
    return folium.plugins.FastMarkerCluster(data, callback=callback, name=name, show=show)


def cluster(name: str, points: gpd.GeoDataFrame, *, fields: Sequence[str], colour: str, glyph: str,
            show: bool = True) -> folium.plugins.MarkerCluster:
    """Clustered markers with a popup card; beyond ~1,000 points the markers are built in the browser."""
    xy = lon_lat(points)
    records = pd.DataFrame(points.drop(columns=points.geometry.name)).to_dict("records")
    popups = [_popup(row, fields) for row in records]
    if len(points) > FAST_CLUSTER_ABOVE:
        return _fast_cluster(name, xy, popups, colour, glyph, show)
    markers = folium.plugins.MarkerCluster(name=name, show=show)
    for (lon, lat), popup, row in zip(xy, popups, records):
        marker = folium.Marker([float(lat), float(lon)], tooltip=str(row.get("name", "")) or None,
                               icon=pin(colour, glyph)).add_to(markers)
        Popup(popup).add_to(marker)
    return markers


def station_markers(stations: gpd.GeoDataFrame) -> folium.plugins.MarkerCluster:
    """Service stations as blue markers."""
    return cluster(f"服务站 stations ({len(stations):,})", stations, fields=STATION_FIELDS, colour="blue",
                   glyph="站")


def add_points(m: folium.Map, stations: gpd.GeoDataFrame | None, party_orgs: gpd.GeoDataFrame | None) -> None:
    """Add the stations and party organisations given (None: not drawn) to ``m``."""
    if stations is not None:
        station_markers(stations).add_to(m)
    if party_orgs is not None:
        cluster(f"党组织 party organisations ({len(party_orgs):,})", party_orgs, fields=ORG_FIELDS,
                colour="red", glyph="党").add_to(m)
