"""The fake OpenAI server speaks the real wire format: pydantic-ai's OpenAI chat model parses it.

Workflow, chat and heartbeat tests rely on ``tests.support.fake_openai`` standing in for a
model provider, so these tests pin down that its replies survive the real client path
(``OpenAIChatModel`` -> ``openai`` SDK -> HTTP) and that its scripting, llama.cpp imitation,
error and delay behaviour do what those tests will assume.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic_ai import Agent, NativeOutput, PromptedOutput, StructuredDict, ToolOutput
from pydantic_ai.exceptions import ModelHTTPError
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider

from tests.support.fake_openai import (
    DEFAULT_REPLY_TEXT,
    MODEL_ID,
    Delay,
    FakeOpenAI,
    HttpError,
    JsonContent,
    Mode,
    Spec,
    Text,
    ToolCall,
    ToolCalls,
    tool_names,
    tool_results,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"mood": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["mood", "score"],
}


@asynccontextmanager
async def fake_model(
    mode: Mode = "standard",
) -> AsyncIterator[tuple[FakeOpenAI, OpenAIChatModel]]:
    """A running fake and a real OpenAI chat model pointed at it.

    The provider is entered so that its HTTP client (and its pooled connections to the fake)
    is closed before the fake stops; otherwise every test leaks sockets.
    """
    async with (
        FakeOpenAI(mode) as fake,
        OpenAIProvider(base_url=fake.base_url, api_key="test") as provider,
    ):
        yield fake, OpenAIChatModel(MODEL_ID, provider=provider)


def call_output_tool(body: dict[str, Any]) -> Spec:
    """Answer a ToolOutput request the way a model would: by calling the offered output tool."""
    return ToolCall(tool_names(body)[0], {"mood": "calm", "score": 7})


async def sse_events(response: httpx.Response) -> list[str]:
    """The ``data:`` payloads of a server-sent event stream, in order."""
    events: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith("data: "):
            events.append(line.removeprefix("data: "))
    return events


async def test_non_streamed_text() -> None:
    async with fake_model() as (fake, model):
        fake.script(Text("hello world"))
        result = await Agent(model).run("say hello")

        assert result.output == "hello world"
        assert result.usage.input_tokens > 0
        assert result.usage.output_tokens > 0
        assert fake.calls == 1
        [request] = fake.requests
        assert request["model"] == MODEL_ID
        assert request["stream"] is False
        assert request["messages"][-1] == {"role": "user", "content": "say hello"}


async def test_streamed_text_arrives_as_ordered_deltas_with_usage() -> None:
    async with fake_model() as (fake, model):
        fake.script(Text("Hello, brave new world!", chunks=["Hello", ", ", "brave new", " world!"]))
        agent = Agent(model)

        async with agent.run_stream("greet me") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]

        assert deltas == ["Hello", ", ", "brave new", " world!"]
        assert result.usage.input_tokens > 0
        assert result.usage.output_tokens > 0
        [request] = fake.requests
        assert request["stream"] is True
        assert request["stream_options"] == {"include_usage": True}


async def test_streamed_text_splits_word_by_word_by_default() -> None:
    async with fake_model() as (fake, model):
        fake.script(Text("one two  three"))
        async with Agent(model).run_stream("count") as result:
            deltas = [d async for d in result.stream_text(delta=True, debounce_by=None)]
        assert deltas == ["one ", "two  ", "three"]


async def test_tool_call_then_text_after_the_tool_result() -> None:
    seen: list[tuple[str, int]] = []

    def reply(body: dict[str, Any]) -> Spec:
        if not tool_results(body):
            return ToolCall("get_weather", {"city": "Oslo", "days": 2})
        return Text(f"Forecast: {tool_results(body)[-1]['content']}")

    async with fake_model() as (fake, model):
        fake.script_forever(reply)
        agent = Agent(model)

        @agent.tool_plain
        def get_weather(city: str, days: int) -> str:
            """Weather forecast for a city."""
            seen.append((city, days))
            return "sunny"

        result = await agent.run("weather in Oslo?")

        assert seen == [("Oslo", 2)]
        assert result.output == "Forecast: sunny"
        assert fake.calls == 2
        first, second = fake.requests
        assert tool_names(first) == ["get_weather"]
        assert first.get("tool_choice") == "auto"
        [assistant] = [m for m in second["messages"] if m["role"] == "assistant"]
        assert assistant["tool_calls"][0]["id"] == "call_1"
        assert tool_results(second)[0]["tool_call_id"] == "call_1"


async def test_streamed_parallel_tool_calls_reassemble_fragmented_arguments() -> None:
    calls: list[str] = []

    async def reply(body: dict[str, Any]) -> Spec:  # async callables are accepted too
        if tool_results(body):
            return Text("done")
        return ToolCalls(
            [
                ToolCall("note", {"text": "a fairly long first argument value"}),
                ToolCall("note", {"text": "second"}),
            ]
        )

    async with fake_model() as (fake, model):
        fake.script_forever(reply)
        agent = Agent(model)

        @agent.tool_plain
        def note(text: str) -> str:
            """Write a note."""
            calls.append(text)
            return "noted"

        async with agent.run_stream("take notes") as result:
            output = await result.get_output()

        assert output == "done"
        assert sorted(calls) == ["a fairly long first argument value", "second"]
        assert len(tool_results(fake.requests[-1])) == 2


async def test_structured_output_through_the_output_tool() -> None:
    async with fake_model() as (fake, model):
        fake.script(call_output_tool)
        agent = Agent(model, output_type=StructuredDict(SCHEMA))

        result = await agent.run("how are you?")

        assert result.output == {"mood": "calm", "score": 7}
        [request] = fake.requests
        assert tool_names(request) == ["final_result"]
        assert request["tool_choice"] == "required"


async def test_native_structured_output_with_json_content() -> None:
    async with fake_model() as (fake, model):
        fake.script(JsonContent({"mood": "bright", "score": 9}))
        agent = Agent(model, output_type=NativeOutput(StructuredDict(SCHEMA)))

        result = await agent.run("how are you?")

        assert result.output == {"mood": "bright", "score": 9}
        assert fake.requests[0]["response_format"]["type"] == "json_schema"


async def test_llamacpp_rejects_forced_tools_and_json_schema_but_takes_prompted_output() -> None:
    async with fake_model("llamacpp") as (fake, model):
        fake.script(JsonContent({"mood": "fine", "score": 5}))

        with pytest.raises(ModelHTTPError) as forced:
            await Agent(model, output_type=ToolOutput(StructuredDict(SCHEMA))).run("mood?")
        assert forced.value.status_code == 400
        assert "tool_choice 'required' is not supported" in str(forced.value.body)

        with pytest.raises(ModelHTTPError) as native:
            await Agent(model, output_type=NativeOutput(StructuredDict(SCHEMA))).run("mood?")
        assert native.value.status_code == 400
        assert "json_schema" in str(native.value.body)

        assert fake.rejected == 2
        assert fake.pending == 1  # rejected requests consume no scripted reply

        prompted = Agent(model, output_type=PromptedOutput(StructuredDict(SCHEMA)))
        result = await prompted.run("mood?")

        assert result.output == {"mood": "fine", "score": 5}
        assert fake.calls == 3
        assert fake.rejected == 2
        assert fake.requests[-1]["response_format"] == {"type": "json_object"}


async def test_llamacpp_rejects_a_tool_choice_naming_a_function() -> None:
    async with FakeOpenAI(mode="llamacpp") as fake, httpx.AsyncClient() as client:
        body = {
            "model": MODEL_ID,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
        }
        response = await client.post(f"{fake.base_url}/chat/completions", json=body)
        assert response.status_code == 400
        assert "specific function" in response.json()["error"]["message"]
        assert fake.rejected == 1
        assert fake.requests == [body]


async def test_http_error_reaches_the_agent_as_model_http_error() -> None:
    async with fake_model() as (fake, model):
        fake.script(HttpError(500, "overloaded", should_retry=False))
        with pytest.raises(ModelHTTPError) as error:
            await Agent(model).run("hi")
        assert error.value.status_code == 500
        assert error.value.body == {
            "message": "overloaded",
            "type": "server_error",
            "param": None,
            "code": None,
        }
        assert fake.calls == 1  # x-should-retry: false stopped the SDK's retries


async def test_empty_queue_answers_ok_and_script_forever_overrides_it() -> None:
    async with fake_model() as (fake, model):
        agent = Agent(model)
        assert (await agent.run("a")).output == DEFAULT_REPLY_TEXT
        fake.script_forever(Text("always"))
        fake.script(Text("first"))
        assert (await agent.run("b")).output == "first"
        assert (await agent.run("c")).output == "always"
        assert (await agent.run("d")).output == "always"


async def test_delay_then_reply() -> None:
    async with fake_model() as (fake, model):
        fake.script(Delay(0, then=Text("late")))
        assert (await Agent(model).run("hi")).output == "late"


async def test_delay_ends_when_the_client_disconnects() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient() as client:
        fake.script(Delay(3600))
        body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}]}
        request = asyncio.create_task(client.post(f"{fake.base_url}/chat/completions", json=body))
        await fake.wait_for_calls(1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        await fake.wait_for_disconnects(1)
        assert fake.disconnects == 1


async def test_stopping_releases_a_delayed_request() -> None:
    async with httpx.AsyncClient() as client:
        async with FakeOpenAI() as fake:
            fake.script(Delay(3600, then=Text("bye")))
            body = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}]}
            url = f"{fake.base_url}/chat/completions"
            request = asyncio.create_task(client.post(url, json=body))
            await fake.wait_for_calls(1)
        response = await request
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "bye"
        with pytest.raises(httpx.ConnectError):
            await client.get(url.replace("/chat/completions", "/models"))


async def test_stream_wire_format_with_and_without_usage() -> None:
    body: dict[str, Any] = {
        "model": "any-name",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
    }
    async with FakeOpenAI() as fake, httpx.AsyncClient() as client:
        url = f"{fake.base_url}/chat/completions"
        async with client.stream("POST", url, json=body) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            plain = await sse_events(response)
        with_usage = {**body, "stream_options": {"include_usage": True}}
        async with client.stream("POST", url, json=with_usage) as response:
            counted = await sse_events(response)

    assert plain[-1] == "[DONE]"
    chunks = [json.loads(event) for event in plain[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "any-name" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks)

    assert counted[-1] == "[DONE]"
    final = json.loads(counted[-2])
    assert final["choices"] == []
    assert final["usage"]["total_tokens"] == (
        final["usage"]["prompt_tokens"] + final["usage"]["completion_tokens"]
    )


async def test_invalid_requests_get_400_and_models_lists_the_fake_model() -> None:
    async with FakeOpenAI() as fake, httpx.AsyncClient() as client:
        url = f"{fake.base_url}/chat/completions"
        no_messages = await client.post(url, json={"model": MODEL_ID})
        no_model = await client.post(url, json={"messages": [{"role": "user", "content": "x"}]})
        not_json = await client.post(url, content=b"nope")
        models = await client.get(f"{fake.base_url}/models")

        for response in (no_messages, no_model, not_json):
            assert response.status_code == 400
            assert response.json()["error"]["type"] == "invalid_request_error"
        assert fake.calls == 3
        assert fake.requests[2] == {"_raw": "nope"}
        assert [m["id"] for m in models.json()["data"]] == [MODEL_ID]


def test_text_chunks_must_join_to_the_text() -> None:
    with pytest.raises(ValueError, match="join"):
        Text("abc", chunks=["a", "c"])
