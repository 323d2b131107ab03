"""Signing in over HTTP: users' tokens, one answer for every failure, the failure throttle, JWTs.

- Every failure (unknown token id, wrong secret, expired, disabled, rotated
  away, malformed, another scheme) gets the same status, body and headers, so
  an answer says nothing about a token; the time an unknown id and a wrong
  secret take is the same (one scrypt each).
- A client that keeps failing gets 429 with Retry-After, even with a good
  token, until the window has passed; other clients are not slowed.
- JWTs from a locally generated RSA key pair (``JNGIS_JWKS`` a JWKS file):
  accepted with the right issuer, audience and expiry, mapped to role and
  scope; ``alg: none``, another key, another audience, another issuer and an
  expired token are refused like any bad token.
- ``JNGIS_ANONYMOUS=off``: every data route answers 401 without a token (the
  viewer page, its files and /healthz stay open) and tiles are private.
"""

from __future__ import annotations

import json
import re
import statistics
import time

import pytest
from crawl import HOME_STREET, served_routes
from fastapi.testclient import TestClient

from jngis.access import ADMIN
from jngis.server.app import create_app

ISSUER = "https://idp.jinan.example"
AUDIENCE = "jngis"


@pytest.fixture(scope="module")
def store_url(module_store) -> str:
    return str(module_store)


def _app(store_url, settings_for, **overrides) -> TestClient:
    return TestClient(create_app(settings_for(store_url, **overrides)), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def tokens(store_url) -> dict[str, str]:
    """A good token, and tokens that fail each way (same form, so only the store can tell)."""
    import datetime as dt

    from jngis.store import open_store
    from jngis.workorders import now_cst

    street = (HOME_STREET,)  # the slice city's one 街道
    with open_store(store_url) as store:
        store.list_users(principal=ADMIN)  # the users table is made on first use
        expires = now_cst() + dt.timedelta(seconds=3)
        expiring = store.add_user("到期用户", role="street", scope=street, principal=ADMIN,
                                  expires=expires.strftime("%Y-%m-%dT%H:%M:%S"))[1]
        good = store.add_user("好用户", role="street", scope=street, principal=ADMIN)[1]
        disabled_user, disabled = store.add_user("停用用户", role="street", scope=street, principal=ADMIN)
        store.disable_user(disabled_user["user_id"], principal=ADMIN)
        rotated_user, rotated = store.add_user("换令牌用户", role="street", scope=street, principal=ADMIN)
        store.rotate_token(rotated_user["user_id"], principal=ADMIN)
    time.sleep(max(0.0, (expires - now_cst()).total_seconds()) + 1.1)
    token_id, secret = good.split("_")[1], good.split("_", 2)[2]
    return {
        "good": good,
        "unknown id": f"jngis_{'0' * 10}_{secret}",
        "wrong secret": f"jngis_{token_id}_{'x' * len(secret)}",
        "disabled": disabled,
        "rotated away": rotated,
        "expired": expiring,
        "malformed": "jngis_nothex_abc",
        "not a token": "hello",
    }


FAILURES = ("unknown id", "wrong secret", "disabled", "rotated away", "expired", "malformed", "not a token")


def test_every_failed_sign_in_gets_the_same_answer(store_url, settings_for, tokens):
    with _app(store_url, settings_for, auth_failures=1000) as client:
        assert client.get("/workorders", headers={"Authorization": f"Bearer {tokens['good']}"}).status_code == 200
        answers = {}
        for name in FAILURES:
            response = client.get("/workorders", headers={"Authorization": f"Bearer {tokens[name]}"})
            answers[name] = (response.status_code, response.text,
                             {k: v for k, v in response.headers.items() if k not in ("content-length", "date")})
        basic = client.get("/workorders", headers={"Authorization": "Basic dTpw"})
        answers["basic"] = (basic.status_code, basic.text,
                            {k: v for k, v in basic.headers.items() if k not in ("content-length", "date")})
    assert len(set(json.dumps(a, sort_keys=True) for a in answers.values())) == 1, answers
    status, text, headers = answers["unknown id"]
    assert status == 401 and headers["www-authenticate"] == "Bearer"
    assert tokens["good"].split("_")[1] not in text


def test_an_unknown_id_takes_as_long_as_a_wrong_secret(store_url, tokens):
    """The store compares against a dummy hash when the id is unknown: both cost one scrypt."""
    from jngis.errors import AuthenticationError
    from jngis.store import open_store

    def median(token: str) -> float:
        times = []
        for _ in range(9):
            start = time.perf_counter()
            with pytest.raises(AuthenticationError):
                store.authenticate(token)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    with open_store(store_url) as store:
        median(tokens["wrong secret"])  # warm the connection
        unknown, wrong = median(tokens["unknown id"]), median(tokens["wrong secret"])
    print(f"\nauthenticate: unknown id {unknown * 1000:.1f} ms, wrong secret {wrong * 1000:.1f} ms")
    assert 0.5 < unknown / wrong < 2.0


def test_repeated_failures_from_one_client_are_slowed_down(store_url, settings_for, tokens):
    limit = 5
    with _app(store_url, settings_for, auth_failures=limit, auth_window_seconds=2) as client:
        bad = {"Authorization": f"Bearer {tokens['wrong secret']}"}
        statuses = [client.get("/workorders", headers=bad).status_code for _ in range(limit)]
        assert statuses == [401] * limit
        blocked = client.get("/workorders", headers=bad)
        assert blocked.status_code == 429
        retry = int(blocked.headers["retry-after"])
        assert 1 <= retry <= 2
        # while blocked even the right token waits: guesses cannot be mixed with good sign-ins
        assert client.get("/workorders", headers={"Authorization": f"Bearer {tokens['good']}"}).status_code == 429
        # anonymous reading is not a sign-in and is not slowed
        assert client.get("/layers").status_code == 200
        time.sleep(retry + 0.2)
        assert client.get("/workorders", headers={"Authorization": f"Bearer {tokens['good']}"}).status_code == 200


# -- JWT ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """An RSA key pair of the "identity provider", another one, and the JWKS file of the first."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    provider = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.public_key()))
    jwks = tmp_path_factory.mktemp("idp") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    return provider, stranger, jwks


def _jwt(key, **claims) -> str:
    import jwt

    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-idp-7", "name": "统一认证用户", "role": "street",
            "scope": [HOME_STREET], "iat": now, "exp": now + 600, **claims}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})


