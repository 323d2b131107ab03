"""Feature queries: property filters, CQL2 (text and JSON), sorting — one AST, two translations.

What OGC API - Features Part 1 (property filters, ``sortby``) and Part 3
(``filter=`` in CQL2) ask of a collection, parsed once with pygeofilter into
its AST, checked against the collection's *queryables* (name -> type), then
normalised into a small tree of predicates that has two translations:

- :func:`mask` — a boolean array over a (Geo)DataFrame (the in-memory layers);
- :func:`to_sql` — a ``WHERE`` clause with bound parameters (the store's
  orders, SQLite and PostGIS alike). Column names come only from the
  queryables, values only travel as parameters: never formatted into the text.

Supported: ``= <> < <= > >=``, ``LIKE``, ``IN``, ``BETWEEN``, ``IS [NOT]
NULL``, ``AND OR NOT``, ``S_INTERSECTS`` with a WKT geometry or ``BBOX`` in
WGS84 longitude/latitude (CRS84), ``T_AFTER T_BEFORE T_INTERSECTS T_DURING
T_EQUALS T_DISJOINT`` on date-times (function or infix form). Anything else
raises :class:`~jngis.errors.ParameterError` naming the construct. Times with
a zone are read in China Standard Time (the layers hold naive CST). A
comparison with a missing value is false, also under ``NOT`` (two-valued
logic, the same in pandas and SQL).

Examples
--------
>>> import pandas as pd
>>> frame = pd.DataFrame({"grid_code": ["A1", "A2", "B1"], "households": [120, 300, 80]})
>>> fields = fields_of(frame)
>>> q = build_query({"households": "300"}, fields)
>>> mask(q, frame).tolist()
[False, True, False]
>>> q = build_query({}, fields, filter="grid_code LIKE 'A%' AND households < 200")
>>> mask(q, frame).tolist()
[True, False, False]
>>> to_sql(q)
("(grid_code LIKE ? ESCAPE '\\\\' AND COALESCE(households < ?, 1=0))", ['A%', 200])
>>> frame.iloc[order(parse_sortby("-households", fields), frame)].grid_code.tolist()
['A2', 'A1', 'B1']
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from jngis.codes import to_cst_naive
from jngis.errors import QueryError

__all__ = [
    "FILTER_LANGS",
    "FILTER_LANG_ALIASES",
    "MAX_FILTER_CHARS",
    "ORDER_FIELDS",
    "CARDS",
    "card_query",
    "Query",
    "fields_of",
    "queryables_schema",
    "parse_filter",
    "parse_sortby",
    "build_query",
    "mask",
    "order",
    "to_sql",
    "order_by_sql",
    "sqlite_functions",
]

FILTER_LANGS = ("cql2-text", "cql2-json")
#: Older names of the languages that clients still send: GDAL's OAPIF driver asks for
#: ``cql-text`` (the 2021 drafts of Part 3), whose comparisons are CQL2 text.
FILTER_LANG_ALIASES = {"cql-text": "cql2-text"}
#: Longest filter accepted (a parsed filter is held in memory and walked recursively).
MAX_FILTER_CHARS = 20_000
#: Field types (the JSON Schema ``type`` of the queryables, with date-time and geometry apart).
TYPES = ("string", "integer", "number", "boolean", "datetime", "geometry")

#: The queryables of the store's orders table: SQL column = name; ``geometry`` is the
#: (lon, lat) pair in WGS84. Personal data (caller name, phone) is not among them.
ORDER_FIELDS: dict[str, str] = {
    "order_id": "string", "category": "string", "status": "string",
    "district_code": "string", "street_code": "string", "community_code": "string", "grid_code": "string",
    "department_code": "string", "received_at": "datetime", "dispatched_at": "datetime", "due_at": "datetime",
    "resolved_at": "datetime", "closed_at": "datetime", "updated_at": "datetime",
    "extended_days": "integer", "satisfied": "boolean", "geometry": "geometry",
    "warn_at": "datetime",
}
#: Deadline cards of open orders (the Shandong rule, as :func:`jngis.workorders.deadline`
#: reads it): ``yellow`` from the warning time (one working day before the due time) until the
#: due time, ``red`` after it.
CARDS = ("yellow", "red")


class Query(NamedTuple):
    """A parsed query: the normalised predicate tree (None: everything) and its fields."""

    node: tuple | None
    fields: Mapping[str, str]

    def __and__(self, other: Query) -> Query:
        if other.node is None:
            return self
        if self.node is None:
            return other
        return Query(("and", [self.node, other.node]), {**self.fields, **other.fields})


# --------------------------------------------------------------------------- fields


def fields_of(frame: pd.DataFrame, exclude: Sequence[str] = ()) -> dict[str, str]:
    """The queryable fields of a frame: column -> type (:data:`TYPES`), ``exclude`` left out.

    Examples
    --------
    >>> fields_of(pd.DataFrame({"a": ["x"], "n": [1], "t": pd.to_datetime(["2026-01-01"])}))
    {'a': 'string', 'n': 'integer', 't': 'datetime'}
    """
    fields = {}
    geometry = getattr(frame, "_geometry_column_name", None)
    for column, dtype in frame.dtypes.items():  # one Series of dtypes, not a column access each
        if column in exclude:
            continue
        if column == geometry:
            fields["geometry"] = "geometry"
        elif pd.api.types.is_bool_dtype(dtype):
            fields[column] = "boolean"
        elif pd.api.types.is_integer_dtype(dtype):
            fields[column] = "integer"
        elif pd.api.types.is_float_dtype(dtype):
            fields[column] = "number"
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            fields[column] = "datetime"
        else:
            fields[column] = "string"
    return fields


def queryables_schema(fields: Mapping[str, str], *, url: str, title: str, key: str | None = None,
                      time: str | None = None, labels: Mapping[str, str] | None = None) -> dict:
    """The JSON Schema of the queryables (OGC API - Features Part 3; what QGIS reads).

    Examples
    --------
    >>> schema = queryables_schema({"grid_code": "string", "geometry": "geometry"}, url="q", title="网格",
    ...                            key="grid_code")
    >>> schema["properties"]["geometry"]
    {'format': 'geometry-any', 'x-ogc-role': 'primary-geometry', 'title': 'geometry'}
    """
    properties = {}
    for name, kind in fields.items():
        if kind == "geometry":
            entry: dict[str, Any] = {"format": "geometry-any", "x-ogc-role": "primary-geometry"}
        elif kind == "datetime":
            entry = {"type": "string", "format": "date-time"}
        else:
            entry = {"type": kind}
        if name == key:
            entry["x-ogc-role"] = "id"
        elif name == time:
            entry["x-ogc-role"] = "primary-instant"
        entry["title"] = (labels or {}).get(name, name)
        properties[name] = entry
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": url, "type": "object",
            "title": title, "properties": properties, "additionalProperties": False}


# --------------------------------------------------------------------------- parsing


@functools.cache
def _text_parser():
    """pygeofilter's CQL2 text grammar with what its 0.4 release lacks of the standard:
    the function form ``T_AFTER(a, b)`` of temporal predicates, one-letter property
    names, ``BBOX(...)`` already parses as a function."""
    from lark import Lark, v_args
    from pygeofilter.cql2 import TEMPORAL_PREDICATES_MAP
    from pygeofilter.parsers.cql2_text import parser as cql2_text

    grammar = (Path(cql2_text.__file__).parent / "grammar.lark").read_text()
    grammar = grammar.replace(
        "?temporal_predicate: expression _binary_temporal_predicate_func expression -> binary_temporal_predicate",
        "?temporal_predicate: expression _binary_temporal_predicate_func expression -> binary_temporal_predicate\n"
        "          | _binary_temporal_predicate_func \"(\" expression \",\" expression \")\" -> temporal_function")
    grammar = grammar.replace("attribute: /[a-zA-Z][a-zA-Z_:0-9.]+/", "attribute: /[a-zA-Z][a-zA-Z_:0-9.]*/")

    @v_args(inline=True)
    class Transformer(cql2_text.CQLTransformer):
        def temporal_function(self, op, lhs, rhs):
            return TEMPORAL_PREDICATES_MAP[str(op).lower()](lhs, rhs)

    import os

    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=Transformer(),
                import_paths=[os.path.dirname(os.path.dirname(cql2_text.__file__))])


def parse_filter(text: Any, lang: str | None = None):
    """A CQL2 filter (``cql2-text`` or ``cql2-json``, a string or a decoded JSON object) as pygeofilter's AST.

    Examples
    --------
    >>> parse_filter("status = 'closed'")
    Equal(lhs=ATTRIBUTE status, rhs='closed')
    >>> parse_filter('{"op": "=", "args": [{"property": "status"}, "closed"]}', "cql2-json")
    Equal(lhs=ATTRIBUTE status, rhs='closed')
    """
    lang = lang or ("cql2-json" if isinstance(text, dict) else "cql2-text")
    lang = FILTER_LANG_ALIASES.get(lang, lang)
    if lang not in FILTER_LANGS:
        raise QueryError(f"filter-lang={lang!r}; expected one of {', '.join(FILTER_LANGS)}")
    if isinstance(text, dict):
        text = json.dumps(text)
    if not isinstance(text, str) or not text.strip():
        raise QueryError(f"filter={text!r}; expected a {lang} expression")
    if len(text) > MAX_FILTER_CHARS:
        raise QueryError(f"filter is {len(text):,} characters long; expected at most {MAX_FILTER_CHARS:,}")
    try:
        if lang == "cql2-json":
            from pygeofilter.parsers.cql2_json import parse as parse_json

            return parse_json(text)
        return _text_parser().parse(text)
    except RecursionError:
        raise QueryError("filter is nested too deeply; expected a flatter expression") from None
    except Exception as exc:  # lark and json raise many kinds; the first line says where
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise QueryError(f"filter={text[:200]!r} is not valid {lang}: {first}") from None


def parse_sortby(text: str | Sequence[str] | None, fields: Mapping[str, str]) -> list[tuple[str, bool]]:
    """``"+a,-b"`` (or a list) as ``[(name, ascending), ...]``, names among the sortable fields.

    Examples
    --------
    >>> parse_sortby("-households,grid_code", {"grid_code": "string", "households": "integer"})
    [('households', False), ('grid_code', True)]
    """
    if text is None or text == "":
        return []
    parts = text.split(",") if isinstance(text, str) else list(text)
    sortable = [name for name, kind in fields.items() if kind != "geometry"]
    keys = []
    for part in parts:
        part = str(part).strip()
        ascending = not part.startswith("-")
        name = part.lstrip("+- ")
        if name not in sortable:
            raise QueryError(f"sortby={text!r} names {name!r}; expected [+|-]name with names among "
                                 f"{', '.join(sortable)}")
        keys.append((name, ascending))
    return keys


def build_query(properties: Mapping[str, Any], fields: Mapping[str, str], *, filter: Any = None,
                filter_lang: str | None = None) -> Query:
    """Property filters (``name=value``, AND-ed) and a CQL2 ``filter`` as one :class:`Query`.

    Values of property filters are text (as in a URL) or already typed; each is
    read as its field's type. A list of values (a parameter given more than
    once) matches any of them.
    """
    fields = dict(fields)
    if filter_lang is not None and FILTER_LANG_ALIASES.get(filter_lang, filter_lang) not in FILTER_LANGS:
        raise QueryError(f"filter-lang={filter_lang!r}; expected one of {', '.join(FILTER_LANGS)}")
    nodes: list[tuple] = []
    for name, value in properties.items():
        kind = _field(fields, name)
        if kind == "geometry":
            raise QueryError(f"{name}={value!r}: a geometry is filtered with bbox or S_INTERSECTS")
        if isinstance(value, (list, tuple)):  # a parameter given more than once: any of its values
            nodes.append(("in", name, [_typed(name, kind, v) for v in value]))
        else:
            nodes.append(("cmp", name, "=", _typed(name, kind, value)))
    if filter is not None and filter != "":
        try:
            nodes.append(_normal(parse_filter(filter, filter_lang), fields))
        except RecursionError:
            raise QueryError("filter is nested too deeply; expected a flatter expression") from None
    node = None if not nodes else nodes[0] if len(nodes) == 1 else ("and", nodes)
    return Query(node, fields)


def card_query(card: str | Sequence[str], now: Any = None) -> Query:
    """The open orders that show a deadline ``card`` (one of :data:`CARDS`, or several) at ``now``
    (default: the present).

    Examples
    --------
    >>> q = card_query("red", "2026-10-01T08:00:00+08:00")
    >>> q.node[1][1]
    ('cmp', 'due_at', '<', Timestamp('2026-10-01 08:00:00'))
    """
    from jngis.workorders import OPEN_STATES, now_cst

    cards = card.split(",") if isinstance(card, str) else list(card)
    if not cards or any(c not in CARDS for c in cards):
        raise QueryError(f"card={card!r}; expected one or more of {', '.join(CARDS)}")
    at = _typed("now", "datetime", now_cst() if now is None else now)
    colour = {"red": ("cmp", "due_at", "<", at),
              "yellow": ("and", [("cmp", "warn_at", "<=", at), ("cmp", "due_at", ">=", at)])}
    either = [colour[c] for c in dict.fromkeys(cards)]
    return Query(("and", [("in", "status", list(OPEN_STATES)), either[0] if len(either) == 1 else ("or", either)]),
                 ORDER_FIELDS)


# --------------------------------------------------------------------------- normalising


def _field(fields: Mapping[str, str], name: Any) -> str:
    if name not in fields:
        raise QueryError(f"property {name!r} is not queryable; expected one of {', '.join(fields)}")
    return fields[name]


def _attribute(node, fields) -> tuple[str, str]:
    from pygeofilter import ast

    if not isinstance(node, ast.Attribute):
        raise QueryError(f"{node!r} on the left of a predicate is not supported; expected a property name")
    return node.name, _field(fields, node.name)


def _typed(name: str, kind: str, value: Any) -> Any:
    """``value`` as a value of a field of ``kind`` (text from a URL is converted)."""
    try:
        if kind == "datetime":
            if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
                return pd.Timestamp(value)
            stamp = pd.Timestamp(value)
            if pd.isna(stamp):
                raise ValueError
            return to_cst_naive(stamp)
        if kind == "integer" and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                return value  # 2.5 compared with integers stays a number
            return int(value)
        if kind == "number" and not isinstance(value, bool):
            return float(value)
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false"):
                return str(value).lower() == "true"
            raise ValueError
        if kind == "string" and isinstance(value, str):
            return value
    except (TypeError, ValueError, OverflowError):
        pass
    raise QueryError(f"{name} is a {kind} property; {value!r} is not a {kind}")


_COMPARISONS = {"Equal": "=", "NotEqual": "<>", "LessThan": "<", "LessEqual": "<=",
                "GreaterThan": ">", "GreaterEqual": ">="}


def _normal(node, fields) -> tuple:  # one branch per CQL2 construct: a dispatch table would say no more
    """pygeofilter's AST as the small tree :func:`mask` and :func:`to_sql` translate."""
    from pygeofilter import ast

    kind = type(node).__name__
    if isinstance(node, (ast.And, ast.Or)):
        return ("and" if isinstance(node, ast.And) else "or", [_normal(node.lhs, fields), _normal(node.rhs, fields)])
    if isinstance(node, ast.Not):
        return ("not", _normal(node.sub_node, fields))
    if kind in _COMPARISONS:
        name, field = _attribute(node.lhs, fields)
        _scalar(field, name)
        return ("cmp", name, _COMPARISONS[kind], _typed(name, field, node.rhs))
    if isinstance(node, ast.Like):
        name, field = _attribute(node.lhs, fields)
        if field != "string" or not isinstance(node.pattern, str):
            raise QueryError(f"LIKE applies to text properties with a text pattern; {name} is a {field}")
        return _negated(("like", name, node.pattern), node.not_)
    if isinstance(node, ast.In):
        name, field = _attribute(node.lhs, fields)
        _scalar(field, name)
        return _negated(("in", name, [_typed(name, field, v) for v in node.sub_nodes]), node.not_)
    if isinstance(node, ast.Between):
        name, field = _attribute(node.lhs, fields)
        _scalar(field, name)
        inside = ("and", [("cmp", name, ">=", _typed(name, field, node.low)),
                          ("cmp", name, "<=", _typed(name, field, node.high))])
        return _negated(inside, node.not_)
    if isinstance(node, ast.IsNull):
        name, _ = _attribute(node.lhs, fields)
        return _negated(("null", name), node.not_)
    if isinstance(node, ast.GeometryIntersects):
        name, field = _attribute(node.lhs, fields)
        if field != "geometry":
            raise QueryError(f"S_INTERSECTS applies to the geometry; {name} is a {field}")
        return ("intersects", name, _geometry(node.rhs))
    if isinstance(node, ast.TemporalPredicate):
        return _temporal(node, fields)
    if isinstance(node, ast.Include):
        return ("and", []) if not node.not_ else ("or", [])
    raise QueryError(f"{_construct(node)} is not supported; expected comparisons, LIKE, IN, BETWEEN, "
                         "IS NULL, AND/OR/NOT, S_INTERSECTS, T_AFTER/T_BEFORE/T_INTERSECTS/T_DURING/T_EQUALS")


