"""/layers (with the viewer's vocabulary), label points and search, and the viewer's modules."""

from __future__ import annotations

import re

import pytest
from shapely.geometry import shape

from jngis.codes import LABELS, UNITS, VALUE_LABELS, viewer_vocabulary
from jngis.crs import WGS84
from jngis.server.deps import static_dir


def test_layers_carry_the_vocabulary_of_jngis_codes(client):
    body = client.get("/layers").json()
    assert body["vocabulary"] == viewer_vocabulary()
    assert body["vocabulary"]["values"]["grid_type"]["residential"] == "居住网格"
    assert body["vocabulary"]["labels"]["enforcement_officers"] == "执法力量"


def test_the_viewer_holds_no_copy_of_the_labels():
    """Labels, units and value labels come from /layers, so app.js and friends never drift from codes.py."""
    sources = {path.name: path.read_text() for path in static_dir().glob("*.js")}
    assert "app.js" in sources and len(sources) > 1  # split into modules
    words = set(LABELS.values()) | {v for values in VALUE_LABELS.values() for v in values.values()}
    words -= {"网格", "社区", "街道", "区县", "名称", "状态"}  # the viewer's own headings may use these
    for name, text in sources.items():
        strings = set(re.findall(r'"([^"]*)"', text))
        assert not strings & words, f"{name} copies labels {sorted(strings & words)}"
        assert not re.search(r'\["[a-z_]+", "[^"]+", "(户|人|个|件|天|%|㎡)"\]', text), f"{name} copies units"
    assert {"户", "件"} <= set(UNITS.values())


def test_the_viewer_is_es_modules_from_this_server(client):
    page = client.get("/", headers={"Accept": "text/html"}).text
    assert '<script type="module" src="/static/app.js"></script>' in page
    for path in static_dir().glob("*.js"):
        response = client.get(f"/static/{path.name}")
        assert response.status_code == 200 and "javascript" in response.headers["content-type"]
        assert "http://" not in response.text and "https://" not in response.text, path.name
        for imported in re.findall(r'from "\./([\w.]+)"', response.text):
            assert (static_dir() / imported).is_file(), f"{path.name} imports a missing {imported}"


def test_labels_are_points_inside_their_feature(client, slice_city):
    labels = client.get("/layers/communities/labels")
    assert labels.headers["content-type"].startswith("application/geo+json")
    features = labels.json()["features"]
    communities = slice_city.communities.to_crs(WGS84).set_index("community_code")
    assert sorted(f["id"] for f in features) == sorted(communities.index)
    for feature in features:
        assert feature["properties"]["name"] == communities.loc[feature["id"], "name"]
        assert communities.geometry[feature["id"]].buffer(1e-6).covers(shape(feature["geometry"]))


@pytest.mark.parametrize("kind", ["grids", "rivers"])
def test_layers_without_labels_are_404(client, kind):
    response = client.get(f"/layers/{kind}/labels")
    assert response.status_code == 404 and "has no labels" in response.json()["detail"]


def test_search_finds_a_community_by_name_and_frames_it(client, slice_city):
    community = slice_city.communities.iloc[0]
    body = client.get("/search", params={"q": f" {community['name']} "}).json()
    assert body["query"] == community["name"]
    hit = next(h for h in body["results"] if h["code"] == community.community_code)
    assert hit["kind"] == "communities" and hit["title"] == "社区"
    west, south, east, north = hit["bbox"]
    box = slice_city.communities.to_crs(WGS84).geometry.iloc[0].bounds
    assert (west, south, east, north) == pytest.approx(box, abs=1e-6)


def test_search_by_code_prefix_and_limit(client, slice_city):
    street = slice_city.streets.street_code.iloc[0]
    results = client.get("/search", params={"q": street, "limit": 4}).json()["results"]
    assert len(results) == 4 and results[0] == {**results[0], "kind": "streets", "code": street}
    assert all(hit["code"].startswith(street) for hit in results)
