"""The department loop in a real browser (headless Chromium, offline): the viewer and the evaluation dashboard.

A department handler and a 街道 handler — users of the store, each signing in by pasting its token in
the viewer, as a user would — work the loop through the page: the department sees only the orders
dispatched to it and signs, contacts, visits and replies with the buttons the server offers
(jngis.workorders.actions_for); the 街道 filters its list by deadline card (黄牌/红牌), calls a
department on an order and rates the response, then follows the link to the evaluation dashboard,
which shows the changed figures, and comes back. The dashboard's own order panel (an order opened by
number with a pasted token, the figures refreshed after each step) is tested on its own.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil

import chromium
import httpx
from test_browser import WAIT_MS
from test_browser_roles import _sign_in

from jngis.access import ADMIN
from jngis.crs import WGS84
from jngis.workorders.clocks import RESOLVE_WORKING_DAYS, deadline, due_fields


def _received_for_a_yellow_card(now: dt.datetime) -> dt.datetime:
    """The latest whole hour before ``now`` at which an order received shows a yellow card at ``now``
    (past its warning, not yet due): on any day of the week, a weekend or a holiday included."""
    for hours in range(2, 24 * 30):
        received = now - dt.timedelta(hours=hours)
        due = due_fields(received, RESOLVE_WORKING_DAYS)
        if deadline("received", due["due_at"], due["warn_at"], now=now) == "warning":
            return received
    raise AssertionError(f"no time in the 30 days before {now} gives a yellow card at it")


def _take(page, action, note=None):
    form = page.locator(f"#order-actions form[data-action='{action}']")
    form.wait_for(timeout=WAIT_MS)
    if note is not None:
        form.locator("input[name='note']").fill(note)
    loads = page.evaluate("() => window.jngisDashboard.loads")
    form.locator("button").click()
    page.wait_for_function(f"() => window.jngisDashboard.loads > {loads}", timeout=WAIT_MS)


def test_the_dashboard_order_panel_refreshes_the_figures(city_file, tmp_path, live_server, token, require_tool):
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


def _step(page, step, note=None):
    """Take ``step`` with its button in the order's panel; wait for the panel drawn again after it."""
    button = page.locator(f"#order-actions button[data-step='{step}']")
    button.wait_for(timeout=WAIT_MS)
    if note is not None:
        page.fill("#action-note", note)
    page.evaluate("() => { document.getElementById('order-actions').dataset.stale = 'yes'; }")
    button.click()
    page.wait_for_function("() => { const box = document.getElementById('order-actions');"
                           " return box && box.dataset.stale !== 'yes'; }", timeout=WAIT_MS)
    page.wait_for_load_state("networkidle")  # the map's counts refreshed after the step, too


def _listed(page, card=None):
    """The ids the viewer's list shows, after filtering by deadline ``card`` (None: every card)."""
    page.select_option("#order-card", card or "")
    page.evaluate("() => { document.getElementById('order-count').textContent = ''; }")
    page.click("#order-filters button[type=submit]")
    page.wait_for_function("() => document.getElementById('order-count').textContent.startsWith('共')",
                           timeout=WAIT_MS)
    return page.eval_on_selector_all("#order-list li", "items => items.map(i => i.dataset.order)")


def _open(page, order_id):
    page.locator(f"#order-list li[data-order='{order_id}']").click()
    page.wait_for_function(f"() => document.getElementById('order-detail').dataset.order === '{order_id}'"
                           " && document.getElementById('order-actions') !== null", timeout=WAIT_MS)


def _clean(page, session):
    """session.clean(), but Chromium reports the map counts' revalidation (a 304 to a no-store fetch with
    If-None-Match, which the page reads as "unchanged") as net::ERR_ABORTED: that one is not a failure."""
    assert "统计读取失败" not in page.locator("#stats-status").inner_text()
    session.failed[:] = [f for f in session.failed if not f.endswith("/stats/grids: net::ERR_ABORTED")]
    session.clean()


