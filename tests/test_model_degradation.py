"""Weak local model servers: every model path degrades instead of failing (issue 10).

Each test runs a real gateway whose model is the real pydantic-ai OpenAI provider talking over
HTTP to the fake server, switched to imitate one failure of llama-cpp-python's server (see
`Quirks` in tests/support/fake_openai.py). The real server is tested in test_llama_cpp.py.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from hearth.client import GatewayClient
from hearth.protocol import Error
from hearth.protocol.base import ServerMessage
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamEnd,
    ChatStreamStart,
    SessionList,
    SessionListResult,
)
from hearth.protocol.messages.heartbeat import (
    HeartbeatAlertList,
    HeartbeatAlertListResult,
    HeartbeatRun,
    HeartbeatRunResult,
)
from tests.support.fake_openai import (
    LLAMA_CPP_PYTHON,
    FakeOpenAI,
    JsonContent,
    Quirks,
    Text,
    ToolCall,
    tool_results,
)
from tests.support.gateway import in_process_gateway
from tests.support.heartbeat import fake_answer, write_checklist
from tests.support.workflows import reload, trigger, wait_status, write_workflow

#: The last line of the fake's traceback: what a person should read of a 2 KB HTTP 500.
TRACEBACK_LAST_LINE = 'TypeError: can only concatenate str (not "NoneType") to str'


def settings(fake: FakeOpenAI, **provider: Any) -> dict[str, Any]:
    return {
        "providers": {"local": {"kind": "openai", "base_url": fake.base_url, **provider}},
        "models": {"default": "local:fake-model"},
    }


async def chat(client: GatewayClient, content: str, **fields: Any) -> list[ServerMessage]:
    """Send one message; every event of that request up to its chat.stream.end."""
    start = await client.request(
        ChatSend(id=client.next_id(), content=content, **fields), ChatStreamStart
    )
    seen: list[ServerMessage] = []
    async with asyncio.timeout(60):
        async for event in client.events():
            if getattr(event, "request_id", None) != start.request_id:
                continue
            seen.append(event)
            if isinstance(event, ChatStreamEnd):
                return seen
    raise AssertionError("stream did not end")


def text_of(events: list[ServerMessage]) -> str:
    return "".join(getattr(e, "delta", "") for e in events if e.type == "chat.stream.delta")


def status_of(events: list[ServerMessage]) -> str:
    end = events[-1]
    assert isinstance(end, ChatStreamEnd)
    return end.status


def read_then_answer(body: dict[str, Any]) -> Any:
    """Read notes.txt with the file tool, then answer with what it held."""
    if body["messages"][-1]["role"] == "tool":
        return Text("the note says: " + json.loads(tool_results(body)[-1]["content"])["content"])
    return ToolCall("file_read", {"path": "notes.txt"})


def assert_one_readable_line(text: str) -> None:
    assert "\n" not in text
    assert len(text) <= 300
    assert "\\n" not in text  # no escaped repr of a body


# -- chat -------------------------------------------------------------------------------------


async def test_chat_empty_stream_with_tool_choice_retries_without_it_and_remembers(
    data_dir: Path,
) -> None:
    (data_dir / "workspace").mkdir(parents=True, exist_ok=True)
    (data_dir / "workspace" / "notes.txt").write_text("buy milk")
    async with FakeOpenAI(quirks=LLAMA_CPP_PYTHON) as fake:
        fake.script_forever(read_then_answer)
        async with in_process_gateway(data_dir, **settings(fake)) as gw:
            client = await gw.client()
            first = await chat(client, "what does my note say?")
            assert status_of(first) == "completed"
            assert "the note says: buy milk" in text_of(first)
            assert "Tools are unavailable" not in text_of(first)
            # The tool ran: the model still had tools, only tool_choice was left out.
            assert [e.type for e in first].count("tool.result") == 1
            # 1: tools + tool_choice → empty 200 stream; 2: without tool_choice → tool call;
            # 3: the tool result, whose assistant message must not carry content: null.
            assert fake.quirked == 1
            assert "tool_choice" in fake.requests[0]
            assert all("tool_choice" not in r for r in fake.requests[1:])
            assert all(r.get("tools") for r in fake.requests)
            assistant = [m for m in fake.requests[2]["messages"] if m["role"] == "assistant"]
            assert assistant
            assert all(m.get("content") is not None for m in assistant)
            # Remembered: the next chat goes straight to the form that worked.
            calls = fake.calls
            second = await chat(client, "and again?")
            assert status_of(second) == "completed"
            assert fake.quirked == 1
            assert all("tool_choice" not in r for r in fake.requests[calls:])


async def test_chat_server_failing_with_any_tools_answers_without_them_and_says_so(
    data_dir: Path,
) -> None:
    quirks = Quirks(empty_stream_with_tools=True)
    async with FakeOpenAI(quirks=quirks) as fake:
        fake.script_forever(Text("plain answer"))
        async with in_process_gateway(data_dir, **settings(fake)) as gw:
            client = await gw.client()
            first = await chat(client, "hi")
            assert status_of(first) == "completed"
            text = text_of(first)
            assert text.startswith("(Tools are unavailable with local:fake-model")
            assert text.endswith("plain answer")
            # With tool_choice, without it, then without tools (which answered).
            assert fake.quirked == 2
            assert fake.requests[-1].get("tools") is None
            calls = fake.calls
            second = await chat(client, "hi again")
            assert text_of(second).startswith("(Tools are unavailable")
            assert fake.calls == calls + 1  # straight to the form that worked
            assert fake.requests[-1].get("tools") is None


async def test_chat_tools_false_never_offers_tools_and_needs_no_note(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script_forever(Text("no tools here"))
        async with in_process_gateway(data_dir, **settings(fake, tools=False)) as gw:
            client = await gw.client()
            events = await chat(client, "hi")
    assert text_of(events) == "no tools here"
    assert fake.calls == 1
    assert fake.requests[0].get("tools") is None


async def test_chat_tools_true_reports_the_failure_in_one_line(data_dir: Path) -> None:
    fake = FakeOpenAI(quirks=Quirks(tools_status=500))
    async with fake, in_process_gateway(data_dir, **settings(fake, tools=True)) as gw:
        client = await gw.client()
        events = await chat(client, "hi")
        assert status_of(events) == "error"
        errors = [e for e in events if isinstance(e, Error)]
        assert len(errors) == 1
        message = errors[0].message
        assert_one_readable_line(message)
        assert message.startswith("local:fake-model: the model server answered HTTP 500")
        assert TRACEBACK_LAST_LINE in message
        # Tools were never dropped.
        assert all(r.get("tools") for r in fake.requests)
        # Item 11 of issue 12: the failed first request leaves no session behind.
        listing = await client.request(SessionList(id="l"), SessionListResult)
        assert listing.sessions == []


async def test_a_failed_request_in_an_existing_session_keeps_it(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script(Text("first answer"))
        async with in_process_gateway(data_dir, **settings(fake, tools=False)) as gw:
            client = await gw.client()
            first = await chat(client, "hi")
            end = first[-1]
            assert isinstance(end, ChatStreamEnd)
            fake.quirks = Quirks(always_status=400)
            failed = await chat(client, "again", session_id=end.session_id)
            assert status_of(failed) == "error"
            listing = await client.request(SessionList(id="l"), SessionListResult)
    assert [s.session_id for s in listing.sessions] == [end.session_id]


# -- heartbeat --------------------------------------------------------------------------------


async def test_heartbeat_500_on_required_tool_choice_still_answers(data_dir: Path) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    async with FakeOpenAI(quirks=LLAMA_CPP_PYTHON) as fake:
        fake.script_forever(fake_answer(lambda item: "95 %"))
        async with in_process_gateway(data_dir, **settings(fake)) as gw:
            client = await gw.client()
            first = await client.request(HeartbeatRun(id="r1"), HeartbeatRunResult)
            assert (first.status, first.alerted) == ("ok", True)
            assert fake.requests[0].get("tool_choice") == "required"
            assert fake.quirked >= 1
            answered = fake.requests[-1]
            assert answered.get("tool_choice") is None
            # Remembered: the next run sends no tool_choice and hits no failure.
            quirked, calls = fake.quirked, fake.calls
            second = await client.request(HeartbeatRun(id="r2"), HeartbeatRunResult)
            assert second.status == "ok"
            assert fake.quirked == quirked
            assert fake.calls == calls + 1


async def test_heartbeat_structured_output_falls_back_to_prompted_json_on_5xx(
    data_dir: Path,
) -> None:
    """A server that fails on any tool_choice and on the output tool: prompted JSON answers."""
    write_checklist(data_dir / "HEARTBEAT.md", ["Backup ran?"])
    quirks = Quirks(tool_choice_status=500, forced_choice_status=500)

    def prompted_only(body: dict[str, Any]) -> Any:
        if "final_result" in str(body.get("tools")):
            # Without tool_choice this model still cannot use an output tool: it says nothing.
            return Text("")
        return fake_answer()(body)

    async with FakeOpenAI(quirks=quirks) as fake:
        fake.script_forever(prompted_only)
        async with in_process_gateway(
            data_dir, **settings(fake), heartbeat={"failing_after": 1}
        ) as gw:
            client = await gw.client()
            result = await client.request(HeartbeatRun(id="r"), HeartbeatRunResult)
            assert (result.status, result.alerted) == ("ok", False), result.reason
            last = fake.requests[-1]
            assert "final_result" not in str(last.get("tools"))
            assert "Backup ran?" in str(last["messages"])
            # Remembered: the next run asks in prompted form at once.
            calls = fake.calls
            await client.request(HeartbeatRun(id="r2"), HeartbeatRunResult)
            assert "final_result" not in str(fake.requests[calls].get("tools"))


async def test_heartbeat_failing_alert_is_one_readable_line(data_dir: Path) -> None:
    write_checklist(data_dir / "HEARTBEAT.md", ["Disk full?"])
    fake = FakeOpenAI(quirks=Quirks(always_status=500))
    hb = {"failing_after": 1}
    async with fake, in_process_gateway(data_dir, **settings(fake), heartbeat=hb) as gw:
        client = await gw.client()
        result = await client.request(HeartbeatRun(id="r"), HeartbeatRunResult)
        alerts = await client.request(HeartbeatAlertList(id="a", limit=5), HeartbeatAlertListResult)
    assert result.status == "error"
    assert result.reason is not None
    assert_one_readable_line(result.reason)
    assert TRACEBACK_LAST_LINE in result.reason
    [failing] = [a for a in alerts.alerts if a.kind == "failing"]
    assert failing.message is not None
    assert_one_readable_line(failing.message)
    assert failing.message.startswith("The heartbeat itself is failing")


# -- workflow model steps ---------------------------------------------------------------------

SUMMARY_WORKFLOW = """
name: Summarise
steps:
  - id: summarise
    action: model
    prompt: "Summarise: the backup ran at 03:00."
    output_schema:
      type: object
      properties: {summary: {type: string}}
      required: [summary]
