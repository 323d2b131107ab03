"""Who may see and do what: principals, roles, scopes and masking (pure: no store, no HTTP).

Access is data, evaluated in one place (GeoServer GeoFence is the model): a
:class:`Principal` (who is asking: id, name, role, scope) is passed to every
store method that reads or changes orders, versions or users; the store turns
:func:`order_scope` into SQL, so the CLI, notebooks and the server obey the same
rules. Personal data (PIPL art. 51: least privilege, de-identification) is
masked by default (phones as 138****5678, names as 张*) and shown in full only
through an explicit, logged reveal.

Roles (the table in docs/SECURITY.md):

========== ============================================================
admin      everything, users
planner    layers, figures; adopts versions within their district
hotline    creates and dispatches orders anywhere; personal data masked, reveal logged
street     orders located in their 街道: read, act, call departments
department orders dispatched to their department: sign, act, return
grid       orders in their grids: read, report new ones there, progress
leader     figures and orders in scope, never personal data
anonymous  map layers and per-grid figures only (and even that can be off)
========== ============================================================

Examples
--------
>>> street = Principal("u-1", "李四", "street", ("370102003",))
>>> can(street, "orders.transition"), can(street, "users.manage")
(True, False)
>>> order_scope(street).contains({"grid_code": "370102003001002", "street_code": "370102003"})
True
>>> mask_phone("13812345678"), mask_name("张三")
('138****5678', '张*')
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from jngis import codes
from jngis.errors import ForbiddenError, InputTypeError, ParameterError

__all__ = [
    "ROLES",
    "CITY_WIDE_ROLES",
    "ROLE_LABELS",
    "ACTIONS",
    "PERMISSIONS",
    "STEPS",
    "Principal",
    "ADMIN",
    "SYSTEM",
    "ANONYMOUS",
    "principal",
    "can",
    "require",
    "may_take_step",
    "Scope",
    "order_scope",
    "personal_access",
    "mask_phone",
    "mask_name",
    "mask_text",
    "mask_record",
    "new_token",
    "parse_token",
    "hash_secret",
    "secret_matches",
]

ROLES: tuple[str, ...] = ("admin", "planner", "hotline", "street", "department", "grid", "leader", "anonymous")
ROLE_LABELS: dict[str, str] = {
    "admin": "系统管理员", "planner": "规划人员", "hotline": "热线受理员", "street": "街道处置人员",
    "department": "部门处置人员", "grid": "网格员", "leader": "领导", "anonymous": "匿名用户",
}
#: Everything a principal may be allowed to do.
ACTIONS: tuple[str, ...] = (
    "layers.read", "stats.read", "orders.read", "orders.create", "orders.transition",
    "orders.dispatch", "personal.masked", "personal.reveal", "versions.adopt", "users.manage",
    "audit.export", "evaluation.read", "departments.call",
)
_READ_MAP = {"layers.read", "stats.read"}
#: role -> the actions it may take (within its scope).
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "planner": frozenset(_READ_MAP | {"versions.adopt", "evaluation.read"}),
    "hotline": frozenset(_READ_MAP | {"orders.read", "orders.create", "orders.transition", "orders.dispatch",
                                      "personal.masked", "personal.reveal", "evaluation.read"}),
    "street": frozenset(_READ_MAP | {"orders.read", "orders.transition", "personal.masked", "personal.reveal",
                                     "departments.call", "evaluation.read"}),
    "department": frozenset(_READ_MAP | {"orders.read", "orders.transition", "personal.masked",
                                         "personal.reveal"}),
    "grid": frozenset(_READ_MAP | {"orders.read", "orders.create", "orders.transition", "personal.masked"}),
    "leader": frozenset(_READ_MAP | {"orders.read", "evaluation.read"}),
    "anonymous": frozenset(_READ_MAP),
}
#: role -> the work-order steps (``to`` of a transition) it may take; admin takes any.
STEPS: dict[str, frozenset[str]] = {
    "hotline": frozenset({"dispatched", "closed", "reopened", "extended", "returned",
                          "extension_decision", "supervise", "callback", "rehandle", "verify", "merge"}),
    "street": frozenset({"in_progress", "resolved", "returned", "extended",
                         "sign", "contact", "on_site", "reply", "extension_request", "call"}),
    "department": frozenset({"in_progress", "resolved", "returned",
                             "sign", "contact", "on_site", "reply", "extension_request"}),
    "grid": frozenset({"in_progress"}),
}


@dataclass(frozen=True)
class Principal:
    """Who is asking: an id (the trail's ``who``), a name, a role and a scope.

    ``scope`` holds administrative codes (6, 9, 12 or 15 digits: district, 街道,
    community, grid) or, for the department role, department codes. An empty
    scope means the whole city for admin, hotline, leader and planner, and nothing
    for the scoped roles (street, department, grid).
    """

    id: str
    name: str
    role: str
    scope: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ParameterError(f"Principal: id={self.id!r}; expected a non-empty string")
        if self.role not in ROLES:
            raise ParameterError(f"Principal: role={self.role!r}; expected one of {list(ROLES)}")
        scope = (self.scope,) if isinstance(self.scope, str) else tuple(self.scope)
        if not all(isinstance(code, str) and code for code in scope):
            raise ParameterError(f"Principal: scope={self.scope!r}; expected codes as strings")
        if self.role != "department":
            bad = [c for c in scope if not (c.isdigit() and len(c) in (6, 9, 12, 15))]
            if bad:
                raise ParameterError(
                    f"Principal: scope code {bad[0]!r} of role {self.role!r} is not an administrative code; "
                    "expected 6 (district), 9 (街道), 12 (community) or 15 (grid) digits"
                )
        object.__setattr__(self, "scope", tuple(sorted(set(scope))))

    @property
    def label(self) -> str:
        """The role's Chinese name, for the viewer."""
        return ROLE_LABELS[self.role]


ADMIN = Principal("admin", "管理员", "admin")
SYSTEM = Principal("system", "系统", "admin")
ANONYMOUS = Principal("anonymous", "匿名用户", "anonymous")


def principal(value: Any, parameter: str = "principal") -> Principal:
    """``value`` checked to be a :class:`Principal` (the store's methods call this first)."""
    if not isinstance(value, Principal):
        raise InputTypeError(f"{parameter} is a {type(value).__name__}; expected a jngis.access.Principal "
                             "(jngis.access.ADMIN for the administrator)")
    return value


def can(who: Principal, action: str) -> bool:
    """Whether ``who``'s role allows ``action`` (one of :data:`ACTIONS`)."""
    if action not in ACTIONS:
        raise ParameterError(f"action={action!r}; expected one of {list(ACTIONS)}")
    return action in PERMISSIONS[principal(who, "who").role]


def require(who: Principal, action: str) -> None:
    """Raise :class:`ForbiddenError` unless ``who`` may take ``action``."""
    if not can(who, action):
        raise ForbiddenError(f"{who.label} {who.name!r} ({who.role}) may not {action}", action=action)


def may_take_step(who: Principal, step: str) -> bool:
    """Whether ``who``'s role may move an order by ``step`` (a transition's ``to``)."""
    if not can(who, "orders.transition"):
        return False
    return who.role == "admin" or step in STEPS.get(who.role, frozenset())


# --------------------------------------------------------------------------- scopes


class Scope(NamedTuple):
    """Which orders a principal may see: ``(column, codes)`` clauses OR-ed together.

    ``everything`` lets every order through; no clauses and not everything lets
    none through. The store turns it into SQL (:meth:`sql`, bound parameters);
    in-memory frames use :meth:`mask`.
    """

    clauses: tuple[tuple[str, tuple[str, ...]], ...] = ()
    everything: bool = False

    @property
    def key(self) -> tuple:
        """A hashable key for caches of anything that depends on the scope."""
        return ("*",) if self.everything else self.clauses

    def sql(self, placeholder: str = "?", prefix: str = "") -> tuple[str, list[str]]:
        """``(where-clause, parameters)``; ``prefix`` qualifies column names (``"o."``)."""
        if self.everything:
            return "1=1", []
        if not self.clauses:
            return "1=0", []
        parts: list[str] = []
        params: list[str] = []
        for column, values in self.clauses:
            parts.append(f"{prefix}{column} IN ({', '.join([placeholder] * len(values))})")
            params.extend(values)
        return "(" + " OR ".join(parts) + ")", params

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        """A boolean array: which rows of ``frame`` lie in the scope."""
        if self.everything:
            return np.ones(len(frame), dtype=bool)
        keep = np.zeros(len(frame), dtype=bool)
        for column, values in self.clauses:
            if column in frame.columns:
                keep |= frame[column].isin(values).to_numpy()
        return keep

    def contains(self, record: Mapping[str, Any]) -> bool:
        """Whether one order (a mapping of its fields) lies in the scope."""
        return self.everything or any(record.get(column) in values for column, values in self.clauses)


#: Roles whose empty scope means the whole city (for street, department and grid it means nothing).
CITY_WIDE_ROLES = frozenset({"admin", "hotline", "leader", "planner"})


def order_scope(who: Principal) -> Scope:
    """The orders ``who`` may see.

    Admin and hotline see every order (unless given a scope); street, grid,
    leader and planner see the orders located in their administrative codes
    (leader and planner without a scope: the whole city) (a 9-digit code is a 街道, so
    its orders have that ``street_code``); department handlers see the orders
    dispatched to one of their departments (``department_code``); anonymous sees
    none (only aggregated figures).
    """
    who = principal(who, "who")
    if who.role in CITY_WIDE_ROLES and not who.scope:
        return Scope(everything=True)
    if who.role == "anonymous" or not who.scope:
        return Scope()
    if who.role == "department":
        return Scope((("department_code", who.scope),))
    by_level: dict[str, list[str]] = {}
    for code in who.scope:
        by_level.setdefault(codes.KEY_OF_LEVEL[codes.level_of(code)], []).append(code)
    return Scope(tuple((column, tuple(values)) for column, values in sorted(by_level.items())))


def personal_access(who: Principal) -> str:
    """``"none"`` (personal fields left out), ``"masked"``, or ``"reveal"`` (masked, full on a logged reveal)."""
    if can(who, "personal.reveal"):
        return "reveal"
    return "masked" if can(who, "personal.masked") else "none"


# --------------------------------------------------------------------------- masking

_DIGIT_RUN = re.compile(r"\d")


def mask_phone(phone: Any) -> Any:
    """A phone number with its middle digits hidden: ``13812345678`` -> ``138****5678``.

    Numbers of fewer than 7 digits are hidden entirely; missing values stay missing.
    """
    if phone is None or (isinstance(phone, float) and np.isnan(phone)):
        return phone
    text = str(phone).strip()
    digits = "".join(_DIGIT_RUN.findall(text))
    if len(digits) < 7:
        return "****"
    return f"{digits[:3]}****{digits[-4:]}"


def mask_name(name: Any) -> Any:
    """A person's name with all but its first character hidden: ``张三`` -> ``张*``."""
    if name is None or (isinstance(name, float) and np.isnan(name)):
        return name
    text = str(name).strip()
    return text[:1] + "*" * max(len(text) - 1, 1) if text else text


def mask_text(text: Any) -> Any:
    """Free text with every phone and identity-card number in it masked."""
    if not isinstance(text, str):
        return text
    text = codes.ID_CARD_PATTERN.sub(lambda m: m.group()[:6] + "*" * 8 + m.group()[-4:], text)
    return codes.PHONE_PATTERN.sub(lambda m: mask_phone(m.group()), text)


_MASKERS = {"caller_name": mask_name, "name_of_caller": mask_name}


def mask_record(record: Mapping[str, Any], who: Principal, kind: str = "workorders") -> dict[str, Any]:
    """One order (or any record) as ``who`` may see it.

    Personal fields (:func:`jngis.codes.is_personal`) are masked for roles with
    ``personal.masked`` and left out for the others; descriptions are always
    run through :func:`mask_text` (a full value only ever comes from a logged reveal).
    """
    access = personal_access(who)
    out: dict[str, Any] = {}
    for name, value in record.items():
        if codes.is_personal(name, kind):
            if access == "none":
                continue
            value = _MASKERS.get(name, mask_phone if "phone" in name or "mobile" in name else mask_name)(value)
        elif name == "description":
            value = mask_text(value)
        out[name] = value
    return out


# --------------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"^jngis_([0-9a-f]{10})_([A-Za-z0-9_-]{20,})$")


def new_token() -> tuple[str, str, str]:
    """A new API token: ``(token_id, secret, text)``; only the text is shown, once, to its owner.

    The id is public (it finds the user); the secret is 32 random bytes; the store keeps
    :func:`hash_secret` of it, never the secret.
    """
    token_id = secrets.token_hex(5)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"jngis_{token_id}_{secret}"


def parse_token(text: Any) -> tuple[str, str] | None:
    """``(token_id, secret)`` of a token's text, or None when it is not one."""
    if not isinstance(text, str):
        return None
    found = _TOKEN.match(text.strip())
    return (found.group(1), found.group(2)) if found else None


#: scrypt's cost (RFC 7914): n=2**14, r=8, p=1 takes 16 MiB and about 30-70 ms per hash on
#: this project's 2-core machines, so a stolen users table cannot be searched quickly.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_SCRYPT_BYTES = 32


def _scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=_SCRYPT_BYTES,
                          maxmem=2 * 128 * r * n + 1024 * 1024)


