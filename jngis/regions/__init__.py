"""The region engine of jngis: a partition of a contiguity graph into regions of bounded weight.

Both redraws of jngis are the same problem on a graph: the nodes are *atoms*
(a unit, or a gated compound kept whole) with a weight (households), and each
region (a community of a 街道, a grid of a community) must stay connected
while its weight is brought within ``[lo, hi]``. :mod:`jngis.rebalance`
searches the communities of each 街道 with it, :mod:`jngis.grids` repairs the
bisection of each community into grids with it.

The engine keeps, for every region, its members, weight, area and perimeter
up to date under :meth:`Regions.move`, with an undo log
(:meth:`Regions.rollback`), and offers the moves that never disconnect a
region (:meth:`Regions.can_leave`, :meth:`Regions.leaving_block`):

- :meth:`Regions.shed` and :meth:`Regions.gain` — peel boundary atoms from a
  region that is too large to neighbours with room, or pull them into one
  that is too small (the boundary moves of redistricting heuristics, Ricca &
  Simeone 2008, and the composite contiguity-safe moves of CM-Tabu — Duque,
  Anselin & Rey 2012);
- :meth:`Regions.merge`, :meth:`Regions.region_paths` (chains of regions to
  pass households along);
- :func:`steepest_descent` — move the one boundary atom that lowers the total
  violation most, until none does.

The *violation* of a region is its distance to the bounds in households;
an atom heavier than ``hi`` cannot be divided, so with ``cap_heavy`` a
region's ceiling is its heaviest atom. Like spopt's ``region/base.py`` the
pieces are small and separate; everything is plain Python on lists (no
geometry), so a state pickles cheaply to a worker process.

Examples
--------
Four blocks in a row, 1500 | 1200 | 500 | 900 households, the first three in
region 0 (3,200: above 3,000), the last in region 1 (900: below 1,000):

>>> import numpy as np
>>> graph = Graph.from_edges(4, np.array([0, 1, 2]), np.array([1, 2, 3]))
>>> regions = Regions(graph, [1500, 1200, 500, 900], [0, 0, 0, 1], lo=1000, hi=3000)
>>> regions.total_violation()
300
>>> regions.shed(0)
500
>>> regions.label, regions.total_violation()
([0, 0, 1, 1], 0)
"""


from jngis.regions.bands import headroom_band, preferred_band
from jngis.regions.engine import NO_HOME, Floats, Graph, Ints, Regions
from jngis.regions.moves import contiguous, soft_descent, steepest_descent

__all__ = ["NO_HOME", "Graph", "Regions", "steepest_descent", "soft_descent", "contiguous", "headroom_band",
           "preferred_band", "Ints", "Floats"]
