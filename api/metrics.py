"""The gateway's Prometheus series, named and labelled as the OpenFaaS CE gateway names them.

`gateway_service_count` is read from the desired state at scrape time (a collector), so it is
never stale and costs nothing between scrapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from events.model import Desired


class _ServiceCount(Collector):
    def __init__(self, desired: Callable[[], Desired]) -> None:
        self._desired = desired

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gateway_service_count", "Desired replicas per function", labels=["function_name"]
        )
        for (namespace, name), state in sorted(self._desired().functions.items()):
            family.add_metric([f"{name}.{namespace}"], state.replicas)
        yield family


class GatewayMetrics:
    def __init__(self, desired: Callable[[], Desired]) -> None:
        self.registry = CollectorRegistry()
        self.invocations = Counter(
            "gateway_function_invocation",
            "Completed function invocations",
            ["function_name", "code"],
            registry=self.registry,
        )
        self.seconds = Histogram(
            "gateway_functions_seconds",
            "Function invocation time taken",
            ["function_name", "code"],
            registry=self.registry,
        )
        self.started = Counter(
            "gateway_function_invocation_started",
            "Function invocations started",
            ["function_name"],
            registry=self.registry,
        )
        self.registry.register(_ServiceCount(desired))

    def record(self, function_name: str, code: int, seconds: float) -> None:
        label = str(code)
        self.invocations.labels(function_name, label).inc()
        self.seconds.labels(function_name, label).observe(seconds)

    def invocation_count(self, function_name: str) -> float:
        """Completed invocations of one function, all codes (the list's invocationCount)."""
        total = 0.0
        for metric in self.invocations.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["function_name"] == function_name:
                    total += sample.value
        return total
