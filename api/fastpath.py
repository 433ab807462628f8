"""The gateway's own HTTP/1.1 server: invocations relayed at the protocol level.

Why: every invocation crosses this path, and an ASGI server plus an ASGI callable cost two to
three times nginx per request (docs/benchmarks.md). Here `/function/…` requests are parsed by
httptools (llhttp) in an asyncio Protocol and relayed to a pooled upstream Protocol without a
coroutine or a task when a replica and an idle connection are at hand: the request head is
written to the replica from the parser callback, and the replica's answer is written to the
client from the upstream parser callback. Waiting for a replica (starting, or asleep at zero)
and opening a new connection are the only steps that run as tasks.

Everything else on the port (the /system API, /async-function/, /healthz, the UI) goes to the
same `GatewayApp` through a small ASGI bridge, so there is one port, one process, one app.

The rules of the invocation path are those of `api.proxy` (the portable ASGI form of it,
kept for in-process tests and other ASGI servers); this module shares its name parsing,
method allowlist, hop-by-hop list and replay rule. Safety: llhttp rejects request smuggling
(Content-Length with Transfer-Encoding, repeated Content-Length, obsolete line folding, bad
chunk sizes) and we answer 400 and close; a transfer coding other than `chunked` is refused;
headers must arrive within READ_TIMEOUT and a body may not stall for longer; the body limit
answers 413; a client that stops reading pauses the replica's socket (and a replica that
stops reading pauses the client's), so memory stays bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from random import getrandbits
from typing import Any
from urllib.parse import unquote

import attrs
import httptools

try:  # built by `pip install -e .` (setup.py) where a C compiler is at hand
    from api import _relay  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - the pure-Python path serves alone
    _relay = None

from api.proxy import _HOP_BY_HOP, _REPLAYABLE, METHODS, PREFIX, SERVED_BY, FunctionProxy
from api.proxy import split_target as _split_target
from api.upstream import Address

log = logging.getLogger("docker_faas.fastpath")

_FUNCTION = PREFIX.encode()
_METHODS = frozenset(m.encode() for m in METHODS)
_ATTEMPTS = 3
_REPLAY_LIMIT = 64 * 1024  # a replayable request is re-sent only while all its body so far is held
_HIGH_WATER = 256 * 1024  # buffered body bytes before the sender is paused
_MAX_PER_ADDRESS = 256  # connections open to one replica
_MAX_IDLE_PER_ADDRESS = _MAX_PER_ADDRESS  # all may idle: closing some only to reopen churns
_REASONS = {s.value: s.phrase.encode() for s in http.HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_VERSIONS = (b"1.0", b"1.1")
_CONNECTION_LINES = (b"connection: close\r\n", b"connection: keep-alive\r\n", b"")
_SWEEP = 0.1  # seconds between two checks of every connection's deadlines
_SERVED_BY_LINE = b"x-served-by: " + SERVED_BY + b"\r\n"
# request headers the relay looks at (all hop-by-hop ones too, so the common case is one miss)
(_HOP, _CONTENT_LENGTH, _TRANSFER_ENCODING, _CALL_ID, _HOST, _EXPECT, _FORWARDED_FOR,
 _FORWARDED_HOST, _IDEMPOTENCY) = range(9)
_SPECIAL = {
    **dict.fromkeys(_HOP_BY_HOP, _HOP),
    b"content-length": _CONTENT_LENGTH, b"transfer-encoding": _TRANSFER_ENCODING,
    b"x-call-id": _CALL_ID, b"host": _HOST, b"expect": _EXPECT,
    b"x-forwarded-for": _FORWARDED_FOR, b"x-forwarded-host": _FORWARDED_HOST,
    b"idempotency-key": _IDEMPOTENCY, b"x-idempotency-key": _IDEMPOTENCY,
}


# What the first segment after /function/ means: (key, "name.namespace", host line), or
# _NO_TARGET for a malformed name. A bounded cache: parsing a name costs more than a lookup.
_Target = tuple[tuple[str, str], str, bytes]
_NO_TARGET: _Target = (("", ""), "", b"")
_TARGETS: dict[bytes, _Target] = {}
_TARGETS_MAX = 4096


def _target(segment: bytes) -> _Target:
    parsed = _split_target(_FUNCTION + segment)
    if parsed is None:
        target = _NO_TARGET
    else:
        namespace, name, _ = parsed
        target = ((namespace, name), f"{name}.{namespace}", b"host: %s\r\n" % name.encode())
    if len(_TARGETS) >= _TARGETS_MAX:
        _TARGETS.clear()
    _TARGETS[segment] = target
    return target


@attrs.frozen
class Limits:
    read_timeout: float = 60.0  # headers complete, and between body chunks
    keep_alive: float = 60.0  # an idle client connection is closed after this
    max_header_bytes: int = 64 * 1024
    max_body: int = 0  # bytes of one invocation's body; 0 = no limit


def _call_ids() -> Iterator[bytes]:
    """Call ids in the form of random (version 4) UUIDs: 74 random bits drawn once, then 48
    that count up from a random start. A call id must be unique, not unpredictable, and this
    costs a fifth of drawing 122 bits per request (uuid4() even makes a system call)."""
    r = getrandbits(74)
    prefix = b"%08x-%04x-4%03x-%04x-" % (r >> 42, (r >> 26) & 0xFFFF, (r >> 14) & 0xFFF,
                                          0x8000 | r & 0x3FFF)
    for n in itertools.count(getrandbits(48)):
        yield b"%s%012x" % (prefix, n & 0xFFFFFFFFFFFF)


_call_id = _call_ids().__next__


_ALLOW = b"allow: " + b", ".join(m.encode() for m in sorted(METHODS)) + b"\r\n"


def _format_status_line(version: bytes, status: int) -> bytes:
    return b"HTTP/%s %d %s\r\n" % (version, status, _REASONS.get(status, b"Unknown"))


# each version's status lines by code, made once: for _status_line, and handed to
# api._relay.relay_response (which takes 200..599)
_STATUS_TABLES = {v: [_format_status_line(v, code) for code in range(600)]
                  for v in (b"1.0", b"1.1")}


def _status_line(version: bytes, status: int) -> bytes:
    table = _STATUS_TABLES.get(version)
    if table is not None and 0 <= status < 600:
        return table[status]
    return _format_status_line(version, status)  # (HTTP/0.9, or a code llhttp let past 599)


def _plain(status: int, message: str, extra: bytes = b"", *, close: bool = False) -> bytes:
    body = (message + "\n").encode() if message else b""
    return b"%scontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n%s%s\r\n%s" % (
        _status_line(b"1.1", status), len(body), extra,
        b"connection: close\r\n" if close else b"", body)


# ---- upstream side ---------------------------------------------------------------------


class _Outbox:
    """Writes of one connection, collected while a data_received callback runs (the server's
    `corked` list) and sent in one system call at its end; sent at once otherwise."""

    transport: asyncio.Transport | None
    server: FastServer
    _out: list[bytes]

    def _writable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if not self._writable():
            return
        corked = self.server.corked
        if corked is None:
            self.transport.write(data)  # type: ignore[union-attr]
        else:
            if not self._out:
                corked.append(self)
            self._out.append(data)

    def flush(self) -> None:
        out, self._out = self._out, []
        if out and self._writable():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))  # type: ignore[union-attr]


class UpstreamPool:
    """Idle keep-alive connections per replica address, at most `_MAX_PER_ADDRESS` open to
    one replica: beyond that a request waits for a connection to come free instead of
    opening yet another one (a thousand clients must not become a thousand connects)."""

    def __init__(self, server: FastServer, connect_timeout: float = 1.0) -> None:
        self.server = server
        self.connect_timeout = connect_timeout
        self._idle: dict[Address, list[Upstream]] = {}
        self._open: dict[Address, int] = {}
        self._waiting: dict[Address, deque[FunctionExchange]] = {}

    def full(self, address: Address) -> bool:
        return self._open.get(address, 0) >= _MAX_PER_ADDRESS

    def wait(self, address: Address, exchange: FunctionExchange) -> None:
        self._waiting.setdefault(address, deque()).append(exchange)

    def _next_waiter(self, address: Address) -> FunctionExchange | None:
        waiting = self._waiting.get(address)
        while waiting:
            exchange = waiting.popleft()
            if not exchange.finished and exchange.upstream is None:
                return exchange
        return None

    def opened(self, conn: Upstream) -> None:
        self._open[conn.address] = self._open.get(conn.address, 0) + 1

    def closed(self, conn: Upstream) -> None:
        self._open[conn.address] = self._open.get(conn.address, 1) - 1
        exchange = self._next_waiter(conn.address)
        if exchange is not None:  # a slot came free: open a connection for the next in line
            exchange.task = self.server.loop.create_task(exchange.route_slowly(conn.address))

    def take(self, address: Address) -> Upstream | None:
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if conn.open:
                return conn
        return None

    def put(self, conn: Upstream) -> None:
        exchange = self._next_waiter(conn.address)
        if exchange is not None:
            exchange.attach(conn, reused=True)
            return
        idle = self._idle.setdefault(conn.address, [])
        if len(idle) < _MAX_IDLE_PER_ADDRESS:
            idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: Upstream) -> None:
        idle = self._idle.get(conn.address)
        if idle and conn in idle:
            idle.remove(conn)

    async def connect(self, address: Address) -> Upstream:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            _, conn = await loop.create_connection(lambda: Upstream(self, address), *address)
        return conn

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


class Upstream(_Outbox, asyncio.Protocol):
    """One connection to a replica; parses its answers and hands them to the exchange."""

    def __init__(self, pool: UpstreamPool, address: Address) -> None:
        self.pool = pool
        self.server = pool.server
        self.address = address
        self.transport: asyncio.Transport | None = None
        self.exchange: FunctionExchange | None = None
        self.open = False
        self.paused = False  # our writes to the replica are paused (its buffer is full)
        self._parser = httptools.HttpResponseParser(self)
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_only = False
        self._fresh = True  # the parser has not been fed since the request was sent
        self._out: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        self.open = True
        self.pool.opened(self)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        exchange, self.exchange = self.exchange, None
        if exchange is not None:
            exchange.upstream_failed(self, f"replica closed the connection ({exc or 'EOF'})")
        else:
            self.pool.forget(self)
        self.pool.closed(self)

    def eof_received(self) -> bool | None:
        if self.exchange is not None:
            with contextlib.suppress(httptools.HttpParserError):
                self._parser.feed_data(b"")  # ends a body delimited by the close
        return None

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # an idle connection must not talk
            return
        server = self.server
        if self._fresh:
            self._fresh = False
            relay = server.relay_response
            table = _STATUS_TABLES.get(exchange.version)  # (llhttp also takes HTTP/0.9)
            whole = relay(data, table, exchange.connection, exchange.extra) if (
                relay is not None and table is not None and not self._head_only) else None
            if whole is not None:  # a whole Content-Length answer, parsed by api._relay
                self.exchange = None  # (one write to the client: not corked)
                exchange.response_whole(whole[0], whole[2])
                self._done(exchange, whole[1], fresh_parser=False)
                return
        outer = server.corked is None
        if outer:
            server.corked = []
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError as err:
            exchange, self.exchange = self.exchange, None
            self.close()
            if exchange is not None:
                exchange.upstream_failed(self, f"bad response from replica: {err}")
        finally:
            if outer:
                _flush_corked(server)

    def pause_writing(self) -> None:
        self.paused = True
        if self.exchange is not None:
            self.exchange.client.pause_reading()

    def resume_writing(self) -> None:
        self.paused = False
        if self.exchange is not None:
            self.exchange.client.resume_reading()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self._headers = []
            return
        headers, self._headers = self._headers, []
        exchange.response_head(status, headers)
        if self._head_only:
            # a HEAD answer has no body whatever it declares; the parser would wait for one
            self.exchange = None
            self.close()
            exchange.response_end()

    def on_body(self, body: bytes) -> None:
        if self.exchange is not None:
            self.exchange.response_body(body)

    def on_message_complete(self) -> None:
        exchange, self.exchange = self.exchange, None
        keep = self._parser.should_keep_alive()
        if exchange is None:
            return
        exchange.response_end()
        self._done(exchange, keep, fresh_parser=True)

    def _done(self, exchange: FunctionExchange, keep: bool, *, fresh_parser: bool) -> None:
        """The answer is complete: back to the pool if the connection can serve another."""
        if keep and self.open and exchange.body_done and not self.paused:
            if fresh_parser:
                self._parser = httptools.HttpResponseParser(self)
            if self.transport is not None:
                self.transport.resume_reading()
            self.pool.put(self)
        else:
            self.close()

    # used by the exchange
    def begin(self, exchange: FunctionExchange, head_only: bool) -> None:
        self.exchange = exchange
        self._head_only = head_only
        self._headers = []
        self._fresh = True

    def pause_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def close(self) -> None:
        self.open = False
        self._out = []
        if self.transport is not None:
            self.transport.close()


def _flush_corked(server: FastServer) -> None:
    batch, server.corked = server.corked or [], None
    for connection in batch:
        connection.flush()


# ---- one invocation ----------------------------------------------------------------------


class _Exchange:
    """One request on a client connection, from its parsed head to its answer's end."""

    def __init__(self, client: ClientConnection, method: bytes, url: bytes,
                 headers: list[tuple[bytes, bytes]], version: bytes, keep_alive: bool) -> None:
        self.client = client
        self.method = method
        self.url = url
        self.headers = headers
        self.version = version
        self.keep_alive = keep_alive
        self.started = False  # the answer's head was written
        self.finished = False


