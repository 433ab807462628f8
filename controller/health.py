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
from collections.abc import Coroutine
from typing import Any

from controller.model import FunctionKey, ObservedReplica

log = logging.getLogger("docker_faas.health")

Address = tuple[str, int]


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
    def __init__(self, *, interval: float, port: int = 8080, path: str = "/_/health") -> None:
        self.interval = interval
        self.port = port
        self.path = path
        self._replicas: dict[FunctionKey, dict[str, ObservedReplica]] = {}
        self._healthy: dict[str, bool] = {}  # container id -> last probe result
        self._withdrawn: set[str] = set()  # never routable again, whatever probes say
        self._routable: dict[FunctionKey, tuple[Address, ...]] = {}
        self._cursor: dict[FunctionKey, itertools.count[int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

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

    # ---- what the controller tells it ----
    def observe(self, key: FunctionKey, replicas: list[ObservedReplica]) -> None:
        """The current containers of `key`; new live ones are probed straight away."""
        live = {r.id: r for r in replicas if r.live and r.ip}
        previous = self._replicas.get(key, {})
        for gone in previous.keys() - live.keys():
            self._healthy.pop(gone, None)
            self._withdrawn.discard(gone)
        if live:
            self._replicas[key] = live
            self._cursor.setdefault(key, itertools.count())
        else:
            self._replicas.pop(key, None)
        for new in live.keys() - previous.keys():
            self._spawn(self._probe_one(live[new]))
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
        else:
            self._routable.pop(key, None)

    async def _probe_one(self, replica: ObservedReplica) -> None:
        ok = await probe((replica.ip, self.port), self.path, min(self.interval, 1.0))
        ok = ok and replica.id not in self._withdrawn
        replicas = self._replicas.get(replica.key, {})
        if replica.id not in replicas:
            return  # it left while we probed
        if self._healthy.get(replica.id) != ok:
            self._healthy[replica.id] = ok
            self._rebuild(replica.key)

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
