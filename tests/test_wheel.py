"""Installed as users install it: a wheel in a clean virtual environment, run from outside the checkout.

The wheel is built from a copy of the files git would commit (so a stale build/
folder or a file left out of the package configuration cannot hide), installed
with its dependencies into a new venv without this environment's site-packages,
and then, in an empty folder with an empty cache, ``jngis sample`` builds the
sample city and ``jngis serve`` serves it: the API, a tile, the viewer and its
vendored MapLibre. Dependencies are pinned to the versions of the environment
running the test, so the install resolves nothing new and reuses pip's cache.
"""

from __future__ import annotations

import email
import importlib.metadata
import math
import os
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from samecity import assert_same_city

REPO = Path(__file__).resolve().parent.parent
# The checkout's folders and the names they are installed under (setup.cfg package_dir).
INSTALLED_AS = {"jngis": "jngis", "server": "jngis/server"}
# 泉城广场, in the densest part of the sample city: its z14 tile holds grids.
CENTRE_LON, CENTRE_LAT, ZOOM = 117.0214, 36.6614, 14

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]


def _run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _committed_files() -> list[str]:
    """The files a commit of the checkout would hold (tracked, plus new files not ignored)."""
    try:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                                capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.fail("the wheel test needs git to list the checkout's files")
    return sorted(name for name in listed.decode().split("\0") if name and (REPO / name).is_file())


def _can_build_offline() -> bool:
    """Whether this environment has the build backend pyproject.toml asks for."""
    try:
        setuptools = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return False
    if setuptools >= (70, 1):  # bdist_wheel is part of setuptools from 70.1
        return True
    try:
        importlib.metadata.version("wheel")
    except importlib.metadata.PackageNotFoundError:
        return False
    return setuptools >= (68, 0)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("wheel")


@pytest.fixture(scope="module")
def wheel(workspace) -> Path:
    source = workspace / "source"
    for name in _committed_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, target)
    # without the backend here, pip fetches it into an isolated build environment
    flags = ["--no-build-isolation"] if _can_build_offline() else []
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", *flags, "-w", str(workspace / "dist"), str(source)],
         timeout=600, cwd=workspace)
    (built,) = (workspace / "dist").glob("jngis-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(workspace, wheel) -> Path:
    """A new virtual environment with the wheel and its dependencies installed."""
    root = workspace / "venv"
    _run([sys.executable, "-m", "venv", str(root)], timeout=300)
    frozen = _run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], timeout=120).stdout
    pins = [line for line in frozen.splitlines()
            if "==" in line and not line.lower().startswith(("jngis==", "-e"))]
    constraints = workspace / "constraints.txt"
    constraints.write_text("\n".join(pins) + "\n")
    # --no-compile: byte code is written on first import, as for any module; compiling all of
    # scipy, pandas and numba up front would double the install time
    started = time.perf_counter()
    _run([str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", "-c", str(constraints),
          str(wheel)], timeout=1800, cwd=workspace, env=_clean_environment())
    print(f"\nthe wheel and its dependencies installed in {time.perf_counter() - started:.1f} s")
    return root


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything that points Python or jngis at the checkout."""
    environment = {name: value for name, value in os.environ.items()
                   if not name.startswith(("JNGIS_", "PYTHON", "VIRTUAL_ENV", "PYTEST", "COV_"))}
    return {**environment, **extra}


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return listener.getsockname()[1]


def _tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return x, y


def test_the_wheel_ships_every_file_of_the_package_and_nothing_else(wheel):
    with zipfile.ZipFile(wheel) as archive:
        shipped = set(archive.namelist())
        metadata = email.message_from_bytes(archive.read(next(n for n in shipped if n.endswith("/METADATA"))))
    expected = set()
    for name in _committed_files():
        folder, _, rest = name.partition("/")
        if folder in INSTALLED_AS and rest:
            expected.add(f"{INSTALLED_AS[folder]}/{rest}")
    assert "jngis/py.typed" in expected and "jngis/server/routes/__init__.py" in expected
    assert any(name.startswith("jngis/server/static/vendor/") for name in expected)
    assert any(name.startswith("jngis/sample_shapes/") for name in expected)
    assert sorted(expected - shipped) == []
    top_level = {name.split("/")[0] for name in shipped}
    assert top_level == {"jngis", f"jngis-{metadata['Version']}.dist-info"}  # no plain `server`, no tests
    assert not [name for name in shipped if "__pycache__" in name or name.endswith((".pyc", ".nbi", ".nbc"))]
    # pytest is for developers: only the dev extra asks for it
    runtime = [req for req in metadata.get_all("Requires-Dist") if "extra ==" not in req]
    assert not [req for req in runtime if req.lower().startswith("pytest")], runtime


def test_a_clean_install_builds_the_sample_city_and_serves_it(venv, tmp_path, sample_city):
    outside = tmp_path / "somewhere"
    outside.mkdir()
    environment = _clean_environment(JNGIS_CACHE_DIR=str(tmp_path / "cache"),
                                     XDG_CACHE_HOME=str(tmp_path / "xdg-cache"))
    python, jngis = str(venv / "bin" / "python"), str(venv / "bin" / "jngis")

    where = _run([python, "-c", "import jngis, jngis.server.app; print(jngis.__file__)"],
                 timeout=300, cwd=outside, env=environment).stdout.strip()
    assert Path(where).is_relative_to(venv), f"jngis imported from {where}, not from the clean venv"

    started = time.perf_counter()
    built = _run([jngis, "sample"], timeout=1800, cwd=outside, env=environment)
    print(f"\njngis sample in the clean venv: {time.perf_counter() - started:.1f} s")
    assert "built into" in built.stderr and str(tmp_path / "cache") in built.stderr
    assert "communities" in built.stdout
    # the generator is deterministic: this build (another process, another install) is the city
    # `make sample` built, layer by layer (tests/test_sample.py checks that another seed differs)
    from jngis.layers import read_city
    from jngis.sample import sample_path

    (fresh,) = (tmp_path / "cache").glob(sample_path().name)
    assert_same_city(read_city(fresh), sample_city)

    started = time.perf_counter()
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen([jngis, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                  cwd=outside, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while True:
            assert server.poll() is None, f"jngis serve exited:\n{log.read_text()[-4000:]}"
            try:
                health = httpx.get(f"{url}/healthz", timeout=5)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"jngis serve did not answer:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
        assert health.json()["status"] == "ok" and health.json()["layers"]["grids"] > 0
        print(f"jngis serve answering after {time.perf_counter() - started:.1f} s")

        x, y = _tile_of(CENTRE_LON, CENTRE_LAT, ZOOM)
        tile = httpx.get(f"{url}/tiles/grids/{ZOOM}/{x}/{y}.mvt", timeout=120)
        assert tile.status_code == 200 and tile.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        assert len(tile.content) > 100
        print(f"first tile after {time.perf_counter() - started:.1f} s")

        page = httpx.get(f"{url}/", headers={"Accept": "text/html"}, timeout=30)
        assert page.status_code == 200 and "/static/vendor/maplibre-gl.js" in page.text
        vendored = httpx.get(f"{url}/static/vendor/maplibre-gl.js", timeout=30)
        assert vendored.status_code == 200 and len(vendored.content) > 100_000
        viewer = httpx.get(f"{url}/static/app.js", timeout=30)
        assert viewer.status_code == 200
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
