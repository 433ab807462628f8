"""Audit queries over the event log (our extensions, under /system/ so basic auth applies).

* GET /system/events: the log's records, filtered, as JSON; with `follow=true` as NDJSON
  that goes on with each new matching record until the client hangs up.
* GET /system/functions?at=… and GET /system/function/{name}?at=…: the desired state as
  it was at a time or log position (`system.list_functions`/`get_function` hand over here).
* GET /system/function/{name}/history: every version of one function, with a field-level
  diff of its FunctionStatus-shaped spec and replicas against the version before.

The filters become one `EventQuery` that the store answers from its indexes, and a past
state is the nearest snapshot plus the records after it, so both stay fast on a log of a
million records. Nothing here appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Iterator
from datetime import datetime
from typing import Any

import attrs
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from api import wire
from api.context import Gateway
from api.errors import ApiError, bad_request
from events import snapshot
from events.codec import EVENT_TYPES, encode
from events.model import Desired, FunctionState, stream_name
from events.project import project
from events.store import EventQuery, EventStore, Recorded

log = logging.getLogger("docker_faas.audit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
NDJSON = "application/x-ndjson"
FOLLOW_POLL = 1.0  # s: how soon a follower sees records appended through another connection
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


# --- GET /system/events -------------------------------------------------------------


def _types(params: QueryParams) -> set[str]:
    wanted = {t.strip() for raw in params.getlist("type") for t in raw.split(",") if t.strip()}
    unknown = sorted(wanted - set(EVENT_TYPES))
    if unknown:
        raise bad_request(
            f"type: unknown event type {unknown[0]!r}; known: {', '.join(sorted(EVENT_TYPES))}"
        )
    return wanted


def _query(params: QueryParams, *, follow: bool) -> EventQuery:
    """The store query the parameters ask for; every value is checked before anything is
    read, and a bad one is a 400 naming its parameter."""
    function, namespace = params.get("function"), params.get("namespace")
    since, until = params.get("since"), params.get("until")
    order = params.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise bad_request(f"order: {order!r} must be asc or desc")
    if follow and order == "desc":
        raise bad_request("order: follow streams oldest first; desc cannot follow")
    if follow and params.get("limit"):
        raise bad_request("limit: a followed stream has no end; use after to start later")
    return EventQuery(
        function=wire.check_name(function, "function") if function else None,
        namespace=wire.check_name(namespace, "namespace") if namespace else None,
        types=_types(params),
        actor=params.get("actor") or None,
        correlation_id=params.get("correlationId") or None,
        since=parse_time(since, "since") if since else None,
        until=parse_time(until, "until") if until else None,
        after=_whole(params.get("after") or "0", "after", 0),
        limit=None if follow else _whole(params.get("limit") or str(DEFAULT_LIMIT), "limit",
                                         1, MAX_LIMIT),
        newest_first=order == "desc",
    )


def _follow(params: QueryParams) -> bool:
    value = (params.get("follow") or "false").lower()
    if value not in ("true", "1", "false", "0"):
        raise bad_request(f"follow: {value!r} must be true or false")
    return value in ("true", "1")


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
    follow = _follow(params)
    query = _query(params, follow=follow)
    store = _gateway(request).store
    if follow:
        return FollowResponse(store, query)
    return JSONResponse([record_json(record) for record in store.query(query)])


class FollowResponse(Response):
    """`?follow=true`: NDJSON, one `record_json` per line — the matches already in the
    log, then each new one, sent as soon as its append commits, until the client hangs up.

    The store's subscription only wakes the stream; the records themselves are always
    read back from the store after the last position seen, so the backlog and the live
    part are one loop, a slow client holds no queue of records, and nothing is sent
    twice or skipped (positions become visible in increasing order). A poll every
    FOLLOW_POLL seconds also catches appends made through another connection to the log,
    which the subscription cannot hear.
    """

    media_type = NDJSON
    page = MAX_LIMIT  # records read (and sent) at once

    def __init__(self, store: EventStore, query: EventQuery) -> None:
        super().__init__(media_type=NDJSON, headers={"Cache-Control": "no-store"})
        self.store, self.query = store, query

    async def lines(self) -> AsyncGenerator[bytes, None]:
        """Chunks of NDJSON lines, each a batch of records to send at once."""
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()

        def wake(_: list[Recorded]) -> None:  # may run on another thread
            loop.call_soon_threadsafe(woken.set)

        unsubscribe = self.store.subscribe(wake)
        try:
            seen = self.query.after
            while True:
                woken.clear()
                head = self.store.head()
                while head > seen:
                    found = self.store.query(attrs.evolve(
                        self.query, after=seen, upto=head, limit=self.page))
                    if found:
                        yield b"".join(_line(record) for record in found)
                    # fewer than a page: every record up to head has been looked at
                    seen = found[-1].position if len(found) == self.page else head
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), FOLLOW_POLL)
        finally:
            unsubscribe()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code,
                    "headers": self.raw_headers})
        streaming = asyncio.ensure_future(self._send_lines(send))
        hung_up = asyncio.ensure_future(_disconnect(receive))
        try:
            await asyncio.wait({streaming, hung_up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (streaming, hung_up):
                task.cancel()
            await asyncio.gather(streaming, hung_up, return_exceptions=True)

    async def _send_lines(self, send: Send) -> None:
        try:
            # aclosing: when the client goes (this task is cancelled, possibly inside
            # send), the generator's `finally` unsubscribes now, not whenever it is
            # garbage collected
            async with contextlib.aclosing(self.lines()) as chunks:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
        except OSError:  # the connection is gone: nobody left to tell
            return
        except Exception:  # the headers are out: end the stream, say why in the log
            log.exception("following the event log failed")
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _disconnect(receive: Receive) -> None:
    message: Message = {}
    while message.get("type") != "http.disconnect":
        message = await receive()


def _line(record: Recorded) -> bytes:
    # the same JSON as one item of the array answer
    text = json.dumps(record_json(record), ensure_ascii=False, separators=(",", ":"))
    return text.encode() + b"\n"


# --- ?at= on the function reads -----------------------------------------------------


def desired_at(gw: Gateway, at: str) -> Desired:
    """The desired state folded from the log's prefix up to `at`: a position (a whole
    number, inclusive) or an RFC 3339 time (the prefix accepted at or before it, see
    `EventStore.position_at`). Read from the nearest snapshot plus the records after it."""
    text = at.strip()
    if text.isascii() and text.isdigit():
        position = int(text)
    elif not text:
        raise bad_request("at: expected an RFC 3339 time or a log position")
    else:
        position = gw.store.position_at(parse_time(text, "at"))
    live = gw.desired
    if position >= live.position and gw.store.head() == live.position:
        return live  # the whole log, already folded
    return snapshot.state_at(gw.store, position)


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