def _construct(node) -> str:
    name = type(node).__name__
    return f"the function {node.name}()" if name == "Function" else name


def _scalar(field: str, name: str) -> None:
    if field == "geometry":
        raise QueryError(f"{name} is the geometry; compare it with S_INTERSECTS")


def _negated(node: tuple, negate: bool) -> tuple:
    return ("not", node) if negate else node


def _geometry(value) -> shapely.Geometry:
    from pygeofilter import ast, values

    if isinstance(value, values.Geometry):
        geometry = shape(value.geometry)
    elif isinstance(value, values.Envelope):
        geometry = shapely.box(value.x1, value.y1, value.x2, value.y2)
    elif isinstance(value, ast.Function) and value.name.lower() == "bbox" and len(value.arguments) in (4, 6):
        numbers = [float(v) for v in value.arguments]
        if len(numbers) == 6:
            numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
        geometry = shapely.box(*numbers)
    else:
        raise QueryError(f"S_INTERSECTS with {value!r}; expected a WKT geometry or BBOX(...) in CRS84")
    west, south, east, north = geometry.bounds
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90) or not geometry.is_valid:
        raise QueryError(f"S_INTERSECTS with {geometry.wkt[:100]}; expected a valid geometry in "
                             "longitude/latitude (CRS84)")
    return geometry


