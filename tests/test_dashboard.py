"""The dashboard's server side: the page and its assets under a strict CSP, the committed
TypeScript types, `hearth dashboard`, and the `approval.resolved` event the inbox follows."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx

from hearth.protocol.messages.approvals import ApprovalResolved
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamStart,
    ToolApprovalResolved,
    ToolApprovalResponse,
)
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from hearth.web.typegen import generate
from tests.support.cli import run_cli
from tests.support.fake_openai import FakeOpenAI, Text, ToolCall
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.workflows import reload, trigger, wait_status, write_workflow

ROOT = Path(__file__).resolve().parents[1]
TYPES = ROOT / "web" / "src" / "protocol.ts"

GATED = """
    name: Gated
    steps:
      - id: ask
        action: noop
        approval_required: true
"""


def test_committed_typescript_types_match_the_protocol() -> None:
    assert TYPES.read_text(encoding="utf-8") == generate(), (
        "web/src/protocol.ts is stale: run `make web` and commit it"
    )


def test_generated_types_cover_every_message() -> None:
    text = generate()
    assert '"approval.resolved"' in text
    assert "export type ClientMessage =" in text
    assert "export type ServerMessage =" in text
    assert re.search(r"export interface ScheduleInfo \{[^}]*nextRun\?: string \| null;", text)


async def test_page_and_assets_carry_a_strict_csp(sqlite_gateway: RunningGateway) -> None:
    async with httpx.AsyncClient(base_url=sqlite_gateway.url) as http:
        page = await http.get("/")
        script = await http.get("/static/app.js")
        style = await http.get("/static/app.css")
        unknown = await http.get("/static/secret.txt")
        escape = await http.get("/static/..%2F__init__.py")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in csp
    # No inline script: every <script> loads a file of this origin.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert scripts
    assert all('src="/static/' in attrs and not body.strip() for attrs, body in scripts)
    assert "http://" not in page.text
    assert "https://" not in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["content-security-policy"] == csp
    assert script.headers["x-content-type-options"] == "nosniff"
    assert style.status_code == 200
    assert style.headers["content-type"].startswith("text/css")
    assert unknown.status_code == 404
    assert escape.status_code == 404


async def test_hearth_dashboard_prints_the_address_with_the_token(data_dir: Path) -> None:
    async with in_process_gateway(data_dir) as gw:
        shown = await asyncio.to_thread(run_cli, ["dashboard"], data_dir)
        assert shown.returncode == 0, shown.stderr
        url = shown.stdout.strip()
        assert url == f"{gw.url}/#token={gw.token}"
        async with httpx.AsyncClient() as http:
            assert (await http.get(url.split("#")[0])).status_code == 200
    stopped = await asyncio.to_thread(run_cli, ["dashboard"], data_dir)
    assert stopped.returncode == 1
    assert "not running" in stopped.stderr


async def test_workflow_answers_are_announced_with_who_answered(
    data_dir: Path, database_url: str
) -> None:
    write_workflow(data_dir, "gated", GATED)
    async with in_process_gateway(data_dir, database_url) as gw:
        inbox = await gw.client(client_name="inbox")
        answerer = await gw.client(client_name="laptop")
        await reload(inbox)
        execution_id = await trigger(inbox, "gated")
        await wait_status(inbox, execution_id, {"paused"})
        await answerer.request(
            WorkflowApproval(
                id="a", execution_id=execution_id, step_id="ask", approved=False, comment="no"
            ),
            WorkflowApprovalResolved,
        )
        event = await inbox.next_event("approval.resolved")
    assert isinstance(event, ApprovalResolved)
    assert (event.kind, event.status, event.comment) == ("workflow", "denied", "no")
    assert (event.execution_id, event.step_id) == (execution_id, "ask")
    assert event.answered_by is not None
    assert (event.answered_by.client, event.answered_by.channel) == ("laptop", "ws")


def _tool_then_text(body: dict[str, Any]) -> Any:
    if body["messages"][-1]["role"] == "tool":
        return Text("written")
    return ToolCall("file_write", {"path": "a.txt", "content": "x"}, id="call-a")


async def test_tool_answers_are_announced_to_every_inbox(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script_forever(_tool_then_text)
        settings = {
            "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
            "models": {"default": "local:fake-model"},
        }
        async with in_process_gateway(data_dir, **settings) as gw:
            chat = await gw.client(client_name="chatter")
            inbox = await gw.client(client_name="inbox")
            await chat.request(ChatSend(id="c", content="write"), ChatStreamStart)
            request = await inbox.next_event("tool.approval.request")
            await inbox.request(
                ToolApprovalResponse(
                    id="r", tool_call_id="call-a", approved=True, session_id=request.session_id
                ),
                ToolApprovalResolved,
            )
            event = await chat.next_event("approval.resolved")
    assert isinstance(event, ApprovalResolved)
    assert (event.kind, event.status, event.tool_call_id) == ("tool", "approved", "call-a")
    assert event.session_id == request.session_id
    assert event.answered_by is not None
    assert event.answered_by.client == "inbox"
