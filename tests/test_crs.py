"""Tests for jngis.crs: CRS constants, Gauss-Kruger zones, to_metric, GCJ-02/BD-09."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import (
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)

from jngis import crs
from jngis.crs import (
    bd09_to_gcj02,
    bd09_to_wgs84,
    from_bd09,
    from_gcj02,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    gk_zone_epsg,
    gk_zone_for_lon,
    to_bd09,
    to_gcj02,
    to_metric,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from jngis.errors import CRSError, GeometryError, InputTypeError, ParameterError

GEOD = pyproj.Geod(ellps="WGS84")

ARRAY_FUNCTIONS = [
    wgs84_to_gcj02,
    gcj02_to_wgs84,
    gcj02_to_bd09,
    bd09_to_gcj02,
    wgs84_to_bd09,
    bd09_to_wgs84,
]

# Published reference pairs, from the test suite of googollee/eviltransform
# (python/test.py, go/transform_test.go): wgsLat, wgsLng, gcjLat, gcjLng.
EVILTRANSFORM_WGS_GCJ = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


def metres_between(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Geodesic distance in metres on the WGS84 ellipsoid."""
    return np.asarray(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def one_step_gcj02_to_wgs84(lon, lat):
    """The uniterated inverse most libraries ship (coordtransform's gcj02towgs84)."""
    shifted_lon, shifted_lat = wgs84_to_gcj02(lon, lat)
    return 2 * np.asarray(lon) - shifted_lon, 2 * np.asarray(lat) - shifted_lat


def closed_form_bd09_to_gcj02(lon, lat):
    """The widely used BD-09 -> GCJ-02 formula (coordtransform's bd09togcj02)."""
    x_pi = np.pi * 3000.0 / 180.0
    x = np.asarray(lon) - 0.0065
    y = np.asarray(lat) - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * x_pi)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * x_pi)
    return z * np.cos(theta), z * np.sin(theta)


@pytest.fixture(scope="module")
def jinan_points() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    return rng.uniform(116.2, 117.9, 10_000), rng.uniform(36.0, 37.6, 10_000)


# ----------------------------------------------------------------------------
# constants and Gauss-Kruger zones
# ----------------------------------------------------------------------------


def test_constants_name_the_expected_crs():
    assert pyproj.CRS(crs.CGCS2000).name == "China Geodetic Coordinate System 2000"
    assert pyproj.CRS(crs.WGS84).name == "WGS 84"
    assert pyproj.CRS(crs.WEB_MERCATOR).name == "WGS 84 / Pseudo-Mercator"
    assert crs.JINAN_GK == "EPSG:4548"
    assert pyproj.CRS(crs.JINAN_GK).name == "CGCS2000 / 3-degree Gauss-Kruger CM 117E"
    assert gk_zone_epsg(crs.JINAN_CENTRAL_MERIDIAN) == 4548
    assert crs.GK_CENTRAL_MERIDIANS == tuple(range(75, 136, 3))


@pytest.mark.parametrize("central_meridian", range(75, 136, 3))
def test_gk_zone_epsg_matches_the_epsg_registry(central_meridian):
    code = gk_zone_epsg(central_meridian)
    assert code == 4534 + (central_meridian - 75) // 3
    zone = pyproj.CRS(code)
    assert zone.name == f"CGCS2000 / 3-degree Gauss-Kruger CM {central_meridian}E"
    params = {p.name: p.value for p in zone.coordinate_operation.params}
    assert params["Longitude of natural origin"] == central_meridian
    assert params["False easting"] == 500_000


def test_gk_zone_epsg_accepts_numpy_integers():
    assert gk_zone_epsg(np.int64(117)) == 4548


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (
            118,
            ParameterError,
            r"gk_zone_epsg: central_meridian=118 is not the central meridian"
            r".*multiple of 3 from 75 to 135",
        ),
        (72, ParameterError, r"central_meridian=72 .*expected a multiple of 3 from 75 to 135"),
        (138, ParameterError, r"central_meridian=138 "),
        (
            117.0,
            InputTypeError,
            r"gk_zone_epsg: central_meridian=117\.0 has type float; expected an int",
        ),
        ("117", InputTypeError, r"central_meridian='117' has type str"),
        (True, InputTypeError, r"central_meridian=True has type bool"),
    ],
)
def test_gk_zone_epsg_rejects_bad_meridians(value, error, match):
    with pytest.raises(error, match=match):
        gk_zone_epsg(value)