def hash_secret(secret: str) -> str:
    """The stored form of a token secret: ``scrypt$n$r$p$salt$hash`` (a fresh 16-byte salt each time).

    The string names its own parameters, so stores written with other costs still verify.

    >>> stored = hash_secret("s3cret")
    >>> stored.split("$")[:4], secret_matches("s3cret", stored), secret_matches("other", stored)
    (['scrypt', '16384', '8', '1'], True, False)
    """
    if not isinstance(secret, str) or not secret:
        raise InputTypeError(f"secret is a {type(secret).__name__}; expected a non-empty string")
    salt = secrets.token_bytes(16)
    digest = _scrypt(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return "$".join(("scrypt", str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()))


_DUMMY = hash_secret("jngis-dummy-secret")


def _parse_stored(stored: str) -> tuple[bytes, int, int, int, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt" or not all(p.isdigit() for p in parts[1:4]):
        return None
    n, r, p = (int(v) for v in parts[1:4])
    if not (2 <= n <= 2**20 and 1 <= r <= 32 and 1 <= p <= 16):
        return None
    try:
        return base64.b64decode(parts[4], validate=True), n, r, p, base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None


_DUMMY_PARTS = _parse_stored(_DUMMY) or (b"", SCRYPT_N, SCRYPT_R, SCRYPT_P, b"")


def secret_matches(secret: str, stored: str | None) -> bool:
    """Whether a presented secret is the one ``stored`` (:func:`hash_secret`) was made of.

    An unknown token id (``stored`` None) or a stored value that is not a scrypt
    string is compared against a dummy hash, so the time taken (one scrypt) does
    not tell whether the id exists; the final comparison is constant-time.
    """
    parsed = _parse_stored(stored) if isinstance(stored, str) else None
    known = parsed is not None
    salt, n, r, p, expected = parsed if parsed is not None else _DUMMY_PARTS
    presented = _scrypt(secret if isinstance(secret, str) else "", salt, n, r, p)
    return hmac.compare_digest(presented, expected) and known
