"""jngis.stats: grid_stats, rollup, coverage, suggest_sites."""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from jngis.errors import (
    CRSError,
    InputTypeError,
    JngisWarning,
    ParameterError,
    SchemaError,
    UnassignedPointsWarning,
)
from jngis.stats import coverage, grid_stats, rollup, suggest_sites

CRS = "EPSG:4548"
X0, Y0 = 500_000.0, 4_060_000.0
AT = pd.Timestamp("2026-10-31 18:00")


@pytest.fixture
def grids() -> gpd.GeoDataFrame:
    """Three 100 m grids: two in community ...001, one in ...002 (another 街道)."""
    return gpd.GeoDataFrame(
        {
            "grid_code": ["370102001001001", "370102001001002", "370102002001001"],
            "community_code": ["370102001001", "370102001001", "370102002001"],
            "households": [400, 350, 500],
            "grid_type": ["residential"] * 3,
            "grid_leaders": [1, 1, 1],
            "full_time_workers": [1, 1, 2],
        },
        geometry=[shapely.box(X0 + 100 * i, Y0, X0 + 100 * i + 100, Y0 + 100) for i in range(3)],
        crs=CRS,
    )


def _points(xs, ys, crs=CRS, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.points_from_xy(xs, ys), crs=crs)


@pytest.fixture
def orders() -> gpd.GeoDataFrame:
    day = pd.Timedelta(days=1)
    rows = [
        # grid 1: open & overdue; open & not yet due; resolved in 2 days (satisfied)
        ("in_progress", AT - 10 * day, AT - day, None, None, None, 10),
        ("dispatched", AT - 2 * day, AT + 3 * day, None, None, None, 20),
        ("closed", AT - 5 * day, AT + day, AT - 3 * day, AT - 2 * day, True, 30),
        # grid 2: resolved in 4 and 6 days (one unhappy); one resolved after `at`: open then
        ("closed", AT - 40 * day, AT - 30 * day, AT - 36 * day, AT - 35 * day, False, 150),
        ("closed", AT - 20 * day, AT - 10 * day, AT - 14 * day, AT - 13 * day, True, 160),
        ("resolved", AT - 3 * day, AT - day, AT + day, None, None, 170),
        # received after `at`: not counted at all
        ("received", AT + day, AT + 6 * day, None, None, None, 180),
        # in no grid
        ("in_progress", AT - day, AT + day, None, None, None, 900),
    ]
    status, received, due, resolved, closed, satisfied, x = zip(*rows)
    return _points(
        [X0 + v for v in x], [Y0 + 50] * len(rows),
        order_id=[f"O{i}" for i in range(len(rows))], category=["噪音扰民"] * len(rows),
        status=list(status), received_at=pd.to_datetime(list(received)),
        due_at=pd.to_datetime(list(due)), resolved_at=pd.to_datetime(list(resolved)),
        closed_at=pd.to_datetime(list(closed)), satisfied=pd.array(satisfied, dtype="boolean"),
        caller_name=["张三"] * len(rows), caller_phone=["13800000000"] * len(rows),
    )


def test_grid_stats_hand_made(grids, orders):
    stations = _points([X0 + 10, X0 + 20, X0 + 250], [Y0 + 10] * 3, station_id=["S1", "S2", "S3"],
                       level=["community", "grid", "grid"], area_m2=[300.0, 80.0, 60.0])
    orgs = _points([X0 + 50, X0 + 150, X0 + 160], [Y0 + 50] * 3, members=[30, 12, 5])
    with pytest.warns(UnassignedPointsWarning, match="1 of 8 workorders lie in no grid"):
        table = grid_stats(grids, stations=stations, party_orgs=orgs, workorders=orders, at=AT)
    assert list(table.index) == list(grids["grid_code"])
    first, second, third = (table.iloc[i] for i in range(3))
    assert (first.stations, first.station_area_m2, first.party_orgs, first.party_members) == \
        (2, 380.0, 1, 30)
    assert (second.party_orgs, second.party_members, third.stations) == (2, 17, 1)
    assert (first.open_orders, first.overdue_orders, first.orders_30d) == (2, 1, 3)
    assert first.median_days_to_resolve == pytest.approx(2.0)
    assert first.satisfaction_rate == 1.0
    # grid 2: the order resolved after `at` was open at `at` (and overdue: due a day before)
    assert (second.orders, second.open_orders, second.overdue_orders) == (3, 1, 1)
    assert second.orders_30d == 2  # received 20 and 3 days before; 40 days is too old
    assert second.median_days_to_resolve == pytest.approx(5.0)
    assert second.satisfaction_rate == 0.5
    assert np.isnan(third.median_days_to_resolve) and np.isnan(third.satisfaction_rate)
    assert table["households"].tolist() == [400, 350, 500]
    assert table["full_time_workers"].tolist() == [1, 1, 2]
    assert table["street_code"].tolist() == ["370102001", "370102001", "370102002"]
    # personal data never reaches the table
    assert not any("caller" in c or "phone" in c for c in table.columns)


