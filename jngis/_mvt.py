"""A hand-written Mapbox Vector Tile (spec 2.1) protobuf encoder over numpy arrays.

Private to :mod:`jngis.tiles`. The per-tile work (gathering a tile's features
from the per-zoom ragged arrays, cleaning and orienting rings, MoveTo / LineTo /
ClosePath command integers with zigzag deltas, tag remapping, varints and
length prefixes) runs in a few numba-compiled loops over the whole tile: a
numpy-only version spent most of a small tile's time in the overhead of a few
hundred array calls.

Geometries come in as shapely-style ragged arrays of integer tile coordinates
(``coords`` (N, 2) with ring / polygon / feature offsets), Y pointing down.
"""

from __future__ import annotations

import struct

import numpy as np
from numba import njit  # a requirement of jngis: these loops are only fast compiled

# Protobuf field keys, (field number << 3) | wire type.
_TILE_LAYERS = 0x1A  # Tile.layers = 3, length-delimited
_LAYER_NAME = 0x0A  # Layer.name = 1
_LAYER_KEYS = 0x1A  # Layer.keys = 3
_LAYER_VALUES = 0x22  # Layer.values = 4
_LAYER_EXTENT = 0x28  # Layer.extent = 5, varint
_LAYER_VERSION = 0x78  # Layer.version = 15, varint

POINT = 1
POLYGON = 3

_MOVE_TO_1 = (1 << 3) | 1  # command id 1, count 1


