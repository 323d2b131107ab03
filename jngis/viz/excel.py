"""Excel export of a rebalance plan for the officials who approve it: :func:`plan_to_excel`."""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jngis.codes import label, parent, value_label
from jngis.errors import InputTypeError, NotFoundError, ParameterError
from jngis.viz import _inputs

__all__ = ["plan_to_excel"]

_MOVE_HEADINGS = {c: label(c) for c in ("unit_id", "households", "from", "to", "street_code")}
# in the change list a community's status is the kind of change
_CHANGE_HEADINGS = {c: label(c) for c in ("community_code", "street_code", "status", "households_before",
                                          "households_after", "households_in", "households_out", "partners")}
_CHANGE_HEADINGS["status"] = "调整类型"
_INFEASIBLE_HEADINGS = {"street_code": label("street_code"), "reason_zh": "原因", "reason": "reason",
                        "communities": "未达标社区"}
#: Chinese names of the measures of a plan (``RebalancePlan.metrics``), for the summary sheet.
_METRIC_LABELS = {
    "communities_before": "调整前社区数", "communities_after": "调整后社区数",
    "within_bounds_before": "调整前达标社区数", "within_bounds_after": "调整后达标社区数",
    "within_bounds_share_before": "调整前达标比例", "within_bounds_share_after": "调整后达标比例",
    "above_max_before": "调整前超过上限", "above_max_after": "调整后超过上限",
    "below_min_before": "调整前低于下限", "below_min_after": "调整后低于下限",
    "moved_households": "调整户数", "moved_share": "调整户数占比", "lower_bound": "调整户数下界",
    "moved_over_lower_bound": "调整户数/下界", "mean_polsby_popper_before": "调整前平均紧凑度",
    "mean_polsby_popper_after": "调整后平均紧凑度", "contiguous_share_after": "调整后连通比例",
    "infeasible_streets": "无法达标街道数", "contiguous_share_before": "调整前连通比例",
    "min_households_before": "调整前最小户数", "min_households_after": "调整后最小户数",
    "median_households_before": "调整前户数中位数", "median_households_after": "调整后户数中位数",
    "max_households_before": "调整前最大户数", "max_households_after": "调整后最大户数",
    "stations_norm_met_before": "调整前服务用房达标社区数", "stations_norm_met_after": "调整后服务用房达标社区数",
    "islands": "孤岛单元数", "seconds": "计算用时 (秒)",
}
_SHEET_FORBIDDEN = str.maketrans({c: "_" for c in "[]:*?/\\"})


def _sheet_name(text: str, taken: set[str]) -> str:
    """A sheet name Excel accepts (31 characters, none of []:*?/\\), unique among ``taken``."""
    name = str(text).translate(_SHEET_FORBIDDEN)[:31] or "sheet"
    base, i = name, 2
    while name in taken:
        name = f"{base[:27]}_{i}"
        i += 1
    taken.add(name)
    return name


def _check_path(func: str, name: str, value: Any) -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a file path")
    path = Path(value)
    if path.suffix.lower() != ".xlsx":
        raise ParameterError(f"{func}: {name}={str(path)!r}; expected a file name ending in .xlsx")
    if not path.parent.is_dir():
        raise NotFoundError(f"{func}: the folder {str(path.parent)!r} does not exist; expected an existing "
                            "folder")
    return path


def _street_names(func: str, name: str, value: Any) -> dict[str, str]:
    if value is not None and not isinstance(value, Mapping):
        raise InputTypeError(f"{func}: {name} is a {type(value).__name__}; expected a mapping of 街道 code "
                             "-> name or None")
    return {str(k): str(v) for k, v in (value or {}).items()}


def _summary(plan: Any) -> pd.DataFrame:
    """The bounds and every scalar measure of the plan (Chinese name, key, value)."""
    rows: list[tuple[str, str, Any]] = [("户数下限", "min_households", int(plan.min_households)),
            ("户数上限", "max_households", int(plan.max_households))]
    rows += [(_METRIC_LABELS.get(k, k), k, v) for k, v in plan.metrics.items()
             if isinstance(v, (numbers.Number, str, bool, np.bool_))]
    return pd.DataFrame(rows, columns=["指标", "metric", "数值"])


