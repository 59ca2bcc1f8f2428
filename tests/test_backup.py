"""`hearth backup create|verify|restore` against a running gateway, as a person uses them."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import stat
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.client import GatewayClient
from hearth.client.errors import GatewayError
from hearth.protocol.messages.heartbeat import (
    HeartbeatAlertList,
    HeartbeatAlertListResult,
    HeartbeatConfigure,
    HeartbeatConfigured,
    HeartbeatRun,
    HeartbeatRunResult,
)
from tests.support.cli import run_cli
from tests.support.fake_openai import FakeOpenAI
from tests.support.gateway import start_gateway_process
from tests.support.heartbeat import fake_answer, model_config_toml, write_checklist
from tests.support.schedules import create as create_schedule
from tests.support.schedules import info as schedule_info
from tests.support.workflows import execution, trigger, wait_status, write_workflow

pytestmark = pytest.mark.slow

GATED = """
name: Gated
steps:
  - id: first
    action: tool
    tool: file.write
    args: {path: first.txt, content: "one"}
  - id: gate
    action: tool
    tool: file.write
    approval_required: true
    args: {path: gated.txt, content: "approved"}
"""


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


async def test_backup_of_a_running_gateway_restores_every_schedule_execution_and_alert(
    tmp_path: Path, fake: FakeOpenAI
) -> None:
    live = tmp_path / "live"
    live.mkdir()
    write_workflow(live, "gated", GATED)
    write_checklist(live / "HEARTBEAT.md", ["Disk on the NAS full?"])
    (live / "config.toml").write_text(model_config_toml(fake))
    fake.script_forever(fake_answer(lambda item: "95 % full" if "NAS" in item else None))
    gateway = start_gateway_process(live)
    try:
        async with GatewayClient(gateway.url, gateway.token) as client:
            paused = await trigger(client, "gated")
            await wait_status(client, paused, {"paused"})
            done = await trigger(client, "gated")
            await wait_status(client, done, {"paused"})
            schedule_id = await create_schedule(
                client, name="nightly", cron_expression="0 3 * * *", workflow_id="gated"
            )
            await client.request(
                HeartbeatConfigure(id="hc", interval="6h", enabled=True), HeartbeatConfigured
            )
            run = await client.request(HeartbeatRun(id="hb"), HeartbeatRunResult)
            assert run.alerted, run
            alerts_before = await client.request(
                HeartbeatAlertList(id="al", limit=10), HeartbeatAlertListResult
            )
            assert len(alerts_before.alerts) == 1
            # The backup is taken while executions are paused and the gateway keeps writing.
            archive = tmp_path / "backups" / "live.tar.gz"
            created = await asyncio.to_thread(run_cli, ["backup", "create", str(archive)], live)
            assert created.returncode == 0, created.stderr
            assert "wrote" in created.stdout
            assert "--with-secrets" in created.stdout
            # After the backup the live gateway moves on: the restored copy must not see this.
            after = await trigger(client, "gated")
            await wait_status(client, after, {"paused"})
    finally:
        gateway.stop()

    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    verified = run_cli(["backup", "verify", str(archive)])
    assert verified.returncode == 0, verified.stderr
    assert "integrity ok" in verified.stdout

    restored_dir = tmp_path / "restored"
    restored = run_cli(["backup", "restore", str(archive), "--data-dir", str(restored_dir)])
    assert restored.returncode == 0, restored.stderr
    out = restored.stdout
    assert "approvals pending: 2" in out
    assert "executions not finished: 2" in out
    assert "nightly" in out
    assert f"hearth serve --data-dir {restored_dir}" in out
    assert stat.S_IMODE(restored_dir.stat().st_mode) == 0o700
    assert (restored_dir / "gateway.token").read_text() == (live / "gateway.token").read_text()
    assert (restored_dir / "workflows" / "gated.yaml").read_text() == (
        live / "workflows" / "gated.yaml"
    ).read_text()

    again = start_gateway_process(restored_dir)
    try:
        async with GatewayClient(again.url, again.token) as client:
            assert (await schedule_info(client, schedule_id)).name == "nightly"
            for execution_id in (paused, done):
                assert (await execution(client, execution_id)).execution.status == "paused"
            alerts = await client.request(
                HeartbeatAlertList(id="al", limit=10), HeartbeatAlertListResult
            )
            restored_alerts = [a.alert_id for a in alerts.alerts]
            assert restored_alerts == [a.alert_id for a in alerts_before.alerts]
            with pytest.raises(GatewayError) as missing:
                await execution(client, after)
            assert missing.value.code == "EXECUTION_NOT_FOUND"
    finally:
        again.stop()


def _archive_with(tmp_path: Path, members: dict[str, bytes], manifest: object) -> Path:
    path = tmp_path / "crafted.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {"manifest.json": json.dumps(manifest).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _small_backup(tmp_path: Path) -> tuple[Path, Path]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with sqlite3.connect(data_dir / "hearth.db") as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES (1)")
    (data_dir / "config.toml").write_text("port = 8421\n")
    (data_dir / "secrets.json").write_text('{"openai": "sk-test"}\n')
    archive = tmp_path / "b.tar.gz"
    result = run_cli(["backup", "create", str(archive)], data_dir)
    assert result.returncode == 0, result.stderr
    return data_dir, archive


def test_secrets_only_with_the_flag_and_an_existing_archive_is_not_overwritten(
    tmp_path: Path,
) -> None:
    data_dir, archive = _small_backup(tmp_path)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "manifest.json"
    assert "secrets.json" not in names
    assert {"hearth.db", "config.toml"} <= set(names)

    again = run_cli(["backup", "create", str(archive)], data_dir)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    with_secrets = tmp_path / "s.tar.gz"
    result = run_cli(["backup", "create", str(with_secrets), "--with-secrets"], data_dir)
    assert result.returncode == 0, result.stderr
    with tarfile.open(with_secrets) as tar:
        assert "secrets.json" in tar.getnames()


def test_verify_names_a_damaged_file_and_restore_refuses_it(tmp_path: Path) -> None:
    _, archive = _small_backup(tmp_path)
    with tarfile.open(archive) as tar:
        members = {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
        }
    manifest = json.loads(members.pop("manifest.json"))
    members["config.toml"] = b"port = 1\n"
    damaged = _archive_with(tmp_path, members, manifest)
    result = run_cli(["backup", "verify", str(damaged)])
    assert result.returncode == 1
    assert "config.toml does not match its SHA-256" in result.stderr

    target = tmp_path / "new"
    refused = run_cli(["backup", "restore", str(damaged), "--data-dir", str(target)])
    assert refused.returncode == 1
    assert not target.exists()


def test_restore_refuses_a_non_empty_directory_and_paths_outside_it(tmp_path: Path) -> None:
    _, archive = _small_backup(tmp_path)
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    result = run_cli(["backup", "restore", str(archive), "--data-dir", str(occupied)])
    assert result.returncode == 1
    assert "not empty" in result.stderr
    assert os.listdir(occupied) == ["keep.txt"]

    escape = _archive_with(
        tmp_path,
        {"../evil.txt": b"x"},
        {
            "format": 1,
            "hearthVersion": "0",
            "createdAt": "now",
            "backend": "sqlite",
            "files": {"../evil.txt": "0"},
        },
    )
    result = run_cli(["backup", "restore", str(escape), "--data-dir", str(tmp_path / "e")])
    assert result.returncode == 1
    assert "outside the data directory" in result.stderr
    assert not (tmp_path / "evil.txt").exists()


def test_verify_of_something_that_is_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tar at all")
    result = run_cli(["backup", "verify", str(junk)])
    assert result.returncode == 1
    assert "not a readable backup archive" in result.stderr
    missing = run_cli(["backup", "verify", str(tmp_path / "nope.tar.gz")])
    assert missing.returncode == 1
    assert "does not exist" in missing.stderr
