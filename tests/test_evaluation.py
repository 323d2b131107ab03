"""The monthly evaluation (jngis.evaluation) and the departments registry (jngis.workorders.departments)."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

import numpy as np
import openpyxl
import pandas as pd
import pytest

import jngis
from jngis.errors import JngisError, NotFoundError, ParameterError, SchemaError
from jngis.evaluation import COUNT_COLUMNS, RANKINGS, RATE_COLUMNS, evaluate, to_excel
from jngis.workorders import (
    check_catalogue,
    check_departments,
    dispatch,
    read_catalogue,
    read_departments,
    sample_catalogue,
    sample_departments,
    synthetic_trail,
)

PERIOD, PREVIOUS = "2026-10", "2026-09"


@pytest.fixture(scope="module")
def city():
    return jngis.load_sample()


@pytest.fixture(scope="module")
def loop(city):
    """Two months of the sample's orders placed in grids, and a trail with some extensions."""
    orders = city.workorders
    orders = orders[orders["received_at"] >= pd.Timestamp(PREVIOUS + "-01")].reset_index(drop=True)
    orders = orders.assign(grid_code=jngis.assign(orders, city.grids).to_numpy())
    trail = synthetic_trail(orders)
    assert {"sign", "supervise", "rehandle"} <= set(trail["action"])  # the sample's department loop
    # extend every 7th order that was taken in hand (联系 or the hotline's 处理中), right when it was
    # (same time: after it, before the rest)
    taken = trail[trail["action"].isin(["in_progress", "contact"])].iloc[::7]
    extended = taken.assign(action="extended", from_state="in_progress", to_state="in_progress", note="延期")
    trail = pd.concat([trail, extended], ignore_index=True).sort_values(["order_id", "at"], kind="stable")
    return orders, trail.reset_index(drop=True)


@pytest.fixture(scope="module")
def street_report(city, loop):
    orders, trail = loop
    return evaluate(orders, trail, period=PERIOD, level="street", names=city.streets)


# --------------------------------------------------------------------------- brute force


def _brute_force(orders, trail, start, end, unit_of):
    """Every figure per unit with plain Python loops over the orders and the trail."""
    rows = defaultdict(list)
    for order_id, action, state, at in zip(trail["order_id"], trail["action"], trail["to_state"], trail["at"]):
        rows[order_id].append((action, state, at))
    counts = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    hours = defaultdict(list)
    for order in orders.itertuples(index=False):
        if not (start <= order.received_at < end):
            continue
        unit = unit_of(order)
        before = [r for r in rows[order.order_id] if r[2] < end]
        state = before[-1][1]
        resolves = [r[2] for r in before if r[0] in ("resolved", "reply")]
        figures = counts[unit]
        signs = [i for i, r in enumerate(before) if r[0] == "sign"]
        if signs:
            dispatched = [r[2] for r in before[:signs[0]] if r[0] == "dispatched"][-1]
            limit = (dispatched + pd.Timedelta(hours=1) if order.category in DEFAULT_RULES.emergency_categories
                     else CALENDAR.add_working_hours(dispatched.to_pydatetime(), 1))
            figures["signed"] += 1
            figures["signed_on_time"] += before[signs[0]][2] <= limit
        figures["supervised"] += any(r[0] == "supervise" for r in before)
        figures["rehandled"] += any(r[0] in ("rehandle", "reopened") for r in before)
        figures["received"] += 1
        if state in ("resolved", "closed") and resolves:
            figures["resolved"] += 1
            figures["resolved_on_time"] += resolves[-1] <= order.due_at
            hours[unit].append((resolves[-1] - order.received_at).total_seconds() / 3600)
        if state == "closed":
            figures["closed"] += 1
            answer = getattr(order, "callback", None)  # the answer (回访), else the two-level column
            if answer is None or answer != answer:
                answer = None if order.satisfied is None or order.satisfied != order.satisfied else (
                    "satisfied" if order.satisfied else "not_satisfied")
            if answer is not None:
                figures["callback"] += 1
                figures["dissatisfied" if answer == "not_satisfied" else "satisfied"] += 1
        figures["overdue_now"] += state not in ("resolved", "closed") and order.due_at < end
        figures["returned"] += any(r[0] == "returned" for r in before)
        figures["extended"] += any(r[0] == "extended" for r in before)
    return counts, hours


