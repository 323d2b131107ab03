"""jngis: GIS for urban grassroots governance in Jinan (济南).

Plain functions on GeoDataFrames: layer schemas and validation, CRS handling
(CGCS2000, Gauss-Kruger, GCJ-02/BD-09), the sample city, community
rebalancing, grid generation, point assignment, indicators, the 12345
work-order loop, vector tiles and maps.
"""

__version__ = "0.1.0"

import importlib

from jngis import crs, errors, store, workorders
from jngis.assign import PolygonIndex, assign
from jngis.errors import JngisError
from jngis.layers import City, read_city, read_layer, validate, write_city, write_layer
from jngis.rebalance import ExactMoved, RebalancePlan, Tradeoff, exact_moved, rebalance, rebalance_tradeoff
from jngis.stats import coverage, grid_stats, rollup, suggest_sites
from jngis.store import open_store
from jngis.topology import check_tiling, coverage_errors, polsby_popper

# Heavy modules (folium/matplotlib, numba tiles, networkx for the sample city)
# load on first use, so `import jngis`, the CLI and the server start quickly.
# Their module names differ from the names they give, so importing a module
# (which binds it on the package) never shadows a function.
_LAZY = {
    "make_grids": ("jngis.grids", "make_grids"),
    "grid_summary": ("jngis.grids", "grid_summary"),
    "grid_quality": ("jngis.grids", "grid_quality"),
    "regular_grid": ("jngis.grids", "regular_grid"),
    "Staffing": ("jngis.grids", "Staffing"),
    "load_sample": ("jngis.sample", "load_sample"),
    "viz": ("jngis.viz", None),
    "tiles": ("jngis.tiles", None),
    "VectorTiles": ("jngis.tiles", "VectorTiles"),
    "write_pmtiles": ("jngis.tiles", "write_pmtiles"),
    "address": ("jngis.address", None),
    "AddressIndex": ("jngis.address", "AddressIndex"),
    "evaluation": ("jngis.evaluation", None),
    "evaluate": ("jngis.evaluation", "evaluate"),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'jngis' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value


__all__ = [
    "__version__",
    "AddressIndex",
    "address",
    "City",
    "JngisError",
    "PolygonIndex",
    "RebalancePlan",
    "Staffing",
    "VectorTiles",
    "assign",
    "check_tiling",
    "coverage",
    "coverage_errors",
    "crs",
    "errors",
    "evaluate",
    "evaluation",
    "grid_quality",
    "grid_stats",
    "grid_summary",
    "load_sample",
    "open_store",
    "make_grids",
    "polsby_popper",
    "read_city",
    "read_layer",
    "rebalance",
    "rebalance_tradeoff",
    "exact_moved",
    "ExactMoved",
    "Tradeoff",
    "regular_grid",
    "rollup",
    "store",
    "suggest_sites",
    "tiles",
    "validate",
    "viz",
    "write_city",
    "write_layer",
    "workorders",
    "write_pmtiles",
]
