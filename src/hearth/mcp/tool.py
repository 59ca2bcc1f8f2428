"""An MCP server's tool as a Hearth `Tool`: `SERVER.TOOL`, validated by its JSON Schema.

Built-in tools are classes with class-level metadata; an MCP tool is only known at run time,
so `mcp_tool` makes one small subclass per listed tool and the registry, the policy and the
approval flow treat it like any other. Its `read_only` is the server's `readOnlyHint` only
when the person allowed hints (`[mcp] trust_read_only_hints`): a hint is the server's claim,
and a server is not trusted to decide alone that its tools may run unasked.
"""

from __future__ import annotations

import copy
import re
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from hearth.tools.base import Risk, Tool, ToolArgumentsError, ToolContext

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class Caller(Protocol):
    """What a tool needs of its server (kept abstract so this module imports no SDK)."""

    async def call(self, tool: str, args: dict[str, Any]) -> Any: ...


class AnyArgs(BaseModel):
    """Stands in for an argument model: an MCP tool's arguments are checked by its schema."""

    model_config = ConfigDict(extra="allow")


class McpTool(Tool):
    server_name: ClassVar[str]
    remote_name: ClassVar[str]
    input_schema: ClassVar[dict[str, Any]]
    #: The server's `readOnlyHint`, whether or not it is trusted.
    read_only_hint: ClassVar[bool]
    args_model: ClassVar[type[BaseModel]] = AnyArgs

    def __init__(self, server: Caller) -> None:
        # Imported here: a gateway with no MCP server should not load jsonschema (~3 MB).
        import jsonschema

        self._server = server
        self._validator = jsonschema.Draft202012Validator(self.input_schema)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        return copy.deepcopy(cls.input_schema)

    def parse_args(self, raw: dict[str, Any]) -> Any:
        import jsonschema

        try:
            found = list(self._validator.iter_errors(raw))
        except jsonschema.SchemaError:
            # The server's schema is itself broken: let the server judge its arguments.
            return dict(raw)
        errors = sorted(found, key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            raise ToolArgumentsError(
                self.name,
                [
                    {
                        "path": "args" + "".join(f".{p}" for p in error.absolute_path),
                        "message": error.message,
                    }
                    for error in errors
                ],
            )
        return dict(raw)

    def idempotent(self, args: Any) -> bool:
        # Reading twice is as good as reading once; anything else may repeat a side effect.
        return self.read_only

    async def run(self, args: Any, ctx: ToolContext) -> Any:
        return await self._server.call(self.remote_name, dict(args))


def _schema(raw: dict[str, Any] | None) -> dict[str, Any]:
    schema = dict(raw or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def mcp_tool(server: Caller, server_name: str, listed: Any, *, trust_hints: bool) -> McpTool:
    """A Hearth tool for one entry of a server's `tools/list` answer."""
    annotations = listed.annotations
    read_only_hint = bool(annotations is not None and annotations.read_only_hint)
    destructive = bool(annotations is not None and annotations.destructive_hint)
    description = listed.description or listed.title or listed.name
    attrs: dict[str, Any] = {
        "name": f"{server_name}.{listed.name}",
        "description": f"{description} (MCP server {server_name})",
        "risk": Risk.LOW if read_only_hint else Risk.HIGH if destructive else Risk.MEDIUM,
        "read_only": read_only_hint and trust_hints,
        "read_only_hint": read_only_hint,
        "server_name": server_name,
        "remote_name": listed.name,
        "input_schema": _schema(listed.input_schema),
        "__module__": __name__,
    }
    cls = type(
        f"McpTool_{_UNSAFE.sub('_', server_name)}_{_UNSAFE.sub('_', listed.name)}",
        (McpTool,),
        attrs,
    )
    tool: McpTool = cls(server)
    return tool