def test_figures_match_brute_force(loop, street_report):
    orders, trail = loop
    start, end = pd.Timestamp(PERIOD + "-01"), pd.Timestamp("2026-11-01")
    counts, hours = _brute_force(orders, trail, start, end, lambda o: o.grid_code[:9])
    figures = street_report.figures
    assert sorted(figures.index) == sorted(counts)
    for unit, expected in counts.items():
        assert figures.loc[unit, list(COUNT_COLUMNS)].astype(int).to_dict() == expected, unit
        for rate, (numerator, denominator) in RATE_COLUMNS.items():
            want = expected[numerator] / expected[denominator] if expected[denominator] else math.nan
            got = figures.loc[unit, rate]
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), (unit, rate)
        want = statistics.median(hours[unit]) if hours[unit] else math.nan
        got = figures.loc[unit, "median_hours_to_resolve"]
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), unit
    # the planted extensions and the sample's returns are counted
    assert figures["extended"].sum() > 0 and figures["received"].sum() == len(
        orders[(orders["received_at"] >= start) & (orders["received_at"] < end)])


def test_totals_roll_up_exactly(loop, street_report):
    orders, trail = loop
    counts = list(COUNT_COLUMNS)
    district = evaluate(orders, trail, period=PERIOD, level="district")
    by_district = street_report.figures[counts].groupby(street_report.figures.index.str[:6]).sum()
    pd.testing.assert_frame_equal(by_district.sort_index(), district.figures[counts].sort_index(),
                                  check_names=False, check_index_type=False)
    community = evaluate(orders, trail, period=PERIOD, level="community")
    by_street = community.figures[counts].groupby(community.figures.index.str[:9]).sum()
    pd.testing.assert_frame_equal(by_street.sort_index(), street_report.figures[counts].sort_index(),
                                  check_names=False, check_index_type=False)
    grid = evaluate(orders, trail, period=PERIOD, level="grid")
    for report in (district, community, grid):
        pd.testing.assert_series_equal(report.totals, street_report.totals)
    totals = street_report.totals
    assert totals["satisfaction_rate"] == totals["satisfied"] / totals["callback"]


def test_department_level_uses_the_catalogue(city, loop, street_report):
    orders, trail = loop
    registry = sample_departments(city.districts)
    catalogue = sample_catalogue(registry)
    report = evaluate(orders, trail, period=PERIOD, level="department", departments=registry, catalogue=catalogue)
    pd.testing.assert_series_equal(report.totals, street_report.totals)
    assert set(report.figures.index) <= set(registry["code"])
    assert report.figures.loc["370102-CG", "name"] == "历下区城市管理局"
    table = {(c, d): code for c, d, code in catalogue.itertuples(index=False)}
    counts, _ = _brute_force(orders, trail, pd.Timestamp(PERIOD + "-01"), pd.Timestamp("2026-11-01"),
                             lambda o: table[o.category, o.grid_code[:6]])
    for unit in ("370102-CG", "3701-SZ", "U-RL"):
        assert report.figures.loc[unit, list(COUNT_COLUMNS)].astype(int).to_dict() == counts[unit]
    # an order's own department_code wins over the catalogue
    first = orders.index[orders["received_at"] >= pd.Timestamp(PERIOD + "-01")][0]
    given = orders.assign(department_code=None)
    given.loc[first, "department_code"] = "U-RQ"
    moved = evaluate(given, trail, period=PERIOD, level="department", catalogue=catalogue)
    assert moved.figures.loc["U-RQ", "received"] == 1
    with pytest.raises(ParameterError, match="catalogue"):
        evaluate(orders, trail, period=PERIOD, level="department")


def test_minimum_rule(loop, street_report):
    orders, trail = loop
    figures = street_report.figures
    small = set(figures.index[figures["received"] < 10])
    assert small and set(street_report.unranked["unit"]) == small
    assert not street_report.rankings["sign_rate"].empty  # the sample's history has 签收 steps
    for rate, table in street_report.rankings.items():
        assert not small & set(table["unit"])
        eligible = figures[(figures["received"] >= 10) & figures[rate].notna()]
        assert len(table) == len(eligible)
        ordered = table[rate].to_numpy()
        assert (np.diff(ordered) <= 0).all() if RANKINGS[rate] else (np.diff(ordered) >= 0).all()
        assert table["rank"].iloc[0] == 1
    strict = evaluate(orders, trail, period=PERIOD, level="street", minimum=200)
    assert len(strict.rankings["on_time_rate"]) == (figures["received"] >= 200).sum()