@pytest.mark.parametrize(
    ("lon", "zone"),
    [
        (117.0, 117),
        (116.2, 117),
        (117.9, 117),
        (115.5, 117),  # a zone edge belongs to the eastern zone
        (115.4999, 114),
        (118.5, 120),
        (73.5, 75),
        (136.4999, 135),
    ],
)
def test_gk_zone_for_lon_scalar(lon, zone):
    result = gk_zone_for_lon(lon)
    assert result == zone
    assert type(result) is int


def test_gk_zone_for_lon_array_keeps_shape():
    zones = gk_zone_for_lon(np.array([[115.4, 115.5], [118.4, 118.5]]))
    assert zones.shape == (2, 2)
    assert zones.tolist() == [[114, 117], [117, 120]]


@pytest.mark.parametrize(
    ("lon", "error", "match"),
    [
        (
            73.4,
            ParameterError,
            r"gk_zone_for_lon: lon has 1 value\(s\) outside China's 3-degree Gauss-Kruger "
            r"zones \(lon=73\.4\); expected finite longitudes with 73\.5 <= lon < 136\.5",
        ),
        (136.5, ParameterError, r"lon=136\.5\)"),
        ([117.0, np.nan], ParameterError, r"first at index 1: lon=nan"),
        ([117.0, 2.35, 200.0], ParameterError, r"has 2 value\(s\).*first at index 1: lon=2\.35"),
        (
            "east",
            InputTypeError,
            r"gk_zone_for_lon: lon='east' has type str; expected a number or an array",
        ),
    ],
)
def test_gk_zone_for_lon_rejects_bad_longitudes(lon, error, match):
    with pytest.raises(error, match=match):
        gk_zone_for_lon(lon)


# ----------------------------------------------------------------------------
# GCJ-02 / BD-09 on arrays: published values
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(wgs_lat, wgs_lon, gcj_lat, gcj_lon):
    lon, lat = wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert lon == pytest.approx(gcj_lon, abs=1e-9)
    assert lat == pytest.approx(gcj_lat, abs=1e-9)


@pytest.mark.parametrize(("wgs_lat", "wgs_lon", "gcj_lat", "gcj_lon"), EVILTRANSFORM_WGS_GCJ)
def test_gcj02_to_wgs84_inverts_eviltransform_pairs_to_a_millimetre(
    wgs_lat, wgs_lon, gcj_lat, gcj_lon
):
    lon, lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres_between(lon, lat, wgs_lon, wgs_lat) < 1e-3
    # eviltransform's own one-step inverse only promises 5 m (0.3-1.9 m measured)
    one_lon, one_lat = one_step_gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres_between(one_lon, one_lat, wgs_lon, wgs_lat) > 0.1


def test_forward_transforms_match_gcoord():
    # hujiulong/gcoord test/unit/crs/{WGS84,GCJ02}.spec.ts, point (123, 45)
    assert wgs84_to_gcj02(123.0, 45.0) == pytest.approx((123.00607541, 45.00197815), abs=1e-7)
    assert gcj02_to_bd09(123.0, 45.0) == pytest.approx((123.00636499, 45.00636899), abs=1e-7)
    assert wgs84_to_bd09(123.0, 45.0) == pytest.approx((123.0124491, 45.0083293), abs=1e-7)


def test_inverse_transforms_agree_with_gcoord_within_its_tolerance():
    # gcoord's inverses are approximate (toBeCloseTo(..., 5): |diff| < 5e-6 deg);
    # ours differ from its values by < 1e-6 deg, i.e. by its own error.
    assert gcj02_to_wgs84(123.0, 45.0) == pytest.approx((122.99395597, 44.99804071), abs=5e-6)
    assert bd09_to_gcj02(123.0, 45.0) == pytest.approx((122.99363304, 44.99365430), abs=5e-6)
    assert bd09_to_wgs84(123.0, 45.0) == pytest.approx((122.98762210, 44.99171540), abs=5e-6)


