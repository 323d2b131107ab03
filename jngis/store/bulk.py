"""Bulk writes of either store, in phases: hotline exports (:func:`import_orders`) and history.

Each import checks its rows, places them, builds the orders table, then
numbers and writes them in one transaction: every good row lands, or none does
(Ctrl-C included).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd

from jngis import _checks
from jngis.access import Scope
from jngis.codes import personal_columns
from jngis.errors import JngisError, SchemaError
from jngis.layers import validate
from jngis.store.schema import (
    CALLER_COLUMNS,
    CALLER_FIELDS,
    CODE_COLUMNS,
    ORDER_COLUMNS,
    TIME_COLUMNS,
    TRAIL_COLUMNS,
)
from jngis.workorders import RESOLVE_WORKING_DAYS, WARNING_WORKING_DAYS, check_trail, now_cst, synthetic_trail
from jngis.workorders.loop import LOOP_COLUMNS, replay_loop
from jngis.workorders.states import TRANSITIONS
from jngis.workorders.synthetic import LOOP_HISTORY_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    from jngis.store.base import Store

__all__ = ["ImportResult", "import_orders", "import_history", "clean_export"]

_EVERYWHERE = Scope(everything=True)
_OPTIONAL_IMPORT_COLUMNS = ("description", *CALLER_FIELDS, "received_at", "order_id")


class ImportResult(NamedTuple):
    """What a bulk import did: ``imported`` orders (their ids) and the refused rows."""

    imported: int
    order_ids: list[str]
    bad: pd.DataFrame  # columns row, reason
    seconds: float


# --------------------------------------------------------------------------- hotline exports


def import_orders(store: Store, rows: pd.DataFrame, *, who: str, progress: bool = False,
                  scope: Scope = _EVERYWHERE) -> ImportResult:
    """Create many orders at once (see :meth:`jngis.store.Store.import_orders`); rows outside ``scope`` refused."""
    started = time.perf_counter()
    rows, who = _check_import(rows, who)
    layers_version = store.change_versions()["layers"]
    rows, place, bad = _place_rows(store, rows, layers_version)
    outside = ~scope.mask(place)
    bad.append(_refusals(rows.index[outside], ["the place is outside the importer's scope"] * int(outside.sum())))
    rows, place = rows[~outside], place[~outside]
    frame = _new_orders(store, rows, place)
    with store._write() as conn:
        _place_again_if_moved(store, conn, frame, layers_version)
        held = store._held_ids(conn, frame["order_id"].dropna().tolist())
        taken = frame["order_id"].isin(held).to_numpy()
        bad.append(_refusals(frame.index[taken], [f"order_id {i!r} is already in the store"
                                                  for i in frame["order_id"][taken]]))
        frame, rows = frame[~taken], rows[~taken]
        frame["order_id"] = _number_orders(store, conn, frame)
        callers = pd.DataFrame({"order_id": frame["order_id"], **{f: rows[f] for f in CALLER_FIELDS}})
        callers = callers[callers[list(CALLER_FIELDS)].notna().any(axis=1)]
        trail = pd.DataFrame({"order_id": frame["order_id"], "action": "received", "from_state": None,
                              "to_state": "received", "who": who, "at": frame["received_at"], "note": None})
        with _progress_bar(progress, len(frame), "importing") as advance:
            store._bulk_orders(conn, frame.reset_index(drop=True), callers[list(CALLER_COLUMNS)], trail, advance)
    store._after_bulk(len(frame))
    refused = pd.concat(bad, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    return ImportResult(len(frame), frame["order_id"].tolist(), refused, time.perf_counter() - started)


def clean_export(store: Store, table: pd.DataFrame, *, crs: str = "wgs84",
                 prefixes: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(good, bad)`` of a hotline export whose rows give lon/lat or an address instead.

    As :func:`jngis.workorders.clean_order_rows` (``table`` from ``read_order_table``,
    indexed by row number), and a row with an ``address`` but no lon/lat is placed at the
    unit the address names (:meth:`Store.lookup_address`, ``prefixes`` the province and
    city an address may start with) when the match is sure. An ambiguous or unknown
    address is refused: ``bad`` has ``row``, ``reason``, ``status`` (``ambiguous``,
    ``not_found``; empty for other refusals) and ``candidates`` (the units it may mean,
    as text). Nothing of a refused row is written.
    """
    from jngis.address import place_rows
    from jngis.workorders import clean_order_rows

    def blank(column: str) -> pd.Series:
        if column not in table.columns:
            return pd.Series(True, index=table.index)
        return table[column].fillna("").astype(str).str.strip().eq("")

    by_address = (~blank("address") & (blank("lon") | blank("lat"))).to_numpy()
    good, bad = clean_order_rows(table[~by_address], crs=crs)
    goods, bads = [good], [bad.assign(status="", candidates="")]
    if by_address.any():
        lookup = functools.partial(store.lookup_address, prefixes=tuple(prefixes))
        placed, refused = place_rows(table[by_address], lookup, column="address", first_row=None)
        placed_good, placed_bad = clean_order_rows(placed.drop(columns=["crs", "unit_id", "address_score"]),
                                                   crs="cgcs2000")
        goods.append(placed_good)
        bads += [placed_bad.assign(status="", candidates=""), pd.DataFrame({
            "row": refused["row"], "status": refused["status"],
            "reason": [f"address {a!r} is {s}: {r}" for a, s, r in zip(refused["address"], refused["status"],
                                                                        refused["reason"])],
            "candidates": ["; ".join(f"{c['address']} ({c['street_code']}, {c['score']:g})" for c in found)
                           for found in refused["candidates"]]})]
    good = pd.concat(goods).sort_index(kind="stable")
    bad = pd.concat(bads, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    return good, bad[["row", "reason", "status", "candidates"]]


def _check_import(rows: pd.DataFrame, who: str) -> tuple[pd.DataFrame, str]:
    """The rows (a copy, every optional column present) and who imports them."""
    _checks.dataframe("import_orders", "rows", rows)
    _checks.columns("import_orders", "rows", rows, ("lon", "lat", "category"))
    stray = [c for c in personal_columns(rows.columns) if c not in CALLER_FIELDS]
    if stray:
        # a store keeps a caller's details only in its callers table: anything else would be dropped
        raise SchemaError(f"import_orders: rows has the column {stray[0]!r}, which holds personal data the "
                          f"store does not keep; expected personal data only in {list(CALLER_FIELDS)}")
    who = _checks.text("import_orders", "who", who, max_length=100, required=True)
    rows = rows.copy()
    for column in _OPTIONAL_IMPORT_COLUMNS:
        if column not in rows.columns:
            rows[column] = None
    return rows, who


def _refusals(rows: pd.Index, reasons: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"row": rows, "reason": reasons})


