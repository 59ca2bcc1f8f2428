"""How many malloc arenas the gateway process may use (glibc), and why it matters.

glibc gives each thread that allocates its own arena, up to eight per core, and an arena keeps
what is freed into it for later reuse; it returns memory to the system only from the top of a
heap. The gateway allocates on many threads: aiosqlite runs every SQLite connection on a thread
of its own (the pool opens and closes overflow connections, each on a new thread, whenever
more requests read at once than it keeps), and there are the SQLite writer, the WAL
checkpointer and the template renderers. SQLite's page cache, its prepared statements, and the
rows and strings built on those threads land in up to sixteen arenas (two cores). With one
kind of request the same sizes are freed and reused; with a mix of them (issue 18: triggers,
lists, chat, schedules and invalid frames together) the free space in each arena fragments
into holes the next mix does not fit, and the resident size ratchets up round after round
although Python's own heap stays flat: +14 MB over 25 000 mixed frames, 124 -> 246 MB over
120 000 in the report, almost all of it in the threads' arenas (`bench/fuzz.py --trace`).

Two arenas share the freed space among all threads: the same fuzz grows by ~2 MB (the
warm-up's caches). The cost, lock contention inside malloc between threads, does not show:
those threads mostly wait for SQLite or for the GIL. An operator's own `MALLOC_ARENA_MAX`
wins; other C libraries (musl, macOS) are left alone.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: `mallopt` parameter number of M_ARENA_MAX in glibc's malloc.h.
M_ARENA_MAX = -8
#: The main arena plus one for all threads together.
ARENAS = 2


def limit_malloc_arenas(count: int = ARENAS) -> bool:
    """Cap glibc's arenas for threads created from now on; True when the cap was set.

    Call it before the process starts threads: arenas that already exist stay.
    """
    if not sys.platform.startswith("linux") or "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, count))
