"""Matplotlib figures for printed reports: :func:`size_figure`, :func:`plan_figure`, :func:`grids_figure`.

The fonts and the English fallback are described in :mod:`jngis.viz`.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import geopandas as gpd
import numpy as np

from jngis import _checks
from jngis.codes import parent, value_label
from jngis.errors import JngisWarning, ParameterError
from jngis.viz import _inputs

__all__ = ["CJK_FONTS", "cjk_font", "size_figure", "plan_figure", "grids_figure"]

#: Font families with Chinese glyphs, in order of preference.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Zen Hei",
             "WenQuanYi Micro Hei", "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC",
             "Arial Unicode MS")
_BAR_COLOUR = "#3182bd"
_BAND_COLOUR = "#a6d96a"
_WHAT_EN = {"社区": "communities", "网格": "grids"}


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The first installed font family with Chinese glyphs, or None.

    Examples
    --------
    >>> cjk_font() is None or isinstance(cjk_font(), str)
    True
    """
    from matplotlib import font_manager

    manager = font_manager.fontManager
    for attempt in range(2):
        installed = {font.name for font in manager.ttflist}
        for family in CJK_FONTS:
            if family in installed:
                return family
        if attempt == 0:
            # matplotlib's font cache predates fonts installed later (e.g. by apt): add those files
            known = {font.fname for font in manager.ttflist}
            for path in font_manager.findSystemFonts():
                if path not in known:
                    try:
                        manager.addfont(path)
                    except (OSError, RuntimeError, ValueError):  # unreadable font file: skip it
                        continue
    return None


def _text(zh: str, en: str) -> str:
    """Chinese when a CJK font is installed, else the English text (see :mod:`jngis.viz`)."""
    return zh if cjk_font() else en


@functools.lru_cache(maxsize=1)
def _warn_no_font() -> None:
    warnings.warn("no font with Chinese glyphs is installed (e.g. apt-get install fonts-wqy-zenhei); "
                  "figures use English labels", JngisWarning, stacklevel=3)


def _new_figure(ncols: int, width: float = 11.0, height: float = 4.2):
    """A figure (not registered with pyplot, so nothing leaks between calls) with a CJK font."""
    from matplotlib.figure import Figure

    family = cjk_font()
    if family is None:
        _warn_no_font()
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes, family


def _set_font(fig, family: str | None) -> None:
    for ax in fig.axes:  # counts of communities / grids are whole numbers
        ax.yaxis.get_major_locator().set_params(integer=True)
    if family is None:
        return
    for text in fig.findobj(lambda artist: hasattr(artist, "set_fontfamily")):
        text.set_fontfamily(family)  # CJK fonts carry Latin glyphs too
        if text.get_fontweight() in ("normal", 400):
            text.set_fontweight(500)  # CJK fonts such as WenQuanYi Zen Hei have only a medium face


def _bounds(func: str, low: Any, high: Any) -> tuple[int, int]:
    low = _checks.integer(func, "min_households", low, minimum=0)
    high = _checks.integer(func, "max_households", high, minimum=1)
    if low >= high:
        raise ParameterError(f"{func}: min_households={low} >= max_households={high}; expected min < max")
    return low, high


def _size_panels(before: np.ndarray, later: np.ndarray | None, what: str) -> list[tuple[np.ndarray, str]]:
    """(values, heading) of each panel: one for a single layer, before and after for a redraw."""
    what_en = _WHAT_EN.get(what, "areas")
    if later is None:
        return [(before, _text(f"{what}规模 ({len(before):,} 个)", f"{what_en} ({len(before):,})"))]
    return [(before, _text(f"调整前 ({len(before):,} 个{what})", f"before ({len(before):,} {what_en})")),
            (later, _text(f"调整后 ({len(later):,} 个{what})", f"after ({len(later):,} {what_en})"))]


def _size_panel(ax, values: np.ndarray, heading: str, edges: np.ndarray, low: int, high: int,
                what: str) -> float:
    """One histogram with the band shaded; returns its highest bar."""
    below, above = int((values < low).sum()), int((values > high).sum())
    ax.axvspan(low, high, color=_BAND_COLOUR, alpha=0.35,
               label=_text(f"法定范围 {low:,}–{high:,} 户", f"band {low:,}-{high:,} households"))
    counts, _, _ = ax.hist(values, bins=edges, color=_BAR_COLOUR, edgecolor="white")
    ax.set_title(f"{heading}\n" + _text(f"低于下限 {below:,}, 超过上限 {above:,}",
                                        f"{below:,} below, {above:,} above"))
    ax.set_xlabel(_text("户数", "households"))
    ax.set_ylabel(_text(f"{what}数", f"number of {_WHAT_EN.get(what, 'areas')}"))
    ax.legend(loc="upper right")
    return float(counts.max())


