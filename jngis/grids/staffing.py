"""Staffing of a grid under the "1+1+N+X" model."""

from __future__ import annotations

import math
from typing import NamedTuple

from jngis import _checks
from jngis.errors import InputTypeError, ParameterError

__all__ = ["Staffing", "STAFF_COLUMNS", "check_staffing"]

#: The staff columns of a grids layer, in :meth:`Staffing.per_grid` order.
STAFF_COLUMNS = ("grid_leaders", "full_time_workers", "part_time_workers", "enforcement_officers")


class Staffing(NamedTuple):
    """Staff of one grid under the "1+1+N+X" model.

    One grid leader, one full-time grid worker, N part-time workers (building
    heads, volunteers) and X enforcement officers (police, urban management)
    per grid. ``households_per_part_time_worker`` overrides the fixed N with
    ``ceil(households / households_per_part_time_worker)`` per residential grid.

    Examples
    --------
    >>> Staffing(part_time_workers=2).per_grid(450)
    (1, 1, 2, 0)
    >>> Staffing(households_per_part_time_worker=100).per_grid(450)
    (1, 1, 5, 0)
    """

    grid_leaders: int = 1
    full_time_workers: int = 1
    part_time_workers: int = 0
    enforcement_officers: int = 0
    households_per_part_time_worker: int | None = None

    def per_grid(self, households: int) -> tuple[int, int, int, int]:
        """Staff of a grid with ``households`` households, in column order."""
        part_time = self.part_time_workers
        if self.households_per_part_time_worker:
            part_time = math.ceil(households / self.households_per_part_time_worker)
        return self.grid_leaders, self.full_time_workers, part_time, self.enforcement_officers


def check_staffing(staffing) -> Staffing:
    """``staffing`` (a Staffing, a dict of its fields or None for the default) as a checked Staffing."""
    if staffing is None:
        return Staffing()
    if isinstance(staffing, dict):
        unknown = set(staffing) - set(Staffing._fields)
        if unknown:
            raise ParameterError(f"make_grids: staffing has unknown keys {sorted(unknown)}; expected some of "
                                 f"{list(Staffing._fields)}")
        staffing = Staffing(**staffing)
    if not isinstance(staffing, Staffing):
        raise InputTypeError(f"make_grids: staffing is a {type(staffing).__name__}; expected a Staffing or a dict")
    for name in STAFF_COLUMNS:
        _checks.whole("make_grids", f"staffing.{name}", getattr(staffing, name), minimum=0)
    if staffing.households_per_part_time_worker is not None:
        _checks.whole("make_grids", "staffing.households_per_part_time_worker",
                      staffing.households_per_part_time_worker, minimum=1)
    return staffing
