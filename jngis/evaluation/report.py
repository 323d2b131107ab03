"""The monthly report: the Excel workbook for the meeting, the one-page print view, the trend, a store's figures.

Examples
--------
>>> import pandas as pd
>>> from jngis.evaluation import evaluate
>>> orders = pd.DataFrame({"order_id": ["A"], "street_code": ["370102001"], "satisfied": [True],
...     "received_at": pd.to_datetime(["2026-10-05 09:00"]), "due_at": pd.to_datetime(["2026-10-12 09:00"])})
>>> trail = pd.DataFrame({"order_id": ["A", "A"], "action": ["received", "dispatched"],
...     "to_state": ["received", "dispatched"], "at": pd.to_datetime(["2026-10-05 09:00", "2026-10-05 10:00"])})
>>> page = to_html(evaluate(orders, trail, period="2026-10", level="street", minimum=1))
>>> "<title>2026-10 街道考核评价</title>" in page
True
"""

from __future__ import annotations

import html
import math
import os
from typing import Any

import pandas as pd

from jngis import _checks, access
from jngis.codes import label
from jngis.evaluation.figures import (
    RATE_COLUMNS,
    Evaluation,
    evaluate,
    level_label,
)

__all__ = ["to_excel", "to_html", "trend", "evaluate_store", "TREND_RATES"]

#: The rates a trend follows month by month (city totals).
TREND_RATES: tuple[str, ...] = ("on_time_rate", "closure_rate", "satisfaction_rate", "sign_rate")
_SHOWN = ("received", "resolved_on_time", "closed", "overdue_now", "signed_on_time", "returned", "extended",
          "supervised", "rehandled")


def trend(orders: pd.DataFrame, trail: pd.DataFrame, *, period: str, months: int = 6, **options: Any) -> pd.DataFrame:
    """The city's counts and rates for the ``months`` months ending with ``period`` (oldest first).

    ``options`` go to :func:`evaluate` (``level``, ``catalogue``, ``calls`` ...);
    each month is computed as of its own end.
    """
    months = _checks.integer("trend", "months", months, minimum=1, maximum=36)
    end = pd.Period(period, "M") if isinstance(period, str) and len(period) == 7 else None
    if end is None:
        evaluate(orders, trail, period=period, **options)  # the refusal naming the period
        raise AssertionError("unreachable")  # pragma: no cover
    rows = {}
    for month in pd.period_range(end=end, periods=months, freq="M"):
        report = evaluate(orders, trail, period=str(month), **options)
        rows[str(month)] = report.totals
    return pd.DataFrame(rows).T.rename_axis("period")


def evaluate_store(store: Any, *, period: str, level: str = "department", minimum: int = 10,
                   principal: access.Principal = access.ADMIN, months: int = 0) -> tuple[Evaluation, pd.DataFrame]:
    """:func:`evaluate` on a store's orders, trail, departments, catalogue and calls; and the trend.

    Returns ``(report, trend)`` (an empty trend when ``months=0``).
    """
    access.require(access.principal(principal), "evaluation.read")
    orders = store.evaluation_orders()
    trail = store.trail_frame()
    options: dict[str, Any] = {"level": level, "minimum": minimum, "calendar": store.calendar, "rules": store.rules}
    if level == "department":
        departments = store.departments()
        options.update(departments=departments, catalogue=store.catalogue() if len(departments) else None,
                       calls=store.calls_frame())
    elif level != "grid" and level in ("district", "street", "community"):
        layer = {"district": "districts", "street": "streets", "community": "communities"}[level]
        if layer in store.layer_names():
            options["names"] = pd.DataFrame(store.read_layer(layer).drop(columns="geometry"))
    report = evaluate(orders, trail, period=period, **options)
    history = trend(orders, trail, period=period, months=months, **options) if months else pd.DataFrame()
    return report, history


# --------------------------------------------------------------------------- Excel


def to_excel(report: Evaluation, path: Any, *, history: pd.DataFrame | None = None) -> str:
    """Write ``report`` as an Excel workbook for the monthly meeting; return the path.

    One sheet per ranking (Chinese headings, a native Excel bar chart of the
    rate per unit), a sheet of all figures (全部指标), one of the units not
    ranked (未排名) and, with ``history`` (:func:`trend`), the monthly trend
    (月度趋势) with a native line chart of its rates.
    """
    from openpyxl.chart import BarChart, Reference

    _checks.instance("to_excel", "report", report, Evaluation, "an Evaluation (jngis.evaluation.evaluate)",
                     show_value=False)
    _checks.instance("to_excel", "path", path, (str, os.PathLike), "a path ending in .xlsx")
    path = os.fspath(path)
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        for rate, table in report.rankings.items():
            sheet = label(rate)[:31]
            table.rename(columns=label).to_excel(writer, sheet_name=sheet, index=False)
            ws = writer.sheets[sheet]
            _percent(ws, table, (rate, "previous", "change") if rate != "mean_rating" else ())
            if len(table):
                column = list(table.columns).index(rate) + 1
                names = list(table.columns).index("name" if "name" in table.columns else "unit") + 1
                chart = BarChart()
                chart.type = "bar"
                chart.title = f"{report.period} {level_label(report.level)}{label(rate)}"
                chart.add_data(Reference(ws, min_col=column, min_row=1, max_row=len(table) + 1), titles_from_data=True)
                chart.set_categories(Reference(ws, min_col=names, min_row=2, max_row=len(table) + 1))
                chart.height, chart.width = max(7.5, 0.45 * len(table)), 18
                ws.add_chart(chart, "L2")
        figures = report.figures.rename_axis("unit").reset_index()
        figures.rename(columns=label).to_excel(writer, sheet_name=label("figures"), index=False)
        _percent(writer.sheets[label("figures")], figures, tuple(r for r in RATE_COLUMNS if r != "mean_rating"))
        report.unranked.rename(columns=label).to_excel(writer, sheet_name=label("unranked"), index=False)
        if history is not None and len(history):
            _trend_sheet(writer, history)
    return path


