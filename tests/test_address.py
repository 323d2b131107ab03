"""jngis.address: normalising, parsing, the sample addresses and their variants, AddressIndex."""

from __future__ import annotations

import pandas as pd
import pytest

from jngis.address import (
    JINAN_PREFIXES,
    RESULT_COLUMNS,
    VARIANT_KINDS,
    AddressIndex,
    noisy_variants,
    normalise,
    sample_addresses,
)
from jngis.errors import InputTypeError, JngisError, ParameterError, SchemaError


@pytest.fixture(scope="module")
def addressed(sample_city):
    # the sample's units carry their addresses (generated on load for a cache written before them)
    addresses = sample_addresses(sample_city.units, districts=sample_city.districts)
    assert addresses.equals(sample_city.units[list(addresses.columns)])
    return sample_city, sample_city.units, addresses


@pytest.fixture(scope="module")
def index(addressed):
    city, units, _ = addressed
    return AddressIndex(units, districts=city.districts, streets=city.streets, communities=city.communities,
                        grids=city.grids, prefixes=JINAN_PREFIXES)


@pytest.fixture(scope="module")
def variants(addressed):
    city, _, addresses = addressed
    return noisy_variants(city.units, addresses, n=600, seed=3)


def test_normalise_spellings():
    assert normalise("文化东路６８号") == "文化东路68号"
    assert normalise("文化东路六十八号院山大新村三栋") == "文化东路68号山大新村3号楼"
    assert normalise("山大新村3幢") == normalise("山大新村3座") == "山大新村3号楼"
    assert normalise("经十路100号2-3-402") == "经十路100号2号楼3单元402室"
    assert normalise("经十路") == "经十路"  # numerals in a name stay


def test_sample_addresses_are_deterministic_and_unique(addressed, sample_city):
    _, _, addresses = addressed
    again = sample_addresses(sample_city.units, districts=None)
    assert addresses["address"].is_unique
    assert (again["road"] == addresses["road"]).all()
    assert addresses["door_number"].gt(0).all()
    # door numbers increase along a road with the same parity
    for _, doors in addresses.groupby("road")["door_number"]:
        assert doors.mod(2).nunique() == 1


def test_every_variant_kind_is_found(index, variants):
    answers = index.lookup(variants["text"])
    assert list(answers.columns) == list(RESULT_COLUMNS)
    answers["truth"], answers["kind"] = variants["unit_id"].to_numpy(), variants["kind"].to_numpy()
    matched = answers[answers["status"] == "matched"]
    right = (matched["unit_id"] == matched["truth"]) | (matched["level"] == "compound")
    assert right.mean() >= 0.99
    for kind in VARIANT_KINDS:
        rows = answers[answers["kind"] == kind]
        assert len(rows), kind
        assert (rows["status"] == "matched").mean() >= (0.9 if kind in ("typo", "compound_only") else 0.99), kind


def test_never_a_silent_guess(index, variants):
    answers = index.lookup(variants["text"])
    wrong = answers[(answers["status"] == "matched") & (answers["unit_id"] != variants["unit_id"].to_numpy())
                    & (answers["level"] != "compound")]
    assert len(wrong) <= len(answers) * 0.01
    others = answers[answers["status"] != "matched"]
    assert others["reason"].str.len().gt(0).all()
    assert others["unit_id"].isna().all()


def test_same_compound_name_in_two_streets_is_ambiguous(addressed, index):
    _, units, _ = addressed
    named = units.dropna(subset=["compound_name", "building"])
    streets = named.groupby("compound_name")["street_code"].nunique()
    name = streets[streets > 1].index[0]
    common = named[named["compound_name"] == name].groupby("building")["street_code"].nunique()
    building = int(common[common > 1].index[0])
    answer = index.locate(f"{name}{building}号楼")
    assert answer["status"] == "ambiguous"
    assert len({c["street_code"] for c in answer["candidates"]}) >= 2
    # naming the road makes it sure
    row = named[(named["compound_name"] == name) & (named["building"] == building)].iloc[0]
    sure = index.locate(f"{row['road']}{row['door_number']}号{name}{building}号楼")
    assert sure["status"] == "matched" and sure["unit_id"] == row["unit_id"]


@pytest.mark.parametrize("text", ["北京市朝阳区建国路1号", "上海市浦东新区世纪大道100号", "青岛市市南区香港中路8号",
                                  "广东省深圳市南山区科技园1栋"])
def test_outside_the_city(index, text):
    answer = index.locate(text)
    assert answer["status"] == "not_found"
    assert "不在本市" in answer["reason"]


@pytest.mark.parametrize("text", ["'; DROP TABLE units; --", "<script>alert(1)</script>", "%' OR 1=1 --",
                                  "../../etc/passwd", "\x00\x01", "文化东路" * 100, "", "   ", "１２３"])
