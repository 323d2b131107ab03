"""Parsing a normalised address into its components, driven by the city's own names.

A :class:`Gazetteer` holds every name the city knows (districts, 街道,
communities, roads with their old names, compounds with their aliases); the
parser walks the text once, taking the longest known name at each position,
numbers with their number word (号, 号楼, 单元, 室) and the unknown text in
between. A dictionary of one city's names finds its districts, roads and
compounds more reliably than a country-wide parser (cpca, jionlp), which knows
the district and county names but none of the roads and compounds the hotline
needs.

Examples
--------
>>> g = Gazetteer({"历下区": [("district", "370102")], "文化东路": [("road", "文化东路")],
...                "山大新村": [("compound", "山大新村")]}, prefixes=("山东省", "济南市"))
>>> c = parse("济南市历下区文化东路68号山大新村3号楼2单元", g)
>>> c.district, c.road, c.door, c.compound, c.building, c.entrance
('370102', '文化东路', 68, '山大新村', 3, 2)
>>> parse("文华东路68号3号楼", g).road_text
'文华东路'
>>> parse("北京市朝阳区建国路1号", g).outside
'北京'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from jngis.address.normalise import PROVINCES

__all__ = ["Gazetteer", "Components", "parse"]

_NUMBER = re.compile(r"(\d+)(号楼|号|单元|室|层)?")
_FOREIGN_CITY = re.compile(r"^([\u4e00-\u9fff]{2,3})(?:市|省|自治区)")


class Gazetteer:
    """Every known name of a city, normalised: name -> [(kind, key), ...].

    ``prefixes`` are the province and city the addresses may start with
    (e.g. ``("山东省", "济南市")``); each is also accepted without its 省/市.
    """

    def __init__(self, names: Mapping[str, Iterable[tuple[str, str]]], prefixes: Sequence[str] = ()) -> None:
        self.names = {name: tuple(entries) for name, entries in names.items() if len(name) >= 2}
        self.lengths = sorted({len(n) for n in self.names}, reverse=True)
        # the lengths of the names that start with each character, longest first: a position
        # whose character starts no name costs one dict look-up, not one per length
        starting: dict[str, set[int]] = {}
        for name in self.names:
            starting.setdefault(name[0], set()).add(len(name))
        self._starting = {c: tuple(sorted(lengths, reverse=True)) for c, lengths in starting.items()}
        short = {p[:-1] for p in prefixes if p[-1:] in ("省", "市") and len(p) > 2}
        self.prefixes = tuple(sorted(set(prefixes) | short, key=len, reverse=True))
        self.own_provinces = {p for p in PROVINCES if any(x.startswith(p) for x in self.prefixes)}

    def longest(self, text: str, at: int) -> tuple[str, tuple[tuple[str, str], ...]] | None:
        """The longest known name starting at position ``at``."""
        names = self.names
        for length in self._starting.get(text[at:at + 1], ()):
            entries = names.get(text[at:at + length])
            if entries is not None:
                return text[at:at + length], entries
        return None


@dataclass
class Components:
    """What an address says: exact names found (keys), or the unknown text where a name should be."""

    district: str | None = None
    street: str | None = None
    community: str | None = None
    road: str | None = None
    compound: str | None = None
    door: int | None = None
    building: int | None = None
    entrance: int | None = None
    room: int | None = None
    road_text: str | None = None
    compound_text: str | None = None
    road_alt: str | None = None      # unknown text + the road after it: 背千佛大街 may be 北千佛大街
    compound_alt: str | None = None  # unknown text + the compound after it
    outside: str | None = None
    rest: list[str] = field(default_factory=list)


def _strip_prefixes(text: str, gazetteer: Gazetteer) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in gazetteer.prefixes:
            if text.startswith(prefix) and gazetteer.longest(text, 0) is None:
                text, changed = text[len(prefix):], True
    return text


def _outside(text: str, gazetteer: Gazetteer) -> str | None:
    if not text or gazetteer.longest(text, 0) is not None:
        return None
    for province in PROVINCES:
        if text.startswith(province) and province not in gazetteer.own_provinces:
            return province
    match = _FOREIGN_CITY.match(text)
    if match and not any(name.startswith(match.group(1)) for name in gazetteer.names):
        return match.group(0)
    return None


def _tokens(text: str, gazetteer: Gazetteer) -> list[tuple[str, object, str]]:
    """(kind, value, word) tokens: ("name", entries, name), ("number", n, word), ("text", chunk, "")."""
    tokens: list[tuple[str, object, str]] = []
    chunk: list[str] = []
    at = 0
    while at < len(text):
        found = gazetteer.longest(text, at) if not text[at].isdigit() else None
        number = _NUMBER.match(text, at) if found is None and text[at].isdigit() else None
        if found is None and number is None:
            chunk.append(text[at])
            at += 1
            continue
        if chunk:
            tokens.append(("text", "".join(chunk), ""))
            chunk = []
        if found is not None:
            tokens.append(("name", found[1], found[0]))
            at += len(found[0])
        else:
            assert number is not None
            tokens.append(("number", int(number.group(1)), number.group(2) or ""))
            at = number.end()
    if chunk:
        tokens.append(("text", "".join(chunk), ""))
    return tokens


def _take_name(c: Components, entries: tuple[tuple[str, str], ...], next_is_door: bool) -> str:
    kinds = {kind: key for kind, key in entries}
    # A name that is both a road and a compound is the road when a door number follows.
    order = ("road", "compound") if next_is_door else ("compound", "road")
    for kind in ("district", "street", "community", *order):
        if kind in kinds and getattr(c, kind) is None:
            setattr(c, kind, kinds[kind])
            return kind
    return "name"


def _take_number(c: Components, value: int, word: str, last: str) -> str:
    if word == "号楼" or (word == "号" and (c.door is not None or last == "compound")):
        target = "building"
    elif word == "号" or (not word and c.door is None and last in ("road", "road_text")):
        target = "door"
    elif word == "单元":
        target = "entrance"
    elif not word and c.building is None and last in ("compound", "compound_text", "door"):
        target = "building"
    else:
        target = "room"
    if getattr(c, target) is None:
        setattr(c, target, value)
    return target


def parse(text: str, gazetteer: Gazetteer) -> Components:
    """The components of a normalised address (see :func:`jngis.address.normalise`)."""
    c = Components()
    text = _strip_prefixes(text, gazetteer)
    c.outside = _outside(text, gazetteer)
    if c.outside is not None:
        return c
    tokens = _tokens(text, gazetteer)
    last = ""
    for i, (kind, value, word) in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        next_is_door = following is not None and following[0] == "number" and following[2] in ("号", "")
        if kind == "name":
            last = _take_name(c, value, next_is_door)  # type: ignore[arg-type]
            previous = tokens[i - 1] if i else None
            if previous is not None and previous[0] == "text" and last in ("road", "compound"):
                setattr(c, last + "_alt", str(previous[1]) + word)
        elif kind == "number":
            last = _take_number(c, value, word, last)  # type: ignore[arg-type]
        elif following is not None and following[0] == "name":
            c.rest.append(str(value))  # may be a typo'd head of the name that follows (see road_alt)
        elif next_is_door and c.road is None and c.road_text is None and c.door is None:
            c.road_text, last = str(value), "road_text"
        elif c.compound is None and c.compound_text is None and (c.door is not None or c.road is not None
                                                                or c.road_text is not None or following):
            c.compound_text, last = str(value), "compound_text"
        else:
            c.rest.append(str(value))
    return c
