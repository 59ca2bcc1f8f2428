"""`file.read` and `file.write`: text files inside the workspace, and nowhere else.

Every open goes through `hearth.tools.workspace` (directory descriptors, no links followed,
no hard-linked files), so a path swapped under us between two calls cannot lead out.

File I/O runs in a worker thread so a slow disk never stalls the event loop that also serves
every WebSocket client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import stat
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from hearth.tools.base import Risk, Tool, ToolArgs, ToolContext, ToolError
from hearth.tools.workspace import (
    WorkspacePath,
    check_regular,
    open_file,
    open_parent,
    resolve_in_workspace,
    symlink_error,
)

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
        with open_parent(target) as parent:
            fd = open_file(target, parent, os.O_RDONLY)
        with os.fdopen(fd, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_READ_BYTES:
                raise ToolError(
                    f"{target.shown!r} is {size} bytes; "
                    f"file.read only reads files up to {MAX_READ_BYTES} bytes (1 MiB)"
                )
            # One byte past the limit tells us the file grew after fstat().
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


def _existing_mode(target: WorkspacePath, parent: int) -> int:
    """The mode to keep when replacing a file; refuses what `open_file` would refuse."""
    try:
        info = os.stat(target.name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return NEW_FILE_MODE
    if stat.S_ISLNK(info.st_mode):
        raise symlink_error(target.shown)
    check_regular(target, info)
    return stat.S_IMODE(info.st_mode)


def _replace_atomically(target: WorkspacePath, parent: int, data: bytes) -> None:
    """Readers see the old file or the new one, never half of it, even if we crash.

    The temporary file is created and renamed relative to `parent`, the descriptor reached
    without following links, so the new file lands in that directory whatever the path
    names by now.
    """
    mode = _existing_mode(target, parent)
    tmp_name = f".{target.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(tmp_name, flags, 0o600, dir_fd=parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_name, target.name, src_dir_fd=parent, dst_dir_fd=parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name, dir_fd=parent)
        raise


def _write_text(target: WorkspacePath, content: str, mode: str) -> dict[str, Any]:
    data = content.encode("utf-8")
    try:
        with open_parent(target, create=True) as parent:
            if mode == "append":
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
                fd = open_file(target, parent, flags, NEW_FILE_MODE)
                with os.fdopen(fd, "ab") as handle:
                    handle.write(data)
            else:
                _replace_atomically(target, parent, data)
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
