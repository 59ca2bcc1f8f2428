"""Prometheus metrics of one gateway process.

Every metric lives in the `Metrics` object that `app.py` builds (a registry of its own, never
prometheus_client's global one), so tests can run several gateways in one process. Domain code
records through the small methods here and never imports prometheus_client itself; counts that
already exist somewhere (connections, pending approvals, running executions) are read when
`/metrics` is scraped instead of being kept twice.

Label values are bounded on purpose: message types, error codes, statuses, step actions,
provider and model names from the configuration, workflow ids from the workflow directory. No
execution, schedule or session id ever becomes a label (each would be a new time series).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric

# prometheus_client itself is imported only when /metrics is scraped: recording is plain dict
# arithmetic here, and a gateway nobody scrapes should not carry the library (~2 MB, ~20 ms).

#: Request latencies are sub-millisecond for most messages; chat and triggers take longer.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0)
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0)
MODEL_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
#: Past this many distinct values a label collapses into "other" (a guard, not a limit people
#: should reach: workflow ids and client names are few).
MAX_LABEL_VALUES = 200
OTHER = "other"


class _Bounded:
    """Remembers the label values seen so far and maps new ones past the cap to "other"."""

    def __init__(self, cap: int = MAX_LABEL_VALUES) -> None:
        self._seen: set[str] = set()
        self._cap = cap

    def __call__(self, value: str | None) -> str:
        value = value or "unknown"
        if value in self._seen:
            return value
        if len(self._seen) >= self._cap:
            return OTHER
        self._seen.add(value)
        return value


class _HotCounter:
    """A labelled counter kept in a plain dict and handed to Prometheus at scrape time.

    prometheus_client's own counters take a lock and a label lookup on every `inc`, a few
    microseconds that show on a path doing one request in ~40 µs; the event loop is one thread,
    so a dict add is enough here.
    """

    def __init__(self, name: str, documentation: str, label: str) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.values: dict[str, float] = {}

    def inc(self, value: str, amount: float = 1.0) -> None:
        self.values[value] = self.values.get(value, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily

        family = CounterMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, count in self.values.items():
            family.add_metric([value], count)
        yield family


class _HotHistogram:
    """A labelled histogram with the same trade as `_HotCounter`: bucket counts in lists."""

    def __init__(
        self, name: str, documentation: str, label: str, buckets: tuple[float, ...]
    ) -> None:
        self.name, self.documentation, self.label = name, documentation, label
        self.bounds = buckets
        self.series: dict[str, tuple[list[int], list[float]]] = {}

    def observe(self, value: str, seconds: float) -> None:
        series = self.series.get(value)
        if series is None:
            series = self.series[value] = ([0] * (len(self.bounds) + 1), [0.0])
        series[0][bisect.bisect_left(self.bounds, seconds)] += 1
        series[1][0] += seconds

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import HistogramMetricFamily

        family = HistogramMetricFamily(self.name, self.documentation, labels=[self.label])
        for value, (counts, total) in self.series.items():
            family.add_metric([value], _cumulative(self.bounds, counts), total[0])
        yield family


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    cumulative, buckets = 0, []
    for bound, count in zip((*bounds, float("inf")), counts, strict=True):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(cumulative)))
    return buckets


class _Child:
    """One labelled series of a `_Family` (what prometheus_client's `.labels(...)` returns)."""

    __slots__ = ("_family", "_key")

    def __init__(self, family: _Family, key: tuple[str, ...]) -> None:
        self._family, self._key = family, key

    def inc(self, amount: float = 1.0) -> None:
        values = self._family.values
        values[self._key] = values.get(self._key, 0.0) + amount

    def set(self, value: float) -> None:
        self._family.values[self._key] = float(value)

    def observe(self, seconds: float) -> None:
        family = self._family
        series = family.series.get(self._key)
        if series is None:
            series = family.series[self._key] = ([0] * (len(family.bounds) + 1), [0.0])
        series[0][bisect.bisect_left(family.bounds, seconds)] += 1
        series[1][0] += seconds


class _Family:
    """A counter, gauge or histogram with any number of labels, in dicts until scraped.

    Same API as the prometheus_client metrics it replaces (`.labels(...).inc()`, `.set()`,
    `.observe()`, and the same calls without labels), so callers did not change.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        documentation: str,
        labels: tuple[str, ...] = (),
        buckets: tuple[float, ...] = (),
    ) -> None:
        self.kind, self.name, self.documentation = kind, name, documentation
        self.label_names = labels
        self.bounds = buckets
        self.values: dict[tuple[str, ...], float] = {}
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        self._unlabelled = _Child(self, ())

    def labels(self, *values: str) -> _Child:
        return _Child(self, values)

    def inc(self, amount: float = 1.0) -> None:
        self._unlabelled.inc(amount)

    def set(self, value: float) -> None:
        self._unlabelled.set(value)

    def observe(self, seconds: float) -> None:
        self._unlabelled.observe(seconds)

    def clear(self) -> None:
        self.values.clear()
        self.series.clear()

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        labels = list(self.label_names)
        if self.kind == "histogram":
            histogram = HistogramMetricFamily(self.name, self.documentation, labels=labels)
            for key, (counts, total) in self.series.items():
                histogram.add_metric(list(key), _cumulative(self.bounds, counts), total[0])
            if not self.series and not labels:
                histogram.add_metric([], _cumulative(self.bounds, [0] * (len(self.bounds) + 1)), 0)
            yield histogram
            return
        family: CounterMetricFamily | GaugeMetricFamily = (
            CounterMetricFamily(self.name, self.documentation, labels=labels)
            if self.kind == "counter"
            else GaugeMetricFamily(self.name, self.documentation, labels=labels)
        )
        values = self.values if self.values or labels else {(): 0.0}
        for key, value in values.items():
            family.add_metric(list(key), value)
        yield family


class _Collector:
    """The one collector the scrape-time registry holds: every family, in order."""

    def __init__(self, *parts: _HotCounter | _HotHistogram | _Family) -> None:
        self.parts = parts

    def collect(self) -> Iterator[Metric]:
        for part in self.parts:
            yield from part.collect()


class Metrics:
    CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self._workflow = _Bounded()
        self._client = _Bounded()
        self._model = _Bounded()
        self.connections = _Family(
            "gauge", "hearth_connections", "Open WebSocket connections.", ("client",)
        )
        self.frames = _HotCounter("hearth_frames", "WebSocket frames, by direction.", "direction")
        self.request_seconds = _HotHistogram(
            "hearth_request_seconds",
            "Time from a request's arrival to its reply, by message type.",
            "type",
            REQUEST_BUCKETS,
        )
        self.errors = _Family(
            "counter", "hearth_errors", "Error replies, by error code.", ("code",)
        )
        self.executions = _Family(
            "counter",
            "hearth_executions",
            "Workflow executions that ended, by workflow and final status.",
            ("workflow", "status"),
        )
        self.executions_running = _Family(
            "gauge",
            "hearth_executions_running",
            "Executions running or paused (waiting for a timer or a person).",
        )
        self.step_seconds = _HotHistogram(
            "hearth_step_seconds", "Time a workflow step ran, by action.", "action", STEP_BUCKETS
        )
        self.approvals_pending = _Family(
            "gauge", "hearth_approvals_pending", "Approvals waiting for a person."
        )
        self.schedule_ticks = _Family(
            "counter",
            "hearth_schedule_ticks",
            "Schedule ticks, by outcome (ok, failed, skipped, missed).",
            ("status",),
        )
        self.schedule_lateness = _Family(
            "histogram",
            "hearth_schedule_lateness_seconds",
            "How late a tick's run was announced after its scheduled time.",
            buckets=LATENESS_BUCKETS,
        )
        self.model_requests = _Family(
            "counter",
            "hearth_model_requests",
            "Model requests, by provider, model and outcome.",
            ("provider", "model", "outcome"),
        )
        self.model_seconds = _Family(
            "histogram",
            "hearth_model_seconds",
            "Duration of model requests.",
            ("provider", "model"),
            MODEL_BUCKETS,
        )
        self.model_tokens = _Family(
            "counter",
            "hearth_model_tokens",
            "Tokens used, by provider, model and direction (input, output).",
            ("provider", "model", "direction"),
        )
        self.heartbeat_runs = _Family(
            "counter", "hearth_heartbeat_runs", "Heartbeat runs, by status.", ("status",)
        )
        self.alerts = _Family("counter", "hearth_alerts", "Heartbeat alerts sent.")
        self.events_dropped = _Family(
            "counter", "hearth_events_dropped", "Events not delivered, by reason.", ("reason",)
        )
        self.bus_reconnects = _Family(
            "counter", "hearth_bus_reconnects", "Reconnections of the PostgreSQL event bus."
        )
        self.telegram_requests = _Family(
            "counter",
            "hearth_telegram_requests",
            "Telegram Bot API requests, by method and outcome (ok, error, 429).",
            ("method", "outcome"),
        )
        self._bus_reconnects_seen = 0
        self._collector = _Collector(
            self.connections,
            self.frames,
            self.request_seconds,
            self.errors,
            self.executions,
            self.executions_running,
            self.step_seconds,
            self.approvals_pending,
            self.schedule_ticks,
            self.schedule_lateness,
            self.model_requests,
            self.model_seconds,
            self.model_tokens,
            self.heartbeat_runs,
            self.alerts,
            self.events_dropped,
            self.bus_reconnects,
            self.telegram_requests,
        )

    # -- recording (called on hot paths: keep each one a dictionary lookup and an add) -----

    def frame_in(self) -> None:
        self.frames.inc("in")

    def frame_out(self, count: int = 1) -> None:
        self.frames.inc("out", count)

    def request(self, message_type: str, seconds: float, error_code: str | None) -> None:
        self.request_seconds.observe(message_type, seconds)
        if error_code is not None:
            self.errors.labels(error_code).inc()

    def execution_ended(self, workflow_id: str, status: str) -> None:
        self.executions.labels(self._workflow(workflow_id), status).inc()

    def step(self, action: str, seconds: float) -> None:
        self.step_seconds.observe(action, seconds)

    def tick(self, status: str) -> None:
        """A tick's outcome: ok or failed when its run ended, skipped or missed at once."""
        self.schedule_ticks.labels(status).inc()

    def tick_started(self, lateness_s: float) -> None:
        self.schedule_lateness.observe(max(0.0, lateness_s))

    def model_request(
        self,
        provider: str,
        model: str,
        outcome: str,
        seconds: float,
        input_tokens: int = 0,
        output_tokens: int = 0,
    ) -> None:
        model = self._model(model)
        self.model_requests.labels(provider, model, outcome).inc()
        self.model_seconds.labels(provider, model).observe(seconds)
        if input_tokens:
            self.model_tokens.labels(provider, model, "input").inc(input_tokens)
        if output_tokens:
            self.model_tokens.labels(provider, model, "output").inc(output_tokens)

    def heartbeat_run(self, status: str, alerted: bool) -> None:
        self.heartbeat_runs.labels(status).inc()
        if alerted:
            self.alerts.inc()

    def event_dropped(self, reason: str, count: int = 1) -> None:
        self.events_dropped.labels(reason).inc(count)

    def bus_reconnected(self) -> None:
        self.bus_reconnects.inc()

    def telegram_request(self, method: str, outcome: str) -> None:
        self.telegram_requests.labels(method, outcome).inc()

    # -- read at scrape time ----------------------------------------------------------------

    def set_connections(self, client_names: Iterable[str | None]) -> None:
        counts: dict[str, int] = {}
        for name in client_names:
            label = self._client(name)
            counts[label] = counts.get(label, 0) + 1
        self.connections.clear()
        for label, count in counts.items():
            self.connections.labels(label).set(count)

    def sync_bus_reconnects(self, total: int) -> None:
        """The bus counts its own reconnections; bring the counter up to that total."""
        if total > self._bus_reconnects_seen:
            self.bus_reconnects.inc(total - self._bus_reconnects_seen)
            self._bus_reconnects_seen = total

    def set_state(self, *, running: int, approvals_pending: int) -> None:
        self.executions_running.set(running)
        self.approvals_pending.set(approvals_pending)

    def render(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self._collector)
        return generate_latest(registry)
