"""`shell.run`: the person's own shell, inside the workspace, one approved command at a time.

It is off unless `tools.shell.enabled = true` and `always_gated`, because a shell command can
do anything the gateway's user can. The command runs in a new session (its own process group)
so that a timeout or a cancelled step kills everything it started, not just `/bin/sh`.
Output is read as it arrives and only the first 64 KiB of each stream is kept, so a chatty
command cannot exhaust memory, and it is never blocked on a full pipe either.

The command does not inherit the gateway's environment: that holds provider API keys and the
database URL, and the command's output goes back to a model. It sees `PATH`, `HOME`, `LANG`
and `TZ`, plus `[tools.shell] env` and the variables named in `[tools.shell] pass_env`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolError
from hearth.tools.workspace import SymlinkRefusedError, open_dir, resolve_in_workspace

MAX_OUTPUT_BYTES = 64 * 1024
DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
SHELL = "/bin/sh"
#: How long to wait for a killed process to be reaped before giving up on it.
KILL_GRACE_S = 5.0
#: The only variables a command inherits unless the person names more.
BASE_ENV = ("PATH", "HOME", "LANG", "TZ")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def command_environment(extra: dict[str, str], pass_env: list[str]) -> dict[str, str]:
    """The environment of one command: the minimal base, passed-through names, then `extra`."""
    env = {name: os.environ[name] for name in (*BASE_ENV, *pass_env) if name in os.environ}
    env.setdefault("PATH", DEFAULT_PATH)
    env.update(extra)
    return env


class ShellRunArgs(ToolArgs):
    """Run a shell command (/bin/sh -c) in the workspace."""

    command: str = Field(min_length=1, description="The command line, run by /bin/sh -c.")
    cwd: str | None = Field(
        default=None,
        description="Working directory relative to the workspace; default the workspace itself.",
    )
    timeout: float = Field(
        default=DEFAULT_TIMEOUT_S,
        gt=0,
        le=MAX_TIMEOUT_S,
        description=f"Seconds before the command is killed (at most {MAX_TIMEOUT_S:g}).",
    )


class _Stream:
    """Keeps the head of one output stream; the rest is read and dropped."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = MAX_OUTPUT_BYTES - len(self.data)
        if len(chunk) > room:
            self.truncated = True
        if room > 0:
            self.data += chunk[:room]

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class _Collector(asyncio.SubprocessProtocol):
    """Collects output as it arrives and notes when the process and its pipes are done.

    A protocol (rather than `asyncio.subprocess.Process`) gives us the transport, so we can
    always close it, even when something that escaped the process group still holds a pipe.
    """

    def __init__(self) -> None:
        self.stdout = _Stream()
        self.stderr = _Stream()
        self.exited = asyncio.Event()
        self.pipes_closed = asyncio.Event()
        self._open_pipes = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        chunk = data.encode() if isinstance(data, str) else data
        (self.stdout if fd == 1 else self.stderr).add(chunk)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes:
            self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()

    @property
    def done(self) -> bool:
        return self.exited.is_set() and self.pipes_closed.is_set()


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ShellRunTool(Tool):
    name: ClassVar[str] = "shell.run"
    description: ClassVar[str] = (
        "Run a shell command with /bin/sh -c in the workspace (stdin is empty). Returns "
        "{exitCode, stdout, stderr}; each stream is cut at 64 KiB. A non-zero exit code is "
        "returned, not raised. Every call needs a person's approval."
    )
    args_model: ClassVar[type[BaseModel]] = ShellRunArgs
    risk: ClassVar[Risk] = Risk.HIGH
    read_only: ClassVar[bool] = False
    always_gated: ClassVar[bool] = True

    def __init__(
        self, env: dict[str, str] | None = None, pass_env: list[str] | None = None
    ) -> None:
        self.env = dict(env or {})
        self.pass_env = list(pass_env or [])

    async def run(self, args: ShellRunArgs, ctx: ToolContext) -> dict[str, Any]:
        cwd = resolve_in_workspace(ctx.workspace, args.cwd or ".")
        # Checked without following links. The command itself is not confined (it can `cd /`),
        # which is why every call needs a person's approval; the check keeps `cwd` honest.
        try:
            os.close(await asyncio.to_thread(open_dir, cwd))
        except SymlinkRefusedError:
            raise
        except ToolError:
            raise ToolError(f"cwd {cwd.shown!r} is not a directory in the workspace") from None
        loop = asyncio.get_running_loop()
        collector = _Collector()
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: collector,
                SHELL,
                "-c",
                args.command,
                cwd=ctx.workspace.joinpath(*cwd.parts),
                env=command_environment(self.env, self.pass_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise ToolError(f"shell.run could not start {SHELL}: {exc}") from None
        try:
            async with asyncio.timeout(args.timeout):
                await collector.exited.wait()
                await collector.pipes_closed.wait()
        except TimeoutError:
            raise ToolError(f"shell.run timed out after {args.timeout:g} s") from None
        finally:
            # Timed out or cancelled (step timeout, shutdown): nothing it started may outlive it.
            try:
                if not collector.done:
                    _kill_group(transport.get_pid())
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(KILL_GRACE_S):
                            await collector.exited.wait()
            finally:
                # Also drops our ends of pipes that an escaped grandchild may still hold.
                transport.close()
        return {
            "exitCode": transport.get_returncode(),
            "stdout": collector.stdout.text(),
            "stderr": collector.stderr.text(),
            "stdoutTruncated": collector.stdout.truncated,
            "stderrTruncated": collector.stderr.truncated,
        }
