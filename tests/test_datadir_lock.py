"""One gateway per data directory: the second is refused, the first keeps its runtime.json."""

from __future__ import annotations

import os
from pathlib import Path

from hearth.datadir import RuntimeInfo, read_runtime, remove_runtime, write_runtime
from tests.support.cli import run_cli
from tests.support.gateway import start_gateway_process


def test_second_gateway_on_same_data_dir_exits_2_naming_the_first(data_dir: Path) -> None:
    first = start_gateway_process(data_dir)
    try:
        runtime_before = first.runtime()
        second = start_gateway_process(data_dir, wait=False)
        try:
            second.process.wait(60)
        finally:
            second.kill()  # only does something when it did not exit by itself
        assert second.process.returncode == 2, second.log()
        text = " ".join(second.log().split())
        assert (
            f"another gateway (pid {first.process.pid}, port {runtime_before['port']}) "
            f"is using {data_dir}"
        ) in text
        assert "Traceback" not in text
        # The refused gateway left the first one's runtime.json alone: status still finds it.
        assert first.runtime() == runtime_before
        status = run_cli(["status"], data_dir=data_dir)
        assert status.returncode == 0, status.stderr
        assert "running" in status.stdout
    finally:
        assert first.stop() == 0, first.log()


def test_lock_is_released_when_the_holder_is_killed(data_dir: Path) -> None:
    first = start_gateway_process(data_dir)
    first.kill()  # SIGKILL: no clean-up ran, the kernel drops the flock
    second = start_gateway_process(data_dir)
    try:
        assert second.runtime()["pid"] == second.process.pid
    finally:
        assert second.stop() == 0, second.log()
    assert not second.runtime_path.exists()


def test_stopping_gateway_only_removes_its_own_runtime_file(tmp_path: Path) -> None:
    path = tmp_path / "runtime.json"
    other = RuntimeInfo(os.getpid() + 1, "127.0.0.1", 1234, "http://127.0.0.1:1234", "now")
    write_runtime(path, other)
    remove_runtime(path, pid=os.getpid())
    assert read_runtime(path) == other
    ours = RuntimeInfo(os.getpid(), "127.0.0.1", 1234, "http://127.0.0.1:1234", "now")
    write_runtime(path, ours)
    remove_runtime(path, pid=os.getpid())
    assert not path.exists()
