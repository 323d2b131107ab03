"""Layer kinds, their schemas, ``validate()``, the :class:`City` bundle and file I/O.

The schema is the contract between every part of jngis: a layer that passes
:func:`validate` can be handed to any library function. Codes follow the
Chinese administrative division code (GB/T 2260 + the civil-affairs
extension): district 6 digits, 街道 9, community 12, grid 15, each extending
its parent's code.

Files: one GeoPackage (a real SQLite file) holds one layer per kind and is the
default store; single layers may also come from GeoJSON, Shapefile or
GeoParquet files.
"""

from jngis.layers.city import City
from jngis.layers.io import read_city, read_layer, write_city, write_layer
from jngis.layers.schema import (
    ADDRESS_COLUMNS,
    CODE_DIGITS,
    KINDS,
    SCHEMAS,
    WORKORDER_STATES,
    Column,
    LayerSchema,
    guess_kind,
)
from jngis.layers.validation import validate

__all__ = [
    "Column",
    "LayerSchema",
    "ADDRESS_COLUMNS",
    "SCHEMAS",
    "KINDS",
    "CODE_DIGITS",
    "WORKORDER_STATES",
    "City",
    "validate",
    "read_layer",
    "write_layer",
    "read_city",
    "write_city",
    "guess_kind",
]
