"""server.urls.url_for gives the string Starlette's request.url_for gives, for every named route."""

from __future__ import annotations

import itertools

import pytest
from starlette.requests import Request
from starlette.routing import Mount

from jngis.server.urls import url_for

#: Values: plain ones (filled in) and ones only Starlette may place (quoted, braces, non-ASCII, a
#: value that looks like a placeholder).
VALUES = ("20261205000001", "grids", "sign", "v1.2_x~y-z", "{z}", "网格", "a b%", "JNGISPARAM0X")


def _request(app, *, scheme="http", host=b"127.0.0.1:8000", root_path="") -> Request:
    return Request({"type": "http", "app": app, "router": app.router, "scheme": scheme, "root_path": root_path,
                    "server": ("127.0.0.1", 8000), "path": f"{root_path}/", "query_string": b"",
                    "headers": [(b"host", host)] if host else []})


def _named_routes(routes) -> dict[str, tuple[str, ...]]:
    """{name: path parameter names} of every named route, through FastAPI's included routers, but
    the mounted static files."""
    found: dict[str, tuple[str, ...]] = {}
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            found.update(_named_routes(included.routes))
        elif not isinstance(route, Mount) and getattr(route, "name", None):
            found[route.name] = tuple(sorted(getattr(route, "param_convertors", {})))
    return found


def test_every_route_and_base_gives_starlettes_address(app):
    routes = sorted(_named_routes(app.routes).items())
    assert {"get_workorder", "workorder_step", "transition_workorder", "items", "collection"} <= dict(routes).keys()
    bases = [{}, {"scheme": "https", "host": b"jngis.example.cn"}, {"root_path": "/map"},
             {"host": b"[::1]:8443", "scheme": "https", "root_path": "/a/b"}, {"host": None},
             {"host": b"JNGISPARAM0X"}, {"root_path": "/JNGISPARAM1X"}]
    checked = 0
    for base, (name, keys) in itertools.product(bases, routes):
        for values in itertools.islice(itertools.permutations(VALUES, len(keys)), 6):
            request = _request(app, **base)
            params = dict(zip(keys, values))
            try:
                expected = str(request.url_for(name, **params))
            except AssertionError:  # Starlette refuses the value itself (e.g. a "/" in a str parameter)
                continue
            assert url_for(_request(app, **base), name, **params) == expected, (base, name, params)
            assert url_for(request, name, **params) == expected  # the second call: from the template
            checked += 1
    assert checked > 100


def test_a_template_belongs_to_its_app_and_base(app):
    first = url_for(_request(app), "get_workorder", order_id="1")
    behind_a_proxy = url_for(_request(app, root_path="/map", host=b"gov.example.cn"), "get_workorder", order_id="1")
    assert first == "http://127.0.0.1:8000/workorders/1"
    assert behind_a_proxy == "http://gov.example.cn/map/workorders/1"


def test_an_unknown_route_fails_as_in_starlette(app):
    from starlette.routing import NoMatchFound

    with pytest.raises(NoMatchFound):
        url_for(_request(app), "no_such_route", order_id="1")
