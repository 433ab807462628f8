"""The one composition root: `create_app(settings, *, store, docker, clock)`.

It wires the event log, the live projection, the controller (when a Docker adapter is given),
the Starlette API behind basic auth and the invocation proxy in front of it. The server and
the tests build the gateway the same way; in-process API tests pass `docker=None` and get
the API without a controller.

Around the API sit, outermost first: the function-network guard (a client inside one of the
controller's function networks gets 403 for anything but /function/, /async-function/ and
/healthz), basic auth (with its failed-login throttle) and the body limit
(SYSTEM_BODY_LIMIT). See docs/security.md.
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
from starlette.types import Message, Receive, Scope, Send

from api.async_routes import ASYNC_PREFIX, AsyncSubmit
from api.asyncworker import AsyncWorkers, QueueThread, loopback
from api.auth import BasicAuth, LoginThrottle
from api.autoscaler import Autoscaler
from api.context import Gateway
from api.errors import HANDLERS, ApiError
from api.metrics import GatewayMetrics, append_families, controller_families
from api.proxy import PREFIX, FunctionProxy
from api.routes import ROUTES
from api.samples import Samples
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


def _nowhere(host: str) -> bool:
    return False


async def _plain(send: Callable[..., Any], status: int, message: str) -> None:
    body = (message + "\n").encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


@attrs.define
class FunctionNetworkGuard:
    """Refuses `app` to clients inside a function network, but for the paths in `open_to`.

    Function containers may invoke functions through the gateway (as OpenFaaS functions
    do), so /function/ and /async-function/ never come here; the /system API, /metrics and
    the UI are for the operator and answer 403, whatever credentials the caller holds."""

    app: Any
    inside: Callable[[str], bool] = _nowhere  # the controller's in_function_network
    open_to: tuple[str, ...] = ("/healthz",)

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        client = scope.get("client")
        if (scope["type"] in ("http", "websocket") and client
                and scope["path"] not in self.open_to and self.inside(str(client[0]))):
            if scope["type"] == "http":
                await _plain(send, 403, f"forbidden: {client[0]} is in a function network; "
                             "function containers may call /function/ and /async-function/ "
                             "only, not the gateway's API, metrics or UI")
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)


@attrs.define
class BodyLimit:
    """API request bodies of at most `limit` bytes (SYSTEM_BODY_LIMIT). A larger
    Content-Length is answered 413 before anything is read; a body that grows past the
    limit while it streams (chunked) ends the read with 413. Either way the connection is
    closed, so the rest of the body is never read."""

    app: Any
    limit: int

    def too_large(self) -> str:
        return f"request body larger than SYSTEM_BODY_LIMIT ({self.limit} bytes)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if length.isdigit() and int(length) > self.limit:
            await _plain(send, 413, self.too_large())
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:  # the handler's read fails: 413 (api/errors.py)
                    raise ApiError(413, self.too_large())
            return message

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and received > self.limit:
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"connection", b"close")]}
            await send(message)

        await self.app(scope, limited, closing)


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
                cap_add=settings.function_cap_add,
                pids_limit=settings.function_pids_limit,
                memory_limit=settings.function_memory_limit,
                cpu_limit=settings.function_cpu_limit,
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
    inside = gateway.controller.in_function_network if gateway.controller else _nowhere

    proxy = FunctionProxy(
        exists=lambda key: live.current.functions.get(key) is not None,
        pick=gateway.controller.health.pick if gateway.controller else (lambda key: None),
        wait=lambda key: wait_for_replica(gateway, key),
        explain=lambda key: unavailable_reason(gateway, key),
        suspect=gateway.controller.health.suspect if gateway.controller else None,
        metrics=gateway.metrics,
        timeout=settings.exec_timeout,
        body_limit=settings.max_request_body,
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

    samples = Samples.of(gateway.metrics)  # the dashboard's last hour of traffic

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = None
        samples.start()
        if gateway.controller is not None:
            task = asyncio.create_task(gateway.controller.run())
        if autoscaler is not None:
            autoscaler.start()
        await workers.start()
        try:
            yield
        finally:
            await samples.stop()
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
    api.state.samples = samples
    protected = BasicAuth(BodyLimit(api, settings.system_body_limit),
                          enabled=settings.auth_enabled,
                          users={**dict(settings.auth_users),
                                 settings.auth_user: settings.auth_password},
                          throttle=LoginThrottle(settings.auth_max_failures,
                                                 settings.auth_failure_window))
    return GatewayApp(gateway=gateway, api=FunctionNetworkGuard(protected, inside),
                      proxy=proxy, submit=submit)


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


def create_metrics_app(gateway: Gateway) -> FunctionNetworkGuard:
    """The metrics port (8082): Prometheus text at /metrics and a plain /healthz; /metrics
    is refused to function containers, as on the gateway port."""
    metrics = metrics_endpoint(gateway)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("OK")

    app = Starlette(routes=[
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])
    controller = gateway.controller
    return FunctionNetworkGuard(app, controller.in_function_network if controller else _nowhere)
