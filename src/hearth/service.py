"""Running the gateway as a systemd service: the unit file and the systemctl calls around it.

A user unit is the default because Hearth keeps one person's data under their home directory;
a system unit is for a machine dedicated to it. `KillMode=control-group` makes systemd stop
shell commands the gateway started too, and `Restart=on-failure` brings a crashed gateway back
(durable state means a restart loses nothing). Secrets belong in the environment file, which the
unit reads if it exists, never in the unit itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

UNIT_NAME = "hearth.service"
ENV_FILE = "hearth.env"


class ServiceError(Exception):
    """systemd is missing or refused; the message says what to do instead."""


@dataclass(frozen=True)
class ServicePlan:
    user: bool
    data_dir: Path
    unit_path: Path
    env_file: Path
    command: list[str]

    @property
    def scope(self) -> list[str]:
        return ["--user"] if self.user else []

    def journal_hint(self) -> str:
        return f"journalctl {'--user ' if self.user else ''}-u {UNIT_NAME} -f"


def _quote(arg: str) -> str:
    """systemd's command-line quoting: double quotes around words with spaces or quotes."""
    if arg and all(c not in arg for c in " \t\"\\'$%"):
        return arg
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"'


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def plan(data_dir: Path, *, user: bool) -> ServicePlan:
    data_dir = data_dir.expanduser().resolve()
    unit_dir = user_unit_dir() if user else Path("/etc/systemd/system")
    command = [sys.executable, "-m", "hearth", "serve", "--data-dir", str(data_dir)]
    return ServicePlan(user, data_dir, unit_dir / UNIT_NAME, data_dir / ENV_FILE, command)


def render_unit(p: ServicePlan) -> str:
    return "\n".join(
        [
            "# Written by `hearth service install`; `hearth service uninstall` removes it.",
            "[Unit]",
            "Description=Hearth gateway for a personal AI agent",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=simple",
            f"ExecStart={' '.join(_quote(a) for a in p.command)}",
            f"Environment={_quote('HEARTH_DATA_DIR=' + str(p.data_dir))}",
            f"EnvironmentFile=-{_quote(str(p.env_file))}",
            "Restart=on-failure",
            "RestartSec=5",
            "KillMode=control-group",
            "TimeoutStopSec=30",
            "UMask=0077",
            "",
            "[Install]",
            f"WantedBy={'default.target' if p.user else 'multi-user.target'}",
            "",
        ]
    )


def foreground_command(p: ServicePlan) -> str:
    return " ".join(_quote(a) for a in p.command)


def _systemctl(p: ServicePlan, *args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("systemctl")
    if exe is None:
        raise ServiceError("systemctl not found")
    return subprocess.run(
        [exe, *p.scope, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def systemd_available(p: ServicePlan) -> str | None:
    """None when systemd (for this scope) answers; otherwise why not, in a few words."""
    if shutil.which("systemctl") is None:
        return "systemctl is not installed"
    result = _systemctl(p, "show-environment")
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        return f"systemd does not answer ({reason[0] if reason else 'no reason given'})"
    return None


def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ServiceError(f"{what} failed: {detail[0] if detail else f'exit {result.returncode}'}")


def install(p: ServicePlan) -> None:
    p.unit_path.parent.mkdir(parents=True, exist_ok=True)
    p.unit_path.write_text(render_unit(p), encoding="utf-8")
    _check(_systemctl(p, "daemon-reload"), "systemctl daemon-reload")
    _check(_systemctl(p, "enable", "--now", UNIT_NAME), f"systemctl enable --now {UNIT_NAME}")


def uninstall(p: ServicePlan) -> bool:
    """Stop, disable and remove the unit; False when there was none."""
    if not p.unit_path.exists():
        return False
    _check(_systemctl(p, "disable", "--now", UNIT_NAME), f"systemctl disable --now {UNIT_NAME}")
    p.unit_path.unlink()
    _check(_systemctl(p, "daemon-reload"), "systemctl daemon-reload")
    return True


def status(p: ServicePlan) -> tuple[int, str]:
    result = _systemctl(p, "status", "--no-pager", UNIT_NAME)
    return result.returncode, (result.stdout or result.stderr)
