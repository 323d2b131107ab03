"""Users in the store (both stores): tokens shown once, kept as scrypt, one refusal for every failure."""

from __future__ import annotations

import datetime as dt
import statistics
import time

import pandas as pd
import pytest

from jngis import access
from jngis.access import Principal
from jngis.errors import AuthenticationError, ForbiddenError, NotFoundError, ParameterError
from jngis.store import open_store
from jngis.store.users import AUTH_FAILED, parse_expiry

STREET = "370102003"
GRID = "370102003001001"


def _refused(store, token) -> str:
    with pytest.raises(AuthenticationError) as caught:
        store.authenticate(token)
    return str(caught.value)


def test_a_token_is_shown_once_stored_as_scrypt_and_authenticates(slice_store):
    user, token = slice_store.add_user("李四", role="street", scope=STREET, expires="90d")
    assert user["role"] == "street" and user["scope"] == (STREET,) and not user["disabled"]
    assert "token_hash" not in user and user["user_id"].startswith("u-")
    assert user["expires_at"] - dt.datetime.now() > dt.timedelta(days=89)
    token_id, secret = access.parse_token(token)
    stored = slice_store._execute(slice_store._conn(), "SELECT token_hash FROM users WHERE user_id = ?",
                                  (user["user_id"],)).fetchone()[0]
    assert stored.startswith("scrypt$16384$8$1$") and secret not in stored
    who = slice_store.authenticate(token)
    assert who == Principal(user["user_id"], "李四", "street", (STREET,))
    listed = slice_store.list_users()
    assert [u["user_id"] for u in listed] == [user["user_id"]]
    assert all("token_hash" not in u and secret not in str(u) for u in listed)


def test_every_failure_has_one_message(slice_store):
    user, token = slice_store.add_user("王五", role="grid", scope=[GRID])
    token_id, secret = access.parse_token(token)
    other_id = "0123456789" if token_id != "0123456789" else "9876543210"
    messages = {
        "malformed": _refused(slice_store, "Bearer nonsense"),
        "not text": _refused(slice_store, None),
        "unknown id": _refused(slice_store, f"jngis_{other_id}_{secret}"),
        "wrong secret": _refused(slice_store, f"jngis_{token_id}_{secret[:-2]}xx"),
    }
    with slice_store._write() as conn:  # expired yesterday
        slice_store._execute(conn, "UPDATE users SET expires_at = ? WHERE user_id = ?",
                             (slice_store._to_db(dt.datetime.now() - dt.timedelta(days=1)), user["user_id"]))
    messages["expired"] = _refused(slice_store, token)
    fresh, fresh_token = slice_store.add_user("赵六", role="hotline")
    assert slice_store.authenticate(fresh_token).role == "hotline"
    slice_store.disable_user(fresh["user_id"])
    messages["disabled"] = _refused(slice_store, fresh_token)
    assert set(messages.values()) == {AUTH_FAILED}, messages


def test_unknown_ids_cost_one_scrypt_like_known_ones_and_the_cache_skips_it(slice_store):
    user, token = slice_store.add_user("孙八", role="hotline")
    token_id, secret = access.parse_token(token)
    unknown = f"jngis_{'f' * 10 if token_id != 'f' * 10 else 'e' * 10}_{secret}"
    wrong = f"jngis_{token_id}_{'A' * len(secret)}"

    def timed(text):
        started = time.perf_counter()
        with pytest.raises(AuthenticationError):
            slice_store.authenticate(text)
        return time.perf_counter() - started

    # alternated, so both kinds see the same machine load
    pairs = [(timed(unknown), timed(wrong)) for _ in range(7)]
    unknown_times, wrong_times = [p[0] for p in pairs], [p[1] for p in pairs]
    ratio = statistics.median(unknown_times) / statistics.median(wrong_times)
    assert 0.5 < ratio < 2.0, (unknown_times, wrong_times)
    assert statistics.median(wrong_times) > 0.01  # scrypt is really paid: ~30-70 ms here
    started = time.perf_counter()
    slice_store.authenticate(token)
    first = time.perf_counter() - started
    started = time.perf_counter()
    slice_store.authenticate(token)
    cached = time.perf_counter() - started
    assert cached < first / 5, (first, cached)


def test_disable_and_rotate_take_effect_at_once_in_every_open_store(slice_store_url):
    with open_store(slice_store_url) as one, open_store(slice_store_url) as two:
        user, token = one.add_user("钱七", role="leader", scope="370102")
        assert two.authenticate(token).role == "leader"  # now cached in `two`
        new_token = one.rotate_token(user["user_id"])
        assert _refused(two, token) == AUTH_FAILED
        assert two.authenticate(new_token).id == user["user_id"]
        one.disable_user(user["user_id"])
        assert _refused(two, new_token) == AUTH_FAILED
        assert [u["disabled"] for u in two.list_users()] == [True]
        actions = one.access_log()[["action", "target"]].values.tolist()
        assert actions == [["users.add", user["user_id"]], ["users.rotate", user["user_id"]],
                           ["users.disable", user["user_id"]]]


