"""The 12345 work-order closed loop: states, transitions, working-day deadlines, the trail.

A citizen's call to the 12345 hotline becomes a work order that moves through
a closed loop and is never lost::

    received -> dispatched -> in_progress -> resolved -> closed
                    |  ^           |            |
           returned |  | dispatched|returned    | reopened (citizen not
                    v  |           v            v  satisfied: back to in_progress)
                  returned <-------+        in_progress

plus ``extended`` (the old form of the extension request and decision): one
due-date extension of up to 10 working days, with a reason, while the order
is dispatched or in progress; and the departments' steps
(:mod:`~jngis.workorders.loop`: 签收, 联系, 到场, 回复, 延期申请 and 审批, 督办,
回访, 重办, 核查, 并单, 街呼). :data:`TRANSITIONS` is the whole table; any other step raises
:class:`~jngis.errors.InvalidTransition` naming the order, its state and the
steps allowed from it. ``returned``, ``reopened`` and ``extended`` need a
note (the reason).

Deadlines (Shandong rule)
-------------------------
An order must be resolved within :data:`RESOLVE_WORKING_DAYS` (5) working
days of its dispatch: the due time is the same time of day on the 5th working
day after the dispatch day (an order dispatched on a Saturday is due on the
5th working day after that Saturday). Creating an order already sets a due
time, counted from its receipt; each dispatch (re-dispatch after a return
included) and each reopening restarts the 5-day clock. One extension adds
up to :data:`MAX_EXTENSION_WORKING_DAYS` (10) working days to the due time.
The deadline of an open order is ``"warning"`` from one working day before
its due time (``warn_at``) and ``"overdue"`` after it; a resolved or closed
order's deadline is ``"met"`` or ``"late"``.

Working days
------------
Working days follow the official calendar of the State Council: weekends
and public holidays are off, and the make-up working days (调休, e.g. Sunday
28 September and Saturday 11 October 2025 around National Day) are on. The
dates come from the ``chinese-calendar`` package (PyPI ``chinese-calendar``),
chosen because it is the maintained source that records the make-up working
days, not only the holidays, for every year since 2004, and is updated each
November when the next year's schedule is published (``holidays``'s China
calendar does not know every make-up working day). Past the last year it
knows (2026 for chinese-calendar 1.11) no one knows the holidays yet, so
:class:`WorkCalendar` never guesses: by default a count that reaches an
unknown year raises :class:`~jngis.errors.CalendarRangeError`. An operator
can enter the official dates as soon as they are published
(``WorkCalendar(holidays=..., workdays=..., last_year=2027)``) or choose
``WorkCalendar(beyond="weekends")``, which counts weekends only there and
issues a :class:`~jngis.errors.CalendarWarning` on every such count.

Times are naive datetimes in China Standard Time (as in the sample city);
timezone-aware times are converted to it.

Modules
-------
- :mod:`~jngis.workorders.states`: the state table (states, their groups, steps);
  a leaf that :mod:`jngis.layers` and :mod:`jngis.codes` may import.
- :mod:`~jngis.workorders.clocks`: China Standard Time, working days, deadlines.
- :mod:`~jngis.workorders.orders`: one order's steps, its public view, its trail.
- :mod:`~jngis.workorders.io`: reading and checking a hotline export.
- :mod:`~jngis.workorders.synthetic`: the trail implied by historical orders, the sample's department-loop
  history and 街道 calls.
- :mod:`~jngis.workorders.departments`: the departments registry and the dispatch catalogue.
- :mod:`~jngis.workorders.loop`: the departments' steps (签收, 联系, 到场, 回复, 退单 and 改派, 延期申请
  and 审批, 督办, 回访, 重办, 核查, 并单), their rules and clocks, the deadline cards.
- :mod:`~jngis.workorders.actions`: the steps a principal may take on an order now (for the viewer).
- :mod:`~jngis.workorders.duplicates`: duplicate reports (并单) proposed by place, time and category.
- :mod:`~jngis.workorders.calls`: the 街道's call to departments (街呼) and its ratings.

Examples
--------
>>> import datetime as dt
>>> from jngis.workorders import CALENDAR, allowed_actions
>>> allowed_actions("resolved")
('closed', 'reopened', 'callback', 'rehandle', 'verify')
>>> # dispatched on Friday 26 Sep 2025: National Day week off, Sunday 28 Sep and
>>> # Saturday 11 Oct are make-up working days
>>> CALENDAR.add_working_days(dt.datetime(2025, 9, 26, 15, 0), 5)
datetime.datetime(2025, 10, 10, 15, 0)
"""


