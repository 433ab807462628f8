"""GET /system/logs: a function's log lines as NDJSON, read from the log store.

The lines were copied from the engine by the controller's log collector as the replicas
wrote them (controller/logs.py), so replicas that are gone still have their say. The query
is read the way faas-provider's handler reads it: the last value of a repeated parameter
wins, `since` is RFC 3339 and `tail` a whole number (either unparsable → 422 `could not
parse the log request`), `follow` is Go's ParseBool (unparsable → false). The backlog comes
in time order with every replica merged; with `follow` the stream then carries new lines
as they are stored, until the client goes away or WRITE_TIMEOUT has passed since the
request started. Not the hot path, so Starlette's StreamingResponse is good enough: each
line is sent (flushed) on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator

import attrs
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from api import wire
from api.context import Gateway
from api.errors import ApiError, bad_request
from controller.logparse import format_rfc3339nano, parse_rfc3339
from controller.logstore import LogStore, StoredLine
from controller.model import FunctionKey

log = logging.getLogger("docker_faas.logs")
MEDIA_TYPE = "application/x-ndjson"
UNPARSABLE = "could not parse the log request"
FAILED = "failed to serialize log message"  # faas-provider's last word after a failure
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})  # Go's strconv.ParseBool
_ATOI = re.compile(r"[+-]?[0-9]+")  # Go's strconv.Atoi (64-bit)


@attrs.frozen
class LogQuery:
    name: str
    namespace: str
    instance: str = ""
    since: int | None = None  # nanoseconds since the epoch
    tail: int = 0  # <= 0: everything
    follow: bool = False


def _last(params: QueryParams, name: str) -> str:
    values = params.getlist(name)
    return values[-1] if values else ""


def parse_query(params: QueryParams) -> LogQuery:
    """The request's parameters; ApiError 422 for an unparsable `since` or `tail`."""
    tail_text, since_text = _last(params, "tail"), _last(params, "since")
    tail = 0
    if tail_text:
        if not _ATOI.fullmatch(tail_text) or abs(int(tail_text)) >= 2**63:
            raise ApiError(422, UNPARSABLE)
        tail = int(tail_text)
    since = None
    if since_text:
        try:
            since = parse_rfc3339(since_text)
        except ValueError:
            raise ApiError(422, UNPARSABLE) from None
    name = _last(params, "name")
    if not name:
        raise bad_request("name: a function name is required")
    wire.check_name(name, "name")
    return LogQuery(
        name=name,
        namespace=wire.namespace_of(None, _last(params, "namespace")),
        instance=_last(params, "instance"),
        since=since,
        tail=tail,
        follow=_last(params, "follow") in _TRUE,
    )


def message(key: FunctionKey, line: StoredLine) -> bytes:
    """One NDJSON line: faas-provider's logs.Message, every key always present."""
    return (json.dumps({
        "name": key[1],
        "namespace": key[0],
        "instance": line.container[:12],
        "timestamp": format_rfc3339nano(line.ts),
        "text": line.text,
    }, ensure_ascii=False) + "\n").encode()


async def stream(store: LogStore, key: FunctionKey, query: LogQuery, backlog: list[StoredLine],
                 seen: int, deadline: float) -> AsyncIterator[bytes]:
    """The backlog, then (with follow) lines stored after `seen`, until `deadline`."""
    for line in backlog:
        yield message(key, line)
    if not query.follow:
        return
    loop = asyncio.get_running_loop()
    while (remaining := deadline - loop.time()) > 0:
        try:
            fresh = store.after(key, seen, instance=query.instance, since=query.since)
        except Exception:  # the headers are out: say so the way faas-provider does, and end
            log.exception("reading log lines of %s.%s failed", key[1], key[0])
            yield (json.dumps({"name": "", "namespace": "", "instance": "", "timestamp":
                               "0001-01-01T00:00:00Z", "text": FAILED}) + "\n").encode()
            return
        if fresh:
            seen = fresh[-1].seq
            for line in fresh:
                yield message(key, line)
        else:
            await store.wait(key, remaining)


async def logs(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    query = parse_query(request.query_params)
    key = (query.namespace, query.name)
    store = gateway.logs
    if store is None:
        raise ApiError(501, "function logs are not available on this gateway")
    if gateway.desired.get(*key) is None and not store.known(key):
        if not gateway.desired.has_namespace(query.namespace):  # as on every /system call
            raise bad_request(f"namespace: {query.namespace!r} does not exist")
        raise ApiError(404, f"function {query.name}.{query.namespace} not found")
    deadline = asyncio.get_running_loop().time() + gateway.settings.write_timeout
    # Read before the headers go out (a failure is still a plain 500), and with no await
    # in between: whatever is stored later has a higher seq than `seen`, so the follow
    # neither misses nor repeats a line.
    backlog = store.backlog(key, instance=query.instance, since=query.since, tail=query.tail)
    seen = store.last_seq()
    return StreamingResponse(stream(store, key, query, backlog, seen, deadline),
                             media_type=MEDIA_TYPE)
