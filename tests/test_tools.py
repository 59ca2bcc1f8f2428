"""The tool registry and the built-in tools, against a real disk, HTTP server, bus and shell."""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import psutil
import pytest
from pydantic import BaseModel, ConfigDict

from hearth.events import LocalEventBus
from hearth.netrules import NetPolicy
from hearth.protocol.messages.notifications import Notification
from hearth.tools import (
    Risk,
    Tool,
    ToolArgumentsError,
    ToolContext,
    ToolError,
    ToolNotFoundError,
    ToolRegistry,
    builtin_tools,
)
from hearth.tools.builtin.files import MAX_READ_BYTES
from hearth.tools.builtin.http import MAX_BODY_BYTES
from hearth.tools.builtin.shell import MAX_OUTPUT_BYTES

# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def workspace(data_dir: Path) -> Path:
    path = data_dir / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def bus() -> LocalEventBus:
    return LocalEventBus()


@pytest.fixture
def ctx(workspace: Path, bus: LocalEventBus) -> ToolContext:
    return ToolContext(
        workspace=workspace, bus=bus, idempotency_key="exec-1:1", source="workflow:test"
    )


@pytest.fixture
def tools() -> ToolRegistry:
    # The fake servers below listen on loopback, which http.request refuses unless allowed.
    return ToolRegistry(
        builtin_tools(shell_enabled=True, http_policy=NetPolicy.parse(["127.0.0.1"], []))
    )


class EchoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


class BrokenTool(Tool):
    name: ClassVar[str] = "test.broken"
    description: ClassVar[str] = "Always fails with an unexpected exception."
    args_model: ClassVar[type[BaseModel]] = EchoArgs
    risk: ClassVar[Risk] = Risk.LOW
    read_only: ClassVar[bool] = True

    async def run(self, args: EchoArgs, ctx: ToolContext) -> Any:
        raise RuntimeError(f"boom: {args.text}")


class RefusingTool(BrokenTool):
    name: ClassVar[str] = "test.refusing"

    async def run(self, args: EchoArgs, ctx: ToolContext) -> Any:
        raise ToolError(f"refused {args.text}")


class BlockingTool(BrokenTool):
    name: ClassVar[str] = "test.blocking"

    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def run(self, args: EchoArgs, ctx: ToolContext) -> Any:
        self.started.set()
        await asyncio.Event().wait()


class ContextTool(BrokenTool):
    name: ClassVar[str] = "test.context"

    async def run(self, args: EchoArgs, ctx: ToolContext) -> Any:
        return {"text": args.text, "key": ctx.idempotency_key, "source": ctx.source}


# --- a real HTTP server on loopback ----------------------------------------------------------


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    content_type: str,
    body: bytes,
    *,
    head: bool = False,
) -> None:
    header = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nX-Test: yes\r\nConnection: close\r\n\r\n"
    )
    writer.write(header.encode() + (b"" if head else body))
    await writer.drain()


