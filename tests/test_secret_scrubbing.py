"""Keys from the environment or the secret store never leave the gateway (issue 11, Secrets).

Real parts throughout: a real gateway, real clients, the real OpenAI provider path to a fake
server that answers 401 with the Authorization header in its body (as a careless server or a
proxy's error page does), a real shell command that prints the key, and the stored rows read
back from the database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hearth.client import GatewayClient, GatewayError
from hearth.protocol import Error, ErrorCode
from hearth.protocol.base import ServerMessage
from hearth.protocol.messages.chat import (
    ChatSend,
    ChatStreamEnd,
    ChatStreamStart,
    SessionHistory,
    SessionHistoryResult,
)
from hearth.protocol.messages.workflows import WorkflowApproval, WorkflowApprovalResolved
from hearth.redact import PIECE, REDACTED
from hearth.secrets import SecretStore
from hearth.store.tables import metadata
from tests.support.fake_openai import FakeOpenAI, HttpError, Text
from tests.support.gateway import RunningGateway, in_process_gateway
from tests.support.workflows import TERMINAL, reload, trigger, wait_status, write_workflow

STORED_KEY = "sk-stored-0123456789abcdefghijklmnopqrstuvwxyz"
ENV_KEY = "sk-env-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"
ENV_NAME = "HEARTH_TEST_PROVIDER_KEY"


def assert_clean(text: str, key: str) -> None:
    """No run of PIECE characters of `key` is in `text` (a partial key is a leak too)."""
    leaked = [key[i : i + PIECE] for i in range(len(key) - PIECE + 1) if key[i : i + PIECE] in text]
    assert not leaked, f"pieces of the key leaked: {leaked[:3]} in {text[:300]!r}"


async def stored_text(gw: RunningGateway) -> str:
    """Every row of every table, as text: what a backup or a `SELECT *` would show."""
    parts: list[str] = []
    async with gw.hearth.db.connect() as conn:
        for table in metadata.sorted_tables:
            rows = (await conn.execute(sa.select(table))).all()
            parts.extend(repr(tuple(row)) for row in rows)
    return "\n".join(parts)


async def until_end(client: GatewayClient, request_id: str) -> list[ServerMessage]:
    seen: list[ServerMessage] = []
    async with asyncio.timeout(30):
        async for event in client.events():
            if getattr(event, "request_id", None) == request_id:
                seen.append(event)
                if isinstance(event, ChatStreamEnd):
                    return seen
    raise AssertionError("stream did not end")


async def test_provider_401_echoing_the_stored_key_reaches_no_client_or_row(
    data_dir: Path, database_url: str
) -> None:
    SecretStore(data_dir / "secrets.json", use_keyring=False).set("local", STORED_KEY)
    async with FakeOpenAI() as fake:
        fake.script(Text("first answer"))
        fake.script_forever(HttpError(401, "Incorrect API key provided", echo_authorization=True))
        settings: dict[str, Any] = {
            "providers": {"local": {"kind": "openai", "base_url": fake.base_url}},
            "models": {"default": "local:fake-model"},
        }
        async with in_process_gateway(data_dir, database_url, **settings) as gw:
            client = await gw.client()
            first = await client.request(
                ChatSend(id=client.next_id(), content="hello"), ChatStreamStart
            )
            await until_end(client, first.request_id)
            start = await client.request(
                ChatSend(id=client.next_id(), content="again", session_id=first.session_id),
                ChatStreamStart,
            )
            events = await until_end(client, start.request_id)
            # The server really did echo the key: the leak this test guards against is real.
            assert fake.requests, "the model was never asked"
            error = next(e for e in events if isinstance(e, Error))
            assert error.code == ErrorCode.MODEL_ERROR
            assert "Incorrect API key provided" in error.message
            assert REDACTED in error.message
            for event in events:
                assert_clean(event.model_dump_json(), STORED_KEY)
            history = await client.request(
                SessionHistory(id=client.next_id(), session_id=start.session_id),
                SessionHistoryResult,
            )
            assert_clean(history.model_dump_json(), STORED_KEY)
            assert_clean(await stored_text(gw), STORED_KEY)


SHELL_THEN_MODEL = f"""
    name: Leaky
    steps:
      - id: show
        action: tool
        tool: shell.run
        args: {{command: 'echo "key=${ENV_NAME}"; echo "err=${ENV_NAME}" >&2'}}
      - id: ask
        action: model
        prompt: "Summarise the output"
"""


async def test_workflow_shell_output_and_model_error_are_scrubbed(
    data_dir: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_NAME, ENV_KEY)
    write_workflow(data_dir, "leaky", SHELL_THEN_MODEL)
    async with FakeOpenAI() as fake:
        fake.script_forever(HttpError(401, "Incorrect API key provided", echo_authorization=True))
        settings: dict[str, Any] = {
            "providers": {
                "local": {"kind": "openai", "base_url": fake.base_url, "api_key_env": ENV_NAME}
            },
            "models": {"default": "local:fake-model"},
            "tools": {"shell": {"enabled": True, "pass_env": [ENV_NAME]}},
        }
        async with in_process_gateway(data_dir, database_url, **settings) as gw:
            client = await gw.client()
            await reload(client)
            execution_id = await trigger(client, "leaky")
            await client.next_event("workflow.approval.request")
            await client.request(
                WorkflowApproval(
                    id=client.next_id(), execution_id=execution_id, step_id="show", approved=True
                ),
                WorkflowApprovalResolved,
            )
            done = await wait_status(client, execution_id, TERMINAL)
            assert done.execution.status == "failed"
            show, ask = done.execution.steps[-2:]
            assert (show.step_id, ask.step_id) == ("show", "ask")
            # The command really printed the key; what the step kept is the redacted line.
            assert show.output["stdout"] == f"key={REDACTED}\n"
            assert show.output["stderr"] == f"err={REDACTED}\n"
            assert ask.error is not None
            assert "HTTP 401" in ask.error
            assert REDACTED in ask.error
            assert done.execution.error is not None
            assert REDACTED in done.execution.error
            assert_clean(done.model_dump_json(), ENV_KEY)
            # Every event this client received on the way (workflow.status, tool events).
            seen: list[str] = []
            while not client._events.empty():
                event = client._events.get_nowait()
                if event is not None:
                    seen.append(event.model_dump_json())
            assert any(execution_id in text for text in seen)
            assert_clean("\n".join(seen), ENV_KEY)
            assert_clean(await stored_text(gw), ENV_KEY)


async def test_an_error_reply_quoting_a_key_is_scrubbed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that pastes a key into a bad request gets the error without the key: error
    replies pass the same redactor as events."""
    monkeypatch.setenv("OPENAI_API_KEY", ENV_KEY)
    async with in_process_gateway(data_dir) as gw:
        client = await gw.client()
        with pytest.raises(GatewayError) as info:
            await trigger(client, ENV_KEY)
    assert info.value.code == ErrorCode.WORKFLOW_NOT_FOUND
    assert REDACTED in info.value.message
    assert_clean(info.value.message, ENV_KEY)
