"""Geometry and GeoJSON layers for drawing on a folium map (see the drawing rules in :mod:`jngis.viz`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis.codes import label
from jngis.crs import to_metric
from jngis.topology import simplify_coverage, union_coverage

#: Deepest zoom of the maps (building level); the map needs one for Leaflet.markercluster, and with no
#: base map none comes from a tile layer.
MAP_MAX_ZOOM = 19
#: Vertices above which a layer is simplified as a coverage before drawing.
SIMPLIFY_ABOVE_VERTICES = 40_000
#: The default base map: none (planners work offline, and a public map in China shows an approved
#: base map): the outlines and names drawn from the data are the base (see :mod:`jngis.viz.basemaps`).
DEFAULT_TILES = None


def _vertex_count(gdf: gpd.GeoDataFrame) -> int:
    return int(shapely.get_num_coordinates(np.asarray(gdf.geometry.values, dtype=object)).sum())


def _auto_tolerance(metric: gpd.GeoDataFrame) -> float:
    xmin, ymin, xmax, ymax = metric.total_bounds
    # about a screen pixel when the whole layer fills ~2000 px
    return float(np.clip(math.hypot(xmax - xmin, ymax - ymin) / 2000.0, 1.0, 50.0))


def for_drawing(layer: gpd.GeoDataFrame, simplify: float | None, coverage: bool = True) -> gpd.GeoDataFrame:
    """The layer in EPSG:4326, simplified when large (as a coverage unless told not), coordinates rounded.

    ``simplify`` is a tolerance in metres (checked by the caller); None: automatic
    above :data:`SIMPLIFY_ABOVE_VERTICES`; 0: never.
    """
    tolerance = 0.0 if simplify is None else float(simplify)
    metric = None
    if simplify is None and _vertex_count(layer) > SIMPLIFY_ABOVE_VERTICES:
        metric = to_metric(layer)
        tolerance = _auto_tolerance(metric)
    drawn = layer
    if tolerance > 0:
        metric = to_metric(layer) if metric is None else metric
        if coverage:
            drawn = simplify_coverage(metric, tolerance)
        else:
            drawn = metric.copy()
            drawn.geometry = metric.geometry.simplify(tolerance, preserve_topology=True)
    drawn = drawn.to_crs(4326)
    # 1e-6 degrees is ~0.1 m and halves the size of the page
    rounded = shapely.set_precision(np.asarray(drawn.geometry.values, dtype=object), 1e-6, mode="pointwise")
    return drawn.set_geometry(gpd.GeoSeries(rounded, index=drawn.index, crs=drawn.crs))


def dissolve(layer: gpd.GeoDataFrame, by: pd.Series) -> gpd.GeoDataFrame:
    """Polygons of ``layer`` (a metric CRS) merged per value of ``by`` (columns ``code``, geometry), by code.

    The parts of a layer tile each group, so the union is
    :func:`jngis.topology.union_coverage` (exact, with its fallback).
    """
    positions = pd.Series(np.arange(len(layer)), index=by.to_numpy()).groupby(level=0).indices
    geoms = np.asarray(layer.geometry.values, dtype=object)
    codes = sorted(positions)
    shapes = [_without_slivers(union_coverage(geoms[positions[code]])) for code in codes]
    return gpd.GeoDataFrame({"code": codes}, geometry=shapes, crs=layer.crs)


#: Holes smaller than this (m²) in a dissolved outline are slivers between parts that nearly tile.
SLIVER_M2 = 1.0


def _without_slivers(shape: shapely.Geometry) -> shapely.Geometry:
    """``shape`` without its sliver holes, which a map would draw as stray boundary strokes."""
    parts = [shapely.Polygon(p.exterior, [r for r in p.interiors if shapely.Polygon(r).area >= SLIVER_M2])
             for p in getattr(shape, "geoms", [shape]) if isinstance(p, shapely.Polygon)]
    if not parts:
        return shape
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def bounds(drawn: gpd.GeoDataFrame) -> list[list[float]]:
    """``[[south, west], [north, east]]`` of a layer in EPSG:4326, as Leaflet takes them."""
    xmin, ymin, xmax, ymax = drawn.total_bounds
    return [[float(ymin), float(xmin)], [float(ymax), float(xmax)]]


def centre(box: list[list[float]]) -> list[float]:
    """The centre ``[lat, lon]`` of a :func:`bounds` box."""
    (s, w), (n, e) = box
    return [(s + n) / 2, (w + e) / 2]


def base_map(drawn: gpd.GeoDataFrame, **kwargs: Any) -> folium.Map:
    """A folium map with a scale and no tiles, fitted to ``drawn`` (EPSG:4326); base maps are added after."""
    box = bounds(drawn)
    m = folium.Map(location=centre(box), tiles=None, control_scale=True, maxZoom=MAP_MAX_ZOOM, **kwargs)
    m.fit_bounds(box)
    return m


def json_values(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns as JSON-safe values (text for codes and times, 是/否 for flags, None for missing)."""
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


Style = Callable[[dict], dict]


def fill_style(*, edge: str | None, weight: float, opacity: float) -> Style:
    """Leaflet style of features filled with their ``_fill`` property (``edge`` None: outlined in it too)."""
    def style(feature: dict) -> dict:
        fill = feature["properties"]["_fill"]
        return {"fillColor": fill, "color": fill if edge is None else edge, "weight": weight,
                "fillOpacity": opacity}
    return style


def geojson_layer(drawn: gpd.GeoDataFrame, properties: pd.DataFrame, *, name: str, style: Style,
                  fields: Sequence[str], highlight: Style | None = None, show: bool = True) -> folium.GeoJson:
    """An inline GeoJSON overlay: ``drawn``'s geometries, ``properties``, a tooltip of ``fields`` in Chinese."""
    features = gpd.GeoDataFrame(properties, geometry=drawn.geometry.values, crs=drawn.crs)
    return folium.GeoJson(
        features, name=name, show=show, style_function=style, highlight_function=highlight,
        tooltip=folium.GeoJsonTooltip(fields=list(fields), aliases=[label(c) for c in fields], localize=True,
                                      sticky=True),
        zoom_on_click=False,
    )
