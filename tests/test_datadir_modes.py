"""The data directory and what the gateway writes into it are private to their owner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.gateway import start_gateway_process
from tests.support.workflows import write_workflow

WRITE = """
name: Write a file
steps:
  - id: write
    action: tool
    tool: file.write
    args: {path: notes/out.txt, content: "private\\n"}
"""


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_data_dir_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"  # not there yet: the gateway creates it
    gw = start_gateway_process(data_dir)
    try:
        write_workflow(data_dir, "write", WRITE)
        result = run_cli(["workflow", "run", "write", "--wait"], data_dir=data_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        result = run_cli(["keys", "set", "openai", "--value", "sk-test"], data_dir=data_dir)
        assert result.returncode == 0, result.stderr
        assert mode(data_dir) == 0o700
        for name in ("workspace", "workflows", "workspace/notes"):
            assert mode(data_dir / name) == 0o700, name
        names = ["hearth.db", "hearth.db-wal", "hearth.db-shm", "gateway.token", "runtime.json"]
        names += ["gateway.lock", "secrets.json", "workspace/notes/out.txt"]
        for name in names:
            assert mode(data_dir / name) == 0o600, name
    finally:
        assert gw.stop() == 0, gw.log()
    assert "readable by other users" not in gw.log()


def test_existing_open_data_dir_is_made_private_with_one_warning(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "workspace").mkdir()
    os.chmod(data_dir, 0o755)  # noqa: S103 - the open directory an older Hearth made
    os.chmod(data_dir / "workspace", 0o775)  # noqa: S103
    (data_dir / "hearth.db").write_bytes(b"")
    os.chmod(data_dir / "hearth.db", 0o644)
    (data_dir / "config.toml").write_text('log_level = "INFO"\n')
    os.chmod(data_dir / "config.toml", 0o664)
    gw = start_gateway_process(data_dir)
    try:
        assert mode(data_dir) == 0o700
        assert mode(data_dir / "workspace") == 0o700
        for name in ("hearth.db", "hearth.db-wal", "hearth.db-shm", "config.toml"):
            assert mode(data_dir / name) == 0o600, name
    finally:
        assert gw.stop() == 0, gw.log()
    warnings = [line for line in gw.log().splitlines() if "readable by other users" in line]
    assert len(warnings) == 1, gw.log()
    assert f"{data_dir} was readable by other users (mode 0755)" in warnings[0]
    assert "3 entries inside" in warnings[0]
