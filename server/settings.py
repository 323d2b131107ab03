"""Server settings, read from ``JNGIS_*`` environment variables (pydantic-settings).

Tests build a :class:`Settings` by hand and pass it to ``create_app``, so they
never depend on the environment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the server can be told.

    Attributes
    ----------
    store : str or None
        A GeoPackage path or a ``postgresql://`` DSN (``JNGIS_STORE``).
        ``None`` means the sample city GeoPackage (built once if missing).
    write_token : SecretStr or None
        The bootstrap administrator's bearer token (``JNGIS_WRITE_TOKEN``):
        it authenticates as :data:`jngis.access.ADMIN`, so deployments from
        before users existed keep working. ``None``: only users' tokens
        (``jngis users add``) and JWTs sign in.
    anonymous : bool
        Whether a request without credentials may read the map layers and
        the aggregated per-grid figures (``JNGIS_ANONYMOUS``, default on;
        ``off`` makes every data route answer 401 without a token, and tiles
        ``Cache-Control: private``).
    jwks : str or None
        Where the identity provider's signing keys are (``JNGIS_JWKS``): a
        JWKS file or an ``https://`` URL. With it, bearer JWTs (RS256/ES256)
        sign in too; their claims map to the same roles and scopes.
    jwt_issuer, jwt_audience : str or None
        The ``iss`` and ``aud`` a JWT must carry (``JNGIS_JWT_ISSUER``,
        ``JNGIS_JWT_AUDIENCE``); both are required when ``jwks`` is set.
    oidc_issuer, oidc_client_id : str or None
        The city's OpenID Connect provider (``JNGIS_OIDC_ISSUER``, an https
        URL) and the viewer's client id there (``JNGIS_OIDC_CLIENT_ID``, a
        public client: no secret). With them the viewer offers 统一身份认证登录:
        the authorization-code flow with PKCE, the ID token then signs in as a
        JWT (issuer this one, audience ``JNGIS_JWT_AUDIENCE`` or the client id,
        keys ``JNGIS_JWKS`` or the provider's ``jwks_uri``).
    oidc_discovery : str or None
        The provider's discovery document, a file or URL (``JNGIS_OIDC_DISCOVERY``;
        default ``{issuer}/.well-known/openid-configuration``), read at start.
    oidc_scope : str
        The scopes asked for (``JNGIS_OIDC_SCOPE``, default ``openid profile``).
    auth_failures : int
        Failed sign-ins one client may make within ``auth_window_seconds``
        before it is answered 429 with ``Retry-After`` (``JNGIS_AUTH_FAILURES``;
        the wait starts at 1 s and doubles with each further failure,
        :class:`jngis.throttle.FailureThrottle`).
    auth_window_seconds : float
        The window ``auth_failures`` are counted in (``JNGIS_AUTH_WINDOW_SECONDS``).
    auth_log_seconds : float
        Failed sign-ins go to the access log as one row per client at once and
        one per kind with its count after this window (``JNGIS_AUTH_LOG_SECONDS``,
        default 60; :class:`jngis.throttle.FailureLog`).
    cors_origins : list of str
        Origins allowed to call the API from a browser (``JNGIS_CORS_ORIGINS``,
        comma separated or a JSON list). Empty (the default) means CORS is closed.
    tile_cache_mb : int
        Memory for warm tiles (``JNGIS_TILE_CACHE_MB``).
    basemap_url : str or None
        An optional raster tile URL template for a basemap
        (``JNGIS_BASEMAP_URL``, e.g. ``https://tiles.example/{z}/{x}/{y}.png``).
        Default none: the viewer draws district and 街道 outlines instead and
        sends no request beyond this server.
    max_body_bytes : int
        Requests with a larger body are refused with 413.
    max_upload_bytes : int
        The same bound for the uploads of boundary versions (``POST /versions``,
        a GeoPackage; ``JNGIS_MAX_UPLOAD_BYTES``).
    tile_geometry_dir : str or None
        Where per-zoom tile geometry is kept between restarts
        (``JNGIS_TILE_GEOMETRY_DIR``; default ``tiles/`` in the jngis cache
        folder). Files are keyed by the layers' content, so a changed layer
        never reuses stale geometry.
    stats_cache_dir : str or None
        Where the last per-grid table is kept between restarts
        (``JNGIS_STATS_CACHE_DIR``; default ``stats/`` in the jngis cache
        folder), keyed by the store and a fingerprint of its orders and
        layers: a restart colours the first page with it at once and
        recomputes it in the background.
    calendar_beyond : {"weekends", "raise"}
        Due dates past the last year the official holiday calendar knows
        (``JNGIS_CALENDAR_BEYOND``): ``"weekends"`` (the default) counts
        weekends only and logs a CalendarWarning, so the hotline keeps taking
        reports; ``"raise"`` refuses such orders until the calendar is updated.
    address_lookup : {"memory", "store"}
        Where /geocode and POST /workorders look an address up
        (``JNGIS_ADDRESS_LOOKUP``): ``"memory"`` (the default) holds an
        :class:`jngis.AddressIndex` of every unit; ``"store"`` asks the store
        (:meth:`jngis.store.Store.locate_address`: FTS5 / pg_trgm candidates),
        for a city too big to hold every address in each server process.
    threads : int
        Threads answering the routes that read the store or the layers
        (``JNGIS_THREADS``, default 4; starlette's default is 40). On a
        GIL-bound server more threads do not answer faster: they queue on the
        GIL after every SQLite or GEOS call instead of in line for a thread
        (benchmarks/RESULTS.md, "reliability"). Run more processes
        (``jngis serve --workers N``) to use more cores.
    """

    model_config = SettingsConfigDict(env_prefix="JNGIS_", extra="ignore")

    store: str | None = None
    write_token: SecretStr | None = None
    anonymous: bool = True
    jwks: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_discovery: str | None = None
    oidc_scope: str = Field(default="openid profile", min_length=6, max_length=500, pattern=r"^openid( [\x21-\x7e]+)*$")
    auth_failures: int = Field(default=10, ge=1, le=10_000)
    auth_window_seconds: float = Field(default=60.0, gt=0, le=86_400)
    auth_log_seconds: float = Field(default=60.0, gt=0, le=86_400)
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    tile_cache_mb: int = Field(default=256, ge=0, le=65536)
    basemap_url: str | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=512 * 2**20, ge=1024)
    tile_geometry_dir: str | None = None
    stats_cache_dir: str | None = None
    calendar_beyond: Literal["weekends", "raise"] = "weekends"
    address_lookup: Literal["memory", "store"] = "memory"
    threads: int = Field(default=4, ge=1, le=256)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                import json

                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("write_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("store", "basemap_url", "jwks", "jwt_issuer", "jwt_audience", "oidc_issuer", "oidc_client_id",
                     "oidc_discovery", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _jwt_needs_issuer_and_audience(self) -> Settings:
        if self.jwks is not None and self.oidc_issuer is None and (self.jwt_issuer is None
                                                                   or self.jwt_audience is None):
            raise ValueError("JNGIS_JWKS is set: JNGIS_JWT_ISSUER and JNGIS_JWT_AUDIENCE are required too "
                             "(a JWT is only accepted for this server's issuer and audience)")
        if (self.oidc_issuer is None) != (self.oidc_client_id is None):
            raise ValueError("JNGIS_OIDC_ISSUER and JNGIS_OIDC_CLIENT_ID go together (the provider, and the "
                             "viewer's client id there)")
        return self
