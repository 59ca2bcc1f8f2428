"""Confinement of tool paths to `<data-dir>/workspace`.

The workspace is the only part of the disk a tool may touch, because tool arguments can come
from a language model or a workflow file that a person did not read line by line. Absolute
paths and `..` are refused before touching the disk, so the error explains itself; symlinks
are checked after `resolve()` follows them, so a link inside the workspace that points
elsewhere cannot be used as a way out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from hearth.tools.base import ToolError


@dataclass(frozen=True)
class WorkspacePath:
    """A path checked to lie inside the workspace.

    `shown` is the path as the caller wrote it (normalised), for results and messages;
    `real` is where it actually lives after symlinks, for the file system calls.
    """

    shown: str
    real: Path


def _outside(raw: str, why: str) -> ToolError:
    return ToolError(f"path {raw!r} {why}; it must be relative to the workspace")


def resolve_in_workspace(workspace: Path, raw: str) -> WorkspacePath:
    """Check `raw` and say where it points, or raise `ToolError` naming the path."""
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
    root = workspace.resolve()
    real = (root / candidate).resolve(strict=False)
    if real != root and not real.is_relative_to(root):
        raise _outside(raw, "leads outside the workspace through a symbolic link")
    return WorkspacePath(shown=candidate.as_posix(), real=real)
