"""The monthly evaluation (月比月评): figures and rankings as JSON, the print view, the Excel report.

``/evaluation?period=2026-10&level=department`` answers the figures of every
unit, the rankings with month-on-month change and the city's monthly trend;
``/evaluation/print`` the same as a one-page HTML print view and
``/evaluation/excel`` the meeting's workbook. Figures are computed by
:func:`jngis.evaluation.evaluate_store` and kept until the orders change.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, Response

from jngis.cache import Cache
from jngis.codes import label
from jngis.evaluation import EVALUATION_LEVELS, evaluate_store, level_label, to_excel, to_html
from ..auth import permits
from ..deps import Backend, backend, encode_json

# the figures are aggregated; roles with evaluation.read see them (jngis.access)
router = APIRouter(tags=["evaluation"])
_READER = Depends(permits("evaluation.read"))

Level = Literal[EVALUATION_LEVELS]  # type: ignore[valid-type]
_PERIOD = Query("2026-10", pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="a month, YYYY-MM")
_reports: Cache = Cache(max_bytes=8)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _report(store: Backend, period: str, level: str, minimum: int, months: int):
    key = (store.store.url, store.store.change_versions()["orders"], period, level, minimum, months)
    return _reports.get_or_insert(key, lambda: evaluate_store(store.store, period=period, level=level,
                                                              minimum=minimum, months=months))


def _records(frame) -> list[dict]:
    rows = frame.to_dict("records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


@router.get("/evaluation", name="evaluation")
def evaluation(period: str = _PERIOD, level: Level = Query("department"),
               minimum: int = Query(10, ge=1, le=100_000), months: int = Query(6, ge=0, le=12),
               store: Backend = Depends(backend), who=_READER) -> Response:
    """Figures per unit, rankings (with last month's rate and rank) and the monthly trend."""
    report, history = _report(store, period, level, minimum, months)
    figures = report.figures.rename_axis("unit").reset_index()
    payload = {
        "period": report.period, "level": report.level, "level_label": level_label(report.level),
        "minimum": report.minimum, "totals": _records(report.totals.to_frame().T)[0],
        "figures": _records(figures), "unranked": _records(report.unranked),
        "rankings": {rate: _records(table) for rate, table in report.rankings.items()},
        "trend": _records(history.reset_index()) if len(history) else [],
        "labels": {c: label(c) for c in [*figures.columns, *report.rankings, "rank", "previous"]},
    }
    return Response(encode_json(payload, allow_nan=False), media_type="application/json")


@router.get("/evaluation/print", name="evaluation_print", response_class=HTMLResponse)
def evaluation_print(period: str = _PERIOD, level: Level = Query("department"),
                     minimum: int = Query(10, ge=1, le=100_000), store: Backend = Depends(backend),
                     who=_READER) -> HTMLResponse:
    """The one-page print view of a month's evaluation."""
    report, _ = _report(store, period, level, minimum, 0)
    return HTMLResponse(to_html(report))


@router.get("/evaluation/excel", name="evaluation_excel",
            responses={200: {"content": {XLSX: {}}, "description": "the workbook"}})
def evaluation_excel(period: str = _PERIOD, level: Level = Query("department"),
                     minimum: int = Query(10, ge=1, le=100_000), months: int = Query(6, ge=0, le=12),
                     store: Backend = Depends(backend), who=_READER) -> Response:
    """The meeting's workbook: one sheet per ranking with a native chart, all figures, the trend."""
    report, history = _report(store, period, level, minimum, months)
    with tempfile.TemporaryDirectory(prefix="jngis-evaluation-") as folder:
        path = to_excel(report, Path(folder) / "evaluation.xlsx", history=history)
        content = Path(path).read_bytes()
    name = f"evaluation-{period}-{level}.xlsx"
    return Response(content, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/evaluation/dashboard", name="evaluation_dashboard", include_in_schema=False)
def dashboard() -> Response:
    """The evaluation dashboard page (ECharts, vendored)."""
    from fastapi.responses import FileResponse

    from ..deps import static_dir

    return FileResponse(static_dir() / "dashboard.html", media_type="text/html; charset=utf-8")
