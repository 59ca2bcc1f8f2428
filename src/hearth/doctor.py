"""`hearth doctor`: every check an operator would run by hand, each with the fix.

Checks never change anything. Each yields one `Check` (ok, warn or fail) whose `fix` says what
to do next, because a diagnosis without a next step sends people to the issue tracker. A check
that cannot run (the gateway is down, so its heartbeat cannot be asked) says so and moves on:
one failure must not hide the others.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from hearth import __version__
from hearth.backup import read_only_uri
from hearth.client import ClientError, GatewayClient
from hearth.config import ConfigError, Settings, load_settings
from hearth.datadir import DataDirError
from hearth.mcp import McpManager
from hearth.protocol.messages.core import GatewayStatus, GatewayStatusResult
from hearth.protocol.messages.heartbeat import HeartbeatStatus, HeartbeatStatusResult
from hearth.provider_status import known_providers, listed_models
from hearth.secrets import STANDARD_ENV, KeyLookup, SecretStore
from hearth.store import Database
from hearth.store.migrate import current_revision, head_revision
from hearth.tools import ToolRegistry, builtin_tools
from hearth.workflows.catalog import WorkflowCatalog

Status = Literal["ok", "warn", "fail"]

#: Less free space than this on the data directory's disk is a warning (SQLite needs room for
#: its WAL and for VACUUM; a full disk stops every commit).
LOW_DISK_BYTES = 1 << 30
#: Clock difference to the database server that makes leases and schedules unreliable.
MAX_SKEW_S = 2.0
PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)


def _ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def check_config(data_dir: Path | None) -> tuple[Check, Settings | None]:
    try:
        settings = load_settings(data_dir=data_dir)
    except ConfigError as exc:
        return Check("config", "fail", str(exc), "correct that key in config.toml"), None
    where = settings.data_dir / "config.toml"
    detail = f"{where} parses" if where.exists() else f"no {where}; defaults apply"
    return _ok("config", detail), settings


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_modes(settings: Settings) -> Check:
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        return Check(
            "data dir", "fail", f"{data_dir} does not exist", "start the gateway once: hearth serve"
        )
    loose: list[str] = []
    if _mode(data_dir) & 0o077:
        loose.append(f"{data_dir} is {_mode(data_dir):o}")
    for name in ("gateway.token", "secrets.json", "hearth.db", "config.toml"):
        path = data_dir / name
        if path.exists() and _mode(path) & 0o077:
            loose.append(f"{name} is {_mode(path):o}")
    if loose:
        return Check(
            "data dir",
            "warn",
            "readable by other users: " + ", ".join(loose),
            f"chmod 700 {data_dir} && chmod 600 {data_dir}/* (the gateway also fixes this at "
            "start)",
        )
    return _ok("data dir", f"{data_dir} is private to you")


def check_disk(settings: Settings) -> Check:
    usage = shutil.disk_usage(settings.data_dir if settings.data_dir.exists() else Path.home())
    free_gib = usage.free / (1 << 30)
    if usage.free < LOW_DISK_BYTES:
        return Check(
            "disk",
            "warn",
            f"{free_gib:.2f} GiB free on the data directory's disk",
            "free some space: a full disk stops every commit",
        )
    return _ok("disk", f"{free_gib:.1f} GiB free")


def _sqlite_path(settings: Settings) -> Path | None:
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database)
    return None


def _integrity(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(read_only_uri(path), uri=True)) as conn:
        conn.execute("PRAGMA busy_timeout = 5000")
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "; ".join(str(r[0]) for r in rows)


async def check_database(settings: Settings) -> list[Check]:
    sqlite_path = _sqlite_path(settings)
    if sqlite_path is not None and not sqlite_path.exists():
        return [
            Check(
                "database",
                "warn",
                f"no database at {sqlite_path} yet",
                "start the gateway once (hearth serve) or run hearth db upgrade",
            )
        ]
    db = Database.from_url(settings.resolved_database_url())
    checks: list[Check] = []
    try:
        if not await db.ping(timeout_s=PROBE_TIMEOUT_S):
            return [
                Check(
                    "database",
                    "fail",
                    f"{db.backend} does not answer",
                    "check database_url and that the server runs",
                )
            ]
        revision = await current_revision(db.engine)
        head = head_revision()
        if revision != head:
            checks.append(
                Check(
                    "database",
                    "fail",
                    f"{db.backend} at migration {revision}, this Hearth needs {head}",
                    "run hearth db upgrade (the gateway also does it at start)",
                )
            )
        else:
            checks.append(_ok("database", f"{db.backend} reachable, migrated to {head}"))
        if sqlite_path is not None:
            answer = _integrity(sqlite_path)
            checks.append(
                _ok("integrity", "SQLite integrity_check ok")
                if answer == "ok"
                else Check(
                    "integrity",
                    "fail",
                    f"SQLite integrity_check: {answer[:200]}",
                    "restore the latest backup: hearth backup restore ARCHIVE --data-dir NEW",
                )
            )
        else:
            checks.append(await _clock_skew(db))
    except (OSError, sa.exc.SQLAlchemyError, sqlite3.Error) as exc:
        checks.append(Check("database", "fail", f"{type(exc).__name__}: {str(exc)[:200]}", None))
    finally:
        await db.dispose()
    return checks


async def _clock_skew(db: Database) -> Check:
    async with db.connect() as conn:
        server_now = (await conn.execute(sa.text("SELECT now()"))).scalar_one()
    skew = abs((datetime.now(UTC) - server_now).total_seconds())
    if skew > MAX_SKEW_S:
        return Check(
            "clock",
            "fail",
            f"this host's clock is {skew:.1f} s off the database server's",
            "run an NTP client (chrony, systemd-timesyncd) on every node",
        )
    return _ok("clock", f"within {skew:.2f} s of the database server")


def check_telegram(status: GatewayStatusResult, settings: Settings) -> Check | None:
    """The channel as the running gateway sees it (None when it is not turned on)."""
    info = status.telegram
    if not settings.telegram.enabled and (info is None or not info.enabled):
        return None
    if info is None or not info.enabled:
        return Check(
            "telegram",
            "fail",
            "enabled in config.toml but not running in the gateway",
            "see the gateway's log (hearth logs); is the token set (hearth keys set telegram)?",
        )
    if info.problem:
        return Check(
            "telegram",
            "fail",
            info.problem,
            "stop the other process polling this bot (409) or check the network and token",
        )
    who = f"@{info.bot_username}" if info.bot_username else "the bot"
    role = "polling on this node" if info.polling else "polled by another node"
    return _ok("telegram", f"{who} {info.state}, {role}")


def check_mcp(settings: Settings, status: GatewayStatusResult | None) -> list[Check]:
    """Each MCP server: as the running gateway sees it, else whether its secrets are stored."""
    checks: list[Check] = []
    running = {info.name: info for info in (status.mcp or [])} if status is not None else {}
    store = SecretStore(settings.data_dir / "secrets.json")
    for name, server in sorted(settings.mcp.servers.items()):
        info = running.get(name)
        if info is not None and info.state == "failed":
            checks.append(
                Check(
                    f"mcp {name}",
                    "fail",
                    f"failed to start: {info.error}",
                    "fix [mcp.servers." + name + "] in config.toml (then hearth reload); "
                    "hearth logs shows its stderr",
                )
            )
            continue
        if info is not None:
            tools = f", {len(info.tools)} tools" if info.state == "ready" else ""
            checks.append(_ok(f"mcp {name}", f"{info.state}{tools}"))
            continue
        missing = [
            f"mcp.servers.{name}.{table}.{key}"
            for table, values in (("env", server.env), ("headers", server.headers))
            for key, value in values.items()
            if value.startswith("secret:") and not store.get(value[len("secret:") :].strip())
        ]
        if missing:
            checks.append(
                Check(
                    f"mcp {name}",
                    "fail",
                    f"{missing[0]} names a secret that is not stored",
                    "hearth keys set NAME (NAME as in secret:NAME)",
                )
            )
        else:
            checks.append(_ok(f"mcp {name}", "configured (gateway not running: not started)"))
    return checks


async def check_gateway(settings: Settings) -> tuple[list[Check], GatewayClient | None]:
    try:
        client = GatewayClient.from_data_dir(settings.data_dir, client_name="hearth-doctor")
        await client.connect()
    except (ClientError, DataDirError) as exc:
        return [Check("gateway", "warn", str(exc).split(":")[0], "start it: hearth serve")], None
    status = await client.request(GatewayStatus(id=client.next_id()), GatewayStatusResult)
    if status.version != __version__:
        check = Check(
            "gateway",
            "warn",
            f"running {status.version}, this CLI is {__version__}",
            "restart the gateway so both run the same version",
        )
    else:
        nodes = f", {status.nodes} node{'s' if status.nodes != 1 else ''}" if status.nodes else ""
        check = _ok("gateway", f"running {status.version}, up {status.uptime_s:.0f} s{nodes}")
    telegram = check_telegram(status, settings)
    checks = [check] if telegram is None else [check, telegram]
    return [*checks, *check_mcp(settings, status)], client


async def check_models(settings: Settings) -> list[Check]:
    lookup = KeyLookup(SecretStore(settings.data_dir / "secrets.json"))
    providers = {p.name: p for p in known_providers(settings.providers, lookup)}
    default = settings.models.default
    if not default:
        return [
            Check(
                "models",
                "warn",
                "no default model",
                'set [models] default = "provider:model" in config.toml',
            )
        ]
    used = {default.split(":", 1)[0], *settings.providers}
    checks: list[Check] = []
    for name in sorted(used):
        provider = providers.get(name)
        if provider is None:
            checks.append(
                Check(
                    f"provider {name}",
                    "fail",
                    f"the default model {default!r} names an unknown provider",
                    f"add [providers.{name}] to config.toml or fix [models] default",
                )
            )
            continue
        key = lookup(name, provider.key_variable)
        if provider.needs_key and not key:
            variable = provider.key_variable or STANDARD_ENV.get(name)
            checks.append(
                Check(
                    f"provider {name}",
                    "fail",
                    "no API key",
                    f"hearth keys set {name}  (or export {variable})",
                )
            )
            continue
        listed, problem = await listed_models(provider, key)
        if listed is None:
            checks.append(
                Check(
                    f"provider {name}",
                    "fail",
                    f"{provider.base_url} {problem}",
                    "check that the server runs and base_url is right",
                )
            )
            continue
        wanted = default.split(":", 1)[1] if default.startswith(name + ":") else None
        if wanted and listed and wanted not in listed:
            checks.append(
                Check(
                    f"provider {name}",
                    "warn",
                    f"answers, but does not list the model {wanted!r}",
                    f"pick one of: {', '.join(sorted(listed)[:8])}",
                )
            )
        else:
            shown = f", lists {wanted}" if wanted else ""
            checks.append(_ok(f"provider {name}", f"answers{shown}"))
    return checks


def check_workflows(settings: Settings) -> Check:
    tools = ToolRegistry(builtin_tools(shell_enabled=settings.tools.shell.enabled))
    # MCP tools are known only to a running server: steps naming them are accepted here.
    tools.add_source(McpManager(settings.mcp, None))
    catalog = WorkflowCatalog([settings.workflows_dir, *settings.workflow_dirs], tools=tools)
    loaded = catalog.reload()
    bad = [item for item in loaded if item.error]
    if bad:
        first = bad[0]
        return Check(
            "workflows",
            "fail",
            f"{len(bad)} of {len(loaded)} invalid; {first.id}: {first.error}",
            "hearth workflow validate FILE shows each problem with its line",
        )
    return _ok("workflows", f"{len(loaded)} valid")


def _exists(path: str) -> bool:
    return Path(os.path.expanduser(path)).exists()


async def check_heartbeat(client: GatewayClient | None, settings: Settings) -> Check:
    if client is None:
        path = settings.data_dir / "HEARTBEAT.md"
        if path.exists():
            return _ok("heartbeat", f"{path} found (gateway not running: configuration unknown)")
        return Check("heartbeat", "warn", "no HEARTBEAT.md", "hearth init writes an example")
    status = await client.request(HeartbeatStatus(id=client.next_id()), HeartbeatStatusResult)
    if not status.configured:
        return Check(
            "heartbeat", "warn", "not configured", "hearth heartbeat configure --interval 30m"
        )
    if not _exists(status.heartbeat_path):
        return Check(
            "heartbeat",
            "fail",
            f"{status.heartbeat_path} is missing",
            "create it (hearth init writes an example) or configure another --path",
        )
    if status.consecutive_errors:
        return Check(
            "heartbeat",
            "fail",
            f"the last {status.consecutive_errors} runs failed",
            "hearth heartbeat status shows the reason",
        )
    state = "enabled" if status.enabled else "disabled"
    return _ok("heartbeat", f"{state}, {status.heartbeat_path}")


async def run_checks(data_dir: Path | None) -> list[Check]:
    config, settings = check_config(data_dir)
    if settings is None:
        return [config]
    checks = [config, check_modes(settings), check_disk(settings)]
    checks += await check_database(settings)
    gateway, client = await check_gateway(settings)
    checks += gateway
    if client is None:
        checks += check_mcp(settings, None)
    try:
        checks += await check_models(settings)
        checks.append(check_workflows(settings))
        checks.append(await check_heartbeat(client, settings))
    finally:
        if client is not None:
            await client.close()
    return checks
