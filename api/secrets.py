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
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import wire
from api.errors import bad_request, text
from api.system import commit, gateway_of, namespace_param, read_json
from events import decide

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


async def create_secret(request: Request) -> Response:
    gw = gateway_of(request)
    body = await _body(request)
    name = wire.check_name(body.get("name"), "name")
    namespace = namespace_param(request, body.get("namespace"))
    value = _value(body)
    if (namespace, name) in gw.desired.secrets:  # before sealing anything
        decide.create_secret(gw.desired, namespace, name, "")
    digest = gw.vault.put(namespace, name, value)
    commit(request, decide.create_secret(gw.desired, namespace, name, digest))
    return text(201, "")


async def update_secret(request: Request) -> Response:
    gw = gateway_of(request)
    body = await _body(request)
    name = wire.check_name(body.get("name"), "name")
    namespace = namespace_param(request, body.get("namespace"))
    if (namespace, name) not in gw.desired.secrets:
        decide.update_secret(gw.desired, namespace, name, "")  # raises 404
    digest = gw.vault.put(namespace, name, _value(body))
    commit(request, decide.update_secret(gw.desired, namespace, name, digest))
    return text(202, "")


async def delete_secret(request: Request) -> Response:
    gw = gateway_of(request)
    body = await _body(request)
    name = wire.check_name(body.get("name"), "name")
    namespace = namespace_param(request, body.get("namespace"))
    commit(request, decide.remove_secret(gw.desired, namespace, name))
    return text(202, "")
