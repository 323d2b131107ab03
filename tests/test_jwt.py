"""Bearer JWTs: real RSA and EC key pairs made here, a JWKS file, dict and loopback URL, real PyJWT."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from jngis.access import Principal
from jngis.errors import AuthenticationError, ParameterError
from jngis.jwt_auth import JWT_FAILED, JwtVerifier

ISSUER, AUDIENCE = "https://idp.jinan.example", "jngis"


@pytest.fixture(scope="module")
def keys():
    return {"rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ec": ec.generate_private_key(ec.SECP256R1()),
            "other_rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.fixture(scope="module")
def jwks(keys):
    return {"keys": [
        {**jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa"].public_key(), as_dict=True), "kid": "rsa-1",
         "alg": "RS256", "use": "sig"},
        {**jwt.algorithms.ECAlgorithm.to_jwk(keys["ec"].public_key(), as_dict=True), "kid": "ec-1",
         "alg": "ES256", "use": "sig"},
    ]}


@pytest.fixture(scope="module")
def jwks_file(jwks, tmp_path_factory):
    path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_text(json.dumps(jwks), encoding="utf-8")
    return path


def _claims(**changes):
    claims = {"sub": "zhang.san", "name": "张三", "role": "street", "scope": ["370102003"], "iss": ISSUER,
              "aud": AUDIENCE, "exp": int(time.time()) + 300, "iat": int(time.time())}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _token(keys, kind="rsa", kid=None, algorithm=None, **changes):
    algorithm = algorithm or ("RS256" if "rsa" in kind else "ES256")
    kid = kid or ("rsa-1" if "rsa" in kind else "ec-1")
    return jwt.encode(_claims(**changes), keys[kind], algorithm=algorithm, headers={"kid": kid})


def _forged(header: dict, payload: str, hmac_key: bytes) -> str:
    """A token with a hand-made header, HMAC-signed with ``hmac_key`` (empty: unsigned)."""
    head = jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
    if not hmac_key:
        return f"{head}.{payload}."
    mac = hmac.new(hmac_key, f"{head}.{payload}".encode(), hashlib.sha256).digest()
    return f"{head}.{payload}.{jwt.utils.base64url_encode(mac).decode()}"


def _refusal(verifier, token) -> str:
    with pytest.raises(AuthenticationError) as caught:
        verifier.verify(token)
    assert str(caught.value) == JWT_FAILED
    return caught.value.reason


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_good_tokens_become_principals(keys, jwks_file, kind):
    verifier = JwtVerifier(jwks_file, issuer=ISSUER, audience=AUDIENCE)
    assert verifier.verify(_token(keys, kind)) == Principal("idp:zhang.san", "张三", "street", ("370102003",))


def test_refusals(keys, jwks, jwks_file):
    verifier = JwtVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)
    public_pem = keys["rsa"].public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
    header, payload, signature = _token(keys).split(".")
    tampered = _token(keys, role="admin").split(".")
    reasons = {
        "alg none": _refusal(verifier, jwt.encode(_claims(), None, algorithm="none")),
        "alg none, kid kept": _refusal(verifier, _forged({"alg": "none", "kid": "rsa-1"}, payload, b"")),
        "HMAC with the public key": _refusal(verifier, _forged({"alg": "HS256", "kid": "rsa-1"}, payload,
                                                               public_pem)),
        "wrong key, right kid": _refusal(verifier, _token(keys, "other_rsa", kid="rsa-1")),
        "unknown kid": _refusal(verifier, _token(keys, "other_rsa", kid="rsa-9")),
        "payload swapped": _refusal(verifier, ".".join([header, tampered[1], signature])),
        "wrong audience": _refusal(verifier, _token(keys, aud="another-app")),
        "wrong issuer": _refusal(verifier, _token(keys, iss="https://evil.example")),
        "expired": _refusal(verifier, _token(keys, exp=int(time.time()) - 10)),
        "no expiry": _refusal(verifier, _token(keys, exp=None)),
        "unknown role": _refusal(verifier, _token(keys, role="mayor")),
        "anonymous role": _refusal(verifier, _token(keys, role="anonymous")),
        "bad scope code": _refusal(verifier, _token(keys, scope=["3701"])),
        "no subject": _refusal(verifier, _token(keys, sub=None)),
        "garbage": _refusal(verifier, "not.a.jwt"),
        "not text": _refusal(verifier, None),
    }
    assert all(reasons.values()), reasons
    assert "not accepted" in reasons["alg none"] and "not accepted" in reasons["HMAC with the public key"]
    assert "Signature" in reasons["wrong key, right kid"] and "Expired" in reasons["expired"]
    assert "Audience" in reasons["wrong audience"] and "Issuer" in reasons["wrong issuer"]


def test_claims_and_roles_can_be_mapped(keys, jwks):
    verifier = JwtVerifier(jwks, issuer=ISSUER, audience=AUDIENCE, claims={"role": "groups", "scope": "area"},
                           roles={"jn-grid-worker": "grid"})
    token = _token(keys, role=None, scope=None, groups="jn-grid-worker", area="370102003001001 370102003001002")
    assert verifier.verify(token) == Principal("idp:zhang.san", "张三", "grid",
                                               ("370102003001001", "370102003001002"))
    assert _refusal(verifier, _token(keys))  # "street" is not one of this provider's mapped roles


def test_a_jwks_url_is_fetched_only_when_configured(keys, jwks):
    served = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the http.server API
            served.append(self.path)
            body = json.dumps(jwks).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        verifier = JwtVerifier(f"http://127.0.0.1:{server.server_port}/jwks.json", issuer=ISSUER,
                               audience=AUDIENCE)
        assert served == []  # nothing fetched until a token comes
        assert verifier.verify(_token(keys, "ec")).role == "street"
        assert verifier.verify(_token(keys, "rsa")).role == "street"
        assert served == ["/jwks.json"]  # the set is kept
        assert _refusal(verifier, _token(keys, "other_rsa", kid="rsa-9"))
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("kwargs, match", [
    ({"algorithms": ("HS256",)}, "asymmetric"),
    ({"algorithms": ("none",)}, "asymmetric"),
    ({"roles": {"x": "mayor"}}, "expected jngis roles"),
    ({"claims": {"group": "g"}}, "expected keys among"),
    ({"issuer": ""}, "issuer is missing"),
])
def test_bad_configuration_is_refused_by_name(jwks, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        JwtVerifier(jwks, **{"issuer": ISSUER, "audience": AUDIENCE, **kwargs})


def test_a_jwks_that_is_not_there_is_refused(tmp_path):
    with pytest.raises(ParameterError, match="neither a file nor an http"):
        JwtVerifier(tmp_path / "missing.json", issuer=ISSUER, audience=AUDIENCE)
