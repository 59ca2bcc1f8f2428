"""WebSocket round trip: `ping` -> `pong` through the Hearth gateway vs a bare `websockets` echo.

Why this shape:

- Absolute numbers on shared 2-core machines are noise, so the baseline (a bare `websockets`
  server that answers the same frames with plain `json`) runs in the same run and the result is
  the ratio gateway/echo. The echo server is the floor: WebSocket framing plus JSON, nothing else.
- Both servers run in their own subprocess, and the clients in several client processes (4 by
  default: 50 connections = 13+13+12+12), so neither server is limited by one client process
  at a full core (with all clients in one process the echo server never reached its own limit,
  which flattered the gateway's ratio). The gateway is started exactly as a
  person starts it (`python -m hearth serve`), with its real logging, SQLite and background tasks.
- The client code is identical for both servers: connect, `hello` -> `hello.ok`, then a closed
  loop of `ping` -> `pong`. Only the URL and the token differ.
- Each scenario has a short warm-up that is not measured (connections, lazily built validators),
  and counts only round trips that start and finish inside the measured window.
- Server CPU per round trip (utime + stime from /proc/PID/stat over the measured window, divided
  by the round trips completed in it) is the steadiest figure on a shared machine; the 1-minute
  load average is printed with every scenario.

Run: `.venv/bin/python bench/ws_roundtrip.py [--seconds N] [--processes N] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
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
TARGET_RATIO = 0.8  # gateway msgs/s >= 0.8x echo msgs/s at TARGET_CLIENTS
TARGET_CPU_RATIO = 1.3  # gateway server CPU per round trip <= 1.3x the echo's
TARGET_P99_MS = 10.0  # gateway p99 latency at TARGET_CLIENTS
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


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process from /proc/PID/stat (what the kernel charged it)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def split(clients: int, processes: int) -> list[int]:
    """`clients` connections over at most `processes` client processes, as evenly as can be."""
    processes = max(1, min(processes, clients))
    base, extra = divmod(clients, processes)
    return [base + (1 if i < extra else 0) for i in range(processes)]


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


async def _loop(
    ws: ClientConnection, index: int, start: float, end: float, out: list[float]
) -> None:
    """Closed loop until `end` (time.monotonic, the same clock in every process); appends the
    latencies (s) of round trips that start and finish inside [start, end]."""
    n = 0
    while True:
        sent = time.monotonic()
        if sent >= end:
            return
        n += 1
        reply = await _request(ws, {"type": "ping", "id": f"{index}-{n}"})
        done = time.monotonic()
        if reply.get("type") != "pong":
            raise RuntimeError(f"expected pong, got {reply}")
        if sent >= start and done <= end:
            out.append(done - sent)


async def _cpu_at(moment: float, into: list[float]) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))
    into.append(time.process_time())


async def client_process(
    url: str, token: str, connections: int, warmup: float, seconds: float
) -> None:
    """One client process: connect, say `ready`, wait for `go T0`, run, print JSON results."""
    sockets = await asyncio.gather(*(_open(url, token) for _ in range(connections)))
    print("ready", flush=True)
    line = await asyncio.to_thread(sys.stdin.readline)
    t0 = float(line.split()[1])
    start, end = t0 + warmup, t0 + warmup + seconds
    latencies: list[float] = []
    cpu: list[float] = []
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    await asyncio.gather(
        _cpu_at(start, cpu),
        _cpu_at(end, cpu),
        *(_loop(ws, i, start, end, latencies) for i, ws in enumerate(sockets)),
    )
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
    print(json.dumps({"latencies": latencies, "cpu_s": cpu[1] - cpu[0]}), flush=True)


@dataclass
class Result:
    """One scenario: one server, one number of concurrent clients."""

    server: str
    clients: int
    client_processes: int
    round_trips: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    server_cpu_pct: float  # of one core, over the measured window
    client_cpu_pct: float  # all client processes together, over the measured window
    server_cpu_us_per_msg: float  # server CPU per round trip: hardly depends on who saturates
    load1: float  # the 1-minute load average when the scenario started


def _percentile_ms(sorted_s: list[float], q: float) -> float:
    return common.percentile(sorted_s, q) * 1000.0


async def run_scenario(
    server: Server, clients: int, processes: int, seconds: float, warmup: float
) -> Result:
    """Start the client processes, let them connect, start them together, collect; bounded."""
    load1 = os.getloadavg()[0]
    shares = split(clients, processes)
    children: list[asyncio.subprocess.Process] = []
    try:
        async with asyncio.timeout(START_TIMEOUT_S + warmup + seconds + REPLY_TIMEOUT_S + 10):
            for share in shares:
                children.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        *common.script(__file__, "--client", server.url, server.token),
                        "--connections",
                        str(share),
                        "--warmup",
                        str(warmup),
                        "--seconds",
                        str(seconds),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                        cwd=common.ROOT,
                    )
                )
            for child in children:
                assert child.stdout is not None
                if (await child.stdout.readline()).strip() != b"ready":
                    raise RuntimeError("a client process failed to connect")
            t0 = time.monotonic() + 0.2
            for child in children:
                assert child.stdin is not None
                child.stdin.write(f"go {t0!r}\n".encode())
                await child.stdin.drain()
            pid = server.child.process.pid
            await asyncio.sleep(t0 + warmup - time.monotonic())
            cpu_server = proc_cpu_seconds(pid)
            await asyncio.sleep(t0 + warmup + seconds - time.monotonic())
            cpu_server = proc_cpu_seconds(pid) - cpu_server
            outputs = [await child.communicate() for child in children]
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()
    latencies: list[float] = []
    cpu_clients = 0.0
    for out, _err in outputs:
        data = json.loads(out.decode().strip().splitlines()[-1])
        latencies.extend(data["latencies"])
        cpu_clients += data["cpu_s"]
    latencies.sort()
    return Result(
        server=server.name,
        clients=clients,
        client_processes=len(shares),
        round_trips=len(latencies),
        seconds=seconds,
        msgs_per_s=len(latencies) / seconds,
        p50_ms=_percentile_ms(latencies, 0.50),
        p99_ms=_percentile_ms(latencies, 0.99),
        server_cpu_pct=100.0 * cpu_server / seconds,
        client_cpu_pct=100.0 * cpu_clients / seconds,
        server_cpu_us_per_msg=1e6 * cpu_server / max(len(latencies), 1),
        load1=load1,
    )


async def run_all(
    echo: Server, gateway: Server, seconds: float, warmup: float, processes: int
) -> list[Result]:
    """Echo then gateway at each client count, so both see the same minutes of machine noise."""
    results: list[Result] = []
    for clients in CLIENT_COUNTS:
        for server in (echo, gateway):
            print(f"  {server.name:<8} {clients:>3} client(s) ...", file=sys.stderr, flush=True)
            results.append(await run_scenario(server, clients, processes, seconds, warmup))
    return results


# --------------------------------------------------------------------------- report


def _find(results: list[Result], server: str, clients: int) -> Result:
    return next(r for r in results if r.server == server and r.clients == clients)


def _target(value: float, target: float, at_most: bool) -> dict[str, Any]:
    met = value <= target if at_most else value >= target
    return {"clients": TARGET_CLIENTS, "target": target, "value": value, "met": met}


def summarize(
    results: list[Result], seconds: float, warmup: float, load: tuple[float, float]
) -> dict[str, Any]:
    """Ratios and the targets of the issue, as data (printed as text or as JSON)."""
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
    return {
        "benchmark": "ws_roundtrip",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": common.machine(websockets=version("websockets"), uvicorn=version("uvicorn")),
        "load_before_after": list(load),
        "seconds": seconds,
        "warmup": warmup,
        "results": [asdict(r) for r in results],
        "ratio_gateway_over_echo": ratios,
        "server_cpu_per_msg_gateway_over_echo": cpu_ratios,
        "targets": {
            "throughput_ratio": _target(ratios[str(TARGET_CLIENTS)], TARGET_RATIO, False),
            "server_cpu_ratio": _target(cpu_ratios[str(TARGET_CLIENTS)], TARGET_CPU_RATIO, True),
            "gateway_p99_ms": _target(gateway.p99_ms, TARGET_P99_MS, True),
        },
    }


def print_text(summary: dict[str, Any]) -> None:
    machine = summary["machine"]
    print(
        f"WebSocket round trip (ping -> pong, closed loop), {summary['seconds']:g} s per scenario "
        f"after {summary['warmup']:g} s warm-up; load {summary['load_before_after'][0]:.2f} "
        f"before, {summary['load_before_after'][1]:.2f} after"
    )
    print(common.machine_line(machine, ("websockets", "websockets"), ("uvicorn", "uvicorn")))
    print()
    print(
        f"{'clients':>7}  {'server':<8} {'procs':>5} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU':>8} {'cli CPU':>8} {'srv us/msg':>10} {'load':>5}"
    )
    for result in summary["results"]:
        print(
            f"{result['clients']:>7}  {result['server']:<8} {result['client_processes']:>5} "
            f"{result['msgs_per_s']:>9.0f} {result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} "
            f"{result['server_cpu_pct']:>7.0f}% {result['client_cpu_pct']:>7.0f}% "
            f"{result['server_cpu_us_per_msg']:>10.1f} {result['load1']:>5.2f}"
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
    throughput, cpu, p99 = (
        targets["throughput_ratio"],
        targets["server_cpu_ratio"],
        targets["gateway_p99_ms"],
    )
    print(
        f"target: gateway >= {throughput['target']:.1f}x echo msgs/s at {throughput['clients']} "
        f"clients: {throughput['value']:.2f}x -> {common.verdict(throughput['met'])}"
    )
    print(
        f"target: gateway server CPU per round trip <= {cpu['target']:.1f}x echo's at "
        f"{cpu['clients']} clients: {cpu['value']:.2f}x -> {common.verdict(cpu['met'])}"
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
    parser.add_argument(
        "--processes",
        type=int,
        default=4,
        help="client processes the connections are spread over (default 4: 50 = 13+13+12+12)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--serve-echo", type=Path, help=argparse.SUPPRESS)  # the echo subprocess
    parser.add_argument("--client", nargs=2, help=argparse.SUPPRESS)  # a client process: URL TOKEN
    parser.add_argument("--connections", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.warmup < 0:
        parser.error("--seconds must be > 0 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve_echo is not None:
        asyncio.run(_serve_echo(args.serve_echo))
        return 0
    if args.client is not None:
        url, token = args.client
        asyncio.run(client_process(url, token, args.connections, args.warmup, args.seconds))
        return 0
    signal.signal(signal.SIGTERM, common.exit_on_sigterm)
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as tmp, servers(Path(tmp)) as both:
        echo, gateway = both
        try:
            before = os.getloadavg()[0]
            results = asyncio.run(run_all(echo, gateway, args.seconds, args.warmup, args.processes))
            load = (before, os.getloadavg()[0])
        except Exception:
            for server in both:
                print(f"--- {server.name} log ---\n{server.child.log_tail()}", file=sys.stderr)
            raise
    common.emit(summarize(results, args.seconds, args.warmup, load), args.json, print_text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
