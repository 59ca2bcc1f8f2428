"""Files in the data directory that the gateway, the CLI and the client all need to agree on.

`gateway.token` is the shared secret (0600, created on first start); `runtime.json` tells a
client where the running gateway listens. Both are written atomically (write to a temporary
file, then rename) so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs


def default_data_dir() -> Path:
    """The platform's user data directory (`~/.local/share/hearth` on Linux)."""
    return Path(platformdirs.user_data_dir("hearth", appauthor=False))


class DataDirError(Exception):
    """A data-directory file is missing or unreadable; the message says what to do."""


#: Chat history, workflow outputs and keys live here: only their owner may read them.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
#: The umask the gateway runs with, so that SQLite's files, the workspace and everything the
#: tools write come out private without each caller remembering a mode.
PRIVATE_UMASK = 0o077
#: Subdirectories whose own mode is fixed along with the data directory. Their contents are not
#: walked: once the data directory is 0700 nobody else can reach them, and a big workspace
#: should not slow every start-up.
PRIVATE_SUBDIRS = ("workspace", "workflows")


def secure_data_dir(data_dir: Path) -> str | None:
    """Create the data directory 0700, or make an existing one private.

    Returns one warning line when modes had to be fixed (a data directory made before Hearth
    cared, or by hand), else None. Files directly inside lose their group and other bits;
    symlinks are left alone (their target may not be ours).
    """
    if not data_dir.exists():
        data_dir.mkdir(parents=True, mode=PRIVATE_DIR)
        os.chmod(data_dir, PRIVATE_DIR)  # mkdir's mode is filtered by the umask
        return None
    old_mode = _make_private(data_dir, PRIVATE_DIR)
    entries = 0
    for entry in data_dir.iterdir():
        if entry.is_symlink():
            continue
        if entry.is_dir():
            if entry.name in PRIVATE_SUBDIRS and _make_private(entry, PRIVATE_DIR) is not None:
                entries += 1
        elif entry.is_file() and _make_private(entry, PRIVATE_FILE, keep_exec=True) is not None:
            entries += 1
    if old_mode is not None:
        return (
            f"{data_dir} was readable by other users (mode {old_mode:04o}): made it 0700 "
            f"and {entries} entries inside private"
        )
    if entries:
        return (
            f"{entries} entries in {data_dir} were readable by other users: made them private "
            "(0600 files, 0700 directories)"
        )
    return None


def create_private_file(path: Path) -> None:
    """Create an empty file readable by its owner only, unless it exists already."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))


def _make_private(path: Path, mode: int, *, keep_exec: bool = False) -> int | None:
    """chmod away group/other bits; the old mode when it changed, else None."""
    current = path.stat().st_mode & 0o7777
    if not current & 0o077:
        return None
    wanted = (current & 0o700) | (mode & 0o700) if keep_exec else mode
    os.chmod(path, wanted)
    return current


def _write_atomic(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
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
    _write_atomic(path, json.dumps(info.to_json(), indent=2) + "\n", 0o600)


def remove_runtime(path: Path, pid: int | None = None) -> None:
    """Delete `runtime.json`; with `pid`, only when that process wrote it.

    A gateway that stops must never delete the file of another gateway that is still running,
    or `hearth status` would call that one "not running".
    """
    if pid is not None:
        try:
            current = read_runtime(path)
        except DataDirError:
            return
        if current.pid != pid:
            return
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


LOCK_FILE = "gateway.lock"


class DataDirBusyError(DataDirError):
    """Another gateway holds the data directory's lock."""

    def __init__(self, data_dir: Path, pid: int | None, port: int | None) -> None:
        self.pid = pid
        self.port = port
        shown_pid = pid if pid is not None else "unknown"
        shown_port = port if port is not None else "not yet bound"
        super().__init__(
            f"another gateway (pid {shown_pid}, port {shown_port}) is using {data_dir}: stop it "
            "first, or start this one with another --data-dir"
        )


class DataDirLock:
    """An exclusive `flock` on `<data-dir>/gateway.lock`, held for the gateway's whole life.

    Two gateways on one data directory would both fire schedules and fight over
    `runtime.json`. The lock is released by the kernel when the process ends, even on SIGKILL,
    so a crash never leaves a stale lock behind; the file itself stays (deleting it would let a
    third process lock a new inode while a second still holds the old one). The holder writes
    its pid and, once bound, its port into the file so that the refused gateway can say who has
    the directory.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise DataDirBusyError naming the holder."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid, port = self._holder()
            raise DataDirBusyError(self.data_dir, pid, port) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.record(port=None)

    def record(self, port: int | None) -> None:
        """Write who holds the lock (the port once the socket is bound)."""
        if self._fd is None:
            raise RuntimeError("the data directory lock is not held")
        text = json.dumps({"pid": os.getpid(), "port": port}) + "\n"
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, text.encode(), 0)

    def _holder(self) -> tuple[int | None, int | None]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            pid = int(data["pid"]) if data.get("pid") is not None else None
            port = int(data["port"]) if data.get("port") is not None else None
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None, None
        if port is None:
            with contextlib.suppress(DataDirError):
                runtime = read_runtime(self.data_dir / "runtime.json")
                if runtime.pid == pid:
                    port = runtime.port
        return pid, port

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor drops the flock
