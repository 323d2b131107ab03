"""Schemas, validate(), City I/O."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from jngis.errors import CRSError, InputTypeError, NotFoundError, SchemaError
from jngis.layers import SCHEMAS, City, read_city, read_layer, validate, write_city, write_layer


def test_every_kind_of_the_slice_validates(slice_city):
    assert set(slice_city.kinds()) >= {"districts", "streets", "communities", "units", "stations",
                                       "party_orgs", "workorders"}
    for kind, layer in slice_city.layers():
        assert validate(layer, kind) is layer


def test_missing_required_column_is_named(slice_city):
    for kind, layer in slice_city.layers():
        column = SCHEMAS[kind].required[-1]
        with pytest.raises(SchemaError, match=rf"{kind}: missing required column '{column}'"):
            validate(layer.drop(columns=column), kind)


def test_wrong_code_length(slice_city):
    units = slice_city.units.copy()
    units.loc[units.index[3], "community_code"] = "37010200300"
    with pytest.raises(SchemaError, match=r"units: column 'community_code' has a code of the wrong form "
                                          r"\('37010200300'\) in row 3 \(unit_id='U\d+'\); "
                                          r"expected a string of exactly 12"):
        validate(units, "units")


def test_code_must_extend_parent(slice_city):
    communities = slice_city.communities.copy()
    communities.loc[0, "community_code"] = "370103001001"
    with pytest.raises(SchemaError, match=r"does not extend its street_code \('370103001001' does not start "
                                          r"with '370102003'\)"):
        validate(communities, "communities")


def test_numeric_codes_are_refused_with_a_hint(slice_city):
    districts = slice_city.districts.assign(district_code=370102)
    with pytest.raises(SchemaError, match=r"holds numbers .* convert with \.astype\(str\)"):
        validate(districts, "districts")


@pytest.mark.parametrize("value, problem", [(-5, "negative value -5"), (2.5, "non-integer value 2.5")])
def test_households_must_be_non_negative_integers(slice_city, value, problem):
    units = slice_city.units.copy()
    units["households"] = units["households"].astype(float)
    units.loc[units.index[7], "households"] = value
    with pytest.raises(SchemaError, match=rf"units: column 'households' has the {problem} in row 7"):
        validate(units, "units")


def test_self_intersecting_polygon(slice_city):
    units = slice_city.units.copy()
    bowtie = shapely.Polygon([(0, 0), (10, 10), (10, 0), (0, 10)])
    units.loc[units.index[2], "geometry"] = bowtie
    with pytest.raises(SchemaError, match=r"units: column 'geometry' has invalid geometries \(Self-intersection"):
        validate(units, "units")


def test_empty_wrong_type_nan_and_3d_geometry(slice_city):
    units = slice_city.units.copy()
    with pytest.raises(SchemaError, match=r"missing or empty geometries in row 0"):
        validate(units.set_geometry(np.r_[[shapely.Polygon()], units.geometry.values[1:]],
                                    crs=units.crs), "units")
    with pytest.raises(SchemaError, match=r"has a Point .* expected Polygon or MultiPolygon"):
        validate(units.set_geometry(shapely.centroid(units.geometry.values), crs=units.crs), "units")
    nan_square = shapely.Polygon([(0, 0), (1, np.nan), (1, 1), (0, 0)])
    with pytest.raises(SchemaError, match=r"NaN or infinite coordinates"):
        validate(units.set_geometry(np.r_[[nan_square], units.geometry.values[1:]], crs=units.crs), "units")
    with pytest.raises(SchemaError, match=r"3-D coordinates"):
        validate(units.set_geometry(shapely.force_3d(units.geometry.values), crs=units.crs), "units")


def test_duplicate_keys(slice_city):
    stations = slice_city.stations.copy()
    stations.loc[stations.index[1], "station_id"] = stations["station_id"].iloc[0]
    with pytest.raises(SchemaError, match=r"stations: column 'station_id' has duplicate keys"):
        validate(stations, "stations")


def test_choices_and_datetimes(slice_city):
    orders = slice_city.workorders.copy()
    orders.loc[orders.index[0], "status"] = "lost"
    with pytest.raises(SchemaError, match=r"column 'status' has the value 'lost' .* expected one of 'received'"):
        validate(orders, "workorders")
    orders = slice_city.workorders.assign(received_at=lambda d: d["received_at"].astype(str))
    with pytest.raises(SchemaError, match=r"column 'received_at' has dtype .* expected datetimes"):
        validate(orders, "workorders")


def test_personal_data_never_in_a_layer(slice_city):
    orders = slice_city.workorders.assign(caller_phone="13800000000")
    with pytest.raises(SchemaError, match=r"'caller_phone' holds personal data"):
        validate(orders, "workorders")


def test_personal_data_has_one_definition(slice_city):
    # jngis.codes.personal_columns: a `mobile` column is a caller's phone, whatever its name
    orders = slice_city.workorders.assign(mobile="13800000000")
    with pytest.raises(SchemaError, match=r"workorders: column 'mobile' holds personal data"):
        validate(orders, "workorders")
    # a service station's public phone is not personal data
    stations = slice_city.stations.assign(phone="0531-12345")
    assert validate(stations, "stations") is stations


@pytest.mark.parametrize("kind, parent", [("streets", "district_code"), ("communities", "street_code"),
                                          ("grids", "community_code")])
@pytest.mark.parametrize("missing", [None, pd.NA])
def test_missing_parent_code_is_a_schema_error(slice_city, kind, parent, missing):
    layer = getattr(slice_city, kind).copy()
    if missing is pd.NA:
        layer[parent] = layer[parent].astype("string")
    layer.loc[layer.index[0], parent] = missing
    with pytest.raises(SchemaError, match=rf"{kind}: column '{parent}' has missing values in row 0 "
                                          rf"\({SCHEMAS[kind].key}="):
        validate(layer, kind)


def test_crs_is_required_and_sane(slice_city):
    with pytest.raises(CRSError, match=r"districts: the layer has no CRS"):
        validate(slice_city.districts.set_crs(None, allow_override=True), "districts")
    with pytest.raises(CRSError, match=r"are not degrees, but the CRS is geographic"):
        validate(slice_city.districts.set_crs(4490, allow_override=True), "districts")


def test_bad_arguments():
    with pytest.raises(InputTypeError, match=r"validate: gdf is a DataFrame; expected a geopandas.GeoDataFrame"):
        validate(pd.DataFrame({"unit_id": [1]}), "units")
    frame = gpd.GeoDataFrame({"x": [1]}, geometry=[shapely.Point(0, 0)], crs=4548)
    with pytest.raises(SchemaError, match=r"kind='roads' is not a layer kind; expected one of districts"):
        validate(frame, "roads")
    with pytest.raises(SchemaError, match=r"cannot tell the layer kind from its columns \['x', 'geometry'\]"):
        validate(frame)


def test_city_round_trip_through_geopackage(slice_city, tmp_path):
    path = write_city(slice_city, tmp_path / "city.gpkg")
    again = read_city(path)
    assert again.kinds() == slice_city.kinds()
    for kind, layer in slice_city.layers():
        other = getattr(again, kind)
        assert len(other) == len(layer)
        assert other.crs == layer.crs
        key = SCHEMAS[kind].key
        assert other[key].tolist() == layer[key].tolist()
        assert shapely.equals_exact(other.geometry.values, layer.geometry.values, tolerance=1e-6).all()
    pd.testing.assert_series_equal(again.workorders["due_at"], slice_city.workorders["due_at"],
                                   check_dtype=False, check_index=False)


def test_nullable_counts_come_back_as_integers(slice_city, tmp_path):
    units = slice_city.units.copy()
    building = np.where(np.arange(len(units)) % 3 == 0, 0, np.arange(len(units)) % 7 + 1)
    units["building"] = pd.array(building, dtype="Int64")
    units.loc[building == 0, "building"] = pd.NA  # the only building at its door has no number
    again = read_layer(write_layer(units, tmp_path / "units.gpkg"), "units")
    assert str(again["building"].dtype) == "Int64"
    pd.testing.assert_series_equal(again["building"], units["building"], check_index=False)


def test_write_city_validates_first_and_leaves_nothing_behind(slice_city, tmp_path):
    broken = City(units=slice_city.units.assign(households=-1))
    with pytest.raises(SchemaError, match="negative"):
        write_city(broken, tmp_path / "broken.gpkg")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".parquet", ".gpkg"])
def test_single_layers_in_other_formats(slice_city, tmp_path, suffix):
    communities = slice_city.communities
    path = write_layer(communities, tmp_path / f"communities{suffix}")
    again = read_layer(path, "communities")
    assert again["community_code"].tolist() == communities["community_code"].tolist()
    assert np.allclose(again.area.to_numpy(), communities.area.to_numpy())
    city = read_city(tmp_path)
    assert city.kinds() == ["communities"]


def test_read_errors(tmp_path):
    with pytest.raises(NotFoundError, match=r"does not exist"):
        read_city(tmp_path / "nowhere.gpkg")
    bad = tmp_path / "bad.gpkg"
    bad.write_text("not a geopackage")
    with pytest.raises(SchemaError, match=r"is not a readable GIS file"):
        read_city(bad)


def test_summary_reports_size_bands(slice_city):
    lines = slice_city.summary()
    assert any(line.startswith("units") and "households" in line for line in lines)
    households = slice_city.households_by("communities")
    within = int(households.between(1000, 3000).sum())
    assert any(f"{within} within 1,000-3,000" in line for line in lines)
