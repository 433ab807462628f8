"""The reconcile loop: observe Docker, plan, perform — per function, forever.

Wake-ups come from three places: appended events (the desired state changed), Docker
container events (a replica died or vanished) and a periodic resync that catches anything
missed. Work items carry only a function key; each pass re-reads the desired state and the
function's containers, so a burst of wake-ups collapses into one pass. One function is
reconciled at a time; different functions run concurrently; a failing function retries with
back-off and never stalls the others. When the engine goes away the loop waits and
reconnects, then resyncs everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from controller import labels as L
from controller.backoff import BackoffPolicy, SlotHistory
from controller.docker import DockerAdapter, EngineError, EngineUnavailable
from controller.health import HealthTracker
from controller.logs import LogCollector
from controller.model import CreateReplica, FunctionKey, ObservedReplica, RemoveReplica, Target
from controller.plan import plan_function
from controller.render import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_PIDS_LIMIT,
    RenderSettings,
    network_for,
    replica_config,
    secret_path,
    spec_hash,
)
from controller.secrets import SecretVault
from controller.stats import ControllerStats
from events.model import Desired, FunctionSpec
from events.types import ReplicaFailed

log = logging.getLogger("docker_faas.controller")
STARTS_AT_ONCE = 8  # concurrent container creates; more only queue inside the engine
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _before(finished_at: str, moment: datetime) -> bool:
    """Docker's RFC 3339 `FinishedAt` (nanoseconds, `Z`) is earlier than `moment`."""
    try:
        text = finished_at.rstrip("Z")
        if "." in text:
            whole, fraction = text.split(".", 1)
            text = f"{whole}.{fraction[:6]}"
        return datetime.fromisoformat(text).replace(tzinfo=UTC) < moment
    except ValueError:
        return False


@attrs.frozen
class ControllerSettings:
    instance: str
    network: str
    secrets_dir: str = "/run/docker-faas/secrets"
    resync_interval: float = 5.0
    health_interval: float = 0.5
    stop_grace: float = 5.0  # SIGTERM → SIGKILL for replicas that still serve
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    # the replicas' security boundary (render.py, docs/security.md)
    cap_add: tuple[str, ...] = ()
    pids_limit: int = DEFAULT_PIDS_LIMIT
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    cpu_limit: str = ""


