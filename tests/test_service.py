"""`hearth service …` with a stand-in `systemctl` on PATH (systemd is an external program)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FAKE_SYSTEMCTL = """\
#!{python}
import os, sys
with open(os.environ["FAKE_SYSTEMCTL_LOG"], "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if os.environ.get("FAKE_SYSTEMCTL_DOWN") and "show-environment" in sys.argv:
    print("Failed to connect to bus: No medium found", file=sys.stderr)
    sys.exit(1)
if "status" in sys.argv:
    print("* hearth.service - Hearth gateway\\n   Active: active (running)")
sys.exit(0)
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL.format(python=sys.executable))
    fake.chmod(0o755)
    data_dir = tmp_path / "my data"
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "HEARTH_DATA_DIR": str(data_dir),
        "FAKE_SYSTEMCTL_LOG": str(tmp_path / "systemctl.log"),
    }


def hearth(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hearth", "service", *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def calls(env: dict[str, str]) -> list[str]:
    log = Path(env["FAKE_SYSTEMCTL_LOG"])
    return log.read_text().splitlines() if log.exists() else []


def test_dry_run_prints_the_unit_and_changes_nothing(env: dict[str, str]) -> None:
    result = hearth(env, "install", "--dry-run")
    assert result.returncode == 0, result.stderr
    unit_path = Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "hearth.service"
    assert result.stdout.startswith(f"# {unit_path}\n")
    data_dir = env["HEARTH_DATA_DIR"]
    assert f'ExecStart={sys.executable} -m hearth serve --data-dir "{data_dir}"' in result.stdout
    for line in ("Restart=on-failure", "KillMode=control-group", "WantedBy=default.target"):
        assert f"\n{line}\n" in result.stdout
    assert f'EnvironmentFile=-"{data_dir}/hearth.env"' in result.stdout
    assert not unit_path.exists()
    assert calls(env) == []

    system = hearth(env, "install", "--system", "--dry-run")
    assert system.stdout.startswith("# /etc/systemd/system/hearth.service\n")
    assert "WantedBy=multi-user.target" in system.stdout


def test_install_status_uninstall(env: dict[str, str]) -> None:
    unit_path = Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "hearth.service"
    assert hearth(env, "status").returncode == 3

    installed = hearth(env, "install")
    assert installed.returncode == 0, installed.stderr
    assert unit_path.exists()
    assert "journalctl --user -u hearth.service -f" in installed.stdout
    assert calls(env) == [
        "--user show-environment",
        "--user daemon-reload",
        "--user enable --now hearth.service",
    ]

    status = hearth(env, "status")
    assert status.returncode == 0
    assert "active (running)" in status.stdout

    removed = hearth(env, "uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit_path.exists()
    assert calls(env)[-2:] == ["--user disable --now hearth.service", "--user daemon-reload"]
    again = hearth(env, "uninstall")
    assert "nothing to do" in again.stdout


def test_without_systemd_it_says_so_and_prints_the_command(env: dict[str, str]) -> None:
    env["FAKE_SYSTEMCTL_DOWN"] = "1"
    result = hearth(env, "install")
    assert result.returncode == 1
    assert "systemd does not answer (Failed to connect to bus" in result.stderr
    assert f"{sys.executable} -m hearth serve --data-dir" in result.stderr
    unit_path = Path(env["XDG_CONFIG_HOME"]) / "systemd" / "user" / "hearth.service"
    assert not unit_path.exists()

    env["PATH"] = "/nonexistent"
    missing = subprocess.run(
        [sys.executable, "-m", "hearth", "service", "install"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert "systemctl is not installed" in missing.stderr
