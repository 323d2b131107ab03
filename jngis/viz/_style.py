"""Colours, quantile classes, and the legend and title boxes of the maps."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import branca.utilities
import folium
import numpy as np
import pandas as pd
from branca.element import MacroElement
from folium.template import Template

from jngis.errors import ParameterError

MISSING_COLOUR = "#bdbdbd"
#: Legend row: (fill colour, outline colour, text).
Entry = tuple[str, str, str]


def colours(n: int, scheme: str = "YlOrRd") -> list[str]:
    """``n`` colours of a ColorBrewer sequential scheme, light to dark."""
    if n <= 0:
        return []
    palette = branca.utilities.color_brewer(scheme, max(n, 3))
    if n < 3:  # ColorBrewer has no 1- or 2-class series: take the ends of the 3-class one
        palette = [palette[-1]] if n == 1 else [palette[0], palette[-1]]
    return list(palette)


def scheme(func: str, name: str, value: Any) -> str:
    """A ColorBrewer scheme name branca knows."""
    try:
        colours(3, value)
    except Exception:  # noqa: BLE001 - branca raises a bare ValueError/KeyError for unknown names
        raise ParameterError(f"{func}: {name}={value!r}; expected a ColorBrewer sequential scheme such "
                             "as 'YlOrRd', 'Blues', 'Greens', 'PuRd'") from None
    return value


def quantile_classes(values: pd.Series, k: int) -> tuple[np.ndarray, np.ndarray, bool]:
    """Quantile class breaks (unique, rounded to integers for count data) and each value's class.

    Returns ``(breaks, klass, integer)``: class i holds values in
    ``(breaks[i], breaks[i+1]]`` (the first class also holds ``breaks[0]``);
    missing values get class -1.
    """
    numeric = pd.to_numeric(values, errors="coerce").astype(float)
    known = numeric.dropna().to_numpy()
    klass = np.full(len(numeric), -1, dtype=np.int64)
    if len(known) == 0:
        return np.array([]), klass, True
    integer = bool(np.all(np.equal(np.mod(known, 1), 0)))
    breaks = np.quantile(known, np.linspace(0, 1, k + 1))
    if integer:
        breaks = np.round(breaks)
    breaks = np.unique(breaks)
    if len(breaks) == 1:  # every value equal: one class
        breaks = np.array([breaks[0], breaks[0]])
    mask = numeric.notna().to_numpy()
    klass[mask] = np.clip(np.searchsorted(breaks[1:-1], numeric.to_numpy()[mask], side="left"),
                          0, len(breaks) - 2)
    return breaks, klass, integer


def class_labels(breaks: np.ndarray, integer: bool) -> list[str]:
    """Legend text of each class (``1,001 – 2,000`` for counts)."""
    labels = []
    for i in range(len(breaks) - 1):
        low, high = breaks[i], breaks[i + 1]
        if integer:
            start = int(low) if i == 0 else int(low) + 1
            labels.append(f"{start:,}" if start >= int(high) else f"{start:,} – {int(high):,}")
        else:
            labels.append(f"{low:,.4g} – {high:,.4g}")
    return labels


class Classes(NamedTuple):
    """A layer coloured by quantile classes of one column."""

    fills: np.ndarray
    """Fill colour of each row (grey where the value is missing)."""
    entries: list[Entry]
    """Legend rows: each class with its number of polygons, then the missing ones."""


def classify(values: pd.Series, k: int, scheme_name: str, unit: str) -> Classes:
    """Colour ``values`` by ``k`` quantile classes; ``unit`` names what is counted (``网格``)."""
    breaks, klass, integer = quantile_classes(values, k)
    palette = colours(len(breaks) - 1, scheme_name)
    fills = np.array([palette[c] if c >= 0 else MISSING_COLOUR for c in klass], dtype=object)
    counts = np.bincount(klass[klass >= 0], minlength=len(palette)) if palette else np.array([])
    entries = [(colour, "#777", f"{text}  ({count:,} 个{unit})")
               for colour, text, count in zip(palette, class_labels(breaks, integer), counts)]
    if (klass < 0).any():
        entries.append((MISSING_COLOUR, "#777", f"无数据 no data  ({int((klass < 0).sum()):,} 个{unit})"))
    return Classes(fills, entries)


# Legend and titles are Leaflet controls, so each side of a DualMap gets its own.


class Control(MacroElement):
    """An HTML box placed on its parent map as a Leaflet control."""

    _template = Template("""
{% macro header(this, kwargs) %}
<style>
.jngis-control { background: rgba(255,255,255,0.92); padding: 6px 9px; border-radius: 4px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); font: 12px/1.45 "Microsoft YaHei","PingFang SC","Noto Sans CJK SC",
  "WenQuanYi Zen Hei",sans-serif; color: #222; max-width: 260px; }
.jngis-control .jngis-title { font-weight: bold; margin-bottom: 3px; }
.jngis-control i { display: inline-block; width: 14px; height: 11px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid #777; }
</style>
{% endmacro %}
{% macro script(this, kwargs) %}
(function() {
    var control = L.control({position: {{ this.position_js }}});
    control.onAdd = function(map) {
        var div = L.DomUtil.create("div", {{ this.css_js }});
        div.innerHTML = {{ this.html_js }};
        L.DomEvent.disableClickPropagation(div);
        return div;
    };
    control.addTo({{ this._parent.get_name() }});
})();
{% endmacro %}
""")

    def __init__(self, body: str, *, position: str = "bottomright", css_class: str = "jngis-legend") -> None:
        super().__init__()
        self._name = "JngisControl"
        # ensure_ascii=False keeps the Chinese readable in the page; "</" cannot close the script
        self.html_js = json.dumps(body, ensure_ascii=False).replace("</", "<\\/")
        self.position_js = json.dumps(position)
        self.css_js = json.dumps(f"jngis-control {css_class}")


def legend(title: str, entries: Sequence[Entry], note: str = "") -> Control:
    """A legend box: a title, one row per entry, an optional note."""
    rows = "".join(
        f'<div class="jngis-legend-row"><i style="background:{fill};border-color:{edge}"></i>'
        f"{html.escape(text)}</div>" for fill, edge, text in entries)
    foot = f'<div class="jngis-note">{html.escape(note)}</div>' if note else ""
    return Control(f'<div class="jngis-title">{html.escape(title)}</div>{rows}{foot}')


def title(text: str) -> Control:
    """A title box at the top right of a map."""
    return Control(f'<div class="jngis-title">{html.escape(text)}</div>', position="topright",
                   css_class="jngis-map-title")


def finish(m: folium.Map, box: Control, heading: str | None, *, collapsed: bool = False) -> folium.Map:
    """Add the legend, the title (if any) and the layer control: the last steps of every map."""
    box.add_to(m)
    if heading:
        title(heading).add_to(m)
    folium.LayerControl(collapsed=collapsed).add_to(m)
    return m