def test_month_on_month(loop, street_report):
    orders, trail = loop
    before = evaluate(orders, trail, period=PREVIOUS, level="street")
    for rate, table in street_report.rankings.items():
        if table.empty:
            continue
        row = table.iloc[5]
        assert row["previous"] == pytest.approx(before.figures.loc[row["unit"], rate])
        assert row["change"] == pytest.approx(row[rate] - row["previous"])
        previous_rank = before.rankings[rate].set_index("unit")["rank"]
        assert row["previous_rank"] == previous_rank[row["unit"]]
        assert row["rank_change"] == row["previous_rank"] - row["rank"]
    pd.testing.assert_frame_equal(street_report.previous.drop(columns="name"), before.figures)


def test_as_of_period_end(loop):
    """A September order resolved in October counts as open (maybe overdue) in September's report."""
    orders, trail = loop
    september = evaluate(orders, trail, period=PREVIOUS, level="district").totals
    in_september = orders[orders["received_at"] < pd.Timestamp("2026-10-01")]
    october = pd.Timestamp("2026-10-01")
    ours = trail[trail["order_id"].isin(in_september["order_id"])]
    first_reply = ours[ours["action"].isin(["resolved", "reply"])].drop_duplicates("order_id")
    assert (first_reply["at"] >= october).sum() > 0
    # as of 1 October: the state of each order's last row before it (a re-handled order reopened in
    # September is open again, one whose first reply came in October was never resolved)
    state = ours[ours["at"] < october].groupby("order_id", sort=False)["to_state"].last()
    finished = int(state.isin(["resolved", "closed"]).sum())
    assert september["resolved"] == finished < in_september["status"].isin(["resolved", "closed"]).sum()


@pytest.mark.parametrize("kwargs, error, words", [
    ({"level": "province"}, ParameterError, "level='province'"),
    ({"period": "2026-13"}, ParameterError, "period='2026-13'"),
    ({"period": "Oct 2026"}, ParameterError, "YYYY-MM"),
    ({"period": 202610}, ParameterError, "period=202610"),
    ({"minimum": 0}, ParameterError, "minimum=0"),
])
def test_bad_parameters(loop, kwargs, error, words):
    orders, trail = loop
    with pytest.raises(error, match=words.replace("(", r"\(")):
        evaluate(orders, trail, **{"period": PERIOD, **kwargs})


def test_bad_tables(loop):
    orders, trail = loop
    with pytest.raises(SchemaError, match=r"orders lacks column\(s\) \['due_at'\]"):
        evaluate(orders.drop(columns="due_at"), trail, period=PERIOD)
    with pytest.raises(SchemaError, match=r"trail lacks column\(s\) \['to_state'\]"):
        evaluate(orders, trail.drop(columns="to_state"), period=PERIOD)
    with pytest.raises(SchemaError, match="code column for level='street'"):
        evaluate(orders.drop(columns="grid_code"), trail, period=PERIOD)
    with pytest.raises(SchemaError, match="received_at"):
        evaluate(orders.assign(received_at="yesterday"), trail, period=PERIOD)
    with pytest.raises(SchemaError, match="callback"):
        evaluate(orders.assign(callback="happy"), trail, period=PERIOD)
    with pytest.raises(SchemaError, match="repeats"):
        evaluate(pd.concat([orders, orders.head(1)]), trail, period=PERIOD)
    with pytest.raises(JngisError, match="DataFrame"):
        evaluate(orders.to_dict(), trail, period=PERIOD)


def test_unplaced_orders_warn_and_stay_out(loop):
    orders, trail = loop
    lost = orders.copy()
    lost.loc[lost.index[-3:], "grid_code"] = None
    with pytest.warns(jngis.errors.UnassignedPointsWarning, match="have no street"):
        report = evaluate(lost, trail, period=PERIOD)
    assert report.unplaced == 3


