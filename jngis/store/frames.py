"""Between SQL rows and pandas, for both stores: bulk values, typed order frames, listing filters.

Pure functions: they build values and SQL text with ``?`` placeholders; the
store runs them.

Examples
--------
>>> iso_text(pd.Series([pd.Timestamp("2026-10-09 09:00"), pd.NaT])).tolist()
['2026-10-09T09:00:00', None]
>>> order_filters({"grid_code": None, "street_code": "370102003"}, status=["received"], overdue=None, now=None)
(' WHERE street_code = ? AND status IN (?)', ['370102003', 'received'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from jngis.codes import OPEN_STATES, STATES
from jngis.errors import InputTypeError, ParameterError
from jngis.store.schema import CODE_COLUMNS, COORDINATE_COLUMNS, ORDER_COLUMNS, TIME_COLUMNS
from jngis.workorders import PUBLIC_FIELDS, deadlines

__all__ = ["SQL_TIME", "iso_text", "column_values", "records", "order_filters", "wanted_columns",
           "typed_orders", "python_value"]

#: How times are written as text (SQLite's storage; PostgreSQL's COPY reads it too).
SQL_TIME = "%Y-%m-%dT%H:%M:%S"


def column_kind(series: pd.Series) -> str:
    """What a layer attribute holds, for a column type: integer, real, boolean, time or text."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(series.dtype):
        return "integer"
    if pd.api.types.is_float_dtype(series.dtype):
        return "real"
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return "time"
    return "text"


def iso_text(values: Any) -> np.ndarray:
    """Datetimes as ISO text, None for NaT."""
    stamps = pd.to_datetime(pd.Series(values))
    text = stamps.dt.strftime(SQL_TIME).to_numpy(object)
    text[stamps.isna().to_numpy()] = None
    return text


def column_values(values: pd.Series, column: str) -> list:
    """One column of orders as plain Python values either driver writes (column-wise: no call per value)."""
    if column in TIME_COLUMNS or column == "at":
        return iso_text(values).tolist()
    if column in COORDINATE_COLUMNS:
        return values.to_numpy(float).tolist()
    if column == "satisfied":
        return [None if v is None or pd.isna(v) else bool(v) for v in values.astype(object)]
    if column == "extended_days":
        return [None if v is None or pd.isna(v) else int(v) for v in values.astype(object)]
    return values.astype(object).where(values.notna(), None).tolist()


def records(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    """Rows of ``frame[columns]`` as tuples of plain values (see :func:`column_values`)."""
    return list(zip(*(column_values(frame[c], c) for c in columns)))


def order_filters(places: Mapping[str, Any], *, status: Any, overdue: Any, now: Any) -> tuple[str, list]:
    """The WHERE clause and parameters of a listing by place codes, status and overdue.

    ``now`` is the database value of the time overdue is judged at (needed when
    ``overdue`` is given).
    """
    clauses, params = [], []
    for column, value in places.items():
        if value is not None:
            if not isinstance(value, str):
                raise InputTypeError(f"{column} is a {type(value).__name__}; expected a code string")
            clauses.append(f"{column} = ?")
            params.append(value)
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        bad = [s for s in statuses if s not in STATES]
        if bad or not statuses:
            raise ParameterError(f"status={status!r}; expected one or more of {', '.join(STATES)}")
        clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if overdue is not None:
        condition = f"(status IN ({', '.join('?' * len(OPEN_STATES))}) AND due_at < ?)"
        clauses.append(condition if overdue else f"NOT {condition}")
        params += [*OPEN_STATES, now]
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def wanted_columns(public: bool, columns: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The columns an orders frame gives, and the order columns to fetch for them."""
    allowed = [c for c in PUBLIC_FIELDS if public is False or c != "description"]
    if columns is None:
        wanted = allowed
    else:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise InputTypeError(f"columns={columns!r}; expected a list of column names")
        unknown = [c for c in columns if c not in allowed]
        if unknown:
            raise ParameterError(f"columns={list(columns)!r} names {unknown}, which orders_frame "
                                 f"(public={public}) does not give; expected some of {allowed}")
        wanted = [c for c in allowed if c in columns]
    needed = set(wanted) | {"x", "y"}
    if "deadline" in needed:
        needed |= {"status", "due_at", "warn_at", "resolved_at"}
    return wanted, [c for c in ORDER_COLUMNS if c in needed]


def typed_orders(rows: list[Sequence], fetch: Sequence[str], *, deadline: bool = False,
                 now: Any = None) -> pd.DataFrame:
    """Fetched order rows as a frame with pandas types (times, nullable booleans and integers).

    With ``deadline``, adds the ``deadline`` column as of ``now``.
    """
    frame = pd.DataFrame(rows, columns=list(fetch))
    for column in fetch:
        if column in TIME_COLUMNS:
            frame[column] = pd.to_datetime(frame[column], format="ISO8601")
        elif column in CODE_COLUMNS:
            frame[column] = frame[column].astype(object)
    if "satisfied" in frame:
        frame["satisfied"] = pd.array([None if v is None or pd.isna(v) else bool(v) for v in frame["satisfied"]],
                                      dtype="boolean")
    if "extended_days" in frame:
        frame["extended_days"] = pd.array(frame["extended_days"], dtype="Int64")
    if deadline:
        frame["deadline"] = deadlines(frame, now)
    return frame


def python_value(value: Any) -> Any:
    """numpy scalars and Timestamps as the Python values a driver binds (NaT as None)."""
    if value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.to_pydatetime()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
    if isinstance(value, np.generic):
        return value.item()
    return value
