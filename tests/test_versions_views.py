"""Every version of the versioned layers opens as a real spatial layer (QGIS, GDAL, geopandas), on both stores.

After an adoption, ``<kind>_versions`` (a view over ``<kind>_history``) holds
every row of every version with ``version_from``, ``version_to``,
``valid_from``, ``valid_to``, the layer's attributes as typed columns and the
geometry in the layer's CRS: registered in the GeoPackage's
gpkg_contents / gpkg_geometry_columns, and in PostGIS a typed geometry column
that ``geometry_columns`` lists with its SRID.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import geopandas as gpd
import pyogrio
import pytest
import shapely

import jngis
from jngis.store import open_store
from jngis.store.versions import HISTORY_VIEW_COLUMNS


@pytest.fixture(scope="module")
def coarse(slice_city):
    return jngis.make_grids(slice_city.communities, slice_city.units, min_households=600, max_households=1000)


def _in_force(frame: gpd.GeoDataFrame, version: int) -> gpd.GeoDataFrame:
    alive = (frame["version_from"] <= version) & (frame["version_to"].isna() | (frame["version_to"] > version))
    return frame[alive.to_numpy()]


def _check_versions(frame: gpd.GeoDataFrame, slice_city, coarse) -> None:
    assert set(HISTORY_VIEW_COLUMNS[1:5]) <= set(frame.columns)
    assert frame.crs.to_epsg() == slice_city.grids.crs.to_epsg()
    assert {"grid_code", "community_code", "households", "grid_type"} <= set(frame.columns)
    assert frame["households"].dtype.kind == "i"
    first, second = _in_force(frame, 1), _in_force(frame, 2)
    assert sorted(first["grid_code"]) == sorted(slice_city.grids["grid_code"])
    assert sorted(second["grid_code"]) == sorted(coarse["grid_code"])
    assert first["valid_from"].isna().all()  # version 1: in force since the store began
    assert second["valid_from"].notna().all() and second["valid_to"].isna().all()
    old = first.set_index("grid_code").loc[slice_city.grids["grid_code"]]
    assert shapely.equals_identical(old.geometry.values, slice_city.grids.geometry.values).all()
    assert (old["households"].to_numpy() == slice_city.grids["households"].to_numpy()).all()


def test_history_opens_as_layers_in_the_geopackage(slice_city, coarse, tmp_path):
    from jngis.sample import SHAPES_DIR, SLICE_FILE

    path = tmp_path / "city.gpkg"
    shutil.copy(SHAPES_DIR / SLICE_FILE, path)
    with open_store(path) as store:
        store.adopt(coarse, note="视图测试")
    layers = dict(pyogrio.list_layers(path))
    assert {f"{kind}_versions" for kind in ("streets", "communities", "units", "grids")} <= set(layers)
    frame = gpd.read_file(path, layer="grids_versions")
    _check_versions(frame, slice_city, coarse)
    # GDAL's own reading, as QGIS does: a feature layer with its SRS and typed fields
    info = _ogrinfo(str(path))
    assert f"Feature Count: {len(frame)}" in info and 'ID["EPSG",4548]' in info
    assert "grid_code: String" in info and "households: Integer" in info and "version_from: Integer" in info
    assert "valid_from: Date" in info and "geom: String" not in info
    # the store still reads its own layers (the views are no layers of the city)
    with open_store(path) as store:
        assert "grids_versions" not in store.layer_names()
        assert sorted(store.read_layer("grids")["grid_code"]) == sorted(coarse["grid_code"])


def test_history_opens_as_layers_in_postgis(slice_city, coarse, postgis_dsn):
    import psycopg
    from pgcluster import schema_dsn

    url = schema_dsn(postgis_dsn)
    with open_store(url) as store:
        store.write_city(slice_city)
        store.adopt(coarse, note="视图测试")
    with psycopg.connect(url) as conn:
        listed = dict(conn.execute("SELECT f_table_name, srid FROM geometry_columns WHERE f_table_schema = "
                                   "current_schema() AND f_table_name LIKE '%%_versions'").fetchall())
        assert listed == {f"{kind}_versions": 4548 for kind in ("streets", "communities", "units", "grids")}
        frame = gpd.read_postgis("SELECT * FROM grids_versions", conn, geom_col="geom")
    _check_versions(frame, slice_city, coarse)
    # GDAL's PostgreSQL driver (what QGIS uses) reads the view as a layer
    schema = url.split("search_path%3D")[1].split("%2C")[0]
    user, place = postgis_dsn.removeprefix("postgresql://").split("@")
    host, rest = place.split(":")
    port, database = rest.split("/")
    info = _ogrinfo(f"PG:host={host} port={port} user={user} dbname={database} schemas={schema}")
    assert f"Feature Count: {len(frame)}" in info and 'ID["EPSG",4548]' in info
    assert "households: Integer" in info and "valid_from: Date" in info


def _ogrinfo(source: str) -> str:
    """``ogrinfo -so`` of the layer grids_versions (GDAL 3.6 has no -json for ogrinfo)."""
    if shutil.which("ogrinfo") is None:  # (tests/conftest.py's require_tool: a fixture of tests/server's)
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("ogrinfo is not installed "
                                                                          "(apt-get install gdal-bin)")
    return subprocess.run(["ogrinfo", "-ro", "-so", source, "grids_versions"], check=True, capture_output=True,
                          text=True).stdout
