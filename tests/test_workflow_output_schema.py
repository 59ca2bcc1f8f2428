"""A model step's `output_schema` is enforced at the step (issue 10 item 5).

Real provider path: pydantic-ai's OpenAI model over HTTP to the fake server the test starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.fake_openai import FakeOpenAI, JsonContent, ToolCall, tool_names
from tests.support.gateway import in_process_gateway
from tests.support.workflows import TERMINAL, trigger, wait_status, write_workflow

JUDGE = """
    name: Judge
    steps:
      - id: judge
        action: model
        prompt: "Is 10 big?"
        {retry}
        output_schema:
          type: object
          properties:
            big: {{type: boolean}}
            items:
              type: array
              items:
                type: object
                properties: {{price: {{type: number, minimum: 0}}}}
                required: [price]
          required: [big]
      - id: after
        action: tool
        tool: file.write
        args: {{path: big.txt, content: "big={{{{ steps.judge.output.big }}}}", mode: overwrite}}
"""


def answer(verdict: dict[str, Any]) -> Any:
    """Answer through the output tool pydantic-ai offered, whatever its name."""

    def reply(body: dict[str, Any]) -> Any:
        names = tool_names(body)
        return ToolCall(names[0], verdict) if names else JsonContent(verdict)

    return reply


async def run_judge(data_dir: Path, fake: FakeOpenAI, retry: str = "") -> Any:
    write_workflow(data_dir, "judge", JUDGE.format(retry=retry))
    async with in_process_gateway(
        data_dir,
        providers={"local": {"kind": "openai", "base_url": fake.base_url}},
        models={"default": "local:fake-model"},
    ) as gw:
        client = await gw.client()
        execution_id = await trigger(client, "judge")
        return (await wait_status(client, execution_id, TERMINAL)).execution


async def test_an_answer_that_breaks_the_schema_fails_the_step_with_its_path(
    data_dir: Path,
) -> None:
    async with FakeOpenAI() as fake:
        fake.script_forever(answer({"big": True, "items": [{"price": 3}, {"price": -1}]}))
        done = await run_judge(data_dir, fake)
    assert done.status == "failed"
    assert [s.step_id for s in done.steps] == ["judge"]
    error = done.steps[0].error or ""
    assert "does not match output_schema at $.items[1].price" in error, error
    assert "-1 is less than the minimum of 0" in error
    assert not (data_dir / "workspace" / "big.txt").exists()


async def test_a_bad_answer_is_retried_per_the_policy(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script(answer({"big": "yes"}), answer({"big": False}))
        done = await run_judge(data_dir, fake, retry="retry: {attempts: 2, backoff: 0s}")
        assert fake.calls == 2
    assert done.status == "completed", done.error
    first, second, after = done.steps
    assert (first.step_id, first.attempt, first.status) == ("judge", 1, "failure")
    assert "at $.big: 'yes' is not of type 'boolean'" in (first.error or "")
    assert (second.attempt, second.status, second.output) == (2, "success", {"big": False})
    assert after.status == "success"
    assert (data_dir / "workspace" / "big.txt").read_text() == "big=False"


async def test_a_missing_required_field_names_the_object(data_dir: Path) -> None:
    async with FakeOpenAI() as fake:
        fake.script_forever(answer({"items": []}))
        done = await run_judge(data_dir, fake)
    assert done.status == "failed"
    assert "at $: 'big' is a required property" in (done.error or "")
