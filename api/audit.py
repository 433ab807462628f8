"""Audit queries over the event log (our extensions, under /system/ so basic auth applies).

* GET /system/events: the log's records, filtered, as JSON.
* GET /system/functions?at=… and GET /system/function/{name}?at=…: the desired state as
  it was at a time or log position (`system.list_functions`/`get_function` hand over here).
* GET /system/function/{name}/history: every version of one function, with a field-level
  diff of its FunctionStatus-shaped spec and replicas against the version before.

The filtering runs over `store.read_all()` in process: fine at the log sizes a single
Docker host produces, and it keeps the store contract small. Nothing here appends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from itertools import takewhile
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api import wire
from api.context import Gateway
from api.errors import ApiError, bad_request
from events.codec import EVENT_TYPES, encode
from events.model import Desired, FunctionState, stream_name
from events.project import project
from events.store import Recorded

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
_FUNCTION_STREAMS = ("function", "outcome")  # where a function's records live
_NOT_DIFFED = ("availableReplicas", "createdAt")  # not part of spec + replicas


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def rfc3339(moment: datetime) -> str:
    """UTC with a `Z`, fractional seconds only when there are any."""
    pattern = "%Y-%m-%dT%H:%M:%SZ" if moment.microsecond == 0 else "%Y-%m-%dT%H:%M:%S.%fZ"
    return moment.strftime(pattern)


def parse_time(value: str, param: str) -> datetime:
    """An RFC 3339 time with an explicit offset (or `Z`); 400 naming `param` otherwise."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(
            f"{param}: {value!r} is not an RFC 3339 time like 2026-01-02T03:04:05Z"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise bad_request(f"{param}: {value!r} has no time zone; add Z or an offset")
    return moment


def _whole(value: str, param: str, low: int, high: int | None = None) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise bad_request(f"{param}: {value!r} is not a whole number")
    number = int(text)
    if number < low or (high is not None and number > high):
        span = f"{low}..{high}" if high is not None else f"{low} or more"
        raise bad_request(f"{param}: {number} is outside {span}")
    return number


def _stream_parts(stream: str) -> tuple[str, str, str]:
    """(kind, namespace, name) of a stream; a namespace's stream is its own namespace."""
    kind, _, rest = stream.partition("/")
    if kind == "namespace":
        return kind, rest, rest
    namespace, _, name = rest.partition("/")
    return kind, namespace, name


# --- GET /system/events -------------------------------------------------------------

Check = Callable[[Recorded, str], bool]


