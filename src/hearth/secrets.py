"""API keys for model providers, kept out of config.toml and logs.

`hearth keys set PROVIDER` stores a key in the system keyring when the optional `keyring`
package is installed and has a real backend; otherwise in `<data-dir>/secrets.json` (mode
0600, written atomically). The environment always wins, so a deployment can inject keys without
touching the data directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hearth.datadir import write_private_json

try:  # optional: not every machine has a keyring backend
    import keyring
    from keyring.backends import fail as keyring_fail
except ImportError:  # pragma: no cover - depends on the environment
    keyring = None
    keyring_fail = None

SERVICE = "hearth"
STANDARD_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
OLLAMA_URL = "http://localhost:11434/v1"


def _keyring_usable() -> bool:
    if keyring is None or keyring_fail is None:
        return False
    backend: Any = keyring.get_keyring()
    return not isinstance(backend, keyring_fail.Keyring) and getattr(backend, "priority", 0) > 0


class SecretStore:
    def __init__(self, path: Path, use_keyring: bool | None = None) -> None:
        self.path = path
        self.use_keyring = _keyring_usable() if use_keyring is None else use_keyring

    @property
    def where(self) -> str:
        return "the system keyring" if self.use_keyring else str(self.path)

    def _read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ValueError(f"{self.path} is not valid JSON ({exc}); fix or delete it") from None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def names(self) -> list[str]:
        names = set(self._read())
        if self.use_keyring and keyring is not None:
            index = keyring.get_password(SERVICE, "__names__") or ""
            names |= {n for n in index.split(",") if n}
        return sorted(names)

    def get(self, name: str) -> str | None:
        if self.use_keyring and keyring is not None:
            value = keyring.get_password(SERVICE, name)
            if value:
                return str(value)
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        if self.use_keyring and keyring is not None:
            keyring.set_password(SERVICE, name, value)
            names = set(self.names()) | {name}
            keyring.set_password(SERVICE, "__names__", ",".join(sorted(names)))
            return
        data = self._read()
        data[name] = value
        write_private_json(self.path, data)

    def remove(self, name: str) -> bool:
        removed = False
        if self.use_keyring and keyring is not None and keyring.get_password(SERVICE, name):
            keyring.delete_password(SERVICE, name)
            names = set(self.names()) - {name}
            keyring.set_password(SERVICE, "__names__", ",".join(sorted(names)))
            removed = True
        data = self._read()
        if name in data:
            del data[name]
            write_private_json(self.path, data)
            removed = True
        return removed


class KeyLookup:
    """Finds a provider's key: its environment variable first, then the secret store."""

    def __init__(self, store: SecretStore | None, environ: Mapping[str, str] | None = None) -> None:
        self.store = store
        self.environ = environ if environ is not None else os.environ

    def __call__(self, provider: str, env_var: str | None) -> str | None:
        variable = env_var or STANDARD_ENV.get(provider)
        if variable and self.environ.get(variable):
            return self.environ[variable]
        return self.store.get(provider) if self.store is not None else None

    def source(self, provider: str, env_var: str | None) -> str | None:
        """Where a key would come from (for `hearth keys list`), never the key itself."""
        variable = env_var or STANDARD_ENV.get(provider)
        if variable and self.environ.get(variable):
            return f"environment ({variable})"
        if self.store is not None and self.store.get(provider):
            return self.store.where
        return None
