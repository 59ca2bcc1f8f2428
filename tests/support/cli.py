"""Running the `hearth` command line as a person does: a separate process, no terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TIMEOUT_S = 60


def cli_env(data_dir: Path | None, columns: str | None = None) -> dict[str, str]:
    """The caller's environment without HEARTH_* settings, plus the data directory."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HEARTH_") and k not in ("COLUMNS", "LINES")
    }
    if data_dir is not None:
        env["HEARTH_DATA_DIR"] = str(data_dir)
    if columns is not None:
        env["COLUMNS"] = columns
    return env


def run_cli(
    args: Sequence[str], data_dir: Path | None = None, columns: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hearth", *args],
        capture_output=True,
        text=True,
        env=cli_env(data_dir, columns),
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT_S,
        check=False,
    )


def run_cli_together(
    commands: Sequence[Sequence[str]], data_dir: Path | None = None, columns: str | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands at the same time; results in the order given."""
    started = [
        (
            list(args),
            subprocess.Popen(
                [sys.executable, "-m", "hearth", *args],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=cli_env(data_dir, columns),
                stdin=subprocess.DEVNULL,
            ),
        )
        for args in commands
    ]
    results: list[subprocess.CompletedProcess[str]] = []
    try:
        for args, process in started:
            out, err = process.communicate(timeout=TIMEOUT_S)
            results.append(subprocess.CompletedProcess(args, process.returncode, out, err))
    finally:
        for _, process in started:
            if process.poll() is None:
                process.kill()
                process.wait()
    return results
