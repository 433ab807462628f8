"""/system/secrets: create, list, update and remove secrets (values never leave sealed).

Bodies as faas-cli and the go-sdk send them: `{"name", "namespace", "value"}` or
`{"name", "namespace", "rawValue": <base64>}` (rawValue wins when non-empty). The value is
sealed into the vault first; the log records the name and a keyed digest. POST of an
existing name → 409, PUT/DELETE of a missing one → 404, DELETE of one a function mounts →
409 naming the functions; successes are 201 (create) and 202, never 204.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import wire
from api.context import Gateway
from api.errors import bad_request, text
from api.system import commit, gateway_of, namespace_param, read_json
from events import decide
from events.model import Desired
from events.types import Event

Decision = Callable[[Desired, str, str, str], list[Event]]

MAX_SECRET_BYTES = 512 * 1024


async def _body(request: Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise bad_request('request body: expected {"name": "...", "value": "..."}')
    return body


def _value(body: dict[str, Any]) -> bytes:
    raw, value = body.get("rawValue"), body.get("value")
    if raw not in (None, ""):
        if not isinstance(raw, str):
            raise bad_request("rawValue: expected a base64 string")
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise bad_request("rawValue: not valid base64") from None
    elif isinstance(value, str):
        data = value.encode()
    elif value is None:
        data = b""
    else:
        raise bad_request("value: expected a string")
    if len(data) > MAX_SECRET_BYTES:
        raise bad_request(f"value: larger than {MAX_SECRET_BYTES} bytes")
    return data


async def list_secrets(request: Request) -> Response:
    gw = gateway_of(request)
    namespace = namespace_param(request)
    return JSONResponse(
        [{"name": s.name, "namespace": s.namespace} for s in gw.desired.secrets_in(namespace)]
    )


async def _target(request: Request) -> tuple[Gateway, dict[str, Any], str, str]:
    """The gateway, the body, and the (namespace, name) a secret request is about."""
    body = await _body(request)
    name = wire.check_name(body.get("name"), "name")
    return gateway_of(request), body, namespace_param(request, body.get("namespace")), name


async def _seal_and_commit(request: Request, decision: Decision, status: int) -> Response:
    gw, body, namespace, name = await _target(request)
    value = _value(body)
    decision(gw.desired, namespace, name, "")  # refuse (404/409) before sealing anything
    digest = gw.vault.put(namespace, name, value)
    commit(request, decision(gw.desired, namespace, name, digest))
    return text(status, "")


async def create_secret(request: Request) -> Response:
    return await _seal_and_commit(request, decide.create_secret, 201)


async def update_secret(request: Request) -> Response:
    return await _seal_and_commit(request, decide.update_secret, 202)


async def delete_secret(request: Request) -> Response:
    gw, _, namespace, name = await _target(request)
    commit(request, decide.remove_secret(gw.desired, namespace, name))
    return text(202, "")
