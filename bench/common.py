"""What the benchmarks share: child processes, the gateway's endpoint, percentiles, reports.

Why one module: every benchmark that compares Hearth with a baseline starts servers in child
processes (so nothing under test shares an event loop with the load generator), must never leave
one running, and reports with the same nearest-rank percentiles and the same machine line. One
implementation of each keeps those rules the same in every benchmark.

Why it imports only the standard library at module level: the benchmarks run their own file again
as child processes (echo server, fake model, APScheduler, DBOS), and what a child imports sits on
its heap while it is measured. `psutil` and `websockets` are imported where they are used, so a
child that does not use them does not carry them because of this module.

The scripts are run as `python bench/x.py`, so this directory is on `sys.path` and they import
it as `common`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MAX_FRAME = 1024 * 1024  # the largest WebSocket frame a benchmark client accepts


# --------------------------------------------------------------------------- child processes


@dataclass
class Child:
    """A process under test or serving the test, with its output in a file.

    The output goes to a file rather than a pipe because a pipe nobody reads could block it, and
    because its tail is what explains a failure (`log_tail`).
    """

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    spawned: float  # perf_counter at spawn: start-up times are measured from here
    tail_lines: int = 20  # how much of the log a failure shows

    def log_tail(self, lines: int | None = None) -> str:
        """The last lines of the child's output, or `(no log)` if the file cannot be read."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-(lines or self.tail_lines) :])

    def cpu_seconds(self) -> float:
        """User + system CPU of the process so far (it is the process itself, no shell)."""
        import psutil  # type: ignore[import-untyped, unused-ignore]

        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def rss(self) -> int:
        """Resident set size now, in bytes."""
        import psutil  # type: ignore[import-untyped, unused-ignore]

        return int(psutil.Process(self.process.pid).memory_info().rss)

    def check_alive(self) -> None:
        """Fail with the child's log if it has exited: a dead child would make figures lie."""
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )


def spawn(
    name: str,
    args: list[str],
    workdir: Path,
    started: list[Child],
    *,
    env: dict[str, str] | None = None,
    tail_lines: int = 20,
) -> Child:
    """Start `python ARGS` from the repository root with its output in `WORKDIR/NAME.log`.

    The child joins `started` before anything can fail, so the caller always stops it.
    """
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, *args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
    child = Child(name, process, log_path, time.perf_counter(), tail_lines)
    started.append(child)
    return child


def script(path: str, *args: str) -> list[str]:
    """Arguments that run the script at `path` (a benchmark's `__file__`) again, in a child mode."""
    return [str(Path(path).resolve()), *args]


def gateway_args(data_dir: Path) -> list[str]:
    """`python -m hearth serve --port 0`, as a person starts it; the port lands in runtime.json."""
    return ["-m", "hearth", "serve", "--data-dir", str(data_dir), "--port", "0"]


