"""jngis: GIS for urban grassroots governance in Jinan (济南).

Plain functions on GeoDataFrames: layer schemas and validation, CRS handling
(CGCS2000, Gauss-Kruger, GCJ-02/BD-09), the sample city, community
rebalancing, grid generation, point assignment, indicators, the 12345
work-order loop, vector tiles and maps.
"""

__version__ = "0.1.0"

from jngis import crs, errors
from jngis.errors import JngisError
from jngis.layers import City, read_city, read_layer, validate, write_city, write_layer
from jngis.sample import load_sample

__all__ = [
    "__version__",
    "City",
    "JngisError",
    "crs",
    "errors",
    "load_sample",
    "read_city",
    "read_layer",
    "validate",
    "write_city",
    "write_layer",
]
