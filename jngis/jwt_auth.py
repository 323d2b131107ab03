"""Bearer JWTs from a city's identity provider, verified with PyJWT and mapped to a :class:`~jngis.access.Principal`.

Only the configured asymmetric algorithms (RS256, ES256 by default) are
accepted, so ``alg: none`` and HMAC tokens signed with a public key are refused
before any key is looked at. The key comes from a JWKS: a file, a dict, or a
URL (fetched by :class:`jwt.PyJWKClient` only when one is configured, and kept
for ``lifespan`` seconds). Issuer, audience and expiry are required and
checked; the token's role claim (mapped through ``roles=``) must name one of
:data:`jngis.access.ROLES`, and its scope codes must be valid codes.

Every refusal is the same :class:`~jngis.errors.AuthenticationError` message;
its ``reason`` attribute says why, for the server's own log only, and its
``failure`` the class of the refusal for the access log (expired, bad
signature, wrong audience..., :data:`jngis.throttle.FAILURES`).

:class:`OidcProvider` reads a provider's OpenID Connect discovery document:
where the viewer is sent to sign in (authorization code + PKCE) and the
verifier of the ID tokens it brings back.

Examples
--------
>>> from cryptography.hazmat.primitives.asymmetric import ec
>>> import jwt, time
>>> key = ec.generate_private_key(ec.SECP256R1())
>>> jwk = {**jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}
>>> verifier = JwtVerifier({"keys": [jwk]}, issuer="https://idp.example", audience="jngis")
>>> token = jwt.encode({"sub": "zhang", "role": "street", "scope": "370102003", "iss": "https://idp.example",
...                     "aud": "jngis", "exp": int(time.time()) + 60}, key, algorithm="ES256",
...                     headers={"kid": "k1"})
>>> verifier.verify(token)
Principal(id='idp:zhang', name='zhang', role='street', scope=('370102003',))
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jngis import _checks
from jngis.access import ROLES, Principal
from jngis.errors import AuthenticationError, InputTypeError, JngisError, ParameterError
from jngis.throttle import refusal

__all__ = ["JwtVerifier", "OidcProvider", "JWT_FAILED", "DEFAULT_CLAIMS"]

JWT_FAILED = "the bearer token is not valid"
#: Where a principal's parts are found among the token's claims.
DEFAULT_CLAIMS: dict[str, str] = {"id": "sub", "name": "name", "role": "role", "scope": "scope"}
_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")


def _refused(reason: str, failure: str = "claims") -> AuthenticationError:
    return refusal(JWT_FAILED, failure, reason)


def _failure(exc: Exception) -> str:
    """The access log's class of a PyJWT refusal (:data:`jngis.throttle.FAILURES`)."""
    import jwt

    for kind, failure in ((jwt.ExpiredSignatureError, "expired"), (jwt.InvalidSignatureError, "bad signature"),
                          (jwt.InvalidAudienceError, "wrong audience"), (jwt.InvalidIssuerError, "wrong issuer"),
                          (jwt.PyJWKClientError, "unknown key"), (jwt.InvalidAlgorithmError, "algorithm"),
                          (jwt.DecodeError, "malformed")):
        if isinstance(exc, kind):
            return failure
    return "claims"


