"""Backup archives of a data directory: create (while the gateway runs), verify, restore.

An archive is a gzip'd tar holding `manifest.json` first, then the files it names. The SQLite
database is copied with `VACUUM INTO`, which reads one consistent snapshot inside a single read
transaction, so a gateway that keeps committing (WAL mode) neither blocks nor tears the copy.
The manifest carries a SHA-256 per file, so `verify` can tell a truncated or edited archive from
a good one before anything is restored.

Restoring never overwrites: it only fills an empty (or missing) directory, so a mistyped path
cannot destroy the live data. The restored database is migrated forward when the archive came
from an older Hearth.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from hearth import __version__

FORMAT = 1
MANIFEST = "manifest.json"
DATABASE = "hearth.db"
#: Files and folders of the data directory an archive carries, besides the database.
PLAIN_FILES = ("config.toml", "HEARTBEAT.md", "gateway.token")
FOLDERS = ("workflows",)
#: Provider API keys and channel tokens: only with `--with-secrets`.
SECRET_FILES = ("secrets.json",)


class BackupError(Exception):
    """The archive or the target is not usable; the message says which and what to do."""


@dataclass
class Manifest:
    format: int
    hearth_version: str
    created_at: str
    backend: str
    revision: str | None
    with_secrets: bool
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> bytes:
        data = {
            "format": self.format,
            "hearthVersion": self.hearth_version,
            "createdAt": self.created_at,
            "backend": self.backend,
            "migrationRevision": self.revision,
            "withSecrets": self.with_secrets,
            "files": self.files,
        }
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes) -> Manifest:
        try:
            data = json.loads(raw)
            return cls(
                format=int(data["format"]),
                hearth_version=str(data["hearthVersion"]),
                created_at=str(data["createdAt"]),
                backend=str(data["backend"]),
                revision=data.get("migrationRevision"),
                with_secrets=bool(data.get("withSecrets", False)),
                files={str(k): str(v) for k, v in dict(data["files"]).items()},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise BackupError(f"{MANIFEST} is not a Hearth backup manifest: {exc}") from exc


@dataclass
class CreatedBackup:
    path: Path
    manifest: Manifest


@dataclass
class Verified:
    manifest: Manifest
    integrity: str | None  # SQLite's integrity_check answer, None without a database


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _revision_of(db_path: Path) -> str | None:
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.DatabaseError:
            return None
    return str(row[0]) if row else None


def snapshot_sqlite(source: Path, target: Path) -> None:
    """A consistent, compacted copy of a live SQLite database (the gateway may keep writing)."""
    if not source.exists():
        raise BackupError(f"no database at {source}: nothing to back up")
    with contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as conn:
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("VACUUM INTO ?", (str(target),))


def _data_files(data_dir: Path, with_secrets: bool) -> Iterator[tuple[str, Path]]:
    names = PLAIN_FILES + (SECRET_FILES if with_secrets else ())
    for name in names:
        path = data_dir / name
        if path.is_file():
            yield name, path
    for folder in FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(data_dir).as_posix(), path


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(mtime)
    tar.addfile(info, io.BytesIO(data))


def default_archive_name(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"hearth-backup-{stamp}.tar.gz"


def create_backup(
    data_dir: Path,
    target: Path,
    *,
    sqlite_path: Path | None,
    with_secrets: bool = False,
) -> CreatedBackup:
    """Write an archive of `data_dir` to `target` (mode 0600). `sqlite_path` is None when the
    database is PostgreSQL: then only the files are archived (pg_dump covers the database)."""
    if target.exists():
        raise BackupError(f"{target} already exists; choose another path or remove it first")
    now = datetime.now(UTC)
    payload: list[tuple[str, bytes, float]] = []
    revision: str | None = None
    if sqlite_path is not None:
        with tempfile.TemporaryDirectory(prefix="hearth-backup-") as tmp:
            copy = Path(tmp) / DATABASE
            snapshot_sqlite(sqlite_path, copy)
            revision = _revision_of(copy)
            payload.append((DATABASE, copy.read_bytes(), now.timestamp()))
    for name, path in _data_files(data_dir, with_secrets):
        payload.append((name, path.read_bytes(), path.stat().st_mtime))
    manifest = Manifest(
        format=FORMAT,
        hearth_version=__version__,
        created_at=now.isoformat(),
        backend="sqlite" if sqlite_path is not None else "postgresql",
        revision=revision,
        with_secrets=with_secrets,
        files={name: _sha256(data) for name, data, _ in payload},
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            _add(tar, MANIFEST, manifest.to_json(), now.timestamp())
            for name, data, mtime in payload:
                _add(tar, name, data, mtime)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise
    return CreatedBackup(target, manifest)


def _safe_member_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"archive member {name!r} would land outside the data directory")
    return path.as_posix()


def _read_members(archive: Path) -> tuple[Manifest, dict[str, bytes]]:
    if not archive.is_file():
        raise BackupError(f"{archive} does not exist")
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                if not member.isfile():
                    raise BackupError(
                        f"archive member {member.name!r} is not a regular file; "
                        "this is not an archive Hearth wrote"
                    )
                name = _safe_member_name(member.name)
                handle = tar.extractfile(member)
                assert handle is not None
                contents[name] = handle.read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{archive} is not a readable backup archive: {exc}") from exc
    if MANIFEST not in contents:
        raise BackupError(f"{archive} has no {MANIFEST}; it is not a Hearth backup")
    manifest = Manifest.from_json(contents.pop(MANIFEST))
    if manifest.format > FORMAT:
        raise BackupError(
            f"{archive} was written by a newer Hearth (format {manifest.format}); upgrade Hearth "
            "to restore it"
        )
    return manifest, contents


def _check(manifest: Manifest, contents: dict[str, bytes]) -> None:
    missing = sorted(set(manifest.files) - set(contents))
    if missing:
        raise BackupError(f"files listed in the manifest are missing: {', '.join(missing)}")
    extra = sorted(set(contents) - set(manifest.files))
    if extra:
        raise BackupError(f"files not listed in the manifest: {', '.join(extra)}")
    for name, digest in manifest.files.items():
        if _sha256(contents[name]) != digest:
            raise BackupError(f"{name} does not match its SHA-256 in the manifest (damaged?)")


def _integrity(db_bytes: bytes) -> str:
    with tempfile.TemporaryDirectory(prefix="hearth-verify-") as tmp:
        path = Path(tmp) / DATABASE
        path.write_bytes(db_bytes)
        try:
            with contextlib.closing(sqlite3.connect(path)) as conn:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
        except sqlite3.DatabaseError as exc:
            return str(exc)
    return "; ".join(str(row[0]) for row in rows)


def verify_backup(archive: Path) -> Verified:
    """Check the manifest, every file's SHA-256 and the database's integrity_check."""
    manifest, contents = _read_members(archive)
    _check(manifest, contents)
    integrity = _integrity(contents[DATABASE]) if DATABASE in contents else None
    if integrity is not None and integrity != "ok":
        raise BackupError(f"the database in {archive} fails integrity_check: {integrity}")
    return Verified(manifest, integrity)


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def restore_files(archive: Path, data_dir: Path) -> Manifest:
    """Verify `archive`, then write its files into `data_dir`, which must be empty or absent."""
    if data_dir.exists() and not _is_empty_dir(data_dir):
        raise BackupError(
            f"{data_dir} is not empty; restore only into a new or empty data directory "
            "(nothing was changed)"
        )
    manifest, contents = _read_members(archive)
    _check(manifest, contents)
    if DATABASE in contents:
        integrity = _integrity(contents[DATABASE])
        if integrity != "ok":
            raise BackupError(f"the database in {archive} fails integrity_check: {integrity}")
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(data_dir, 0o700)
    for name, data in contents.items():
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    return manifest


@dataclass
class RolledBack:
    """What the restored state holds that the live one may have moved past."""

    pending_approvals: list[dict[str, Any]]
    unfinished_executions: list[dict[str, Any]]
    schedules: list[dict[str, Any]]


def rolled_back(db_path: Path) -> RolledBack:
    """Read the restored database: what a person should know before starting the gateway."""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.row_factory = sqlite3.Row
        approvals = [
            dict(row)
            for row in conn.execute(
                "SELECT id, kind, execution_id, step_id, title FROM approvals "
                "WHERE status = 'pending' ORDER BY requested_at"
            )
        ]
        executions = [
            dict(row)
            for row in conn.execute(
                "SELECT id, workflow_id, status, current_step_id FROM workflow_executions "
                "WHERE status NOT IN ('completed', 'failed', 'cancelled') ORDER BY started_at"
            )
        ]
        schedules = [
            dict(row)
            for row in conn.execute(
                "SELECT id, name, enabled, next_run, run_count FROM schedules ORDER BY name"
            )
        ]
    return RolledBack(approvals, executions, schedules)