# ----------------------------------------------------------------------------
# round trips
# ----------------------------------------------------------------------------


def test_gcj02_round_trip_over_jinan_is_sub_millimetre(jinan_points):
    lon, lat = jinan_points
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    shift = metres_between(lon, lat, gcj_lon, gcj_lat)
    assert 400 < shift.min() and shift.max() < 700  # GCJ-02 is ~0.5 km off in Jinan
    back_lon, back_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres_between(lon, lat, back_lon, back_lat).max() < 1e-3


def test_one_step_gcj02_inverse_is_metres_off_where_ours_is_not(jinan_points):
    lon, lat = jinan_points
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    one_lon, one_lat = one_step_gcj02_to_wgs84(gcj_lon, gcj_lat)
    ours_lon, ours_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert metres_between(lon, lat, one_lon, one_lat).max() > 0.5  # ~3 m measured
    assert metres_between(lon, lat, ours_lon, ours_lat).max() < 0.01


def test_bd09_round_trip_over_jinan_is_sub_millimetre(jinan_points):
    lon, lat = jinan_points
    bd_lon, bd_lat = gcj02_to_bd09(lon, lat)
    back_lon, back_lat = bd09_to_gcj02(bd_lon, bd_lat)
    assert metres_between(lon, lat, back_lon, back_lat).max() < 1e-3
    # the closed-form inverse alone is centimetres off (~0.15 m measured)
    cf_lon, cf_lat = closed_form_bd09_to_gcj02(bd_lon, bd_lat)
    assert metres_between(lon, lat, cf_lon, cf_lat).max() > 0.05


def test_wgs84_bd09_round_trip_over_jinan_is_sub_millimetre(jinan_points):
    lon, lat = jinan_points
    bd_lon, bd_lat = wgs84_to_bd09(lon, lat)
    shift = metres_between(lon, lat, bd_lon, bd_lat)
    assert 1000 < shift.min() and shift.max() < 1500  # BD-09 is ~1.3 km off in Jinan
    back_lon, back_lat = bd09_to_wgs84(bd_lon, bd_lat)
    assert metres_between(lon, lat, back_lon, back_lat).max() < 1e-3


def test_inverses_converge_over_all_of_china():
    lon, lat = np.meshgrid(np.linspace(72.2, 137.6, 300), np.linspace(1.0, 55.6, 250))
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres_between(lon.ravel(), lat.ravel(), back[0].ravel(), back[1].ravel()).max() < 1e-3
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres_between(lon.ravel(), lat.ravel(), back[0].ravel(), back[1].ravel()).max() < 1e-3


# Keep 0.1 degree inside the "out of China" rectangle: a shifted point must not
# cross its edge, where the published pass-through rule breaks round trips.
china_lon = st.floats(72.2, 137.6, allow_nan=False)
china_lat = st.floats(1.0, 55.6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lon=china_lon, lat=china_lat)
@example(lon=105.0, lat=35.0)  # sqrt(|lon - 105|) in the offset is not smooth here
@example(lon=117.0, lat=36.65)
def test_round_trips_property(lon, lat):
    back = gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat))
    assert metres_between(lon, lat, *back) < 1e-3
    back = bd09_to_gcj02(*gcj02_to_bd09(lon, lat))
    assert metres_between(lon, lat, *back) < 1e-3
    back = bd09_to_wgs84(*wgs84_to_bd09(lon, lat))
    assert metres_between(lon, lat, *back) < 1e-3