def test_a_department_and_a_street_work_the_loop_in_the_viewer(city_file, tmp_path, live_server, require_tool):
    from jngis.layers import read_layer
    from jngis.store import open_store
    from jngis.workorders import now_cst

    store = tmp_path / "city.gpkg"
    shutil.copy(city_file, store)
    grids = read_layer(city_file, "grids").to_crs(WGS84)
    points = [g.representative_point() for g in grids.geometry.iloc[:4]]
    street_code = str(grids["community_code"].iloc[0])[:9]
    with open_store(str(store)) as opened:
        opened.load_sample_departments()
        department = opened.add_user("城管处置员", role="department", scope=("370102-CG",), principal=ADMIN)[1]
        street = opened.add_user("街道处置员", role="street", scope=(street_code,), principal=ADMIN)[1]
        orders = {}
        for name, point, category, target in (("ours", points[0], "环境卫生", "catalogue"),
                                              ("housing", points[1], "物业管理", "catalogue"),
                                              ("street", points[2], "噪音扰民", None)):
            order = opened.create_order(point.x, point.y, category=category, principal=ADMIN)
            opened.step(order["order_id"], "dispatched", department_code=target, principal=ADMIN)
            orders[name] = order["order_id"]
        received = _received_for_a_yellow_card(now_cst())
        orders["yellow"] = opened.create_order(points[3].x, points[3].y, category="环境卫生", at=received,
                                               principal=ADMIN)["order_id"]
    with live_server(store) as live, chromium.offline_browser(require_tool) as new_session:
        headers = {"department": {"Authorization": f"Bearer {department}"},
                   "street": {"Authorization": f"Bearer {street}"}}
        api = httpx.Client(base_url=live.url, timeout=60)

        # -- the department: only the orders dispatched to it, and its steps through the page
        session = new_session()
        page = session.page()
        page.set_viewport_size({"width": 1280, "height": 1000})
        _sign_in(page, live.url, department, "department")
        page.wait_for_load_state("networkidle")
        assert page.locator("#dashboard-link").is_hidden()  # no evaluation.read for departments
        page.click("#orders-open")
        shown = _listed(page)
        expected = [o["order_id"] for o in api.get("/workorders?limit=100", headers=headers["department"])
                    .json()["orders"]]
        assert shown == expected == [orders["ours"]]
        _open(page, orders["ours"])
        _step(page, "sign")
        _step(page, "contact")
        _step(page, "on_site", note="已到现场")
        _step(page, "reply", note="垃圾已清运")
        trail = api.get(f"/workorders/{orders['ours']}/trail", headers=headers["department"]).json()["trail"]
        assert [r["action"] for r in trail][-4:] == ["sign", "contact", "on_site", "reply"]
        assert "回复" in page.locator("#order-trail").inner_text()
        page.screenshot(path=str(tmp_path / "viewer-department.png"), full_page=True)
        _clean(page, session)

        # -- the 街道: the card filter, a call on a department and its rating, the dashboard and back
        session = new_session()
        page = session.page()
        page.set_viewport_size({"width": 1280, "height": 1000})
        _sign_in(page, live.url, street, "street")
        page.wait_for_load_state("networkidle")
        page.click("#orders-open")
        for card in ("yellow", "red"):
            shown = _listed(page, card)
            answer = api.get(f"/workorders?card={card}&limit=100", headers=headers["street"]).json()
            assert shown == [o["order_id"] for o in answer["orders"]] and shown, card
            flags = page.eval_on_selector_all("#order-list li", "items => items.map("
                                              "i => i.querySelector('.card-flag').dataset.card)")
            assert set(flags) == {card}
        assert orders["yellow"] not in _listed(page, "red")
        assert orders["yellow"] in _listed(page, "yellow")
        assert "黄牌" in page.locator(f"#order-list li[data-order='{orders['yellow']}']").inner_text()
        everything = _listed(page)
        assert {orders["ours"], orders["street"]} <= set(everything) and len(everything) > len(_listed(page, "red"))

        _listed(page)
        _open(page, orders["street"])
        page.wait_for_selector("#call-form[data-ready='true']", timeout=WAIT_MS)
        page.select_option("#call-department", "370102-CG")
        page.fill("#call-problem", "夜间施工噪音反复，请城管到场")
        page.click("#call-form button[type=submit]")
        page.wait_for_selector("#order-calls li[data-department='370102-CG']", timeout=WAIT_MS)
        loop = api.get(f"/workorders/{orders['street']}/loop", headers=headers["street"]).json()
        call_id = loop["calls"][-1]["call_id"]
        assert [d["department_code"] for d in loop["calls"][-1]["departments"]] == ["370102-CG"]
        for call_step in ("sign", "contact", "done"):  # the department answers the call
            answered = api.post(f"/calls/{call_id}/departments/370102-CG/{call_step}", headers=headers["department"])
            assert answered.status_code == 200, answered.text
        page.locator(f"#order-list li[data-order='{orders['street']}']").click()
        called = page.locator(f"#order-calls li[data-call='{call_id}'][data-department='370102-CG']")
        called.locator("form.rating-form").wait_for(timeout=WAIT_MS)
        assert "办结时间" in called.inner_text()
        called.locator("select[name=rating]").select_option("4")
        called.locator("input[name=note]").fill("响应及时")
        called.locator("button[type=submit]").click()
        selector = f"#order-calls li[data-call='{call_id}'] .rating"
        page.wait_for_function(f"() => document.querySelector({json.dumps(selector)}) !== null", timeout=WAIT_MS)
        assert "评分 4" in called.inner_text()
        rated = api.get(f"/calls/{call_id}", headers=headers["street"]).json()["departments"][0]
        assert (rated["rating"], rated["rating_note"]) == (4, "响应及时")

        # the dashboard, reached from the viewer: the month's figures with the new 签收 and rating
        link = page.locator("#dashboard-link")
        assert link.is_visible()
        with page.expect_navigation(timeout=WAIT_MS):
            link.click()
        page.wait_for_function("() => window.jngisDashboard && window.jngisDashboard.ready === true",
                               timeout=WAIT_MS)
        totals = page.evaluate("() => window.jngisDashboard.report.totals")
        period = page.evaluate("() => window.jngisDashboard.report.period")
        figures = api.get(f"/evaluation?period={period}&level=department", headers=headers["street"]).json()
        assert totals == figures["totals"] and totals["signed"] >= 1 and totals["ratings"] >= 1
        cg = next(f for f in figures["figures"] if f["unit"] == "370102-CG")
        assert (cg["signed"], cg["ratings"], cg["rating_sum"]) == (1, 1, 4)
        shown = page.locator("#dash-totals .figure[data-name='signed_on_time'] b").inner_text()
        assert shown == str(totals["signed_on_time"])
        page.screenshot(path=str(tmp_path / "dashboard-street.png"), full_page=True)
        with page.expect_navigation(timeout=WAIT_MS):
            page.click(".dash-head a.back")
        page.wait_for_function("() => window.jngis.principal && window.jngis.principal.role === 'street'",
                               timeout=WAIT_MS)
        assert page.locator("#dashboard-link").is_visible()
        _clean(page, session)
