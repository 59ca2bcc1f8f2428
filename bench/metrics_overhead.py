"""Cost of recording metrics on the hot paths, against the work those paths already do.

Measures, in one run, what the `Metrics` recording calls a request and a workflow step make
cost (microseconds per call, best of several rounds), and the same recording done through
prometheus_client's own labelled Counter/Histogram, which is what a straightforward
implementation would use. Compare the figures with the per-round-trip and per-step CPU in
docs/benchmarks.md (bench/ws_roundtrip.py, bench/workflow_steps.py): the issue's budget is 5 %.

    .venv/bin/python bench/metrics_overhead.py
"""

from __future__ import annotations

import timeit

from prometheus_client import CollectorRegistry, Counter, Histogram

from hearth.metrics import REQUEST_BUCKETS, STEP_BUCKETS, Metrics

ROUNDS = 5
CALLS = 200_000


def best(fn: object) -> float:
    times = timeit.repeat(fn, number=CALLS, repeat=ROUNDS)  # type: ignore[arg-type]
    return min(times) / CALLS * 1e6


def main() -> None:
    metrics = Metrics()
    registry = CollectorRegistry()
    frames = Counter("f", "f", ["direction"], registry=registry)
    requests = Histogram("r", "r", ["type"], buckets=REQUEST_BUCKETS, registry=registry)
    steps = Histogram("s", "s", ["action"], buckets=STEP_BUCKETS, registry=registry)

    def hearth_request() -> None:
        metrics.frame_in()
        metrics.frame_out()
        metrics.request_seconds.observe("ping", 0.0001)

    def plain_request() -> None:
        frames.labels("in").inc()
        frames.labels("out").inc()
        requests.labels("ping").observe(0.0001)

    def hearth_step() -> None:
        metrics.step("noop", 0.0001)

    def plain_step() -> None:
        steps.labels("noop").observe(0.0001)

    rows = [
        ("request (2 frames + latency)", best(hearth_request), best(plain_request)),
        ("workflow step (duration)", best(hearth_step), best(plain_step)),
    ]
    print(f"{'path':32} {'Hearth µs':>10} {'prometheus_client µs':>21} {'ratio':>6}")
    for name, ours, theirs in rows:
        print(f"{name:32} {ours:10.2f} {theirs:21.2f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
