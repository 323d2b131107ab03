"""Bearer JWTs from a city's identity provider, verified with PyJWT and mapped to a :class:`~jngis.access.Principal`.

Only the configured asymmetric algorithms (RS256, ES256 by default) are
accepted, so ``alg: none`` and HMAC tokens signed with a public key are refused
before any key is looked at. The key comes from a JWKS: a file, a dict, or a
URL (fetched by :class:`jwt.PyJWKClient` only when one is configured, and kept
for ``lifespan`` seconds). Issuer, audience and expiry are required and
checked; the token's role claim (mapped through ``roles=``) must name one of
:data:`jngis.access.ROLES`, and its scope codes must be valid codes.

Every refusal is the same :class:`~jngis.errors.AuthenticationError` message;
its ``reason`` attribute says why, for the server's own log only.

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

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jngis import _checks
from jngis.access import ROLES, Principal
from jngis.errors import AuthenticationError, InputTypeError, JngisError, ParameterError

__all__ = ["JwtVerifier", "JWT_FAILED", "DEFAULT_CLAIMS"]

JWT_FAILED = "the bearer token is not valid"
#: Where a principal's parts are found among the token's claims.
DEFAULT_CLAIMS: dict[str, str] = {"id": "sub", "name": "name", "role": "role", "scope": "scope"}
_ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA")


def _refused(reason: str) -> AuthenticationError:
    error = AuthenticationError(JWT_FAILED)
    error.reason = reason  # type: ignore[attr-defined]
    return error


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
        raise _refused(f"no key with kid={kid!r} in the JWKS")

    def verify(self, token: Any) -> Principal:
        """The principal the token stands for, or :class:`AuthenticationError` (one message)."""
        import jwt

        if not isinstance(token, str) or not token or len(token) > 16_384:
            raise _refused("not a token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") not in self.algorithms:
                raise _refused(f"algorithm {header.get('alg')!r} is not accepted")
            key = self._signing_key(token, header)
            claims = jwt.decode(token, key, algorithms=list(self.algorithms), audience=self.audience,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["exp", "iss", "aud", self.claims["id"]]})
        except jwt.PyJWTError as exc:
            raise _refused(f"{type(exc).__name__}: {exc}") from None
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


def _key_set(jwks: Any) -> Any:
    """A :class:`jwt.PyJWKSet` from a JWKS dict or file."""
    import jwt

    if isinstance(jwks, (str, os.PathLike)):
        path = Path(jwks)
        if not path.is_file():
            raise ParameterError(f"JwtVerifier: jwks={str(jwks)!r} is neither a file nor an http(s) URL; "
                                 "expected a JWKS file, URL or dict")
        try:
            jwks = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ParameterError(f"JwtVerifier: {str(path)!r} is not JSON ({exc}); expected a JWKS") from None
    if not isinstance(jwks, Mapping):
        raise InputTypeError(f"JwtVerifier: jwks is a {type(jwks).__name__}; expected a path, a URL or a dict")
    try:
        return jwt.PyJWKSet.from_dict(dict(jwks))
    except jwt.PyJWTError as exc:
        raise ParameterError(f"JwtVerifier: the JWKS holds no usable key ({exc}); expected {{'keys': [...]}} "
                             "with RSA or EC public keys") from None
