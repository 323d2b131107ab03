"""Duplicate reports (并单): proposed by place, time and category; measured on the sample year; merged."""

from __future__ import annotations

import datetime as dt
import time

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from jngis.errors import InvalidTransition, ParameterError, SchemaError
from jngis.workorders import duplicate_scores, find_duplicates, plant_duplicates

D = dt.datetime


def _orders(rows, crs="EPSG:4548"):
    """rows: (order_id, category, received_at, x, y)."""
    ids, categories, times, xs, ys = zip(*rows)
    return gpd.GeoDataFrame({"order_id": ids, "category": categories, "received_at": pd.to_datetime(times)},
                            geometry=[shapely.Point(x, y) for x, y in zip(xs, ys)], crs=crs)


def test_same_category_near_and_soon_only():
    orders = _orders([
        ("A", "环境卫生", "2026-10-09 09:00", 500000, 4060000),
        ("B", "环境卫生", "2026-10-09 20:00", 500030, 4060030),   # 42 m, 11 h: duplicate of A
        ("C", "噪音扰民", "2026-10-09 10:00", 500000, 4060000),   # another category
        ("E", "环境卫生", "2026-10-10 10:00", 500000, 4060000),   # 25 h after A
        ("F", "环境卫生", "2026-10-09 10:00", 500060, 4060000),   # 60 m from A
    ])
    proposed = find_duplicates(orders)
    assert proposed[["order_id", "master_id"]].values.tolist() == [["B", "A"]]
    assert proposed["distance_m"].iloc[0] == pytest.approx(42.43, abs=0.01) and proposed["hours"].iloc[0] == 11
    wider = find_duplicates(orders, distance_m=70, hours=30)
    assert dict(zip(wider["order_id"], wider["master_id"])) == {"B": "A", "E": "A", "F": "A"}


def test_a_chain_never_drifts_from_its_master():
    # reports 40 m apart along a line, an hour apart: each within reach of the one before only
    orders = _orders([(f"W{i}", "市政设施", f"2026-10-09 {9 + i:02d}:00", 500000 + 40 * i, 4060000)
                      for i in range(5)])
    proposed = find_duplicates(orders)
    assert dict(zip(proposed["order_id"], proposed["master_id"])) == {"W1": "W0", "W3": "W2"}
    assert (proposed["distance_m"] <= 50).all()


def test_geographic_input_is_taken_to_metres_and_exclusion():
    orders = _orders([("A", "环境卫生", "2026-10-09 09:00", 117.0, 36.65),
                      ("B", "环境卫生", "2026-10-09 10:00", 117.0003, 36.65)], crs="EPSG:4326")
    proposed = find_duplicates(orders)
    assert proposed["master_id"].tolist() == ["A"] and proposed["distance_m"].iloc[0] == pytest.approx(26.8, abs=0.5)
    assert find_duplicates(orders, exclude=[True, False]).empty


def test_bad_input():
    orders = _orders([("A", "环境卫生", "2026-10-09 09:00", 500000, 4060000)])
    with pytest.raises(ParameterError, match=r"distance_m=0; expected a finite number .*\(metres\)"):
        find_duplicates(orders, distance_m=0)
    with pytest.raises(SchemaError, match="category"):
        find_duplicates(orders.drop(columns="category"))
    assert find_duplicates(orders).empty


def test_planted_duplicates_are_found_on_the_sample_year(sample_city):
    planted, truth = plant_duplicates(sample_city.workorders, share=0.03, seed=2026)
    assert len(truth) == 3000 and len(planted) == len(sample_city.workorders) + 3000
    started = time.perf_counter()
    proposed = find_duplicates(planted)
    seconds = time.perf_counter() - started
    scores = duplicate_scores(proposed, truth)
    # the planted ones lie within 30 m and 12 h; the sample's own coincidences lower the precision
    assert scores["recall"] >= 0.99 and scores["precision"] >= 0.95, scores
    assert seconds < 5, seconds
    # farther than the reach (60-100 m): not proposed
    far, far_truth = plant_duplicates(sample_city.workorders.iloc[:20000], share=0.05, distance_m=1000, seed=3)
    assert duplicate_scores(find_duplicates(far), far_truth)["recall"] < 0.1


# --------------------------------------------------------------------------- the store


@pytest.fixture(params=["sqlite", "postgis"])
def store(request, tmp_path, slice_city):

    from pgcluster import new_slice_store

    from jngis.store import open_store

    url = new_slice_store(request.param, tmp_path, slice_city, lambda: request.getfixturevalue("postgis_dsn"))
    with open_store(url) as opened:
        yield opened


def test_propose_and_merge_on_the_store(store, slice_city):
    point = slice_city.communities.geometry.representative_point().iloc[0]
    lonlat = gpd.GeoSeries([point, shapely.Point(point.x + 20, point.y)], crs=slice_city.communities.crs
                           ).to_crs("EPSG:4326")
    first = store.create_order(lonlat.x[0], lonlat.y[0], category="违章建筑", who="t", at=D(2026, 10, 9, 9))
    second = store.create_order(lonlat.x[1], lonlat.y[1], category="违章建筑", who="t", at=D(2026, 10, 9, 15))
    proposed = store.propose_duplicates()
    pair = proposed.loc[proposed["order_id"] == second["order_id"]]
    assert pair["master_id"].tolist() == [first["order_id"]]
    before = len(store.trail_frame())
    with pytest.raises(InvalidTransition, match="'duplicate': it cannot go to 'merge'"):
        store.merge_duplicates([(second["order_id"], first["order_id"]), (second["order_id"], first["order_id"])])
    assert len(store.trail_frame()) == before and store.get_order(second["order_id"])["status"] == "received"
    merged = store.merge_duplicates([(second["order_id"], first["order_id"])], at=D(2026, 10, 9, 16))
    assert merged[0]["status"] == "duplicate" and merged[0]["master_id"] == first["order_id"]
    assert second["order_id"] not in set(store.propose_duplicates()["order_id"])
