"""Another terminal finds a gateway started with --data-dir, without HEARTH_DATA_DIR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.gateway import start_gateway_process


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The CLI in a terminal where HEARTH_DATA_DIR is not set."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        capture_output=True,
        text=True,
        env=child_env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def test_cli_finds_the_one_gateway_started_with_data_dir(tmp_path: Path) -> None:
    # The default data directory (under XDG_DATA_HOME) has no gateway.
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg-data"), "COLUMNS": "300"}
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first = start_gateway_process(first_dir, env=env)
    try:
        found = cli("status", env=env)
        assert found.returncode == 0, found.stderr
        assert "running" in found.stdout
        assert first.url.replace("http://", "ws://") in found.stdout
        note = " ".join(found.stderr.split())
        assert f"using the gateway in {first_dir.resolve()}, pid {first.process.pid}" in note
        assert f"HEARTH_DATA_DIR={first_dir.resolve()}" in note

        second = start_gateway_process(second_dir, env=env)
        try:
            several = cli("status", env=env)
            assert several.returncode == 1
            text = " ".join(several.stderr.split())
            assert "several others do" in text
            assert str(first_dir.resolve()) in text
            assert str(second_dir.resolve()) in text
            assert "Traceback" not in text
        finally:
            assert second.stop() == 0, second.log()
        # Stopped cleanly: its pointer is gone, and the first one is found again.
        again = cli("status", env=env)
        assert again.returncode == 0, again.stderr
    finally:
        first.kill()
    # Killed: its pointer stays behind but names a dead process, so it is ignored.
    gone = cli("status", env=env)
    assert gone.returncode == 1
    assert "not running" in gone.stderr
    assert "using the gateway" not in gone.stderr
    pointers = list((Path(os.environ["XDG_RUNTIME_DIR"]) / "hearth").glob("gateway-*.json"))
    assert pointers == []  # the stale pointer was deleted when it was found dead
