"""`/function/<name>[.<namespace>][/<path>]`: the invocation data path, as a plain ASGI callable.

It sits in front of the Starlette routes so that no framework code runs per invocation. A
request goes to a healthy replica chosen round robin by the controller's health tracker,
through our own pooled upstream client (upstream.py). The gateway adds `X-Call-Id` (when the
caller sent none), `X-Start-Time` and `X-Served-By`, strips hop-by-hop headers, passes the
raw query and the path after the function name, never follows redirects, and streams bodies
both ways. Unknown function → 404; no healthy replica or a failed replica → 502; no answer
within EXEC_TIMEOUT → 504. When no replica is healthy yet (starting, or asleep at zero
replicas) the request waits for one, up to READY_TIMEOUT, instead of failing. A request that
could not be delivered (connect refused) is tried on another replica; one that may have
reached a replica that then broke the connection is sent again only when that is safe
(GET, HEAD, OPTIONS, or an Idempotency-Key header, and the whole body still held), so a
POST is never run twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from api.metrics import GatewayMetrics
from api.upstream import Address, Pool, UpstreamError, send_request
from events.model import DEFAULT_NAMESPACE

PREFIX = "/function/"
log = logging.getLogger("docker_faas.proxy")
_HOP_BY_HOP = frozenset(
    b"connection proxy-connection keep-alive proxy-authenticate proxy-authorization te "
    b"trailer transfer-encoding upgrade expect".split()
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
SERVED_BY = b"docker-faas/0.1.0"
_ATTEMPTS = 3  # replicas tried for one request when connecting fails
_REPLAYABLE = frozenset({b"GET", b"HEAD", b"OPTIONS"})
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"})

Scope = dict[str, Any]
Key = tuple[str, str]


def split_target(raw_path: bytes) -> tuple[str, str, bytes] | None:
    """`/function/env.ns/a/b` → ("ns", "env", b"/a/b"); None when the name is malformed."""
    rest = raw_path[len(PREFIX):]
    segment, _, suffix = rest.partition(b"/")
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        return None
    if not text or not _NAME_CHARS.issuperset(text):
        return None
    name, dot, namespace = text.rpartition(".")
    if not dot:
        name, namespace = text, DEFAULT_NAMESPACE
    if not name or not namespace:
        return None
    return namespace, name, b"/" + suffix


async def _reply(send: Callable[..., Any], status: int, message: str,
                 extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    body = (message + "\n").encode() if message else b""
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()), *extra],
    })
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """A streamed (chunked) request body grew past MAX_REQUEST_BODY."""


def _too_large(limit: int) -> str:
    return f"request body larger than MAX_REQUEST_BODY ({limit} bytes)"


class ReplicaBrokeOff(Exception):
    """Raised to make the server abort a response the replica cut short; the server's
    traceback for it is filtered out (quiet_broken_answers), our own warning says it all."""


def quiet_broken_answers(record: logging.LogRecord) -> bool:
    """A logging filter for the server's error logger."""
    return not (record.exc_info and isinstance(record.exc_info[1], ReplicaBrokeOff))


async def _no_wait(key: Key) -> Address | None:
    return None


