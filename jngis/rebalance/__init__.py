"""Community rebalancing: redraw communities so each holds 1,000–3,000 households.

:func:`rebalance` takes the units layer (buildings or residential blocks, each
with its current community) and proposes new communities that are, in this
order: (1) within ``[min_households, max_households]`` wherever the data
allows, (2) as close to today's plan as possible (fewest households moved),
(3) compact (Polsby-Popper). Hard rules hold throughout: a community lies in
one 街道, is contiguous, never splits a gated compound (unless the compound
alone exceeds the maximum) and leaves ``fixed`` communities untouched.

Algorithm
---------
The 街道 nesting cuts a city into independent problems of a few hundred units
each, solved one by one (or in a process pool of 2 workers for large inputs).
In each 街道:

1. **Atoms and graph.** Units are grouped into atoms: a gated compound that
   fits under the maximum is one indivisible atom (one per connected piece).
   Atoms are joined by shared edges longer than 1 m
   (:func:`jngis.adjacency.shared_edges`); a unit with no land neighbour in
   its 街道 is linked to the nearest unit there
   (:func:`jngis.adjacency.island_links`) and the plan lists it.
   A community that is not contiguous today starts as its largest piece plus
   separate fragments, which the search then places.
2. **Lower bound.** A small mixed-integer programme per 街道 (HiGHS via
   :func:`scipy.optimize.milp`) on community totals: every old community
   either survives within the bounds keeping at most its own households, or
   is dissolved; new communities within the bounds take the rest. Its optimum
   is the fewest households any plan can move; it relaxes contiguity and the
   indivisibility of units, so it is valid whatever the adjacency. (The
   per-community bound "each community above the maximum loses at least
   h − max, each below the minimum gains min − h or dissolves" double counts
   a transfer between an oversized and an undersized neighbour, so it is not
   used as such.)
3. **Repair** (a constructive local search in the spirit of the
   contiguity-safe moves of CM-Tabu — Duque, Anselin & Rey 2012, "The
   max-p-regions problem", J. Regional Science 52(3) — and the
   "peel boundary units from donors to recipients" moves of redistricting
   heuristics, Ricca & Simeone 2008): the region furthest outside the bounds
   is fixed first.

   - *Too large*: shed boundary atoms to neighbours with room; if that is not
     enough, split off the smallest compact part that brings it within
     bounds (best of several seeds grown by distance, so the part that keeps
     the code keeps most households); else push the excess along the
     shortest chain of neighbouring communities to one with room.
   - *Too small*: gain boundary atoms from neighbours with households to
     spare, or dissolve into the neighbour that can take it, or spread over
     several neighbours when that leaves them more compact at as many
     households moved (whichever moves fewer households first); else pull
     along a chain; else merge with a neighbour and split the union again.

   An atom only leaves a community if the rest stays connected (never an
   articulation point alone), so every intermediate plan is contiguous. Each
   accepted step strictly lowers the total bound violation; a step that does
   not is undone, so the search ends.
4. **Polish.** Atoms away from their old community return to it where the
   bounds allow (fewer moved households), then boundary moves that raise
   the Polsby-Popper sum of the two communities without moving more
   households, then exchanges across a border — an atom away from its old
   community (with at most one neighbour) for one to three connected atoms
   of the other side, of unequal households where the bounds allow; an atom
   going back to its old community may take two neighbours along, and the
   atoms that make up for it may come from a third community bordering
   either side — whose change in households moved is zero or less, then
   boundary moves again.
   It runs twice from the repaired plan — atoms returned home in atom
   order, and the returns that make shapes most compact first — and keeps
   the plan moving fewer households, then the more compact one.
5. **Codes.** Old and new communities are matched one-to-one by
   :func:`scipy.optimize.linear_sum_assignment` on the household overlap
   table; a matched new community keeps the old code, the others get the
   next free 12-digit code in their 街道. Households moved = all households
   minus those kept under that matching, i.e. the households of units whose
   code changes.

Community polygons are the exact union of their units (shapely
``coverage_union``, no slivers; a plain union where a 街道's units are not a
valid coverage). Open land that is part of a community today but is not a
unit is not in any unit, so it is not in the new polygons either: both the
before and the after Polsby-Popper are measured on dissolved units, so they
compare like with like.

Modules
-------
The phases are plain functions returning small dataclasses, in the order
:func:`rebalance` runs them:

- :mod:`~jngis.rebalance.options` — :class:`RebalanceOptions`, the checked
  parameters, and the checks of the layers;
- :mod:`~jngis.rebalance.prepare` — units → unit graph → atoms → starting
  regions → one :class:`~jngis.rebalance.search.StreetProblem` per 街道;
- :mod:`~jngis.rebalance.search` — the search on the region engine
  (:mod:`jngis.regions`) and the lower bound;
- :mod:`~jngis.rebalance.results` — codes, tables and metrics;
- :mod:`~jngis.rebalance.plan` — :class:`RebalancePlan` and its report;
- :mod:`~jngis.rebalance.growth` — ``growth=``: households by a horizon year,
  the plan checked against them;
- :mod:`~jngis.rebalance.tradeoff` — :func:`rebalance_tradeoff`, households
  moved against plans that last;
- :mod:`~jngis.rebalance.exact` — :func:`exact_moved`, the proven fewest
  households moved in one small 街道 (HiGHS with contiguity cuts) beside the
  search's figure.

Plans that last
---------------
Moving the fewest households drives an oversized community down to exactly
the maximum, so the first new building pushes it out again. Three options
keep room: ``headroom=`` (the search first brings every community inside a
band shrunk by the headroom, then, where a 街道 cannot, inside the bounds as
before — and keeps the plain plan wherever the band would leave more
households outside the bounds), ``preferred=`` (after the repair, boundary
moves trade households moved against households outside a preferred band,
by ``preferred_weight`` or lexicographically, never leaving the bounds or
the headroom band) and ``growth=`` (the plan checked against the horizon's
households, reported or refused).
"""

from jngis.codes import SERVICE_AREA_M2_PER_100_HOUSEHOLDS
from jngis.rebalance.exact import ExactMoved, exact_moved
from jngis.rebalance.options import RebalanceOptions
from jngis.rebalance.plan import RebalancePlan
from jngis.rebalance.redraw import POOL_MIN_UNITS, rebalance
from jngis.rebalance.tradeoff import Tradeoff, rebalance_tradeoff, years_to_leave
from jngis.topology import polsby_popper

__all__ = ["RebalancePlan", "RebalanceOptions", "rebalance", "polsby_popper", "POOL_MIN_UNITS",
           "SERVICE_AREA_PER_100_HOUSEHOLDS", "Tradeoff", "rebalance_tradeoff", "years_to_leave", "ExactMoved",
           "exact_moved"]

#: The community service floor area norm (m² per 100 households); the old name of
#: :data:`jngis.codes.SERVICE_AREA_M2_PER_100_HOUSEHOLDS`.
SERVICE_AREA_PER_100_HOUSEHOLDS = SERVICE_AREA_M2_PER_100_HOUSEHOLDS
