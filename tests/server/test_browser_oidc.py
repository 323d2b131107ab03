"""统一身份认证登录 in a real browser: headless Chromium, a live uvicorn, a real OIDC provider on loopback.

The viewer is sent to the provider's authorization endpoint (code flow, PKCE
S256, state and nonce), comes back, trades the code, and the server checks the
ID token with its nonce; then the page shows the orders of the 街道 the
token's role and scope claims name, and signing out forgets the token.

The attacks are made on the way through the provider (Playwright rewrites the
authorization request or its redirect back): a forged state, a code used
before, a challenge that is not the viewer's (so its verifier is wrong) and a
nonce that is not the viewer's. Each is refused, in words on the page, and the
page stays signed out.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import chromium
import httpx
import pytest
from crawl import CANARY_NAME, CANARY_PHONE, HOME_STREET
from oidc_provider import CLIENT_ID, Provider, s256

from jngis.access import ADMIN

WAIT_MS = 60_000
USER = {"sub": "li.si", "name": "李四", "role": "street", "scope": [HOME_STREET]}


@pytest.fixture(scope="module")
def city(two_street_city_file, tmp_path_factory, request, copy_store):
    """The two-street city with an open order inside the 街道 and one outside."""
    from shapely.geometry import Point

    from jngis.crs import WGS84
    from jngis.store import open_store

    url = copy_store("sqlite", two_street_city_file, tmp_path_factory.mktemp("browser-oidc"), request)
    orders = {}
    with open_store(url) as store:
        grids = store.read_layer("grids")
        for where, grid in (("in", grids[grids["street_code"] == HOME_STREET].iloc[0]),
                            ("out", grids[grids["street_code"] != HOME_STREET].iloc[0])):
            point = grids.loc[[grid.name]].to_crs(WGS84).geometry.iloc[0].representative_point()
            assert isinstance(point, Point)
            order = store.create_order(point.x, point.y, category="环境卫生", description="楼道堆物",
                                       caller_name=CANARY_NAME, caller_phone=CANARY_PHONE, principal=ADMIN)
            orders[where] = order["order_id"]
    return url, orders


@pytest.fixture(scope="module")
def served(city, live_server):
    url, orders = city
    with Provider(user=dict(USER)) as provider:
        live = live_server(url, JNGIS_OIDC_ISSUER=provider.issuer, JNGIS_OIDC_CLIENT_ID=CLIENT_ID,
                           JNGIS_AUTH_FAILURES="1000")
        provider.register(live.url + "/")
        with live:
            yield live, provider, orders, url


def _click_sign_in(page, live) -> None:
    page.goto(live.url + "/")
    page.wait_for_selector("#oidc-signin", timeout=WAIT_MS)
    page.click("#oidc-signin")


def _status(page, words: str) -> str:
    page.wait_for_function("(words) => { const s = document.getElementById('signin-status');"
                           " return s && s.textContent.includes(words); }", arg=words, timeout=WAIT_MS)
    return page.locator("#signin-status").inner_text()


def test_sign_in_through_the_provider(served, require_tool, tmp_path):
    live, provider, orders, _ = served
    with chromium.offline_browser(require_tool) as new_session:
        session = new_session()
        page = session.page()
        _click_sign_in(page, live)
        page.wait_for_function("() => window.jngis && window.jngis.principal"
                               " && window.jngis.principal.role === 'street'", timeout=WAIT_MS)
        assert "李四" in page.locator("#who").inner_text()
        assert urlsplit(page.url).query == ""  # the code left the address bar
        token = page.evaluate("() => sessionStorage.getItem('jngis.token')")
        assert token.count(".") == 2 and page.evaluate("() => sessionStorage.getItem('jngis.oidc')") is None
        assert [outcome for _, outcome in provider.exchanges] == ["ok"]
        # the orders the role and scope claims allow: the 街道's, not the other one
        page.click("#orders-open")
        page.wait_for_selector("#order-list li", timeout=WAIT_MS)
        shown = page.eval_on_selector_all("#order-list li", "items => items.map(i => i.dataset.order)")
        api = httpx.get(f"{live.url}/workorders?limit=50", headers={"Authorization": f"Bearer {token}"},
                        timeout=30).json()
        assert shown == [o["order_id"] for o in api["orders"]]
        assert orders["in"] in shown and orders["out"] not in shown
        page.screenshot(path=str(tmp_path / "viewer-oidc.png"))
        with page.expect_navigation(timeout=WAIT_MS):
            page.click("#signout")
        page.wait_for_selector("#oidc-signin", timeout=WAIT_MS)
        assert page.evaluate("() => sessionStorage.getItem('jngis.token')") is None
        assert page.locator("#orders-open").is_hidden()
        _forget_navigation_aborts(session)
        session.clean()


def _through_provider(page, provider, change_request=None, change_answer=None) -> None:
    """Rewrite the authorization request (its query) or the redirect back (its query) on the way."""
    def handle(route):
        url = route.request.url
        if change_request is not None:
            parts = urlsplit(url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            url = parts._replace(query=urlencode(change_request(query))).geturl()
        answer = route.fetch(url=url, max_redirects=0)
        location = answer.headers["location"]
        if change_answer is not None:
            parts = urlsplit(location)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            location = parts._replace(query=urlencode(change_answer(query))).geturl()
        route.fulfill(status=302, headers={"Location": location, "Cache-Control": "no-store"})

    page.route(f"{provider.issuer}/authorize*", handle)


def _used_code(provider: Provider, redirect_uri: str) -> str:
    """A code the viewer's client traded once already (a sign-in seen by someone else, replayed)."""
    verifier = secrets.token_urlsafe(32)
    back = httpx.get(f"{provider.issuer}/authorize", follow_redirects=False, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": redirect_uri, "scope": "openid",
        "state": "s" * 43, "nonce": "n" * 43, "code_challenge": s256(verifier), "code_challenge_method": "S256"})
    code = httpx.URL(back.headers["location"]).params["code"]
    traded = httpx.post(f"{provider.issuer}/token", data={"grant_type": "authorization_code", "code": code,
                                                          "redirect_uri": redirect_uri, "client_id": CLIENT_ID,
                                                          "code_verifier": verifier})
    assert traded.status_code == 200, traded.text
    return code


