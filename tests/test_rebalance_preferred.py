"""Plans that last: the preferred band, headroom and growth in rebalance, and the trade-off table.

On the sample city (a few 街道 of 历下区) and on a second city built inside
Ningbo's real outlines (another Gauss-Kruger zone, islands).
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from test_rebalance import box_city, check_hard_rules

from jngis import rebalance_tradeoff
from jngis.errors import GrowthError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.rebalance import rebalance, years_to_leave
from jngis.sample import build_city_in

NINGBO = Path(__file__).resolve().parent / "data" / "ningbo_districts.geojson"
XIAMEN = NINGBO.with_name("xiamen_districts.geojson")
SETTINGS = [
    {},
    {"preferred": (1500, 2500)},
    {"preferred": (1500, 2500), "priority": "preferred"},
    {"preferred": (1500, 2500), "priority": "moved"},
    {"headroom": 0.1},
    {"headroom": (0, 500), "preferred": (1400, 2400), "preferred_weight": 5},
]


@pytest.fixture(scope="module")
def jinan_units(sample_city):
    """Six 街道 of 历下区 of the sample city."""
    units = sample_city.units
    streets = sorted(units.loc[units["street_code"].str.startswith("370102"), "street_code"].unique())[:6]
    return units[units["street_code"].isin(streets)].reset_index(drop=True)


@pytest.fixture(scope="module")
def ningbo_units():
    """A small city generated inside six real district outlines of Ningbo (coast, 60 islands in 象山县)."""
    return build_city_in(gpd.read_file(NINGBO), seed=3, streets=6, communities=48).units


def _outside(plan, lo=1000, hi=3000) -> pd.Series:
    frame = plan.communities
    return (~frame["households"].between(lo, hi)).groupby(frame["street_code"]).sum()


@pytest.mark.parametrize("city", ["jinan_units", "ningbo_units"])
def test_soft_terms_never_break_the_hard_bounds(city, request):
    units = request.getfixturevalue(city)
    plain = rebalance(units, workers=1, progress=False)
    assert plain.metrics["within_bounds_share_after"] > 0.9
    for setting in SETTINGS[1:]:
        plan = rebalance(units, workers=1, progress=False, **setting)
        check_hard_rules(units, plan, 1000, 3000)
        # in every 街道 no more communities outside 1,000-3,000 than the plain plan leaves
        outside = _outside(plan).reindex(_outside(plain).index, fill_value=0)
        assert (outside <= _outside(plain)).all(), setting
        assert plan.metrics["within_bounds_after"] >= plain.metrics["within_bounds_after"] - 1


@pytest.mark.parametrize("city", ["jinan_units", "ningbo_units"])
def test_headroom_band_is_kept_where_feasible(city, request):
    units = request.getfixturevalue(city)
    plan = rebalance(units, headroom=0.1, workers=1, progress=False)
    assert plan.band == (1100, 2700)
    low, high = plan.band
    frame = plan.communities.set_index("community_code")
    # a community may only stay above 2,700 when one indivisible atom (a unit or compound) holds more
    units = units.assign(new=plan.assignment.reindex(units["unit_id"]).to_numpy())
    compound = units["compound_id"].fillna(units["unit_id"])
    atom = units.groupby(["new", compound])["households"].sum().groupby(level="new").max()
    above = frame.index[frame["households"] > high]
    assert (atom.reindex(above) > high).all()
    # the rest sits in the band except in 街道 the band could not be reached in (listed in notes)
    below = frame[frame["households"] < low]
    dropped = set(plan.streets.loc[plan.streets["notes"].str.contains("headroom"), "street_code"])
    stuck = set(below["street_code"]) - dropped
    assert len(below) <= 0.03 * len(frame) or not stuck
    assert plan.metrics["within_headroom_band_after"] >= 0.95 * len(frame)
    assert plan.metrics["within_headroom_band_after"] > plan.metrics["within_headroom_band_before"]


def test_preferred_band_spreads_the_pile_at_the_bounds(jinan_units):
    plain = rebalance(jinan_units, workers=1, progress=False)
    plan = rebalance(jinan_units, preferred=(1500, 2500), workers=1, progress=False)
    pile = plain.communities["households"].between(2900, 3000).sum()
    assert plan.communities["households"].between(2900, 3000).sum() < 0.5 * pile
    assert plan.metrics["within_preferred_after"] > plain.communities["households"].between(1500, 2500).sum()
    # the trade: more households moved
    assert plan.metrics["moved_households"] > plain.metrics["moved_households"]


def test_a_split_of_5000_by_priority():
    # one community of ten 500-household blocks: the plain split keeps 3,000 and cuts 2,000 off
    units = box_city([500] * 10, [1] * 10, columns=10)
    plain = rebalance(units)
    assert sorted(plain.communities["households"]) == [2000, 3000]
    assert plain.metrics["moved_households"] == 2000
    for priority in ("preferred", "weighted"):
        plan = rebalance(units, preferred=(1500, 2500), priority=priority)
        assert sorted(plan.communities["households"]) == [2500, 2500], priority
        assert plan.metrics["moved_households"] == 2500
    # households moved first: the band only decides between plans moving as many
    moved_first = rebalance(units, preferred=(1500, 2500), priority="moved")
    assert sorted(moved_first.communities["households"]) == [2000, 3000]
    # a weight below 1 does not pay for moving 500 households to bring one community 500 into the band
    assert sorted(rebalance(units, preferred=(1500, 2500), preferred_weight=0.5).communities["households"]) == [
        2000, 3000]


def test_headroom_on_a_known_case():
    # 1,500 | 1,200 | 500 | 900: the plain plan moves the 500 block (3,200 -> 2,700 and 1,400)
    units = box_city([1500, 1200, 500, 900], [1, 1, 1, 2], columns=4)
    assert rebalance(units, headroom=(0, 300)).communities["households"].tolist() == [2700, 1400]
    # a band of 1,000-2,600 cannot be met without breaking the bounds (1,500 + 1,200 is indivisible
    # only as 2,700 or apart): the plan stays within the hard bounds
    plan = rebalance(units, headroom=(0, 400))
    assert plan.communities["households"].between(1000, 3000).all()


def test_default_is_unchanged_by_the_new_code_paths(slice_city):
    # the same plan as with every new parameter at its default
    plain = rebalance(slice_city.units)
    same = rebalance(slice_city.units, preferred=None, headroom=None, growth=None, growth_policy="report")
    pd.testing.assert_series_equal(plain.assignment, same.assignment)
    assert plain.preferred is None and plain.band is None and plain.growth is None and plain.leaving.empty


# ---------------------------------------------------------------------------- growth

def _growth_by_hand(units, plan, added_by_unit) -> pd.Series:
    codes = plan.assignment.reindex(units["unit_id"]).to_numpy()
    return (pd.Series(units["households"].to_numpy() + added_by_unit, index=units.index).groupby(codes).sum())


def test_growth_column_reports_communities_leaving_the_band(jinan_units):
    units = jinan_units.copy()
    plan0 = rebalance(units, workers=1, progress=False)
    # 600 new households in the largest unit of the three largest communities
    top = plan0.communities.nlargest(3, "households")["community_code"]
    new_cm = plan0.assignment.reindex(units["unit_id"]).to_numpy()
    units["new_households"] = 0
    for code in top:
        units.loc[units.index[new_cm == code][np.argmax(units["households"].to_numpy()[new_cm == code])],
                  "new_households"] = 600
    plan = rebalance(units, growth="new_households", horizon=2030, workers=1, progress=False)
    by_hand = _growth_by_hand(units, plan, units["new_households"].to_numpy())
    table = plan.growth.set_index("community_code")
    assert (table["households_horizon"] == by_hand.reindex(table.index)).all()
    leaving = set(plan.leaving["community_code"])
    expected = set(table.index[table["households"].between(1000, 3000) & (by_hand.reindex(table.index) > 3000)])
    assert leaving == expected and len(leaving) >= 1
    assert plan.metrics["leaving_band_by_horizon"] == len(leaving)
    assert "2030" in plan.report()
    with pytest.raises(GrowthError, match=r"growth_policy='refuse' and \d+ communities of the plan would leave "
                                          r"the band by 2030: 370102"):
        rebalance(units, growth="new_households", horizon=2030, growth_policy="refuse", workers=1, progress=False)


def test_growth_table_with_planned_housing_not_in_units(ningbo_units):
    units = ningbo_units
    street = units["street_code"].iloc[0]
    inside = units[units["street_code"] == street]
    # a project on an existing unit (by id), and one on open land given only as a point in its 街道
    outline = shapely.union_all(inside.geometry.values)
    open_point = shapely.Point(shapely.get_coordinates(shapely.centroid(outline))[0])
    uid = inside["unit_id"].iloc[5]
    projects = gpd.GeoDataFrame({"unit_id": [uid, None], "households": [400, 2500], "street_code": [street, street]},
                                geometry=[inside.geometry.iloc[5].centroid, open_point], crs=units.crs)
    plan = rebalance(units, growth=projects, horizon=2031, workers=1, progress=False)
    assert plan.metrics["added_households"] == 2900
    table = plan.growth.set_index("community_code")
    assert table["added"].sum() == 2900
    assert table.loc[plan.assignment[uid], "added"] >= 400
    # the point counts in its own 街道
    assert table.loc[table["added"] > 0, "street_code"].eq(street).all()
    # refused when a community would leave the band, reported otherwise
    if len(plan.leaving):
        with pytest.raises(GrowthError):
            rebalance(units, growth=projects, growth_policy="refuse", workers=1, progress=False)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"preferred": (900, 2500)}, ParameterError, r"rebalance: preferred=\(900, 2500\); expected min_households=1000 "
                                                 r"<= low < high <= max_households=3000"),
    ({"preferred": 2000}, InputTypeError, r"preferred=2000; expected a pair"),
    ({"headroom": 0.6}, ParameterError, r"headroom=0.6; expected a headroom that leaves a band inside 1000-3000 "
                                        r"\(it leaves 1600-1200\)"),
    ({"headroom": -5}, ParameterError, r"headroom=-5; expected a share in \(0, 1\)"),
    ({"priority": "fast"}, ParameterError, r"priority='fast'; expected one of \['weighted', 'preferred', 'moved'\]"),
    ({"preferred_weight": 0}, ParameterError, r"preferred_weight=0; expected a finite number > 0"),
    ({"growth": "nope"}, SchemaError, r"units has no column 'nope' \(growth\)"),
    ({"growth": [1, 2]}, InputTypeError, r"growth is a list; expected a column name"),
    ({"growth": pd.DataFrame({"unit_id": ["X1"], "households": [5]})}, NotFoundError,
     r"growth names units \['X1'\] that are not in units"),
    ({"growth_policy": "warn"}, ParameterError, r"growth_policy='warn'; expected one of \['report', 'refuse'\]"),
])
def test_bad_parameters(slice_city, kwargs, error, message):
    with pytest.raises(error, match=message):
        rebalance(slice_city.units, **kwargs)


# ---------------------------------------------------------------------------- the trade-off table

def test_tradeoff_figures_recomputed_from_the_plans(jinan_units, tmp_path):
    settings = [{"name": "plain"}, {"name": "room", "headroom": 0.1}, {"name": "both", "headroom": 0.1,
                                                                       "preferred": (1500, 2500)}]
    result = rebalance_tradeoff(jinan_units, settings, growth_rate=0.03, workers=1, progress=False)
    table = result.table.set_index("setting")
    assert list(table.index) == ["plain", "room", "both"]
    hh = jinan_units["households"].to_numpy()
    for name, plan in result.plans.items():
        new = plan.assignment.reindex(jinan_units["unit_id"]).to_numpy()
        sizes = pd.Series(hh).groupby(new).sum()
        moved = int(hh[new != jinan_units["community_code"].to_numpy()].sum())
        assert table.loc[name, "moved_households"] == moved
        assert table.loc[name, "within_preferred"] == int(sizes.between(1500, 2500).sum())
        assert table.loc[name, "within_bounds"] == int(sizes.between(1000, 3000).sum())
        assert table.loc[name, "p95_households"] == pytest.approx(np.percentile(sizes, 95))
        # the first to leave is the largest community: 3000 = h (1.03)^t
        largest = sizes.max()
        assert table.loc[name, "years_to_leave"] == pytest.approx(math.log(3000 / largest) / math.log(1.03))
    assert table.loc["room", "years_to_leave"] > table.loc["plain", "years_to_leave"]
    assert table.loc["plain", "moved_households"] < table.loc["room", "moved_households"]
    fig = result.figure()
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    assert "plain" in texts and any("调整户数" in t or "households moved" in t for t in texts)
    path = result.to_excel(tmp_path / "tradeoff.xlsx")
    sheet = pd.read_excel(path, sheet_name="方案比较")
    assert sheet["方案"].tolist() == ["plain", "room", "both"]
    assert sheet["调整户数"].tolist() == table["moved_households"].tolist()


def test_years_to_leave_with_growth_table():
    assert years_to_leave([2000, 2900], 3000, added=[500, 50], years=5) == pytest.approx(10.0)
    assert years_to_leave([3100], 3000, growth_rate=0.02) == 0.0
    assert years_to_leave([2000], 3000, growth_rate=0.0) == math.inf


def test_the_second_city_is_another_zone_with_islands(ningbo_units):
    # built inside Ningbo's real outlines: Gauss-Kruger CM 123E, units on islands linked to their 街道
    assert ningbo_units.crs.to_epsg() == 4550
    assert ningbo_units["street_code"].str[:6].isin(["330203", "330205", "330206", "330211", "330212",
                                                    "330225"]).all()
    plan = rebalance(ningbo_units, workers=1, progress=False)
    assert len(plan.islands) > 0
    check_hard_rules(ningbo_units, plan, 1000, 3000)


@pytest.mark.parametrize("city", ["jinan_units", "ningbo_units"])
def test_exchanges_raise_compactness_without_moving_more(city, request, monkeypatch):
    """Issue 17: the exchange polish keeps or raises mean Polsby-Popper (on the dissolved real
    geometry) above today's communities and never moves more households than the plan without it,
    computed here too."""
    import importlib

    search = importlib.import_module("jngis.rebalance.search")
    units = request.getfixturevalue(city)
    monkeypatch.setattr(search, "EXCHANGES", False)
    without = rebalance(units, workers=1, progress=False)
    monkeypatch.setattr(search, "EXCHANGES", True)
    plan = rebalance(units, workers=1, progress=False)
    check_hard_rules(units, plan, 1000, 3000)
    m, w = plan.metrics, without.metrics
    assert m["moved_households"] <= w["moved_households"]
    assert m["within_bounds_after"] >= w["within_bounds_after"]
    assert m["mean_polsby_popper_after"] >= w["mean_polsby_popper_after"]
    assert m["mean_polsby_popper_after"] >= m["mean_polsby_popper_before"]
    assert m["contiguous_share_after"] == 1.0


def test_compactness_does_not_fall_on_the_coastal_city_of_the_benchmarks(monkeypatch):
    """Issue 17 on the 30-街道 Ningbo of benchmarks/rebalance.py (240 communities, islands): mean
    Polsby-Popper after >= today's, every community within the bounds and contiguous, households moved
    within 1.10x the per-街道 lower bound and no more than the plan without the exchange polish."""
    import importlib

    search = importlib.import_module("jngis.rebalance.search")
    units = build_city_in(gpd.read_file(NINGBO), seed=1, streets=30, communities=240).units
    plan = rebalance(units, workers=1, progress=False)
    check_hard_rules(units, plan, 1000, 3000)
    m = plan.metrics
    assert m["communities_before"] == 240
    assert m["within_bounds_after"] == m["communities_after"]
    assert m["contiguous_share_after"] == 1.0
    assert m["mean_polsby_popper_after"] >= m["mean_polsby_popper_before"]
    assert m["moved_over_lower_bound"] <= 1.10
    monkeypatch.setattr(search, "EXCHANGES", False)
    without = rebalance(units, workers=1, progress=False).metrics
    assert m["moved_households"] <= without["moved_households"]
    assert m["mean_polsby_popper_after"] > without["mean_polsby_popper_after"]


def test_compactness_does_not_fall_on_xiamen(monkeypatch):
    """Issue 17 on the Xiamen of benchmarks/rebalance.py (30 街道, 239 communities, Xiamen island and
    Gulangyu): mean Polsby-Popper after >= today's (0.3073), which exchanges between two regions only
    did not reach (0.3046: communities grown to the minimum from one neighbour, or held at the maximum,
    with households moved at the lower bound). Every feasible community within the bounds, all
    contiguous, households moved within 1.10x the per-街道 lower bound and no more than with the
    two-region exchanges."""
    import importlib

    search = importlib.import_module("jngis.rebalance.search")
    units = build_city_in(gpd.read_file(XIAMEN), seed=1, streets=30, communities=240).units
    plan = rebalance(units, workers=1, progress=False)
    check_hard_rules(units, plan, 1000, 3000)
    m = plan.metrics
    assert m["communities_before"] == 239
    # the two left outside the bounds cannot be helped (one unit of 3,506 households; one community with
    # no contiguous move left), and their 街道 are listed
    assert m["communities_after"] - m["within_bounds_after"] == 2
    assert set(plan.infeasible["street_code"]) == {"350211002", "350203001"}
    assert m["contiguous_share_after"] == 1.0
    assert m["mean_polsby_popper_after"] >= m["mean_polsby_popper_before"]
    assert m["moved_over_lower_bound"] <= 1.10
    monkeypatch.setattr(search, "CHAINS", False)
    pairs = rebalance(units, workers=1, progress=False).metrics
    assert pairs["mean_polsby_popper_after"] < pairs["mean_polsby_popper_before"]  # what the chains are for
    assert m["moved_households"] <= pairs["moved_households"]
    assert m["within_bounds_after"] >= pairs["within_bounds_after"]
