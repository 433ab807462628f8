"""`POST /async-function/<name>[.<namespace>][/<path>]` and `GET /system/async/<call-id>`.

Submitting is a plain ASGI callable beside the invocation proxy (no auth, like /function/).
It reads the whole body (at most ASYNC_BODY_LIMIT → 413), checks X-Callback-Url (an absolute
http or https URL → else 400) and that the function exists (404, where the CE gateway queues
anything), commits the request to the durable queue and only then answers 202 with an empty
body and X-Call-Id, X-Start-Time, X-Served-By. The call id is the client's X-Call-Id when it
sent one, else a new UUID; a call id already in the queue is not queued twice (the answer is
202 again), which makes resubmitting after a lost answer safe.

The status read is an ordinary Starlette route under /system/, so basic auth covers it.
"""

from __future__ import annotations

import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.asyncmodel import Submission
from api.asyncworker import QueueThread
from api.errors import text
from api.proxy import PREFIX, SERVED_BY, split_target
from api.queue import QueueStore

ASYNC_PREFIX = "/async-function/"
_ASYNC_PREFIX = ASYNC_PREFIX.encode()
# Not kept with the request: connection-level, or set again when the worker sends it.
_DROP = frozenset(
    b"connection proxy-connection keep-alive proxy-authenticate proxy-authorization te "
    b"trailer transfer-encoding upgrade expect content-length".split()
)
MAX_CALL_ID = 200

Key = tuple[str, str]


class _ClientGone(Exception):
    """The client hung up before its body arrived: nothing is queued, nobody to answer."""


async def _reply(send: Callable[..., Any], status: int, message: str,
                 extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = (message + "\n").encode() if message else b""
    headers = [(b"content-length", str(len(body)).encode()), *extra]
    if body:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def valid_callback(url: str) -> bool:
    """An absolute http(s) URL with a host."""
    if not url or any(c.isspace() for c in url):
        return False
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


class AsyncSubmit:
    def __init__(self, *, queue: QueueThread, exists: Callable[[Key], bool],
                 body_limit: int, enqueued: Callable[[str], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.queue = queue
        self._exists = exists
        self._limit = body_limit
        self._enqueued = enqueued
        self._clock = clock

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        start_ns = time.time_ns()
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        target = split_target(PREFIX.encode() + raw_path[len(_ASYNC_PREFIX):])
        if target is None:
            await _reply(send, 404, "404 page not found")
            return
        if scope["method"] != "POST":
            await _reply(send, 405, "Only POST is allowed", ((b"allow", b"POST"),))
            return
        namespace, name, path = target
        given = raw_path[len(_ASYNC_PREFIX):].partition(b"/")[0].decode("ascii")

        headers: list[tuple[str, str]] = []
        call_id = callback = host = ""
        length = -1
        forwarded_for = forwarded_host = False
        for key, value in scope["headers"]:
            if key == b"content-length":
                length = int(value) if value.isdigit() else -1
            if key in _DROP:
                continue
            text_value = value.decode("latin-1")
            if key == b"x-call-id" and not call_id:
                call_id = text_value
                continue  # added back once, below
            if key == b"x-callback-url":
                callback = text_value.strip()
            elif key == b"host":
                host = text_value
            forwarded_for = forwarded_for or key == b"x-forwarded-for"
            forwarded_host = forwarded_host or key == b"x-forwarded-host"
            headers.append((key.decode("latin-1"), text_value))

        if callback and not valid_callback(callback):
            await _reply(send, 400, f"X-Callback-Url: expected an absolute http or https URL,"
                                    f" got {callback!r}")
            return
        if len(call_id) > MAX_CALL_ID:
            await _reply(send, 400, f"X-Call-Id: at most {MAX_CALL_ID} characters")
            return
        if not self._exists((namespace, name)):
            await _reply(send, 404, f"error finding function {name}.{namespace}: not found")
            return
        if length > self._limit:
            await _reply(send, 413, self._too_large())
            return
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return
        if body is None:
            await _reply(send, 413, self._too_large())
            return

        call_id = call_id or str(uuid.uuid4())
        start = str(start_ns)
        headers += [("X-Call-Id", call_id), ("X-Start-Time", start)]
        client = scope.get("client")
        if client and not forwarded_for:  # what the function would see from a direct call
            headers.append(("X-Forwarded-For", f"{client[0]}:{client[1]}"))
        if host and not forwarded_host:
            headers.append(("X-Forwarded-Host", host))
        sub = Submission(
            call_id=call_id, name=name, namespace=namespace, target=given,
            path=path.decode("latin-1"), query=(scope.get("query_string") or b"").decode("latin-1"),
            headers=tuple(headers), body=body, callback_url=callback or None,
        )
        try:
            added = await self.queue.call(QueueStore.enqueue, sub, self._clock())
        except sqlite3.OperationalError as err:  # the request was not queued: say why
            full = getattr(err, "sqlite_errorname", "") == "SQLITE_FULL"
            await _reply(send, 507 if full else 503,
                         "insufficient storage: the disk holding the queue is full; the "
                         "request was not queued" if full else f"Error queuing request: {err}")
            return
        except Exception as err:
            await _reply(send, 500, f"Error queuing request: {err}")
            return
        if added:
            self._enqueued(sub.function_name)
        await _reply(send, 202, "", ((b"x-call-id", call_id.encode("latin-1")),
                                     (b"x-start-time", start.encode()),
                                     (b"x-served-by", SERVED_BY)))

    def _too_large(self) -> str:
        return f"request body larger than {self._limit} bytes (ASYNC_BODY_LIMIT)"

    async def _read_body(self, receive: Callable[..., Any]) -> bytes | None:
        """The whole body, or None when it grows past the limit."""
        parts: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return None
            parts.append(chunk)
            more = bool(message.get("more_body"))
        return b"".join(parts)


async def async_status(request: Request) -> Response:
    """GET /system/async/{call_id}: where an async request stands (404 when unknown)."""
    submit: AsyncSubmit = request.app.state.async_submit
    found = await submit.queue.call(QueueStore.status, request.path_params["call_id"])
    if found is None:
        return text(404, f"no async request with call id {request.path_params['call_id']}")
    return JSONResponse(found)