def _forget_navigation_aborts(session) -> None:
    """The page's own fetches still in flight when it leaves for the provider end as net::ERR_ABORTED
    (under load /versions/current may not have answered yet): not a failed request of the page."""
    session.failed[:] = [f for f in session.failed if not f.endswith(": net::ERR_ABORTED")]


def test_forged_answers_are_refused(served, require_tool):
    live, provider, _, url = served
    from jngis.store import open_store

    other = secrets.token_urlsafe(32)
    used = _used_code(provider, live.url + "/")
    cases = {
        "forged state": (None, lambda q: {**q, "state": other}, "state 不符"),
        "a wrong verifier": (lambda q: {**q, "code_challenge": s256(other)}, None, "校验失败"),
        "another nonce": (lambda q: {**q, "nonce": other}, None, "令牌无效"),
        "a code used before": (None, lambda q: {**q, "code": used}, "已使用"),
    }
    with chromium.offline_browser(require_tool) as new_session:
        for name, (change_request, change_answer, words) in cases.items():
            session = new_session()
            page = session.page()
            _through_provider(page, provider, change_request, change_answer)
            before = len(provider.exchanges)
            _click_sign_in(page, live)
            _status(page, words)
            assert page.evaluate("() => sessionStorage.getItem('jngis.token')") is None, name
            assert page.evaluate("() => window.jngis.principal.role") == "anonymous", name
            assert page.locator("#orders-open").is_hidden()
            exchanged = [outcome for _, outcome in provider.exchanges[before:]]
            assert exchanged == {"forged state": [], "a wrong verifier": ["wrong verifier"],
                                 "another nonce": ["ok"], "a code used before": ["code used before"]}[name], name
            # the refused requests' own console lines (400 from the provider, 401 from the server)
            session.errors = [e for e in session.errors if "400" not in e and "401" not in e]
            _forget_navigation_aborts(session)
            session.clean()
    with open_store(url) as store:
        log = store.access_log(principal=ADMIN)
    refused = log[log["action"] == "auth.failed"]
    assert "wrong nonce" in set(refused["reason"]) and set(refused["target"]) == {"jwt"}
