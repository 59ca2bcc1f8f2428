"""Start-up speed: how long `hearth --help` and `hearth status` take, how soon a gateway answers.

What it measures, in one run, so the figures share the machine's load:

- `python -c "import typer"`: the baseline, the least any Typer command line can cost;
- `python -m hearth --help` and `python -m hearth status` (the latter against a running gateway,
  so it really connects, says hello and asks `gateway.status`);
- gateway ready: from spawning `python -m hearth serve --port 0` on an existing data directory
  until `runtime.json` is written and a `hello` is answered over the WebSocket; the first start
  on an empty data directory (which creates and migrates the database) is reported separately;
- idle RSS of the gateway a few seconds after it is ready.

Each command runs `--runs` times; the median is reported with the ratio to the baseline's
median. Python writes and reuses bytecode for every run, as on a user's machine: the bench
drops `PYTHONDONTWRITEBYTECODE` (some CI images set it), which would otherwise make every
command compile Hearth's sources while the baseline's Typer loads its installed bytecode.
Targets: `--help` and `status` ≤ 0.35 s, ready ≤ 1.0 s, idle RSS ≤ 70 MB.

    python bench/startup.py [--runs 7] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    Child,
    emit,
    exit_on_sigterm,
    gateway_args,
    gateway_endpoint,
    machine,
    machine_line,
    open_session,
    package_version,
    spawn,
    stop,
    stopping,
    verdict,
)

TARGET_CLI_S = 0.35
TARGET_READY_S = 1.0
TARGET_RSS_MB = 70.0
IDLE_WAIT_S = 3.0
READY_TIMEOUT_S = 60.0


def timed(args: list[str], env: dict[str, str]) -> float:
    """Wall time of `python ARGS`, which must succeed."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"python {' '.join(args)} failed:\n{result.stderr.decode()}")
    return elapsed


async def hello(data_dir: Path) -> None:
    endpoint = gateway_endpoint(data_dir)
    ws = await open_session(endpoint.url, endpoint.token, open_timeout=10, reply_timeout=10)
    await ws.close()


def wait_ready(child: Child, data_dir: Path) -> float:
    """Seconds from spawn until runtime.json exists and a hello is answered."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if child.process.poll() is not None:
            raise RuntimeError(f"the gateway exited early:\n{child.log_tail()}")
        if (data_dir / "runtime.json").exists():
            try:
                asyncio.run(hello(data_dir))
            except (OSError, ValueError, KeyError):
                pass
            else:
                return time.perf_counter() - child.spawned
        time.sleep(0.005)
    raise RuntimeError(f"the gateway was not ready within {READY_TIMEOUT_S:.0f} s")


def rss_mb(pid: int) -> float:
    """Resident set size from /proc (Linux), else psutil."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


def measure(runs: int) -> dict[str, Any]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEARTH_") and k != "PYTHONDONTWRITEBYTECODE"
    }
    with tempfile.TemporaryDirectory(prefix="hearth-startup-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        env["HEARTH_DATA_DIR"] = str(data_dir)
        ready: list[float] = []
        with stopping(grace=20) as started:
            first = spawn("gateway-first", gateway_args(data_dir), work, started, env=env)
            first_ready = wait_ready(first, data_dir)
            stop(first, 20)
            for n in range(runs):
                child = spawn(f"gateway-{n}", gateway_args(data_dir), work, started, env=env)
                ready.append(wait_ready(child, data_dir))
                if n < runs - 1:
                    stop(child, 20)
            gateway = started[-1]
            time.sleep(IDLE_WAIT_S)
            idle_rss = rss_mb(gateway.process.pid)
            baseline: list[float] = []
            helps: list[float] = []
            statuses: list[float] = []
            for _ in range(runs):  # interleaved, so load changes hit all three alike
                baseline.append(timed(["-c", "import typer"], env))
                helps.append(timed(["-m", "hearth", "--help"], env))
                statuses.append(timed(["-m", "hearth", "status"], env))
    base = statistics.median(baseline)
    summary = {
        "runs": runs,
        "baseline_import_typer_s": base,
        "help_s": statistics.median(helps),
        "status_s": statistics.median(statuses),
        "help_ratio": statistics.median(helps) / base,
        "status_ratio": statistics.median(statuses) / base,
        "ready_s": statistics.median(ready),
        "ready_all_s": ready,
        "first_start_ready_s": first_ready,
        "idle_rss_mb": idle_rss,
        "machine": machine(
            hearth=package_version("hearthgate"),
            typer=package_version("typer"),
        ),
    }
    summary["met"] = {
        "help": summary["help_s"] <= TARGET_CLI_S,
        "status": summary["status_s"] <= TARGET_CLI_S,
        "ready": summary["ready_s"] <= TARGET_READY_S,
        "idle_rss": idle_rss <= TARGET_RSS_MB,
    }
    return summary


def print_text(s: dict[str, Any]) -> None:
    met = s["met"]
    where = machine_line(s["machine"], ("typer", "typer"))
    print(f"start-up ({s['runs']} runs each, medians; {where})")
    print(f"  python -c 'import typer'   {s['baseline_import_typer_s']:.3f} s (baseline)")
    print(
        f"  hearth --help              {s['help_s']:.3f} s = {s['help_ratio']:.2f}x baseline "
        f"(target <= {TARGET_CLI_S} s: {verdict(met['help'])})"
    )
    print(
        f"  hearth status              {s['status_s']:.3f} s = {s['status_ratio']:.2f}x baseline "
        f"(target <= {TARGET_CLI_S} s: {verdict(met['status'])})"
    )
    print(
        f"  gateway ready              {s['ready_s']:.3f} s "
        f"(target <= {TARGET_READY_S} s: {verdict(met['ready'])}); "
        f"first start on an empty data dir {s['first_start_ready_s']:.3f} s"
    )
    print(
        f"  idle gateway RSS           {s['idle_rss_mb']:.1f} MB "
        f"(target <= {TARGET_RSS_MB:.0f} MB: {verdict(met['idle_rss'])})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    emit(measure(args.runs), args.json, print_text)


if __name__ == "__main__":
    main()
