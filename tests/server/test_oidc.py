"""The identity provider's sign-in over real HTTP: the provider, GET /auth/oidc, POST /auth/oidc/signin.

A real OpenID Connect provider runs on loopback (``oidc_provider.py``: discovery,
JWKS, authorization and token endpoints with PKCE, an RS256 ID token from a key
generated here). The server reads its discovery document at start; the test
walks the flow as the viewer does (authorize with an S256 challenge, trade the
code with the verifier, give the ID token and nonce to the server) and checks
every refusal: a replayed code, a wrong verifier (at the provider), a wrong or
missing nonce and a token for another client (at the server, the one 401 of
every failed sign-in), and a discovery document naming another issuer.
"""

from __future__ import annotations

import base64
import json
import secrets

import httpx
import pytest
from crawl import HOME_STREET
from fastapi.testclient import TestClient
from oidc_provider import CLIENT_ID, Provider, s256

from jngis.errors import ParameterError
from jngis.jwt_auth import OidcProvider
from jngis.server.app import create_app

REDIRECT = "http://127.0.0.1:9/"  # the viewer's address as the provider knows it (never fetched)
USER = {"sub": "zhang.san", "name": "张三", "role": "street", "scope": [HOME_STREET]}


@pytest.fixture(scope="module")
def provider():
    with Provider(user=dict(USER)) as running:
        running.register(REDIRECT)
        yield running


@pytest.fixture(scope="module")
def client(module_store, settings_for, provider):
    app = create_app(settings_for(module_store, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID,
                                  auth_failures=1000))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def _authorize(provider: Provider, verifier: str, nonce: str, **changes: str) -> str:
    """The code the provider's authorization endpoint sends back (the browser's redirect, not followed)."""
    state = secrets.token_urlsafe(32)
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "scope": "openid profile",
             "state": state, "nonce": nonce, "code_challenge": s256(verifier), "code_challenge_method": "S256",
             **changes}
    answer = httpx.get(f"{provider.issuer}/authorize", params=query, follow_redirects=False)
    assert answer.status_code == 302, answer.text
    back = httpx.URL(answer.headers["location"])
    assert back.params["state"] == state and back.params["iss"] == provider.issuer
    return back.params["code"]


def _trade(provider: Provider, code: str, verifier: str) -> httpx.Response:
    return httpx.post(f"{provider.issuer}/token", data={"grant_type": "authorization_code", "code": code,
                                                        "redirect_uri": REDIRECT, "client_id": CLIENT_ID,
                                                        "code_verifier": verifier},
                      headers={"Origin": REDIRECT.rstrip("/")})


def _flow(provider: Provider, nonce: str) -> str:
    verifier = secrets.token_urlsafe(32)
    answer = _trade(provider, _authorize(provider, verifier, nonce), verifier)
    assert answer.status_code == 200, answer.text
    return answer.json()["id_token"]


def test_the_provider_checks_pkce_and_uses_a_code_once(provider):
    verifier = secrets.token_urlsafe(32)
    code = _authorize(provider, verifier, "n" * 43)
    assert _trade(provider, code, secrets.token_urlsafe(32)).status_code == 400  # another verifier
    assert _trade(provider, code, verifier).status_code == 400  # the code was tried once already
    fresh = _authorize(provider, verifier, "n" * 43)
    good = _trade(provider, fresh, verifier)
    assert good.status_code == 200 and good.headers["access-control-allow-origin"] == REDIRECT.rstrip("/")
    assert _trade(provider, fresh, verifier).json()["error"] == "invalid_grant"  # replayed
    assert [o for c, o in provider.exchanges if c == code] == ["wrong verifier", "code used before"]
    assert [o for c, o in provider.exchanges if c == fresh] == ["ok", "code used before"]
    plain = httpx.get(f"{provider.issuer}/authorize", follow_redirects=False,
                      params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
                              "scope": "openid", "state": "s", "code_challenge": verifier,
                              "code_challenge_method": "plain"})
    assert httpx.URL(plain.headers["location"]).params["error"] == "invalid_request"  # S256 only


