"""Both stores, behind the same tests: SQLite/GeoPackage (WAL) and PostgreSQL + PostGIS."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import random
import threading

import geopandas as gpd
import pandas as pd
import pytest
from pgcluster import new_slice_store, schema_dsn

from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    InvalidTransition,
    NotFoundError,
    ParameterError,
    SchemaError,
)
from jngis.layers import validate
from jngis.store import PostGISStore, SQLiteStore, open_store
from jngis.workorders import check_trail

D = dt.datetime
FORWARD = {"received": "dispatched", "dispatched": "in_progress", "in_progress": "resolved",
           "resolved": "closed"}


def _new_store(kind, folder, city, request) -> str:
    """A store holding the slice city (and its 590 historical orders), by URL."""
    return new_slice_store(kind, folder, city, lambda: request.getfixturevalue("postgis_dsn"))


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def store_url(request, tmp_path_factory, slice_city):
    """One store per backend for the tests that only add orders (they check relative counts)."""
    return _new_store(request.param, tmp_path_factory.mktemp("store"), slice_city, request)


@pytest.fixture(params=["sqlite", "postgis"])
def fresh_url(request, tmp_path, slice_city):
    """A store of its own, for tests that replace layers or count every order."""
    return _new_store(request.param, tmp_path, slice_city, request)


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def fresh_store(fresh_url):
    with open_store(fresh_url) as opened:
        yield opened


@pytest.fixture(scope="module")
def inside(slice_city):
    """WGS84 lon/lat of a point inside each community of the slice."""
    points = slice_city.communities.geometry.representative_point().to_crs("EPSG:4326")
    return list(zip(points.x, points.y, slice_city.communities["community_code"]))


def test_open_store_picks_the_implementation(store):
    expected = SQLiteStore if store.url.endswith(".gpkg") else PostGISStore
    assert isinstance(store, expected)
    assert store.layer_names() == ["districts", "streets", "communities", "units", "grids", "stations",
                                   "party_orgs", "workorders"]
    assert store.crs.to_epsg() == 4548


def test_history_is_imported_with_a_consistent_trail(fresh_store, slice_city):
    store = fresh_store
    orders = store.orders_frame()
    assert len(orders) == len(slice_city.workorders) == store.count_orders()
    assert sorted(orders["order_id"]) == sorted(slice_city.workorders["order_id"])
    assert check_trail(orders, store.trail_frame()).empty
    assert orders["community_code"].notna().all() and (orders["street_code"] == "370102003").all()
    validate(store.read_layer("workorders"), "workorders")


def test_orders_frame_columns_and_version(fresh_store, inside):
    store = fresh_store
    whole = store.orders_frame()
    some = store.orders_frame(columns=["status", "deadline"])
    assert list(some.columns) == ["status", "deadline", "geometry"]
    assert some["deadline"].tolist() == whole["deadline"].tolist()
    assert some.geometry.equals(whole.geometry) and some.crs == whole.crs
    with pytest.raises(ParameterError, match=r"names \['description'\], which orders_frame \(public=True\)"):
        store.orders_frame(columns=["status", "description"])
    assert "description" in store.orders_frame(public=False, columns=["description"]).columns
    with pytest.raises(InputTypeError, match="expected a list of column names"):
        store.orders_frame(columns="status")
    # the version moves with every write: a create, then a transition
    before = store.orders_version()
    assert before == store.orders_version() and before[0] == str(len(whole))
    lon, lat, _ = inside[0]
    order = store.create_order(lon, lat, category="市容环境", who="test")
    created = store.orders_version()
    assert created != before and created[0] == str(len(whole) + 1)
    store.transition(order["order_id"], "dispatched", who="test")
    assert store.orders_version() not in (before, created)


def test_layers_round_trip(store, slice_city):
    units = store.read_layer("units").sort_values("unit_id").reset_index(drop=True)
    expected = slice_city.units.sort_values("unit_id").reset_index(drop=True)
    assert units["unit_id"].tolist() == expected["unit_id"].tolist()
    assert units["households"].sum() == expected["households"].sum()
    assert units.geometry.geom_equals_exact(expected.geometry, 1e-6).all()
    city = store.read_city()
    assert len(city.communities) == len(slice_city.communities)


def test_write_city_replaces_layers_and_keeps_orders(fresh_store, slice_city, inside):
    store = fresh_store
    lon, lat, _ = inside[0]
    created = store.create_order(lon, lat, category="环境卫生", who="t", at=D(2026, 10, 9, 9))
    smaller = slice_city.communities.iloc[:3].copy()
    city = type(slice_city)(districts=slice_city.districts, streets=slice_city.streets, communities=smaller)
    store.write_city(city)
    assert len(store.read_layer("communities")) == 3
    assert store.get_order(created["order_id"])["status"] == "received"
    assert "units" in store.layer_names()  # layers not in the new city stay


def test_create_places_the_order_and_sets_its_due_time(store, inside, slice_city):
    lon, lat, community = inside[1]
    order = store.create_order(lon, lat, category="噪音扰民", description="夜间施工", caller_name="李四",
                               caller_phone="13900000000", who="话务员07", at=D(2025, 9, 30, 16))
    assert order["community_code"] == community
    assert order["street_code"] == community[:9] and order["district_code"] == community[:6]
    # placed in the slice's own grid that holds the point
    point = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs="EPSG:4326").to_crs(slice_city.grids.crs)
    holder = slice_city.grids.loc[slice_city.grids.contains(point.iloc[0]), "grid_code"].tolist()
    assert [order["grid_code"]] == holder and holder[0].startswith(community)
    assert order["due_at"] == D(2025, 10, 14, 16)  # across National Day and the Saturday make-up day
    assert order["order_id"].startswith("20250930") and len(order["order_id"]) == 14
    assert store.trail(order["order_id"])[0]["action"] == "received"
    again = store.create_order(lon, lat, category="噪音扰民", who="话务员07", at=D(2025, 9, 30, 17))
    assert int(again["order_id"]) == int(order["order_id"]) + 1


def test_create_with_grids_fills_grid_code(fresh_store, slice_city, inside):
    store = fresh_store
    communities = slice_city.communities
    grids = gpd.GeoDataFrame({
        "grid_code": communities["community_code"] + "001", "community_code": communities["community_code"],
        "households": 400, "grid_type": "residential"}, geometry=communities.geometry.values, crs=communities.crs)
    store.write_city(type(slice_city)(grids=grids))
    lon, lat, community = inside[2]
    order = store.create_order(lon, lat, category="c", who="t", at=D(2026, 10, 9, 9))
    assert order["grid_code"] == community + "001"  # from the store's own grids layer


@pytest.mark.parametrize("crs", ["gcj02", "bd09"])
def test_consumer_map_coordinates_are_converted(store, inside, crs):
    from jngis.crs import wgs84_to_bd09, wgs84_to_gcj02

    lon, lat, community = inside[3]
    shifted = (wgs84_to_gcj02 if crs == "gcj02" else wgs84_to_bd09)(lon, lat)
    order = store.create_order(*shifted, crs=crs, category="c", who="t", at=D(2026, 10, 9, 9))
    assert abs(order["lon"] - lon) < 1e-7 and abs(order["lat"] - lat) < 1e-7
    assert order["community_code"] == community


def test_outside_jinan_is_refused(store):
    before = store.count_orders()
    with pytest.raises(GeometryError, match=r"lon=121\.473700, lat=31\.230400 \(WGS84\) lies outside every district"):
        store.create_order(121.4737, 31.2304, category="c", who="t")  # Shanghai
    assert store.count_orders() == before and len(store.trail_frame()) == len(store.trail_frame())


def test_bad_locations_and_parameters(store):
    with pytest.raises(GeometryError, match="lat=95"):
        store.create_order(117.0, 95, category="c", who="t")
    with pytest.raises(InputTypeError, match="lon is a str"):
        store.create_order("117", 36.6, category="c", who="t")
    with pytest.raises(CRSError, match="crs='gps'"):
        store.create_order(117.0, 36.6, crs="gps", category="c", who="t")
    with pytest.raises(NotFoundError, match="work order 'nope' does not exist"):
        store.get_order("nope")
    with pytest.raises(NotFoundError, match="does not exist"):
        store.transition("nope", "dispatched", who="t")
    with pytest.raises(ParameterError, match="limit=0"):
        store.list_orders(limit=0)
    with pytest.raises(ParameterError, match="status='lost'"):
        store.list_orders(status="lost")
    with pytest.raises(SchemaError, match="kind='roads'"):
        store.read_layer("roads")


def test_the_whole_loop_and_its_trail(store, inside):
    lon, lat, _ = inside[0]
    order_id = store.create_order(lon, lat, category="物业管理", who="话务员", at=D(2025, 9, 26, 9))["order_id"]
    steps = [("dispatched", {}, D(2025, 9, 26, 15, 30)), ("returned", {"note": "非本单位职责"}, D(2025, 9, 26, 16)),
             ("dispatched", {}, D(2025, 9, 28, 9)), ("in_progress", {}, D(2025, 9, 28, 10)),
             ("extended", {"note": "需协调产权单位", "days": 3}, D(2025, 9, 29, 9)),
             ("resolved", {}, D(2025, 10, 9, 9)), ("reopened", {"note": "群众不满意"}, D(2025, 10, 10, 9)),
             ("resolved", {}, D(2025, 10, 13, 9)), ("closed", {"satisfied": True}, D(2025, 10, 14, 9))]
    for to, extra, at in steps:
        record = store.transition(order_id, to, who="处置人", at=at, **extra)
    assert record["status"] == "closed" and record["satisfied"] is True
    trail = store.trail(order_id)
    assert [r["action"] for r in trail] == ["received"] + [s[0] for s in steps]
    assert [r["to_state"] for r in trail][-3:] == ["in_progress", "resolved", "closed"]
    assert trail[2]["note"] == "非本单位职责"
    with pytest.raises(InvalidTransition, match=f"'{order_id}' is 'closed'.*allowed next: none"):
        store.transition(order_id, "reopened", who="x", note="again")
    assert len(store.trail(order_id)) == len(steps) + 1  # a refusal writes nothing


def test_due_warning_and_overdue_in_working_days(store, inside):
    lon, lat, _ = inside[0]
    order_id = store.create_order(lon, lat, category="c", who="t", at=D(2025, 9, 26, 15))["order_id"]
    store.transition(order_id, "dispatched", who="t", at=D(2025, 9, 26, 15, 30))
    record = store.get_order(order_id, now=D(2025, 10, 8, 12))
    assert record["due_at"] == D(2025, 10, 10, 15, 30) and record["deadline"] == "ok"
    assert store.get_order(order_id, now=D(2025, 10, 9, 15, 30))["deadline"] == "warning"
    assert store.get_order(order_id, now=D(2025, 10, 10, 15, 31))["deadline"] == "overdue"
    overdue = {o["order_id"] for o in store.list_orders(overdue=True, now=D(2025, 10, 10, 15, 31), limit=10000)}
    assert order_id in overdue
    not_yet = {o["order_id"] for o in store.list_orders(overdue=True, now=D(2025, 10, 10, 15, 29), limit=10000)}
    assert order_id not in not_yet
    extended = store.transition(order_id, "extended", who="t", note="协调", days=2, at=D(2025, 10, 9, 9))
    assert extended["due_at"] == D(2025, 10, 13, 15, 30)  # 11 Oct is a Saturday make-up day
    with pytest.raises(InvalidTransition, match="already extended once"):
        store.transition(order_id, "extended", who="t", note="再延", at=D(2025, 10, 9, 10))


def test_listing_and_paging(store, inside):
    lon, lat, community = inside[4]
    ids = [store.create_order(lon, lat, category="c", who="t", at=D(2026, 11, 20, 9, m))["order_id"]
           for m in range(3)]
    page = store.list_orders(community_code=community, limit=2)
    assert [o["order_id"] for o in page] == ids[::-1][:2]
    assert store.list_orders(community_code=community, limit=2, offset=2)[0]["order_id"] == ids[0]
    for offset in (-1, 2**63, 1_000_000_001):  # 2**63 once reached SQLite and crashed (found by fuzzing)
        with pytest.raises(ParameterError, match=rf"offset={offset}; expected a whole number from 0 to 1,000,000,000"):
            store.list_orders(offset=offset)
    assert store.list_orders(offset=1_000_000_000) == []
    assert store.count_orders(community_code=community) == len(store.list_orders(community_code=community,
                                                                                  limit=10000))
    assert store.count_orders(status="received") >= 3
    closed = store.list_orders(status=["closed"], limit=5)
    assert closed and all(o["status"] == "closed" for o in closed)


def test_personal_data_never_leaves_through_a_public_function(store, inside, tmp_path):
    lon, lat, community = inside[0]
    name, phone = "王秘密", "13912345678"
    order_id = store.create_order(lon, lat, category="c", description="路灯不亮", caller_name=name,
                                  caller_phone=phone, who="t", at=D(2026, 10, 9, 9))["order_id"]
    store.transition(order_id, "dispatched", who="t", at=D(2026, 10, 9, 10))
    outputs = [store.get_order(order_id), store.list_orders(community_code=community, limit=1000),
               store.trail(order_id), store.trail_frame().to_json(force_ascii=False, date_format="iso"),
               store.orders_frame().to_json(default=str, ensure_ascii=False),
               store.orders_frame(public=False).to_json(default=str, ensure_ascii=False),
               store.read_layer("workorders").to_json(default=str, ensure_ascii=False),
               store.read_city().workorders.to_json(default=str, ensure_ascii=False)]
    for output in outputs:
        text = output if isinstance(output, str) else json.dumps(output, default=str, ensure_ascii=False)
        assert name not in text and phone not in text
    frame = store.orders_frame()
    assert not {"caller_name", "caller_phone", "description"} & set(frame.columns)
    path = tmp_path / "public.geojson"
    frame.to_file(path)  # a public file written from the public frame
    assert phone not in path.read_text(encoding="utf-8")
    private = store.private_record(order_id)
    assert (private["caller_name"], private["caller_phone"]) == (name, phone)


def test_a_failed_transition_writes_nothing(store, inside):
    lon, lat, _ = inside[0]
    order_id = store.create_order(lon, lat, category="c", who="t", at=D(2026, 10, 9, 9))["order_id"]
    store.transition(order_id, "dispatched", who="t", at=D(2026, 10, 9, 10))
    before = len(store.trail_frame())
    with pytest.raises(ParameterError, match="note is missing"):
        store.transition(order_id, "returned", who="t")
    with pytest.raises(InvalidTransition, match="allowed next: in_progress, returned, extended"):
        store.transition(order_id, "resolved", who="t")
    with pytest.raises(ParameterError, match="before the order's last step"):
        store.transition(order_id, "in_progress", who="t", at=D(2026, 10, 9, 9, 30))
    assert len(store.trail_frame()) == before and store.get_order(order_id)["status"] == "dispatched"


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_create_false_refuses_a_missing_store_and_creates_nothing(kind, tmp_path, request):
    from jngis.store import require_store

    if kind == "sqlite":
        where = tmp_path / "typo" / "city.gpkg"
        message = rf"no store at '{where}': the file does not exist; .*jngis sample --out"
    else:
        where = schema_dsn(request.getfixturevalue("postgis_dsn"))
        message = r"no store at 'postgresql://.*': the database \(its current schema\) holds no jngis tables"
    with pytest.raises(NotFoundError, match=message):
        open_store(where, create=False)
    with pytest.raises(NotFoundError, match=message):
        require_store(where)
    if kind == "sqlite":
        assert not where.parent.exists()
    else:
        import psycopg

        with psycopg.connect(where) as conn:
            tables = conn.execute("SELECT table_name FROM information_schema.tables "
                                  "WHERE table_schema = current_schema()").fetchall()
        assert tables == []
    with open_store(where) as created:  # the default still starts an empty store
        assert created.layer_names() == [] and created.count_orders() == 0
    with open_store(where, create=False) as opened:  # and now it is there
        assert opened.crs.to_epsg() == 4548
    require_store(where)


@pytest.mark.parametrize("kind", ["sqlite", "postgis"])
def test_an_empty_store_takes_the_crs_of_the_city(kind, tmp_path, slice_city, inside, request):
    """A store created empty (EPSG:4548) given a city in another CRS: its orders follow the city."""
    where = tmp_path / "empty.gpkg" if kind == "sqlite" else schema_dsn(request.getfixturevalue("postgis_dsn"))
    city = type(slice_city)(districts=slice_city.districts, streets=slice_city.streets,
                            communities=slice_city.communities).to_crs("EPSG:32650")
    with open_store(where) as store:
        assert store.crs.to_epsg() == 4548
        store.write_city(city)
        assert store.crs.to_epsg() == 32650
        lon, lat, community = inside[0]
        order = store.create_order(lon, lat, category="c", who="t", at=D(2026, 10, 9, 9))
        assert order["community_code"] == community
        frame = store.orders_frame()
    with open_store(where, create=False) as again:
        assert again.crs.to_epsg() == 32650
    assert frame.crs.to_epsg() == 32650
    holder = city.communities[city.communities.contains(frame.geometry.iloc[0])]
    assert holder["community_code"].tolist() == [community]


def test_layers_and_imports_never_take_personal_data(fresh_store, slice_city, inside):
    store = fresh_store
    units = slice_city.units.assign(mobile="13900000000")
    with pytest.raises(SchemaError, match=r"'mobile'.* personal data"):
        store.write_city(type(slice_city)(units=units))
    assert "mobile" not in store.read_layer("units").columns  # nothing was written
    lon, lat, _ = inside[0]
    rows = pd.DataFrame({"lon": [lon], "lat": [lat], "category": ["c"], "身份证号": ["370102199001011234"]},
                        index=[2])
    before = store.count_orders()
    with pytest.raises(SchemaError, match=r"import_orders: rows has the column '身份证号', which holds personal "
                                          r"data the store does not keep"):
        store.import_orders(rows, who="t")
    assert store.count_orders() == before


def test_the_placer_is_built_once_and_again_after_a_new_city(fresh_store, slice_city):
    store = fresh_store
    placers = []
    threads = [threading.Thread(target=lambda: placers.append(store.placer())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(p) for p in placers}) == 1 and store.placer() is placers[0]
    store.write_city(type(slice_city)(communities=slice_city.communities.iloc[:3].copy()))
    rebuilt = store.placer()
    assert rebuilt is not placers[0] and rebuilt is store.placer()


# --------------------------------------------------------------------------- concurrency

CREATES_PER_WORKER = 4
STEPS_PER_WORKER = 6
SHARED_ORDERS = 10


def _advance(store, order_ids, steps, seed):
    """Take `steps` forward steps on random shared orders, racing the other workers."""
    rng = random.Random(seed)
    done = refused = 0
    while done < steps:
        order_id = rng.choice(order_ids)
        state = store.get_order(order_id)["status"]
        if state not in FORWARD:
            if all(store.get_order(o)["status"] == "closed" for o in order_ids):
                break
            continue
        try:
            store.transition(order_id, FORWARD[state], who=f"worker{seed}", at=D(2026, 10, 20, 9))
            done += 1
        except InvalidTransition:  # another worker moved it first: never a lost update
            refused += 1
    return done, refused


def _work(url, lonlat, order_ids, seed):
    with open_store(url) as store:
        created = [store.create_order(*lonlat, category="c", who=f"worker{seed}", at=D(2026, 10, 20, 8))["order_id"]
                   for _ in range(CREATES_PER_WORKER)]
        done, refused = _advance(store, order_ids, STEPS_PER_WORKER, seed)
    return created, done, refused


def _process_entry(args):
    return _work(*args)


def _check_after_race(url, before_orders, before_trail, created, steps):
    with open_store(url) as store:
        orders, trail = store.orders_frame(), store.trail_frame()
    assert len(created) == len(set(created))
    assert len(orders) == before_orders + len(created)
    assert len(trail) == before_trail + len(created) + steps
    assert check_trail(orders, trail).empty


def _prepare(store_url, lonlat):
    with open_store(store_url) as store:
        shared = [store.create_order(*lonlat, category="c", who="setup", at=D(2026, 10, 20, 7))["order_id"]
                  for _ in range(SHARED_ORDERS)]
        return shared, store.count_orders(), len(store.trail_frame())


def test_concurrent_threads_lose_no_update(store_url, inside):
    lonlat = inside[0][:2]
    shared, before_orders, before_trail = _prepare(store_url, lonlat)
    results = [None] * 6
    with open_store(store_url) as store:  # one store shared by the threads, as in the server
        def run(i):
            created = [store.create_order(*lonlat, category="c", who=f"t{i}", at=D(2026, 10, 20, 8))["order_id"]
                       for _ in range(CREATES_PER_WORKER)]
            results[i] = (created, *_advance(store, shared, STEPS_PER_WORKER, i))

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    created = [o for r in results for o in r[0]]
    steps = sum(r[1] for r in results)
    assert steps == len(results) * STEPS_PER_WORKER  # 36 steps fit in 10 orders x 4
    _check_after_race(store_url, before_orders, before_trail, created, steps)


def test_concurrent_processes_lose_no_update(store_url, inside):
    lonlat = inside[0][:2]
    shared, before_orders, before_trail = _prepare(store_url, lonlat)
    # fork: the parent holds no open connection here (each worker opens its own store)
    context = multiprocessing.get_context("fork")
    with context.Pool(3) as pool:
        results = pool.map(_process_entry, [(store_url, lonlat, shared, seed) for seed in range(3)])
    created = [o for r in results for o in r[0]]
    steps = sum(r[1] for r in results)
    assert steps == 3 * STEPS_PER_WORKER
    _check_after_race(store_url, before_orders, before_trail, created, steps)
