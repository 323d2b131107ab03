"""The public :func:`rebalance`: its parameters, and its phases in order (see :mod:`jngis.rebalance`)."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

import geopandas as gpd
import pandas as pd

from jngis import _checks
from jngis.codes import COMMUNITY_HOUSEHOLDS
from jngis.rebalance.growth import GROWTH_POLICIES, added_households
from jngis.rebalance.options import RebalanceOptions, check_stations, check_units, fixed_codes, retired_codes
from jngis.rebalance.plan import RebalancePlan
from jngis.rebalance.prepare import atoms, read_units, starting_regions, street_problems, unit_graph
from jngis.rebalance.results import assemble, check_growth, measure_before, outcome
from jngis.rebalance.search import StreetProblem, StreetResult, solve

__all__ = ["rebalance", "solve_streets", "POOL_MIN_UNITS"]

T = TypeVar("T")

#: Inputs with at least this many units are solved in a process pool.
POOL_MIN_UNITS = 5000


# Long only by its numpydoc docstring (parameters, returns, raises, example); the body is the phases.
def rebalance(
    units: gpd.GeoDataFrame,
    *,
    min_households: int = COMMUNITY_HOUSEHOLDS[0],
    max_households: int = COMMUNITY_HOUSEHOLDS[1],
    community: str = "community_code",
    street: str = "street_code",
    households: str = "households",
    keep_together: str | None = "compound_id",
    fixed: Iterable[str] = (),
    seed: int = 0,
    time_limit: float | None = None,
    stations: gpd.GeoDataFrame | None = None,
    unit_id: str = "unit_id",
    workers: int | None = None,
    progress: bool | None = None,
    preferred: tuple[int, int] | None = None,
    headroom: float | tuple[float, float] | None = None,
    preferred_weight: float = 2.0,
    priority: str = "weighted",
    growth: str | pd.DataFrame | None = None,
    horizon: int | None = None,
    growth_policy: str = "report",
    retired: Iterable[str] = (),
) -> RebalancePlan:
    """Redraw communities so each holds ``min_households``–``max_households`` households.

    See :mod:`jngis.rebalance` for the algorithm. Each 街道 is solved on its
    own; where one cannot be brought within the bounds it is improved as far
    as possible and listed in ``plan.infeasible`` with the reason — this
    function never raises for that.

    Parameters
    ----------
    units : geopandas.GeoDataFrame
        The units layer: polygons with ``unit_id``, households, 街道 and
        current community. Geographic CRSs are projected with
        :func:`jngis.crs.to_metric`; the plan's polygons come back in the
        input's CRS.
    min_households, max_households : int
        The bounds (defaults: the 1,000–3,000 of the Residents' Committee
        Organization Law, Art. 3).
    community, street, households : str
        Column names of the current community code, the 街道 code and the
        household count.
    keep_together : str or None
        Column of gated-compound ids (missing values: not in a compound).
        A compound is never split unless its households alone exceed
        ``max_households``. None, or the default name absent from ``units``:
        no compounds.
    fixed : iterable of str
        Community codes to leave untouched (no unit leaves or joins them).
    seed : int
        Seed for the tie-breaking random choices (the plan is reproducible).
    time_limit : float, optional
        Wall-clock seconds for the search; when reached, every 街道 keeps
        the best contiguous plan found so far (listed in ``infeasible`` if
        not within bounds).
    stations : geopandas.GeoDataFrame, optional
        Service stations (points with ``area_m2``; with a ``level`` column
        only ``level == "community"`` counts). Each station counts for the
        community of the unit it stands in (or the nearest unit): the
        metrics then give how many communities meet 30 m² per 100
        households before and after.
    unit_id : str
        Column of unit ids.
    workers : int, optional
        Processes for the search; default 2 for inputs of at least
        5,000 units (when the machine has 2 cores), else 1.
    progress : bool, optional
        Show a tqdm progress bar (default: when stderr is a terminal).
    preferred : (int, int), optional
        A preferred band inside the bounds (say 1,500–2,500). The bounds stay
        hard; the plan then prefers communities inside this band, trading
        it against households moved as ``priority`` says.
    headroom : float, int or (above_min, below_max), optional
        Households kept free below ``max_households`` and above
        ``min_households`` for growth: a share of the bound (``0.1``: 2,700 and
        1,100 of 3,000 and 1,000) or a number of households, one value for
        both sides or a pair. The communities are brought inside the band it
        leaves wherever the 街道 allows; elsewhere within the bounds as without it.
    preferred_weight : float
        With ``priority="weighted"``: how many households moved one household
        of a community outside the preferred band is worth (default 2).
    priority : {"weighted", "preferred", "moved"}
        ``"weighted"`` trades by ``preferred_weight``; ``"preferred"`` puts the
        preferred band first (then households moved), ``"moved"`` households
        moved first (the band only decides between plans moving as many).
    growth : str or DataFrame, optional
        Households expected to move in by the ``horizon``: a column of
        ``units``, or a table with ``households`` per ``unit_id``, or a
        GeoDataFrame of planned housing (points or polygons, optionally with
        ``street_code``) not in ``units`` yet, each counted for the unit it
        lies in or the nearest unit of its 街道. The plan is checked against
        today's and the horizon's households: ``plan.growth`` and
        ``plan.leaving`` say which communities would leave the band by then.
    horizon : int, optional
        The year the growth is expected by (shown in the report).
    growth_policy : {"report", "refuse"}
        With growth: report the communities leaving the band, or refuse the
        plan (:class:`~jngis.errors.GrowthError`) when there are any.
    retired : iterable of str
        Community codes retired by earlier boundary versions
        (``store.retired_codes("communities")``): a new community never takes
        one (a retired code is never given to another area), so the plan can
        be adopted after earlier redraws. Refused if a unit still has one.

    Returns
    -------
    RebalancePlan
        ``metrics`` holds, before and after: ``communities``,
        ``within_bounds`` (count and share), ``above_max``, ``below_min``,
        min/median/max households, ``mean_polsby_popper``,
        ``contiguous_share``; and ``moved_households``, ``moved_share``,
        ``lower_bound`` (over the 街道 where every community can be within
        bounds), ``moved_over_lower_bound`` (moved households in those same
        街道 / lower bound), ``islands``, ``infeasible_streets``,
        ``seconds``.

    Raises
    ------
    InputTypeError
        ``units`` is not a GeoDataFrame, or a parameter has the wrong type.
    ParameterError
        ``min_households >= max_households``, a bound, ``seed`` (negative),
        ``workers`` or ``time_limit`` out of range; ``retired`` holds a code
        that is not 12 digits or that a unit still has.
    SchemaError
        A column is missing, households are negative or not whole numbers,
        a unit is listed in two communities, a community spans two 街道.
    GrowthError
        ``growth_policy="refuse"`` and a community would leave the band by the horizon.
    GeometryError
        Empty, invalid or non-polygon geometry.
    CRSError
        ``units`` has no CRS.
    NotFoundError
        ``fixed`` names a code no unit has.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> units = load_slice().units
    >>> plan = rebalance(units, min_households=1000, max_households=3000)
    >>> plan.metrics["within_bounds_before"], plan.metrics["within_bounds_after"]
    (3, 5)
    >>> bool(plan.communities["households"].between(1000, 3000).all())
    True
    >>> plan.metrics["contiguous_share_after"]
    1.0
    """
    started = time.time()
    options = RebalanceOptions(
        min_households=min_households, max_households=max_households, community=community, street=street,
        households=households, keep_together=keep_together, fixed=fixed_codes(fixed), seed=seed, time_limit=time_limit,
        unit_id=unit_id, workers=workers, progress=progress, preferred=preferred, headroom=headroom,
        preferred_weight=preferred_weight, priority=priority, retired=retired_codes(retired))
    check_units(units, options)
    check_stations(stations, options)
    _checks.choice("rebalance", "growth_policy", growth_policy, GROWTH_POLICIES)
    if horizon is not None:
        _checks.integer("rebalance", "horizon", horizon, minimum=1900, maximum=2200)
    deadline = started + time_limit if time_limit is not None else math.inf
    table = read_units(units, options)
    added = added_households(growth, table.metric, options.unit_id, options.street)
    graph = unit_graph(table)
    atom_table = atoms(table, graph, options.max_households)
    start = starting_regions(atom_table)
    streets = street_problems(table, graph, atom_table, start, options, deadline)
    n_workers = options.workers
    if n_workers is None:
        n_workers = 2 if table.n >= POOL_MIN_UNITS and (os.cpu_count() or 1) >= 2 else 1
    show = progress if progress is not None else bool(getattr(sys.stderr, "isatty", lambda: False)())
    # today's communities are dissolved and measured while the workers search
    results, before = solve_streets(streets.problems, n_workers, show, meanwhile=lambda: measure_before(table, graph))
    streets.lower_bounds.update({result.street: result.lower_bound for result in results})
    codes = outcome(table, atom_table, streets, results, options.retired)
    plan = assemble(table, graph, atom_table, start, streets, codes, options, stations, units.crs, n_workers, before)
    if added is not None:
        check_growth(plan, added, options, horizon, growth_policy)
    plan.metrics["seconds"] = time.time() - started
    return plan


def _worker_init() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool


def solve_streets(problems: list[StreetProblem], workers: int, show: bool,
                  meanwhile: Callable[[], T] | None = None) -> tuple[list[StreetResult], T | None]:
    """Solve every 街道, the largest first; in a pool of ``workers`` processes when more than one.

    ``meanwhile`` (optional) runs in this process while the pool's workers search; its value is returned
    beside the results (run first when there is no pool).
    """
    from tqdm.auto import tqdm

    order = sorted(range(len(problems)), key=lambda i: -len(problems[i].weight))
    results: list = [None] * len(problems)
    side = None
    bar = tqdm(total=len(problems), desc="rebalance 街道", disable=not show, leave=False)
    try:
        if workers <= 1 or len(problems) < 2:
            side = meanwhile() if meanwhile is not None else None
            for i in order:
                results[i] = solve(problems[i])
                bar.update()
        else:
            # fork: workers start at once and never re-import the caller's script (spawn would
            # re-run an unguarded `__main__`); they only run the pure-Python search
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            pool = context.Pool(workers, initializer=_worker_init)
            try:
                ordered = [problems[i] for i in order]
                answers = pool.imap(solve, ordered, chunksize=1)
                side = meanwhile() if meanwhile is not None else None
                for position, result in enumerate(answers):
                    results[order[position]] = result
                    bar.update()
                pool.close()
            except BaseException:
                pool.terminate()  # Ctrl-C or an error: stop the workers now, leave nothing running
                raise
            finally:
                pool.join()
    finally:
        bar.close()
    return results, side
