"""Failed sign-ins in the access log, over real HTTP (a live uvicorn) on SQLite and on PostGIS.

- Each failure is written with when, the client's address, the kind of
  credential (user token, jwt, bootstrap) and the class of the refusal
  (unknown id, wrong secret, disabled, bad signature, expired), never the
  token or its secret; ``jngis audit export`` (the CLI, another process) has them.
- A flood does not flood the log: a client's first failure in a window is one
  row at once, the rest one row per kind and class with its count when the
  window has passed.
- Logging does not make an unknown id and a wrong secret differ in time.
"""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys
import time

import httpx
import pytest
from crawl import HOME_STREET

from jngis.access import ADMIN

WINDOW = 4  # JNGIS_AUTH_LOG_SECONDS
ISSUER, AUDIENCE = "https://idp.jinan.example", "jngis"


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def served(request, two_street_city_file, tmp_path_factory, copy_store, live_server):
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    from jngis.store import open_store

    folder = tmp_path_factory.mktemp("auth-log")
    url = copy_store(request.param, two_street_city_file, folder, request)
    with open_store(url) as store:
        good = store.add_user("好用户", role="street", scope=(HOME_STREET,), principal=ADMIN)[1]
        gone, disabled = store.add_user("停用用户", role="street", scope=(HOME_STREET,), principal=ADMIN)
        store.disable_user(gone["user_id"], principal=ADMIN)
    provider = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(provider.public_key())),
                                          "kid": "k1"}]}))

    def signed(key, **claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "u-7", "role": "street", "scope": [HOME_STREET],
                "exp": now + 600, **claims}
        return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})

    token_id, secret = good.split("_")[1], good.split("_", 2)[2]
    tokens = {"good": good, "unknown id": f"jngis_{'0' * 10}_{secret}",
              "wrong secret": f"jngis_{token_id}_{'x' * len(secret)}", "disabled": disabled,
              "bad signature": signed(stranger), "expired": signed(provider, exp=int(time.time()) - 60),
              "bootstrap": "not-the-bootstrap-token"}
    with live_server(url, JNGIS_AUTH_LOG_SECONDS=str(WINDOW), JNGIS_AUTH_FAILURES="1000", JNGIS_JWKS=str(jwks),
                     JNGIS_JWT_ISSUER=ISSUER, JNGIS_JWT_AUDIENCE=AUDIENCE) as live:
        yield live, url, tokens, folder


def _exported(url: str, folder) -> tuple[list[dict], str]:
    """The access log as ``jngis audit export`` writes it (another process), failed sign-ins only."""
    out = folder / f"log-{time.monotonic_ns()}.csv"
    subprocess.run([sys.executable, "-m", "jngis.cli", "audit", "export", str(out), "--store", url], check=True,
                   capture_output=True, timeout=300)
    with open(out, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    text = out.read_text(encoding="utf-8-sig")
    return [row for row in rows if row["action"] == "auth.failed"], text


def _count(row: dict) -> int:
    return int(row["detail"].split()[0].removeprefix("count="))


def test_failed_sign_ins_are_logged_folded_and_timed_alike(served):
    live, url, tokens, folder = served

    def get(name: str) -> httpx.Response:
        return httpx.get(f"{live.url}/workorders", headers={"Authorization": f"Bearer {tokens[name]}"}, timeout=60)

    sent = ["unknown id", "unknown id", "unknown id", "wrong secret", "wrong secret", "wrong secret", "disabled",
            "bad signature", "expired", "bootstrap", "bootstrap"]
    assert [get(name).status_code for name in sent] == [401] * len(sent)
    rows, _ = _exported(url, folder)
    # at once: the client's first failure of the window, and nothing else yet
    assert [(r["target"], r["reason"], _count(r), r["client"]) for r in rows] == [
        ("user token", "unknown id", 1, "127.0.0.1")]
    time.sleep(WINDOW + 0.5)
    assert get("good").status_code == 200  # any sign-in writes the windows that have passed
    rows, text = _exported(url, folder)
    assert sorted((r["target"], r["reason"], _count(r)) for r in rows) == sorted([
        ("user token", "unknown id", 1), ("user token", "unknown id", 2), ("user token", "wrong secret", 3),
        ("user token", "disabled", 1), ("jwt", "bad signature", 1), ("jwt", "expired", 1),
        ("bootstrap", "wrong secret", 2)])
    assert {r["principal_id"] for r in rows} == {"anonymous"} and all(r["at"] for r in rows)
    for name, token in tokens.items():  # no token and no secret, not even in part
        assert token not in text and token[-20:] not in text, name
    # a flood: alternate unknown ids and wrong secrets, timed; a handful of rows
    before = len(rows)
    times: dict[str, list[float]] = {"unknown id": [], "wrong secret": []}
    flooding = time.monotonic()
    for _ in range(20):
        for name in times:
            start = time.perf_counter()
            assert get(name).status_code == 401
            times[name].append(time.perf_counter() - start)
    unknown, wrong = statistics.median(times["unknown id"]), statistics.median(times["wrong secret"])
    print(f"\nover HTTP with the access log: unknown id {unknown * 1000:.0f} ms, wrong secret {wrong * 1000:.0f} ms")
    assert 0.5 < unknown / wrong < 2.0
    windows = int((time.monotonic() - flooding) // WINDOW) + 1  # each: its first row, and one per class
    time.sleep(WINDOW + 0.5)
    assert get("good").status_code == 200
    flood = _exported(url, folder)[0][before:]
    print(f"40 failed sign-ins in {windows} windows of {WINDOW} s: {len(flood)} rows")
    assert len(flood) <= 3 * windows < 40 and sum(_count(r) for r in flood) == 40, flood
