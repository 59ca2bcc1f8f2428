"""The SIGKILL soak (bench/soak.py) at ten kills: every execution accounted for.

It runs the benchmark script itself, so the full-size soak (`make soak`, 100 kills) and this
check share one implementation. Fixed seeds: a failure is reproduced with the same command.
"""

from __future__ import annotations

import json

import pytest

from tests.support.databases import pg_base_url
from tests.test_fuzz_short import run_bench

# About a minute each on a quiet 2-core machine (most of it is ten gateway start-ups); the
# limit is for a machine shared by many runs.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def assert_accounted(s: dict[str, object]) -> None:
    report = json.dumps({k: v for k, v in s.items() if k != "machine"}, indent=1)
    assert s["crashes"] == 0, report
    assert s["lost"] == 0, report
    assert s["stuck"] == 0, report
    assert s["failed_without_reason"] == 0, report
    assert s["repeated_without_asking"] == 0, report
    assert s["schedule_ticks_fired_twice"] == 0, report
    assert s["executions"] >= s["triggered_by_script"] > 0, report  # type: ignore[operator]


def test_ten_kills_lose_nothing_and_repeat_nothing_unasked() -> None:
    s = run_bench(
        "soak.py",
        "--kills", "10",
        "--per-cycle", "2",
        "--max-pause", "0.8",
        "--final-load", "10",
        "--settle", "1",
        "--seed", "18",
    )  # fmt: skip
    assert_accounted(s)


@pytest.mark.postgres
def test_two_nodes_on_postgres_survive_kills_of_either() -> None:
    base = pg_base_url()
    if not base:
        pytest.skip("PostgreSQL tests need HEARTH_TEST_DATABASE_URL")
    s = run_bench(
        "soak.py",
        "--backend", "postgres",
        "--nodes", "2",
        "--database-url", base,
        "--kills", "6",
        "--per-cycle", "2",
        "--max-pause", "0.8",
        "--final-load", "10",
        "--settle", "1",
        "--seed", "18",
    )  # fmt: skip
    assert_accounted(s)