# ----------------------------------------------------------------------------
# pass-through, shapes
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
@pytest.mark.parametrize(
    ("lon", "lat"),
    [(139.7, 35.7), (0.0, 0.0), (-74.0, 40.7), (117.0, 60.0), (117.0, -10.0), (180.0, -90.0)],
)
def test_points_outside_china_pass_through_unchanged(func, lon, lat):
    assert func(lon, lat) == (lon, lat)


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_mixed_arrays_shift_only_points_in_china(func):
    lon = np.array([139.7, 117.0, 0.0])
    lat = np.array([35.7, 36.65, 0.0])
    out_lon, out_lat = func(lon, lat)
    assert (out_lon[[0, 2]] == lon[[0, 2]]).all() and (out_lat[[0, 2]] == lat[[0, 2]]).all()
    assert metres_between(lon[1], lat[1], out_lon[1], out_lat[1]) > 400


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_output_has_the_input_shape(func):
    scalar = func(117.0, 36.65)
    assert all(type(value) is float for value in scalar)

    lon = np.full((2, 3), 117.0)
    lat = np.full((2, 3), 36.65)
    out_lon, out_lat = func(lon, lat)
    assert out_lon.shape == out_lat.shape == (2, 3)
    assert out_lon.dtype == out_lat.dtype == np.float64
    assert np.allclose(out_lon, scalar[0], rtol=0, atol=1e-12)

    listed = func([117.0, 117.1], [36.65, 36.7])
    assert isinstance(listed[0], np.ndarray) and listed[0].shape == (2,)

    empty = func(np.array([]), np.array([]))
    assert empty[0].shape == empty[1].shape == (0,)


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_input_arrays_are_not_modified(func):
    lon = np.array([117.0, 139.7])
    lat = np.array([36.65, 35.7])
    func(lon, lat)
    assert lon.tolist() == [117.0, 139.7] and lat.tolist() == [36.65, 35.7]


# ----------------------------------------------------------------------------
# array validation
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_nan_coordinates_raise_geometry_error(func):
    name = func.__name__
    with pytest.raises(
        GeometryError,
        match=rf"{name}: lon/lat has 2 coordinate\(s\) that are NaN or infinite "
        r"\(first at index 1: lon=nan, lat=36\.7\); expected finite longitude/latitude",
    ):
        func([117.0, np.nan, 117.2], [36.6, 36.7, np.inf])


def test_nan_scalar_and_nd_positions_are_named():
    with pytest.raises(
        GeometryError, match=r"1 coordinate\(s\) .*first at the scalar input: lon=117\.0, lat=inf"
    ):
        wgs84_to_gcj02(117.0, np.inf)
    lat = np.full((2, 2), 36.6)
    lat[1, 0] = np.nan
    with pytest.raises(GeometryError, match=r"first at index \(1, 0\)"):
        gcj02_to_wgs84(np.full((2, 2), 117.0), lat)


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
@pytest.mark.parametrize(
    ("lon", "lat", "match"),
    [
        (
            [117.0, 181.0],
            [36.6, 36.7],
            r"1 coordinate\(s\) outside lon \[-180, 180\] / lat \[-90, 90\] "
            r"\(first at index 1: lon=181\.0, lat=36\.7\)",
        ),
        (
            [36.65],
            [117.0],
            r"first at index 0: lon=36\.65, lat=117\.0\); expected longitude/latitude in "
            r"degrees \(projected coordinates, or lon and lat swapped\?\)",
        ),
        ([500000.0], [4060000.0], r"lon=500000\.0, lat=4060000\.0"),
    ],
)
def test_out_of_range_coordinates_raise_parameter_error(func, lon, lat, match):
    with pytest.raises(ParameterError, match=rf"{func.__name__}: lon/lat has .*{match}"):
        func(lon, lat)


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_mismatched_shapes_raise_parameter_error(func):
    with pytest.raises(
        ParameterError,
        match=rf"{func.__name__}: lon has shape \(3,\) and lat has shape \(2,\); "
        r"expected lon and lat of the same shape",
    ):
        func([117.0, 117.1, 117.2], [36.6, 36.7])


@pytest.mark.parametrize("func", ARRAY_FUNCTIONS)
def test_non_numeric_input_raises_input_type_error(func):
    with pytest.raises(
        InputTypeError, match=rf"{func.__name__}: lat='north' has type str; expected a number"
    ):
        func(117.0, "north")


# ----------------------------------------------------------------------------
# GeoDataFrames
# ----------------------------------------------------------------------------


def _ring(lon: float, lat: float, size: float) -> list[tuple[float, float]]:
    return [(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)]


