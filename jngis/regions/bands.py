"""The bands of a redraw's parameters: a preferred band and a headroom inside the legal bounds."""

from __future__ import annotations

import numbers

from jngis import _checks
from jngis.errors import InputTypeError


def preferred_band(func: str, value, lo: int, hi: int) -> tuple[int, int] | None:
    """The ``preferred=`` parameter of ``func`` as a checked ``(low, high)`` inside ``[lo, hi]``, or None."""
    if value is None:
        return None
    ok = isinstance(value, (tuple, list)) and len(value) == 2
    _checks.require(func, "preferred", value, ok, "a pair (low, high) of household counts or None", InputTypeError)
    low = _checks.whole(func, "preferred", value[0], expected="whole numbers of households")
    high = _checks.whole(func, "preferred", value[1], expected="whole numbers of households")
    _checks.require(func, "preferred", value, lo <= low < high <= hi,
                    f"min_households={lo} <= low < high <= max_households={hi}")
    return low, high


def _headroom_side(func: str, value, bound: int) -> int:
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and 0 < float(value) < 1:
        return int(round(float(value) * bound))  # a share of the bound it is kept from
    return _checks.whole(func, "headroom", value, minimum=0,
                         expected="a share in (0, 1) or a whole number of households >= 0")


def headroom_band(func: str, headroom, lo: int, hi: int) -> tuple[int, int] | None:
    """The band the ``headroom=`` parameter of ``func`` leaves: ``(lo + above_min, hi - below_max)``.

    ``headroom`` is one value for both sides or a pair ``(above_min, below_max)``;
    each a share of its bound (``0 < share < 1``) or a number of households.

    Examples
    --------
    >>> headroom_band("rebalance", 0.1, 1000, 3000), headroom_band("make_grids", (0, 50), 300, 500)
    ((1100, 2700), (300, 450))
    """
    if headroom is None:
        return None
    sides = headroom if isinstance(headroom, (tuple, list)) else (headroom, headroom)
    _checks.require(func, "headroom", headroom, len(sides) == 2,
                    "a share, a number of households or a pair (above_min, below_max)", InputTypeError)
    low, high = lo + _headroom_side(func, sides[0], lo), hi - _headroom_side(func, sides[1], hi)
    _checks.require(func, "headroom", headroom, low < high,
                    f"a headroom that leaves a band inside {lo}-{hi} (it leaves {low}-{high})")
    return low, high
