"""Prompts that never strand the terminal: `run --wait` at an approval gate, and notifications.

The CLI runs as a separate process with a pipe for stdin (no terminal needed) against a gateway
process whose WebSocket ping interval is made short through its configuration, so "the prompt
waited longer than the ping interval" takes a second rather than a minute.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.protocol.messages.approvals import ApprovalList, ApprovalListResult
from hearth.protocol.messages.chat import ToolApprovalResolved, ToolApprovalResponse
from tests.support.cli import cli_env
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall
from tests.support.gateway import GatewayProcess, start_gateway_process
from tests.support.workflows import write_workflow
from tests.test_cli_workflows import (
    GREET,
    BackgroundCli,
    flat,
    hearth_cli,
    hearth_cli_together,
)

pytestmark = pytest.mark.slow

PING_S = 0.2
#: Generous so that a CLI merely slowed by a loaded machine is not closed (1011); the keepalive
#: test waits longer than interval + timeout, so a CLI whose prompt blocked its event loop
#: (the bug it guards against) is still closed and caught.
PING_TIMEOUT_S = 3.0
DIGEST = """
    name: Digest
    steps:
      - id: collect
        action: noop
      - id: tell
        action: tool
        tool: notify
        args: {message: "3 items need you", level: warning}
"""
QUESTION = "approve? (y/N):"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    data_dir = tmp_path_factory.mktemp("cli-prompts") / "data"
    data_dir.mkdir()
    write_workflow(data_dir, "greet", GREET)
    write_workflow(data_dir, "digest", DIGEST)
    gateway = start_gateway_process(
        data_dir,
        env={
            "HEARTH_LIMITS__WS_PING_INTERVAL_S": str(PING_S),
            "HEARTH_LIMITS__WS_PING_TIMEOUT_S": str(PING_TIMEOUT_S),
        },
    )
    try:
        yield gateway
    finally:
        assert gateway.stop() == 0, gateway.log()


@pytest.fixture
def background() -> Iterator[list[BackgroundCli]]:
    processes: list[BackgroundCli] = []
    try:
        yield processes
    finally:
        for process in processes:
            process.stop()


def _gated(tmp_path: Path, served: GatewayProcess, who: str) -> tuple[BackgroundCli, str]:
    runner = BackgroundCli(
        tmp_path,
        served.data_dir,
        "workflow",
        "run",
        "greet",
        "-i",
        f"who={who}",
        "--wait",
        stdin=subprocess.PIPE,
    )
    execution_id = runner.execution_id()
    runner.wait_for_output(QUESTION)
    return runner, execution_id


def test_answer_from_another_client_takes_the_question_back(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    runner, execution_id = _gated(tmp_path, served, "ann")
    background.append(runner)

    other = hearth_cli("workflow", "approve", execution_id, "write", data_dir=served.data_dir)
    assert other.returncode == 0, other.stderr

    assert runner.finish() == 0, runner.stdout + runner.stderr
    printed = flat(runner.stdout)
    assert printed.index(QUESTION) < printed.index("approved by another client")
    assert printed.endswith(
        "approved by another client write: success done: success execution completed"
    )
    assert "NO_PENDING_APPROVAL" not in runner.stdout + runner.stderr


def test_the_connection_outlives_the_ping_interval_at_the_prompt(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    runner, _ = _gated(tmp_path, served, "bob")
    background.append(runner)
    # Many ping intervals, and more than a whole ping timeout, pass while the person thinks.
    time.sleep(PING_S + PING_TIMEOUT_S * 1.5)
    assert runner.process.poll() is None, runner.stdout + runner.stderr
    runner.type_line("y")

    assert runner.finish() == 0, runner.stdout + runner.stderr
    assert flat(runner.stdout).endswith("write: success done: success execution completed")
    assert "another client" not in runner.stdout
    assert "hello bob\n" in (served.data_dir / "workspace" / "greeting.txt").read_text()


def test_ctrl_c_at_the_prompt_leaves_the_execution_waiting(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    runner, execution_id = _gated(tmp_path, served, "cid")
    background.append(runner)
    runner.process.send_signal(signal.SIGINT)

    assert runner.finish() == 130
    assert "Traceback" not in runner.stdout + runner.stderr
    printed = flat(runner.stdout)
    assert f"stopped following; execution {execution_id} goes on in the gateway." in printed
    assert f"follow it: hearth workflow show {execution_id}" in printed
    assert f"answer it: hearth workflow approve {execution_id} write (or deny)" in printed

    # Any unique prefix of the id will do (the first 24 characters hold random bits).
    show = hearth_cli("workflow", "show", execution_id[:24], data_dir=served.data_dir)
    assert show.returncode == 0, show.stderr
    assert f"execution {execution_id} workflow greet paused (waiting for approval)" in flat(
        show.stdout
    )
    denied, unknown = hearth_cli_together(
        ("workflow", "deny", execution_id[:24], "write"),
        ("workflow", "cancel", "no-such-execution"),
        data_dir=served.data_dir,
    )
    assert denied.returncode == 0, denied.stderr
    assert flat(denied.stdout) == f"denied write of {execution_id}"
    assert unknown.returncode == 1
    assert "EXECUTION_NOT_FOUND: no execution 'no-such-execution'" in flat(unknown.stderr)


def test_notifications_in_run_show_and_the_notifications_command(
    served: GatewayProcess, tmp_path: Path, background: list[BackgroundCli]
) -> None:
    follower = BackgroundCli(tmp_path, served.data_dir, "notifications", "--follow")
    background.append(follower)
    before = hearth_cli("notifications", "--since", "1h", data_dir=served.data_dir)
    assert before.returncode == 0, before.stderr
    assert before.stdout == "none since then\n"

    run = hearth_cli("workflow", "run", "digest", "--wait", data_dir=served.data_dir)
    assert run.returncode == 0, run.stderr
    printed = flat(run.stdout)
    # Printed as it arrives, or, when the run ended before the command listened, with the
    # execution's detail.
    assert "warning 3 items need you" in printed
    execution_id = printed.split("started execution ")[1].split()[0]

    follower.wait_for_output("3 items need you")
    follower.process.send_signal(signal.SIGINT)
    assert follower.finish() == 0
    assert follower.stderr == ""
    assert f"workflow:digest, execution {execution_id[:8]} step tell" in flat(follower.stdout)

    show, listing, bad = hearth_cli_together(
        ("workflow", "show", execution_id),
        ("notifications", "--limit", "1"),
        ("notifications", "--since", "yesterday"),
        data_dir=served.data_dir,
    )
    assert show.returncode == 0, show.stderr
    assert "notifications:" in show.stdout
    assert "warning 3 items need you" in flat(show.stdout.split("notifications:")[1])
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.count("\n") == 1
    assert "3 items need you" in listing.stdout
    assert bad.returncode == 2
    assert "--since 'yesterday' is neither a duration" in flat(bad.stderr)


async def _read_until(stream: asyncio.StreamReader, fragment: str, seen: list[str]) -> None:
    async with asyncio.timeout(60):
        while fragment not in "".join(seen):
            chunk = await stream.read(4096)
            if not chunk:
                pytest.fail(f"output ended before {fragment!r}:\n{''.join(seen)}")
            seen.append(chunk.decode())


async def test_chat_tool_approval_answered_from_another_client(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        (data_dir / "config.toml").write_text(
            f'[models]\ndefault = "local:fake-model"\n\n'
            f'[providers.local]\nkind = "openai"\nbase_url = "{fake.base_url}"\n'
        )
        fake.script(
            ToolCall("file_write", {"path": "note.txt", "content": "hi"}, id="call-w"),
            Text("Written."),
        )
        gateway = start_gateway_process(data_dir)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "hearth",
            "chat",
            "-m",
            "write a note",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=cli_env(data_dir),
        )
        try:
            assert process.stdout is not None
            seen: list[str] = []
            await _read_until(process.stdout, "allow? y = yes", seen)
            other = GatewayClient(gateway.url, gateway.token)
            await other.connect()
            try:
                waiting = await other.request(ApprovalList(id="a1"), ApprovalListResult)
                (call,) = [a for a in waiting.approvals if a.kind == "tool"]
                assert call.tool_call_id is not None
                await other.request(
                    ToolApprovalResponse(id="r1", tool_call_id=call.tool_call_id, approved=True),
                    ToolApprovalResolved,
                )
            finally:
                await other.close()
            async with asyncio.timeout(60):
                out, err = await process.communicate()
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            assert gateway.stop() == 0, gateway.log()
    printed = flat("".join(seen) + out.decode())
    assert process.returncode == 0, printed + err.decode()
    assert "approved by another client" in printed
    assert printed.index("approved by another client") < printed.index("Written.")
    assert (data_dir / "workspace" / "note.txt").read_text() == "hi"
