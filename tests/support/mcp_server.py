"""A small MCP server for the tests, written with the official SDK (`MCPServer`, once FastMCP).

Run as `python -m tests.support.mcp_server stdio` (a subprocess the gateway starts) or
`python -m tests.support.mcp_server http|sse PORTFILE` (streamable HTTP at /mcp, or the older
SSE transport at /sse, on a loopback port the OS picks; the port is written to PORTFILE once
the server listens). Its tools cover what an
MCP host must handle: a read-only tool, a tool with side effects, a tool that kills the
server mid-call, a tool that adds another tool and announces it (`tools/list_changed`), an
image result and an oversized result.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ImageContent, TextContent, ToolAnnotations

#: A 1x1 PNG, for the image result.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def build() -> MCPServer:
    server = MCPServer("test-notes")
    notes = {"groceries": "milk, eggs", "ideas": "write an MCP host"}

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def search(query: str) -> str:
        """Find notes whose name or text contains the query."""
        hits = [f"{k}: {v}" for k, v in sorted(notes.items()) if query in k or query in v]
        return "\n".join(hits) or "no notes match"

    @server.tool()
    def add_note(name: str, text: str) -> str:
        """Store a note (changes the notes: not read-only)."""
        notes[name] = text
        return f"stored {name}"

    @server.tool()
    def crash(really: bool = True) -> str:
        """Kill the server process in the middle of the call (when `really`)."""
        if really:
            print("crashing on purpose", file=sys.stderr, flush=True)
            os._exit(3)
        return "still alive"

    @server.tool()
    async def grow(ctx: Context) -> str:
        """Add the tool `extra` and tell the client its tool list changed."""

        def extra() -> str:
            """A tool that exists only after `grow`."""
            return "extra here"

        if "extra" not in {t.name for t in await server.list_tools()}:
            server.add_tool(extra, name="extra")
        await ctx.session.send_tool_list_changed()
        return "grown"

    @server.tool()
    def picture() -> list[TextContent | ImageContent]:
        """Answer with a caption and an image."""
        return [
            TextContent(type="text", text="a pixel"),
            ImageContent(type="image", data=base64.b64encode(PIXEL).decode(), mimeType="image/png"),
        ]

    @server.tool()
    def big(size: int = 100_000) -> str:
        """Answer with `size` characters."""
        return "x" * size

    @server.tool()
    def whoami() -> str:
        """A digest of NOTES_TOKEN (to check secrets reach the server; the gateway scrubs
        stored secrets from results, so the token itself would come back redacted)."""
        token = os.environ.get("NOTES_TOKEN", "")
        print(f"token is {token}", file=sys.stderr, flush=True)
        return hashlib.sha256(token.encode()).hexdigest()[:16] if token else "(unset)"

    return server


async def serve_http(port_file: Path, kind: str) -> None:
    import uvicorn

    server = build()
    app = server.sse_app() if kind == "sse" else server.streamable_http_app()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    http = uvicorn.Server(config)
    serving = asyncio.create_task(http.serve(sockets=[sock]))
    while not http.started:
        await asyncio.sleep(0.01)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(sock.getsockname()[1]))
    tmp.replace(port_file)
    await serving


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "stdio"
    if kind == "stdio":
        build().run("stdio")
    else:
        asyncio.run(serve_http(Path(sys.argv[2]), kind))


if __name__ == "__main__":
    main()
