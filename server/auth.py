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
import logging
import math
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from jngis import access
from jngis.access import ANONYMOUS, Principal
from jngis.errors import AuthenticationError
from jngis.throttle import refusal
from .settings import Settings

log = logging.getLogger("jngis.server.auth")

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
    failures: Any = None  # jngis.throttle.FailureLog: failed sign-ins on their way to the access log
    provider: Any = None  # jngis.jwt_auth.OidcProvider where the viewer signs in, if configured

    @classmethod
    def open(cls, settings: Settings, store: Any) -> Authenticator:
        from jngis.throttle import FailureLog, FailureThrottle

        verifier = provider = None
        if settings.oidc_issuer is not None:
            from jngis.jwt_auth import JwtVerifier, OidcProvider

            assert settings.oidc_client_id is not None  # Settings checks it
            provider = OidcProvider.discover(settings.oidc_issuer, settings.oidc_discovery)
            verifier = JwtVerifier(settings.jwks or provider.jwks_uri, issuer=provider.issuer,
                                   audience=settings.jwt_audience or settings.oidc_client_id)
        elif settings.jwks is not None:
            from jngis.jwt_auth import JwtVerifier

            assert settings.jwt_issuer is not None and settings.jwt_audience is not None  # Settings checks it
            verifier = JwtVerifier(settings.jwks, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
        throttle = FailureThrottle(max_failures=settings.auth_failures, window=settings.auth_window_seconds)
        return cls(settings=settings, store=store, verifier=verifier, throttle=throttle,
                   failures=FailureLog(window=settings.auth_log_seconds), provider=provider)

    def principal(self, authorization: str | None, client: str, *, nonce: str | None = None) -> Principal:
        """The principal a header names, ANONYMOUS without one; HTTPException 401/429 otherwise.

        ``nonce``: the header must hold an ID token of the OpenID Connect
        provider carrying this nonce (the viewer's sign-in, :mod:`server.routes.auth`).
        """
        if authorization is None:
            if not self.settings.anonymous:
                raise HTTPException(401, SIGN_IN, headers=CHALLENGE)
            return ANONYMOUS
        self._record(self.failures.due())
        retry_after = self.throttle.check(client)
        if retry_after is not None:
            raise HTTPException(429, f"too many failed sign-ins from this client; try again in "
                                     f"{math.ceil(retry_after)} s",
                                headers={"Retry-After": str(max(1, math.ceil(retry_after)))})
        try:
            who = self._verify(authorization, nonce)
        except AuthenticationError as error:
            self.throttle.failed(client)
            credential = getattr(error, "credential", "other")
            # the same path for every class of failure: the log's row costs the same whatever the cause
            self._record(self.failures.failed(client, credential, getattr(error, "failure", "malformed")))
            log.info("sign-in refused from %s: %s, %s", client, credential, getattr(error, "reason", error))
            raise HTTPException(401, NOT_VALID, headers=CHALLENGE) from None
        self.throttle.succeeded(client)
        return who

    def _verify(self, authorization: str, nonce: str | None) -> Principal:
        """The principal of a header; AuthenticationError with the kind of credential in ``credential``."""
        scheme, _, credentials = authorization.partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token:
            raise _of_kind(refusal(NOT_VALID, "malformed"), "other")
        if nonce is not None:  # an OpenID Connect sign-in: only the provider's ID token will do
            return _checked("jwt", self._jwt, token, nonce)
        bootstrap = self.settings.write_token
        # compared first, for every token, in constant time: the time taken does not depend on the guess
        if bootstrap is not None and hmac.compare_digest(token.encode(), bootstrap.get_secret_value().encode()):
            return access.ADMIN
        if token.startswith("jngis_"):
            return _checked("user token", self.store.authenticate, token)
        if self.verifier is not None and token.count(".") == 2:
            return _checked("jwt", self._jwt, token, None)
        if bootstrap is not None:  # all a token of another form could have been is the bootstrap token
            raise _of_kind(refusal(NOT_VALID, "wrong secret"), "bootstrap")
        raise _of_kind(refusal(NOT_VALID, "malformed"), "other")

    def _jwt(self, token: str, nonce: str | None) -> Principal:
        if self.verifier is None:
            raise refusal(NOT_VALID, "malformed", "no identity provider is configured")
        return self.verifier.verify(token, nonce=nonce)

    def _record(self, rows: list) -> None:
        """Write failed sign-ins to the access log (a failing write is logged, the answer stays the same)."""
        if rows:
            try:
                self.store.log_failed_sign_ins(rows)
            except Exception:
                log.exception("writing %d failed sign-ins to the access log failed", len(rows))

    def close(self) -> None:
        """Write the failed sign-ins still being counted (the server is stopping)."""
        self._record(self.failures.flush())


def _of_kind(error: AuthenticationError, kind: str) -> AuthenticationError:
    error.credential = kind  # type: ignore[attr-defined]
    return error


def _checked(kind: str, check: Any, *args: Any) -> Principal:
    """``check(*args)``, its AuthenticationError marked with the kind of credential that failed."""
    try:
        return check(*args)
    except AuthenticationError as error:
        raise _of_kind(error, kind) from None


def client_of(request: Request) -> str:
    """The client address failures are counted for (uvicorn's ``--proxy-headers`` sets it behind a proxy)."""
    return request.client.host if request.client is not None else "unknown"


def principal_of(request: Request) -> Principal:
    """Who is asking (evaluated once per request; kept on ``request.state.principal``); may read the store."""
    known = getattr(request.state, "principal", None)
    if known is not None:
        return known
    who = request.app.state.backend.auth.principal(request.headers.get("authorization"), client_of(request))
    request.state.principal = who
    return who


async def current_principal(request: Request) -> Principal:
    """:func:`principal_of` as a dependency, without a thread when it needs no I/O.

    A request without an ``Authorization`` header is anonymous (or refused 401 when
    anonymous reading is off): decided from the settings alone, in the event loop. A
    credential is checked (against the store, the throttle, the access log) in the
    thread pool. A plain function would cost every request a hop through the thread
    pool and back for each dependency: under benchmarks/load.py's mix that hop was a
    third of the event loop's time.
    """
    if getattr(request.state, "principal", None) is not None or "authorization" not in request.headers:
        return principal_of(request)
    return await run_in_threadpool(principal_of, request)


async def layer_reader(request: Request) -> Principal:
    """The principal of a map route (layers, tiles, labels, search, addresses): one that reads layers."""
    return await _READS_LAYERS(request)


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

    async def principal_permitted(request: Request) -> Principal:
        who = await current_principal(request)
        access.require(who, action)
        return who

    return principal_permitted


_READS_LAYERS = permits("layers.read")  # built once, not on every map request
