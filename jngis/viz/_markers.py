"""Stations, party organisations and other points as clustered markers with a Chinese card."""

from __future__ import annotations

import html
import json
import math
from typing import Any, Mapping, Sequence

import folium
import folium.plugins
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.codes import label, value_label

#: Points above which markers are built in the browser (FastMarkerCluster).
FAST_CLUSTER_ABOVE = 1000
STATION_FIELDS = ("name", "station_id", "level", "kind", "area_m2")
ORG_FIELDS = ("name", "org_id", "kind", "members")


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


def _fast_cluster(name: str, xy: np.ndarray, popups: list[str], colour: str, icon: str,
                  show: bool) -> folium.plugins.FastMarkerCluster:
    callback = (
        "function (row) {"
        f" var icon = L.AwesomeMarkers.icon({{icon: {json.dumps(icon)}, markerColor: {json.dumps(colour)},"
        " prefix: 'glyphicon'});"
        " var marker = L.marker(new L.LatLng(row[0], row[1]), {icon: icon});"
        " marker.bindPopup(row[2]); return marker; }"
    )
    data = [[round(float(lat), 6), round(float(lon), 6), popup] for (lon, lat), popup in zip(xy, popups)]
    return folium.plugins.FastMarkerCluster(data, callback=callback, name=name, show=show)


def cluster(name: str, points: gpd.GeoDataFrame, *, fields: Sequence[str], colour: str, icon: str,
            show: bool = True) -> folium.plugins.MarkerCluster:
    """Clustered markers with a popup card; beyond ~1,000 points the markers are built in the browser."""
    xy = lon_lat(points)
    records = pd.DataFrame(points.drop(columns=points.geometry.name)).to_dict("records")
    popups = [_popup(row, fields) for row in records]
    if len(points) > FAST_CLUSTER_ABOVE:
        return _fast_cluster(name, xy, popups, colour, icon, show)
    markers = folium.plugins.MarkerCluster(name=name, show=show)
    for (lon, lat), popup, row in zip(xy, popups, records):
        folium.Marker([float(lat), float(lon)], popup=folium.Popup(popup, max_width=300),
                      tooltip=str(row.get("name", "")) or None,
                      icon=folium.Icon(color=colour, icon=icon)).add_to(markers)
    return markers


def station_markers(stations: gpd.GeoDataFrame) -> folium.plugins.MarkerCluster:
    """Service stations as blue markers."""
    return cluster(f"服务站 stations ({len(stations):,})", stations, fields=STATION_FIELDS, colour="blue",
                   icon="home")


def add_points(m: folium.Map, stations: gpd.GeoDataFrame | None, party_orgs: gpd.GeoDataFrame | None) -> None:
    """Add the stations and party organisations given (None: not drawn) to ``m``."""
    if stations is not None:
        station_markers(stations).add_to(m)
    if party_orgs is not None:
        cluster(f"党组织 party organisations ({len(party_orgs):,})", party_orgs, fields=ORG_FIELDS,
                colour="red", icon="flag").add_to(m)
