"""/system/namespaces and /system/namespace/{ns}: OpenFaaS namespaces, as faasd serves them.

A namespace must carry the label `openfaas: "1"` (faasd and the go-sdk require it). The
default namespace always exists and is listed first. A namespace that still holds functions
cannot be removed (409); its secrets go with it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import wire
from api.errors import ApiError, bad_request, text
from api.system import commit, gateway_of, read_json
from events import decide
from events.model import DEFAULT_NAMESPACE, pairs


async def list_namespaces(request: Request) -> Response:
    return JSONResponse(gateway_of(request).desired.namespace_names())


def _describe(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "labels": labels}
    if annotations:
        out["annotations"] = annotations
    return out


async def get_namespace(request: Request) -> Response:
    gw = gateway_of(request)
    name = wire.check_name(request.path_params.get("ns", ""), "name")
    if name == DEFAULT_NAMESPACE:
        return JSONResponse(_describe(name, {"openfaas": "1"}, {}))
    state = gw.desired.namespaces.get(name)
    if state is None:
        raise ApiError(404, f"namespace {name!r} not found")
    return JSONResponse(_describe(name, dict(state.labels), dict(state.annotations)))


async def _namespace_body(request: Request, *, name_required: bool) -> tuple[str, Any, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request('request body: expected {"name": "...", "labels": {"openfaas": "1"}}')
    path_name = request.path_params.get("ns", "")
    body_name = body.get("name") or ""
    if path_name and body_name and path_name != body_name:
        raise bad_request(f"name: {body_name!r} in the body differs from {path_name!r} in the path")
    name = wire.check_name(path_name or body_name, "name")
    if name_required and not path_name:
        raise bad_request("name: give the namespace in the path, /system/namespace/<name>")
    labels = wire.string_map(body, "labels")
    if labels.get("openfaas") not in ("1", "true"):
        raise bad_request('labels: a namespace needs the label openfaas: "1"')
    return name, pairs(labels), pairs(wire.string_map(body, "annotations"))


async def create_namespace(request: Request) -> Response:
    gw = gateway_of(request)
    name, labels, annotations = await _namespace_body(request, name_required=False)
    commit(request, decide.create_namespace(gw.desired, name, labels, annotations))
    return text(201, "")


async def update_namespace(request: Request) -> Response:
    gw = gateway_of(request)
    name, labels, annotations = await _namespace_body(request, name_required=True)
    commit(request, decide.update_namespace(gw.desired, name, labels, annotations))
    return text(202, "")


async def delete_namespace(request: Request) -> Response:
    gw = gateway_of(request)
    name = wire.check_name(request.path_params.get("ns", ""), "name")
    commit(request, decide.remove_namespace(gw.desired, name))
    return text(202, "")
