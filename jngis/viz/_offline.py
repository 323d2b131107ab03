"""Maps that work with no internet: folium's CDN links replaced by the vendored files, inlined.

folium adds a ``<script src>`` / ``<link>`` to the page header for Leaflet,
jQuery, Bootstrap, Font Awesome, awesome-markers and each plugin, all on public
CDNs. Planners open the maps on an intranet that reaches none of them, so
:func:`offline` swaps the page's header for one that, each time the page is
rendered, writes the vendored copy of every library the page uses
(``jngis/_assets/vendor``, listed in its ``manifest.json``) into the page and
leaves out the ones nothing on the page uses. A saved map is then a single
file that opens on another machine, and Jupyter's srcdoc iframe needs nothing
either. Anything else that still points at the internet (a plugin jngis does
not ship, a folium ``Icon`` or ``Popup`` added by the caller) is kept and
named in an :class:`~jngis.errors.OfflineWarning`.
"""

from __future__ import annotations

import base64
import functools
import re
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any, TypeVar

import folium
from branca.element import CssLink, Element, Figure, JavascriptLink

from jngis.errors import InputTypeError, OfflineWarning

__all__ = ["offline", "vendored_text"]

#: folium's resource names, and the vendored file written into the page for each.
SCRIPTS = {
    "leaflet": "leaflet/leaflet.js",
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "vectorGrid": "leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js",
    "Leaflet.Sync": "leaflet.sync/L.Map.Sync.js",
}
STYLES = {
    "leaflet_css": "leaflet/leaflet.css",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
}
_ICON_LINKS = ("awesome_markers", "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css",
               "glyphicons_css")


def _uses(kind: type) -> Callable[[list[Any]], bool]:
    return lambda elements: any(isinstance(element, kind) for element in elements)


def _uses_jquery(elements: list[Any]) -> bool:
    # folium.Popup builds its content with $(...); Map.keep_in_front waits for $(document).ready
    return any(isinstance(e, folium.Popup) or getattr(e, "objects_to_stay_in_front", None) for e in elements)


#: folium's default links that the jngis maps do not use, and the test of whether an element
#: on the page (added by the caller) does: then the link stays, with an OfflineWarning.
UNUSED: dict[str, Callable[[list[Any]], bool]] = {
    "jquery": _uses_jquery,
    "bootstrap": lambda elements: False,
    "bootstrap_css": lambda elements: False,
    **{name: _uses(folium.Icon) for name in _ICON_LINKS},
}

_VENDOR = resources.files("jngis") / "_assets" / "vendor"


@functools.cache
def vendored_text(path: str) -> str:
    """The text of a vendored file (``package/file``, as in the manifest), ready to inline.

    Stylesheets get their images as ``data:`` URIs (a relative ``url(images/...)``
    would be fetched next to the page, where there is nothing); Leaflet gets its
    default marker images the same way.
    """
    text = (_VENDOR / path).read_text(encoding="utf-8")
    folder = path.rsplit("/", 1)[0]
    if path.endswith(".css"):
        text = re.sub(r"url\((images/[\w.-]+\.png)\)", lambda m: f"url({_data_uri(f'{folder}/{m.group(1)}')})",
                      text)
    if path == SCRIPTS["leaflet"]:
        icons = {option: _data_uri(f"leaflet/images/{file}") for option, file in
                 (("iconUrl", "marker-icon.png"), ("iconRetinaUrl", "marker-icon-2x.png"),
                  ("shadowUrl", "marker-shadow.png"))}
        options = ", ".join(f'{option}: "{uri}"' for option, uri in icons.items())
        text += f'\nL.Icon.Default.imagePath = ""; L.Icon.Default.mergeOptions({{{options}}});\n'
    closing = "</script" if path.endswith(".js") else "</style"
    if closing in text.lower():  # would end the element early; none of the vendored files has it
        raise RuntimeError(f"vendored {path} contains {closing!r} and cannot be inlined")
    return text


def _data_uri(path: str) -> str:
    return "data:image/png;base64," + base64.b64encode((_VENDOR / path).read_bytes()).decode("ascii")


class Inline(Element):
    """A vendored script or stylesheet written into the page."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._name = "Inline"
        self.path = path

    def render(self, **kwargs: Any) -> str:
        tag = "script" if self.path.endswith(".js") else "style"
        return f"<{tag}>/* jngis vendored {self.path} */\n{vendored_text(self.path)}</{tag}>"


def _elements(element: Any) -> Iterator[Any]:
    yield element
    for child in list(element._children.values()):
        yield from _elements(child)


def _offline_children(figure: Any, children: OrderedDict[str, Any]) -> OrderedDict[str, Any]:
    """The header's children with CDN links inlined or left out; warns of what still needs the internet."""
    elements = list(_elements(figure))
    online = []
    kept: OrderedDict[str, Any] = OrderedDict()
    for name, child in children.items():
        if isinstance(child, (JavascriptLink, CssLink)):
            vendored = (SCRIPTS if isinstance(child, JavascriptLink) else STYLES).get(name)
            if vendored is not None:
                child = Inline(vendored)
            elif name in UNUSED and not UNUSED[name](elements):
                continue
            elif str(child.url).startswith(("http:", "https:", "//")):
                online.append(f"{name} ({child.url})")
        kept[name] = child
    if online:
        warnings.warn(
            f"this map loads {', '.join(online)} from the internet, for an element added to it that jngis "
            "does not ship (a folium plugin, Icon or Popup): that part will be missing without internet; "
            "jngis inlines Leaflet, Leaflet.markercluster, Leaflet.VectorGrid and Leaflet.Sync",
            OfflineWarning, stacklevel=2)
    return kept


class _OfflineHeader(Element):
    """The page header: rendered after everything else, so it sees every link the page asked for."""

    def render(self, **kwargs: Any) -> str:
        self._children = _offline_children(self._parent, self._children)
        return super().render(**kwargs)


M = TypeVar("M", bound=Element)


def offline(m: M) -> M:
    """Make a folium map (or DualMap, or Figure) work with no network; returns ``m``.

    Every script and stylesheet the page uses is written into it from the copies
    installed with jngis; folium's jQuery, Bootstrap, Font Awesome and
    awesome-markers links are left out unless an element on the page needs them.
    Applies to every later render (``m.save``, Jupyter), elements added later
    included. The jngis maps call it already; use it on your own folium maps.

    Examples
    --------
    >>> import folium
    >>> page = offline(folium.Map(tiles=None)).get_root().render()
    >>> "cdn.jsdelivr.net" in page, "jquery" in page, "L.Icon.Default.imagePath" in page
    (False, False, True)
    """
    figure = m.get_root()
    if not isinstance(figure, Figure):
        raise InputTypeError(f"offline: m is a {type(m).__name__} not placed in a branca Figure; expected a "
                             "folium.Map, a folium.plugins.DualMap or a Figure")
    if not isinstance(figure.header, _OfflineHeader):
        header = _OfflineHeader()
        header._children = figure.header._children
        header._parent = figure
        figure.header = header
    return m