def _types(params: QueryParams) -> set[str]:
    wanted = {t.strip() for raw in params.getlist("type") for t in raw.split(",") if t.strip()}
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise bad_request(
            f"type: unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    return wanted


def _filters(params: QueryParams) -> list[Check]:
    """One predicate per filter given; every value is checked before anything is read."""
    checks: list[Check] = []
    function = params.get("function")
    if function:
        name = wire.check_name(function, "function")
        checks.append(lambda r, _: _stream_parts(r.stream)[0] in _FUNCTION_STREAMS
                      and _stream_parts(r.stream)[2] == name)
    namespace = params.get("namespace")
    if namespace:
        ns = wire.check_name(namespace, "namespace")
        checks.append(lambda r, _: _stream_parts(r.stream)[1] == ns)
    types = _types(params)
    if types:
        checks.append(lambda _, type_name: type_name in types)
    actor = params.get("actor")
    if actor:
        checks.append(lambda r, _: r.actor == actor)
    correlation = params.get("correlationId")
    if correlation:
        checks.append(lambda r, _: r.correlation_id == correlation)
    since_text, until_text = params.get("since"), params.get("until")
    if since_text:
        since = parse_time(since_text, "since")
        checks.append(lambda r, _: r.time >= since)
    if until_text:
        until = parse_time(until_text, "until")
        checks.append(lambda r, _: r.time <= until)
    return checks


def record_json(record: Recorded) -> dict[str, Any]:
    """One record as the API shows it: the envelope plus the codec's type name and payload."""
    type_name, _, payload = encode(record.event)
    return {
        "position": record.position,
        "stream": record.stream,
        "version": record.version,
        "time": rfc3339(record.time),
        "actor": record.actor,
        "requestId": record.request_id,
        "source": record.source,
        "userAgent": record.user_agent,
        "correlationId": record.correlation_id,
        "type": type_name,
        "data": payload,
    }


async def list_events(request: Request) -> Response:
    params = request.query_params
    checks = _filters(params)
    after = _whole(params.get("after") or "0", "after", 0)
    limit = _whole(params.get("limit") or str(DEFAULT_LIMIT), "limit", 1, MAX_LIMIT)
    order = params.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise bad_request(f"order: {order!r} must be asc or desc")
    records: Iterable[Recorded] = _gateway(request).store.read_all(after=after)
    if order == "desc":
        records = reversed(list(records))
    out = []
    for record in records:
        rendered = record_json(record)
        if all(check(record, rendered["type"]) for check in checks):
            out.append(rendered)
            if len(out) == limit:
                break
    return JSONResponse(out)


# --- ?at= on the function reads -----------------------------------------------------


def desired_at(gw: Gateway, at: str) -> Desired:
    """The desired state folded from the log's prefix up to `at`: a position (a whole
    number, inclusive) or an RFC 3339 time (records accepted at or before it)."""
    text = at.strip()
    records = gw.store.read_all()
    if text.isascii() and text.isdigit():
        position = int(text)
        return project(takewhile(lambda r: r.position <= position, records))
    if not text:
        raise bad_request("at: expected an RFC 3339 time or a log position")
    moment = parse_time(text, "at")
    return project(takewhile(lambda r: r.time <= moment, records))


def _past_status(state: FunctionState) -> dict[str, Any]:
    # availableReplicas is 0: the log records what was asked, not what ran.
    return wire.status(state, 0)


async def list_functions_at(request: Request, at: str) -> Response:
    namespace = wire.namespace_of(None, request.query_params.get("namespace"))
    past = desired_at(_gateway(request), at)
    return JSONResponse([_past_status(s) for s in past.in_namespace(namespace)])


async def get_function_at(request: Request, at: str) -> Response:
    name = request.path_params["name"]
    namespace = wire.namespace_of(None, request.query_params.get("namespace"))
    state = desired_at(_gateway(request), at).get(namespace, name)
    if state is None:
        return Response(status_code=404)
    return JSONResponse(_past_status(state))


# --- GET /system/function/{name}/history ----------------------------------------------


def _shape(state: FunctionState | None) -> dict[str, Any]:
    if state is None:
        return {}
    out = wire.status(state, 0)
    for field in _NOT_DIFFED:
        out.pop(field, None)
    return out


def _ordered_keys(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [*before, *(k for k in after if k not in before)]


def diff(before: dict[str, Any], after: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Field-level changes; maps (envVars, labels, limits, …) are compared key by key, so a
    changed variable reads `envVars.A`. A missing map counts as empty."""
    for field in _ordered_keys(before, after):
        old, new = before.get(field), after.get(field)
        if old == new:
            continue
        if isinstance(old, dict) or isinstance(new, dict):
            old_map = old if isinstance(old, dict) else {}
            new_map = new if isinstance(new, dict) else {}
            for key in sorted(set(old_map) | set(new_map)):
                if old_map.get(key) != new_map.get(key):
                    yield {"field": f"{field}.{key}", "before": old_map.get(key),
                           "after": new_map.get(key)}
        else:
            yield {"field": field, "before": old, "after": new}


async def function_history(request: Request) -> Response:
    name = wire.check_name(request.path_params["name"], "name")
    namespace = wire.namespace_of(None, request.query_params.get("namespace"))
    records = _gateway(request).store.read_stream(stream_name(namespace, name))
    if not records:
        raise ApiError(404, f"function {name}.{namespace} never existed")
    out = []
    desired = project(())
    for record in records:
        before = _shape(desired.get(namespace, name))
        desired = project([record], desired)
        after = _shape(desired.get(namespace, name))
        out.append({
            "version": record.version,
            "position": record.position,
            "time": rfc3339(record.time),
            "actor": record.actor,
            "type": encode(record.event)[0],
            "changes": list(diff(before, after)),
        })
    return JSONResponse(out)