def stop(child: Child, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: no child outlives the benchmark."""
    process = child.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace)


@contextlib.contextmanager
def stopping(grace: float) -> Iterator[list[Child]]:
    """A list to spawn into; every child in it is stopped on the way out, also on error or Ctrl-C.

    Children are stopped in reverse order, so a server stops before what it depends on.
    """
    started: list[Child] = []
    try:
        yield started
    finally:
        for child in reversed(started):
            stop(child, grace)


def wait_for_file(child: Child, path: Path, timeout: float) -> str:
    """The file's text once it exists; fails with the child's log if it dies or is too slow.

    Children write such files atomically (`write_json_atomic`), so existing means complete.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(
                f"{child.name} exited with {child.process.returncode} before it was ready:\n"
                + child.log_tail()
            )
        with contextlib.suppress(FileNotFoundError):
            return path.read_text(encoding="utf-8")
        time.sleep(0.05)
    raise RuntimeError(f"{child.name} not ready within {timeout:.0f} s:\n{child.log_tail()}")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file, so a reader polling for `path` never sees half of it."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def stop_signal() -> asyncio.Future[None]:
    """A future resolved by SIGTERM or SIGINT: how a child server knows `stop` asked it to end."""
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[None] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set_result, None)
    return stopped


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit so the `finally` blocks that stop children still run.

    Install it with `signal.signal(signal.SIGTERM, exit_on_sigterm)` in the measuring process.
    """
    raise SystemExit(128 + signum)


# --------------------------------------------------------------------------- the gateway


@dataclass(frozen=True)
class Endpoint:
    """Where a client reaches a running gateway, and the token it must present."""

    url: str
    token: str


def gateway_endpoint(data_dir: Path) -> Endpoint:
    """The WebSocket URL from `runtime.json` and the token from `gateway.token`.

    Raises OSError or ValueError while the gateway has not written them (yet).
    """
    runtime = json.loads((data_dir / "runtime.json").read_text(encoding="utf-8"))
    token = (data_dir / "gateway.token").read_text(encoding="utf-8").strip()
    return Endpoint(f"ws://{HOST}:{int(runtime['port'])}/ws", token)


def wait_for_gateway(child: Child, data_dir: Path, timeout: float) -> Endpoint:
    """Wait until the gateway child has written `runtime.json`, then read its endpoint."""
    wait_for_file(child, data_dir / "runtime.json", timeout)
    return gateway_endpoint(data_dir)


async def say_hello(ws: ClientConnection, token: str, timeout: float) -> None:
    """The protocol's `hello` -> `hello.ok`; raises if the reply is anything else."""
    await ws.send(json.dumps({"type": "hello", "id": "h", "protocol": 1, "token": token}))
    async with asyncio.timeout(timeout):
        reply: dict[str, Any] = json.loads(await ws.recv())
    if reply.get("id") != "h":
        raise RuntimeError(f"expected the reply to 'h', got {reply}")
    if reply.get("type") != "hello.ok":
        raise RuntimeError(f"hello refused: {reply}")


async def open_session(
    url: str,
    token: str,
    *,
    open_timeout: float,
    reply_timeout: float,
    close_timeout: float = 10.0,
) -> ClientConnection:
    """Connect without compression or proxy and say hello; closes the socket if that fails.

    No compression, so the client's own cost stays as small as possible; no proxy, so an
    environment's proxy settings cannot put anything between the client and the server.
    """
    from websockets.asyncio.client import connect

    ws = await connect(
        url,
        compression=None,
        max_size=MAX_FRAME,
        proxy=None,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
    )
    try:
        await say_hello(ws, token, reply_timeout)
    except BaseException:
        await ws.close()
        raise
    return ws


# --------------------------------------------------------------------------- figures and reports


def percentile(ordered: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list (NaN when empty).

    Nearest rank rather than interpolation: every figure reported is one that was measured.
    """
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def package_version(name: str) -> str | None:
    """The installed version of a distribution, None if it is not installed (optional extras)."""
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def machine(**versions: Any) -> dict[str, Any]:
    """The `machine` block of a summary: CPUs, Python, platform, then what the caller adds.

    Figures from shared machines only mean something next to what they ran on.
    """
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def machine_line(info: dict[str, Any], *packages: tuple[str, str]) -> str:
    """`N CPUs, Python X.Y.Z, <label> <version>, ...` from a `machine` block.

    `packages` are (label, key) pairs: the label as printed, the key in `info`.
    """
    parts = [f"{info['cpus']} CPUs", f"Python {info['python']}"]
    parts += [f"{label} {info[key]}" for label, key in packages]
    return ", ".join(parts)


def verdict(met: bool) -> str:
    """How a target's outcome is printed."""
    return "met" if met else "NOT MET"


def emit(
    summary: dict[str, Any], as_json: bool, print_text: Callable[[dict[str, Any]], None]
) -> None:
    """Print the summary as indented JSON (`--json`) or as the benchmark's text report."""
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        print_text(summary)
