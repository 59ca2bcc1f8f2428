"""MCP tool servers end to end: a real gateway, a real MCP server (tests/support/mcp_server.py)
over stdio (a subprocess the gateway starts) and streamable HTTP (a loopback port), the real
OpenAI provider path to a fake model server."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hearth.client import GatewayClient, GatewayError
from hearth.config import ConfigError, load_settings
from hearth.doctor import run_checks
from hearth.protocol import ErrorCode
from hearth.protocol.messages.chat import (
    ToolApprovalRequest,
    ToolApprovalResolved,
    ToolApprovalResponse,
)
from hearth.protocol.messages.config import ConfigReload, ConfigReloadResult
from hearth.protocol.messages.core import GatewayStatus, GatewayStatusResult
from hearth.protocol.messages.mcp import (
    McpCall,
    McpCallResult,
    McpList,
    McpListResult,
    McpTools,
    McpToolsResult,
)
from hearth.secrets import SecretStore
from hearth.tools.base import ToolError
from hearth.tools.policy import configured
from tests.support.cli import run_cli
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall, tool_names, tool_results
from tests.support.gateway import in_process_gateway
from tests.support.heartbeat import fake_answer, write_checklist
from tests.support.workflows import reload, trigger, wait_status, write_workflow
from tests.test_chat import collect, send, text_of
from tests.test_heartbeat import configure, run_now

ROOT = Path(__file__).resolve().parent.parent


def stdio_server(**extra: Any) -> dict[str, Any]:
    return {
        "command": sys.executable,
        "args": ["-m", "tests.support.mcp_server", "stdio"],
        "cwd": str(ROOT),
        **extra,
    }


def settings_with(fake: FakeOpenAI | None, servers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    mcp = {"servers": servers, **extra.pop("mcp", {})}
    models: dict[str, Any] = {}
    if fake is not None:
        models = {
            "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
            "models": {"default": "local:fake-model"},
        }
    return {**models, "mcp": mcp, **extra}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def serve_over_http(tmp_path: Path, kind: str) -> Iterator[str]:
    """The test MCP server over HTTP (`http`: streamable, `sse`) on a port the OS picked."""
    port_file = tmp_path / f"mcp-port-{kind}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.mcp_server", kind, str(port_file)], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists():
            assert process.poll() is None, "the MCP test server exited"
            assert time.monotonic() < deadline, "the MCP test server did not start"
            time.sleep(0.02)
        path = "/sse" if kind == "sse" else "/mcp"
        yield f"http://127.0.0.1:{port_file.read_text()}{path}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    yield from serve_over_http(tmp_path, "http")


@pytest.fixture
def sse_server(tmp_path: Path) -> Iterator[str]:
    yield from serve_over_http(tmp_path, "sse")


async def mcp_call(client: GatewayClient, tool: str, **args: Any) -> Any:
    reply = await client.request(McpCall(id=client.next_id(), tool=tool, args=args), McpCallResult)
    return reply.result


async def mcp_list(client: GatewayClient, start: bool = False) -> McpListResult:
    return await client.request(McpList(id=client.next_id(), start=start), McpListResult)


def add_note_then_answer(body: dict[str, Any]) -> Any:
    if body["messages"][-1]["role"] == "tool":
        return Text("done: " + str(tool_results(body)[-1]["content"])[:200])
    return ToolCall("notes_add_note", {"name": "todo", "text": "buy bread"}, id="call-note")


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_chat_calls_an_mcp_tool_approved_from_a_second_connection(
    data_dir: Path,
    database_url: str,
    fake: FakeOpenAI,
    request: pytest.FixtureRequest,
    transport: str,
) -> None:
    server = (
        stdio_server() if transport == "stdio" else {"url": request.getfixturevalue("http_server")}
    )
    fake.script_forever(add_note_then_answer)
    settings = settings_with(fake, {"notes": server})
    async with in_process_gateway(data_dir, database_url, **settings) as gw:
        laptop = await gw.client()
        phone = await gw.client()
        start = await send(laptop, "note: buy bread")
        asked = await phone.next_event("tool.approval.request", 30)
        assert isinstance(asked, ToolApprovalRequest)
        assert (asked.tool_name, asked.tool_call_id) == ("notes.add_note", "call-note")
        assert asked.args == {"name": "todo", "text": "buy bread"}
        # Offered to the model under its wire name, with the server's schema.
        offered = tool_names(fake.requests[0])
        assert {"notes_search", "notes_add_note", "file_read"} <= set(offered)
        await phone.request(
            ToolApprovalResponse(id="r", tool_call_id="call-note", approved=True),
            ToolApprovalResolved,
        )
        events = await collect(laptop, start.request_id)
        kinds = [e.type for e in events]
        assert kinds.index("tool.approval.request") < kinds.index("tool.call")
        assert kinds.index("tool.call") < kinds.index("tool.result")
        assert text_of(events).startswith("done:")
        assert "stored todo" in text_of(events)
        found = await mcp_call(laptop, "notes.search", query="bread")
        assert found["text"] == "todo: buy bread"


async def test_a_denied_call_never_reaches_the_server(data_dir: Path, fake: FakeOpenAI) -> None:
    fake.script_forever(add_note_then_answer)
    async with in_process_gateway(data_dir, **settings_with(fake, {"notes": stdio_server()})) as gw:
        client = await gw.client()
        start = await send(client, "note: buy bread")
        await client.next_event("tool.approval.request", 30)
        await client.request(
            ToolApprovalResponse(id="r", tool_call_id="call-note", approved=False),
            ToolApprovalResolved,
        )
        events = await collect(client, start.request_id)
        assert "tool.call" not in [e.type for e in events]
        assert "did not approve" in str(tool_results(fake.requests[-1])[-1]["content"])
        found = await mcp_call(client, "notes.search", query="bread")
        assert found["text"] == "no notes match"


async def test_policy_patterns_deny_and_allow(data_dir: Path, fake: FakeOpenAI) -> None:
    def search_then_answer(body: dict[str, Any]) -> Any:
        if body["messages"][-1]["role"] == "tool":
            return Text("found " + str(tool_results(body)[-1]["content"]))
        return ToolCall("notes_search", {"query": "milk"}, id="call-search")

    fake.script_forever(search_then_answer)
    policy = {"notes.*": "deny", "notes.search": "auto"}
    settings = settings_with(fake, {"notes": stdio_server()}, tools={"policy": policy})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        start = await send(client, "what about milk?")
        events = await collect(client, start.request_id)
        # The exact entry wins over the pattern: search runs unasked, the rest is not offered.
        assert "tool.approval.request" not in [e.type for e in events]
        assert "groceries: milk, eggs" in text_of(events)
        offered = set(tool_names(fake.requests[0]))
        assert "notes_search" in offered
        assert not offered & {"notes_add_note", "notes_crash", "notes_grow"}
        with pytest.raises(GatewayError) as denied:
            await mcp_call(client, "notes.add_note", name="x", text="y")
        assert denied.value.code == ErrorCode.TOOL_DENIED
        assert "notes.add_note" in str(denied.value)


CRASHY = """
    name: Notes
    inputs:
      name: {type: string, required: true}
    steps:
      - id: store
        action: tool
        tool: notes.add_note
        args: {name: "{{ input.name }}", text: "from a workflow"}
      - id: find
        action: tool
        tool: notes.search
        args: {query: "from a workflow"}