@pytest.fixture
def jinan_layer() -> gpd.GeoDataFrame:
    """Every geometry type, with holes, attributes, a non-default index, a missing geometry."""
    holed = Polygon(_ring(117.00, 36.60, 0.02), [_ring(117.005, 36.605, 0.005)])
    geometries = [
        Point(117.02, 36.65),
        LineString([(116.9, 36.6), (117.0, 36.7), (117.1, 36.65)]),
        holed,
        MultiPoint([(117.0, 36.6), (117.3, 36.8)]),
        MultiLineString([[(117.0, 36.6), (117.1, 36.6)], [(117.2, 36.7), (117.3, 36.75)]]),
        MultiPolygon([holed, Polygon(_ring(117.2, 36.7, 0.01))]),
        Point(117.05, 36.66, 45.0),  # with Z
        None,
    ]
    return gpd.GeoDataFrame(
        {
            "name": [f"feature {i}" for i in range(len(geometries))],
            "households": np.arange(len(geometries)) * 100,
        },
        geometry=geometries,
        index=pd.Index([10, 20, 30, 40, 50, 60, 70, 80], name="fid"),
        crs=crs.WGS84,
    )


PAIRS = [(to_gcj02, from_gcj02, wgs84_to_gcj02), (to_bd09, from_bd09, wgs84_to_bd09)]


@pytest.mark.parametrize(("to_func", "from_func", "array_func"), PAIRS)
def test_geodataframe_round_trip_keeps_everything(jinan_layer, to_func, from_func, array_func):
    original = jinan_layer.copy(deep=True)
    shifted = to_func(jinan_layer)
    back = from_func(shifted)

    assert_geodataframe_equal(jinan_layer, original)  # input not mutated
    for result in (shifted, back):
        assert result is not jinan_layer
        assert result.index.equals(jinan_layer.index)
        assert list(result.columns) == list(jinan_layer.columns)
        assert result.geometry.name == jinan_layer.geometry.name
        assert (result["name"] == jinan_layer["name"]).all()
        assert (result["households"] == jinan_layer["households"]).all()
        assert result.geom_type.tolist() == jinan_layer.geom_type.tolist()
        assert result.has_z.tolist() == jinan_layer.has_z.tolist()
        assert result.crs == pyproj.CRS(crs.WGS84)
    assert shifted.geometry.iloc[-1] is None

    holed_in, holed_out = jinan_layer.geometry.loc[30], shifted.geometry.loc[30]
    assert len(holed_out.interiors) == len(holed_in.interiors) == 1
    multi_hole = shifted.geometry.loc[60].geoms[0].interiors[0]
    assert multi_hole.coords[:] != holed_in.interiors[0].coords[:]
    assert shifted.geometry.loc[70].z == 45.0

    # every coordinate moved exactly as the array function moves it ...
    coords = shapely.get_coordinates(jinan_layer.geometry.values)
    expected = np.column_stack(array_func(coords[:, 0], coords[:, 1]))
    assert np.array_equal(shapely.get_coordinates(shifted.geometry.values), expected)
    # ... and came back to within a tenth of a millimetre (1e-9 deg)
    assert back.geometry.geom_equals_exact(jinan_layer.geometry, tolerance=1e-9).iloc[:-1].all()


@pytest.mark.parametrize(("to_func", "from_func", "array_func"), PAIRS)
def test_cgcs2000_label_is_kept(jinan_layer, to_func, from_func, array_func):
    in_cgcs2000 = jinan_layer.set_crs(crs.CGCS2000, allow_override=True)
    shifted = to_func(in_cgcs2000)
    assert shifted.crs == pyproj.CRS(crs.CGCS2000)
    assert from_func(shifted).crs == pyproj.CRS(crs.CGCS2000)
    assert from_func(shifted.set_crs(None, allow_override=True)).crs == pyproj.CRS(crs.WGS84)


@pytest.mark.parametrize(("to_func", "from_func", "array_func"), PAIRS)
def test_to_functions_reproject_other_crs_first(jinan_layer, to_func, from_func, array_func):
    metric = jinan_layer.to_crs(crs.JINAN_GK)
    shifted = to_func(metric)
    assert shifted.crs == pyproj.CRS(crs.WGS84)
    expected = to_func(metric.to_crs(crs.WGS84))
    assert shifted.geometry.geom_equals_exact(expected.geometry, tolerance=1e-12).iloc[:-1].all()
    assert metric.crs == pyproj.CRS(crs.JINAN_GK)  # input not changed


