"""A small but real OpenID Connect provider on the loopback interface, for the tests of the viewer's sign-in.

It serves what a city's identity provider serves a public browser client:

- ``/.well-known/openid-configuration`` (the discovery document) and ``/jwks``
  (the public half of an RSA key generated here);
- ``/authorize``: checks ``response_type=code``, the client id, the
  registered redirect URI, ``code_challenge_method=S256`` and the challenge's
  form, then signs in its one test user at once and sends the browser back
  with a fresh single-use code, the state and ``iss`` (RFC 9207);
- ``/token``: trades a code for tokens once (a replay is ``invalid_grant``),
  only for the same client and redirect URI, only with the PKCE verifier whose
  S256 challenge was sent (RFC 7636 4.6), and answers an RS256 ID token
  carrying the nonce of the authorization request and the user's claims, with
  CORS for the viewer's origin.

Every exchange is recorded in ``exchanges`` (code, outcome) so tests can say
which refusal happened where.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

CLIENT_ID = "jngis-viewer"
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")  # BASE64URL of 32 bytes


def s256(verifier: str) -> str:
    """RFC 7636 4.2: BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    claims: dict
    expires: float
    used: bool = False


@dataclass
class Provider:
    """The provider's state: its key, its clients' redirect URIs, its user, the codes it gave."""

    user: dict = field(default_factory=dict)  # the test user's claims (sub, name, role, scope)
    redirect_uris: set = field(default_factory=set)
    origins: set = field(default_factory=set)
    exchanges: list = field(default_factory=list)  # (code, "ok" | the refusal)
    grants: dict = field(default_factory=dict)
    lifetime: int = 600

    def __post_init__(self) -> None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key())), "kid": "idp-1",
                    "alg": "RS256", "use": "sig"}
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Provider:
        threading.Thread(target=self.server.serve_forever, name="oidc-provider", daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def register(self, redirect_uri: str) -> None:
        """Register a redirect URI of the viewer (and its origin for CORS at the token endpoint)."""
        self.redirect_uris.add(redirect_uri)
        parts = urlsplit(redirect_uri)
        self.origins.add(f"{parts.scheme}://{parts.netloc}")

    def discovery(self) -> dict:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code"], "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["openid", "profile"], "authorization_response_iss_parameter_supported": True}

    def id_token(self, grant: _Grant) -> str:
        import jwt

        now = int(time.time())
        claims = {**grant.claims, "iss": self.issuer, "aud": grant.client_id, "iat": now, "auth_time": now,
                  "exp": now + self.lifetime}
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": "idp-1"})

    # -- the endpoints: (status, headers, body)
    def authorize(self, query: dict[str, str]) -> tuple[int, dict, bytes]:
        redirect_uri = query.get("redirect_uri", "")
        if query.get("client_id") != CLIENT_ID or redirect_uri not in self.redirect_uris:
            # never redirect to an unregistered address (RFC 6749 4.1.2.1): answer here
            return 400, {"Content-Type": "text/plain"}, b"unknown client or redirect_uri"
        error = None
        if query.get("response_type") != "code":
            error = "unsupported_response_type"
        elif "openid" not in query.get("scope", "").split():
            error = "invalid_scope"
        elif query.get("code_challenge_method") != "S256" or not _CHALLENGE.match(query.get("code_challenge", "")):
            error = "invalid_request"
        answer: dict[str, str] = {"state": query["state"]} if "state" in query else {}
        if error is None:
            code = secrets.token_urlsafe(32)
            with self.lock:
                self.grants[code] = _Grant(CLIENT_ID, redirect_uri, query["code_challenge"], query.get("nonce"),
                                           dict(self.user), time.time() + 60)
            answer = {"code": code, **answer}
        else:
            answer = {"error": error, **answer}
        answer["iss"] = self.issuer
        return 302, {"Location": f"{redirect_uri}?{urlencode(answer)}", "Cache-Control": "no-store"}, b""

    def token(self, form: dict[str, str], origin: str | None) -> tuple[int, dict, bytes]:
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store", **self._cors(origin)}
        code = form.get("code", "")
        with self.lock:
            grant = self.grants.get(code)
            refusal = None
            if form.get("grant_type") != "authorization_code":
                refusal = "unsupported_grant_type"
            elif grant is None:
                refusal = "unknown code"
            elif grant.used:
                refusal = "code used before"
            elif grant.expires < time.time():
                refusal = "code expired"
            elif form.get("client_id") != grant.client_id or form.get("redirect_uri") != grant.redirect_uri:
                refusal = "another client or redirect_uri"
            elif not _VERIFIER.match(form.get("code_verifier", "")) \
                    or not hmac.compare_digest(s256(form["code_verifier"]), grant.challenge):
                refusal = "wrong verifier"
            if grant is not None:
                grant.used = True  # a code is tried once, whatever the outcome
            self.exchanges.append((code, refusal or "ok"))
        if refusal is not None:
            body = {"error": "invalid_grant" if refusal != "unsupported_grant_type" else refusal,
                    "error_description": refusal}
            return 400, headers, json.dumps(body).encode()
        assert grant is not None
        body = {"access_token": secrets.token_urlsafe(32), "token_type": "Bearer", "expires_in": self.lifetime,
                "id_token": self.id_token(grant), "scope": "openid profile"}
        return 200, headers, json.dumps(body).encode()

    def _cors(self, origin: str | None) -> dict:
        if origin in self.origins:
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Methods": "POST", "Access-Control-Allow-Headers": "Content-Type"}
        return {}


def _handler(provider: Provider) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, headers: dict, body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, value: Any) -> None:
            self._send(200, {"Content-Type": "application/json"}, json.dumps(value).encode())

        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            parts = urlsplit(self.path)
            if parts.path == "/.well-known/openid-configuration":
                self._json(provider.discovery())
            elif parts.path == "/jwks":
                self._json({"keys": [provider.jwk]})
            elif parts.path == "/authorize":
                self._send(*provider.authorize({k: v[0] for k, v in parse_qs(parts.query).items()}))
            else:
                self._send(404, {"Content-Type": "text/plain"}, b"not found")

        def do_OPTIONS(self) -> None:  # noqa: N802 - a CORS preflight of the token endpoint
            self._send(204, provider._cors(self.headers.get("Origin")), b"")

        def do_POST(self) -> None:  # noqa: N802
            if urlsplit(self.path).path != "/token":
                self._send(404, {"Content-Type": "text/plain"}, b"not found")
                return
            length = min(int(self.headers.get("Content-Length") or 0), 64 * 1024)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            self._send(*provider.token(form, self.headers.get("Origin")))

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
