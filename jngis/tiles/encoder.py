"""Cutting and encoding one layer's tile: candidates from the STRtree, numba kernels, tags.

:class:`LayerEncoder` turns a tile address into the uncompressed single-layer
MVT bytes. Its property tables (every value of every published column encoded
once as an MVT ``Value``) are built on first use through a
:class:`jngis.cache.Cache`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from jngis import _mvt
from jngis.cache import Cache
from jngis.tiles.geometry import BUFFER, EXTENT, ZoomGeometry
from jngis.tiles.source import LayerSource

#: Columns kept below a layer's ``detail_zoom``: what a map joins and labels with.
_OVERVIEW_COLUMNS = ("name",)

Tags = tuple[np.ndarray, np.ndarray, bytes]  # per-feature value ids (-1: missing), values, keys


class LayerEncoder:
    """The MVT tiles of one layer.

    Parameters
    ----------
    source : the layer's checked input (ids, columns)
    geometry : its per-zoom geometry
    detail_zoom : zoom from which tiles carry every column (below: the key and ``name``)
    min_size : side of the marker square of a collapsed polygon (widens the candidate search)
    """

    def __init__(self, source: LayerSource, geometry: ZoomGeometry, *, detail_zoom: int,
                 min_size: int) -> None:
        self.source, self.geometry = source, geometry
        self.detail_zoom, self.min_size = detail_zoom, min_size
        self._built: Cache = Cache()  # "tags" and "overview", built once

    def tags(self) -> Tags:
        """Per-feature global value ids (-1: missing), encoded values, encoded keys."""
        return self._built.get_or_insert("tags", self._build_tags)

    def overview_tags(self) -> Tags:
        """:meth:`tags` of the overview columns only (the key and the name), below ``detail_zoom``."""
        return self._built.get_or_insert("overview", self._build_overview)

    def render(self, z: int, x: int, y: int) -> bytes:
        """The uncompressed tile ``z/x/y`` (``b""`` when it holds no feature) of a checked address."""
        base, tree = self.geometry.base()
        to_max = 2.0 ** (self.geometry.maxzoom - z)
        x0, y0 = x * EXTENT - BUFFER, y * EXTENT - BUFFER
        x1, y1 = (x + 1) * EXTENT + BUFFER, (y + 1) * EXTENT + BUFFER
        slack = self.min_size + 1
        candidates = np.sort(tree.query(shapely.box((x0 - slack) * to_max, (y0 - slack) * to_max,
                                                    (x1 + slack) * to_max, (y1 + slack) * to_max)))
        if len(candidates) == 0:
            return b""
        if self.geometry.point:
            local = np.rint(base[candidates] / to_max) - (x * EXTENT, y * EXTENT)
            inside = ((local >= -BUFFER) & (local <= EXTENT + BUFFER)).all(axis=1)
            ints, counts = _mvt.point_commands(local[inside])
            return self._encode(z, candidates[inside], _mvt.POINT, ints, counts)
        zoom = self.geometry.zoom(z)
        ints, counts = _mvt.polygon_tile(zoom.coords, zoom.rings, zoom.polygons, zoom.features,
                                         zoom.bounds, candidates, x0, y0, x1, y1,
                                         x * EXTENT, y * EXTENT)
        drawn = counts > 0
        return self._encode(z, candidates[drawn], _mvt.POLYGON, ints, counts[drawn])

    def _encode(self, z: int, features: np.ndarray, geom_type: int, ints: np.ndarray,
                counts: np.ndarray) -> bytes:
        if len(features) == 0:
            return b""
        table, values, keys = self.tags() if z >= self.detail_zoom else self.overview_tags()
        pairs, tag_counts, used = _mvt.tag_pairs(table, np.ascontiguousarray(features, np.int64))
        return _mvt.encode_layer(self.source.encoded_name, self.source.ids[features], geom_type,
                                 ints, counts, pairs, tag_counts, keys,
                                 b"".join(values[used].tolist()), EXTENT)

    def _build_tags(self) -> Tags:
        columns = self.source.columns
        table = np.full((len(self.source), len(columns)), -1, dtype=np.int64)
        encoded: list[bytes] = []
        for j, column in enumerate(columns):
            codes, uniques = pd.factorize(self.source.values(column))
            table[:, j] = np.where(codes >= 0, codes + len(encoded), -1)
            encoded.extend(_mvt.value_messages(np.asarray(uniques, dtype=object)))
        values = np.empty(len(encoded), dtype=object)
        values[:] = encoded
        keys = b"".join(_mvt.key_message(c) for c in columns)
        return table, values, keys

    def _build_overview(self) -> Tags:
        table, values, _ = self.tags()
        columns = self.source.columns
        keep = [j for j, c in enumerate(columns) if c == self.source.key or c in _OVERVIEW_COLUMNS]
        return (np.ascontiguousarray(table[:, keep]), values,
                b"".join(_mvt.key_message(columns[j]) for j in keep))
