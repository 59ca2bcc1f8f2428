"""The states an MCP server goes through, defined once for the gateway, the CLI and doctor."""

from __future__ import annotations

from enum import StrEnum


class McpState(StrEnum):
    #: Configured, not needed yet (servers start on first use).
    IDLE = "idle"
    #: Connecting, or reconnecting after the server died; callers wait (bounded) for it.
    STARTING = "starting"
    READY = "ready"
    #: Could not start; its tools are absent and it is retried in the background with backoff.
    FAILED = "failed"
    #: `enabled = false` in config.toml.
    DISABLED = "disabled"
    STOPPED = "stopped"
