"""The gateway's Prometheus series, named and labelled as the OpenFaaS CE gateway names them.

The invocation path only bumps plain dict entries (a few hundred nanoseconds); the
Prometheus families are built at scrape time by a collector. `gateway_service_count` is read
from the desired state at scrape time too, so it is never stale.
`gateway_function_invocation_started` keeps its Go name exactly (no `_total` suffix), which
the Python client would add to a counter, so it is exposed untyped.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

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

    # ---- readers ----
    def invocation_count(self, function_name: str) -> float:
        """Completed invocations of one function, all codes (the list's invocationCount)."""
        return float(sum(s.count for (fn, _), s in self._done.items() if fn == function_name))

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
        yield from (total, seconds, started, service)
