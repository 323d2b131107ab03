"""Signing in with the city's identity provider: where the viewer goes, and the ID token it brings back.

``GET /auth/oidc`` (public) tells the viewer whether an OpenID Connect
provider is configured and, if so, its authorization and token endpoints,
the viewer's client id and the scopes to ask for. The viewer
(``static/signin.js``) then runs the authorization-code flow with PKCE as a
public client (RFC 7636 S256, OpenID Connect Core 3.1): state, nonce and
verifier stay in the tab, the code is traded at the provider's token endpoint.

``POST /auth/oidc/signin`` takes the ID token with the nonce the viewer sent
and answers who it signs in as: the token is checked like any bearer JWT
(:class:`jngis.jwt_auth.JwtVerifier`: asymmetric signature, issuer, audience =
the client id, expiry) and must carry that nonce. A refusal is the one 401 of
every failed sign-in, counted by the throttle and written to the access log.
From then on the viewer sends the ID token as ``Authorization: Bearer``.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from ..auth import client_of, describe
from .workorders import Body

router = APIRouter(tags=["sign-in"])


class OidcSignIn(Body):
    """The ID token the provider's token endpoint gave, and the nonce the viewer's sign-in asked for."""

    id_token: str = Field(..., min_length=10, max_length=16_384)
    nonce: str = Field(..., min_length=16, max_length=200)


@router.get("/auth/oidc", name="oidc_config")
def oidc_config(request: Request) -> JSONResponse:
    """Whether the viewer signs in with an identity provider, and where (no secret: a public client)."""
    settings = request.app.state.settings
    provider = request.app.state.backend.auth.provider
    if provider is None:
        return JSONResponse({"enabled": False}, headers={"Cache-Control": "no-cache"})
    return JSONResponse({"enabled": True, "issuer": provider.issuer, "client_id": settings.oidc_client_id,
                         "authorization_endpoint": provider.authorization_endpoint,
                         "token_endpoint": provider.token_endpoint,
                         "end_session_endpoint": provider.end_session_endpoint,
                         "scope": settings.oidc_scope, "code_challenge_method": "S256"},
                        headers={"Cache-Control": "no-cache"})


@router.post("/auth/oidc/signin", name="oidc_sign_in")
def oidc_sign_in(body: OidcSignIn, request: Request) -> JSONResponse:
    """Who the provider's ID token signs in as, if it is valid and carries the sign-in's nonce (else 401)."""
    auth = request.app.state.backend.auth
    who = auth.principal(f"Bearer {body.id_token}", client_of(request), nonce=body.nonce)
    return JSONResponse({"principal": describe(who)}, headers={"Cache-Control": "no-store"})
