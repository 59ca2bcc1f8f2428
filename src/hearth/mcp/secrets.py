"""`secret:NAME` values in an MCP server's `env` and `headers`, read when the server starts.

Resolved at connect time, never at config load, so a secret value is never part of the
settings (which are compared, dumped and logged by a reload). A missing secret is an error
naming the config key and the command that stores it.
"""

from __future__ import annotations

from collections.abc import Mapping

from hearth.config import SECRET_PREFIX
from hearth.secrets import SecretStore


class MissingSecretError(Exception):
    """A `secret:NAME` whose NAME is not stored."""


def secret_name(value: str) -> str | None:
    """NAME of a `secret:NAME` value, None for a plain value."""
    return value[len(SECRET_PREFIX) :].strip() if value.startswith(SECRET_PREFIX) else None


def resolve(values: Mapping[str, str], store: SecretStore | None, where: str) -> dict[str, str]:
    """`values` with every `secret:NAME` replaced by the stored secret.

    `where` is the config key of the table (`mcp.servers.notes.env`), for the error message.
    """
    resolved: dict[str, str] = {}
    for key, value in values.items():
        name = secret_name(value)
        if name is None:
            resolved[key] = value
            continue
        secret = store.get(name) if store is not None else None
        if not secret:
            raise MissingSecretError(
                f"{where}.{key}: the secret {name!r} is not stored; store it with "
                f"`hearth keys set {name}`"
            )
        resolved[key] = secret
    return resolved


def referenced(values: Mapping[str, str]) -> list[str]:
    """The secret names `values` refer to."""
    return [name for value in values.values() if (name := secret_name(value))]
