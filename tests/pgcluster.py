"""A throw-away PostgreSQL + PostGIS cluster, for the test fixtures and the benchmarks.

``postgis_cluster()`` runs initdb + pg_ctl (Debian's postgresql package) on a
free loopback port, yields its DSN and removes everything afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def pg_bin() -> Path | None:
    """The newest PostgreSQL bin/ folder with initdb, or None."""
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists():
            return candidate
    return None


def has_postgis() -> bool:
    return bool(list(Path("/usr/share/postgresql").glob("*/extension/postgis.control")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def postgis_cluster(settings: dict[str, str] | None = None) -> Iterator[str]:
    """Start a throw-away cluster with the postgis extension; yield its DSN.

    ``settings`` are extra server settings (``-c name=value``), e.g.
    ``{"jit": "off"}``.
    """
    bin_dir = pg_bin()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql-15)")
    if not has_postgis():
        raise RuntimeError("PostGIS is not installed (apt-get install postgresql-15-postgis-3)")
    root = Path(tempfile.mkdtemp(prefix="jngis-pg-"))
    data = root / "data"
    user = "postgres" if os.geteuid() == 0 else None
    port = free_port()

    def run(*args):
        command = [str(a) for a in args]
        if user:  # initdb refuses to run as root
            shutil.chown(root, user)
            command = ["runuser", "-u", user, "--"] + command
        subprocess.run(command, check=True, capture_output=True, text=True)

    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    for name, value in (settings or {}).items():
        options += f" -c {name}={value}"
    run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(bin_dir / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start")
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


def schema_dsn(dsn: str) -> str:
    """A DSN whose search path starts at a new, empty schema of ``dsn``'s database.

    Each test (or benchmark run) gets a store of its own in one shared cluster.
    """
    import uuid
    from urllib.parse import quote

    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in dsn else "?"
    return f"{dsn}{separator}options={quote(f'-csearch_path={schema},public')}"


def new_slice_store(kind: str, folder: Path, city, postgis_dsn) -> str:
    """The URL of a new store holding the slice ``city`` (and its historical orders).

    ``kind="sqlite"``: a copy of the committed GeoPackage in ``folder``; ``"postgis"``: a new
    schema (:func:`schema_dsn`) of the database ``postgis_dsn()`` names, the city written to it.
    """
    from jngis.sample import SHAPES_DIR, SLICE_FILE
    from jngis.store import open_store

    if kind == "sqlite":
        path = folder / "city.gpkg"
        shutil.copy(SHAPES_DIR / SLICE_FILE, path)
        return str(path)
    url = schema_dsn(postgis_dsn())
    with open_store(url) as store:
        store.write_city(city)
    return url
