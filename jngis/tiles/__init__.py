"""Mapbox Vector Tiles (MVT 2.1) of city layers, and PMTiles pyramids.

:class:`VectorTiles` serves the tiles of a set of layers (GeoDataFrames in any
CRS) in EPSG:3857 with XYZ addressing, extent 4096 and a 64-unit buffer, the
way the map server and MapLibre need them:

* every feature has an integer id that is the same at every zoom (the code
  itself when the key column holds digit codes such as ``grid_code``), and the
  key column is also a property, so MapLibre can use ``promoteId`` or
  feature-state;
* polygon layers are simplified per zoom as a *coverage*: once per shared
  edge (the coverage's arcs, :mod:`~jngis.tiles.arcs`), then snap-rounded to the
  zoom's integer grid, so neighbouring polygons keep one shared edge at every
  zoom: no slivers, no gaps; a polygon that would vanish at a
  low zoom is drawn as a small square (``min_size`` tile units) instead of
  being dropped;
* cold tiles are cut from geometry precomputed once per zoom in integer
  world-pixel coordinates (numba loops over the arcs; GEOS only where they
  cannot keep the coverage valid), found with an STRtree, clipped and encoded
  by numba-compiled loops over the whole tile (``jngis._mvt``);
  warm tiles come from an in-memory LRU cache bounded in bytes, each kept as a
  :class:`Tile` with its gzip bytes and ETag, computed once.

:func:`write_pmtiles` writes the pyramid of several layers into one PMTiles
archive (the ``jngis tiles build`` command).

The package's modules, each with one job: :mod:`~jngis.tiles.source` (a
layer's checked input: kind, key, public columns, ids), :mod:`~jngis.tiles.geometry`
(per-zoom simplification and snapping, kept on disk), :mod:`~jngis.tiles.arcs`
(the coverage as shared arcs, simplified and snap-rounded per zoom), :mod:`~jngis.tiles.encoder`
(cutting and encoding one tile), :mod:`~jngis.tiles.vector_tiles` (the
:class:`VectorTiles` front and its cache) and :mod:`~jngis.tiles.pyramid`
(:func:`write_pmtiles`).
"""

from jngis.codes import MAX_ZOOM
from jngis.tiles.geometry import BUFFER, EXTENT
from jngis.tiles.pyramid import PMTilesSummary, write_pmtiles
from jngis.tiles.vector_tiles import CacheInfo, Tile, VectorTiles

__all__ = ["VectorTiles", "Tile", "CacheInfo", "PMTilesSummary", "write_pmtiles", "EXTENT",
           "BUFFER", "MAX_ZOOM"]