"""

CRASH = """
    name: Crash
    steps:
      - id: boom
        action: tool
        tool: notes.crash
        args: {}
"""


async def test_workflow_steps_use_mcp_tools_and_survive_a_crashing_server(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_workflow(data_dir, "notes", CRASHY)
    write_workflow(data_dir, "crash", CRASH)
    caplog.set_level(logging.INFO, logger="hearth.mcp")
    async with in_process_gateway(data_dir, **settings_with(None, {"notes": stdio_server()})) as gw:
        client = await gw.client()
        listed = await reload(client)
        assert all(w.valid for w in listed.workflows), [w.error for w in listed.workflows]
        first = await wait_status(
            client, await trigger(client, "notes", {"name": "a"}), {"completed", "failed"}
        )
        assert first.execution.status == "completed", first.execution.error
        outputs = {s.step_id: s.output for s in first.execution.steps}
        assert outputs["store"] == {"text": "stored a", "structured": {"result": "stored a"}}
        assert outputs["find"]["text"] == "a: from a workflow"

        crashed = await wait_status(client, await trigger(client, "crash"), {"completed", "failed"})
        assert crashed.execution.status == "failed"
        error = crashed.execution.error or ""
        assert "notes.crash failed" in error
        assert "closed the connection during the call" in error
        # The server is started again; the next step works (its notes are gone with the process).
        again = await wait_status(
            client, await trigger(client, "notes", {"name": "b"}), {"completed", "failed"}
        )
        assert again.execution.status == "completed", again.execution.error
        assert {s.step_id: s.output for s in again.execution.steps}["find"]["text"] == (
            "b: from a workflow"
        )
        # Its stderr went to the log.
        assert any("stderr: crashing on purpose" in r.getMessage() for r in caplog.records)


async def test_workflow_validation_knows_mcp_tools_or_warns(data_dir: Path) -> None:
    write_workflow(data_dir, "typo", CRASHY.replace("notes.search", "notes.serch"))
    settings = settings_with(None, {"notes": stdio_server()})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        # Not started yet: the step is accepted (with a warning in the log).
        listed = await reload(client)
        assert listed.workflows[0].valid
        await mcp_list(client, start=True)
        listed = await reload(client)
        assert not listed.workflows[0].valid
        assert "notes.serch" in (listed.workflows[0].error or "")
        assert "notes.search" in (listed.workflows[0].error or "")


async def test_tools_list_changed_and_reload_refresh_the_tools(data_dir: Path) -> None:
    settings = settings_with(None, {"notes": stdio_server()})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        before = await mcp_list(client, start=True)
        assert before.servers[0].state == "ready"
        assert "notes.extra" not in before.servers[0].tools
        assert await mcp_call(client, "notes.grow") == {
            "text": "grown",
            "structured": {"result": "grown"},
        }
        async with asyncio.timeout(30):
            while "notes.extra" not in (await mcp_list(client)).servers[0].tools:
                await asyncio.sleep(0.05)
        assert (await mcp_call(client, "notes.extra"))["text"] == "extra here"

        # A reload that adds a server: it is listed (idle until used) and usable.
        (data_dir / "config.toml").write_text(
            "[mcp.servers.more]\n"
            f"command = {sys.executable!r}\n"
            'args = ["-m", "tests.support.mcp_server", "stdio"]\n'
            f"cwd = {str(ROOT)!r}\n"
        )
        reloaded = await client.request(ConfigReload(id="c"), ConfigReloadResult)
        assert "mcp.servers.more" in reloaded.applied
        names = [s.name for s in (await mcp_list(client)).servers]
        assert "more" in names
        assert (await mcp_call(client, "more.search", query="eggs"))["text"] == (
            "groceries: milk, eggs"
        )


async def test_heartbeat_uses_a_read_only_tool_without_asking(
    data_dir: Path, fake: FakeOpenAI
) -> None:
    answer = fake_answer()

    def search_then_report(body: dict[str, Any]) -> Any:
        if body["messages"][-1]["role"] != "tool":
            assert "notes_search" in tool_names(body)
            assert "notes_add_note" not in tool_names(body)
            return ToolCall("notes_search", {"query": "milk"}, id="hb-search")
        return answer(body)

    fake.script_forever(search_then_report)
    write_checklist(data_dir / "HEARTBEAT.md", ["Milk on the list?"])
    settings = settings_with(fake, {"notes": stdio_server()}, mcp={"trust_read_only_hints": True})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        await configure(client)
        result = await run_now(client)
        assert result.status == "ok", result.reason
        results = tool_results(fake.requests[-1])
        assert "groceries: milk, eggs" in str(results[-1]["content"])


async def test_results_describe_images_and_are_capped(data_dir: Path) -> None:
    settings = settings_with(None, {"notes": stdio_server()})
    async with in_process_gateway(data_dir, **settings) as gw:
        client = await gw.client()
        picture = await mcp_call(client, "notes.picture")
        assert picture["text"] == "a pixel\n[image image/png, 70 bytes, not shown]"
        big = await mcp_call(client, "notes.big", size=2_000_000)
        assert big["truncated"] is True
        assert len(big["text"]) == 1024 * 1024
        assert "structured" not in big
        with pytest.raises(GatewayError) as bad:
            await mcp_call(client, "notes.big", size="many")
        assert bad.value.code == ErrorCode.INVALID_INPUT
        assert "args.size" in str(bad.value)
        tools = await client.request(McpTools(id="t", server="notes"), McpToolsResult)
        search = next(t for t in tools.tools if t.name == "notes.search")
        assert search.read_only_hint
        assert search.policy == "ask"  # hints are not trusted unless the person says so
        assert search.input_schema is not None
        assert search.input_schema["required"] == ["query"]


async def test_secrets_reach_the_server_not_the_log(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hearth.mcp")
    server = stdio_server(env={"NOTES_TOKEN": "secret:notes"})
    async with in_process_gateway(data_dir, **settings_with(None, {"notes": server})) as gw:
        client = await gw.client()
        listed = await mcp_list(client, start=True)
        assert listed.servers[0].state == "failed"
        error = listed.servers[0].error or ""
        assert "mcp.servers.notes.env.NOTES_TOKEN" in error
        assert "hearth keys set notes" in error
        status = await client.request(GatewayStatus(id="s"), GatewayStatusResult)
        assert status.mcp is not None
        assert (status.mcp[0].name, status.mcp[0].state) == ("notes", "failed")
        with pytest.raises(GatewayError) as missing:
            await mcp_call(client, "notes.whoami")
        assert missing.value.code == ErrorCode.TOOL_NOT_FOUND

    SecretStore(data_dir / "secrets.json", use_keyring=False).set("notes", "tok-1234567890abc")
    caplog.clear()
    async with in_process_gateway(data_dir, **settings_with(None, {"notes": server})) as gw:
        client = await gw.client()
        digest = hashlib.sha256(b"tok-1234567890abc").hexdigest()[:16]
        assert (await mcp_call(client, "notes.whoami"))["text"] == digest
        async with asyncio.timeout(10):
            while not any("token is" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.05)
        lines = [r.getMessage() for r in caplog.records if "token is" in r.getMessage()]
        assert lines == ["stderr: token is [redacted]"]


async def test_a_server_that_cannot_start_is_reported_once_and_chat_goes_on(
    data_dir: Path, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hearth.mcp")
    fake.script_forever(Text("hello"))
    broken = {"command": str(data_dir / "no-such-server")}
    async with in_process_gateway(data_dir, **settings_with(fake, {"broken": broken})) as gw:
        client = await gw.client()
        for _ in range(2):
            start = await send(client, "hi")
            assert text_of(await collect(client, start.request_id)) == "hello"
        server = gw.hearth.mcp.servers["broken"]
        async with asyncio.timeout(30):
            while server.failures < 3:
                await asyncio.sleep(0.05)
        reports = [r for r in caplog.records if "failed to start" in r.getMessage()]
        assert len(reports) == 1
        assert "no-such-server" in reports[0].getMessage()
        assert not [n for n in tool_names(fake.requests[-1]) if n.startswith("broken_")]


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cases = {
        '[mcp.servers.notes]\ncommand = "x"\nurl = "http://127.0.0.1:1/mcp"\n': (
            "mcp.servers.notes",
            "either command",
        ),
        '[mcp.servers.notes]\ncommand = "x"\nretries = 3\n': (
            "mcp.servers.notes.retries",
            "unknown setting",
        ),
        '[mcp.servers.notes]\nurl = "http://127.0.0.1:1/mcp"\nenv = {A = "b"}\n': (
            "mcp.servers.notes",
            "env only apply to a command",
        ),
        "[mcp]\ntrust_hints = true\n": ("mcp.trust_hints", "unknown setting"),
        '[mcp.servers."a.b"]\ncommand = "x"\n': ("mcp.servers", "no dots"),
    }
    for index, (text, (key, words)) in enumerate(cases.items()):
        directory = tmp_path / str(index)
        directory.mkdir()
        (directory / "config.toml").write_text(text)
        with pytest.raises(ConfigError) as bad:
            load_settings(data_dir=directory)
        assert f"bad setting {key}:" in str(bad.value)
        assert words in str(bad.value)


async def test_cli_lists_shows_and_calls_tools(data_dir: Path) -> None:
    settings = settings_with(
        None, {"notes": stdio_server()}, tools={"policy": {"notes.big": "deny"}}
    )
    async with in_process_gateway(data_dir, **settings):
        listed = await asyncio.to_thread(run_cli, ["mcp", "list"], data_dir, "200")
        assert listed.returncode == 0, listed.stderr
        assert "notes" in listed.stdout
        assert "ready" in listed.stdout
        assert "add_note" in listed.stdout
        shown = await asyncio.to_thread(run_cli, ["mcp", "tools", "notes"], data_dir, "200")
        assert shown.returncode == 0, shown.stderr
        assert "notes.search" in shown.stdout
        assert "deny" in shown.stdout
        called = await asyncio.to_thread(
            run_cli, ["mcp", "call", "notes.search", "--args", '{"query": "ideas"}'], data_dir
        )
        assert called.returncode == 0, called.stderr
        assert called.stdout.strip() == "ideas: write an MCP host"
        refused = await asyncio.to_thread(
            run_cli, ["mcp", "call", "notes.big", "--args", "{}"], data_dir
        )
        assert refused.returncode == 1
        assert "TOOL_DENIED" in refused.stderr
        assert "notes.big is denied" in refused.stderr
        bad = await asyncio.to_thread(
            run_cli, ["mcp", "call", "notes.search", "--args", "[1]"], data_dir
        )
        assert bad.returncode == 2
        assert "--args must be a JSON object" in bad.stderr


async def test_doctor_reports_a_failed_server_and_a_missing_secret(data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.toml").write_text(
        f"[mcp.servers.broken]\ncommand = {str(data_dir / 'no-such-server')!r}\n\n"
        f"[mcp.servers.notes]\ncommand = {sys.executable!r}\n"
        'args = ["-m", "tests.support.mcp_server", "stdio"]\n'
        f"cwd = {str(ROOT)!r}\n"
        'env = {NOTES_TOKEN = "secret:notes"}\n'
    )
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        await mcp_list(client, start=True)
        checks = {c.name: c for c in await run_checks(data_dir)}
        assert checks["mcp broken"].status == "fail"
        assert "no-such-server" in checks["mcp broken"].detail
        assert checks["mcp notes"].status == "fail"
        assert "mcp.servers.notes.env.NOTES_TOKEN" in checks["mcp notes"].detail
    # Without a gateway, the secret is still checked.
    offline = {c.name: c for c in await run_checks(data_dir)}
    assert offline["mcp notes"].status == "fail"
    assert "mcp.servers.notes.env.NOTES_TOKEN" in offline["mcp notes"].detail
    assert offline["mcp broken"].status == "ok"


def test_validate_warns_about_mcp_steps_without_a_gateway(data_dir: Path, tmp_path: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.toml").write_text('[mcp.servers.notes]\ncommand = "notes-server"\n')
    path = write_workflow(tmp_path, "notes", CRASHY)
    checked = run_cli(["workflow", "validate", str(path)], data_dir)
    assert checked.returncode == 0, checked.stderr
    assert "valid (2 steps)" in checked.stdout
    assert "tool 'notes.add_note' not checked" in checked.stderr
    typo = write_workflow(tmp_path, "typo", CRASHY.replace("notes.search", "nots.search"))
    refused = run_cli(["workflow", "validate", str(typo)], data_dir)
    assert refused.returncode == 1
    assert "unknown tool 'nots.search'" in refused.stderr


async def test_an_sse_server_works_too(data_dir: Path, sse_server: str) -> None:
    server = {"url": sse_server, "transport": "sse"}
    async with in_process_gateway(data_dir, **settings_with(None, {"notes": server})) as gw:
        client = await gw.client()
        listed = await mcp_list(client, start=True)
        assert (listed.servers[0].transport, listed.servers[0].state) == ("sse", "ready")
        found = await mcp_call(client, "notes.search", query="eggs")
        assert found["text"] == "groceries: milk, eggs"


def test_policy_entries_exact_then_longest_pattern() -> None:
    policy = {"ha.*": "ask", "ha.alarm_*": "deny", "ha.alarm_status": "auto", "*": "auto"}
    assert configured(policy, "ha.alarm_status") == "auto"
    assert configured(policy, "ha.alarm_off") == "deny"
    assert configured(policy, "ha.lights") == "ask"
    assert configured(policy, "notes.search") == "auto"
    assert configured({"ha.*": "ask"}, "hax.lights") is None


async def test_the_call_right_after_a_crash_waits_for_the_restart(data_dir: Path) -> None:
    """The next call, made the moment the crashed one failed, goes to the new process.

    Until the connection task has unwound the old session is still set; a call in that window
    used to go to it and fail the same way (a flaky CI run showed it).
    """
    async with in_process_gateway(data_dir, **settings_with(None, {"notes": stdio_server()})) as gw:
        assert gw.hearth.state.mcp is not None
        server = gw.hearth.state.mcp.get("notes")
        assert await server.ready()
        for round_ in range(3):
            with pytest.raises(ToolError, match="closed the connection during the call"):
                await server.call("crash", {})
            stored = await server.call("add_note", {"name": f"r{round_}", "text": "after"})
            assert "stored" in str(stored)
