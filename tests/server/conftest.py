"""Server fixtures: a small city GeoPackage with grids, apps on it, a live uvicorn."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOKEN = "test-token-3f9a"


@pytest.fixture(scope="session")
def city_file(tmp_path_factory, slice_city) -> Path:
    """The committed slice (one 街道) plus its grids, as one GeoPackage."""
    import dataclasses

    from jngis.grids import make_grids
    from jngis.layers import write_city

    grids = make_grids(slice_city.communities, slice_city.units, seed=0)
    city = dataclasses.replace(slice_city, grids=grids)
    return write_city(city, tmp_path_factory.mktemp("city") / "slice.gpkg")


@pytest.fixture
def store_file(city_file, tmp_path) -> Path:
    """A private copy of the city for a test that writes."""
    copy = tmp_path / "city.gpkg"
    shutil.copy(city_file, copy)
    return copy


def make_settings(store: Path, **overrides):
    from jngis.server.settings import Settings

    return Settings(**{"store": str(store), "write_token": TOKEN, **overrides})


@pytest.fixture(scope="module")
def module_store(city_file, tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("store") / "city.gpkg"
    shutil.copy(city_file, copy)
    return copy


@pytest.fixture(scope="module")
def app(module_store):
    from jngis.server.app import create_app

    return create_app(make_settings(module_store))


@pytest.fixture(scope="module")
def client(app):
    """A client signed in as the bootstrap administrator (``JNGIS_WRITE_TOKEN``): it sees every order."""
    from fastapi.testclient import TestClient

    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def anonymous(app):
    """A client on the same app with no credentials (map layers and per-grid figures only)."""
    from fastapi.testclient import TestClient

    return TestClient(app)


@pytest.fixture
def auth() -> dict:
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="session")
def require_tool(pytestconfig):
    """``require_tool`` of tests/conftest.py (skip locally, fail under CI=true)."""
    for plugin in pytestconfig.pluginmanager.get_plugins():
        found = getattr(plugin, "require_tool", None)
        if callable(found) and str(getattr(plugin, "__file__", "")).endswith(os.path.join("tests", "conftest.py")):
            return found
    raise RuntimeError("tests/conftest.py with require_tool was not loaded")


@pytest.fixture(scope="session")
def token() -> str:
    return TOKEN


@pytest.fixture(scope="session")
def settings_for():
    """``settings_for(store, **overrides)`` -> Settings with the test token."""
    return make_settings


@pytest.fixture(scope="session")
def live_server():
    """``with live_server(store) as live:`` a real uvicorn process; ``live.url``."""
    return LiveServer


@pytest.fixture(scope="session")
def port_finder():
    return free_port


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# How long a server may take to answer /healthz: about 10 s on an idle 2-core machine, 30-70 s when
# other jobs load it (seen with eight agents running tests beside the suite).
START_SECONDS = 150


class LiveServer:
    """``uvicorn jngis.server.app:create_app --factory`` in its own process on a free loopback port.

    A separate process, not a thread: GDAL's HTTP client holds the GIL while
    it waits, which would starve a server running in the test's own process.
    """

    def __init__(self, store: Path, *, access_log: Path | None = None, **environment: str) -> None:
        self.access_log = access_log  # a file that receives uvicorn's access log (off when None)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.environment = {**os.environ, "JNGIS_STORE": str(store), "JNGIS_WRITE_TOKEN": TOKEN,
                            **environment}
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> LiveServer:
        import httpx

        logging = ["--log-level", "info"] if self.access_log else ["--log-level", "warning", "--no-access-log"]
        output = open(self.access_log, "w") if self.access_log else subprocess.PIPE  # noqa: SIM115 - the child's
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "jngis.server.app:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(self.port), *logging],
            env=self.environment, stdout=output, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                out = self.access_log.read_text() if self.access_log else self.process.stdout.read()
                raise RuntimeError(f"uvicorn exited: {out}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                self.__exit__()
                raise RuntimeError(f"uvicorn did not answer on {self.url} within {START_SECONDS} s")
            time.sleep(0.1)

    def __exit__(self, *exc) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def live(module_store):
    """A real uvicorn serving the module's store."""
    with LiveServer(module_store) as server:
        yield server


from crawl import HOME_STREET, OTHER_STREET  # noqa: E402 - the two 街道 of the two-street city


@pytest.fixture(scope="session")
def two_street_city_file(tmp_path_factory, sample_city) -> Path:
    """Two 街道 of the sample city in two districts (370102003 嘉礼街道, 370103001 恒东街道) with their
    grids, stations and party organisations and no work orders: scopes have an inside and an outside."""
    import pandas as pd

    from jngis.layers import City, write_city
    from jngis.sample import make_slice

    slices = [make_slice(sample_city, code) for code in (HOME_STREET, OTHER_STREET)]
    layers = {kind: pd.concat([getattr(piece, kind) for piece in slices], ignore_index=True)
              for kind in ("districts", "streets", "communities", "units", "grids", "stations", "party_orgs")}
    return write_city(City(**layers), tmp_path_factory.mktemp("two-streets") / "two_streets.gpkg")


def store_copy(kind: str, city_file: Path, folder: Path, request) -> str:
    """A private store of ``city_file``: a GeoPackage copy, or a fresh PostGIS schema holding it."""
    if kind == "sqlite":
        copy = folder / "city.gpkg"
        shutil.copy(city_file, copy)
        return str(copy)
    from pgcluster import schema_dsn

    from jngis.layers import read_city
    from jngis.store import open_store

    url = schema_dsn(request.getfixturevalue("postgis_dsn"))
    with open_store(url) as store:
        store.write_city(read_city(city_file))
    return url


@pytest.fixture(scope="session")
def copy_store():
    """:func:`store_copy` for tests that make their own stores."""
    return store_copy


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def two_street_store(request, two_street_city_file, tmp_path_factory) -> str:
    """The two-street city in each store (module scope: a matrix runs once per store)."""
    return store_copy(request.param, two_street_city_file, tmp_path_factory.mktemp("roles"), request)
