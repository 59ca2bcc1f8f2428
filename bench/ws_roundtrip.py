"""WebSocket round trip: `ping` -> `pong` through the Hearth gateway vs a bare `websockets` echo.

Why this shape:

- Absolute numbers on shared 2-core machines are noise, so the baseline (a bare `websockets`
  server that answers the same frames with plain `json`) runs in the same run and the result is
  the ratio gateway/echo. The echo server is the floor: WebSocket framing plus JSON, nothing else.
- Both servers run in their own subprocess and the clients in this process, so the server under
  test never shares an event loop with the load generator. The gateway is started exactly as a
  person starts it (`python -m hearth serve`), with its real logging, SQLite and background tasks.
- The client code is identical for both servers: connect, `hello` -> `hello.ok`, then a closed
  loop of `ping` -> `pong`. Only the URL and the token differ.
- Each scenario has a short warm-up that is not measured (connections, lazily built validators),
  and counts only round trips that start and finish inside the measured window.
- CPU time of each process is reported next to the throughput, because at 50 clients either the
  server or this (single-threaded) client process saturates a core, and the figures mean
  something different depending on which one it is.

Run: `.venv/bin/python bench/ws_roundtrip.py [--seconds N] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection, serve

import common
from common import HOST, MAX_FRAME, Child

CLIENT_COUNTS = (1, 50)
TARGET_RATIO = 0.6  # gateway msgs/s >= 0.6x echo msgs/s at TARGET_CLIENTS
TARGET_P99_MS = 20.0  # gateway p99 latency at TARGET_CLIENTS
TARGET_CLIENTS = 50
START_TIMEOUT_S = 30.0  # how long a server may take to come up
REPLY_TIMEOUT_S = 10.0  # one round trip longer than this means the server is stuck
STOP_TIMEOUT_S = 10.0  # SIGTERM grace before SIGKILL


# --------------------------------------------------------------------------- the echo baseline


async def _echo_handler(ws: ServerConnection) -> None:
    """Answer `hello` and `ping` the way the gateway does, with stdlib `json` and nothing else."""
    async for raw in ws:
        frame = json.loads(raw)
        kind = frame.get("type")
        if kind == "hello":
            reply = {"type": "hello.ok", "id": frame["id"], "protocol": 1}
        elif kind == "ping":
            reply = {"type": "pong", "id": frame["id"]}
        else:
            reply = {"type": "error", "id": frame.get("id"), "code": "INVALID_MESSAGE"}
        await ws.send(json.dumps(reply))


async def _serve_echo(port_file: Path) -> None:
    """Serve until SIGTERM; the bound port goes to `port_file` (written atomically)."""
    stop = common.stop_signal()
    async with serve(
        _echo_handler, HOST, 0, compression=None, max_size=MAX_FRAME, ping_interval=20
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        common.write_json_atomic(port_file, {"port": port})
        await stop


# --------------------------------------------------------------------------- server processes


@dataclass
class Server:
    """A server subprocess under test and how a client reaches it."""

    child: Child
    url: str
    token: str

    @property
    def name(self) -> str:
        return self.child.name


def start_echo(workdir: Path, started: list[Child]) -> Server:
    port_file = workdir / "echo.json"
    args = common.script(__file__, "--serve-echo", str(port_file))
    child = common.spawn("echo", args, workdir, started)
    data = json.loads(common.wait_for_file(child, port_file, START_TIMEOUT_S))
    return Server(child, f"ws://{HOST}:{int(data['port'])}/ws", "echo-does-not-check-it")


def start_gateway(workdir: Path, started: list[Child]) -> Server:
    """`python -m hearth serve --port 0`, as a person would run it; the URL from runtime.json."""
    data_dir = workdir / "gateway-data"
    child = common.spawn("gateway", common.gateway_args(data_dir), workdir, started)
    endpoint = common.wait_for_gateway(child, data_dir, START_TIMEOUT_S)
    return Server(child, endpoint.url, endpoint.token)


@contextlib.contextmanager
def servers(workdir: Path) -> Iterator[list[Server]]:
    """Both servers, started in order and always stopped, whatever happens in between."""
    with common.stopping(STOP_TIMEOUT_S) as started:
        echo = start_echo(workdir, started)
        gateway = start_gateway(workdir, started)
        yield [echo, gateway]


# --------------------------------------------------------------------------- the clients


@dataclass(frozen=True)
class Window:
    """The measured interval (perf_counter); round trips outside it are warm-up or overrun."""

    start: float
    end: float


async def _request(ws: ClientConnection, frame: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(frame))
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        reply: dict[str, Any] = json.loads(await ws.recv())
    if reply.get("id") != frame["id"]:
        raise RuntimeError(f"expected the reply to {frame['id']!r}, got {reply}")
    return reply


async def _open(url: str, token: str) -> ClientConnection:
    """Connect and say hello; the same code for the gateway and the echo server."""
    return await common.open_session(
        url, token, open_timeout=START_TIMEOUT_S, reply_timeout=REPLY_TIMEOUT_S, close_timeout=2
    )


async def _client(
    ws: ClientConnection, index: int, window: Window, out: list[float], total: list[int]
) -> None:
    """Closed loop until the window ends; appends the latencies (s) measured inside it.

    `total[0]` counts every round trip, warm-up included, because the CPU time that is divided
    by it is taken over the whole run.
    """
    n = 0
    while True:
        sent = time.perf_counter()
        if sent >= window.end:
            return
        n += 1
        reply = await _request(ws, {"type": "ping", "id": f"{index}-{n}"})
        done = time.perf_counter()
        if reply.get("type") != "pong":
            raise RuntimeError(f"expected pong, got {reply}")
        total[0] += 1
        if sent >= window.start and done <= window.end:
            out.append(done - sent)


@dataclass
class Result:
    """One scenario: one server, one number of concurrent clients."""

    server: str
    clients: int
    round_trips: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_pct: float  # of one core, over warm-up and measured window together
    client_cpu_pct: float
    server_cpu_us_per_msg: float  # server CPU per round trip: hardly depends on who saturates


def _percentile_ms(sorted_s: list[float], q: float) -> float:
    return common.percentile(sorted_s, q) * 1000.0


async def run_scenario(server: Server, clients: int, seconds: float, warmup: float) -> Result:
    """Connect `clients` sockets, run them together, close them; all bounded in time."""
    async with asyncio.timeout(START_TIMEOUT_S + warmup + seconds + REPLY_TIMEOUT_S + 10):
        sockets = await asyncio.gather(*(_open(server.url, server.token) for _ in range(clients)))
        try:
            latencies: list[float] = []
            total = [0]  # every round trip, warm-up included, to divide the CPU time by
            cpu_server = server.child.cpu_seconds()
            cpu_client = time.process_time()
            begun = time.perf_counter()
            window = Window(begun + warmup, begun + warmup + seconds)
            await asyncio.gather(
                *(_client(ws, i, window, latencies, total) for i, ws in enumerate(sockets))
            )
            wall = time.perf_counter() - begun
            cpu_server = server.child.cpu_seconds() - cpu_server
            cpu_client = time.process_time() - cpu_client
        finally:
            await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    latencies.sort()
    return Result(
        server=server.name,
        clients=clients,
        round_trips=len(latencies),
        seconds=seconds,
        msgs_per_s=len(latencies) / seconds,
        p50_ms=_percentile_ms(latencies, 0.50),
        p99_ms=_percentile_ms(latencies, 0.99),
        server_cpu_pct=100.0 * cpu_server / wall,
        client_cpu_pct=100.0 * cpu_client / wall,
        server_cpu_us_per_msg=1e6 * cpu_server / max(total[0], 1),
    )


async def run_all(echo: Server, gateway: Server, seconds: float, warmup: float) -> list[Result]:
    """Echo then gateway at each client count, so both see the same minutes of machine noise."""
    results: list[Result] = []
    for clients in CLIENT_COUNTS:
        for server in (echo, gateway):
            print(f"  {server.name:<8} {clients:>3} client(s) ...", file=sys.stderr, flush=True)
            results.append(await run_scenario(server, clients, seconds, warmup))
    return results


# --------------------------------------------------------------------------- report


def _find(results: list[Result], server: str, clients: int) -> Result:
    return next(r for r in results if r.server == server and r.clients == clients)


def summarize(results: list[Result], seconds: float, warmup: float) -> dict[str, Any]:
    """Ratios and the two targets of the issue, as data (printed as text or as JSON)."""
    ratios = {
        str(n): _find(results, "gateway", n).msgs_per_s / _find(results, "echo", n).msgs_per_s
        for n in CLIENT_COUNTS
    }
    cpu_ratios = {
        str(n): _find(results, "gateway", n).server_cpu_us_per_msg
        / _find(results, "echo", n).server_cpu_us_per_msg
        for n in CLIENT_COUNTS
    }
    gateway = _find(results, "gateway", TARGET_CLIENTS)
    ratio = ratios[str(TARGET_CLIENTS)]
    return {
        "benchmark": "ws_roundtrip",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine(websockets=version("websockets"), uvicorn=version("uvicorn")),
        "seconds": seconds,
        "warmup": warmup,
        "results": [asdict(r) for r in results],
        "ratio_gateway_over_echo": ratios,
        "server_cpu_per_msg_gateway_over_echo": cpu_ratios,
        "targets": {
            "throughput_ratio": {
                "clients": TARGET_CLIENTS,
                "target": TARGET_RATIO,
                "value": ratio,
                "met": ratio >= TARGET_RATIO,
            },
            "gateway_p99_ms": {
                "clients": TARGET_CLIENTS,
                "target": TARGET_P99_MS,
                "value": gateway.p99_ms,
                "met": gateway.p99_ms <= TARGET_P99_MS,
            },
        },
    }


def print_text(summary: dict[str, Any]) -> None:
    machine = summary["machine"]
    print(
        f"WebSocket round trip (ping -> pong, closed loop), {summary['seconds']:g} s per scenario "
        f"after {summary['warmup']:g} s warm-up"
    )
    print(common.machine_line(machine, ("websockets", "websockets"), ("uvicorn", "uvicorn")))
    print()
    print(
        f"{'clients':>7}  {'server':<8} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU':>8} {'cli CPU':>8} {'srv us/msg':>10}"
    )
    for result in summary["results"]:
        print(
            f"{result['clients']:>7}  {result['server']:<8} {result['msgs_per_s']:>9.0f} "
            f"{result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} "
            f"{result['server_cpu_pct']:>7.0f}% {result['client_cpu_pct']:>7.0f}% "
            f"{result['server_cpu_us_per_msg']:>10.1f}"
        )
        if result["server"] == "gateway":
            ratio = summary["ratio_gateway_over_echo"][str(result["clients"])]
            cpu = summary["server_cpu_per_msg_gateway_over_echo"][str(result["clients"])]
            print(
                f"{'':>7}  ratio gateway/echo: {ratio:.2f}x msgs/s "
                f"(server CPU per round trip: {cpu:.2f}x echo's)"
            )
    print()
    targets = summary["targets"]
    throughput = targets["throughput_ratio"]
    p99 = targets["gateway_p99_ms"]
    print(
        f"target: gateway >= {throughput['target']:.1f}x echo msgs/s at {throughput['clients']} "
        f"clients: {throughput['value']:.2f}x -> {common.verdict(throughput['met'])}"
    )
    print(
        f"target: gateway p99 <= {p99['target']:.0f} ms at {p99['clients']} clients: "
        f"{p99['value']:.2f} ms -> {common.verdict(p99['met'])}"
    )


# --------------------------------------------------------------------------- entry point


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="measured seconds per scenario (default 5)"
    )
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="unmeasured seconds per scenario (default 1)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve-echo", type=Path, help=argparse.SUPPRESS)  # the echo subprocess
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be > 0 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_echo is not None:
        asyncio.run(_serve_echo(args.serve_echo))
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp, servers(Path(tmp)) as both:
        echo, gateway = both
        try:
            results = asyncio.run(run_all(echo, gateway, args.seconds, args.warmup))
        except Exception:
            for server in both:
                print(f"--- {server.name} log ---\n{server.child.log_tail()}", file=sys.stderr)
            raise
    common.emit(summarize(results, args.seconds, args.warmup), args.json, print_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
