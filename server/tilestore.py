"""Encoded tiles shared by every server process on a machine: one memory-mapped LMDB file.

``jngis serve --workers N`` starts N processes, and each used to cut, gzip
and keep every tile it was asked for in a cache of its own. Here a tile is
encoded once, by whichever process is asked for it first, and written with
its ETag into an LMDB environment (``encoded.lmdb`` beside the per-zoom tile
geometry); every process maps the same file, so a warm tile is read from the
one copy in the operating system's page cache, and a restart on the same
layers starts with warm tiles.

A tile is keyed by a fingerprint of what it is cut from: the layer's
features (geometry and every column), the tiling options of the server and
the source of the tile code, so a changed layer, option or encoder never
serves an old tile, and no entry needs invalidating. The file is bounded:
when it is full it is emptied and tiles are cut again (it is a cache).

LMDB readers take no lock and never wait for a writer, so the lean tile path
(:class:`server.routes.tiles.LeanTiles`) reads it on the event loop.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, NamedTuple

import geopandas as gpd
import lmdb
import pandas as pd
import shapely

from jngis import __version__
from jngis.cache import Cache

log = logging.getLogger("jngis.server")

#: Upper bound of the file (LMDB's map size): every tile z8-16 of the sample city's layers
#: takes well under a tenth of it; a full file is emptied and refilled.
MAX_BYTES = 1 << 30
#: Layers whose fingerprint a process keeps (a few versions' worth of the seven tiled layers).
FINGERPRINTS = 64
#: Subfolder of the tile geometry folder holding the environment.
FOLDER = "encoded.lmdb"


class Kept(NamedTuple):
    """A tile as kept: its ETag and its gzip bytes (``b""``: the tile holds no feature)."""

    etag: bytes
    gzip: bytes


def _code_hash() -> bytes:
    """Hash of the source of the tile code and the server's tiling options (what a tile's bytes
    depend on besides the features)."""
    import jngis.tiles
    from . import switch

    digest = hashlib.blake2b(__version__.encode(), digest_size=16)
    for path in sorted(Path(jngis.tiles.__file__).parent.glob("*.py")) + [Path(jngis.__file__).parent / "_mvt.py"]:
        digest.update(path.read_bytes())
    digest.update(repr((switch.MINZOOM, switch.MAXZOOM, switch.DETAIL_ZOOM)).encode())
    return digest.digest()


def fingerprint(name: str, layer: gpd.GeoDataFrame, code: bytes) -> bytes:
    """A stable hash of one tiled layer: the same in every process serving the same features."""
    digest = hashlib.blake2b(code, digest_size=16)
    digest.update(name.encode())
    digest.update(str(layer.crs).encode())
    digest.update(repr([(str(c), str(t)) for c, t in layer.dtypes.items()]).encode())
    digest.update(b"".join(shapely.to_wkb(layer.geometry.values)))
    columns = pd.DataFrame(layer.drop(columns=layer.geometry.name))
    digest.update(pd.util.hash_pandas_object(columns, index=True).values.tobytes())
    return digest.hexdigest().encode()


class SharedTiles:
    """The encoded tiles of one folder, for every process on the machine (:func:`shared_tiles`)."""

    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        # A cache: the last writes may be lost in a crash of the machine, never served half-written
        # (LMDB's copy-on-write pages); no fsync per tile.
        self.env = lmdb.open(str(folder), map_size=max_bytes, sync=False, metasync=False,
                             readahead=False, max_readers=1024)
        self.folder = folder
        self._code = _code_hash()
        #: id(layer) -> (layer, fingerprint): the layer is held, so its id is not reused meanwhile.
        self._prints: Cache[tuple[gpd.GeoDataFrame, bytes]] = Cache(max_bytes=FINGERPRINTS)

    def known(self, layer: gpd.GeoDataFrame) -> bytes | None:
        """The fingerprint of ``layer`` if this process has computed it (never computes)."""
        entry = self._prints.get(id(layer))
        return entry[1] if entry is not None and entry[0] is layer else None

    def fingerprint(self, name: str, layer: gpd.GeoDataFrame) -> bytes:
        """The fingerprint of ``layer`` (computed once per process and layer: milliseconds)."""
        entry = self._prints.get_or_insert(id(layer), lambda: (layer, fingerprint(name, layer, self._code)))
        if entry[0] is not layer:  # an id reused after the layer held under it was let go
            self._prints.invalidate(id(layer))
            return self.fingerprint(name, layer)
        return entry[1]

    def get(self, key: bytes) -> Kept | None:
        """The tile kept under ``key`` (:meth:`key`), or None."""
        with self.env.begin() as txn:
            value = txn.get(key)
        if value is None:
            return None
        etag, _, packed = value.partition(b"\n")
        return Kept(etag, packed)

    def put(self, key: bytes, etag: str, gzip: bytes) -> None:
        """Keep a tile (a tile already kept is left as it is); a full file is emptied first."""
        value = etag.encode() + b"\n" + gzip
        try:
            self._put(key, value)
        except lmdb.MapFullError:
            log.info("the shared tile file %s is full: emptied", self.folder)
            with self.env.begin(write=True) as txn:
                txn.drop(self.env.open_db(), delete=False)
            self._put(key, value)

    def _put(self, key: bytes, value: bytes) -> None:
        with self.env.begin(write=True) as txn:
            txn.put(key, value, overwrite=False)

    @staticmethod
    def key(fingerprint: bytes, z: int, x: int, y: int) -> bytes:
        return b"%s/%d/%d/%d" % (fingerprint, z, x, y)

    def stat(self) -> dict[str, Any]:
        """Entries and bytes in use (LMDB's page counts)."""
        info, stat = self.env.info(), self.env.stat()
        return {"tiles": stat["entries"], "bytes": (info["last_pgno"] + 1) * stat["psize"],
                "max_bytes": info["map_size"]}


#: One environment per folder and process (LMDB refuses to open one twice in a process).
_OPEN: Cache[SharedTiles] = Cache()


def shared_tiles(geometry_dir: Path) -> SharedTiles | None:
    """The shared tiles kept beside the tile geometry in ``geometry_dir``; None if the file cannot
    be opened there (a read-only folder): then every process keeps its own tiles, as before."""
    folder = (Path(geometry_dir) / FOLDER).resolve()
    try:
        return _OPEN.get_or_insert(str(folder), lambda: SharedTiles(folder))
    except (OSError, lmdb.Error) as exc:
        log.warning("no shared tile file in %s (%s): each process keeps its own tiles", folder, exc)
        return None