def test_excel_report(street_report, tmp_path):
    path = to_excel(street_report, tmp_path / "evaluation.xlsx")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["按时办结率", "结案率", "满意率", "不满意率", "按时签收率", "全部指标", "未排名"]
    sheet = book["满意率"]
    headings = [c.value for c in sheet[1]]
    assert headings[:4] == ["排名", "单位", "名称", "满意率"] and "环比变化" in headings and "名次变化" in headings
    assert len(sheet._charts) == 1
    assert sheet.cell(row=2, column=4).number_format == "0.0%"
    assert sheet.max_row == len(street_report.rankings["satisfaction_rate"]) + 1
    assert [c.value for c in book["全部指标"][1]][:3] == ["单位", "名称", "受理量"]
    with pytest.raises(JngisError, match="Evaluation"):
        to_excel({"not": "a report"}, tmp_path / "x.xlsx")


# --------------------------------------------------------------------------- departments


def test_sample_departments_cover_the_sample(city):
    registry = sample_departments(city.districts)
    assert {"district", "city", "utility"} == set(registry["kind"])
    assert registry["code"].is_unique
    catalogue = sample_catalogue(registry)
    pairs = set(zip(catalogue["category"], catalogue["district_code"]))
    assert pairs == {(c, d) for c in city.workorders["category"].unique() for d in city.districts["district_code"]}
    assert dispatch(catalogue, "供水供暖", "370102") == "U-RL"
    assert dispatch(catalogue, "供水供暖", "370116") == "U-LWRL"
    assert dispatch(catalogue, "道路交通", "370126") == "3701-JJ"
    with pytest.raises(NotFoundError, match="category='天气'"):
        dispatch(catalogue, "天气", "370102")


def test_departments_files_round_trip(city, tmp_path):
    registry = sample_departments(city.districts)
    catalogue = sample_catalogue(registry)
    written = registry.assign(districts=registry["districts"].map(";".join))
    written.to_csv(tmp_path / "departments.csv", index=False)
    written.to_excel(tmp_path / "departments.xlsx", index=False)
    catalogue.to_csv(tmp_path / "catalogue.csv", index=False)
    catalogue.to_excel(tmp_path / "catalogue.xlsx", index=False)
    for suffix in ("csv", "xlsx"):
        back = read_departments(tmp_path / f"departments.{suffix}")
        pd.testing.assert_frame_equal(back, registry)
        pd.testing.assert_frame_equal(read_catalogue(tmp_path / f"catalogue.{suffix}", back), catalogue)
    with pytest.raises(NotFoundError, match="does not exist"):
        read_departments(tmp_path / "none.csv")
    (tmp_path / "departments.txt").write_text("x")
    with pytest.raises(ParameterError, match="suffix"):
        read_departments(tmp_path / "departments.txt")


@pytest.mark.parametrize("change, words", [
    ({"kind": "bureau"}, "row 2, column 'kind' is 'bureau'"),
    ({"code": "370102-CG"}, "row 2, column 'code' is '370102-CG'; expected a code not used before (row 1"),
    ({"districts": "3701"}, "row 2, column 'districts' is '3701'"),
    ({"name": ""}, "row 2, column 'name'"),
])
def test_bad_departments(change, words):
    registry = sample_departments(pd.DataFrame({"district_code": ["370102"], "name": ["历下区"]}))
    bad = registry.copy()
    for column, value in change.items():
        bad[column] = bad[column].astype(object)
        bad.at[1, column] = value
    with pytest.raises(SchemaError, match=words.replace("(", r"\(")):
        check_departments(bad)


@pytest.mark.parametrize("row, words", [
    (("环境卫生", "370102", "NOPE"), "row 2, column 'department_code' is 'NOPE'; expected a department"),
    (("环境卫生", "370102", "U-LWRL"), "expected a department serving district 370102"),
    (("环境卫生", "37010", "370102-CG"), "row 2, column 'district_code' is '37010'"),
    (("环境卫生", "370116", "370116-CG"), "one row per \\(category, district\\); row 1"),
])
def test_bad_catalogue(row, words):
    districts = pd.DataFrame({"district_code": ["370102", "370116"], "name": ["历下区", "莱芜区"]})
    registry = sample_departments(districts)
    catalogue = pd.DataFrame([("环境卫生", "370116", "370116-CG"), row],
                             columns=["category", "district_code", "department_code"])
    with pytest.raises(SchemaError, match=words):
        check_catalogue(catalogue, registry)


# --------------------------------------------------------------------------- the department loop

