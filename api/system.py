"""The /system endpoints: validate → decide → append → respond. They never call Docker.

Reads come from the projected desired state plus the controller's view of healthy replicas;
writes append events and return 202 at once — the controller converges in the background.
"""

from __future__ import annotations

import json
import platform
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import audit, wire
from api.auth import ACTOR_KEY
from api.context import Gateway
from api.errors import bad_request, text
from controller.autoscale import PolicyError, policy_from_labels
from events import decide
from events.model import DEFAULT_NAMESPACE
from events.types import Event, stream_of

VERSION = "0.1.0"
SHA = "docker-faas"


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise bad_request("request body: expected JSON, got an empty body")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise bad_request(f"request body: invalid JSON: {err}") from None


def namespace_param(request: Request, body_value: Any = None) -> str:
    """The namespace a request names (body, then query, then the default); 400 if unknown."""
    namespace = wire.namespace_of(body_value, request.query_params.get("namespace"))
    if not gateway_of(request).desired.has_namespace(namespace):
        raise bad_request(f"namespace: {namespace!r} does not exist")
    return namespace


def commit(request: Request, events: list[Event], expected: int | None = None) -> None:
    """Append the events of one stream, recording who asked, from where and with what.

    `expected` defaults to the stream's version in the store: handlers decide and append
    with no await in between, so within this process nothing can slip in; a second gateway
    on the same log is caught by the store's version check (409).
    """
    if not events:
        return
    gw = gateway_of(request)
    stream = stream_of(events[0])
    if expected is None:
        expected = gw.store.stream_version(stream)
    gw.append(stream, list(events), expected, **who(request))


def who(request: Request) -> dict[str, str]:
    """The envelope of a request's writes: the authenticated actor, the request id (the
    client's X-Request-Id, else a new one), the correlation id (X-Correlation-Id, else the
    request id), the source address and the user agent."""
    gw = gateway_of(request)
    client = request.client
    request_id = request.headers.get("x-request-id") or gw.new_id()
    return {
        "actor": request.scope.get(ACTOR_KEY, "anonymous"),
        "request_id": request_id,
        "correlation_id": request.headers.get("x-correlation-id") or request_id,
        "source": f"{client.host}:{client.port}" if client else "",
        "user_agent": request.headers.get("user-agent", ""),
    }


def scaling(gw: Gateway, labels: dict[str, str]) -> int:
    """Check the `com.openfaas.scale.*` labels (400 naming a label that cannot be used) and
    return the replicas a deploy starts with: `scale.min`, else DEFAULT_REPLICAS."""
    try:
        policy = policy_from_labels(labels, max_replicas=gw.settings.max_replicas,
                                    default_min=gw.settings.default_replicas)
    except PolicyError as err:
        raise bad_request(str(err)) from None
    return policy.min


async def deploy(request: Request) -> Response:
    gw = gateway_of(request)
    spec = wire.deployment(await read_json(request), request.query_params.get("namespace"))
    commit(request, decide.deploy(gw.desired, spec, scaling(gw, dict(spec.labels))))
    return text(202, "")


async def update(request: Request) -> Response:
    gw = gateway_of(request)
    spec = wire.deployment(await read_json(request), request.query_params.get("namespace"))
    scaling(gw, dict(spec.labels))
    commit(request, decide.update(gw.desired, spec))
    return text(202, "")


async def delete(request: Request) -> Response:
    gw = gateway_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("request body: expected {\"functionName\": \"...\"}")
    name = wire.check_name(body.get("functionName"), "functionName")
    namespace = namespace_param(request, body.get("namespace"))
    commit(request, decide.remove(gw.desired, namespace, name))
    return text(202, "")


async def scale(request: Request) -> Response:
    gw = gateway_of(request)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("request body: expected {\"serviceName\": \"...\", \"replicas\": N}")
    name = wire.check_name(
        request.path_params.get("name") or body.get("serviceName"), "serviceName"
    )
    namespace = namespace_param(request, body.get("namespace"))
    replicas = body.get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise bad_request("replicas: expected a whole number from 0 up")
    if replicas > gw.settings.max_replicas:
        raise bad_request(
            f"replicas: {replicas} is above MAX_REPLICAS ({gw.settings.max_replicas})"
        )
    commit(request, decide.scale(gw.desired, namespace, name, replicas))
    return text(202, "")


async def list_functions(request: Request) -> Response:
    if (at := request.query_params.get("at")) is not None:
        return await audit.list_functions_at(request, at)
    gw = gateway_of(request)
    namespace = namespace_param(request)
    out = []
    for state in gw.desired.in_namespace(namespace):
        key = state.spec.key
        fn = f"{key[1]}.{key[0]}"
        out.append(wire.status(state, gw.available(key), gw.metrics.invocation_count(fn)))
    return JSONResponse(out)


async def get_function(request: Request) -> Response:
    wire.check_name(request.path_params["name"], "name")  # for ?at= too
    if (at := request.query_params.get("at")) is not None:
        return await audit.get_function_at(request, at)
    gw = gateway_of(request)
    name = request.path_params["name"]
    namespace = namespace_param(request)
    state = gw.desired.get(namespace, name)
    if state is None:
        return Response(status_code=404)
    out = wire.status(state, gw.available(state.spec.key))
    if gw.controller is not None:  # our extension fields; OpenFaaS clients ignore them
        restarts, reason = gw.controller.restarts(state.spec.key)
        if restarts:
            out["restarts"], out["lastExitReason"] = restarts, reason
        if state.spec.key in gw.controller.errors:
            out["lastError"] = gw.controller.errors[state.spec.key]
        if (rollout := gw.controller.rollout(state.spec.key)) is not None:
            out["rollout"] = rollout
    return JSONResponse(out)


async def info(request: Request) -> Response:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return JSONResponse({
        "provider": {
            "provider": "docker-faas",
            "orchestration": "docker",
            "version": {"sha": SHA, "release": VERSION},
        },
        "version": {"commit_message": "docker-faas", "sha": SHA, "release": VERSION},
        "arch": arch,
    })


async def healthz(request: Request) -> Response:
    # text/plain "OK", as the metrics port answers and the document says (an empty 200
    # without a Content-Type was what schemathesis found, docs/reliability.md)
    return text(200, "OK")


__all__ = ["DEFAULT_NAMESPACE"]