class FunctionProxy:
    def __init__(
        self,
        *,
        exists: Callable[[Key], bool],
        pick: Callable[[Key], Address | None],
        metrics: GatewayMetrics,
        timeout: float,
        wait: Callable[[Key], Awaitable[Address | None]] | None = None,
        suspect: Callable[[Address], None] | None = None,
        explain: Callable[[Key], str] | None = None,
        body_limit: int = 0,
    ) -> None:
        self.body_limit = body_limit  # MAX_REQUEST_BODY in bytes; 0: none
        self.exists = exists
        self.pick = pick
        self.metrics = metrics
        self.timeout = timeout
        self.wait = wait or _no_wait
        self.suspect = suspect or (lambda address: None)
        self.explain = explain or (lambda key: f"no healthy replica of {key[1]}.{key[0]}")
        self.pool = Pool(connect_timeout=1.0)

    async def __call__(self, scope: Scope, receive: Callable[..., Any],
                       send: Callable[..., Any]) -> None:
        start_ns = time.time_ns()
        start = time.perf_counter()
        raw_path = scope.get("raw_path") or scope["path"].encode()
        target = split_target(raw_path)
        if target is None:
            await _reply(send, 404, "404 page not found")
            return
        namespace, name, path = target
        key = (namespace, name)
        function_name = f"{name}.{namespace}"
        if not self.exists(key):
            await _reply(send, 404, f"error finding function {function_name}: not found")
            return
        if scope["method"] not in METHODS:
            await _reply(send, 405, f"method {scope['method']} is not allowed",
                         [(b"allow", b", ".join(m.encode() for m in sorted(METHODS)))])
            return

        method = scope["method"].encode()
        query = scope.get("query_string") or b""
        call_id = b""
        host = b""
        has_length = chunked = False
        length = 0
        out: list[bytes] = []
        for name_, value in scope["headers"]:
            if name_ == b"x-call-id":
                call_id = value
            elif name_ == b"host":
                host = value
            elif name_ == b"content-length":
                has_length = True
                length = int(value) if value.isdigit() else 0
            elif name_ == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            if name_ not in _HOP_BY_HOP:
                out.append(name_ + b": " + value + b"\r\n")
        generated_call_id = not call_id
        if generated_call_id:
            call_id = str(uuid.uuid4()).encode()
            out.append(b"x-call-id: " + call_id + b"\r\n")
        start_header = str(start_ns).encode()
        out.append(b"x-start-time: " + start_header + b"\r\n")
        client = scope.get("client")
        if client and not any(h.startswith(b"x-forwarded-for:") for h in out):
            # (the ASGI spec's port is an int; granian gives a str: either is written as is)
            out.append(b"x-forwarded-for: %s:%s\r\n" % (str(client[0]).encode(),
                                                         str(client[1]).encode()))
        if not host:
            out.append(b"host: " + name.encode() + b"\r\n")
        elif not any(h.startswith(b"x-forwarded-host:") for h in out):
            out.append(b"x-forwarded-host: " + host + b"\r\n")
        use_chunked = chunked and not has_length
        if use_chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        limit = self.body_limit
        if limit and length > limit:  # refused before anything is read or forwarded
            await _reply(send, 413, _too_large(limit), [(b"connection", b"close")])
            return

        message = await receive()
        first = message.get("body", b"")
        more = bool(message.get("more_body"))
        received = len(first)
        if limit and received > limit:
            await _reply(send, 413, _too_large(limit), [(b"connection", b"close")])
            return
        if not has_length and not chunked and (first or more):
            use_chunked = True  # a body with no framing header: send it chunked
            out.append(b"transfer-encoding: chunked\r\n")

        async def receive_chunk() -> tuple[bytes, bool]:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise UpstreamError("client went away", sent=True)
            body = msg.get("body", b"")
            received += len(body)
            if limit and received > limit:
                raise BodyTooLarge  # the replica's connection is dropped, not reused
            return body, bool(msg.get("more_body"))

        response_extra = [(b"x-start-time", start_header), (b"x-served-by", SERVED_BY)]
        if generated_call_id:
            response_extra.append((b"x-call-id", call_id))

        code = 502
        # started and recorded as a pair (the autoscaler's in-flight = started - completed)
        self.metrics.start(function_name)
        try:
            code = await self._forward(
                key, method, path, query, out, first, more, receive_chunk, use_chunked,
                send, response_extra, scope["method"] == "HEAD",
            )
        except BodyTooLarge:
            # The body is sent whole before the replica's answer is read, so no response
            # has started: answer 413 and close the connection (the rest is not read).
            code = 413
            await _reply(send, 413, _too_large(limit),
                         [(b"connection", b"close"), *response_extra])
        finally:
            self.metrics.record(function_name, code, time.perf_counter() - start)

    async def _forward(self, key: Key, method: bytes, path: bytes, query: bytes,
                       headers: list[bytes], first: bytes, more: bool,
                       receive_chunk: Callable[..., Any], use_chunked: bool,
                       send: Callable[..., Any], extra: list[tuple[bytes, bytes]],
                       head_only: bool) -> int:
        target = path + (b"?" + query if query else b"")
        head = b"%s %s HTTP/1.1\r\n%s\r\n" % (method, target, b"".join(headers))
        replayable = method in _REPLAYABLE or any(
            h.startswith((b"idempotency-key:", b"x-idempotency-key:")) for h in headers)
        tried: set[Address] = set()
        for attempt in range(_ATTEMPTS):
            address = self.pick(key)
            if address is not None and address in tried:
                address = self.pick(key)  # round robin is back at one that failed: move on
            if address is None:
                address = await self.wait(key)
            if address is None:
                await _reply(send, 502, self.explain(key), extra)
                return 502
            reused = False
            try:
                async with asyncio.timeout(self.timeout):
                    conn, reused = await self.pool.get(address)
                    try:
                        await send_request(conn, head, first, more, receive_chunk, use_chunked)
                        response = await conn.read_head(head_only)
                    except BaseException:
                        conn.reusable = False
                        conn.release()
                        raise
            except TimeoutError:
                await _reply(send, 504, f"function {key[1]}.{key[0]} timed out", extra)
                return 504
            except (UpstreamError, OSError) as err:
                # Safe to send again: nothing reached the replica (connect failed), or a
                # pooled connection broke and the request is replayable (an idempotent
                # method, or one the caller marked with an idempotency key) and we still
                # hold its whole body. A POST that may have reached a replica is not sent
                # twice: the caller gets the 502.
                unsent = isinstance(err, UpstreamError) and not err.sent
                if unsent:
                    self.suspect(address)
                if attempt + 1 < _ATTEMPTS and (unsent or (not more and replayable)):
                    tried.add(address)
                    continue
                await _reply(send, 502, f"function {key[1]}.{key[0]} failed: {err}", extra)
                return 502
            await self._relay(response, send, extra)
            return response.status
        return 502  # pragma: no cover - the loop always returns

    async def _relay(self, response: Any, send: Callable[..., Any],
                     extra: list[tuple[bytes, bytes]]) -> None:
        headers = [(k.lower(), v) for k, v in response.headers
                   if k.lower() not in _HOP_BY_HOP]
        await send({"type": "http.response.start", "status": response.status,
                    "headers": headers + extra})
        # A replica failing mid-body propagates: the server then aborts the connection, so
        # the client sees a truncated response rather than a falsely complete one.
        try:
            async with contextlib.aclosing(response.body()) as body:
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk,
                                "more_body": True})
        except (UpstreamError, OSError) as err:
            log.warning("replica broke off its answer: %s", err)
            raise ReplicaBrokeOff(str(err)) from None
        await send({"type": "http.response.body", "body": b""})