def _place_again_if_moved(store: Store, conn, frame: pd.DataFrame, layers_version: int) -> None:
    """Inside the write: the places again if the boundaries changed since ``layers_version``."""
    moved = store._placed_in_force(conn, frame["lon"].to_numpy(float), frame["lat"].to_numpy(float), layers_version)
    if moved is not None:
        for column in CODE_COLUMNS:
            frame[column] = moved[column].to_numpy()


def _place_rows(store: Store, rows: pd.DataFrame,
                layers_version: int) -> tuple[pd.DataFrame, pd.DataFrame, list[pd.DataFrame]]:
    """The rows inside the city with their places, and the refusal of those outside every district."""
    place = store._placer_at(layers_version).place(rows["lon"].to_numpy(float), rows["lat"].to_numpy(float))
    place.index = rows.index
    outside = place["district_code"].isna().to_numpy()
    refused = _refusals(rows.index[outside], [f"location lon={lo:.6f}, lat={la:.6f} (WGS84) is outside every "
                                              "district" for lo, la in zip(rows["lon"][outside],
                                                                           rows["lat"][outside])])
    return rows[~outside], place[~outside], [refused]


def _new_orders(store: Store, rows: pd.DataFrame, place: pd.DataFrame) -> pd.DataFrame:
    """The orders table of new orders (received, due in the working days of the store's calendar)."""
    received = pd.to_datetime(rows["received_at"]).fillna(pd.Timestamp(now_cst())).dt.floor("s")
    due = store.calendar.add_working_days(pd.DatetimeIndex(received), RESOLVE_WORKING_DAYS)
    warn = store.calendar.add_working_days(due, -WARNING_WORKING_DAYS)
    return pd.DataFrame({
        "order_id": rows["order_id"].astype(object).where(rows["order_id"].notna(), None),
        "category": rows["category"], "description": rows["description"], "status": "received",
        "received_at": received.to_numpy(), "dispatched_at": pd.NaT, "due_at": due, "warn_at": warn,
        "resolved_at": pd.NaT, "closed_at": pd.NaT, "extended_days": None, "satisfied": None,
        **{c: place[c] for c in CODE_COLUMNS},
        "lon": rows["lon"].to_numpy(float), "lat": rows["lat"].to_numpy(float),
        "x": place["x"].to_numpy(float), "y": place["y"].to_numpy(float),
        "updated_at": received.to_numpy(), "department_code": None,
    }, index=rows.index)


