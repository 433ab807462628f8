"""The pooled upstream client against a real local HTTP server (asyncio, loopback)."""

from __future__ import annotations

import asyncio

import pytest

from api.upstream import Pool, send_request

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


RESPONSES = {
    b"/sized": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
    b"/eof": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    b"/close": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
    b"/head": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n",
}


@pytest.fixture
async def server():
    connections = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ")[1]
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                writer.write(RESPONSES[path])
                await writer.drain()
                if path in (b"/eof", b"/close"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    yield ("127.0.0.1", port), connections
    srv.close()
    await srv.wait_closed()


async def call(pool: Pool, address, path: bytes, method: bytes = b"GET"):
    conn, reused = await pool.get(address)
    head = b"%s %s HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n" % (method, path)
    await send_request(conn, head, b"hi", False, None, False)  # type: ignore[arg-type]
    response = await conn.read_head(method == b"HEAD")
    body = b"".join([chunk async for chunk in response.body()])
    return response.status, body, reused


async def test_keep_alive_connections_are_reused(server):
    address, connections = server
    pool = Pool()
    results = [await call(pool, address, b"/sized") for _ in range(5)]
    assert [r[1] for r in results] == [b"hello"] * 5
    assert [r[2] for r in results] == [False, True, True, True, True]
    assert len(connections) == 1
    pool.close()


async def test_chunked_close_delimited_and_head(server):
    address, connections = server
    pool = Pool()
    assert (await call(pool, address, b"/chunked"))[1] == b"abcde"
    assert (await call(pool, address, b"/chunked"))[2] is True
    assert (await call(pool, address, b"/eof"))[1] == b"until the end"
    assert (await call(pool, address, b"/close"))[1] == b"ok"
    assert (await call(pool, address, b"/sized"))[2] is False  # the closed ones were not pooled
    status, body, _ = await call(pool, address, b"/head", b"HEAD")
    assert status == 200 and body == b""
    pool.close()


async def test_a_replica_breaking_off_its_answer_aborts_the_response_quietly():
    import logging
    import sys

    from api.metrics import GatewayMetrics
    from api.proxy import FunctionProxy, ReplicaBrokeOff, quiet_broken_answers
    from events.project import EMPTY

    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(half, "127.0.0.1", 0)
    address = ("127.0.0.1", srv.sockets[0].getsockname()[1])
    proxy = FunctionProxy(exists=lambda key: True, pick=lambda key: address,
                          metrics=GatewayMetrics(lambda: EMPTY), timeout=5)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/function/f", "raw_path": b"/function/f",
             "query_string": b"", "headers": [(b"host", b"gw")], "client": ("127.0.0.1", 1)}
    with pytest.raises(ReplicaBrokeOff) as broke:
        await proxy(scope, receive, send)
    assert sent[0]["status"] == 200 and sent[-1].get("more_body") is True  # never "complete"
    record = logging.LogRecord("uvicorn.error", logging.ERROR, "", 0, "Exception in ASGI", None,
                               (ReplicaBrokeOff, broke.value, None))
    assert quiet_broken_answers(record) is False
    assert quiet_broken_answers(logging.LogRecord("x", logging.ERROR, "", 0, "m", None,
                                                  sys.exc_info())) is True
    proxy.pool.close()
    srv.close()
    await srv.wait_closed()
