"""The last hour of each function's traffic, in 10 s samples, for the dashboard's charts.

Nothing new is counted: every `INTERVAL` seconds a task copies the totals the gateway already
keeps for /metrics (completed invocations by code, and the latency histogram) and keeps the
last `KEEP` copies in a ring buffer. A function's series is the difference between
consecutive copies: requests, requests per second, errors (answers with a 5xx status) and the
p50/p99 latency estimated from the histogram buckets the way Prometheus'
`histogram_quantile` does (linear within a bucket). The copies live in this process only; a
restarted gateway starts with an empty hour.

The totals are read through `GatewayMetrics.collect()`, its public Prometheus view, so the
invocation path is not touched at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from api.metrics import BUCKETS, GatewayMetrics

INTERVAL = 10.0
KEEP = 360  # one hour of 10 s samples
_BOUNDS = (*BUCKETS, math.inf)


@attrs.frozen
class Totals:
    """One function's totals since the gateway started (all status codes together)."""

    count: int = 0
    errors: int = 0  # answers with a 5xx status
    seconds: float = 0.0
    buckets: tuple[int, ...] = (0,) * len(_BOUNDS)  # cumulative, one per bound, +Inf last


ZERO = Totals()


def read_totals(metrics: GatewayMetrics) -> dict[str, Totals]:
    """Per `function_name` (`name.namespace`), from the first two families /metrics shows:
    gateway_function_invocation and gateway_functions_seconds."""
    families = list(itertools.islice(metrics.collect(), 2))
    counts: dict[str, list[float]] = {}  # fn -> [count, errors, seconds]
    buckets: dict[str, list[int]] = {}
    index = {_label(bound): i for i, bound in enumerate(_BOUNDS)}
    for family in families:
        for sample in family.samples:
            fn = sample.labels.get("function_name", "")
            if sample.name == "gateway_function_invocation_total":
                row = counts.setdefault(fn, [0, 0, 0.0])
                row[0] += sample.value
                if sample.labels.get("code", "").startswith("5"):
                    row[1] += sample.value
            elif sample.name == "gateway_functions_seconds_sum":
                counts.setdefault(fn, [0, 0, 0.0])[2] += sample.value
            elif sample.name == "gateway_functions_seconds_bucket":
                slot = index.get(sample.labels.get("le", ""))
                if slot is not None:
                    row_b = buckets.setdefault(fn, [0] * len(_BOUNDS))
                    row_b[slot] += int(sample.value)
    return {
        fn: Totals(count=int(c), errors=int(e), seconds=s,
                   buckets=tuple(buckets.get(fn, ZERO.buckets)))
        for fn, (c, e, s) in counts.items()
    }


def _label(bound: float) -> str:
    """The `le` label of a bucket bound, as the Prometheus client writes it."""
    return "+Inf" if bound == math.inf else str(bound)


def quantile(q: float, buckets: Iterable[int]) -> float | None:
    """The q-quantile of a cumulative histogram (`histogram_quantile`); None when empty.
    Above the highest finite bound the answer is that bound."""
    cumulative = list(buckets)
    total = cumulative[-1] if cumulative else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0
    for bound, count in zip(_BOUNDS, cumulative, strict=True):
        if count >= rank:
            if bound == math.inf:
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = bound, count
    return lower


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Samples:
    """A ring buffer of (time, totals of every function), one entry per INTERVAL."""

    def __init__(self, read: Callable[[], Mapping[str, Totals]], *,
                 interval: float = INTERVAL, keep: int = KEEP,
                 clock: Callable[[], float] = time.time) -> None:
        self.read = read
        self.interval = interval
        self.clock = clock
        self._ring: deque[tuple[float, Mapping[str, Totals]]] = deque(maxlen=keep + 1)
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def of(cls, metrics: GatewayMetrics) -> Samples:
        return cls(lambda: read_totals(metrics))

    def take(self) -> None:
        """Copy the totals now (the task does this every `interval`)."""
        self._ring.append((self.clock(), self.read()))

    # ---- the task ----
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            self.take()
            await asyncio.sleep(self.interval)

    # ---- readers ----
    def series(self, function_name: str) -> list[dict[str, Any]]:
        """One entry per interval, oldest first: when it ended, its length, requests,
        requests per second, errors, and p50/p99 latency in seconds (null without traffic)."""
        out = []
        ring = list(self._ring)
        for (t0, before), (t1, after) in itertools.pairwise(ring):
            old, new = before.get(function_name, ZERO), after.get(function_name, ZERO)
            seconds = max(t1 - t0, 1e-9)
            requests = max(new.count - old.count, 0)
            delta = [max(n - o, 0) for n, o in zip(new.buckets, old.buckets, strict=True)]
            p50, p99 = quantile(0.5, delta), quantile(0.99, delta)
            out.append({
                "time": _rfc3339(t1),
                "seconds": round(seconds, 3),
                "requests": requests,
                "rps": round(requests / seconds, 4),
                "errors": max(new.errors - old.errors, 0),
                "p50": None if p50 is None else round(p50, 6),
                "p99": None if p99 is None else round(p99, 6),
            })
        return out

    def summary(self, function_names: Iterable[str], window: float = 3600.0
                ) -> dict[str, dict[str, Any]]:
        """Per function: totals since the gateway started, and over the last `window`
        seconds (or since the oldest sample kept, when that is younger)."""
        now = self.clock()
        current = self.read()
        baseline: Mapping[str, Totals] = {}
        since = now
        for moment, totals in self._ring:
            if moment >= now - window:
                baseline, since = totals, moment
                break
        out = {}
        for fn in function_names:
            new, old = current.get(fn, ZERO), baseline.get(fn, ZERO)
            out[fn] = {
                "invocations": new.count,
                "errors": new.errors,
                "recent": {"seconds": round(now - since, 3),
                           "requests": max(new.count - old.count, 0),
                           "errors": max(new.errors - old.errors, 0)},
            }
        return out