@pytest.mark.parametrize("func", [to_gcj02, to_bd09])
def test_to_functions_need_a_crs(jinan_layer, func):
    with pytest.raises(
        CRSError,
        match=rf"{func.__name__}: gdf\.crs is None; expected a GeoDataFrame with a CRS: "
        r"call gdf\.set_crs\(\.\.\.\) first",
    ):
        func(jinan_layer.set_crs(None, allow_override=True))


@pytest.mark.parametrize("func", [from_gcj02, from_bd09])
def test_from_functions_refuse_projected_input(jinan_layer, func):
    with pytest.raises(
        CRSError,
        match=rf"{func.__name__}: gdf\.crs is EPSG:4548 \(CGCS2000 / 3-degree Gauss-Kruger "
        r"CM 117E\); expected .*EPSG:4326 or EPSG:4490, or no CRS",
    ):
        func(jinan_layer.to_crs(crs.JINAN_GK))


@pytest.mark.parametrize("func", [to_gcj02, from_gcj02, to_bd09, from_bd09])
def test_geodataframe_functions_reject_other_types(jinan_layer, func):
    with pytest.raises(
        InputTypeError,
        match=rf"{func.__name__}: gdf has type GeoSeries; expected a geopandas\.GeoDataFrame",
    ):
        func(jinan_layer.geometry)
    with pytest.raises(InputTypeError, match=r"gdf has type DataFrame"):
        func(pd.DataFrame({"x": [1.0]}))


@pytest.mark.parametrize("func", [to_gcj02, from_gcj02, to_bd09, from_bd09])
def test_geodataframe_nan_coordinate_names_the_row(func):
    with np.errstate(invalid="ignore"):  # numpy warns building a NaN vertex
        broken = LineString([(117.0, 36.6), (np.nan, 36.7)])
    gdf = gpd.GeoDataFrame(
        geometry=[Point(117.0, 36.6), broken], index=["ok", "broken"], crs=crs.WGS84
    )
    with pytest.raises(
        GeometryError,
        match=rf"{func.__name__}: gdf\.geometry has 1 coordinate\(s\) that are NaN or "
        r"infinite \(first at row 'broken': lon=nan, lat=36\.7\)",
    ):
        func(gdf)


@pytest.mark.parametrize("func", [to_gcj02, from_gcj02, to_bd09, from_bd09])
def test_geodataframe_projected_coordinates_mislabelled_as_degrees(func):
    gdf = gpd.GeoDataFrame(geometry=[Point(500_000.0, 4_060_000.0)], crs=crs.CGCS2000)
    with pytest.raises(
        ParameterError,
        match=rf"{func.__name__}: gdf\.geometry has 1 coordinate\(s\) outside "
        r"lon \[-180, 180\] / lat \[-90, 90\] \(first at row 0: lon=500000\.0",
    ):
        func(gdf)


@pytest.mark.parametrize("func", [to_gcj02, from_gcj02, to_bd09, from_bd09])
def test_empty_geodataframe(func):
    empty = gpd.GeoDataFrame({"name": []}, geometry=[], crs=crs.WGS84)
    result = func(empty)
    assert len(result) == 0 and list(result.columns) == ["name", "geometry"]


def test_geodataframe_outside_china_is_unchanged():
    gdf = gpd.GeoDataFrame(geometry=[Point(139.7, 35.7), Point(0.0, 0.0)], crs=crs.WGS84)
    for func in (to_gcj02, from_gcj02, to_bd09, from_bd09):
        assert func(gdf).geometry.geom_equals_exact(gdf.geometry, tolerance=0).all()


# ----------------------------------------------------------------------------
# to_metric
# ----------------------------------------------------------------------------


@pytest.fixture
def jinan_districts() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"district_code": ["370102", "370124"]},
        geometry=[
            shapely.box(116.98, 36.60, 117.15, 36.72),
            shapely.box(116.2, 36.0, 116.6, 36.4),
        ],
        index=pd.Index([5, 7]),
        crs=crs.CGCS2000,
    )


