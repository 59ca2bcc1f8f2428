"""`file.read` and `file.write`: text files inside the workspace, and nowhere else.

File I/O runs in a worker thread so a slow disk never stalls the event loop that also serves
every WebSocket client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolError
from hearth.tools.workspace import WorkspacePath, resolve_in_workspace

#: Larger files would not fit in a model's context or a protocol frame anyway.
MAX_READ_BYTES = 1024 * 1024
#: Mode for files the tool creates (private, like the data directory); existing files keep theirs.
NEW_FILE_MODE = 0o600


class FileReadArgs(ToolArgs):
    """Read a UTF-8 text file from the workspace."""

    path: str = Field(
        min_length=1,
        description="File path relative to the workspace, e.g. 'notes/today.md'.",
    )


class FileWriteArgs(ToolArgs):
    """Write UTF-8 text to a file in the workspace, creating parent directories."""

    path: str = Field(
        min_length=1,
        description="File path relative to the workspace, e.g. 'reports/daily.md'.",
    )
    content: str = Field(description="The text to write.")
    mode: Literal["overwrite", "append"] = Field(
        default="overwrite",
        description="'overwrite' replaces the file (atomically); 'append' adds to its end.",
    )


def _read_text(target: WorkspacePath) -> dict[str, Any]:
    try:
        info = target.real.stat()
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"{target.shown!r} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            # A FIFO or device would block the reading thread or never end.
            raise ToolError(f"{target.shown!r} is not a regular file")
        if info.st_size > MAX_READ_BYTES:
            raise ToolError(
                f"{target.shown!r} is {info.st_size} bytes; "
                f"file.read only reads files up to {MAX_READ_BYTES} bytes (1 MiB)"
            )
        with target.real.open("rb") as handle:
            # One byte past the limit tells us the file grew after stat().
            data = handle.read(MAX_READ_BYTES + 1)
    except FileNotFoundError:
        raise ToolError(f"{target.shown!r} does not exist in the workspace") from None
    except NotADirectoryError:
        raise ToolError(f"{target.shown!r}: a parent of it is not a directory") from None
    except PermissionError:
        raise ToolError(f"{target.shown!r} cannot be read: permission denied") from None
    if len(data) > MAX_READ_BYTES:
        raise ToolError(
            f"{target.shown!r} is larger than {MAX_READ_BYTES} bytes; "
            "file.read only reads files up to 1 MiB"
        )
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ToolError(
            f"{target.shown!r} is not UTF-8 text (invalid byte at offset {exc.start}); "
            "file.read only reads UTF-8 text files"
        ) from None
    return {"path": target.shown, "content": content, "size": len(data)}


def _replace_atomically(real: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never half of it, even if we crash."""
    try:
        mode = stat.S_IMODE(real.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, tmp_name = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _write_text(target: WorkspacePath, content: str, mode: str) -> dict[str, Any]:
    data = content.encode("utf-8")
    if target.real.is_dir():
        raise ToolError(f"{target.shown!r} is a directory, not a file")
    try:
        target.real.parent.mkdir(parents=True, exist_ok=True)
        if mode == "append":
            with target.real.open("ab") as handle:
                handle.write(data)
        else:
            _replace_atomically(target.real, data)
    except FileExistsError:
        raise ToolError(f"{target.shown!r}: a parent of it is a file, not a directory") from None
    except NotADirectoryError:
        raise ToolError(f"{target.shown!r}: a parent of it is a file, not a directory") from None
    except IsADirectoryError:
        raise ToolError(f"{target.shown!r} is a directory, not a file") from None
    except PermissionError:
        raise ToolError(f"{target.shown!r} cannot be written: permission denied") from None
    return {"path": target.shown, "bytes": len(data), "mode": mode}


class FileReadTool(Tool):
    name: ClassVar[str] = "file.read"
    description: ClassVar[str] = (
        "Read a UTF-8 text file (up to 1 MiB) from the workspace. "
        "Returns its path, content and size in bytes."
    )
    args_model: ClassVar[type[BaseModel]] = FileReadArgs
    risk: ClassVar[Risk] = Risk.LOW
    read_only: ClassVar[bool] = True

    def idempotent(self, args: Any) -> bool:
        return True

    async def run(self, args: FileReadArgs, ctx: ToolContext) -> dict[str, Any]:
        target = resolve_in_workspace(ctx.workspace, args.path)
        return await asyncio.to_thread(_read_text, target)


class FileWriteTool(Tool):
    name: ClassVar[str] = "file.write"
    description: ClassVar[str] = (
        "Write UTF-8 text to a file in the workspace, replacing it (mode 'overwrite') or "
        "adding to its end (mode 'append'). Parent directories are created."
    )
    args_model: ClassVar[type[BaseModel]] = FileWriteArgs
    risk: ClassVar[Risk] = Risk.MEDIUM
    read_only: ClassVar[bool] = False

    def idempotent(self, args: FileWriteArgs) -> bool:
        return args.mode == "overwrite"  # writing the same content again changes nothing

    async def run(self, args: FileWriteArgs, ctx: ToolContext) -> dict[str, Any]:
        target = resolve_in_workspace(ctx.workspace, args.path)
        return await asyncio.to_thread(_write_text, target, args.content, args.mode)
