"""The store: city layers and 12345 work orders with their trail, on SQLite/GeoPackage or PostGIS.

One interface, :class:`Store`, two real implementations behind the same
methods:

- :class:`SQLiteStore` (the default): one GeoPackage file, in WAL mode, no
  server needed. It opens any city GeoPackage written by
  :func:`jngis.layers.write_city` (the sample city's included) and adds its
  own tables beside the layers: ``orders`` (a GeoPackage point layer, so
  QGIS can open it, without personal data), ``callers`` (the callers' names
  and phones), ``trail`` (the audit trail), ``order_counters`` and
  ``jngis_store``. A city file holding a ``workorders`` layer (the sample's
  100,000 historical orders) has it imported into ``orders`` with a
  synthetic trail on first open (once, in one transaction: ~10 s for the
  sample).
- :class:`PostGISStore`: PostgreSQL + PostGIS; each layer is a table with a
  ``geom`` geometry column and a GiST index, as are ``orders``.

``open_store(url_or_path)`` picks the implementation: ``postgresql://...``
(or ``postgres://``) opens PostGIS, anything else a GeoPackage path. A store
that is not there is created, unless ``create=False`` (what every ``jngis``
command that reads or writes a store passes: a mistyped path is refused, never
turned into an empty store).

Modules: :mod:`~jngis.store.base` (the interface and the logic both stores
share), :mod:`~jngis.store.sqlite`, :mod:`~jngis.store.postgis` (what differs:
connection, SQL dialect, locking), :mod:`~jngis.store.schema` (the store's own
tables), :mod:`~jngis.store.placement`, :mod:`~jngis.store.bulk` (imports),
:mod:`~jngis.store.frames` (rows to pandas and back), :mod:`~jngis.store.opening`,
:mod:`~jngis.store.changes` (the change channel), :mod:`~jngis.store.versions` (boundary versions).

Interface (what the map server calls)
-------------------------------------
==========================================================  ==========================================
``open_store(url_or_path, *, calendar=CALENDAR,``            a Store (``with open_store(...) as store:``)
``  create=True)``
``store.layer_names() -> list[str]``                         layer kinds present (``"workorders"``
                                                             when the store holds orders)
``store.read_layer(kind) -> GeoDataFrame``                   one validated layer; ``"workorders"`` is
                                                             ``orders_frame()`` (live, public)
``store.read_city() -> City``                                every layer
``store.write_city(city)``                                   replace the city's layers (validated
                                                             first; a ``workorders`` layer is imported
                                                             as history, orders already held are kept)
``store.crs -> pyproj.CRS``                                  the CRS of the orders and the layers
``store.create_order(lon, lat, *, crs="wgs84", category,``   place, set the due time, write the order
``  description, caller_name=None, caller_phone=None,``      and its first trail row together;
``  who, at=None, order_id=None) -> dict``                   returns :func:`get_order`'s public dict
``store.transition(order_id, to, *, who, note=None,``        one step of the closed loop, order and
``  at=None, days=None, satisfied=None) -> dict``            trail row together; public dict
``store.get_order(order_id, *, principal=ADMIN,``            public fields (PUBLIC_FIELDS), phones in
``  personal=False) -> dict``                                 the description masked; personal=True adds
                                                             the caller's name and phone, masked
``store.reveal(order_id, *, principal, reason,``             public fields + caller_name/phone in full,
``  client=None) -> dict``                                   written to the access log (same transaction)
``store.forget_callers(closed_before) -> int``               callers' details of orders closed before it
                                                             deleted, descriptions masked, logged
``store.add_user(name, *, role, scope=(), expires=None)``    ``(record, token text)``; the token shown once
``store.list_users() / disable_user(id) / rotate_token(id)``  users (:mod:`~jngis.store.users`)
``store.authenticate(token) -> Principal``                   or AuthenticationError (one message)
``store.log_access(action, *, principal, ...)``              the append-only access log
``store.access_log(since, until) -> DataFrame``              (:mod:`~jngis.store.audit`)
``store.list_orders(*, grid_code=None, community_code=None,``  newest first, public dicts
``  street_code=None, district_code=None, status=None,``
``  overdue=None, limit=100, offset=0, now=None)``
``store.count_orders(...same filters...) -> int``            for paging
``store.trail(order_id) -> list[dict]``                      trail rows, oldest first
``store.trail_frame() -> DataFrame``                         the whole trail
``store.orders_version() -> tuple``                          changes with every write (cache keys)
``store.orders_frame(public=True, now=None,``                 orders in ``store.crs``, public columns +
``  columns=None) -> GeoDataFrame``                           ``deadline`` (for grid_stats and tiles)
``store.orders_changes(cursor=None, columns=None)``           the orders written since ``cursor`` (from the
``  -> OrderChanges``                                        trail; :mod:`~jngis.store.feed`), the next cursor
``store.import_orders(rows, *, who, progress=False)``        bulk create from
``  -> ImportResult``                                        :func:`jngis.workorders.clean_order_rows`
``store.announce(kind, version=None)``                       inside a write: bump ``jngis_changes``
                                                             (PostgreSQL: also NOTIFY jngis_changes)
``store.change_versions() -> dict[str, int]``                orders / layers / versions / users counters
``store.listen(callback, stop) -> Thread``                   callback(kind, version) on every change
``store.adopt(source, *, effective=None, note=None,``        a new boundary version, checked first, in
``  grids=None, communities=None, principal=ADMIN)``         one transaction (:mod:`~jngis.store.versions`)
``store.versions()`` / ``version(n)`` /                      the versions; pending ones take effect on
``  version_in_force(at=None)`` / ``apply_due_versions()``   their day
``store.read_layer(kind, at=date)``, ``store.place(lon,``    the boundaries in force on a date
``  lat, at=date)``
``store.lineage(version_id, kind=, code=)``,                 where units and households went
``  store.diff(a, b) -> jngis.versions.VersionDiff``
``store.close()``
==========================================================  ==========================================

Every order method takes ``principal=`` (a :class:`jngis.access.Principal`;
default the administrator, what the CLI and notebooks act as): reads are
filtered to its scope in SQL, an order outside it raises the NotFoundError of
a missing one, a write it may not make a ForbiddenError; the trail's ``who``
is ``principal.id`` (only the administrator may still name an operator with
``who=``). Public dicts and frames never hold a caller's name or phone in
full; only :meth:`Store.reveal` does (``private_record`` is its deprecated,
logged alias). Errors are :class:`jngis.errors.JngisError`
subclasses: NotFoundError (no such order / layer: HTTP 404),
InvalidTransition (409), ParameterError / GeometryError / CRSError (400/422).

Placement: an order is placed at creation in its district, 街道, community
and grid with :class:`jngis.assign.PolygonIndex` (one index per level, built
once per store and reused). A location outside every district is refused
with :class:`~jngis.errors.GeometryError`. Until the store holds a
``grids`` layer, ``grid_code`` is ``None``; likewise ``community_code`` for a
point in a district but outside every community (rural land).

Transactions: a creation (order, caller, first trail row) and a transition
(order update and its trail row) are written together or not at all.
SQLite serialises writers with ``BEGIN IMMEDIATE`` (WAL lets readers go on);
PostGIS locks the order row with ``SELECT ... FOR UPDATE``. The order ids
(``YYYYMMDD`` + a 6-digit number per day, as in the sample) come from an
atomic counter, so concurrent creators never collide.

The SQLite file is touched only through Python's ``sqlite3``: GDAL carries its
own SQLite library, and two SQLite libraries on one file in one process
defeat its locks (SQLite's "multiple copies" warning), so layers are read
and copied here with plain SQL.

Examples
--------
>>> import shutil, tempfile, pathlib
>>> from jngis.sample import SHAPES_DIR, SLICE_FILE
>>> path = pathlib.Path(tempfile.mkdtemp()) / "city.gpkg"
>>> _ = shutil.copy(SHAPES_DIR / SLICE_FILE, path)
>>> with open_store(path) as store:
...     order = store.create_order(117.1543, 36.6980, category="环境卫生", description="楼道堆物",
...                                caller_phone="13800000000", who="话务员01", at="2026-10-09 09:00")
...     after = store.transition(order["order_id"], "dispatched", who="派单员", at="2026-10-09 10:00")
...     print(after["status"], after["due_at"], "caller_phone" in after)
dispatched 2026-10-15 10:00:00 False
"""

from __future__ import annotations

from jngis.store.base import Store
from jngis.store.bulk import ImportResult
from jngis.store.feed import OrderChanges, OrdersCursor
from jngis.store.opening import open_store, require_store
from jngis.store.postgis import PostGISStore
from jngis.store.schema import DEFAULT_CRS, MAX_OFFSET
from jngis.store.sqlite import SQLiteStore

__all__ = ["Store", "SQLiteStore", "PostGISStore", "ImportResult", "OrderChanges", "OrdersCursor", "open_store",
           "require_store", "DEFAULT_CRS", "MAX_OFFSET"]
