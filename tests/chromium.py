"""Headless Chromium (Playwright) with the network cut, and what a folium map shows once rendered.

Every request that does not go to 127.0.0.1 (or stays in the page: ``file:``,
``data:``, ``blob:``, ``about:``) is aborted and recorded, as on an intranet
with no internet. :func:`rendered` measures a jngis map on the page itself:
the SVG paths Leaflet drew, the vector-tile paths, the markers and the names
in view, against the vector features (polygons, lines, circles) Leaflet holds.
"""

from __future__ import annotations

import contextlib
import html
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000
LOCAL = ("file:", "data:", "blob:", "about:")

#: Per Leaflet map on the page: what is drawn in view, and what Leaflet holds.
_MEASURE = """() => {
  const maps = Object.keys(window).filter(k => /^map_[0-9a-f]+$/.test(k) && window[k] instanceof L.Map)
    .map(k => window[k]);
  return maps.map(m => {
    const c = m.getContainer(), box = c.getBoundingClientRect();
    const seen = el => { const r = el.getBoundingClientRect();
      return (r.width > 0 || r.height > 0) && r.right >= box.left && r.left <= box.right && r.bottom >= box.top
        && r.top <= box.bottom; };  // a polygon a pixel thick at this zoom is drawn as a stroke
    const count = selector => [...c.querySelectorAll(selector)].filter(seen).length;
    let features = 0;
    m.eachLayer(layer => { if (layer instanceof L.Path) { features += 1; } });  // polygons, lines, circles
    return {
      paths: count(".leaflet-overlay-pane path"),
      features: features,
      tile_paths: count(".leaflet-tile-pane path"),
      outline_paths: count(".leaflet-jngisOutlines-pane path"),
      markers: count(".leaflet-marker-pane .leaflet-marker-icon:not(.jngis-label)"),
      labels: count(".jngis-label span"),
      raster_tiles: c.querySelectorAll("img.leaflet-tile").length,
      zoom: m.getZoom(),
      width: box.width, height: box.height,
    };
  });
}"""


class Session:
    """One browser context with the gate on; ``failed`` and ``errors`` collect what went wrong."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.aborted: list[str] = []
        self.failed: list[str] = []
        self.errors: list[str] = []
        context.route("**/*", self._gate)

    def _gate(self, route: Any) -> None:
        url = route.request.url
        if url.startswith(LOCAL) or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            self.aborted.append(url)
            route.abort()

    def page(self) -> Any:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("requestfailed", lambda r: self.failed.append(f"{r.url}: {r.failure}"))
        return page

    def open_file(self, path: Path) -> Any:
        """A saved map opened from disk, as an official opens the file they were sent."""
        page = self.page()
        page.goto(Path(path).resolve().as_uri())
        return settle(page)

    def open_output(self, output_html: str) -> Any:
        """A notebook's map output as Jupyter shows it (folium's srcdoc iframe); returns the map's frame."""
        page = self.page()
        page.set_content(f"<html><body style='width:1100px'>{output_html}</body></html>")
        frame = next(f for f in page.frames if f is not page.main_frame)
        frame.wait_for_load_state("load")
        return settle(frame)

    def clean(self) -> None:
        """Nothing went out, nothing failed, nothing was logged as an error."""
        assert self.aborted == [], f"requests outside 127.0.0.1: {self.aborted[:5]}"
        assert self.failed == [], f"failed requests: {self.failed[:5]}"
        assert self.errors == [], f"console errors: {self.errors[:5]}"


def settle(page: Any) -> Any:
    """Wait for Leaflet and its maps to be on the page, then for the network to rest."""
    page.wait_for_function("() => window.L && Object.keys(window).some(k => /^map_[0-9a-f]+$/.test(k))",
                           timeout=WAIT_MS)
    with contextlib.suppress(AttributeError):  # a frame has no networkidle of its own
        page.wait_for_load_state("networkidle", timeout=WAIT_MS)
    page.wait_for_timeout(400)  # Leaflet's zoom animation and label update
    return page


def rendered(page: Any) -> list[dict[str, Any]]:
    """What each Leaflet map of the page shows (see :data:`_MEASURE`)."""
    return page.evaluate(_MEASURE)


def tooltip_at(page: Any, lat: float, lon: float) -> str:
    """Move the mouse over ``(lat, lon)`` of the page's first map and return the tooltip text shown."""
    box = page.evaluate("""([lat, lon]) => {
      const m = Object.keys(window).filter(k => /^map_[0-9a-f]+$/.test(k)).map(k => window[k])[0];
      const p = m.latLngToContainerPoint([lat, lon]), r = m.getContainer().getBoundingClientRect();
      return [r.left + p.x, r.top + p.y]; }""", [lat, lon])
    page.mouse.move(box[0] - 3, box[1] - 3)
    page.mouse.move(box[0], box[1], steps=3)
    page.wait_for_selector(".leaflet-tooltip", timeout=WAIT_MS)
    return page.locator(".leaflet-tooltip").last.inner_text()


@contextlib.contextmanager
def offline_browser(require_tool: Any) -> Iterator[Any]:
    """``with offline_browser(require_tool) as new_session:`` -> ``new_session()`` gives a gated Session."""
    require_tool(Path(CHROMIUM).exists(), "Chromium", "apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require_tool(False, "the playwright Python package", "pip install playwright")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        contexts = []

        def new_session() -> Session:
            context = browser.new_context(viewport={"width": 1200, "height": 800}, locale="zh-CN")
            contexts.append(context)
            return Session(context)

        try:
            yield new_session
        finally:
            for context in contexts:
                context.close()
            browser.close()


def unescape_srcdoc(output_html: str) -> str:
    """The page inside folium's srcdoc iframe (for reading sizes, not for checks)."""
    start = output_html.index('srcdoc="') + len('srcdoc="')
    return html.unescape(output_html[start:output_html.index('"', start)])


def require_tool(pytestconfig: Any) -> Any:
    """``require_tool`` of tests/conftest.py (skip locally, fail under CI=true)."""
    for plugin in pytestconfig.pluginmanager.get_plugins():
        found = getattr(plugin, "require_tool", None)
        if callable(found) and str(getattr(plugin, "__file__", "")).endswith(os.path.join("tests", "conftest.py")):
            return found
    raise RuntimeError("tests/conftest.py with require_tool was not loaded")