@pytest.mark.parametrize("source_crs", [crs.CGCS2000, crs.WGS84, crs.WEB_MERCATOR])
def test_to_metric_picks_jinan_zone(jinan_districts, source_crs):
    gdf = jinan_districts.to_crs(source_crs)
    original = gdf.copy(deep=True)
    metric = to_metric(gdf)
    assert metric.crs.to_epsg() == 4548
    assert metric is not gdf
    assert_geodataframe_equal(gdf, original)
    assert metric.index.equals(gdf.index)
    assert metric["district_code"].tolist() == ["370102", "370124"]
    expected = jinan_districts.to_crs(crs.JINAN_GK)
    assert metric.geometry.geom_equals_exact(expected.geometry, tolerance=1e-3).all()


def test_to_metric_point_on_central_meridian_has_false_easting():
    gdf = gpd.GeoDataFrame(geometry=[Point(117.0, 36.65)], crs=crs.CGCS2000)
    assert to_metric(gdf).geometry.x.iloc[0] == pytest.approx(500_000.0, abs=1e-6)


@pytest.mark.parametrize("metric_crs", [crs.JINAN_GK, "EPSG:4549", "EPSG:32650"])
def test_to_metric_returns_projected_metric_data_unchanged(jinan_districts, metric_crs):
    gdf = jinan_districts.to_crs(metric_crs)
    result = to_metric(gdf)
    assert result is not gdf
    assert_geodataframe_equal(result, gdf)


def test_to_metric_honours_central_meridian(jinan_districts):
    assert to_metric(jinan_districts, central_meridian=120).crs.to_epsg() == 4549
    in_other_zone = jinan_districts.to_crs("EPSG:4549")
    assert to_metric(in_other_zone, central_meridian=117).crs.to_epsg() == 4548


def test_to_metric_in_other_chinese_cities():
    guangzhou = gpd.GeoDataFrame(geometry=[Point(113.26, 23.13)], crs=crs.CGCS2000)
    assert to_metric(guangzhou).crs.to_epsg() == gk_zone_epsg(114)
    urumqi = gpd.GeoDataFrame(geometry=[Point(87.62, 43.83)], crs=crs.WGS84)
    assert to_metric(urumqi).crs.to_epsg() == gk_zone_epsg(87)


def test_to_metric_refuses_data_spanning_zones(jinan_districts):
    wide = gpd.GeoDataFrame(
        geometry=[shapely.box(115.2, 36.0, 117.5, 37.0)], crs=crs.CGCS2000
    )
    with pytest.raises(
        CRSError,
        match=r"to_metric: data spans longitudes 115\.200°–117\.500°, which crosses "
        r"3-degree Gauss-Kruger zones CM 114E, 117E; pass central_meridian=117 to choose one",
    ):
        to_metric(wide)
    wider = wide.set_geometry([shapely.box(115.2, 36.0, 118.9, 37.0)])
    with pytest.raises(CRSError, match=r"zones CM 114E, 117E, 120E; pass central_meridian=117"):
        to_metric(wider)
    assert to_metric(wider, central_meridian=117).crs.to_epsg() == 4548


def test_to_metric_refuses_data_without_crs(jinan_districts):
    with pytest.raises(
        CRSError,
        match=r"to_metric: gdf\.crs is None; expected a GeoDataFrame with a CRS: call "
        r"gdf\.set_crs\(\.\.\.\) first, e\.g\. gdf\.set_crs\('EPSG:4490'\)",
    ):
        to_metric(jinan_districts.set_crs(None, allow_override=True))


@pytest.mark.parametrize(
    ("geometry", "match"),
    [
        (
            Point(2.35, 48.85),
            r"longitudes 2\.350°–2\.350° and latitudes 48\.850°–48\.850° "
            r"\(gdf\.crs=EPSG:4490 ",
        ),
        (
            Point(117.0, -20.0),
            r"longitudes 117\.000°–117\.000° and latitudes -20\.000°–-20\.000°",
        ),
        (Point(500_000.0, 4_060_000.0), r"longitudes 500000\.000°"),  # metres labelled as degrees
    ],
)
def test_to_metric_refuses_data_outside_china(geometry, match):
    gdf = gpd.GeoDataFrame(geometry=[geometry], crs=crs.CGCS2000)
    with pytest.raises(
        CRSError,
        match=rf"to_metric: data spans {match}.*outside China's CGCS2000 3-degree "
        r"Gauss-Kruger zones; expected longitudes 73\.5°–136\.5° .*check that gdf\.crs "
        r"is the CRS the coordinates are really in",
    ):
        to_metric(gdf)
    with pytest.raises(CRSError, match=r"outside China's"):
        to_metric(gdf, central_meridian=117)


