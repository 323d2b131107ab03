"""The evaluation dashboard and an order's department steps in a real browser (headless Chromium, offline).

A department's steps are taken through the page — sign, contact, on-site, reply — with the
buttons the server offers (jngis.workorders.actions_for), and the dashboard's figures change.
"""

from __future__ import annotations

import json
import shutil

import chromium
import httpx
from test_browser import WAIT_MS

from jngis.crs import WGS84


def _take(page, action, note=None):
    form = page.locator(f"#order-actions form[data-action='{action}']")
    form.wait_for(timeout=WAIT_MS)
    if note is not None:
        form.locator("input[name='note']").fill(note)
    loads = page.evaluate("() => window.jngisDashboard.loads")
    form.locator("button").click()
    page.wait_for_function(f"() => window.jngisDashboard.loads > {loads}", timeout=WAIT_MS)


def test_a_department_signs_and_replies_through_the_page(city_file, tmp_path, live_server, token, require_tool):
    from jngis.layers import read_layer
    from jngis.store import open_store

    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    with open_store(str(store)) as opened:
        opened.load_sample_departments()
    point = read_layer(city_file, "grids").to_crs(WGS84).iloc[2].geometry.representative_point()
    auth = {"Authorization": f"Bearer {token}"}
    with live_server(store) as live, chromium.offline_browser(require_tool) as new_session:
        api = httpx.Client(base_url=live.url, timeout=60, headers=auth)
        order = api.post("/workorders", json={"lon": point.x, "lat": point.y, "category": "环境卫生"}).json()
        assert api.post(f"/workorders/{order['order_id']}/dispatch",
                        json={"department_code": "catalogue"}).status_code == 200
        period = order["received_at"][:7]
        session = new_session()  # only 127.0.0.1 is reachable; console errors and failed requests recorded
        page = session.page()
        page.set_viewport_size({"width": 1280, "height": 1000})
        # signed in on the viewer before (the figures need evaluation.read): the token is in sessionStorage
        page.add_init_script(f"sessionStorage.setItem('jngis.token', {json.dumps(token)})")
        page.goto(f"{live.url}/evaluation/dashboard?period={period}&level=department")
        page.wait_for_function("() => window.jngisDashboard.ready === true", timeout=WAIT_MS)
        before = page.evaluate("() => window.jngisDashboard.report.totals")
        assert before["signed"] == 0 and before["received"] >= 1
        assert page.locator("#dash-ranking canvas").count() == 1 and page.locator("#dash-trend canvas").count() == 1

        page.fill("#order-id", order["order_id"])
        page.fill("#order-token", token)
        page.click("#order-form button")
        page.locator("#order-actions form[data-action='sign']").wait_for(timeout=WAIT_MS)
        assert page.locator("#order-actions form[data-action='sign'] button").inner_text() == "签收"
        _take(page, "sign")
        _take(page, "contact")
        _take(page, "on_site", note="已到现场")
        _take(page, "reply", note="垃圾已清运")

        after = page.evaluate("() => window.jngisDashboard.report.totals")
        assert after["signed"] == before["signed"] + 1 and after["resolved"] == before["resolved"] + 1
        shown = page.locator("#dash-totals .figure[data-name='signed_on_time'] b").inner_text()
        assert shown == str(after["signed_on_time"])
        steps = [r["action"] for r in api.get(f"/workorders/{order['order_id']}/loop").json()["trail"]]
        assert steps[-4:] == ["sign", "contact", "on_site", "reply"]
        assert "回复：已完成" in page.locator("#order-status").inner_text()
        assert "回复" in page.locator("#order-trail").inner_text()  # the timeline in Chinese
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        session.clean()
