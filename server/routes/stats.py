"""Per-grid counts (``jngis.stats.grid_stats``, kept by :class:`jngis.gridtable.LiveTable`) and the grid card.

The viewer joins ``/stats/grids`` to the grid tiles with feature-state, so
counts change without a tile being rebuilt; the ETag lets it poll cheaply.
The figures are aggregated (never personal data); a principal scoped to places
gets its grids' rows (:meth:`Backend.figures`), cached under its scope.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from jngis.access import Principal
from jngis.errors import NotFoundError
from jngis.gridtable import GridTable
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


class _Figures(NamedTuple):
    """One table's rows ``who`` may see as JSON-ready columns, and each grid's row (the stats body and the cards)."""

    version: int
    codes: list[str]
    row: dict[str, int]
    columns: dict[str, list]


def _figures(store: Backend, who: Principal, served) -> tuple[GridTable, _Figures, tuple]:
    """The figures of :meth:`Backend.figures`, converted once per table and scope (a card is then a lookup).

    Only the newest table's are kept for a scope (a few MB each): an older one is replaced.
    """
    current, table, scope = store.figures(who, served)

    def build() -> _Figures:
        codes = table.index.tolist()
        return _Figures(current.version, codes, {code: i for i, code in enumerate(codes)},
                        {name: _column(table[name]) for name in table.columns})

    key = ("figures", scope)
    figures = served.live.get_or_insert(key, build)
    if figures.version < current.version:  # an older table's: replaced (a newer one is never evicted)
        served.live.invalidate(key)
        figures = served.live.get_or_insert(key, build)
    if figures.version != current.version:  # a request that read the previous table, or one in flight
        figures = build()
    return current, figures, scope


@router.get("/stats/grids", name="grid_stats")
def grid_counts(request: Request, store: Backend = Depends(backend),
                who: Principal = Depends(current_principal)) -> Response:
    """Every grid's indicators, column-wise: ``{"at", "grid_code": [...], "columns": {name: [...]}}``.

    ``grid_code[i]`` and ``columns[name][i]`` belong to the same grid.
    """
    served = store.served()  # one version: its grids, its counts, its header
    current, figures, scope = _figures(store, who, served)

    def build():
        return _encode({"at": current.at, "version": served.version, "count": len(figures.codes),
                        "grid_code": figures.codes, "columns": figures.columns})

    body, etag = served.live.get_or_insert(("stats", current.version, scope), build)
    return _etagged(request, body, etag, served.version)


@router.get("/grids/{grid_code}", name="grid_card")
def grid_card(grid_code: str, request: Request, store: Backend = Depends(backend),
              who: Principal = Depends(current_principal)) -> Response:
    """The card of one grid: its place, households, staffing, stations, party organisations, orders."""
    served = store.served()
    current, figures, _ = _figures(store, who, served)
    row = figures.row.get(grid_code)
    if row is None:  # outside the scope reads as missing: nothing about it leaks
        raise NotFoundError(f"grid_code={grid_code!r} is not a grid of this city")
    card = {name: values[row] for name, values in figures.columns.items()}
    body, etag = _encode({"grid_code": grid_code, "at": current.at, **served.places.of(grid_code), **card})
    return _etagged(request, body, etag, served.version)
