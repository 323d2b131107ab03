"""The store's address lookup (jngis.store.addresses) on SQLite (FTS5 trigram) and PostGIS (pg_trgm).

The city: two 街道 of the sample city that share a compound name, so that the
same 小区 name in two 街道 is there to be told apart.
"""

from __future__ import annotations

import pandas as pd
import pytest

from jngis.address import JINAN_PREFIXES, RESULT_COLUMNS, AddressIndex, noisy_variants
from jngis.errors import InputTypeError
from jngis.layers import City
from jngis.sample import make_slice
from jngis.store import open_store


def _shared_compound(units: pd.DataFrame) -> tuple[str, int, list[str]]:
    """A compound name with a building number present in two 街道 (and those 街道)."""
    named = units.dropna(subset=["compound_name", "building"])
    per_building = named.groupby(["compound_name", "building"])["street_code"].unique()
    two = per_building[per_building.map(len) == 2]
    (name, building), streets = two.index[0], sorted(two.iloc[0])
    return name, int(building), streets


@pytest.fixture(scope="module")
def two_streets(sample_city):
    name, building, streets = _shared_compound(sample_city.units)
    parts = [make_slice(sample_city, street) for street in streets]
    city = City(**{kind: pd.concat([getattr(p, kind) for p in parts]).drop_duplicates(
        subset=[key]).reset_index(drop=True)
        for kind, key in (("districts", "district_code"), ("streets", "street_code"),
                          ("communities", "community_code"), ("units", "unit_id"), ("grids", "grid_code"))})
    return city, name, building


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def store(request, two_streets, tmp_path_factory):
    from pgcluster import schema_dsn

    city, _, _ = two_streets
    url = (str(tmp_path_factory.mktemp("addresses") / "city.gpkg") if request.param == "sqlite"
           else schema_dsn(request.getfixturevalue("postgis_dsn")))
    with open_store(url) as opened:
        opened.write_city(city)
        yield opened


@pytest.fixture(scope="module")
def memory(two_streets):
    city, _, _ = two_streets
    return AddressIndex(city.units, districts=city.districts, streets=city.streets,
                        communities=city.communities, grids=city.grids, prefixes=JINAN_PREFIXES)


def test_every_variant_kind_like_the_in_memory_index(store, two_streets, memory):
    city, _, _ = two_streets
    variants = noisy_variants(city.units, city.units, n=120, seed=5)
    ours = store.lookup_address(variants["text"], prefixes=JINAN_PREFIXES)
    assert list(ours.columns) == list(RESULT_COLUMNS) and len(ours) == len(variants)
    assert ours["input"].tolist() == variants["text"].tolist()
    given = ours["status"].eq("matched")
    grid_of = dict(zip(city.units["unit_id"], memory._grid))
    right = (ours["unit_id"] == variants["unit_id"].to_numpy()) | (
        ours["level"].eq("compound") & (ours["grid_code"] == variants["unit_id"].map(grid_of).to_numpy()))
    assert (right & given).sum() / given.sum() >= 0.99  # precision on answers given
    assert given.mean() >= 0.95
    for kind in set(variants["kind"]):
        assert given[variants["kind"].eq(kind).to_numpy()].mean() > 0.8, kind
    theirs = memory.lookup(variants["text"])
    same = (ours["status"] == theirs["status"]) & (ours["unit_id"].fillna("") == theirs["unit_id"].fillna(""))
    assert same.mean() >= 0.97
    row = ours[given].iloc[0]
    assert len(row["grid_code"]) == 15 and 116 < row["lon"] < 118 and 36 < row["lat"] < 38


def test_same_compound_name_in_two_streets_is_ambiguous(store, two_streets):
    city, name, building = two_streets
    answer = store.locate_address(f"{name}{building}号楼", prefixes=JINAN_PREFIXES)
    assert answer["status"] == "ambiguous" and answer["unit_id"] is None
    assert len({c["street_code"] for c in answer["candidates"]}) == 2
    units = city.units
    row = units[(units["compound_name"] == name) & (units["building"] == building)].iloc[0]
    sure = store.locate_address(f"{row['road']}{row['door_number']}号{name}{building}号楼")
    assert sure["status"] == "matched" and sure["unit_id"] == row["unit_id"]


@pytest.mark.parametrize("text", ["北京市朝阳区建国路1号", "广东省深圳市南山区科技园1栋"])
def test_outside_the_city(store, text):
    answer = store.locate_address(text, prefixes=JINAN_PREFIXES)
    assert answer["status"] == "not_found" and "不在本市" in answer["reason"]


@pytest.mark.parametrize("text", ["'; DROP TABLE address_search; --", '" OR 1=1 --', "%' OR '1'='1",
                                  'NEAR("文化" "路") OR *', "\\x00", "路" * 300, "", "１２"])
def test_injection_is_answered_as_text(store, two_streets, text):
    answer = store.lookup_address([text, None])
    assert answer["status"].isin(["not_found", "ambiguous"]).all() and answer["reason"].all()
    first = two_streets[0].units.iloc[0]
    assert store.locate_address(first["address"])["unit_id"] == first["unit_id"]  # the table is intact


def test_the_search_table_follows_the_layers(store, two_streets):
    city, _, _ = two_streets
    first = city.units.iloc[0]
    assert store.locate_address(first["address"])["status"] == "matched"
    renamed = city.units.assign(road=city.units["road"].where(city.units["road"] != first["road"], "新改名路"))
    store.write_city(City(districts=city.districts, streets=city.streets, communities=city.communities,
                          units=renamed, grids=city.grids))
    moved = store.locate_address(f"新改名路{first['door_number']}号" + (
        f"{int(first['building'])}号楼" if pd.notna(first["building"]) else ""))
    assert moved["status"] == "matched" and moved["unit_id"] == first["unit_id"]
    store.write_city(city)
    with pytest.raises(InputTypeError, match="texts is a str"):
        store.lookup_address("文化东路1号")
