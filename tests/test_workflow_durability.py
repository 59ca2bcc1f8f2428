"""Durability by killing: the gateway process is SIGKILLed and started again."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.workflows import TERMINAL, execution, trigger, wait_status, write_workflow

GATED_APPEND = """
    name: Gated append
    steps:
      - id: gate
        action: tool
        tool: file.write
        approval_required: true
        args: {path: ledger.txt, content: "paid ", mode: append}
      - id: done
        action: noop
"""


async def connect(gateway: GatewayProcess) -> GatewayClient:
    client = GatewayClient(gateway.url, gateway.token)
    await client.connect()
    return client


async def test_paused_approval_survives_sigkill_and_runs_once(data_dir: Path) -> None:
    write_workflow(data_dir, "pay", GATED_APPEND)
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "pay")
        await wait_status(client, execution_id, {"paused"})
        await client.close()
    finally:
        first.kill()
    assert first.process.returncode == -9

    second = start_gateway_process(data_dir)
    try:
        phone = await connect(second)
        still = await execution(phone, execution_id)
        assert (still.execution.status, still.execution.waiting_for) == ("paused", "approval")
        await phone.request(
            WorkflowApproval(id="a", execution_id=execution_id, step_id="gate", approved=True),
            WorkflowApprovalResolved,
        )
        done = await wait_status(phone, execution_id, TERMINAL)
        await phone.close()
    finally:
        second.stop()
    assert done.execution.status == "completed"
    assert [s.step_id for s in done.execution.steps] == ["gate", "done"]
    assert (data_dir / "workspace" / "ledger.txt").read_text() == "paid "


async def test_wait_survives_sigkill_and_fires_on_time(data_dir: Path) -> None:
    write_workflow(
        data_dir,
        "later",
        """
        name: Later
        steps:
          - {id: nap, action: wait, duration: 3s}
          - {id: after, action: noop}
        """,
    )
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "later")
        paused = await wait_status(client, execution_id, {"paused"})
        assert paused.execution.waiting_for == "timer"
        await client.close()
    finally:
        first.kill()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=30)
        await client.close()
    finally:
        second.stop()
    assert done.execution.status == "completed"
    nap = done.execution.steps[0]
    due = datetime.fromisoformat(nap.output["waitedUntil"])
    assert nap.finished_at is not None
    assert nap.finished_at >= due  # never early
    assert (due - done.execution.started_at).total_seconds() == pytest.approx(3, abs=0.5)


class _Ledger:
    """A fake external payment service: the first request to each path is held open (the
    gateway is killed while it waits), every later one is answered. It records each request's
    path and `Idempotency-Key`, which is the side effect a test counts."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str | None]] = []
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def count(self, path: str) -> int:
        return sum(1 for seen, _ in self.requests if seen == path)

    def keys(self, path: str) -> list[str | None]:
        return [key for seen, key in self.requests if seen == path]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode()
            lines = head.split("\r\n")
            path = lines[0].split()[1]
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (x.partition(":") for x in lines[1:] if x)
            }
            await reader.readexactly(int(headers.get("content-length", "0")))
            first = self.count(path) == 0
            self.requests.append((path, headers.get("idempotency-key")))
            if first:
                await asyncio.Event().wait()  # never answered: the gateway dies meanwhile
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npaid")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


PAY = """
    name: Pay
    inputs:
      path: {{type: string, required: true}}
    steps:
      - id: charge
        action: tool
        tool: http.request
        args: {{method: POST, url: "{url}{{{{ input.path }}}}", json: {{amount: 5}}, timeout: 120}}
      - {{id: done, action: noop}}
"""


