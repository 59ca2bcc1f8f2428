"""The protocol fuzz (bench/fuzz.py) at a size for every test run: each frame answered once.

It runs the benchmark script itself against a real gateway process, so the check the project
runs at full size (`make soak`) and this one cannot drift apart. The seed is fixed so a failure
here is reproduced with `python bench/fuzz.py --seed 18 --frames 3000 ...`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# About a minute on a quiet 2-core machine; the limit is for a machine shared by many runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parent.parent


def run_bench(script: str, *args: str, timeout_s: float = 280) -> dict[str, Any]:
    """Run a bench script with `--json` and return its summary (its output on failure).

    On a time-out it gets SIGTERM, not SIGKILL: the script then stops the gateways it started.
    """
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / script), *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.terminate()
        stdout, stderr = process.communicate(timeout=30)
        raise AssertionError(f"{script} took over {timeout_s:.0f} s:\n{stderr[-3000:]}") from None
    finally:
        if process.poll() is None:  # interrupted otherwise (pytest-timeout): stop it too
            process.terminate()
            process.wait(30)
    try:
        summary: dict[str, Any] = json.loads(stdout)
    except ValueError:
        raise AssertionError(
            f"{script} printed no summary (exit {process.returncode}):\n{stdout}\n{stderr}"
        ) from None
    return summary


def test_every_fuzzed_frame_is_answered_exactly_once() -> None:
    s = run_bench(
        "fuzz.py",
        "--frames", "3000",
        "--connections", "3",
        "--warmup", "600",
        "--rounds", "2",
        "--closing-every", "500",
        "--seed", "18",
        "--idle", "0",
    )  # fmt: skip
    report = json.dumps({k: v for k, v in s.items() if k != "machine"}, indent=1)
    assert s["kept_frames"] == 3000, report
    assert s["replies"] == s["kept_frames"], report
    assert (s["missing"], s["duplicate"], s["unexpected"]) == (0, 0, 0), report
    assert s["unexpected_closes"] == 0, report
    assert not s["crashed"], report
    # Frames over the size limit and text that is not UTF-8 end their own connection with
    # 1009 / 1007 and nothing else.
    assert s["closing_frames"] >= 4, report
    assert s["closing_wrong"] == 0, report
    # Every family of odd frame was actually sent.
    kinds = set(s["kinds"])
    for kind in ("valid", "random-json", "not-json", "binary", "deep", "mutated:missing-id"):
        assert kind in kinds, report
    # A generous leak check: the growth issue 18 found was ~1 MB per 1000 mixed frames.
    assert s["rss_mb"]["growth_after_warmup"] < 40, report
