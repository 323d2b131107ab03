"""Folium map of households by distance to the nearest service centre: :func:`coverage_map`."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.crs import to_metric
from jngis.errors import InputTypeError, ParameterError, SchemaError
from jngis.viz import _context, _inputs, _style, basemaps
from jngis.viz._draw import DEFAULT_TILES, dissolve, fill_style, for_drawing, geojson_layer, json_values
from jngis.viz._markers import lon_lat, pin, station_markers
from jngis.viz._style import MISSING_COLOUR, Entry, legend
from jngis.viz.basemaps import Basemap

__all__ = ["coverage_map"]

_DISTANCE_COLOURS = ("#1a9641", "#a6d96a", "#fdae61", "#d7191c")
_SITE_COLOUR = "#6a3d9a"


def _coverage_units(func: str, coverage: Any) -> pd.DataFrame:
    table = getattr(coverage, "units", None)
    if not isinstance(table, pd.DataFrame) or not {"to_station_m", "households"} <= set(table.columns):
        raise InputTypeError(f"{func}: coverage is a {type(coverage).__name__}; expected the result of "
                             "jngis.stats.coverage (with a units table holding to_station_m and households)")
    return table


def _radii(func: str, radii: Any, table: pd.DataFrame) -> list[float]:
    """The band limits in metres: given, else the coverage's ``within_<r>m`` columns, else 300/500/1000."""
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
    return limits