def test_at_moves_the_figures(grids, orders):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        later = grid_stats(grids, workorders=orders, at=AT + pd.Timedelta(days=2))
        aware = grid_stats(grids, workorders=orders, at=pd.Timestamp("2026-10-31 10:00", tz="UTC"))
    # two days later the order received after AT counts (and is open), the late
    # resolution is done
    assert later.loc["370102001001002", "open_orders"] == 1
    assert later.loc["370102001001002", "resolved_orders"] == 3
    assert later["orders"].sum() == 7
    # 10:00 UTC is 18:00 in China: the same as AT
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        same = grid_stats(grids, workorders=orders, at=AT)
    pd.testing.assert_frame_equal(aware, same)


def test_units_supply_households_and_population(grids):
    units = gpd.GeoDataFrame(
        {"households": [100, 200, 50], "population": [250, 520, 130]},
        geometry=[shapely.box(X0 + 10, Y0 + 10, X0 + 40, Y0 + 40),
                  shapely.box(X0 + 60, Y0 + 10, X0 + 90, Y0 + 40),
                  shapely.box(X0 + 210, Y0 + 10, X0 + 240, Y0 + 40)], crs=CRS)
    table = grid_stats(grids.drop(columns=["households"]), units=units)
    assert table["households"].tolist() == [300, 0, 50]
    assert table["population"].tolist() == [770, 0, 130]
    assert str(table["population"].dtype) == "Int64"


def _slice_grids(city) -> gpd.GeoDataFrame:
    """Stand-in grids for the slice: its units, coded as grids of their community."""
    units = city.units.copy()
    sequence = units.groupby("community_code").cumcount().add(1).astype(str).str.zfill(3)
    units["grid_code"] = units["community_code"] + sequence
    return units


@pytest.mark.parametrize("level, column, n", [("community", "community_code", 5),
                                              ("street", "street_code", 1),
                                              ("district", "district_code", 1)])
def test_rollup_sums_equal_grid_sums(slice_city, level, column, n):
    grids = _slice_grids(slice_city)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        table = grid_stats(grids, stations=slice_city.stations, party_orgs=slice_city.party_orgs,
                           workorders=slice_city.workorders, at=AT)
    rolled = rollup(table, level)
    assert rolled.index.name == column and len(rolled) == n
    for name in ("households", "population", "stations", "party_orgs", "party_members",
                 "open_orders", "overdue_orders", "orders_30d", "resolved_orders", "grids"):
        by_hand = table.groupby(table[column])[name].sum()
        assert rolled[name].tolist() == by_hand.reindex(rolled.index).tolist(), name
        assert rolled[name].sum() == table[name].sum()
    assert table["orders"].sum() > 100
    rate = rolled["satisfied_orders"] / rolled["rated_orders"]
    np.testing.assert_allclose(rolled["satisfaction_rate"], rate)
    # the median is over the level's orders, not a median of medians
    orders = slice_city.workorders
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        from jngis.assign import assign

        placed = assign(orders, grids, key="grid_code")
    done = placed.notna() & (orders["resolved_at"] <= AT) & (orders["received_at"] <= AT)
    days = (orders["resolved_at"] - orders["received_at"]).dt.total_seconds() / 86400
    expected = days[done].groupby(placed[done].str[: {"community_code": 12, "street_code": 9,
                                                      "district_code": 6}[column]]).median()
    np.testing.assert_allclose(rolled["median_days_to_resolve"],
                               expected.reindex(rolled.index).to_numpy())
    by_grid = days[done].groupby(placed[done]).median()  # and each grid's, from the same orders
    assert by_grid.size > 10
    np.testing.assert_allclose(table["median_days_to_resolve"], by_grid.reindex(table.index).to_numpy())


def test_rollup_without_durations_warns(grids, orders):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        table = grid_stats(grids, workorders=orders, at=AT)
    table.attrs.clear()
    with pytest.warns(JngisWarning, match="not the exact median"):
        rolled = rollup(table, "community")
    assert rolled.loc["370102001001", "median_days_to_resolve"] in (2.0, 5.0)


# ---------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------


