"""A bad template never stalls the gateway (issue 10 item 9): real gateway processes.

Each test pings the gateway while a pathological rendering is in flight — the execution is
still running at that step after the pong — and then checks the step failed with the limit's
reason. No timing thresholds: the renders here take many seconds of CPU if nothing stops them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.core import Ping, Pong
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.workflows import TERMINAL, execution, trigger, wait_status, write_workflow

pytestmark = pytest.mark.slow

#: Seconds of CPU under the operation budget: each iteration scans a 1 MB string.
SLOW = (
    "{% set s = 'x' * 1000000 %}{% for i in range(100000) %}{% for j in range(5) %}"
    "{% if 'y' in s %}!{% endif %}{% endfor %}{% endfor %}"
)

CASES = {
    "nest": "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "center": "{{ 'x'|center(200000000) }}",
    "format": "{{ '{:>200000000}'.format('a') }}",
    "percent": "{{ '%200000000d' % 1 }}",
    "replace": "{{ ('x' * 1000000)|replace('x', 'x' * 200) }}",
}


def render_step(template: str, timeout: str | None = None) -> str:
    extra = f"\n        timeout: {timeout}" if timeout else ""
    quoted = template.replace('"', '\\"')
    return f"""
    name: Render
    steps:
      - id: render
        action: tool
        tool: file.write{extra}
        args: {{path: out.txt, content: "{quoted}"}}
    """


async def connect(gateway: GatewayProcess) -> GatewayClient:
    client = GatewayClient(gateway.url, gateway.token)
    await client.connect()
    return client


async def pong_while_running(client: GatewayClient, execution_id: str) -> None:
    """A ping is answered, and after it the execution is still running its render step."""
    await client.request(Ping(id=client.next_id()), Pong)
    current = (await execution(client, execution_id)).execution
    assert current.status == "running", current.error
    assert current.current_step_id == "render"


async def test_a_render_past_its_timeout_fails_while_the_gateway_answers(data_dir: Path) -> None:
    write_workflow(data_dir, "spin", render_step(SLOW, timeout="2s"))
    write_workflow(data_dir, "ok", render_step("fine {{ execution.id }}"))
    gateway = start_gateway_process(data_dir)
    try:
        client = await connect(gateway)
        spinning = await trigger(client, "spin")
        await pong_while_running(client, spinning)
        # Another execution runs to the end meanwhile.
        other = await trigger(client, "ok")
        assert (await wait_status(client, other, TERMINAL)).execution.status == "completed"
        await pong_while_running(client, spinning)
        done = (await wait_status(client, spinning, TERMINAL)).execution
        await client.close()
    finally:
        gateway.stop()
    assert done.status == "failed"
    assert "timed out after 2 s while rendering the step's templates" in (done.error or "")


async def test_each_blow_up_fails_its_step_with_the_budget_reason(data_dir: Path) -> None:
    for name, template in CASES.items():
        write_workflow(data_dir, name, render_step(template))
    gateway = start_gateway_process(data_dir)
    try:
        client = await connect(gateway)
        started = {name: await trigger(client, name) for name in CASES}
        await client.request(Ping(id=client.next_id()), Pong)
        results = {
            name: (await wait_status(client, execution_id, TERMINAL)).execution
            for name, execution_id in started.items()
        }
        await client.request(Ping(id=client.next_id()), Pong)
        await client.close()
    finally:
        gateway.stop()
    for name, result in results.items():
        assert result.status == "failed", name
        assert "render limit: " in (result.error or ""), (name, result.error)
    assert "over the render budget" in (results["nest"].error or "")
    assert "would build 200000000 characters" in (results["center"].error or "")
    assert not (data_dir / "workspace" / "out.txt").exists()


async def test_a_gateway_killed_mid_render_starts_and_answers(data_dir: Path) -> None:
    write_workflow(data_dir, "spin", render_step(SLOW))
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "spin")
        await pong_while_running(client, execution_id)
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        # Recovery resumed the execution and renders again; the gateway answers meanwhile.
        await pong_while_running(client, execution_id)
        done = (await wait_status(client, execution_id, TERMINAL)).execution
        await client.close()
    finally:
        second.stop()
    assert done.status == "failed"
    assert "render limit: rendering took longer than 5 s" in (done.error or "")
