"""Per-grid counts (``jngis.stats.grid_stats``, kept by :class:`jngis.gridtable.LiveTable`) and the grid card.

The viewer joins ``/stats/grids`` to the grid tiles with feature-state, so
counts change without a tile being rebuilt; the ETag lets it poll cheaply.
The figures are aggregated (never personal data); a principal scoped to places
gets its grids' rows (:meth:`Backend.figures`), cached under its scope.
"""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from jngis.access import Principal
from jngis.errors import NotFoundError
from ..auth import current_principal
from ..deps import Backend, backend, encode_json
from .tiles import VERSION_HEADER

router = APIRouter(tags=["statistics"])


def _etagged(request: Request, body: bytes, etag: str, version: int) -> Response:
    headers = {"ETag": etag, "Cache-Control": "no-cache", VERSION_HEADER: str(version)}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _encode(payload) -> tuple[bytes, str]:
    body = encode_json(payload, allow_nan=False)
    return body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'


def _column(series) -> list:
    """A column as JSON-ready values (missing -> None: JSON has no NaN)."""
    return series.to_numpy(dtype=object, na_value=None).tolist()


@router.get("/stats/grids", name="grid_stats")
def grid_counts(request: Request, store: Backend = Depends(backend),
                who: Principal = Depends(current_principal)) -> Response:
    """Every grid's indicators, column-wise: ``{"at", "grid_code": [...], "columns": {name: [...]}}``.

    ``grid_code[i]`` and ``columns[name][i]`` belong to the same grid.
    """
    served = store.served()  # one version: its grids, its counts, its header
    current, table, scope = store.figures(who, served)

    def build():
        return _encode({"at": current.at, "version": served.version, "count": len(table),
                        "grid_code": table.index.tolist(),
                        "columns": {name: _column(table[name]) for name in table.columns}})

    body, etag = served.live.get_or_insert(("stats", current.version, scope), build)
    return _etagged(request, body, etag, served.version)


@router.get("/grids/{grid_code}", name="grid_card")
def grid_card(grid_code: str, request: Request, store: Backend = Depends(backend),
              who: Principal = Depends(current_principal)) -> Response:
    """The card of one grid: its place, households, staffing, stations, party organisations, orders."""
    served = store.served()
    current, table, _ = store.figures(who, served)
    if grid_code not in table.index:  # outside the scope reads as missing: nothing about it leaks
        raise NotFoundError(f"grid_code={grid_code!r} is not a grid of this city")
    row = table.loc[[grid_code]]
    figures = {name: _column(row[name])[0] for name in row.columns}
    body, etag = _encode({"grid_code": grid_code, "at": current.at, **served.places.of(grid_code), **figures})
    return _etagged(request, body, etag, served.version)
