"""The department loop (街呼区应): every step and refusal, in the library and on both stores."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from jngis import access
from jngis.errors import ForbiddenError, InputTypeError, InvalidTransition, NotFoundError, ParameterError
from jngis.workorders import (
    CALENDAR,
    DEPARTMENT_ACTIONS,
    TRANSITIONS,
    WorkCalendar,
    actions_for,
    allowed_actions,
    card,
    plan_step,
    state_from_trail,
)

D = dt.datetime
DEPARTMENTS = {"370102-CG", "370102-ZJ"}


def _order(status="received", **more):
    base = {"order_id": "W1", "status": status, "category": "物业管理", "due_at": None, "warn_at": None,
            "dispatched_at": None, "extended_days": None, "updated_at": D(2025, 9, 29, 9)}
    return {**base, **more}


def _run(order, loop, action, **kwargs):
    """Take one step and return the order and loop row as a store would write them."""
    changes, loop_changes, rows = plan_step(order, loop, action, who="测试", **kwargs)
    return {**order, **changes}, {**loop, **loop_changes}, rows


# --------------------------------------------------------------------------- clocks


@pytest.mark.parametrize("start, hours, expected", [
    (D(2025, 10, 10, 9, 0), 1, D(2025, 10, 10, 10, 0)),
    (D(2025, 10, 10, 11, 30), 1, D(2025, 10, 10, 14, 0)),     # over the lunch break
    (D(2025, 10, 10, 17, 0), 1, D(2025, 10, 11, 9, 0)),      # Saturday 11 Oct 2025: make-up working day
    (D(2025, 9, 30, 17, 0), 1, D(2025, 10, 9, 9, 0)),        # National Day and Mid-Autumn: 1-8 Oct off
    (D(2025, 10, 1, 10, 0), 1, D(2025, 10, 9, 9, 30)),       # dispatched on a holiday: counts from the opening
    (D(2025, 10, 10, 16, 30), 1, D(2025, 10, 10, 17, 30)),   # ends at the closing time, not the next opening
    (D(2025, 10, 10, 20, 0), 0, D(2025, 10, 10, 17, 30)),    # after hours: the working instant is the close
    (D(2026, 2, 13, 17, 0), 2, D(2026, 2, 14, 10, 0)),       # Saturday 14 Feb 2026: make-up working day
    (D(2026, 2, 14, 17, 0), 1, D(2026, 2, 24, 9, 0)),        # Spring Festival 2026: 15-23 Feb off
])
def test_office_hours_across_holidays_and_make_up_days(start, hours, expected):
    assert CALENDAR.add_working_hours(start, hours) == expected
    assert CALENDAR.working_hours_between(start, expected) == pytest.approx(hours if hours else 0)


def test_office_hours_vectorised_and_configurable():
    import pandas as pd

    starts = pd.Series(pd.to_datetime(["2025-10-10 09:00", None, "2025-10-10 17:00"]))
    out = CALENDAR.add_working_hours(starts, 1)
    assert out.iloc[0] == pd.Timestamp("2025-10-10 10:00") and pd.isna(out.iloc[1])
    assert out.iloc[2] == pd.Timestamp("2025-10-11 09:00")
    night = WorkCalendar(office_hours=[("00:00", "12:00")])
    assert night.add_working_hours(D(2025, 10, 10, 11), 2) == D(2025, 10, 11, 1)
    with pytest.raises(ParameterError, match="office_hours=.*expected one or more"):
        WorkCalendar(office_hours=[("12:00", "08:00")])
    with pytest.raises(ParameterError, match="hours=-1; expected a number of hours >= 0"):
        CALENDAR.add_working_hours(D(2025, 10, 10, 9), -1)


# --------------------------------------------------------------------------- the table


def test_old_trails_stay_valid_and_new_steps_replay():
    old = [{"action": a} for a in ("received", "dispatched", "in_progress", "resolved", "closed")]
    assert state_from_trail(old) == "closed"
    new = [{"action": a} for a in ("received", "dispatched", "sign", "contact", "on_site", "reply", "callback",
                                   "verify", "closed")]
    assert state_from_trail(new) == "closed"
    assert allowed_actions("duplicate") == () and TRANSITIONS["signed"]["contact"] == "in_progress"


def test_the_department_loop_end_to_end():
    order, loop = _order(category="环境卫生"), {}
    order, loop, _ = _run(order, loop, "dispatched", at=D(2025, 9, 30, 17), department_code="370102-CG",
                          departments=DEPARTMENTS)
    assert order["department_code"] == "370102-CG" and loop["sign_due_at"] == D(2025, 10, 9, 9)
    order, loop, rows = _run(order, loop, "sign", at=D(2025, 10, 9, 8, 45))
    assert order["status"] == "signed" and rows[0]["action"] == "sign"
    assert loop["contact_due_at"] == D(2025, 10, 10, 8, 45)
    order, loop, _ = _run(order, loop, "contact", at=D(2025, 10, 9, 10))
    with pytest.raises(InvalidTransition, match="needs an on-site visit .* before the reply"):
        _run(order, loop, "reply", at=D(2025, 10, 9, 11), note="已清理")
    order, loop, _ = _run(order, loop, "on_site", at=D(2025, 10, 9, 11))
    order, loop, _ = _run(order, loop, "reply", at=D(2025, 10, 9, 15), note="已清理")
    assert order["status"] == "resolved" and order["resolved_at"] == D(2025, 10, 9, 15)
    with pytest.raises(InvalidTransition, match="no satisfied callback yet"):
        _run(order, loop, "closed", at=D(2025, 10, 10, 9))
    order, loop, _ = _run(order, loop, "callback", at=D(2025, 10, 10, 9), level="basically_satisfied")
    with pytest.raises(InvalidTransition, match="already called back"):
        _run(order, loop, "callback", at=D(2025, 10, 10, 9), level="satisfied")
    with pytest.raises(InvalidTransition, match="verified before closing"):
        _run(order, loop, "closed", at=D(2025, 10, 10, 10))
    order, loop, _ = _run(order, loop, "verify", at=D(2025, 10, 10, 10))
    order, loop, rows = _run(order, loop, "closed", at=D(2025, 10, 10, 11))
    assert order["status"] == "closed" and order["satisfied"] is True


def test_a_not_satisfied_callback_reopens_for_rehandling():
    order = _order("resolved", resolved_at=D(2025, 10, 9), department_code="370102-ZJ")
    loop = {"signed_at": D(2025, 10, 8), "replied_at": D(2025, 10, 9)}
    order, loop, rows = _run(order, loop, "callback", at=D(2025, 10, 10, 9), level="not_satisfied")
    assert [r["action"] for r in rows] == ["callback", "rehandle"]
    assert [r["to_state"] for r in rows] == ["resolved", "in_progress"]
    assert order["status"] == "in_progress" and order["resolved_at"] is None and order["satisfied"] is False
    assert order["due_at"] == D(2025, 10, 16, 9) and loop["callback"] is None and loop["replied_at"] is None


def test_return_only_within_two_working_days_with_a_reason():
    order = _order("dispatched", dispatched_at=D(2025, 9, 30, 10), updated_at=D(2025, 9, 30, 10))
    with pytest.raises(ParameterError, match="note is missing"):
        _run(order, {}, "returned", at=D(2025, 10, 9, 9))
    # 2 working days after Tue 30 Sep: 9 Oct (1-8 Oct off): still in time on 9 Oct, not on the 10th
    returned, _, _ = _run(order, {}, "returned", at=D(2025, 10, 9, 9), note="非本单位职责")
    assert returned["status"] == "returned"
    with pytest.raises(InvalidTransition, match=r"'W1' is 'dispatched': it cannot go to 'returned' \(an order is "
                                                r"returned only within 2 working days.*allowed next: in_progress"):
        _run(order, {}, "returned", at=D(2025, 10, 10, 11), note="非本单位职责")
    again, loop, _ = _run(returned, {"signed_at": D(2025, 9, 30, 11)}, "dispatched", at=D(2025, 10, 9, 10),
                          department_code="370102-ZJ", departments=DEPARTMENTS)
    assert again["status"] == "dispatched" and loop["signed_at"] is None and again["due_at"] == D(2025, 10, 15, 10)


def test_dispatch_to_an_unknown_department_is_refused():
    with pytest.raises(NotFoundError, match="department_code='370199-XX' is not a department of the registry"):
        plan_step(_order(), {}, "dispatched", who="x", at=D(2025, 10, 9), department_code="370199-XX",
                  departments=DEPARTMENTS)
    changes, _, _ = plan_step(_order(), {}, "dispatched", who="x", at=D(2025, 10, 9))
    assert changes["department_code"] is None  # to the 街道


def test_extension_request_and_decision_at_most_once():
    order = _order("signed", due_at=D(2025, 10, 15, 9), warn_at=D(2025, 10, 14, 9), dispatched_at=D(2025, 10, 9))
    with pytest.raises(InvalidTransition, match="no extension request is waiting"):
        _run(order, {}, "extension_decision", at=D(2025, 10, 10), granted=True)
    with pytest.raises(ParameterError, match="days=11"):
        _run(order, {}, "extension_request", at=D(2025, 10, 10), note="需协调", days=11)
    order, loop, _ = _run(order, {}, "extension_request", at=D(2025, 10, 10), note="需协调产权单位", days=3)
    assert order["status"] == "signed" and loop["extension_days"] == 3
    with pytest.raises(InvalidTransition, match="extended at most once"):
        _run(order, loop, "extension_request", at=D(2025, 10, 10, 1), note="再次")
    with pytest.raises(InputTypeError, match="granted is a str"):
        _run(order, loop, "extension_decision", at=D(2025, 10, 10, 2), granted="yes")
    order, loop, rows = _run(order, loop, "extension_decision", at=D(2025, 10, 10, 2), granted=True)
    assert order["due_at"] == D(2025, 10, 20, 9) and order["extended_days"] == 3 and rows[0]["note"] == "同意延期"
    with pytest.raises(InvalidTransition, match="no extension request is waiting"):
        _run(order, loop, "extension_decision", at=D(2025, 10, 10, 3), granted=False)


def test_supervision_only_on_a_red_card():
    due, warn = D(2025, 10, 15, 9), D(2025, 10, 14, 9)
    order = _order("in_progress", due_at=due, warn_at=warn)
    assert card("in_progress", due, warn, D(2025, 10, 13)) is None
    assert card("in_progress", due, warn, D(2025, 10, 14, 10)) == "yellow"
    assert card("in_progress", due, warn, D(2025, 10, 15, 10)) == "red"
    assert card("closed", due, warn, D(2025, 10, 15, 10)) is None
    with pytest.raises(InvalidTransition, match="red card only"):
        _run(order, {}, "supervise", at=D(2025, 10, 14, 10), note="请加快办理")
    order, loop, _ = _run(order, {}, "supervise", at=D(2025, 10, 16, 10), note="请加快办理")
    assert loop["supervision_due_at"] == D(2025, 10, 20, 10)  # 2 working days: Fri 17, Mon 20


def test_merge_a_duplicate_into_its_master():
    master = _order("dispatched", order_id="M1")
    duplicate, loop, rows = _run(_order("received", order_id="W2"), {}, "merge", at=D(2025, 10, 9), master=master)
    assert duplicate["status"] == "duplicate" and loop["master_id"] == "M1" and rows[0]["note"] == "并入 M1"
    with pytest.raises(ParameterError, match="same category"):
        _run(_order(order_id="W3", category="噪音扰民"), {}, "merge", at=D(2025, 10, 9), master=master)
    with pytest.raises(ParameterError, match="into itself"):
        _run(_order(order_id="M1"), {}, "merge", at=D(2025, 10, 9), master=master)
    with pytest.raises(InvalidTransition, match="'duplicate': it cannot go to 'sign'.*allowed next: none"):
        _run(duplicate, loop, "sign", at=D(2025, 10, 9))


@pytest.mark.parametrize("action", DEPARTMENT_ACTIONS)
def test_a_step_out_of_order_names_the_state_and_the_allowed_steps(action):
    order = _order("closed")
    with pytest.raises(InvalidTransition, match=f"'W1' is 'closed': it cannot go to '{action}'.*allowed next: none"):
        plan_step(order, {}, action, who="x", at=D(2025, 10, 9))


def test_options_belong_to_their_step():
    with pytest.raises(ParameterError, match="level='satisfied' is only for the 'callback' step, not 'sign'"):
        plan_step(_order("dispatched"), {}, "sign", who="x", level="satisfied")
    with pytest.raises(ParameterError, match="at=.* is before the order's last step"):
        plan_step(_order("dispatched"), {}, "sign", who="x", at=D(2025, 9, 1))


# --------------------------------------------------------------------------- actions_for

DEPT = access.Principal("u-d", "王五", "department", ("370102-CG",))
STREET = access.Principal("u-s", "李四", "street", ("370102003",))
HOTLINE = access.Principal("u-h", "话务员", "hotline")
PLACE = {"street_code": "370102003", "grid_code": "370102003001001", "community_code": "370102003001",
         "district_code": "370102"}


def _names(order, who):
    return [a["action"] for a in actions_for(order, who)]


def test_actions_follow_state_role_and_scope():
    dispatched = {"order_id": "W1", "status": "dispatched", "department_code": "370102-CG", **PLACE}
    assert _names(dispatched, DEPT) == ["returned", "sign", "extension_request"]
    assert _names({**dispatched, "department_code": "370102-ZJ"}, DEPT) == []   # another department's order
    assert "call" in _names(dispatched, STREET) and "sign" in _names(dispatched, STREET)
    assert _names(dispatched, access.Principal("u-x", "赵六", "street", ("370102001",))) == []
    assert _names(dispatched, access.ANONYMOUS) == [] and _names(dispatched, access.Principal(
        "u-l", "领导", "leader", ("370102",))) == []
    returned = {**dispatched, "status": "returned"}
    redispatch = actions_for(returned, HOTLINE)[0]
    assert redispatch["action"] == "dispatched" and redispatch["label"] == "改派"
    assert redispatch["fields"][0]["name"] == "department_code"
    resolved = {**dispatched, "status": "resolved", "callback": None}
    callback = next(a for a in actions_for(resolved, HOTLINE) if a["action"] == "callback")
    assert callback["label"] == "回访" and [c["label"] for c in callback["fields"][0]["choices"]] == [
        "满意", "基本满意", "不满意"]
    assert "callback" not in _names({**resolved, "callback": "satisfied"}, HOTLINE)


def test_actions_leave_out_steps_that_would_be_refused():
    order = {"order_id": "W1", "status": "in_progress", "department_code": "370102-CG", **PLACE,
             "due_at": D(2020, 1, 1), "warn_at": D(2019, 12, 31), "extended_days": None,
             "extension_requested_at": D(2019, 12, 30), "extension_decision": None}
    hotline = _names(order, HOTLINE)
    assert "supervise" in hotline and "extension_decision" in hotline
    assert "extension_request" not in _names(order, DEPT) and "reply" in _names(order, DEPT)
    assert "resolved" not in _names(order, DEPT)  # a department replies (回复)
    with pytest.raises(InputTypeError, match="expected a jngis.access.Principal"):
        actions_for(order, "admin")
    with pytest.raises(ParameterError, match="state='lost'"):
        actions_for({**order, "status": "lost"}, HOTLINE)


# --------------------------------------------------------------------------- both stores


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def loop_url(request, tmp_path_factory, slice_city):
    """A store of the slice city with the sample departments and catalogue."""
    from pgcluster import new_slice_store

    from jngis.store import open_store

    url = new_slice_store(request.param, tmp_path_factory.mktemp("loop"), slice_city,
                          lambda: request.getfixturevalue("postgis_dsn"))
    with open_store(url) as store:
        assert store.load_sample_departments() > 0 and store.load_sample_departments() == 0
    return url


@pytest.fixture
def store(loop_url):
    from jngis.store import open_store

    with open_store(loop_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def spot(slice_city):
    point = slice_city.communities.geometry.representative_point().to_crs("EPSG:4326").iloc[0]
    return point.x, point.y


def _new(store, spot, category="环境卫生", at=None):
    at = at or D(2025, 9, 30, 16)
    return store.create_order(*spot, category=category, who="话务员", at=at)["order_id"]


def _table_counts(store):
    conn = store._conn()
    return tuple(store._execute(conn, f"SELECT count(*) FROM {t}").fetchone()[0]
                 for t in ("orders", "trail", "order_loop", "calls", "call_departments"))


def test_the_registry_and_catalogue_are_in_the_store(store):
    registry = store.departments()
    district = store.read_layer("districts")["district_code"].iloc[0]
    assert f"{district}-CG" in set(registry["code"]) and registry["districts"].map(type).eq(tuple).all()
    catalogue = store.catalogue()
    assert catalogue.set_index(["category", "district_code"]).loc[("环境卫生", district), "department_code"] == \
        f"{district}-CG"


def test_every_step_of_the_department_loop_on_the_store(store, spot):
    order_id = _new(store, spot)
    district = store.get_order(order_id)["district_code"]
    record = store.step(order_id, "dispatched", department_code="catalogue", at=D(2025, 9, 30, 17))
    assert record["department_code"] == f"{district}-CG" and record["sign_due_at"] == D(2025, 10, 9, 9)
    dept = access.Principal("u-d", "王五", "department", (f"{district}-CG",))
    for action, kwargs in [("sign", {}), ("contact", {}), ("on_site", {"note": "现场查看"}),
                           ("reply", {"note": "已清理完毕"})]:
        record = store.step(order_id, action, principal=dept, at=D(2025, 10, 9, 10), **kwargs)
    assert record["status"] == "resolved" and record["signed_at"] == D(2025, 10, 9, 10)
    hotline = access.Principal("u-h", "话务员", "hotline")
    store.step(order_id, "callback", principal=hotline, level="satisfied", at=D(2025, 10, 10, 9))
    store.step(order_id, "verify", principal=hotline, at=D(2025, 10, 10, 10))
    record = store.step(order_id, "closed", principal=hotline, at=D(2025, 10, 10, 11))
    assert record["status"] == "closed" and record["callback"] == "satisfied"
    trail = store.trail(order_id)
    assert [r["action"] for r in trail] == ["received", "dispatched", "sign", "contact", "on_site", "reply",
                                            "callback", "verify", "closed"]
    assert {r["who"] for r in trail[2:6]} == {"u-d"} and trail[-1]["who"] == "u-h"
    from jngis.workorders import check_trail
    assert check_trail(pd.DataFrame([store.get_order(order_id)]), pd.DataFrame(trail)).empty


def test_refusals_name_the_order_and_write_nothing(store, spot):
    order_id = _new(store, spot, category="物业管理")
    before = _table_counts(store)
    with pytest.raises(InvalidTransition, match=f"'{order_id}' is 'received': it cannot go to 'sign'.*"
                                                "allowed next: dispatched, merge"):
        store.step(order_id, "sign")
    with pytest.raises(NotFoundError, match="'370100-XX' is not a department of the registry"):
        store.step(order_id, "dispatched", department_code="370100-XX")
    assert _table_counts(store) == before
    store.step(order_id, "dispatched", department_code=None, at=D(2025, 9, 30, 16, 30))   # to the 街道
    with pytest.raises(InvalidTransition, match="returned only within 2 working days"):
        store.step(order_id, "returned", note="非本单位职责", at=D(2025, 10, 11, 9))
    with pytest.raises(NotFoundError, match="work order 'nope' does not exist"):
        store.step("nope", "sign")
    dept = access.Principal("u-d", "王五", "department", ("370102-CG",))
    with pytest.raises(NotFoundError, match=f"work order '{order_id}' does not exist"):  # outside: no leak
        store.step(order_id, "sign", principal=dept)
    with pytest.raises(ForbiddenError, match="may not take the step 'supervise'"):
        store.step(order_id, "supervise", principal=dept, note="x")
    middle = _table_counts(store)
    store.step(order_id, "extension_request", note="需协调", days=2, at=D(2025, 10, 9, 9))
    with pytest.raises(InvalidTransition, match="extended at most once"):
        store.step(order_id, "extension_request", note="再次", at=D(2025, 10, 9, 10))
    record = store.step(order_id, "extension_decision", granted=False, at=D(2025, 10, 9, 11))
    assert record["extension_decision"] == "refused" and record["extended_days"] is None
    assert _table_counts(store)[1] == middle[1] + 2


def test_return_then_redispatch_and_supervise_on_red(store, spot):
    order_id = _new(store, spot, category="物业管理")
    store.step(order_id, "dispatched", department_code="catalogue", at=D(2025, 10, 9, 9))
    returned = store.step(order_id, "returned", note="非本部门职责", at=D(2025, 10, 10, 9))
    assert returned["status"] == "returned"
    again = store.step(order_id, "dispatched", department_code=None, at=D(2025, 10, 10, 10))
    assert again["department_code"] is None and again["signed_at"] is None
    with pytest.raises(InvalidTransition, match="red card only"):
        store.step(order_id, "supervise", note="请加快", at=D(2025, 10, 11, 10))
    record = store.step(order_id, "supervise", note="请加快", at=D(2025, 10, 20, 10))
    assert record["supervision_due_at"] == D(2025, 10, 22, 10) and record["card"] in ("red", None)


def test_merge_and_rehandle_on_the_store(store, spot):
    master = _new(store, spot, category="噪音扰民")
    duplicate = _new(store, spot, category="噪音扰民", at=D(2025, 9, 30, 16, 20))
    record = store.step(duplicate, "merge", master_id=master, at=D(2025, 9, 30, 17))
    assert record["status"] == "duplicate" and record["master_id"] == master and record["deadline"] is None
    with pytest.raises(InvalidTransition, match="'duplicate': it cannot go to 'dispatched'"):
        store.step(duplicate, "dispatched")
    store.step(master, "dispatched", department_code="catalogue", at=D(2025, 10, 9, 9))
    for action, kwargs in [("sign", {}), ("contact", {}), ("reply", {"note": "已协调"})]:
        store.step(master, action, at=D(2025, 10, 9, 10), **kwargs)
    record = store.step(master, "callback", level="not_satisfied", at=D(2025, 10, 10, 9))
    assert record["status"] == "in_progress" and record["callback"] is None and record["resolved_at"] is None
    assert [r["action"] for r in store.trail(master)][-2:] == ["callback", "rehandle"]


def test_an_old_store_gets_the_department_column(tmp_path, slice_city):
    import shutil
    import sqlite3

    from jngis.sample import SHAPES_DIR, SLICE_FILE
    from jngis.store import open_store

    path = tmp_path / "old.gpkg"
    shutil.copy(SHAPES_DIR / SLICE_FILE, path)
    with open_store(str(path)) as store:
        store.close()
    with sqlite3.connect(path) as conn:  # as a store written before this column
        conn.execute("DROP INDEX orders_department_code")
        conn.execute("ALTER TABLE orders DROP COLUMN department_code")
        conn.execute("DROP TABLE order_loop")
    with open_store(str(path)) as store:
        assert store.orders_frame()["department_code"].isna().all()
        assert store.loop_frame().empty


def test_calls_and_ratings(store, spot):
    order_id = _new(store, spot, category="市场监管")
    district = store.get_order(order_id)["district_code"]
    street_code = store.get_order(order_id)["street_code"]
    store.step(order_id, "dispatched", at=D(2025, 10, 9, 9))
    street = access.Principal("u-s", "李四", "street", (street_code,))
    called = [f"{district}-SJ", f"{district}-GA"]
    with pytest.raises(NotFoundError, match="are not departments of the registry"):
        store.call_departments(["370100-XX"], problem="夜市占道", order_id=order_id, principal=street)
    call = store.call_departments(called, problem="夜市占道经营", order_id=order_id, principal=street,
                                  at=D(2025, 10, 9, 10))
    assert [d["department_code"] for d in call["departments"]] == sorted(called)
    assert store.trail(order_id)[-1]["action"] == "call"
    with pytest.raises(InvalidTransition, match="has not signed yet.*allowed next: sign"):
        store.call_step(call["call_id"], f"{district}-SJ", "contact")
    for step in ("sign", "contact", "done"):
        call = store.call_step(call["call_id"], f"{district}-SJ", step, at=D(2025, 10, 9, 11))
    with pytest.raises(ParameterError, match=f"did not call department '{district}-CG'"):
        store.rate(call["call_id"], f"{district}-CG", 5, principal=street)
    with pytest.raises(ParameterError, match="rating=6"):
        store.rate(call["call_id"], f"{district}-SJ", 6, principal=street)
    call = store.rate(call["call_id"], f"{district}-SJ", 4, note="响应及时", principal=street)
    rated = next(d for d in call["departments"] if d["department_code"] == f"{district}-SJ")
    assert rated["rating"] == 4 and rated["done_at"] == D(2025, 10, 9, 11)
    with pytest.raises(ParameterError, match="already rated"):
        store.rate(call["call_id"], f"{district}-SJ", 5, principal=street)
    standing = store.call_departments([f"{district}-ST"], problem="长期油烟扰民", street_code=street_code,
                                      principal=street)
    assert standing["order_id"] is None
    frame = store.calls_frame()
    assert {call["call_id"], standing["call_id"]} <= set(frame["call_id"])
