"""jngis.features: the feature query (bbox, datetime, paging, properties) on a GeoDataFrame."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point

from jngis.crs import WGS84
from jngis.errors import CRSError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.features import MAX_LIMIT, Interval, get_feature, parse_bbox, parse_datetime, query_features
from jngis.layers import SCHEMAS


@pytest.fixture(scope="module")
def units(slice_city):
    return slice_city.units.to_crs(WGS84)


@pytest.fixture(scope="module")
def orders(slice_city):
    return slice_city.workorders.to_crs(WGS84)


# -- parsing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("117,36.5,117.5,37", (117.0, 36.5, 117.5, 37.0)),
    ("117,36.5,-10,117.5,37,200", (117.0, 36.5, 117.5, 37.0)),
    ((117, 36.5, 117.5, 37), (117.0, 36.5, 117.5, 37.0)),
    (None, None),
    ("", None),
])
def test_parse_bbox(text, expected):
    assert parse_bbox(text) == expected


@pytest.mark.parametrize("text, message", [
    ("1,2,3", "has 3 numbers; expected 4"),
    ("a,b,c,d", "not a list of numbers"),
    ("118,36,117,37", "min <= max"),
    ("0,-91,1,1", "within -180..180 / -90..90"),
    ((1, None, 2, 3), "not a list of numbers"),
])
def test_parse_bbox_refuses_with_the_value(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_bbox(text)


def test_parse_datetime_instants_intervals_and_zones():
    assert parse_datetime("2026-10-01T00:00:00+08:00") == Interval(pd.Timestamp("2026-10-01"),
                                                                    pd.Timestamp("2026-10-01"))
    assert parse_datetime("2026-10-01T00:00:00Z/..") == Interval(pd.Timestamp("2026-10-01 08:00"), None)
    assert parse_datetime("../2026-10-31") == Interval(None, pd.Timestamp("2026-10-31 23:59:59.999999"))
    assert parse_datetime("/2026-10-31T12:00:00") == Interval(None, pd.Timestamp("2026-10-31 12:00"))
    assert parse_datetime("2026-10-05") == Interval(pd.Timestamp("2026-10-05"),
                                                    pd.Timestamp("2026-10-05 23:59:59.999999"))
    assert parse_datetime(None) is None and parse_datetime("") is None


@pytest.mark.parametrize("value, error, message", [
    ("yesterday", ParameterError, "'yesterday' is not an RFC 3339 date-time"),
    ("2026-10-01/soon", ParameterError, "'soon' is not an RFC 3339"),
    (20261001, InputTypeError, "datetime is a int"),
])
def test_parse_datetime_refuses(value, error, message):
    with pytest.raises(error, match=message):
        parse_datetime(value)


# -- the query ---------------------------------------------------------------------------------

def test_bbox_returns_exactly_the_intersecting_features(units):
    west, south, east, north = units.total_bounds
    box = (west, south, (west + east) / 2, (south + north) / 2)
    page = query_features(units, "units", bbox=box, limit=MAX_LIMIT)
    expected = units.unit_id[units.intersects(shapely.box(*box))]
    assert [f["id"] for f in page.features] == expected.tolist()  # in the layer's order
    assert page.number_matched == len(expected) > 0


def test_pages_cover_every_feature_once(units):
    seen, offset, pages = [], 0, 0
    while offset is not None:
        page = query_features(units, "units", limit=7, offset=offset)
        assert page.number_matched == len(units) and len(page.features) <= 7
        assert page.prev_offset == (None if offset == 0 else max(0, offset - 7))
        seen += [f["id"] for f in page.features]
        offset, pages = page.next_offset, pages + 1
    assert seen == units.unit_id.tolist()
    assert pages == -(-len(units) // 7)


def test_limit_is_capped_and_checked(units):
    assert query_features(units, "units", limit=10 * MAX_LIMIT).limit == MAX_LIMIT
    with pytest.raises(ParameterError, match="query_features: limit=0; expected an integer >= 1"):
        query_features(units, "units", limit=0)
    with pytest.raises(ParameterError, match="offset=-1"):
        query_features(units, "units", offset=-1)


def test_datetime_filters_work_orders_by_receipt(orders):
    october = query_features(orders, "workorders", datetime="2026-10-01T00:00:00+08:00/2026-10-31",
                             limit=MAX_LIMIT)
    received = orders.received_at
    expected = orders.order_id[(received >= "2026-10-01") & (received < "2026-11-01")]
    assert 0 < october.number_matched == len(expected) < len(orders)
    assert {f["id"] for f in october.features} == set(expected)
    # an interval open at both ends keeps every order
    assert query_features(orders, "workorders", datetime=Interval(None, None)).number_matched == len(orders)


def test_datetime_on_a_layer_without_time_is_checked_and_ignored(units):
    assert query_features(units, "units", datetime="2026-10-01").number_matched == len(units)
    with pytest.raises(ParameterError, match="RFC 3339"):
        query_features(units, "units", datetime="yesterday")


def test_features_are_geojson_ready_to_serialise_once(orders):
    page = query_features(orders, "workorders", limit=3)
    feature = page.features[0]
    assert feature["type"] == "Feature" and feature["id"] == feature["properties"]["order_id"]
    assert isinstance(feature["properties"]["received_at"], str)  # ISO 8601
    text = json.dumps(page.features, allow_nan=False)  # plain JSON values: no default handler needed
    assert json.loads(text)[0]["id"] == orders.order_id.iloc[0]
    assert shapely.geometry.shape(feature["geometry"]).equals_exact(orders.geometry.iloc[0], 1e-12)


def test_missing_and_infinite_numbers_become_null():
    layer = gpd.GeoDataFrame({"station_id": ["a", "b", "c"], "area_m2": [np.nan, np.inf, 3.0],
                              "opened": pd.to_datetime(["2026-01-01", None, "2026-02-01"])},
                             geometry=[Point(117, 36.6)] * 3, crs=WGS84)
    values = [f["properties"] for f in query_features(layer, "stations").features]
    assert [v["area_m2"] for v in values] == [None, None, 3.0]
    assert [v["opened"] for v in values] == ["2026-01-01T00:00:00", None, "2026-02-01T00:00:00"]


def _as_geopandas_writes_it(page: gpd.GeoDataFrame, key: str, columns: list[str]) -> list[dict]:
    """geopandas' own GeoJSON of a page, with JSON's values (what the features carried before the fast path)."""
    features = page[[*columns, page.geometry.name]].to_geo_dict(na="null", drop_id=True)["features"]
    for feature, code in zip(features, page[key].tolist()):
        feature["id"] = code
        values = feature["properties"]
        for name, value in values.items():
            if isinstance(value, float) and not np.isfinite(value):
                values[name] = None
            elif hasattr(value, "isoformat"):
                values[name] = value.isoformat()
    return features


@pytest.mark.parametrize("kind", ["units", "grids", "communities", "streets", "stations", "workorders"])
def test_features_are_what_geopandas_writes(slice_city, kind):
    layer = getattr(slice_city, kind).to_crs(WGS84)
    key = SCHEMAS[kind].key
    page = query_features(layer, kind, limit=MAX_LIMIT, offset=len(layer) // 3)
    rows = layer.set_index(layer[key].astype(str)).loc[[str(f["id"]) for f in page.features]]
    assert page.features and page.features == _as_geopandas_writes_it(rows, key, list(page.features[0]["properties"]))


def test_every_geometry_type_and_z_are_written_as_shapely_does():
    shapes = ["POLYGON Z ((0 0 1, 1 0 2, 1 1 3, 0 0 1))",
              "MULTIPOLYGON (((0 0, 1 0, 1 1, 0 0), (0.2 0.1, 0.8 0.1, 0.8 0.7, 0.2 0.1)), ((5 5, 6 5, 6 6, 5 5)))",
              "POLYGON ((0 0, 3 0, 3 3, 0 0), (1 0.5, 2 0.5, 2 1.5, 1 0.5), (2.5 0.2, 2.8 0.2, 2.8 0.5, 2.5 0.2))",
              "POINT (117 36.6)", "LINESTRING (0 0, 1 1)", "POLYGON EMPTY"]
    layer = gpd.GeoDataFrame({"station_id": [str(i) for i in range(len(shapes))], "members": range(len(shapes))},
                             geometry=shapely.from_wkt(shapes), crs=WGS84)
    got = query_features(layer, "stations").features
    assert [f["geometry"] for f in got] == [g.__geo_interface__ if not g.is_empty else None for g in layer.geometry]
    assert got == _as_geopandas_writes_it(layer, "station_id", ["station_id", "members"])


def test_personal_data_never_leaves():
    layer = gpd.GeoDataFrame({"order_id": ["1"], "category": ["环境卫生"], "caller_phone": ["13912345678"],
                              "mobile": ["13812345678"], "联系人": ["张三"]},
                             geometry=[Point(117, 36.6)], crs=WGS84)
    properties = query_features(layer, "workorders").features[0]["properties"]
    assert properties == {"order_id": "1", "category": "环境卫生"}
    assert "mobile" not in get_feature(layer, "workorders", "1")["properties"]
    with pytest.raises(ParameterError, match=r"names \['mobile'\]"):
        query_features(layer, "workorders", properties=["mobile"])


def test_a_station_keeps_its_public_phone():
    layer = gpd.GeoDataFrame({"station_id": ["S1"], "phone": ["0531-12345678"]},
                             geometry=[Point(117, 36.6)], crs=WGS84)
    assert query_features(layer, "stations").features[0]["properties"]["phone"] == "0531-12345678"


def test_properties_select_the_columns(units):
    page = query_features(units, "units", properties=["households", "unit_id"], limit=2)
    assert [list(f["properties"]) for f in page.features] == [["unit_id", "households"]] * 2
    assert query_features(units, "units", properties=[], limit=1).features[0]["properties"] == {}
    with pytest.raises(ParameterError, match=r"properties=\['colour'\] names \['colour'\]; expected some of \['unit"):
        query_features(units, "units", properties=["colour"])
    with pytest.raises(InputTypeError, match="properties='households'; expected a list of names"):
        query_features(units, "units", properties="households")


def test_a_metric_layer_is_served_in_wgs84(slice_city, units):
    page = query_features(slice_city.units, "units", limit=1)
    served = shapely.geometry.shape(page.features[0]["geometry"])
    assert served.symmetric_difference(units.geometry.iloc[0]).area < 1e-12


def test_get_feature(units):
    code = units.unit_id.iloc[4]
    feature = get_feature(units, "units", code)
    assert feature["id"] == code and feature["properties"]["households"] == units.households.iloc[4]
    with pytest.raises(NotFoundError, match="units has no feature unit_id='nowhere'"):
        get_feature(units, "units", "nowhere")


@pytest.mark.parametrize("layer, kind, error, message", [
    ("not a layer", "units", InputTypeError, "layer is a str; expected a GeoDataFrame"),
    (None, "rivers", ParameterError, "kind='rivers'; expected one of"),
])
def test_bad_arguments_name_themselves(layer, kind, error, message):
    with pytest.raises(error, match=message):
        query_features(layer, kind)


def test_a_layer_without_crs_or_key_is_refused(units):
    with pytest.raises(CRSError, match="layer has no CRS"):
        query_features(units.set_crs(None, allow_override=True), "units")
    with pytest.raises(SchemaError, match=r"layer lacks column\(s\) \['unit_id'\]"):
        query_features(units.drop(columns="unit_id"), "units")
