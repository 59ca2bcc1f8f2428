"""heartbeatPath stays inside the data directory unless `[heartbeat] allow_outside = true`.

The checklist's text is sent to the model provider, so a path anywhere on the disk would let
any connected client ship any readable file off the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.client import GatewayError
from hearth.protocol import ErrorCode
from hearth.protocol.messages.heartbeat import (
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatStatus,
    HeartbeatStatusResult,
)
from tests.support.gateway import in_process_gateway
from tests.support.heartbeat import write_checklist


async def test_a_checklist_outside_the_data_dir_is_refused(
    data_dir: Path, database_url: str, tmp_path: Path
) -> None:
    outside = write_checklist(tmp_path / "elsewhere" / "secrets.md", ["leak?"])
    write_checklist(data_dir / "HEARTBEAT.md", ["fine?"])
    (data_dir / "link.md").symlink_to(outside)
    async with in_process_gateway(data_dir, database_url) as gw:
        client = await gw.client()
        for raw in [str(outside), "../elsewhere/secrets.md", "link.md", "~/.ssh/id_rsa"]:
            with pytest.raises(GatewayError) as refused:
                await client.request(
                    HeartbeatConfigure(id=client.next_id(), heartbeat_path=raw), HeartbeatConfigured
                )
            assert refused.value.code == ErrorCode.INVALID_HEARTBEAT
            assert refused.value.details == {"field": "heartbeatPath"}
            assert "outside the data directory" in str(refused.value)
            assert "[heartbeat] allow_outside = true" in str(refused.value)
        await client.request(
            HeartbeatConfigure(id=client.next_id(), heartbeat_path="HEARTBEAT.md"),
            HeartbeatConfigured,
        )
        current = await client.request(HeartbeatStatus(id="s"), HeartbeatStatusResult)
        assert current.heartbeat_path == str(data_dir / "HEARTBEAT.md")


async def test_allow_outside_opens_other_paths(
    data_dir: Path, database_url: str, tmp_path: Path
) -> None:
    outside = write_checklist(tmp_path / "elsewhere" / "HEARTBEAT.md", ["mine?"])
    (data_dir / "config.toml").write_text("[heartbeat]\nallow_outside = true\n")
    async with in_process_gateway(data_dir, database_url) as gw:
        client = await gw.client()
        await client.request(
            HeartbeatConfigure(id=client.next_id(), heartbeat_path=str(outside)),
            HeartbeatConfigured,
        )
        current = await client.request(HeartbeatStatus(id="s"), HeartbeatStatusResult)
        assert current.heartbeat_path == str(outside)