async def _serve_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    line = await reader.readline()
    if not line:
        return
    method, target, _ = line.decode().split(" ", 2)
    headers: dict[str, str] = {}
    while (raw := await reader.readline()) not in (b"\r\n", b"\n", b""):
        key, value = raw.decode().split(":", 1)
        headers[key.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    if target == "/hang":
        await asyncio.Event().wait()  # never answers; cancelled when the server stops
    elif target == "/json":
        await _respond(writer, 200, "application/json", b'{"hello": "world", "n": [1, 2]}')
    elif target == "/echo":
        echoed = {"method": method, "headers": headers, "body": body.decode()}
        await _respond(writer, 201, "application/json", json.dumps(echoed).encode())
    elif target == "/text":
        await _respond(
            writer, 200, "text/plain; charset=utf-8", "plain text ✓".encode(), head=method == "HEAD"
        )
    elif target == "/not-json":
        await _respond(writer, 200, "application/json", b"this is not json")
    elif target == "/big":
        await _respond(writer, 200, "application/json", b"[" + b"1," * MAX_BODY_BYTES + b"1]")
    else:
        await _respond(writer, 404, "text/plain", b"no such page")


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    """Base URL of a tiny HTTP/1.1 server; stopped, with its hanging handlers, afterwards."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await _serve_one(reader, writer)
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- registry -------------------------------------------------------------------------------


def test_builtin_tools_leave_shell_out_unless_enabled() -> None:
    assert [t.name for t in builtin_tools()] == [
        "file.read",
        "file.write",
        "http.request",
        "notify",
    ]
    assert "shell.run" not in ToolRegistry(builtin_tools())
    assert "shell.run" in ToolRegistry(builtin_tools(shell_enabled=True))


def test_builtin_metadata(tools: ToolRegistry) -> None:
    meta = {t.name: (t.risk, t.read_only, t.always_gated) for t in tools}
    assert meta == {
        "file.read": (Risk.LOW, True, False),
        "file.write": (Risk.MEDIUM, False, False),
        "http.request": (Risk.MEDIUM, False, False),
        "notify": (Risk.LOW, True, False),
        "shell.run": (Risk.HIGH, False, True),
    }


def test_every_argument_is_described_and_extras_are_forbidden(tools: ToolRegistry) -> None:
    for tool in tools:
        schema = tool.json_schema()
        assert tool.description
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    assert "json" in tools.get("http.request").json_schema()["properties"]


def test_register_get_names_and_contains() -> None:
    registry = ToolRegistry([ContextTool()])
    registry.register(BrokenTool())
    assert registry.names() == ["test.broken", "test.context"]
    assert "test.broken" in registry
    assert "nope" not in registry
    assert [t.name for t in registry] == ["test.broken", "test.context"]
    assert len(registry) == 2
    with pytest.raises(ValueError, match="already registered"):
        registry.register(BrokenTool())


def test_unknown_tool_lists_known_ones(tools: ToolRegistry) -> None:
    with pytest.raises(ToolNotFoundError) as info:
        tools.get("file.delete")
    assert "file.delete" in str(info.value)
    assert "file.read, file.write, http.request, notify, shell.run" in str(info.value)
    with pytest.raises(ToolNotFoundError):
        tools.validate("file.delete", {})


def test_bad_arguments_name_each_field_path(tools: ToolRegistry) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        tools.validate("file.write", {"path": "a.txt", "content": "x", "mode": "truncate"})
    assert str(info.value) == "file.write: args.mode: Input should be 'overwrite' or 'append'"
    assert info.value.errors == [
        {"path": "args.mode", "message": "Input should be 'overwrite' or 'append'"}
    ]

    with pytest.raises(ToolArgumentsError) as info:
        tools.validate("http.request", {"url": "http://x", "headers": {"A": [1]}, "colour": "red"})
    paths = [e["path"] for e in info.value.errors]
    assert paths == ["args.headers.A", "args.colour"]
    assert "args.colour: Extra inputs are not permitted" in str(info.value)

    with pytest.raises(ToolArgumentsError) as info:
        tools.validate("file.write", {"path": "a.txt"})
    assert info.value.errors == [{"path": "args.content", "message": "Field required"}]


@pytest.mark.parametrize("raw", [["a"], "a.txt", 3])
def test_arguments_that_are_not_an_object_are_refused(tools: ToolRegistry, raw: Any) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        tools.validate("file.read", raw)
    assert info.value.errors[0]["path"] == "args"
    assert "should be an object" in str(info.value)


def test_missing_arguments_count_as_empty(tools: ToolRegistry) -> None:
    with pytest.raises(ToolArgumentsError) as info:
        tools.validate("file.read", None)
    assert info.value.errors == [{"path": "args.path", "message": "Field required"}]


def test_http_arguments_are_checked(tools: ToolRegistry) -> None:
    args = tools.validate("http.request", {"method": "post", "url": "https://example.test/x"})
    assert args.model_dump()["method"] == "POST"
    for raw, path, words in [
        ({"url": "ftp://example.test"}, "args.url", "http:// or https://"),
        ({"url": "http://h", "json": {}, "body": "x"}, "args", "either 'json' or 'body'"),
        ({"url": "http://h", "method": "TRACE"}, "args.method", "'GET'"),
        ({"url": "http://h", "timeout": 301}, "args.timeout", "300"),
        ({"url": "http://h", "timeout": 0}, "args.timeout", "greater than 0"),
    ]:
        with pytest.raises(ToolArgumentsError) as info:
            tools.validate("http.request", raw)
        assert info.value.errors[0]["path"] == path
        assert words in info.value.errors[0]["message"]


async def test_call_passes_validated_args_and_context(ctx: ToolContext) -> None:
    registry = ToolRegistry([ContextTool()])
    result = await registry.call("test.context", {"text": "hi"}, ctx)
    assert result == {"text": "hi", "key": "exec-1:1", "source": "workflow:test"}
    with pytest.raises(ToolArgumentsError):
        await registry.call("test.context", {"text": 5}, ctx)


async def test_unexpected_exception_becomes_tool_error(ctx: ToolContext) -> None:
    registry = ToolRegistry([BrokenTool(), RefusingTool()])
    with pytest.raises(ToolError) as info:
        await registry.call("test.broken", {"text": "x"}, ctx)
    assert type(info.value) is ToolError
    assert str(info.value) == "test.broken failed: RuntimeError: boom: x"
    assert isinstance(info.value.__cause__, RuntimeError)
    with pytest.raises(ToolError, match=r"^refused y$"):
        await registry.call("test.refusing", {"text": "y"}, ctx)


async def test_cancellation_propagates(ctx: ToolContext) -> None:
    tool = BlockingTool()
    registry = ToolRegistry([tool])
    task = asyncio.create_task(registry.call("test.blocking", {"text": "x"}, ctx))
    await tool.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# --- files ----------------------------------------------------------------------------------


async def test_write_then_read(tools: ToolRegistry, ctx: ToolContext, workspace: Path) -> None:
    written = await tools.call("file.write", {"path": "notes/today.md", "content": "héllo\n"}, ctx)
    assert written == {"path": "notes/today.md", "bytes": 7, "mode": "overwrite"}
    assert (workspace / "notes" / "today.md").read_text("utf-8") == "héllo\n"
    read = await tools.call("file.read", {"path": "notes/./today.md"}, ctx)
    assert read == {"path": "notes/today.md", "content": "héllo\n", "size": 7}


async def test_overwrite_replaces_and_append_adds(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    target = workspace / "log.txt"
    target.write_text("old old old")
    target.chmod(0o640)
    await tools.call("file.write", {"path": "log.txt", "content": "new"}, ctx)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    result = await tools.call(
        "file.write", {"path": "log.txt", "content": "+more", "mode": "append"}, ctx
    )
    assert result == {"path": "log.txt", "bytes": 5, "mode": "append"}
    assert target.read_text() == "new+more"
    await tools.call("file.write", {"path": "fresh.txt", "content": "a", "mode": "append"}, ctx)
    assert (workspace / "fresh.txt").read_text() == "a"
    assert sorted(p.name for p in workspace.iterdir()) == ["fresh.txt", "log.txt"]


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/passwd", "is absolute"),
        ("../outside.txt", "'..'"),
        ("notes/../../outside.txt", "'..'"),
        ("~/secrets", "'~'"),
    ],
)
async def test_paths_outside_the_workspace_are_refused(
    tools: ToolRegistry, ctx: ToolContext, path: str, words: str
) -> None:
    for name, args in [
        ("file.read", {"path": path}),
        ("file.write", {"path": path, "content": "x"}),
    ]:
        with pytest.raises(ToolError) as info:
            await tools.call(name, args, ctx)
        message = str(info.value)
        assert repr(path) in message
        assert words in message
        assert "must be relative to the workspace" in message


async def test_symlinks_are_never_followed(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (workspace / "escape").symlink_to(outside)
    (workspace / "escape-file").symlink_to(outside / "secret.txt")
    for path in ["escape/secret.txt", "escape-file"]:
        with pytest.raises(ToolError, match="goes through a symbolic link"):
            await tools.call("file.read", {"path": path}, ctx)
        for mode in ["overwrite", "append"]:
            with pytest.raises(ToolError, match="goes through a symbolic link"):
                await tools.call(
                    "file.write", {"path": path, "content": "pwned", "mode": mode}, ctx
                )
    with pytest.raises(ToolError, match="goes through a symbolic link"):
        await tools.call("file.write", {"path": "escape/new/deeper.txt", "content": "x"}, ctx)
    assert (outside / "secret.txt").read_text() == "secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]

    # Even a link that stays inside is refused: it could be re-pointed between two calls.
    (workspace / "real.txt").write_text("inside")
    (workspace / "alias.txt").symlink_to(workspace / "real.txt")
    with pytest.raises(ToolError, match=r"'alias\.txt' goes through a symbolic link"):
        await tools.call("file.read", {"path": "alias.txt"}, ctx)
    with pytest.raises(ToolError, match=r"'alias\.txt' goes through a symbolic link"):
        await tools.call("file.write", {"path": "alias.txt", "content": "changed"}, ctx)
    assert (workspace / "alias.txt").is_symlink()
    assert (workspace / "real.txt").read_text() == "inside"


async def test_hard_linked_files_are_refused(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("private")
    os.link(outside, workspace / "linked.txt")
    with pytest.raises(ToolError, match=r"'linked\.txt' has 2 hard links"):
        await tools.call("file.read", {"path": "linked.txt"}, ctx)
    for mode in ["append", "overwrite"]:
        with pytest.raises(ToolError, match=r"'linked\.txt' has 2 hard links"):
            await tools.call(
                "file.write", {"path": "linked.txt", "content": "+more", "mode": mode}, ctx
            )
    assert outside.read_text() == "private"
    assert (workspace / "linked.txt").read_text() == "private"


def _exchange(a: Path, b: Path) -> None:
    """Swap two names in one step (Linux renameat2 RENAME_EXCHANGE): no moment without both."""
    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, rename_exchange = -100, 2
    if libc.renameat2(at_fdcwd, bytes(a), at_fdcwd, bytes(b), rename_exchange) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _swap_forever(workspace: Path, outside: Path, stop: threading.Event) -> None:
    """Exchange `workspace/realdir` and a symlink to `outside` atomically until stopped."""
    link = workspace / "linkdir"
    link.symlink_to(outside, target_is_directory=True)
    while not stop.is_set():
        _exchange(workspace / "realdir", link)


@pytest.mark.skipif(sys.platform != "linux", reason="atomic exchange needs renameat2")
async def test_a_symlink_swapped_in_during_calls_never_leads_outside(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "peek.txt").write_text("OUTSIDE SECRET")
    (workspace / "realdir").mkdir()
    (workspace / "realdir" / "peek.txt").write_text("inside")
    stop = threading.Event()
    swapper = threading.Thread(target=_swap_forever, args=(workspace, outside, stop))
    swapper.start()
    reads: list[str] = []
    refusals = 0
    try:
        for n in range(300):
            calls = [
                tools.call("file.read", {"path": "realdir/peek.txt"}, ctx),
                tools.call(
                    "file.write",
                    {"path": "realdir/t.txt", "content": f"{n}\n", "mode": "append"},
                    ctx,
                ),
                tools.call("file.write", {"path": "realdir/o.txt", "content": f"{n}"}, ctx),
            ]
            for outcome in await asyncio.gather(*calls, return_exceptions=True):
                if isinstance(outcome, ToolError):
                    refusals += 1
                elif isinstance(outcome, BaseException):
                    raise outcome
                elif "content" in outcome:
                    reads.append(outcome["content"])
    finally:
        stop.set()
        swapper.join()
    assert sorted(p.name for p in outside.iterdir()) == ["peek.txt"]
    assert (outside / "peek.txt").read_text() == "OUTSIDE SECRET"
    assert set(reads) <= {"inside"}
    assert reads, "no read ever got through: the race was not exercised"
    assert refusals, "no call ever met the swapped-in link: the race was not exercised"


async def test_read_refuses_big_binary_missing_and_directories(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    (workspace / "exact.txt").write_bytes(b"a" * MAX_READ_BYTES)
    assert (await tools.call("file.read", {"path": "exact.txt"}, ctx))["size"] == MAX_READ_BYTES
    (workspace / "big.txt").write_bytes(b"a" * (MAX_READ_BYTES + 1))
    with pytest.raises(ToolError, match=r"'big\.txt'.*1 MiB"):
        await tools.call("file.read", {"path": "big.txt"}, ctx)
    (workspace / "image.bin").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ToolError, match=r"'image\.bin' is not UTF-8"):
        await tools.call("file.read", {"path": "image.bin"}, ctx)
    with pytest.raises(ToolError, match="does not exist"):
        await tools.call("file.read", {"path": "missing.txt"}, ctx)
    (workspace / "dir").mkdir()
    with pytest.raises(ToolError, match="is a directory"):
        await tools.call("file.read", {"path": "dir"}, ctx)
    with pytest.raises(ToolError, match="is a directory"):
        await tools.call("file.write", {"path": "dir", "content": "x"}, ctx)
    with pytest.raises(ToolError, match="not a directory"):
        await tools.call("file.write", {"path": "exact.txt/child", "content": "x"}, ctx)


async def test_read_refuses_a_fifo(tools: ToolRegistry, ctx: ToolContext, workspace: Path) -> None:
    os.mkfifo(workspace / "pipe")
    with pytest.raises(ToolError, match="not a regular file"):
        await tools.call("file.read", {"path": "pipe"}, ctx)


# --- http.request ---------------------------------------------------------------------------


async def test_http_json_response(tools: ToolRegistry, ctx: ToolContext, http_server: str) -> None:
    result = await tools.call("http.request", {"method": "GET", "url": f"{http_server}/json"}, ctx)
    assert result["status"] == 200
    assert result["headers"]["x-test"] == "yes"
    assert result["headers"]["content-type"] == "application/json"
    assert result["json"] == {"hello": "world", "n": [1, 2]}
    assert json.loads(result["body"]) == result["json"]
    assert result["truncated"] is False
    json.dumps(result)


async def test_http_text_response_and_404_are_results(
    tools: ToolRegistry, ctx: ToolContext, http_server: str
) -> None:
    text = await tools.call("http.request", {"url": f"{http_server}/text"}, ctx)
    assert text["status"] == 200
    assert text["body"] == "plain text ✓"
    assert "json" not in text
    missing = await tools.call("http.request", {"url": f"{http_server}/nowhere"}, ctx)
    assert missing["status"] == 404
    assert missing["body"] == "no such page"
    head = await tools.call("http.request", {"method": "HEAD", "url": f"{http_server}/text"}, ctx)
    assert head["status"] == 200
    assert head["body"] == ""


async def test_http_json_that_does_not_parse_has_no_json_key(
    tools: ToolRegistry, ctx: ToolContext, http_server: str
) -> None:
    result = await tools.call("http.request", {"url": f"{http_server}/not-json"}, ctx)
    assert result["body"] == "this is not json"
    assert "json" not in result


async def test_http_post_json_and_body(
    tools: ToolRegistry, ctx: ToolContext, http_server: str
) -> None:
    result = await tools.call(
        "http.request",
        {
            "method": "POST",
            "url": f"{http_server}/echo",
            "headers": {"X-Hearth": "1"},
            "json": {"a": [1, "two"], "b": None},
        },
        ctx,
    )
    assert result["status"] == 201
    echoed = result["json"]
    assert echoed["method"] == "POST"
    assert echoed["headers"]["x-hearth"] == "1"
    assert echoed["headers"]["content-type"] == "application/json"
    assert json.loads(echoed["body"]) == {"a": [1, "two"], "b": None}

    raw = await tools.call(
        "http.request",
        {"method": "PUT", "url": f"{http_server}/echo", "body": "raw ✓"},
        ctx,
    )
    assert raw["json"]["method"] == "PUT"
    assert raw["json"]["body"] == "raw ✓"


async def test_http_big_response_is_truncated(
    tools: ToolRegistry, ctx: ToolContext, http_server: str
) -> None:
    result = await tools.call("http.request", {"url": f"{http_server}/big"}, ctx)
    assert result["truncated"] is True
    assert len(result["body"].encode()) == MAX_BODY_BYTES
    assert "json" not in result


async def test_http_timeout(tools: ToolRegistry, ctx: ToolContext, http_server: str) -> None:
    url = f"{http_server}/hang"
    with pytest.raises(ToolError) as info:
        await tools.call("http.request", {"url": url, "timeout": 0.5}, ctx)
    assert str(info.value) == f"http.request GET {url}: timed out after 0.5 s"


async def test_http_connection_refused(tools: ToolRegistry, ctx: ToolContext) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/x"
    with pytest.raises(ToolError) as info:
        await tools.call("http.request", {"url": url}, ctx)
    assert f"http.request GET {url} failed" in str(info.value)


# --- notify ---------------------------------------------------------------------------------


async def test_notify_publishes_a_notification_event(
    tools: ToolRegistry, ctx: ToolContext, bus: LocalEventBus
) -> None:
    subscription = bus.subscribe("notification")
    try:
        result = await tools.call(
            "notify", {"message": "disk almost full", "level": "warning"}, ctx
        )
        assert result == {"delivered": True}
        event = await anext(aiter(subscription))
    finally:
        subscription.close()
    assert event.topic == "notification"
    assert event.data["message"] == "disk almost full"
    assert event.data["level"] == "warning"
    assert event.data["source"] == "workflow:test"
    wire = Notification.model_validate(event.data)  # what the gateway fans out
    assert wire.source == "workflow:test"
    assert wire.timestamp.tzinfo is not None


async def test_notify_defaults_and_limits(
    tools: ToolRegistry, workspace: Path, bus: LocalEventBus
) -> None:
    subscription = bus.subscribe()
    try:
        await tools.call("notify", {"message": "hi"}, ToolContext(workspace=workspace, bus=bus))
        event = await anext(aiter(subscription))
    finally:
        subscription.close()
    assert event.data["level"] == "info"
    assert event.data["source"] is None
    Notification.model_validate(event.data)
    with pytest.raises(ToolArgumentsError, match=r"args\.message"):
        tools.validate("notify", {"message": "x" * 10_001})
    with pytest.raises(ToolArgumentsError, match=r"args\.level"):
        tools.validate("notify", {"message": "x", "level": "critical"})


# --- shell.run ------------------------------------------------------------------------------


async def test_shell_output_and_exit_code(tools: ToolRegistry, ctx: ToolContext) -> None:
    result = await tools.call("shell.run", {"command": "echo hello; echo oops >&2; exit 3"}, ctx)
    assert result["exitCode"] == 3
    assert result["stdout"] == "hello\n"
    assert result["stderr"] == "oops\n"
    assert result["stdoutTruncated"] is False


async def test_shell_stdin_is_empty(tools: ToolRegistry, ctx: ToolContext) -> None:
    result = await tools.call("shell.run", {"command": "cat; echo done"}, ctx)
    assert result == {
        "exitCode": 0,
        "stdout": "done\n",
        "stderr": "",
        "stdoutTruncated": False,
        "stderrTruncated": False,
    }


async def test_shell_output_is_truncated(tools: ToolRegistry, ctx: ToolContext) -> None:
    command = f"head -c {MAX_OUTPUT_BYTES * 3} /dev/zero | tr '\\0' a"
    result = await tools.call("shell.run", {"command": command}, ctx)
    assert result["exitCode"] == 0
    assert result["stdout"] == "a" * MAX_OUTPUT_BYTES
    assert result["stdoutTruncated"] is True


async def test_shell_cwd_is_confined(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path, tmp_path: Path
) -> None:
    root = await tools.call("shell.run", {"command": "pwd -P"}, ctx)
    assert root["stdout"].strip() == str(workspace.resolve())
    (workspace / "sub").mkdir()
    sub = await tools.call("shell.run", {"command": "pwd -P", "cwd": "sub"}, ctx)
    assert sub["stdout"].strip() == str((workspace / "sub").resolve())
    (workspace / "out").symlink_to(tmp_path)
    for cwd in ["/tmp", "..", "sub/../.."]:
        with pytest.raises(ToolError, match="must be relative to the workspace"):
            await tools.call("shell.run", {"command": "pwd", "cwd": cwd}, ctx)
    with pytest.raises(ToolError, match="'out' goes through a symbolic link"):
        await tools.call("shell.run", {"command": "pwd", "cwd": "out"}, ctx)
    with pytest.raises(ToolError, match="not a directory"):
        await tools.call("shell.run", {"command": "pwd", "cwd": "missing"}, ctx)


async def _wait_until_dead(pid: int) -> None:
    """The process is gone or a zombie (nobody may reap it in a container)."""
    for _ in range(200):
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"process {pid} is still running")


async def test_shell_timeout_kills_the_process_group(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    command = "sleep 60 & echo $! > child.pid; wait"
    with pytest.raises(ToolError, match=r"^shell\.run timed out after 0\.5 s$"):
        await tools.call("shell.run", {"command": command, "timeout": 0.5}, ctx)
    await _wait_until_dead(int((workspace / "child.pid").read_text()))


async def test_cancelled_shell_kills_the_process_group(
    tools: ToolRegistry, ctx: ToolContext, workspace: Path
) -> None:
    pid_file = workspace / "child.pid"
    task = asyncio.create_task(
        tools.call("shell.run", {"command": "sleep 60 & echo $! > child.pid; wait"}, ctx)
    )
    while not pid_file.exists() or not pid_file.read_text().strip():
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_until_dead(int(pid_file.read_text()))


def test_shell_arguments(tools: ToolRegistry) -> None:
    with pytest.raises(ToolArgumentsError, match=r"args\.timeout"):
        tools.validate("shell.run", {"command": "true", "timeout": 3601})
    with pytest.raises(ToolArgumentsError, match=r"args\.command"):
        tools.validate("shell.run", {"command": ""})


async def test_shell_sees_a_minimal_environment_plus_what_is_named(
    ctx: ToolContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-do-not-leak-0123456789")
    monkeypatch.setenv("HEARTH_DATABASE_URL", "postgresql://user:pw@db/hearth")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Ada")
    plain = ToolRegistry(builtin_tools(shell_enabled=True))
    seen = await plain.call("shell.run", {"command": "env"}, ctx)
    names = {line.split("=", 1)[0] for line in seen["stdout"].splitlines()}
    assert "sk-do-not-leak" not in seen["stdout"]
    assert "pw@db" not in seen["stdout"]
    assert {"PATH", "HOME"} <= names
    assert names <= {"PATH", "HOME", "LANG", "TZ", "PWD", "SHLVL", "_"}
    configured = ToolRegistry(
        builtin_tools(
            shell_enabled=True, shell_env={"EDITOR": "vi"}, shell_pass_env=["GIT_AUTHOR_NAME"]
        )
    )
    seen = await configured.call("shell.run", {"command": "echo $EDITOR $GIT_AUTHOR_NAME"}, ctx)
    assert seen["stdout"] == "vi Ada\n"
