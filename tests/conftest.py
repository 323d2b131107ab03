"""Shared fixtures: the committed slice, the full sample city, a throw-away PostGIS."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pytest
import shapely

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


def _pg_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgis_dsn():
    """A DSN for a PostGIS database.

    Uses ``JNGIS_TEST_POSTGIS_DSN`` when set; otherwise starts a throw-away
    cluster (initdb + pg_ctl from Debian's postgresql package) on a free
    loopback port for the session and removes it afterwards.
    """
    dsn = os.environ.get("JNGIS_TEST_POSTGIS_DSN")
    if dsn:
        yield dsn
        return
    bin_dir = _pg_bin()
    require_tool(bin_dir is not None, "PostgreSQL",
                 "apt-get install postgresql-15 postgresql-15-postgis-3, or run .ci/run")
    extension = list(Path("/usr/share/postgresql").glob("*/extension/postgis.control"))
    require_tool(bool(extension), "PostGIS", "apt-get install postgresql-15-postgis-3")
    root = Path(tempfile.mkdtemp(prefix="jngis-pg-"))
    data = root / "data"
    user = "postgres" if os.geteuid() == 0 else None
    port = _free_port()

    def run(*args):
        command = [str(a) for a in args]
        if user:  # initdb refuses to run as root
            shutil.chown(root, user)
            command = ["runuser", "-u", user, "--"] + command
        subprocess.run(command, check=True, capture_output=True, text=True)

    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(bin_dir / "pg_ctl", "-D", data, "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1",
        "-l", root / "log", "-w", "start")
    try:
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        deadline = time.time() + 30
        while time.time() < deadline:
            ready = subprocess.run([bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                                   capture_output=True)
            if ready.returncode == 0:
                break
            time.sleep(0.2)
        subprocess.run([bin_dir / "psql", dsn, "-qc", "CREATE EXTENSION IF NOT EXISTS postgis"],
                       check=True, capture_output=True)
        yield dsn
    finally:
        run(bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)
