"""Which settings a running gateway can take from a re-read config.toml, and which need a restart.

A reload (SIGHUP, `config.reload`, or an edit of config.toml) compares the new settings with
the running ones key by key. Keys listed in `LIVE_SETTINGS` are applied at once by the
composition root; every other changed key (the address, the database, settings added later
that nobody taught to reload) keeps its running value and is reported as needing a restart, so
the gateway never claims to use a value it does not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from hearth.config import Settings, changed_keys, key_matches

#: Settings applied without a restart. `limits.*` other than the ones uvicorn reads at start
#: apply to connections opened after the reload.
LIVE_SETTINGS: tuple[str, ...] = (
    "models",
    "providers",
    "tools.policy",
    "tools.approval_timeout_s",
    "limits.outbound_queue",
    "limits.max_in_flight",
    "limits.hello_timeout_s",
    "limits.auth_failures_per_minute",
    "limits.auth_block_s",
    "heartbeat",
    "schedules",
    "chat",
    "allowed_origins",
    "mcp",
)


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: keys now in effect, and keys that wait for a restart."""

    applied: list[str] = field(default_factory=list)
    needs_restart: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.needs_restart)

    def summary(self, source: str) -> str:
        """One line for the log and the CLI."""
        if not self.changed:
            return f"{source} reloaded: nothing changed"
        parts = []
        if self.applied:
            parts.append("applied " + ", ".join(self.applied))
        if self.needs_restart:
            parts.append("needs a restart of the gateway: " + ", ".join(self.needs_restart))
        return f"{source} reloaded: " + "; ".join(parts)


def plan_reload(running: Settings, loaded: Settings) -> tuple[Settings, ReloadOutcome]:
    """The settings to run with from now on, and what changed.

    The result is `loaded` with every key that cannot change live put back to its running
    value, so readers of the settings (new connections, handlers) see exactly what is in effect.
    """
    changed = changed_keys(running, loaded)
    applied = [key for key in changed if key_matches(key, LIVE_SETTINGS)]
    pending = [key for key in changed if key not in applied]
    effective = loaded
    for key in pending:
        effective = _restore(effective, running, _path(key))
    return effective, ReloadOutcome(applied=applied, needs_restart=pending)


def _path(key: str) -> list[str]:
    """`tools.policy."file.write"` → ["tools", "policy", "file.write"]."""
    parts: list[str] = []
    rest = key
    while rest:
        if rest.startswith('"'):
            end = rest.index('"', 1)
            parts.append(rest[1:end])
            rest = rest[end + 2 :]
        else:
            head, _, rest = rest.partition(".")
            parts.append(head)
    return parts


def _restore(target: BaseModel, source: BaseModel, path: list[str]) -> Any:
    """`target` with the value at `path` taken from `source` (a dict is restored whole)."""
    name = path[0]
    value = getattr(source, name)
    inner = getattr(target, name)
    if len(path) > 1 and isinstance(inner, BaseModel) and isinstance(value, BaseModel):
        value = _restore(inner, value, path[1:])
    return target.model_copy(update={name: value})
