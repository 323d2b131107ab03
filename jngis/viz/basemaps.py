"""Base maps of the jngis maps: none by default; the map server's tiles, Tianditu or any XYZ URL on request.

Planners work on an intranet and a public map in China must show an approved
base map, so the maps draw no foreign tiles by default: the district, 街道 and
community outlines and their names, drawn from the data, are the base
(:mod:`jngis.viz._context`). On request, through the ``tiles=`` and
``server_url=`` parameters of every map:

- ``server_url="http://127.0.0.1:8000"``: the jngis map server's own vector
  tiles of the districts, 街道 and communities, with its labels (the server must
  let the page's origin read them: ``JNGIS_CORS_ORIGINS=*`` or the Jupyter
  address, since a saved file or a notebook is not served by it);
- ``tiles=tianditu(tk="...")``: Tianditu (天地图), the national platform's Web
  Mercator (``_w``) layers with their annotation layer; ``tk`` is the key the
  user registered; CGCS2000 equals WGS84 at map accuracy, so no offset;
- ``tiles="https://.../{z}/{x}/{y}.png"`` or a :class:`Basemap`: any XYZ tile
  set, e.g. a city's own tile server on the intranet;
- a GCJ-02 tile set (Amap / 高德, Tencent / 腾讯): declared with
  ``Basemap(url, crs="gcj02")`` the layers are converted to GCJ-02 with
  :func:`jngis.crs.to_gcj02` before drawing so they fit; given as a plain URL
  of those hosts they are converted too, with a
  :class:`~jngis.errors.BasemapCRSWarning`. They are never drawn mixed.
  Baidu tiles (BD-09, a tiling of their own) are refused.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import folium
import geopandas as gpd

from jngis.crs import to_gcj02
from jngis.errors import BasemapCRSWarning, InputTypeError, ParameterError
from jngis.viz._draw import MAP_MAX_ZOOM

__all__ = ["Basemap", "tianditu", "TIANDITU_KINDS"]

#: Hosts of tile sets in GCJ-02 (Amap, Tencent) and in BD-09 (Baidu).
GCJ02_HOSTS = ("autonavi.com", "amap.com", "gtimg.com", "map.qq.com")
BD09_HOSTS = ("baidu.com", "bdimg.com", "bdstatic.com")
#: Tianditu map kinds: (base layer, its annotation layer, name).
TIANDITU_KINDS = {"vec": ("vec", "cva", "矢量"), "img": ("img", "cia", "影像"), "ter": ("ter", "cta", "地形")}
_TIANDITU_URL = ("https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                 "&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}"
                 "&TILECOL={{x}}&tk={tk}")


class Basemap(NamedTuple):
    """A raster tile set drawn under (or, ``overlay=True``, over) the layers.

    Examples
    --------
    >>> Basemap("https://tiles.example.gov.cn/{z}/{x}/{y}.png", "市规划院").crs
    'wgs84'
    """

    url: str
    """XYZ template with ``{z}``, ``{x}``, ``{y}`` (and ``{s}`` for subdomains)."""
    attribution: str
    """Shown at the bottom right (the provider's required credit)."""
    name: str = "底图 basemap"
    """Name in the layer control."""
    crs: str = "wgs84"
    """"wgs84" (also CGCS2000, Web Mercator tiles) or "gcj02" (Amap, Tencent)."""
    subdomains: str = "abc"
    max_zoom: int = 18
    overlay: bool = False
    """An annotation layer drawn above the base (Tianditu's cva_w), switchable."""


def tianditu(tk: str, kind: str = "vec", *, labels: bool = True) -> tuple[Basemap, ...]:
    """Tianditu (天地图) Web Mercator tiles: the base layer and, by default, its annotations.

    Parameters
    ----------
    tk : str
        Your Tianditu key (申请 at the Tianditu developer site, 控制台 → 应用管理;
        a browser-side key of 32 hexadecimal characters).
    kind : {"vec", "img", "ter"}
        矢量 (vector map, with ``cva_w`` annotations), 影像 (imagery, ``cia_w``) or
        地形 (terrain, ``cta_w``).
    labels : bool
        Add the annotation layer (place names) over the layers.

    Returns
    -------
    tuple of Basemap
        Pass it as ``tiles=`` to any jngis map.

    Examples
    --------
    >>> base, notes = tianditu("0123456789abcdef0123456789abcdef")
    >>> "vec_w" in base.url and "cva_w" in notes.url and notes.overlay
    True
    """
    func = "tianditu"
    if not isinstance(tk, str) or not re.fullmatch(r"[0-9A-Za-z]{16,64}", tk):
        raise ParameterError(f"{func}: tk={tk!r}; expected your Tianditu key, e.g. 32 hexadecimal characters "
                             "(from the Tianditu developer console)")
    if kind not in TIANDITU_KINDS:
        raise ParameterError(f"{func}: kind={kind!r}; expected one of {sorted(TIANDITU_KINDS)}")
    base, notes, title = TIANDITU_KINDS[kind]
    credit = "天地图 © 国家地理信息公共服务平台"
    layers = [Basemap(_TIANDITU_URL.format(layer=base, tk=tk), credit, f"天地图{title} Tianditu {base}_w",
                      subdomains="01234567", max_zoom=18)]
    if labels:
        layers.append(Basemap(_TIANDITU_URL.format(layer=notes, tk=tk), credit, f"天地图注记 {notes}_w",
                              subdomains="01234567", max_zoom=18, overlay=True))
    return tuple(layers)


def _host_in(url: str, hosts: Sequence[str]) -> str | None:
    host = urlsplit(url.replace("{s}", "a")).hostname or ""
    return next((known for known in hosts if host == known or host.endswith("." + known)), None)


def _from_url(func: str, name: str, url: str) -> Basemap:
    if not re.match(r"^(https?://|/)", url) or not all(part in url for part in ("{z}", "{x}")) \
            or not ("{y}" in url or "{-y}" in url):
        raise ParameterError(f"{func}: {name}={url!r}; expected None (no base map), an XYZ URL with {{z}}, "
                             "{x} and {y}, jngis.viz.tianditu(tk=...), a Basemap, or a folium tile name")
    gcj = _host_in(url, GCJ02_HOSTS)
    if gcj:
        warnings.warn(f"{func}: {name} is a {gcj} tile set, which is in GCJ-02 (shifted 500-900 m from "
                      "WGS84 in Jinan): the layers are converted with jngis.crs.to_gcj02 to fit it, so "
                      "coordinates read off this map are GCJ-02; declare it with "
                      "Basemap(url, attribution, crs='gcj02') to say so", BasemapCRSWarning, stacklevel=4)
    return Basemap(url, urlsplit(url.replace("{s}", "a")).hostname or url, crs="gcj02" if gcj else "wgs84")


def _checked(func: str, name: str, base: Basemap) -> Basemap:
    if base.crs not in ("wgs84", "gcj02"):
        raise ParameterError(f"{func}: {name} has crs={base.crs!r}; expected 'wgs84' or 'gcj02'")
    if _host_in(base.url, BD09_HOSTS):
        raise ParameterError(f"{func}: {name}={base.url!r} is a Baidu tile set (BD-09, in a tiling of its "
                             "own), which these maps cannot draw on; use Tianditu, the map server or a "
                             "WGS84 / GCJ-02 XYZ tile set")
    gcj = _host_in(base.url, GCJ02_HOSTS)
    if gcj and base.crs == "wgs84":
        warnings.warn(f"{func}: {name} is a {gcj} tile set declared crs='wgs84', but {gcj} tiles are GCJ-02: "
                      "the layers will look 500-900 m off; declare crs='gcj02' to have them converted",
                      BasemapCRSWarning, stacklevel=4)
    return base


def resolve(func: str, name: str, tiles: Any) -> tuple[Basemap, ...]:
    """The base maps asked for by a ``tiles=`` value (None: none), checked."""
    if tiles is None:
        return ()
    if isinstance(tiles, Basemap):
        bases: tuple[Basemap, ...] = (tiles,)
    elif isinstance(tiles, str):
        if tiles.strip().lower() in ("tianditu", "天地图"):
            raise ParameterError(f"{func}: {name}={tiles!r}; Tianditu needs your key: "
                                 "tiles=jngis.viz.tianditu(tk='your key')")
        # a folium / xyzservices name such as "OpenStreetMap" or "CartoDB positron"
        bases = (_from_url(func, name, tiles),) if "{" in tiles else (Basemap(tiles, "", tiles),)
    elif isinstance(tiles, (list, tuple)) and tiles and all(isinstance(t, Basemap) for t in tiles):
        bases = tuple(tiles)
    else:
        raise InputTypeError(f"{func}: {name} is a {type(tiles).__name__}; expected None (no base map), an XYZ "
                             "URL, jngis.viz.tianditu(tk=...), a Basemap or a tuple of them")
    bases = tuple(_checked(func, name, base) for base in bases)
    if len({base.crs for base in bases}) > 1:
        raise ParameterError(f"{func}: {name} mixes base maps in {sorted({b.crs for b in bases})}; expected "
                             "tile sets in one coordinate system")
    return bases


def for_map(func: str, name: str, tiles: Any, server_url: str | None) -> tuple[Basemap, ...]:
    """The base maps of ``tiles=``; a GCJ-02 one only without the server (its tiles cannot be shifted)."""
    bases = resolve(func, name, tiles)
    if gcj02(bases) and server_url is not None:
        raise ParameterError(f"{func}: {name} is a GCJ-02 base map and server_url={server_url!r} is given; the "
                             "server's vector tiles are WGS84 and cannot be shifted to fit: use Tianditu or a "
                             "WGS84 tile set with the server")
    return bases


def gcj02(bases: Sequence[Basemap]) -> bool:
    """Whether the layers must be converted to GCJ-02 to fit the base maps."""
    return any(base.crs == "gcj02" for base in bases)


def fit(bases: Sequence[Basemap], layer: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame | None:
    """``layer`` in the coordinates of the base maps: converted to GCJ-02 for a GCJ-02 base, else unchanged."""
    return to_gcj02(layer) if layer is not None and gcj02(bases) else layer


def add_tiles(m: folium.Map, bases: Sequence[Basemap]) -> None:
    """Add the raster base maps to ``m`` (nothing for none)."""
    for base in bases:
        if "{" not in base.url:  # a folium / xyzservices name
            folium.TileLayer(base.url, name=base.name, overlay=base.overlay).add_to(m)
            continue
        credit = base.attribution + (" | 数据已转换为GCJ-02 layers shifted to GCJ-02" if base.crs == "gcj02"
                                     else "")
        # tiles stretched beyond the set's own deepest zoom, up to the map's
        folium.TileLayer(base.url, attr=credit, name=base.name, overlay=base.overlay,
                         subdomains=base.subdomains, max_zoom=MAP_MAX_ZOOM, max_native_zoom=base.max_zoom
                         ).add_to(m)