def test_coverage_hand_made():
    units = gpd.GeoDataFrame(
        {"unit_id": ["A", "B", "C", "D"], "households": [100, 200, 300, 400],
         "community_code": ["370102001001"] * 2 + ["370102001002"] * 2},
        geometry=[shapely.box(X0 + x, Y0, X0 + x + 20, Y0 + 20) for x in (0, 390, 1190, 3000)],
        crs=CRS)
    stations = _points([X0 + 10, X0 + 1200], [Y0 + 10, Y0 + 10], level=["community", "grid"],
                       area_m2=[60.0, 100.0])
    result = coverage(units, stations)
    per_unit = result.units
    np.testing.assert_allclose(per_unit["to_community_centre_m"], [0, 390, 1190, 3000])
    np.testing.assert_allclose(per_unit["to_grid_station_m"], [1190, 800, 0, 1810])
    np.testing.assert_allclose(per_unit["to_station_m"], [0, 390, 0, 1810])
    assert per_unit["within_300m"].tolist() == [True, False, True, False]
    assert per_unit["within_500m"].tolist() == [True, True, True, False]
    communities = result.communities
    assert communities["share_within_300m"].tolist() == [100 / 300, 300 / 700]
    assert communities["share_within_1000m"].tolist() == [1.0, 300 / 700]
    assert communities["service_area_m2"].tolist() == [60.0, 100.0]
    assert communities["required_area_m2"].tolist() == [90.0, 210.0]
    assert communities["meets_area_norm"].tolist() == [False, False]
    # stations in lon/lat give the same distances
    again = coverage(units, stations.to_crs("EPSG:4490"), radii=[250])
    np.testing.assert_allclose(again.units["to_station_m"], per_unit["to_station_m"], atol=1e-3)
    assert list(again.communities.columns[:2]) == ["households", "share_within_250m"]


def test_coverage_with_communities_polygons(slice_city):
    result = coverage(slice_city.units, slice_city.stations, communities=slice_city.communities)
    default = coverage(slice_city.units, slice_city.stations)
    assert len(result.communities) == 5
    assert result.communities["service_area_m2"].sum() == pytest.approx(
        slice_city.stations["area_m2"].sum())
    pd.testing.assert_series_equal(result.communities["share_within_500m"],
                                   default.communities["share_within_500m"])


# ---------------------------------------------------------------------------
# suggest_sites
# ---------------------------------------------------------------------------


def _plain_greedy(weights, reach, covered, k):
    covered = covered.copy()
    picks = []
    for _ in range(k):
        gains = [weights[[j for j in r if not covered[j]]].sum() for r in reach]
        best = int(np.argmax(gains))
        if gains[best] <= 0:
            break
        picks.append(best)
        covered[list(reach[best])] = True
    return picks


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 6), radius=st.sampled_from([150.0, 300.0]))
def test_suggest_sites_equals_plain_greedy(seed, k, radius):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 1000, (40, 2)) + [X0, Y0]
    units = gpd.GeoDataFrame({"households": rng.integers(0, 500, 40)},
                             geometry=[shapely.box(x - 1, y - 1, x + 1, y + 1) for x, y in xy],
                             crs=CRS)
    sites = _points(*(rng.uniform(0, 1000, (15, 2)) + [X0, Y0]).T)
    stations = _points([X0 + 500], [Y0 + 500])
    picked = suggest_sites(units, stations, sites, k, radius=radius)
    demand = shapely.get_coordinates(shapely.point_on_surface(units.geometry.values))
    site_xy = shapely.get_coordinates(sites.geometry.values)
    reach = [np.flatnonzero(np.hypot(*(demand - s).T) <= radius) for s in site_xy]
    covered = np.hypot(*(demand - [X0 + 500, Y0 + 500]).T) <= radius
    weights = units["households"].to_numpy()
    assert list(picked.index) == _plain_greedy(weights, reach, covered, k)
    total = weights[covered].sum() + picked["new_households"].sum()
    if len(picked):
        assert picked["covered_households"].iloc[-1] == total
        assert (np.diff(picked["new_households"]) <= 0).all()


