"""Management grids (网格): each community divided into grids of 300-500 households.

How :func:`make_grids` draws the grids of one community
------------------------------------------------------
1. **Land.** The community polygon minus the union of its units is its open
   land (roads, squares, parks, campuses), split into connected parts. A part
   of at least ``dedicated_min_area`` m² becomes a dedicated grid (专属网格).
2. **Number of grids.** Units holding more than ``max_households`` cannot
   be split, so each gets a grid of its own; the other households get the
   number of grids ``k`` whose mean size is nearest the middle of the bounds
   among those that fit (``ceil(H / max) <= k <= floor(H / min)``), the
   least-violating ``k`` when none fits. A community with fewer than
   ``2 * min_households`` households is one grid.
3. **Units.** The unit contiguity graph (:func:`jngis.adjacency.shared_edges`)
   is cut by recursive bisection on spanning trees: for several minimum
   spanning trees of the centroid distances (randomly perturbed with
   ``np.random.default_rng([seed, community_code])``), every tree edge splits
   the units into two connected sets; the split kept is the one whose sides
   can hold their share of grids within the bounds, closest to the mean size,
   with the shortest shared boundary (compact grids). Then single boundary
   units move between neighbouring grids while that lowers the total
   violation of the bounds, never disconnecting a grid. Each grid is
   therefore contiguous and no unit is ever split.
4. **Open land to grids.** A part touching the units of one grid joins it; a
   part touching several (a road between blocks) is divided between them by
   the Voronoi diagram of points on the edges it shares with each grid, so
   each grid takes the land nearest to it; leftover pieces join the grid they
   share the longest edge with.
5. **Tiling check.** Each grid is the union of its units and land; the gap,
   overlap and outside areas against the community polygon are measured
   (:func:`jngis.topology.coverage_errors`) and must be under 1 m².
6. **Exact coverage.** The unions tile the community only up to float noise
   (edges a hair apart, zero-width spikes that become self-intersections
   once reprojected to degrees). The community's grids are cleaned at once
   with its outside (:func:`jngis.topology.clean_coverage`): neighbours then
   share every edge vertex for vertex, the grids' outer edges run through
   every vertex of the community, and each grid stays valid in WGS84.

Codes
-----
``grid_code`` is the 12-digit community code plus a 3-digit sequence
(001-999). The grids of a community are numbered north→south, then
west→east: rows of height ``h = sqrt(community area / number of grids)``
(the side of an average grid) are counted down from the community's
northernmost point, each grid falls in the row of its centroid, and inside
a row grids go by centroid x (then y). The same input gives the same codes.

Modules
-------
- :mod:`~jngis.grids.make` — :func:`make_grids` and its phases (checks, one
  task per community, the run, the grids layer, ``previous``);
- :mod:`~jngis.grids.community` — the grids of one community;
- :mod:`~jngis.grids.partition` — the number of grids, spanning-tree
  bisection and the repair on the region engine (:mod:`jngis.regions`);
- :mod:`~jngis.grids.land` — open land to grids, the tiling repair;
- :mod:`~jngis.grids.staffing` — :class:`Staffing` ("1+1+N+X");
- :mod:`~jngis.grids.quality` — :func:`grid_quality`, :func:`grid_summary`;
- :mod:`~jngis.grids.cells` — :func:`regular_grid`.
"""

from jngis.grids.cells import regular_grid
from jngis.grids.community import TILING_TOLERANCE
from jngis.grids.make import make_grids
from jngis.grids.quality import grid_quality, grid_summary
from jngis.grids.staffing import Staffing
from jngis.topology import polsby_popper

__all__ = ["Staffing", "make_grids", "grid_summary", "grid_quality", "regular_grid", "polsby_popper",
           "TILING_TOLERANCE"]