"""


async def test_model_step_falls_back_to_prompted_json_on_500(data_dir: Path) -> None:
    def reply(body: dict[str, Any]) -> Any:
        return ToolCall("final_result", {"summary": "backup ok"})

    write_workflow(data_dir, "summarise", SUMMARY_WORKFLOW)
    async with FakeOpenAI(quirks=Quirks(forced_choice_status=500, tools_status=500)) as fake:
        fake.script_forever(
            lambda body: reply(body) if body.get("tools") else JsonContent({"summary": "ok"})
        )
        async with in_process_gateway(data_dir, **settings(fake)) as gw:
            client = await gw.client()
            await reload(client)
            execution_id = await trigger(client, "summarise")
            done = await wait_status(client, execution_id, {"completed", "failed"}, 60)
    assert done.execution.status == "completed", done.execution.error
    assert done.execution.steps[-1].output == {"summary": "ok"}
    assert fake.requests[-1].get("tools") is None


async def test_model_step_error_is_one_readable_line(data_dir: Path) -> None:
    write_workflow(data_dir, "summarise", SUMMARY_WORKFLOW)
    fake = FakeOpenAI(quirks=Quirks(always_status=500))
    async with fake, in_process_gateway(data_dir, **settings(fake)) as gw:
        client = await gw.client()
        await reload(client)
        execution_id = await trigger(client, "summarise")
        done = await wait_status(client, execution_id, {"completed", "failed"}, 60)
    assert done.execution.status == "failed"
    error = done.execution.steps[-1].error
    assert error is not None
    assert_one_readable_line(error)
    assert TRACEBACK_LAST_LINE in error


@pytest.mark.parametrize("status", [500, 503])
async def test_wire_never_sends_null_content(data_dir: Path, status: int) -> None:
    """A tool-calling turn without text goes back as content "" (the server 500s on null)."""
    (data_dir / "workspace").mkdir(parents=True, exist_ok=True)
    (data_dir / "workspace" / "notes.txt").write_text("call mum")
    async with FakeOpenAI(quirks=Quirks(null_content_status=status)) as fake:
        fake.script_forever(read_then_answer)
        async with in_process_gateway(data_dir, **settings(fake)) as gw:
            client = await gw.client()
            events = await chat(client, "my note?")
    assert status_of(events) == "completed"
    assert "call mum" in text_of(events)
    assert fake.quirked == 0