from jngis.errors import InvalidTransition  # noqa: E402
from jngis.evaluation import to_html, trend  # noqa: E402
from jngis.workorders import CALENDAR, DEFAULT_RULES, allowed_actions, plan_creation, plan_step  # noqa: E402

_CATEGORIES = ("环境卫生", "物业管理", "供水供暖", "噪音扰民")
_UNITS = ("370102-CG", "370102-ZJ", "370103-CG", "U-RL")
_OPTIONS = {"returned": {"note": "退"}, "reply": {"note": "复"}, "extension_request": {"note": "延", "days": 3},
            "supervise": {"note": "督"}, "call": {"note": "呼"}, "reopened": {"note": "重"},
            "extended": {"note": "延"}}


def _walk(rng, order, loop, trail, previous):
    """A random legal walk of one order through the loop (refused steps skipped)."""
    at = pd.Timestamp(order["received_at"])
    for _ in range(int(rng.integers(0, 14))):
        steps = [a for a in allowed_actions(order["status"]) if a != "merge" or previous is not None]
        action = steps[int(rng.integers(len(steps)))] if steps else None
        if action is None:
            break
        at = at + pd.Timedelta(hours=float(rng.choice([0.3, 0.9, 2, 20, 60])))
        kwargs = dict(_OPTIONS.get(action, {}))
        kwargs.update({"dispatched": {"department_code": str(rng.choice(_UNITS)), "departments": set(_UNITS)},
                       "extension_decision": {"granted": bool(rng.integers(2))},
                       "callback": {"level": str(rng.choice(["satisfied", "basically_satisfied", "not_satisfied"]))},
                       "verify": {"passed": bool(rng.integers(4))}, "merge": {"master": previous}}.get(action, {}))
        try:
            changes, more, rows = plan_step(order, loop, action, who="t", at=at.to_pydatetime(), **kwargs)
        except (InvalidTransition, ParameterError):
            continue
        order.update(changes)
        loop.update(more)
        trail.extend({"order_id": order["order_id"], **row} for row in rows)


@pytest.fixture(scope="module")
def generated():
    """500 orders walked at random through every step of the department loop (Sep-Oct 2026), and calls."""
    rng = np.random.default_rng(16)
    orders, trail, previous = [], [], None
    for i in range(500):
        received = pd.Timestamp("2026-09-01") + pd.Timedelta(hours=float(rng.uniform(0, 61 * 24)))
        fields, first = plan_creation(category=str(rng.choice(_CATEGORIES)), description=None, who="t",
                                      at=received.floor("s"))
        order = {"order_id": f"G{i:03d}", **fields, "updated_at": fields["received_at"]}
        loop: dict = {}
        trail.append({"order_id": order["order_id"], **first})
        _walk(rng, order, loop, trail, previous if previous and previous["category"] == order["category"] else None)
        orders.append({**order, "callback": loop.get("callback"), "extension_decision": loop.get(
            "extension_decision"), "street_code": "370102003" if i % 2 else "370103001",
            "department_code": order.get("department_code") or _UNITS[i % 4]})
        previous = order if order["status"] not in ("duplicate", "closed") else previous
    frame = pd.DataFrame(orders)
    for column in ("received_at", "due_at"):
        frame[column] = pd.to_datetime(frame[column])
    trail = pd.DataFrame(trail)
    trail["at"] = pd.to_datetime(trail["at"])
    calls = pd.DataFrame({"department_code": rng.choice(_UNITS, 80),
                          "called_at": pd.Timestamp("2026-09-20") + pd.to_timedelta(rng.uniform(0, 40, 80), unit="D"),
                          "rating": pd.array(np.where(rng.uniform(size=80) < 0.8, rng.integers(1, 6, 80), -1),
                                             dtype="Int64").map(lambda r: pd.NA if r == -1 else r)})
    calls["rated_at"] = calls["called_at"] + pd.to_timedelta(rng.uniform(0, 10, 80), unit="D")
    return frame, trail, calls


