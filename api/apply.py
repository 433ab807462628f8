"""POST /system/apply (our extension): a whole stack's desired functions in one request.

The server plans (create, update with the changed fields, unchanged, and with `prune` remove
the functions of the stack's namespaces that it no longer names), then appends the events of
every step in one transaction under one correlation id, so a stack lands whole or not at all.
`dryRun` answers the same plan without appending. Applying the same stack again plans only
"unchanged" steps and appends nothing.

Every function is validated before anything is decided; all problems are reported at once,
each prefixed with `functions[i]` and the function's name.
"""

from __future__ import annotations

from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import wire
from api.audit import diff
from api.errors import ApiError, bad_request
from api.system import gateway_of, read_json, scaling, who
from events import decide
from events.model import FunctionSpec, FunctionState, stream_name
from events.store import Batch

_KEYS = frozenset({"functions", "namespace", "prune", "dryRun"})


def _flag(body: dict[str, Any], field: str) -> bool:
    value = body.get(field, False)
    if not isinstance(value, bool):
        raise bad_request(f"{field}: expected true or false")
    return value


def _label(index: int, item: Any) -> str:
    name = item.get("service") if isinstance(item, dict) else None
    return f"functions[{index}] ({name})" if isinstance(name, str) and name else (
        f"functions[{index}]")


def _wanted(request: Request, body: dict[str, Any]) -> tuple[list[tuple[FunctionSpec, int]],
                                                             list[str]]:
    """The specs asked for, each with the replicas it would start with, and the namespaces the
    stack covers; 400 listing every invalid function."""
    gw = gateway_of(request)
    items = body.get("functions")
    if not isinstance(items, list):
        raise bad_request("functions: expected a list of FunctionDeployment objects")
    asked = body.get("namespace") or request.query_params.get("namespace")
    default = wire.namespace_of(asked, None)
    wanted: list[tuple[FunctionSpec, int]] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            spec = wire.deployment(item, default)
            wanted.append((spec, scaling(gw, dict(spec.labels))))
        except ApiError as err:
            errors.append(f"{_label(index, item)}: {err.message}")
    if errors:
        raise bad_request("\n".join(errors))
    # A namespace is covered (so pruned) when a function of the stack is in it, or when the
    # request names it: an empty stack prunes nothing unless its namespace is explicit.
    covered = {spec.namespace for spec, _ in wanted} | ({default} if asked else set())
    return wanted, sorted(covered)


def _shape(state: FunctionState, spec: FunctionSpec) -> dict[str, Any]:
    """What the plan compares: the FunctionStatus shape of `spec`, without live fields."""
    shown = wire.status(attrs.evolve(state, spec=spec), 0)
    for field in ("availableReplicas", "createdAt", "replicas"):
        shown.pop(field, None)
    return shown


def _step_json(step: decide.Step) -> dict[str, Any]:
    out: dict[str, Any] = {"action": step.action, "namespace": step.namespace,
                           "name": step.name}
    if step.action == "create":
        out["replicas"] = step.replicas
        if step.after is not None:
            out["image"] = step.after.image
    elif step.action == "update" and step.before is not None and step.after is not None:
        before = _shape(step.before, step.before.spec)
        out["changes"] = list(diff(before, _shape(step.before, step.after)))
    elif step.action == "remove" and step.before is not None:
        out["image"] = step.before.spec.image
    return out


async def apply(request: Request) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request("request body: expected {\"functions\": [...]}")
    unknown = sorted(set(body) - _KEYS)
    if unknown:
        raise bad_request(f"{unknown[0]}: unknown field; expected {', '.join(sorted(_KEYS))}")
    prune, dry_run = _flag(body, "prune"), _flag(body, "dryRun")
    wanted, covered = _wanted(request, body)
    gw = gateway_of(request)
    desired = gw.desired
    steps = decide.apply(desired, wanted, covered, prune=prune)
    envelope = who(request)
    appended = []
    if not dry_run:
        batches = []
        for step in steps:
            if not step.events:
                continue
            stream = stream_name(step.namespace, step.name)
            expected = (step.before.version if step.before is not None
                        else gw.store.stream_version(stream))
            batches.append(Batch(stream, step.events, expected))
        appended = gw.append_many(batches, **envelope)
    return JSONResponse({
        "correlationId": envelope["correlation_id"],
        "dryRun": dry_run,
        "applied": bool(appended),
        "position": appended[-1].position if appended else gw.store.head(),
        "namespaces": covered,
        "plan": [_step_json(step) for step in steps],
    })