def varint(value: int) -> bytes:
    """One protobuf varint (scalar helper for headers)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(values: np.ndarray) -> np.ndarray:
    """Zigzag-map signed integers to unsigned (0, -1, 1, -2 -> 0, 1, 2, 3)."""
    values = np.asarray(values, dtype=np.int64)
    return ((values << 1) ^ (values >> 63)).astype(np.uint64)


def ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, e)`` for every pair, without a Python loop."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(ends, dtype=np.int64) - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    return np.repeat(starts - offsets, lengths) + np.arange(total, dtype=np.int64)


@njit(cache=True, nogil=True)
def take(coords, rings, polygons, features, index):
    """The features ``index`` of a multipolygon ragged array, as a new ragged array."""
    n_polygons = 0
    n_rings = 0
    n_coords = 0
    for f in index:
        for p in range(features[f], features[f + 1]):
            n_polygons += 1
            for r in range(polygons[p], polygons[p + 1]):
                n_rings += 1
                n_coords += rings[r + 1] - rings[r]
    out_coords = np.empty((n_coords, 2), dtype=np.int64)
    out_rings = np.empty(n_rings + 1, dtype=np.int64)
    out_polygons = np.empty(n_polygons + 1, dtype=np.int64)
    out_features = np.empty(len(index) + 1, dtype=np.int64)
    out_rings[0] = out_polygons[0] = out_features[0] = 0
    c = 0
    r_out = 0
    p_out = 0
    for i in range(len(index)):
        f = index[i]
        for p in range(features[f], features[f + 1]):
            for r in range(polygons[p], polygons[p + 1]):
                for v in range(rings[r], rings[r + 1]):
                    out_coords[c, 0] = coords[v, 0]
                    out_coords[c, 1] = coords[v, 1]
                    c += 1
                r_out += 1
                out_rings[r_out] = c
            p_out += 1
            out_polygons[p_out] = r_out
        out_features[i + 1] = p_out
    return out_coords, out_rings, out_polygons, out_features


@njit(cache=True, nogil=True)
def _zigzag(value):
    return (value << 1) ^ (value >> 63)


@njit(cache=True, nogil=True)
def _clip_edge(src, n, dst, axis, value, keep_above):
    """One Sutherland-Hodgman pass of an open ring against the line ``coord[axis] = value``."""
    other = 1 - axis
    m = 0
    for i in range(n):
        j = i - 1 if i > 0 else n - 1
        cur_in = src[i, axis] >= value if keep_above else src[i, axis] <= value
        prev_in = src[j, axis] >= value if keep_above else src[j, axis] <= value
        if cur_in != prev_in:
            t = (value - src[j, axis]) / (src[i, axis] - src[j, axis])
            dst[m, axis] = value
            dst[m, other] = np.int64(np.rint(src[j, other] + t * (src[i, other] - src[j, other])))
            m += 1
        if cur_in:
            dst[m, 0] = src[i, 0]
            dst[m, 1] = src[i, 1]
            m += 1
    return m


@njit(cache=True, nogil=True)
def _emit_ring(out, pos, ring, n, exterior, cursor):
    """Append one ring's commands; returns the new position (``pos`` when it is dropped).

    Repeated consecutive vertices are dropped; a ring with fewer than three
    distinct vertices or zero area is dropped; exteriors get positive area in
    tile coordinates (clockwise on screen), holes negative, as the spec asks.
    """
    m = 0
    for k in range(n):
        if m > 0 and ring[k, 0] == ring[m - 1, 0] and ring[k, 1] == ring[m - 1, 1]:
            continue
        ring[m, 0] = ring[k, 0]
        ring[m, 1] = ring[k, 1]
        m += 1
    while m > 1 and ring[m - 1, 0] == ring[0, 0] and ring[m - 1, 1] == ring[0, 1]:
        m -= 1
    if m < 3:
        return pos
    area2 = 0
    for k in range(m):
        j = k + 1 if k + 1 < m else 0
        area2 += ring[k, 0] * ring[j, 1] - ring[j, 0] * ring[k, 1]
    if area2 == 0:
        return pos
    reverse = area2 < 0 if exterior else area2 > 0
    out[pos] = 9  # MoveTo, count 1
    out[pos + 1] = _zigzag(ring[0, 0] - cursor[0])
    out[pos + 2] = _zigzag(ring[0, 1] - cursor[1])
    cursor[0] = ring[0, 0]
    cursor[1] = ring[0, 1]
    out[pos + 3] = 2 | ((m - 1) << 3)  # LineTo, count m - 1
    q = pos + 4
    for k in range(1, m):
        j = m - k if reverse else k
        out[q] = _zigzag(ring[j, 0] - cursor[0])
        out[q + 1] = _zigzag(ring[j, 1] - cursor[1])
        cursor[0] = ring[j, 0]
        cursor[1] = ring[j, 1]
        q += 2
    out[q] = 15  # ClosePath, count 1
    return q + 1


@njit(cache=True, nogil=True)
def _sizes(rings, polygons, features, candidates):
    """The longest ring and the total vertex count of the ``candidates`` features."""
    longest = 1
    total = 0
    for f in candidates:
        for p in range(features[f], features[f + 1]):
            for r in range(polygons[p], polygons[p + 1]):
                n = rings[r + 1] - rings[r]
                longest = max(longest, n)
                total += n
    return longest, total


@njit(cache=True, nogil=True)
def polygon_tile(coords, rings, polygons, features, bounds, candidates, x0, y0, x1, y1,
                 origin_x, origin_y):
    """MVT polygon commands of the ``candidates`` features cut to the rectangle x0..x1, y0..y1.

    ``coords`` are integer world pixels of one zoom (closed rings, shapely
    style) with ring / polygon / feature offsets and per-feature ``bounds``.
    Features whose box lies inside the rectangle are copied; the others are
    clipped ring by ring (Sutherland-Hodgman, intersections rounded to the
    integer grid). Output coordinates are shifted by ``-origin``.

    Returns the command integers of all candidates one after another and how
    many belong to each candidate (0: nothing of it in the rectangle).
    """
    longest, total = _sizes(rings, polygons, features, candidates)
    # Each half-plane pass at most doubles a ring (n vertices + at most n crossings).
    first = np.empty((16 * longest + 16, 2), dtype=np.int64)
    second = np.empty((16 * longest + 16, 2), dtype=np.int64)
    out = np.empty(2 * total + 8 * len(candidates) + 64, dtype=np.int64)
    counts = np.zeros(len(candidates), dtype=np.int64)
    cursor = np.zeros(2, dtype=np.int64)
    pos = 0
    # One loop over features, polygons and rings: a kernel call per feature cost 10-50% of a tile.
    for i in range(len(candidates)):
        f = candidates[i]
        if bounds[f, 2] < x0 or bounds[f, 0] > x1 or bounds[f, 3] < y0 or bounds[f, 1] > y1:
            continue
        inside = bounds[f, 0] >= x0 and bounds[f, 2] <= x1 and bounds[f, 1] >= y0 \
            and bounds[f, 3] <= y1
        start = pos
        cursor[0] = 0
        cursor[1] = 0
        for p in range(features[f], features[f + 1]):
            for r in range(polygons[p], polygons[p + 1]):
                n = rings[r + 1] - rings[r] - 1  # without the closing vertex
                for k in range(n):
                    first[k, 0] = coords[rings[r] + k, 0]
                    first[k, 1] = coords[rings[r] + k, 1]
                if not inside:
                    n = _clip_edge(first, n, second, 0, x0, True)
                    n = _clip_edge(second, n, first, 0, x1, False)
                    n = _clip_edge(first, n, second, 1, y0, True)
                    n = _clip_edge(second, n, first, 1, y1, False)
                for k in range(n):
                    first[k, 0] -= origin_x
                    first[k, 1] -= origin_y
                if pos + 2 * n + 3 > len(out):  # clipping added vertices: grow the output
                    grown = np.empty(2 * len(out) + 2 * n + 3, dtype=np.int64)
                    grown[:pos] = out[:pos]
                    out = grown
                new = _emit_ring(out, pos, first, n, r == polygons[p], cursor)
                if new == pos and r == polygons[p]:
                    break  # no exterior left: the polygon and its holes are gone
                pos = new
        counts[i] = pos - start
    return out[:pos], counts


@njit(cache=True, nogil=True)
def tag_pairs(table, features):
    """Tags of the features ``features`` of a layer's value table (global value ids, -1 missing).

    Returns the packed tag integers (key index, tile-local value index) of every
    feature one after another, their count per feature, and the global value
    ids the tile uses in the order of their local index.
    """
    n_columns = table.shape[1]
    values = np.empty(len(features) * n_columns, dtype=np.int64)
    counts = np.zeros(len(features), dtype=np.int64)
    m = 0
    for i in range(len(features)):
        for j in range(n_columns):
            value = table[features[i], j]
            if value >= 0:
                values[m] = value
                m += 1
                counts[i] += 2
    used = np.unique(values[:m])
    pairs = np.empty(2 * m, dtype=np.int64)
    m = 0
    for i in range(len(features)):
        for j in range(n_columns):
            value = table[features[i], j]
            if value >= 0:
                pairs[2 * m] = j
                pairs[2 * m + 1] = np.searchsorted(used, value)
                m += 1
    return pairs, counts, used


def point_commands(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MVT command integers for single points: MoveTo(1) x y per feature."""
    coords = np.asarray(coords, dtype=np.int64)
    ints = np.empty((len(coords), 3), dtype=np.int64)
    ints[:, 0] = _MOVE_TO_1
    ints[:, 1:] = zigzag(coords).astype(np.int64)
    return ints.ravel(), np.full(len(coords), 3, dtype=np.int64)


