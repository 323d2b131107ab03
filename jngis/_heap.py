"""Give the C heap's free pages back to the system after a large transient (glibc ``malloc_trim``).

glibc keeps memory freed inside its heap for reuse. After a read that built
and dropped a large transient (a whole city's orders, every ~5 minutes in a
server's grid table), that memory stays resident although nothing uses it:
:func:`trim` returns the free pages. Off glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.cache
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def trim() -> bool:
    """Return the heap's free pages to the system; whether anything was returned (False off glibc).

    Examples
    --------
    >>> isinstance(trim(), bool)
    True
    """
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
