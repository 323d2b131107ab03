"""jngis.places: names of enclosing places, label points, search."""

from __future__ import annotations

import threading

import pytest
import shapely
from shapely.geometry import shape

from jngis.crs import WGS84
from jngis.errors import CRSError, InputTypeError, NotFoundError, ParameterError, SchemaError
from jngis.places import LABELLED, Places


@pytest.fixture(scope="module")
def layers(slice_city):
    return {kind: getattr(slice_city, kind) for kind in ("districts", "streets", "communities", "grids")}


@pytest.fixture(scope="module")
def places(layers):
    return Places(layers)


def test_the_places_of_a_grid(places, slice_city):
    grid = slice_city.grids.iloc[7]
    community = slice_city.communities.set_index("community_code").loc[grid.community_code]
    assert places.of(grid.grid_code) == {
        "community_code": grid.community_code, "community_name": community["name"],
        "street_code": community.street_code, "street_name": slice_city.streets.name.iloc[0],
        "district_code": slice_city.districts.district_code.iloc[0],
        "district_name": slice_city.districts.name.iloc[0],
    }


def test_the_places_of_a_community_and_of_a_district(places, slice_city):
    code = slice_city.communities.community_code.iloc[0]
    assert list(places.of(code)) == ["street_code", "street_name", "district_code", "district_name"]
    assert places.of(code[:6]) == {}
    assert places.name(code) == slice_city.communities.name.iloc[0]


def test_unknown_places_have_no_name(places):
    assert places.of("999999999999999")["community_name"] is None
    assert places.name("999999") is None


@pytest.mark.parametrize("code", ["3701", "37010200300x", 370102, None])
def test_a_code_that_is_no_code_is_refused(places, code):
    with pytest.raises(ParameterError, match="is not an administrative code"):
        places.of(code)


def test_search_by_name_lists_the_community_with_its_bounds(places, slice_city):
    community = slice_city.communities.iloc[1]
    hits = places.search(community["name"])
    hit = next(h for h in hits if h["code"] == community.community_code)
    assert hit["kind"] == "communities" and hit["title"] == "社区" and hit["name"] == community["name"]
    expected = slice_city.communities.to_crs(WGS84).geometry.iloc[1].bounds
    assert hit["bbox"] == [round(v, 6) for v in expected]


def test_search_by_code_prefix_goes_from_the_largest_places_down(places, slice_city):
    street = slice_city.streets.street_code.iloc[0]
    hits = places.search(street, limit=100)
    kinds = [h["kind"] for h in hits]
    assert kinds == sorted(kinds, key=["streets", "communities", "grids"].index)
    assert all(h["code"].startswith(street) for h in hits)
    assert len(hits) == min(100, 1 + len(slice_city.communities) + len(slice_city.grids))
    grids = [h for h in hits if h["kind"] == "grids"]
    assert grids and all(h["name"] == h["code"] for h in grids)  # grids have no names: their code


def test_search_limit_blanks_and_misses(places):
    assert len(places.search("3701", limit=3)) == 3
    assert places.search("  3701  ", limit=3) == places.search("3701", limit=3)
    assert places.search("没有这个地方") == []
    assert len(places.search("", limit=5)) == 5  # an empty query matches every place


@pytest.mark.parametrize("query, limit, error, message", [
    (3701, 20, InputTypeError, "query is a int; expected a string"),
    ("3701", 0, ParameterError, "Places.search: limit=0; expected an integer >= 1"),
    ("3701", 2.5, ParameterError, "limit=2.5"),
])
def test_bad_searches_name_the_parameter(places, query, limit, error, message):
    with pytest.raises(error, match=message):
        places.search(query, limit)


def test_label_points_lie_inside_their_feature(places, layers):
    for kind in LABELLED:
        points = places.label_points(kind)
        polygons = layers[kind].to_crs(WGS84).geometry
        assert len(points) == len(polygons)
        assert all(polygon.covers(point) for polygon, point in zip(polygons, points))


def test_labels_are_geojson_points_with_code_and_name(places, layers):
    labels = places.labels("communities")
    assert labels["type"] == "FeatureCollection"
    features = labels["features"]
    assert [f["id"] for f in features] == layers["communities"].community_code.tolist()
    first = features[0]
    assert first["properties"] == {"code": first["id"], "name": layers["communities"].name.iloc[0],
                                   "kind": "communities"}
    assert layers["communities"].to_crs(WGS84).geometry.iloc[0].buffer(1e-6).covers(shape(first["geometry"]))
    assert places.labels("communities") is labels  # computed once


def test_label_points_are_computed_once_however_many_ask(layers, monkeypatch):
    places = Places(layers)
    calls = []
    real = type(layers["streets"]).representative_point

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(layers["streets"]), "representative_point", counted)
    threads = [threading.Thread(target=places.label_points, args=("streets",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1


def test_only_named_layers_have_labels(places, slice_city):
    with pytest.raises(NotFoundError, match="layer 'grids' has no labels; expected one of districts"):
        places.labels("grids")
    only_streets = Places({"streets": slice_city.streets})
    with pytest.raises(NotFoundError, match="layer 'communities' is not in this city; expected one of streets"):
        only_streets.label_points("communities")


def test_bad_layers_are_refused(slice_city):
    with pytest.raises(InputTypeError, match="layers is a list"):
        Places([slice_city.streets])
    with pytest.raises(SchemaError, match=r"layers\['streets'\] lacks column\(s\) \['street_code'\]"):
        Places({"streets": slice_city.streets.drop(columns="street_code")})
    with pytest.raises(CRSError, match=r"layers\['streets'\] has no CRS"):
        Places({"streets": slice_city.streets.set_crs(None, allow_override=True)})
    assert Places({"rivers": slice_city.streets}).kinds == []  # other layers are ignored


def test_the_layers_are_not_changed(layers):
    before = {kind: layer.copy() for kind, layer in layers.items()}
    places = Places(layers)
    places.search("3701")
    places.labels("districts")
    for kind, layer in layers.items():
        assert layer.equals(before[kind]) and list(layer.columns) == list(before[kind].columns)
        assert shapely.equals(layer.geometry.values, before[kind].geometry.values).all()
