"""Settings: CLI flag > HEARTH_* environment > <data-dir>/config.toml > defaults.

The data directory decides where config.toml lives, so it is resolved first (flag, then
environment, then the platform default) and the TOML source reads the file inside it. Unknown
keys are errors everywhere: a misspelt setting that is silently ignored is worse than a refusal.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hearth.datadir import default_data_dir
from hearth.netrules import parse_rules

ENV_PREFIX = "HEARTH_"
CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A setting is wrong. The message is one line that names the key and where it came from."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Section):
    """Storage tuning; the URL itself is the top-level `database_url`."""

    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=5, ge=1, le=100)
    peer_beat_s: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description=(
            "PostgreSQL: how often a gateway tells the others on the event channel that it is "
            "there. Events are sent to other nodes only while one was heard from within three "
            "beats (and for three beats after this node connects)."
        ),
    )


class GatewayLimits(Section):
    """Connection limits that protect the gateway from one misbehaving client."""

    max_frame_bytes: int = Field(default=1024 * 1024, ge=1024)
    outbound_queue: int = Field(default=1024, ge=8)
    stall_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="A write blocked this long means the client stopped reading.",
    )
    max_in_flight: int = Field(
        default=64, ge=1, description="Requests handled at once per connection."
    )
    hello_timeout_s: float = Field(default=10.0, gt=0)
    ws_ping_interval_s: float = Field(default=20.0, gt=0)
    ws_ping_timeout_s: float = Field(default=20.0, gt=0)
    auth_failures_per_minute: int = Field(default=10, ge=1)
    auth_block_s: float = Field(default=300.0, gt=0)


class ShellToolSettings(Section):
    """`shell.run`: off by default; commands see only PATH, HOME, LANG, TZ plus what is named."""

    enabled: bool = False
    env: dict[str, str] = Field(
        default_factory=dict, description="Extra environment variables for every command."
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="Names of gateway environment variables passed through to commands.",
    )


class HttpToolSettings(Section):
    """`http.request`: public addresses only, unless an entry here opens more (or closes some)."""

    allow: list[str] = Field(
        default_factory=list,
        description='Hosts, host:port pairs or networks to allow, e.g. ["127.0.0.1:8123", '
        '"homeassistant.local", "10.0.0.0/24"].',
    )
    deny: list[str] = Field(
        default_factory=list, description="Hosts, host:port pairs or networks always refused."
    )
    trust_env: bool = Field(
        default=False, description="Use HTTP(S)_PROXY / NO_PROXY from the environment."
    )

    @field_validator("allow", "deny")
    @classmethod
    def _rules(cls, value: list[str]) -> list[str]:
        parse_rules(value)  # raises ValueError naming the bad entry
        return value


class ToolsSettings(Section):
    """Built-in tools. The shell tool is off unless a person turns it on."""

    shell: ShellToolSettings = Field(default_factory=ShellToolSettings)
    http: HttpToolSettings = Field(default_factory=HttpToolSettings)
    approval_timeout_s: float = Field(
        default=300.0, gt=0, description="Unanswered chat tool approvals are denied after this."
    )
    policy: dict[str, Literal["auto", "ask", "deny"]] = Field(
        default_factory=dict,
        description='Per tool, e.g. {"file.write" = "auto"}; default: read-only tools auto, '
        "others ask. shell.run always asks.",
    )


#: `secret:NAME` in an MCP server's `env` or `headers`: the value is read from `hearth keys`.
SECRET_PREFIX = "secret:"  # noqa: S105 - a marker, not a password
#: Tool name prefixes of the built-in tools; an MCP server may not take one as its name.
BUILTIN_NAMESPACES = ("file", "http", "notify", "shell")
_SERVER_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,39}")


def _secret_refs(values: dict[str, str]) -> dict[str, str]:
    for key, value in values.items():
        if value.startswith(SECRET_PREFIX) and not value[len(SECRET_PREFIX) :].strip():
            raise ValueError(f"{key}: {value!r} names no secret; write secret:NAME")
    return values


class McpServerSettings(Section):
    """One MCP server: a command run over stdio, or a URL (streamable HTTP or SSE).

    Values in `env` and `headers` may be `secret:NAME`, read from `hearth keys` storage when
    the server starts, so a token never has to be written here.
    """

    command: str | None = Field(default=None, description="Stdio server: the program to run.")
    args: list[str] = Field(default_factory=list, description="Stdio server: its arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description='Stdio server: extra environment variables ("secret:NAME" reads a stored key).',
    )
    cwd: Path | None = Field(default=None, description="Stdio server: its working directory.")
    url: str | None = Field(default=None, description="HTTP server: its endpoint URL.")
    transport: Literal["streamable-http", "sse"] = Field(
        default="streamable-http", description="HTTP server: the protocol the URL speaks."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='HTTP server: request headers ("secret:NAME" reads a stored key).',
    )
    enabled: bool = True
    startup_timeout_s: float = Field(
        default=30.0, gt=0, description="How long starting (and listing tools) may take."
    )
    call_timeout_s: float = Field(default=120.0, gt=0, description="Time limit of one call.")

    @field_validator("env", "headers")
    @classmethod
    def _secrets(cls, value: dict[str, str]) -> dict[str, str]:
        return _secret_refs(value)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> McpServerSettings:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "give either command (a stdio server) or url (an HTTP server)"
                + (", not both" if self.command is not None else "")
            )
        if self.url is not None:
            stdio_only = [k for k in ("args", "env", "cwd") if k in self.model_fields_set]
            if stdio_only:
                raise ValueError(f"{', '.join(stdio_only)} only apply to a command, not a url")
        elif "headers" in self.model_fields_set or "transport" in self.model_fields_set:
            raise ValueError("headers and transport only apply to a url, not a command")
        return self


class McpSettings(Section):
    """Model Context Protocol servers whose tools the agent may use (see docs/mcp.md)."""

    trust_read_only_hints: bool = Field(
        default=False,
        description="Let a tool its server marks read-only (readOnlyHint) run without asking, "
        "and offer it to the heartbeat.",
    )
    servers: dict[str, McpServerSettings] = Field(default_factory=dict)

    def secret_names(self) -> list[str]:
        """Every NAME of a `secret:NAME` value (what `hearth keys set` may store for MCP)."""
        return sorted(
            {
                value[len(SECRET_PREFIX) :].strip()
                for server in self.servers.values()
                for value in [*server.env.values(), *server.headers.values()]
                if value.startswith(SECRET_PREFIX)
            }
        )

    @field_validator("servers")
    @classmethod
    def _names(cls, value: dict[str, McpServerSettings]) -> dict[str, McpServerSettings]:
        for name in value:
            if not _SERVER_NAME.fullmatch(name):
                raise ValueError(
                    f"server name {name!r}: use letters, digits, '_' and '-' (tools are named "
                    "SERVER.TOOL, so no dots)"
                )
            if name in BUILTIN_NAMESPACES:
                raise ValueError(f"server name {name!r} is taken by the built-in {name}.* tools")
        return value


class WorkflowSettings(Section):
    """The workflow engine."""

    max_step_runs: int = Field(default=1000, ge=1, description="Loop guard per execution.")
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a node owns a running execution without renewing; after that "
        "another node (sharing PostgreSQL) resumes it.",
    )
    recovery_interval_s: float = Field(default=5.0, gt=0)
    crash_limit: int = Field(
        default=3,
        ge=1,
        description="Consecutive crashes of the engine at one step after which the execution "
        "fails instead of being resumed again.",
    )
    watch: bool = Field(default=True, description="Reload workflow files when they change.")


class SchedulesSettings(Section):
    """The scheduler."""

    max_consecutive_failures: int = Field(default=10, ge=1)
    history_days: float = Field(default=30, gt=0, description="Run history kept per schedule.")
    history_max: int = Field(default=1000, ge=1, description="Runs kept per schedule.")
    max_sleep_s: float = Field(default=30, gt=0, description="Longest sleep; notices clock jumps.")
    misfire_threshold_s: float = Field(
        default=5,
        ge=0,
        description="A tick this late still fires whatever the misfire policy (a busy loop is "
        "not downtime); later ones follow `misfire`.",
    )


class ChatSettings(Section):
    max_history_messages: int = Field(default=100, ge=2)
    max_history_tokens: int = Field(default=60_000, ge=100)
    instructions: str | None = Field(default=None, description="System prompt for chats.")


class ProviderSettings(Section):
    """A model provider. Keys come from the environment variable named by `api_key_env`."""

    kind: Literal["openai", "anthropic"] = "openai"
    base_url: str | None = None
    api_key_env: str | None = None
    structured_output: Literal["auto", "tool", "native", "prompted"] = "auto"
    #: None: offer tools and drop them for a model that fails with them (learned per process);
    #: false: never offer tools; true: always offer them (a failure is reported, not avoided).
    tools: bool | None = None


class ModelsSettings(Section):
    default: str | None = Field(default=None, description='"provider:model", e.g. "openai:gpt-4o".')
    timeout_s: float = Field(default=120.0, gt=0)


_DURATION = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d))+\s*", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)", re.IGNORECASE)
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(value: Any) -> Any:
    """ "6h", "90m", "1h30m" (or a number of seconds) for settings people write by hand.

    A copy of the workflow duration grammar kept here because importing the workflow package
    would make every CLI command pay for Jinja at start-up.
    """
    if isinstance(value, str):
        if not _DURATION.fullmatch(value):
            raise ValueError(f"{value!r} is not a duration such as '6h', '90m' or '1h30m'")
        return timedelta(
            seconds=sum(float(n) * _UNIT_S[u.lower()] for n, u in _DURATION_PART.findall(value))
        )
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class HeartbeatSettings(Section):
    """The heartbeat: how it yields to chats, how long a run may take, when alerts repeat."""

    defer_s: float = Field(
        default=60.0, ge=0, description="Wait this long while a chat is streaming, then re-check."
    )
    defer_times: int = Field(
        default=2, ge=0, description="Defer at most this many times, then run anyway."
    )
    timeout_s: float = Field(
        default=120.0, gt=0, description="Time limit of the model call (tool calls included)."
    )
    dedupe_window: Duration = Field(
        default=timedelta(hours=6),
        description='The same set of alerting items is not sent again within this ("6h").',
    )
    failing_after: int = Field(
        default=3, ge=1, description="Consecutive failed runs before one 'heartbeat failing' alert."
    )
    allow_outside: bool = Field(
        default=False,
        description="Let heartbeatPath name a file outside the data directory (its text goes "
        "to the model provider).",
    )


class LoggingSettings(Section):
    """Logs always go to stderr (journald and `docker logs` read it); `file` adds a copy."""

    file: Path | None = Field(
        default=None,
        description="Also write logs to this file (relative paths are inside the data "
        "directory), rotated by size.",
    )
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Rotate past this.")
    backups: int = Field(default=5, ge=0, le=100, description="Rotated files kept.")


class MetricsSettings(Section):
    """`GET /metrics` in Prometheus text format."""

    enabled: bool = Field(default=False, description="Serve /metrics.")
    token: str | None = Field(
        default=None,
        description="Bearer token scrapers must send; without one only loopback may scrape. "
        "Prefer HEARTH_METRICS__TOKEN to writing it here.",
    )


class TelegramSettings(Section):
    """The Telegram channel. The bot token is never read from config.toml: it comes from
    `hearth keys set telegram` or HEARTH_TELEGRAM__TOKEN."""

    enabled: bool = False
    api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Requests go to {api_base_url}/bot{token}/{method} (a self-hosted Bot API "
        "server works too).",
    )
    token: SecretStr | None = Field(
        default=None, description="Only from the environment (HEARTH_TELEGRAM__TOKEN)."
    )
    allowed_users: list[int] = Field(
        default_factory=list, description="Telegram user ids allowed without pairing."
    )
    alert_users: list[int] = Field(
        default_factory=list,
        description="Who gets heartbeat alerts and notifications (default: every allowed user).",
    )
    allowed_groups: list[int] = Field(
        default_factory=list,
        description="Group chat ids where the bot answers allowed users who mention or reply "
        "to it; groups are ignored otherwise.",
    )
    edit_interval_s: float = Field(
        default=1.0, gt=0, description="A streamed reply is edited at most this often per chat."
    )
    poll_timeout_s: int = Field(default=30, ge=0, le=50, description="getUpdates long-poll.")
    stall_after_s: float = Field(
        default=120.0,
        gt=0,
        description="No successful getUpdates for this long is reported as a stall.",
    )
    lease_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a node owns the bot's poller without renewing; then another "
        "node sharing the database takes over.",
    )

    @field_validator("api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")


class NotificationsSettings(Section):
    """How long stored notifications are kept; older and surplus ones are deleted."""

    keep: Duration = Field(
        default=timedelta(days=30), description='Notifications older than this go ("30d").'
    )
    keep_max: int = Field(default=10_000, ge=1, description="At most this many are kept.")


class Settings(BaseSettings):
    """Everything the gateway reads at start-up."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8420, ge=0, le=65535)
    allow_remote: bool = False
    database_url: str | None = Field(
        default=None,
        description="sqlite+aiosqlite:///… or postgresql+asyncpg://…; default SQLite in data_dir.",
    )
    allowed_origins: list[str] = Field(default_factory=list)
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    node_id: str | None = Field(
        default=None, description="Names this process among several sharing one database."
    )
    timezone: str | None = Field(default=None, description="IANA zone; default the host's.")
    workflow_dirs: list[Path] = Field(
        default_factory=list, description="Extra directories of workflow YAML files."
    )
    watch_config: bool = Field(
        default=True,
        description="Reload config.toml when it changes (SIGHUP and `hearth reload` always do).",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    limits: GatewayLimits = Field(default_factory=GatewayLimits)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    workflows: WorkflowSettings = Field(default_factory=WorkflowSettings)
    schedules: SchedulesSettings = Field(default_factory=SchedulesSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)
    models: ModelsSettings = Field(default_factory=ModelsSettings)
    heartbeat: HeartbeatSettings = Field(default_factory=HeartbeatSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    notifications: NotificationsSettings = Field(default_factory=NotificationsSettings)
    providers: dict[str, ProviderSettings] = Field(default_factory=dict)
    mcp: McpSettings = Field(default_factory=McpSettings)

    #: The command-line flags these settings were built with, so that a reload of config.toml
    #: keeps them on top (a flag still beats the file).
    _flags: dict[str, Any] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r}: use an IANA name such as 'Europe/Berlin'"
                ) from None
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, DataDirTomlSource(settings_cls))

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE

    @property
    def log_file(self) -> Path | None:
        """The log file, resolved inside the data directory when relative (None: stderr only)."""
        path = self.logging.file
        if path is None:
            return None
        path = path.expanduser()
        return path if path.is_absolute() else self.data_dir / path

    @property
    def token_path(self) -> Path:
        return self.data_dir / "gateway.token"

    @property
    def runtime_path(self) -> Path:
        return self.data_dir / "runtime.json"

    @property
    def workspace_dir(self) -> Path:
        return self.data_dir / "workspace"

    @property
    def workflows_dir(self) -> Path:
        return self.data_dir / "workflows"

    @property
    def heartbeat_path(self) -> Path:
        """Where the heartbeat checklist lives unless `heartbeat.configure` names another file."""
        return self.data_dir / "HEARTBEAT.md"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return sqlite_url_for(self.data_dir / "hearth.db")