def _trend_sheet(writer: Any, history: pd.DataFrame) -> None:
    from openpyxl.chart import LineChart, Reference

    rates = [r for r in TREND_RATES if r in history.columns]
    table = history[["received", *rates]].reset_index()
    table.rename(columns=lambda c: "月份" if c == "period" else label(c)).to_excel(
        writer, sheet_name="月度趋势", index=False)
    ws = writer.sheets["月度趋势"]
    _percent(ws, table, tuple(rates))
    chart = LineChart()
    chart.title = "月度趋势"
    chart.y_axis.number_format = "0%"
    chart.add_data(Reference(ws, min_col=3, max_col=2 + len(rates), min_row=1, max_row=len(table) + 1),
                   titles_from_data=True)
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=len(table) + 1))
    chart.height, chart.width = 8, 18
    ws.add_chart(chart, "H2")


def _percent(ws: Any, table: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Show the rate columns of a written sheet as percentages (the values stay fractions)."""
    for position, column in enumerate(table.columns, start=1):
        if column in columns:
            for (cell,) in ws.iter_rows(min_row=2, max_row=len(table) + 1, min_col=position, max_col=position):
                cell.number_format = "0.0%"


# --------------------------------------------------------------------------- the print view


def _shown(value: Any, rate: str | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    if rate == "mean_rating":
        return f"{float(value):.2f}"
    if rate is not None:
        return f"{100 * float(value):.1f}%"
    return f"{int(value):,}"


def _ranking_html(rate: str, table: pd.DataFrame, top: int) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("排名", "单位", label(rate), "上月", "名次变化"))
    rows = []
    for row in table.head(top).itertuples(index=False):
        record = row._asdict()
        moved = record.get("rank_change")
        arrow = "—" if moved is None or pd.isna(moved) else ("↑" if moved > 0 else "↓" if moved < 0 else "→")
        change = "" if moved is None or pd.isna(moved) or moved == 0 else f"{abs(int(moved))}"
        name = record.get("name", record["unit"])
        rows.append(f"<tr><td>{int(record['rank'])}</td><td>{html.escape(str(name))}</td>"
                    f"<td>{_shown(record[rate], rate)}</td><td>{_shown(record['previous'], rate)}</td>"
                    f"<td>{arrow}{change}</td></tr>")
    body = "".join(rows) or '<tr><td colspan="5">无排名单位</td></tr>'
    return f"<section><h2>{label(rate)}</h2><table><tr>{head}</tr>{body}</table></section>"


def to_html(report: Evaluation, *, top: int = 10) -> str:
    """The report as a one-page HTML print view (A4, no script): the totals and the top of each ranking."""
    _checks.instance("to_html", "report", report, Evaluation, "an Evaluation (jngis.evaluation.evaluate)",
                     show_value=False)
    top = _checks.integer("to_html", "top", top, minimum=1)
    title = f"{report.period} {level_label(report.level)}考核评价"
    totals = report.totals
    cells = "".join(f"<div class='figure'><span>{label(c)}</span><b>{_shown(totals[c])}</b></div>"
                    for c in _SHOWN if c in totals)
    cells += "".join(f"<div class='figure'><span>{label(r)}</span><b>{_shown(totals[r], r)}</b></div>"
                     for r in RATE_COLUMNS if r in totals and not pd.isna(totals[r]))
    sections = "".join(_ranking_html(rate, table, top) for rate, table in report.rankings.items())
    unranked = (f"<p class='note'>受理量少于 {report.minimum} 件、不参与排名的单位：{len(report.unranked)} 个。"
                "各率定义见 jngis.evaluation 文档。</p>")
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
@page {{ size: A4; margin: 12mm; }}
body {{ font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; font-size: 9pt; margin: 0; color: #222; }}
h1 {{ font-size: 15pt; margin: 0 0 4pt; }} h2 {{ font-size: 10pt; margin: 4pt 0 2pt; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 3pt; margin-bottom: 4pt; }}
.figure {{ border: 1px solid #ccc; padding: 2pt 5pt; min-width: 70pt; }}
.figure span {{ display: block; color: #666; font-size: 7.5pt; }} .figure b {{ font-size: 10pt; }}
.rankings {{ columns: 2; column-gap: 10pt; }} section {{ break-inside: avoid; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ border: 1px solid #ddd; padding: 1pt 3pt; }}
th {{ background: #f2f2f2; }} .note {{ color: #666; font-size: 7.5pt; }}
</style></head><body>
<h1>{title}</h1>
<p class="note">统计口径：{report.start:%Y-%m-%d} 至 {report.end:%Y-%m-%d}（不含）受理的工单，
截至期末的状态；共 {len(report.figures)} 个单位。</p>
<div class="figures">{cells}</div>
<div class="rankings">{sections}</div>
{unranked}
</body></html>
"""