def size_figure(
    households: Any,
    after: Any = None,
    *,
    min_households: int = 1000,
    max_households: int = 3000,
    bins: int = 30,
    what: str = "社区",
):
    """Histogram of community (or grid) sizes, before and after a redraw, with the legal band shaded.

    Parameters
    ----------
    households : array-like
        Households per community (today's, or the only one).
    after : array-like, optional
        Households per community after a redraw: a second panel on the same
        bins and scale.
    min_households, max_households : int
        The band to shade; the panel titles count the communities outside it.
    bins : int
        Number of bins.
    what : str
        What is counted, in Chinese (``"社区"``, ``"网格"``), for the labels.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = size_figure([800, 1500, 2500, 3600], [1200, 1500, 2500, 2900, 1100])
    >>> len(fig.axes)
    2
    """
    func = "size_figure"
    before = _inputs.households(func, "households", households)
    later = None if after is None else _inputs.households(func, "after", after)
    low, high = _bounds(func, min_households, max_households)
    bins = _checks.integer(func, "bins", bins, minimum=1)
    panels = _size_panels(before, later, what)
    everything = np.concatenate([values for values, _ in panels])
    edges = np.histogram_bin_edges(everything, bins=bins, range=(0, max(everything.max(), high) * 1.02))
    fig, axes, family = _new_figure(len(panels))
    top = max(_size_panel(ax, values, heading, edges, low, high, what)
              for ax, (values, heading) in zip(axes, panels))
    for ax in axes:  # the same scale on both sides
        ax.set_ylim(0, top * 1.1 + 0.5)
    _set_font(fig, family)
    return fig


def plan_figure(plan: Any, *, bins: int = 30):
    """:func:`size_figure` of a rebalance plan: community sizes before and after.

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.rebalance import rebalance
    >>> fig = plan_figure(rebalance(load_slice().units))
    >>> len(fig.axes)
    2
    """
    _inputs.plan("plan_figure", "plan", plan)
    changes = plan.changes
    existed = changes[changes["status"] != "new"]
    return size_figure(existed["households_before"].to_numpy(), plan.communities["households"].to_numpy(),
                       min_households=int(plan.min_households), max_households=int(plan.max_households),
                       bins=bins)


def _grids_per_community_panel(ax, grids: gpd.GeoDataFrame) -> None:
    community = (grids["community_code"] if "community_code" in grids.columns
                 else parent(grids["grid_code"].astype(str), "community"))
    per_community = community.value_counts()
    counts = per_community.value_counts().sort_index()
    ax.bar(counts.index, counts.to_numpy(), color=_BAR_COLOUR, width=0.8)
    ax.set_title(_text(f"每个社区的网格数 ({len(per_community):,} 个社区, {len(grids):,} 个网格)",
                       f"grids per community ({len(per_community):,} communities, {len(grids):,} grids)"))
    ax.set_xlabel(_text("网格数", "grids"))
    ax.set_ylabel(_text("社区数", "communities"))
    ax.xaxis.get_major_locator().set_params(integer=True)


def _grid_households_panel(ax, grids: gpd.GeoDataFrame, low: int, high: int) -> None:
    residential = grids[grids["grid_type"] == "residential"] if "grid_type" in grids.columns else grids
    households = residential["households"].to_numpy(float)
    within = float(((households >= low) & (households <= high)).mean()) if len(households) else float("nan")
    ax.axvspan(low, high, color=_BAND_COLOUR, alpha=0.35,
               label=_text(f"目标 {low:,}–{high:,} 户", f"target {low:,}-{high:,} households"))
    if len(households):
        ax.hist(households, bins=30, color=_BAR_COLOUR, edgecolor="white")
    ax.set_title(_text(f"{value_label('grid_type', 'residential')}户数 (达标 {within:.0%})",
                       f"households per residential grid ({within:.0%} within)"))
    ax.set_xlabel(_text("户数", "households"))
    ax.set_ylabel(_text("网格数", "grids"))
    ax.legend(loc="upper right")


def grids_figure(grids: gpd.GeoDataFrame, *, min_households: int = 300, max_households: int = 500):
    """Grids per community and households per residential grid (with the target band shaded).

    Examples
    --------
    >>> from jngis.sample import load_slice
    >>> from jngis.grids import make_grids
    >>> city = load_slice()
    >>> fig = grids_figure(make_grids(city.communities, city.units))
    >>> len(fig.axes)
    2
    """
    func = "grids_figure"
    _inputs.layer(func, "grids", grids)
    _checks.columns(func, "grids", grids, ["grid_code", "households"])
    low = _checks.integer(func, "min_households", min_households, minimum=0)
    high = _checks.integer(func, "max_households", max_households, minimum=1)
    fig, axes, family = _new_figure(2)
    _grids_per_community_panel(axes[0], grids)
    _grid_households_panel(axes[1], grids, low, high)
    _set_font(fig, family)
    return fig