from jngis.workorders.actions import actions_for
from jngis.workorders.calls import CALL_STEPS, RATINGS, plan_call, plan_call_step, plan_rating
from jngis.workorders.clocks import (
    CALENDAR,
    DEADLINES,
    MAX_EXTENSION_WORKING_DAYS,
    OFFICE_HOURS,
    RESOLVE_WORKING_DAYS,
    WARNING_WORKING_DAYS,
    WorkCalendar,
    deadline,
    deadlines,
    due_fields,
    now_cst,
    to_cst,
)
from jngis.workorders.departments import (
    CATALOGUE_COLUMNS,
    DEPARTMENT_COLUMNS,
    DEPARTMENT_KINDS,
    check_catalogue,
    check_departments,
    departments_of,
    dispatch,
    read_catalogue,
    read_departments,
    sample_catalogue,
    sample_departments,
)
from jngis.workorders.duplicates import DUPLICATE_DISTANCE_M, DUPLICATE_HOURS, duplicate_scores, find_duplicates
from jngis.workorders.io import COLUMN_ALIASES, INPUT_CRS, clean_order_rows, crs_error, read_order_table
from jngis.workorders.loop import CALLBACK_LEVELS, DEFAULT_RULES, LOOP_COLUMNS, LoopRules, card, plan_step
from jngis.workorders.orders import (
    MAX_TEXT,
    PERSONAL_FIELDS,
    PUBLIC_FIELDS,
    check_trail,
    plan_creation,
    plan_transition,
    public_order,
    state_from_trail,
)
from jngis.workorders.states import (
    ACTIONS,
    DEPARTMENT_ACTIONS,
    FINISHED_STATES,
    LEGACY_ACTIONS,
    MERGED_STATES,
    NOTE_REQUIRED,
    OPEN_STATES,
    STATES,
    TRANSITIONS,
    allowed_actions,
    next_state,
)
from jngis.workorders.synthetic import plant_duplicates, synthetic_calls, synthetic_loop, synthetic_trail

__all__ = [
    "STATES",
    "OPEN_STATES",
    "FINISHED_STATES",
    "ACTIONS",
    "TRANSITIONS",
    "NOTE_REQUIRED",
    "RESOLVE_WORKING_DAYS",
    "MAX_EXTENSION_WORKING_DAYS",
    "WARNING_WORKING_DAYS",
    "DEADLINES",
    "PUBLIC_FIELDS",
    "PERSONAL_FIELDS",
    "INPUT_CRS",
    "COLUMN_ALIASES",
    "MAX_TEXT",
    "crs_error",
    "WorkCalendar",
    "CALENDAR",
    "allowed_actions",
    "next_state",
    "plan_creation",
    "plan_transition",
    "state_from_trail",
    "check_trail",
    "deadline",
    "deadlines",
    "due_fields",
    "public_order",
    "now_cst",
    "to_cst",
    "synthetic_trail",
    "synthetic_loop",
    "synthetic_calls",
    "read_order_table",
    "clean_order_rows",
    "DEPARTMENT_KINDS",
    "DEPARTMENT_COLUMNS",
    "CATALOGUE_COLUMNS",
    "check_departments",
    "check_catalogue",
    "read_departments",
    "read_catalogue",
    "sample_departments",
    "sample_catalogue",
    "dispatch",
    "departments_of",
    "MERGED_STATES",
    "LEGACY_ACTIONS",
    "DEPARTMENT_ACTIONS",
    "OFFICE_HOURS",
    "CALLBACK_LEVELS",
    "LOOP_COLUMNS",
    "LoopRules",
    "DEFAULT_RULES",
    "plan_step",
    "card",
    "actions_for",
    "plant_duplicates",
    "find_duplicates",
    "duplicate_scores",
    "DUPLICATE_DISTANCE_M",
    "DUPLICATE_HOURS",
    "CALL_STEPS",
    "RATINGS",
    "plan_call",
    "plan_call_step",
    "plan_rating",
]