@pytest.mark.parametrize("kwargs, match", [
    ({"role": "mayor"}, "role='mayor'; expected one of"),
    ({"role": "anonymous"}, "role='anonymous'; expected one of"),
    ({"role": "street"}, "role 'street' needs a scope"),
    ({"role": "street", "scope": "370102004"}, "'370102004' .* is not a street_code of the store's streets"),
    ({"role": "grid", "scope": "370102003001999"}, "not a grid_code of the store's grids"),
    ({"role": "street", "scope": "3701"}, "not an administrative code"),
    ({"role": "hotline", "expires": "2001-01-01"}, "is in the past"),
    ({"role": "hotline", "expires": "soon"}, "expected a number of days"),
    ({"role": "hotline", "expires": "0d"}, "at least 1 day"),
])
def test_add_user_refuses_bad_input_by_name(slice_store, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        slice_store.add_user("某人", **kwargs)
    assert slice_store.list_users() == []


def test_only_user_managers_manage_users(slice_store):
    street = Principal("u-s", "李四", "street", (STREET,))
    with pytest.raises(ForbiddenError, match="may not users.manage"):
        slice_store.add_user("某人", role="hotline", principal=street)
    with pytest.raises(ForbiddenError):
        slice_store.list_users(principal=street)
    user, _ = slice_store.add_user("某人", role="hotline")
    with pytest.raises(ForbiddenError):
        slice_store.disable_user(user["user_id"], principal=street)
    with pytest.raises(NotFoundError, match="user_id='u-nobody' does not exist"):
        slice_store.rotate_token("u-nobody")


def test_department_scope_is_checked_against_the_registry_when_there_is_one(slice_store):
    user, token = slice_store.add_user("部门员", role="department", scope="370102-CG")
    assert slice_store.authenticate(token).scope == ("370102-CG",)
    slice_store.write_departments(pd.DataFrame({"code": ["370102-CG"], "name": ["历下区城管局"],
                                                "kind": ["district"], "districts": ["370102"]}))
    slice_store.add_user("部门员2", role="department", scope="370102-CG")
    with pytest.raises(ParameterError, match="'370102-ZZ' is not in the store's departments"):
        slice_store.add_user("部门员3", role="department", scope="370102-ZZ")


def test_parse_expiry():
    now = dt.datetime(2026, 1, 1, 8)
    assert parse_expiry(None, now=now) is None
    assert parse_expiry("12h", now=now) == dt.datetime(2026, 1, 1, 20)
    assert parse_expiry("2026-03-01T09:30", now=now) == dt.datetime(2026, 3, 1, 9, 30)


def test_cli_adds_lists_rotates_and_disables_users(slice_store_url, tmp_path):
    from click.testing import CliRunner

    from jngis.cli import main

    runner = CliRunner()
    added = runner.invoke(main, ["users", "add", "李四", "--role", "street", "--scope", STREET, "--expires", "90d",
                                 "--store", slice_store_url])
    assert added.exit_code == 0, added.output
    token = added.stdout.strip()  # the token alone on standard output
    assert access.parse_token(token) and "shown only this once" in added.stderr
    listed = runner.invoke(main, ["users", "list", "--store", slice_store_url])
    user_id, name, role, scope, _, state, token_id = listed.stdout.strip().split("\t")
    assert (name, role, scope, state, token_id) == ("李四", "street", STREET, "active", access.parse_token(token)[0])
    rotated = runner.invoke(main, ["users", "rotate", user_id, "--store", slice_store_url])
    new_token = rotated.stdout.strip()
    disabled = runner.invoke(main, ["users", "disable", user_id, "--store", slice_store_url])
    assert disabled.exit_code == 0
    with open_store(slice_store_url) as store:
        assert _refused(store, token) == _refused(store, new_token) == AUTH_FAILED
    bad = runner.invoke(main, ["users", "add", "王五", "--role", "street", "--scope", "370102004",
                               "--store", slice_store_url])
    assert bad.exit_code == 1 and "is not a street_code of the store's streets" in bad.stderr
    missing = runner.invoke(main, ["users", "list", "--store", str(tmp_path / "typo.gpkg")])
    assert missing.exit_code == 1 and "no store at" in missing.stderr


def test_a_store_made_before_users_gets_their_tables(slice_store_url):
    with open_store(slice_store_url) as store, store._write() as conn:  # as a store written before them
        for table in ("users", "access_log"):
            store._execute(conn, f"DROP TABLE {table}")
    with open_store(slice_store_url) as store:
        user, token = store.add_user("李四", role="street", scope=STREET)
        assert store.authenticate(token).id == user["user_id"]
        assert store.access_log()["action"].tolist() == ["users.add"]
