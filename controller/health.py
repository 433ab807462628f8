"""Which replicas may take traffic: probes on the watchdog's health endpoint.

Each live replica with a network address is probed every `interval` on `/_/health`; only a
replica whose last probe answered 200 is routable. A new replica is probed at once, so a
fresh deploy becomes reachable as soon as its watchdog is up; a replica the engine reports
dead, or that the controller is about to stop, leaves routing immediately.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import attrs

from controller.model import FunctionKey, ObservedReplica

log = logging.getLogger("docker_faas.health")

Address = tuple[str, int]
STARTUP_PROBE_INTERVAL = 0.05
STARTUP_WINDOW = 60.0


async def probe(address: Address, path: str, timeout: float) -> bool:
    """One HTTP/1.1 GET; healthy means the status line says 200."""
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(*address)
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {address[0]}\r\nConnection: close\r\n\r\n".encode()
            )
            status_line = await reader.readline()
        return status_line.split(b" ", 2)[1:2] == [b"200"]
    except (TimeoutError, OSError, IndexError):
        return False
    finally:
        if writer is not None:
            writer.close()


class HealthTracker:
    def __init__(self, *, interval: float, port: int = 8080, path: str = "/_/health",
                 on_change: Callable[[FunctionKey], None] | None = None) -> None:
        self.interval = interval
        self.port = port
        self.path = path
        self.on_change = on_change  # told when a replica turns healthy or unhealthy
        self._ever_healthy: set[str] = set()
        self._failing_since: dict[str, float] = {}
        self._replicas: dict[FunctionKey, dict[str, ObservedReplica]] = {}
        self._healthy: dict[str, bool] = {}  # container id -> last probe result
        self._withdrawn: set[str] = set()  # never routable again, whatever probes say
        self._routable: dict[FunctionKey, tuple[Address, ...]] = {}
        self._cursor: dict[FunctionKey, itertools.count[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready: dict[FunctionKey, asyncio.Event] = {}  # set while a replica is routable

    # ---- what the proxy and the API read ----
    def pick(self, key: FunctionKey) -> Address | None:
        """The next healthy replica of `key`, round robin; None when there is none."""
        addresses = self._routable.get(key)
        if not addresses:
            return None
        return addresses[next(self._cursor[key]) % len(addresses)]

    def routable(self, key: FunctionKey) -> tuple[Address, ...]:
        return self._routable.get(key, ())

    def available(self, key: FunctionKey) -> int:
        return len(self._routable.get(key, ()))

    async def wait_routable(self, key: FunctionKey, timeout: float) -> Address | None:
        """A healthy replica of `key`, waiting up to `timeout` s for one to appear."""
        address = self.pick(key)
        if address is not None or timeout <= 0:
            return address
        event = self._ready.setdefault(key, asyncio.Event())
        try:
            async with asyncio.timeout(timeout):
                while address is None:
                    await event.wait()
                    address = self.pick(key)
                    if address is None:
                        event.clear()
        except TimeoutError:
            return None
        return address

    def annotate(self, replicas: list[ObservedReplica]) -> list[ObservedReplica]:
        """The replicas with what the probes know of them, for the planner."""
        now = time.monotonic()
        return [
            attrs.evolve(r, healthy=bool(self._healthy.get(r.id)),
                         failing_for=now - self._failing_since.get(r.id, now))
            for r in replicas
        ]

    def suspect(self, address: Address) -> None:
        """The proxy could not connect to `address`: out of routing until a probe passes."""
        for key, replicas in self._replicas.items():
            for replica in replicas.values():
                if (replica.ip, self.port) == address and self._healthy.get(replica.id):
                    self._healthy[replica.id] = False
                    self._rebuild(key)
                    self._spawn(self._probe_one(replica))
                    return

    # ---- what the controller tells it ----
    def replicas(self, key: FunctionKey) -> list[ObservedReplica]:
        """The live containers of `key` as last observed."""
        return list(self._replicas.get(key, {}).values())

    def observe(self, key: FunctionKey, replicas: list[ObservedReplica]) -> None:
        """The current containers of `key`; new live ones are probed straight away."""
        live = {r.id: r for r in replicas if r.live and r.ip}
        previous = self._replicas.get(key, {})
        for gone in previous.keys() - live.keys():
            self._healthy.pop(gone, None)
            self._withdrawn.discard(gone)
            self._ever_healthy.discard(gone)
            self._failing_since.pop(gone, None)
        if live:
            self._replicas[key] = live
            self._cursor.setdefault(key, itertools.count())
        else:
            self._replicas.pop(key, None)
        for new in live.keys() - previous.keys():
            self._spawn(self._probe_starting(live[new]))
        self._rebuild(key)

    def withdraw(self, container_id: str) -> None:
        """Take a replica out of routing now (it died, or is about to be stopped)."""
        for key, replicas in self._replicas.items():
            if container_id in replicas:
                self._withdrawn.add(container_id)
                self._healthy[container_id] = False
                self._rebuild(key)
                return

    # ---- probing ----
    def _rebuild(self, key: FunctionKey) -> None:
        replicas = self._replicas.get(key, {})
        addresses = tuple(
            (r.ip, self.port)
            for r in sorted(replicas.values(), key=lambda r: (r.replica, r.id))
            if self._healthy.get(r.id)
        )
        if addresses:
            self._routable[key] = addresses
            if key in self._ready:
                self._ready[key].set()
        else:
            self._routable.pop(key, None)
            if key in self._ready:
                self._ready[key].clear()

    async def _probe_one(self, replica: ObservedReplica) -> None:
        ok = await probe((replica.ip, self.port), replica.health_path, min(self.interval, 1.0))
        ok = ok and replica.id not in self._withdrawn
        replicas = self._replicas.get(replica.key, {})
        if replica.id not in replicas:
            return  # it left while we probed
        if ok:
            self._ever_healthy.add(replica.id)
            self._failing_since.pop(replica.id, None)
        elif replica.id in self._ever_healthy:
            self._failing_since.setdefault(replica.id, time.monotonic())
        if self._healthy.get(replica.id) != ok:
            self._healthy[replica.id] = ok
            self._rebuild(replica.key)
            if self.on_change is not None:
                self.on_change(replica.key)

    async def _probe_starting(self, replica: ObservedReplica) -> None:
        """Probe a new replica every 50 ms until it first passes (or leaves), so a fresh
        replica — a wake from zero, say — enters routing as soon as its watchdog is up
        rather than at the next periodic probe."""
        deadline = time.monotonic() + STARTUP_WINDOW
        while time.monotonic() < deadline:
            await self._probe_one(replica)
            if self._healthy.get(replica.id) or replica.id not in self._replicas.get(
                    replica.key, {}):
                return
            await asyncio.sleep(STARTUP_PROBE_INTERVAL)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self) -> None:
        while True:
            replicas = [r for group in self._replicas.values() for r in group.values()]
            if replicas:
                await asyncio.gather(*(self._probe_one(r) for r in replicas))
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
