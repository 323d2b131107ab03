"""Who is asking: :func:`current_principal`, the one dependency every data route takes.

A request names its principal with ``Authorization: Bearer <token>``:

- a user's API token ``jngis_<id>_<secret>`` (``jngis users add``), checked by
  :meth:`jngis.store.Store.authenticate` (expiry and disabling included);
- a JWT from the city's identity provider when ``JNGIS_JWKS`` is set
  (:class:`jngis.jwt_auth.JwtVerifier`: signature, issuer, audience, expiry);
- ``JNGIS_WRITE_TOKEN``, the bootstrap administrator (:data:`jngis.access.ADMIN`);
- no header at all: :data:`jngis.access.ANONYMOUS` (map layers and per-grid
  figures), unless ``JNGIS_ANONYMOUS=off``.

A failed sign-in answers 401 with one message whatever the cause (unknown id,
wrong secret, expired, disabled, a JWT with a bad signature...), so nothing
about a token leaks through the answer; a client that keeps failing is answered
429 with ``Retry-After`` (:class:`jngis.throttle.FailureThrottle`). What the
principal may see and do is decided by the library and the store, never here.
"""

from __future__ import annotations

import hmac
import math
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from jngis import access
from jngis.access import ANONYMOUS, Principal
from jngis.errors import AuthenticationError
from .settings import Settings

#: The one answer to every failed sign-in.
NOT_VALID = "the bearer token is not valid (unknown, wrong, expired or disabled); sign in again"
#: The answer to a request without credentials where anonymous reading is off, or for an action
#: anonymous may not take.
SIGN_IN = "sign in first: this needs an 'Authorization: Bearer <token>' header"
CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass
class Authenticator:
    """Turns an ``Authorization`` header into a :class:`~jngis.access.Principal` (one per server)."""

    settings: Settings
    store: Any
    verifier: Any = None
    throttle: Any = None

    @classmethod
    def open(cls, settings: Settings, store: Any) -> Authenticator:
        from jngis.throttle import FailureThrottle

        verifier = None
        if settings.jwks is not None:
            from jngis.jwt_auth import JwtVerifier

            assert settings.jwt_issuer is not None and settings.jwt_audience is not None  # Settings checks it
            verifier = JwtVerifier(settings.jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        throttle = FailureThrottle(max_failures=settings.auth_failures, window=settings.auth_window_seconds)
        return cls(settings=settings, store=store, verifier=verifier, throttle=throttle)

    def principal(self, authorization: str | None, client: str) -> Principal:
        """The principal a header names, ANONYMOUS without one; HTTPException 401/429 otherwise."""
        if authorization is None:
            if not self.settings.anonymous:
                raise HTTPException(401, SIGN_IN, headers=CHALLENGE)
            return ANONYMOUS
        retry_after = self.throttle.check(client)
        if retry_after is not None:
            raise HTTPException(429, f"too many failed sign-ins from this client; try again in "
                                     f"{math.ceil(retry_after)} s",
                                headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        try:
            who = self._verify(authorization)
        except AuthenticationError:
            self.throttle.failed(client)
            raise HTTPException(401, NOT_VALID, headers=CHALLENGE) from None
        self.throttle.succeeded(client)
        return who

    def _verify(self, authorization: str) -> Principal:
        scheme, _, credentials = authorization.partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError(NOT_VALID)
        bootstrap = self.settings.write_token
        # compared first, for every token, in constant time: the time taken does not depend on the guess
        if bootstrap is not None and hmac.compare_digest(token.encode(), bootstrap.get_secret_value().encode()):
            return access.ADMIN
        if token.startswith("jngis_"):
            return self.store.authenticate(token)
        if self.verifier is not None and token.count(".") == 2:
            return self.verifier.verify(token)
        raise AuthenticationError(NOT_VALID)


def client_of(request: Request) -> str:
    """The client address failures are counted for (uvicorn's ``--proxy-headers`` sets it behind a proxy)."""
    return request.client.host if request.client is not None else "unknown"


def current_principal(request: Request) -> Principal:
    """Who is asking (evaluated once per request; kept on ``request.state.principal``)."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    who = request.app.state.backend.auth.principal(request.headers.get("authorization"), client_of(request))
    request.state.principal = who
    return who


def layer_reader(request: Request) -> Principal:
    """The principal of a map route (layers, tiles, labels, search, addresses): one that reads layers."""
    return permits("layers.read")(request)


def describe(who: Principal) -> dict:
    """What the viewer shows and offers a principal: name, role (and its label), scope, permissions."""
    return {"id": who.id, "name": who.name, "role": who.role, "label": who.label, "scope": list(who.scope),
            "permissions": [action for action in access.ACTIONS if access.can(who, action)],
            "personal": access.personal_access(who)}


def permits(action: str):
    """A dependency: the principal, if its role may take ``action`` (:func:`jngis.access.require`).

    For routes whose library call takes no principal (the evaluation's figures, the
    departments registry): the decision is still the library's table, made in one place.
    """
    access.can(access.ADMIN, action)  # an unknown action is refused when the route is defined

    def principal_permitted(request: Request) -> Principal:
        who = current_principal(request)
        access.require(who, action)
        return who

    return principal_permitted
