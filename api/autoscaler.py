"""The built-in autoscaler: samples the proxy's counters, asks `decide`, appends the answer.

Why a background task and not the proxy: the invocation path only bumps two dict entries per
request (`GatewayMetrics.start` and `.record`). Everything the decision needs is derived
from those cumulative counters once per AUTOSCALE_INTERVAL, here:

- in flight = started - completed, averaged over the last RATE_WINDOW seconds of samples
  (`capacity` load);
- requests per second = completed-count delta over the same window (`rps` load);
- idle since = the last sample at which anything had started or completed, while nothing is
  in flight.

The decision is the pure `controller.autoscale.decide`; this module keeps the little memory
it needs between ticks (the samples, recent recommendations) and records each decision as a
`FunctionScaled` event with actor `autoscaler`, appended with the function's version, so it
is audited like any user's scale request and loses to a concurrent one (ConcurrencyError:
skip this tick). Scaling to zero ends here too; waking up is the proxy's (api/wake.py).

Only functions that carry at least one `com.openfaas.scale.*` label are autoscaled; any
other keeps the count it was deployed or scaled to (OpenFaaS Pro scales every function;
our users scale by hand with the same API, and an autoscaler undoing that would surprise
them).

A count someone else set (a user's scale request, a wake from zero, a deploy, or what the
gateway finds at start) counts as a recommendation made at that moment, so it stands for one
`down.window` before the autoscaler may lower it, and it restarts the idle clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Container

import attrs

from api.context import Gateway
from controller.autoscale import PREFIX as SCALE_PREFIX
from controller.autoscale import PolicyError, ScalePolicy, decide, policy_from_labels
from events import decide as commands
from events.errors import DomainError
from events.model import FunctionSpec, FunctionState, stream_name
from events.store import ConcurrencyError, Recorded

log = logging.getLogger("docker_faas.autoscaler")
ACTOR = "autoscaler"
RATE_WINDOW = 5.0  # seconds of samples behind the rps and the mean in-flight

Key = tuple[str, str]
History = tuple[tuple[float, int], ...]


@attrs.frozen
class Load:
    rps: float  # completed requests per second over the window
    in_flight: float  # mean of the in-flight samples within the window
    idle_since: float | None  # last activity; None while requests are in flight

    def of(self, kind: str) -> float:
        return self.rps if kind == "rps" else self.in_flight


class _Samples:
    __slots__ = ("points", "started", "completed", "active_at")

    def __init__(self, now: float, started: int, completed: int) -> None:
        self.points: deque[tuple[float, int, int]] = deque()  # (time, completed, in flight)
        self.started = started
        self.completed = completed
        self.active_at = now


class LoadTracker:
    """Per-function load from cumulative counters read at known times.

    Pure bookkeeping: the caller passes the time (a monotonic clock in the gateway, plain
    numbers in tests). One `observe` per function and tick; the samples kept per function
    are bounded by the window (plus one older sample, the rate's baseline).
    """

    def __init__(self, window: float = RATE_WINDOW) -> None:
        self._window = window
        self._seen: dict[str, _Samples] = {}

    def observe(self, name: str, started: int, completed: int, now: float) -> Load:
        s = self._seen.get(name)
        if s is None or started < s.started or completed < s.completed:
            # first sight (or counters that went back, which they never should): start over;
            # whatever happened before is not attributed to this window
            s = self._seen[name] = _Samples(now, started, completed)
        elif started != s.started or completed != s.completed:
            s.active_at = now  # something started or finished since the last sample
        s.started, s.completed = started, completed
        in_flight = max(0, started - completed)
        if in_flight:
            s.active_at = now
        points = s.points
        points.append((now, completed, in_flight))
        horizon = now - self._window
        while len(points) > 1 and points[1][0] <= horizon:
            points.popleft()  # keep one sample at or before the horizon: the rate's baseline
        since, base, _ = points[0]
        rps = (completed - base) / (now - since) if now > since else 0.0
        inside = [n for t, _, n in points if t > horizon]
        mean = sum(inside) / len(inside) if inside else float(in_flight)
        return Load(rps=rps, in_flight=mean, idle_since=None if in_flight else s.active_at)

    def touch(self, name: str, now: float) -> None:
        """Restart a function's idle clock (it was just deployed, woken or scaled)."""
        s = self._seen.get(name)
        if s is not None:
            s.active_at = max(s.active_at, now)

    def forget(self, keep: Container[str]) -> None:
        for name in [n for n in self._seen if n not in keep]:
            del self._seen[name]


@attrs.frozen
class _Memory:
    version: int  # the function's stream version when we last looked (or wrote)
    history: History = ()  # recent recommendations, for the down window


def function_name(key: Key) -> str:
    """The metrics' name of a function: `name.namespace`."""
    return f"{key[1]}.{key[0]}"


class Autoscaler:
    def __init__(self, gw: Gateway, *, interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._gw = gw
        self._interval = interval
        self._clock = clock
        self.loads = LoadTracker()
        self._memory: dict[Key, _Memory] = {}
        self._policies: dict[Key, tuple[FunctionSpec, ScalePolicy | None]] = {}
        self._task: asyncio.Task[None] | None = None

    # ---- the task ----
    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="autoscaler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.tick(self._clock())
            except Exception:  # one bad tick must not end autoscaling
                log.exception("autoscaler tick failed")

    # ---- one pass over every function ----
    def tick(self, now: float) -> list[Recorded]:
        """Sample every function's load, decide, and append the scale events; returns them.
        Synchronous on purpose: no request can slip in between a sample and its append."""
        gw = self._gw
        started, completed = gw.metrics.started_counts(), gw.metrics.completed_counts()
        functions = gw.desired.functions
        out: list[Recorded] = []
        for key, state in functions.items():
            out += self._step(key, state, started, completed, now)
        self.loads.forget({function_name(k) for k in functions})
        for gone in [k for k in self._memory if k not in functions]:
            del self._memory[gone]
        for gone in [k for k in self._policies if k not in functions]:
            del self._policies[gone]
        return out

    def _step(self, key: Key, state: FunctionState, started: dict[str, int],
              completed: dict[str, int], now: float) -> list[Recorded]:
        fn = function_name(key)
        memory = self._memory.get(key)
        history = memory.history if memory is not None else ()
        if memory is None or memory.version != state.version:
            # deployed, woken, scaled or updated by someone else (or first seen): their count
            # stands for a window, and the function is not idle before zero-duration from now
            self.loads.touch(fn, now)
            if state.replicas > 0:
                history += ((now, state.replicas),)
        load = self.loads.observe(fn, started.get(fn, 0), completed.get(fn, 0), now)
        policy = self._policy(key, state.spec)
        if policy is None or not (policy.enabled or policy.zero):
            self._memory[key] = _Memory(state.version)  # min == max and no zero: hands off
            return []
        decision = decide(policy, state.replicas, load.of(policy.type), now, load.idle_since,
                          history)
        self._memory[key] = _Memory(state.version, decision.history)
        if decision.replicas is None:
            return []
        return self._scale(key, state, decision.replicas, load.of(policy.type), policy)

    def _scale(self, key: Key, state: FunctionState, replicas: int, load: float,
               policy: ScalePolicy) -> list[Recorded]:
        gw = self._gw
        try:
            events = commands.scale(gw.desired, key[0], key[1], replicas,
                                    reason=scale_reason(policy, state.replicas, replicas, load))
            recorded = gw.append(stream_name(*key), list(events), state.version, actor=ACTOR,
                                 request_id=gw.new_id(), source="", user_agent=ACTOR)
        except (ConcurrencyError, DomainError) as err:  # a user changed it meanwhile: skip
            log.info("autoscaler: %s not scaled: %s", function_name(key), err)
            return []
        if not recorded:
            return []
        self._memory[key] = attrs.evolve(self._memory[key], version=recorded[-1].version)
        log.info("autoscaler: %s %d -> %d replicas (%s load %.2f, target %g)",
                 function_name(key), state.replicas, replicas, policy.type, load, policy.target)
        return recorded

    def _policy(self, key: Key, spec: FunctionSpec) -> ScalePolicy | None:
        """The function's policy, parsed once per spec; None (and one warning) when its
        labels cannot be used (deployed before they were validated)."""
        cached = self._policies.get(key)
        if cached is not None and (cached[0] is spec or cached[0] == spec):
            return cached[1]
        policy: ScalePolicy | None
        labels = dict(spec.labels)
        try:
            if not any(k.startswith(SCALE_PREFIX) for k in labels):
                policy = None  # opt-in: a function without scale labels keeps its count
            else:
                policy = policy_from_labels(labels, max_replicas=self._gw.settings.max_replicas)
        except PolicyError as err:
            log.warning("autoscaler: %s is not autoscaled: %s", function_name(key), err)
            policy = None
        self._policies[key] = (spec, policy)
        return policy


def scale_reason(policy: ScalePolicy, current: int, replicas: int, load: float) -> str:
    """Why the autoscaler changes the count, as the `reason` of its FunctionScaled event."""
    if replicas == 0:
        return f"idle for {policy.zero_duration:g}s: scale to zero"
    way = "up" if replicas > current else "down"
    return f"{way}: {policy.type} load {load:.2f}, target {policy.target:g} per replica"
