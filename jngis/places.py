"""Place names and the code hierarchy of a city: what encloses a code, label points, search.

A :class:`Places` is built once from a city's polygon layers (districts,
streets, communities, grids; any metric or geographic CRS) and answers the
questions a map viewer asks of names and codes:

- :meth:`Places.of`: the community, 街道 and district a code lies in, with their
  names (the parent codes come from :func:`jngis.codes.parent`);
- :meth:`Places.label_points` / :meth:`Places.labels`: a point inside each
  feature, in WGS84, to write its name at;
- :meth:`Places.search`: districts, 街道, communities and grids whose code
  starts with a query or whose name holds it, with their WGS84 bounds.

Label points are computed on first use, once, however many threads ask
(:class:`jngis.cache.Cache`).

Examples
--------
>>> import geopandas as gpd
>>> from shapely.geometry import box
>>> districts = gpd.GeoDataFrame({"district_code": ["370102"], "name": ["历下区"]},
...                              geometry=[box(0, 0, 1000, 1000)], crs="EPSG:4548")
>>> streets = gpd.GeoDataFrame({"street_code": ["370102003"], "name": ["嘉礼街道"],
...                             "district_code": ["370102"]},
...                            geometry=[box(0, 0, 1000, 1000)], crs="EPSG:4548")
>>> places = Places({"districts": districts, "streets": streets})
>>> places.of("370102003001")
{'street_code': '370102003', 'street_name': '嘉礼街道', 'district_code': '370102', 'district_name': '历下区'}
>>> [(hit["kind"], hit["name"]) for hit in places.search("嘉礼")]
[('streets', '嘉礼街道')]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import shapely

from jngis import _checks
from jngis import crs as jcrs
from jngis.cache import Cache
from jngis.codes import LEVEL_LABELS, LEVEL_NAMES, LEVELS, level, level_of, parent
from jngis.crs import WGS84
from jngis.errors import CRSError, InputTypeError, NotFoundError

__all__ = ["Places", "LABELLED", "SEARCHED", "SEARCH_LIMIT"]

#: Layers whose names label the map (grids are too many to name on a city map).
LABELLED: tuple[str, ...] = ("districts", "streets", "communities")
#: Layers the search looks in, in the order their hits are listed.
SEARCHED: tuple[str, ...] = ("districts", "streets", "communities", "grids")
#: Hits a search returns by default.
SEARCH_LIMIT = 20
#: Decimal places of WGS84 coordinates handed out (about 0.1 m).
_DIGITS = 6
_LEVEL_OF_LAYER = {lv.layer: lv for lv in LEVELS}


class Places:
    """The names and codes of a city's administrative layers.

    Parameters
    ----------
    layers : mapping of str to geopandas.GeoDataFrame
        Layers by kind; those of :data:`SEARCHED` are used (others are ignored),
        each with its key column (``district_code``, ``street_code``,
        ``community_code``, ``grid_code``), a CRS and, where it has names, ``name``.
        The layers are not copied: do not change them afterwards.
    """

    def __init__(self, layers: Mapping[str, gpd.GeoDataFrame]) -> None:
        if not isinstance(layers, Mapping):
            raise InputTypeError(f"Places: layers is a {type(layers).__name__}; expected a mapping of "
                                 "layer kind to GeoDataFrame")
        self._layers: dict[str, gpd.GeoDataFrame] = {}
        for kind in SEARCHED:
            if layers.get(kind) is None:
                continue
            layer = _checks.geodataframe("Places", f"layers[{kind!r}]", layers[kind],
                                         required=[_LEVEL_OF_LAYER[kind].key])
            if layer.crs is None:
                raise CRSError(f"Places: layers[{kind!r}] has no CRS; expected one (e.g. EPSG:4548)")
            self._layers[kind] = layer
        # codes and names as strings once: every search compares against them
        self._codes = {kind: layer[_LEVEL_OF_LAYER[kind].key].astype(str).reset_index(drop=True)
                       for kind, layer in self._layers.items()}
        self._names = {kind: layer["name"].astype(str).reset_index(drop=True)
                       for kind, layer in self._layers.items() if "name" in layer.columns}
        self._name_of = {kind: dict(zip(self._codes[kind], self._names[kind])) for kind in self._names}
        self._cache: Cache[Any] = Cache()

    @property
    def kinds(self) -> list[str]:
        """The layers this object knows, in hierarchy order."""
        return list(self._layers)

    def name(self, code: str) -> str | None:
        """The name of the district, 街道, community or grid ``code``, or None when unknown.

        Examples
        --------
        >>> Places({}).name("370102") is None
        True
        """
        return self._name_of.get(level(level_of(code)).layer, {}).get(code)

    def of(self, code: str) -> dict[str, str | None]:
        """The places that enclose ``code``, from the nearest up, with their names.

        For a grid code: ``community_code``, ``community_name``, ``street_code``,
        ``street_name``, ``district_code``, ``district_name``; a name is None when
        the city has no such place. ``code`` must be an administrative code
        (6, 9, 12 or 15 digits; :class:`~jngis.errors.ParameterError` otherwise).
        """
        depth = LEVEL_NAMES.index(level_of(code))
        enclosing: dict[str, str | None] = {}
        for lv in reversed(LEVELS[:depth]):
            above = parent(code, lv.name)
            enclosing[f"{lv.name}_code"] = above
            enclosing[f"{lv.name}_name"] = self._name_of.get(lv.layer, {}).get(above)
        return enclosing

    def label_points(self, kind: str) -> gpd.GeoSeries:
        """A point inside each feature of ``kind`` (WGS84), in the layer's row order; computed once."""
        layer = self._labelled(kind)
        return self._cache.get_or_insert(("points", kind), lambda: layer.representative_point().to_crs(WGS84))

    def labels(self, kind: str) -> dict:
        """The label points of ``kind`` as a GeoJSON FeatureCollection (``code``, ``name``, ``kind``)."""
        self._labelled(kind)

        def build() -> dict:
            points = self.label_points(kind)
            features = [
                {"type": "Feature", "id": code,
                 "geometry": {"type": "Point", "coordinates": [round(x, _DIGITS), round(y, _DIGITS)]},
                 "properties": {"code": code, "name": name, "kind": kind}}
                for code, name, x, y in zip(self._codes[kind], self._names[kind], points.x, points.y)
            ]
            return {"type": "FeatureCollection", "features": features}

        return self._cache.get_or_insert(("labels", kind), build)

    def search(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict]:
        """Places whose code starts with ``query`` or whose name holds it, at most ``limit``.

        Districts come first, then 街道, communities and grids, each in the
        layer's order. Every hit is ``{"kind", "title", "code", "name", "bbox"}``,
        ``bbox`` in WGS84 (minlon, minlat, maxlon, maxlat). Surrounding blanks of
        ``query`` are ignored; an empty query matches every place.
        """
        if not isinstance(query, str):
            raise InputTypeError(f"Places.search: query is a {type(query).__name__}; expected a string")
        limit = _checks.integer("Places.search", "limit", limit, minimum=1)
        query = query.strip()
        hits: list[dict] = []
        for kind, codes in self._codes.items():
            found = codes.str.startswith(query).to_numpy()
            if kind in self._names:
                found = found | self._names[kind].str.contains(query, regex=False).to_numpy()
            rows = found.nonzero()[0][: limit - len(hits)]
            hits += self._hits(kind, rows)
            if len(hits) >= limit:
                break
        return hits

    def _hits(self, kind: str, rows: np.ndarray) -> list[dict]:
        if not len(rows):
            return []
        bounds = self._cache.get_or_insert(("bounds", kind), lambda: self._wgs84_bounds(kind))[rows]
        names = self._names.get(kind, self._codes[kind])
        return [{"kind": kind, "title": LEVEL_LABELS[kind], "code": self._codes[kind][row],
                 "name": names[row], "bbox": [round(float(v), _DIGITS) for v in box]}
                for row, box in zip(rows, bounds)]

    def _wgs84_bounds(self, kind: str) -> np.ndarray:
        """Every feature's WGS84 bounds, (n, 4): the projected outline's, not its box's corners.

        Once per layer (with the shared transformer: GeoSeries.to_crs makes one per call,
        70-100 ms); projecting a search's hits each time was most of its time.
        """
        layer = self._layers[kind]
        to_wgs84 = jcrs.transformer(layer.crs, WGS84)
        bounds = shapely.bounds(shapely.transform(
            layer.geometry.values, lambda xy: np.column_stack(to_wgs84.transform(xy[:, 0], xy[:, 1]))))
        bounds.setflags(write=False)
        return bounds

    def _labelled(self, kind: str) -> gpd.GeoDataFrame:
        if kind not in LABELLED:
            raise NotFoundError(f"layer {kind!r} has no labels; expected one of {', '.join(LABELLED)}")
        if kind not in self._layers or kind not in self._names:
            held = [k for k in LABELLED if k in self._names]
            raise NotFoundError(f"layer {kind!r} is not in this city; expected one of {', '.join(held) or 'none'}")
        return self._layers[kind]
