"""Pointers that let a terminal find a gateway started with `--data-dir`.

A gateway announces itself in its data directory (`runtime.json`), but another terminal only
knows the default data directory unless HEARTH_DATA_DIR is exported there too. So each running
gateway also leaves a small pointer in the user's runtime directory (`$XDG_RUNTIME_DIR/hearth`,
or platformdirs' fallback), naming its data directory. The CLI reads them only when the default
data directory has no running gateway. Pointers are per user (the directory must be ours and
0700), removed on a clean stop, and a pointer whose process is gone is ignored and deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from hearth.datadir import PRIVATE_DIR, DataDirError, pid_alive, read_runtime, write_private_json

POINTER_PREFIX = "gateway-"


@dataclass(frozen=True)
class GatewayPointer:
    pid: int
    port: int
    data_dir: Path
    path: Path


def pointer_dir() -> Path | None:
    """The user's private runtime directory for pointers, created 0700; None if unusable.

    Refused when it or its parent belongs to another user (a directory in /tmp made by
    someone else could be used to point our CLI at their gateway).
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp/runtime-UID.
        warnings.simplefilter("ignore")
        directory = Path(platformdirs.user_runtime_dir("hearth", appauthor=False))
    try:
        directory.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        directory.mkdir(exist_ok=True, mode=PRIVATE_DIR)
        for path in (directory.parent, directory):
            info = path.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                return None
        if stat.S_IMODE(directory.lstat().st_mode) & 0o077:
            os.chmod(directory, PRIVATE_DIR)
    except OSError:
        return None
    return directory


def write_pointer(data_dir: Path, pid: int, port: int, url: str) -> Path | None:
    """Leave a pointer to this gateway; None when there is no usable runtime directory."""
    directory = pointer_dir()
    if directory is None:
        return None
    path = directory / f"{POINTER_PREFIX}{pid}-{port}.json"
    try:
        write_private_json(
            path, {"pid": pid, "port": port, "url": url, "dataDir": str(data_dir.resolve())}
        )
    except OSError:
        return None
    return path


def remove_pointer(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def live_gateways() -> list[GatewayPointer]:
    """Gateways of this user that are running now, by their pointers (stale ones deleted)."""
    directory = pointer_dir()
    if directory is None:
        return []
    found = []
    for path in sorted(directory.glob(f"{POINTER_PREFIX}*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pointer = GatewayPointer(
                pid=int(data["pid"]),
                port=int(data["port"]),
                data_dir=Path(str(data["dataDir"])),
                path=path,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if _running(pointer):
            found.append(pointer)
        elif not pid_alive(pointer.pid):
            remove_pointer(path)
    return found


def _running(pointer: GatewayPointer) -> bool:
    """The process lives and its data directory says it is the gateway there."""
    if not pid_alive(pointer.pid):
        return False
    try:
        runtime = read_runtime(pointer.data_dir / "runtime.json")
    except DataDirError:
        return False
    return runtime.pid == pointer.pid and runtime.port == pointer.port