class Controller:
    def __init__(
        self,
        docker: DockerAdapter,
        desired: Callable[[], Desired],
        settings: ControllerSettings,
        vault: SecretVault | None = None,
        logs: LogCollector | None = None,
        record: Callable[[ReplicaFailed], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._record = record  # appends an outcome event to the log (the audit trail)
        self._clock = clock
        self.backoff = BackoffPolicy()
        self._slots: dict[tuple[FunctionKey, int], SlotHistory] = {}
        self._session_since = datetime.now(UTC)  # when the current engine session began
        self.docker = docker
        self.logs = logs  # copies each replica's log before the engine's copy goes
        self._desired = desired
        self.settings = settings
        self.vault = vault
        self.render = RenderSettings(
            instance=settings.instance, network=settings.network,
            secrets_dir=settings.secrets_dir, cap_add=settings.cap_add,
            pids_limit=settings.pids_limit, memory_limit=settings.memory_limit,
            cpu_limit=settings.cpu_limit,
        )
        self._networks: set[str] = set()  # ensured during this engine session
        # The address ranges of our function networks: the gateway refuses its API to
        # clients inside them (api/app.py), but for each network's gateway address, which
        # is the host's own side of the bridge. Kept while the engine is away.
        self.function_subnets: tuple[Subnet, ...] = ()
        self._bridge_addresses: frozenset[ipaddress.IPv4Address | ipaddress.IPv6Address] = (
            frozenset())
        self._network_lock = asyncio.Lock()
        self._starting = asyncio.Semaphore(STARTS_AT_ONCE)
        self.health = HealthTracker(interval=settings.health_interval, on_change=self._kick)
        self.errors: dict[FunctionKey, str] = {}  # last failure per function, for status
        self.stats = ControllerStats()
        self.rollouts: dict[FunctionKey, str] = {}  # updates waiting on healthy replicas
        self._dirty: set[FunctionKey] = set()
        self._workers: dict[FunctionKey, asyncio.Task[None]] = {}
        self._backoff: dict[FunctionKey, float] = {}
        self._known: set[FunctionKey] = set()
        self._waiting: set[FunctionKey] = set()  # backing off: the resync leaves them be
        self._engine_up = asyncio.Event()

    # ---- wake-ups ----
    def wake(self, keys: Iterable[FunctionKey]) -> None:
        for key in keys:
            self._kick(key)

    def _kick(self, key: FunctionKey) -> None:
        self._dirty.add(key)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._work(key))

    async def _work(self, key: FunctionKey) -> None:
        try:
            while key in self._dirty:
                self._dirty.discard(key)
                await self._reconcile_guarded(key)
        finally:
            del self._workers[key]

    async def _reconcile_guarded(self, key: FunctionKey) -> None:
        await self._engine_up.wait()  # the network exists and the engine answers
        try:
            await self.reconcile(key)
        except EngineError as err:
            self._retry_later(key, str(err))
            if err.status == 404 and "network" in err.message:
                self._networks.clear()  # someone removed one under us: ensure them again
        except EngineUnavailable as err:
            self._retry_later(key, str(err))
        except Exception as err:  # a bug must not kill the loop; it is logged and retried
            log.exception("reconcile %s/%s failed", *key)
            self._retry_later(key, f"internal error: {err}")
        else:
            self._backoff.pop(key, None)
            self.errors.pop(key, None)

    def _retry_later(self, key: FunctionKey, reason: str) -> None:
        delay = self._backoff.get(key, self.settings.backoff_initial)
        self._backoff[key] = min(delay * 2, self.settings.backoff_max)
        self.errors[key] = reason
        self.stats.errors[f"{key[1]}.{key[0]}"] += 1
        log.warning("%s/%s: %s; retrying in %.1fs", key[0], key[1], reason, delay)
        self._waiting.add(key)
        asyncio.get_running_loop().call_later(delay, self._retry, key)

    def _retry(self, key: FunctionKey) -> None:
        self._waiting.discard(key)
        self._kick(key)

    # ---- one pass over one function ----
    def digests(self, spec: FunctionSpec) -> dict[str, str]:
        """The current digest of each secret the spec mounts (KeyError when one is gone)."""
        secrets = self._desired().secrets
        return {name: secrets[(spec.namespace, name)].digest for name in spec.secrets}

    def target(self, key: FunctionKey) -> Target | None:
        state = self._desired().get(*key)
        if state is None:
            return None
        return Target(state.replicas, spec_hash(state.spec, self.render, self.digests(state.spec)))

    async def _prepare(self, spec: FunctionSpec, digests: dict[str, str]) -> None:
        """What a replica needs before it can be created: its network, its secret files."""
        network = network_for(self.render, spec.namespace)
        if network not in self._networks:
            # one creator per network: two functions of a new namespace reconcile at once,
            # and the engine would happily make two networks of the same name
            async with self._network_lock:
                if network not in self._networks:
                    await self.docker.ensure_network(
                        network, {L.INSTANCE: self.settings.instance}
                    )
                    self._networks.add(network)
                    # before any replica joins it, the API knows to refuse its addresses
                    await self._refresh_subnets()
        for name, digest in digests.items():
            path = secret_path(self.render, spec.namespace, name, digest)
            if self.vault is None:
                raise RuntimeError("secrets are mounted but no vault is configured")
            if not path.exists():
                await asyncio.to_thread(
                    self.vault.materialize, path.parents[2], spec.namespace, name, digest
                )

    async def observe(self, key: FunctionKey) -> list[ObservedReplica]:
        raw = await self.docker.list_containers(L.instance_filter(self.settings.instance, *key))
        return [ObservedReplica.from_container(c) for c in raw]

    def restarts(self, key: FunctionKey) -> tuple[int, str]:
        """Replacements after failures and the last reason, over the function's slots."""
        slots = [h for (k, _), h in self._slots.items() if k == key]
        latest = max(slots, key=lambda h: h.failed_at, default=SlotHistory())
        return sum(h.restarts for h in slots), latest.last_exit

    async def _failure_reason(
        self, container_id: str, reason: str
    ) -> tuple[str, int | None] | None:
        """Why a replica failed; None when it did not fail on its own: it was stopped
        gracefully (exit 0 or 143 after SIGTERM: the engine shutting down, `docker stop`), or
        it stopped before this engine session began (the engine itself was restarted)."""
        if reason == "unhealthy":
            return "failed its health checks", None
        data = await self.docker.inspect(container_id) or {}
        state = data.get("State") or {}
        if _before(state.get("FinishedAt", ""), self._session_since):
            return None
        if state.get("ExitCode") in (0, 143) and not state.get("OOMKilled"):
            return None  # a graceful stop (the engine shutting down, `docker stop`)
        code = state.get("ExitCode")
        if state.get("OOMKilled"):
            return f"killed: out of memory (exit code {code})", code
        if state.get("Error"):
            return f"could not start: {state['Error']}", code
        if code == 137:
            return "killed (SIGKILL, exit code 137)", code
        return f"exited with code {code}", code

    async def _note_failure(self, key: FunctionKey, slot: int, container_id: str,
                            reason: str) -> None:
        why = await self._failure_reason(container_id, reason)
        if why is None:
            log.info("%s/%s replica %d was stopped, not failed; replacing it", *key, slot)
            return
        text, code = why
        history = self._slots.get((key, slot), SlotHistory()).failed(self._clock(), text)
        self._slots[(key, slot)] = history
        restarts, _ = self.restarts(key)
        delay = history.delay(self.backoff)
        log.warning("%s/%s replica %d %s; replacing in %.1fs (restart %d)",
                    key[0], key[1], slot, text, delay, restarts)
        if self._record is not None:
            self._record(ReplicaFailed(key[0], key[1], slot, container_id[:12], text, code,
                                       restarts, delay))

    def _track_health(self, key: FunctionKey, observed: list[ObservedReplica]) -> None:
        now = self._clock()
        for replica in self.health.annotate(observed):
            slot = (key, replica.replica)
            if slot in self._slots and replica.live:
                history = self._slots[slot]
                self._slots[slot] = (history.healthy(now, self.backoff) if replica.healthy
                                     else history.unhealthy())

    def _note_rollout(self, key: FunctionKey, observed: list[ObservedReplica]) -> None:
        """Say in the status when an update waits for its new replicas to pass their
        health check (the old ones keep serving meanwhile)."""
        target = self.target(key)
        waiting = target is not None and any(
            r.live and r.spec_hash != target.spec_hash for r in observed)
        if not waiting:
            self.rollouts.pop(key, None)
        elif key not in self.rollouts:
            self.rollouts[key] = (
                f"update in progress since {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}: old "
                "replicas serve until the new ones pass their health check")

    def rollout(self, key: FunctionKey) -> str | None:
        """Why the function's replicas are not all at its current spec, if they are not: the
        rollout in progress, or an update accepted that the controller has not begun yet
        (so a client polling right after its PUT never mistakes old replicas for new)."""
        if key in self.rollouts:
            return self.rollouts[key]
        target = self.target(key)
        if target is not None and any(r.spec_hash != target.spec_hash
                                      for r in self.health.replicas(key)):
            return "update accepted: new replicas not started yet"
        return None

    async def reconcile(self, key: FunctionKey) -> None:
        observed = await self.observe(key)
        self._track_health(key, observed)
        slots = {r.id: r.replica for r in observed}
        actions = plan_function(key, self.target(key), self.health.annotate(observed))
        for action in actions:
            if isinstance(action, RemoveReplica) and action.reason.startswith(
                    ("not running: exited", "not running: dead", "unhealthy")):
                await self._note_failure(key, slots.get(action.id, -1), action.id,
                                         action.reason)
            if isinstance(action, CreateReplica):
                state = self._desired().get(*key)
                if state is None:  # removed while we worked; the next pass cleans up
                    break
                history = self._slots.get((key, action.replica))
                if history is not None and history.ready_at(self.backoff) > self._clock():
                    # crash-looping slot: fill it when its back-off has passed
                    wait = history.ready_at(self.backoff) - self._clock()
                    asyncio.get_running_loop().call_later(wait, self._kick, key)
                    continue
                digests = self.digests(state.spec)
                await self._prepare(state.spec, digests)
                name, config = replica_config(
                    state.spec, self.render, action.replica, action.spec_hash, digests
                )
                log.info("create %s", name)
                async with self._starting:  # the engine starts a few at a time faster
                    await self.docker.create_and_start(name, config)
                self.stats.actions[("create", "")] += 1
            elif isinstance(action, RemoveReplica):
                log.info("remove %s (%s/%s: %s)", action.id[:12], *key, action.reason)
                self.health.withdraw(action.id)
                live = not action.reason.startswith("not running")
                await self.docker.remove(
                    action.id, stop_timeout=self.settings.stop_grace if live else 0,
                    before_delete=functools.partial(self.logs.finish, key, action.id)
                    if self.logs is not None else None,
                )
                self.stats.actions[("remove", action.reason.split(":")[0])] += 1
            if isinstance(action, CreateReplica):
                # let the new replica be seen (and probed) as soon as it exists
                self.health.observe(key, await self.observe(key))
        if actions:
            observed = await self.observe(key)
        self.health.observe(key, observed)
        self._note_rollout(key, observed)
        if self.logs is not None:
            self.logs.observe(key, observed)
        if observed or self.target(key) is not None:
            self._known.add(key)
        else:
            self._known.discard(key)
        if self.target(key) is None:
            for slot in [s for s in self._slots if s[0] == key]:
                del self._slots[slot]

    # ---- the whole loop ----
    async def resync(self) -> None:
        """Kick every function that is desired or has containers."""
        raw = await self.docker.list_containers(L.instance_filter(self.settings.instance))
        keys = {ObservedReplica.from_container(c).key for c in raw}
        keys |= set(self._desired().functions)
        keys |= self._known
        self.wake(keys - self._waiting)
        mounted = {m.get("Source", "") for c in raw for m in c.get("Mounts") or ()}
        await asyncio.to_thread(self._forget_removed_secrets, mounted)
        await self._forget_removed_namespaces()

    def _ours(self, name: str) -> bool:
        """A function network of ours by its name: the default one or a namespace's."""
        return name == self.settings.network or name.startswith(self.settings.network + "-")

    def _note_subnets(self, networks: list[dict[str, Any]]) -> None:
        """Keep the subnets of the function networks among `networks` (every network)."""
        found: list[Subnet] = []
        bridges = set()
        for network in networks:
            if not self._ours(network.get("Name", "")):
                continue
            for config in (network.get("IPAM") or {}).get("Config") or ():
                with contextlib.suppress(ValueError, TypeError):
                    found.append(ipaddress.ip_network(config.get("Subnet", ""), strict=False))
                with contextlib.suppress(ValueError, TypeError):
                    bridges.add(ipaddress.ip_address(config.get("Gateway", "")))
        self.function_subnets = tuple(found)
        self._bridge_addresses = frozenset(bridges)

    async def _refresh_subnets(self) -> None:
        self._note_subnets(await self.docker.networks([]))

    def in_function_network(self, host: str) -> bool:
        """Whether a client address is a container's in one of our function networks (the
        bridge's own address is the host: a process on the host, or a port the engine
        publishes, connects from there)."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return address not in self._bridge_addresses and any(
            address in subnet for subnet in self.function_subnets)

    async def _forget_removed_namespaces(self) -> None:
        """Remove our networks of namespaces that no longer exist (once empty), and note
        the subnets of those that remain."""
        desired = self._desired()
        wanted = {network_for(self.render, ns) for ns in desired.namespace_names()}
        networks = await self.docker.networks([])  # every network: ours are known by name
        self._note_subnets(networks)
        for network in networks:
            name = network.get("Name", "")
            mine = (network.get("Labels") or {}).get(L.INSTANCE) == self.settings.instance
            if (mine and name not in wanted and name.startswith(self.settings.network + "-")
                    and not network.get("Containers")):
                log.info("remove network %s (its namespace is gone)", name)
                await self.docker.remove_network(network["Id"])
                self._networks.discard(name)

    def _forget_removed_secrets(self, mounted: set[str]) -> None:
        """Delete the host files (and sealed values) of secrets that no longer exist, and
        of old values no container mounts any more."""
        root = Path(self.render.secrets_dir)
        if not root.is_dir():
            return
        desired = self._desired().secrets
        for directory in root.glob("*/*"):
            namespace, name = directory.parent.name, directory.name
            state = desired.get((namespace, name))
            if state is None:
                shutil.rmtree(directory, ignore_errors=True)
                if self.vault is not None:
                    self.vault.prune(namespace, name, keep=set())
                continue
            keep = {state.digest[:32]}
            for file in directory.iterdir():
                if str(file) in mounted:
                    keep.add(file.name)
                elif file.name not in keep:
                    file.unlink(missing_ok=True)
            if self.vault is not None:
                self.vault.prune(namespace, name, keep=keep, prefix=True)

    async def _watch_events(self) -> None:
        async for event in self.docker.events(L.instance_filter(self.settings.instance)):
            attributes = (event.get("Actor") or {}).get("Attributes") or {}
            key = (attributes.get(L.NAMESPACE, ""), attributes.get(L.FUNCTION, ""))
            status = event.get("status") or event.get("Action") or ""
            if status in ("die", "kill", "oom", "stop", "destroy") and event.get("id"):
                self.health.withdraw(event["id"])
            if status in ("die", "oom") and key[1] and event.get("id"):
                # Docker 20.10 sends "die" before its container list shows the container
                # stopped, so a pass started now sees it running and does nothing until
                # the next resync. An inspect waits on the container until the engine has
                # recorded the exit.
                with contextlib.suppress(EngineError, EngineUnavailable):
                    await self.docker.inspect(event["id"])
            if status in ("die", "destroy", "oom") and key[1]:
                self._kick(key)

    async def _periodic_resync(self) -> None:
        while True:
            await asyncio.sleep(self.settings.resync_interval)
            with contextlib.suppress(EngineError, EngineUnavailable):
                await self.resync()

    async def _session(self) -> None:
        """One connected period: set up, resync, then follow events until the engine goes."""
        await self.docker.ping()
        self._networks.clear()
        await self._refresh_subnets()
        self._session_since = datetime.now(UTC)
        self._engine_up.set()
        await self.resync()
        await self._watch_events()

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self.health.run()),
            asyncio.create_task(self._periodic_resync()),
        ]
        delay = self.settings.backoff_initial
        try:
            while True:
                try:
                    await self._session()
                    reason = "event stream ended"
                except (EngineUnavailable, EngineError) as err:
                    reason = str(err)
                self._engine_up.clear()
                self.stats.engine_reconnects += 1
                log.warning("docker engine: %s; reconnecting in %.1fs", reason, delay)
                await self.docker.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.backoff_max)
                with contextlib.suppress(EngineError, EngineUnavailable):
                    await self.docker.ping()
                    delay = self.settings.backoff_initial
        finally:
            for task in tasks + list(self._workers.values()):
                task.cancel()
            await asyncio.gather(*tasks, *self._workers.values(), return_exceptions=True)
            await self.health.close()

    async def idle(self, timeout: float = 30.0) -> None:
        """Wait until no function has pending work (for tests and the CLI)."""
        async with asyncio.timeout(timeout):
            while self._workers or self._dirty:
                await asyncio.sleep(0.05)
