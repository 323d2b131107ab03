"""The viewer per role in a real browser (headless Chromium) against a live uvicorn on the two-street city.

Each role signs in by pasting its token, sees the work-order list of its scope
(the same orders the API gives that token, none from outside), opens an order
and sees the caller masked; roles with the right reveal the caller with a
reason (the access log holds it), the others see no reveal button, and a
leader sees no caller at all. Anonymous sees the map and a sign-in form, no
list. Nothing leaves 127.0.0.1 and no console error is logged.
"""

from __future__ import annotations

import chromium
import httpx
import pytest
from crawl import CANARY_NAME, CANARY_PHONE, HOME_STREET

from jngis.access import ADMIN

WAIT_MS = 60_000
MASKED_PHONE = CANARY_PHONE[:3] + "****" + CANARY_PHONE[-4:]
#: role -> (scope, what the order panel shows of the caller: "reveal", "masked" or "none")
ROLES = {"hotline": ((), "reveal"), "street": ((HOME_STREET,), "reveal"), "grid": (None, "masked"),
         "leader": ((HOME_STREET[:6],), "none")}


@pytest.fixture(scope="module")
def city(two_street_city_file, tmp_path_factory, request, copy_store):
    """The two-street city with users of each role and canary orders inside and outside the 街道."""
    from shapely.geometry import Point

    from jngis.crs import WGS84
    from jngis.store import open_store

    url = copy_store("sqlite", two_street_city_file, tmp_path_factory.mktemp("browser-roles"), request)
    with open_store(url) as store:
        grids = store.read_layer("grids")
        inside = grids[grids["street_code"] == HOME_STREET].iloc[0]
        outside = grids[grids["street_code"] != HOME_STREET].iloc[0]
        tokens, orders = {}, {}
        for role, (scope, _) in ROLES.items():
            tokens[role] = store.add_user(f"{role}测试员", role=role, principal=ADMIN,
                                          scope=scope if scope is not None else (inside["grid_code"],))[1]
        for where, grid in (("in", inside), ("out", outside)):
            point = grids.loc[[grid.name]].to_crs(WGS84).geometry.iloc[0].representative_point()
            assert isinstance(point, Point)
            order = store.create_order(point.x, point.y, category="环境卫生", description="楼道堆物",
                                       caller_name=CANARY_NAME, caller_phone=CANARY_PHONE, principal=ADMIN)
            store.transition(order["order_id"], "dispatched", principal=ADMIN)
            orders[where] = order["order_id"]
    return url, tokens, orders


def _sign_in(page, url: str, token: str, role: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#token-input", timeout=WAIT_MS)
    page.fill("#token-input", token)
    with page.expect_navigation(timeout=WAIT_MS):
        page.click("#signin button[type=submit]")
    page.wait_for_function(f"() => window.jngis.principal && window.jngis.principal.role === '{role}'",
                           timeout=WAIT_MS)


def test_each_role_in_the_viewer(city, live_server, require_tool, tmp_path):
    from jngis.store import open_store

    url, tokens, orders = city
    with live_server(url) as live, chromium.offline_browser(require_tool) as new_session:
        for role, (_, personal) in ROLES.items():
            session = new_session()
            page = session.page()
            _sign_in(page, live.url, tokens[role], role)
            assert role in page.evaluate("() => window.jngis.principal.role")
            assert "测试员" in page.locator("#who").inner_text()
            # the list: what the API gives this token, the order inside, never the one outside
            page.click("#orders-open")
            page.wait_for_selector("#order-list li", timeout=WAIT_MS)
            shown = page.eval_on_selector_all("#order-list li", "items => items.map(i => i.dataset.order)")
            api = httpx.get(f"{live.url}/workorders?limit=50",
                            headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=30).json()
            assert shown == [o["order_id"] for o in api["orders"]]
            assert orders["in"] in shown
            assert (orders["out"] in shown) == (role == "hotline"), role
            # an order: the caller masked, revealed only with a reason
            page.click(f"#order-list li[data-order='{orders['in']}']")
            page.wait_for_selector("#order-table", timeout=WAIT_MS)
            phone = page.locator("#order-table tr[data-field='caller_phone'] td")
            if personal == "none":
                assert phone.count() == 0 and page.locator("#reveal").count() == 0
            else:
                assert phone.inner_text() == MASKED_PHONE
                assert CANARY_PHONE not in page.content() and CANARY_NAME not in page.content()
            if personal == "masked":
                assert page.locator("#reveal").count() == 0
            if personal == "reveal":
                page.click("#reveal-open")
                page.fill("#reveal-reason", "浏览器测试回访核实")
                page.click("#reveal button[type=submit]")
                page.wait_for_selector("#order-table td.revealed", timeout=WAIT_MS)
                assert phone.inner_text() == CANARY_PHONE
                with open_store(url) as store:
                    last = store.access_log(principal=ADMIN).iloc[-1]
                assert (last["action"], last["target"], last["reason"]) == (
                    "personal.reveal", orders["in"], "浏览器测试回访核实")
            # the steps offered are the server's, one button each
            offered = page.eval_on_selector_all("#order-actions button[data-step]", "b => b.map(x => x.dataset.step)")
            detail = httpx.get(f"{live.url}/workorders/{orders['in']}",
                               headers={"Authorization": f"Bearer {tokens[role]}"}, timeout=30).json()
            assert offered == [action["action"] for action in detail["actions"]]
            page.screenshot(path=str(tmp_path / f"viewer-{role}.png"))
            # signing out forgets the token
            with page.expect_navigation(timeout=WAIT_MS):
                page.click("#signout")
            page.wait_for_selector("#token-input", timeout=WAIT_MS)
            assert page.evaluate("() => sessionStorage.getItem('jngis.token')") is None
            assert page.locator("#orders-open").is_hidden()
            session.clean()


def test_anonymous_sees_the_map_and_a_sign_in(city, live_server, require_tool):
    url, tokens, _ = city
    with live_server(url) as live, chromium.offline_browser(require_tool) as new_session:
        session = new_session()
        page = session.page()
        page.goto(live.url + "/")
        page.wait_for_function("() => window.jngis && window.jngis.ready === true", timeout=WAIT_MS)
        assert page.locator("#token-input").is_visible()
        assert page.locator("#orders-open").is_hidden()
        assert page.evaluate("() => window.jngis.principal.role") == "anonymous"
        # a wrong token is refused in words, and the page stays anonymous
        page.fill("#token-input", "jngis_0000000000_" + "x" * 43)
        page.click("#signin button[type=submit]")
        page.wait_for_function("() => document.getElementById('signin-status').textContent.includes('令牌无效')",
                               timeout=WAIT_MS)
        assert page.evaluate("() => sessionStorage.getItem('jngis.token')") is None
        session.errors = [e for e in session.errors if "401" not in e]  # the refused sign-in's own request
        session.clean()
