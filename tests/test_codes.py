"""jngis.codes: the one vocabulary."""

import numpy as np
import pandas as pd
import pytest

from jngis import codes
from jngis.errors import InputTypeError, ParameterError


@pytest.mark.parametrize("to,expected", [("district", "370102"), ("street", "370102003"),
                                         ("community", "370102003001"), ("grid_code", "370102003001002")])
def test_parent_of_a_grid_code(to, expected):
    assert codes.parent("370102003001002", to) == expected


def test_parent_is_vectorised_and_keeps_missing():
    series = pd.Series(["370102003001", None, "370103001002"], index=[5, 6, 7])
    out = codes.parent(series, "street")
    assert out.tolist() == ["370102003", None, "370103001"]
    assert list(out.index) == [5, 6, 7]
    assert codes.parent(np.array(["370102003001"]), "district").tolist() == ["370102"]
    assert codes.parent(["370102003001"], "district") == ["370102"]


def test_parent_refuses_short_codes_and_unknown_levels():
    with pytest.raises(ParameterError, match="fewer than the 12 digits"):
        codes.parent("370102003", "community")
    with pytest.raises(ParameterError, match="level='province'"):
        codes.parent("370102", "province")
    with pytest.raises(InputTypeError, match="code is a int"):
        codes.parent(370102, "district")


def test_level_of():
    assert [codes.level_of(c) for c in ("370102", "370102003", "370102003001", "370102003001001")] == \
        ["district", "street", "community", "grid"]
    with pytest.raises(ParameterError, match="not an administrative code"):
        codes.level_of("37010")


def test_extends():
    child = pd.Series(["370102003", "370103001", None])
    assert codes.extends(child, pd.Series(["370102", "370102", "370102"])).tolist() == [True, False, False]
    assert codes.extends("370102003", "370102") and not codes.extends("370102", "370102")


def test_state_groups_come_from_the_state_table():
    from jngis import workorders
    assert codes.OPEN_STATES is workorders.OPEN_STATES
    assert set(codes.OPEN_STATES) | set(codes.FINISHED_STATES) | set(workorders.MERGED_STATES) == set(codes.STATES)
    assert not set(codes.OPEN_STATES) & set(codes.FINISHED_STATES)


@pytest.mark.parametrize("column", ["caller_name", "caller_phone", "mobile", "phone", "id_card",
                                    "idnumber", "手机号", "身份证号码", "联系人姓名", "Caller_Address"])
def test_personal_columns_are_recognised(column):
    assert codes.is_personal(column)


@pytest.mark.parametrize("column", ["order_id", "category", "grid_code", "households", "description"])
def test_other_columns_are_not_personal(column):
    assert not codes.is_personal(column)


def test_a_station_phone_is_public_but_a_caller_phone_never():
    assert not codes.is_personal("phone", kind="stations")
    assert codes.is_personal("phone", kind="workorders")
    assert codes.is_personal("caller_phone", kind="stations")


def test_phone_and_id_patterns():
    text = "张先生 13812345678 反映, 身份证 37010219800101123X, 工单 2025100100001"
    assert codes.PHONE_PATTERN.findall(text) == ["13812345678"]
    assert codes.ID_CARD_PATTERN.findall(text) == ["37010219800101123X"]


def test_viewer_vocabulary_is_plain_json_with_the_viewer_words():
    import json
    vocabulary = json.loads(json.dumps(codes.viewer_vocabulary(), ensure_ascii=False))
    assert vocabulary["values"]["grid_type"]["residential"] == "居住网格"
    assert vocabulary["labels"]["enforcement_officers"] == "执法力量"
    assert [lv["digits"] for lv in vocabulary["levels"]] == [6, 9, 12, 15]


def test_to_cst_naive():
    aware = pd.Series(pd.to_datetime(["2025-10-01T02:00:00Z"]))
    assert codes.to_cst_naive(aware).iloc[0] == pd.Timestamp("2025-10-01 10:00")
    naive = pd.Series(pd.to_datetime(["2025-10-01 10:00"]))
    assert codes.to_cst_naive(naive).iloc[0] == pd.Timestamp("2025-10-01 10:00")
    with pytest.raises(InputTypeError):
        codes.to_cst_naive("2025-10-01")