def test_suggest_sites_hand_made():
    units = gpd.GeoDataFrame({"households": [100, 300, 200, 50]},
                             geometry=[shapely.box(X0 + x, Y0, X0 + x + 10, Y0 + 10)
                                       for x in (0, 1000, 2000, 2100)], crs=CRS)
    sites = _points([X0 + 5, X0 + 1005, X0 + 2050], [Y0 + 5] * 3, name=["A", "B", "C"])
    existing = _points([X0 + 1000], [Y0])
    picked = suggest_sites(units, existing, sites, 3, radius=100)
    # B adds nothing (already covered), so only C then A
    assert picked["name"].tolist() == ["C", "A"]
    assert picked["new_households"].tolist() == [250, 100]
    assert picked["covered_households"].tolist() == [550, 650]
    assert picked["covered_share"].iloc[-1] == 1.0
    assert picked["rank"].tolist() == [1, 2]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def test_errors(grids, orders):
    with pytest.raises(InputTypeError, match="grids has type DataFrame"):
        grid_stats(pd.DataFrame(grids.drop(columns="geometry")))
    with pytest.raises(SchemaError, match=r"grids has no column\(s\) \['community_code'\]"):
        grid_stats(grids.drop(columns=["community_code"]))
    with pytest.raises(SchemaError, match="missing or duplicated"):
        grid_stats(grids.assign(grid_code=["370102001001001"] * 3))
    with pytest.raises(InputTypeError, match="stations has type list"):
        grid_stats(grids, stations=[])
    with pytest.raises(SchemaError, match=r"party_orgs has no column\(s\) \['members'\]"):
        grid_stats(grids, party_orgs=_points([X0], [Y0]))
    with pytest.raises(SchemaError, match=r"workorders has no column\(s\) \['due_at'\]"):
        grid_stats(grids, workorders=orders.drop(columns=["due_at"]))
    with pytest.raises(SchemaError, match=r"workorders\['received_at'\] has dtype"):
        grid_stats(grids, workorders=orders.assign(received_at="yesterday"), at=AT)
    with pytest.raises(InputTypeError, match="at=5 has type int"):
        grid_stats(grids, at=5)
    with pytest.raises(ParameterError, match="at='soon' is not a date/time"):
        grid_stats(grids, at="soon")
    with pytest.raises(CRSError, match="points.crs is None"):
        grid_stats(grids, party_orgs=_points([X0], [Y0], crs=None, members=[3]))
    with pytest.raises(InputTypeError, match="table has type dict"):
        rollup({}, "street")
    with pytest.raises(ParameterError, match="level='city'; expected one of"):
        rollup(grid_stats(grids), "city")
    with pytest.raises(SchemaError, match="table has no 'community_code' column"):
        rollup(pd.DataFrame({"households": [1]}))


def test_coverage_errors(slice_city):
    units, stations = slice_city.units, slice_city.stations
    with pytest.raises(InputTypeError, match="units has type DataFrame"):
        coverage(pd.DataFrame(units.drop(columns="geometry")), stations)
    with pytest.raises(SchemaError, match=r"stations has no column\(s\) \['level'\]"):
        coverage(units, stations.drop(columns=["level"]))
    with pytest.raises(ParameterError, match=r"radii=\(300, -5\); expected finite positive"):
        coverage(units, stations, radii=(300, -5))
    with pytest.raises(InputTypeError, match="radii=500 has type int"):
        coverage(units, stations, radii=500)
    with pytest.raises(ParameterError, match="units\\['households'\\] has 1 missing or negative"):
        coverage(units.assign(households=[-1] + [1] * (len(units) - 1)), stations)
    with pytest.raises(CRSError, match="stations.crs is None"):
        coverage(units, stations.set_crs(None, allow_override=True))
    with pytest.raises(InputTypeError, match="k=2.0 has type float"):
        suggest_sites(units, stations, stations, 2.0)
    with pytest.raises(ParameterError, match="k=0; expected an int >= 1"):
        suggest_sites(units, stations, stations, 0)
    with pytest.raises(InputTypeError, match="radius='500' has type str"):
        suggest_sites(units, stations, stations, 2, radius="500")
    with pytest.raises(ParameterError, match="radius=.*expected finite positive"):
        suggest_sites(units, stations, stations, 2, radius=0)
    with pytest.raises(InputTypeError, match="candidates has type list"):
        suggest_sites(units, stations, [], 2)


# ---------------------------------------------------------------------------
# one vocabulary, cheap copies
# ---------------------------------------------------------------------------


def test_norms_and_levels_come_from_the_vocabulary():
    from jngis import codes, stats

    assert stats.AREA_NORM_M2_PER_100_HOUSEHOLDS == codes.SERVICE_AREA_M2_PER_100_HOUSEHOLDS
    assert stats.LIFE_CIRCLE_RADII == (300, 500, 1000) == tuple(sorted(codes.LIFE_CIRCLE_M.values()))
    assert stats.LEVELS == {"community": "community_code", "street": "street_code",
                            "district": "district_code"}


def test_a_community_code_too_short_for_its_street_is_refused(grids):
    with pytest.raises(SchemaError, match=r"grid_stats: grids\['community_code'\] holds a code='3701' "
                                          r"has fewer than the 9 digits of a street code"):
        grid_stats(grids.assign(community_code=["3701", "370102001001", "370102002001"]))


def test_the_kept_durations_are_shared_not_copied(grids, orders):
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnassignedPointsWarning)
        table = grid_stats(grids, workorders=orders, at=AT)
    (durations,) = table.attrs.values()
    # pandas deep-copies attrs on every selection: the read-only durations are shared instead
    assert table[["households"]].attrs[next(iter(table.attrs))] is durations
    assert copy.deepcopy(table).attrs[next(iter(table.attrs))] is durations
    assert not durations.codes.flags.writeable and not durations.days.flags.writeable
    assert sorted(durations.days.tolist()) == [2.0, 4.0, 6.0]
    pd.testing.assert_frame_equal(rollup(table.iloc[::-1], "community"), rollup(table, "community"))
