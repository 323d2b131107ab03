"""Numpydoc docstrings for the GCJ-02/BD-09 converters, whose sections differ only in a few words.

The six array converters and the four GeoDataFrame converters share their
Parameters, Returns and Raises sections word for word; writing them once keeps
them from drifting. ``help()``, doctests and Sphinx see the composed text.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

_ARRAY_RAISES = """\
InputTypeError
    If `lon` or `lat` is not numeric.
ParameterError
    If the shapes differ or a value is outside lon [-180, 180] /
    lat [-90, 90].
GeometryError
    If a coordinate is NaN or infinite."""

_FRAME_RETURNS = """\
geopandas.GeoDataFrame
    A new GeoDataFrame with the same index, columns and geometry types;
    `gdf` is never changed."""

_FRAME_CRS_ERROR = {
    "any": "If `gdf` has no CRS.",
    "lonlat": "If `gdf` has a CRS other than EPSG:4326 / EPSG:4490.",
}

_FRAME_PARAMETER = {
    "any": "Data with a CRS.",
    "lonlat": "Data with {name} longitude/latitude coordinates; CRS EPSG:4326,\n    EPSG:4490 or none.",
}


def _compose(summary: str, parameters: str, returns: str, raises: str, examples: str) -> str:
    sections = [textwrap.dedent(summary).strip()]
    for title, body in (("Parameters", parameters), ("Returns", returns), ("Raises", raises),
                        ("Examples", textwrap.dedent(examples).strip())):
        sections.append(f"{title}\n{'-' * len(title)}\n{body}")
    return "\n\n".join(sections) + "\n"


def array_converter(source: str, target: str, summary: str, examples: str) -> Callable[[F], F]:
    """Give an array converter (``lon, lat -> lon, lat``) its docstring."""
    parameters = f"lon, lat : float or array_like of float\n    {source} longitude and latitude in degrees, same shape."
    returns = f"(lon, lat) : tuple of float or of numpy.ndarray\n    {target} coordinates, the same shape as the input."

    def apply(func: F) -> F:
        func.__doc__ = _compose(summary, parameters, returns, _ARRAY_RAISES, examples)
        return func
    return apply


def frame_converter(source: str, shifted: str, summary: str, examples: str) -> Callable[[F], F]:
    """Give a GeoDataFrame converter its docstring.

    `source` is "any" (to_*: any CRS) or "lonlat" (from_*: shifted lon/lat);
    `shifted` names the shifted system ("GCJ-02", "BD-09").
    """
    parameters = "gdf : geopandas.GeoDataFrame\n    " + _FRAME_PARAMETER[source].format(name=shifted)
    raises = (f"InputTypeError\n    If `gdf` is not a GeoDataFrame.\nCRSError\n    {_FRAME_CRS_ERROR[source]}\n"
              "GeometryError\n    If a coordinate is NaN or infinite.\n"
              "ParameterError\n    If a coordinate is outside lon [-180, 180] / lat [-90, 90].")

    def apply(func: F) -> F:
        func.__doc__ = _compose(summary, parameters, _FRAME_RETURNS, raises, examples)
        return func
    return apply
