"""The C allocator's settings for a long-running gitopsguard process (glibc's malloc; elsewhere nothing).

glibc gives each thread that allocates at the same time as another an arena of its own, up to 8 per core, and
keeps what an arena once held: a ``run`` has about 20 threads (watches, the HTTP event loop, the live scan,
admission), each of which parses whole answers from the API server, so every arena grows to the largest answer
its thread ever parsed and stays there. Two arenas bound that to two such peaks (measured in bench/README.md,
"Where the memory goes"). ``trim`` hands the free pages at the top of each arena back after a large pass.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from functools import cache

M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
ARENAS = 2


@cache
def _glibc() -> ctypes.CDLL | None:
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # musl, macOS: another allocator
            return None
    except (ValueError, OSError):  # the name is unknown off glibc
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:  # no C library to load: nothing to tune
        return None


def bound_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc arenas from now on (call before threads start: an arena is never given back);
    whether glibc took the setting."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Give the free memory of every arena back to the system; whether any was given back."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)
