"""Exceptions and warnings raised by jngis.

Every error a caller can provoke is a :class:`JngisError`; the specific
subclasses also inherit the built-in exception that fits (``ValueError``,
``TypeError``, ``KeyError``) so generic handlers keep working. Messages name
the parameter, the offending value and what was expected.
"""

from __future__ import annotations


class JngisError(Exception):
    """Base class of every error raised by jngis on bad input or state."""


class SchemaError(JngisError, ValueError):
    """A layer does not match its schema (columns, dtypes, codes, geometry)."""


class GeometryError(JngisError, ValueError):
    """Geometry is invalid, empty, of the wrong type or has bad coordinates."""


class CRSError(JngisError, ValueError):
    """A coordinate reference system is missing, wrong or ambiguous."""


class ParameterError(JngisError, ValueError):
    """A parameter has a value outside what the function accepts."""


class QueryError(ParameterError):
    """A feature query (a property filter, a CQL2 filter, sortby, bbox, datetime) is not valid.

    OGC API - Features answers it with 400 on every route, /workorders included.
    """


class InputTypeError(JngisError, TypeError):
    """A parameter has the wrong Python type (e.g. a DataFrame for a GeoDataFrame)."""


class NotFoundError(JngisError, KeyError):
    """A requested layer, code or record does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class JngisWarning(UserWarning):
    """Base class of warnings issued by jngis."""


class UnassignedPointsWarning(JngisWarning):
    """Some points fell in no polygon; they are kept as NA, never dropped."""


class InvalidTransition(JngisError, ValueError):
    """A work order cannot take this step from its current state.

    The message names the order, its state, the refused step and the steps
    allowed from that state; the same facts are attributes.
    """

    def __init__(self, order_id: str, state: str, action: str, allowed: tuple[str, ...],
                 reason: str = "") -> None:
        self.order_id, self.state, self.action, self.allowed = order_id, state, action, tuple(allowed)
        nexts = ", ".join(self.allowed) if self.allowed else "none (the order is closed)"
        because = f" ({reason})" if reason else ""
        super().__init__(
            f"work order {order_id!r} is {state!r}: it cannot go to {action!r}{because}; "
            f"allowed next: {nexts}"
        )


class CalendarRangeError(JngisError, ValueError):
    """A date lies outside the years whose official holiday schedule is known."""


class CalendarWarning(JngisWarning):
    """A working-day count used a year whose holiday schedule is not known (weekends only)."""


class TileError(ParameterError):
    """A tile address z/x/y is not valid (not integers, or x/y outside 0..2**z-1)."""


class ForbiddenError(JngisError, PermissionError):
    """The principal may not take this action (a write outside its role or scope).

    Reading something outside a scope raises :class:`NotFoundError` instead, so
    that nobody learns what exists outside their scope.
    """

    def __init__(self, message: str, action: str | None = None) -> None:
        super().__init__(message)
        self.action = action


class AuthenticationError(JngisError, PermissionError):
    """A token or credential is missing, malformed, unknown, expired or disabled.

    The message never says which: nothing about a token's validity leaks.
    """


class OfflineWarning(JngisWarning):
    """A map loads a script, a stylesheet or base-map tiles from the internet.

    The jngis maps inline everything they need; this says which element added
    by the caller (a folium plugin, an Icon, a Popup, an online base map) will
    be missing where there is no internet, e.g. on a government intranet.
    """


class BasemapCRSWarning(JngisWarning):
    """A base map in GCJ-02 (Amap, Tencent) was given: the data is drawn converted to GCJ-02.

    GCJ-02 tiles are shifted by 500–900 m from WGS84/CGCS2000 in Jinan, so the
    layers are converted with :func:`jngis.crs.to_gcj02` before drawing, never
    mixed; coordinates shown in such a map are not for measuring.
    """


class GrowthError(ParameterError):
    """A plan would leave its communities outside the bounds by the horizon and the caller asked to refuse it."""


class AdoptionError(JngisError, ValueError):
    """A boundary version cannot be adopted; nothing was written (the subclasses say why)."""


class UnitsMismatchError(AdoptionError):
    """The proposal's units are not the store's (ids, households), or a unit lies in no community."""


class CoverageMismatchError(AdoptionError):
    """Communities do not tile their 街道, or grids their community (gaps, overlaps, land outside)."""


class CodeConflictError(AdoptionError):
    """A code does not extend its parent's, or a code retired by an earlier version comes back."""


class EffectiveDateError(AdoptionError):
    """The effective date is before the last version's, or is not a date."""


class VersionConflictError(AdoptionError):
    """Another adoption landed while this one was being checked: check again against it."""