def _instants(value, name: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """An instant or an interval as (start, end), open ends None."""
    from pygeofilter import values

    if isinstance(value, values.Interval):
        ends = []
        for end in (value.start, value.end):
            ends.append(None if end is None or end == ".." else _typed(name, "datetime", end))
        return ends[0], ends[1]
    stamp = _typed(name, "datetime", value)
    return stamp, stamp


def _temporal(node, fields) -> tuple:
    """Instants of a date-time property against an instant or an interval, as comparisons."""
    name, field = _attribute(node.lhs, fields)
    if field != "datetime":
        raise QueryError(f"{type(node).__name__} applies to date-time properties; {name} is a {field}")
    start, end = _instants(node.rhs, name)
    op = type(node).__name__

    def between(low: str, high: str) -> tuple:
        parts = [("cmp", name, low, start)] if start is not None else []
        parts += [("cmp", name, high, end)] if end is not None else []
        return ("and", parts + [("not", ("null", name))])

    if op == "TimeAfter":
        return ("cmp", name, ">", end) if end is not None else ("or", [])
    if op == "TimeBefore":
        return ("cmp", name, "<", start) if start is not None else ("or", [])
    if op in ("TimeOverlaps", "TimeEquals") and start == end:
        return ("cmp", name, "=", start)
    if op == "TimeDuring":
        return between(">", "<")
    if op in ("TimeDisjoint",):
        return ("and", [("not", between(">=", "<=")), ("not", ("null", name))])
    if op == "TimeOverlaps" or (op == "TimeEquals" and start == end):
        return between(">=", "<=")
    raise QueryError(f"{op} is not supported; expected T_AFTER, T_BEFORE, T_INTERSECTS, T_DURING, "
                         "T_EQUALS or T_DISJOINT on an instant property")


# --------------------------------------------------------------------------- pandas


def _like_regex(pattern: str) -> re.Pattern:
    out, escaped = [], False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


_PANDAS_OPS: dict[str, Callable] = {"=": np.equal, "<>": np.not_equal, "<": np.less, "<=": np.less_equal,
                                    ">": np.greater, ">=": np.greater_equal}


def mask(query: Query | None, frame: pd.DataFrame) -> np.ndarray:
    """Which rows of ``frame`` the query selects, as a boolean array (all, for None)."""
    if query is None or query.node is None:
        return np.ones(len(frame), dtype=bool)
    return _mask(query.node, frame)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name == "geometry" and hasattr(frame, "geometry"):
        return frame.geometry
    return frame[name]


def _mask(node: tuple, frame: pd.DataFrame) -> np.ndarray:
    op = node[0]
    if op in ("and", "or"):
        parts = [_mask(part, frame) for part in node[1]]
        start = np.ones(len(frame), bool) if op == "and" else np.zeros(len(frame), bool)
        return functools.reduce(np.logical_and if op == "and" else np.logical_or, parts, start)
    if op == "not":
        return ~_mask(node[1], frame)
    series = _column(frame, node[1])
    known = series.notna().to_numpy()
    if op == "null":
        return ~known
    if op == "intersects":
        keep = np.zeros(len(frame), bool)
        keep[frame.sindex.query(node[2], predicate="intersects")] = True
        return keep
    if op == "like":
        regex = _like_regex(node[2])
        return np.array([isinstance(v, str) and regex.fullmatch(v) is not None for v in series], bool)
    if op == "in":
        return series.isin(node[2]).to_numpy() & known
    values = series.to_numpy()
    result = np.zeros(len(frame), bool)
    with np.errstate(invalid="ignore"):
        result[known] = _PANDAS_OPS[node[2]](values[known], node[3])
    return result


def order(sortby: Sequence[tuple[str, bool]], frame: pd.DataFrame) -> np.ndarray:
    """Row positions of ``frame`` sorted by ``sortby`` (stable; missing values last)."""
    if not sortby:
        return np.arange(len(frame))
    names = [name for name, _ in sortby]
    ordered = frame[names].reset_index(drop=True).sort_values(
        names, ascending=[ascending for _, ascending in sortby], kind="mergesort", na_position="last")
    return ordered.index.to_numpy()


from jngis._query_sql import order_by_sql, sqlite_functions, to_sql  # noqa: E402  (the SQL half)