def test_injection_and_junk_are_answered_not_raised(index, text):
    answer = index.locate(text)
    assert answer["status"] in ("not_found", "ambiguous")
    assert answer["reason"]


def test_unknown_building_and_door_give_reasons(addressed, index):
    _, units, _ = addressed
    row = units.dropna(subset=["building"]).iloc[0]
    answer = index.locate(f"{row['road']}{row['door_number']}号99号楼")
    assert answer["status"] == "ambiguous" and "99号楼" in answer["reason"]
    answer = index.locate(f"{row['road']}99999号")
    assert answer["status"] == "not_found" and "99999号" in answer["reason"]


def test_lookup_keeps_order_and_missing_values(index, addressed):
    _, units, _ = addressed
    texts = [units["address"].iloc[5], None, float("nan"), units["address"].iloc[5]]
    answers = index.lookup(texts)
    assert answers["status"].tolist() == ["matched", "not_found", "not_found", "matched"]
    assert answers["unit_id"].iloc[0] == units["unit_id"].iloc[5]
    with pytest.raises(InputTypeError, match="texts"):
        index.lookup("文化东路1号")
    with pytest.raises(InputTypeError, match="text"):
        index.locate(5)


def test_bad_units_are_refused(addressed):
    _, units, _ = addressed
    with pytest.raises(SchemaError, match="road"):
        AddressIndex(units.drop(columns=["road"]))
    with pytest.raises(InputTypeError, match="units"):
        AddressIndex(pd.DataFrame(units.drop(columns="geometry")))
    with pytest.raises(ParameterError, match="threshold"):
        AddressIndex(units, threshold=120)
    bad = units.copy()
    bad.loc[bad.index[0], "door_number"] = 0
    with pytest.raises(ParameterError, match="door_number"):
        AddressIndex(bad)
    assert issubclass(ParameterError, JngisError)


def test_place_rows_splits_an_export(index, addressed):
    from jngis.address import place_rows

    _, units, _ = addressed
    good = units["address"].iloc[10]
    rows = pd.DataFrame({"address": [good, "北京市朝阳区建国路1号", None, f"{units['road'].iloc[10]}99999号"],
                         "category": "市容环境"})
    placed, rejected = place_rows(rows, index)
    assert placed["unit_id"].tolist() == [units["unit_id"].iloc[10]]
    assert placed["crs"].tolist() == ["cgcs2000"] and placed["lon"].notna().all()
    assert rejected["row"].tolist() == [3, 4, 5]
    assert rejected["reason"].str.len().gt(0).all()
    with pytest.raises(SchemaError, match="addr"):
        place_rows(rows, index, column="addr")
    with pytest.raises(InputTypeError, match="index"):
        place_rows(rows, object())


def test_the_units_schema_knows_the_address_columns(slice_city):
    from jngis.layers import ADDRESS_COLUMNS, validate

    units = slice_city.units
    assert {c.name for c in ADDRESS_COLUMNS} <= set(units.columns)  # the slice gets them on load
    assert validate(units, "units") is units
    with pytest.raises(SchemaError, match=r"has \['road'\] without \['door_number'\]"):
        validate(units.drop(columns="door_number"), "units")
    no_door = units.copy()
    no_door["door_number"] = no_door["door_number"].astype("Int64")
    no_door.loc[no_door.index[2], "door_number"] = pd.NA
    with pytest.raises(SchemaError, match=r"'door_number' is missing where .* row 2 .*road and door_number"):
        validate(no_door, "units")
    with pytest.raises(SchemaError, match=r"'building' has the negative value -1"):
        validate(units.assign(building=units["building"].fillna(-1)), "units")
    with pytest.raises(SchemaError, match=r"'road' has dtype int64"):
        validate(units.assign(road=3), "units")
    bare = units.drop(columns=[c.name for c in ADDRESS_COLUMNS])
    assert validate(bare, "units") is bare  # addresses are optional


def test_an_older_city_without_addresses_gets_them_on_load(slice_city, tmp_path):
    import dataclasses

    from jngis.layers import ADDRESS_COLUMNS, read_city, write_city
    from jngis.sample import with_addresses

    names = [c.name for c in ADDRESS_COLUMNS]
    older = dataclasses.replace(slice_city, units=slice_city.units.drop(columns=names))
    path = write_city(older, tmp_path / "older.gpkg")
    again = with_addresses(read_city(path))
    assert again.units[names].equals(slice_city.units[names])
    assert with_addresses(slice_city).units is slice_city.units  # kept as it is


def test_lookup_in_forked_workers_gives_the_same_answers(index, variants):
    texts = variants["text"].tolist()
    assert len(set(texts)) > 4000  # enough distinct texts to be shared among the workers
    together = index.lookup(texts, workers=2)
    assert together.equals(index.lookup(texts))
    with pytest.raises(ParameterError, match="workers"):
        index.lookup(texts, workers=0)