def _brute_loop(orders, trail, calls, start, end):
    """The department loop's figures per department with plain loops."""
    rows = defaultdict(list)
    for row in trail.itertuples(index=False):
        rows[row.order_id].append(row)
    counts = defaultdict(lambda: dict.fromkeys(COUNT_COLUMNS, 0))
    to_sign = defaultdict(list)
    for order in orders.itertuples(index=False):
        before = [r for r in rows[order.order_id] if r.at < end]
        if not (start <= order.received_at < end) or before[-1].to_state == "duplicate":
            continue
        unit = order.department_code
        figures, actions = counts[unit], [r.action for r in before]
        figures["received"] += 1
        state, resolves = before[-1].to_state, [r.at for r in before if r.action in ("resolved", "reply")]
        if state in ("resolved", "closed") and resolves:
            figures["resolved"] += 1
            figures["resolved_on_time"] += resolves[-1] <= order.due_at
        if state == "closed" and isinstance(order.callback, str):
            figures["callback"] += 1
            figures["satisfied" if order.callback != "not_satisfied" else "dissatisfied"] += 1
        figures["closed"] += state == "closed"
        figures["overdue_now"] += state not in ("resolved", "closed") and order.due_at < end
        figures["returned"] += "returned" in actions
        figures["extended"] += "extended" in actions or ("extension_decision" in actions
                                                         and order.extension_decision == "granted")
        figures["supervised"] += "supervise" in actions
        figures["rehandled"] += "rehandle" in actions or "reopened" in actions
        if "sign" in actions:
            first = actions.index("sign")
            dispatched = [r.at for r in before[:first] if r.action == "dispatched"][-1]
            limit = (dispatched + pd.Timedelta(hours=1) if order.category in DEFAULT_RULES.emergency_categories
                     else CALENDAR.add_working_hours(dispatched.to_pydatetime(), 1))
            figures["signed"] += 1
            figures["signed_on_time"] += before[first].at <= limit
            to_sign[unit].append((before[first].at - dispatched).total_seconds() / 3600)
    for row in calls.itertuples(index=False):
        if start <= row.called_at < end and row.rated_at < end and not pd.isna(row.rating):
            counts[row.department_code]["ratings"] += 1
            counts[row.department_code]["rating_sum"] += int(row.rating)
    return counts, to_sign


@pytest.mark.parametrize("period", ["2026-09", "2026-10"])
def test_department_loop_figures_match_brute_force(generated, period):
    orders, trail, calls = generated
    start = pd.Timestamp(period + "-01")
    end = start + pd.DateOffset(months=1)
    report = evaluate(orders, trail, period=period, level="department", calls=calls, minimum=1)
    counts, to_sign = _brute_loop(orders, trail, calls, start, end)
    assert sorted(report.figures.index) == sorted(counts)
    for unit, expected in counts.items():
        assert report.figures.loc[unit, list(COUNT_COLUMNS)].astype(int).to_dict() == expected, unit
        for rate, (numerator, denominator) in RATE_COLUMNS.items():
            want = expected[numerator] / expected[denominator] if expected[denominator] else math.nan
            got = report.figures.loc[unit, rate]
            assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), (unit, rate)
        want = statistics.median(to_sign[unit]) if to_sign[unit] else math.nan
        got = report.figures.loc[unit, "median_hours_to_sign"]
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), unit
    totals = report.totals
    for column in ("signed", "signed_on_time", "supervised", "rehandled", "ratings", "extended", "returned"):
        assert totals[column] > 0, column  # the walk reached every step
    assert totals["signed_on_time"] < totals["signed"]
    assert set(report.rankings) == {*RANKINGS, "mean_rating"}


def test_trend_print_view_and_workbook(generated, tmp_path):
    orders, trail, calls = generated
    history = trend(orders, trail, period="2026-10", months=3, level="department", calls=calls, minimum=1)
    assert list(history.index) == ["2026-08", "2026-09", "2026-10"] and history.loc["2026-08", "received"] == 0
    october = evaluate(orders, trail, period="2026-10", level="department", calls=calls, minimum=1)
    assert history.loc["2026-10", "sign_rate"] == pytest.approx(october.totals["sign_rate"])
    page = to_html(october)
    assert "2026-10 部门考核评价" in page and "按时签收率" in page and "街道评价均分" in page and "<script" not in page
    path = to_excel(october, tmp_path / "report.xlsx", history=history)
    book = openpyxl.load_workbook(path)
    assert "月度趋势" in book.sheetnames and "街道评价均分" in book.sheetnames
    assert len(book["月度趋势"]._charts) == 1 and len(book["按时签收率"]._charts) == 1