@njit(cache=True, nogil=True)
def _varint_length(value):
    n = 1
    while value >= 128:
        value >>= 7
        n += 1
    return n


@njit(cache=True, nogil=True)
def _put_varint(out, pos, value):
    while value >= 128:
        out[pos] = np.uint8((value & 127) | 128)
        value >>= 7
        pos += 1
    out[pos] = np.uint8(value)
    return pos + 1


@njit(cache=True, nogil=True)
def encode_features(ids, geom_type, geom_ints, geom_counts, tag_ints, tag_counts):
    """The ``Layer.features`` fields (key, length, Feature message) of every feature.

    All inputs are int64 (ids below 2**63, command integers already zigzagged).
    """
    n = len(ids)
    geom_bytes = np.zeros(n, dtype=np.int64)
    tag_bytes = np.zeros(n, dtype=np.int64)
    body = np.zeros(n, dtype=np.int64)
    g = 0
    t = 0
    total = 0
    for f in range(n):
        size = 0
        for _ in range(geom_counts[f]):
            size += _varint_length(geom_ints[g])
            g += 1
        geom_bytes[f] = size
        size = 0
        for _ in range(tag_counts[f]):
            size += _varint_length(tag_ints[t])
            t += 1
        tag_bytes[f] = size
        body[f] = (1 + _varint_length(ids[f]) + 1 + _varint_length(tag_bytes[f]) + tag_bytes[f]
                   + 2 + 1 + _varint_length(geom_bytes[f]) + geom_bytes[f])
        total += 1 + _varint_length(body[f]) + body[f]
    out = np.empty(total, dtype=np.uint8)
    pos = 0
    g = 0
    t = 0
    for f in range(n):
        out[pos] = 0x12  # Layer.features
        pos = _put_varint(out, pos + 1, body[f])
        out[pos] = 0x08  # Feature.id
        pos = _put_varint(out, pos + 1, ids[f])
        out[pos] = 0x12  # Feature.tags, packed
        pos = _put_varint(out, pos + 1, tag_bytes[f])
        for _ in range(tag_counts[f]):
            pos = _put_varint(out, pos, tag_ints[t])
            t += 1
        out[pos] = 0x18  # Feature.type
        out[pos + 1] = np.uint8(geom_type)
        out[pos + 2] = 0x22  # Feature.geometry, packed
        pos = _put_varint(out, pos + 3, geom_bytes[f])
        for _ in range(geom_counts[f]):
            pos = _put_varint(out, pos, geom_ints[g])
            g += 1
    return out


