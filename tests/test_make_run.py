"""`make run` as a person uses it: no forced --host/--port, and Ctrl-C ends it quietly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_make_run_uses_the_configured_port_and_ctrl_c_ends_it_quietly(data_dir: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    # Both a HEARTH_ setting and an unrelated PORT in the environment: the first must win,
    # the second must not be mistaken for `make run PORT=…`.
    env.update(HEARTH_DATA_DIR=str(data_dir), HEARTH_PORT=str(port), PORT="1", HOST="x.invalid")
    # -o: do not reinstall the package into .venv, only run.
    process = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed-run", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    try:
        runtime = data_dir / "runtime.json"
        deadline = time.monotonic() + 60
        while not runtime.exists():
            assert process.poll() is None, process.communicate()[0].decode()
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.05)
        assert json.loads(runtime.read_text())["port"] == port
        # Ctrl-C in a terminal sends SIGINT to the whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        output = process.communicate(timeout=60)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # make itself dies of the SIGINT (as any program Ctrl-C stops); what matters is that the
    # gateway stopped cleanly with 0, so make reports no failed recipe.
    assert process.returncode in (0, -signal.SIGINT), output
    assert "gateway stopped" in output
    assert "make: ***" not in output
    assert "Traceback" not in output
    assert "Aborted" not in output
    assert not (data_dir / "runtime.json").exists()
