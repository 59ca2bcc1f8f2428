"""Real gateways for tests: in-process (same event loop) or as a separate OS process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hearth.app import Hearth
from hearth.client import GatewayClient
from hearth.config import load_settings


@dataclass
class RunningGateway:
    hearth: Hearth
    url: str
    token: str
    data_dir: Path
    clients: list[GatewayClient] = field(default_factory=list)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"

    async def client(self, **kwargs: Any) -> GatewayClient:
        client = GatewayClient(self.url, self.token, **kwargs)
        await client.connect()
        self.clients.append(client)
        return client


@asynccontextmanager
async def in_process_gateway(
    data_dir: Path, database_url: str | None = None, **settings: Any
) -> AsyncIterator[RunningGateway]:
    """Serve a gateway on a free loopback port in this event loop."""
    config = load_settings(data_dir=data_dir, port=0, database_url=database_url, **settings)
    hearth = Hearth(config)
    task = asyncio.create_task(hearth.serve(install_signals=False))
    deadline = time.monotonic() + 30
    while hearth.url is None:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("gateway did not start within 30 s")
        await asyncio.sleep(0.01)
    gateway = RunningGateway(hearth, hearth.url, hearth.state.tokens.current(), data_dir)
    try:
        yield gateway
    finally:
        for client in gateway.clients:
            await client.close()
        assert hearth.server is not None
        hearth.server.should_exit = True
        await asyncio.wait_for(task, timeout=30)


@dataclass
class GatewayProcess:
    """A `python -m hearth serve` child process."""

    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def runtime_path(self) -> Path:
        return self.data_dir / "runtime.json"

    def runtime(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.runtime_path.read_text())
        return data

    @property
    def url(self) -> str:
        return str(self.runtime()["url"])

    @property
    def token(self) -> str:
        return (self.data_dir / "gateway.token").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log()}")
            if self.runtime_path.exists():
                try:
                    if self.runtime()["pid"] == self.process.pid:
                        return
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"gateway not ready within {timeout_s} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def start_gateway_process(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> GatewayProcess:
    log_path = data_dir.parent / f"{data_dir.name}-gateway-{time.monotonic_ns()}.log"
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    child_env.update(env or {})
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hearth",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                "0",
                *args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=child_env,
        )
    gateway = GatewayProcess(data_dir, process, log_path)
    _STARTED.append(gateway)
    if wait:
        gateway.wait_ready()
    return gateway


#: Every gateway process a test started, so one left running by a failed test (a readiness
#: time-out, an assertion before its `stop`) is killed at the test's end instead of outliving
#: the run.
_STARTED: list[GatewayProcess] = []


def started_gateways() -> int:
    return len(_STARTED)


def kill_leftover_gateways(keep: int = 0) -> None:
    """Kill the gateways started after the first `keep` (those belong to wider fixtures)."""
    while len(_STARTED) > keep:
        _STARTED.pop().kill()
