"""jngis.tiles: MVT encoding checked by independent decoders, coverage per zoom, ids, cache, PMTiles."""

from __future__ import annotations

import gzip
import threading
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from jngis.cli import main
from jngis.errors import (
    CRSError,
    GeometryError,
    InputTypeError,
    NotFoundError,
    ParameterError,
    SchemaError,
    TileError,
)
from jngis.layers import City, write_city
from jngis.tiles import BUFFER, EXTENT, VectorTiles, write_pmtiles

HALF_WORLD = 20037508.342789244
ZOOMS = range(10, 17)


@pytest.fixture(scope="module")
def city(slice_city):
    return slice_city


@pytest.fixture(scope="module")
def tiles(city):
    return VectorTiles({"communities": city.communities, "units": city.units,
                        "stations": city.stations, "workorders": city.workorders},
                       minzoom=10, maxzoom=16)


def decode(data: bytes, layer: str) -> list[dict]:
    if not data:
        return []
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    assert decoded[layer]["extent"] == EXTENT
    return decoded[layer]["features"]


def tile_envelope(z: int, x: int, y: int, buffer: float = 0) -> shapely.Polygon:
    """The tile in EPSG:3857 metres, grown by ``buffer`` tile units on every side."""
    size = 2 * HALF_WORLD / 2**z
    grow = buffer * size / EXTENT
    return shapely.box(-HALF_WORLD + x * size - grow, HALF_WORLD - (y + 1) * size - grow,
                       -HALF_WORLD + (x + 1) * size + grow, HALF_WORLD - y * size + grow)


def to_world_pixels(geom, z: int, x: int, y: int):
    """Decoded tile geometry (tile units) to world pixels of zoom z."""
    return shapely.transform(geom, lambda c: c + (x * EXTENT, y * EXTENT))


def mercator_to_world_pixels(geoms, z: int):
    size = EXTENT * 2.0**z
    return shapely.transform(geoms, lambda c: np.column_stack(
        [(c[:, 0] + HALF_WORLD) / (2 * HALF_WORLD) * size, (HALF_WORLD - c[:, 1]) / (2 * HALF_WORLD) * size]))


def reassemble(tiles: VectorTiles, layer: str, z: int) -> dict[int, shapely.Geometry]:
    """Every feature of a zoom rebuilt from its tiles, each piece cut to its own tile (no buffer)."""
    pieces: dict[int, list] = {}
    for x, y in tiles.tiles_at(layer, z).tolist():
        own = shapely.box(x * EXTENT, y * EXTENT, (x + 1) * EXTENT, (y + 1) * EXTENT)
        for feature in decode(tiles.tile(layer, z, x, y), layer):
            geom = to_world_pixels(shapely.geometry.shape(feature["geometry"]), z, x, y)
            piece = shapely.intersection(shapely.make_valid(geom), own)
            if not piece.is_empty and piece.area > 0:
                pieces.setdefault(feature["id"], []).append(piece)
    return {fid: shapely.union_all(parts) for fid, parts in pieces.items()}


# -- encoder round trip -------------------------------------------------------------


def test_polygon_tile_decodes_to_the_source_features(tiles, city):
    z, x, y = 15, 27045, 12790
    features = decode(tiles.tile("units", z, x, y), "units")
    assert features, "the tile over the slice's centre holds units"
    units = city.units.to_crs(3857).reset_index(drop=True)
    ids = tiles.feature_ids("units").to_numpy()
    by_id = {int(i): row for i, row in zip(ids, range(len(units)))}
    inside = set(np.flatnonzero(shapely.intersects(units.geometry.values,
                                                   tile_envelope(z, x, y, -2))).tolist())
    seen = {by_id[f["id"]] for f in features}
    assert inside <= seen  # every unit clearly inside the tile is there
    near = shapely.intersects(units.geometry.values, tile_envelope(z, x, y, BUFFER + 2))
    assert all(near[i] for i in seen)  # and nothing far away
    metre = 2 * HALF_WORLD / 2**z / EXTENT
    for feature in features:
        row = units.iloc[by_id[feature["id"]]]
        for column in ("unit_id", "households", "community_code", "street_code"):
            assert feature["properties"][column] == row[column]
        geom = shapely.geometry.shape(feature["geometry"])
        assert geom.is_valid or shapely.make_valid(geom).area == pytest.approx(geom.area, rel=1e-3)
        world = shapely.transform(geom, lambda c: np.column_stack(
            [-HALF_WORLD + (x * EXTENT + c[:, 0]) * metre, HALF_WORLD - (y * EXTENT + c[:, 1]) * metre]))
        expected = shapely.intersection(row.geometry, tile_envelope(z, x, y, BUFFER))
        # Within a couple of tile units all along: simplification + integer grid.
        assert shapely.hausdorff_distance(world, expected) < 3 * metre


