"""The plan :func:`jngis.rebalance.rebalance` returns: tables, metrics and a report for planners."""

from __future__ import annotations

from dataclasses import dataclass, field

import geopandas as gpd
import pandas as pd

from jngis.codes import value_label

__all__ = ["RebalancePlan"]


@dataclass
class RebalancePlan:
    """A redraw proposal returned by :func:`rebalance`.

    Attributes
    ----------
    assignment : pandas.Series
        unit_id -> new community code, for every unit.
    communities : geopandas.GeoDataFrame
        One row per new community: ``community_code``, ``street_code``,
        ``households``, ``units``, ``status``, ``within_bounds``,
        ``polsby_popper`` and the dissolved geometry.
    moves : pandas.DataFrame
        Every unit whose community changes: ``unit_id``, ``from``, ``to``,
        ``households``, ``street_code``.
    changes : pandas.DataFrame
        One row per old or new code: ``community_code``, ``street_code``,
        ``status`` (kept / adjusted / split / merged / new / dissolved),
        ``households_before``, ``households_after``, ``households_in``,
        ``households_out``, ``partners`` (codes households went to or came
        from).
    infeasible : pandas.DataFrame
        One row per 街道 left with a community outside the bounds (or cut
        short by the time limit): ``street_code``, ``reason``, ``reason_zh``,
        ``communities`` (codes still outside the bounds).
    islands : pandas.DataFrame
        Links added for units with no land neighbour in their 街道:
        ``unit_id``, ``linked_to``, ``gap_m``, ``street_code``.
    metrics : dict
        Before/after measures (see :func:`rebalance`).
    stations : pandas.DataFrame or None
        With ``stations=``: per new community the service floor area and
        whether it meets 30 m² per 100 households.
    streets : pandas.DataFrame
        One row per 街道: ``street_code``, ``households``, ``lower_bound``
        (fewest households any plan moves there; None where no plan can put
        every community within bounds), ``timed_out`` (the time limit cut its
        search short) and ``notes``: what the preparation found (island
        units, communities in pieces today, units above the maximum, fixed
        communities outside the bounds) and what the search had to give up,
        joined with "; ".
    preferred, band : (int, int) or None
        The preferred band and the working band headroom left (None when not asked).
    growth : pandas.DataFrame or None
        With ``growth=``: per new community ``households`` today, ``added`` by
        the horizon, ``households_horizon``, ``within_bounds``,
        ``within_bounds_horizon`` and ``leaves_band`` (within today, outside then).
    horizon : int or None
        The year of the growth.
    """

    assignment: pd.Series
    communities: gpd.GeoDataFrame
    moves: pd.DataFrame
    changes: pd.DataFrame
    infeasible: pd.DataFrame
    islands: pd.DataFrame
    metrics: dict
    min_households: int
    max_households: int
    stations: pd.DataFrame | None = None
    streets: pd.DataFrame = field(default_factory=pd.DataFrame)
    preferred: tuple[int, int] | None = None
    band: tuple[int, int] | None = None
    growth: pd.DataFrame | None = None
    horizon: int | None = None

    @property
    def leaving(self) -> pd.DataFrame:
        """The communities that are within the bounds today but not by the horizon (empty without growth)."""
        if self.growth is None:
            return pd.DataFrame(columns=["community_code", "street_code", "households", "added", "households_horizon"])
        return self.growth[self.growth["leaves_band"]].reset_index(drop=True)

    def __repr__(self) -> str:
        m = self.metrics
        return (f"RebalancePlan({m['communities_before']} -> {m['communities_after']} communities, "
                f"within {self.min_households}-{self.max_households}: {m['within_bounds_before']} -> "
                f"{m['within_bounds_after']}, moved {m['moved_households']:,} households "
                f"({m['moved_share']:.1%}), {len(self.infeasible)} 街道 infeasible)")

    def to_excel(self, path, **kwargs):
        """The change list as an Excel workbook, one sheet per 街道 (see :func:`jngis.viz.plan_to_excel`)."""
        from jngis.viz import plan_to_excel

        return plan_to_excel(self, path, **kwargs)

    def report(self, *, max_rows: int | None = 20) -> str:
        """A plain-text report for planners (Chinese headings): summary, then one
        table per touched community listing its status and the units moved in or out.

        Parameters
        ----------
        max_rows : int or None
            Most unit rows shown per community (None: all of them).
        """
        m = self.metrics
        lines = [
            f"社区规模调整方案 (community rebalancing plan), {self.min_households:,}–{self.max_households:,} 户",
            f"社区数 communities: {m['communities_before']} → {m['communities_after']}",
            f"规模达标 within bounds: {m['within_bounds_before']} ({m['within_bounds_share_before']:.1%}) → "
            f"{m['within_bounds_after']} ({m['within_bounds_share_after']:.1%})",
            f"户数 min/中位/max: {m['min_households_before']:,}/{m['median_households_before']:,.0f}/"
            f"{m['max_households_before']:,} → {m['min_households_after']:,}/"
            f"{m['median_households_after']:,.0f}/{m['max_households_after']:,}",
            f"调整户数 moved households: {m['moved_households']:,} ({m['moved_share']:.1%}); "
            f"下界 lower bound {m['lower_bound']:,}; 比值 ratio {m['moved_over_lower_bound']:.2f}",
            f"紧凑度 mean Polsby-Popper: {m['mean_polsby_popper_before']:.3f} → {m['mean_polsby_popper_after']:.3f}",
            f"连通 contiguous: {m['contiguous_share_after']:.0%}",
        ]
        if "stations_norm_met_after" in m:
            lines.append(f"服务用房达标 (30 m²/百户): {m['stations_norm_met_before']} → {m['stations_norm_met_after']}")
        if self.preferred is not None:
            lines.append(f"理想规模 preferred {self.preferred[0]:,}–{self.preferred[1]:,} 户: "
                         f"{m['within_preferred_before']} → {m['within_preferred_after']}")
        if self.band is not None:
            lines.append(f"预留增长空间 headroom band {self.band[0]:,}–{self.band[1]:,} 户: "
                         f"{m['within_headroom_band_before']} → {m['within_headroom_band_after']}")
        if self.growth is not None:
            when = f"{self.horizon} 年" if self.horizon is not None else "规划期末"
            lines.append(f"{when}新增 {m['added_households']:,} 户后超出范围的社区 communities leaving the band by "
                         f"the horizon: {m['leaving_band_by_horizon']}")
        if len(self.islands):
            lines.append(f"飞地/孤岛单元 island units linked to their nearest unit: {len(self.islands)}")
        for row in self.infeasible.itertuples():
            lines.append(f"无法达标 {row.street_code}: {row.reason_zh} ({row.reason})")
        touched = self.changes[self.changes["status"] != "kept"]
        for row in touched.itertuples():
            lines.append("")
            lines.append(f"社区 {row.community_code} [{value_label('status', row.status)} {row.status}] "
                         f"{row.households_before:,} → {row.households_after:,} 户 "
                         f"(迁入 in {row.households_in:,}, 迁出 out {row.households_out:,})"
                         + (f"; 关联 with {row.partners}" if row.partners else ""))
            rows = self.moves[(self.moves["from"] == row.community_code) | (self.moves["to"] == row.community_code)]
            if len(rows):
                shown = rows if max_rows is None else rows.head(max_rows)
                lines.append(shown[["unit_id", "from", "to", "households"]].to_string(index=False))
                if len(shown) < len(rows):
                    lines.append(f"... 另有 {len(rows) - len(shown)} 个单元 (more units, see plan.moves)")
        return "\n".join(lines)
