"""The application shell: settings, error table, security, the viewer files, startup commands."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from jngis import errors
from jngis.server.app import create_app
from jngis.server.errors import STATUS_CODES, status_for
from jngis.server.settings import Settings


def test_settings_read_the_environment(monkeypatch):
    monkeypatch.setenv("JNGIS_STORE", "/data/city.gpkg")
    monkeypatch.setenv("JNGIS_WRITE_TOKEN", "s3cret")
    monkeypatch.setenv("JNGIS_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("JNGIS_TILE_CACHE_MB", "32")
    settings = Settings()
    assert settings.store == "/data/city.gpkg"
    assert settings.write_token.get_secret_value() == "s3cret"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.tile_cache_mb == 32
    assert settings.basemap_url is None
    assert "s3cret" not in repr(settings)  # the token never shows in logs


def test_settings_defaults_and_json_origins(monkeypatch):
    for name in ("JNGIS_STORE", "JNGIS_WRITE_TOKEN", "JNGIS_CORS_ORIGINS", "JNGIS_BASEMAP_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JNGIS_CORS_ORIGINS", '["http://localhost:3000"]')
    settings = Settings()
    assert settings.store is None and settings.write_token is None
    assert settings.cors_origins == ["http://localhost:3000"]


def test_settings_refuse_a_bad_cache_size():
    with pytest.raises(ValueError, match="tile_cache_mb"):
        Settings(tile_cache_mb=-1)


def test_settings_refuse_no_request_threads():
    with pytest.raises(ValueError, match="threads"):
        Settings(threads=0)


def test_synchronous_routes_run_in_at_most_the_configured_threads(module_store, settings_for):
    """JNGIS_THREADS bounds the routes running at once in threads (starlette's default is 40)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    app = create_app(settings_for(module_store, threads=2))
    running, most, lock = 0, 0, threading.Lock()

    @app.get("/probe")
    def probe() -> dict:  # a synchronous route, as the store's are
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return {"thread": threading.current_thread().name}

    with TestClient(app) as client, ThreadPoolExecutor(8) as callers:
        answers = list(callers.map(lambda _: client.get("/probe"), range(16)))
    assert [answer.status_code for answer in answers] == [200] * 16
    assert most == 2  # 16 requests at once, never more than 2 in threads, and 2 used


@pytest.mark.parametrize("exc, status", [
    (errors.NotFoundError("x"), 404),
    (errors.InvalidTransition("W1", "closed", "reopened", ()), 409),
    (errors.TileError("x"), 422),
    (errors.ParameterError("x"), 422),
    (errors.SchemaError("x"), 422),
    (errors.GeometryError("x"), 422),
    (errors.CRSError("x"), 422),
    (errors.InputTypeError("x"), 422),
    (errors.JngisError("x"), 400),
    (RuntimeError("x"), 500),
])
def test_every_library_error_has_its_status(exc, status):
    assert status_for(exc) == status


def test_the_error_table_lists_subclasses_before_their_bases():
    classes = list(STATUS_CODES)
    for i, cls in enumerate(classes):
        for later in classes[i + 1:]:
            assert not issubclass(later, cls) or later is cls, f"{later.__name__} is shadowed by {cls.__name__}"


def test_healthz_and_security_headers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["layers"]["grids"] > 0
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "unsafe-eval" not in policy


def test_errors_carry_the_library_message_and_headers(client):
    response = client.get("/collections/nowhere")
    assert response.status_code == 404
    assert "nowhere" in response.json()["detail"] and "communities" in response.json()["detail"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_cors_is_closed_by_default(client):
    response = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options("/workorders", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_only_to_configured_origins(module_store, settings_for):
    app = create_app(settings_for(module_store, cors_origins=["https://city.example"]))
    with TestClient(app) as client:
        allowed = client.get("/healthz", headers={"Origin": "https://city.example"})
        assert allowed.headers["access-control-allow-origin"] == "https://city.example"
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_basemap_origin_is_allowed_by_the_policy(module_store, settings_for):
    app = create_app(settings_for(module_store, basemap_url="https://tiles.example.org/{z}/{x}/{y}.png"))
    with TestClient(app) as client:
        policy = client.get("/healthz").headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://tiles.example.org" in policy
        assert client.get("/layers").json()["basemap_url"].startswith("https://tiles.example.org/")


def test_large_bodies_are_refused(client, auth):
    big = {"lon": 117.15, "lat": 36.69, "category": "环境卫生", "description": "很" * 70_000}
    response = client.post("/workorders", json=big, headers=auth)
    assert response.status_code == 413
    assert "larger than" in response.json()["detail"]


def test_the_root_serves_the_viewer_to_browsers(client):
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "济南" in page.text and "/static/vendor/maplibre-gl.js" in page.text
    for asset in ("/static/app.js", "/static/style.css", "/static/vendor/maplibre-gl.js",
                  "/static/vendor/maplibre-gl.css"):
        assert client.get(asset).status_code == 200, asset


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/", headers={"Accept": "text/html"}).text
    script = client.get("/static/app.js").text
    for text in (page, script):
        assert "http://" not in text.replace("http://HOST", "") and "https://" not in text


def test_docs_pages_that_load_a_cdn_are_off(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/openapi.json").status_code == 200


def test_vendored_maplibre_is_recorded():
    from jngis.server.deps import static_dir

    readme = (static_dir() / "vendor" / "README.md").read_text()
    assert "maplibre-gl" in readme and "BSD-3-Clause" in readme
    assert (static_dir() / "vendor" / "maplibre-gl.js").stat().st_size > 500_000


def test_the_server_writes_no_lock_of_its_own():
    """Lazily built things go through jngis.cache.Cache and jngis.gridtable.LiveTable."""
    import re
    from pathlib import Path

    import jngis.server

    for path in Path(jngis.server.__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"\b(R?Lock|Condition|Semaphore)\b", text), path.name
        assert "double-checked" not in text, path.name


def test_a_store_that_does_not_exist_is_a_clear_error(tmp_path):
    with pytest.raises(errors.JngisError):
        create_app(Settings(store=str(tmp_path / "missing" / "city.txt")))


def test_uvicorn_factory_serves_the_viewer_and_api(module_store, live_server):
    # timings belong to benchmarks/server.py; a cold machine may JIT-compile the encoder here
    with live_server(module_store) as live:
        page = httpx.get(live.url + "/", headers={"Accept": "text/html"}, timeout=120)
        assert page.status_code == 200 and "maplibre" in page.text
        layers = httpx.get(live.url + "/layers", timeout=120).json()
        tilejson = httpx.get(layers["layers"][0]["tilejson"], timeout=120).json()
        tile = httpx.get(tilejson["tiles"][0].format(z=12, x=3380, y=1598), timeout=120)
        assert tile.status_code == 200


def test_jngis_serve_starts_the_server(module_store, port_finder, token):
    port = port_finder()
    process = subprocess.Popen(
        [sys.executable, "-m", "jngis.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
         "--store", str(module_store)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**__import__("os").environ, "JNGIS_WRITE_TOKEN": token})
    try:
        deadline = time.time() + 60
        while True:
            assert process.poll() is None, process.stdout.read()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.time() < deadline, "jngis serve did not answer within 60 s"
                time.sleep(0.2)
        assert response.json()["status"] == "ok"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_jngis_serve_reports_a_bad_store_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "jngis.cli", "serve", "--store", str(tmp_path / "city.txt")],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "city.txt" in result.stderr


def test_the_server_caps_malloc_arenas(monkeypatch):
    """glibc's per-thread arenas kept 1.6 GiB of transient peaks on the full city (RESULTS.md)."""
    from jngis.server.app import limit_malloc_arenas

    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    # this machine runs glibc (Debian): mallopt accepts the cap
    assert limit_malloc_arenas() is True
    # an operator's own MALLOC_ARENA_MAX wins: the server leaves it alone
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False
