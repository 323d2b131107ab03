"""jngis.access: roles, scopes, masking and tokens (pure functions)."""

import sqlite3

import pandas as pd
import pytest

from jngis import access
from jngis.access import ADMIN, ANONYMOUS, Principal
from jngis.errors import ForbiddenError, InputTypeError, ParameterError

STREET = Principal("u-street", "李四", "street", ("370102003",))
GRID = Principal("u-grid", "王五", "grid", ("370102003001001", "370102003001002"))
DEPT = Principal("u-dept", "赵六", "department", ("CG-370102",))
LEADER = Principal("u-leader", "钱七", "leader", ("370102",))
HOTLINE = Principal("u-hot", "孙八", "hotline")

ORDERS = pd.DataFrame({
    "order_id": ["a", "b", "c", "d"],
    "district_code": ["370102", "370102", "370102", "370103"],
    "street_code": ["370102003", "370102003", "370102004", "370103001"],
    "grid_code": ["370102003001001", "370102003002001", "370102004001001", "370103001001001"],
    "department_code": ["CG-370102", None, "CG-370102", "ZJ-370103"],
})


@pytest.mark.parametrize("who,expected", [
    (ADMIN, ["a", "b", "c", "d"]), (HOTLINE, ["a", "b", "c", "d"]), (STREET, ["a", "b"]),
    (GRID, ["a"]), (DEPT, ["a", "c"]), (LEADER, ["a", "b", "c"]), (ANONYMOUS, []),
    (Principal("u-x", "x", "street"), []),
])
def test_scope_mask_sql_and_contains_agree(who, expected):
    scope = access.order_scope(who)
    assert ORDERS["order_id"][scope.mask(ORDERS)].tolist() == expected
    assert [r["order_id"] for r in ORDERS.to_dict("records") if scope.contains(r)] == expected
    db = sqlite3.connect(":memory:")
    ORDERS.to_sql("orders", db, index=False)
    where, params = scope.sql()
    rows = db.execute(f"SELECT order_id FROM orders WHERE {where} ORDER BY order_id", params).fetchall()
    assert [r[0] for r in rows] == expected


def test_scope_sql_binds_values_never_formats_them():
    evil = Principal("u-evil", "x", "department", ("x') OR 1=1 --",))
    where, params = access.order_scope(evil).sql()
    assert "OR 1=1" not in where and params == ["x') OR 1=1 --"]
    db = sqlite3.connect(":memory:")
    ORDERS.to_sql("orders", db, index=False)
    assert db.execute(f"SELECT count(*) FROM orders WHERE {where}", params).fetchone()[0] == 0


def test_scope_key_distinguishes_scopes():
    assert access.order_scope(STREET).key != access.order_scope(GRID).key
    assert access.order_scope(ADMIN).key == access.order_scope(HOTLINE).key == ("*",)


@pytest.mark.parametrize("role,action,allowed", [
    ("admin", "users.manage", True), ("planner", "versions.adopt", True), ("planner", "orders.read", False),
    ("hotline", "orders.create", True), ("hotline", "personal.reveal", True), ("leader", "personal.masked", False),
    ("leader", "orders.read", True), ("grid", "personal.reveal", False), ("anonymous", "orders.read", False),
    ("anonymous", "stats.read", True), ("department", "orders.create", False), ("street", "departments.call", True),
])
def test_permissions_table(role, action, allowed):
    who = Principal("u", "n", role, ("CG-1",) if role == "department" else ("370102003",)
                    if role not in ("admin", "hotline", "anonymous") else ())
    assert access.can(who, action) is allowed
    if not allowed:
        with pytest.raises(ForbiddenError, match=action):
            access.require(who, action)


def test_steps_by_role():
    assert access.may_take_step(DEPT, "resolved") and not access.may_take_step(DEPT, "closed")
    assert access.may_take_step(HOTLINE, "dispatched") and not access.may_take_step(GRID, "resolved")
    assert not access.may_take_step(LEADER, "in_progress") and access.may_take_step(ADMIN, "closed")


def test_principal_checks():
    with pytest.raises(ParameterError, match="role='boss'"):
        Principal("u", "n", "boss")
    with pytest.raises(ParameterError, match="not an administrative code"):
        Principal("u", "n", "street", ("3701",))
    with pytest.raises(ParameterError, match="id=''"):
        Principal("", "n", "street")
    with pytest.raises(InputTypeError, match="expected a jngis.access.Principal"):
        access.order_scope("admin")
    assert Principal("u", "n", "street", "370102003").scope == ("370102003",)


@pytest.mark.parametrize("phone,masked", [("13812345678", "138****5678"), ("0531-88889999", "053****9999"),
                                          ("12345", "****"), (None, None)])
def test_mask_phone(phone, masked):
    assert access.mask_phone(phone) == masked


@pytest.mark.parametrize("name,masked", [("张三", "张*"), ("欧阳娜娜", "欧***"), ("王", "王*"), ("", "")])
def test_mask_name(name, masked):
    assert access.mask_name(name) == masked


def test_mask_text_hides_phones_and_id_numbers_in_descriptions():
    text = "居民13812345678反映, 身份证37010219800101123X, 楼号12号"
    masked = access.mask_text(text)
    assert "13812345678" not in masked and "138****5678" in masked
    assert "37010219800101123X" not in masked and "370102********123X" in masked
    assert "12号" in masked


def test_mask_record_by_role():
    record = {"order_id": "a", "caller_name": "张三", "caller_phone": "13812345678",
              "description": "电话13812345678"}
    assert access.mask_record(record, HOTLINE) == {"order_id": "a", "caller_name": "张*",
                                                   "caller_phone": "138****5678", "description": "电话138****5678"}
    assert access.mask_record(record, LEADER) == {"order_id": "a", "description": "电话138****5678"}
    assert "caller_phone" not in access.mask_record(record, ANONYMOUS)


def test_tokens_round_trip_and_compare_in_constant_form():
    token_id, secret, text = access.new_token()
    assert access.parse_token(text) == (token_id, secret)
    stored = access.hash_secret(secret)
    assert secret not in stored
    assert access.secret_matches(secret, stored)
    assert not access.secret_matches(secret + "x", stored)
    assert not access.secret_matches(secret, None)
    for bad in ("", "jngis_", "Bearer x", None, 5, f"jngis_{token_id}_short"):
        assert access.parse_token(bad) is None
    assert access.new_token()[2] != text
