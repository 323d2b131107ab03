"""The closed loop, working-day deadlines and the trail (jngis.workorders), no store needed."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jngis.errors import (
    CalendarRangeError,
    CalendarWarning,
    CRSError,
    InputTypeError,
    InvalidTransition,
    ParameterError,
)
from jngis.workorders import (
    CALENDAR,
    LEGACY_ACTIONS,
    STATES,
    TRANSITIONS,
    WorkCalendar,
    allowed_actions,
    check_trail,
    clean_order_rows,
    deadline,
    deadlines,
    next_state,
    plan_creation,
    plan_transition,
    public_order,
    state_from_trail,
    synthetic_trail,
    to_cst,
)

D = dt.datetime


# --------------------------------------------------------------------------- calendar


@pytest.mark.parametrize("day, working", [
    (dt.date(2025, 9, 28), True),    # Sunday, make-up day before National Day
    (dt.date(2025, 10, 1), False),   # National Day
    (dt.date(2025, 10, 8), False),   # last day of the 2025 National Day / Mid-Autumn break
    (dt.date(2025, 10, 11), True),   # Saturday, make-up day
    (dt.date(2025, 10, 12), False),  # an ordinary Sunday
    (dt.date(2025, 1, 26), True),    # Sunday, Spring Festival make-up day
    (dt.date(2025, 2, 8), True),     # Saturday, Spring Festival make-up day
    (dt.date(2025, 1, 29), False),   # Spring Festival
    (dt.date(2026, 1, 4), True),     # Sunday, New Year make-up day 2026
])
def test_official_working_days(day, working):
    assert CALENDAR.is_working_day(day) is working


def test_deadline_across_national_day_and_make_up_days():
    # Dispatched Fri 26 Sep 2025: Sun 28 Sep (make-up), Mon 29, Tue 30 Sep, then the
    # holiday 1-8 Oct, Thu 9, Fri 10 Oct -> due Fri 10 Oct at the same time.
    assert CALENDAR.add_working_days(D(2025, 9, 26, 15, 30), 5) == D(2025, 10, 10, 15, 30)
    # From Tue 30 Sep: 9, 10, Sat 11 (make-up), Mon 13, Tue 14 Oct.
    assert CALENDAR.add_working_days(D(2025, 9, 30, 16), 5) == D(2025, 10, 14, 16)
    # numpy's weekend-only count would say Tue 7 Oct, in the middle of the holiday
    naive = np.busday_offset(np.datetime64("2025-09-30"), 5)
    assert str(naive) == "2025-10-07"


def test_deadline_across_spring_festival():
    # 2025 Spring Festival: 28 Jan - 4 Feb off; Sun 26 Jan and Sat 8 Feb are working days.
    assert CALENDAR.add_working_days(D(2025, 1, 24, 9), 5) == D(2025, 2, 7, 9)
    days = [CALENDAR.add_working_days(D(2025, 1, 24, 9), n).date() for n in range(1, 7)]
    assert days == [dt.date(2025, 1, 26), dt.date(2025, 1, 27), dt.date(2025, 2, 5), dt.date(2025, 2, 6),
                    dt.date(2025, 2, 7), dt.date(2025, 2, 8)]


def test_warning_is_one_working_day_before_due():
    due = D(2025, 10, 13, 15)  # a Monday after the Saturday make-up day
    assert CALENDAR.add_working_days(due, -1) == D(2025, 10, 11, 15)
    due = D(2025, 10, 9, 10)  # the first day after the holiday: warning on the last day before it
    assert CALENDAR.add_working_days(due, -1) == D(2025, 9, 30, 10)


def test_dispatch_on_a_holiday_counts_from_the_next_working_day():
    assert CALENDAR.add_working_days(D(2025, 10, 3, 11), 1) == D(2025, 10, 9, 11)


def test_add_working_days_is_vectorised_and_keeps_nat():
    when = pd.Series(pd.to_datetime(["2025-09-26 15:30", None, "2025-09-30 16:00"]))
    out = CALENDAR.add_working_days(when, 5)
    assert out.iloc[0] == pd.Timestamp("2025-10-10 15:30") and pd.isna(out.iloc[1])
    assert out.iloc[2] == pd.Timestamp("2025-10-14 16:00")


def test_past_the_known_years_raises_by_default():
    last = CALENDAR.last_year
    with pytest.raises(CalendarRangeError, match=rf"outside 2004-{last}.*pip install -U chinese-calendar"):
        CALENDAR.add_working_days(D(last, 12, 28, 9), 10)
    with pytest.raises(CalendarRangeError, match="outside"):
        CALENDAR.is_working_day(dt.date(last + 1, 3, 2))


def test_beyond_weekends_warns_on_every_count_past_the_schedule():
    cal = WorkCalendar(beyond="weekends")
    last = cal.last_year
    with pytest.warns(CalendarWarning, match=f"after {last}.*Monday-Friday only"):
        due = cal.add_working_days(D(last + 1, 3, 5, 9), 5)  # a Friday in most years
    assert due.weekday() < 5 and due > D(last + 1, 3, 5, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cal.add_working_days(D(last, 6, 1, 9), 2)  # inside the schedule: silent


def test_official_dates_can_extend_the_schedule():
    last = CALENDAR.last_year
    new_year = dt.date(last + 1, 1, 1)
    cal = WorkCalendar(holidays=[new_year], last_year=last + 1)
    assert not cal.is_working_day(new_year)
    with pytest.raises(ParameterError, match="beyond='sometimes'"):
        WorkCalendar(beyond="sometimes")
    with pytest.raises(ParameterError, match="days=1.5"):
        CALENDAR.add_working_days(D(2025, 1, 6), 1.5)


@settings(max_examples=60, deadline=None)
@given(st.dates(dt.date(2004, 1, 5), dt.date(2025, 12, 1)), st.integers(1, 15), st.integers(0, 86399))
def test_counting_forward_then_back_lands_on_a_working_day_before(day, n, seconds):
    start = D.combine(day, dt.time()) + dt.timedelta(seconds=seconds)
    due = CALENDAR.add_working_days(start, n)
    assert CALENDAR.is_working_day(due.date()) and due.time() == start.time() and due.date() > day
    between = pd.date_range(day + dt.timedelta(days=1), due.date())
    assert sum(CALENDAR.is_working_day(d) for d in between) == n
    assert CALENDAR.add_working_days(due, -n).date() <= day


# --------------------------------------------------------------------------- transitions

ALL_PAIRS = [(state, action) for state in STATES for action in LEGACY_ACTIONS]


@pytest.mark.parametrize("state, action", ALL_PAIRS)
def test_every_transition_and_its_refusal(state, action):
    order = {"order_id": "W7", "status": state, "due_at": D(2025, 10, 10, 15), "extended_days": None}
    kwargs = {"note": "原因"} if action in ("returned", "reopened", "extended") else {}
    if action in TRANSITIONS[state]:
        changes, row = plan_transition(order, action, who="tester", at=D(2025, 10, 9, 10), **kwargs)
        assert changes["status"] == TRANSITIONS[state][action] == row["to_state"]
        assert row["from_state"] == state and row["action"] == action and row["who"] == "tester"
    else:
        allowed = ", ".join(TRANSITIONS[state]) or "none"
        with pytest.raises(InvalidTransition, match=rf"'W7' is '{state}': it cannot go to '{action}'.*{allowed}"):
            plan_transition(order, action, who="tester", at=D(2025, 10, 9, 10), **kwargs)


def test_the_closed_loop_table():
    assert allowed_actions("received") == ("dispatched", "merge")
    assert next_state("W", "dispatched", "returned") == "returned"
    assert next_state("W", "returned", "dispatched") == "dispatched"
    assert next_state("W", "resolved", "reopened") == "in_progress"
    assert allowed_actions("closed") == ()
    with pytest.raises(ParameterError, match="to='done' is not a work-order step"):
        next_state("W", "received", "done")
    with pytest.raises(ParameterError, match="state='lost'"):
        allowed_actions("lost")


@pytest.mark.parametrize("action, state", [("returned", "dispatched"), ("reopened", "resolved"),
                                           ("extended", "in_progress")])
def test_reason_required(action, state):
    order = {"order_id": "W1", "status": state, "due_at": D(2025, 10, 10, 15), "extended_days": None}
    with pytest.raises(ParameterError, match="note is missing"):
        plan_transition(order, action, who="x", at=D(2025, 10, 9, 10))
    with pytest.raises(ParameterError, match="note='' is empty"):
        plan_transition(order, action, who="x", at=D(2025, 10, 9, 10), note="  ")


def test_extension_once_up_to_ten_working_days():
    order = {"order_id": "W1", "status": "in_progress", "due_at": D(2025, 9, 30, 9), "extended_days": None}
    changes, _ = plan_transition(order, "extended", who="x", note="协调", at=D(2025, 9, 29, 9))
    # 10 working days after Tue 30 Sep: 9, 10, 11 (Sat), 13-17, 20, 21 Oct
    assert changes["due_at"] == D(2025, 10, 21, 9) and changes["extended_days"] == 10
    assert changes["warn_at"] == D(2025, 10, 20, 9)
    with pytest.raises(ParameterError, match="days=11; expected a whole number of working days from 1 to 10"):
        plan_transition(order, "extended", who="x", note="协调", days=11)
    with pytest.raises(ParameterError, match="days=0"):
        plan_transition(order, "extended", who="x", note="协调", days=0)
    twice = {**order, "extended_days": 3}
    with pytest.raises(InvalidTransition, match="already extended once, by 3 working days.*resolved, returned"):
        plan_transition(twice, "extended", who="x", note="再次延期")


def test_dispatch_and_reopen_restart_the_five_day_clock():
    order = {"order_id": "W1", "status": "received", "due_at": None, "extended_days": None}
    changes, _ = plan_transition(order, "dispatched", who="x", at=D(2025, 9, 26, 15, 30))
    assert changes["due_at"] == D(2025, 10, 10, 15, 30) and changes["dispatched_at"] == D(2025, 9, 26, 15, 30)
    resolved = {**order, "status": "resolved"}
    changes, _ = plan_transition(resolved, "reopened", who="回访员", note="群众不满意", at=D(2025, 10, 9, 9))
    assert changes["status"] == "in_progress" and changes["due_at"] == D(2025, 10, 15, 9)  # 10, 11 (Sat), 13, 14, 15
    assert changes["resolved_at"] is None and changes["satisfied"] is False


def test_step_parameters_are_checked():
    order = {"order_id": "W1", "status": "resolved", "due_at": D(2025, 10, 10), "extended_days": None}
    with pytest.raises(ParameterError, match="before the order's last step"):
        plan_transition(order, "closed", who="x", at=D(2025, 10, 1), last_at=D(2025, 10, 2))
    with pytest.raises(ParameterError, match="days=3 is only for the 'extended' step"):
        plan_transition(order, "closed", who="x", days=3)
    with pytest.raises(ParameterError, match="satisfied=True is only for the 'closed' step"):
        plan_transition(order, "reopened", who="x", note="n", satisfied=True)
    with pytest.raises(ParameterError, match="who is missing"):
        plan_transition(order, "closed", who=None)
    with pytest.raises(InputTypeError, match="who is a int"):
        plan_transition(order, "closed", who=5)
    changes, _ = plan_transition(order, "closed", who="x", satisfied=True, at=D(2025, 10, 3))
    assert changes["satisfied"] is True and changes["closed_at"] == D(2025, 10, 3)


def test_creation_sets_the_due_time():
    fields, row = plan_creation(category="环境卫生", description=None, who="话务员", at="2025-09-30 16:00")
    assert fields["due_at"] == D(2025, 10, 14, 16) and fields["warn_at"] == D(2025, 10, 13, 16)
    assert row == {"action": "received", "from_state": None, "to_state": "received", "who": "话务员",
                   "at": D(2025, 9, 30, 16), "note": None}
    with pytest.raises(ParameterError, match="category is missing"):
        plan_creation(category=None, description=None, who="x")
    with pytest.raises(ParameterError, match="at='yesterday' is not a time"):
        plan_creation(category="c", description=None, who="x", at="yesterday")


def test_aware_times_become_china_standard_time():
    assert to_cst(pd.Timestamp("2025-10-01 00:30", tz="UTC")) == D(2025, 10, 1, 8, 30)


# --------------------------------------------------------------------------- deadlines, trail


def test_deadline_states():
    due, warn = D(2025, 10, 13, 15), D(2025, 10, 11, 15)
    assert deadline("dispatched", due, warn, now=D(2025, 10, 10, 23)) == "ok"
    assert deadline("dispatched", due, warn, now=D(2025, 10, 11, 15)) == "warning"
    assert deadline("dispatched", due, warn, now=D(2025, 10, 13, 15)) == "warning"
    assert deadline("dispatched", due, warn, now=D(2025, 10, 13, 15, 0, 1)) == "overdue"
    assert deadline("closed", due, warn, D(2025, 10, 12), now=D(2025, 11, 1)) == "met"
    assert deadline("resolved", due, warn, D(2025, 10, 14), now=D(2025, 11, 1)) == "late"
    assert deadline("received", None, None, now=D(2025, 11, 1)) is None
    frame = pd.DataFrame({"status": ["dispatched", "dispatched", "closed", "received"],
                          "due_at": [due, due, due, None], "warn_at": [warn, warn, warn, None],
                          "resolved_at": [None, None, D(2025, 10, 14), None]})
    out = deadlines(frame, now=D(2025, 10, 12, 9))
    assert out.tolist() == ["warning", "warning", "late", None]


def test_state_is_derivable_from_the_trail():
    rows = [{"action": a} for a in ("received", "dispatched", "returned", "dispatched", "in_progress",
                                    "extended", "resolved", "reopened", "resolved", "closed")]
    assert state_from_trail(rows) == "closed"
    with pytest.raises(InvalidTransition, match="'received': it cannot go to 'resolved'"):
        state_from_trail([{"action": "received"}, {"action": "resolved"}], "W9")
    with pytest.raises(ParameterError, match="starts with 'dispatched'"):
        state_from_trail([{"action": "dispatched"}])


def test_synthetic_trail_replays_to_every_sample_status(slice_city):
    orders = slice_city.workorders
    trail = synthetic_trail(orders)
    assert set(orders["status"]) >= {"closed", "in_progress"}
    assert check_trail(orders, trail).empty
    assert (trail.groupby("order_id")["at"].apply(lambda s: s.is_monotonic_increasing)).all()
    first_closed = orders.index[orders["status"] == "closed"][0]
    broken = orders.copy()
    broken.loc[first_closed, "status"] = "in_progress"
    problems = check_trail(broken, trail)
    assert problems["order_id"].tolist() == [orders.loc[first_closed, "order_id"]]
    assert problems["replayed"].tolist() == ["closed"]


def test_public_order_never_shows_personal_data():
    record = {"order_id": "W1", "status": "received", "caller_name": "张三", "caller_phone": "13800000000",
              "due_at": D(2025, 10, 10), "warn_at": D(2025, 10, 9), "resolved_at": None}
    shown = public_order(record, now=D(2025, 10, 1))
    assert "caller_name" not in shown and "caller_phone" not in shown
    assert "13800000000" not in repr(shown) and shown["deadline"] == "ok"


# --------------------------------------------------------------------------- rows of an import


def test_clean_order_rows_reports_every_bad_row():
    table = pd.DataFrame({
        "lon": ["117.02", "", "abc", "200", "117.01", "117.03", "117.04"],
        "lat": ["36.66", "36.6", "36.6", "36.6", "36.65", "36.67", "36.68"],
        "category": ["环境卫生", "环境卫生", "环境卫生", "环境卫生", "", "噪音扰民", "噪音扰民"],
        "received_at": ["2025-10-09 09:00", "", "", "", "", "tomorrow", ""],
        "order_id": ["A1", "", "", "", "", "", "A1"],
    }, index=pd.RangeIndex(2, 9, name="row"))
    good, bad = clean_order_rows(table)
    assert good.index.tolist() == [2]
    assert dict(zip(bad["row"], bad["reason"])) == {
        3: "lon is missing",
        4: "lon 'abc' is not a number",
        5: "lon 200 is outside -180..180 degrees",
        6: "category is missing",
        7: "received_at 'tomorrow' is not a time",
        8: "order_id A1 appears earlier in the file",
    }
    assert good["received_at"].iloc[0] == pd.Timestamp("2025-10-09 09:00")


def test_clean_order_rows_converts_gcj02_and_bd09():
    from jngis.crs import wgs84_to_bd09, wgs84_to_gcj02

    lon, lat = 117.02, 36.66
    for crs, convert in (("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09)):
        shifted = convert(lon, lat)
        table = pd.DataFrame({"lon": [str(shifted[0])], "lat": [str(shifted[1])], "category": ["c"]}, index=[2])
        good, _ = clean_order_rows(table, crs=crs)
        assert abs(good["lon"].iloc[0] - lon) < 1e-8 and abs(good["lat"].iloc[0] - lat) < 1e-8
    with pytest.raises(CRSError, match="crs='gps'.*expected one of 'wgs84'"):
        clean_order_rows(table, crs="gps")


def test_check_trail_catches_a_lost_update():
    # two writers both dispatched the order from 'received': the second row does not start
    # where the first ended, which is what a lost update leaves behind
    trail = pd.DataFrame({"order_id": ["A", "A", "A", "B"],
                          "action": ["received", "dispatched", "dispatched", "dispatched"],
                          "from_state": [None, "received", "received", "received"],
                          "to_state": ["received", "dispatched", "dispatched", "dispatched"]})
    orders = pd.DataFrame({"order_id": ["A", "B", "C"], "status": ["dispatched", "dispatched", "received"]})
    problems = check_trail(orders, trail).set_index("order_id")["problem"]
    assert "'received' -dispatched-> 'dispatched' is not a legal step" in problems["A"]
    assert "starts with 'dispatched'" in problems["B"]
    assert problems["C"] == "no trail"


# --------------------------------------------------------------------------- one vocabulary


def test_personal_fields_follow_the_one_definition():
    from jngis import codes
    from jngis.workorders import PERSONAL_FIELDS, PUBLIC_FIELDS

    assert PERSONAL_FIELDS and all(codes.is_personal(field, "workorders") for field in PERSONAL_FIELDS)
    assert set(PERSONAL_FIELDS) <= set(codes.PERSONAL_COLUMNS)
    assert codes.personal_columns(PUBLIC_FIELDS, "workorders") == []


def test_input_crs_and_state_groups_come_from_the_vocabulary():
    from jngis import codes, layers
    from jngis.workorders import FINISHED_STATES, INPUT_CRS, OPEN_STATES

    assert tuple(INPUT_CRS) == codes.INPUT_CRS_NAMES
    assert codes.STATES is STATES and codes.FINISHED_STATES is FINISHED_STATES
    assert codes.OPEN_STATES is OPEN_STATES
    assert tuple(layers.WORKORDER_STATES) == STATES


def test_the_state_table_imports_nothing_that_imports_it():
    # jngis.layers takes the states from here: no module of the package may import
    # jngis.layers, and the state table imports nothing from jngis but the errors
    import ast
    from pathlib import Path

    import jngis.workorders

    def jngis_imports(path: Path) -> set[str]:
        names = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jngis"):
                names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {a.name for a in node.names if a.name.startswith("jngis")}
        return names

    package = Path(jngis.workorders.__file__).parent
    for module in package.glob("*.py"):
        assert not {n for n in jngis_imports(module) if "layers" in n.split(".")}, module.name
    assert {n.split(".")[1] for n in jngis_imports(package / "states.py")} == {"errors"}
