"""`hearth reload`: make the running gateway re-read config.toml."""

from __future__ import annotations

from hearth.cli.common import DataDirOption, console, run, with_client
from hearth.client import GatewayClient
from hearth.protocol.messages.config import ConfigReload, ConfigReloadResult


def reload(data_dir: DataDirOption = None) -> None:
    """Re-read config.toml in the running gateway and say what changed.

    The gateway also reloads on SIGHUP and when the file changes. Models, providers, tool
    policy, limits, heartbeat and schedule settings apply at once; others (host, port,
    database) wait for a restart. A file with an error is refused and the gateway keeps its
    running settings.
    """

    async def ask(client: GatewayClient) -> ConfigReloadResult:
        return await client.request(ConfigReload(id=client.next_id()), ConfigReloadResult)

    result = run(with_client(data_dir, ask))
    if not result.applied and not result.restart_required:
        console.print(
            f"reloaded {result.path}: nothing changed",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    console.print(f"reloaded {result.path}", highlight=False, markup=False, soft_wrap=True)
    if result.applied:
        console.print(
            "applied: " + ", ".join(result.applied), highlight=False, markup=False, soft_wrap=True
        )
    if result.restart_required:
        console.print(
            ", ".join(result.restart_required)
            + " changed: restart the gateway to apply (it keeps the running values until then)",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
