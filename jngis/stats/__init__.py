"""Indicators per grid and their roll-up; service-station coverage and siting.

:func:`grid_stats` places stations, party organisations and 12345 work orders
in their grids (with one :class:`~jngis.assign.PolygonIndex`) and counts
them; :func:`rollup` sums a grid table to communities, 街道 or districts so
that every sum equals the sum of its grids exactly, and recomputes rates and
medians from their parts. :func:`coverage` measures how far each block is
from a community party-and-public service centre and a grid station, the
share of households within the 5/10/15-minute life circles (300/500/1000 m,
GB 50180-2018), and each community's service floor area against the norm of
30 m² per 100 households. :func:`suggest_sites` picks the candidate sites
that newly cover the most households (maximal covering, greedy with lazy
evaluation).

Work-order rules (as of ``at``)
-------------------------------
- an order counts only if it was received at or before ``at``;
- *open*: its status is not ``resolved`` / ``closed``, or it was resolved or
  closed after ``at`` (when ``resolved_at`` / ``closed_at`` are given);
- *overdue*: open and ``due_at < at``;
- *orders_30d*: received in the 30 days up to ``at`` (``at - 30 days < received_at <= at``);
- *median_days_to_resolve*: median of ``resolved_at - received_at`` in days
  over the orders resolved at or before ``at``;
- *satisfaction_rate*: ``satisfied_orders / rated_orders`` over the orders
  with a citizen evaluation (``satisfied`` not missing), NaN with none.

Datetimes are naive China Standard Time, as in the work-order layer; a
timezone-aware ``at`` is converted to Asia/Shanghai first. No column of a
work order other than these is read, so personal data never reaches a table.

Modules: :mod:`~jngis.stats.grid` (grid_stats), :mod:`~jngis.stats.rollup`,
:mod:`~jngis.stats.coverage`, :mod:`~jngis.stats.sites` (suggest_sites).
"""

from jngis.stats.coverage import AREA_NORM_M2_PER_100_HOUSEHOLDS, LIFE_CIRCLE_RADII, Coverage, coverage
from jngis.stats.grid import grid_stats
from jngis.stats.rollup import LEVELS, rollup
from jngis.stats.sites import suggest_sites

__all__ = [
    "grid_stats",
    "rollup",
    "coverage",
    "suggest_sites",
    "Coverage",
    "LEVELS",
    "AREA_NORM_M2_PER_100_HOUSEHOLDS",
    "LIFE_CIRCLE_RADII",
]