def test_gdal_mvt_driver_reads_the_same_features(tiles, tmp_path):
    z, x, y = 14, 13522, 6395
    for layer in ("units", "communities", "stations", "workorders"):
        data = tiles.tile(layer, z, x, y)
        path = tmp_path / f"{layer}.pbf"
        path.write_bytes(data)
        gdal = pyogrio.read_dataframe(path, layer=layer, X=x, Y=y, Z=z, CLIP="NO")
        ours = decode(data, layer)
        assert len(ours) > 0
        assert sorted(gdal["mvt_id"].tolist()) == sorted(f["id"] for f in ours)
        assert gdal.crs.to_epsg() == 3857
        key = {"units": "unit_id", "communities": "community_code", "stations": "station_id",
               "workorders": "order_id"}[layer]
        assert sorted(gdal[key]) == sorted(f["properties"][key] for f in ours)
        # GDAL places the features where they are: inside the buffered tile.
        assert shapely.intersects(gdal.geometry.values, tile_envelope(z, x, y, BUFFER + 1)).all()


def test_points_land_on_their_source_position(tiles, city):
    z = 16
    stations = city.stations.to_crs(3857)
    ids = dict(zip(tiles.feature_ids("stations").tolist(), stations.geometry.values))
    metre = 2 * HALF_WORLD / 2**z / EXTENT
    found = 0
    for x, y in tiles.tiles_at("stations", z).tolist():
        for feature in decode(tiles.tile("stations", z, x, y), "stations"):
            px, py = feature["geometry"]["coordinates"]
            assert -BUFFER <= px <= EXTENT + BUFFER and -BUFFER <= py <= EXTENT + BUFFER
            point = ids[feature["id"]]
            assert abs(-HALF_WORLD + (x * EXTENT + px) * metre - point.x) <= metre
            assert abs(HALF_WORLD - (y * EXTENT + py) * metre - point.y) <= metre
            found += 1
    assert found >= len(stations)


def encode_polygons(polygons, ids, rect=(-64, -64, 4160, 4160)):
    """Encode shapely polygons (integer tile coordinates, tile 0/0/0) with the private kernels."""
    from jngis import _mvt

    multi = np.array([p if p.geom_type == "MultiPolygon" else shapely.MultiPolygon([p])
                      for p in polygons])
    geom_type, coords, (rings, parts, features) = shapely.to_ragged_array(multi)
    bounds = shapely.bounds(polygons).astype(np.int64)
    ints, counts = _mvt.polygon_tile(coords.astype(np.int64), rings, parts, features, bounds,
                                     np.arange(len(polygons)), *rect, 0, 0)
    drawn = counts > 0
    data = _mvt.encode_layer(b"shapes", np.asarray(ids)[drawn], _mvt.POLYGON, ints, counts[drawn],
                             np.zeros(0, np.int64), np.zeros(drawn.sum(), np.int64), b"", b"")
    return decode(data, "shapes")


def signed_area(ring) -> float:
    x, y = np.array(ring, dtype=float).T
    return 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(-60, 4000), st.integers(-60, 4000),
                          st.integers(1, 150), st.integers(1, 150)), min_size=1, max_size=12),
       st.lists(st.integers(0, 2**53 - 1), min_size=12, max_size=12, unique=True),
       st.booleans())
def test_encoder_round_trips_any_rectangles(boxes, ids, clockwise):
    """Hand-written protobuf vs mapbox-vector-tile's decoder, rectangles inside the buffer."""
    corners = np.array(boxes, dtype=float)
    polygons = shapely.box(corners[:, 0], corners[:, 1], corners[:, 0] + corners[:, 2],
                           corners[:, 1] + corners[:, 3], ccw=not clockwise)
    decoded = encode_polygons(polygons, ids[:len(boxes)])
    assert [f["id"] for f in decoded] == ids[:len(boxes)]
    for feature, polygon in zip(decoded, polygons):
        ring = feature["geometry"]["coordinates"][0]
        assert shapely.Polygon(ring).normalize().equals_exact(polygon.normalize(), 0)
        # Exteriors are clockwise on screen: positive area in tile coordinates (y down).
        assert signed_area(ring) > 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-3000, 7000), st.integers(-3000, 7000)),
                min_size=3, max_size=9),
       st.tuples(st.integers(-64, 2000), st.integers(-64, 2000), st.integers(1, 2200),
                 st.integers(1, 2200)))
