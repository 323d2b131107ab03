"""Retired codes are never given to another area: ``retired=`` of rebalance and make_grids, fed by
``store.retired_codes``, so a planner's second and third redraws can be adopted.

On the sample slice (both stores) and on the second city built inside Ningbo's outlines.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import geopandas as gpd
import pytest
from test_rebalance import STREET, box_city

import jngis
from jngis.codes import extends
from jngis.errors import CodeConflictError, InputTypeError, ParameterError
from jngis.sample import build_city_in
from jngis.store import open_store
from jngis.versions import Boundaries, plan_communities

NINGBO = Path(__file__).resolve().parent / "data" / "ningbo_districts.geojson"
# many small communities, then few large ones (retiring codes), then many small again
ROUNDS = [(400, 1200), (1500, 5000), (400, 1200)]


# --------------------------------------------------------------------------- the parameters


@pytest.mark.parametrize("retired, error, match", [
    (5, InputTypeError, r"rebalance: retired=5; expected an iterable of retired community codes"),
    (["37010200100"], ParameterError, r"rebalance: retired has '37010200100'; expected retired community codes "
                                      r"\(strings of 12 digits\)"),
    ([370102001009], ParameterError, r"retired has 370102001009; expected retired community codes"),
    ([f"{STREET}001"], ParameterError, r"retired has '370102001001' \(1 codes\), which units still have as "
                                       r"'community_code'; expected codes no longer in use"),
])
def test_rebalance_refuses_bad_retired(retired, error, match):
    units = box_city([800, 800, 900, 4000], [1, 1, 1, 2], columns=2)
    with pytest.raises(error, match=match):
        jngis.rebalance(units, retired=retired, progress=False)


def test_rebalance_gives_new_communities_codes_after_the_retired():
    # community 002 (4,000 households) must split: its new part takes the next code never used
    units = box_city([800, 800, 900, 1500, 1500, 1000], [1, 1, 1, 2, 2, 2], columns=3)
    plain = jngis.rebalance(units, progress=False)
    assert sorted(plain.communities["community_code"]) == [f"{STREET}00{i}" for i in (1, 2, 3)]
    retired = {f"{STREET}003": 2, f"{STREET}005": 3}
    plan = jngis.rebalance(units, progress=False, retired=retired)
    assert sorted(plan.communities["community_code"]) == [f"{STREET}00{i}" for i in (1, 2, 6)]
    again = jngis.rebalance(units, progress=False, retired=list(retired))  # any iterable; the same plan
    assert again.assignment.equals(plan.assignment)
    assert plan.metrics["moved_households"] == plain.metrics["moved_households"]


def test_make_grids_numbers_grids_skipping_retired_codes(slice_city):
    communities, units = slice_city.communities, slice_city.units
    plain = jngis.make_grids(communities, units)
    community = plain["community_code"].iloc[0]
    own = plain[plain["community_code"] == community]
    retired = [own["grid_code"].iloc[0], own["grid_code"].iloc[2], f"{community}998"]
    grids = jngis.make_grids(communities, units, retired=retired)
    # the same grids in the same code order; this community's sequence skips 001 and 003
    assert grids.geometry.geom_equals_exact(plain.geometry, 1e-9).all()
    numbers = [int(c[12:]) for c in grids.loc[grids["community_code"] == community, "grid_code"]]
    assert numbers == [n for n in range(1, 1000) if n not in (1, 3)][:len(own)]
    others = grids["community_code"] != community
    assert grids.loc[others, "grid_code"].equals(plain.loc[others, "grid_code"])
    assert not set(grids["grid_code"]) & set(retired)


@pytest.mark.parametrize("retired, error, match", [
    (object(), InputTypeError, r"make_grids: retired=<object object at .*>; expected an iterable of retired grid "
                               r"codes"),
    (["370102003001"], ParameterError, r"make_grids: retired has '370102003001'; expected retired grid codes "
                                       r"\(strings of 15 digits\)"),
])
def test_make_grids_refuses_bad_retired(slice_city, retired, error, match):
    with pytest.raises(error, match=match):
        jngis.make_grids(slice_city.communities, slice_city.units, retired=retired)


def test_make_grids_refuses_retiring_a_kept_grid(slice_city):
    grids = jngis.make_grids(slice_city.communities, slice_city.units)
    with pytest.raises(ParameterError, match=rf"make_grids: retired has '{grids['grid_code'].iloc[0]}' \(1 "
                                             r"codes\), which a kept grid of previous still has"):
        jngis.make_grids(slice_city.communities, slice_city.units, previous=grids,
                         retired=[grids["grid_code"].iloc[0]])


def test_store_retired_codes_refuses_another_kind(tmp_path, slice_city):
    with open_store(tmp_path / "city.gpkg") as store:
        store.write_city(slice_city)
        assert store.retired_codes("communities") == {} and store.retired_codes("grids") == {}
        with pytest.raises(ParameterError, match=r"retired_codes: kind='units'; expected one of"):
            store.retired_codes("units")


# --------------------------------------------------------------------------- redraw, adopt, redraw again


def _redraw(store, low: int, high: int, *, retired: bool):
    """A rebalance of the store's units and its regridding, avoiding the store's retired codes or not."""
    now = store.read_city()
    options = {"retired": store.retired_codes("communities")} if retired else {}
    plan = jngis.rebalance(now.units, min_households=low, max_households=high, progress=False, workers=1,
                           **options)
    communities = plan_communities(plan, Boundaries.of(now))
    new_units = now.units.assign(community_code=now.units["unit_id"].map(plan.assignment).to_numpy())
    options = {"retired": store.retired_codes("grids")} if retired else {}
    grids = jngis.make_grids(communities, new_units, previous=now.grids, **options)
    return plan, communities, grids


def _redraw_three_times(store) -> None:
    """Adopt ROUNDS in turn; the last would reuse retired codes without ``retired=`` and is refused then."""
    keys = {"communities": "community_code", "grids": "grid_code"}
    present = [{kind: set(store.read_layer(kind)[key]) for kind, key in keys.items()}]  # codes of each version
    for number, (low, high) in enumerate(ROUNDS):
        retired = {kind: set(store.retired_codes(kind)) for kind in keys}
        if number == len(ROUNDS) - 1:
            plan, communities, grids = _redraw(store, low, high, retired=False)
            assert set(communities["community_code"]) & retired["communities"]
            assert set(grids["grid_code"]) & retired["grids"]
            with pytest.raises(CodeConflictError, match=r"adopt: \w+ code '\d+' was retired by version \d+; "
                                                        r"expected a new code"):
                store.adopt(plan, communities=communities, grids=grids)
        plan, communities, grids = _redraw(store, low, high, retired=True)
        assert not set(communities["community_code"]) & retired["communities"]
        assert not set(grids["grid_code"]) & retired["grids"]
        assert extends(grids["grid_code"], grids["community_code"]).all()
        assert extends(communities["community_code"], communities["street_code"]).all()
        record = store.adopt(plan, communities=communities, grids=grids, note=f"round {number + 1}")
        assert record["version_id"] == number + 2
        present.append({kind: set(store.read_layer(kind)[key]) for kind, key in keys.items()})
    for kind in keys:
        retired_now = set(store.retired_codes(kind))
        assert retired_now, kind  # the rounds did retire codes, so reuse was possible
        assert retired_now == set().union(*(p[kind] for p in present)) - present[-1][kind]
        # no code comes back: the versions holding a code are one run, never with a gap
        for code in set().union(*(p[kind] for p in present)):
            held = [i for i, p in enumerate(present) if code in p[kind]]
            assert held == list(range(held[0], held[-1] + 1)), (kind, code, held)


def test_redraw_adopt_redraw_never_reuses_a_code(slice_store):
    _redraw_three_times(slice_store)


def test_redraw_adopt_redraw_on_the_second_city(tmp_path):
    city = build_city_in(gpd.read_file(NINGBO), seed=3, streets=6, communities=48)
    city = dataclasses.replace(city, grids=jngis.make_grids(city.communities, city.units))
    with open_store(tmp_path / "ningbo.gpkg") as store:
        store.write_city(city)
        _redraw_three_times(store)
