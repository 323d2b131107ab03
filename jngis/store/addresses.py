"""The store's address lookup: candidates found by the database, answered by :class:`jngis.AddressIndex`.

A big city need not hold every address in Python: :meth:`AddressSearch.index_addresses`
writes one row per unit (its normalised standard address and aliases, its parts, its
grid, community, 街道 and point) into ``address_search``, indexed for trigram search —
an FTS5 table with the ``trigram`` tokenizer in SQLite, a ``pg_trgm`` GIN index in
PostgreSQL. :meth:`AddressSearch.lookup_address` asks the database for the units whose
address shares the most trigrams with each text, adds the other units of their roads
and compounds (so that a compound's buildings and a same-named compound elsewhere are
all there to be told apart), and lets an :class:`~jngis.address.AddressIndex` of those
few rows decide. The answer has the columns of :meth:`AddressIndex.lookup`
(:data:`jngis.address.RESULT_COLUMNS`): the same statuses, reasons and candidates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.address import RESULT_COLUMNS, AddressIndex, Gazetteer, normalise, parse
from jngis.errors import InputTypeError, NotFoundError
from jngis.layers import SCHEMAS

__all__ = ["AddressSearch", "SEARCH_COLUMNS"]

#: Columns of the ``address_search`` table (besides its ``text``).
SEARCH_COLUMNS = ("unit_id", "road", "door_number", "compound_name", "building", "aliases", "street_code",
                  "community_code", "grid_code", "lon", "lat")
_NAME_LAYERS = ("districts", "streets", "communities")
#: Units found by trigrams per text, before their roads and compounds are added.
NEAREST = 40
#: The most rows one text's small index is built from.
MOST_ROWS = 2000
#: Above this many different texts a lookup reads every unit's row once and answers them in memory
#: (an import of a whole export), instead of one trigram search per text.
BATCH_TEXTS = 500
#: pg_trgm's word similarity a unit's address needs to be a candidate at all.
WORD_SIMILARITY = 0.3


#: Characters of numbers and number words: a trigram of them only (``8号楼``) is in most addresses.
_COMMON = set("0123456789号楼单元室层")


def _trigrams(text: str) -> list[str]:
    grams = dict.fromkeys(text[i:i + 3] for i in range(len(text) - 2))
    telling = [g for g in grams if not set(g) <= _COMMON]
    return telling or list(grams)


class AddressSearch:
    """Address lookup in the store (mixed into :class:`jngis.store.Store`)."""

    def index_addresses(self, units: gpd.GeoDataFrame | None = None) -> int:
        """Write the search table from ``units`` (default: the store's units layer); how many rows.

        The units need ``road`` and ``door_number`` (:data:`jngis.layers.ADDRESS_COLUMNS`);
        each gets its grid from the store's grids. The table is rebuilt by the next
        lookup after the layers change.
        """
        func = "index_addresses"
        units = self.read_layer("units") if units is None else units  # type: ignore[attr-defined]
        units = _checks.geodataframe(func, "units", units, empty_ok=False, required=["unit_id", "street_code",
                                                                                      "community_code"])
        if "road" not in units.columns or "door_number" not in units.columns:
            raise NotFoundError("this city's units carry no addresses; expected the columns road and "
                                "door_number (optional compound_name, building, aliases) in the units layer")
        names = self._name_layers()
        grids = self.read_layer("grids") if "grids" in self.layer_names() else None  # type: ignore[attr-defined]
        index = AddressIndex(units, grids=grids, **names)  # checks the rows, places each in its grid
        table = pd.DataFrame({
            "unit_id": index._unit, "road": units["road"].astype(str).map(normalise).to_numpy(),
            "door_number": pd.to_numeric(units["door_number"]).astype(int).to_numpy(),
            "compound_name": [normalise(c) if isinstance(c, str) and c else None
                              for c in units.get("compound_name", [None] * len(units))],
            "building": pd.array(pd.to_numeric(units["building"]) if "building" in units.columns
                                 else [None] * len(units), dtype="Int64"),
            "aliases": [a if isinstance(a, str) and a else None for a in units.get("aliases", [None] * len(units))],
            "street_code": index._street, "community_code": index._community, "grid_code": index._grid,
            "lon": index._lon, "lat": index._lat,
        })
        table["text"] = [normalise(label + ("|" + alias if isinstance(alias, str) else ""))
                         for label, alias in zip(index._label, table["aliases"])]
        version = self.change_versions()["layers"]  # type: ignore[attr-defined]
        with self._write() as conn:  # type: ignore[attr-defined]
            self._write_search(conn, table, version)
        return len(table)

    # -- the two databases: SQLite (an FTS5 trigram table) and PostgreSQL (a pg_trgm GIN index)
    def _postgres(self) -> bool:
        return getattr(self, "_paramstyle", "qmark") == "format"

    def _write_search(self, conn, table: pd.DataFrame, version: int) -> None:
        run = self._execute  # type: ignore[attr-defined]
        postgres = self._postgres()
        for name in ("address_search_fts", "address_search", "address_search_version"):
            run(conn, f"DROP TABLE IF EXISTS {name}")
        if postgres:
            run(conn, "CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
        key = "id bigserial PRIMARY KEY" if postgres else "id INTEGER PRIMARY KEY"
        real = "double precision" if postgres else "REAL"
        run(conn, f"CREATE TABLE address_search ({key}, text text NOT NULL, unit_id text NOT NULL, road text, "
                  f"door_number integer, compound_name text, building integer, aliases text, street_code text, "
                  f"community_code text, grid_code text, lon {real}, lat {real})")
        columns = ["text", *SEARCH_COLUMNS]
        self._insert_many(conn, "address_search", columns,  # type: ignore[attr-defined]
                          [tuple(None if pd.isna(v) else (int(v) if isinstance(v, np.integer) else v) for v in row)
                           for row in table[columns].astype(object).itertuples(index=False)])
        for column in ("road", "compound_name"):
            run(conn, f"CREATE INDEX address_search_{column} ON address_search ({column})")
        if postgres:
            run(conn, "CREATE INDEX address_search_text ON address_search USING gin (text gin_trgm_ops)")
        else:
            run(conn, "CREATE VIRTUAL TABLE address_search_fts USING fts5(text, tokenize='trigram', "
                      "content='address_search', content_rowid='id')")
            run(conn, "INSERT INTO address_search_fts(address_search_fts) VALUES ('rebuild')")
        run(conn, "CREATE TABLE address_search_version (layers integer NOT NULL)")
        run(conn, "INSERT INTO address_search_version VALUES (?)", [version])

    def _search_version(self, conn) -> int | None:
        run = self._execute  # type: ignore[attr-defined]
        exists = ("SELECT to_regclass('address_search_version') IS NOT NULL" if self._postgres() else
                  "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'address_search_version'")
        if not run(conn, exists).fetchone()[0]:
            return None
        row = run(conn, "SELECT layers FROM address_search_version").fetchone()
        return None if row is None else int(row[0])

    def _nearest_units(self, conn, text: str, limit: int) -> list[tuple]:
        """(unit_id, road, door_number, compound_name) of the units whose address is most like ``text``."""
        run = self._execute  # type: ignore[attr-defined]
        if self._postgres():
            run(conn, "SELECT set_config('pg_trgm.word_similarity_threshold', ?, false)", [str(WORD_SIMILARITY)])
            return run(conn, "SELECT unit_id, road, door_number, compound_name FROM address_search "
                             "WHERE ? <%% text ORDER BY word_similarity(?, text) DESC, id LIMIT ?",
                       [text, text, limit]).fetchall()
        match = fts_query(text)
        if match is None:
            return []
        return run(conn, "SELECT s.unit_id, s.road, s.door_number, s.compound_name FROM address_search_fts f "
                         "JOIN address_search s ON s.id = f.rowid WHERE address_search_fts MATCH ? "
                         "ORDER BY bm25(address_search_fts), s.id LIMIT ?", [match, limit]).fetchall()

    # -- lookups
    def lookup_address(self, texts: Iterable[Any], *, prefixes: Sequence[str] = (), threshold: float = 80.0,
                       margin: float = 8.0) -> pd.DataFrame:
        """The answers for many addresses, one row each in input order, as :meth:`AddressIndex.lookup`.

        The search table is (re)built first when it is missing or older than the layers. Up to
        :data:`BATCH_TEXTS` different texts are each answered from their trigram candidates; more
        (a whole export) from one in-memory index of every unit's row, read once.

        Examples
        --------
        >>> from jngis.sample import load_slice
        >>> from jngis.store import open_store
        >>> import tempfile, os
        >>> store = open_store(os.path.join(tempfile.mkdtemp(), "city.gpkg"))
        >>> store.write_city(load_slice())
        >>> first = load_slice().units.iloc[0]
        >>> answer = store.lookup_address([first["address"], "北京市朝阳区建国路1号"])
        >>> answer["status"].tolist(), answer["unit_id"].iloc[0] == first["unit_id"]
        (['matched', 'not_found'], True)
        """
        if isinstance(texts, str):
            raise InputTypeError("lookup_address: texts is a str; expected a sequence of strings "
                                 "(use locate_address for one address)")
        values = list(texts.tolist() if isinstance(texts, (pd.Series, np.ndarray, pd.Index)) else texts)
        conn = self._search_conn()
        names = self._name_layers()
        if len({v for v in values if isinstance(v, str)}) > BATCH_TEXTS:  # an export: one index of every unit
            rows = self._execute(conn, f"SELECT {', '.join(SEARCH_COLUMNS)} FROM address_search").fetchall()  # type: ignore[attr-defined]
            return _points_index(rows, names, prefixes, threshold, margin).lookup(values)
        solved: dict[str, dict[str, Any]] = {}
        rows = []
        for value in values:
            if not isinstance(value, str):
                rows.append(_empty(value))
                continue
            if value not in solved:
                index = self._small_index(conn, value, names, prefixes, threshold, margin)
                solved[value] = index.locate(value) if index is not None else _unknown(value, names, prefixes)
            rows.append(solved[value])
        return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))

    def locate_address(self, text: str, **options: Any) -> dict[str, Any]:
        """The answer for one address, as :meth:`AddressIndex.locate`."""
        if not isinstance(text, str):
            raise InputTypeError(f"locate_address: text is a {type(text).__name__}; expected a string")
        return self.lookup_address([text], **options).iloc[0].to_dict()

    def _search_conn(self):
        conn = self._conn()  # type: ignore[attr-defined]
        if self._search_version(conn) != self.change_versions()["layers"]:  # type: ignore[attr-defined]
            self.index_addresses()
        return conn

    def _name_layers(self) -> dict[str, pd.DataFrame]:
        """The code and name columns of the districts, streets and communities (kept per layers version)."""
        version = self.change_versions()["layers"]  # type: ignore[attr-defined]
        kept = getattr(self, "_address_names", None)
        if kept is None or kept[0] != version:
            held = self.layer_names()  # type: ignore[attr-defined]
            names = {kind: _plain(self.read_layer(kind)[[SCHEMAS[kind].key, "name"]])  # type: ignore[attr-defined]
                     for kind in _NAME_LAYERS if kind in held}
            kept = self._address_names = (version, names)
        return kept[1]

    def _small_index(self, conn, text: str, names: dict, prefixes: Sequence[str], threshold: float,
                     margin: float) -> AddressIndex | None:
        """An AddressIndex of the units near ``text``: its nearest by trigrams, their roads and compounds."""
        found = self._nearest_units(conn, normalise(text[:200]), NEAREST)
        if not found:
            return None
        roads = sorted({r[1] for r in found})
        compounds = sorted({r[3] for r in found if r[3]})
        marks = lambda n: ", ".join("?" * n)  # noqa: E731 - placeholders only, the values are bound
        rows = self._execute(conn, f"SELECT {', '.join(SEARCH_COLUMNS)} FROM address_search WHERE road IN "  # type: ignore[attr-defined]
                             f"({marks(len(roads))})" + (f" OR compound_name IN ({marks(len(compounds))})"
                                                         if compounds else "") + f" LIMIT {MOST_ROWS}",
                             [*roads, *compounds]).fetchall()
        return _points_index(rows, names, prefixes, threshold, margin)


def _points_index(rows: list[tuple], names: dict, prefixes: Sequence[str], threshold: float,
                  margin: float) -> AddressIndex:
    frame = pd.DataFrame(rows, columns=list(SEARCH_COLUMNS))
    frame["building"] = pd.array(frame["building"], dtype="Int64")
    return AddressIndex.from_points(frame, prefixes=prefixes, threshold=threshold, margin=margin, **names)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of Python strings: every small index walks them again, and arrow strings iterate slowly."""
    return pd.DataFrame({column: frame[column].astype(str).tolist() for column in frame.columns}, dtype=object)


def _empty(value: Any) -> dict[str, Any]:
    out = dict.fromkeys(RESULT_COLUMNS)
    out.update(input=value, status="not_found", score=0.0, candidates=[], reason="地址为空")
    return out


def _unknown(value: str, names: dict[str, pd.DataFrame], prefixes: Sequence[str]) -> dict[str, Any]:
    """The answer for a text no unit's address resembles: outside the city, too long, or unknown."""
    out = _empty(value)
    gazetteer = _gazetteer(tuple(prefixes), tuple((kind, tuple(frame["name"])) for kind, frame in names.items()))
    outside = parse(normalise(value), gazetteer).outside if value.strip() and len(value) <= 200 else None
    out["reason"] = (f"不在本市范围：{outside}" if outside else f"输入过长（{len(value)}字），不是地址"
                     if len(value) > 200 else "未识别出本市的路名或小区名")
    return out


@functools.lru_cache(maxsize=8)
def _gazetteer(prefixes: tuple[str, ...], names: tuple[tuple[str, tuple[str, ...]], ...]) -> Gazetteer:
    known: dict[str, list[tuple[str, str]]] = {}
    for kind, values in names:
        for name in values:
            known.setdefault(normalise(str(name)), []).append((kind, str(name)))
    return Gazetteer(known, prefixes=prefixes)


def fts_query(text: str) -> str | None:
    """An FTS5 MATCH expression: any of the text's trigrams, each quoted (quotes doubled).

    >>> fts_query("文化路1")
    '"文化路" OR "化路1"'
    >>> fts_query('a"b') == '"a""b"'
    True
    """
    grams = _trigrams(text)
    return " OR ".join('"' + g.replace('"', '""') + '"' for g in grams) if grams else None


