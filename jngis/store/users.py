"""Users of the store: a role, a scope, an expiry, and an API token kept only as a slow hash.

A token (``jngis_<id>_<secret>``, :func:`jngis.access.new_token`) is shown once,
when the user is added or the token rotated; the store keeps its public id and
:func:`jngis.access.hash_secret` of the secret (scrypt). :meth:`Users.authenticate`
answers every failure (malformed, unknown, wrong secret, expired, disabled)
with the same :class:`~jngis.errors.AuthenticationError` and, for an unknown
id, still pays one scrypt, so neither message nor time tells which.

A verified token is remembered for :data:`TOKEN_CACHE_SECONDS` under the
SHA-256 of its whole text and the store's ``users`` change version (every
user change announces itself on the change channel, :mod:`jngis.store.changes`,
in its transaction), so a request
does not pay scrypt each time and a disabled user is refused at the next
request, in every process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import secrets
import time
from typing import Any

from jngis import _checks, access
from jngis.access import ROLES, Principal
from jngis.cache import Cache
from jngis.codes import CODE_DIGITS, KEY_OF_LEVEL, level_of
from jngis.errors import InputTypeError, NotFoundError, ParameterError
from jngis.store._scope import StorePart
from jngis.store.audit import AuditLog
from jngis.store.schema import SqlTypes
from jngis.throttle import refusal
from jngis.workorders import now_cst, to_cst

__all__ = ["USER_COLUMNS", "TOKEN_CACHE_SECONDS", "SCOPED_ROLES", "users_sql", "parse_expiry", "Users"]

USER_COLUMNS: tuple[str, ...] = ("user_id", "name", "role", "scope", "expires_at", "disabled", "token_id",
                                 "token_hash", "created_at")
#: What :meth:`Users.list_users` shows of a user (never the token's hash).
_SHOWN = ("user_id", "name", "role", "scope", "expires_at", "disabled", "token_id", "created_at")
#: Seconds a verified token is trusted without scrypt (user changes end it at once).
TOKEN_CACHE_SECONDS = 60.0
#: Roles that see nothing without a scope, so a user of them must be given one.
SCOPED_ROLES = frozenset({"street", "department", "grid"})
AUTH_FAILED = "the token is not valid (unknown, wrong, expired or disabled)"
_RELATIVE = re.compile(r"^\s*(\d{1,4})\s*([dh])\s*$")
_LAYER_OF_COLUMN = {"district_code": "districts", "street_code": "streets", "community_code": "communities",
                    "grid_code": "grids"}


def users_sql(types: SqlTypes) -> list[str]:
    """The statement creating the users table (idempotent)."""
    return [f"CREATE TABLE IF NOT EXISTS users (user_id {types.text} PRIMARY KEY, name {types.text} NOT NULL, "
            f"role {types.text} NOT NULL, scope {types.text} NOT NULL, expires_at {types.time}, "
            f"disabled {types.boolean} NOT NULL, token_id {types.text} NOT NULL UNIQUE, "
            f"token_hash {types.text} NOT NULL, created_at {types.time} NOT NULL)"]


def parse_expiry(value: Any, *, now: dt.datetime | None = None) -> dt.datetime | None:
    """When a user expires: None (never), ``"90d"`` / ``"12h"`` from now, or a date or time (ISO).

    >>> parse_expiry("90d", now=dt.datetime(2026, 1, 1))
    datetime.datetime(2026, 4, 1, 0, 0)
    >>> parse_expiry("2026-12-31", now=dt.datetime(2026, 1, 1))
    datetime.datetime(2026, 12, 31, 0, 0)
    """
    now = now_cst() if now is None else now
    if value is None:
        return None
    relative = _RELATIVE.match(value) if isinstance(value, str) else None
    if relative is not None:
        amount, unit = int(relative.group(1)), relative.group(2)
        if amount < 1:
            raise ParameterError(f"expires={value!r}; expected at least 1 {'day' if unit == 'd' else 'hour'}")
        return now + (dt.timedelta(days=amount) if unit == "d" else dt.timedelta(hours=amount))
    if not isinstance(value, (str, dt.date)):
        raise InputTypeError(f"expires is a {type(value).__name__}; expected '90d', '12h' or an ISO date")
    try:
        when = to_cst(value, "expires")
    except (ParameterError, InputTypeError):
        raise ParameterError(f"expires={value!r}; expected a number of days ('90d'), hours ('12h') "
                             "or an ISO date ('2026-12-31')") from None
    if when <= now:
        raise ParameterError(f"expires={value!r} is in the past; expected a time after {now:%Y-%m-%d %H:%M}")
    return when


class Users(AuditLog):
    """The store's users and its access log (mixed into :class:`jngis.store.Store`)."""

    _token_cache: Cache

    def _check_scope(self, conn: Any, role: str, scope: Any) -> tuple[str, ...]:
        """The scope's codes, each one present in the store (admin codes) or its departments registry.

        (Department codes are checked once the store holds a registry: a store without
        departments yet takes any code.)
        """
        codes = (scope,) if isinstance(scope, str) else tuple(scope)
        Principal("u-check", "check", role, codes)  # the codes' form, as every principal checks it
        if role in SCOPED_ROLES and not codes:
            raise ParameterError(f"add_user: role {role!r} needs a scope (its 街道, grids or departments); "
                                 "expected scope= one or more codes")
        held = self._held_layers(conn) | _tables(self, conn)
        registry = "departments" in held and self._execute(
            conn, "SELECT 1 FROM departments LIMIT 1").fetchone() is not None
        for code in codes:
            if role == "department":
                if registry and self._execute(
                        conn, "SELECT 1 FROM departments WHERE code = ?", (code,)).fetchone() is None:
                    raise ParameterError(f"add_user: scope code {code!r} is not in the store's departments; "
                                         "expected a department code of the registry")
                continue
            column = KEY_OF_LEVEL[level_of(code)]
            layer = _LAYER_OF_COLUMN[column]
            if layer not in held or self._execute(
                    conn, f"SELECT 1 FROM {layer} WHERE {column} = ? LIMIT 1", (code,)).fetchone() is None:
                raise ParameterError(f"add_user: scope code {code!r} ({CODE_DIGITS[column]} digits) is not a "
                                     f"{column} of the store's {layer}; expected a code the city holds")
        return tuple(sorted(set(codes)))

    def add_user(self, name: str, *, role: str, scope: Any = (), expires: Any = None,
                 principal: Principal = access.ADMIN) -> tuple[dict, str]:
        """Add a user; returns ``(the user's record, the token's text)``, the token shown this once.

        ``role`` is one of :data:`jngis.access.ROLES` (not anonymous); ``scope``
        administrative codes the store holds (6, 9, 12 or 15 digits) or, for the
        department role, department codes; ``expires`` ``"90d"``, ``"12h"``, an
        ISO date or None (never). Needs ``users.manage``.
        """
        principal = access.principal(principal)
        access.require(principal, "users.manage")
        name = _checks.text("add_user", "name", name, max_length=100, required=True)
        if role not in ROLES or role == "anonymous":
            raise ParameterError(f"add_user: role={role!r}; expected one of {[r for r in ROLES if r != 'anonymous']}")
        expires_at = parse_expiry(expires)
        token_id, secret, text = access.new_token()
        record: dict[str, Any] = {"user_id": f"u-{secrets.token_hex(6)}", "name": name, "role": role, "scope": (),
                  "expires_at": expires_at, "disabled": False, "token_id": token_id,
                  "token_hash": access.hash_secret(secret), "created_at": now_cst()}
        with self._write() as conn:
            record["scope"] = self._check_scope(conn, role, scope)
            row = {**record, "scope": json.dumps(list(record["scope"]))}
            self._execute(conn, f"INSERT INTO users({', '.join(USER_COLUMNS)}) "
                                f"VALUES ({', '.join('?' * len(USER_COLUMNS))})",
                          [self._to_db(row[c]) for c in USER_COLUMNS])
            self._users_changed(conn, principal, "users.add", record["user_id"],
                                f"{name}: {role} {','.join(record['scope']) or '(city)'} until {expires_at}")
        return {k: record[k] for k in _SHOWN}, text

    def list_users(self, *, principal: Principal = access.ADMIN) -> list[dict]:
        """Every user, oldest first (never a token's hash). Needs ``users.manage``."""
        access.require(access.principal(principal), "users.manage")
        rows = self._execute(self._conn(), f"SELECT {', '.join(_SHOWN)} FROM users "
                                           "ORDER BY created_at, user_id").fetchall()
        return [self._user_record(row) for row in rows]

    def _user_record(self, row: Any) -> dict:
        record = dict(zip(_SHOWN, row))
        record["scope"] = tuple(json.loads(record["scope"]))
        record["disabled"] = bool(record["disabled"])
        for column in ("expires_at", "created_at"):
            record[column] = self._from_db_time(record[column])
        return record

    def _changed_user(self, conn: Any, func: str, user_id: Any, assignments: str, params: list) -> None:
        _checks.text(func, "user_id", user_id, max_length=100, required=True)
        found = self._execute(conn, f"UPDATE users SET {assignments} WHERE user_id = ?", [*params, user_id])
        if found.rowcount != 1:
            raise NotFoundError(f"{func}: user_id={user_id!r} does not exist; expected an id of list_users()")

    def disable_user(self, user_id: str, *, principal: Principal = access.ADMIN) -> None:
        """Disable a user: their token is refused from the next request on. Needs ``users.manage``."""
        principal = access.principal(principal)
        access.require(principal, "users.manage")
        with self._write() as conn:
            self._changed_user(conn, "disable_user", user_id, "disabled = ?", [True])
            self._users_changed(conn, principal, "users.disable", user_id)

    def rotate_token(self, user_id: str, *, principal: Principal = access.ADMIN) -> str:
        """A new token for a user (shown this once); the old one is refused from now on."""
        principal = access.principal(principal)
        access.require(principal, "users.manage")
        token_id, secret, text = access.new_token()
        with self._write() as conn:
            self._changed_user(conn, "rotate_token", user_id, "token_id = ?, token_hash = ?",
                               [token_id, access.hash_secret(secret)])
            self._users_changed(conn, principal, "users.rotate", user_id)
        return text

    def _users_changed(self, conn: Any, principal: Principal, action: str, user_id: str, detail: str = "") -> None:
        """Log a user change and announce it on the change channel (in the change's transaction)."""
        self._log(conn, principal, action, target=user_id, detail=detail or None)
        self.announce("users")
        self._token_cache.clear()

    def authenticate(self, token: Any) -> Principal:
        """The principal a token stands for, or :class:`AuthenticationError` (one message for every failure).

        The error's ``failure`` says which (malformed, unknown id, wrong secret,
        disabled, expired) for the access log (:meth:`log_failed_sign_ins`); it
        is decided after the one scrypt every failure pays, so it costs no time.
        """
        parsed = access.parse_token(token)
        key = (hashlib.sha256(token.encode("utf-8")).hexdigest() if parsed else "",
               self.change_versions()["users"])
        cached = self._token_cache.get(key) if parsed else None
        now = now_cst()
        if cached is not None and time.monotonic() - cached[2] < TOKEN_CACHE_SECONDS \
                and (cached[1] is None or cached[1] > now):
            return cached[0]
        token_id, secret = parsed if parsed else ("", "")
        row = self._execute(self._conn(), f"SELECT {', '.join(USER_COLUMNS)} FROM users WHERE token_id = ?",
                            (token_id,)).fetchone() if parsed else None
        user = dict(zip(USER_COLUMNS, row)) if row is not None else None
        matches = access.secret_matches(secret, user["token_hash"] if user else None)
        expires_at = self._from_db_time(user["expires_at"]) if user else None
        if not matches or user is None or bool(user["disabled"]) or (expires_at is not None and expires_at <= now):
            # the class is for the access log only (decided after the one scrypt every failure pays)
            raise refusal(AUTH_FAILED, "malformed" if not parsed else "unknown id" if user is None
                          else "wrong secret" if not matches else "disabled" if user["disabled"] else "expired")
        who = Principal(user["user_id"], user["name"], user["role"], tuple(json.loads(user["scope"])))
        self._token_cache.insert(key, (who, expires_at, time.monotonic()))
        return who


def _tables(store: StorePart, conn: Any) -> set[str]:
    """The plain tables of the store (the departments registry is one, not a layer)."""
    if store._paramstyle == "format":
        query = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in store._execute(conn, query).fetchall()}
