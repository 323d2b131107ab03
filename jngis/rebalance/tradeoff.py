"""The trade-off between households moved and plans that last: :func:`rebalance_tradeoff`.

For several settings of :func:`~jngis.rebalance.rebalance` (a preferred band,
headroom, their weight), one plan each and one row of figures: households
moved, communities inside the preferred band and the years until the first
community outgrows the legal band, so the planner can pick one for the
meeting. :class:`Tradeoff` holds the table, the plans, a chart
(:meth:`Tradeoff.figure`) and an Excel export (:meth:`Tradeoff.to_excel`),
both with Chinese headings.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.codes import COMMUNITY_HOUSEHOLDS
from jngis.errors import InputTypeError
from jngis.rebalance.plan import RebalancePlan
from jngis.rebalance.redraw import rebalance

__all__ = ["Tradeoff", "rebalance_tradeoff", "years_to_leave", "DEFAULT_SETTINGS", "TRADEOFF_HEADINGS"]

FUNC = "rebalance_tradeoff"
#: The settings compared when none are given: today's default, a preferred band, headroom, both.
DEFAULT_SETTINGS: tuple[dict, ...] = (
    {"name": "默认 default"},
    {"name": "理想规模 preferred", "preferred": (1500, 2500)},
    {"name": "预留10% headroom", "headroom": 0.1},
    {"name": "预留10%+理想规模", "headroom": 0.1, "preferred": (1500, 2500)},
)
_SETTING_KEYS = ("name", "preferred", "headroom", "preferred_weight", "priority")
#: Chinese headings of the trade-off table (for the Excel sheet and the notebook).
TRADEOFF_HEADINGS = {
    "setting": "方案", "preferred": "理想规模 (户)", "headroom_band": "预留增长后范围 (户)",
    "moved_households": "调整户数", "moved_share": "调整户数占比", "communities": "社区数",
    "within_bounds": "规模达标社区数", "within_preferred": "理想规模内社区数",
    "within_preferred_share": "理想规模内比例", "p95_households": "户数95分位", "max_households": "最大户数",
    "mean_polsby_popper": "平均紧凑度", "years_to_leave": "首个社区超出上限年数",
    "leaving_by_horizon": "规划期末超出范围社区数",
}


@dataclass
class Tradeoff:
    """What :func:`rebalance_tradeoff` returns: one row of ``table`` and one plan per setting."""

    table: pd.DataFrame
    plans: dict[str, RebalancePlan]
    preferred: tuple[int, int]
    growth_rate: float

    def figure(self):
        """Households moved against communities inside the preferred band, and years until the
        first community leaves the band (a matplotlib Figure, Chinese labels)."""
        from jngis.viz.figures import _new_figure, _set_font, _text

        table = self.table
        fig, (left, right), family = _new_figure(2, width=11.0, height=4.4)
        left.scatter(table["moved_households"], table["within_preferred"], s=60, color="#3182bd", zorder=3)
        for row in table.itertuples():
            left.annotate(str(row.setting), (row.moved_households, row.within_preferred),
                          textcoords="offset points", xytext=(6, 4), fontsize=8)
        low, high = self.preferred
        left.set_xlabel(_text("调整户数", "households moved"))
        left.set_ylabel(_text(f"理想规模 {low:,}–{high:,} 户内的社区数", f"communities in {low:,}-{high:,}"))
        left.set_title(_text("调整户数与理想规模", "households moved vs preferred size"))
        left.grid(alpha=0.3)
        years = table["years_to_leave"].replace(math.inf, np.nan)
        positions = np.arange(len(table))
        right.barh(positions, years.fillna(0), color="#a6d96a")
        right.invert_yaxis()
        right.set_xlabel(_text("年", "years"))
        right.set_title(_text("首个社区超出法定上限前的年数", "years until the first community leaves the band"))
        _set_font(fig, family)
        # after _set_font, which asks every axis for whole-number ticks: these are the settings' names
        right.set_yticks(positions, table["setting"].astype(str).tolist(), **({"fontfamily": family} if family else {}))
        return fig

    def to_excel(self, path: str | os.PathLike) -> Path:
        """The table as an Excel workbook (sheet ``方案比较``, Chinese headings), one summary row per plan."""
        from jngis.viz.excel import _check_path, _fit_columns, _sheet_name

        target = _check_path("Tradeoff.to_excel", "path", path)
        sheet = self.table.copy()
        for column in ("preferred", "headroom_band"):
            sheet[column] = sheet[column].map(lambda band: "" if band is None else f"{band[0]:,}–{band[1]:,}")
        sheet["years_to_leave"] = sheet["years_to_leave"].replace(math.inf, np.nan)
        with pd.ExcelWriter(target, engine="openpyxl") as writer:
            sheet.rename(columns=TRADEOFF_HEADINGS).to_excel(writer, sheet_name=_sheet_name("方案比较", set()),
                                                             index=False)
            _fit_columns(writer.book)
        return target


def years_to_leave(households, max_households: int, *, growth_rate: float | None = None,
                   added=None, years: float | None = None) -> float:
    """Years until the first community grows past ``max_households``.

    Each community grows by ``growth_rate`` a year (compound), or by its own
    ``added`` households over ``years`` (linear). ``math.inf`` when none ever
    does; 0 when one is above the maximum already.

    Examples
    --------
    >>> round(years_to_leave([2000, 2700], 3000, growth_rate=0.02), 2)
    5.32
    >>> years_to_leave([2000, 2700], 3000, added=[0, 600], years=6)
    3.0
    """
    h = np.asarray(households, dtype=float)
    if (h > max_households).any():
        return 0.0
    if added is not None:
        rate = np.asarray(added, dtype=float) / float(years or 1)
        with np.errstate(divide="ignore"):
            t = np.where(rate > 0, (max_households - h) / np.where(rate > 0, rate, 1), math.inf)
    else:
        g = float(growth_rate or 0)
        if g <= 0:
            return math.inf
        t = np.log(max_households / np.maximum(h, 1e-9)) / math.log1p(g)
    return float(t.min()) if len(t) else math.inf


def _settings(settings) -> list[dict]:
    if settings is None:
        return [dict(s) for s in DEFAULT_SETTINGS]
    ok = isinstance(settings, Sequence) and not isinstance(settings, str) and len(settings) > 0 and all(
        isinstance(s, Mapping) for s in settings)
    _checks.require(FUNC, "settings", settings, ok, "a non-empty list of dicts of rebalance parameters",
                    InputTypeError)
    out = []
    for i, setting in enumerate(settings):
        unknown = set(setting) - set(_SETTING_KEYS)
        _checks.require(FUNC, "settings", setting, not unknown, f"keys among {list(_SETTING_KEYS)} "
                        f"(setting {i} has {sorted(unknown)})")
        out.append({"name": f"方案{i + 1}", **setting})
    names = [s["name"] for s in out]
    _checks.require(FUNC, "settings", names, len(set(names)) == len(names), "settings with different names")
    return out


# Long only by its numpydoc docstring; the body is one plan per setting and one row per plan.
def rebalance_tradeoff(units: gpd.GeoDataFrame, settings: Sequence[Mapping] | None = None, *,
                       preferred: tuple[int, int] = (1500, 2500), growth_rate: float = 0.02,
                       growth=None, horizon: int | None = None, base_year: int | None = None,
                       **common) -> Tradeoff:
    """Plans for several settings of preferred band and headroom, side by side.

    Parameters
    ----------
    units : GeoDataFrame
        As for :func:`~jngis.rebalance.rebalance`.
    settings : list of dict, optional
        One dict per plan, with keys among ``name``, ``preferred``,
        ``headroom``, ``preferred_weight``, ``priority`` (default:
        :data:`DEFAULT_SETTINGS`).
    preferred : (int, int)
        The band "communities inside the preferred band" is counted in, for
        every setting alike (default 1,500–2,500).
    growth_rate : float
        Yearly growth of every community (compound) for ``years_to_leave``
        when no ``growth`` is given (default 2 %).
    growth, horizon, base_year : optional
        Households expected by the year ``horizon`` (as ``growth=`` of
        :func:`~jngis.rebalance.rebalance`); then ``years_to_leave`` assumes
        each community's growth spread evenly over ``horizon - base_year``
        years and ``leaving_by_horizon`` counts the communities that leave
        the band by then. ``base_year`` defaults to ``horizon - 5``.
    **common
        Other parameters of :func:`~jngis.rebalance.rebalance` used by every
        plan (``min_households``, ``max_households``, ``seed``, ``workers``...).

    Returns
    -------
    Tradeoff
        ``table``: one row per setting with ``setting``, ``preferred``,
        ``headroom_band``, ``moved_households``, ``moved_share``,
        ``communities``, ``within_bounds``, ``within_preferred``,
        ``within_preferred_share``, ``p95_households``, ``max_households``,
        ``mean_polsby_popper``, ``years_to_leave`` and, with growth,
        ``leaving_by_horizon``; ``plans`` by setting name.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> result = rebalance_tradeoff(load_slice().units, [{"name": "default"}, {"name": "room", "headroom": 0.1}])
    >>> result.table["setting"].tolist(), bool((result.table["within_bounds"] == 5).all())
    (['default', 'room'], True)
    """
    chosen = _settings(settings)
    low, high = _checks.require(FUNC, "preferred", preferred, isinstance(preferred, (tuple, list)) and
                                len(preferred) == 2 and preferred[0] < preferred[1], "a pair (low, high)")
    rate = _checks.number(FUNC, "growth_rate", growth_rate, minimum=0, hint="yearly share, e.g. 0.02")
    if growth is not None and horizon is None:
        _checks.require(FUNC, "horizon", horizon, False, "the year of the growth when growth= is given")
    span = None if horizon is None else horizon - (base_year if base_year is not None else horizon - 5)
    _checks.require(FUNC, "base_year", base_year, span is None or span > 0, "a year before the horizon")
    max_households = common.get("max_households", COMMUNITY_HOUSEHOLDS[1])
    rows, plans = [], {}
    for setting in chosen:
        options = {k: v for k, v in setting.items() if k != "name"}
        plan = rebalance(units, growth=growth, horizon=horizon, **options, **common)
        plans[setting["name"]] = plan
        rows.append(_row(setting["name"], plan, (low, high), max_households, rate, span))
    return Tradeoff(pd.DataFrame(rows), plans, (int(low), int(high)), rate)


def _row(name: str, plan: RebalancePlan, preferred: tuple[int, int], max_households: int, rate: float,
         span: float | None) -> dict:
    households = plan.communities["households"].to_numpy()
    inside = (households >= preferred[0]) & (households <= preferred[1])
    if plan.growth is not None:
        added = plan.growth.set_index("community_code")["added"].reindex(plan.communities["community_code"])
        years = years_to_leave(households, max_households, added=added.to_numpy(), years=span)
    else:
        years = years_to_leave(households, max_households, growth_rate=rate)
    row = {"setting": name, "preferred": plan.preferred, "headroom_band": plan.band,
           "moved_households": plan.metrics["moved_households"], "moved_share": plan.metrics["moved_share"],
           "communities": len(households), "within_bounds": plan.metrics["within_bounds_after"],
           "within_preferred": int(inside.sum()), "within_preferred_share": float(inside.mean()),
           "p95_households": float(np.percentile(households, 95)), "max_households": int(households.max()),
           "mean_polsby_popper": plan.metrics["mean_polsby_popper_after"], "years_to_leave": years}
    if plan.growth is not None:
        row["leaving_by_horizon"] = int(plan.growth["leaves_band"].sum())
    return row