def value_message(value) -> bytes:
    """The ``Layer.values`` entry (key, length, Value message) of one property value."""
    if isinstance(value, (bool, np.bool_)):
        body = bytes([0x38, 1 if value else 0])
    elif isinstance(value, (int, np.integer)):
        value = int(value)
        if value >= 0:
            body = b"\x28" + varint(value)
        else:
            body = b"\x30" + varint((value << 1) ^ (value >> 63))
    elif isinstance(value, (float, np.floating)):
        body = b"\x19" + struct.pack("<d", float(value))
    else:
        text = str(value).encode("utf-8")
        body = b"\x0a" + varint(len(text)) + text
    return bytes([_LAYER_VALUES]) + varint(len(body)) + body


def value_messages(values) -> list[bytes]:
    """:func:`value_message` of many values; short strings (the usual codes and names)
    take a fast path, 5-8x quicker than one call per value (a layer's tags are
    encoded at a server's start)."""
    out = []
    for value in values:
        if isinstance(value, str):
            text = value.encode("utf-8")
            n = len(text)
            if n < 126:  # both lengths fit one varint byte
                out.append(bytes((_LAYER_VALUES, n + 2, 0x0A, n)) + text)
                continue
        out.append(value_message(value))
    return out


def key_message(key: str) -> bytes:
    text = key.encode("utf-8")
    return bytes([_LAYER_KEYS]) + varint(len(text)) + text


def encode_layer(name: bytes, ids: np.ndarray, geom_type: int, geom_ints: np.ndarray,
                 geom_counts: np.ndarray, tag_ints: np.ndarray, tag_counts: np.ndarray,
                 keys: bytes, values: bytes, extent: int = 4096) -> bytes:
    """One complete single-layer tile (``Tile.layers`` field included).

    ``ids``, ``geom_counts`` and ``tag_counts`` have one entry per feature;
    ``geom_ints`` / ``tag_ints`` hold those features' integers one after
    another. ``keys`` and ``values`` are the already encoded key and value
    fields of the layer.
    """
    if len(ids) == 0:
        return b""
    features = encode_features(
        np.ascontiguousarray(ids, dtype=np.int64), geom_type,
        np.ascontiguousarray(geom_ints, dtype=np.int64),
        np.ascontiguousarray(geom_counts, dtype=np.int64),
        np.ascontiguousarray(tag_ints, dtype=np.int64),
        np.ascontiguousarray(tag_counts, dtype=np.int64)).tobytes()
    layer = b"".join((
        bytes([_LAYER_VERSION, 2]),
        bytes([_LAYER_NAME]), varint(len(name)), name,
        features,
        keys,
        values,
        bytes([_LAYER_EXTENT]), varint(extent),
    ))
    return bytes([_TILE_LAYERS]) + varint(len(layer)) + layer
