"""A small pooled HTTP/1.1 client for calling function replicas, built on httptools.

httpx costs milliseconds per request on this path (shared/perf-notes.md); this client keeps
idle keep-alive connections per replica address, writes the request head in one go, streams
request bodies (Content-Length or chunked) and hands response body chunks back as they are
parsed, so nothing is buffered whole in either direction.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable

import httptools

Address = tuple[str, int]
Headers = list[tuple[bytes, bytes]]
_MAX_IDLE_PER_ADDRESS = 64
_READ_SIZE = 65536


class UpstreamError(Exception):
    """The replica could not be reached or broke the exchange."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent  # whether any of the request may have reached the replica


class Response:
    """Status and headers of an upstream response; iterate `body()` for the payload."""

    def __init__(self, conn: Connection, status: int, headers: Headers) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers

    def body(self) -> AsyncIterator[bytes]:
        return self._conn.read_body()


class Connection:
    def __init__(self, pool: Pool, address: Address, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.pool = pool
        self.address = address
        self.reader = reader
        self.writer = writer
        self._status = 0
        self._headers: Headers = []
        self._chunks: list[bytes] = []
        self._headers_done = False
        self._done = False
        self._until_eof = False
        self._keep_alive = False
        self._parser = httptools.HttpResponseParser(self)
        self.reusable = False

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._headers_done = True
        self._status = self._parser.get_status_code()
        # A body framed by neither Content-Length nor chunked coding runs until EOF.
        framed = any(n.lower() in (b"content-length", b"transfer-encoding")
                     for n, _ in self._headers)
        self._until_eof = not framed and self._status not in (204, 304) and self._status >= 200

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._done = True
        # asked here: once the callback returns, the parser has moved on to the next message
        self._keep_alive = self._parser.should_keep_alive()

    def _reset(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._status, self._headers, self._chunks = 0, [], []
        self._headers_done = self._done = self._until_eof = self._keep_alive = False

    async def _feed(self) -> None:
        data = await self.reader.read(_READ_SIZE)
        if not data:
            if self._headers_done and self._until_eof:
                self._done, self.reusable = True, False
                return
            raise ConnectionResetError("replica closed the connection")
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError as err:
            raise UpstreamError(f"bad response from replica: {err}", sent=True) from None

    async def read_head(self, head_only: bool) -> Response:
        while not self._headers_done:
            await self._feed()
        if head_only:
            self._done = True  # a HEAD answer has no body whatever its headers say
            self.reusable = False
        return Response(self, self._status, self._headers)

    async def read_body(self) -> AsyncIterator[bytes]:
        try:
            while True:
                if self._chunks:
                    chunks, self._chunks = self._chunks, []
                    for chunk in chunks:
                        yield chunk
                if self._done:
                    break
                await self._feed()
            self.reusable = self.reusable and self._keep_alive
        finally:
            self.release()

    def release(self) -> None:
        if self.reusable and self._done and not self.reader.at_eof():
            self._reset()
            self.pool.put(self)
        else:
            self.writer.close()


class Pool:
    def __init__(self, connect_timeout: float = 3.0) -> None:
        self.connect_timeout = connect_timeout
        self._idle: dict[Address, list[Connection]] = defaultdict(list)

    def put(self, conn: Connection) -> None:
        idle = self._idle[conn.address]
        if len(idle) < _MAX_IDLE_PER_ADDRESS:
            idle.append(conn)
        else:
            conn.writer.close()

    async def get(self, address: Address) -> tuple[Connection, bool]:
        """An open connection to `address`, and whether it was reused from the pool."""
        idle = self._idle.get(address)
        while idle:
            conn = idle.pop()
            if not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn, True
            conn.writer.close()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(*address, limit=_READ_SIZE)
        except (TimeoutError, OSError) as err:
            raise UpstreamError(f"cannot connect to {address[0]}:{address[1]}: {err}",
                                sent=False) from None
        return Connection(self, address, reader, writer), False

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.writer.close()
        self._idle.clear()


BodySource = Callable[[], Awaitable[tuple[bytes, bool]]]  # -> (chunk, more_body)


async def send_request(
    conn: Connection,
    head: bytes,
    first_chunk: bytes,
    more: bool,
    receive_chunk: BodySource,
    chunked: bool,
) -> None:
    """Write the head and the body; `chunked` frames the body with chunked encoding."""
    writer = conn.writer
    if chunked:
        writer.write(head + (b"%x\r\n%s\r\n" % (len(first_chunk), first_chunk)
                             if first_chunk else b""))
    else:
        writer.write(head + first_chunk)
    while more:
        await writer.drain()
        chunk, more = await receive_chunk()
        if chunked:
            if chunk:
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            writer.write(chunk)
    if chunked:
        writer.write(b"0\r\n\r\n")
    await writer.drain()
    conn.reusable = True