async def test_sigkill_inside_a_non_idempotent_step_asks_before_running_it_again(
    data_dir: Path, database_url: str
) -> None:
    """Exactly once, or ask: the POST happened once before the kill; after the restart the
    execution waits for a person (an `interrupted` approval) instead of paying again. Approve
    runs it again (with the same Idempotency-Key), deny fails the execution with the reason."""
    ledger = _Ledger()
    url = await ledger.start()
    (data_dir / "config.toml").write_text(
        "[workflows]\nlease_s = 2\nrecovery_interval_s = 0.3\n"
        '[tools.http]\nallow = ["127.0.0.1"]\n'  # the fake ledger listens on loopback
    )
    write_workflow(data_dir, "pay", PAY.format(url=url))
    args = ("--database-url", database_url)
    first = start_gateway_process(data_dir, *args)
    try:
        client = await connect(first)
        approved_id = await trigger(client, "pay", {"path": "/a"})
        denied_id = await trigger(client, "pay", {"path": "/b"})
        async with asyncio.timeout(30):
            while ledger.count("/a") == 0 or ledger.count("/b") == 0:
                await asyncio.sleep(0.02)
        await client.close()
    finally:
        first.kill()

    second = start_gateway_process(data_dir, *args)
    try:
        phone = await connect(second)
        for execution_id in (approved_id, denied_id):
            paused = await wait_status(phone, execution_id, {"paused"} | TERMINAL)
            assert (paused.execution.status, paused.execution.waiting_for) == (
                "paused",
                "approval",
            )
        pending = await phone.request(ApprovalList(id="l"), ApprovalListResult)
        asked = {(a.execution_id, a.step_id, a.kind) for a in pending.approvals}
        assert asked == {
            (approved_id, "charge", "interrupted"),
            (denied_id, "charge", "interrupted"),
        }
        assert all("may or may not have run" in a.title for a in pending.approvals)
        assert (ledger.count("/a"), ledger.count("/b")) == (1, 1)  # once, not blindly again

        await phone.request(
            WorkflowApproval(id="a", execution_id=approved_id, step_id="charge", approved=True),
            WorkflowApprovalResolved,
        )
        await phone.request(
            WorkflowApproval(
                id="d",
                execution_id=denied_id,
                step_id="charge",
                approved=False,
                comment="already paid",
            ),
            WorkflowApprovalResolved,
        )
        approved = await wait_status(phone, approved_id, TERMINAL)
        denied = await wait_status(phone, denied_id, TERMINAL)
        await phone.close()
    finally:
        second.stop()
        await ledger.stop()
    assert approved.execution.status == "completed"
    assert [(s.step_id, s.status) for s in approved.execution.steps] == [
        ("charge", "success"),
        ("done", "success"),
    ]
    keys = ledger.keys("/a")
    assert len(keys) == 2  # the interrupted call and the approved re-run
    assert keys[0] is not None
    assert keys[0] == keys[1]  # the service can tell it is the same payment
    assert ledger.keys("/b")[0] != keys[0]
    assert denied.execution.status == "failed"
    assert denied.execution.error == (
        "step 'charge' was interrupted (the gateway stopped while it ran) and not run again: "
        "already paid"
    )
    assert ledger.count("/b") == 1


class _HangThenAnswer:
    """A fake external HTTP service: holds requests open until `answer` is set, then says OK.

    It lets a test stop a gateway in the middle of a step, with earlier steps journalled.
    """

    def __init__(self) -> None:
        self.answer = asyncio.Event()
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/work"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            self.requests += 1
            await self.answer.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def test_sigkill_mid_run_resumes_at_the_journalled_position(data_dir: Path) -> None:
    """Steps only append journal rows; the execution row is not rewritten per step. A restart
    must still resume at the step after the last journalled one, not from the row's stale
    position, and must show that position to clients meanwhile."""
    service = _HangThenAnswer()
    url = await service.start()
    # The fake service listens on loopback, which http.request refuses unless allowed.
    (data_dir / "config.toml").write_text('[tools.http]\nallow = ["127.0.0.1"]\n')
    write_workflow(
        data_dir,
        "three",
        f"""
        name: Three
        steps:
          - {{id: one, action: noop}}
          - id: two
            action: tool
            tool: file.write
            args: {{path: two.txt, content: "x", mode: append}}
          - id: call
            action: tool
            tool: http.request
            args: {{method: GET, url: "{url}", timeout: 60}}
          - {{id: last, action: noop}}
        """,
    )
    first = start_gateway_process(data_dir)
    try:
        client = await connect(first)
        execution_id = await trigger(client, "three")
        async with asyncio.timeout(20):
            while service.requests == 0:
                await asyncio.sleep(0.02)
        during = await execution(client, execution_id)
        await client.close()
    finally:
        first.kill()
    assert during.execution.status == "running"
    assert during.execution.current_step_id == "call"
    assert [s.step_id for s in during.execution.steps] == ["one", "two"]

    service.answer.set()
    second = start_gateway_process(data_dir)
    try:
        client = await connect(second)
        done = await wait_status(client, execution_id, TERMINAL, timeout_s=30)
        await client.close()
    finally:
        second.stop()
        await service.stop()
    assert done.execution.status == "completed"
    assert [(s.step_id, s.status) for s in done.execution.steps] == [
        ("one", "success"),
        ("two", "success"),
        ("call", "success"),
        ("last", "success"),
    ]
    assert (data_dir / "workspace" / "two.txt").read_text() == "x"  # not run twice
    assert service.requests == 2  # the interrupted call, and its rerun
