"""Confinement of tool paths to `<data-dir>/workspace`, without a check-then-use gap.

The workspace is the only part of the disk a tool may touch, because tool arguments can come
from a language model or a workflow file that a person did not read line by line. Absolute
paths, `~` and `..` are refused before touching the disk, so the error explains itself.

Checking a resolved path and opening it later leaves a window in which a directory can be
swapped for a symbolic link to somewhere else. So nothing here resolves paths: every open
walks from a file descriptor of the workspace, one component at a time, with `O_NOFOLLOW`
(`os.open(name, ..., dir_fd=parent)`), and the final file is opened the same way. A symbolic
link anywhere on the path is refused (links are not followed in the workspace at all), and
whatever is swapped in after a step cannot redirect a step already taken.

Regular files with more than one hard link are refused too: a hard link made inside the
workspace to a file outside it would otherwise be read or appended to in place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hearth.tools.base import ToolError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_DIR_MODE = 0o755


@dataclass(frozen=True)
class WorkspacePath:
    """A path checked to be relative and free of `..`: `parts` are its components.

    `shown` is the path as the caller wrote it (normalised), for results and messages;
    `workspace` is the root every open starts from.
    """

    shown: str
    parts: tuple[str, ...]
    workspace: Path

    @property
    def name(self) -> str:
        return self.parts[-1] if self.parts else "."


def _outside(raw: str, why: str) -> ToolError:
    return ToolError(f"path {raw!r} {why}; it must be relative to the workspace")


def resolve_in_workspace(workspace: Path, raw: str) -> WorkspacePath:
    """Check the spelling of `raw` (no disk access), or raise `ToolError` naming the path."""
    if "\x00" in raw:
        raise ToolError(f"path {raw!r} contains a NUL character")
    candidate = PurePosixPath(raw)
    if candidate.is_absolute():
        raise _outside(raw, "is absolute")
    if candidate.parts and candidate.parts[0].startswith("~"):
        # Nothing expands `~` here; refusing beats silently creating a directory named `~`.
        raise _outside(raw, "starts with '~' (home directories are not expanded)")
    if ".." in candidate.parts:
        raise _outside(raw, "contains '..'")
    return WorkspacePath(shown=candidate.as_posix(), parts=candidate.parts, workspace=workspace)


class SymlinkRefusedError(ToolError):
    """The path goes through a symbolic link; the workspace follows none."""


def symlink_error(shown: str) -> SymlinkRefusedError:
    return SymlinkRefusedError(
        f"path {shown!r} goes through a symbolic link; links are not followed in the "
        "workspace (one could lead outside it)"
    )


def _is_symlink(parent_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=parent_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_child_dir(parent_fd: int, name: str, shown: str, create: bool) -> int:
    """Open directory `name` under `parent_fd` without following a link; maybe create it."""
    for _attempt in range(3):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            if not create:
                raise ToolError(f"{shown!r}: a parent of it does not exist") from None
            with contextlib.suppress(FileExistsError):  # made by someone else meanwhile
                os.mkdir(name, NEW_DIR_MODE, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                if _is_symlink(parent_fd, name):
                    raise symlink_error(shown) from None
                raise ToolError(f"{shown!r}: a parent of it is a file, not a directory") from None
            raise
    raise ToolError(f"{shown!r}: a parent of it keeps changing; try again")


@contextlib.contextmanager
def open_parent(target: WorkspacePath, *, create: bool = False) -> Iterator[int]:
    """A descriptor of the directory holding `target`, reached without following links.

    With `create`, missing directories on the way are made (each one under the descriptor of
    its parent, so none can be made outside).
    """
    try:
        fd = os.open(target.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        if not create:
            raise ToolError("the workspace directory does not exist yet") from None
        target.workspace.mkdir(parents=True, exist_ok=True)
        fd = os.open(target.workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in target.parts[:-1]:
            child = _open_child_dir(fd, name, target.shown, create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def open_dir(target: WorkspacePath) -> int:
    """A descriptor of the directory `target` itself (the caller closes it)."""
    with open_parent(target) as parent:
        if not target.parts:
            return os.dup(parent)
        try:
            return _open_child_dir(parent, target.name, target.shown, create=False)
        except SymlinkRefusedError:
            raise
        except ToolError:
            raise ToolError(f"{target.shown!r} is not a directory in the workspace") from None


def open_file(target: WorkspacePath, parent_fd: int, flags: int, mode: int = 0o644) -> int:
    """Open the final component with `O_NOFOLLOW`; refuse links, non-regular files, hard links.

    `O_NONBLOCK` keeps a FIFO from blocking the open; it is cleared again for regular files.
    """
    if not target.parts:
        raise ToolError(f"{target.shown!r} is a directory, not a file")
    try:
        flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(target.name, flags, mode, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and _is_symlink(parent_fd, target.name):
            raise symlink_error(target.shown) from None
        if exc.errno == errno.EISDIR:
            raise ToolError(f"{target.shown!r} is a directory, not a file") from None
        if exc.errno == errno.ENXIO:  # a FIFO opened for writing with no reader
            raise ToolError(f"{target.shown!r} is not a regular file") from None
        raise
    try:
        check_regular(target, os.fstat(fd))
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_regular(target: WorkspacePath, info: os.stat_result) -> None:
    """Refuse directories, devices, FIFOs and files hard-linked from elsewhere."""
    if stat.S_ISDIR(info.st_mode):
        raise ToolError(f"{target.shown!r} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block the worker thread or never end.
        raise ToolError(f"{target.shown!r} is not a regular file")
    if info.st_nlink > 1:
        raise ToolError(
            f"{target.shown!r} has {info.st_nlink} hard links; file tools refuse hard-linked "
            "files because the other link may be outside the workspace"
        )
