"""`[logging] file` and `hearth logs`: the gateway's own log file, read and followed."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import cli_env, run_cli
from tests.support.gateway import start_gateway_process
from tests.support.workflows import write_workflow

pytestmark = pytest.mark.slow

BROKEN = "name: Broken\nsteps:\n  - {id: a, action: tool}\n"


def wait_for_text(path: Path, text: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}")


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_file_logs_filtered_by_level_and_followed(data_dir: Path, fmt: str) -> None:
    (data_dir / "config.toml").write_text(f'log_format = "{fmt}"\n[logging]\nfile = "hearth.log"\n')
    write_workflow(data_dir, "broken", BROKEN)
    gateway = start_gateway_process(data_dir)
    log_file = data_dir / "hearth.log"
    try:
        wait_for_text(log_file, "gateway listening")
        everything = run_cli(["logs"], data_dir)
        assert everything.returncode == 0, everything.stderr
        assert "gateway listening" in everything.stdout
        assert "workflow broken is invalid" in everything.stdout
        assert gateway.token not in log_file.read_text()

        warnings = run_cli(["logs", "--level", "WARNING"], data_dir)
        assert "workflow broken is invalid" in warnings.stdout
        assert "gateway listening" not in warnings.stdout

        follower = subprocess.Popen(
            [sys.executable, "-m", "hearth", "logs", "--follow", "--level", "WARNING", "-n", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=cli_env(data_dir),
            text=True,
        )
        try:
            # The follower starts at the end of the file whenever it gets there; keep adding
            # invalid workflows (each reload logs them) until one reaches it.
            assert follower.stdout is not None
            selector = selectors.DefaultSelector()
            selector.register(follower.stdout, selectors.EVENT_READ)
            seen = ""
            deadline = time.monotonic() + 60
            written = 0
            next_write = 0.0
            while "workflow later" not in seen and time.monotonic() < deadline:
                if time.monotonic() >= next_write:
                    write_workflow(data_dir, f"later{written}", BROKEN)
                    written += 1
                    next_write = time.monotonic() + 2
                if selector.select(timeout=0.2):
                    # os.read, not readline: a buffered reader could hold the next line back
                    # while the selector sees an empty pipe.
                    seen += os.read(follower.stdout.fileno(), 65536).decode()
            assert "workflow later" in seen
            assert "INFO" not in seen  # --level WARNING holds for followed lines too
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=20) == 0
        finally:
            if follower.poll() is None:
                follower.kill()
                follower.wait()
    finally:
        gateway.stop()


def test_without_a_log_file_it_says_where_logs_go(data_dir: Path) -> None:
    result = run_cli(["logs"], data_dir)
    assert result.returncode == 1
    assert "journalctl" in result.stderr
    assert '[logging] file = "hearth.log"' in result.stderr
    assert os.listdir(data_dir) == []
