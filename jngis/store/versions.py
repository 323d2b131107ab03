"""Boundary versions in the store: every version's layers, the lineage, adoption and taking effect.

Tables (both stores, :func:`jngis.store.schema.versions_tables_sql`):

- ``versions(version_id, effective, adopted_at, adopted_by, note, summary, applied)``:
  ``effective`` NULL for version 1 (the boundaries the store held when versions
  were first used: in force since the store began); ``applied`` once the
  version's layers are the plain layer tables.
- ``<kind>_history(code, version_from, version_to, valid_from, valid_to, srid,
  attributes, geom)`` for streets, communities, units and grids: a row is the
  kind's feature from ``version_from`` until ``version_to`` (NULL: still
  valid), its attributes as JSON and its geometry as WKB.
- ``lineage(version_id, kind, from_code, to_code, households, units)``.

The plain layer tables stay the version in force (what QGIS, the tiles and
placement read). An adoption is one transaction: its version, history and
lineage rows and, when it takes effect today, the plain tables, the open
orders re-placed (each with a trail row ``replaced``) and the announcements
``versions``, ``layers`` and ``orders``. A future ``effective`` stores the
version pending; :meth:`BoundaryVersions.apply_due_versions` makes it the
one in force on its day, and ``read_layer(kind, at=)`` answers with it from
that day on already.

Locks, always in this order so that no two writers wait on each other: the
``versions`` change row, the ``layers`` change row (new orders share-lock it
and so wait for an adoption under way), the open orders, the ``orders`` change row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from jngis import _checks, access
from jngis import versions as jversions
from jngis.cache import Cache
from jngis.codes import OPEN_STATES
from jngis.errors import AdoptionError, EffectiveDateError, NotFoundError, ParameterError, VersionConflictError
from jngis.layers import validate
from jngis.store.frames import SQL_TIME, column_kind
from jngis.store.placement import PLACEMENT_LAYERS, Placer, check_location
from jngis.store.schema import CODE_COLUMNS, TRAIL_COLUMNS, VERSIONED_KINDS
from jngis.workorders import now_cst, to_cst

__all__ = ["BoundaryVersions", "FIRST_NOTE", "HISTORY_VIEW_COLUMNS"]

FIRST_NOTE = "版本1：启用版本管理时库中的边界"
_HISTORY_COLUMNS = ("code", "version_from", "version_to", "valid_from", "valid_to", "srid", "attributes", "geom")
_VERSION_COLUMNS = ("version_id", "effective", "adopted_at", "adopted_by", "note", "summary", "applied")
_LINEAGE_COLUMNS = ("version_id", "kind", "from_code", "to_code", "households", "units")
#: What an adoption can change (streets stay as they are).
_ADOPTED_KINDS = ("communities", "units", "grids")


def _day(func: str, name: str, value: Any) -> dt.date:
    """A date (China Standard Time) from a date, datetime, Timestamp or ISO string."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    try:
        return to_cst(value, name).date()
    except Exception:
        raise EffectiveDateError(f"{func}: {name}={value!r}; expected a date such as '2027-01-01'") from None


