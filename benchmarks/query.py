"""A filtered feature query against reading the whole layer: time and bytes (issue 20).

On the full sample city (4,622 grids, 100,000 historical orders), in process:

- one community's grids: ``/collections/grids/items?community_code=...`` as the
  route answers it (:func:`jngis.features.query_features` with a property filter,
  then serialised once) against the whole layer in one page;
- one month's orders: the ``workorders`` collection with
  ``filter=T_INTERSECTS(received_at, INTERVAL(...))`` against every order;
  and the store's SQL (``list_orders(query=...)`` in a SQLite store holding the
  orders) against ``orders_frame()`` (what a client without filters has to read).

Usage: ``python benchmarks/query.py [--sql]`` (``--sql`` imports the orders into a
temporary SQLite store first, which takes a while).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from jngis.features import MAX_LIMIT, query_features, queryable_fields
from jngis.query import ORDER_FIELDS, build_query
from jngis.sample import load_sample
from jngis.server.deps import encode_json


def timed(function, repeat: int = 5):
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def pages(layer, kind, **query) -> bytes:
    """Every page of a query as a client pages through it (MAX_LIMIT features a page)."""
    out, offset = [], 0
    while True:
        page = query_features(layer, kind, limit=MAX_LIMIT, offset=offset, **query)
        out.append(encode_json({"type": "FeatureCollection", "features": page.features,
                                "numberMatched": page.number_matched}))
        if page.next_offset is None:
            return b"".join(out)
        offset = page.next_offset


def row(what: str, seconds: float, body: bytes | int, matched: int) -> None:
    size = body if isinstance(body, int) else len(body)
    print(f"| {what} | {matched:,} | {seconds * 1000:,.1f} | {size / 1e6:,.2f} |")


def main(sql: bool) -> None:
    city = load_sample()
    grids = city.grids.to_crs("EPSG:4326")
    orders = city.workorders.to_crs("EPSG:4326")
    community = grids["community_code"].value_counts().index[len(grids["community_code"].unique()) // 2]
    month = orders["received_at"].dt.to_period("M").value_counts().index[0]
    start, end = month.start_time, month.end_time.floor("s")
    interval = f"INTERVAL('{start:%Y-%m-%dT%H:%M:%S}+08:00', '{end:%Y-%m-%dT%H:%M:%S}+08:00')"
    print(f"community {community}, month {month}")
    print("| query | features | ms (best of 5) | MB of GeoJSON |\n|---|---:|---:|---:|")
    pages(grids, "grids")  # the spatial index, built once per layer by the server too
    query = build_query({"community_code": community}, queryable_fields(grids, "grids"))
    seconds, body = timed(lambda: pages(grids, "grids", query=query))
    row(f"grids, community_code={community}", seconds, body, int((grids.community_code == community).sum()))
    seconds, body = timed(lambda: pages(grids, "grids"))
    row("grids, the whole layer", seconds, body, len(grids))
    query = build_query({}, queryable_fields(orders, "workorders"),
                        filter=f"T_INTERSECTS(received_at, {interval})")
    seconds, body = timed(lambda: pages(orders, "workorders", query=query), repeat=3)
    matched = int(((orders.received_at >= start) & (orders.received_at <= end)).sum())
    row(f"orders, T_INTERSECTS one month ({month})", seconds, body, matched)
    seconds, body = timed(lambda: pages(orders, "workorders"), repeat=3)
    row("orders, every order (10 pages)", seconds, body, len(orders))
    if sql:
        store_sql(city, interval, month)


def store_sql(city, interval: str, month) -> None:
    from jngis.layers import write_city
    from jngis.store import open_store

    folder = Path(tempfile.mkdtemp())
    path = write_city(city, folder / "city.gpkg")
    with open_store(path) as store:
        if store.count_orders() == 0:
            store.import_history(city.workorders)
        query = build_query({}, ORDER_FIELDS, filter=f"T_INTERSECTS(received_at, {interval})")
        print("\n| store (SQLite) | orders | ms (best of 3) | MB of JSON |\n|---|---:|---:|---:|")

        def month_pages():
            total, out, offset = store.count_orders(query=query), [], 0
            while offset < total:
                out.append(encode_json(store.list_orders(query=query, limit=10_000, offset=offset)))
                offset += 10_000
            return b"".join(out), total

        seconds, (body, total) = timed(month_pages, repeat=3)
        row(f"list_orders(query=T_INTERSECTS {month})", seconds, body, total)
        seconds, frame = timed(lambda: store.orders_frame(), repeat=3)
        row("orders_frame() (every order, no JSON)", seconds, int(frame.memory_usage(deep=True).sum()), len(frame))


if __name__ == "__main__":
    main("--sql" in sys.argv[1:])