class FunctionExchange(_Exchange):
    """A /function/ request, relayed to a replica."""

    # defaults for what most invocations never change (one store fewer per request each)
    chunked_up = False
    chunked_down = False
    close_delimited = False
    tried: frozenset[Address] = frozenset()  # replicas that failed this request
    attempt = 0
    reused = False
    exec_deadline = 0.0  # loop time the answer must have begun by; 0: none
    task: asyncio.Task[None] | None = None

    def __init__(self, client: ClientConnection, method: bytes, url: bytes,
                 headers: list[tuple[bytes, bytes]], version: bytes, keep_alive: bool) -> None:
        super().__init__(client, method, url, headers, version, keep_alive)
        self.upstream: Upstream | None = None
        self.pending: list[bytes] = []  # body received before a replica was attached
        self.replay: list[bytes] | None = []  # the whole body, while it is small
        self.body_done = False
        self.received = 0
        self.status = 502
        self.key: tuple[str, str] = ("", "")
        self.function_name = ""
        self.default_host = b""  # "host: <name>" for a request that came without one
        self.extra = b""  # our lines for the answer: x-start-time, x-served-by, x-call-id
        self.head = b""
        self.replayable: bool | int = False
        self.t0 = 0.0

    def known(self, segment: bytes) -> bool:
        """Whether `segment` (what follows /function/) names a deployed function; answered
        404 here when not."""
        target = _TARGETS.get(segment)
        if target is None:
            target = _target(segment)
        if target is _NO_TARGET:
            self.client.reject(404, "404 page not found", keep_alive=self.keep_alive)
            return False
        self.key, self.function_name, self.default_host = target
        if not self.client.server.proxy.exists(self.key):
            self.client.reject(404, f"error finding function {self.function_name}: not found",
                               keep_alive=self.keep_alive)
            return False
        return True

    def admit(self) -> bytes | None:
        """The function's own path and query for this request, or None when it has been
        answered here instead (404: no such function; 405: method not allowed)."""
        client = self.client
        path, _, query = self.url.partition(b"?")
        segment, _, suffix = path[len(_FUNCTION):].partition(b"/")
        if not self.known(segment):
            return None
        if self.method not in _METHODS:
            client.reject(405, f"method {self.method.decode('latin-1')} is not allowed",
                          _ALLOW, keep_alive=self.keep_alive)
            return None
        return b"/" + suffix + (b"?" + query if query else b"")

    def start(self) -> None:
        """The general path: the head as llhttp parsed it, header by header."""
        client = self.client
        target = self.admit()
        if target is None:
            return
        call_id = host = b""
        length = -1
        chunked = expect = False
        flags = 0
        out: list[bytes] = []
        for key, value in self.headers:
            kind = _SPECIAL.get(key)
            if kind is None:  # most headers: passed on as they came
                out.append(key + b": " + value + b"\r\n")
                continue
            if kind == _CONTENT_LENGTH:
                length = int(value)  # llhttp has checked it is one plain number
            elif kind == _TRANSFER_ENCODING:
                if value.strip().lower() != b"chunked":
                    client.reject(400, f"transfer-encoding: {value.decode('latin-1')!r} is "
                                  "not supported; use chunked", keep_alive=False)
                    return
                chunked = True
            elif kind == _CALL_ID:
                call_id = value
            elif kind == _HOST:
                host = value
            elif kind == _EXPECT:
                expect = value.lower() == b"100-continue"
            elif kind == _FORWARDED_FOR:
                flags |= 1
            elif kind == _FORWARDED_HOST:
                flags |= 2
            elif kind == _IDEMPOTENCY:
                flags |= 4
            if key not in _HOP_BY_HOP:
                out.append(key + b": " + value + b"\r\n")
        if chunked:
            out.append(b"transfer-encoding: chunked\r\n")
        self.chunked_up = chunked
        self.forward(target, b"".join(out), length, call_id, host, flags, expect)

    def start_whole(self, segment: bytes, upstream: bytes, extra: bytes, length: int,
                    flags: int) -> None:
        """The common case, from api._relay.relay_request: a plain request that arrived
        whole, and `upstream`, the whole request to send on (as `forward` would make it)."""
        if not self.known(segment):
            return
        self.received = max(length, 0)
        if self.received > _REPLAY_LIMIT:
            self.replay = None  # (otherwise `upstream` itself is re-sent: it holds the body)
        self.extra = extra
        self.head = upstream
        self.body_done = True
        self.dispatch(length, flags & 4, False)

    def forward(self, target: bytes, lines: bytes, length: int, call_id: bytes, host: bytes,
                flags: int, expect: bool) -> None:
        """Send the request on (`lines`: its own headers to pass on), with ours added:
        X-Call-Id, X-Start-Time, X-Forwarded-For/Host, Host when the client sent none."""
        client = self.client
        start = b"x-start-time: %d\r\n" % time.time_ns()
        if call_id:
            self.extra = start + _SERVED_BY_LINE
            ours = start
        else:
            call_id = b"x-call-id: " + _call_id() + b"\r\n"
            self.extra = start + _SERVED_BY_LINE + call_id
            ours = call_id + start
        if not flags & 1:
            ours += client.forwarded_for
        if not host:
            ours += self.default_host
        elif not flags & 2:
            ours += b"x-forwarded-host: " + host + b"\r\n"
        self.head = b"%s %s HTTP/1.1\r\n%s%s\r\n" % (self.method, target, lines, ours)
        self.dispatch(length, flags & 4, expect)

    def dispatch(self, length: int, idempotent: int, expect: bool) -> None:
        """The request is ready to go (self.head): check its size, count it, route it."""
        client = self.client
        limit = client.server.limits.max_body
        if limit and length > limit:
            client.reject(413, f"request body of {length} bytes is larger than "
                          f"MAX_REQUEST_BODY ({limit} bytes)", keep_alive=False)
            return
        self.t0 = time.perf_counter()
        self.replayable = idempotent or self.method in _REPLAYABLE
        self.body_done = self.body_done or (length <= 0 and not self.chunked_up)
        client.server.proxy.metrics.start(self.function_name)
        if expect and not self.body_done:
            client.write(_CONTINUE)
        if self.body_done:
            self.arm_exec_timeout()
        self.route()

    def arm_exec_timeout(self) -> None:
        """EXEC_TIMEOUT runs from the end of the request body to the start of the answer:
        an upload's own length is bounded by READ_TIMEOUT between its chunks instead."""
        if not self.exec_deadline and not self.started and not self.finished:
            server = self.client.server
            self.exec_deadline = server.loop.time() + server.proxy.timeout

    # -- choosing a replica and a connection
    def route(self) -> None:
        proxy = self.client.server.proxy
        address = proxy.pick(self.key)
        if address is not None and address in self.tried:
            address = proxy.pick(self.key)
        if address is not None:
            pool = self.client.server.pool
            conn = pool.take(address)
            if conn is not None:
                self.attach(conn, reused=True)
                return
            if pool.full(address):
                pool.wait(address, self)  # attached by the next connection to come free
                return
        self.task = self.client.server.loop.create_task(self.route_slowly(address))

    async def route_slowly(self, address: Address | None) -> None:
        proxy = self.client.server.proxy
        if address is None:
            address = await proxy.wait(self.key)
        if self.finished:
            return
        if address is None:
            self.fail(502, proxy.explain(self.key))
            return
        try:
            conn = await self.client.server.pool.connect(address)
        except (TimeoutError, OSError) as err:
            proxy.suspect(address)
            self.retry_or_fail(address, f"cannot connect to {address[0]}:{address[1]}: {err}",
                               sent=False)
            return
        if self.finished:
            conn.close()
            return
        self.attach(conn, reused=False)

    def attach(self, conn: Upstream, *, reused: bool) -> None:
        self.upstream = conn
        self.reused = reused
        conn.begin(self, head_only=self.method == b"HEAD")
        data = [self.head]
        for chunk in self.pending:
            data.append(b"%x\r\n%s\r\n" % (len(chunk), chunk) if self.chunked_up else chunk)
        self.pending = []
        if self.body_done and self.chunked_up:
            data.append(b"0\r\n\r\n")
        conn.write(b"".join(data))
        if not conn.paused:
            self.client.resume_reading()  # paused while the body waited for a replica

    def retry_or_fail(self, address: Address, reason: str, *, sent: bool) -> None:
        self.attempt += 1
        # re-sent only when that is safe: an idempotent method (or an idempotency key) whose
        # body so far is all held (the rest, still arriving, follows to the new replica); a
        # POST that may have reached a replica is not repeated
        can_replay = self.replayable and self.replay is not None
        if self.attempt < _ATTEMPTS and not self.started and (not sent or can_replay):
            self.tried = self.tried | {address}
            if sent:
                self.pending = list(self.replay or [])
            self.upstream = None
            self.route()
            return
        self.fail(502, f"function {self.function_name} failed: {reason}")

    # -- the request body, from the client parser
    def on_body(self, body: bytes) -> None:
        if self.finished:
            return  # answered already (404, 413, an early reply): the rest is discarded
        self.received += len(body)
        limit = self.client.server.limits.max_body
        if limit and self.received > limit:
            self.fail(413, f"request body larger than MAX_REQUEST_BODY ({limit} bytes)",
                      close=True)
            return
        if self.replay is not None:
            if self.received <= _REPLAY_LIMIT:
                self.replay.append(body)
            else:
                self.replay = None
        if self.upstream is None:
            self.pending.append(body)
            if sum(map(len, self.pending)) > _HIGH_WATER:
                self.client.pause_reading()  # resumed when a replica is attached
            return
        self.upstream.write(b"%x\r\n%s\r\n" % (len(body), body) if self.chunked_up else body)

    def on_body_end(self) -> None:
        self.body_done = True
        if self.upstream is not None and self.chunked_up and not self.finished:
            self.upstream.write(b"0\r\n\r\n")
        self.arm_exec_timeout()

    # -- the answer, from the upstream parser
    def response_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        # EXEC_TIMEOUT bounds the wait for the answer to begin, not a stream's length
        self.exec_deadline = 0.0
        self.status = status
        out = [_status_line(self.version, status)]
        framed = False
        for key, value in headers:
            lower = key.lower()
            if lower == b"content-length":
                framed = True
            elif lower == b"transfer-encoding" or lower in _HOP_BY_HOP:
                continue
            out.append(lower + b": " + value + b"\r\n")
        out.append(self.extra)
        bodyless = self.method == b"HEAD" or status in (204, 304)
        if not framed and not bodyless:
            if self.version == b"1.1":
                self.chunked_down = True
                out.append(b"transfer-encoding: chunked\r\n")
            else:
                self.close_delimited = True
        out.append(_CONNECTION_LINES[0 if self.close_delimited else self.connection])
        out.append(b"\r\n")
        self.started = True
        self.client.write(b"".join(out))
        if self.client.paused_writing and self.upstream is not None:
            self.upstream.pause_reading()

    def response_whole(self, status: int, answer: bytes) -> None:
        """A whole answer with Content-Length (not to HEAD, not 1xx/204/304), assembled by
        api._relay.relay_response as response_head and response_body would have."""
        self.exec_deadline = 0.0
        self.status = status
        self.started = True
        self.client.write(answer)
        self.upstream = None
        self.finish(self.keep_alive)

    @property
    def connection(self) -> int:
        """What the answer says of the connection (an index into _CONNECTION_LINES, as
        api._relay.relay_response takes it): 0 close, 1 keep-alive (HTTP/1.0 kept alive),
        2 nothing (HTTP/1.1 kept alive)."""
        return 0 if not self.keep_alive else 1 if self.version == b"1.0" else 2

    def response_body(self, body: bytes) -> None:
        if self.chunked_down:
            self.client.write(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self.client.write(body)
        if self.client.paused_writing and self.upstream is not None:
            self.upstream.pause_reading()

    def response_end(self) -> None:
        if self.finished:
            return
        if self.chunked_down:
            self.client.write(b"0\r\n\r\n")
        self.upstream = None
        self.finish(self.keep_alive and not self.close_delimited)

    # -- endings
    def upstream_failed(self, conn: Upstream, reason: str) -> None:
        if self.finished or conn is not self.upstream:
            return
        self.upstream = None
        if self.started:
            log.warning("replica broke off its answer for %s: %s", self.function_name, reason)
            self.finish(False, abort=True)
            return
        self.retry_or_fail(conn.address, reason, sent=True)

    def timed_out(self) -> None:
        self.exec_deadline = 0.0
        if self.finished:
            return
        self.abandon_upstream()
        if self.started:
            self.finish(False, abort=True)
        else:
            self.fail(504, f"function {self.function_name} timed out")

    def abandon_upstream(self) -> None:
        conn, self.upstream = self.upstream, None
        if conn is not None:
            conn.exchange = None
            conn.close()

    def fail(self, status: int, message: str, *, close: bool = False) -> None:
        if self.finished:
            return
        self.abandon_upstream()
        if self.started:
            self.finish(False, abort=True)
            return
        self.status = status
        if status >= 500:
            log.info("%s %s: %d %s", self.method.decode("latin-1"), self.function_name,
                     status, message)
        keep = self.keep_alive and not close
        self.started = True
        self.client.write(_plain(status, message, self.extra, close=not keep))
        self.finish(keep)

    def client_lost(self) -> None:
        if not self.finished:
            self.abandon_upstream()
            self.finish(False)

    def finish(self, keep_alive: bool, *, abort: bool = False) -> None:
        if self.finished:
            return
        self.finished = True
        self.exec_deadline = 0.0
        if self.task is not None and not self.task.done() and (
                self.task is not asyncio.current_task()):
            self.task.cancel()
        if self.function_name and self.t0:
            self.client.server.proxy.metrics.record(
                self.function_name, self.status, time.perf_counter() - self.t0)
        self.client.exchange_done(self, keep_alive, abort=abort)


# ---- everything else: the ASGI app --------------------------------------------------------


class AsgiExchange(_Exchange):
    """A non-invocation request, run through the GatewayApp as ASGI."""

    def __init__(self, client: ClientConnection, method: bytes, url: bytes,
                 headers: list[tuple[bytes, bytes]], version: bytes, keep_alive: bool) -> None:
        super().__init__(client, method, url, headers, version, keep_alive)
        self.body: deque[bytes] = deque()
        self.buffered = 0
        self.body_done = False
        self.complete = False
        self.chunked = False
        self.head_only = method == b"HEAD"
        self.expect = any(k == b"expect" and v.lower() == b"100-continue" for k, v in headers)
        self.final_given = False
        self.waiter: asyncio.Future[None] | None = None
        self.status = 500
        self.head: list[bytes] = []
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        path, _, query = self.url.partition(b"?")
        server = self.client.server
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": self.version.decode(), "method": self.method.decode("latin-1"),
            "scheme": "http", "path": unquote(path.decode("latin-1")), "raw_path": path,
            "query_string": query, "root_path": "", "headers": self.headers,
            "client": self.client.peer, "server": self.client.sockname,
            "state": dict(server.state),
        }
        self.task = asyncio.get_running_loop().create_task(self.run(scope))

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.finished:
            return  # answered already: the rest of the body is discarded
        self.body.append(body)
        self.buffered += len(body)
        if self.buffered > _HIGH_WATER:
            self.client.pause_reading()
        self._wake()

    def on_body_end(self) -> None:
        self.body_done = True
        self._wake()

    async def receive(self) -> dict[str, Any]:
        if self.expect and not self.body_done and not self.started:
            self.expect = False
            self.client.write(_CONTINUE)
        while True:
            if self.finished or self.complete:
                return {"type": "http.disconnect"}
            if self.body:
                chunk = self.body.popleft()
                self.buffered -= len(chunk)
                if self.buffered <= _HIGH_WATER:
                    self.client.resume_reading()
                return {"type": "http.request", "body": chunk,
                        "more_body": bool(self.body) or not self.body_done}
            if self.body_done and not self.final_given:
                self.final_given = True  # the final empty message is given once
                return {"type": "http.request", "body": b"", "more_body": False}
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.finished:
            return
        kind = message["type"]
        if kind == "http.response.start":
            self.status = int(message["status"])
            head = [_status_line(self.version, self.status)]
            framed = False
            for key, value in message.get("headers", []):
                lower = key.lower()
                if lower == b"content-length":
                    framed = True
                elif lower == b"connection":
                    continue
                head.append(lower + b": " + value + b"\r\n")
            bodyless = self.head_only or self.status in (204, 304) or self.status < 200
            if not framed and not bodyless:
                if self.version == b"1.1":
                    self.chunked = True
                    head.append(b"transfer-encoding: chunked\r\n")
                else:
                    self.keep_alive = False
            if not self.keep_alive:
                head.append(b"connection: close\r\n")
            self.head = head
            return
        if kind != "http.response.body" or self.complete:
            return
        body = message.get("body", b"")
        more = bool(message.get("more_body"))
        out = []
        if not self.started:
            self.started = True
            out.append(b"".join(self.head) + b"\r\n")
        if body and not self.head_only:
            out.append(b"%x\r\n%s\r\n" % (len(body), body) if self.chunked else body)
        if not more:
            if self.chunked and not self.head_only:
                out.append(b"0\r\n\r\n")
            self.complete = True
        if out:
            self.client.write(b"".join(out))
        if not more:
            self._done()
            return
        await self.client.drain()

    def _done(self) -> None:
        self.finished = True
        self._wake()
        self.client.exchange_done(self, self.keep_alive)

    async def run(self, scope: dict[str, Any]) -> None:
        try:
            await self.client.server.app(scope, self.receive, self.send)
        except Exception:
            log.exception("error serving %s %s", self.method.decode("latin-1"),
                          self.url.decode("latin-1"))
        if self.finished:
            return
        if not self.started:
            self.started = True
            self.client.write(_plain(500, "Internal Server Error", close=True))
            self.finished = True
            self.client.exchange_done(self, False)
        else:  # the app stopped in the middle of its answer
            self.finished = True
            self.client.exchange_done(self, False, abort=True)

    def client_lost(self) -> None:
        self.finished = True
        self._wake()


