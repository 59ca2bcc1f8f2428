"""The gateway's threads share two malloc arenas (issue 18: RSS grew under mixed traffic).

Counted for real: in a child process with glibc's own `malloc_info`, and in a running gateway
process from its memory map after many SQLite connections have worked at once.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.workflows import WorkflowExecutionList, WorkflowExecutionListResult
from tests.support.gateway import start_gateway_process

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc arenas")

#: Eight threads allocate at once, then the arenas are counted with glibc's malloc_info.
COUNT_ARENAS = """
import ctypes, os, sys, tempfile, threading
from hearth.malloc import limit_malloc_arenas
if sys.argv[1] == "limit" and not limit_malloc_arenas():
    sys.exit("not glibc")
start = threading.Barrier(8)
done = threading.Barrier(9)
def work():
    start.wait()
    kept = [bytearray(4000) for _ in range(500)]  # above pymalloc's 512 bytes: malloc's
    done.wait()
    del kept
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
done.wait()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
fp = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, fp)
libc.fclose(fp)
print(open(path).read().count("<heap nr="))
os.unlink(path)
for t in threads:
    t.join()
"""


def arenas(mode: str) -> int:
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", COUNT_ARENAS, mode], capture_output=True, text=True, env=env
    )
    if done.returncode != 0:
        pytest.skip(f"cannot count arenas here: {done.stderr.strip()[-200:]}")
    return int(done.stdout.strip())


def test_limit_caps_the_arenas_threads_get() -> None:
    assert arenas("free") > 2  # glibc's default: an arena per thread that allocates
    assert arenas("limit") <= 2


def thread_heaps(pid: int) -> int:
    """glibc's thread arenas live in heaps aligned to 64 MiB: count those mappings."""
    heaps = 0
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5:  # a file or [heap]/[stack]: not an arena
            continue
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start % (64 << 20) == 0 and end - start <= 64 << 20 and re.match("rw", fields[1]):
            heaps += 1
    return heaps


async def test_gateway_threads_share_two_arenas(data_dir: Path) -> None:
    gateway = start_gateway_process(data_dir)
    try:
        clients = [GatewayClient(gateway.url, gateway.token) for _ in range(4)]
        for client in clients:
            await client.connect()
        # Many reads at once: the SQLite pool opens overflow connections, each on a thread.
        for _ in range(5):
            await asyncio.gather(
                *(
                    client.request(
                        WorkflowExecutionList(id=client.next_id()), WorkflowExecutionListResult
                    )
                    for client in clients
                    for _ in range(20)
                )
            )
        heaps = thread_heaps(gateway.process.pid)
        for client in clients:
            await client.close()
    finally:
        gateway.stop()
    # The one arena all threads share (the main one is [heap]); the count is of 64 MiB-aligned
    # anonymous mappings, and one of another kind can land on that alignment, so 2 is allowed.
    # Without the cap (MALLOC_ARENA_MAX=16) the same load gives 15 here.
    assert heaps <= 2
