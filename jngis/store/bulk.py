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
from jngis.errors import SchemaError
from jngis.layers import validate
from jngis.store.schema import CALLER_COLUMNS, CALLER_FIELDS, CODE_COLUMNS, ORDER_COLUMNS, TIME_COLUMNS
from jngis.workorders import RESOLVE_WORKING_DAYS, WARNING_WORKING_DAYS, now_cst, synthetic_trail
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
                   progress: bool = False) -> int:
    """Import a historical ``workorders`` layer (see :meth:`jngis.store.Store.import_history`)."""
    validate(workorders, "workorders")
    layer = workorders.to_crs(store.crs) if workorders.crs != store.crs else workorders
    ids = layer["order_id"].astype(str)
    layer = layer[~ids.isin(store._held_ids(store._conn(), ids.tolist()))]
    if layer.empty:
        return 0
    layers_version = store.change_versions()["layers"]
    frame = _history_orders(store, layer, layers_version)
    trail = synthetic_trail(frame, who=who)
    frame["updated_at"] = frame["order_id"].map(trail.groupby("order_id", sort=False)["at"].max()).to_numpy()
    frame = frame[list(ORDER_COLUMNS)]
    with store._write() as conn:
        _place_again_if_moved(store, conn, frame, layers_version)
        store._bump_counters(conn, frame["order_id"])
        with _progress_bar(progress, len(frame), "history") as advance:
            store._bulk_orders(conn, frame, pd.DataFrame(columns=list(CALLER_COLUMNS)), trail, advance)
    return len(frame)


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
    frame["extended_days"] = None
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
