"""Files in the data directory that the gateway, the CLI and the client all need to agree on.

`gateway.token` is the shared secret (0600, created on first start); `runtime.json` tells a
client where the running gateway listens. Both are written atomically (write to a temporary
file, then rename) so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


class DataDirError(Exception):
    """A data-directory file is missing or unreadable; the message says what to do."""


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_private_json(path: Path, data: Any) -> None:
    """JSON readable by the owner only (secrets)."""
    _write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def ensure_token(path: Path) -> str:
    """The token in `path`, creating it (mode 0600) when missing."""
    if not path.exists():
        _write_atomic(path, new_token() + "\n", 0o600)
    return read_token(path)


def read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise DataDirError(
            f"no token at {path}: start the gateway once (`hearth serve`) to create it"
        ) from None
    if not token:
        raise DataDirError(f"{path} is empty: run `hearth token rotate` to make a new token")
    return token


def rotate_token(path: Path) -> str:
    """Replace the token; new connections must use the new one."""
    token = new_token()
    _write_atomic(path, token + "\n", 0o600)
    return token


@dataclass(frozen=True)
class RuntimeInfo:
    """What `runtime.json` holds while a gateway runs."""

    pid: int
    host: str
    port: int
    url: str
    started_at: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["startedAt"] = data.pop("started_at")
        return data


def write_runtime(path: Path, info: RuntimeInfo) -> None:
    _write_atomic(path, json.dumps(info.to_json(), indent=2) + "\n", 0o644)


def remove_runtime(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def read_runtime(path: Path) -> RuntimeInfo:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RuntimeInfo(
            pid=int(data["pid"]),
            host=str(data["host"]),
            port=int(data["port"]),
            url=str(data["url"]),
            started_at=str(data["startedAt"]),
        )
    except FileNotFoundError:
        raise DataDirError(
            f"the gateway is not running (no {path}): start it with `hearth serve`"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise DataDirError(f"{path} is damaged ({exc}); restart the gateway") from None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