def test_the_viewer_is_told_where_to_sign_in(client, provider, module_store, settings_for):
    config = client.get("/auth/oidc").json()
    assert config == {"enabled": True, "issuer": provider.issuer, "client_id": CLIENT_ID,
                      "authorization_endpoint": f"{provider.issuer}/authorize",
                      "token_endpoint": f"{provider.issuer}/token", "end_session_endpoint": None,
                      "scope": "openid profile", "code_challenge_method": "S256"}
    with TestClient(create_app(settings_for(module_store))) as plain:
        assert plain.get("/auth/oidc").json() == {"enabled": False}
        # no provider: a sign-in with an ID token is refused like any bad token
        refused = plain.post("/auth/oidc/signin", json={"id_token": _flow(provider, "n" * 43), "nonce": "n" * 43})
        assert refused.status_code == 401


def test_the_id_token_signs_in_with_its_nonce(client, provider):
    nonce = secrets.token_urlsafe(32)
    id_token = _flow(provider, nonce)
    signed_in = client.post("/auth/oidc/signin", json={"id_token": id_token, "nonce": nonce})
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.headers["cache-control"] == "no-store"
    principal = signed_in.json()["principal"]
    assert (principal["id"], principal["role"], principal["scope"]) == ("idp:zhang.san", "street", [HOME_STREET])
    # then it is the bearer token, as a pasted JWT: orders of the 街道 only
    bearer = {"Authorization": f"Bearer {id_token}"}
    orders = client.get("/workorders?limit=1000", headers=bearer)
    assert orders.status_code == 200
    assert {o["street_code"] for o in orders.json()["orders"]} <= {HOME_STREET}
    # refusals: all the one answer of a failed sign-in
    other = secrets.token_urlsafe(32)
    header, payload, signature = id_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "nonce": other}).encode()).rstrip(b"=").decode()
    refusals = {
        "another nonce": client.post("/auth/oidc/signin", json={"id_token": id_token, "nonce": other}),
        "no nonce in the token": client.post("/auth/oidc/signin", json={
            "id_token": provider.id_token(_grant(provider, nonce=None)), "nonce": nonce}),
        "another client": client.post("/auth/oidc/signin", json={
            "id_token": provider.id_token(_grant(provider, client_id="someone-else", nonce=nonce)), "nonce": nonce}),
        "nonce swapped in": client.post("/auth/oidc/signin", json={
            "id_token": f"{header}.{forged}.{signature}", "nonce": other}),
        "a user token": client.post("/auth/oidc/signin", json={"id_token": "jngis_" + "0" * 10 + "_x" * 20,
                                                               "nonce": nonce}),
    }
    answers = {name: (r.status_code, r.json()) for name, r in refusals.items()}
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 1, answers
    assert answers["another nonce"][0] == 401
    logged = client.get("/audit", headers={"Authorization": "Bearer test-token-3f9a"}).text
    assert "wrong nonce" in logged and nonce not in logged and id_token not in logged


def _grant(provider: Provider, *, nonce: str | None, client_id: str = CLIENT_ID):
    from oidc_provider import _Grant

    return _Grant(client_id, REDIRECT, "", nonce, dict(USER), 0)


def test_discovery_is_checked(provider):
    document = provider.discovery()
    found = OidcProvider.discover(provider.issuer)  # fetched from the well-known address
    assert (found.token_endpoint, found.jwks_uri) == (document["token_endpoint"], document["jwks_uri"])
    with pytest.raises(ParameterError, match="exactly"):
        OidcProvider.discover(provider.issuer, {**document, "issuer": "https://evil.example"})
    with pytest.raises(ParameterError, match="S256"):
        OidcProvider.discover(provider.issuer, {**document, "code_challenge_methods_supported": ["plain"]})
    with pytest.raises(ParameterError, match="https"):
        OidcProvider.discover("http://idp.example", {**document, "issuer": "http://idp.example"})
    with pytest.raises(ParameterError, match="https"):
        OidcProvider.discover(provider.issuer, {**document, "token_endpoint": "http://idp.example/token"})