class BoundaryVersions:
    """The versions methods of a :class:`~jngis.store.Store` (mixed into it)."""

    # what the Store provides
    _paramstyle: str
    _lock_row: str
    _placers: Cache
    _execute: Callable[..., Any]
    _conn: Callable[[], Any]
    _write: Callable[[], contextlib.AbstractContextManager]
    _to_db: Callable[[Any], Any]
    _from_db_time: Callable[[Any], Any]
    _insert_many: Callable[..., None]
    _read_city_layer: Callable[[str], gpd.GeoDataFrame]
    _staged_layers: Callable[[dict], contextlib.AbstractContextManager]
    _history_view: Callable[..., None]  # (conn, kind, [(column, kind)], crs, version): each store's own SQL
    layer_names: Callable[[], list[str]]
    announce: Callable[..., int]
    placer: Callable[[], Placer]

    # -- reading
    def versions(self) -> pd.DataFrame:
        """Every version, oldest first: version_id, effective, adopted_at, adopted_by, note, summary
        (a dict), status ("in_force", "past" or "pending")."""
        rows = self._execute(self._conn(), f"SELECT {', '.join(_VERSION_COLUMNS)} FROM versions "
                                           "ORDER BY version_id").fetchall()
        frame = pd.DataFrame([self._version_record(row) for row in rows],
                             columns=[*_VERSION_COLUMNS[:-1], "status"])
        if len(frame):
            in_force = frame.loc[frame["status"] != "pending", "version_id"].max()
            frame.loc[frame["version_id"] == in_force, "status"] = "in_force"
        return frame

    def _version_record(self, row: Any) -> dict:
        record = dict(zip(_VERSION_COLUMNS, row))
        record["effective"] = _as_date(record["effective"])
        record["adopted_at"] = self._from_db_time(record["adopted_at"])
        record["summary"] = json.loads(record["summary"])
        record["status"] = "past" if record.pop("applied") else "pending"
        return record

    def version(self, version_id: int) -> dict:
        """One version's record (see :meth:`versions`)."""
        version_id = _checks.integer("version", "version_id", version_id, minimum=1)
        frame = self.versions()
        found = frame[frame["version_id"] == version_id]
        if found.empty:
            raise NotFoundError(f"version: no version {version_id}; the store holds "
                                f"{frame['version_id'].tolist() or 'none'}")
        return found.iloc[0].to_dict()

    def version_in_force(self, at: Any = None) -> int | None:
        """The version in force now (the applied one) or on the date ``at`` (pending ones count from
        their effective date); None when the store has no versions yet."""
        if at is None:
            row = self._execute(self._conn(), "SELECT max(version_id) FROM versions WHERE applied").fetchone()
        else:
            row = self._execute(self._conn(), "SELECT max(version_id) FROM versions WHERE effective IS NULL "
                                              "OR effective <= ?", (self._date_param(_day("read_layer", "at", at)),)
                                ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def _layer_at(self, kind: str, at: Any) -> gpd.GeoDataFrame | None:
        """The layer as in force on ``at`` (None: not versioned, or no versions: the plain table answers)."""
        day = _day("read_layer", "at", at)
        if kind not in VERSIONED_KINDS:
            return None
        version = self.version_in_force(day)
        if version is None:
            if self._latest()[0] is not None:
                raise NotFoundError(f"read_layer: no version is in force on {day}; expected a later date")
            return None
        layer = self._history_at(kind, version)
        if layer is None:
            raise NotFoundError(f"read_layer: version {version} (in force on {day}) holds no {kind!r} layer")
        return layer

    def place(self, lon: float, lat: float, *, crs: str = "wgs84", at: Any = None) -> dict:
        """The district, 街道, community and grid of a location, now or as in force on ``at``.

        Answers "which grid was this address in last March" with the
        boundaries of the version in force then.
        """
        lon, lat = check_location("place", lon, lat, crs)
        version = None if at is None else self.version_in_force(at)
        placer = self.placer() if version is None else self._version_placer(version)
        row = placer.place(np.array([lon]), np.array([lat])).iloc[0]
        return {key: row[key] for key in CODE_COLUMNS}

    def _version_placer(self, version: int) -> Placer:
        cache = self.__dict__.setdefault("_version_placers", Cache(max_bytes=3))
        return cache.get_or_insert(version, lambda: self._placer_of(self._boundaries_at(version)))

    def _placer_of(self, boundaries: jversions.Boundaries) -> Placer:
        layers = {kind: self._read_city_layer(kind) for kind in PLACEMENT_LAYERS if kind in self.layer_names()}
        return Placer({**layers, **boundaries.layers()})

    def lineage(self, version_id: int | None = None, *, kind: str | None = None,
                code: str | None = None) -> pd.DataFrame:
        """Lineage rows (version_id, kind, from_code, to_code, households, units), of one version, one
        kind ("communities" or "grids") and/or one code (as from_code or to_code)."""
        where: list[str] = []
        params: list[Any] = []
        if version_id is not None:
            where.append("version_id = ?")
            params.append(_checks.integer("lineage", "version_id", version_id, minimum=1))
        if kind is not None:
            where.append("kind = ?")
            params.append(_checks.choice("lineage", "kind", kind, ("communities", "grids")))
        if code is not None:
            where.append("(from_code = ? OR to_code = ?)")
            code = _checks.text("lineage", "code", code, max_length=20, required=True)
            params += [code, code]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._execute(self._conn(), f"SELECT {', '.join(_LINEAGE_COLUMNS)} FROM lineage{clause} "
                                           "ORDER BY version_id, kind, from_code, to_code", params).fetchall()
        return pd.DataFrame(rows, columns=list(_LINEAGE_COLUMNS)).astype({"households": "int64", "units": "int64"})

    def diff(self, version_a: int, version_b: int) -> jversions.VersionDiff:
        """What changed from ``version_a`` to ``version_b`` (:class:`jngis.versions.VersionDiff`)."""
        a = _checks.integer("diff", "version_a", version_a, minimum=1)
        b = _checks.integer("diff", "version_b", version_b, minimum=1)
        for value in (a, b):
            self.version(value)
        flows = None
        if b == a + 1:
            flows = self.lineage(b).drop(columns="version_id")
        return jversions.diff(self._boundaries_at(a), self._boundaries_at(b), version_a=a, version_b=b,
                              flows=flows, orders=self._replaced_orders(a, b))

    def _replaced_orders(self, a: int, b: int) -> pd.DataFrame:
        rows = self._execute(self._conn(), "SELECT order_id, note FROM trail WHERE action = 'replaced' "
                                           "ORDER BY trail_id").fetchall()
        out = []
        for order_id, note in rows:
            grids, _, version = note.rpartition(" (version ")
            number = int(version.rstrip(")"))
            if a < number <= b:
                old, _, new = grids.removeprefix("grid ").partition(" -> ")
                out.append((order_id, None if old == "-" else old, None if new == "-" else new, number))
        return pd.DataFrame(out, columns=["order_id", "from_grid", "to_grid", "version_id"])

    # -- history
    def _latest(self) -> tuple[int | None, dt.date | None]:
        """The last version (pending ones included) and its effective date."""
        row = self._execute(self._conn(), "SELECT version_id, effective FROM versions "
                                          "ORDER BY version_id DESC LIMIT 1").fetchone()
        return (None, None) if row is None else (int(row[0]), _as_date(row[1]))

    def _history_at(self, kind: str, version: int) -> gpd.GeoDataFrame | None:
        rows = self._execute(self._conn(), f"SELECT attributes, geom, srid FROM {kind}_history WHERE version_from "
                                           "<= ? AND (version_to IS NULL OR version_to > ?) ORDER BY code",
                             (version, version)).fetchall()
        if not rows:
            return None
        # one parse of the whole layer's attributes (a JSON array), not one per row
        frame = pd.DataFrame(json.loads("[" + ",".join(r[0] for r in rows) + "]"))
        layer = gpd.GeoDataFrame(frame, geometry=shapely.from_wkb([bytes(r[1]) for r in rows]),
                                 crs=pyproj.CRS.from_epsg(int(rows[0][2])))
        return validate(layer, kind)

    def _boundaries_at(self, version: int, *, plain: bool = False) -> jversions.Boundaries:
        """The boundaries of ``version`` (``plain``: it is the version in force, read the plain tables)."""
        if plain:
            held = self.layer_names()
            layers = {kind: validate(self._read_city_layer(kind), kind) if kind in held else None
                      for kind in VERSIONED_KINDS}
        else:
            layers = {kind: self._history_at(kind, version) for kind in VERSIONED_KINDS}
        return jversions.Boundaries(layers["streets"], layers["communities"], layers["units"], layers["grids"])

    def _history_rows(self, kind: str, layer: gpd.GeoDataFrame, version: int, valid_from: dt.date | None) -> list:
        n = len(layer)
        srid = layer.crs.to_epsg()
        return list(zip(layer[VERSIONED_KINDS[kind]].astype(str), [version] * n, [None] * n,
                        [self._date_param(valid_from)] * n, [None] * n, [srid] * n,
                        jversions.attribute_text(layer), shapely.to_wkb(np.asarray(layer.geometry.values,
                                                                                  dtype=object))))

    def _history_views(self, conn, layers: dict[str, gpd.GeoDataFrame], version: int) -> None:
        """(Re)make the layer ``<kind>_versions`` of each layer, inside the open write of ``version``.

        Every version of the layer as a spatial layer that GIS programs open
        (QGIS, GDAL/ogrinfo, geopandas): ``fid``, ``version_from``,
        ``version_to``, ``valid_from``, ``valid_to``, the layer's attributes as
        typed columns (those of ``layer``, the version just written; a row of
        an older version without one has NULL) and ``geom`` in the layer's CRS
        (PostGIS: a view with a typed geometry column; GeoPackage: a feature table
        kept in step with the history by SQL).
        """
        for kind, layer in layers.items():
            columns = [(str(c), column_kind(layer[c])) for c in layer.columns
                       if c != layer.geometry.name and c not in HISTORY_VIEW_COLUMNS and _plain_name(str(c))]
            self._history_view(conn, kind, columns, layer.crs, version)

    def _date_param(self, day: dt.date | None) -> Any:
        # SQLite keeps dates as ISO text (its default date adapter is deprecated)
        return day.isoformat() if day is not None and self._paramstyle == "qmark" else day

    def _lock_change(self, conn, kind: str) -> None:
        """Lock a change row until the commit (PostgreSQL; SQLite's write lock already holds everything)."""
        self._execute(conn, f"SELECT version FROM jngis_changes WHERE kind = ?{self._lock_row}", (kind,))

    def _ensure_versions(self) -> jversions.Boundaries | None:
        """Record version 1 from the layers the store holds, once (the first adoption does it); returns
        the boundaries recorded (None when version 1 was there already)."""
        if self._latest()[0] is not None:
            return None
        held = self.layer_names()
        missing = [kind for kind in ("streets", "communities", "units") if kind not in held]
        if missing:
            raise NotFoundError(f"adopt: the store holds no {missing[0]!r} layer; expected a city written with "
                                "store.write_city(city) before adopting boundaries")
        layers = {kind: validate(self._read_city_layer(kind), kind) for kind in VERSIONED_KINDS if kind in held}
        rows = {kind: self._history_rows(kind, layer, 1, None) for kind, layer in layers.items()}
        summary = {kind: len(layer) for kind, layer in layers.items()}
        summary["households"] = int(layers["units"]["households"].sum())
        with self._write() as conn:
            self._lock_change(conn, "versions")
            if self._latest()[0] is not None:
                return None
            self._insert_version(conn, 1, None, "system", FIRST_NOTE, summary, applied=True)
            for kind, kind_rows in rows.items():
                self._insert_many(conn, f"{kind}_history", _HISTORY_COLUMNS, kind_rows)
            self._history_views(conn, layers, 1)
            self.announce("versions")
        return jversions.Boundaries(layers["streets"], layers["communities"], layers["units"], layers.get("grids"))

    def _insert_version(self, conn, version: int, effective: dt.date | None, who: str, note: str | None,
                        summary: dict, *, applied: bool) -> None:
        self._execute(conn, f"INSERT INTO versions({', '.join(_VERSION_COLUMNS)}) VALUES "
                            f"({', '.join('?' * len(_VERSION_COLUMNS))})",
                      (version, self._date_param(effective), self._to_db(now_cst()), who, note,
                       json.dumps(summary, ensure_ascii=False), applied))

    def _retired_codes(self) -> dict[str, dict[str, int]]:
        """kind -> {code: the version that retired it} (every row of the code closed)."""
        out = {}
        for kind in ("communities", "grids"):
            rows = self._execute(self._conn(), f"SELECT code, max(version_to) FROM {kind}_history GROUP BY code "
                                               "HAVING count(*) = count(version_to)").fetchall()
            out[kind] = {code: int(version) for code, version in rows}
        return out

    def retired_codes(self, kind: str) -> dict[str, int]:
        """Codes of ``kind`` ("communities" or "grids") retired by an adopted version: {code: that version}.

        A retired code is never given to another area: pass these as
        ``retired=`` to :func:`jngis.rebalance` or :func:`jngis.make_grids` so
        a new redraw avoids them (a scheduled version's retirements count).
        """
        kind = _checks.choice("retired_codes", "kind", kind, ("communities", "grids"))
        return dict(sorted(self._retired_codes()[kind].items()))

    # -- adopting
    def adopt(self, source: Any, *, effective: Any = None, note: str | None = None,
              grids: gpd.GeoDataFrame | None = None, communities: gpd.GeoDataFrame | None = None,
              principal: access.Principal = access.ADMIN, progress: bool = False) -> dict:
        """Adopt new boundaries as the next version, in one transaction; returns its record.

        Parameters
        ----------
        source : RebalancePlan, GeoDataFrame or path
            A plan from :func:`jngis.rebalance` (pass its regridding as
            ``grids=``), grids from :func:`jngis.make_grids` (with their new
            ``communities=`` if any), or a GeoPackage with ``communities``
            and/or ``grids`` (see :func:`jngis.versions.proposal`).
        effective : date, optional
            The day it takes effect (default today, China Standard Time). A
            later day stores it pending until :meth:`apply_due_versions`.
        note : str, optional
            The decision (e.g. the document number).
        principal : Principal
            Who adopts (action ``versions.adopt``; a planner only within scope).
        progress : bool
            Show the steps with a progress bar.

        Raises
        ------
        UnitsMismatchError, CoverageMismatchError, CodeConflictError, EffectiveDateError
            The proposal cannot be adopted (nothing is written): the message names what.
        VersionConflictError
            Another adoption landed meanwhile.
        ForbiddenError
            The principal may not adopt (or not there).
        """
        who = access.principal(principal)
        access.require(who, "versions.adopt")
        note = _checks.text("adopt", "note", note, max_length=2000)
        today = now_cst().date()
        day = today if effective is None else _day("adopt", "effective", effective)
        with _steps(progress, ("检查", "谱系", "写入")) as step:
            first = self._ensure_versions()
            base, base_day = self._latest()
            assert base is not None
            if base_day is not None and day < base_day:
                raise EffectiveDateError(f"adopt: effective={day} is before version {base}'s effective date "
                                         f"{base_day}; expected {base_day} or later")
            before = first if first is not None and base == 1 else \
                self._boundaries_at(base, plain=self.version_in_force() == base)
            after = jversions.proposal(source, before, grids=grids, communities=communities)
            changed = jversions.all_changes(before, after)
            jversions.check_adoption(before, after, retired=self._retired_codes(),
                                     scope=() if who.role == "admin" else who.scope, changes=changed)
            step()
            if not any(any(codes.values()) for codes in changed.values()):
                raise AdoptionError("adopt: the proposal changes no community, grid or unit; expected a change")
            flows = jversions.lineage(before, after, changes=changed)
            summary = jversions.diff(before, after, flows=flows, changes=changed).summary
            step()
            version = self._write_version(base, day, today, who, note, summary, before, after, changed, flows)
            step()
        return self.version(version)

    def _write_version(self, base: int, day: dt.date, today: dt.date, who: access.Principal, note: str | None,
                       summary: dict, before: jversions.Boundaries, after: jversions.Boundaries,
                       changed: dict[str, dict[str, set]], flows: pd.DataFrame) -> int:
        version = base + 1
        applies = day <= today
        kinds = [kind for kind in _ADOPTED_KINDS if any(changed[kind].values())]
        staged = self._staged_layers({k: getattr(after, k) for k in kinds}) if applies else _nothing()
        with staged as replace, self._write() as conn:
            self._lock_change(conn, "versions")
            if self._latest()[0] != base:
                raise VersionConflictError(f"adopt: version {self._latest()[0]} was adopted meanwhile (this "
                                           f"proposal was checked against version {base}); expected to adopt "
                                           "over the last version: check again")
            self._insert_version(conn, version, day, who.id, note, summary, applied=False)
            for kind in kinds:
                self._write_history(conn, kind, version, day, getattr(after, kind), changed[kind])
            self._history_views(conn, {kind: getattr(after, kind) for kind in kinds}, version)
            self._insert_many(conn, "lineage", _LINEAGE_COLUMNS, _lineage_rows(version, flows))
            if applies:
                self._take_effect(conn, version, after, replace)
            self.announce("versions")
        self._placers.clear()
        return version

    def _write_history(self, conn, kind: str, version: int, day: dt.date, layer: gpd.GeoDataFrame,
                       codes: dict[str, set]) -> None:
        """Close the rows of the changed and retired codes; add the new rows of the changed and created."""
        closing = sorted(codes["changed"] | codes["retired"])
        for start in range(0, len(closing), 500):
            chunk = closing[start:start + 500]
            self._execute(conn, f"UPDATE {kind}_history SET version_to = ?, valid_to = ? WHERE version_to IS NULL "
                                f"AND code IN ({', '.join('?' * len(chunk))})",
                          [version, self._date_param(day), *chunk])
        opening = codes["changed"] | codes["created"]
        new = layer[layer[VERSIONED_KINDS[kind]].astype(str).isin(opening)]
        self._insert_many(conn, f"{kind}_history", _HISTORY_COLUMNS, self._history_rows(kind, new, version, day))

    def _take_effect(self, conn, version: int, after: jversions.Boundaries,
                     replace: Callable[[Any], None] | None) -> int:
        """Inside the write: the plain tables become ``version``'s, open orders move; returns how many."""
        self._lock_change(conn, "layers")
        if replace is not None:
            replace(conn)
        moved = self._replace_open_orders(conn, version, after)
        self._execute(conn, "UPDATE versions SET applied = ? WHERE version_id <= ?", (True, version))
        summary = json.loads(self._execute(conn, "SELECT summary FROM versions WHERE version_id = ?",
                                           (version,)).fetchone()[0])
        summary["orders_replaced"] = moved
        self._execute(conn, "UPDATE versions SET summary = ? WHERE version_id = ?",
                      (json.dumps(summary, ensure_ascii=False), version))
        self.announce("layers")
        if moved:
            self.announce("orders")
        return moved

    def _replace_open_orders(self, conn, version: int, after: jversions.Boundaries) -> int:
        """Open orders placed in ``after``; each move appends a trail row ``replaced`` (closed orders stay)."""
        states = ", ".join("?" * len(OPEN_STATES))
        rows = self._execute(conn, f"SELECT order_id, status, lon, lat, {', '.join(CODE_COLUMNS)} FROM orders "
                                   f"WHERE status IN ({states}){self._lock_row}", list(OPEN_STATES)).fetchall()
        if not rows:
            return 0
        frame = pd.DataFrame(rows, columns=["order_id", "status", "lon", "lat", *CODE_COLUMNS])
        place = self._placer_of(after).place(frame["lon"].to_numpy(float), frame["lat"].to_numpy(float))
        old = frame[list(CODE_COLUMNS)].astype(object).where(frame[list(CODE_COLUMNS)].notna(), None)
        new = place[list(CODE_COLUMNS)].astype(object).where(place[list(CODE_COLUMNS)].notna(), None)
        moved = (old.to_numpy() != new.to_numpy()).any(axis=1)
        if not moved.any():
            return 0
        frame, new = frame[moved], new[moved]
        cursor = conn.cursor()
        cursor.executemany(self._sql_text("UPDATE orders SET street_code = ?, community_code = ?, grid_code = ? "
                                          "WHERE order_id = ?"),
                           list(zip(new["street_code"], new["community_code"], new["grid_code"], frame["order_id"])))
        at = now_cst().strftime(SQL_TIME)
        trail = [(order_id, "replaced", status, status, access.SYSTEM.id, at,
                  f"grid {a or '-'} -> {b or '-'} (version {version})")
                 for order_id, status, a, b in zip(frame["order_id"], frame["status"], frame["grid_code"],
                                                   new["grid_code"])]
        self._insert_many(conn, "trail", TRAIL_COLUMNS, trail)
        return len(trail)

    def _sql_text(self, query: str) -> str:
        return query.replace("?", "%s") if self._paramstyle == "format" else query

    def apply_due_versions(self, now: Any = None) -> list[int]:
        """Make the pending versions whose effective date has come the version in force; returns their ids.

        The server calls it periodically, in every worker process. Two at
        once are safe: PostgreSQL lets one scheduler at a time past an
        advisory lock (the others return at once: it announces what it
        applied), and both stores re-check, under the ``versions`` row lock
        (SQLite: ``BEGIN IMMEDIATE``), that the version is still pending, so
        it takes effect once, its orders re-placed and announced once.
        """
        today = now_cst().date() if now is None else _day("apply_due_versions", "now", now)
        with self._one_scheduler() as mine:
            return self._apply_due(today) if mine else []

    @contextlib.contextmanager
    def _one_scheduler(self) -> Iterator[bool]:
        """Whether this caller is the one scheduler now (SQLite: always; its write lock serialises)."""
        yield True

    def _apply_due(self, today: dt.date) -> list[int]:
        rows = self._execute(self._conn(), "SELECT version_id FROM versions WHERE NOT applied AND effective <= ? "
                                           "ORDER BY version_id", (self._date_param(today),)).fetchall()
        due = [int(r[0]) for r in rows]
        if not due:
            return []
        version, current = due[-1], self.version_in_force()
        after = self._boundaries_at(version)
        kinds = [kind for kind in _ADOPTED_KINDS if self._changed_between(kind, current or 0, version)]
        with self._staged_layers({k: getattr(after, k) for k in kinds}) as replace, self._write() as conn:
            self._lock_change(conn, "versions")
            row = self._execute(conn, "SELECT applied FROM versions WHERE version_id = ?", (version,)).fetchone()
            if row[0]:
                return []  # another process applied it meanwhile
            self._take_effect(conn, version, after, replace)
            self.announce("versions")
        self._placers.clear()
        return due

    def _changed_between(self, kind: str, old: int, new: int) -> bool:
        row = self._execute(self._conn(), f"SELECT 1 FROM {kind}_history WHERE (version_from > ? AND version_from "
                                          "<= ?) OR (version_to > ? AND version_to <= ?) LIMIT 1",
                            (old, new, old, new)).fetchone()
        return row is not None

    def _refuse_versioned_write(self, kinds: list[str]) -> None:
        """write_city may not replace versioned layers behind the versions' back."""
        versioned = [kind for kind in kinds if kind in VERSIONED_KINDS]
        if versioned and self._latest()[0] is not None:
            raise ParameterError(f"write_city: the store keeps boundary versions, so its {versioned[0]} change "
                                 "only by adoption; expected store.adopt(...) (or a city without "
                                 f"{', '.join(versioned)})")


#: The columns every ``<kind>_versions`` view starts with (the layer's attributes follow, then ``geom``).
HISTORY_VIEW_COLUMNS = ("fid", "version_from", "version_to", "valid_from", "valid_to", "geom")


def _plain_name(name: str) -> bool:
    """A column name that can be quoted in SQL and in a JSON path as it is (no quote characters)."""
    return not any(q in name for q in "\"'\\")


def _lineage_rows(version: int, flows: pd.DataFrame) -> list[tuple]:
    """Lineage rows as plain values (a unit in no grid: NULL)."""
    codes = flows[["kind", "from_code", "to_code"]].astype(object)
    codes = codes.where(codes.notna(), None)
    return [(version, kind, a, b, int(h), int(u)) for (kind, a, b), h, u in
            zip(codes.itertuples(index=False, name=None), flows["households"], flows["units"])]


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value.date() if isinstance(value, dt.datetime) else value


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield None


@contextlib.contextmanager
def _steps(enabled: bool, names: tuple[str, ...]) -> Iterator[Callable[[], None]]:
    """A progress bar over named steps (``step()`` moves to the next), or nothing."""
    if not enabled:
        yield lambda: None
        return
    from tqdm import tqdm

    bar = tqdm(total=len(names), desc=names[0], unit="步", leave=False)
    done = [0]

    def step() -> None:
        done[0] += 1
        bar.update(1)
        if done[0] < len(names):
            bar.set_description(names[done[0]])

    try:
        yield step
    finally:
        bar.close()
