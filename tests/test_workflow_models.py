"""Model steps through the real provider path against a fake OpenAI-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_openai import (
    FakeOpenAI,
    HttpError,
    JsonContent,
    Mode,
    Text,
    ToolCall,
    tool_names,
)
from tests.support.gateway import in_process_gateway
from tests.support.workflows import TERMINAL, trigger, wait_status, write_workflow

JUDGE = """
    name: Judge
    inputs:
      n: {type: integer, required: true}
    steps:
      - id: judge
        action: model
        prompt: "Is {{ input.n }} a big number? Answer with big and reason."
        output_schema:
          type: object
          properties:
            big: {type: boolean}
            reason: {type: string}
          required: [big, reason]
        branches:
          - condition: "steps.judge.output.big"
            goto: shout
      - id: quiet
        action: noop
        on_success: end
      - id: shout
        action: tool
        tool: file.write
        args: {path: verdict.txt, content: "{{ steps.judge.output.reason }}", mode: overwrite}
"""


def answer_structured(verdict: dict[str, Any]) -> Any:
    """Answer through whatever output tool pydantic-ai offered (tool mode)."""

    def reply(body: dict[str, Any]) -> Any:
        names = tool_names(body)
        if names:
            return ToolCall(names[0], verdict)
        return JsonContent(verdict)

    return reply


@pytest.mark.parametrize("mode", ["standard", "llamacpp"])
async def test_structured_output_drives_a_branch(data_dir: Path, mode: Mode) -> None:
    write_workflow(data_dir, "judge", JUDGE)
    async with FakeOpenAI(mode=mode) as fake:
        fake.script_forever(answer_structured({"big": True, "reason": "it is huge"}))
        async with in_process_gateway(
            data_dir,
            providers={"local": {"kind": "openai", "base_url": fake.base_url}},
            models={"default": "local:fake-model"},
        ) as gw:
            client = await gw.client()
            execution_id = await trigger(client, "judge", {"n": 10**6})
            done = await wait_status(client, execution_id, TERMINAL)
        assert done.execution.status == "completed", done.execution.error
        assert [s.step_id for s in done.execution.steps] == ["judge", "shout"]
        assert done.execution.steps[0].output == {"big": True, "reason": "it is huge"}
        assert (data_dir / "workspace" / "verdict.txt").read_text() == "it is huge"
        assert "1000000" in str(fake.requests[-1]["messages"])
        if mode == "llamacpp":
            # The forced tool call was refused, then the prompted-JSON form answered.
            assert fake.rejected == 1
            assert fake.calls == 2
        else:
            assert fake.rejected == 0
            assert fake.calls == 1


async def test_plain_text_model_step(data_dir: Path) -> None:
    write_workflow(
        data_dir,
        "hello",
        """
        name: Hello
        steps:
          - {id: greet, action: model, prompt: "Say hello to {{ execution.workflowId }}"}
        """,
    )
    async with FakeOpenAI() as fake:
        fake.script(Text("hello there"))
        async with in_process_gateway(
            data_dir,
            providers={"local": {"kind": "openai", "base_url": fake.base_url}},
            models={"default": "local:fake-model"},
        ) as gw:
            client = await gw.client()
            execution_id = await trigger(client, "hello")
            done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "completed"
    assert done.execution.steps[0].output == "hello there"
    assert "Say hello to hello" in str(fake.requests[0]["messages"])


async def test_model_server_error_fails_the_step_with_the_reason(data_dir: Path) -> None:
    write_workflow(
        data_dir,
        "hello",
        "name: Hello\nsteps:\n  - {id: greet, action: model, prompt: hi}\n",
    )
    async with FakeOpenAI() as fake:
        fake.script_forever(HttpError(400, "model 'fake-model' is not loaded"))
        async with in_process_gateway(
            data_dir,
            providers={"local": {"kind": "openai", "base_url": fake.base_url}},
            models={"default": "local:fake-model"},
        ) as gw:
            client = await gw.client()
            execution_id = await trigger(client, "hello")
            done = await wait_status(client, execution_id, TERMINAL)
    assert done.execution.status == "failed"
    assert "not loaded" in (done.execution.error or "")
    assert "400" in (done.execution.error or "")
