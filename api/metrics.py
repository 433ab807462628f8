"""The gateway's Prometheus series, named and labelled as the OpenFaaS CE gateway names them.

The invocation path only bumps plain dict entries (a few hundred nanoseconds); the
Prometheus families are built at scrape time by a collector. `gateway_service_count` is read
from the desired state at scrape time too, so it is never stale.
`gateway_function_invocation_started` keeps its Go name exactly (no `_total` suffix), which
the Python client would add to a counter, so it is exposed untyped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from controller.health import HealthTracker
from controller.stats import ControllerStats
from events.model import Desired

# The Go client's default buckets, as the OpenFaaS gateway uses them.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Series:
    """Count, sum and bucket counts for one (function, code)."""

    __slots__ = ("count", "total", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * (len(BUCKETS) + 1)


class GatewayMetrics(Collector):
    def __init__(self, desired: Callable[[], Desired]) -> None:
        self._desired = desired
        self._started: dict[str, int] = {}
        self._done: dict[tuple[str, int], _Series] = {}
        self._async_retries: dict[str, int] = {}
        self.async_depth: Callable[[], Mapping[str, int]] = dict  # set by the async workers
        # more families, read at scrape time (controller, event log)
        self.sources: list[Callable[[], Iterable[Metric]]] = []
        self.registry = CollectorRegistry()
        self.registry.register(self)

    # ---- the hot path ----
    def start(self, function_name: str) -> None:
        self._started[function_name] = self._started.get(function_name, 0) + 1

    def record(self, function_name: str, code: int, seconds: float) -> None:
        series = self._done.get((function_name, code))
        if series is None:
            series = self._done[(function_name, code)] = _Series()
        series.count += 1
        series.total += seconds
        series.buckets[bisect.bisect_left(BUCKETS, seconds)] += 1

    def async_retry(self, function_name: str) -> None:
        self._async_retries[function_name] = self._async_retries.get(function_name, 0) + 1

    # ---- readers ----
    def invocation_count(self, function_name: str) -> float:
        """Completed invocations of one function, all codes (the list's invocationCount)."""
        return float(sum(s.count for (fn, _), s in self._done.items() if fn == function_name))

    def started_counts(self) -> dict[str, int]:
        """Invocations started per function so far (for the autoscaler's sampling)."""
        return dict(self._started)

    def completed_counts(self) -> dict[str, int]:
        """Invocations completed per function so far, all codes, in one pass."""
        out: dict[str, int] = {}
        for (fn, _), series in self._done.items():
            out[fn] = out.get(fn, 0) + series.count
        return out

    def collect(self) -> Iterator[Metric]:
        total = CounterMetricFamily("gateway_function_invocation", "Completed function invocations",
                                    labels=["function_name", "code"])
        seconds = HistogramMetricFamily("gateway_functions_seconds",
                                        "Function invocation time taken",
                                        labels=["function_name", "code"])
        for (fn, code), series in sorted(self._done.items()):
            labels = [fn, str(code)]
            total.add_metric(labels, series.count)
            cumulative, buckets = 0, []
            for bound, n in zip((*map(str, BUCKETS), "+Inf"), series.buckets, strict=True):
                cumulative += n
                buckets.append((bound, cumulative))
            seconds.add_metric(labels, buckets, series.total)
        started = Metric("gateway_function_invocation_started", "Function invocations started",
                         "unknown")
        for fn, n in sorted(self._started.items()):
            started.add_sample("gateway_function_invocation_started", {"function_name": fn}, n)
        service = GaugeMetricFamily("gateway_service_count", "Desired replicas per function",
                                    labels=["function_name"])
        for (namespace, name), state in sorted(self._desired().functions.items()):
            service.add_metric([f"{name}.{namespace}"], state.replicas)
        depth = GaugeMetricFamily("docker_faas_async_queue_depth",
                                  "Async requests queued or running", labels=["function_name"])
        for fn, n in sorted(self.async_depth().items()):
            depth.add_metric([fn], n)
        retries = CounterMetricFamily("docker_faas_async_retries",
                                      "Async invocations scheduled again after a failed attempt",
                                      labels=["function_name"])
        for fn, n in sorted(self._async_retries.items()):
            retries.add_metric([fn], n)
        yield from (total, seconds, started, service, depth, retries)
        for source in self.sources:
            yield from source()


def controller_families(stats: ControllerStats, health: HealthTracker,
                        desired: Callable[[], Desired]) -> Iterator[Metric]:
    """The controller's own series: what it did, what failed, which replicas are healthy."""
    actions = CounterMetricFamily("docker_faas_reconcile_actions",
                                  "Container actions performed by the controller",
                                  labels=["action", "reason"])
    for (action, reason), n in sorted(stats.actions.items()):
        actions.add_metric([action, reason], n)
    errors = CounterMetricFamily("docker_faas_reconcile_errors",
                                 "Failed reconcile passes per function", labels=["function_name"])
    for fn, n in sorted(stats.errors.items()):
        errors.add_metric([fn], n)
    reconnects = CounterMetricFamily("docker_faas_engine_reconnects",
                                     "Times the controller lost and re-sought the Docker engine")
    reconnects.add_metric([], stats.engine_reconnects)
    healthy = GaugeMetricFamily("docker_faas_replicas_healthy",
                                "Replicas passing their health probe", labels=["function_name"])
    for namespace, name in sorted(desired().functions):
        healthy.add_metric([f"{name}.{namespace}"], health.available((namespace, name)))
    yield from (actions, errors, reconnects, healthy)


def append_families(appended: Mapping[str, int]) -> Iterator[Metric]:
    family = CounterMetricFamily("docker_faas_events_appended",
                                 "Events appended to the log by this process, by type",
                                 labels=["type"])
    for kind, n in sorted(appended.items()):
        family.add_metric([kind], n)
    yield family
