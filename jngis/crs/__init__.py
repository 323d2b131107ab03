"""Coordinate reference systems for Chinese city data, and GCJ-02 / BD-09.

CRS constants
-------------
Official data is in CGCS2000 longitude/latitude (:data:`CGCS2000`,
EPSG:4490), which equals WGS84 (:data:`WGS84`, EPSG:4326) at map accuracy.
Metric work (areas, distances, buffers) happens in the CGCS2000 3-degree
Gauss-Kruger zone of the data, "without zone prefix": EPSG:4534 (CM 75E) to
EPSG:4554 (CM 135E), EPSG code = 4534 + (CM - 75) / 3. Jinan lies in the
zone of CM 117E, :data:`JINAN_GK` (EPSG:4548). Web maps use
:data:`WEB_MERCATOR` (EPSG:3857), which is not fit for measuring: its scale
at Jinan's latitude is about 1.25. :func:`to_metric` picks the zone from the
data.

GCJ-02 and BD-09
----------------
Consumer map data is shifted: Amap, Tencent and Google China use GCJ-02,
Baidu uses BD-09 (an extra rotation and scaling on top of GCJ-02). In Jinan
GCJ-02 is 480-570 m and BD-09 1.2-1.4 km away from WGS84, so such data must
be converted before it is mixed with official layers.

- WGS84 -> GCJ-02 is the published algorithm (as in coordtransform and
  eviltransform): an offset from the ``transformLat`` / ``transformLon``
  polynomials, turned into degrees on the Krasovsky 1940 ellipsoid
  (a = 6378245.0 m, e² = 0.00669342162296594323).
- GCJ-02 -> BD-09 is the published closed form
  (``z = sqrt(x² + y²) + 0.00002 sin(y·x_pi)``,
  ``θ = atan2(y, x) + 0.000003 cos(x·x_pi)``, x_pi = π·3000/180,
  BD-09 = (z cos θ + 0.0065, z sin θ + 0.006)).
- Neither has an exact closed-form inverse. The one-step GCJ-02 -> WGS84
  inverse most libraries ship (subtract the offset evaluated at the GCJ-02
  point) is off by up to a few metres, and the usual BD-09 -> GCJ-02 formula
  by up to about 0.25 m. Both inverses here start from those formulas and
  then run a fixed-point iteration, vectorised over the whole array, until
  the forward transform of the answer reproduces the input to 1e-10 degrees
  (about 0.01 mm); it takes 2-3 rounds. Round trips are exact to well under
  a millimetre.

Pass-through rule: as in the published algorithm, a point outside the
rectangle 72.004 <= lon <= 137.8347, 0.8293 <= lat <= 55.8271 ("out of
China") is returned unchanged, in every direction, the test being made on the
input of each step. Compositions (WGS84 <-> BD-09) apply the rule at each of
their two steps, so within about 1.5 km of that rectangle's edge a round
trip may not return exactly its input; that edge is nowhere near a Chinese
city.

All array functions take scalars or arrays (any shape, lon and lat the same
shape) and return the same shape: Python floats for scalars, float64 arrays
otherwise. The GeoDataFrame functions transform every coordinate of every
geometry at once with :func:`shapely.transform`, keep Z values, and return
new GeoDataFrames.

Examples
--------
>>> from jngis import crs
>>> crs.gk_zone_epsg(crs.gk_zone_for_lon(117.0))
4548
>>> lon, lat = crs.wgs84_to_gcj02(117.0, 36.65)
>>> back = crs.gcj02_to_wgs84(lon, lat)
>>> round(back[0], 9), round(back[1], 9)
(117.0, 36.65)
"""

from __future__ import annotations

from jngis.crs.base import (
    CGCS2000,
    CHINA_BOUNDS,
    GK_CENTRAL_MERIDIANS,
    JINAN_CENTRAL_MERIDIAN,
    JINAN_GK,
    WEB_MERCATOR,
    WGS84,
    Coordinates,  # noqa: F401  (the type of the array functions' answers)
)
from jngis.crs.gauss_kruger import gk_zone_epsg, gk_zone_for_lon, to_metric, transformer
from jngis.crs.gcj import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from jngis.crs.gcj_frames import from_bd09, from_gcj02, to_bd09, to_gcj02

__all__ = [
    "CGCS2000",
    "WGS84",
    "WEB_MERCATOR",
    "JINAN_GK",
    "JINAN_CENTRAL_MERIDIAN",
    "GK_CENTRAL_MERIDIANS",
    "CHINA_BOUNDS",
    "gk_zone_epsg",
    "gk_zone_for_lon",
    "to_metric",
    "transformer",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "to_gcj02",
    "from_gcj02",
    "to_bd09",
    "from_bd09",
]