def _number_orders(store: Store, conn, frame: pd.DataFrame) -> pd.Series:
    """The orders' ids: the given ones (counters moved past them), new ones per day for the rest."""
    ids = frame["order_id"].copy()
    store._bump_counters(conn, ids.dropna())
    need = ids.isna().to_numpy()
    if need.any():
        days = frame["received_at"][need].dt.date
        for day, members in days.groupby(days).groups.items():
            ids[members] = store._next_ids(conn, day, len(members))
    return ids


@contextlib.contextmanager
def _progress_bar(enabled: bool, total: int, desc: str) -> Iterator[Callable[[int], None] | None]:
    """A tqdm bar's ``update`` (closed afterwards), or None when not wanted."""
    if not enabled:
        yield None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, unit="order", desc=desc, leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


# --------------------------------------------------------------------------- history


def import_history(store: Store, workorders: gpd.GeoDataFrame, *, who: str = "history",
                   progress: bool = False, trail: pd.DataFrame | None = None) -> int:
    """Import a historical ``workorders`` layer (see :meth:`jngis.store.Store.import_history`).

    ``trail`` is the orders' own trail (an export's step log: ``order_id``,
    ``action``, ``from_state``, ``to_state``, ``who``, ``at``, ``note``, each
    order's rows in the order they were written) instead of the synthetic
    one; each order's rows must replay to its ``status``
    (:func:`jngis.workorders.check_trail`). An ``extended_days`` column gives
    the working days an order's extension added (its decision was granted).
    Every order that can still take a step gets the department-loop row its
    trail replays to (:func:`_history_loops`).
    """
    validate(workorders, "workorders")
    layer = workorders.to_crs(store.crs) if workorders.crs != store.crs else workorders
    ids = layer["order_id"].astype(str)
    layer = layer[~ids.isin(store._held_ids(store._conn(), ids.tolist()))]
    if layer.empty:
        return 0
    layers_version = store.change_versions()["layers"]
    frame = _history_orders(store, layer, layers_version)
    trail = synthetic_trail(frame, who=who) if trail is None else _given_trail(frame, trail)
    frame["updated_at"] = frame["order_id"].map(trail.groupby("order_id", sort=False)["at"].max()).to_numpy()
    loops = _history_loops(store, frame, trail)
    frame = frame[list(ORDER_COLUMNS)]
    with store._write() as conn:
        _place_again_if_moved(store, conn, frame, layers_version)
        store._bump_counters(conn, frame["order_id"])
        with _progress_bar(progress, len(frame), "history") as advance:
            store._bulk_orders(conn, frame, pd.DataFrame(columns=list(CALLER_COLUMNS)), trail, advance)
        store._insert_many(conn, "order_loop", ("order_id", *LOOP_COLUMNS),
                           [(order_id, *(store._to_db(loop[c]) for c in LOOP_COLUMNS)) for order_id, loop in loops])
    store._after_bulk(len(frame))
    return len(frame)


def _given_trail(frame: pd.DataFrame, trail: pd.DataFrame) -> pd.DataFrame:
    """The given trail's rows of the imported orders, checked against their states."""
    _checks.dataframe("import_history", "trail", trail)
    _checks.columns("import_history", "trail", trail, TRAIL_COLUMNS)
    trail = trail[trail["order_id"].astype(str).isin(frame["order_id"]).to_numpy()][list(TRAIL_COLUMNS)].copy()
    trail["order_id"] = trail["order_id"].astype(str)
    trail["at"] = pd.to_datetime(trail["at"]).dt.floor("s")
    problems = check_trail(frame, trail)
    if len(problems):
        first = problems.iloc[0]
        raise SchemaError(f"import_history: trail of work order {first['order_id']!r} (status {first['status']!r}): "
                          f"{first['problem']}; expected each order's rows to replay to its status")
    return trail.reset_index(drop=True)