def _unit_distances(func: str, table: pd.DataFrame, units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Distance to the nearest station and households of each row of ``units``."""
    ids = units["unit_id"].to_numpy()
    if units["unit_id"].isna().any():
        raise SchemaError(f"{func}: units has {int(units['unit_id'].isna().sum())} rows without a unit_id; "
                          "expected the units the coverage was computed for")
    missing = table.index.difference(units["unit_id"])
    if missing.size:
        raise SchemaError(f"{func}: {len(missing)} units of the coverage are not in units (e.g. "
                          f"{list(missing[:5])}); expected the units the coverage was computed for")
    distance = table["to_station_m"].reindex(ids).to_numpy(float)
    households = table["households"].reindex(ids).fillna(0).to_numpy()
    return distance, households


class _Bands:
    """Distance bands: ≤ r1, r1–r2, ..., > r_last, and no station at all."""

    def __init__(self, limits: Sequence[float]) -> None:
        self.limits = list(limits)
        self.labels = [f"≤ {limits[0]:,.0f} m"]
        self.labels += [f"{limits[i - 1]:,.0f}–{limits[i]:,.0f} m" for i in range(1, len(limits))]
        self.labels += [f"> {limits[-1]:,.0f} m", "无服务中心 no station"]
        self.colours = list(_DISTANCE_COLOURS[: len(limits)]) + [_DISTANCE_COLOURS[-1], MISSING_COLOUR]

    def of(self, distance: np.ndarray) -> np.ndarray:
        """The band of each distance (NaN: no station)."""
        band = np.full(len(distance), len(self.limits) + 1, dtype=np.int64)
        known = np.isfinite(distance)
        band[known] = np.searchsorted(np.array(self.limits), distance[known], side="left")
        return band

    def entries(self, band: np.ndarray, households: np.ndarray) -> list[Entry]:
        """Legend rows: households in each band (the no-station row only when some are in it)."""
        totals = np.bincount(band, weights=households, minlength=len(self.labels))
        everyone = max(float(totals.sum()), 1.0)
        return [(colour, "#777", f"{text}: {int(total):,} 户 ({total / everyone:.0%})")
                for colour, text, total in zip(self.colours, self.labels, totals)
                if total > 0 or text != self.labels[-1]]


def _band_shapes(units: gpd.GeoDataFrame, band: np.ndarray, households: np.ndarray,
                 bands: _Bands) -> gpd.GeoDataFrame:
    """The units merged per community and band (a whole district stays light), with their households."""
    community = (units["community_code"].astype(str).to_numpy() if "community_code" in units.columns
                 else np.full(len(units), ""))
    group = pd.Series([f"{c}|{b}" for c, b in zip(community, band)], index=units.index)
    shapes = dissolve(to_metric(units), group)
    parts = shapes["code"].str.split("|", expand=True)
    by_group = pd.Series(households, index=group.to_numpy()).groupby(level=0).sum()
    shapes["community_code"] = parts[0].to_numpy()
    shapes["band"] = [bands.labels[int(b)] for b in parts[1]]
    shapes["households"] = shapes["code"].map(by_group).astype(int).to_numpy()
    shapes["_fill"] = [bands.colours[int(b)] for b in parts[1]]
    return shapes


def _band_layer(drawn: gpd.GeoDataFrame, units: int) -> folium.GeoJson:
    fields = ["community_code", "band", "households"]
    props = json_values(pd.DataFrame(drawn[fields]))
    props["_fill"] = drawn["_fill"].to_numpy()
    return geojson_layer(drawn, props, fields=fields, style=fill_style(edge=None, weight=0.4, opacity=0.65),
                         name=f"距服务中心距离 distance to a service centre ({units:,} 单元)")


def _suggested_layer(suggested: gpd.GeoDataFrame, radius: float) -> folium.FeatureGroup:
    """Suggested sites as numbered markers, each with a dashed circle of ``radius`` metres."""
    group = folium.FeatureGroup(name=f"建议新址 suggested sites ({len(suggested):,})")
    ranks = suggested["rank"].to_numpy() if "rank" in suggested.columns else np.arange(1, len(suggested) + 1)
    gains = suggested["new_households"].to_numpy() if "new_households" in suggested.columns \
        else [None] * len(suggested)
    for (lon, lat), rank, gain in zip(lon_lat(suggested), ranks, gains):
        text = f"建议新址 #{int(rank)}" + (f": 新覆盖 {int(gain):,} 户" if gain is not None else "")
        folium.Circle([float(lat), float(lon)], radius=radius, color=_SITE_COLOUR, weight=1.5,
                      fill=False, dash_array="6 4").add_to(group)
        folium.Marker([float(lat), float(lon)], tooltip=text,
                      icon=pin("purple", "★")).add_to(group)
    return group


# long: the numpydoc docstring of 9 parameters; the body is 30 lines of named steps
def coverage_map(
    coverage: Any,
    units: gpd.GeoDataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
    suggested: gpd.GeoDataFrame | None = None,
    radii: Sequence[float] | None = None,
    simplify: float | None = None,
    tiles: str | Basemap | Sequence[Basemap] | None = DEFAULT_TILES,
    server_url: str | None = None,
    names: Any = None,
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
    tiles : str, Basemap, tuple of Basemap or None
        Base map (None: none; see :func:`jngis.viz.grid_map`).
    server_url : str, optional
        A jngis map server whose districts, 街道 and communities are drawn as
        the base (see :func:`jngis.viz.grid_map`).
    names : dict, Series, layer or tuple of them, optional
        Names of the 街道 and communities by code, written on their outlines.
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
    table = _coverage_units(func, coverage)
    _inputs.layer(func, "units", units)
    _inputs.layer(func, "stations", stations, geometry="point", optional=True)
    _inputs.layer(func, "suggested", suggested, geometry="point", optional=True)
    _checks.columns(func, "units", units, ["unit_id"])
    simplify = _inputs.simplify(func, "simplify", simplify)
    server_url = _inputs.server_url(func, "server_url", server_url)
    bases = basemaps.for_map(func, "tiles", tiles, server_url)
    label_names = _inputs.names(func, "names", names)
    bands = _Bands(_radii(func, radii, table))
    distance, households = _unit_distances(func, table, units)
    band = bands.of(distance)
    units, stations, suggested = (basemaps.fit(bases, part) for part in (units, stations, suggested))
    drawn = for_drawing(_band_shapes(units, band, households, bands), simplify, coverage=False)
    m = _context.new_map(drawn, bases, server_url)
    _band_layer(drawn, len(units)).add_to(m)
    outlines = _context.outlines(units, "unit_id", simplify, label_names)
    for outline in outlines:
        outline.layer().add_to(m)
    _context.add_labels(m, [outline.labels for outline in outlines])
    entries = bands.entries(band, households)
    if stations is not None:
        station_markers(stations).add_to(m)
    if suggested is not None:
        radius = bands.limits[1] if len(bands.limits) > 1 else bands.limits[0]
        _suggested_layer(suggested, radius).add_to(m)
        entries.append(("transparent", _SITE_COLOUR, f"建议新址及 {radius:,.0f} m 范围 suggested sites"))
    return _style.finish(m, legend("距服务中心 distance to a service centre", entries), title)