def sqlite_url_for(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file, percent-encoded: a '#', '?' or '%' in the path
    would otherwise be read as the URL's fragment or query (and open another file)."""
    return f"sqlite+aiosqlite:///{quote(str(path), safe='/')}"


class DataDirTomlSource(PydanticBaseSettingsSource):
    """Reads `config.toml` from whichever data directory the higher sources chose."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        # Unused: __call__ returns the whole table at once.
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data_dir = self.current_state.get("data_dir")
        path = Path(data_dir) if data_dir else default_data_dir()
        values = read_config_file(path / CONFIG_FILE)
        refuse_secrets_in_file(values, path / CONFIG_FILE)
        return values


def refuse_secrets_in_file(values: dict[str, Any], path: Path) -> None:
    """A bot token in config.toml would end up in backups and screenshots: refuse it."""
    telegram = values.get("telegram")
    if isinstance(telegram, dict) and "token" in telegram:
        raise ConfigError(
            f"{path}: telegram.token may not be written in config.toml; store it with "
            "`hearth keys set telegram` or set HEARTH_TELEGRAM__TOKEN"
        )


def read_config_file(path: Path) -> dict[str, Any]:
    """The parsed TOML table, `{}` when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def _origin_of(key: str, file_values: dict[str, Any], path: Path) -> str:
    """Where a bad key came from, so the message points the person at the right place."""
    top = key.split(".", 1)[0]
    env_name = ENV_PREFIX + key.replace(".", "__").upper()
    for name in (env_name, ENV_PREFIX + top.upper()):
        if name in os.environ:
            return f"environment variable {name}"
    if top in file_values:
        return f"file {path}"
    return "command line"


def load_settings(**flags: Any) -> Settings:
    """Build settings with CLI flags (None means "not given") on top of the other sources.

    Raises ConfigError with a single line naming the key and its source.
    """
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        settings = Settings(**given)
    except ValidationError as exc:
        data_dir = Path(
            given.get("data_dir") or os.environ.get(ENV_PREFIX + "DATA_DIR") or default_data_dir()
        )
        path = data_dir / CONFIG_FILE
        try:
            file_values = read_config_file(path)
        except ConfigError:
            file_values = {}
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(settings)"
        reason = "unknown setting" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(
            f"bad setting {key}: {reason} (from {_origin_of(key, file_values, path)})"
        ) from None
    settings._flags = given
    return settings


def reload_settings(current: Settings) -> Settings:
    """Read the sources again with the same command-line flags; ConfigError when they are bad."""
    return load_settings(**current._flags)


_EMPTY_TABLE = object()


def _flatten(value: Any, path: tuple[str, ...], into: dict[tuple[str, ...], Any]) -> None:
    if isinstance(value, dict):
        if not value:
            into[path] = _EMPTY_TABLE
        for key, item in value.items():
            _flatten(item, (*path, str(key)), into)
    else:
        into[path] = value


def _dotted(path: tuple[str, ...]) -> str:
    """TOML's way of naming a key: `tools.policy."file.write"`."""
    return ".".join(f'"{part}"' if "." in part else part for part in path)


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted names of the settings that differ (`providers.local.base_url`, `port`, …).

    A table that appears or disappears as a whole (a new `[providers.NAME]`) is named once,
    not field by field.
    """
    before: dict[tuple[str, ...], Any] = {}
    after: dict[tuple[str, ...], Any] = {}
    _flatten(old.model_dump(mode="json"), (), before)
    _flatten(new.model_dump(mode="json"), (), after)
    had = {path[:n] for path in before for n in range(1, len(path) + 1)}
    has = {path[:n] for path in after for n in range(1, len(path) + 1)}
    changed = set()
    for path in before.keys() | after.keys():
        if _EMPTY_TABLE in (before.get(path), after.get(path)):
            continue  # the table's entries (or their absence) say what changed
        if path in before and path in after and before[path] == after[path]:
            continue
        first = next(
            path[:n]
            for n in range(1, len(path) + 1)
            if (path[:n] in had) != (path[:n] in has) or n == len(path)
        )
        changed.add(_dotted(first))
    return sorted(changed)


def key_matches(key: str, prefixes: tuple[str, ...]) -> bool:
    """True when `key` is one of `prefixes` or lies inside one (`limits` covers `limits.x`)."""
    return any(key == p or key.startswith(p + ".") for p in prefixes)
