"""Boundary versions in a real browser: a plan adopted while the page is open shows without a reload.

Headless Chromium (tests/chromium.py, network cut) against a live uvicorn on
the slice. The page shows version n; a redraw of the communities and its
regridding is adopted through the library (another process, as a planner's
notebook would); within seconds the page draws the new grids, colours each
by the new version's counts, and the compare mode outlines the changed
communities, highlights the moved units and lists their households.
"""

from __future__ import annotations

import shutil
import time

import httpx
import pytest
from chromium import WAIT_MS, offline_browser
from shapely.geometry import shape

SWITCH_SECONDS = 60


@pytest.fixture
def plan(slice_city):
    """A redraw of the slice (communities of 1,000-2,000 households) and its grids."""
    import jngis
    from jngis.grids import make_grids
    from jngis.versions import Boundaries, plan_communities

    plan = jngis.rebalance(slice_city.units, min_households=1000, max_households=2000)
    communities = plan_communities(plan, Boundaries.of(slice_city))
    units = slice_city.units.assign(community_code=plan.assignment.reindex(slice_city.units["unit_id"]).to_numpy())
    return plan, make_grids(communities, units, seed=0)


def idle(page) -> None:
    page.wait_for_function(
        "() => new Promise(done => { const map = window.jngis.map;"
        " if (map.loaded() && map.areTilesLoaded()) { map.once('idle', () => done(true)); map.triggerRepaint(); }"
        " else { map.once('idle', () => done(true)); } })", timeout=WAIT_MS)


def drawn(page) -> list[dict]:
    """Every grid drawn in view: its code, and the open orders its colour comes from (feature-state)."""
    return page.evaluate("() => window.jngis.map.queryRenderedFeatures({layers: ['fill-orders']})"
                         ".map(f => ({code: f.properties.grid_code, open: f.state.open}))")


def test_a_plan_adopted_while_the_page_is_open_redraws_it(city_file, tmp_path, live_server, require_tool, plan):
    from jngis.store import open_store

    store_path = tmp_path / "city.gpkg"
    shutil.copy(city_file, store_path)
    rebalanced, grids = plan
    with live_server(store_path, JNGIS_TILE_GEOMETRY_DIR=str(tmp_path), JNGIS_STATS_CACHE_DIR=str(tmp_path)) as live, \
            offline_browser(require_tool) as new_session:
        api = httpx.Client(base_url=live.url, timeout=30)
        session = new_session()
        page = session.page()
        # Chromium reports a fetch answered 304 (the counts' ETag poll) as a failed request too
        not_modified: list[str] = []
        page.on("response", lambda r: not_modified.append(r.url) if r.status == 304 else None)
        page.goto(live.url + "/")
        page.wait_for_function("() => window.jngis && window.jngis.ready === true", timeout=WAIT_MS)
        before = page.evaluate("() => window.jngis.version")
        assert page.locator("#compare").is_disabled()  # nothing to compare with yet
        west, south, east, north = api.get("/layers").json()["bounds"]
        page.evaluate("([lon, lat]) => window.jngis.map.jumpTo({center: [lon, lat], zoom: 13})",
                      [(west + east) / 2, (south + north) / 2])
        idle(page)
        old_codes = {row["code"] for row in drawn(page)}
        assert old_codes

        with open_store(store_path) as store:  # the planner's notebook, another process's view of the store
            record = store.adopt(rebalanced, grids=grids, note="社区调整方案")
        adopted = time.monotonic()
        page.wait_for_function("(v) => window.jngis.version === v && window.jngis.versionSwitches >= 1",
                               arg=record["version_id"], timeout=SWITCH_SECONDS * 1000)
        print(f"the open page switched {time.monotonic() - adopted:.1f} s after the adoption")
        assert page.evaluate("() => window.jngis.version") > before
        # tiles of the new version only, coloured by its counts
        page.wait_for_function("(v) => window.jngis.map.getSource('grids').tiles[0].includes('/v' + v + '/')",
                               arg=record["version_id"], timeout=WAIT_MS)
        idle(page)
        stats = api.get("/stats/grids")
        assert stats.headers["x-jngis-version"] == str(record["version_id"])
        body = stats.json()
        counts = dict(zip(body["grid_code"], body["columns"]["open_orders"]))
        shown = drawn(page)
        new_codes = set(grids["grid_code"])
        assert shown and {row["code"] for row in shown} <= new_codes
        assert {row["code"] for row in shown} != old_codes
        page.wait_for_function("() => window.jngis.statsLoaded >= 2", timeout=WAIT_MS)
        for row in drawn(page):
            assert row["open"] == counts[row["code"]], f"grid {row['code']} coloured by another count"
        # the status line is written when the version list is read again, after the switch
        page.wait_for_function("(v) => document.getElementById('version-status').textContent.includes('第' + v + '版')",
                               arg=record["version_id"], timeout=WAIT_MS)
        options = page.locator("#version-select option").all_inner_texts()
        assert any("现行" in text for text in options) and len(options) == 2

        # compare mode: the communities before (dashed), the changed ones outlined, moved units, households
        diff = api.get(f"/versions/{record['version_id']}").json()["diff"]
        assert diff["units"] and diff["communities"]
        page.locator("#compare").check()
        page.wait_for_selector("#compare-list tbody tr", timeout=WAIT_MS)
        rows = page.locator("#compare-list tbody tr")
        assert rows.count() == len(diff["communities"])
        first = diff["communities"][0]
        assert f"{first['households_after']:,}" in rows.first.inner_text()
        page.wait_for_function("() => window.jngis.map.getSource('compare-before') && "
                               "window.jngis.map.isSourceLoaded('compare-before')", timeout=WAIT_MS)
        before_lines = page.evaluate("() => window.jngis.map.querySourceFeatures('compare-before').length")
        assert before_lines > 0
        unit = diff["units"][0]["unit_id"]
        point = shape(api.get(f"/collections/units/items/{unit}").json()["geometry"]).representative_point()
        page.evaluate("([lon, lat]) => window.jngis.map.jumpTo({center: [lon, lat], zoom: 16})", [point.x, point.y])
        idle(page)
        moved = page.evaluate("() => window.jngis.map.queryRenderedFeatures({layers: ['compare-units']})"
                              ".map(f => f.properties.unit_id)")
        assert unit in moved and set(moved) <= {row["unit_id"] for row in diff["units"]}
        page.screenshot(path=str(tmp_path / "compare.png"))
        assert session.aborted == [] and session.errors == [], (session.aborted, session.errors)
        failed = [f for f in session.failed if f.rsplit(": ", 1)[0] not in not_modified]
        assert failed == [], failed