class JwtVerifier:
    """Verifies bearer JWTs against a JWKS and turns their claims into a principal.

    Parameters
    ----------
    jwks : path, URL or dict
        A JWKS file, an ``https://`` (or ``http://``) URL, or the JWKS itself (``{"keys": [...]}``).
    issuer, audience : str
        What ``iss`` and ``aud`` must be.
    algorithms : sequence of str
        Accepted signature algorithms, asymmetric only (default RS256 and ES256).
    claims : mapping, optional
        Claim names of ``id``, ``name``, ``role`` and ``scope`` (:data:`DEFAULT_CLAIMS`).
    roles : mapping, optional
        The provider's role names -> jngis roles (e.g. ``{"jngis-street": "street"}``);
        by default the claim must be a jngis role itself.
    leeway : float
        Seconds of clock skew allowed on ``exp``/``nbf``.
    lifespan : float
        Seconds a JWKS fetched from a URL is kept.
    """

    def __init__(self, jwks: str | os.PathLike | Mapping[str, Any], *, issuer: str, audience: str,
                 algorithms: Sequence[str] = ("RS256", "ES256"), claims: Mapping[str, str] | None = None,
                 roles: Mapping[str, str] | None = None, leeway: float = 0.0, lifespan: float = 300.0) -> None:
        import jwt

        self.issuer = _checks.text("JwtVerifier", "issuer", issuer, max_length=500, required=True)
        self.audience = _checks.text("JwtVerifier", "audience", audience, max_length=500, required=True)
        algorithms = (algorithms,) if isinstance(algorithms, str) else tuple(algorithms)
        bad = [a for a in algorithms if a not in _ASYMMETRIC]
        if bad or not algorithms:
            raise ParameterError(f"JwtVerifier: algorithms={list(algorithms)}; expected asymmetric ones among "
                                 f"{list(_ASYMMETRIC)} (never none or HMAC)")
        self.algorithms = algorithms
        self.claims = {**DEFAULT_CLAIMS, **dict(claims or {})}
        unknown = set(self.claims) - set(DEFAULT_CLAIMS)
        if unknown:
            raise ParameterError(f"JwtVerifier: claims names {sorted(unknown)}; expected keys among "
                                 f"{list(DEFAULT_CLAIMS)}")
        self.roles = dict(roles) if roles is not None else {role: role for role in ROLES if role != "anonymous"}
        wrong = {k: v for k, v in self.roles.items() if v not in ROLES or v == "anonymous"}
        if wrong:
            raise ParameterError(f"JwtVerifier: roles maps to {wrong}; expected jngis roles {list(ROLES[:-1])}")
        self.leeway = float(_checks.number("JwtVerifier", "leeway", leeway, minimum=0, hint="seconds"))
        self._client: jwt.PyJWKClient | None = None
        self._keys: jwt.PyJWKSet | None = None
        if isinstance(jwks, str) and jwks.startswith(("https://", "http://")):
            self._client = jwt.PyJWKClient(jwks, cache_jwk_set=True, lifespan=lifespan, timeout=10)
        else:
            self._keys = _key_set(jwks)

    def _signing_key(self, token: str, header: Mapping[str, Any]) -> Any:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        assert self._keys is not None
        kid = header.get("kid")
        keys = self._keys.keys
        if kid is None and len(keys) == 1:
            return keys[0]
        for key in keys:
            if kid is not None and key.key_id == kid:
                return key
        raise _refused(f"no key with kid={kid!r} in the JWKS", "unknown key")

    def verify(self, token: Any, *, nonce: str | None = None) -> Principal:
        """The principal the token stands for, or :class:`AuthenticationError` (one message).

        ``nonce``: the ID token of an OpenID Connect sign-in must carry this
        ``nonce`` claim (compared in constant time). The error's ``failure`` is
        the refusal's class for the access log (expired, bad signature, wrong
        audience...), its ``reason`` the longer why.
        """
        import jwt

        if not isinstance(token, str) or not token or len(token) > 16_384:
            raise _refused("not a token", "malformed")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise _refused(f"algorithm {header.get('alg')!r} is not accepted", "algorithm")
            key = self._signing_key(token, header)
            claims = jwt.decode(token, key, algorithms=list(self.algorithms), audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss", "aud", self.claims["id"]]})
        except jwt.PyJWTError as exc:
            raise _refused(f"{type(exc).__name__}: {exc}", _failure(exc)) from None
        if nonce is not None:
            # OpenID Connect Core 3.1.3.7: the ID token names the nonce of the sign-in that asked for it
            got = claims.get("nonce")
            if not isinstance(got, str) or not isinstance(nonce, str) \
                    or not hmac.compare_digest(got.encode(), nonce.encode()):
                raise _refused("the ID token's nonce is not the sign-in's", "wrong nonce")
        return self._principal(claims)

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        subject = claims.get(self.claims["id"])
        role = self.roles.get(claims.get(self.claims["role"]))  # type: ignore[arg-type]
        if not isinstance(subject, str) or not subject:
            raise _refused("no subject")
        if role is None:
            raise _refused(f"role {claims.get(self.claims['role'])!r} is not mapped to a jngis role")
        scope = claims.get(self.claims["scope"], ())
        if isinstance(scope, str):
            scope = scope.replace(",", " ").split()
        if not isinstance(scope, (list, tuple)):
            raise _refused(f"scope {scope!r} is not a list of codes")
        name = claims.get(self.claims["name"])
        try:
            return Principal(f"idp:{subject}", name if isinstance(name, str) and name else subject, role,
                             tuple(scope))
        except JngisError as exc:
            raise _refused(str(exc)) from None


def _json_file(value: str | os.PathLike, missing: str, func: str, expected: str = "") -> Any:
    """The JSON of the file ``value``; ``missing`` is the error when it is no file, ``expected`` ends the
    error when it is not JSON."""
    path = Path(value)
    if not path.is_file():
        raise ParameterError(missing)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ParameterError(f"{func}: {str(path)!r} is not JSON ({exc}){expected}") from None


def _key_set(jwks: Any) -> Any:
    """A :class:`jwt.PyJWKSet` from a JWKS dict or file."""
    import jwt

    if isinstance(jwks, (str, os.PathLike)):
        jwks = _json_file(jwks, f"JwtVerifier: jwks={str(jwks)!r} is neither a file nor an http(s) URL; "
                          "expected a JWKS file, URL or dict", "JwtVerifier", "; expected a JWKS")
    if not isinstance(jwks, Mapping):
        raise InputTypeError(f"JwtVerifier: jwks is a {type(jwks).__name__}; expected a path, a URL or a dict")
    try:
        return jwt.PyJWKSet.from_dict(dict(jwks))
    except jwt.PyJWTError as exc:
        raise ParameterError(f"JwtVerifier: the JWKS holds no usable key ({exc}); expected {{'keys': [...]}} "
                             "with RSA or EC public keys") from None


# -- OpenID Connect: where the viewer signs in -------------------------------------------------

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


def _secure_url(func: str, name: str, value: Any) -> str:
    """An ``https://`` URL, or ``http://`` on the loopback interface only (a provider run for tests)."""
    from urllib.parse import urlsplit

    text = _checks.text(func, name, value, max_length=2000, required=True)
    parts = urlsplit(text)
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
        raise ParameterError(f"{func}: {name}={text!r}; expected an https:// URL (http:// only on the loopback "
                             "interface)")
    return text


@dataclass(frozen=True)
class OidcProvider:
    """A city identity provider's OpenID Connect endpoints (its discovery document, checked).

    The viewer signs in with the authorization-code flow and PKCE (RFC 7636,
    S256) as a public client: it is sent to ``authorization_endpoint``, trades
    the code at ``token_endpoint`` and presents the ID token as its bearer
    token, which :meth:`verifier` checks (keys from ``jwks_uri``, the issuer,
    the client id as audience, expiry; the nonce at sign-in).
    """

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None = None

    @classmethod
    def discover(cls, issuer: str, document: str | os.PathLike | Mapping[str, Any] | None = None, *,
                 timeout: float = 10.0) -> OidcProvider:
        """The provider of ``issuer`` from its discovery document (OpenID Connect Discovery 1.0).

        ``document``: the document itself (a dict), a file, or its URL; default
        ``{issuer}/.well-known/openid-configuration``, fetched once. Its
        ``issuer`` must be ``issuer`` exactly (Discovery 4.3), its endpoints
        https (http only on loopback), and a provider that lists its PKCE
        methods must list S256.
        """
        issuer = _secure_url("OidcProvider.discover", "issuer", issuer)
        if document is None:
            document = issuer.rstrip("/") + "/.well-known/openid-configuration"
        if isinstance(document, str) and document.startswith(("https://", "http://")):
            document = _fetch_json(_secure_url("OidcProvider.discover", "document", document), timeout)
        elif isinstance(document, (str, os.PathLike)):
            document = _json_file(document, f"OidcProvider.discover: document={str(document)!r} is neither a file "
                                  "nor an https URL; expected the provider's openid-configuration",
                                  "OidcProvider.discover")
        if not isinstance(document, Mapping):
            raise InputTypeError(f"OidcProvider.discover: the discovery document is a {type(document).__name__}; "
                                 "expected a JSON object")
        if document.get("issuer") != issuer:
            raise ParameterError(f"OidcProvider.discover: the document's issuer is {document.get('issuer')!r}; "
                                 f"expected {issuer!r} exactly (OpenID Connect Discovery 4.3)")
        methods = document.get("code_challenge_methods_supported")
        if methods is not None and "S256" not in methods:
            raise ParameterError(f"OidcProvider.discover: the provider's PKCE methods are {methods}; expected S256 "
                                 "among them (RFC 7636)")
        endpoints = {name: _secure_url("OidcProvider.discover", name, document.get(name)) for name in _ENDPOINTS}
        end = document.get("end_session_endpoint")
        return cls(issuer=issuer, **endpoints,
                   end_session_endpoint=_secure_url("OidcProvider.discover", "end_session_endpoint", end)
                   if end else None)

    def verifier(self, client_id: str, **options: Any) -> JwtVerifier:
        """The :class:`JwtVerifier` of this provider's ID tokens for ``client_id`` (their audience)."""
        return JwtVerifier(self.jwks_uri, issuer=self.issuer, audience=client_id, **options)


def _fetch_json(url: str, timeout: float) -> Any:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked https/loopback
            return json.loads(response.read(1_000_001).decode("utf-8"))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ParameterError(f"OidcProvider.discover: could not read the discovery document at {url!r} ({exc}); "
                             "expected the provider to answer it (or pass the document as a file)") from None
