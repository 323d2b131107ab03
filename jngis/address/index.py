"""``AddressIndex``: the unit, point, grid, community and 街道 an address names.

The index is built once from a units layer carrying standard addresses
(``road``, ``door_number``; optional ``compound_name``, ``building``,
``aliases``). A lookup normalises the text, parses it against the city's own
names and resolves it in two steps:

1. exact: the door (road + number) and the compound named, which must agree,
   then the building;
2. fuzzy (rapidfuzz), only for a name that is not known exactly: the roads or
   compounds that sound like it, kept only where the door and building the
   address gives exist.

It never guesses silently: an answer is ``matched`` only when its score
reaches ``threshold`` and beats the next candidate by ``margin``; otherwise it
is ``ambiguous`` with the candidates, or ``not_found`` with the reason.
A compound named without a building is matched when all its buildings lie in
one grid (``level="compound"``: the grid is what the hotline needs).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rapidfuzz import fuzz, process

from jngis import _checks, codes
from jngis.address.normalise import normalise
from jngis.address.parse import Components, Gazetteer, parse
from jngis.errors import InputTypeError, ParameterError

__all__ = ["AddressIndex", "RESULT_COLUMNS", "place_rows"]

#: Columns of :meth:`AddressIndex.lookup`.
RESULT_COLUMNS = ("input", "status", "unit_id", "lon", "lat", "grid_code", "community_code", "street_code",
                  "score", "level", "candidates", "reason")
_MAX_TEXT = 200          # longer input is not an address (a description pasted in)
_FUZZY_FLOOR = 60.0      # names below this similarity are not candidates at all
_CANDIDATES = 5
_REQUIRED = ["unit_id", "street_code", "community_code", "road", "door_number"]


@dataclass
class _Door:
    """The units at one door number of a road (a compound or a single building)."""

    road: str
    door: int
    street_code: str
    compound: str | None
    buildings: dict[int | None, int] = field(default_factory=dict)  # building -> unit row


@dataclass
class _Hit:
    row: int
    score: float
    level: str = "building"


def _aliases(value: Any) -> list[str]:
    return [a for a in str(value).split("|") if a] if isinstance(value, str) else []


class AddressIndex:
    """Look up Chinese addresses in a units layer.

    Parameters
    ----------
    units : GeoDataFrame
        Units with ``unit_id``, ``street_code``, ``community_code``, ``road``,
        ``door_number`` and optionally ``compound_name``, ``building``, ``aliases``
        (``|``-separated: old addresses such as ``府前街12号``, other compound names)
        and ``grid_code``; any CRS.
    districts, streets, communities : GeoDataFrame, optional
        Their ``name`` columns are names an address may contain.
    grids : GeoDataFrame, optional
        Gives each unit its grid when ``units`` has no ``grid_code``.
    prefixes : sequence of str
        Province and city an address may start with (``("山东省", "济南市")``).
    threshold : float
        Lowest score (0-100) of a ``matched`` answer.
    margin : float
        How far a match must lead the next candidate.

    Examples
    --------
    >>> import jngis
    >>> from jngis.address import JINAN_PREFIXES
    >>> city = jngis.load_sample()  # its units carry standard addresses
    >>> units = city.units
    >>> index = AddressIndex(units, districts=city.districts, grids=city.grids, prefixes=JINAN_PREFIXES)
    >>> first = units.iloc[0]
    >>> hit = index.locate(first["address"])
    >>> hit["status"], hit["unit_id"] == first["unit_id"]
    ('matched', True)
    >>> index.locate("北京市朝阳区建国路1号")["status"]
    'not_found'
    """

    def __init__(self, units, *, districts=None, streets=None, communities=None, grids=None,
                 prefixes: Sequence[str] = (), threshold: float = 80.0, margin: float = 8.0) -> None:
        func = "AddressIndex"
        units = _checks.geodataframe(func, "units", units, empty_ok=False, required=_REQUIRED)
        if units.crs is None:
            raise _checks.CRSError(f"{func}: units has no CRS; expected any CRS (the points are given in CGCS2000)")
        points = units.geometry.representative_point()
        lonlat = points.to_crs("EPSG:4490")
        if "grid_code" in units.columns:
            grid = units["grid_code"]
        elif grids is not None:
            from jngis.assign import assign  # only when the grids must be found

            grid = assign(points.to_frame("geometry").set_geometry("geometry").to_crs(grids.crs),
                          grids, key="grid_code")
        else:
            grid = pd.Series([None] * len(units))
        self._build(units, lonlat.x.to_numpy(), lonlat.y.to_numpy(), grid, districts, streets, communities,
                    prefixes, threshold, margin)

    @classmethod
    def from_points(cls, table: pd.DataFrame, *, districts=None, streets=None, communities=None,
                    prefixes: Sequence[str] = (), threshold: float = 80.0, margin: float = 8.0) -> AddressIndex:
        """An index of rows that already hold their point (``lon``, ``lat``, CGCS2000) and ``grid_code``.

        What the store keeps (:mod:`jngis.store.addresses`): no geometry to handle, so a
        small index of a few hundred candidate rows is built in a few milliseconds.
        """
        func = "AddressIndex.from_points"
        table = _checks.dataframe(func, "table", table)
        _checks.columns(func, "table", table, [*_REQUIRED, "lon", "lat", "grid_code"])
        if not len(table):
            raise ParameterError(f"{func}: table is empty; expected at least one unit")
        index = cls.__new__(cls)
        index._build(table, table["lon"].to_numpy(float), table["lat"].to_numpy(float), table["grid_code"],
                     districts, streets, communities, prefixes, threshold, margin)
        return index

    def _build(self, units, lon, lat, grid, districts, streets, communities, prefixes, threshold, margin) -> None:
        func = "AddressIndex"
        self.threshold = _checks.number(func, "threshold", threshold, minimum=0, maximum=100)
        self.margin = _checks.number(func, "margin", margin, minimum=0, maximum=100)
        if isinstance(prefixes, str) or not all(isinstance(p, str) for p in prefixes):
            raise InputTypeError(f"{func}: prefixes={prefixes!r}; expected a sequence of strings")
        self._table(units, lon, lat, grid)
        names: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for layer, kind, key in ((districts, "district", "district_code"), (streets, "street", "street_code"),
                                 (communities, "community", "community_code")):
            if layer is not None:
                _checks.columns(func, kind + "s", _checks.dataframe(func, kind + "s", layer), [key, "name"])
                for code, name in zip(layer[key].astype(str), layer["name"].astype(str)):
                    names[normalise(name)].append((kind, code))
                    if kind == "district" and name[-1:] in "区县市" and len(name) > 2:
                        names[normalise(name[:-1])].append((kind, code))
        self._doors(units, names)
        self.gazetteer = Gazetteer(names, prefixes=tuple(prefixes))

    def _table(self, units, lon, lat, grid) -> None:
        self._lon = np.round(np.asarray(lon, float), 6)
        self._lat = np.round(np.asarray(lat, float), 6)
        self._unit = units["unit_id"].astype(str).to_numpy(dtype=object)
        self._street = units["street_code"].astype(str).to_numpy(dtype=object)
        self._community = units["community_code"].astype(str).to_numpy(dtype=object)
        self._grid = np.array([None if pd.isna(g) else str(g) for g in grid], dtype=object)
        self._label = np.array([
            f"{r}{int(d)}号" + (c if isinstance(c, str) else "") + ("" if pd.isna(b) else f"{int(b)}号楼")
            for r, d, c, b in zip(units["road"].tolist(), units["door_number"].tolist(),
                                  units.get("compound_name", pd.Series([None] * len(units))).tolist(),
                                  units.get("building", pd.Series([pd.NA] * len(units))).tolist())], dtype=object)

    def _doors(self, units, names: dict[str, list[tuple[str, str]]]) -> None:  # noqa: C901 - one pass over units
        self._by_door: dict[tuple[str, int], int] = {}
        self._by_compound: dict[str, list[int]] = defaultdict(list)
        self._door_list: list[_Door] = []
        self._roads_in: dict[str, set[str]] = defaultdict(set)
        compounds = units.get("compound_name", pd.Series([None] * len(units), index=units.index))
        buildings = units.get("building", pd.Series([pd.NA] * len(units), index=units.index))
        aliases = units.get("aliases", pd.Series([None] * len(units), index=units.index))
        doors = pd.to_numeric(units["door_number"], errors="coerce")
        if doors.isna().any() or (doors <= 0).any():
            bad = units.index[(doors.isna() | (doors <= 0)).to_numpy()][0]
            raise ParameterError(f"AddressIndex: units row {bad!r} has door_number="
                                 f"{units.loc[bad, 'door_number']!r}; expected a positive integer")
        for row, (road, door, comp, bld, alias) in enumerate(zip(  # plain lists: arrow strings iterate slowly
                units["road"].tolist(), doors.astype(int).tolist(), compounds.tolist(), buildings.tolist(),
                aliases.tolist())):
            road, comp = normalise(str(road)), (normalise(comp) if isinstance(comp, str) and comp else None)
            key = (road, int(door))
            if key not in self._by_door:
                self._by_door[key] = len(self._door_list)
                self._door_list.append(_Door(road, int(door), self._street[row], comp))
                if comp:
                    self._by_compound[comp].append(self._by_door[key])
                    names[comp].append(("compound", comp))
                names[road].append(("road", road))
                self._roads_in[codes.parent(self._street[row], "district")].add(road)
            entry = self._door_list[self._by_door[key]]
            entry.buildings[None if pd.isna(bld) else int(bld)] = row
            for other_name in _aliases(alias):
                self._alias(normalise(other_name), road, key, names)
        for name in names:  # one entry per (kind, key)
            names[name] = list(dict.fromkeys(names[name]))
        self._roads = sorted({d.road for d in self._door_list})
        self._compounds = sorted(self._by_compound)

    def _alias(self, alias: str, road: str, key: tuple[str, int], names) -> None:
        """An old address ``府前街12号`` names the same door; a bare name is another compound name."""
        door = self._by_door[key]
        if alias.endswith("号") and alias[:-1].rstrip("0123456789") != alias[:-1]:
            old_road = alias[:-1].rstrip("0123456789")
            number = int(alias[len(old_road):-1])
            self._by_door.setdefault((old_road, number), door)
            names[old_road].append(("road", old_road))
            self._roads_in[codes.parent(self._door_list[door].street_code, "district")].add(old_road)
        elif door not in self._by_compound[alias]:
            self._by_compound[alias].append(door)
            names[alias].append(("compound", alias))

    # -- lookups -------------------------------------------------------------------------------
    def locate(self, text: Any) -> dict[str, Any]:
        """The answer for one address, as a dict with the keys of :data:`RESULT_COLUMNS`."""
        if not isinstance(text, str):
            raise InputTypeError(f"AddressIndex.locate: text is a {type(text).__name__}; expected a string")
        return self._answer(text)

    def lookup(self, texts: Iterable[Any], *, workers: int = 1) -> pd.DataFrame:
        """The answers for many addresses, one row each in input order.

        Texts that normalise to the same spelling (a repeated address, or the same one
        written in full-width digits, Chinese numerals or with the city's prefix) are
        solved once: the answer depends on the normalised text alone.

        A missing value (None, NaN) is ``not_found`` with the reason, never an error, so
        that one empty cell does not stop a whole export. ``workers`` > 1 shares the
        different texts among that many forked processes (where the platform forks;
        worth it from a few thousand texts: a notebook or an import, not a server thread).
        """
        if isinstance(texts, str):
            raise InputTypeError("AddressIndex.lookup: texts is a str; expected a sequence of strings "
                                 "(use locate for one address)")
        workers = _checks.integer("AddressIndex.lookup", "workers", workers, minimum=1)
        values = list(texts.tolist() if isinstance(texts, (pd.Series, np.ndarray, pd.Index)) else texts)
        spelling = {v: normalise(v) for v in values if isinstance(v, str) and len(v) <= _MAX_TEXT}
        distinct = list(dict.fromkeys(spelling.values()))
        solved = dict(zip(distinct, self._answers(distinct, workers)))
        rows, used = [], set()
        for value in values:
            if not isinstance(value, str):
                rows.append(self._result(value, "not_found", reason="地址为空"))
            elif value not in spelling:  # too long to be an address: its reason names its length
                rows.append(self._answer(value))
            else:
                key = spelling[value]
                answer = solved[key]
                if key in used:  # every row its own answer: nothing shared between rows
                    answer = {**answer, "candidates": [dict(c) for c in answer["candidates"]]}
                used.add(key)
                answer["input"] = value
                rows.append(answer)
        return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))

    def _answers(self, texts: list[str], workers: int) -> list[dict[str, Any]]:
        import multiprocessing

        if workers == 1 or len(texts) < 2 * _CHUNK or "fork" not in multiprocessing.get_all_start_methods():
            return [self._solve(text) for text in texts]
        from concurrent.futures import ProcessPoolExecutor

        global _FORKED
        _FORKED = self  # the children inherit the index by fork, nothing is pickled but texts and answers
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                parts = pool.map(_answer_chunk, [texts[i:i + _CHUNK] for i in range(0, len(texts), _CHUNK)])
                return [answer for part in parts for answer in part]
        finally:
            _FORKED = None

    def _result(self, text: Any, status: str, hit: _Hit | None = None, candidates: Sequence[_Hit] = (),
                reason: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {"input": text, "status": status, "unit_id": None, "lon": None, "lat": None,
                               "grid_code": None, "community_code": None, "street_code": None,
                               "score": 0.0, "level": None, "reason": reason}
        if hit is not None:
            r = hit.row
            out.update(unit_id=self._unit[r], lon=float(self._lon[r]), lat=float(self._lat[r]),
                       grid_code=self._grid[r], community_code=self._community[r], street_code=self._street[r],
                       score=round(float(hit.score), 1), level=hit.level)
        out["candidates"] = [{"unit_id": self._unit[c.row], "address": self._label[c.row],
                              "grid_code": self._grid[c.row], "street_code": self._street[c.row],
                              "score": round(float(c.score), 1)} for c in candidates[:_CANDIDATES]]
        return out

    def _answer(self, text: str) -> dict[str, Any]:
        if len(text) > _MAX_TEXT:
            return self._result(text, "not_found", reason=f"输入过长（{len(text)}字），不是地址")
        answer = self._solve(normalise(text))
        answer["input"] = text
        return answer

    def _solve(self, canonical: str) -> dict[str, Any]:
        """The answer for a normalised text (its ``input``: that text)."""
        text = canonical
        c = parse(canonical, self.gazetteer)
        if c.outside is not None:
            return self._result(text, "not_found", reason=f"不在本市范围：{c.outside}")
        hits, reason = self._hits(c)
        if not hits:
            return self._result(text, "not_found", reason=reason)
        hits.sort(key=lambda h: -h.score)
        best = hits[0]
        close = [h for h in hits[1:] if best.score - h.score < self.margin]
        if best.score >= self.threshold and not close:
            return self._result(text, "matched", best, hits[1:], reason)
        why = reason or ("多个地址同样符合" if close else f"把握不足（{best.score:.0f}分）")
        return self._result(text, "ambiguous", None, hits, why)

    def _fuzzy(self, text: str, choices: Sequence[str]) -> list[tuple[str, float]]:
        found = process.extract(text, choices, scorer=fuzz.ratio, limit=_CANDIDATES, score_cutoff=_FUZZY_FLOOR)
        return [(name, float(score)) for name, score, _ in found]

    def _doors_of(self, c: Components) -> tuple[dict[int, float], int | None, str]:
        """Door entries the address may name, with scores; the building; why none."""
        building = c.building
        roads = [(c.road, 100.0)] if c.road else []
        if not roads and c.road_text:
            near = sorted(self._roads_in.get(c.district or "", ())) or self._roads
            roads = self._fuzzy(c.road_text, near)
        by_road: dict[int, float] = {}
        for road, score in roads:
            door = self._by_door.get((road, c.door)) if c.door is not None else None
            if door is not None:
                by_road[door] = max(by_road.get(door, 0.0), score)
        if c.compound:
            comps = [(c.compound, 100.0)]
        elif c.compound_text and by_road:  # the door is known: compare with its own compound only
            named = {name for d in by_road if (name := self._door_list[d].compound) is not None}
            comps = [(n, s) for n in named if (s := float(fuzz.ratio(c.compound_text, n))) >= _FUZZY_FLOOR]
            if not comps:  # words after the door that name no compound there
                by_road = {d: s * 0.85 for d, s in by_road.items()}
        else:
            comps = self._fuzzy(c.compound_text, self._compounds) if c.compound_text else []
        if not by_road and not comps and c.road_text and c.door is not None:  # 山大新材3号: a compound, building 3
            comps, building = self._fuzzy(c.road_text, self._compounds), c.door
        by_comp: dict[int, float] = {}
        for name, score in comps:
            for door in self._by_compound.get(name, ()):
                by_comp[door] = max(by_comp.get(door, 0.0), score)
        if by_road and by_comp:
            both = by_road.keys() & by_comp.keys()
            if both:  # two independent paths agree: trust the surer one
                return {d: max(by_road[d], by_comp[d]) for d in both}, building, ""
            merged = {d: s * 0.7 for d, s in {**by_comp, **by_road}.items()}
            return merged, building, "门牌与小区名不一致"
        if by_road or by_comp:
            return by_road or by_comp, building, ""
        if roads and c.door is None:
            return {}, building, f"只有路名（{roads[0][0]}），缺少门牌号或小区名"
        if roads:
            return {}, building, f"{roads[0][0]}没有{c.door}号"
        if c.district or c.street or c.community:
            return {}, building, "只识别出区、街道或社区，缺少路名门牌或小区名"
        return {}, building, "未识别出本市的路名或小区名"

    def _within(self, doors: dict[int, float], c: Components) -> tuple[dict[int, float], str]:
        """Keep the doors inside the district / 街道 the address names (if it names one)."""
        if not (c.district or c.street):
            return doors, ""
        inside = {d: s for d, s in doors.items()
                  if (c.street is None or self._door_list[d].street_code == c.street)
                  and (c.district is None or self._door_list[d].street_code.startswith(c.district))}
        if inside:
            return inside, ""
        return {d: s * 0.7 for d, s in doors.items()}, "地址不在所写的区或街道内"

    def _hits(self, c: Components) -> tuple[list[_Hit], str]:
        doors, building, reason = self._doors_of(c)
        if (not doors or reason) and (c.road_alt or c.compound_alt):
            # a known name inside a typo'd one (删师玉兰小区 holds 玉兰小区): try the whole text fuzzily
            alt = dataclasses.replace(
                c, road=None if c.road_alt else c.road, road_text=c.road_alt or c.road_text,
                compound=None if c.compound_alt else c.compound, compound_text=c.compound_alt or c.compound_text)
            doors2, building2, reason2 = self._doors_of(alt)
            if doors2 and not reason2:
                doors, building, reason = doors2, building2, reason2
        if not doors:
            return [], reason
        doors, outside = self._within(doors, c)
        reason = reason or outside
        hits: list[_Hit] = []
        for d, score in doors.items():
            entry = self._door_list[d]
            rows = list(entry.buildings.values())
            if building is not None:
                row = entry.buildings.get(building)
                if row is not None:
                    hits.append(_Hit(row, score))
            elif len(rows) == 1:
                hits.append(_Hit(rows[0], score))
            elif len({self._grid[r] for r in rows}) == 1:  # the whole compound lies in one grid
                hits.append(_Hit(rows[0], score, "compound"))
            else:
                hits.extend(_Hit(r, score * 0.9) for r in rows)
                reason = reason or "小区跨多个网格，请说明楼号"
        if not hits and building is not None:
            reason = reason or f"没有{building}号楼"
            hits = [_Hit(next(iter(self._door_list[d].buildings.values())), s * 0.5) for d, s in doors.items()]
        elif len(hits) == 1 and hits[0].score < 100 and not reason:
            # a name known only fuzzily, but the one whose door and building exist
            hits[0].score = min(100.0, hits[0].score + 15.0)
        return hits, reason


_CHUNK = 2000
_FORKED: AddressIndex | None = None


def _answer_chunk(texts: list[str]) -> list[dict[str, Any]]:
    assert _FORKED is not None
    return [_FORKED._solve(text) for text in texts]


def place_rows(rows: pd.DataFrame, index: Any, *, column: str = "address",
               first_row: int | None = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split an export by its address column: rows placed with confidence, and the rest with reasons.

    Parameters
    ----------
    rows : DataFrame
        The export, one order a row, with an address ``column``.
    index : AddressIndex, Store or callable
        What looks the addresses up: an index, a store (:meth:`jngis.store.Store.lookup_address`)
        or a function of the texts answering as :meth:`AddressIndex.lookup`.
    column : str
        The column holding the address.
    first_row : int or None
        The row number of ``rows.iloc[0]`` in the file (2 for a CSV with a header line),
        so that the report names the rows a planner sees; None: ``rows.index`` holds them.

    Returns
    -------
    placed : DataFrame
        The matched rows with ``lon``, ``lat`` (CGCS2000), ``crs="cgcs2000"``, ``unit_id``
        and ``address_score`` added: ready for ``clean_order_rows`` / ``store.import_orders``.
    rejected : DataFrame
        ``row``, ``address``, ``status``, ``reason``, ``candidates`` of every other row;
        nothing of them is written, so that an import is all-or-nothing per row.
    """
    func = "place_rows"
    _checks.dataframe(func, "rows", rows)
    _checks.columns(func, "rows", rows, [column])
    lookup = (index.lookup if isinstance(index, AddressIndex) else index if callable(index)
              else getattr(index, "lookup_address", None))
    if lookup is None:
        raise InputTypeError(f"{func}: index is a {type(index).__name__}; expected an AddressIndex, a store "
                             "or a function of the texts")
    if first_row is None:
        numbers = rows.index.to_numpy()
    else:
        start = _checks.integer(func, "first_row", first_row, minimum=0)
        numbers = np.arange(start, start + len(rows))
    answers = lookup(rows[column])
    good = answers["status"].eq("matched").to_numpy()
    placed = rows[good].copy()
    placed["lon"], placed["lat"] = answers["lon"][good].to_numpy(), answers["lat"][good].to_numpy()
    placed["crs"] = "cgcs2000"
    placed["unit_id"] = answers["unit_id"][good].to_numpy()
    placed["address_score"] = answers["score"][good].to_numpy()
    rejected = pd.DataFrame({"row": numbers[~good], "address": answers["input"][~good].to_numpy(),
                             "status": answers["status"][~good].to_numpy(),
                             "reason": answers["reason"][~good].to_numpy(),
                             "candidates": answers["candidates"][~good].to_numpy()})
    return placed, rejected
