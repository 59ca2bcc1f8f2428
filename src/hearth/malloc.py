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

import asyncio
import ctypes
import os
import sys
import time
from collections.abc import Callable
from typing import cast

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


def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return cast("Callable[[int], int]", trim)


class IdleTrim:
    """After a busy spell, hands the memory it freed back to the system once the process is quiet.

    A burst (a hundred executions in flight, a large listing) raises the heap's high-water mark;
    what it frees afterwards stays in glibc's free lists, so the resident size after the load
    stays near the peak (the soak measured +8.5 to +11.7 MB idle after its final load).
    `malloc_trim(0)` returns the free pages of every arena (with it: +0.7 and +2.0 MB). It walks
    every arena under its lock, so it runs once per quiet spell, never during load: a second of
    the process's CPU time tells busy (over `busy` of a core) from quiet (under `quiet`; an idle
    gateway still ticks its schedules and leases, a few per cent of a core).
    """

    def __init__(
        self,
        *,
        busy: float = 0.2,
        quiet: float = 0.06,
        cpu: Callable[[], float] = time.process_time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._trim = _malloc_trim()
        self._cpu = cpu
        self._clock = clock
        self._busy = busy
        self._quiet = quiet
        self._last: tuple[float, float] | None = None
        self._dirty = False
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def due(self) -> bool:
        """Called about once a second: True when a busy spell has just gone quiet."""
        now, cpu = self._clock(), self._cpu()
        last, self._last = self._last, (now, cpu)
        if last is None or now <= last[0]:
            return False
        share = (cpu - last[1]) / (now - last[0])
        if share >= self._busy:
            self._dirty = True
        elif self._dirty and share <= self._quiet:
            self._dirty = False
            return True
        return False

    async def step(self) -> float:
        """One check (the body of a `SupervisedLoop`); trims on a thread of its own."""
        if self._trim is not None and self.due():
            await asyncio.to_thread(self._trim, 0)
            self.trims += 1
        return 1.0