def test_to_metric_refuses_other_types():
    with pytest.raises(
        InputTypeError,
        match=r"to_metric: gdf has type GeoSeries; expected a geopandas\.GeoDataFrame",
    ):
        to_metric(gpd.GeoSeries([Point(117.0, 36.65)], crs=crs.CGCS2000))


@pytest.mark.parametrize(
    ("central_meridian", "error", "match"),
    [
        (118, ParameterError, r"to_metric: central_meridian=118 is not the central meridian"),
        (
            "117",
            InputTypeError,
            r"to_metric: central_meridian='117' has type str; expected an int",
        ),
    ],
)
def test_to_metric_rejects_bad_central_meridian(jinan_districts, central_meridian, error, match):
    with pytest.raises(error, match=match):
        to_metric(jinan_districts, central_meridian=central_meridian)


def test_to_metric_empty_data_needs_central_meridian():
    empty = gpd.GeoDataFrame({"name": []}, geometry=[], crs=crs.CGCS2000)
    with pytest.raises(
        GeometryError,
        match=r"to_metric: gdf has 0 row\(s\) and no finite bounds .*expected non-empty "
        r"geometries, or pass central_meridian=",
    ):
        to_metric(empty)
    assert to_metric(empty, central_meridian=117).crs.to_epsg() == 4548


@pytest.mark.parametrize("bad", [None, 3.5, "Jinan"])
def test_transformer_names_a_bad_crs(bad):
    from jngis.crs import transformer

    with pytest.raises(CRSError, match=rf"transformer: source={bad!r} is not a CRS pyproj understands"):
        transformer(bad, "EPSG:4326")
    assert transformer("EPSG:4326", "EPSG:4548") is transformer("EPSG:4326", "EPSG:4548")


@pytest.mark.parametrize("source, target", [
    ("EPSG:4326", "EPSG:4548"), ("EPSG:4548", "EPSG:4326"), ("EPSG:4490", "EPSG:4548"),
    ("EPSG:4548", "EPSG:3857"), ("EPSG:4326", "EPSG:3857"), ("EPSG:4490", "EPSG:4326"),
    ("EPSG:4549", "EPSG:4490"), ("EPSG:4214", "EPSG:4326")])
def test_the_shared_transformer_gives_pyprojs_numbers_in_every_thread(source, target):
    """One operation: transform() runs its pipeline (a new thread then makes its PROJ object without
    searching PROJ's database); several candidates (Beijing 1954 -> WGS84): PROJ's own choice.
    Either way the numbers, bounds and CRS are pyproj's, in the thread that made it and in others."""
    import threading

    from jngis.crs import transformer

    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(114.5, 120.5, 2_000), rng.uniform(34.5, 38.2, 2_000)
    if not pyproj.CRS(source).is_geographic:
        lon, lat = pyproj.Transformer.from_crs("EPSG:4326", source, always_xy=True).transform(lon, lat)
    plain = pyproj.Transformer.from_crs(source, target, always_xy=True)
    expected = plain.transform(lon, lat)
    shared = transformer(source, target)
    answers = [shared.transform(lon, lat)]
    thread = threading.Thread(target=lambda: answers.append(shared.transform(lon, lat)))
    thread.start()
    thread.join()
    for x, y in answers:
        np.testing.assert_array_equal(x, expected[0])
        np.testing.assert_array_equal(y, expected[1])
    assert shared.source_crs == plain.source_crs and shared.target_crs == plain.target_crs
    box = (lon.min(), lat.min(), lon.max(), lat.max())
    assert shared.transform_bounds(*box) == plain.transform_bounds(*box)