def _sorted_moves(plan: Any) -> pd.DataFrame:
    moves = plan.moves.copy()
    if "street_code" not in moves.columns:
        moves["street_code"] = parent(moves["from"].astype(str), "street")
    return moves.sort_values(["street_code", "from", "to", "unit_id"], kind="stable")


def _per_street(moves: pd.DataFrame, names: Mapping[str, str]) -> pd.DataFrame:
    table = moves.groupby("street_code").agg(units=("unit_id", "size"), households=("households", "sum"))
    table = table.reset_index()
    table.insert(1, "name", [names.get(str(code), "") for code in table["street_code"]])
    table.columns = [label("street_code"), "街道名称", "调整单元数", "调整户数"]
    return table


def _changes(plan: Any) -> pd.DataFrame:
    changes = plan.changes.copy()
    changes["status"] = changes["status"].map(lambda v: f"{value_label('status', v)} ({v})")
    return changes[[c for c in _CHANGE_HEADINGS if c in changes.columns]].rename(columns=_CHANGE_HEADINGS)


def _sheets(plan: Any, names: Mapping[str, str]) -> dict[str, pd.DataFrame]:
    """Every sheet of the workbook, in order, by its (Excel-safe) name."""
    moves = _sorted_moves(plan)
    taken: set[str] = set()
    sheets = {_sheet_name("汇总", taken): _summary(plan),
              _sheet_name("各街道", taken): _per_street(moves, names),
              _sheet_name("社区变更", taken): _changes(plan)}
    infeasible = getattr(plan, "infeasible", None)
    if infeasible is not None and len(infeasible):
        sheets[_sheet_name("无法达标街道", taken)] = infeasible.rename(columns=_INFEASIBLE_HEADINGS)
    for street, rows in moves.groupby("street_code", sort=True):
        heading = f"{street} {names[street]}" if street in names else str(street)
        table = rows[[c for c in _MOVE_HEADINGS if c in rows.columns]].rename(columns=_MOVE_HEADINGS)
        sheets[_sheet_name(heading, taken)] = table
    return sheets


def _fit_columns(book: Any) -> None:
    """Freeze the heading row and widen each column to its longest text."""
    for sheet in book.worksheets:
        sheet.freeze_panes = "A2"
        for column in sheet.columns:
            width = max(len(str(cell.value or "")) for cell in column)
            sheet.column_dimensions[column[0].column_letter].width = min(60, max(10, width * 1.6))


def plan_to_excel(plan: Any, path: str | os.PathLike, *, street_names: Mapping[str, str] | None = None) -> Path:
    """Write a rebalance plan's change list as an Excel workbook for the officials who approve it.

    Sheets (Chinese headings): ``汇总`` (the bounds and the plan's measures),
    ``各街道`` (per 街道: units and households moved), ``社区变更`` (every old or new
    community: status, households before / after, in / out), then one sheet
    per 街道 with a move, listing every unit that changes community
    (单元编号, 户数, 原社区编码, 新社区编码, 街道编码); ``无法达标街道`` when some
    街道 cannot be brought within the bounds. The 街道 sheets together
    hold every row of ``plan.moves``.

    Parameters
    ----------
    plan : RebalancePlan
        From :func:`jngis.rebalance.rebalance`.
    path : str or os.PathLike
        The ``.xlsx`` file to write (overwritten).
    street_names : mapping, optional
        街道 code -> name, used in the sheet names (e.g. from ``city.streets``).

    Returns
    -------
    pathlib.Path
        The file written.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> from jngis.sample import load_slice
    >>> from jngis.rebalance import rebalance
    >>> plan = rebalance(load_slice().units)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = plan_to_excel(plan, f"{folder}/plan.xlsx")
    ...     sheets = pd.read_excel(path, sheet_name=None)
    >>> list(sheets)[:3], sum(len(s) for n, s in sheets.items() if n.startswith("370")) == len(plan.moves)
    (['汇总', '各街道', '社区变更'], True)
    """
    func = "plan_to_excel"
    _inputs.plan(func, "plan", plan)
    path = _check_path(func, "path", path)
    names = _street_names(func, "street_names", street_names)
    sheets = _sheets(plan, names)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for name, table in sheets.items():
            table.to_excel(writer, sheet_name=name, index=False)
        _fit_columns(writer.book)
    return path
