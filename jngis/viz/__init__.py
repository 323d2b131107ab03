"""Maps and figures for planners: folium web maps, matplotlib report figures, Excel.

Maps (folium, for Jupyter and for HTML files sent to officials; :mod:`jngis.viz.maps`):

- :func:`grid_map` — a choropleth of any polygon layer with a code column
  (grids, communities, 街道, units) with a Chinese legend, a card per polygon
  as tooltip, stations and party organisations as clustered markers, the
  outlines of the enclosing communities / 街道, and a layer control.
- :func:`plan_map` — a rebalance proposal before / after, side by side.
- :func:`coverage_map` — households far from a service centre.

Every map works with no network (:func:`offline`): Leaflet and its plugins
are installed with jngis (``jngis/_assets/vendor``, versions and licences in
its ``manifest.json``) and written into the page, so ``m.save("map.html")``
gives one file that opens on a machine without internet, and a notebook needs
none either. Base maps (:mod:`jngis.viz.basemaps`): none by default — the
district, 街道 and community outlines and names drawn from the data are the
base; ``server_url=`` for the jngis map server's own tiles, ``tiles=``
:func:`tianditu` (with your key), any XYZ URL or :class:`Basemap`.

Figures (matplotlib, for printed reports; :mod:`jngis.viz.figures`):
:func:`size_figure`, :func:`plan_figure`, :func:`grids_figure`. Export
(openpyxl; :mod:`jngis.viz.excel`): :func:`plan_to_excel`.

Every label shown (legends, cards, tooltips, Excel headings) comes from
:mod:`jngis.codes` (:data:`~jngis.codes.LABELS`, :func:`~jngis.codes.value_label`,
:data:`~jngis.codes.LEVEL_LABELS`), the vocabulary the web viewer uses too;
:data:`LABELS` here is that same dict.

Drawing rules
-------------
- Polygons are drawn in WGS84 (EPSG:4326, what Leaflet expects; CGCS2000
  differs from it by less than a metre), which fits Tianditu and any WGS84 /
  CGCS2000 Web Mercator tiles. Amap / Tencent tiles are GCJ-02, shifted by
  500–900 m in Jinan: on them the layers are drawn converted to GCJ-02
  (:func:`jngis.crs.to_gcj02`), never mixed; Baidu (BD-09) is refused.
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

from jngis.codes import LABELS
from jngis.viz._draw import SIMPLIFY_ABOVE_VERTICES  # noqa: F401 - a constant of the former viz.py
from jngis.viz._inputs import KEYS  # noqa: F401 - a constant of the former viz.py
from jngis.viz._offline import offline
from jngis.viz.basemaps import Basemap, tianditu
from jngis.viz.coverage import coverage_map
from jngis.viz.excel import plan_to_excel
from jngis.viz.figures import CJK_FONTS, cjk_font, grids_figure, plan_figure, size_figure  # noqa: F401
from jngis.viz.maps import LAYER_OF_KEY, MAX_FEATURES, grid_map, plan_map

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
    "offline",
    "Basemap",
    "tianditu",
]
