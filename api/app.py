"""The one composition root: `create_app(settings, *, store, docker, clock)`.

It wires the event log, the live projection, the controller (when a Docker adapter is given),
the Starlette API behind basic auth and the invocation proxy in front of it. The server and
the tests build the gateway the same way; in-process API tests pass `docker=None` and get
the API without a controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from api.async_routes import ASYNC_PREFIX, AsyncSubmit
from api.asyncworker import AsyncWorkers, QueueThread, loopback
from api.auth import BasicAuth
from api.autoscaler import Autoscaler
from api.context import Gateway
from api.errors import HANDLERS
from api.metrics import GatewayMetrics, append_families, controller_families
from api.proxy import PREFIX, FunctionProxy
from api.routes import ROUTES
from api.settings import Settings
from api.wake import unavailable_reason, wait_for_replica
from controller.docker import DockerAdapter
from controller.logs import LogCollector
from controller.logstore import LogStore
from controller.loop import Controller, ControllerSettings
from controller.secrets import SecretVault
from controller.state import LiveDesired, touched_keys
from events.store import ConcurrencyError, EventStore
from events.types import ReplicaFailed, stream_of


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_request_id() -> str:
    return uuid.uuid4().hex


@attrs.define
class GatewayApp:
    """ASGI entry: `/function/*` goes straight to the proxy, `/async-function/*` to the
    durable queue, the rest to Starlette."""

    gateway: Gateway
    api: Any
    proxy: FunctionProxy
    submit: AsyncSubmit | None = None

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.proxy(scope, receive, send)
        elif (scope["type"] == "http" and self.submit is not None
              and scope["path"].startswith(ASYNC_PREFIX)):
            await self.submit(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def create_app(
    settings: Settings,
    *,
    store: EventStore,
    docker: DockerAdapter | None,
    clock: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = new_request_id,
) -> GatewayApp:
    live = LiveDesired(store)
    vault = SecretVault(settings.state_dir / "secrets.db", settings.state_dir / "secrets.key")
    gateway = Gateway(
        settings=settings, store=store, live=live,
        metrics=GatewayMetrics(lambda: live.current), clock=clock, new_id=new_id, vault=vault,
    )
    logs = LogStore(settings.state_dir / "logs.db", keep=settings.log_lines_per_function)
    gateway.logs = logs  # opened on first use
    collector = LogCollector(docker, logs) if docker is not None else None
    appended: Counter[str] = Counter()
    live.listen(lambda records: appended.update(type(r.event).__name__ for r in records))
    gateway.metrics.sources.append(lambda: append_families(appended))
    if docker is not None:
        controller = Controller(
            docker,
            lambda: live.current,
            ControllerSettings(
                instance=settings.instance,
                network=settings.functions_network,
                secrets_dir=settings.secrets_dir,
                resync_interval=settings.resync_interval,
                health_interval=settings.health_interval,
            ),
            vault,
            record=lambda event: record_outcome(gateway, event),
            logs=collector,
        )
        gateway.controller = controller
        gateway.metrics.sources.append(
            lambda: controller_families(controller.stats, controller.health, lambda: live.current)
        )
        live.listen(lambda records: controller.wake(touched_keys(records)))

    proxy = FunctionProxy(
        exists=lambda key: live.current.functions.get(key) is not None,
        pick=gateway.controller.health.pick if gateway.controller else (lambda key: None),
        wait=lambda key: wait_for_replica(gateway, key),
        explain=lambda key: unavailable_reason(gateway, key),
        suspect=gateway.controller.health.suspect if gateway.controller else None,
        metrics=gateway.metrics,
        timeout=settings.exec_timeout,
    )
    queue = QueueThread(settings.state_dir / "queue.db")  # opened on first use
    workers = AsyncWorkers(
        queue, gateway.metrics, loopback(settings.bind, settings.gateway_port),
        workers=settings.async_workers, concurrency=settings.async_concurrency,
        max_attempts=settings.async_max_attempts, lease=settings.async_lease,
        timeout=settings.exec_timeout + 5, response_limit=settings.async_body_limit,
    )
    gateway.metrics.async_depth = lambda: workers.depth
    autoscaler = (Autoscaler(gateway, interval=settings.autoscale_interval)
                  if gateway.controller is not None and settings.autoscale_enabled else None)
    submit = AsyncSubmit(
        queue=queue, exists=lambda key: live.current.functions.get(key) is not None,
        body_limit=settings.async_body_limit, enqueued=workers.enqueued,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        if gateway.controller is not None:
            task = asyncio.create_task(gateway.controller.run())
        if autoscaler is not None:
            autoscaler.start()
        await workers.start()
        try:
            yield
        finally:
            if autoscaler is not None:
                await autoscaler.stop()
            await workers.stop()
            queue.close()
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if collector is not None:
                await collector.close()
            logs.close()
            proxy.pool.close()
            if docker is not None:
                await docker.close()
            live.close()
            vault.close()

    routes = [*ROUTES, Route("/metrics", metrics_endpoint(gateway), methods=["GET"])]
    api = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan)
    api.state.gateway = gateway
    api.state.async_submit = submit
    protected = BasicAuth(api, enabled=settings.auth_enabled,
                          users={**dict(settings.auth_users),
                                 settings.auth_user: settings.auth_password})
    return GatewayApp(gateway=gateway, api=protected, proxy=proxy, submit=submit)


def metrics_endpoint(gateway: Gateway) -> Callable[[Request], Any]:
    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gateway.metrics.registry),
                        media_type=CONTENT_TYPE_LATEST)

    return metrics


def record_outcome(gateway: Gateway, event: ReplicaFailed) -> None:
    """Append a controller outcome to its own stream (actor `controller`)."""
    stream = stream_of(event)
    try:
        gateway.store.append(stream, [event], gateway.store.stream_version(stream),
                             time=gateway.clock(), actor="controller",
                             request_id=gateway.new_id())
    except ConcurrencyError:  # a second gateway on the same log recorded it meanwhile
        pass


def create_metrics_app(gateway: Gateway) -> Starlette:
    """The metrics port (8082): Prometheus text at /metrics and a plain /healthz."""
    metrics = metrics_endpoint(gateway)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OK")

    return Starlette(routes=[
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