def _unsigned(**claims) -> str:
    import base64

    def part(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-idp-7", "name": "x", "role": "admin", "scope": [],
            "iat": now, "exp": now + 600, **claims}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}."


def test_jwts_over_http(store_url, settings_for, keys):
    provider, stranger, jwks = keys
    with _app(store_url, settings_for, jwks=str(jwks), jwt_issuer=ISSUER, jwt_audience=AUDIENCE,
              auth_failures=1000) as client:
        good = client.get("/layers", headers={"Authorization": f"Bearer {_jwt(provider)}"})
        assert good.status_code == 200
        assert good.json()["principal"] == {**good.json()["principal"], "id": "idp:u-idp-7", "role": "street",
                                            "scope": [HOME_STREET]}
        listed = client.get("/workorders", headers={"Authorization": f"Bearer {_jwt(provider)}"})
        assert listed.status_code == 200
        assert all(o["street_code"] == HOME_STREET for o in listed.json()["orders"])
        refused = {
            "alg none": _unsigned(),
            "another key": _jwt(stranger),
            "another audience": _jwt(provider, aud="someone-else"),
            "another issuer": _jwt(provider, iss="https://evil.example"),
            "expired": _jwt(provider, iat=int(time.time()) - 3600, exp=int(time.time()) - 60),
            "unknown role": _jwt(provider, role="emperor"),
        }
        answers = {name: client.get("/workorders", headers={"Authorization": f"Bearer {token}"})
                   for name, token in refused.items()}
    bodies = {name: (r.status_code, r.text) for name, r in answers.items()}
    assert set(bodies.values()) == {(401, answers["expired"].text)}, bodies


# -- anonymous reading off ---------------------------------------------------------------------

def test_anonymous_reading_can_be_switched_off(store_url, settings_for, token):
    with _app(store_url, settings_for, anonymous=False) as client:
        opened, closed = [], []
        for method, path in served_routes(client.app):
            if method != "GET":
                continue
            names = re.findall(r"{(\w+)", path)
            response = client.get(path.format(**{name: _sample(name) for name in names}))
            (opened if response.status_code != 401 else closed).append((path, response.status_code))
        # the pages (the viewer, the evaluation dashboard), /healthz and where to sign in; no data
        pages = {path for path, _ in opened}
        assert {"/", "/healthz", "/auth/oidc"} <= pages <= {"/", "/healthz", "/evaluation/dashboard", "/auth/oidc"}, \
            opened
        assert len(closed) >= 15
        assert client.get("/static/app.js").status_code == 200
        signed_in = {"Authorization": f"Bearer {token}"}
        assert client.get("/layers", headers=signed_in).json()["anonymous"] is False
        tile = client.get("/tiles/grids/0/0/0.mvt", headers=signed_in)
        assert tile.status_code == 200 and tile.headers["cache-control"].startswith("private")


def _sample(name: str) -> str:
    return {"kind": "communities", "layer": "grids", "z": "0", "x": "0", "y": "0", "collection_id": "grids",
            "feature_id": "x", "grid_code": "370102003001001", "order_id": "20260101000001",
            "user_id": "u-x", "version": "0", "call_id": "1"}.get(name, "x")
