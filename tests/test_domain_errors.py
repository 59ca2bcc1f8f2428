# ruff: noqa: E501  (EXPECTED holds the replies verbatim, one per line)
"""Domain errors carry their protocol error code; the dispatcher maps them generically.

The handlers lost their exception-to-code tables (issue 15 §3); what clients see must not
change. `REQUESTS` are requests that fail for a domain reason, and `EXPECTED` is what the
gateway answered to each before the change (recorded from main), code, message and details
to the letter.
"""

from __future__ import annotations

import importlib
import pkgutil
import textwrap
from pathlib import Path
from typing import Any

from hearth.protocol import Error, ErrorCode
from hearth.protocol.base import ClientMessage
from hearth.protocol.messages.chat import ChatSend, ToolApprovalResponse
from hearth.protocol.messages.heartbeat import HeartbeatConfigure
from hearth.protocol.messages.schedules import ScheduleCreate, ScheduleDelete, ScheduleTrigger
from hearth.protocol.messages.telegram import TelegramPair, TelegramRevoke
from hearth.protocol.messages.workflows import (
    WorkflowApproval,
    WorkflowExecutionGet,
    WorkflowTrigger,
)
from tests.support.gateway import in_process_gateway

NEEDS_INPUT = """
    name: Needs input
    inputs:
      who: {type: string, required: true}
    steps:
      - id: a
        action: noop
"""
BROKEN = """
    name: Broken
    steps:
      - id: a
        action: teleport
"""


def prepare(data_dir: Path) -> None:
    workflows = data_dir / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    (workflows / "needs.yaml").write_text(textwrap.dedent(NEEDS_INPUT))
    (workflows / "broken.yaml").write_text(textwrap.dedent(BROKEN))


REQUESTS: list[ClientMessage] = [
    WorkflowTrigger(id="1", workflow_id="nope"),
    WorkflowTrigger(id="2", workflow_id="broken"),
    WorkflowTrigger(id="3", workflow_id="needs", input={}),
    WorkflowExecutionGet(id="4", execution_id="nope"),
    WorkflowApproval(id="5", execution_id="nope", step_id="a", approved=True),
    ScheduleCreate(id="6", name="s", every="5m", workflow_id="nope"),
    ScheduleCreate(id="7", name="s", every="5m", workflow_id="broken"),
    ScheduleCreate(id="8", name="s", every="5m", workflow_id="needs", input={}),
    ScheduleCreate(id="9", name="s", every="banana", workflow_id="needs", input={"who": "x"}),
    ScheduleDelete(id="10", schedule_id="nope"),
    ScheduleTrigger(id="11", schedule_id="nope"),
    HeartbeatConfigure(id="12", interval="banana"),
    ChatSend(id="13", content="hi"),
    ToolApprovalResponse(id="14", tool_call_id="nope", approved=True),
    TelegramPair(id="15", code="000000"),
    TelegramRevoke(id="16", user_id=12345),
]

EXPECTED: list[tuple[str, str, str, dict[str, Any] | None]] = [
    (
        "workflow.trigger",
        "WORKFLOW_NOT_FOUND",
        "no workflow 'nope' (known: broken, needs); workflows are the *.yaml files in {data}/workflows",
        None,
    ),
    (
        "workflow.trigger",
        "WORKFLOW_INVALID",
        "workflow 'broken' does not load: {data}/workflows/broken.yaml: line 5: steps[0].action: Input should be 'tool', 'model', 'noop' or 'wait'",
        None,
    ),
    ("workflow.trigger", "INVALID_INPUT", "input 'who': is required", {"field": "who"}),
    ("workflow.execution.get", "EXECUTION_NOT_FOUND", "no execution 'nope'", None),
    ("workflow.approval", "EXECUTION_NOT_FOUND", "no execution 'nope'", None),
    (
        "schedule.create",
        "WORKFLOW_NOT_FOUND",
        "no workflow 'nope' (known: broken, needs); workflows are the *.yaml files in {data}/workflows",
        {"field": "workflowId"},
    ),
    (
        "schedule.create",
        "INVALID_SCHEDULE",
        "workflow 'broken' does not load: {data}/workflows/broken.yaml: line 5: steps[0].action: Input should be 'tool', 'model', 'noop' or 'wait'",
        {"field": "workflowId"},
    ),
    (
        "schedule.create",
        "INVALID_SCHEDULE",
        "invalid input: input 'who': is required",
        {"field": "input.who"},
    ),
    (
        "schedule.create",
        "INVALID_SCHEDULE",
        "invalid every: invalid duration 'banana': expected a number with a unit: '500ms', '30s', '5m', '2h', '1d', or combined like '1h30m'",
        {"field": "every"},
    ),
    ("schedule.delete", "SCHEDULE_NOT_FOUND", "no schedule 'nope'", None),
    ("schedule.trigger", "SCHEDULE_NOT_FOUND", "no schedule 'nope'", None),
    (
        "heartbeat.configure",
        "INVALID_HEARTBEAT",
        "invalid heartbeatPath: {data}/HEARTBEAT.md: no such file (`hearth init` writes an example HEARTBEAT.md)",
        {"field": "heartbeatPath"},
    ),
    (
        "chat.send",
        "MODEL_NOT_CONFIGURED",
        'no model is configured: set `[models] default = "openai:gpt-4o-mini"` in config.toml (with OPENAI_API_KEY in the environment), or "ollama:llama3.2" for a local Ollama, or add `[providers.NAME] kind = "openai", base_url = "http://HOST:PORT/v1"` and use "NAME:MODEL"',
        None,
    ),
    (
        "tool.approval.response",
        "NO_PENDING_APPROVAL",
        "no tool call 'nope' is waiting for approval (already answered, timed out, or never asked); `hearth approvals` lists what is waiting",
        None,
    ),
    (
        "telegram.pair",
        "PAIRING_CODE_INVALID",
        "no pending pairing code '000000' (codes are valid for 1 hour and work once; the person gets a new one by writing to the bot again)",
        None,
    ),
    (
        "telegram.revoke",
        "TELEGRAM_USER_NOT_FOUND",
        "Telegram user 12345 is not allowed; `hearth telegram users` lists who is",
        None,
    ),
]


async def test_clients_see_the_same_code_message_and_details(data_dir: Path) -> None:
    prepare(data_dir)
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        seen = []
        for request in REQUESTS:
            reply = await client.call(request)
            assert isinstance(reply, Error), reply
            assert reply.id == request.id
            seen.append((request.type, reply.code, reply.message, reply.details))
    data = str(data_dir)
    wanted = [(t, c, m.replace("{data}", data), d) for t, c, m, d in EXPECTED]
    assert seen == wanted


def _subclasses(cls: type) -> list[type]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_every_domain_error_code_is_a_protocol_error_code() -> None:
    """Codes are strings so domain packages need not import the protocol; each must be one
    the protocol defines, or the dispatcher would crash turning it into a reply."""
    import hearth
    from hearth.errors import DomainError

    for module in pkgutil.walk_packages(hearth.__path__, "hearth."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    classes = _subclasses(DomainError)
    assert len(classes) >= 15
    for cls in classes:
        assert cls.code in set(ErrorCode), f"{cls.__qualname__}.code = {cls.code!r}"