Exchange = FunctionExchange | AsgiExchange


# ---- the client connection -------------------------------------------------------------------


class ClientConnection(_Outbox, asyncio.Protocol):
    def __init__(self, server: FastServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer: tuple[str, int] | None = None
        self.forwarded_for = b""
        self.sockname: tuple[str, int] | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.header_bytes = 0
        self.queue: deque[Exchange] = deque()  # the one answering first, pipelined after it
        self.parsing: Exchange | None = None  # the exchange the parser is feeding
        self.paused_writing = False
        self.paused_reading = False
        self._drain: asyncio.Future[None] | None = None
        self.deadline = 0.0  # loop time of the next timeout; 0: none (see FastServer._sweep)
        self.on_deadline: Callable[[], None] | None = None
        self.closed = False
        self.too_large = False
        self.between = True  # the parser is between two requests (none begun)
        self._out: list[bytes] = []

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        sockname = transport.get_extra_info("sockname")
        self.peer = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) else None
        self.forwarded_for = (b"x-forwarded-for: %s:%d\r\n" % (self.peer[0].encode(),
                                                                self.peer[1])
                              if self.peer is not None else b"")
        self.sockname = (str(sockname[0]), int(sockname[1])) if isinstance(
            sockname, tuple) else None
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.connections.add(self)
        self._arm(self.server.limits.read_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        self._disarm()
        for exchange in list(self.queue):
            exchange.client_lost()
        self.queue.clear()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return  # closed by us (an error, a timeout): what still arrives is not read
        server = self.server
        if self.between and not self.queue:
            relay = server.relay_request
            if relay is not None:
                whole = relay(data, server.limits.max_header_bytes, self.forwarded_for,
                              _call_id(), _SERVED_BY_LINE)
                if whole is not None:
                    self._relay_whole(whole)
                    return
            # a new request is arriving on an idle connection: its headers must complete
            self._arm(server.limits.read_timeout, self._idle_timeout)
        outer = server.corked is None
        if outer:
            server.corked = []
        try:
            self._feed(data)
        finally:
            if outer:
                _flush_corked(server)

    def _relay_whole(self, whole: tuple[Any, ...]) -> None:
        """A whole plain invocation in one read, parsed by api._relay: no parser callbacks."""
        method, segment, minor, keep_alive, upstream, extra, length, flags = whole
        self.deadline = 0.0
        exchange = FunctionExchange(self, method, b"", [], _VERSIONS[minor], keep_alive)
        self.queue.append(exchange)
        # not corked: this path writes once, the request to the replica (or an answer here)
        exchange.start_whole(segment, upstream, extra, length, flags)

    def _feed(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.protocol_error(400, "protocol upgrades are not supported")
        except httptools.HttpParserCallbackError:
            if self.too_large:
                self.protocol_error(431, "request line and headers larger than "
                                    f"{self.server.limits.max_header_bytes} bytes")
            else:
                log.exception("error in the request parser callbacks")
                self.protocol_error(500, "Internal Server Error")
        except httptools.HttpParserError as err:
            self.protocol_error(400, f"malformed request: {err}")

    def pause_writing(self) -> None:
        self.paused_writing = True
        head = self.queue[0] if self.queue else None
        if isinstance(head, FunctionExchange) and head.upstream is not None:
            head.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.paused_writing = False
        head = self.queue[0] if self.queue else None
        if isinstance(head, FunctionExchange) and head.upstream is not None:
            head.upstream.resume_reading()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # httptools callbacks (the head's state is reset in on_headers_complete)
    def on_message_begin(self) -> None:
        self.between = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.header_bytes += len(url)
        if self.header_bytes > self.server.limits.max_header_bytes:
            self.too_large = True
            raise _TooLarge()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_bytes += len(name) + len(value) + 4
        if self.header_bytes > self.server.limits.max_header_bytes:
            self.too_large = True
            raise _TooLarge()  # stops the parser; data_received answers 431
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self._disarm()
        parser = self.parser
        method = parser.get_method()
        version = parser.get_http_version().encode()
        keep_alive = parser.should_keep_alive()
        kind = FunctionExchange if self.url.startswith(_FUNCTION) else AsgiExchange
        exchange = kind(self, method, self.url, self.headers, version, keep_alive)
        self.url, self.headers, self.header_bytes = b"", [], 0
        self.parsing = exchange
        self.queue.append(exchange)
        if len(self.queue) == 1:
            exchange.start()
        else:
            self.pause_reading()  # pipelined: answered in order, one at a time

    def on_body(self, body: bytes) -> None:
        if self.parsing is not None:
            self._arm(self.server.limits.read_timeout, self._body_timeout)
            self.parsing.on_body(body)

    def on_message_complete(self) -> None:
        exchange, self.parsing = self.parsing, None
        self.between = True
        self._disarm()
        if exchange is not None:
            exchange.on_body_end()

    # used by exchanges
    def _writable(self) -> bool:
        return self.transport is not None and not self.closed

    async def drain(self) -> None:
        if self.paused_writing and not self.closed:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain

    def pause_reading(self) -> None:
        if not self.paused_reading and self.transport is not None and not self.closed:
            self.paused_reading = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused_reading and self.transport is not None and not self.closed:
            self.paused_reading = False
            self.transport.resume_reading()

    def reject(self, status: int, message: str, extra: bytes = b"", *,
               keep_alive: bool) -> None:
        """Answer the exchange at the head of the queue before it reached a replica; the
        rest of its body, if any, is read and discarded."""
        keep = keep_alive and not self.closed
        self.write(_plain(status, message, extra, close=not keep))
        exchange = self.queue[0] if self.queue else None
        if exchange is not None and not exchange.finished:
            exchange.finished = True
            self.exchange_done(exchange, keep)
        elif not keep:
            self._close()

    def protocol_error(self, status: int, message: str) -> None:
        """The bytes cannot be trusted any more (smuggling, garbage, oversized head): answer
        if no answer is under way, then close the connection."""
        exchange = self.queue[0] if self.queue else None
        if isinstance(exchange, FunctionExchange) and not exchange.started:
            exchange.fail(status, message, close=True)
        elif exchange is None or not exchange.started:
            if exchange is not None:
                exchange.finished = True
            self.write(_plain(status, message, close=True))
        self._close()

    def exchange_done(self, exchange: Exchange, keep_alive: bool, *, abort: bool = False) -> None:
        if self.queue and self.queue[0] is exchange:
            self.queue.popleft()
        if abort:
            if self.transport is not None:
                self.transport.abort()
            return
        if not keep_alive or self.server.closing:
            self._close()
            return
        if self.queue:
            self.queue[0].start()
            if len(self.queue) == 1:
                self.resume_reading()
            return
        self.resume_reading()
        if self.parsing is None:
            self._arm(self.server.limits.keep_alive, self._idle_timeout)

    # timers
    # Timeouts are deadlines checked by the server's sweep ten times a second: setting one
    # is an attribute store, where a timer per request would cost a heap push and a cancel.
    def _arm(self, seconds: float, callback: Callable[[], None]) -> None:
        self.deadline = self.server.loop.time() + seconds
        self.on_deadline = callback

    def _disarm(self) -> None:
        self.deadline = 0.0

    def _idle_timeout(self) -> None:
        if self.queue:
            return
        if self.between:
            self._close()  # idle keep-alive connection: no request begun
        else:
            self.protocol_error(408, "request headers not received in time")

    def _body_timeout(self) -> None:
        if self.paused_reading:  # the body waits on us (back-pressure), not on the client
            self._arm(self.server.limits.read_timeout, self._body_timeout)
            return
        exchange = self.parsing
        if exchange is None:
            return
        if isinstance(exchange, FunctionExchange) and not exchange.finished:
            exchange.fail(408, "request body not received in time", close=True)
        else:
            self._close()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.flush()  # an answer written in this callback goes out before the close
            self.transport.close()
        self.closed = True

    def close_if_idle(self) -> None:
        if not self.queue and self.parsing is None:
            self._close()


class _TooLarge(Exception):
    pass


class FastServer:
    """Serves one port: invocations on the fast path, the rest through the ASGI app."""

    def __init__(self, app: Any, proxy: FunctionProxy, limits: Limits, *,
                 native: bool = True) -> None:
        self.app = app
        self.proxy = proxy
        self.limits = limits
        # api._relay's whole-message parsers, unless absent or turned off (then llhttp alone)
        use = native and _relay is not None
        self.relay_request: Callable[..., Any] | None = _relay.relay_request if use else None
        self.relay_response: Callable[..., Any] | None = (
            _relay.relay_response if use else None)
        self.parser_name = ("api._relay (C) for whole messages, llhttp for the rest" if use
                            else "llhttp" + (" (NATIVE_RELAY=false)" if _relay is not None
                                             else " (api._relay is not built)"))
        self.pool = UpstreamPool(self, connect_timeout=proxy.pool.connect_timeout)
        self.connections: set[ClientConnection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self.state: dict[str, Any] = {}
        self.closing = False
        self._server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop  # set by start()
        # While a data_received callback runs, writes are collected here and sent at its end,
        # one write per connection: a request head and its body, or an answer's head and
        # body, go out in one system call instead of two.
        self.corked: list[Any] | None = None

    async def start(self, host: str, port: int) -> None:
        loop = self.loop = asyncio.get_running_loop()  # kept: get_running_loop costs a getpid
        self._server = await loop.create_server(
            lambda: ClientConnection(self), host, port, backlog=4096, reuse_address=True)
        self._sweeper = loop.call_later(_SWEEP, self._sweep)

    def _sweep(self) -> None:
        """Fire the deadlines that have passed: slow or idle clients, late answers."""
        now = self.loop.time()
        for conn in list(self.connections):
            if conn.deadline and conn.deadline <= now and conn.on_deadline is not None:
                conn.deadline = 0.0
                conn.on_deadline()
            head = conn.queue[0] if conn.queue else None
            if isinstance(head, FunctionExchange) and head.exec_deadline and (
                    head.exec_deadline <= now):
                head.timed_out()
        self._sweeper = self.loop.call_later(_SWEEP, self._sweep)

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let exchanges in progress finish (up to `grace`), close the rest."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close_if_idle()
        # invocations in flight get `grace` to finish; API streams (log and event follows)
        # would never end on their own, so they get a second
        start = time.monotonic()
        while time.monotonic() - start < grace and any(
                isinstance(e, FunctionExchange) or time.monotonic() - start < 1.0
                for c in self.connections for e in c.queue):
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn._close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.pool.close()


class Lifespan:
    """Runs an ASGI app's lifespan protocol: `startup()` before serving, `shutdown()` after."""

    def __init__(self, app: Any, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._started: asyncio.Future[None] | None = None
        self._stopped: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        waiter = self._started if kind.startswith("lifespan.startup") else self._stopped
        if waiter is None or waiter.done():
            return
        if kind.endswith(".failed"):
            waiter.set_exception(RuntimeError(message.get("message") or kind))
        else:
            waiter.set_result(None)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}
        try:
            await self.app(scope, self._events.get, self._send)
        except BaseException as err:
            for waiter in (self._started, self._stopped):
                if waiter is not None and not waiter.done():
                    waiter.set_exception(RuntimeError(f"lifespan failed: {err!r}"))
            raise

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self._started = loop.create_future()
        self._task = loop.create_task(self._run())
        await self._events.put({"type": "lifespan.startup"})
        await self._started

    async def shutdown(self) -> None:
        if self._task is None:
            return
        self._stopped = asyncio.get_running_loop().create_future()
        await self._events.put({"type": "lifespan.shutdown"})
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stopped, 30)
        with contextlib.suppress(BaseException):
            await self._task