def test_clipping_matches_shapely(points, rect):
    """The kernel's rectangle clipping against GEOS (shapely.clip_by_rect), area for area."""
    polygon = shapely.make_valid(shapely.Polygon(points))
    parts = [p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon" and p.area > 0]
    if not parts:
        return
    polygon = shapely.set_precision(shapely.MultiPolygon(parts), 1.0)
    parts = [p for p in shapely.get_parts(polygon) if p.geom_type == "Polygon"]
    if not parts:
        return
    x0, y0, width, height = rect
    box = (x0, y0, x0 + width, y0 + height)
    expected = shapely.clip_by_rect(polygon, *box)
    decoded = encode_polygons(np.array([shapely.MultiPolygon(parts)]), [7], rect=box)
    area = sum(signed_area(ring) for f in decoded for poly in
               ([f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon"
                else f["geometry"]["coordinates"]) for ring in poly)
    # Intersections are rounded to the integer grid: half a unit along the clipped outline.
    assert abs(area - expected.area) <= 0.5 * expected.length + 2
    for f in decoded:
        polys = ([f["geometry"]["coordinates"]] if f["geometry"]["type"] == "Polygon"
                 else f["geometry"]["coordinates"])
        for poly in polys:
            for ring in poly:
                xs, ys = np.array(ring).T
                assert xs.min() >= box[0] and xs.max() <= box[2]
                assert ys.min() >= box[1] and ys.max() <= box[3]


# -- ids, coverage, seams -----------------------------------------------------------


def test_ids_are_codes_and_stable_across_zooms(tiles, city):
    codes = set(city.communities.community_code)
    for z in ZOOMS:
        seen = {}
        for x, y in tiles.tiles_at("communities", z).tolist():
            for feature in decode(tiles.tile("communities", z, x, y), "communities"):
                assert feature["id"] == int(feature["properties"]["community_code"])
                seen[feature["id"]] = feature["properties"]["community_code"]
        assert set(seen.values()) == codes, f"z{z}: every community appears"
    units = tiles.feature_ids("units")
    assert units.is_unique and (units > 0).all()


@pytest.mark.parametrize("layer", ["communities", "units"])
def test_coverage_has_no_gap_or_overlap_at_every_zoom(tiles, city, layer):
    """Rebuild each zoom from its tiles and measure in pixel space (1 unit = 1/4096 tile)."""
    from jngis.adjacency import shared_edges

    source = getattr(city, layer)
    ids = tiles.feature_ids(layer).to_numpy()
    at16 = mercator_to_world_pixels(source.to_crs(3857).geometry.values, 16)
    left, right, length = shared_edges(at16, min_length=0.0)
    for z in ZOOMS:
        pieces = reassemble(tiles, layer, z)
        assert set(pieces) == set(ids.tolist()), f"z{z}: no feature dropped"
        geoms = np.array([pieces[int(i)] for i in ids])
        union = shapely.union_all(geoms)
        overlap = shapely.area(geoms).sum() - union.area
        assert overlap < 1.0, f"z{z}: {overlap:.2f} square units of overlap"
        # Edges matched exactly, and no new sliver gap (narrower than 2 units) between polygons:
        # only the narrow open-land strips the source itself has at this scale.
        assert shapely.coverage_is_valid(geoms), f"z{z}"
        slivers = ~shapely.is_empty(shapely.coverage_invalid_edges(geoms, gap_width=2.0))
        scaled = shapely.transform(at16, lambda c, factor=2.0 ** (16 - z): c / factor)
        source_slivers = ~shapely.is_empty(shapely.coverage_invalid_edges(scaled, gap_width=2.0))
        assert slivers.sum() <= source_slivers.sum(), f"z{z}"
        # Neighbours stay neighbours: every edge of 4+ units at this zoom is still shared.
        still = set(zip(*shared_edges(geoms, min_length=0.5)[:2]))
        long_enough = length / 2.0 ** (16 - z) >= 4
        lost = [(a, b) for a, b in zip(left[long_enough], right[long_enough]) if (a, b) not in still]
        assert not lost, f"z{z}: neighbours {lost[:3]} no longer share an edge"
        if layer == "communities":  # they tile their 街道: the union has no hole at all
            assert all(shapely.get_num_interior_rings(p) == 0 for p in shapely.get_parts(union))


def test_tile_edges_are_seamless(tiles):
    """A feature cut into several tiles reassembles to the zoom's geometry with no seam."""
    z = 16
    layer = tiles._layer("units")
    zoom = layer.geometry.zoom(z)
    pieces = reassemble(tiles, "units", z)
    ids = layer.source.ids
    crossing = 0
    for index in range(len(ids)):
        whole = zoom.geometries(np.array([index]))[0]
        tiles_touched = (int(whole.bounds[2]) // EXTENT - int(whole.bounds[0]) // EXTENT
                         + int(whole.bounds[3]) // EXTENT - int(whole.bounds[1]) // EXTENT)
        crossing += tiles_touched > 0
        rebuilt = pieces[int(ids[index])]
        # The pieces join into the same polygon(s): no seam splits them, and nothing moves by
        # more than a tile unit (the clip points are rounded to the integer grid).
        assert shapely.get_num_geometries(rebuilt) == shapely.get_num_geometries(whole)
        assert shapely.hausdorff_distance(rebuilt, whole) <= 1.0
        assert abs(rebuilt.area - whole.area) <= 1e-3 * whole.area
    assert crossing > 10  # the check covered features that span tiles
    # The buffer: a tile's geometry reaches BUFFER units past its edges where features continue.
    x, y = tiles.tiles_at("units", z)[len(tiles.tiles_at("units", z)) // 2].tolist()
    extent = np.concatenate([np.array(shapely.geometry.shape(f["geometry"]).bounds)
                             for f in decode(tiles.tile("units", z, x, y), "units")])
    assert extent.min() == -BUFFER and extent.max() == EXTENT + BUFFER


def test_tiny_polygons_stay_visible_at_low_zoom():
    big = [shapely.box(0, 0, 5000, 5000), shapely.box(5000, 0, 10000, 5000)]
    tiny = [shapely.box(10000, 0, 10001, 1)]  # 1 m²: far below one tile unit at z10
    layer = gpd.GeoDataFrame({"community_code": ["370102001001", "370102001002", "370102001003"]},
                             geometry=big + tiny, crs="EPSG:4548")
    tiles = VectorTiles({"communities": layer}, minzoom=8, maxzoom=16)
    assert tiles.markers("communities", 8) == 1 and tiles.markers("communities", 16) == 0
    for z in (8, 16):
        ids = set()
        for x, y in tiles.tiles_at("communities", z).tolist():
            ids |= {f["id"] for f in decode(tiles.tile("communities", z, x, y), "communities")}
        assert 370102001003 in ids, f"z{z}: the tiny polygon is drawn"


# -- public columns, TileJSON ------------------------------------------------------


def test_personal_data_never_reaches_a_tile(city):
    orders = city.workorders.copy()
    orders["caller_phone"] = "13800000000"
    orders["caller_name"] = "张三"
    tiles = VectorTiles({"workorders": orders}, minzoom=12, maxzoom=14)
    x, y = tiles.tiles_at("workorders", 13)[0].tolist()
    for feature in decode(tiles.tile("workorders", 13, x, y), "workorders"):
        assert not {"caller_phone", "caller_name"} & set(feature["properties"])
    fields = tiles.tilejson("workorders", "/t/{z}/{x}/{y}")["vector_layers"][0]["fields"]
    assert "caller_phone" not in fields and fields["received_at"] == "String"
    with pytest.raises(SchemaError, match=r"columns\['workorders'\] names personal data \['caller_phone'\]"):
        VectorTiles({"workorders": orders}, columns={"workorders": ["order_id", "caller_phone"]})


def test_columns_restrict_the_properties(city):
    tiles = VectorTiles({"units": city.units}, minzoom=14, maxzoom=14,
                        columns={"units": ["households"]})
    x, y = tiles.tiles_at("units", 14)[0].tolist()
    feature = decode(tiles.tile("units", 14, x, y), "units")[0]
    assert set(feature["properties"]) == {"unit_id", "households"}  # the key is always there


def test_detail_zoom_keeps_only_key_and_name_below_it(city):
    tiles = VectorTiles({"communities": city.communities, "units": city.units}, minzoom=10,
                        maxzoom=16, detail_zoom={"communities": 13})
    for z, expected in ((12, {"community_code", "name"}), (13, set(city.communities.columns) - {"geometry"})):
        x, y = tiles.tiles_at("communities", z)[0].tolist()
        features = decode(tiles.tile("communities", z, x, y), "communities")
        assert features and all(set(f["properties"]) == expected for f in features), z
    # layers the option leaves out carry every column at every zoom
    x, y = tiles.tiles_at("units", 10)[0].tolist()
    properties = decode(tiles.tile("units", 10, x, y), "units")[0]["properties"]
    assert {"unit_id", "households", "community_code"} <= set(properties)  # missing values are left out
    with pytest.raises(ParameterError, match=r"detail_zoom=-1; expected an integer zoom from 0 to"):
        VectorTiles({"units": city.units}, detail_zoom=-1)
    with pytest.raises(NotFoundError, match=r"detail_zoom names unknown layers \['roads'\]"):
        VectorTiles({"units": city.units}, detail_zoom={"roads": 12})


def test_tilejson(tiles, city):
    doc = tiles.tilejson("units", "http://h/tiles/units/{z}/{x}/{y}.mvt")
    assert doc["tilejson"] == "3.0.0" and doc["tiles"] == ["http://h/tiles/units/{z}/{x}/{y}.mvt"]
    assert (doc["minzoom"], doc["maxzoom"]) == (10, 16)
    west, south, east, north = city.units.to_crs(4326).total_bounds
    assert doc["bounds"] == pytest.approx([west, south, east, north])
    layer = doc["vector_layers"][0]
    assert layer["id"] == "units"
    assert layer["fields"]["households"] == "Number" and layer["fields"]["unit_id"] == "String"
    with pytest.raises(ParameterError, match=r"url='/tiles/units'; expected a tile URL template"):
        tiles.tilejson("units", "/tiles/units")


# -- bad requests -----------------------------------------------------------------


@pytest.mark.parametrize("address, error, message", [
    (("parks", 12, 0, 0), NotFoundError, r"layer='parks' does not exist; expected one of communities"),
    (("units", 9, 0, 0), NotFoundError, r"layer 'units' has tiles at zooms 10 to 16; z=9 is outside"),
    (("units", 17, 0, 0), NotFoundError, r"z=17 is outside that range"),
    (("units", 12, 4096, 0), TileError, r"x=4096 is outside zoom 12; expected 0 to 4095"),
    (("units", 12, 0, -1), TileError, r"y=-1 is outside zoom 12; expected 0 to 4095"),
    (("units", 31, 0, 0), TileError, r"z=31 is not a zoom level; expected 0 to 24"),
    (("units", "12", 0, 0), TileError, r"z='12' is not a tile coordinate; expected an integer"),
    (("units", 12, 1.5, 0), TileError, r"x=1.5 is not a tile coordinate"),
])
def test_bad_tile_requests(tiles, address, error, message):
    with pytest.raises(error, match=message):
        tiles.tile(*address)


def test_empty_tile_inside_the_range(tiles):
    assert tiles.tile("units", 12, 0, 0) == b""


def test_bad_constructor_arguments(city):
    units = city.units
    with pytest.raises(InputTypeError, match=r"layers is a list; expected a dict"):
        VectorTiles([units])
    with pytest.raises(ParameterError, match=r"layers=\{\}; expected at least one layer"):
        VectorTiles({})
    with pytest.raises(InputTypeError, match=r"layers\['units'\] is a DataFrame; expected a GeoDataFrame"):
        VectorTiles({"units": units.drop(columns="geometry")})
    with pytest.raises(CRSError, match=r"layers\['units'\] has no CRS"):
        VectorTiles({"units": units.set_crs(None, allow_override=True)})
    mixed = gpd.GeoDataFrame(geometry=[shapely.Point(0, 0), shapely.box(0, 0, 1, 1)], crs=4548)
    with pytest.raises(GeometryError, match=r"geometry types \['Point', 'Polygon'\]"):
        VectorTiles({"mixed": mixed})
    bowtie = gpd.GeoDataFrame(geometry=[shapely.Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])], crs=4548)
    with pytest.raises(GeometryError, match=r"invalid polygons in rows \[0\]"):
        VectorTiles({"bowtie": bowtie})
    with pytest.raises(ParameterError, match=r"minzoom=12 > maxzoom=10 for layer 'units'"):
        VectorTiles({"units": units}, minzoom=12, maxzoom=10)
    with pytest.raises(ParameterError, match=r"maxzoom=40; expected an integer zoom from 0 to 24"):
        VectorTiles({"units": units}, maxzoom=40)
    with pytest.raises(NotFoundError, match=r"minzoom names unknown layers \['grids'\]"):
        VectorTiles({"units": units}, minzoom={"grids": 12})
    with pytest.raises(ParameterError, match=r"cache_mb=-1; expected a number of MiB >= 0"):
        VectorTiles({"units": units}, cache_mb=-1)
    with pytest.raises(SchemaError, match=r"id_column='street_code' of layer 'units' does not hold unique"):
        VectorTiles({"units": units}, id_column="street_code")
    with pytest.raises(SchemaError, match=r"id_column='fid' is not a column of layer 'units'"):
        VectorTiles({"units": units}, id_column="fid")


# -- cache and threads --------------------------------------------------------------


def test_cache_is_bounded_in_bytes(city):
    tiles = VectorTiles({"units": city.units}, minzoom=10, maxzoom=16, cache_mb=0.02)
    addresses = [(z, x, y) for z in (15, 16) for x, y in tiles.tiles_at("units", z).tolist()]
    sizes = []
    for z, x, y in addresses:
        sizes.append(len(tiles.tile("units", z, x, y)))
        info = tiles.cache_info()
        assert info.bytes <= info.max_bytes == int(0.02 * 2**20)
    assert sum(sizes) > info.max_bytes, "the test must overflow the cache"
    assert 0 < info.tiles < len(addresses)
    last = addresses[-1]
    before = tiles.cache_info().hits
    assert tiles.tile("units", *last) == tiles.tile("units", *last)
    assert tiles.cache_info().hits == before + 2  # the most recent tile stays warm
    uncached = VectorTiles({"units": city.units}, minzoom=10, maxzoom=16, cache_mb=0)
    uncached.tile("units", *last)
    assert uncached.cache_info().tiles == 0


def test_threads_get_the_same_tiles(city):
    sequential = VectorTiles({"units": city.units}, minzoom=13, maxzoom=15, cache_mb=0)
    addresses = [(z, x, y) for z in (13, 14, 15) for x, y in sequential.tiles_at("units", z).tolist()]
    expected = [sequential.tile("units", *a) for a in addresses]
    shared = VectorTiles({"units": city.units}, minzoom=13, maxzoom=15, cache_mb=1)
    barrier = threading.Barrier(4)

    def render(offset):
        barrier.wait()
        order = addresses[offset:] + addresses[:offset]
        return {a: shared.tile("units", *a) for a in order}

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(render, [0, 3, 7, 11]))
    for result in results:
        assert [result[a] for a in addresses] == expected


# -- PMTiles ---------------------------------------------------------------------


def test_pmtiles_archive_opens_in_gdal_and_the_pmtiles_reader(tiles, tmp_path):
    from pmtiles.reader import MmapSource, Reader

    path = tmp_path / "slice.pmtiles"
    summary = write_pmtiles(tiles, path, layers=["communities", "stations"], minzoom=10, maxzoom=13)
    assert summary.tiles > 0 and summary.layers == ("communities", "stations")
    assert not list(tmp_path.glob(".*part"))
    listed = dict(pyogrio.list_layers(path).tolist())
    assert set(listed) == {"communities", "stations"}
    gdal = pyogrio.read_dataframe(path, layer="communities", ZOOM_LEVEL=13)
    assert set(gdal["community_code"]) == set(tiles.feature_ids("communities").astype(str))
    with open(path, "rb") as handle:
        reader = Reader(MmapSource(handle))
        header = reader.header()
        assert (header["min_zoom"], header["max_zoom"]) == (10, 13)
        x, y = tiles.tiles_at("communities", 12)[0].tolist()
        data = gzip.decompress(reader.get(12, x, y))
    assert data == tiles.tile("communities", 12, x, y) + tiles.tile("stations", 12, x, y)


def test_cli_tiles_build(city, tmp_path):
    small = City(communities=city.communities, stations=city.stations)
    source = write_city(small, tmp_path / "small.gpkg")
    out = tmp_path / "city.pmtiles"
    result = CliRunner().invoke(main, ["tiles", "build", "--city", str(source), "--out", str(out),
                                       "--minzoom", "11", "--maxzoom", "12"])
    assert result.exit_code == 0, result.output
    assert "tiles z11-z12 of communities, stations" in result.output
    assert set(dict(pyogrio.list_layers(out).tolist())) == {"communities", "stations"}
    result = CliRunner().invoke(main, ["tiles", "build", "--city", str(source), "--out",
                                       str(tmp_path / "x.pmtiles"), "--layers", "grids"])
    assert result.exit_code == 1
    assert "--layers 'grids': no layer grids in the city" in result.output
    assert not (tmp_path / "x.pmtiles").exists()


@pytest.mark.slow
def test_full_city_units_tile_matches_gdal_and_covers(sample_city, tmp_path):
    tiles = VectorTiles({"units": sample_city.units}, minzoom=12, maxzoom=12)
    x, y = 3379, 1598  # 历下区 centre
    data = tiles.tile("units", 12, x, y)
    path = tmp_path / "t.pbf"
    path.write_bytes(data)
    gdal = pyogrio.read_dataframe(path, layer="units", X=x, Y=y, Z=12, CLIP="NO")
    assert len(gdal) > 100 and sorted(gdal["mvt_id"]) == sorted(f["id"] for f in decode(data, "units"))
    zoom = tiles._layer("units").geometry.zoom(12)
    assert shapely.coverage_is_valid(zoom.geometries(np.arange(len(sample_city.units))))


def test_geometry_cache_dir_reuses_the_per_zoom_geometry(city, tmp_path):
    first = VectorTiles({"units": city.units}, minzoom=13, maxzoom=14, cache_dir=tmp_path)
    first.prepare()
    files = sorted(p.name for p in tmp_path.glob("units-*.npz"))
    assert len(files) == 2 and files[0].endswith("-z13.npz")
    second = VectorTiles({"units": city.units}, minzoom=13, maxzoom=14, cache_dir=tmp_path)
    for x, y in first.tiles_at("units", 14).tolist():
        assert second.tile("units", 14, x, y) == first.tile("units", 14, x, y)
    assert not second._layer("units").geometry.is_cleaned()  # read back: no coverage work at all
    VectorTiles({"units": city.units}, minzoom=14, maxzoom=14, tolerance=8.0,
                cache_dir=tmp_path).prepare()
    assert len(list(tmp_path.glob("units-*.npz"))) == 3  # other parameters, other files
    with pytest.raises(NotFoundError, match=r"cache_dir='.*nowhere' is not a folder"):
        VectorTiles({"units": city.units}, cache_dir=tmp_path / "nowhere")


# -- served tiles: gzip and ETag kept with the bytes ---------------------------------


def test_a_served_tile_keeps_its_gzip_and_etag(city):
    import hashlib

    tiles = VectorTiles({"units": city.units}, minzoom=14, maxzoom=14)
    x, y = tiles.tiles_at("units", 14)[0].tolist()
    served = tiles.served("units", 14, x, y)
    assert served is tiles.served("units", 14, x, y)  # kept: not gzipped nor hashed again
    assert served.data == tiles.tile("units", 14, x, y) and gzip.decompress(served.gzip) == served.data
    assert served.etag == f'"{hashlib.blake2b(served.data, digest_size=12).hexdigest()}"'
    assert tiles.cache_info().bytes >= len(served.data) + len(served.gzip)
    empty = tiles.served("units", 14, 0, 0)
    assert empty.data == empty.gzip == b"" and empty.etag.startswith('"')
    with pytest.raises(TileError, match=r"x=16384 is outside zoom 14"):
        tiles.served("units", 14, 2**14, 0)


def test_a_cold_tile_asked_by_many_threads_is_cut_once(city, monkeypatch):
    import time

    tiles = VectorTiles({"units": city.units}, minzoom=14, maxzoom=14)
    tiles.prepare()
    encoder = tiles._layer("units").encoder
    render, calls = encoder.render, []

    def slow(z, x, y):
        calls.append((z, x, y))
        time.sleep(0.05)
        return render(z, x, y)

    monkeypatch.setattr(encoder, "render", slow)
    x, y = tiles.tiles_at("units", 14)[0].tolist()
    barrier = threading.Barrier(6)

    def ask(_):
        barrier.wait()
        return tiles.served("units", 14, x, y)

    with ThreadPoolExecutor(6) as pool:
        served = list(pool.map(ask, range(6)))
    assert len(calls) == 1 and all(s is served[0] for s in served)


def test_personal_data_is_the_one_definition_of_jngis_codes(city):
    from jngis import codes

    orders = city.workorders.copy()
    orders["id_number"] = "370102199001011234"
    orders["联系人"] = "张三"
    stations = city.stations.copy()
    stations["phone"] = "0531-86000000"  # a service station's public phone
    tiles = VectorTiles({"workorders": orders, "stations": stations}, minzoom=12, maxzoom=14)
    fields = {name: tiles.tilejson(name, "/t/{z}/{x}/{y}")["vector_layers"][0]["fields"]
              for name in tiles.layers}
    assert not set(codes.personal_columns(orders.columns, "workorders")) & set(fields["workorders"])
    assert {"id_number", "联系人"}.isdisjoint(fields["workorders"])
    assert "phone" in fields["stations"]
    with pytest.raises(SchemaError, match=r"names personal data \['id_number'\]"):
        VectorTiles({"workorders": orders}, columns={"workorders": ["order_id", "id_number"]})


def test_the_deepest_zoom_is_jngis_codes_max_zoom(city):
    from jngis import codes
    from jngis import tiles as tiles_module

    assert tiles_module.MAX_ZOOM is codes.MAX_ZOOM
    tiles = VectorTiles({"stations": city.stations}, maxzoom=codes.MAX_ZOOM)
    assert tiles.zoom_range("stations") == (0, codes.MAX_ZOOM)
    with pytest.raises(TileError, match=rf"z={codes.MAX_ZOOM + 1} is not a zoom level; expected 0 to "
                                        rf"{codes.MAX_ZOOM}"):
        tiles.tile("stations", codes.MAX_ZOOM + 1, 0, 0)


# -- coverage geometry from shared arcs ------------------------------------------------


def voronoi_layer(seed: int, n: int = 300, segmentize: bool = True) -> gpd.GeoDataFrame:
    """A coverage with thin cells, sub-pixel gaps and one-sided vertices (T-junctions), 4548."""
    rng = np.random.default_rng(seed)
    centre = np.array([500000.0, 4060000.0])
    # clustered points make cells far thinner than a pixel of the low zooms
    points = centre + np.concatenate([rng.normal(0, 800, (n // 2, 2)), rng.normal(0, 40, (n // 2, 2))])
    frame = shapely.box(*(centre - 2000), *(centre + 2000))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(points), extend_to=frame))
    cells = shapely.intersection(cells, frame)
    cells = cells[shapely.area(cells) > 0]
    shrunk = rng.random(len(cells)) < 0.1  # gaps of a few millimetres
    cells[shrunk] = shapely.buffer(cells[shrunk], -0.003, join_style="mitre")
    if segmentize:  # vertices on one side of a shared edge only
        half = rng.random(len(cells)) < 0.5
        cells[half] = shapely.segmentize(cells[half], 25.0)
    cells = cells[~shapely.is_empty(cells) & (shapely.get_type_id(cells) == 3)]
    codes = [f"370102001{i:03d}" for i in range(len(cells))]
    return gpd.GeoDataFrame({"community_code": codes}, geometry=cells, crs="EPSG:4548")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_arc_geometry_stays_a_coverage_where_parts_collapse(seed):
    from jngis.tiles.arcs import Arcs

    layer = voronoi_layer(seed)
    tiles = VectorTiles({"communities": layer}, minzoom=8, maxzoom=16)
    geometry = tiles._layer("communities").geometry
    assert geometry.cleaned() is not geometry.base()[0]  # matched by the millimetre snap
    assert isinstance(geometry.arcs(), Arcs)
    for z in range(8, 17):
        zoom = geometry.zoom(z)
        geoms = zoom.geometries(np.arange(len(layer)))
        assert len(geoms) == len(layer) and not shapely.is_empty(geoms).any(), f"z{z}"
        assert shapely.is_valid(geoms).all(), f"z{z}"
        if zoom.markers == 0:
            assert shapely.coverage_is_valid(geoms), f"z{z}"
            union = shapely.union_all(geoms)
            assert shapely.area(geoms).sum() - union.area < 1.0, f"z{z}: overlap"


def test_arc_geometry_falls_back_to_geos_for_overlapping_input():
    layer = voronoi_layer(3, segmentize=False)
    overlapping = layer.copy()
    overlapping.loc[0, "geometry"] = shapely.buffer(layer.geometry.iloc[0], 5.0)
    tiles = VectorTiles({"communities": overlapping}, minzoom=12, maxzoom=14)
    geometry = tiles._layer("communities").geometry
    assert geometry._snap_cleaned() is None  # snapping cannot mend an overlap: GEOS cleans it
    for z in (12, 14):
        geoms = geometry.zoom(z).geometries(np.arange(len(layer)))
        assert shapely.coverage_is_valid(geoms[~shapely.is_empty(geoms)]), f"z{z}"


def test_update_reuses_what_did_not_change(city):
    communities = city.communities
    old = VectorTiles({"communities": communities}, minzoom=10, maxzoom=13)
    old.prepare()
    geometry = old._layer("communities").geometry
    same = geometry.update(communities.geometry.copy())
    assert same.reused == len(communities)
    assert all(same.zoom(z) is geometry.zoom(z) for z in range(10, 14))  # nothing rebuilt
    changed = communities.copy()
    a, b = changed.index[:2]
    moved = shapely.intersection(changed.geometry[b], shapely.buffer(changed.geometry[a], 60.0))
    changed.loc[a, "geometry"] = shapely.union(changed.geometry[a], moved)
    changed.loc[b, "geometry"] = shapely.difference(changed.geometry[b], moved)
    new = geometry.update(changed.geometry)
    assert new.reused == len(communities) - 2
    cold = VectorTiles({"communities": changed}, minzoom=10, maxzoom=13)._layer("communities")
    for z in range(10, 14):  # the same geometry as a cold build of the new layer
        ours, theirs = new.zoom(z), cold.geometry.zoom(z)
        assert np.array_equal(ours.coords, theirs.coords) and np.array_equal(ours.rings, theirs.rings)
    assert geometry.update(changed.geometry.to_crs(4490)).reused == 0  # another CRS: rebuilt
