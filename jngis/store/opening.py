"""Opening a store by URL or path, and refusing one that is not there.

Examples
--------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> require_store(folder / "typo.gpkg")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
jngis.errors.NotFoundError: no store at '.../typo.gpkg': the file does not exist; ...
>>> sorted(p.name for p in folder.iterdir())  # nothing was created
[]
"""

from __future__ import annotations

import os
from typing import Any

from jngis.errors import InputTypeError
from jngis.store.base import Store
from jngis.store.postgis import POSTGRES_URL, PostGISStore
from jngis.store.sqlite import SQLiteStore
from jngis.workorders import CALENDAR, WorkCalendar

__all__ = ["open_store", "require_store"]


def open_store(url_or_path: str | os.PathLike, *, calendar: WorkCalendar = CALENDAR, create: bool = True,
               **options: Any) -> Store:
    """Open a store: ``postgresql://...`` -> :class:`PostGISStore`, a path -> :class:`SQLiteStore`.

    Parameters
    ----------
    url_or_path : str or path
        A GeoPackage path or a ``postgresql://`` URL.
    calendar : WorkCalendar
        Working days for deadlines.
    create : bool
        Start an empty store when none is there (default). With False, a
        missing file, or a database without the store's tables, raises
        :class:`~jngis.errors.NotFoundError` naming it, and nothing is created.
    **options
        Passed to the store (``import_history=``, ``progress=`` for SQLite).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = open_store(pathlib.Path(tempfile.mkdtemp()) / "empty.gpkg")
    >>> store.layer_names(), store.crs.to_epsg()
    ([], 4548)
    >>> store.close()
    """
    if not isinstance(create, bool):
        raise InputTypeError(f"open_store: create is a {type(create).__name__}; expected True or False")
    if isinstance(url_or_path, str) and POSTGRES_URL.match(url_or_path):
        return PostGISStore(url_or_path, calendar=calendar, create=create, **options)
    if not isinstance(url_or_path, (str, os.PathLike)):
        raise InputTypeError(f"open_store: url_or_path is a {type(url_or_path).__name__}; "
                             "expected a GeoPackage path or a postgresql:// URL")
    return SQLiteStore(url_or_path, calendar=calendar, create=create, **options)


def require_store(url_or_path: str | os.PathLike) -> None:
    """Raise :class:`~jngis.errors.NotFoundError` unless a store is at ``url_or_path`` (creates nothing).

    For commands that are handed a store and must not create one by accident
    (``jngis serve --store``).
    """
    options: dict[str, Any] = {} if isinstance(url_or_path, str) and POSTGRES_URL.match(url_or_path) else {"import_history": False}
    open_store(url_or_path, create=False, **options).close()