def _history_loops(store: Store, frame: pd.DataFrame, trail: pd.DataFrame) -> list[tuple[str, dict]]:
    """The department-loop rows of the history's orders that can still take a step, from their trail.

    Each order's trail is replayed through the loop's own rules
    (:func:`jngis.workorders.loop.replay_loop`, the store's rules and calendar),
    so an open order's row is the one the same steps taken live would have
    written. Closed and merged orders take no more steps and keep none (their
    trail holds their history; the evaluation reads it, and a closed order's
    first callback answer stays the one counted). A trail row the loop
    refuses is a SchemaError naming the order: nothing is written.
    """
    steppable = [state for state, steps in TRANSITIONS.items() if steps]
    open_ids = frame["order_id"][frame["status"].isin(steppable).to_numpy()]
    if open_ids.empty:
        return []
    rows = trail[trail["order_id"].isin(open_ids).to_numpy()]
    ids, actions, who = (rows[c].to_numpy(object) for c in ("order_id", "action", "who"))
    notes = rows["note"].astype(object).where(rows["note"].notna(), None).to_numpy(object)
    at = pd.to_datetime(rows["at"]).astype(object).to_numpy(object)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    wanted = frame[frame["order_id"].isin(open_ids).to_numpy()]
    created_as = {order_id: {"order_id": order_id, "status": "received", "category": category, "due_at": due,
                             "warn_at": warn, "dispatched_at": None, "extended_days": None}
                  for order_id, category, due, warn in zip(wanted["order_id"], wanted["category"],
                                                           wanted["due_at"].astype(object),
                                                           wanted["warn_at"].astype(object))}
    extended = dict(zip(wanted["order_id"], wanted["extended_days"].astype(object)))
    loops = []
    for start, end in zip(starts, ends):
        order_id = ids[start]
        created = {**created_as[order_id], "updated_at": at[start]}
        steps = [{"action": actions[i], "who": who[i], "at": at[i], "note": notes[i]} for i in range(start + 1, end)]
        try:
            days = extended[order_id]
            days = None if days is None or pd.isna(days) else int(days)
            _, loop = replay_loop(created, steps, rules=store.rules, calendar=store.calendar, extension_days=days,
                                  granted=None if days is None else True)
        except JngisError as error:
            raise SchemaError(f"import_history: the trail of work order {order_id!r} is refused by the department "
                              f"loop: {error}; expected a trail the loop accepts") from error
        if loop is not None:
            loops.append((str(order_id), loop))
    return loops


def _history_orders(store: Store, layer: gpd.GeoDataFrame, layers_version: int) -> pd.DataFrame:
    """The orders table of a historical layer in the store CRS: states as given, placed, no callers."""
    wgs = layer.geometry.to_crs("EPSG:4326")
    lon, lat = wgs.x.to_numpy(), wgs.y.to_numpy()
    place = store._placer_at(layers_version).place(lon, lat)
    frame = pd.DataFrame({"order_id": layer["order_id"].astype(str).to_numpy()})
    for column in ("category", "status"):
        frame[column] = layer[column].to_numpy()
    frame["description"] = layer["description"].to_numpy() if "description" in layer else None
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(layer[column]).to_numpy() if column in layer else pd.NaT
    if "warn_at" not in layer:
        frame["warn_at"] = store.calendar.add_working_days(pd.DatetimeIndex(frame["due_at"]), -WARNING_WORKING_DAYS)
    frame["extended_days"] = layer["extended_days"].astype(object).to_numpy() if "extended_days" in layer else None
    frame["satisfied"] = None
    frame["department_code"] = layer["department_code"].to_numpy() if "department_code" in layer else None
    for column in LOOP_HISTORY_COLUMNS:  # the department loop's recorded times, for the trail only
        if column in layer:
            frame[column] = layer[column].to_numpy()
    if "satisfied" in layer:  # only a closed order has the citizen's answer
        closed = (frame["status"] == "closed").to_numpy()
        frame["satisfied"] = np.where(closed, layer["satisfied"].astype(object).to_numpy(), None)
    for column in CODE_COLUMNS:
        frame[column] = place[column].to_numpy()
    frame["lon"], frame["lat"] = lon, lat
    frame["x"], frame["y"] = layer.geometry.x.to_numpy(), layer.geometry.y.to_numpy()
    return frame
