"""The monthly evaluation of the 12345 loop (月比月评): figures per unit, rankings, the reports.

- :mod:`~jngis.evaluation.figures`: :func:`evaluate` and the definitions of every figure;
- :mod:`~jngis.evaluation.report`: the Excel workbook, the one-page print view, the
  monthly trend and the figures of a store.
"""

from jngis.evaluation.figures import (
    COUNT_COLUMNS,
    DEPARTMENT_RANKINGS,
    EVALUATION_LEVELS,
    RANKINGS,
    RATE_COLUMNS,
    Evaluation,
    evaluate,
    level_label,
)
from jngis.evaluation.report import TREND_RATES, evaluate_store, to_excel, to_html, trend

__all__ = ["EVALUATION_LEVELS", "COUNT_COLUMNS", "RATE_COLUMNS", "RANKINGS", "DEPARTMENT_RANKINGS", "TREND_RATES",
           "Evaluation", "evaluate", "level_label", "to_excel", "to_html", "trend", "evaluate_store"]
