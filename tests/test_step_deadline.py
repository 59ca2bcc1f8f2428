"""A step's `timeout` covers its rendering and its action together (one deadline).

With a timer each, a step whose templates took R seconds to render could then run its action
for the whole timeout again: R + timeout in all. The test measures R in the same run (the
rendering really is slow: a nested loop within the render budget) and checks the step ended
nearer `timeout` than `timeout + R`, so it does not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.support.gateway import in_process_gateway
from tests.support.workflows import TERMINAL, reload, trigger, wait_status, write_workflow

TIMEOUT_S = 2.0
LOOPS = 900  # 810 000 template operations: under the 1 000 000 budget, about a second


class HangingServer:
    """A TCP server that accepts and never answers; it notes when the client came and went."""

    def __init__(self) -> None:
        self.arrived: float | None = None
        self.left: float | None = None
        self.gone = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.arrived = time.time()
        while await reader.read(65536):
            pass
        self.left = time.time()
        self.gone.set()
        writer.close()

    async def __aenter__(self) -> HangingServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


async def test_rendering_time_counts_against_the_step_timeout(data_dir: Path) -> None:
    async with HangingServer() as hanging:
        slow_url = (
            f"http://127.0.0.1:{hanging.port}/"
            f"{{% for i in range({LOOPS}) %}}{{% for j in range({LOOPS}) %}}"
            "{% endfor %}{% endfor %}slow"
        )
        write_workflow(
            data_dir,
            "slow",
            f"""
            name: Slow render, slow action
            steps:
              - id: fetch
                action: tool
                tool: http.request
                timeout: {TIMEOUT_S:g}s
                args: {{url: "{slow_url}", timeout: 60}}
            """,
        )
        settings = {"tools": {"http": {"allow": [f"127.0.0.1:{hanging.port}"]}}}
        async with in_process_gateway(data_dir, **settings) as gw:
            client = await gw.client()
            await reload(client)
            execution_id = await trigger(client, "slow")
            done = await wait_status(client, execution_id, TERMINAL)
            async with asyncio.timeout(30):
                await hanging.gone.wait()
    assert done.execution.status == "failed"
    step = done.execution.steps[-1]
    assert step.error is not None
    assert "timed out" in step.error
    assert hanging.arrived is not None
    assert hanging.left is not None
    assert step.finished_at is not None
    started = step.started_at.timestamp()
    # Rendering (and the journal write and the connect before the request arrived).
    rendering = hanging.arrived - started
    assert rendering > 0
    took = step.finished_at.timestamp() - started
    # Two timers end the step TIMEOUT_S after the action began: took >= TIMEOUT_S + rendering.
    # One deadline ends it TIMEOUT_S after the start, plus the timer's latency.
    assert took < TIMEOUT_S + rendering / 2, (took, rendering)
